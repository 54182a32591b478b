// The test world for the hotplug core: 8 CPUs as threads, a recorder behind every test state's callbacks
// (which also checks where each callback runs and that startup/teardown alternate), and helpers that
// turn the trace into the sequence of steps a test expects.
#pragma once

#include "thread_platform.hpp"

#include <cpuplug/cpuhp.hpp>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace test_support {

using cpuplug::CpuhpState;

inline constexpr uint32_t TEST_CPUS = 8;

class Recorder {
public:
    struct Hook {
        Recorder* recorder;
        CpuhpState state;
    };

    // Programmed failure of one callback (not fail injection: the callback itself returns `error`).
    void fail_startup(uint32_t cpu, CpuhpState state, int error)
    {
        std::lock_guard lock(m_mutex);
        m_startup_errors[{ cpu, state }] = error;
    }
    void fail_teardown(uint32_t cpu, CpuhpState state, int error)
    {
        std::lock_guard lock(m_mutex);
        m_teardown_errors[{ cpu, state }] = error;
    }
    bool is_up(uint32_t cpu, CpuhpState state) const { return m_up[cpu][cpuplug::to_index(state)].load(); }
    int violations() const { return m_violations.load(); }
    std::vector<std::string> violation_log() const
    {
        std::lock_guard lock(m_mutex);
        return m_violation_log;
    }

    static int startup(uint32_t cpu, void* data) { return static_cast<Hook*>(data)->recorder->call(cpu, *static_cast<Hook*>(data), true); }
    static int teardown(uint32_t cpu, void* data) { return static_cast<Hook*>(data)->recorder->call(cpu, *static_cast<Hook*>(data), false); }

private:
    int call(uint32_t cpu, Hook const& hook, bool startup)
    {
        auto section = cpuplug::section_of(hook.state);
        bool on_ap = cpuplug::is_ap_state(hook.state);
        // Where it runs: PREPARE on the control CPU (0 here), STARTING and ONLINE on the CPU itself;
        // STARTING with interrupts off.
        if (on_ap && ThreadPlatform::current_cpu() != cpu)
            violation("AP state ran on another CPU", cpu, hook.state);
        if (!on_ap && ThreadPlatform::current_cpu() != 0)
            violation("control-CPU state ran on an AP", cpu, hook.state);
        if ((section == cpuplug::Section::Starting) != ThreadPlatform::irqs_disabled())
            violation("interrupt state wrong for the section", cpu, hook.state);
        auto& up = m_up[cpu][cpuplug::to_index(hook.state)];
        int error = 0;
        {
            std::lock_guard lock(m_mutex);
            auto& errors = startup ? m_startup_errors : m_teardown_errors;
            if (auto it = errors.find({ cpu, hook.state }); it != errors.end())
                error = it->second;
        }
        if (error != 0)
            return error; // a failing step cleans up after itself: nothing changes
        if (startup ? up.exchange(true) : !up.exchange(false))
            violation(startup ? "startup of a state already up" : "teardown of a state not up", cpu, hook.state);
        return 0;
    }
    void violation(char const* what, uint32_t cpu, CpuhpState state)
    {
        m_violations.fetch_add(1);
        std::lock_guard lock(m_mutex);
        m_violation_log.push_back(std::string(what) + " (cpu " + std::to_string(cpu) + ", state "
            + std::to_string(cpuplug::to_index(state)) + ")");
    }

    mutable std::mutex m_mutex; // guards the maps and the log
    std::map<std::pair<uint32_t, CpuhpState>, int> m_startup_errors, m_teardown_errors;
    std::array<std::array<std::atomic<bool>, cpuplug::CPUHP_STATE_COUNT>, TEST_CPUS> m_up {};
    std::atomic<int> m_violations { 0 };
    std::vector<std::string> m_violation_log;
};

// A step as the trace shows it: which state, which direction, and whether it failed.
struct Step {
    uint16_t state;
    bool startup;
    bool failed;
    bool operator==(Step const&) const = default;
};

inline std::string describe(std::vector<Step> const& steps)
{
    std::string text;
    for (auto const& s : steps)
        text += std::to_string(s.state) + (s.startup ? "+" : "-") + (s.failed ? "!" : "") + " ";
    return text;
}

class CpuhpFixture {
public:
    // The test states with callbacks, by section: a static PREPARE state, a dynamic PREPARE slot, both
    // STARTING states, two dynamic ONLINE slots.
    static constexpr CpuhpState PREPARE_DYN = CpuhpState::BpPrepareDyn;
    static constexpr CpuhpState ONLINE_DYN_A = CpuhpState::ApOnlineDyn;
    static constexpr CpuhpState ONLINE_DYN_B = CpuhpState::ApOnlineDyn + 1;

