// GuestChannel: the two ways cpuplug's guest talks to the VMM. The status port (docs/status-port.md):
// each 32-bit write is an event, decoded here on the vCPU thread that wrote it and handed to the
// listener (milestones and CPU reports to the boot observer and the CPU manager, the exit status to run
// control) or, for the control-page handshake, posted to the io thread. And the control page
// (guest/abi/control.hpp): the VMM's questions to the guest's hotplug core, one at a time machine-wide,
// each answered by the guest, failed after 30 s, or failed when the VM ends or the guest is reset.
#pragma once

#include "devices/status_port.hpp"
#include "guest_log.hpp"
#include "memory/guest_memory.hpp"
#include "qmp/commands.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <guest/abi/control.hpp>
#include <guest/abi/status_port.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vmm {

// Why a call to the guest got no answer.
enum class GuestCallError {
    VmEnding,      // the VM is shutting down: no answer is coming
    NoControlPage, // the guest has not announced one (not cpuplug's guest, or not booted yet)
    GuestReset,    // system_reset ran while the call waited
    Timeout,       // the guest did not answer in time
};
// The sentence QMP answers with.
std::string to_string(GuestCallError error);

class GuestChannel {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using Answer = cpuplug::Result<std::vector<uint8_t>, GuestCallError>; // the page's bytes
    struct Call {
        control::Command command;
        uint32_t cpu;
        uint32_t state;
        std::function<void(Answer)> done; // on the io thread, with no lock of the channel's held
    };
    struct Listener {
        // On the vCPU thread that wrote the status port.
        std::function<void(status_port::Milestone, TimePoint)> milestone;
        std::function<void(status_port::CpuEvent, uint32_t cpu, uint8_t step, TimePoint)> cpu;
        std::function<void(uint8_t status)> exit;
        // On the io thread.
        std::function<bool()> vm_ending; // a call made now would never be answered
        std::function<void()> raise_gpe; // GPE0 bit control::GPE_BIT, then SCI
    };

    GuestChannel(boost::asio::io_context& io, GuestMemory& memory, Listener listener);

    // The device, for the machine to put on its buses.
    std::shared_ptr<StatusPort> const& status_port() const { return m_status; }

    // io thread only, as everything below. Queues a call; calls go out one at a time, in order.
    void call(Call call);
    // Every call queued or in flight fails with `why` (the VM is ending: no answer is coming).
    void fail_all(GuestCallError why);
    // system_reset: the new guest announces its own page; a call in flight fails.
    void reset();

private:
    void on_status_event(uint32_t event, TimePoint when); // vCPU thread
    void page_announced(uint64_t address);
    void send();
    void answered(uint32_t seq);
    void finish(Answer result);

    boost::asio::io_context& m_io;
    GuestMemory& m_memory;
    Listener const m_listener;
    std::shared_ptr<StatusPort> m_status;
    GuestLogLimit m_log_control_page, m_log_unknown_event; // atomic: written on vCPU threads

    // No lock: the io thread alone touches these.
    uint64_t m_page { 0 }; // guest-physical, 0 until the guest announces it
    std::deque<Call> m_calls; // the front one is in flight when m_sent
    bool m_sent { false };
    uint32_t m_seq { 0 };
    boost::asio::steady_timer m_timer;
};

// The x-cpuhp commands over the channel: names resolved against the guest's list, the guest's answer
// turned into QMP's. io thread.
void cpuhp_over_channel(GuestChannel& channel, qmp::CpuhpRequest const& request, qmp::Reply reply);

} // namespace vmm
