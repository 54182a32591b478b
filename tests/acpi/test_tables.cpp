// Table contents and layout: field offsets as in ACPI 6.5 §5.2 (RSDP §5.2.5, header §5.2.6, FADT §5.2.9, MADT
// §5.2.12), checksums, and where build_tables() puts things.
#include "bytes.hpp"

#include <acpi/checksum.hpp>
#include <acpi/tables.hpp>

#include <catch2/catch.hpp>

#include <algorithm>

using namespace acpi_test;

namespace {

constexpr uint64_t BLOB_ADDRESS = 0x000F'0000;
constexpr uint64_t BLOB_MAX = 0x10000;
constexpr uint64_t RSDP_ADDRESS = 0x000E'0000;

// `count` possible CPUs with APIC id = index, the first `present` of them present.
acpi::PlatformConfig make_config(uint32_t count, uint32_t present)
{
    acpi::PlatformConfig config;
    for (uint32_t i = 0; i < count; ++i)
        config.cpus.push_back({ i, i, i < present });
    return config;
}

acpi::BuiltTables build(acpi::PlatformConfig const& config, uint64_t blob_address = BLOB_ADDRESS,
    uint64_t max_size = 0x100000)
{
    auto built = acpi::build_tables(config, blob_address, max_size, RSDP_ADDRESS);
    INFO((built ? std::string() : built.error()));
    REQUIRE(built.has_value());
    return built.release_value();
}

acpi::TableInfo const& info(acpi::BuiltTables const& built, std::string const& signature)
{
    auto it = std::find_if(built.tables.begin(), built.tables.end(),
        [&](acpi::TableInfo const& t) { return t.signature == signature; });
    REQUIRE(it != built.tables.end());
    return *it;
}

std::span<uint8_t const> table(acpi::BuiltTables const& built, std::string const& signature)
{
    auto const& t = info(built, signature);
    return std::span<uint8_t const>(built.blob).subspan(t.address - built.blob_address, t.length);
}

struct MadtEntry {
    size_t offset;
    uint8_t type;
    std::span<uint8_t const> bytes;
};

// Walks the MADT's interrupt controller structures (from offset 44) by their length bytes.
std::vector<MadtEntry> madt_entries(std::span<uint8_t const> madt)
{
    std::vector<MadtEntry> entries;
    size_t at = 44;
    while (at < madt.size()) {
        REQUIRE(at + 2 <= madt.size());
        uint8_t length = madt[at + 1];
        REQUIRE(length >= 2);
        REQUIRE(at + length <= madt.size());
        entries.push_back({ at, madt[at], madt.subspan(at, length) });
        at += length;
    }
    CHECK(at == madt.size());
    return entries;
}

void check_header(std::span<uint8_t const> t, char const* signature, uint8_t revision)
{
    CHECK(chars(t, 0, 4) == signature);
    CHECK(u32(t, 4) == t.size());
    CHECK(u8(t, 8) == revision);
    CHECK(chars(t, 10, 6) == "CPUPLG");
    CHECK(chars(t, 16, 8) == "CPUPLUG ");
    CHECK(u32(t, 24) == 1);
    CHECK(chars(t, 28, 4) == "CPPL");
    CHECK(u32(t, 32) == 1);
}

} // namespace

TEST_CASE("every table's checksum sums to zero", "[acpi][tables]")
{
    for (uint32_t count : { 1u, 8u, 300u }) {
        auto built = build(make_config(count, 1));
        for (auto const& t : built.tables) {
            if (t.signature == "FACS")
                continue; // the FACS has no checksum
            INFO(t.signature << " for " << count << " CPUs");
            CHECK(acpi::sum(table(built, t.signature)) == 0);
        }
        // The RSDP has two: the ACPI 1.0 one over 20 bytes, the extended one over all 36.
        REQUIRE(built.rsdp.size() == 36);
        CHECK(acpi::sum(std::span(built.rsdp).first(20)) == 0);
        CHECK(acpi::sum(built.rsdp) == 0);
    }
}

TEST_CASE("the RSDP is revision 2 and points at the XSDT only", "[acpi][tables]")
{
    auto built = build(make_config(2, 1));
    std::span<uint8_t const> rsdp = built.rsdp;
    CHECK(built.rsdp_address == RSDP_ADDRESS);
    CHECK(chars(rsdp, 0, 8) == "RSD PTR ");
    CHECK(chars(rsdp, 9, 6) == "CPUPLG");
    CHECK(u8(rsdp, 15) == 2);
    CHECK(u32(rsdp, 16) == 0); // no RSDT
    CHECK(u32(rsdp, 20) == 36);
    CHECK(u64(rsdp, 24) == info(built, "XSDT").address);
    CHECK(hex(rsdp.subspan(33, 3)) == "00 00 00");
}

TEST_CASE("the XSDT lists the FADT then the MADT", "[acpi][tables]")
{
    auto built = build(make_config(4, 2));
    auto xsdt = table(built, "XSDT");
    check_header(xsdt, "XSDT", 1);
    REQUIRE(xsdt.size() == 36 + 2 * 8);
    CHECK(u64(xsdt, 36) == info(built, "FACP").address);
    CHECK(u64(xsdt, 44) == info(built, "APIC").address);
}

