// BootObserver: the host's record of a boot. It takes the set-up milestones from the main thread and the
// guest's status-port reports (milestones, CPU bring-up events) from vCPU threads, keeps the timeline and
// the boot report (--boot-report), and writes the report once: when the guest says the boot is done, or
// with the reason when the VM ends before that.
#pragma once

#include "boot_report.hpp"
#include "config.hpp"
#include "guest_log.hpp"

#include <guest/abi/status_port.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vmm {

// Boot milestones as seen by the host, for the timing log and the boot report.
struct BootTimeline {
    using TimePoint = std::chrono::steady_clock::time_point;
    TimePoint process_start, vm_created, vcpus_created, guest_started;
    std::optional<TimePoint> kernel_entry, boot_done;
};

class BootObserver {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    // `guest_cmdline`: what the guest is booted with (its bring-up settings go into the report);
    // `present_apic_ids`: the boot CPUs'; `flush_console` runs before a report written to stdout.
    BootObserver(MachineConfig const& config, std::string const& guest_cmdline, std::vector<uint32_t> present_apic_ids,
        std::function<void()> flush_console);

    // Set-up milestones, main thread.
    void vm_created(TimePoint when);
    void vcpus_creating(TimePoint when);
    void vcpus_created(TimePoint when);
    void guest_started(TimePoint when);

    // The guest's reports, on the vCPU thread that wrote the status port. BootDone writes the report.
    void milestone(status_port::Milestone milestone, TimePoint when);
    void cpu_event(status_port::CpuEvent event, uint32_t cpu, uint8_t step, TimePoint when);

    // The VM has ended (main thread, after every vCPU stopped): the report with `reason` if the boot did
    // not finish, then the timeline to the log.
    void vm_ended(std::string const& reason);
    BootTimeline timeline() const;

private:
    void write_report(std::optional<std::string> const& error);

    std::optional<std::string> const m_report_path;
    std::function<void()> const m_flush_console;
    BootReport m_report; // thread-safe on its own
    GuestLogLimit m_step_failed;

    mutable std::mutex m_mutex; // guards m_timeline and m_report_written; never held across a call out
    BootTimeline m_timeline;
    bool m_report_written { false };
};

} // namespace vmm
