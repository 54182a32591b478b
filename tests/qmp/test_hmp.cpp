// HMP's pieces on their own: expressions, memory dumps, the register dump's layout, line endings.
#include "qmp/cpu_dump.hpp"
#include "qmp/hmp.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <sstream>

using namespace vmm::qmp;

namespace {

cpuplug::Result<int64_t, std::string> eval(std::string_view text, std::optional<CpuRegisters> regs = std::nullopt)
{
    size_t position = 0;
    RegisterLookup lookup = [&regs](std::string_view name) -> std::optional<uint64_t> {
        return regs ? register_value(*regs, name) : std::nullopt;
    };
    return evaluate_hmp_expression(text, position, lookup);
}

int64_t value(std::string_view text, std::optional<CpuRegisters> regs = std::nullopt)
{
    auto result = eval(text, regs);
    INFO(text);
    REQUIRE(result.has_value());
    return result.value();
}

std::string error(std::string_view text)
{
    auto result = eval(text);
    INFO(text);
    REQUIRE_FALSE(result.has_value());
    return result.error();
}

std::vector<std::string> lines_of(std::string const& text)
{
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

SegmentRegister segment(uint16_t selector, uint64_t base, uint32_t limit, uint8_t type, bool s, bool l, bool db,
    bool g)
{
    SegmentRegister seg;
    seg.selector = selector;
    seg.base = base;
    seg.limit = limit;
    seg.type = type;
    seg.present = true;
    seg.s = s;
    seg.l = l;
    seg.db = db;
    seg.g = g;
    return seg;
}

// A Linux-like CPU in 64-bit kernel code.
CpuRegisters long_mode_cpu()
{
    CpuRegisters r;
    r.rax = 1;
    r.rbx = 2;
    r.rcx = 3;
    r.rdx = 4;
    r.rsi = 5;
    r.rdi = 6;
    r.rbp = 7;
    r.rsp = 0xFFFF'C900'0000'3F58ull;
    r.r8 = 8;
    r.r15 = 0xF;
    r.rip = 0xFFFF'FFFF'8100'0000ull;
    r.rflags = 0x246;
    r.cs = segment(0x10, 0, 0xFFFFFFFF, 0xB, true, true, false, true);
    r.ss = segment(0x18, 0, 0xFFFFFFFF, 0x3, true, false, true, true);
    r.tr = segment(0x40, 0xFFFF'FE00'0000'3000ull, 0x4087, 0xB, false, false, false, false);
    r.ds.unusable = true;
    r.gdt = { 0xFFFF'FE00'0000'1000ull, 0x7F };
    r.idt = { 0xFFFF'FE00'0000'0000ull, 0xFFF };
    r.cr0 = 0x8005'0033;
    r.cr2 = 0x7F00'0000'1000ull;
    r.cr3 = 0x1234'5000;
    r.cr4 = 0x3506F0;
    r.efer = 0xD01;
    r.halted = true;
    return r;
}

} // namespace

TEST_CASE("HMP expressions: numbers in C's bases, precedence and parentheses", "[hmp]")
{
    CHECK(value("42") == 42);
    CHECK(value("0x1F") == 31);
    CHECK(value("0X1f") == 31);
    CHECK(value("017") == 15);
    CHECK(value("0") == 0);
    CHECK(value("  0x10 ") == 16);
    CHECK(value("1 + 2 * 3") == 7);
    CHECK(value("(1 + 2) * 3") == 9);
    CHECK(value("0x1000 | 0xf & 0x3") == 3); // QEMU's & | ^ bind alike, left to right, below * / % and above + -
    CHECK(value("1 + 2 & 3") == 3);
    CHECK(value("10 - 3 - 2") == 5);
    CHECK(value("-1") == -1);
    CHECK(value("~0") == -1);
    CHECK(value("+5") == 5);
    CHECK(value("7 % 4") == 3);
    CHECK(value("-7 / 2") == -3);
    CHECK(value("'A'") == 65);
    CHECK(value("0xffffffffffffffff") == -1);
    CHECK(value("0x8000000000000000 / -1") == std::numeric_limits<int64_t>::min()); // no trap
}

TEST_CASE("HMP expressions report QEMU's errors", "[hmp]")
{
    CHECK(error("") == "unexpected end of expression");
    CHECK(error("1 +") == "unexpected end of expression");
    CHECK(error("(1") == "')' expected");
    CHECK(error("1 / 0") == "division by zero");
    CHECK(error("5 % 0") == "division by zero");
    CHECK(error("0x10000000000000000") == "number too large");
    CHECK(error("q") == "invalid char 'q' in expression");
    CHECK(error("'") == "character constant expected");
    CHECK(error("'ab'") == "missing terminating ' character");
    CHECK(error("$nosuch") == "unknown register");
    CHECK(error(std::string(10000, '(')) == "expression too deeply nested");
    CHECK(error(std::string(10000, '-') + "1") == "expression too deeply nested");
}

TEST_CASE("HMP expressions stop where the expression ends and read registers", "[hmp]")
{
    size_t position = 0;
    RegisterLookup none = [](std::string_view) { return std::nullopt; };
    auto result = evaluate_hmp_expression("0x10 junk", position, none);
    REQUIRE(result.has_value());
    CHECK(result.value() == 16);
    CHECK(position == 5);

    auto regs = long_mode_cpu();
    CHECK(uint64_t(value("$rip", regs)) == regs.rip);
    CHECK(uint64_t(value("$rsp + 8", regs)) == regs.rsp + 8);
    CHECK(value("$cr3", regs) == 0x1234'5000);
    CHECK(value("$eax", regs) == 1);
    CHECK(value("$cs", regs) == 0x10);
    regs.cs.base = 0xF0000;
    regs.rip = 0xFFF0;
    CHECK(value("$pc", regs) == 0xFFFF0);
}

TEST_CASE("memory dumps: QEMU's units, widths and lines", "[hmp]")
{
    std::vector<uint8_t> bytes(64);
    for (size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = uint8_t(i);
    MemoryReader read = [&bytes](uint64_t address, std::span<uint8_t> out) {
        if (address < 0x1000 || address - 0x1000 + out.size() > bytes.size())
            return false;
        std::memcpy(out.data(), bytes.data() + (address - 0x1000), out.size());
        return true;
    };
    CHECK(format_memory_dump(0x1000, 4, 'x', 4, read)
        == "0000000000001000: 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c\n");
    CHECK(format_memory_dump(0x1000, 3, 'x', 8, read)
        == "0000000000001000: 0x0706050403020100 0x0f0e0d0c0b0a0908\n"
           "0000000000001010: 0x1716151413121110\n");
    CHECK(format_memory_dump(0x1000, 10, 'x', 1, read)
        == "0000000000001000: 0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07\n"
           "0000000000001008: 0x08 0x09\n");
    CHECK(format_memory_dump(0x1002, 2, 'x', 2, read) == "0000000000001002: 0x0302 0x0504\n");
    CHECK(format_memory_dump(0x1008, 2, 'u', 1, read) == "0000000000001008:   8   9\n");
    CHECK(format_memory_dump(0x1008, 2, 'o', 1, read) == "0000000000001008: 010 011\n");
    CHECK(format_memory_dump(0x1000, 0, 'x', 4, read).empty());
    // Beyond what can be read: the address, then QEMU's words, and the dump stops.
    CHECK(format_memory_dump(0x1030, 8, 'x', 4, read)
        == "0000000000001030: 0x33323130 0x37363534 0x3b3a3938 0x3f3e3d3c\n"
           "0000000000001040: Cannot access memory\n");
}

TEST_CASE("memory dumps: signed, unsigned and character forms", "[hmp]")
{
    std::vector<uint8_t> bytes { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 'R', '\n', 1, '\'', '\\', '\r', 0x80 };
    MemoryReader read = [&bytes](uint64_t address, std::span<uint8_t> out) {
        if (address + out.size() > bytes.size())
            return false;
        std::memcpy(out.data(), bytes.data() + address, out.size());
        return true;
    };
    // QEMU loads smaller units unsigned, so "d" shows a negative value only for 8-byte units.
    CHECK(format_memory_dump(0, 1, 'd', 8, read) == "0000000000000000: " + std::string(18, ' ') + "-1\n");
    CHECK(format_memory_dump(0, 1, 'd', 4, read) == "0000000000000000: 4294967295\n");
    CHECK(format_memory_dump(0, 1, 'u', 8, read) == "0000000000000000: 18446744073709551615\n");
    CHECK(format_memory_dump(8, 7, 'c', 4, read) == "0000000000000008: 'R' '\\n' '\\x01' '\\'' '\\\\' '\\r' '\\x80'\n");
}

TEST_CASE("the register dump has QEMU's 64-bit layout", "[hmp]")
{
    auto lines = lines_of(dump_cpu_registers(long_mode_cpu()));
    REQUIRE(lines.size() == 32);
    CHECK(lines[0] == "RAX=0000000000000001 RBX=0000000000000002 RCX=0000000000000003 RDX=0000000000000004");
    CHECK(lines[1] == "RSI=0000000000000005 RDI=0000000000000006 RBP=0000000000000007 RSP=ffffc90000003f58");
    CHECK(lines[2] == "R8 =0000000000000008 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000");
    CHECK(lines[3] == "R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=000000000000000f");
    CHECK(lines[4] == "RIP=ffffffff81000000 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1");
    CHECK(lines[5] == "ES =0000 0000000000000000 00000000 00000000");
    CHECK(lines[6] == "CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]");
    CHECK(lines[7] == "SS =0018 0000000000000000 ffffffff 00c09300 DPL=0 DS   [-WA]");
    CHECK(lines[8] == "DS =0000 0000000000000000 00000000 00000000");
    CHECK(lines[11] == "LDT=0000 0000000000000000 00000000 00000000");
    CHECK(lines[12] == "TR =0040 fffffe0000003000 00004087 00008b00 DPL=0 TSS64-busy");
    CHECK(lines[13] == "GDT=     fffffe0000001000 0000007f");
    CHECK(lines[14] == "IDT=     fffffe0000000000 00000fff");
    CHECK(lines[15] == "CR0=80050033 CR2=00007f0000001000 CR3=0000000012345000 CR4=003506f0");
    CHECK(lines[16] == "DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ");
    CHECK(lines[17] == "DR6=0000000000000000 DR7=0000000000000000");
    CHECK(lines[18] == "EFER=0000000000000d01");
    CHECK(lines[19] == "FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80");
    CHECK(lines[20] == "FPR0=0000000000000000 0000 FPR1=0000000000000000 0000");
    CHECK(lines[24] == "XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000");
    CHECK(lines[31].starts_with("XMM14="));
}

TEST_CASE("the register dump switches to 32-bit names outside 64-bit code and shows CPL, II and SMM", "[hmp]")
{
    CpuRegisters r;
    r.rax = 0x1'2345'6789ull; // only the low half shows
    r.rip = 0x100000;
    r.rflags = 0x2 | 0x1 | 0x400 | 0x800;
    r.cr0 = 0x11;
    r.cs = segment(0x8, 0, 0xFFFFFFFF, 0xB, true, false, true, true);
    r.ss = segment(0x13, 0, 0xFFFFFFFF, 0x3, true, false, true, true);
    r.ss.dpl = 3;
    r.gdt = { 0x9000, 0x1F };
    r.interrupt_shadow = true;
    r.smm = true;
    r.fsw = 0x3800 | 0x41; // TOP = 7
    r.fpr[1] = { 0x11, 0, 0, 0, 0, 0, 0, 0x80, 0xFF, 0x3F };
    auto lines = lines_of(dump_cpu_registers(r));
    REQUIRE(lines.size() == 3 + 8 + 2 + 1 + 2 + 1 + 1 + 4 + 4);
    CHECK(lines[0] == "EAX=23456789 EBX=00000000 ECX=00000000 EDX=00000000");
    CHECK(lines[2] == "EIP=00100000 EFL=00000c03 [DO----C] CPL=3 II=1 A20=1 SMM=1 HLT=0");
    CHECK(lines[4] == "CS =0008 00000000 ffffffff 00c09b00 DPL=0 CS32 [-RA]");
    CHECK(lines[5] == "SS =0013 00000000 ffffffff 00c0f300 DPL=3 DS   [-WA]");
    CHECK(lines[11] == "GDT=     00009000 0000001f");
    CHECK(lines[13] == "CR0=00000011 CR2=00000000 CR3=00000000 CR4=00000000");
    CHECK(lines[17] == "FCW=037f FSW=3841 [ST=7] FTW=00 MXCSR=00001f80");
    CHECK(lines[18] == "FPR0=0000000000000000 0000 FPR1=8000000000000011 3fff");
    CHECK(lines[22] == "XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000");
}

TEST_CASE("in real mode the register dump shows no descriptor details", "[hmp]")
{
    // An AP as KVM creates it, waiting for INIT/SIPI: the reset vector.
    CpuRegisters r;
    r.rip = 0xFFF0;
    r.cr0 = 0x6000'0010;
    r.cs = segment(0xF000, 0xFFFF'0000, 0xFFFF, 0xB, true, false, false, false);
    auto lines = lines_of(dump_cpu_registers(r));
    CHECK(lines[2] == "EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0");
    CHECK(lines[4] == "CS =f000 ffff0000 0000ffff 00009b00");
    CHECK(current_privilege_level(r) == 0);
}

TEST_CASE("segment_flags builds QEMU's descriptor flags from KVM's fields", "[hmp]")
{
    CHECK(segment_flags(segment(0x10, 0, 0xFFFFFFFF, 0xB, true, true, false, true)) == 0x00A09B00);
    SegmentRegister unusable = segment(0x18, 0, 0xFFFFFFFF, 0x3, true, false, true, true);
    unusable.unusable = true; // KVM's "null selector loaded": not present for QEMU either
    CHECK(segment_flags(unusable) == 0x00C01300);
    SegmentRegister avl = segment(0, 0, 0, 0x2, false, false, false, false);
    avl.avl = true;
    avl.dpl = 2;
    CHECK(segment_flags(avl) == 0x0010C200);
}

TEST_CASE("HMP output has CRLF line ends over QMP", "[hmp]")
{
    CHECK(hmp_line_endings("a\nb\n") == "a\r\nb\r\n");
    CHECK(hmp_line_endings("") == "");
    CHECK(hmp_line_endings("\n\n") == "\r\n\r\n");
}