// The offsets checked here are the FADT field offsets of ACPI 6.5 §5.2.9 (the FADT format table).
TEST_CASE("the FADT is revision 6.3 with the PM block at its ACPI offsets", "[acpi][tables][fadt]")
{
    auto built = build(make_config(8, 2));
    auto fadt = table(built, "FACP");
    REQUIRE(fadt.size() == 276);
    check_header(fadt, "FACP", 6);
    CHECK(u8(fadt, 131) == 3); // minor version: 6.3
    CHECK(u32(fadt, 36) == info(built, "FACS").address); // FIRMWARE_CTRL
    CHECK(u32(fadt, 40) == info(built, "DSDT").address); // DSDT
    CHECK(u64(fadt, 132) == info(built, "FACS").address); // X_FIRMWARE_CTRL
    CHECK(u64(fadt, 140) == info(built, "DSDT").address); // X_DSDT
    CHECK(u16(fadt, 46) == 9);        // SCI_INT
    CHECK(u32(fadt, 48) == 0);        // SMI_CMD: no SMM
    CHECK(u8(fadt, 52) == 0);         // ACPI_ENABLE
    CHECK(u8(fadt, 53) == 0);         // ACPI_DISABLE
    CHECK(u32(fadt, 56) == 0x600);    // PM1a_EVT_BLK
    CHECK(u32(fadt, 60) == 0);        // PM1b_EVT_BLK
    CHECK(u32(fadt, 64) == 0x604);    // PM1a_CNT_BLK
    CHECK(u32(fadt, 76) == 0x608);    // PM_TMR_BLK
    CHECK(u32(fadt, 80) == 0x620);    // GPE0_BLK
    CHECK(u8(fadt, 88) == 4);         // PM1_EVT_LEN
    CHECK(u8(fadt, 89) == 2);         // PM1_CNT_LEN
    CHECK(u8(fadt, 91) == 4);         // PM_TMR_LEN
    CHECK(u8(fadt, 92) == 16);        // GPE0_BLK_LEN
    CHECK(u16(fadt, 96) == 0x0FFF);   // P_LVL2_LAT: no C2
    CHECK(u16(fadt, 98) == 0x0FFF);   // P_LVL3_LAT: no C3
    CHECK(u16(fadt, 109) == 0x0024);  // IAPC_BOOT_ARCH: VGA not present | CMOS RTC not present
    uint32_t flags = u32(fadt, 112);
    CHECK(flags == 0x0000'84A5); // WBINVD | PROC_C1 | SLP_BUTTON | RTC_S4 | RESET_REG_SUP | USE_PLATFORM_CLOCK
    CHECK((flags & (1u << 4)) == 0);  // PWR_BUTTON clear: fixed-feature power button
    CHECK((flags & (1u << 20)) == 0); // not HW_REDUCED_ACPI
    CHECK((flags & (1u << 10)) != 0); // RESET_REG_SUP
    // RESET_REG: System I/O, 8 bits at bit 0, byte access, port 0xCF9; then RESET_VALUE 0x06.
    CHECK(hex(fadt.subspan(116, 13)) == "01 08 00 01 F9 0C 00 00 00 00 00 00 06");
    CHECK((u16(fadt, 109) & 0x0002) == 0); // no 8042 flag: no keyboard for Linux to probe
}

TEST_CASE("the FADT's X_ blocks match the 32-bit blocks in address and width", "[acpi][tables][fadt]")
{
    auto config = make_config(2, 1);
    config.pm_base = 0xB000;
    config.sci_irq = 11;
    auto built = build(config);
    auto fadt = table(built, "FACP");
    CHECK(u16(fadt, 46) == 11);
    struct Gas {
        size_t offset;
        uint64_t port;
        uint8_t bits;
        uint8_t access;
    };
    // access sizes: 16-bit PM1 status/enable and control, 32-bit timer, 8-bit GPE registers
    for (auto gas : { Gas { 148, 0xB000, 32, 2 }, Gas { 172, 0xB004, 16, 2 }, Gas { 208, 0xB008, 32, 3 },
             Gas { 220, 0xB020, 128, 1 } }) {
        INFO("GAS at " << gas.offset);
        CHECK(u8(fadt, gas.offset) == 1); // System I/O
        CHECK(u8(fadt, gas.offset + 1) == gas.bits);
        CHECK(u8(fadt, gas.offset + 2) == 0);
        CHECK(u8(fadt, gas.offset + 3) == gas.access);
        CHECK(u64(fadt, gas.offset + 4) == gas.port);
    }
    // The unused blocks (PM1b event/control, PM2 control, GPE1) and the HW-reduced sleep registers stay zero.
    for (size_t offset : { 160, 184, 196, 232, 244, 256 })
        CHECK(hex(fadt.subspan(offset, 12)) == "00 00 00 00 00 00 00 00 00 00 00 00");
}

TEST_CASE("the FADT leaves 32-bit pointers zero for tables above 4 GiB", "[acpi][tables][fadt]")
{
    auto fadt = acpi::build_fadt(make_config(1, 1), 0x1'0000'0040, 0x1'0000'1000);
    CHECK(u32(fadt, 36) == 0);
    CHECK(u32(fadt, 40) == 0);
    CHECK(u64(fadt, 132) == 0x1'0000'0040);
    CHECK(u64(fadt, 140) == 0x1'0000'1000);
    CHECK(acpi::sum(fadt) == 0);
}

TEST_CASE("the FACS is 64 bytes, version 2, with no SDT header", "[acpi][tables]")
{
    auto built = build(make_config(1, 1));
    auto facs = table(built, "FACS");
    REQUIRE(facs.size() == 64);
    CHECK(chars(facs, 0, 4) == "FACS");
    CHECK(u32(facs, 4) == 64);
    CHECK(u8(facs, 32) == 2);
    CHECK(info(built, "FACS").address % 64 == 0);
}

TEST_CASE("MADT entries flag present CPUs Enabled and absent ones Online Capable", "[acpi][tables][madt]")
{
    auto built = build(make_config(8, 3));
    auto madt = table(built, "APIC");
    check_header(madt, "APIC", 5);
    CHECK(u32(madt, 36) == 0xFEE00000); // local APIC address
    CHECK(u32(madt, 40) == 1);          // PCAT_COMPAT
    auto entries = madt_entries(madt);
    // 8 local APICs, IOAPIC, 2 overrides, LAPIC NMI; no x2APIC entries, so no x2APIC NMI
    REQUIRE(entries.size() == 8 + 1 + 2 + 1);
    for (uint32_t i = 0; i < 8; ++i) {
        auto const& e = entries[i];
        INFO("CPU " << i);
        CHECK(e.type == 0);
        REQUIRE(e.bytes.size() == 8);
        CHECK(u8(e.bytes, 2) == i); // UID
        CHECK(u8(e.bytes, 3) == i); // APIC id
        CHECK(u32(e.bytes, 4) == (i < 3 ? 0x1u : 0x2u)); // Enabled xor Online Capable
    }
    CHECK(entries[0].offset == 44);
}

TEST_CASE("the MADT describes the IOAPIC, the IRQ 0 and SCI overrides and LINT1 as NMI", "[acpi][tables][madt]")
{
    auto config = make_config(2, 1);
    config.ioapic_id = 2;
    auto built = build(config);
    auto entries = madt_entries(table(built, "APIC"));
    REQUIRE(entries.size() == 2 + 4);
    // type 1: id 2, address 0xFEC00000, GSI base 0
    CHECK(hex(entries[2].bytes) == "01 0C 02 00 00 00 C0 FE 00 00 00 00");
    // type 2: ISA IRQ 0 -> GSI 2, conforming
    CHECK(hex(entries[3].bytes) == "02 0A 00 00 02 00 00 00 00 00");
    // type 2: ISA IRQ 9 -> GSI 9, active high, level (0x000D)
    CHECK(hex(entries[4].bytes) == "02 0A 00 09 09 00 00 00 0D 00");
    // type 4: all processors (0xFF), flags 0, LINT1
    CHECK(hex(entries[5].bytes) == "04 06 FF 00 00 01");
}

TEST_CASE("a 300-CPU MADT uses type 0 below APIC id 255 and type 9 from 255", "[acpi][tables][madt]")
{
    auto built = build(make_config(300, 4));
    auto madt = table(built, "APIC");
    auto entries = madt_entries(madt);
    REQUIRE(entries.size() == 300 + 1 + 2 + 1 + 1);
    for (uint32_t i = 0; i < 300; ++i) {
        auto const& e = entries[i];
        INFO("CPU " << i);
        uint32_t flags = i < 4 ? 0x1 : 0x2;
        if (i < 255) {
            CHECK(e.type == 0);
            REQUIRE(e.bytes.size() == 8);
            CHECK(u8(e.bytes, 2) == i);
            CHECK(u8(e.bytes, 3) == i);
            CHECK(u32(e.bytes, 4) == flags);
        } else {
            CHECK(e.type == 9);
            REQUIRE(e.bytes.size() == 16);
            CHECK(u16(e.bytes, 2) == 0);
            CHECK(u32(e.bytes, 4) == i);  // x2APIC id
            CHECK(u32(e.bytes, 8) == 0x2); // absent: Online Capable
            CHECK(u32(e.bytes, 12) == i); // UID
        }
    }
    // CPU 255 is the first x2APIC entry, at 44 + 255 * 8
    CHECK(entries[255].offset == 44 + 255 * 8);
    CHECK(hex(entries[300].bytes) == "01 0C 00 00 00 00 C0 FE 00 00 00 00");
    // the x2APIC NMI entry closes the table: flags 0, all processors, LINT1
    CHECK(hex(entries.back().bytes) == "0A 0C 00 00 FF FF FF FF 01 00 00 00");
    CHECK(madt.size() == 44 + 255 * 8 + 45 * 16 + 12 + 2 * 10 + 6 + 12);
}

TEST_CASE("a present CPU with an x2APIC id is Enabled in its type 9 entry", "[acpi][tables][madt]")
{
    acpi::PlatformConfig config;
    config.cpus = { { 0, 0, true }, { 1, 0x1000, true }, { 2, 0x1001, false } };
    auto built = build(config); // kept alive: the entries are spans into it
    auto entries = madt_entries(table(built, "APIC"));
    REQUIRE(entries.size() >= 3);
    CHECK(hex(entries[1].bytes) == "09 10 00 00 00 10 00 00 01 00 00 00 01 00 00 00");
    CHECK(hex(entries[2].bytes) == "09 10 00 00 01 10 00 00 02 00 00 00 02 00 00 00");
}

TEST_CASE("the DSDT is revision 2 and holds the AML of dsdt_terms", "[acpi][tables][dsdt]")
{
    auto config = make_config(3, 1);
    auto built = build(config);
    auto dsdt = table(built, "DSDT");
    check_header(dsdt, "DSDT", 2);
    auto body = acpi::build_dsdt_body(config);
    CHECK(hex(dsdt.subspan(36)) == hex(body));
    acpi::aml::AmlSink sink;
    acpi::aml::emit_all(sink, acpi::dsdt_terms(config));
    CHECK(sink.data() == body);
}

TEST_CASE("the DSDT of a two-CPU machine encodes as expected", "[acpi][tables][dsdt]")
{
    // Scope (\_SB)
    // {
    //     Device (CPUS)
    //     {
    //         Name (_HID, "ACPI0010")
    //         Name (_CID, EisaId ("PNP0A05"))
    //         Device (C000)
    //         {
    //             Name (_HID, "ACPI0007")
    //             Name (_UID, Zero)
    //             Method (_STA, 0, NotSerialized) { Return (0x0F) }
    //         }
    //         Device (C001)
    //         {
    //             Name (_HID, "ACPI0007")
    //             Name (_UID, One)
    //             Method (_STA, 0, NotSerialized) { Return (Zero) }
    //         }
    //     }
    // }
    // Name (\_S5, Package (0x04) { Zero, Zero, Zero, Zero })
    // Scope (\_GPE) { Name (_HID, "ACPI0006") }
    // Byte-for-byte what iasl 20200925 compiles from that ASL with optimizations off (-oa keeps the '\').
    auto const golden = cat({
        { 0x10, 0x43, 0x07, 0x5C }, "_SB_",
        { 0x5B, 0x82, 0x4A, 0x06 }, "CPUS",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0010", { 0x00 },
        { 0x08 }, "_CID", { 0x0C, 0x41, 0xD0, 0x0A, 0x05 },
        { 0x5B, 0x82, 0x24 }, "C000",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0007", { 0x00 },
        { 0x08 }, "_UID", { 0x00 },
        { 0x14, 0x09 }, "_STA", { 0x00, 0xA4, 0x0A, 0x0F },
        { 0x5B, 0x82, 0x23 }, "C001",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0007", { 0x00 },
        { 0x08 }, "_UID", { 0x01 },
        { 0x14, 0x08 }, "_STA", { 0x00, 0xA4, 0x00 },
        { 0x08, 0x5C }, "_S5_", { 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00 },
        { 0x10, 0x15, 0x5C }, "_GPE", { 0x08 }, "_HID", { 0x0D }, "ACPI0006", { 0x00 },
    });
    CHECK(hex(acpi::build_dsdt_body(make_config(2, 1))) == hex(golden));
}

TEST_CASE("the CPU-hotplug DSDT of a two-CPU machine encodes as expected", "[acpi][tables][dsdt][hotplug]")
{
    // Scope (\_SB)
    // {
    //     Device (PRES)
    //     {
    //         Name (_HID, EisaId ("PNP0A06"))
    //         Name (_UID, "CPU Hotplug resources")
    //         Mutex (CPLK, 0x00)
    //         Name (_CRS, ResourceTemplate () { IO (Decode16, 0x0CD8, 0x0CD8, 0x01, 0x0C, ) })
    //         OperationRegion (PRST, SystemIO, 0x0CD8, 0x0C)
    //         Field (PRST, ByteAcc, NoLock, WriteAsZeros)
    //         { Offset (0x04), CPEN, 1, CINS, 1, CRMV, 1, CEJ0, 1, CEJF, 1, , 3, CCMD, 8 }
    //         Field (PRST, DWordAcc, NoLock, Preserve) { CSEL, 32, , 32, CDAT, 32 }
    //     }
    //     Device (CPUS)
    //     {
    //         Name (_HID, "ACPI0010")
    //         Name (_CID, EisaId ("PNP0A05"))
    //         Method (CTFY, 2, NotSerialized)
    //         {
    //             If ((Arg0 == Zero)) { Notify (C000, Arg1) }
    //             If ((Arg0 == One)) { Notify (C001, Arg1) }
    //         }
    //         Method (CSTA, 1, Serialized)
    //         {
    //             Acquire (\_SB.PRES.CPLK, 0xFFFF)
    //             \_SB.PRES.CSEL = Arg0
    //             Local0 = Zero
    //             If ((\_SB.PRES.CPEN == One)) { Local0 = 0x0F }
    //             Release (\_SB.PRES.CPLK)
    //             Return (Local0)
    //         }
    //         Method (CEJ0, 1, Serialized)
    //         {
    //             Acquire (\_SB.PRES.CPLK, 0xFFFF)
    //             \_SB.PRES.CSEL = Arg0
    //             \_SB.PRES.CEJ0 = One
    //             Release (\_SB.PRES.CPLK)
    //         }
    //         Method (CSCN, 0, Serialized)
    //         {
    //             Acquire (\_SB.PRES.CPLK, 0xFFFF)
    //             Name (CNEW, Package (0xFF) {})
    //             Local3 = Zero
    //             Local4 = One
    //             While ((Local4 == One))
    //             {
    //                 Local4 = Zero
    //                 Local0 = One
    //                 Local1 = Zero
    //                 While (((Local0 == One) && (Local3 < 0x02)))
    //                 {
    //                     Local0 = Zero
    //                     \_SB.PRES.CSEL = Local3
    //                     \_SB.PRES.CCMD = Zero
    //                     If ((\_SB.PRES.CDAT < Local3)) { Break }
    //                     If ((Local1 == 0xFF)) { Local4 = One  Break }
    //                     Local3 = \_SB.PRES.CDAT
    //                     If ((\_SB.PRES.CINS == One)) { CNEW [Local1] = Local3  Local1++  Local0 = One }
    //                     ElseIf ((\_SB.PRES.CRMV == One)) { CTFY (Local3, 0x03)  \_SB.PRES.CRMV = One  Local0 = One }
    //                     Local3++
    //                 }
    //                 Local2 = Zero
    //                 While ((Local2 < Local1))
    //                 {
    //                     Local3 = DerefOf (CNEW [Local2])
    //                     CTFY (Local3, One)
    //                     \_SB.PRES.CSEL = Local3
    //                     \_SB.PRES.CINS = One
    //                     Local2++
    //                 }
    //                 If ((Local1 > Zero)) { Local4 = One  Local3 = Zero }
    //             }
    //             Release (\_SB.PRES.CPLK)
    //         }
    //         Method (COST, 4, Serialized)
    //         {
    //             Acquire (\_SB.PRES.CPLK, 0xFFFF)
    //             \_SB.PRES.CSEL = Arg0
    //             \_SB.PRES.CCMD = One
    //             \_SB.PRES.CDAT = Arg1
    //             \_SB.PRES.CCMD = 0x02
    //             \_SB.PRES.CDAT = Arg2
    //             Release (\_SB.PRES.CPLK)
    //         }
    //         Device (C000)
    //         {
    //             Name (_HID, "ACPI0007")
    //             Name (_UID, Zero)
    //             Method (_STA, 0, Serialized) { Return (CSTA (Zero)) }
    //             Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 })
    //             Method (_OST, 3, Serialized) { COST (Zero, Arg0, Arg1, Arg2) }
    //         }
    //         Device (C001)
    //         {
    //             Name (_HID, "ACPI0007")
    //             Name (_UID, One)
    //             Method (_STA, 0, Serialized) { Return (CSTA (One)) }
    //             Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00 })
    //             Method (_EJ0, 1, NotSerialized) { CEJ0 (One) }
    //             Method (_OST, 3, Serialized) { COST (One, Arg0, Arg1, Arg2) }
    //         }
    //     }
    // }
    // Name (\_S5, Package (0x04) { Zero, Zero, Zero, Zero })
    // Scope (\_GPE)
    // {
    //     Name (_HID, "ACPI0006")
    //     Method (_E02, 0, NotSerialized) { \_SB.CPUS.CSCN () }
    // }
    // Byte-for-byte what iasl 20200925 compiles from that ASL with -oa, and what `iasl -d` turns back into it.
    // A path \_SB.PRES.xxxx is 15 bytes (5C 2F 03 and three segments); with that, the PkgLengths add up as:
    //   CTFY: name 4 + flags 1 + 2 Ifs of 11 = 27, +1 = 1C.
    //   CSTA: 5 + Acquire 19 + Store 17 + Store 3 + If 23 + Release 17 + Return 2 = 86, +2 = 88 = 48 05.
    //   CEJ0: 5 + 19 + 17 + 17 + 17 = 75, +2 = 77 = 4D 04.
    //   CSCN inner loop body 175 (+3 = 41 0B), notify loop body 55 (38), the If after it 11 (0A), outer loop
    //        body 261 (+2 = 47 10), method 5 + 19 + Name 8 + 3 + 3 + 264 + 17 = 319, +2 = 321 = 41 14.
    //   COST: 5 + 19 + Stores of 17, 17, 17, 18 (0x02 takes a ByteConst), 17 + 17 = 127, +2 = 129 = 41 08.
    //   C000: 4 + _HID 15 + _UID 6 + _STA 13 + _MAT 17 + _OST 15 = 70, +2 = 72 = 48 04; C001 adds _EJ0 (12):
    //   84 = 44 05. PRES: 142 + 2 = 144 = 40 09; CPUS: 837 + 2 = 839 = 47 34; \_SB: 992 + 2 = 994 = 42 3E.
    auto pres = [](char const* field) { return acpi_test::Part(cat({ { 0x5C, 0x2F, 0x03 }, "_SB_PRES", field })); };
    auto const golden = cat({
        { 0x10, 0x42, 0x3E, 0x5C }, "_SB_",
        { 0x5B, 0x82, 0x40, 0x09 }, "PRES",
        { 0x08 }, "_HID", { 0x0C, 0x41, 0xD0, 0x0A, 0x06 },
        { 0x08 }, "_UID", { 0x0D }, "CPU Hotplug resources", { 0x00 },
        { 0x5B, 0x01 }, "CPLK", { 0x00 },
        { 0x08 }, "_CRS", { 0x11, 0x0D, 0x0A, 0x0A, 0x47, 0x01, 0xD8, 0x0C, 0xD8, 0x0C, 0x01, 0x0C, 0x79, 0x00 },
        { 0x5B, 0x80 }, "PRST", { 0x01, 0x0B, 0xD8, 0x0C, 0x0A, 0x0C },
        { 0x5B, 0x81, 0x28 }, "PRST", { 0x41, 0x00, 0x20 },
        "CPEN", { 0x01 }, "CINS", { 0x01 }, "CRMV", { 0x01 }, "CEJ0", { 0x01 }, "CEJF", { 0x01 },
        { 0x00, 0x03 }, "CCMD", { 0x08 },
        { 0x5B, 0x81, 0x12 }, "PRST", { 0x03 }, "CSEL", { 0x20, 0x00, 0x20 }, "CDAT", { 0x20 },

        { 0x5B, 0x82, 0x47, 0x34 }, "CPUS",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0010", { 0x00 },
        { 0x08 }, "_CID", { 0x0C, 0x41, 0xD0, 0x0A, 0x05 },

        { 0x14, 0x1C }, "CTFY", { 0x02 },
        { 0xA0, 0x0A, 0x93, 0x68, 0x00, 0x86 }, "C000", { 0x69 },
        { 0xA0, 0x0A, 0x93, 0x68, 0x01, 0x86 }, "C001", { 0x69 },

        { 0x14, 0x48, 0x05 }, "CSTA", { 0x09 },
        { 0x5B, 0x23 }, pres("CPLK"), { 0xFF, 0xFF },
        { 0x70, 0x68 }, pres("CSEL"),
        { 0x70, 0x00, 0x60 },
        { 0xA0, 0x16, 0x93 }, pres("CPEN"), { 0x01, 0x70, 0x0A, 0x0F, 0x60 },
        { 0x5B, 0x27 }, pres("CPLK"),
        { 0xA4, 0x60 },

        { 0x14, 0x4D, 0x04 }, "CEJ0", { 0x09 },
        { 0x5B, 0x23 }, pres("CPLK"), { 0xFF, 0xFF },
        { 0x70, 0x68 }, pres("CSEL"),
        { 0x70, 0x01 }, pres("CEJ0"),
        { 0x5B, 0x27 }, pres("CPLK"),

        { 0x14, 0x41, 0x14 }, "CSCN", { 0x08 },
        { 0x5B, 0x23 }, pres("CPLK"), { 0xFF, 0xFF },
        { 0x08 }, "CNEW", { 0x12, 0x02, 0xFF },
        { 0x70, 0x00, 0x63 },
        { 0x70, 0x01, 0x64 },
        { 0xA2, 0x47, 0x10, 0x93, 0x64, 0x01 },
        { 0x70, 0x00, 0x64 },
        { 0x70, 0x01, 0x60 },
        { 0x70, 0x00, 0x61 },
        { 0xA2, 0x41, 0x0B, 0x90, 0x93, 0x60, 0x01, 0x95, 0x63, 0x0A, 0x02 },
        { 0x70, 0x00, 0x60 },
        { 0x70, 0x63 }, pres("CSEL"),
        { 0x70, 0x00 }, pres("CCMD"),
        { 0xA0, 0x13, 0x95 }, pres("CDAT"), { 0x63, 0xA5 },
        { 0xA0, 0x09, 0x93, 0x61, 0x0A, 0xFF, 0x70, 0x01, 0x64, 0xA5 },
        { 0x70 }, pres("CDAT"), { 0x63 },
        { 0xA0, 0x20, 0x93 }, pres("CINS"), { 0x01 },
        { 0x70, 0x63, 0x88 }, "CNEW", { 0x61, 0x00 },
        { 0x75, 0x61 },
        { 0x70, 0x01, 0x60 },
        { 0xA1, 0x2F, 0xA0, 0x2D, 0x93 }, pres("CRMV"), { 0x01 },
        "CTFY", { 0x63, 0x0A, 0x03 },
        { 0x70, 0x01 }, pres("CRMV"),
        { 0x70, 0x01, 0x60 },
        { 0x75, 0x63 },
        { 0x70, 0x00, 0x62 },
        { 0xA2, 0x38, 0x95, 0x62, 0x61 },
        { 0x70, 0x83, 0x88 }, "CNEW", { 0x62, 0x00, 0x63 },
        "CTFY", { 0x63, 0x01 },
        { 0x70, 0x63 }, pres("CSEL"),
        { 0x70, 0x01 }, pres("CINS"),
        { 0x75, 0x62 },
        { 0xA0, 0x0A, 0x94, 0x61, 0x00, 0x70, 0x01, 0x64, 0x70, 0x00, 0x63 },
        { 0x5B, 0x27 }, pres("CPLK"),

        { 0x14, 0x41, 0x08 }, "COST", { 0x0C },
        { 0x5B, 0x23 }, pres("CPLK"), { 0xFF, 0xFF },
        { 0x70, 0x68 }, pres("CSEL"),
        { 0x70, 0x01 }, pres("CCMD"),
        { 0x70, 0x69 }, pres("CDAT"),
        { 0x70, 0x0A, 0x02 }, pres("CCMD"),
        { 0x70, 0x6A }, pres("CDAT"),
        { 0x5B, 0x27 }, pres("CPLK"),

        { 0x5B, 0x82, 0x48, 0x04 }, "C000",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0007", { 0x00 },
        { 0x08 }, "_UID", { 0x00 },
        { 0x14, 0x0C }, "_STA", { 0x08, 0xA4 }, "CSTA", { 0x00 },
        { 0x08 }, "_MAT", { 0x11, 0x0B, 0x0A, 0x08, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 },
        { 0x14, 0x0E }, "_OST", { 0x0B }, "COST", { 0x00, 0x68, 0x69, 0x6A },

        { 0x5B, 0x82, 0x44, 0x05 }, "C001",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0007", { 0x00 },
        { 0x08 }, "_UID", { 0x01 },
        { 0x14, 0x0C }, "_STA", { 0x08, 0xA4 }, "CSTA", { 0x01 },
        { 0x08 }, "_MAT", { 0x11, 0x0B, 0x0A, 0x08, 0x00, 0x08, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00 },
        { 0x14, 0x0B }, "_EJ0", { 0x01 }, "CEJ0", { 0x01 },
        { 0x14, 0x0E }, "_OST", { 0x0B }, "COST", { 0x01, 0x68, 0x69, 0x6A },

        { 0x08, 0x5C }, "_S5_", { 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00 },
        { 0x10, 0x2B, 0x5C }, "_GPE",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0006", { 0x00 },
        { 0x14, 0x15 }, "_E02", { 0x00, 0x5C, 0x2F, 0x03 }, "_SB_CPUSCSCN",
    });
    auto config = make_config(2, 1);
    config.cpu_hotplug = true;
    CHECK(hex(acpi::build_dsdt_body(config)) == hex(golden));
}

TEST_CASE("each CPU's _MAT is its MADT entry with Enabled set", "[acpi][tables][dsdt][hotplug]")
{
    // 300 CPUs (type 9 from index 255), and a sparse machine whose x2APIC ids start at CPU 1.
    auto wide = make_config(300, 4);
    acpi::PlatformConfig sparse;
    sparse.cpus = { { 0, 0, true }, { 1, 0x1000, true }, { 2, 0x1001, false }, { 3, 7, false } };
    for (auto config : { wide, sparse }) {
        config.cpu_hotplug = true;
        auto built = build(config);
        auto const body = table(built, "DSDT").subspan(36);
        auto entries = madt_entries(table(built, "APIC"));
        // Name (_MAT, Buffer (n) { ... }) = 08 "_MAT" 11 PkgLength 0A n bytes; n is 8 or 16, so PkgLength is
        // one byte.
        std::vector<std::span<uint8_t const>> mats;
        std::string const text(body.begin(), body.end());
        for (size_t at = text.find("\x08_MAT\x11"); at != std::string::npos; at = text.find("\x08_MAT\x11", at + 1)) {
            REQUIRE(body[at + 7] == 0x0A);
            mats.push_back(body.subspan(at + 9, body[at + 8]));
        }
        REQUIRE(mats.size() == config.cpus.size());
        for (size_t i = 0; i < mats.size(); ++i) {
            INFO("CPU " << i);
            std::vector<uint8_t> expected(entries[i].bytes.begin(), entries[i].bytes.end());
            size_t const flags = expected[0] == 0 ? 4 : 8; // type 0 or type 9
            REQUIRE((expected[0] == 0 || expected[0] == 9));
            expected[flags] = 0x01; // Enabled, and not Online Capable: ACPI 6.3 forbids both
            CHECK(hex(mats[i]) == hex(expected));
        }
        if (config.cpus.size() == 300) {
            CHECK(hex(mats[254]) == "00 08 FE FE 01 00 00 00");
            CHECK(hex(mats[255]) == "09 10 00 00 FF 00 00 00 01 00 00 00 FF 00 00 00");
        } else {
            CHECK(hex(mats[2]) == "09 10 00 00 01 10 00 00 01 00 00 00 02 00 00 00");
            CHECK(hex(mats[3]) == "00 08 03 07 01 00 00 00");
        }
    }
}

TEST_CASE("every CPU but the boot CPU has an _EJ0 that calls CEJ0", "[acpi][tables][dsdt][hotplug]")
{
    auto config = make_config(3, 2);
    config.cpu_hotplug = true;
    config.boot_cpu = 1;
    auto body = acpi::build_dsdt_body(config);
    std::string const text(body.begin(), body.end());
    // Method (_EJ0, 1, NotSerialized) { CEJ0 (uid) }
    auto ej0 = [](std::initializer_list<uint8_t> uid) {
        auto bytes = cat({ { 0x14, static_cast<uint8_t>(0x0A + uid.size()) }, "_EJ0", { 0x01 }, "CEJ0", uid });
        return std::string(bytes.begin(), bytes.end());
    };
    CHECK(text.find(ej0({ 0x00 })) != std::string::npos);
    CHECK(text.find(ej0({ 0x01 })) == std::string::npos);
    CHECK(text.find(ej0({ 0x0A, 0x02 })) != std::string::npos);
    size_t count = 0;
    for (size_t at = text.find("_EJ0"); at != std::string::npos; at = text.find("_EJ0", at + 1))
        ++count;
    CHECK(count == 2);
}

TEST_CASE("without cpu_hotplug the DSDT has no hotplug objects", "[acpi][tables][dsdt][hotplug]")
{
    auto body = acpi::build_dsdt_body(make_config(4, 2));
    std::string const text(body.begin(), body.end());
    for (char const* name : { "PRES", "PRST", "CPLK", "CSCN", "CTFY", "_MAT", "_EJ0", "_OST", "_E02" })
        CHECK(text.find(name) == std::string::npos);
    // The register block follows cpu_hotplug_base.
    auto config = make_config(4, 2);
    config.cpu_hotplug = true;
    config.cpu_hotplug_base = 0xAF00;
    body = acpi::build_dsdt_body(config);
    auto const region = cat({ { 0x5B, 0x80 }, "PRST", { 0x01, 0x0B, 0x00, 0xAF, 0x0A, 0x0C } });
    auto const crs = cat({ { 0x47, 0x01, 0x00, 0xAF, 0x00, 0xAF, 0x01, 0x0C } });
    CHECK(std::search(body.begin(), body.end(), region.begin(), region.end()) != body.end());
    CHECK(std::search(body.begin(), body.end(), crs.begin(), crs.end()) != body.end());
}

TEST_CASE("the CPU-hotplug DSDT of the largest machine still fits the AML encodings", "[acpi][tables][dsdt][hotplug]")
{
    auto config = make_config(static_cast<uint32_t>(acpi::MAX_CPUS), 1);
    for (auto& cpu : config.cpus)
        cpu.apic_id = cpu.uid < 255 ? cpu.uid : cpu.uid + 1; // type 9 from 255
    config.cpu_hotplug = true;
    auto built = build(config, BLOB_ADDRESS, 4 << 20);
    auto const dsdt = table(built, "DSDT");
    auto contains = [&](std::vector<uint8_t> const& bytes) {
        return std::search(dsdt.begin(), dsdt.end(), bytes.begin(), bytes.end()) != dsdt.end();
    };
    CHECK(contains(cat({ "CFFF", { 0x08 }, "_HID" })));
    // CSCN's loop bound: LLess (Local3, 0x1000)
    CHECK(contains(cat({ { 0x95, 0x63, 0x0B, 0x00, 0x10 } })));
    // Scope (\_SB) is above 2^12 bytes, so its PkgLength takes the three-byte form; it must end right where
    // Name (\_S5, ...) begins.
    auto const body = dsdt.subspan(36);
    REQUIRE(body[0] == 0x10);
    REQUIRE(body[1] >> 6 == 2);
    size_t const scope_length = (body[1] & 0x0Fu) | size_t(body[2]) << 4 | size_t(body[3]) << 12;
    CHECK(hex(body.subspan(1 + scope_length, 6)) == hex(cat({ { 0x08, 0x5C }, "_S5_" })));
}

TEST_CASE("DSDT CPU objects are named with three hex digits of the index", "[acpi][tables][dsdt]")
{
    auto body = acpi::build_dsdt_body(make_config(300, 1));
    std::string text(body.begin(), body.end());
    for (char const* name : { "C000", "C009", "C00A", "C0FF", "C100", "C12B" })
        CHECK(text.find(name) != std::string::npos);
    CHECK(text.find("C12C") == std::string::npos);
}

TEST_CASE("tables are laid out aligned, in order, without overlap, and point at each other", "[acpi][tables][layout]")
{
    // An unaligned blob start: the first table is moved up to the next 16-byte boundary.
    uint64_t const start = BLOB_ADDRESS + 8;
    auto built = build(make_config(300, 2), start);
    CHECK(built.blob_address == start);
    std::vector<std::string> order;
    uint64_t end_of_previous = start;
    for (auto const& t : built.tables) {
        INFO(t.signature);
        order.push_back(t.signature);
        CHECK(t.address % (t.signature == "FACS" ? 64 : 16) == 0);
        CHECK(t.address >= end_of_previous);
        CHECK(t.address + t.length <= built.blob_address + built.blob.size());
        auto bytes = table(built, t.signature);
        CHECK(chars(bytes, 0, 4) == t.signature);
        CHECK(u32(bytes, 4) == t.length);
        end_of_previous = t.address + t.length;
    }
    CHECK(order == std::vector<std::string> { "XSDT", "FACP", "FACS", "APIC", "DSDT" });
    CHECK(built.blob_address + built.blob.size() == end_of_previous); // no slack at the end

    // Cross references: RSDP -> XSDT -> FADT, MADT; FADT -> FACS, DSDT.
    CHECK(u64(built.rsdp, 24) == info(built, "XSDT").address);
    auto xsdt = table(built, "XSDT");
    CHECK(u64(xsdt, 36) == info(built, "FACP").address);
    CHECK(u64(xsdt, 44) == info(built, "APIC").address);
    auto fadt = table(built, "FACP");
    CHECK(u64(fadt, 132) == info(built, "FACS").address);
    CHECK(u64(fadt, 140) == info(built, "DSDT").address);
    CHECK(u32(fadt, 36) == info(built, "FACS").address);
    CHECK(u32(fadt, 40) == info(built, "DSDT").address);
}

TEST_CASE("build_tables refuses a config that does not fit max_size", "[acpi][tables][layout]")
{
    auto config = make_config(300, 1);
    auto fitting = build(config, BLOB_ADDRESS, 1 << 20);
    uint64_t const needed = fitting.blob.size();
    CHECK(acpi::build_tables(config, BLOB_ADDRESS, needed, RSDP_ADDRESS).has_value());
    auto refused = acpi::build_tables(config, BLOB_ADDRESS, needed - 1, RSDP_ADDRESS);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().find(std::to_string(needed)) != std::string::npos);
    CHECK(refused.error().find("300 CPUs") != std::string::npos);
    // A small machine fits the 64 KiB the tests use elsewhere.
    CHECK(acpi::build_tables(make_config(8, 1), BLOB_ADDRESS, BLOB_MAX, RSDP_ADDRESS).has_value());
}

