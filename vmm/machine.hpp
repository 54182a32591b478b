// Machine: one VM, wired in one place. create() builds KVM objects, memory, devices and vCPUs and loads
// the kernel; run() starts the threads and blocks until the VM ends, returning vmm's exit code.
#pragma once

#include "boot_observer.hpp"
#include "config.hpp"
#include "cpu/vcpu_state.hpp"
#include "cpu/vcpu_thread.hpp"
#include "devices/acpi_pm.hpp"
#include "devices/cpu_hotplug.hpp"
#include "devices/io_bus.hpp"
#include "devices/serial.hpp"
#include "guest_channel.hpp"
#include "guest_log.hpp"
#include "kvm/kvm.hpp"
#include "memory/guest_memory.hpp"
#include "qmp/commands.hpp"
#include "qmp/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <guest/abi/control.hpp>

#include <chrono>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vmm {

// vmm's exit codes (docs/cli.md).
enum ExitCode : int {
    EXIT_OK = 0,            // the guest powered off, or the host asked vmm to stop
    EXIT_VMM_ERROR = 1,     // set-up failed or a vCPU hit a fatal exit
    EXIT_USAGE = 2,         // bad command line
    EXIT_GUEST_FAILURE = 3, // the guest reported a failure status (exception, panic)
};

struct ExitRequest {
    int code { EXIT_OK };
    std::string reason;                 // for the log
    bool guest { false };               // the guest asked (QMP SHUTDOWN's "guest")
    std::string cause { "host-error" }; // QMP's ShutdownCause
};

class Machine final : private VcpuThreadEvents, private qmp::Backend {
public:
    static cpuplug::Result<std::unique_ptr<Machine>, std::string> create(MachineConfig const& config);
    ~Machine() override;

    // Runs the VM until it ends; returns the exit code. Call once.
    int run();
    // Thread-safe; the first request wins.
    void request_exit(ExitRequest request);
    boost::asio::io_context& io_context() { return m_io; }
    BootTimeline timeline() const;

private:
    explicit Machine(MachineConfig const& config, Kvm kvm, GuestMemory memory, Vm vm);
    cpuplug::Result<void, std::string> check_limits() const;
    cpuplug::Result<void, std::string> set_up_devices();
    cpuplug::Result<void, std::string> build_acpi();
    cpuplug::Result<void, std::string> load_kernel();
    cpuplug::Result<void, std::string> create_vcpus();
    // A new vCPU for slot `index`: created, CPUID set, its power-on state captured. Any thread.
    cpuplug::Result<std::unique_ptr<Vcpu>, std::string> make_vcpu(uint32_t index, VcpuState& power_on);
    std::unique_ptr<VcpuThread> make_thread(Vcpu& vcpu);
    std::string guest_cmdline() const;
    void on_cpu_event(status_port::CpuEvent event, uint32_t cpu, uint8_t step, std::chrono::steady_clock::time_point when);

    cpuplug::Result<void, std::string> set_up_qmp();
    cpuplug::Result<void, std::string> set_bsp_entry(Vcpu& bsp, VcpuState const& power_on);
    void emit(std::string const& name, std::optional<qmp::Json> data = std::nullopt);
    bool start_guest(); // false when the VM ended before it could start

    // Run control, on the io thread. Operations run one at a time, in the order they came.
    using Done = std::function<void()>;
    void control(std::function<void(Done done)> operation);
    void control_done();
    void pause_vcpus(std::function<void(std::optional<std::string> error)> done);
    void check_paused(bool rekick);
    void resume_vcpus();
    cpuplug::Result<void, std::string> reset_machine();

    // CPU hot-plug (machine_hotplug.cpp), on the io thread unless said otherwise.
    void plug_now(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id, qmp::Reply reply);
    void unplug_now(std::vector<uint32_t> const& indexes, qmp::Reply reply);
    void on_ost(uint32_t index, uint32_t event, uint32_t status);
    void on_ejected(uint32_t index);
    void check_ejected(uint32_t index, std::chrono::steady_clock::time_point deadline);
    void on_cpu_state(uint32_t index, bool online);
    void arm_hotplug_timer();
    void check_hotplug_deadlines();
    qmp::Json slot_json(uint32_t index) const; // {"device"?: id, "path": qom-path}
    // Whether the VM is ending. Takes m_mutex, so call it rather than reply under that lock: a reply runs
    // the client's next request, which may take it again.
    bool exit_requested() const;

    void vcpu_failed(uint32_t vcpu_id, std::string const& reason) override;
    void vcpu_shutdown(uint32_t vcpu_id) override;
    void vcpu_paused(uint32_t vcpu_id) override;
    void vcpu_stopped(uint32_t vcpu_id) override;

