// The local APIC, in x2APIC mode (MSRs, through system calls) when CPUID offers it, else xAPIC (MMIO,
// which works from CPL3 directly). IPIs go to one APIC id at a time, never broadcast.
#pragma once

#include <cstdint>

namespace kernel::apic {

// Chooses the mode (CPUID.1:ECX[21], unless `allow_x2apic` is false: Linux's nox2apic) and turns the
// boot CPU's APIC on: mode, software enable, timer.
void init_boot_cpu(bool allow_x2apic);
bool x2apic();
uint32_t read_id();

// This CPU's one-shot timer on VECTOR_TIMER, counting at the bus clock (divide by 1).
void init_timer();
// The apic:starting step: local interrupt inputs masked, timer ready, error status cleared.
void starting();
// The DYING side: stop the timer.
void dying();

// Task priority: 0xF0 holds off every maskable interrupt; CPL3 code cannot clear IF on nested PVM
// (docs/platform.md), so this is how the STARTING section runs with interrupts off.
void set_task_priority(uint8_t priority);

void send_ipi(uint32_t apic_id, uint8_t vector);
// INIT, then after `init_delay_us` two STARTUPs, to one APIC id; in x2APIC mode in one or two calls.
void kick(uint32_t apic_id, uint8_t vector_page, uint64_t init_delay_us);
// The two halves of a kick, for a caller that waits the INIT delay itself (once for many CPUs).
void send_init(uint32_t apic_id);
void send_startups(uint32_t apic_id, uint8_t vector_page);
// The x2APIC ICR value of a fixed IPI (for sys::ipi_wait).
uint64_t ipi_command(uint32_t apic_id, uint8_t vector);

} // namespace kernel::apic
