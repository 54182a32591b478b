// BootObserver: the timeline and the boot report, fed from the main thread and from vCPU threads.
#include "boot_observer.hpp"

#include <guest/abi/platform.h>
#include <guest/lib/cmdline.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <spdlog/spdlog.h>

namespace vmm {

namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b)
{
    return std::chrono::duration<double, std::milli>(b - a).count();
}

BootReport::Settings report_settings(MachineConfig const& config, std::string const& cmdline)
{
    // What the guest will really use: the last occurrence on its command line wins, as in Linux.
    guest::Cmdline line(guest::StringView(cmdline.data(), cmdline.size()));
    BootReport::Settings settings;
    settings.vcpus = config.smp.cpus;
    settings.parallel = line.get_bool("cpuhp.parallel", true);
    settings.init_delay_us = line.get_u64("cpu_init_udelay", platform::INIT_DELAY_US);
    return settings;
}

} // namespace

BootObserver::BootObserver(MachineConfig const& config, std::string const& guest_cmdline,
    std::vector<uint32_t> present_apic_ids, std::function<void()> flush_console)
    : m_report_path(config.boot_report)
    , m_flush_console(std::move(flush_console))
    , m_report(config.process_start, std::move(present_apic_ids), report_settings(config, guest_cmdline))
{
    m_timeline.process_start = config.process_start;
}

void BootObserver::vm_created(TimePoint when)
{
    std::lock_guard lock(m_mutex);
    m_timeline.vm_created = when;
}

void BootObserver::vcpus_creating(TimePoint when) { m_report.vcpus_creating(when); }

void BootObserver::vcpus_created(TimePoint when)
{
    {
        std::lock_guard lock(m_mutex);
        m_timeline.vcpus_created = when;
    }
    m_report.vcpus_created(when);
}

void BootObserver::guest_started(TimePoint when)
{
    {
        std::lock_guard lock(m_mutex);
        m_timeline.guest_started = when;
    }
    m_report.guest_started(when);
}

void BootObserver::milestone(status_port::Milestone milestone, TimePoint when)
{
    using status_port::Milestone;
    {
        std::lock_guard lock(m_mutex);
        if (milestone == Milestone::KernelEntry && !m_timeline.kernel_entry)
            m_timeline.kernel_entry = when;
        else if (milestone == Milestone::BootDone && !m_timeline.boot_done)
            m_timeline.boot_done = when;
    }
    if (milestone == Milestone::KernelEntry)
        m_report.kernel_entry(when);
    if (milestone == Milestone::BootDone) {
        m_report.boot_done(when);
        write_report(std::nullopt);
    }
}

void BootObserver::cpu_event(status_port::CpuEvent event, uint32_t cpu, uint8_t step, TimePoint when)
{
    using namespace status_port;
    uint8_t state = step & 0x3F;
    switch (event) {
    case CpuEvent::Kicked:
        m_report.kicked(cpu, when);
        break;
    case CpuEvent::Alive:
        m_report.alive(cpu, when);
        break;
    case CpuEvent::Online:
        m_report.online(cpu, when);
        break;
    case CpuEvent::Offline:
        m_report.offline(cpu, when);
        break;
    case CpuEvent::StepFailed:
        m_report.step_failed(cpu, state, (step & STEP_DOWN) != 0);
        VMM_GUEST_LOG(m_step_failed, info, "cpu {}: step {} failed going {}", cpu, state, (step & STEP_DOWN) ? "down" : "up");
        break;
    case CpuEvent::Stopped:
        m_report.stopped(cpu, state);
        break;
    case CpuEvent::Step:
        spdlog::debug("cpu {}: step {} {}{}", cpu, state, (step & STEP_DOWN) ? "down" : "up",
            (step & STEP_ROLLBACK) ? " (rollback)" : "");
        break;
    }
}

void BootObserver::write_report(std::optional<std::string> const& error)
{
    {
        std::lock_guard lock(m_mutex);
        if (m_report_written || !m_report_path)
            return;
        m_report_written = true;
    }
    std::string text = m_report.json(error) + "\n";
    if (*m_report_path == "-") {
        m_flush_console(); // keep the console's lines whole around the report
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return;
    }
    FILE* file = std::fopen(m_report_path->c_str(), "w");
    if (!file) {
        spdlog::error("cannot write the boot report to {}: {}", *m_report_path, std::strerror(errno));
        return;
    }
    std::fwrite(text.data(), 1, text.size(), file);
    std::fclose(file);
}

void BootObserver::vm_ended(std::string const& reason)
{
    if (!m_report.done())
        write_report(reason);
    auto t = timeline();
    auto start = t.process_start;
    spdlog::info("timeline: VM created {:.2f} ms, vCPUs ready {:.2f} ms, guest started {:.2f} ms", ms_between(start, t.vm_created),
        ms_between(start, t.vcpus_created), ms_between(start, t.guest_started));
    if (t.kernel_entry && t.boot_done)
        spdlog::info("timeline: kernel entry +{:.3f} ms, boot done +{:.3f} ms after the guest started (total {:.2f} ms)",
            ms_between(t.guest_started, *t.kernel_entry), ms_between(t.guest_started, *t.boot_done),
            ms_between(start, *t.boot_done));
}

BootTimeline BootObserver::timeline() const
{
    std::lock_guard lock(m_mutex);
    return m_timeline;
}

} // namespace vmm
