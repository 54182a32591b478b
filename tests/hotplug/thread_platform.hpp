// ThreadPlatform: the hotplug core's Platform with threads standing in for CPUs. The test thread (and any
// thread that has not been given an id) is CPU 0, the control CPU; each AP gets a thread when kicked.
#pragma once

#include <cpuplug/cpuhp.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace test_support {

class ThreadPlatform final : public cpuplug::Platform {
public:
    struct Warning {
        std::string what;
        uint32_t cpu;
        cpuplug::CpuhpState state;
        int error;
    };

    explicit ThreadPlatform(uint32_t cpus);
    ~ThreadPlatform() override;

    void attach(cpuplug::Cpuhp& hotplug) { m_hotplug = &hotplug; }
    // Stops every AP thread; call before the Cpuhp goes away.
    void shutdown();

    // Fault hooks for tests.
    void set_kick_error(uint32_t cpu, int error) { m_cpus[cpu]->kick_error = error; }
    void set_never_alive(uint32_t cpu, bool value) { m_cpus[cpu]->never_alive = value; }

    std::vector<std::string> events() const;          // "kick N", in order
    std::vector<Warning> warnings() const;
    std::vector<cpuplug::TraceEvent> traces() const;
    void clear_traces();
    uint32_t ap_threads_started() const { return m_threads_started.load(); }
    static bool irqs_disabled();
    static uint32_t current_cpu();

    uint32_t this_cpu() override;
    int kick_ap(uint32_t cpu) override;
    int run_on_cpu(uint32_t cpu, int (*work)(void*), void* arg) override;
    bool wait_until(bool (*done)(void const*), void const* arg, uint64_t timeout_ns) override;
    void wake(uint32_t cpu) override;
    void irq_disable() override;
    void irq_enable() override;
    uint64_t now_ns() override;
    void trace(cpuplug::TraceEvent const& event) override;
    void warn(char const* what, uint32_t cpu, cpuplug::CpuhpState state, int error) override;
    void relax() override { std::this_thread::yield(); }

private:
    struct Cpu {
        std::mutex mutex; // guards everything below and pairs with `cv`
        std::condition_variable cv;
        std::thread thread;
        bool init { false };    // "INIT": a waiting AP gives up and its thread ends
        bool running { false }; // the AP thread exists and has not ended
        bool waiting { false }; // the AP thread is blocked at a wait point (where INIT may hit it)
        bool has_work { false };
        bool work_done { false };
        int (*work)(void*) { nullptr };
        void* arg { nullptr };
        int result { 0 };
        std::atomic<int> kick_error { 0 };
        std::atomic<bool> never_alive { false };
    };

    void ap_main(uint32_t cpu);
    void stop_thread(uint32_t cpu);

    cpuplug::Cpuhp* m_hotplug { nullptr };
    std::vector<std::unique_ptr<Cpu>> m_cpus;
    std::atomic<uint32_t> m_threads_started { 0 };
    mutable std::mutex m_log_mutex; // guards the three logs
    std::vector<std::string> m_events;
    std::vector<Warning> m_warnings;
    std::vector<cpuplug::TraceEvent> m_traces;
};

} // namespace test_support
