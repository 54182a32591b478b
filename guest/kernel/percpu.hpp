// The per-CPU area: one per CPU, reached through %gs at either privilege level. The first fields are used
// by assembly at fixed offsets (guest/arch/percpu_layout.h); the rest is the kernel's C++ state.
#pragma once

#include <guest/arch/percpu_layout.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace kernel {

// The 64-bit TSS: only RSP0 (the stack for interrupts that arrive at CPL3; at CPL0 they use the current one) and the I/O map base matter.
struct __attribute__((packed)) Tss {
    uint32_t reserved0;
    uint64_t rsp0, rsp1, rsp2;
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

struct alignas(64) PerCpu {
    uint64_t kernel_stack_top;
    uint64_t user_stack_top;
    PerCpu* self;
    uint32_t cpu;
    uint32_t apic_id;
    uint16_t tss_selector;
    uint16_t reserved0;
    uint32_t reserved1;
    std::atomic<uint32_t> wake;

    // run_on_cpu mailbox: the requester fills work/arg, bumps `posted` and sends VECTOR_WAKE; the CPU runs
    // it and sets `done` = `posted`, then wakes the requester.
    int (*work)(void*) { nullptr };
    void* work_arg { nullptr };
    std::atomic<uint32_t> posted { 0 };
    std::atomic<uint32_t> done { 0 };
    int work_result { 0 };
    uint32_t requester { 0 };

    // x2APIC mode: a wake-up IPI (ICR value) held back until this CPU next waits, so that the IPI and the
    // wait cost one system call (the hotplug core always wakes, then waits). 0: none.
    uint64_t deferred_ipi { 0 };

    alignas(16) Tss tss;
};

static_assert(offsetof(PerCpu, kernel_stack_top) == PERCPU_KERNEL_STACK);
static_assert(offsetof(PerCpu, user_stack_top) == PERCPU_USER_STACK);
static_assert(offsetof(PerCpu, self) == PERCPU_SELF);
static_assert(offsetof(PerCpu, cpu) == PERCPU_CPU);
static_assert(offsetof(PerCpu, apic_id) == PERCPU_APIC_ID);
static_assert(offsetof(PerCpu, tss_selector) == PERCPU_TSS_SELECTOR);
static_assert(offsetof(PerCpu, wake) == PERCPU_WAKE);

// This CPU's area (%gs:PERCPU_SELF).
inline PerCpu& this_percpu()
{
    PerCpu* self;
    asm volatile("mov %%gs:%c1, %0" : "=r"(self) : "i"(PERCPU_SELF));
    return *self;
}

// Filled by the boot CPU before any AP starts; read by the AP entry code (entry.S) to find itself.
extern "C" uint16_t apic_to_cpu[4096];
extern "C" PerCpu* percpu_table[GUEST_MAX_CPUS];
extern "C" PerCpu bsp_percpu;
extern "C" uint8_t apic_x2apic; // 1: x2APIC mode (MSRs), 0: xAPIC (MMIO); read by the interrupt stubs

} // namespace kernel
