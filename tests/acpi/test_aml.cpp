// Golden-byte tests of the AML builder: each expected sequence has the ASL it encodes in a comment above it.
// Vectors marked "Firecracker" are worked examples from Firecracker's AML unit tests (src/acpi-tables/src/aml.rs),
// most of them pieces of the CPU-hotplug AML of QEMU's hw/acpi/cpu.c; the PkgLength ones follow the rule of
// ACPI 6.5 §20.2.4. Every other vector, and every marked one that iasl can compile on its own, was checked
// against iasl 20200925.
#include "bytes.hpp"

#include <acpi/aml.hpp>

#include <catch2/catch.hpp>

using namespace acpi::aml;
using acpi_test::cat;
using acpi_test::hex;

namespace {

template<typename T>
std::string encoded(T const& node)
{
    return hex(to_bytes(node));
}

std::string expected(std::initializer_list<acpi_test::Part> parts)
{
    return hex(cat(parts));
}

} // namespace

// --- PkgLength -------------------------------------------------------------------------------------------

TEST_CASE("a 62-byte body takes a one-byte PkgLength", "[acpi][aml]")
{
    // Firecracker: 62 + 1 = 63 fits in the 6 bits of a single byte
    CHECK(encoded(PkgLength(62)) == "3F");
    CHECK(encoded(PkgLength(0)) == "01");
}

TEST_CASE("a 64-byte body takes a two-byte PkgLength", "[acpi][aml]")
{
    // Firecracker: 64 + 2 = 66 = 0x42: lead byte (1 << 6) | 0x2, then 0x42 >> 4
    CHECK(encoded(PkgLength(64)) == "42 04");
    // 63 + 1 = 64 no longer fits one byte, so 63 + 2 = 65
    CHECK(encoded(PkgLength(63)) == "41 04");
    // the largest two-byte form: 4093 + 2 = 4095
    CHECK(encoded(PkgLength(4093)) == "4F FF");
}

TEST_CASE("a 4096-byte body takes a three-byte PkgLength", "[acpi][aml]")
{
    // Firecracker: 4096 + 3 = 4099 = 0x1003
    CHECK(encoded(PkgLength(4096)) == "83 00 01");
    // 4094 + 2 = 4096 does not fit 12 bits, so 4094 + 3 = 4097
    CHECK(encoded(PkgLength(4094)) == "81 00 01");
    // the largest three-byte form: (2^20 - 4) + 3 = 0xFFFFF
    CHECK(encoded(PkgLength((1u << 20) - 4)) == "8F FF FF");
}

TEST_CASE("a body of a mebibyte takes a four-byte PkgLength", "[acpi][aml]")
{
    // (2^20 - 3) + 4 = 0x100001
    CHECK(encoded(PkgLength((1u << 20) - 3)) == "C1 00 00 01");
}

TEST_CASE("a Buffer's PkgLength covers its size operand and bytes", "[acpi][aml]")
{
    // Buffer (0x3C) { 0x00, ... }: body = 0A 3C + 60 bytes = 62 -> PkgLength 3F
    auto bytes = to_bytes(Buffer(std::vector<uint8_t>(60, 0)));
    REQUIRE(bytes.size() == 1 + 1 + 2 + 60);
    CHECK(hex(std::span(bytes).first(4)) == "11 3F 0A 3C");
    // Buffer (0x3D) {...}: body 63 -> two-byte PkgLength 65
    bytes = to_bytes(Buffer(std::vector<uint8_t>(61, 0)));
    CHECK(hex(std::span(bytes).first(5)) == "11 41 04 0A 3D");
}

// --- data objects ----------------------------------------------------------------------------------------

TEST_CASE("integers take their shortest encoding", "[acpi][aml]")
{
    CHECK(encoded(Integer(0)) == "00");         // Zero
    CHECK(encoded(Integer(1)) == "01");         // One
    CHECK(encoded(Integer(~uint64_t(0))) == "FF"); // Ones (64-bit, DSDT revision 2)
    CHECK(encoded(Integer(2)) == "0A 02");      // 0x02
    CHECK(encoded(Integer(0xFF)) == "0A FF");   // 0xFF
    CHECK(encoded(Integer(0x100)) == "0B 00 01");
    CHECK(encoded(Integer(0xFFFF)) == "0B FF FF");
    CHECK(encoded(Integer(0x10000)) == "0C 00 00 01 00");
    CHECK(encoded(Integer(0xFFFFFFFF)) == "0C FF FF FF FF"); // not Ones: that would be 64 bits
    CHECK(encoded(Integer(0x100000000)) == "0E 00 00 00 00 01 00 00 00");
    CHECK(encoded(Integer(0xFFFFFFFFFFFF)) == "0E FF FF FF FF FF FF 00 00");
    CHECK(encoded(Zero {}) == "00");
    CHECK(encoded(One {}) == "01");
    CHECK(encoded(Ones {}) == "FF");
}

