// ACPI table reading for the guest. Every table is bounds-checked through the PhysicalView and
// checksum-verified before a field of it is trusted.
#include <guest/lib/acpi_tables.hpp>

namespace guest::acpi {

namespace {

using cpuplug::unexpected;

template<typename T>
T load(uint8_t const* p)
{
    T value;
    __builtin_memcpy(&value, p, sizeof(T));
    return value;
}

bool sums_to_zero(uint8_t const* p, size_t length)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < length; ++i)
        sum = static_cast<uint8_t>(sum + p[i]);
    return sum == 0;
}

bool signature_is(uint8_t const* p, char const* signature)
{
    for (int i = 0; i < 4; ++i)
        if (p[i] != static_cast<uint8_t>(signature[i]))
            return false;
    return true;
}

constexpr uint32_t HEADER_SIZE = 36;
constexpr uint32_t MAX_TABLE_SIZE = 1u << 20;

// A whole SDT: header in bounds, length sane, contents in bounds, checksum good. nullptr otherwise.
uint8_t const* checked_table(PhysicalView view, uint64_t address, uint32_t* length_out)
{
    auto const* header = view.at<uint8_t>(address, HEADER_SIZE);
    if (!header)
        return nullptr;
    uint32_t length = load<uint32_t>(header + 4);
    if (length < HEADER_SIZE || length > MAX_TABLE_SIZE)
        return nullptr;
    auto const* table = view.at<uint8_t>(address, length);
    if (!table || !sums_to_zero(table, length))
        return nullptr;
    *length_out = length;
    return table;
}

bool valid_rsdp(PhysicalView view, uint64_t address)
{
    auto const* p = view.at<uint8_t>(address, 20);
    if (!p || !signature_is(p, "RSD ") || !signature_is(p + 4, "PTR ") || !sums_to_zero(p, 20))
        return false;
    if (p[15] >= 2) {
        auto const* full = view.at<uint8_t>(address, 36);
        if (!full || load<uint32_t>(full + 20) < 36 || !sums_to_zero(full, 36))
            return false;
    }
    return true;
}

// A Generic Address Structure's port, if it is in I/O space.
uint16_t gas_port(uint8_t const* gas) { return gas[0] == 1 ? static_cast<uint16_t>(load<uint64_t>(gas + 4)) : 0; }

Fadt parse_fadt(uint8_t const* t, uint32_t length)
{
    Fadt f;
    f.revision = t[8];
    auto u32 = [&](uint32_t offset) -> uint32_t { return offset + 4 <= length ? load<uint32_t>(t + offset) : 0; };
    auto u8 = [&](uint32_t offset) -> uint8_t { return offset < length ? t[offset] : 0; };
    f.sci_irq = static_cast<uint16_t>(length >= 48 ? load<uint16_t>(t + 46) : 0);
    f.pm1a_event = static_cast<uint16_t>(u32(56));
    f.pm1a_control = static_cast<uint16_t>(u32(64));
    f.pm_timer = static_cast<uint16_t>(u32(76));
    f.gpe0 = static_cast<uint16_t>(u32(80));
    f.pm1_event_length = u8(88);
    f.gpe0_length = u8(92);
    f.flags = u32(112);
    f.pm_timer_32bit = (f.flags & (1u << 8)) != 0;
    f.minor_revision = static_cast<uint8_t>(u8(131) & 0xF);
    f.dsdt = u32(40);
    if (length >= 148) {
        uint64_t x_dsdt = load<uint64_t>(t + 140);
        if (x_dsdt != 0)
            f.dsdt = x_dsdt;
    }
    // ACPI 2.0+ extended blocks take precedence when they name I/O ports.
    auto x_port = [&](uint32_t offset, uint16_t& port) {
        if (offset + 12 <= length)
            if (uint16_t p = gas_port(t + offset))
                port = p;
    };
    x_port(148, f.pm1a_event);
    x_port(172, f.pm1a_control);
    x_port(208, f.pm_timer);
    x_port(220, f.gpe0);
    return f;
}

} // namespace

