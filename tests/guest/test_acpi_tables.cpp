#include <guest/lib/acpi_tables.hpp>

#include <acpi/tables.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

using guest::PhysicalView;
namespace gacpi = guest::acpi;

namespace {

// Guest-physical memory for the parser, 1 MiB, with cpuplug's tables built into it by the VMM's library.
struct Memory {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(0x100000, 0);

    PhysicalView view()
    {
        return { [](void* self, uint64_t address) -> uint64_t {
                    auto& m = *static_cast<Memory*>(self);
                    return address < m.bytes.size() ? m.bytes.size() - address : 0;
                },
            [](void* self, uint64_t address) -> void const* { return static_cast<Memory*>(self)->bytes.data() + address; },
            this };
    }
    void place(::acpi::BuiltTables const& tables)
    {
        std::memcpy(bytes.data() + tables.blob_address, tables.blob.data(), tables.blob.size());
        std::memcpy(bytes.data() + tables.rsdp_address, tables.rsdp.data(), tables.rsdp.size());
    }
};

::acpi::PlatformConfig config_for(uint32_t possible, uint32_t present)
{
    ::acpi::PlatformConfig config;
    for (uint32_t i = 0; i < possible; ++i)
        config.cpus.push_back({ i, i < 8 ? i : i + 4, i < present });
    return config;
}

::acpi::BuiltTables build(::acpi::PlatformConfig const& config)
{
    auto tables = ::acpi::build_tables(config, 0xA0000, 0x40000, 0xE0000);
    REQUIRE(tables.has_value());
    return tables.release_value();
}

::acpi::BuiltTables build(uint32_t possible, uint32_t present)
{
    return build(config_for(possible, present));
}

} // namespace

TEST_CASE("the guest finds and reads the tables the VMM builds", "[guest][acpi]")
{
    Memory memory;
    memory.place(build(300, 260));
    CHECK(gacpi::find_rsdp(memory.view(), 0) == 0xE0000);     // by scanning
    CHECK(gacpi::find_rsdp(memory.view(), 0xE0000) == 0xE0000); // from the start info
    auto tables = gacpi::read_tables(memory.view(), 0xE0000);
    REQUIRE(tables.has_value());
    CHECK(tables->fadt.sci_irq == 9);
    CHECK(tables->fadt.pm1a_event == 0x600);
    CHECK(tables->fadt.pm1a_control == 0x604);
    CHECK(tables->fadt.pm_timer == 0x608);
    CHECK(tables->fadt.gpe0 == 0x620);
    CHECK(tables->fadt.gpe0_length == 16);
    CHECK(tables->fadt.revision == 6);
    CHECK(tables->fadt.minor_revision == 3);
    CHECK_FALSE(tables->fadt.hw_reduced());

    std::vector<gacpi::MadtCpu> cpus(1024);
    auto madt = gacpi::read_madt(memory.view(), tables->madt, cpus.data(), cpus.size());
    REQUIRE(madt.has_value());
    REQUIRE(madt->cpu_count == 300);
    CHECK(madt->ioapic_address == 0xFEC00000);
    CHECK(madt->lapic_address == 0xFEE00000);
    for (uint32_t i = 0; i < 300; ++i) {
        INFO(i);
        CHECK(cpus[i].uid == i);
        CHECK(cpus[i].apic_id == (i < 8 ? i : i + 4));
        CHECK(cpus[i].enabled == (i < 260));
        CHECK(cpus[i].online_capable == (i >= 260));
    }
    uint32_t gsi = 0;
    CHECK(gacpi::override_flags(*madt, 9, &gsi) == 0x000D);
    CHECK(gsi == 9);
    CHECK(gacpi::override_flags(*madt, 0, &gsi) == 0);
    CHECK(gsi == 2);
}

TEST_CASE("a corrupt table is refused", "[guest][acpi]")
{
    Memory memory;
    auto built = build(4, 4);
    memory.place(built);
    auto tables = gacpi::read_tables(memory.view(), 0xE0000);
    REQUIRE(tables.has_value());
    memory.bytes[tables->madt + 50] ^= 0xFF; // breaks the MADT's checksum
    std::vector<gacpi::MadtCpu> cpus(8);
    CHECK(gacpi::read_madt(memory.view(), tables->madt, cpus.data(), cpus.size()).error() == gacpi::Error::BadTable);
    memory.bytes[0xE0000 + 8] ^= 0xFF; // and the RSDP's
    CHECK(gacpi::read_tables(memory.view(), 0xE0000).error() == gacpi::Error::BadRsdp);
    CHECK(gacpi::find_rsdp(memory.view(), 0) == 0);
    CHECK(gacpi::read_tables(memory.view(), 0).error() == gacpi::Error::NoRsdp);
}