    qmp::RunState run_state() const override { return m_run_state; }
    std::vector<qmp::CpuSlot> cpu_slots() const override;
    bool has_dies() const override { return m_config.smp.topology.dies > 1; }
    std::string cpu_type() const override { return "host-x86_64-cpu"; }
    void stop(qmp::Reply reply) override;
    void cont(qmp::Reply reply) override;
    void system_reset(qmp::Reply reply) override;
    void system_powerdown(qmp::Reply reply) override;
    void quit(qmp::Reply reply) override;
    CpuTopology topology() const override;
    bool cpu_hotplug_enabled() const override { return m_config.hotplug; }
    void plug_cpus(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id, qmp::Reply reply) override;
    void unplug_cpus(std::vector<uint32_t> const& indexes, qmp::Reply reply) override;
    void cpuhp(qmp::CpuhpRequest const& request, qmp::Reply reply) override;

    MachineConfig m_config;
    // Destruction runs bottom-up: vCPU threads stop first, then vCPU and VM fds close, then RAM is unmapped.
    Kvm m_kvm;
    GuestMemory m_memory;
    Vm m_vm;
    IoBus m_io_bus { "pio" };
    IoBus m_mmio_bus { "mmio" };
    std::shared_ptr<Serial16550> m_serial;
    std::shared_ptr<AcpiPm> m_pm;
    // What the guest makes the VMM log, each kind limited (guest_log.hpp).
    struct {
        GuestLogLimit sleep_type, unknown_event, hotplug;
    } m_guest_log;
    std::shared_ptr<CpuHotplugDevice> m_cpu_hotplug; // with --hotplug
    uint32_t m_boot_entry { 0 };
    uint32_t m_boot_start_info { 0 };
    uint64_t m_rsdp { 0 };
    std::vector<uint32_t> m_apic_ids;      // of every possible CPU, by index
    std::unique_ptr<BootObserver> m_boot;
    // One per possible CPU, by index. KVM cannot destroy a vCPU, so an unplugged slot keeps its Vcpu
    // (parked: no thread) and a re-plug reuses it from its power-on state.
    struct Slot {
        enum class Op { None, Plugging, Unplugging, Ejecting };
        std::unique_ptr<Vcpu> vcpu;
        VcpuState power_on;                   // as KVM created it
        std::unique_ptr<VcpuThread> thread;   // while plugged
        std::string qom_path;                 // empty while absent
        std::optional<std::string> device_id; // device_add's id
        Op op { Op::None };
        std::chrono::steady_clock::time_point deadline; // of Plugging and Unplugging
        // Where the guest last reported the CPU: CPU_ONLINE/CPU_OFFLINE go out only when it changes on a
        // plugged slot, so a guest cannot make up events. Elsewhere: an operation stopped between the two.
        // The boot CPU is online from the start.
        enum class GuestView { Offline, Online, Elsewhere };
        GuestView guest_view { GuestView::Offline };
        // _OST writes (event, status) that came while the ejected vCPU was stopping: QEMU removes the
        // device inside the eject write, so its DEVICE_DELETED always precedes them. They follow ours.
        std::vector<std::pair<uint32_t, uint32_t>> held_ost;
        bool present() const { return !qom_path.empty(); }
    };
    std::vector<Slot> m_slots;
    // Guards the slots' thread pointers, which the io thread sets and clears and run()'s teardown on the
    // main thread reads; everything else about the slots belongs to the io thread (and to create()).
    mutable std::mutex m_slots_mutex;
    bool m_tearing_down { false }; // guarded by m_slots_mutex: run() is stopping the vCPU threads
    std::vector<kvm_cpuid_entry2> m_supported_cpuid;
    std::atomic<uint32_t> m_tsc_khz { 0 };
    uint64_t m_anonymous_devices { 0 }; // /machine/peripheral-anon/device[N]
    std::array<kvm_irqchip, 3> m_irqchip_power_on {}; // PIC master, PIC slave, IOAPIC
    std::vector<uint8_t> m_kernel_file;    // --kernel's bytes, kept for system_reset

    boost::asio::io_context m_io;
    std::thread m_io_thread;
    qmp::CommandTable m_commands;
    std::unique_ptr<qmp::Server> m_qmp; // after m_io: its sockets belong to that context

    // io thread only:
    qmp::RunState m_run_state { qmp::RunState::Prelaunch };
    std::deque<std::function<void(Done)>> m_control_queue;
    bool m_control_busy { true }; // held until the guest has started, so run control waits for it
    std::function<void(std::optional<std::string>)> m_pause_done; // a pause in progress
    std::chrono::steady_clock::time_point m_pause_deadline;
    boost::asio::steady_timer m_pause_timer { m_io };
    boost::asio::steady_timer m_hotplug_timer { m_io };
    bool m_hotplug_timer_armed { false };
    std::unique_ptr<GuestChannel> m_guest; // the status port and the control page

    mutable std::mutex m_mutex; // guards m_exit and m_qmp_client_seen
    std::condition_variable m_exit_cv;
    std::optional<ExitRequest> m_exit;
    bool m_qmp_client_seen { false }; // for --qmp ...,wait=on
};

} // namespace vmm