TEST_CASE("plain C++ integers convert to AML integers", "[acpi][aml]")
{
    CHECK(encoded(Aml(0)) == "00");
    CHECK(encoded(Aml(uint8_t { 0x0F })) == "0A 0F");
    CHECK(encoded(Aml(0x0CD8u)) == "0B D8 0C");
    CHECK(encoded(Aml(-1)) == "FF");
}

TEST_CASE("a String is NUL-terminated ASCII after the string prefix", "[acpi][aml]")
{
    // "ACPI0010"
    CHECK(encoded(String("ACPI0010")) == expected({ { 0x0D }, "ACPI0010", { 0x00 } }));
    // ""
    CHECK(encoded(String("")) == "0D 00");
}

TEST_CASE("EISA ids compress to a byte-swapped DWord", "[acpi][aml]")
{
    // EisaId ("PNP0A06"), Firecracker
    CHECK(encoded(EisaId("PNP0A06")) == "0C 41 D0 0A 06");
    // EisaId ("PNP0A05")
    CHECK(encoded(EisaId("PNP0A05")) == "0C 41 D0 0A 05");
    // EisaId ("PNP0A03")
    CHECK(encoded(EisaId("PNP0A03")) == "0C 41 D0 0A 03");
    // EisaId ("ABC12EF"): any three letters and four hex digits
    CHECK(EisaId("ABC12EF").value() == 0xEF124304);
}

TEST_CASE("malformed EISA ids are refused with the text", "[acpi][aml]")
{
    CHECK(EisaId::parse("PNP0A0").error().find("PNP0A0") != std::string::npos);
    CHECK_FALSE(EisaId::parse("pnp0A06").has_value());
    CHECK_FALSE(EisaId::parse("PNP0a06").has_value());
    CHECK_FALSE(EisaId::parse("PN10A06").has_value());
    CHECK_FALSE(EisaId::parse("PNP0A0G").has_value());
    CHECK(EisaId::parse("PNP0A06").has_value());
}

TEST_CASE("a Buffer carries its byte count and bytes", "[acpi][aml]")
{
    // Buffer (0x03) { 0x01, 0x02, 0x03 }
    CHECK(encoded(Buffer({ 1, 2, 3 })) == "11 06 0A 03 01 02 03");
    // Buffer (Zero) {}
    CHECK(encoded(Buffer({})) == "11 02 00");
}

TEST_CASE("a Package has a count and its elements", "[acpi][aml]")
{
    // Package (0x04) { Zero, Zero, Zero, Zero }
    CHECK(encoded(Package({ Zero {}, Zero {}, Zero {}, Zero {} })) == "12 06 04 00 00 00 00");
    // Package (0x02) { 0x0F, "A" }
    CHECK(encoded(Package({ 0x0F, String("A") })) == "12 07 02 0A 0F 0D 41 00");
    // Package (0xFF) {}: a fixed size larger than the initializers (QEMU's CNEW), checked with iasl
    CHECK(encoded(Package(0xFF, {})) == "12 02 FF");
}

TEST_CASE("a VarPackage takes its element count as a term", "[acpi][aml]")
{
    // Package (Arg0) { One, 0x02 }: body = 68 01 0A 02 (4) -> PkgLength 05; checked with iasl
    CHECK(encoded(VarPackage(Arg(0), { 1, 2 })) == "13 05 68 01 0A 02");
    // Package (0x0100) {}: a count above 255 is a VarPackage too; checked with iasl
    CHECK(encoded(VarPackage(0x100, {})) == "13 04 0B 00 01");
}

// --- names -----------------------------------------------------------------------------------------------

TEST_CASE("name segments are padded with underscores", "[acpi][aml][names]")
{
    // _SB
    CHECK(encoded(NameSeg("_SB")) == expected({ "_SB_" }));
    CHECK(encoded(NameSeg("A")) == expected({ "A___" }));
    CHECK(encoded(NameSeg("C0FF")) == expected({ "C0FF" }));
    CHECK(NameSeg("_SB").view() == "_SB_");
}

