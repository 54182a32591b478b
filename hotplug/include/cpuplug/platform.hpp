// The hotplug core's view of the machine: how to start a CPU, run code on it, wait and wake, and report.
// The guest implements it with INIT/SIPI, IPIs and hlt; the host tests with threads.
#pragma once

#include <cpuplug/cpuhp_state.hpp>

#include <cstdint>

namespace cpuplug {

struct CpuhpInstance;

inline constexpr uint64_t WAIT_FOREVER = ~uint64_t(0);

struct TraceEvent {
    enum class Phase : uint8_t { Enter, Exit };
    uint32_t cpu;
    CpuhpState state;
    Phase phase;
    bool bringup;            // startup (true) or teardown (false)
    bool rollback;           // part of undoing a failed operation
    int result;              // on Exit: the callback's result (or -EAGAIN from fail injection)
    CpuhpInstance* instance; // the instance for a multi-instance call on one node, else nullptr
};

class Platform {
public:
    virtual ~Platform() = default;

    // The CPU running the caller.
    virtual uint32_t this_cpu() = 0;
    // Starts `cpu` from reset (INIT, SIPI, SIPI in the guest). The AP then calls Cpuhp::ap_startup().
    virtual int kick_ap(uint32_t cpu) = 0;
    // Runs `work(arg)` on `cpu`, which is online and idle, and returns its result; -ETIMEDOUT if it
    // does not finish in time. Never called for the calling CPU.
    virtual int run_on_cpu(uint32_t cpu, int (*work)(void*), void* arg) = 0;
    // Blocks the calling CPU until `done(arg)` holds or `timeout_ns` has passed; true if it holds. Waking
    // early through wake() only makes it look at `done` again. WAIT_FOREVER: no deadline (only a new
    // kick_ap() of the waiting CPU, which resets it, ends such a wait otherwise).
    virtual bool wait_until(bool (*done)(void const*), void const* arg, uint64_t timeout_ns) = 0;
    // Makes a wait_until() on `cpu` look again (an IPI in the guest).
    virtual void wake(uint32_t cpu) = 0;
    // The STARTING section runs between these on the AP.
    virtual void irq_disable() { }
    virtual void irq_enable() { }
    virtual uint64_t now_ns() = 0;
    // Every callback's entry and exit.
    virtual void trace(TraceEvent const&) { }
    // The end of a cpu_up/cpu_down on `cpu`: where it stands now and the operation's result (after any
    // rollback). Called with the hotplug lock held: it must not start another operation.
    virtual void completed(uint32_t, CpuhpState, int) { }
    // Something that must not happen did: a failed rollback, a failing STARTING callback, a lost AP.
    virtual void warn(char const* what, uint32_t cpu, CpuhpState state, int error) = 0;
    // Called while spinning on a lock.
    virtual void relax() { }
};

} // namespace cpuplug
