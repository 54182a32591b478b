// VcpuThread: one host thread per vCPU running the KVM_RUN loop. Stopping follows one recipe: set the
// request, set kvm_run.immediate_exit, signal the thread; wait with a bound, re-signalling meanwhile.
#pragma once

#include "../kvm/vcpu.hpp"
#include "exit.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pthread.h>
#include <string>
#include <sys/types.h>
#include <thread>

namespace vmm {

class VcpuThreadEvents {
public:
    virtual ~VcpuThreadEvents() = default;
    virtual void vcpu_failed(uint32_t vcpu_id, std::string const& reason) = 0;
    virtual void vcpu_shutdown(uint32_t vcpu_id) = 0;
    // The thread has left KVM_RUN for a pause request (any I/O in flight completed) and waits.
    virtual void vcpu_paused(uint32_t vcpu_id) = 0;
    // The loop has ended (finished() is true), whatever ended it; called on the vCPU's thread, last.
    virtual void vcpu_stopped(uint32_t vcpu_id) { (void)vcpu_id; }
};

// The signal that kicks a vCPU out of KVM_RUN; its handler is empty and installed once per process.
int kick_signal();
void install_kick_signal();

// The registers of a stopped vCPU, for fatal-error reports.
std::string describe_registers(Vcpu const& vcpu);

class VcpuThread {
public:
    VcpuThread(Vcpu& vcpu, Buses buses, VcpuThreadEvents& events)
        : m_vcpu(vcpu)
        , m_buses(buses)
        , m_events(events)
    {
    }
    ~VcpuThread();
    VcpuThread(VcpuThread const&) = delete;
    VcpuThread& operator=(VcpuThread const&) = delete;

    void start();
    // Waits (bounded) until the thread is about to enter KVM_RUN for the first time.
    bool wait_started(std::chrono::milliseconds timeout);
    void request_stop();
    // Asks the thread to leave KVM_RUN and wait; it reports vcpu_paused() once it does. While it waits,
    // other threads may use the vCPU's ioctls (KVM serialises them with KVM_RUN).
    void request_pause();
    // From a device handler on a vCPU thread: that vCPU runs no further guest instruction and pauses as
    // request_pause() would (a guest reset request: Linux would otherwise go on to other reset methods,
    // ending with a triple fault, before the io thread has paused the machine). No-op on other threads.
    static void pause_calling_thread();
    // Lets a paused (or pausing) thread run the guest again.
    void resume();
    bool paused() const;
    // A pause was asked for and not yet undone by resume(): the thread has stopped running the guest or is
    // about to. Lets a caller tell a vCPU it must pause itself from one paused for someone else.
    bool pause_requested() const { return m_pause.load(std::memory_order_seq_cst); }
    // A pause that has not been acknowledged yet: kick again (the kick may have landed between
    // the thread's check and its KVM_RUN).
    void rekick() { kick(); }
    // Waits at most `timeout` for the thread to end, re-signalling it every 10 ms; true once joined.
    bool join(std::chrono::milliseconds timeout);

    uint32_t vcpu_id() const { return m_vcpu.id(); }
    pid_t tid() const { return m_tid.load(std::memory_order_acquire); }
    // An atomic, not m_thread.joinable(): other threads ask while this one's owner joins it.
    bool started() const { return m_started.load(std::memory_order_acquire); }
    // The loop has ended (stop, shutdown or a fatal exit).
    bool finished() const
    {
        std::lock_guard lock(m_done_mutex);
        return m_done;
    }

private:
    void main();
    void kick();
    void kick_locked(); // with m_done_mutex held
    bool wait_while_paused(); // false when asked to stop meanwhile

    Vcpu& m_vcpu;
    Buses m_buses;
    VcpuThreadEvents& m_events;
    std::thread m_thread;
    pthread_t m_native {}; // written before m_started is set; read after
    std::atomic<bool> m_stop { false };
    std::atomic<bool> m_pause { false };
    std::atomic<bool> m_started { false };
    std::atomic<pid_t> m_tid { 0 };
    mutable std::mutex m_done_mutex; // guards m_done, m_running, m_paused and m_resumes
    std::condition_variable m_done_cv; // the thread's state changed
    std::condition_variable m_resume_cv; // a pause ended or a stop came
    bool m_done { false };
    bool m_running { false };
    bool m_paused { false };
    uint64_t m_resumes { 0 };
};

} // namespace vmm