TEST_CASE("name paths use the root, parent, dual and multi prefixes", "[acpi][aml][names]")
{
    // CPUS
    CHECK(encoded(NameString("CPUS")) == expected({ "CPUS" }));
    // \_SB
    CHECK(encoded(NameString("\\_SB")) == expected({ { 0x5C }, "_SB_" }));
    // \_SB.CPUS
    CHECK(encoded(NameString("\\_SB.CPUS")) == expected({ { 0x5C, 0x2E }, "_SB_CPUS" }));
    // \_SB.PCI0.PRES
    CHECK(encoded(NameString("\\_SB.PCI0.PRES")) == expected({ { 0x5C, 0x2F, 0x03 }, "_SB_PCI0PRES" }));
    // \_SB.PCI0.PRES.CSEL
    CHECK(encoded(NameString("\\_SB.PCI0.PRES.CSEL")) == expected({ { 0x5C, 0x2F, 0x04 }, "_SB_PCI0PRESCSEL" }));
    // ^CPLK
    CHECK(encoded(NameString("^CPLK")) == expected({ { 0x5E }, "CPLK" }));
    // ^^PRES.CPLK
    CHECK(encoded(NameString("^^PRES.CPLK")) == expected({ { 0x5E, 0x5E, 0x2E }, "PRESCPLK" }));
    // the NullName, and the root on its own
    CHECK(encoded(NameString("")) == "00");
    CHECK(encoded(NameString("\\")) == "5C 00");
    CHECK(encoded(NullName {}) == "00");
}

TEST_CASE("malformed names are refused with the offending text", "[acpi][aml][names]")
{
    auto error_of = [](std::string_view text) {
        auto parsed = NameString::parse(text);
        REQUIRE_FALSE(parsed.has_value());
        return parsed.error();
    };
    CHECK(error_of("1ABC").find("1ABC") != std::string::npos); // digit first
    CHECK(error_of("ABCDE").find("1 to 4") != std::string::npos);
    CHECK(error_of("_sb").find("_sb") != std::string::npos); // lower case
    CHECK(error_of("A-B").find("A-B") != std::string::npos);
    CHECK(error_of("\\_SB..CPUS").find("\\_SB..CPUS") != std::string::npos); // empty segment
    CHECK(error_of("\\_SB.").find("ends with") != std::string::npos);
    CHECK(error_of(".CPUS").find(".CPUS") != std::string::npos);
    CHECK(error_of("\\^CPUS").find("root and parent") != std::string::npos);
    CHECK_FALSE(NameSeg::parse("").has_value());
    CHECK_FALSE(NameSeg::parse("_SB_X").has_value());
    CHECK(NameString::parse("\\_SB.C3FF").has_value());
}

TEST_CASE("Local and Arg are single-byte opcodes", "[acpi][aml]")
{
    CHECK(encoded(Local(0)) == "60");
    CHECK(encoded(Local(7)) == "67");
    CHECK(encoded(Arg(0)) == "68");
    CHECK(encoded(Arg(6)) == "6E");
}

// --- named objects ---------------------------------------------------------------------------------------

TEST_CASE("Name binds a name to a value", "[acpi][aml]")
{
    // Name (_HID, "ACPI0010")
    CHECK(encoded(Name("_HID", String("ACPI0010"))) == expected({ { 0x08 }, "_HID", { 0x0D }, "ACPI0010", { 0x00 } }));
    // Name (_CID, EisaId ("PNP0A05"))
    CHECK(encoded(Name("_CID", EisaId("PNP0A05"))) == expected({ { 0x08 }, "_CID", { 0x0C, 0x41, 0xD0, 0x0A, 0x05 } }));
    // Name (_UID, 0x2A)
    CHECK(encoded(Name("_UID", 42)) == expected({ { 0x08 }, "_UID", { 0x0A, 0x2A } }));
    // Name (\_S5, Package (0x04) { Zero, Zero, Zero, Zero })
    CHECK(encoded(Name("\\_S5", Package({ Zero {}, Zero {}, Zero {}, Zero {} })))
        == expected({ { 0x08, 0x5C }, "_S5_", { 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00 } }));
}

TEST_CASE("Scope and Device wrap their body in a PkgLength", "[acpi][aml]")
{
    // Scope (\_SB) {}
    CHECK(encoded(Scope("\\_SB", {})) == expected({ { 0x10, 0x06, 0x5C }, "_SB_" }));
    // Device (CPUS) { Name (_HID, "ACPI0010") }
    CHECK(encoded(Device("CPUS", { Name("_HID", String("ACPI0010")) }))
        == expected({ { 0x5B, 0x82, 0x14 }, "CPUS", { 0x08 }, "_HID", { 0x0D }, "ACPI0010", { 0x00 } }));
}

TEST_CASE("trees of constructs read like ASL and nest their lengths", "[acpi][aml]")
{
    // Scope (\_SB)
    // {
    //     Device (CPUS)
    //     {
    //         Name (_HID, "ACPI0010")
    //         Name (_CID, EisaId ("PNP0A05"))
    //     }
    // }
    auto tree = Scope("\\_SB", {
        Device("CPUS", {
            Name("_HID", String("ACPI0010")),
            Name("_CID", EisaId("PNP0A05")),
        }),
    });
    CHECK(encoded(tree) == expected({
        { 0x10, 0x26, 0x5C }, "_SB_",
        { 0x5B, 0x82, 0x1E }, "CPUS",
        { 0x08 }, "_HID", { 0x0D }, "ACPI0010", { 0x00 },
        { 0x08 }, "_CID", { 0x0C, 0x41, 0xD0, 0x0A, 0x05 },
    }));
}

