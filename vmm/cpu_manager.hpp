// CpuManager: the possible CPUs of the machine, one slot each. It creates vCPUs (KVM cannot destroy one, so
// an unplugged slot keeps its vCPU parked for a later plug), runs their threads, pauses and resumes them
// for run control, and carries out hot-plug and hot-unplug with the ACPI CPU hot-plug register block,
// which it owns (docs/hotplug.md). Threading rules: docs/architecture.md.
#pragma once

#include "arch/x86_64/regs.hpp"
#include "config.hpp"
#include "cpu/exit.hpp"
#include "cpu/vcpu_state.hpp"
#include "cpu/vcpu_thread.hpp"
#include "devices/cpu_hotplug.hpp"
#include "exit_request.hpp"
#include "guest_log.hpp"
#include "kvm/kvm.hpp"
#include "qmp/commands.hpp"
#include "qmp/cpu_dump.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <guest/abi/status_port.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vmm {

class CpuManager final : private VcpuThreadEvents {
public:
    struct Hooks {
        // A QMP event; any thread (the server's broadcast is thread-safe).
        std::function<void(std::string const& name, std::optional<qmp::Json> data)> emit;
        // A vCPU failed or the guest shut down; on that vCPU's thread.
        std::function<void(ExitRequest request)> request_exit;
        // Whether the VM is ending, so a plug is refused; io thread.
        std::function<bool()> vm_ending;
        // GPE0 bit cpu_hotplug::GPE_BIT, then SCI: the register block's interrupt.
        std::function<void()> raise_gpe;
    };

    // Boot CPUs are slots 0 to smp.cpus - 1, present from the start. `buses` and `vm` outlive the manager.
    CpuManager(MachineConfig const& config, Kvm const& kvm, Vm& vm, Buses buses, boost::asio::io_context& io, Hooks hooks);
    ~CpuManager() override { shut_down(); }

    // --- set-up, main thread, before any vCPU thread runs
    std::vector<uint32_t> const& apic_ids() const { return m_apic_ids; }
    cpuplug::Result<void, std::string> check_limits() const;
    // The register block, for the machine to put on its bus; null without --hotplug.
    std::shared_ptr<CpuHotplugDevice> const& hotplug_device() const { return m_hotplug; }
    cpuplug::Result<void, std::string> create_boot_vcpus();
    // The boot vCPU's registers for the kernel's entry point, PVH or Linux 64-bit (also after a reset).
    cpuplug::Result<void, std::string> set_boot_entry(BootEntry const& entry);
    // Whether a CPU is plugged (the main thread at set-up; the io thread later).
    bool present(uint32_t index) const { return m_slots[index].present(); }

    // --- run(), main thread
    // The application processors' threads, each in KVM_RUN before the boot vCPU runs (KVM queues an
    // INIT/SIPI for a vCPU that is not running yet, but one that does not exist would lose it).
    void start_application_processors();
    void start_boot_processor();
    // Teardown: stops every vCPU thread; false if one did not stop within a second. From here on the io
    // thread no longer reaps threads (a late plug's thread is left to the destructor).
    bool stop_all();
    // The machine's destructor, before the io thread stops: every vCPU thread stopped and freed (each
    // join bounded). The slots stay, for handlers the io thread may still run.
    void shut_down();

    // --- io thread
    // Pauses every started vCPU (all or nothing: after a timeout the ones that stopped run again); `done`
    // runs on the io thread with the error, if any.
    void pause_all(std::function<void(std::optional<std::string> error)> done);
    void resume_all();
    // The registers of present slots `indexes`, in that order, for the debugging commands. The vCPUs among
    // them that run the guest are paused for the read and resumed after it, and only those: one already
    // paused (the VM is stopped, a guest reset is on its way) or not started stays as it is. `done` runs on
    // the io thread, at once when nothing had to stop; a vCPU that will not stop within a second fails it.
    // One read at a time (run control queues them).
    using RegistersDone = std::function<void(cpuplug::Result<std::vector<qmp::CpuRegisters>, std::string>)>;
    void read_registers(std::vector<uint32_t> const& indexes, RegistersDone done);
    // Plugs absent slots (`id` for a single CPU); `paused`: the VM is stopped and the new vCPUs wait too.
    cpuplug::Result<void, std::string> plug(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id,
        bool paused);
    // Asks the guest to release present slots; DEVICE_DELETED follows per CPU.
    cpuplug::Result<void, std::string> unplug(std::vector<uint32_t> const& indexes);
    std::vector<qmp::CpuSlot> slots() const;
    bool has_dies() const { return m_topology.dies > 1; }
    // system_reset, with every vCPU paused: operations in flight are dropped with the guest that ran
    // them, plugged CPUs stay plugged; then each running vCPU back to its power-on state.
    void forget_operations();
    cpuplug::Result<void, std::string> restore_power_on(BootEntry const& entry);