    explicit CpuhpFixture(cpuplug::CpuhpTimeouts timeouts = short_timeouts())
        : platform(TEST_CPUS)
        , hotplug(std::make_unique<cpuplug::Cpuhp>(platform, timeouts))
    {
        platform.attach(*hotplug);
        for (uint32_t cpu = 0; cpu < TEST_CPUS; ++cpu) {
            hotplug->set_possible(cpu);
            hotplug->set_present(cpu, true);
        }
        hotplug->boot_cpu_online(0);
        install(CpuhpState::PercpuPrepare, "percpu:prepare", true);
        install(CpuhpState::BpPrepareDyn, "test:prepare", true);
        install(CpuhpState::ApicStarting, "apic:starting", true);
        install(CpuhpState::TscStarting, "tsc:starting", true);
        install(CpuhpState::ApOnlineDyn, "test:online_a", true);
        install(CpuhpState::ApOnlineDyn, "test:online_b", true);
        platform.clear_traces();
    }
    ~CpuhpFixture() { platform.shutdown(); }

    static cpuplug::CpuhpTimeouts short_timeouts()
    {
        cpuplug::CpuhpTimeouts t;
        t.alive_ns = 300'000'000;
        t.online_ns = 2'000'000'000;
        t.dead_ns = 2'000'000'000;
        return t;
    }

    // Registers recorder callbacks; for a dynamic request the hook is told the slot it will get.
    int install(CpuhpState state, char const* name, bool invoke)
    {
        CpuhpState slot = state;
        if (state == CpuhpState::BpPrepareDyn || state == CpuhpState::ApOnlineDyn)
            while (hotplug->state_installed(slot))
                slot = slot + 1;
        auto& hook = *hooks.emplace_back(std::make_unique<Recorder::Hook>(Recorder::Hook { &recorder, slot }));
        int result = invoke ? hotplug->setup_state(state, name, Recorder::startup, Recorder::teardown, &hook)
                            : hotplug->setup_state_nocalls(state, name, Recorder::startup, Recorder::teardown, &hook);
        if (result > 0 && result != cpuplug::to_index(slot))
            throw std::runtime_error("dynamic slot other than expected");
        return result;
    }

    // The steps of `cpu` from the trace, in the order they were entered (cpu:bringup and cpu:teardown
    // contain the AP's STARTING and DYING steps), each marked failed from its matching exit.
    std::vector<Step> steps(uint32_t cpu) const
    {
        std::vector<Step> result;
        std::vector<size_t> open;
        for (auto const& t : platform.traces()) {
            if (t.cpu != cpu || t.instance != nullptr)
                continue;
            if (t.phase == cpuplug::TraceEvent::Phase::Enter) {
                open.push_back(result.size());
                result.push_back({ cpuplug::to_index(t.state), t.bringup, false });
                continue;
            }
            for (auto it = open.rbegin(); it != open.rend(); ++it) {
                auto& step = result[*it];
                if (step.state == cpuplug::to_index(t.state) && step.startup == t.bringup) {
                    step.failed = t.result != 0;
                    open.erase(std::next(it).base());
                    break;
                }
            }
        }
        return result;
    }

    // States that have a startup (or teardown) callback, core ones included, in order.
    std::vector<uint16_t> with_callback(bool startup) const
    {
        std::vector<uint16_t> states;
        for (uint16_t s : { cpuplug::to_index(CpuhpState::PercpuPrepare), cpuplug::to_index(PREPARE_DYN),
                 cpuplug::to_index(CpuhpState::KickAp), cpuplug::to_index(CpuhpState::BringupCpu),
                 cpuplug::to_index(CpuhpState::ApicStarting), cpuplug::to_index(CpuhpState::TscStarting),
                 cpuplug::to_index(CpuhpState::TeardownCpu), cpuplug::to_index(ONLINE_DYN_A),
                 cpuplug::to_index(ONLINE_DYN_B), cpuplug::to_index(CpuhpState::ApActive) }) {
            bool core_up_only = s == cpuplug::to_index(CpuhpState::KickAp) || s == cpuplug::to_index(CpuhpState::BringupCpu);
            bool core_down_only = s == cpuplug::to_index(CpuhpState::TeardownCpu);
            if (startup ? !core_down_only : !core_up_only)
                states.push_back(s);
        }
        return states;
    }

    // The walk from `from` to `to` (exclusive of `from`), as Steps.
    std::vector<Step> walk(uint16_t from, uint16_t to) const
    {
        std::vector<Step> result;
        if (to > from) {
            for (auto s : with_callback(true))
                if (s > from && s <= to)
                    result.push_back({ s, true, false });
        } else {
            auto downs = with_callback(false);
            for (auto it = downs.rbegin(); it != downs.rend(); ++it)
                if (*it <= from && *it > to)
                    result.push_back({ *it, false, false });
        }
        return result;
    }

    ThreadPlatform platform;
    std::unique_ptr<cpuplug::Cpuhp> hotplug;
    Recorder recorder;
    std::vector<std::unique_ptr<Recorder::Hook>> hooks;
};

} // namespace test_support