TEST_CASE("Method flags hold the argument count, serialization and sync level", "[acpi][aml]")
{
    // Method (_STA, 0, NotSerialized) { Return (0x0F) }, Firecracker
    CHECK(encoded(Method("_STA", 0, { Return(0x0F) })) == expected({ { 0x14, 0x09 }, "_STA", { 0x00, 0xA4, 0x0A, 0x0F } }));
    // Method (CSTA, 1, Serialized) { Return (Zero) }
    CHECK(encoded(Method("CSTA", 1, Serialization::Serialized, { Return(0) }))
        == expected({ { 0x14, 0x08 }, "CSTA", { 0x09, 0xA4, 0x00 } }));
    // Method (TEST, 7, Serialized, 15) {}
    CHECK(encoded(Method("TEST", 7, Serialization::Serialized, 15, {})) == expected({ { 0x14, 0x06 }, "TEST", { 0xFF } }));
}

TEST_CASE("Mutex, Acquire and Release", "[acpi][aml]")
{
    // Mutex (CPLK, 0x00)
    CHECK(encoded(Mutex("CPLK")) == expected({ { 0x5B, 0x01 }, "CPLK", { 0x00 } }));
    // Mutex (CPLK, 0x0F)
    CHECK(encoded(Mutex("CPLK", 15)) == expected({ { 0x5B, 0x01 }, "CPLK", { 0x0F } }));
    // Acquire (\_SB.PRES.CPLK, 0xFFFF)
    CHECK(encoded(Acquire("\\_SB.PRES.CPLK", 0xFFFF))
        == expected({ { 0x5B, 0x23, 0x5C, 0x2F, 0x03 }, "_SB_PRESCPLK", { 0xFF, 0xFF } }));
    // Release (CPLK)
    CHECK(encoded(Release("CPLK")) == expected({ { 0x5B, 0x27 }, "CPLK" }));
}

TEST_CASE("an I/O OperationRegion encodes space, offset and length", "[acpi][aml]")
{
    // OperationRegion (PRST, SystemIO, 0x0CD8, 0x0C), Firecracker
    CHECK(encoded(OperationRegion("PRST", RegionSpace::SystemIO, 0x0CD8, 0x0C))
        == expected({ { 0x5B, 0x80 }, "PRST", { 0x01, 0x0B, 0xD8, 0x0C, 0x0A, 0x0C } }));
    // OperationRegion (MEMR, SystemMemory, 0xFEC00000, 0x1000)
    CHECK(encoded(OperationRegion("MEMR", RegionSpace::SystemMemory, 0xFEC00000u, 0x1000))
        == expected({ { 0x5B, 0x80 }, "MEMR", { 0x00, 0x0C, 0x00, 0x00, 0xC0, 0xFE, 0x0B, 0x00, 0x10 } }));
}

TEST_CASE("the byte-access CPU hotplug field matches QEMU's current layout", "[acpi][aml]")
{
    // Field (PRST, ByteAcc, NoLock, WriteAsZeros)
    // {
    //     Offset (0x04),
    //     CPEN, 1, CINS, 1, CRMV, 1, CEJ0, 1, CEJF, 1,
    //     , 3,
    //     CCMD, 8
    // }
    // Firecracker's vector has the older layout without CEJF (gap 00 04, PkgLength 0x23); this is QEMU's current one.
    // PkgLength: "PRST" 4 + flags 1 + 00 20 2 + five 5-byte units 25 + 00 03 2 + CCMD 5 = 39, +1 = 0x28
    auto const golden = expected({
        { 0x5B, 0x81, 0x28 }, "PRST", { 0x41, 0x00, 0x20 },
        "CPEN", { 0x01 }, "CINS", { 0x01 }, "CRMV", { 0x01 }, "CEJ0", { 0x01 }, "CEJF", { 0x01 },
        { 0x00, 0x03 }, "CCMD", { 0x08 },
    });
    CHECK(encoded(Field("PRST", FieldAccess::Byte, FieldLock::NoLock, FieldUpdate::WriteAsZeros, {
        FieldOffset { 4 },
        NamedField { "CPEN", 1 },
        NamedField { "CINS", 1 },
        NamedField { "CRMV", 1 },
        NamedField { "CEJ0", 1 },
        NamedField { "CEJF", 1 },
        ReservedField { 3 },
        NamedField { "CCMD", 8 },
    })) == golden);
    // The same with explicit reserved bits instead of Offset(): identical bytes.
    CHECK(encoded(Field("PRST", FieldAccess::Byte, FieldLock::NoLock, FieldUpdate::WriteAsZeros, {
        ReservedField { 32 },
        NamedField { "CPEN", 1 },
        NamedField { "CINS", 1 },
        NamedField { "CRMV", 1 },
        NamedField { "CEJ0", 1 },
        NamedField { "CEJF", 1 },
        FieldOffset { 5 },
        NamedField { "CCMD", 8 },
    })) == golden);
}

