// build_tables(): checks the platform config, builds every table and lays them out in one blob in guest memory.
#include "sdt.hpp"

#include <acpi/tables.hpp>

#include <string>
#include <unordered_set>

namespace acpi {

namespace {

std::string hex(uint64_t value)
{
    constexpr char DIGITS[] = "0123456789abcdef";
    std::string text;
    do {
        text.insert(text.begin(), DIGITS[value & 0xF]);
        value >>= 4;
    } while (value != 0);
    return "0x" + text;
}

// Rounds `value` up to `alignment` (a power of two); false if that wraps.
bool align_up(uint64_t value, uint64_t alignment, uint64_t& aligned)
{
    uint64_t mask = alignment - 1;
    if (value > UINT64_MAX - mask)
        return false;
    aligned = (value + mask) & ~mask;
    return true;
}

} // namespace

cpuplug::Result<void, std::string> check_config(PlatformConfig const& config)
{
    auto const& cpus = config.cpus;
    if (cpus.empty())
        return cpuplug::unexpected(std::string("ACPI tables need at least one possible CPU"));
    if (cpus.size() > MAX_CPUS)
        return cpuplug::unexpected(std::to_string(cpus.size()) + " possible CPUs, but the DSDT names CPUs C000..CFFF, so at most "
            + std::to_string(MAX_CPUS));
    bool any_present = false;
    std::unordered_set<uint32_t> apic_ids;
    for (size_t i = 0; i < cpus.size(); ++i) {
        auto const& cpu = cpus[i];
        if (cpu.uid != i)
            return cpuplug::unexpected("CPU " + std::to_string(i) + " has UID " + std::to_string(cpu.uid)
                + "; the UID must be the CPU's index, which also names its DSDT object");
        if (cpu.apic_id == UINT32_MAX)
            return cpuplug::unexpected("CPU " + std::to_string(i) + " has APIC id 0xffffffff, the x2APIC broadcast id");
        if (!apic_ids.insert(cpu.apic_id).second)
            return cpuplug::unexpected("CPU " + std::to_string(i) + " repeats APIC id " + std::to_string(cpu.apic_id));
        // Linux ignores type-9 entries with an APIC id below 255 when type-0 entries exist, and a type-0
        // entry's UID is one byte (0xFF meaning "all"), so such a CPU cannot be described.
        if (cpu.apic_id < 0xFF && cpu.uid >= 0xFF)
            return cpuplug::unexpected("CPU " + std::to_string(i) + " has APIC id " + std::to_string(cpu.apic_id)
                + " below 255 but a UID above 254; give CPUs from index 255 on APIC ids of 255 or more");
        any_present = any_present || cpu.present;
    }
    if (!any_present)
        return cpuplug::unexpected(std::string("no CPU is present at boot; at least the boot CPU must be"));
    if (config.sci_irq == 0 || config.sci_irq == 2 || config.sci_irq > 15)
        return cpuplug::unexpected("SCI IRQ " + std::to_string(config.sci_irq)
            + " is not a free ISA IRQ (1 or 3..15; IRQ 0 is the PIT on GSI 2)");
    if (config.pm_base == 0 || uint32_t(config.pm_base) + GPE0_OFFSET + GPE0_LENGTH > 0x10000)
        return cpuplug::unexpected("PM block at I/O port " + hex(config.pm_base) + " does not fit below port 0x10000");
    if (config.lapic_address > UINT32_MAX || config.ioapic_address > UINT32_MAX)
        return cpuplug::unexpected("the MADT holds 32-bit LAPIC and IOAPIC addresses; got " + hex(config.lapic_address)
            + " and " + hex(config.ioapic_address));
    if (config.cpu_hotplug) {
        // The boot CPU is the one CPU the AML never offers to eject, so it must be one that runs.
        if (config.boot_cpu >= cpus.size() || !cpus[config.boot_cpu].present)
            return cpuplug::unexpected("boot CPU " + std::to_string(config.boot_cpu) + " is not a CPU present at boot");
        uint32_t const base = config.cpu_hotplug_base;
        uint32_t const pm_end = uint32_t(config.pm_base) + GPE0_OFFSET + GPE0_LENGTH;
        if (base == 0 || base + CPU_HOTPLUG_LENGTH > 0x10000)
            return cpuplug::unexpected("CPU hotplug block at I/O port " + hex(base) + " does not lie within ports 0x1..0xffff");
        if (base < pm_end && config.pm_base < base + CPU_HOTPLUG_LENGTH)
            return cpuplug::unexpected("CPU hotplug block at I/O port " + hex(base) + " overlaps the PM block at "
                + hex(config.pm_base) + ".." + hex(pm_end - 1));
    }
    return {};
}

cpuplug::Result<BuiltTables, std::string> build_tables(PlatformConfig const& config, uint64_t blob_address,
    uint64_t max_size, uint64_t rsdp_address)
{
    TRY(check_config(config));
    if (rsdp_address % 16 != 0)
        return cpuplug::unexpected("RSDP address " + hex(rsdp_address)
            + " is not 16-byte aligned (BIOS-style scanners only look at 16-byte boundaries)");

    // Tables whose contents do not depend on where anything sits come first; their sizes fix the layout.
    auto facs = build_facs();
    auto madt = build_madt(config);
    auto dsdt = build_dsdt(build_dsdt_body(config));
    size_t const xsdt_size = SDT_HEADER_SIZE + 2 * 8;

    struct Slot {
        char const* signature;
        uint64_t size;
        uint64_t alignment;
        uint64_t address;
    };
    // The FACS needs 64-byte alignment (its global lock); 16 for the rest keeps every table on a paragraph.
    Slot slots[] = {
        { "XSDT", xsdt_size, 16, 0 },
        { "FACP", FADT_SIZE, 16, 0 },
        { "FACS", facs.size(), 64, 0 },
        { "APIC", madt.size(), 16, 0 },
        { "DSDT", dsdt.size(), 16, 0 },
    };
    uint64_t cursor = blob_address;
    for (auto& slot : slots) {
        if (!align_up(cursor, slot.alignment, slot.address) || slot.address > UINT64_MAX - slot.size)
            return cpuplug::unexpected("ACPI tables from " + hex(blob_address) + " run past the end of the address space");
        cursor = slot.address + slot.size;
    }
    uint64_t const blob_size = cursor - blob_address;
    if (blob_size > max_size)
        return cpuplug::unexpected("ACPI tables for " + std::to_string(config.cpus.size()) + " CPUs need "
            + std::to_string(blob_size) + " bytes but only " + std::to_string(max_size) + " are reserved at "
            + hex(blob_address));
    if (rsdp_address < cursor && blob_address < rsdp_address + RSDP_SIZE)
        return cpuplug::unexpected("RSDP at " + hex(rsdp_address) + " overlaps the ACPI tables at " + hex(blob_address)
            + ".." + hex(cursor));

    auto& [xsdt_slot, fadt_slot, facs_slot, madt_slot, dsdt_slot] = slots;
    auto fadt = build_fadt(config, facs_slot.address, dsdt_slot.address);
    uint64_t const xsdt_entries[] = { fadt_slot.address, madt_slot.address };
    auto xsdt = build_xsdt(xsdt_entries);

    BuiltTables built;
    built.blob.assign(blob_size, 0);
    built.blob_address = blob_address;
    built.rsdp = build_rsdp(xsdt_slot.address);
    built.rsdp_address = rsdp_address;
    std::vector<uint8_t> const* contents[] = { &xsdt, &fadt, &facs, &madt, &dsdt };
    for (size_t i = 0; i < std::size(slots); ++i) {
        auto const& slot = slots[i];
        CPUPLUG_ASSERT(contents[i]->size() == slot.size);
        std::copy(contents[i]->begin(), contents[i]->end(), built.blob.begin() + (slot.address - blob_address));
        built.tables.push_back({ slot.signature, slot.address, static_cast<uint32_t>(slot.size) });
    }
    return built;
}

} // namespace acpi
