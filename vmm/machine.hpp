// Machine: one VM, wired in one place. create() builds KVM objects, memory, devices and vCPUs and loads
// the kernel; run() starts the threads and blocks until the VM ends, returning vmm's exit code.
#pragma once

#include "boot_report.hpp"
#include "config.hpp"
#include "cpu/vcpu_thread.hpp"
#include "devices/acpi_pm.hpp"
#include "devices/io_bus.hpp"
#include "devices/serial.hpp"
#include "devices/status_port.hpp"
#include "kvm/kvm.hpp"
#include "memory/guest_memory.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <condition_variable>
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
    std::string reason;
};

// Boot milestones as seen by the host, for the timing log and later the boot report.
struct BootTimeline {
    using TimePoint = std::chrono::steady_clock::time_point;
    TimePoint process_start, vm_created, vcpus_created, guest_started;
    std::optional<TimePoint> kernel_entry, boot_done;
};

class Machine final : private VcpuThreadEvents {
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
    std::string guest_cmdline() const;
    void on_status_event(uint32_t event, std::chrono::steady_clock::time_point when);
    void on_cpu_event(uint32_t event, std::chrono::steady_clock::time_point when);
    void write_boot_report(std::optional<std::string> const& error);
    void log_timeline() const;

    void vcpu_failed(uint32_t vcpu_id, std::string const& reason) override;
    void vcpu_shutdown(uint32_t vcpu_id) override;

    MachineConfig m_config;
    // Destruction runs bottom-up: vCPU threads stop first, then vCPU and VM fds close, then RAM is unmapped.
    Kvm m_kvm;
    GuestMemory m_memory;
    Vm m_vm;
    IoBus m_io_bus { "pio" };
    IoBus m_mmio_bus { "mmio" };
    std::shared_ptr<Serial16550> m_serial;
    std::shared_ptr<AcpiPm> m_pm;
    std::shared_ptr<StatusPort> m_status;
    uint32_t m_boot_entry { 0 };
    uint32_t m_boot_start_info { 0 };
    uint64_t m_rsdp { 0 };
    std::vector<uint32_t> m_apic_ids;      // of every possible CPU, by index
    std::unique_ptr<BootReport> m_report;
    bool m_report_written { false };       // guarded by m_mutex
    std::vector<std::unique_ptr<Vcpu>> m_vcpus;
    std::vector<std::unique_ptr<VcpuThread>> m_threads;

    boost::asio::io_context m_io;
    std::thread m_io_thread;

    mutable std::mutex m_mutex; // guards m_exit and m_timeline
    std::condition_variable m_exit_cv;
    std::optional<ExitRequest> m_exit;
    BootTimeline m_timeline;
};

} // namespace vmm