TEST_CASE("build_tables refuses an RSDP that overlaps the blob or is unaligned", "[acpi][tables][layout]")
{
    auto config = make_config(2, 1);
    auto overlapping = acpi::build_tables(config, BLOB_ADDRESS, BLOB_MAX, BLOB_ADDRESS + 0x40);
    REQUIRE_FALSE(overlapping.has_value());
    CHECK(overlapping.error().find("overlaps") != std::string::npos);
    auto unaligned = acpi::build_tables(config, BLOB_ADDRESS, BLOB_MAX, RSDP_ADDRESS + 4);
    REQUIRE_FALSE(unaligned.has_value());
    CHECK(unaligned.error().find("16-byte") != std::string::npos);
    // just below the blob is fine
    CHECK(acpi::build_tables(config, BLOB_ADDRESS, BLOB_MAX, BLOB_ADDRESS - 36 - 12).has_value());
    // and a blob at the very top of the address space is refused, not wrapped
    CHECK_FALSE(acpi::build_tables(config, UINT64_MAX - 0x100, BLOB_MAX, RSDP_ADDRESS).has_value());
}

TEST_CASE("configs the tables cannot describe are refused with a reason", "[acpi][tables][config]")
{
    auto error_of = [](acpi::PlatformConfig const& config) {
        auto checked = acpi::check_config(config);
        REQUIRE_FALSE(checked.has_value());
        auto built = acpi::build_tables(config, BLOB_ADDRESS, BLOB_MAX, RSDP_ADDRESS);
        REQUIRE_FALSE(built.has_value());
        CHECK(built.error() == checked.error());
        return checked.error();
    };
    CHECK(acpi::check_config(make_config(8, 1)).has_value());
    CHECK(acpi::check_config(make_config(4096, 1)).has_value());

    CHECK(error_of(acpi::PlatformConfig {}).find("at least one") != std::string::npos);
    CHECK(error_of(make_config(4097, 1)).find("C000..CFFF") != std::string::npos);
    CHECK(error_of(make_config(4, 0)).find("boot CPU") != std::string::npos);

    auto config = make_config(4, 1);
    config.cpus[2].uid = 7;
    CHECK(error_of(config).find("index") != std::string::npos);

    config = make_config(4, 1);
    config.cpus[3].apic_id = 1;
    CHECK(error_of(config).find("repeats APIC id 1") != std::string::npos);

    config = make_config(4, 1);
    config.cpus[3].apic_id = UINT32_MAX;
    CHECK(error_of(config).find("broadcast") != std::string::npos);

    // CPU 300 with APIC id 5 fits neither a type 0 entry (UID) nor a type 9 entry (Linux skips those below 255)
    config = make_config(301, 1);
    for (auto& cpu : config.cpus)
        cpu.apic_id = cpu.uid + 1000;
    config.cpus[300].apic_id = 5;
    CHECK(error_of(config).find("UID above 254") != std::string::npos);

    for (uint8_t irq : { 0, 2, 16 }) {
        config = make_config(2, 1);
        config.sci_irq = irq;
        CHECK(error_of(config).find("SCI IRQ") != std::string::npos);
    }

    config = make_config(2, 1);
    config.pm_base = 0xFFE0;
    CHECK(error_of(config).find("PM block") != std::string::npos);

    config = make_config(2, 1);
    config.ioapic_address = 0x1'0000'0000;
    CHECK(error_of(config).find("32-bit") != std::string::npos);
}

