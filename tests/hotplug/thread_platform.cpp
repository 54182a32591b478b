// ThreadPlatform: mailboxes and condition variables in place of IPIs and hlt.
#include "thread_platform.hpp"

#include <chrono>

namespace test_support {

namespace {
thread_local uint32_t t_cpu = 0;
thread_local bool t_irqs_off = false;
constexpr auto RUN_ON_CPU_TIMEOUT = std::chrono::seconds(20);
} // namespace

ThreadPlatform::ThreadPlatform(uint32_t cpus)
{
    for (uint32_t i = 0; i < cpus; ++i)
        m_cpus.push_back(std::make_unique<Cpu>());
}

ThreadPlatform::~ThreadPlatform() { shutdown(); }

// INIT: a real AP is reset wherever it is; a thread can only be stopped where it waits. So this waits
// until the AP thread is blocked at a wait point (or gone), which keeps it from touching shared state
// after the reset, as a reset CPU would not.
void ThreadPlatform::stop_thread(uint32_t cpu)
{
    auto& c = *m_cpus[cpu];
    {
        std::unique_lock lock(c.mutex);
        c.cv.wait(lock, [&] { return !c.running || c.waiting; });
        c.init = true;
        c.cv.notify_all();
    }
    if (c.thread.joinable())
        c.thread.join();
}

void ThreadPlatform::shutdown()
{
    for (uint32_t cpu = 0; cpu < m_cpus.size(); ++cpu)
        stop_thread(cpu);
}

bool ThreadPlatform::irqs_disabled() { return t_irqs_off; }
uint32_t ThreadPlatform::current_cpu() { return t_cpu; }

uint32_t ThreadPlatform::this_cpu() { return t_cpu; }

int ThreadPlatform::kick_ap(uint32_t cpu)
{
    if (cpu >= m_cpus.size())
        return -cpuplug::ERR_INVAL;
    auto& c = *m_cpus[cpu];
    if (int error = c.kick_error.load())
        return error;
    {
        std::lock_guard lock(m_log_mutex);
        m_events.push_back("kick " + std::to_string(cpu));
    }
    // INIT resets whatever the AP was doing (waiting at ALIVE, or parked).
    stop_thread(cpu);
    {
        std::lock_guard lock(c.mutex);
        c.init = false;
        c.has_work = false;
        c.work_done = false;
        c.running = true;
        c.waiting = false;
    }
    m_threads_started.fetch_add(1);
    c.thread = std::thread([this, cpu] { ap_main(cpu); });
    return 0;
}

void ThreadPlatform::ap_main(uint32_t cpu)
{
    t_cpu = cpu;
    t_irqs_off = false;
    auto& c = *m_cpus[cpu];
    auto finish = [&] {
        std::lock_guard lock(c.mutex);
        c.running = false;
        c.waiting = false;
        c.cv.notify_all();
    };
    auto note = [&](std::string what) {
        std::lock_guard lock(m_log_mutex);
        m_events.push_back(what + " " + std::to_string(cpu) + " sync " + cpuplug::to_string(m_hotplug->sync(cpu)));
    };
    note("start");
    if (c.never_alive.load() || !m_hotplug->ap_startup(cpu)) {
        note("not released");
        finish(); // never started, or never released: parked until the next kick
        return;
    }
    note("released");
    for (;;) {
        std::unique_lock lock(c.mutex);
        c.waiting = true;
        c.cv.notify_all();
        c.cv.wait(lock, [&] { return c.has_work || c.init; });
        c.waiting = false;
        if (c.init) {
            lock.unlock();
            finish();
            return;
        }
        auto work = c.work;
        auto* arg = c.arg;
        c.has_work = false;
        lock.unlock();
        int result = work(arg);
        lock.lock();
        c.result = result;
        c.work_done = true;
        c.cv.notify_all();
        lock.unlock();
        if (m_hotplug->ap_should_die(cpu)) {
            note("dies");
            m_hotplug->ap_report_dead(cpu);
            finish();
            return; // parked for good
        }
    }
}

int ThreadPlatform::run_on_cpu(uint32_t cpu, int (*work)(void*), void* arg)
{
    auto& c = *m_cpus[cpu];
    std::unique_lock lock(c.mutex);
    if (!c.thread.joinable())
        return -cpuplug::ERR_IO;
    c.work = work;
    c.arg = arg;
    c.work_done = false;
    c.has_work = true;
    c.cv.notify_all();
    if (!c.cv.wait_for(lock, RUN_ON_CPU_TIMEOUT, [&] { return c.work_done; }))
        return -cpuplug::ERR_TIMEDOUT;
    return c.result;
}

bool ThreadPlatform::wait_until(bool (*done)(void const*), void const* arg, uint64_t timeout_ns)
{
    uint32_t cpu = t_cpu;
    auto& c = *m_cpus[cpu];
    bool forever = timeout_ns == cpuplug::WAIT_FOREVER;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(forever ? 0 : timeout_ns);
    std::unique_lock lock(c.mutex);
    bool ap = cpu != 0;
    bool result = false;
    for (;;) {
        if (done(arg)) {
            result = true;
            break;
        }
        if (ap && c.init)
            break; // an AP reset by INIT stops waiting
        auto now = std::chrono::steady_clock::now();
        if (forever)
            deadline = now + std::chrono::milliseconds(5);
        else if (now >= deadline)
            break;
        if (ap) {
            c.waiting = true;
            c.cv.notify_all();
        }
        c.cv.wait_for(lock, std::min<std::chrono::nanoseconds>(deadline - now, std::chrono::milliseconds(5)));
    }
    if (ap)
        c.waiting = false;
    return result;
}

void ThreadPlatform::wake(uint32_t cpu)
{
    if (cpu >= m_cpus.size())
        return;
    auto& c = *m_cpus[cpu];
    std::lock_guard lock(c.mutex);
    c.cv.notify_all();
}

void ThreadPlatform::irq_disable() { t_irqs_off = true; }
void ThreadPlatform::irq_enable() { t_irqs_off = false; }

uint64_t ThreadPlatform::now_ns()
{
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void ThreadPlatform::trace(cpuplug::TraceEvent const& event)
{
    std::lock_guard lock(m_log_mutex);
    m_traces.push_back(event);
}

void ThreadPlatform::warn(char const* what, uint32_t cpu, cpuplug::CpuhpState state, int error)
{
    std::string detail = what;
    if (cpu < m_cpus.size() && m_hotplug) {
        auto& c = *m_cpus[cpu];
        std::lock_guard lock(c.mutex);
        detail += std::string(" [sync ") + cpuplug::to_string(m_hotplug->sync(cpu)) + ", thread running "
            + std::to_string(c.running) + " waiting " + std::to_string(c.waiting) + " init " + std::to_string(c.init) + "]";
    }
    std::lock_guard lock(m_log_mutex);
    m_events.push_back("WARN " + detail + " cpu " + std::to_string(cpu));
    m_warnings.push_back({ detail, cpu, state, error });
}

std::vector<std::string> ThreadPlatform::events() const
{
    std::lock_guard lock(m_log_mutex);
    return m_events;
}

std::vector<ThreadPlatform::Warning> ThreadPlatform::warnings() const
{
    std::lock_guard lock(m_log_mutex);
    return m_warnings;
}

std::vector<cpuplug::TraceEvent> ThreadPlatform::traces() const
{
    std::lock_guard lock(m_log_mutex);
    return m_traces;
}

void ThreadPlatform::clear_traces()
{
    std::lock_guard lock(m_log_mutex);
    m_traces.clear();
    m_events.clear();
}

} // namespace test_support
