// VcpuThread: the KVM_RUN loop and the kick. A kick sets kvm_run.immediate_exit and sends the thread SIGRTMIN,
// whose handler does nothing, so KVM_RUN returns EINTR; the flag is cleared after EINTR, and a stop that is not
// acknowledged is re-signalled every 10 ms.
#include "vcpu_thread.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <fmt/format.h>
#include <mutex>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace vmm {

namespace {

void kick_handler(int)
{
    // Empty on purpose: the signal's only job is to make KVM_RUN return EINTR. The fence pairs with the
    // kicker's release store of immediate_exit.
    std::atomic_signal_fence(std::memory_order_acquire);
}

constexpr auto RESIGNAL_INTERVAL = std::chrono::milliseconds(10);

// The VcpuThread running on this thread, for pause_calling_thread().
thread_local VcpuThread* t_current = nullptr;

} // namespace

int kick_signal() { return SIGRTMIN; }

void install_kick_signal()
{
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_handler = kick_handler;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0; // no SA_RESTART: KVM_RUN must come back with EINTR
        sigaction(kick_signal(), &action, nullptr);
    });
}

std::string describe_registers(Vcpu const& vcpu)
{
    auto regs = vcpu.get_regs();
    auto sregs = vcpu.get_sregs();
    if (!regs.has_value() || !sregs.has_value())
        return "registers unavailable";
    auto const& r = regs.value();
    auto const& s = sregs.value();
    return fmt::format("rip={:#x} rsp={:#x} rflags={:#x} rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} "
                       "rdi={:#x} cs={:#x} cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
        static_cast<uint64_t>(r.rip), static_cast<uint64_t>(r.rsp), static_cast<uint64_t>(r.rflags),
        static_cast<uint64_t>(r.rax), static_cast<uint64_t>(r.rbx), static_cast<uint64_t>(r.rcx),
        static_cast<uint64_t>(r.rdx), static_cast<uint64_t>(r.rsi), static_cast<uint64_t>(r.rdi), s.cs.selector,
        static_cast<uint64_t>(s.cr0), static_cast<uint64_t>(s.cr2), static_cast<uint64_t>(s.cr3),
        static_cast<uint64_t>(s.cr4), static_cast<uint64_t>(s.efer));
}

VcpuThread::~VcpuThread()
{
    if (!m_thread.joinable())
        return;
    request_stop();
    if (!join(std::chrono::seconds(2))) {
        // A vCPU that ignores its kick for seconds means KVM is wedged; destroying the Vcpu under a live
        // thread would be worse than stopping the process.
        spdlog::critical("vcpu{} did not stop within 2 s; aborting", m_vcpu.id());
        std::abort();
    }
}

void VcpuThread::start()
{
    install_kick_signal();
    m_thread = std::thread([this] { main(); });
    m_native = m_thread.native_handle();
    m_started.store(true, std::memory_order_release);
}

bool VcpuThread::wait_started(std::chrono::milliseconds timeout)
{
    std::unique_lock lock(m_done_mutex);
    return m_done_cv.wait_for(lock, timeout, [this] { return m_running || m_done; });
}

void VcpuThread::kick()
{
    std::lock_guard lock(m_done_mutex);
    kick_locked();
}

void VcpuThread::kick_locked()
{
    m_vcpu.set_immediate_exit(true);
    // Under m_done_mutex, so the thread cannot finish (it sets m_done under it) while the signal is sent.
    if (m_started.load(std::memory_order_acquire) && !m_done)
        pthread_kill(m_native, kick_signal());
}

void VcpuThread::request_stop()
{
    m_stop.store(true, std::memory_order_seq_cst);
    {
        std::lock_guard lock(m_done_mutex);
        m_resume_cv.notify_all();
    }
    kick();
}

void VcpuThread::request_pause()
{
    m_pause.store(true, std::memory_order_seq_cst);
    kick();
}

