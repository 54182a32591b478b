// Machine: one VM, wired in one place. create() builds the KVM objects, memory and devices, then the
// machine's parts, and loads the kernel; run() starts the threads and blocks until the VM ends, returning
// vmm's exit code. The parts, each with its own state and lock (docs/architecture.md):
// - CpuManager: the CPU slots, vCPUs and their threads, pause/resume, hot-plug and its register block;
// - GuestChannel: the status port and the guest's control page;
// - BootObserver: the timeline and the boot report;
// - RunControl: the exit request, the run state and the run-control queue.
// Machine owns what they share (KVM, RAM, buses, devices, the io thread, the QMP server), routes each
// part's callbacks to the others, and is the QMP backend, delegating each command to its part.
#pragma once

#include "boot_observer.hpp"
#include "config.hpp"
#include "cpu_manager.hpp"
#include "devices/acpi_pm.hpp"
#include "devices/io_bus.hpp"
#include "devices/legacy.hpp"
#include "devices/serial.hpp"
#include "devices/serial_input.hpp"
#include "exit_request.hpp"
#include "guest_channel.hpp"
#include "guest_log.hpp"
#include "kvm/kvm.hpp"
#include "memory/guest_memory.hpp"
#include "qmp/commands.hpp"
#include "qmp/server.hpp"
#include "run_control.hpp"

#include <boost/asio/io_context.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vmm {

// --kernel's and --initrd's bytes, read once before the machine is built: the guest's command line depends on
// the kernel's kind, and system_reset boots the same files even if they changed or went away since.
struct KernelFiles {
    std::vector<uint8_t> kernel; // empty: the embedded guest
    std::vector<uint8_t> initrd;
    bool is_linux { false };     // a bzImage, or a PVH ELF with Linux's notes (a vmlinux)
};

class Machine final : private qmp::Backend {
public:
    static cpuplug::Result<std::unique_ptr<Machine>, std::string> create(MachineConfig const& config);
    ~Machine() override;

    // Runs the VM until it ends; returns the exit code. Call once.
    int run();
    // Thread-safe; the first request wins.
    void request_exit(ExitRequest request) { m_run->request_exit(std::move(request)); }
    boost::asio::io_context& io_context() { return m_io; }
    BootTimeline timeline() const { return m_boot->timeline(); }

private:
    explicit Machine(MachineConfig const& config, Kvm kvm, GuestMemory memory, Vm vm, KernelFiles kernel);
    void wire_parts();
    cpuplug::Result<void, std::string> set_up_devices();
    cpuplug::Result<void, std::string> build_acpi();
    cpuplug::Result<void, std::string> load_kernel();
    cpuplug::Result<void, std::string> set_up_qmp();
    std::string guest_cmdline() const;
    void emit(std::string const& name, std::optional<qmp::Json> data = std::nullopt);
    bool start_guest(); // false when the VM ended before it could start
    // system_reset's work, on the io thread with every vCPU paused.
    cpuplug::Result<void, std::string> reset_machine();

    // qmp::Backend: each command goes to the part it concerns, on the io thread.
    qmp::RunState run_state() const override { return m_run->state(); }
    std::vector<qmp::CpuSlot> cpu_slots() const override { return m_cpus->slots(); }
    bool has_dies() const override { return m_cpus->has_dies(); }
    std::string cpu_type() const override { return "host-x86_64-cpu"; }
    void stop(qmp::Reply reply) override { m_run->stop(std::move(reply)); }
    void cont(qmp::Reply reply) override { m_run->cont(std::move(reply)); }
    void system_reset(qmp::Reply reply) override { m_run->system_reset(std::move(reply)); }
    void system_powerdown(qmp::Reply reply) override { m_run->system_powerdown(std::move(reply)); }
    void quit(qmp::Reply reply) override { m_run->quit(std::move(reply)); }
    CpuTopology topology() const override { return m_config.smp.topology; }
    bool cpu_hotplug_enabled() const override { return m_config.hotplug; }
    void plug_cpus(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id, qmp::Reply reply) override;
    void unplug_cpus(std::vector<uint32_t> const& indexes, qmp::Reply reply) override;
    void cpuhp(qmp::CpuhpRequest const& request, qmp::Reply reply) override
    {
        cpuhp_over_channel(*m_guest, request, std::move(reply));
    }
    void read_cpu_registers(std::vector<uint32_t> const& indexes, RegistersReply reply) override;
    std::span<uint8_t const> guest_ram(uint64_t address, uint64_t length) const override
    {
        return m_memory.ram_from(address, length);
    }
    uint64_t guest_ram_size() const override { return m_memory.ram_bytes(); }

    MachineConfig m_config;
    // Destruction runs bottom-up: the parts go first (the vCPU threads were stopped in the destructor's
    // body), then the QMP server and the io_context whose timers and sockets they used, then the VM's fds,
    // then RAM is unmapped.
    Kvm m_kvm;
    GuestMemory m_memory;
    Vm m_vm;
    IoBus m_io_bus { "pio" };
    IoBus m_mmio_bus { "mmio" };
    std::shared_ptr<Serial16550> m_serial;
    std::shared_ptr<AcpiPm> m_pm;
    std::shared_ptr<PciConfigPorts> m_pci;
    std::shared_ptr<I8042> m_i8042;
    std::shared_ptr<Cmos> m_cmos;
    GuestLogLimit m_log_sleep_type;
    BootEntry m_boot_entry;
    uint64_t m_rsdp { 0 };
    std::array<kvm_irqchip, 3> m_irqchip_power_on {}; // PIC master, PIC slave, IOAPIC
    KernelFiles m_kernel;                             // kept for system_reset
    kvm_pit_state2 m_pit_power_on {};

    boost::asio::io_context m_io;
    std::thread m_io_thread;
    qmp::CommandTable m_commands;
    std::unique_ptr<qmp::Server> m_qmp; // after m_io: its sockets belong to that context
    std::unique_ptr<SerialInput> m_serial_input; // after m_io: its descriptor and timer belong to it

    std::unique_ptr<RunControl> m_run;
    std::unique_ptr<CpuManager> m_cpus;
    std::unique_ptr<BootObserver> m_boot;
    std::unique_ptr<GuestChannel> m_guest;
};

} // namespace vmm