TEST_CASE("before MADT revision 5 a disabled CPU is one that may be hot-added", "[guest][acpi]")
{
    // QEMU 7.2 writes a revision 1 MADT with no Online Capable bits: Linux reads its disabled entries as
    // hot-pluggable CPUs, and so does the guest. From revision 5 only the bit says so.
    Memory memory;
    memory.place(build(8, 4));
    auto tables = gacpi::read_tables(memory.view(), 0xE0000);
    REQUIRE(tables.has_value());
    uint8_t* madt_bytes = &memory.bytes[tables->madt];
    auto set_revision = [&](uint8_t revision) {
        madt_bytes[9] = static_cast<uint8_t>(madt_bytes[9] + madt_bytes[8] - revision); // keep the checksum
        madt_bytes[8] = revision;
    };
    auto clear_online_capable = [&] {
        uint32_t length = madt_bytes[4] | madt_bytes[5] << 8;
        for (uint32_t offset = 44; offset + 2 <= length; offset += madt_bytes[offset + 1]) {
            if (madt_bytes[offset] == 0 && (madt_bytes[offset + 4] & 2)) {
                madt_bytes[offset + 4] &= ~2;
                madt_bytes[9] = static_cast<uint8_t>(madt_bytes[9] + 2);
            }
        }
    };
    clear_online_capable();
    std::vector<gacpi::MadtCpu> cpus(16);
    auto madt = gacpi::read_madt(memory.view(), tables->madt, cpus.data(), cpus.size());
    REQUIRE(madt.has_value());
    CHECK(madt->cpu_count == 4); // revision 5: a disabled CPU without the bit can never run

    set_revision(1);
    madt = gacpi::read_madt(memory.view(), tables->madt, cpus.data(), cpus.size());
    REQUIRE(madt.has_value());
    REQUIRE(madt->cpu_count == 8);
    for (uint32_t i = 0; i < 8; ++i) {
        INFO(i);
        CHECK(cpus[i].enabled == (i < 4));
        CHECK(cpus[i].online_capable == (i >= 4));
    }
}

TEST_CASE("a MADT with more CPUs than room is refused", "[guest][acpi]")
{
    Memory memory;
    memory.place(build(16, 16));
    auto tables = gacpi::read_tables(memory.view(), 0xE0000);
    REQUIRE(tables.has_value());
    std::vector<gacpi::MadtCpu> cpus(8);
    CHECK(gacpi::read_madt(memory.view(), tables->madt, cpus.data(), cpus.size()).error() == gacpi::Error::TooManyCpus);
}

TEST_CASE("the DSDT scan finds QEMU's CPU-hotplug region and nothing in a DSDT without it", "[guest][acpi]")
{
    Memory memory;
    memory.place(build(4, 4));
    auto tables = gacpi::read_tables(memory.view(), 0xE0000);
    REQUIRE(tables.has_value());
    CHECK(gacpi::find_cpu_hotplug_region(memory.view(), tables->fadt.dsdt).port == 0);

    // A hand-made DSDT holding OperationRegion(PRST, SystemIO, 0x0CD8, 0x0C).
    std::vector<uint8_t> dsdt(36, 0);
    std::memcpy(dsdt.data(), "DSDT", 4);
    uint8_t const region[] = { 0x5B, 0x80, 'P', 'R', 'S', 'T', 0x01, 0x0B, 0xD8, 0x0C, 0x0A, 0x0C };
    dsdt.insert(dsdt.end(), std::begin(region), std::end(region));
    uint32_t length = static_cast<uint32_t>(dsdt.size());
    std::memcpy(dsdt.data() + 4, &length, 4);
    uint8_t sum = 0;
    for (auto b : dsdt)
        sum = static_cast<uint8_t>(sum + b);
    dsdt[9] = static_cast<uint8_t>(-sum);
    std::memcpy(memory.bytes.data() + 0x80000, dsdt.data(), dsdt.size());
    auto found = gacpi::find_cpu_hotplug_region(memory.view(), 0x80000);
    CHECK(found.port == 0x0CD8);
    CHECK(found.length == 0x0C);
}

TEST_CASE("the DSDT scan finds the CPU-hotplug region in the DSDT the VMM builds with cpu_hotplug", "[guest][acpi]")
{
    struct Case {
        bool cpu_hotplug;
        uint16_t base;
        uint16_t expected_port;
    };
    for (auto [cpu_hotplug, base, expected_port] : { Case { true, 0x0CD8, 0x0CD8 }, Case { true, 0xAF00, 0xAF00 },
             Case { false, 0x0CD8, 0 } }) {
        INFO("cpu_hotplug " << cpu_hotplug << ", base " << base);
        auto config = config_for(300, 2);
        config.cpu_hotplug = cpu_hotplug;
        config.cpu_hotplug_base = base;
        Memory memory;
        memory.place(build(config));
        auto tables = gacpi::read_tables(memory.view(), 0xE0000);
        REQUIRE(tables.has_value());
        auto found = gacpi::find_cpu_hotplug_region(memory.view(), tables->fadt.dsdt);
        CHECK(found.port == expected_port);
        CHECK(found.length == (cpu_hotplug ? 12 : 0));
    }
}
