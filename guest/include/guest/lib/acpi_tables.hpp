// The guest's ACPI reader: finds the RSDP (from the start info or by scanning the BIOS area), walks the
// XSDT (or RSDT), and reads the FADT (PM ports, SCI), the MADT (CPUs, IOAPIC, overrides) and the DSDT's
// CPU-hotplug register region. Pure functions over a PhysicalView, so the host tests run them too.
#pragma once

#include <guest/lib/start_info.hpp>

#include <cpuplug/base/result.hpp>

#include <cstddef>
#include <cstdint>

namespace guest::acpi {

enum class Error {
    NoRsdp,
    BadRsdp,
    BadRoot,    // XSDT/RSDT missing, unmapped or failing its checksum
    NoFadt,
    NoMadt,
    BadTable,   // a table is unmapped, too short, or fails its checksum
    TooManyCpus,
};
char const* to_string(Error);

struct Fadt {
    uint8_t revision { 0 };
    uint8_t minor_revision { 0 };
    uint16_t sci_irq { 0 };
    uint16_t pm1a_event { 0 };   // port; status at +0, enable at +len/2
    uint8_t pm1_event_length { 0 };
    uint16_t pm1a_control { 0 };
    uint16_t pm_timer { 0 };     // 0: none
    bool pm_timer_32bit { false };
    uint16_t gpe0 { 0 };         // port; status bytes first, then enable bytes
    uint8_t gpe0_length { 0 };
    uint32_t flags { 0 };
    uint64_t dsdt { 0 };
    bool hw_reduced() const { return (flags & (1u << 20)) != 0; }
};

struct InterruptOverride {
    uint8_t source;  // ISA IRQ
    uint32_t gsi;
    uint16_t flags;  // MPS INTI: [1:0] polarity (3 = active low), [3:2] trigger (3 = level)
};

struct MadtCpu {
    uint32_t uid;
    uint32_t apic_id;
    bool enabled;         // present at boot
    bool online_capable;  // may be hot-added later
};

struct Madt {
    uint64_t lapic_address { 0 };
    bool pcat_compat { false };
    uint32_t ioapic_address { 0 };
    uint32_t ioapic_gsi_base { 0 };
    uint8_t ioapic_id { 0 };
    static constexpr size_t MAX_OVERRIDES = 16;
    InterruptOverride overrides[MAX_OVERRIDES] {};
    size_t override_count { 0 };
    size_t cpu_count { 0 }; // entries written to the caller's array
};

struct Tables {
    uint64_t rsdp { 0 };
    uint64_t madt { 0 };
    Fadt fadt;
};

// The RSDP at `hint` if it is valid, else the first valid one in 0xE0000-0xFFFFF, 16-byte aligned
// (ACPI's rule for BIOS systems). 0 if none.
uint64_t find_rsdp(PhysicalView view, uint64_t hint);

cpuplug::Result<Tables, Error> read_tables(PhysicalView view, uint64_t rsdp);

// Processor entries (types 0 and 9) into `cpus`, in table order; type-9 entries with an id below 255 are
// skipped when type-0 entries exist (Linux's rule). Also the IOAPIC and the interrupt source overrides.
cpuplug::Result<Madt, Error> read_madt(PhysicalView view, uint64_t madt, MadtCpu* cpus, size_t capacity);

// The flags of the override for `irq` (0 when there is none: ISA defaults, edge and active high).
uint16_t override_flags(Madt const& madt, uint8_t irq, uint32_t* gsi);

struct HotplugRegion {
    uint16_t port { 0 };
    uint16_t length { 0 };
};
// Scans the DSDT's AML for OperationRegion(PRST, SystemIO, port, length), QEMU's CPU-hotplug register
// block; port 0 when it is not there.
HotplugRegion find_cpu_hotplug_region(PhysicalView view, uint64_t dsdt);

} // namespace guest::acpi