TEST_CASE("the dword-access CPU hotplug field has a 32-bit reserved gap", "[acpi][aml]")
{
    // Field (PRST, DWordAcc, NoLock, Preserve)
    // {
    //     CSEL, 32,
    //     , 32,
    //     CDAT, 32
    // }
    // Firecracker
    auto const golden = expected({ { 0x5B, 0x81, 0x12 }, "PRST", { 0x03 }, "CSEL", { 0x20, 0x00, 0x20 }, "CDAT", { 0x20 } });
    CHECK(encoded(Field("PRST", FieldAccess::DWord, FieldLock::NoLock, FieldUpdate::Preserve, {
        NamedField { "CSEL", 32 },
        ReservedField { 32 },
        NamedField { "CDAT", 32 },
    })) == golden);
    // ... written as QEMU's disassembly shows it: CSEL, 32, Offset (0x08), CDAT, 32
    CHECK(encoded(Field("PRST", FieldAccess::DWord, FieldLock::NoLock, FieldUpdate::Preserve, {
        NamedField { "CSEL", 32 },
        FieldOffset { 8 },
        NamedField { "CDAT", 32 },
    })) == golden);
}

TEST_CASE("field widths of 64 bits or more take a multi-byte length", "[acpi][aml]")
{
    // Field (MEMR, QWordAcc, Lock, WriteAsOnes) { BIG0, 64, , 4096 }
    // widths exclude their own bytes: 64 = 40 04, 4096 = 80 00 01
    CHECK(encoded(Field("MEMR", FieldAccess::QWord, FieldLock::Lock, FieldUpdate::WriteAsOnes, {
        NamedField { "BIG0", 64 },
        ReservedField { 4096 },
    })) == expected({ { 0x5B, 0x81, 0x10 }, "MEMR", { 0x34 }, "BIG0", { 0x40, 0x04, 0x00, 0x80, 0x00, 0x01 } }));
}

TEST_CASE("a resource template holds an IO descriptor and the end tag", "[acpi][aml]")
{
    // ResourceTemplate () { IO (Decode16, 0x0CD8, 0x0CD8, 0x01, 0x0C, ) }, checked with iasl
    CHECK(encoded(ResourceTemplate({ Io { IoDecode::Decode16, 0x0CD8, 0x0CD8, 0x01, 0x0C } }))
        == "11 0D 0A 0A 47 01 D8 0C D8 0C 01 0C 79 00");
    // ResourceTemplate () { IO (Decode10, 0x0060, 0x0064, 0x04, 0x01, ) IO (Decode16, 0x0600, 0x0600, 0x01, 0x30, ) }
    CHECK(encoded(ResourceTemplate({
              Io { IoDecode::Decode10, 0x0060, 0x0064, 0x04, 0x01 },
              Io { IoDecode::Decode16, 0x0600, 0x0600, 0x01, 0x30 },
          }))
        == "11 15 0A 12 47 00 60 00 64 00 04 01 47 01 00 06 00 06 01 30 79 00");
}

// --- statements and operators ----------------------------------------------------------------------------

TEST_CASE("control flow: If, Else, While, Break, Return", "[acpi][aml]")
{
    // If ((Arg0 == One)) { Return (0x0F) } Else { Return (Zero) }
    CHECK(encoded(If(LEqual(Arg(0), 1), { Return(0x0F) })) == "A0 07 93 68 01 A4 0A 0F");
    CHECK(encoded(Else({ Return(0) })) == "A1 03 A4 00");
    // While ((Local0 < 0x08)) { Break }
    CHECK(encoded(While(LLess(Local(0), 8), { Break {} })) == "A2 06 95 60 0A 08 A5");
    // Return (Ones)
    CHECK(encoded(Return(Ones {})) == "A4 FF");
}