char const* to_string(Error error)
{
    switch (error) {
    case Error::NoRsdp:
        return "no RSDP (neither from the loader nor in 0xE0000-0xFFFFF)";
    case Error::BadRsdp:
        return "the RSDP fails its checksum";
    case Error::BadRoot:
        return "the XSDT/RSDT is missing or corrupt";
    case Error::NoFadt:
        return "no FADT";
    case Error::NoMadt:
        return "no MADT";
    case Error::BadTable:
        return "an ACPI table is out of bounds or fails its checksum";
    case Error::TooManyCpus:
        return "the MADT lists more CPUs than the kernel supports";
    }
    return "unknown ACPI error";
}

uint64_t find_rsdp(PhysicalView view, uint64_t hint)
{
    if (hint != 0 && valid_rsdp(view, hint))
        return hint;
    for (uint64_t address = 0xE0000; address < 0x100000; address += 16) {
        auto const* p = view.at<uint8_t>(address, 8);
        if (p && signature_is(p, "RSD ") && valid_rsdp(view, address))
            return address;
    }
    return 0;
}

cpuplug::Result<Tables, Error> read_tables(PhysicalView view, uint64_t rsdp)
{
    if (rsdp == 0)
        return unexpected(Error::NoRsdp);
    if (!valid_rsdp(view, rsdp))
        return unexpected(Error::BadRsdp);
    auto const* r = view.at<uint8_t>(rsdp, 20);
    bool xsdt = r[15] >= 2 && load<uint64_t>(view.at<uint8_t>(rsdp, 36) + 24) != 0;
    uint64_t root = xsdt ? load<uint64_t>(view.at<uint8_t>(rsdp, 36) + 24) : load<uint32_t>(r + 16);
    uint32_t root_length = 0;
    auto const* root_table = checked_table(view, root, &root_length);
    if (!root_table || !signature_is(root_table, xsdt ? "XSDT" : "RSDT"))
        return unexpected(Error::BadRoot);

    Tables tables;
    tables.rsdp = rsdp;
    uint32_t entry_size = xsdt ? 8 : 4;
    uint64_t fadt_address = 0;
    for (uint32_t offset = HEADER_SIZE; offset + entry_size <= root_length; offset += entry_size) {
        uint64_t address = xsdt ? load<uint64_t>(root_table + offset) : load<uint32_t>(root_table + offset);
        auto const* header = view.at<uint8_t>(address, HEADER_SIZE);
        if (!header)
            continue;
        if (signature_is(header, "FACP") && fadt_address == 0)
            fadt_address = address;
        else if (signature_is(header, "APIC") && tables.madt == 0)
            tables.madt = address;
    }
    if (fadt_address == 0)
        return unexpected(Error::NoFadt);
    uint32_t fadt_length = 0;
    auto const* fadt = checked_table(view, fadt_address, &fadt_length);
    if (!fadt)
        return unexpected(Error::BadTable);
    tables.fadt = parse_fadt(fadt, fadt_length);
    if (tables.madt == 0)
        return unexpected(Error::NoMadt);
    return tables;
}

