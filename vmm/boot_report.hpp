// BootReport: the host's view of a boot, from the status port's time-stamped events: when each CPU was
// kicked, came alive and went online, and how long each phase took. Written as JSON (--boot-report).
#pragma once

#include <guest/abi/platform.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vmm {

class BootReport {
public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    struct Settings {
        uint32_t vcpus { 1 };
        bool parallel { true };
        uint64_t init_delay_us { platform::INIT_DELAY_US };
    };

    BootReport(TimePoint process_start, std::vector<uint32_t> apic_ids, Settings settings);

    void vcpus_creating(TimePoint when);
    void vcpus_created(TimePoint when);
    void guest_started(TimePoint when);
    void kernel_entry(TimePoint when);
    void boot_done(TimePoint when);
    void kicked(uint32_t cpu, TimePoint when);
    void alive(uint32_t cpu, TimePoint when);
    void online(uint32_t cpu, TimePoint when);
    void offline(uint32_t cpu, TimePoint when);
    void step_failed(uint32_t cpu, uint8_t state, bool down);
    void stopped(uint32_t cpu, uint8_t state);

    bool done() const;
    uint32_t online_count() const;
    // The JSON document; `error` set when the boot ended some other way.
    std::string json(std::optional<std::string> const& error = std::nullopt) const;

private:
    struct Cpu {
        uint32_t apic_id;
        std::optional<TimePoint> kicked, alive, online;
        bool is_online { false };
        std::optional<uint8_t> failed_step;
        std::optional<uint8_t> stopped_at;
    };
    double ms(TimePoint when) const;

    mutable std::mutex m_mutex; // guards everything below: events come from every vCPU thread
    TimePoint m_process_start;
    Settings m_settings;
    std::vector<Cpu> m_cpus;
    std::optional<TimePoint> m_vcpus_creating, m_vcpus_created, m_guest_started, m_kernel_entry, m_boot_done;
};

} // namespace vmm