    // --- any thread: the guest's report about a CPU (status port), handled on the io thread.
    void guest_reported(status_port::CpuEvent event, uint32_t index);

private:
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

    // A new vCPU for slot `index`: created, CPUID set, its power-on state captured. Any thread.
    cpuplug::Result<std::unique_ptr<Vcpu>, std::string> make_vcpu(uint32_t index, VcpuState& power_on);
    std::unique_ptr<VcpuThread> make_thread(Vcpu& vcpu);
    void check_paused(bool rekick);
    void check_inspection(bool rekick);

    // cpu_manager_hotplug.cpp, io thread.
    void on_ost(uint32_t index, uint32_t event, uint32_t status);
    void on_ejected(uint32_t index);
    void check_ejected(uint32_t index, std::chrono::steady_clock::time_point deadline);
    void on_cpu_state(uint32_t index, bool online);
    void arm_hotplug_timer();
    void check_hotplug_deadlines();
    qmp::Json slot_json(uint32_t index) const; // {"device"?: id, "path": qom-path}

    void vcpu_failed(uint32_t vcpu_id, std::string const& reason) override;
    void vcpu_shutdown(uint32_t vcpu_id) override;
    void vcpu_paused(uint32_t vcpu_id) override;
    void vcpu_stopped(uint32_t vcpu_id) override;

    CpuTopology const m_topology;
    uint32_t const m_boot_cpus;
    std::chrono::milliseconds const m_unplug_timeout;
    Kvm const& m_kvm;
    Vm& m_vm;
    Buses const m_buses;
    boost::asio::io_context& m_io;
    Hooks const m_hooks;
    std::vector<uint32_t> m_apic_ids; // of every possible CPU, by index
    std::vector<kvm_cpuid_entry2> m_supported_cpuid; // set before any vCPU is created
    bool m_tsc_deadline { false };                   // offer the TSC-deadline timer (set with m_supported_cpuid)
    std::atomic<uint32_t> m_tsc_khz { 0 };
    std::shared_ptr<CpuHotplugDevice> m_hotplug; // with --hotplug
    GuestLogLimit m_log_hotplug, m_log_cpu_state; // atomic

    std::vector<Slot> m_slots;
    // Guards the slots' thread pointers, which the io thread sets and clears and the main thread's
    // teardown reads, and m_tearing_down; everything else about the slots belongs to the io thread (and to
    // the main thread during set-up, before the io thread runs).
    mutable std::mutex m_mutex;
    bool m_tearing_down { false };

    // io thread only:
    uint64_t m_anonymous_devices { 0 }; // /machine/peripheral-anon/device[N]
    std::function<void(std::optional<std::string>)> m_pause_done; // a pause in progress
    std::chrono::steady_clock::time_point m_pause_deadline;
    boost::asio::steady_timer m_pause_timer;
    boost::asio::steady_timer m_hotplug_timer;
    // A register read in progress: the slots to read, those it paused, and whom to tell.
    struct Inspection {
        std::vector<uint32_t> indexes;
        std::vector<uint32_t> paused;
        RegistersDone done;
        std::chrono::steady_clock::time_point deadline;
    };
    std::optional<Inspection> m_inspection;
    boost::asio::steady_timer m_inspection_timer;
    bool m_hotplug_timer_armed { false };
};

} // namespace vmm
