// RunControl: whether and how the VM runs. It holds the exit request (the first one wins; the main thread
// waits for it), the run state QMP reports, and the queue through which run-control operations (stop,
// cont, system_reset, and CPU plug and unplug) run one at a time on the io thread, held back until the
// guest has started. The vCPUs themselves belong to the CPU manager; the machine wires the two through
// Hooks. Threading rules: docs/architecture.md.
#pragma once

#include "exit_request.hpp"
#include "qmp/commands.hpp"

#include <boost/asio/io_context.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace vmm {

class RunControl {
public:
    using Done = std::function<void()>;
    struct Hooks {
        // A QMP event; any thread.
        std::function<void(std::string const& name, std::optional<qmp::Json> data)> emit;
        // The first exit request was recorded; on the requesting thread, with no lock held.
        std::function<void(ExitRequest const& request)> exiting;
        // `quit` has been answered: what still waits for the guest is failed now, while clients can read it.
        std::function<void()> quit_answered;
        // io thread: pause every vCPU (done with an error if one would not stop), resume them.
        std::function<void(std::function<void(std::optional<std::string> error)> done)> pause;
        std::function<void()> resume;
        // io thread, every vCPU paused: the machine back to power-on (RAM, devices, vCPUs, the kernel).
        std::function<cpuplug::Result<void, std::string>()> reset;
        // The ACPI power button.
        std::function<void()> power_button;
    };

    RunControl(boost::asio::io_context& io, Hooks hooks);

    // --- any thread
    // Ends the VM; the first request wins.
    void request_exit(ExitRequest request);
    bool exit_requested() const;
    // A QMP client connected (for --qmp ...,wait=on).
    void client_connected();
    // The guest asked for a reset (the FADT's reset register, the keyboard controller): the same work as
    // system_reset, queued on the io thread, with RESET's guest true. Requests made before that reset has
    // paused the vCPUs are one reset: Linux tries several reset methods in a row.
    void guest_reset();

    // --- main thread
    // Waits for a QMP client; false if the VM ended first.
    bool wait_for_client();
    // Waits until the VM is to end; returns the request.
    ExitRequest wait_for_exit();

    // --- io thread
    // The guest runs: the run state becomes running and the queue is released.
    void guest_started();
    qmp::RunState state() const { return m_state; }
    // Runs `operation` once those queued before it are done; it calls its Done when finished.
    void queue(std::function<void(Done done)> operation);
    // QMP's run-control commands; each replies once, on the io thread.
    void stop(qmp::Reply reply);
    void cont(qmp::Reply reply);
    void system_reset(qmp::Reply reply);
    void system_powerdown(qmp::Reply reply);
    void quit(qmp::Reply reply);

private:
    void next();
    // system_reset's work; `reply` is empty for a guest-initiated reset.
    void reset(bool guest, qmp::Reply reply);

    boost::asio::io_context& m_io;
    Hooks const m_hooks;

    mutable std::mutex m_mutex; // guards m_exit, m_client_seen, m_guest_reset_pending; never held across a hook or a reply
    std::condition_variable m_cv;
    std::optional<ExitRequest> m_exit;
    bool m_client_seen { false };
    bool m_guest_reset_pending { false }; // queued and not yet begun (the vCPUs still run)

    // io thread only:
    qmp::RunState m_state { qmp::RunState::Prelaunch };
    std::deque<std::function<void(Done)>> m_queue;
    bool m_busy { true }; // held until the guest has started, so run control waits for it
};

} // namespace vmm
