// The ACPI tables cpuplug gives its guest (RSDP, XSDT, FADT, FACS, MADT, DSDT) and the layout of them in guest
// memory. Offsets: ACPI 6.5 §5.2 (RSDP §5.2.5, SDT header §5.2.6, XSDT §5.2.8, FADT §5.2.9, FACS §5.2.10,
// MADT §5.2.12); the values and why: docs/acpi.md.
#pragma once

#include <acpi/aml.hpp>
#include <cpuplug/base/result.hpp>
#include <guest/abi/cpu_hotplug.hpp>
#include <guest/abi/platform.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace acpi {

struct CpuEntry {
    uint32_t uid;     // ACPI processor UID: the CPU's index in PlatformConfig::cpus
    uint32_t apic_id; // x2APIC id (type 0 MADT entry below 255, type 9 from 255)
    bool present;     // enabled at boot; absent CPUs are listed as online-capable hotplug slots
};

struct PlatformConfig {
    std::vector<CpuEntry> cpus; // one per *possible* CPU, uid = cpu index
    // PM1a_EVT = pm_base (len 4), PM1a_CNT = pm_base+4 (len 2), PM_TMR = pm_base+8 (len 4),
    // GPE0 = pm_base+0x20 (len 16), as QEMU's q35 (ICH9) PM block.
    uint16_t pm_base = platform::PM_BASE;
    uint8_t sci_irq = platform::SCI_GSI;
    uint64_t lapic_address = platform::LAPIC_BASE;
    uint64_t ioapic_address = platform::IOAPIC_BASE;
    uint8_t ioapic_id = 0;
    // QEMU's "modern" CPU-hotplug interface (QEMU's hw/acpi/cpu.c and docs/specs/acpi_cpu_hotplug.rst;
    // register table in docs/acpi.md): the register block \_SB.PRES at cpu_hotplug_base (CPU_HOTPLUG_LENGTH
    // bytes of I/O space), _STA/_MAT/_EJ0/_OST on every CPU object and \_GPE._E02 to scan for events. Off,
    // CPU objects report the fixed `present` state.
    bool cpu_hotplug = false;
    uint16_t cpu_hotplug_base = cpu_hotplug::DEFAULT_BASE; // q35's address
    uint32_t boot_cpu = 0;              // index into cpus; the one CPU without _EJ0
};

struct TableInfo {
    std::string signature;
    uint64_t address;
    uint32_t length;
};

struct BuiltTables {
    std::vector<uint8_t> blob; // every table except the RSDP, laid out from blob_address
    uint64_t blob_address;
    std::vector<uint8_t> rsdp; // 36 bytes, to be placed at rsdp_address
    uint64_t rsdp_address;
    std::vector<TableInfo> tables; // XSDT, FACP, FACS, APIC (MADT), DSDT: where each sits
};

// Identification written into every table header (and the RSDP's OEMID).
inline constexpr char OEM_ID[] = "CPUPLG";         // 6 characters
inline constexpr char OEM_TABLE_ID[] = "CPUPLUG "; // 8 characters
inline constexpr uint32_t OEM_REVISION = 1;
inline constexpr char CREATOR_ID[] = "CPPL"; // 4 characters
inline constexpr uint32_t CREATOR_REVISION = 1;

inline constexpr size_t SDT_HEADER_SIZE = 36;
inline constexpr size_t RSDP_SIZE = 36;
inline constexpr size_t FADT_SIZE = 276; // revision 6
inline constexpr size_t FACS_SIZE = 64;
inline constexpr size_t MAX_CPUS = 0x1000; // the DSDT names CPUs C000..CFFF

// Offsets in the PM block at PlatformConfig::pm_base, and the lengths the FADT gives them.
inline constexpr uint16_t PM1A_EVT_OFFSET = platform::PM1A_EVT_OFFSET;
inline constexpr uint8_t PM1_EVT_LENGTH = 4;
inline constexpr uint16_t PM1A_CNT_OFFSET = platform::PM1A_CNT_OFFSET;
inline constexpr uint8_t PM1_CNT_LENGTH = 2;
inline constexpr uint16_t PM_TMR_OFFSET = platform::PM_TMR_OFFSET;
inline constexpr uint8_t PM_TMR_LENGTH = 4;
inline constexpr uint16_t GPE0_OFFSET = platform::GPE0_OFFSET;
inline constexpr uint8_t GPE0_LENGTH = platform::GPE0_LENGTH;

// The CPU-hotplug register block's size, and the GPE0 bit whose handler (\_GPE._E02) scans it.
inline constexpr uint8_t CPU_HOTPLUG_LENGTH = cpu_hotplug::SIZE;
inline constexpr unsigned CPU_HOTPLUG_GPE = cpu_hotplug::GPE_BIT;

// Checks what the tables cannot express: at most MAX_CPUS CPUs, uid = index, unique APIC ids, at least one
// present CPU, a type-0-compatible UID for APIC ids below 255, an ISA SCI, 32-bit APIC addresses, a PM block
// inside the I/O space; with CPU hotplug, a present boot CPU and a register block inside the I/O space that
// does not overlap the PM block. build_tables() calls it; the per-table builders expect a config that passed.
cpuplug::Result<void, std::string> check_config(PlatformConfig const&);

// Per-table builders; each returns the finished table with its checksum set.
std::vector<uint8_t> build_rsdp(uint64_t xsdt_address);
std::vector<uint8_t> build_xsdt(std::span<uint64_t const> table_addresses);
std::vector<uint8_t> build_fadt(PlatformConfig const&, uint64_t facs_address, uint64_t dsdt_address);
std::vector<uint8_t> build_facs();
std::vector<uint8_t> build_madt(PlatformConfig const&);

// The DSDT as an AML tree: its top-level terms (\_SB.CPUS with one Cxxx per possible CPU, \_S5, \_GPE,
// and with cpu_hotplug \_SB.PRES, the CPUS helper methods and \_GPE._E02).
std::vector<aml::Aml> dsdt_terms(PlatformConfig const&);
// The encoded definition block of dsdt_terms() (the DSDT without its header).
std::vector<uint8_t> build_dsdt_body(PlatformConfig const&);
// Wraps encoded AML in a DSDT header (revision 2, so AML integers are 64-bit).
std::vector<uint8_t> build_dsdt(std::span<uint8_t const> aml_body);

// Lays the tables out from `blob_address` (each table 16-byte aligned, FACS 64-byte aligned); fails if the
// blob would exceed `max_size`, if the config is unusable, or if the RSDP would land inside the blob.
cpuplug::Result<BuiltTables, std::string> build_tables(PlatformConfig const&, uint64_t blob_address, uint64_t max_size,
    uint64_t rsdp_address);

} // namespace acpi