cpuplug::Result<Madt, Error> read_madt(PhysicalView view, uint64_t address, MadtCpu* cpus, size_t capacity)
{
    uint32_t length = 0;
    auto const* t = checked_table(view, address, &length);
    if (!t || !signature_is(t, "APIC") || length < 44)
        return unexpected(Error::BadTable);
    Madt madt;
    uint8_t madt_revision = t[8];
    madt.lapic_address = load<uint32_t>(t + 36);
    madt.pcat_compat = (load<uint32_t>(t + 40) & 1) != 0;

    // Two passes over the entries: does the table have type-0 entries (then type-9 ones below 255 are
    // ignored), and then the entries themselves.
    bool has_local_apic = false;
    for (uint32_t offset = 44; offset + 2 <= length;) {
        uint8_t type = t[offset], size = t[offset + 1];
        if (size < 2 || offset + size > length)
            return unexpected(Error::BadTable);
        has_local_apic = has_local_apic || type == 0;
        offset += size;
    }
    for (uint32_t offset = 44; offset + 2 <= length;) {
        uint8_t const* e = t + offset;
        uint8_t type = e[0], size = e[1];
        offset += size;
        MadtCpu cpu {};
        bool is_cpu = false;
        if (type == 0 && size >= 8) {
            uint32_t flags = load<uint32_t>(e + 4);
            cpu = { e[2], e[3], (flags & 1) != 0, (flags & 2) != 0 };
            is_cpu = true;
        } else if (type == 9 && size >= 16) {
            uint32_t id = load<uint32_t>(e + 4);
            uint32_t flags = load<uint32_t>(e + 8);
            if (has_local_apic && id < 255)
                continue;
            cpu = { load<uint32_t>(e + 12), id, (flags & 1) != 0, (flags & 2) != 0 };
            is_cpu = true;
        } else if (type == 1 && size >= 12 && madt.ioapic_address == 0) {
            madt.ioapic_id = e[2];
            madt.ioapic_address = load<uint32_t>(e + 4);
            madt.ioapic_gsi_base = load<uint32_t>(e + 8);
        } else if (type == 2 && size >= 10 && madt.override_count < Madt::MAX_OVERRIDES) {
            madt.overrides[madt.override_count++] = { e[3], load<uint32_t>(e + 4), load<uint16_t>(e + 8) };
        } else if (type == 5 && size >= 12) {
            madt.lapic_address = load<uint64_t>(e + 4);
        }
        if (!is_cpu)
            continue;
        // Before MADT revision 5 (ACPI 6.3) there is no Online Capable bit and a disabled entry is a CPU
        // that may be hot-added, as Linux reads it: QEMU 7.2 writes revision 1 tables so.
        if (!cpu.enabled && madt_revision < 5 && cpu.apic_id != (type == 0 ? 0xFFu : 0xFFFFFFFFu))
            cpu.online_capable = true;
        if (!(cpu.enabled || cpu.online_capable))
            continue; // a CPU that can never run is not a CPU of ours
        if (madt.cpu_count >= capacity)
            return unexpected(Error::TooManyCpus);
        cpus[madt.cpu_count++] = cpu;
    }
    return madt;
}

uint16_t override_flags(Madt const& madt, uint8_t irq, uint32_t* gsi)
{
    for (size_t i = 0; i < madt.override_count; ++i)
        if (madt.overrides[i].source == irq) {
            if (gsi)
                *gsi = madt.overrides[i].gsi;
            return madt.overrides[i].flags;
        }
    if (gsi)
        *gsi = irq;
    return 0;
}

HotplugRegion find_cpu_hotplug_region(PhysicalView view, uint64_t dsdt)
{
    uint32_t length = 0;
    auto const* t = checked_table(view, dsdt, &length);
    if (!t || !signature_is(t, "DSDT"))
        return {};
    // OperationRegion: 5B 80 NameSeg "PRST" space(01 SystemIO) offset(TermArg) length(TermArg). The
    // integers come in the shortest encoding; QEMU and cpuplug use a word and a byte.
    auto integer = [&](uint32_t& offset, uint64_t& value) -> bool {
        if (offset >= length)
            return false;
        uint8_t prefix = t[offset];
        uint32_t size = prefix == 0x0A ? 1 : prefix == 0x0B ? 2 : prefix == 0x0C ? 4 : 0;
        if (prefix == 0x00 || prefix == 0x01) {
            value = prefix;
            offset += 1;
            return true;
        }
        if (size == 0 || offset + 1 + size > length)
            return false;
        value = 0;
        for (uint32_t i = 0; i < size; ++i)
            value |= uint64_t(t[offset + 1 + i]) << (8 * i);
        offset += 1 + size;
        return true;
    };
    for (uint32_t offset = HEADER_SIZE; offset + 7 <= length; ++offset) {
        if (t[offset] != 0x5B || t[offset + 1] != 0x80 || !signature_is(t + offset + 2, "PRST") || t[offset + 6] != 1)
            continue;
        uint32_t cursor = offset + 7;
        uint64_t port = 0, size = 0;
        if (integer(cursor, port) && integer(cursor, size) && port != 0 && port <= 0xFFFF && size <= 0xFFFF)
            return { static_cast<uint16_t>(port), static_cast<uint16_t>(size) };
    }
    return {};
}

} // namespace guest::acpi