TEST_CASE("CPU-hotplug configs need a present boot CPU and a free register block", "[acpi][tables][config][hotplug]")
{
    auto error_of = [](acpi::PlatformConfig const& config) {
        auto checked = acpi::check_config(config);
        REQUIRE_FALSE(checked.has_value());
        return checked.error();
    };
    auto config = make_config(4, 2);
    config.cpu_hotplug = true;
    CHECK(acpi::check_config(config).has_value());
    config.boot_cpu = 1;
    CHECK(acpi::check_config(config).has_value());
    config.boot_cpu = 2; // absent
    CHECK(error_of(config).find("boot CPU 2") != std::string::npos);
    config.boot_cpu = 4; // no such CPU
    CHECK(error_of(config).find("boot CPU 4") != std::string::npos);

    // The PM block is 0x600..0x62F: a block ending at 0x5FF or starting at 0x630 is fine.
    config = make_config(4, 2);
    config.cpu_hotplug = true;
    for (uint16_t base : { 0x5F4, 0x630, 0xAF00, 0xFFF4 }) {
        config.cpu_hotplug_base = base;
        CHECK(acpi::check_config(config).has_value());
    }
    for (uint16_t base : { 0x5F5, 0x600, 0x620, 0x62F }) {
        INFO(base);
        config.cpu_hotplug_base = base;
        CHECK(error_of(config).find("overlaps the PM block") != std::string::npos);
    }
    for (uint16_t base : { 0x0, 0xFFF5 }) {
        INFO(base);
        config.cpu_hotplug_base = base;
        CHECK(error_of(config).find("CPU hotplug block") != std::string::npos);
    }

    // None of this is looked at without CPU hotplug.
    config = make_config(4, 2);
    config.boot_cpu = 9;
    config.cpu_hotplug_base = 0x600;
    CHECK(acpi::check_config(config).has_value());
}