TEST_CASE("arithmetic operators take an optional target", "[acpi][aml]")
{
    // Local0 = (Local1 + Local2)  ==  Add (Local1, Local2, Local0)
    CHECK(encoded(Add(Local(1), Local(2), Local(0))) == "72 61 62 60");
    // Add (Local1, One): result only, NullName target
    CHECK(encoded(Add(Local(1), 1)) == "72 61 01 00");
    // Subtract (Arg0, 0x02, Local0)
    CHECK(encoded(Subtract(Arg(0), 2, Local(0))) == "74 68 0A 02 60");
    // ShiftLeft (One, Arg0, Local0), ShiftRight (Local0, 0x04, Local1)
    CHECK(encoded(ShiftLeft(1, Arg(0), Local(0))) == "79 01 68 60");
    CHECK(encoded(ShiftRight(Local(0), 4, Local(1))) == "7A 60 0A 04 61");
    // And (Local0, 0xFF, Local1), Or (Local0, 0x0100, Local1)
    CHECK(encoded(And(Local(0), 0xFF, Local(1))) == "7B 60 0A FF 61");
    CHECK(encoded(Or(Local(0), 0x100, Local(1))) == "7D 60 0B 00 01 61");
    // Local0++, Local0--
    CHECK(encoded(Increment(Local(0))) == "75 60");
    CHECK(encoded(Decrement(Local(0))) == "76 60");
    // ToInteger (Arg0, Local0)
    CHECK(encoded(ToInteger(Arg(0), Local(0))) == "99 68 60");
    CHECK(encoded(ToInteger(Arg(0))) == "99 68 00");
}

TEST_CASE("logical operators, with LNotEqual as LNot of LEqual", "[acpi][aml]")
{
    // (Arg0 && Arg1), (Arg0 || Arg1), !Arg0
    CHECK(encoded(LAnd(Arg(0), Arg(1))) == "90 68 69");
    CHECK(encoded(LOr(Arg(0), Arg(1))) == "91 68 69");
    CHECK(encoded(LNot(Arg(0))) == "92 68");
    // (Arg0 == Arg1), (Arg0 > Arg1), (Arg0 < Arg1), (Arg0 != Arg1)
    CHECK(encoded(LEqual(Arg(0), Arg(1))) == "93 68 69");
    CHECK(encoded(LGreater(Arg(0), Arg(1))) == "94 68 69");
    CHECK(encoded(LLess(Arg(0), Arg(1))) == "95 68 69");
    CHECK(encoded(LNotEqual(Arg(0), Arg(1))) == "92 93 68 69");
}

TEST_CASE("Store, Notify and package access", "[acpi][aml]")
{
    // \_SB.PRES.CSEL = Arg0  ==  Store (Arg0, \_SB.PRES.CSEL)
    CHECK(encoded(Store(Arg(0), NameString("\\_SB.PRES.CSEL")))
        == expected({ { 0x70, 0x68, 0x5C, 0x2F, 0x03 }, "_SB_PRESCSEL" }));
    // Notify (C001, Arg1)
    CHECK(encoded(Notify(NameString("C001"), Arg(1))) == expected({ { 0x86 }, "C001", { 0x69 } }));
    // Local0 = DerefOf (CNEW [Local2])  ==  Store (DerefOf (Index (CNEW, Local2)), Local0)
    CHECK(encoded(Store(DerefOf(Index(NameString("CNEW"), Local(2))), Local(0)))
        == expected({ { 0x70, 0x83, 0x88 }, "CNEW", { 0x62, 0x00, 0x60 } }));
    // CNEW [Local1] = Local3  ==  Store (Local3, Index (CNEW, Local1))
    CHECK(encoded(Store(Local(3), Index(NameString("CNEW"), Local(1))))
        == expected({ { 0x70, 0x63, 0x88 }, "CNEW", { 0x61, 0x00 } }));
    // SizeOf (CNEW)
    CHECK(encoded(SizeOf(NameString("CNEW"))) == expected({ { 0x87 }, "CNEW" }));
}

TEST_CASE("a method call is the method's path followed by its arguments", "[acpi][aml]")
{
    // CSTA (Zero)
    CHECK(encoded(MethodCall("CSTA", { 0 })) == expected({ "CSTA", { 0x00 } }));
    // \_SB.CPUS.CSCN ()
    CHECK(encoded(MethodCall("\\_SB.CPUS.CSCN")) == expected({ { 0x5C, 0x2F, 0x03 }, "_SB_CPUSCSCN" }));
    // COST (One, Arg0, Arg1, Arg2)
    CHECK(encoded(MethodCall("COST", { 1, Arg(0), Arg(1), Arg(2) })) == expected({ "COST", { 0x01, 0x68, 0x69, 0x6A } }));
}

