// The guest's privilege-mode seam: every privileged operation the kernel needs goes through here, and each
// one works at either privilege level, decided by the CS it runs with.
//
// - At CPL3 (kernel.cpl=3, for nested PVM, where CPL0 code is emulated ~1000x slower than CPL3 runs) an
//   operation is a system call into the thin CPL0 layer (entry.S) through `ud1 %eax, %eax`: on PVM neither
//   `syscall` nor `int n` enters CPL0 from user mode, but an exception does, and the #UD handler treats
//   exactly this encoding from CPL3 as a call (ud2 stays a real fault: GCC emits it for __builtin_trap).
// - At CPL0 (kernel.cpl=0, the default: on VT-x/SVM KVM intercepts #UD, so each call above would be a full
//   VM exit plus an emulator decode) the simple operations are the instruction itself, and the compound ones
//   (wait, IPIs, park) enter the same entry.S handlers directly, through a frame built as the #UD gate
//   would build it, with no exit.
// Interrupt and exception handlers run at CPL0 in both modes, so they take the direct path too.
// docs/platform.md has what each costs on each kind of host.
#pragma once

#include "x86.hpp"

#include <guest/arch/percpu_layout.h>

#include <cstddef>
#include <cstdint>

namespace sys {

// True where the kernel runs at CPL3 (reading CS is unprivileged and costs no exit).
inline bool user_mode()
{
    uint16_t cs;
    asm volatile("mov %%cs, %0" : "=r"(cs));
    return (cs & 3) == 3;
}

inline long call(long number, long a = 0, long b = 0, long c = 0, long d = 0)
{
    long result;
    register long r10 asm("r10") = d;
    if (user_mode()) {
        asm volatile(".byte 0x0f, 0xb9, 0xc0" /* ud1 %%eax, %%eax */
                     : "=a"(result), "+D"(a), "+S"(b), "+d"(c), "+r"(r10)
                     : "a"(number)
                     : "rcx", "r8", "memory");
    } else {
        // The frame an interrupt gate pushes (SS, RSP, RFLAGS, CS, RIP), with IF cleared as the gate clears
        // it; the handler's iretq comes back to 1: with the caller's flags. The kernel is built without a
        // red zone, so pushing below RSP here overwrites nothing the compiler keeps there.
        asm volatile("mov %%rsp, %%r11\n\t"
                     "pushq %[ss]\n\t"
                     "pushq %%r11\n\t"
                     "pushfq\n\t"
                     "cli\n\t"
                     "pushq %[cs]\n\t"
                     "lea 1f(%%rip), %%r11\n\t"
                     "pushq %%r11\n\t"
                     "jmp syscall_entry\n"
                     "1:"
                     : "=a"(result), "+D"(a), "+S"(b), "+d"(c), "+r"(r10)
                     : "a"(number), [ss] "i"(KERNEL_DS), [cs] "i"(KERNEL_CS)
                     : "rcx", "r8", "r11", "memory");
    }
    return result;
}

inline void outb(uint16_t port, uint8_t value)
{
    if (user_mode())
        call(SYS_OUTB, port, value);
    else
        x86::outb(port, value);
}
inline void outw(uint16_t port, uint16_t value)
{
    if (user_mode())
        call(SYS_OUTW, port, value);
    else
        x86::outw(port, value);
}
inline void outl(uint16_t port, uint32_t value)
{
    if (user_mode())
        call(SYS_OUTL, port, value);
    else
        x86::outl(port, value);
}
inline uint8_t inb(uint16_t port)
{
    return user_mode() ? static_cast<uint8_t>(call(SYS_INB, port)) : x86::inb(port);
}
inline uint16_t inw(uint16_t port)
{
    return user_mode() ? static_cast<uint16_t>(call(SYS_INW, port)) : x86::inw(port);
}
inline uint32_t inl(uint16_t port)
{
    return user_mode() ? static_cast<uint32_t>(call(SYS_INL, port)) : x86::inl(port);
}
// `rep outsb`: one VM exit for the whole string.
inline void outsb(uint16_t port, void const* data, size_t count)
{
    if (user_mode())
        call(SYS_OUTSB, port, reinterpret_cast<long>(data), static_cast<long>(count));
    else
        x86::outsb(port, data, count);
}
inline void wrmsr(uint32_t msr, uint64_t value)
{
    if (user_mode())
        call(SYS_WRMSR, msr, static_cast<long>(value));
    else
        x86::wrmsr(msr, value);
}
inline uint64_t rdmsr(uint32_t msr)
{
    return user_mode() ? static_cast<uint64_t>(call(SYS_RDMSR, msr)) : x86::rdmsr(msr);
}
// Halts unless *word already differs from `seen`; any interrupt ends the halt. With `timer_ticks`, the
// LAPIC one-shot timer bounds it. Free of lost wake-ups: the check and the halt run with IF clear.
inline void wait(uint32_t const volatile* word, uint32_t seen, uint64_t timer_ticks)
{
    call(SYS_WAIT, reinterpret_cast<long>(word), seen, static_cast<long>(timer_ticks));
}
using CpuidResult = x86::CpuidResult;
// The vCPU's CPUID. At CPL3 it is run at CPL0: there PVM answers with the host's own values.
inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0)
{
    if (!user_mode())
        return x86::cpuid(leaf, subleaf);
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
// The boot CPU's switch to kernel.cpl=0: the caller returns at CPL0 on the same stack, and every AP
// started from then on enters the kernel at CPL0 too. A no-op at CPL0.
inline void enter_cpl0() { call(SYS_ENTER_CPL0); }

} // namespace sys
