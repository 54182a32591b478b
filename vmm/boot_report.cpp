// BootReport: event bookkeeping under one mutex, and the JSON the benchmark and tests read.
#include "boot_report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace vmm {

BootReport::BootReport(TimePoint process_start, std::vector<uint32_t> apic_ids, Settings settings)
    : m_process_start(process_start)
    , m_settings(settings)
{
    for (auto id : apic_ids)
        m_cpus.push_back({ id, {}, {}, {}, false, {}, {} });
}

double BootReport::ms(TimePoint when) const
{
    return std::chrono::duration<double, std::milli>(when - m_process_start).count();
}

void BootReport::vcpus_creating(TimePoint when)
{
    std::lock_guard lock(m_mutex);
    m_vcpus_creating = when;
}

void BootReport::vcpus_created(TimePoint when)
{
    std::lock_guard lock(m_mutex);
    m_vcpus_created = when;
}

void BootReport::guest_started(TimePoint when)
{
    std::lock_guard lock(m_mutex);
    m_guest_started = when;
}

void BootReport::kernel_entry(TimePoint when)
{
    std::lock_guard lock(m_mutex);
    if (!m_kernel_entry)
        m_kernel_entry = when;
    // The boot CPU is online from its first kernel instruction.
    if (!m_cpus.empty() && !m_cpus[0].online) {
        m_cpus[0].online = when;
        m_cpus[0].is_online = true;
    }
}

void BootReport::boot_done(TimePoint when)
{
    std::lock_guard lock(m_mutex);
    if (!m_boot_done)
        m_boot_done = when;
}

void BootReport::kicked(uint32_t cpu, TimePoint when)
{
    std::lock_guard lock(m_mutex);
    if (cpu < m_cpus.size() && !m_cpus[cpu].kicked)
        m_cpus[cpu].kicked = when;
}

void BootReport::alive(uint32_t cpu, TimePoint when)
{
    std::lock_guard lock(m_mutex);
    if (cpu < m_cpus.size() && !m_cpus[cpu].alive)
        m_cpus[cpu].alive = when;
}

void BootReport::online(uint32_t cpu, TimePoint when)
{
    std::lock_guard lock(m_mutex);
    if (cpu >= m_cpus.size())
        return;
    if (!m_cpus[cpu].online)
        m_cpus[cpu].online = when;
    m_cpus[cpu].is_online = true;
    m_cpus[cpu].stopped_at.reset();
}

void BootReport::offline(uint32_t cpu, TimePoint)
{
    std::lock_guard lock(m_mutex);
    if (cpu < m_cpus.size()) {
        m_cpus[cpu].is_online = false;
        m_cpus[cpu].stopped_at = 0;
    }
}

void BootReport::step_failed(uint32_t cpu, uint8_t state, bool)
{
    std::lock_guard lock(m_mutex);
    if (cpu < m_cpus.size() && !m_cpus[cpu].failed_step)
        m_cpus[cpu].failed_step = state;
}

void BootReport::stopped(uint32_t cpu, uint8_t state)
{
    std::lock_guard lock(m_mutex);
    if (cpu < m_cpus.size())
        m_cpus[cpu].stopped_at = state;
}

bool BootReport::done() const
{
    std::lock_guard lock(m_mutex);
    return m_boot_done.has_value();
}

uint32_t BootReport::online_count() const
{
    std::lock_guard lock(m_mutex);
    return static_cast<uint32_t>(std::count_if(m_cpus.begin(), m_cpus.end(), [](Cpu const& c) { return c.is_online; }));
}

std::string BootReport::json(std::optional<std::string> const& error) const
{
    using nlohmann::json;
    std::lock_guard lock(m_mutex);
    auto opt_ms = [&](std::optional<TimePoint> const& t) -> json { return t ? json(ms(*t)) : json(nullptr); };
    auto span = [&](std::optional<TimePoint> const& a, std::optional<TimePoint> const& b) -> json {
        return a && b ? json(std::chrono::duration<double, std::milli>(*b - *a).count()) : json(nullptr);
    };

    std::optional<TimePoint> first_kick, last_online;
    uint32_t online = 0;
    json cpus = json::array();
    for (size_t i = 0; i < m_cpus.size(); ++i) {
        auto const& c = m_cpus[i];
        if (c.kicked && (!first_kick || *c.kicked < *first_kick))
            first_kick = c.kicked;
        if (c.is_online) {
            ++online;
            if (i != 0 && c.online && (!last_online || *c.online > *last_online))
                last_online = c.online;
        }
        json entry { { "index", i }, { "apic_id", c.apic_id }, { "kick_ms", opt_ms(c.kicked) },
            { "alive_ms", opt_ms(c.alive) }, { "online_ms", c.is_online ? opt_ms(c.online) : json(nullptr) },
            { "online", c.is_online } };
        if (c.failed_step)
            entry["failed_step"] = *c.failed_step;
        if (c.stopped_at)
            entry["state"] = *c.stopped_at;
        cpus.push_back(entry);
    }
    // All present CPUs online: when the last AP went online, or the boot CPU's entry with no APs.
    std::optional<TimePoint> all_online;
    if (online == m_cpus.size())
        all_online = last_online.has_value() ? last_online : m_kernel_entry;

    json report {
        { "vcpus", m_settings.vcpus },
        { "online", online },
        { "bringup", m_settings.parallel ? "parallel" : "serial" },
        { "init_delay_us", m_settings.init_delay_us },
        { "total_ms", opt_ms(all_online) },
        { "phases_ms",
            { { "vmm_setup", span(m_process_start, m_guest_started) },
                { "vcpu_create", span(m_vcpus_creating, m_vcpus_created) },
                { "guest_start_to_first_kick", span(m_guest_started, first_kick) },
                { "ap_bringup", span(first_kick, last_online) },
                { "guest_start_to_kernel_entry", span(m_guest_started, m_kernel_entry) },
                { "guest_start_to_boot_done", span(m_guest_started, m_boot_done) } } },
        { "boot", error ? "failed" : (m_boot_done ? "done" : "incomplete") },
        { "cpus", cpus },
    };
    if (error)
        report["error"] = *error;
    return report.dump(2);
}

} // namespace vmm
