// System calls from CPL3 into the thin CPL0 layer (entry.S), through `ud1 %eax, %eax`: the privileged
// operations the CPL3 kernel needs. On this host neither `syscall` nor `int n` enters CPL0 from user mode,
// but an exception does, and the #UD handler treats exactly this encoding from CPL3 as a call (ud2 stays
// a real fault: GCC emits it for __builtin_trap). CPL3 code runs ~2000x faster than CPL0 on nested PVM, so everything
// else stays up here (docs/platform.md has the cost of a call).
#pragma once

#include <guest/arch/percpu_layout.h>

#include <cstddef>
#include <cstdint>

namespace sys {

inline long call(long number, long a = 0, long b = 0, long c = 0, long d = 0)
{
    long result;
    register long r10 asm("r10") = d;
    asm volatile(".byte 0x0f, 0xb9, 0xc0" /* ud1 %%eax, %%eax */
                 : "=a"(result), "+D"(a), "+S"(b), "+d"(c), "+r"(r10)
                 : "a"(number)
                 : "rcx", "r8", "memory");
    return result;
}

inline void outb(uint16_t port, uint8_t value) { call(SYS_OUTB, port, value); }
inline void outw(uint16_t port, uint16_t value) { call(SYS_OUTW, port, value); }
inline void outl(uint16_t port, uint32_t value) { call(SYS_OUTL, port, value); }
inline uint8_t inb(uint16_t port) { return static_cast<uint8_t>(call(SYS_INB, port)); }
inline uint16_t inw(uint16_t port) { return static_cast<uint16_t>(call(SYS_INW, port)); }
inline uint32_t inl(uint16_t port) { return static_cast<uint32_t>(call(SYS_INL, port)); }
inline void outsb(uint16_t port, void const* data, size_t count)
{
    call(SYS_OUTSB, port, reinterpret_cast<long>(data), static_cast<long>(count));
}
inline void wrmsr(uint32_t msr, uint64_t value) { call(SYS_WRMSR, msr, static_cast<long>(value)); }
inline uint64_t rdmsr(uint32_t msr) { return static_cast<uint64_t>(call(SYS_RDMSR, msr)); }
// Halts unless *word already differs from `seen`; any interrupt ends the halt. With `timer_ticks`, the
// LAPIC one-shot timer bounds it. Free of lost wake-ups: the check and the halt run with IF clear.
inline void wait(uint32_t const volatile* word, uint32_t seen, uint64_t timer_ticks)
{
    call(SYS_WAIT, reinterpret_cast<long>(word), seen, static_cast<long>(timer_ticks));
}
struct CpuidResult {
    uint32_t eax, ebx, ecx, edx;
};
// The vCPU's CPUID, executed at CPL0: at CPL3 this host answers with its own values.
inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0)
{
    CpuidResult r {};
    call(SYS_CPUID, leaf, subleaf, reinterpret_cast<long>(&r));
    return r;
}
// x2APIC mode: an IPI (ICR value, 0 for none) and then wait(), in one call.
inline void ipi_wait(uint64_t icr, uint32_t const volatile* word, uint32_t seen, uint64_t timer_ticks)
{
    call(SYS_IPI_WAIT, static_cast<long>(icr), reinterpret_cast<long>(word), seen, static_cast<long>(timer_ticks));
}
// x2APIC mode: up to three IPIs in one call (0 = none).
inline void ipi3(uint64_t a, uint64_t b, uint64_t c)
{
    call(SYS_IPI3, static_cast<long>(a), static_cast<long>(b), static_cast<long>(c));
}
inline void apic_starting() { call(SYS_APIC_STARTING); }
[[noreturn]] inline void park()
{
    call(SYS_PARK);
    __builtin_unreachable();
}

} // namespace sys
