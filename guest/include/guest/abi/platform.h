/* guest/include/guest/abi/platform.h: the fixed parts of the machine cpuplug gives its guest, where QEMU's
 * q35 puts the same things, written once for the VMM's devices (vmm/), its ACPI tables (acpi/) and the guest
 * (guest/). The other contracts have their own headers here: the CPU-hotplug register block
 * (cpu_hotplug.hpp), the status port (status_port.hpp), the control page (control.hpp), PVH (pvh.hpp).
 * Plain #defines, so that entry.S can include it; C++ uses the typed constants in namespace platform. */
#pragma once

#define PLATFORM_COM1_PORT 0x3F8        /* the console's 16550 */
#define PLATFORM_PM_BASE 0x600          /* ICH9's ACPI PM block: PM1a event, PM1a control, PM timer, GPE0 */
#define PLATFORM_PM1A_EVT_OFFSET 0x00   /* 2 bytes status, 2 bytes enable */
#define PLATFORM_PM1A_CNT_OFFSET 0x04   /* 2 bytes */
#define PLATFORM_PM_TMR_OFFSET 0x08     /* 4 bytes, a 24-bit counter at PLATFORM_PM_TIMER_HZ */
#define PLATFORM_PM_TIMER_HZ 3579545    /* the ACPI PM timer's rate (ACPI 6.5 §4.8.3.3) */
#define PLATFORM_GPE0_OFFSET 0x20       /* 8 bytes status, 8 bytes enable */
#define PLATFORM_GPE0_LENGTH 16
#define PLATFORM_SCI_GSI 9              /* ISA IRQ 9, level, active high (the MADT's override says so) */
#define PLATFORM_IOAPIC_BASE 0xFEC00000 /* KVM's in-kernel IOAPIC */
#define PLATFORM_LAPIC_BASE 0xFEE00000  /* the local APICs, xAPIC mode */
#define PLATFORM_INIT_DELAY_US 10000    /* INIT to STARTUP, the MP spec's 10 ms (vmm --init-delay-us, cpu_init_udelay=) */

#ifndef __ASSEMBLER__
#include <cstdint>

namespace platform {

inline constexpr uint16_t COM1_PORT = PLATFORM_COM1_PORT;
inline constexpr uint16_t PM_BASE = PLATFORM_PM_BASE;
inline constexpr uint16_t PM1A_EVT_OFFSET = PLATFORM_PM1A_EVT_OFFSET;
inline constexpr uint16_t PM1A_CNT_OFFSET = PLATFORM_PM1A_CNT_OFFSET;
inline constexpr uint16_t PM_TMR_OFFSET = PLATFORM_PM_TMR_OFFSET;
inline constexpr uint32_t PM_TIMER_HZ = PLATFORM_PM_TIMER_HZ;
inline constexpr uint16_t GPE0_OFFSET = PLATFORM_GPE0_OFFSET;
inline constexpr uint16_t GPE0_LENGTH = PLATFORM_GPE0_LENGTH;
inline constexpr uint32_t SCI_GSI = PLATFORM_SCI_GSI;
inline constexpr uint64_t IOAPIC_BASE = PLATFORM_IOAPIC_BASE;
inline constexpr uint64_t LAPIC_BASE = PLATFORM_LAPIC_BASE;
inline constexpr uint64_t INIT_DELAY_US = PLATFORM_INIT_DELAY_US;

} // namespace platform
#endif
