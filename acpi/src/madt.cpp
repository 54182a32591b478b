// MADT ("APIC") revision 5: one entry per possible CPU (type 0 below APIC id 255, type 9 from there),
// the IOAPIC, the ISA overrides for IRQ 0 and the SCI, and the LINT1 NMI (ACPI 6.5 §5.2.12; choices: docs/acpi.md).
#include "madt.hpp"
#include "sdt.hpp"

#include <acpi/tables.hpp>
#include <cpuplug/base/assert.hpp>

#include <algorithm>

namespace acpi {

namespace {

constexpr uint32_t MADT_PCAT_COMPAT = 1u << 0; // dual 8259s present; Linux masks them

constexpr uint8_t TYPE_LOCAL_APIC = 0;
constexpr uint8_t TYPE_IO_APIC = 1;
constexpr uint8_t TYPE_INTERRUPT_OVERRIDE = 2;
constexpr uint8_t TYPE_LOCAL_APIC_NMI = 4;
constexpr uint8_t TYPE_LOCAL_X2APIC = 9;
constexpr uint8_t TYPE_LOCAL_X2APIC_NMI = 0xA;

// MPS INTI flags: active high (01), level triggered (11 << 2): the SCI is a level interrupt.
constexpr uint16_t INTI_ACTIVE_HIGH_LEVEL = 0x000D;

constexpr uint8_t NMI_LINT1 = 1;

// A type-0 entry holds an 8-bit APIC id and UID; 0xFF is reserved in both (broadcast / "all processors").
bool fits_local_apic(CpuEntry const& cpu)
{
    return cpu.apic_id < 0xFF && cpu.uid < 0xFF;
}

} // namespace

std::vector<uint8_t> madt::processor_entry(CpuEntry const& cpu, CpuFlag flag)
{
    using namespace sdt;
    std::vector<uint8_t> entry(fits_local_apic(cpu) ? 8 : 16, 0);
    if (entry.size() == 8) {
        put_u8(entry, 0, TYPE_LOCAL_APIC);
        put_u8(entry, 1, 8);
        put_u8(entry, 2, static_cast<uint8_t>(cpu.uid));
        put_u8(entry, 3, static_cast<uint8_t>(cpu.apic_id));
        put_u32(entry, 4, static_cast<uint32_t>(flag));
    } else {
        put_u8(entry, 0, TYPE_LOCAL_X2APIC);
        put_u8(entry, 1, 16);
        put_u32(entry, 4, cpu.apic_id);
        put_u32(entry, 8, static_cast<uint32_t>(flag));
        put_u32(entry, 12, cpu.uid);
    }
    return entry;
}

std::vector<uint8_t> build_madt(PlatformConfig const& config)
{
    using namespace sdt;
    bool const any_x2apic = std::any_of(config.cpus.begin(), config.cpus.end(),
        [](CpuEntry const& cpu) { return !fits_local_apic(cpu); });

    // Every possible CPU, in order: Linux sizes its possible map from these entries, and a slot missing
    // here cannot be hot-added later.
    std::vector<std::vector<uint8_t>> cpu_entries;
    size_t length = SDT_HEADER_SIZE + 8;
    for (auto const& cpu : config.cpus) {
        auto const flag = cpu.present ? madt::CpuFlag::Enabled : madt::CpuFlag::OnlineCapable;
        cpu_entries.push_back(madt::processor_entry(cpu, flag));
        length += cpu_entries.back().size();
    }
    length += 12 + 2 * 10 + 6 + (any_x2apic ? 12 : 0);

    auto madt = make_sdt("APIC", 5, length);
    put_u32(madt, 36, static_cast<uint32_t>(config.lapic_address));
    put_u32(madt, 40, MADT_PCAT_COMPAT);
    size_t at = SDT_HEADER_SIZE + 8;

    for (auto const& entry : cpu_entries) {
        std::copy(entry.begin(), entry.end(), madt.begin() + static_cast<std::ptrdiff_t>(at));
        at += entry.size();
    }

    put_u8(madt, at, TYPE_IO_APIC);
    put_u8(madt, at + 1, 12);
    put_u8(madt, at + 2, config.ioapic_id);
    put_u32(madt, at + 4, static_cast<uint32_t>(config.ioapic_address));
    put_u32(madt, at + 8, 0); // GSI base
    at += 12;

    // The PIT's IRQ 0 is wired to IOAPIC pin 2 on PC-compatible machines; the SCI is level/active high
    // rather than ISA's edge/active high.
    auto put_override = [&](uint8_t irq, uint32_t gsi, uint16_t flags) {
        put_u8(madt, at, TYPE_INTERRUPT_OVERRIDE);
        put_u8(madt, at + 1, 10);
        put_u8(madt, at + 2, 0); // bus: ISA
        put_u8(madt, at + 3, irq);
        put_u32(madt, at + 4, gsi);
        put_u16(madt, at + 8, flags);
        at += 10;
    };
    put_override(0, 2, 0);
    put_override(config.sci_irq, config.sci_irq, INTI_ACTIVE_HIGH_LEVEL);

    put_u8(madt, at, TYPE_LOCAL_APIC_NMI);
    put_u8(madt, at + 1, 6);
    put_u8(madt, at + 2, 0xFF); // all processors
    put_u16(madt, at + 3, 0);   // flags: conforms to the bus
    put_u8(madt, at + 5, NMI_LINT1);
    at += 6;

    // CPUs described by type 9 entries are only covered by an x2APIC NMI entry.
    if (any_x2apic) {
        put_u8(madt, at, TYPE_LOCAL_X2APIC_NMI);
        put_u8(madt, at + 1, 12);
        put_u16(madt, at + 2, 0);
        put_u32(madt, at + 4, 0xFFFF'FFFF); // all processors
        put_u8(madt, at + 8, NMI_LINT1);
        at += 12;
    }
    CPUPLUG_ASSERT(at == madt.size());
    finish_sdt(madt);
    return madt;
}

} // namespace acpi
