// Clock set-up and conversions. ns = tsc * mult >> 32 with a 128-bit product, so no division on the path.
#include "clock.hpp"

#include <guest/abi/platform.h>

namespace kernel {

namespace {
uint64_t g_tsc_hz = 1'000'000'000;
uint64_t g_ns_mult = uint64_t(1) << 32; // ns per TSC tick, << 32
uint64_t g_timer_khz = 1'000'000;       // KVM's LAPIC timer counts at 1 GHz
uint64_t g_tsc_at_boot = 0;
bool g_from_cpuid = false;

void set_tsc_hz(uint64_t hz)
{
    g_tsc_hz = hz;
    g_ns_mult = static_cast<uint64_t>((static_cast<unsigned __int128>(1'000'000'000) << 32) / hz);
}

constexpr uint32_t PM_HZ = platform::PM_TIMER_HZ;

// One reading of the PM timer with the TSC at the moment it was taken. Each read is a VM exit, and the
// vCPU's thread can be preempted inside it (on a loaded or emulated host, for milliseconds), so the read
// is bracketed by two TSC reads and the tightest of a few tries is kept; its midpoint is the TSC at the
// read, off by at most half the bracket. Linux's tsc_read_refs() does the same for the same reason.
struct PmReading {
    uint32_t pm;
    uint64_t tsc;     // midpoint of the bracket
    uint64_t bracket; // TSC ticks between the two reads around it
};

PmReading read_pm(uint16_t pm_timer_port)
{
    PmReading best { 0, 0, ~uint64_t(0) };
    for (int attempt = 0; attempt < 5; ++attempt) {
        uint64_t before = x86::rdtsc();
        uint32_t pm = sys::inl(pm_timer_port) & 0xFFFFFF;
        uint64_t after = x86::rdtsc();
        if (after - before < best.bracket)
            best = { pm, before + (after - before) / 2, after - before };
    }
    return best;
}

// 10 ms against the 3.579545 MHz PM timer: enough for the accuracy a 10 ms INIT delay needs. The error is
// at most half of each end's bracket over the window; while that is over 1 % (a preemption the retries
// did not avoid), the window is measured again, up to four times, and the best measurement is kept.
uint64_t calibrate(uint16_t pm_timer_port)
{
    constexpr uint32_t TICKS = PM_HZ / 100;
    uint64_t best_hz = 0;
    uint64_t best_error = ~uint64_t(0);
    for (int round = 0; round < 4; ++round) {
        PmReading start = read_pm(pm_timer_port);
        uint32_t elapsed = 0;
        while (elapsed < TICKS)
            elapsed = ((sys::inl(pm_timer_port) & 0xFFFFFF) - start.pm) & 0xFFFFFF;
        PmReading end = read_pm(pm_timer_port);
        elapsed = (end.pm - start.pm) & 0xFFFFFF;
        uint64_t tsc_elapsed = end.tsc - start.tsc;
        uint64_t error = start.bracket + end.bracket;
        if (error < best_error) {
            best_error = error;
            best_hz = tsc_elapsed * PM_HZ / elapsed;
        }
        if (error * 50 < tsc_elapsed)
            break;
    }
    return best_hz;
}
} // namespace

void clock_init(uint16_t pm_timer_port, bool force_calibration)
{
    g_tsc_at_boot = x86::rdtsc();
    auto signature = sys::cpuid(0x40000000);
    if (signature.eax >= 0x40000010 && !force_calibration) {
        auto leaf = sys::cpuid(0x40000010);
        if (leaf.eax != 0) {
            set_tsc_hz(uint64_t(leaf.eax) * 1000);
            g_from_cpuid = true;
        }
        if (leaf.ebx != 0)
            g_timer_khz = leaf.ebx;
    }
    if (!g_from_cpuid && pm_timer_port != 0)
        set_tsc_hz(calibrate(pm_timer_port));
}

uint64_t tsc_hz() { return g_tsc_hz; }
bool tsc_hz_from_cpuid() { return g_from_cpuid; }

uint64_t now_ns()
{
    uint64_t ticks = x86::rdtsc() - g_tsc_at_boot;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * g_ns_mult) >> 32);
}

uint64_t ns_to_timer_ticks(uint64_t ns)
{
    uint64_t ticks = ns * g_timer_khz / 1'000'000;
    return ticks == 0 ? 1 : ticks;
}

void flush_deferred_ipi()
{
    auto& me = this_percpu();
    if (me.deferred_ipi == 0)
        return;
    uint64_t ipi = me.deferred_ipi;
    me.deferred_ipi = 0;
    sys::wrmsr(0x830, ipi);
}

void delay_us(uint64_t microseconds)
{
    if (microseconds == 0)
        return;
    (void)wait_until([] { return false; }, microseconds * 1000);
}

} // namespace kernel
