// Time: the TSC as the clock (its frequency from CPUID 0x40000010, else calibrated on the ACPI PM timer),
// and waits that halt until an interrupt or the LAPIC one-shot timer, never spin.
#pragma once

#include "percpu.hpp"
#include "sys.hpp"
#include "x86.hpp"

#include <cpuplug/platform.hpp>

#include <cstdint>

namespace kernel {

// `pm_timer_port` 0: no PM timer (then 1 GHz is assumed, the rate of KVM's clocks). `force_calibration`
// ignores CPUID 0x40000010 (clock.calibrate=1), so the PM-timer path can be tested where the leaf exists.
void clock_init(uint16_t pm_timer_port, bool force_calibration = false);
uint64_t tsc_hz();
bool tsc_hz_from_cpuid();
uint64_t now_ns();
uint64_t ns_to_timer_ticks(uint64_t ns);

// Sends this CPU's deferred wake-up IPI (if any) now.
void flush_deferred_ipi();

// One halt: sends the deferred IPI, if any, in the same system call (x2APIC mode).
inline void wait_once(PerCpu& me, uint32_t seen, uint64_t timer_ticks)
{
    uint64_t ipi = me.deferred_ipi;
    me.deferred_ipi = 0;
    if (ipi != 0)
        sys::ipi_wait(ipi, reinterpret_cast<uint32_t volatile*>(&me.wake), seen, timer_ticks);
    else
        sys::wait(reinterpret_cast<uint32_t volatile*>(&me.wake), seen, timer_ticks);
}

// A waiting CPU halts until an interrupt, but never for longer than this, with a deadline or without
// one: it then looks at what it waits for again. So a lost wake-up IPI delays the waiter instead of
// stranding it for ever. Seen under nested KVM (about 1 in 1000 hot-plugs: an AP released or handed work
// that slept on); smp.lose_wakeups=N loses one in N on purpose to test it. Two timer exits a second per idle CPU.
inline constexpr uint64_t IDLE_RECHECK_NS = 500'000'000;

// Waits until `done()` holds or `timeout_ns` passes (cpuplug::WAIT_FOREVER: no deadline); true if it
// holds. Halts between looks; any interrupt on this CPU (an IPI, the timer) makes it look again.
template<typename Done>
bool wait_until(Done&& done, uint64_t timeout_ns)
{
    auto& me = this_percpu();
    bool forever = timeout_ns == cpuplug::WAIT_FOREVER;
    uint64_t deadline = forever ? 0 : now_ns() + timeout_ns;
    for (;;) {
        uint32_t seen = me.wake.load(std::memory_order_acquire);
        if (done()) {
            flush_deferred_ipi();
            return true;
        }
        if (forever) {
            wait_once(me, seen, ns_to_timer_ticks(IDLE_RECHECK_NS));
            continue;
        }
        uint64_t now = now_ns();
        if (now >= deadline) {
            flush_deferred_ipi();
            return false;
        }
        uint64_t left = deadline - now;
        // In slices, as above (which also keeps the timer's 32-bit count from overflowing).
        wait_once(me, seen, ns_to_timer_ticks(left < IDLE_RECHECK_NS ? left : IDLE_RECHECK_NS));
    }
}

void delay_us(uint64_t microseconds);

} // namespace kernel
