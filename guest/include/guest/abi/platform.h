/* guest/include/guest/abi/platform.h: the fixed parts of the machine cpuplug gives its guest, where QEMU's
 * q35 puts the same things, written once for the VMM's devices (vmm/), its ACPI tables (acpi/) and the guest
 * (guest/). The other contracts have their own headers here: the CPU-hotplug register block
 * (cpu_hotplug.hpp), the status port (status_port.hpp), the control page (control.hpp), PVH (pvh.hpp).
 * Plain #defines, so that entry.S can include it; C++ uses the typed constants in namespace platform. */
#pragma once

#define PLATFORM_COM1_PORT 0x3F8        /* the console's 16550 */
#define PLATFORM_COM2_PORT 0x2F8        /* COM2-4: absent (Linux probes them and finds no UART) */
#define PLATFORM_COM3_PORT 0x3E8
#define PLATFORM_COM4_PORT 0x2E8
#define PLATFORM_COM1_GSI 4             /* its ISA IRQ: edge, active high (no MADT override) */
#define PLATFORM_PIT_GSI 0              /* the in-kernel PIT's ISA IRQ 0, routed to IOAPIC pin 2 (MADT override) */
#define PLATFORM_PIT_IOAPIC_PIN 2
#define PLATFORM_I8042_DATA_PORT 0x60   /* the keyboard controller: data */
#define PLATFORM_I8042_CMD_PORT 0x64    /* status (read), command (write); command 0xFE pulses reset */
#define PLATFORM_I8042_CMD_RESET 0xFE
#define PLATFORM_CMOS_PORT 0x70         /* CMOS index (bit 7: NMI mask), data at +1 */
#define PLATFORM_POST_PORT 0x80         /* POST codes and Linux's I/O delay: writes ignored */
#define PLATFORM_DMA_PAGE0_PORT 0x87    /* Linux reads 0xFF here as "no 8237 DMA controller" */
#define PLATFORM_SUPERIO_PORT 0x2E      /* Super I/O configuration index/data pairs at 0x2E and 0x4E: absent */
#define PLATFORM_SUPERIO_ALT_PORT 0x4E
#define PLATFORM_PCI_CONFIG_PORT 0xCF8  /* type 1 configuration address (dword), data at 0xCFC..0xCFF */
#define PLATFORM_PCI_CONFIG_SIZE 8
#define PLATFORM_RESET_PORT 0xCF9       /* reset control (byte), inside the PCI address register's dword */
#define PLATFORM_RESET_VALUE 0x06       /* the FADT's RESET_VALUE: a full reset (bit 2 does the reset) */
#define PLATFORM_RESET_BIT 0x04
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
inline constexpr uint16_t COM2_PORT = PLATFORM_COM2_PORT;
inline constexpr uint16_t COM3_PORT = PLATFORM_COM3_PORT;
inline constexpr uint16_t COM4_PORT = PLATFORM_COM4_PORT;
inline constexpr uint32_t COM1_GSI = PLATFORM_COM1_GSI;
inline constexpr uint32_t PIT_GSI = PLATFORM_PIT_GSI;
inline constexpr uint32_t PIT_IOAPIC_PIN = PLATFORM_PIT_IOAPIC_PIN;
inline constexpr uint16_t I8042_DATA_PORT = PLATFORM_I8042_DATA_PORT;
inline constexpr uint16_t I8042_CMD_PORT = PLATFORM_I8042_CMD_PORT;
inline constexpr uint8_t I8042_CMD_RESET = PLATFORM_I8042_CMD_RESET;
inline constexpr uint16_t CMOS_PORT = PLATFORM_CMOS_PORT;
inline constexpr uint16_t POST_PORT = PLATFORM_POST_PORT;
inline constexpr uint16_t DMA_PAGE0_PORT = PLATFORM_DMA_PAGE0_PORT;
inline constexpr uint16_t SUPERIO_PORT = PLATFORM_SUPERIO_PORT;
inline constexpr uint16_t SUPERIO_ALT_PORT = PLATFORM_SUPERIO_ALT_PORT;
inline constexpr uint16_t PCI_CONFIG_PORT = PLATFORM_PCI_CONFIG_PORT;
inline constexpr uint16_t PCI_CONFIG_SIZE = PLATFORM_PCI_CONFIG_SIZE;
inline constexpr uint16_t RESET_PORT = PLATFORM_RESET_PORT;
inline constexpr uint8_t RESET_VALUE = PLATFORM_RESET_VALUE;
inline constexpr uint8_t RESET_BIT = PLATFORM_RESET_BIT;
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
