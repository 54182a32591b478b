// QEMU's "modern" ACPI CPU hotplug register block (QEMU's hw/acpi/cpu.c and docs/specs/acpi_cpu_hotplug.rst;
// table in docs/acpi.md), shared by the VMM's device model and the guest's driver, plus the _OST codes of the
// hotplug contract (ACPI 6.5 §6.3.5, _OST; the eject codes as Linux's include/linux/acpi.h names them; the flows
// are in docs/hotplug.md).
#pragma once

#include <cstdint>

namespace cpu_hotplug {

inline constexpr uint16_t DEFAULT_BASE = 0x0CD8; // q35's address
inline constexpr uint16_t SIZE = 12;
inline constexpr unsigned GPE_BIT = 2; // GPE0 status bit 2: \_GPE._E02

// Register offsets.
inline constexpr uint16_t REG_SELECTOR = 0x0; // write: CPU selector (dword); read: command data 2
inline constexpr uint16_t REG_STATUS = 0x4;   // read: status flags; write: control bits
inline constexpr uint16_t REG_COMMAND = 0x5;  // write: command
inline constexpr uint16_t REG_DATA = 0x8;     // read/write: command data (dword)

// Status (read at REG_STATUS).
inline constexpr uint8_t STATUS_ENABLED = 1u << 0;   // CPEN: the CPU is present
inline constexpr uint8_t STATUS_INSERT = 1u << 1;    // CINS: insert event pending
inline constexpr uint8_t STATUS_REMOVE = 1u << 2;    // CRMV: remove event pending
inline constexpr uint8_t STATUS_FW_REMOVE = 1u << 4; // CEJF: firmware asked to eject

// Control (written at REG_STATUS); only the lowest set bit of these acts.
inline constexpr uint8_t CONTROL_CLEAR_INSERT = 1u << 1;
inline constexpr uint8_t CONTROL_CLEAR_REMOVE = 1u << 2;
inline constexpr uint8_t CONTROL_EJECT = 1u << 3;
inline constexpr uint8_t CONTROL_FW_EJECT = 1u << 4;

// Commands (written at REG_COMMAND).
enum class Command : uint8_t {
    NextEvent = 0, // select the next CPU with a pending event, from the selector inclusive, wrapping
    OstEvent = 1,  // the next data write is an _OST source event
    OstStatus = 2, // the next data write is an _OST status; the VMM emits ACPI_DEVICE_OST
    ArchId = 3,    // data / data 2 read the selected CPU's APIC id, low / high 32 bits
};

// _OST source events (ACPI notify values and OSPM events).
inline constexpr uint32_t OST_DEVICE_CHECK = 0x1;
inline constexpr uint32_t OST_EJECT_REQUEST = 0x3;
inline constexpr uint32_t OST_OSPM_EJECT = 0x103;
// _OST status codes: 0 success, 1 generic failure, then the eject-request codes Linux uses.
inline constexpr uint32_t OST_SUCCESS = 0x0;
inline constexpr uint32_t OST_FAILURE = 0x1;
inline constexpr uint32_t OST_NOT_SUPPORTED = 0x80;        // eject not supported (the boot CPU)
inline constexpr uint32_t OST_DEVICE_IN_USE = 0x81;        // a teardown step vetoed it
inline constexpr uint32_t OST_DEVICE_BUSY = 0x82;          // hotplug disabled, the last online CPU
inline constexpr uint32_t OST_EJECT_DEPENDENCY_BUSY = 0x83;
inline constexpr uint32_t OST_EJECT_IN_PROGRESS = 0x84;
inline constexpr uint32_t OST_INSERT_IN_PROGRESS = 0x80;   // for source OST_DEVICE_CHECK

} // namespace cpu_hotplug