TEST_CASE("a device using every construct encodes as iasl compiles it", "[acpi][aml]")
{
    // Device (PRES)
    // {
    //     Name (_HID, EisaId ("PNP0A06"))
    //     Name (_CRS, ResourceTemplate () { IO (Decode16, 0x0CD8, 0x0CD8, 0x01, 0x0C, ) })
    //     Mutex (CPLK, 0x00)
    //     Name (CNEW, Package (0xFF) {})
    //     Method (TEST, 2, Serialized, 3)
    //     {
    //         Acquire (CPLK, 0xFFFF)
    //         Release (CPLK)
    //         Store (DerefOf (Index (CNEW, Arg0)), Local0)
    //         Index (CNEW, Arg0, Local5)
    //         Store (SizeOf (CNEW), Local1)
    //         ToInteger (Arg1, Local2)
    //         ShiftLeft (Arg0, 0x02, Local3)
    //         ShiftRight (Arg0, 0x02, Local3)
    //         Add (Local0, Local1, Local2)
    //         Subtract (Local0, Local1, Local2)
    //         And (Local0, 0xFF, Local2)
    //         Or (Local0, 0xFF00, Local2)
    //         Increment (Local0)
    //         Decrement (Local1)
    //         While (LLess (Local0, 0x08)) { If (LGreater (Local0, Local1)) { Break } }
    //         If (LNotEqual (Arg0, Arg1)) { Return (Ones) } Else { Store (0xFFFFFFFFFFFF, Local4) }
    //         If (LAnd (LEqual (Local2, One), LOr (Local3, LNot (Local5)))) { Notify (PRES, 0x80) }
    //         Return (TST2 (Local0))
    //     }
    //     Method (TST2, 1, NotSerialized) { Return (Arg0) }
    // }
    // Expected: iasl 20200925's AML for that ASL inside a DSDT, from the byte after the header.
    auto const golden = cat({
        { 0x5B, 0x82, 0x45, 0x0C }, "PRES",
        { 0x08 }, "_HID", { 0x0C, 0x41, 0xD0, 0x0A, 0x06 },
        { 0x08 }, "_CRS", { 0x11, 0x0D, 0x0A, 0x0A, 0x47, 0x01, 0xD8, 0x0C, 0xD8, 0x0C, 0x01, 0x0C, 0x79, 0x00 },
        { 0x5B, 0x01 }, "CPLK", { 0x00 },
        { 0x08 }, "CNEW", { 0x12, 0x02, 0xFF },
        { 0x14, 0x49, 0x08 }, "TEST", { 0x3A },
        { 0x5B, 0x23 }, "CPLK", { 0xFF, 0xFF },
        { 0x5B, 0x27 }, "CPLK",
        { 0x70, 0x83, 0x88 }, "CNEW", { 0x68, 0x00, 0x60 },
        { 0x88 }, "CNEW", { 0x68, 0x65 },
        { 0x70, 0x87 }, "CNEW", { 0x61 },
        { 0x99, 0x69, 0x62 },
        { 0x79, 0x68, 0x0A, 0x02, 0x63 },
        { 0x7A, 0x68, 0x0A, 0x02, 0x63 },
        { 0x72, 0x60, 0x61, 0x62 },
        { 0x74, 0x60, 0x61, 0x62 },
        { 0x7B, 0x60, 0x0A, 0xFF, 0x62 },
        { 0x7D, 0x60, 0x0B, 0x00, 0xFF, 0x62 },
        { 0x75, 0x60 },
        { 0x76, 0x61 },
        { 0xA2, 0x0B, 0x95, 0x60, 0x0A, 0x08, 0xA0, 0x05, 0x94, 0x60, 0x61, 0xA5 },
        { 0xA0, 0x07, 0x92, 0x93, 0x68, 0x69, 0xA4, 0xFF },
        { 0xA1, 0x0C, 0x70, 0x0E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x64 },
        { 0xA0, 0x10, 0x90, 0x93, 0x62, 0x01, 0x91, 0x63, 0x92, 0x65, 0x86 }, "PRES", { 0x0A, 0x80 },
        { 0xA4 }, "TST2", { 0x60 },
        { 0x14, 0x08 }, "TST2", { 0x01, 0xA4, 0x68 },
    });
    auto device = Device("PRES", {
        Name("_HID", EisaId("PNP0A06")),
        Name("_CRS", ResourceTemplate({ Io { IoDecode::Decode16, 0x0CD8, 0x0CD8, 0x01, 0x0C } })),
        Mutex("CPLK", 0),
        Name("CNEW", Package(0xFF, {})),
        Method("TEST", 2, Serialization::Serialized, 3, {
            Acquire("CPLK", 0xFFFF),
            Release("CPLK"),
            Store(DerefOf(Index(NameString("CNEW"), Arg(0))), Local(0)),
            Index(NameString("CNEW"), Arg(0), Local(5)),
            Store(SizeOf(NameString("CNEW")), Local(1)),
            ToInteger(Arg(1), Local(2)),
            ShiftLeft(Arg(0), 2, Local(3)),
            ShiftRight(Arg(0), 2, Local(3)),
            Add(Local(0), Local(1), Local(2)),
            Subtract(Local(0), Local(1), Local(2)),
            And(Local(0), 0xFF, Local(2)),
            Or(Local(0), 0xFF00, Local(2)),
            Increment(Local(0)),
            Decrement(Local(1)),
            While(LLess(Local(0), 8), { If(LGreater(Local(0), Local(1)), { Break {} }) }),
            If(LNotEqual(Arg(0), Arg(1)), { Return(Ones {}) }),
            Else({ Store(0xFFFFFFFFFFFF, Local(4)) }),
            If(LAnd(LEqual(Local(2), 1), LOr(Local(3), LNot(Local(5)))), { Notify(NameString("PRES"), 0x80) }),
            Return(MethodCall("TST2", { Local(0) })),
        }),
        Method("TST2", 1, { Return(Arg(0)) }),
    });
    CHECK(encoded(device) == hex(golden));
}