void VcpuThread::pause_calling_thread()
{
    if (!t_current)
        return;
    // No signal: this thread is between KVM_RUNs, and the next one returns EINTR at once.
    t_current->m_pause.store(true, std::memory_order_seq_cst);
    t_current->m_vcpu.set_immediate_exit(true);
}

void VcpuThread::resume()
{
    std::lock_guard lock(m_done_mutex);
    m_pause.store(false, std::memory_order_seq_cst);
    ++m_resumes;
    m_resume_cv.notify_all();
}

bool VcpuThread::paused() const
{
    std::lock_guard lock(m_done_mutex);
    return m_paused;
}

bool VcpuThread::wait_while_paused()
{
    uint64_t resumes;
    {
        std::lock_guard lock(m_done_mutex);
        m_paused = true;
        resumes = m_resumes;
    }
    m_events.vcpu_paused(m_vcpu.id());
    // Wake on a resume even if a new pause followed it at once: the loop then pauses (and reports) again.
    std::unique_lock lock(m_done_mutex);
    m_resume_cv.wait(lock, [&] { return m_resumes != resumes || m_stop.load(std::memory_order_seq_cst); });
    m_paused = false;
    return !m_stop.load(std::memory_order_seq_cst);
}

bool VcpuThread::join(std::chrono::milliseconds timeout)
{
    if (!m_thread.joinable())
        return true;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(m_done_mutex);
    while (!m_done) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
            return false;
        if (m_done_cv.wait_for(lock, std::min<std::chrono::nanoseconds>(RESIGNAL_INTERVAL, deadline - now),
                [this] { return m_done; }))
            break;
        // The thread may have been between its stop check and KVM_RUN when the signal came: signal again.
        kick_locked();
    }
    lock.unlock();
    m_thread.join();
    return true;
}

void VcpuThread::main()
{
    m_tid.store(static_cast<pid_t>(::gettid()), std::memory_order_release);
    t_current = this;
    pthread_setname_np(pthread_self(), fmt::format("vcpu{}", m_vcpu.id()).substr(0, 15).c_str());
    // Only the kick reaches this thread; process signals (SIGINT, SIGTERM) go to the VMM's own threads.
    sigset_t mask;
    sigfillset(&mask);
    sigdelset(&mask, kick_signal());
    for (int fatal_signal : { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT })
        sigdelset(&mask, fatal_signal);
    pthread_sigmask(SIG_SETMASK, &mask, nullptr);

    auto run_area = m_vcpu.run_area();
    {
        std::lock_guard lock(m_done_mutex);
        m_running = true;
        m_done_cv.notify_all();
    }

    while (!m_stop.load(std::memory_order_acquire)) {
        auto result = m_vcpu.run();
        if (!result.has_value()) {
            int error = result.error().code;
            if (error == EINTR) {
                // A kick. KVM completed any pending port or MMIO access before it saw immediate_exit, so
                // the vCPU is at an instruction boundary. Clear the flag before looking at the requests:
                // a kick that lands in between leaves the flag set and the next KVM_RUN returns at once.
                m_vcpu.set_immediate_exit(false);
                std::atomic_thread_fence(std::memory_order_seq_cst);
                if (m_pause.load(std::memory_order_seq_cst) && !m_stop.load(std::memory_order_seq_cst)
                    && !wait_while_paused())
                    break;
                continue;
            }
            if (error == EAGAIN)
                continue; // an AP woken from UNINITIALIZED by INIT: run again
            m_events.vcpu_failed(m_vcpu.id(), result.error().message());
            break;
        }
        auto action = handle_exit(run_area, m_buses);
        if (action.kind == ExitKind::Fatal) {
            m_events.vcpu_failed(m_vcpu.id(), fmt::format("{}; {}", action.reason, describe_registers(m_vcpu)));
            break;
        }
        if (action.kind == ExitKind::Shutdown) {
            m_events.vcpu_shutdown(m_vcpu.id());
            break;
        }
    }

    {
        std::lock_guard lock(m_done_mutex);
        m_done = true;
        m_done_cv.notify_all();
    }
    m_events.vcpu_stopped(m_vcpu.id());
}

} // namespace vmm