TEST_CASE("a scan loop nests Break, ElseIf, a method-local Name and calls", "[acpi][aml]")
{
    // Method (SCAN, 3, Serialized)
    // {
    //     Name (CNEW, Package (0xFF) {})
    //     While ((Arg1 < Arg0))
    //     {
    //         If ((Arg2 == 0xFF)) { Arg2 = One  Break }
    //         If ((Arg2 == One)) { CNEW [Arg2] = Arg1  Arg2++ }
    //         ElseIf ((Arg2 == 0x02)) { CTFY (Arg1, 0x03) }
    //     }
    // }
    // ElseIf is an If alone in an Else. iasl 20200925 compiles the same bytes. Lengths, inside out:
    // If #1: 93 6A 0A FF + 70 01 6A + A5 = 8 -> 09; If #2: 3 + 70 69 88 CNEW 6A 00 (9) + 75 6A = 14 -> 0F;
    // inner If: 4 + CTFY 69 0A 03 (7) = 11 -> 0C; its Else: 2 + 11 = 13 -> 0E;
    // While: 95 69 68 + 10 + 16 + 15 = 44 -> 2D; Method: SCAN + flags 0B + Name (8) + While (46) = 59 -> 3C.
    auto method = Method("SCAN", 3, Serialization::Serialized, {
        Name("CNEW", Package(0xFF, {})),
        While(LLess(Arg(1), Arg(0)), {
            If(LEqual(Arg(2), 0xFF), { Store(1, Arg(2)), Break {} }),
            If(LEqual(Arg(2), 1), { Store(Arg(1), Index(NameString("CNEW"), Arg(2))), Increment(Arg(2)) }),
            Else({ If(LEqual(Arg(2), 2), { MethodCall("CTFY", { Arg(1), 3 }) }) }),
        }),
    });
    CHECK(encoded(method) == expected({
        { 0x14, 0x3C }, "SCAN", { 0x0B },
        { 0x08 }, "CNEW", { 0x12, 0x02, 0xFF },
        { 0xA2, 0x2D, 0x95, 0x69, 0x68 },
        { 0xA0, 0x09, 0x93, 0x6A, 0x0A, 0xFF, 0x70, 0x01, 0x6A, 0xA5 },
        { 0xA0, 0x0F, 0x93, 0x6A, 0x01, 0x70, 0x69, 0x88 }, "CNEW", { 0x6A, 0x00, 0x75, 0x6A },
        { 0xA1, 0x0E, 0xA0, 0x0C, 0x93, 0x6A, 0x0A, 0x02 }, "CTFY", { 0x69, 0x0A, 0x03 },
    }));
}

TEST_CASE("emit_all concatenates terms and a shared subtree encodes the same everywhere", "[acpi][aml]")
{
    Aml sta = Method("_STA", 0, { Return(0x0F) });
    std::vector<Aml> terms { sta, Name("_UID", 1), sta };
    AmlSink sink;
    emit_all(sink, terms);
    auto const sta_bytes = expected({ { 0x14, 0x09 }, "_STA", { 0x00, 0xA4, 0x0A, 0x0F } });
    CHECK(hex(sink.data()) == sta_bytes + " " + expected({ { 0x08 }, "_UID", { 0x01 } }) + " " + sta_bytes);
}

TEST_CASE("the sink writes little-endian words, dwords and qwords", "[acpi][aml]")
{
    AmlSink sink;
    sink.byte(0x01);
    sink.word(0x0302);
    sink.dword(0x07060504);
    sink.qword(0x0F0E0D0C0B0A0908);
    uint8_t const tail[] = { 0x10, 0x11 };
    sink.bytes(tail);
    CHECK(hex(sink.data()) == "01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11");
    auto taken = sink.take();
    CHECK(taken.size() == 17);
}
