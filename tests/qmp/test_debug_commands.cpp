// human-monitor-command, pmemsave and memsave over a fake machine: HMP's texts as QEMU prints them, which
// registers are read when, memory through synthetic page tables, and the files the saves write.
#include "qmp/commands.hpp"

#include "fake_backend.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/stat.h>

using namespace vmm::qmp;
using qmp_test::FakeBackend;
using qmp_test::SessionHarness;

namespace {

constexpr uint64_t P = 1, RW = 2, PS = 0x80;

CpuSlot present_slot(uint32_t index, int64_t tid)
{
    CpuSlot slot;
    slot.index = index;
    slot.qom_path = "/machine/unattached/device[" + std::to_string(index) + "]";
    slot.thread_id = tid;
    return slot;
}

// CPUs 0, 1 and 3 present of 4; 8 MiB of RAM at 0 holding bytes 0, 1, 2... from 0x1000 on, and 4-level page
// tables at 0x10000 that map the kernel-style address KERNEL to 0x1000 (4 KiB) and KERNEL + 4 KiB to
// 0x5000, the next page being absent.
constexpr uint64_t KERNEL = 0xFFFF'FFFF'8100'0000ull;

struct DebugHarness : SessionHarness {
    FakeBackend backend;
    std::filesystem::path dir;

    explicit DebugHarness()
    {
        backend.slots = { present_slot(0, 100), present_slot(1, 101), CpuSlot {}, present_slot(3, 103) };
        backend.slots[2].index = 2; // absent
        backend.ram.resize(8 << 20);
        for (size_t i = 0; i < 0x1000; ++i)
            backend.ram[0x1000 + i] = uint8_t(i);
        std::memcpy(backend.ram.data() + 0x5000, "second page", 11);
        // PML4 0x10000 -> PDPT 0x11000 -> PD 0x12000 -> PT 0x13000
        put64(0x10000 + 511 * 8, 0x11000 | P | RW);
        put64(0x11000 + 510 * 8, 0x12000 | P | RW);
        put64(0x12000 + ((KERNEL >> 21) & 0x1FF) * 8, 0x13000 | P | RW);
        put64(0x13000 + ((KERNEL >> 12) & 0x1FF) * 8, 0x1000 | P);
        put64(0x13000 + (((KERNEL >> 12) + 1) & 0x1FF) * 8, 0x5000 | P);
        // A 2 MiB identity page for the first 2 MiB, through PML4 entry 0.
        put64(0x10000, 0x14000 | P | RW);
        put64(0x14000, 0x15000 | P | RW);
        put64(0x15000, 0 | PS | P | RW);
        CpuRegisters regs;
        regs.cr0 = 0x8000'0011;
        regs.cr3 = 0x10000;
        regs.cr4 = 0x20;
        regs.efer = 0x500;
        regs.rip = KERNEL;
        regs.cs.l = true;
        backend.registers[0] = regs;
        backend.registers[1] = regs;
        backend.registers[1].cr3 = 0x7F'F000; // CPU 1's tables map nothing
        add_debug_commands(table, backend);
        negotiate();
        char pattern[] = "/tmp/cpuplug-debug-XXXXXX";
        REQUIRE(mkdtemp(pattern));
        dir = pattern;
    }
    ~DebugHarness() { std::filesystem::remove_all(dir); }

    void put64(uint64_t address, uint64_t value) { std::memcpy(backend.ram.data() + address, &value, 8); }

    Json run(std::string const& command, Json arguments)
    {
        return Json::parse(exchange(Json { { "execute", command }, { "arguments", arguments } }.dump()));
    }

    // HMP's output for `line`.
    std::string hmp(std::string const& line, std::optional<int64_t> cpu_index = std::nullopt)
    {
        Json arguments { { "command-line", line } };
        if (cpu_index)
            arguments["cpu-index"] = *cpu_index;
        auto reply = run("human-monitor-command", arguments);
        INFO(reply.dump());
        REQUIRE(reply.contains("return"));
        return reply["return"].get<std::string>();
    }

    std::string file(std::string const& name) const { return (dir / name).string(); }
    std::string read(std::string const& name) const
    {
        std::ifstream in(dir / name, std::ios::binary);
        return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
    }
};

Json error(std::string const& desc) { return Json { { "error", { { "class", "GenericError" }, { "desc", desc } } } }; }
Json ok() { return Json { { "return", Json::object() } }; }

} // namespace

TEST_CASE("human-monitor-command: unknown commands are HMP's text, not a QMP error", "[hmp]")
{
    DebugHarness h;
    CHECK(h.hmp("foo") == "unknown command: 'foo'\r\n");
    CHECK(h.hmp("  foo bar") == "unknown command: '  foo'\r\n");
    CHECK(h.hmp("info foo") == "unknown command: 'info foo'\r\n");
    CHECK(h.hmp("stop/x") == "unknown command: 'stop'\r\n");
    CHECK(h.hmp("") == "");
    CHECK(h.hmp("   ") == "");
    CHECK(h.backend.register_reads.empty());
}

TEST_CASE("human-monitor-command: info cpus marks the current CPU as QEMU does", "[hmp]")
{
    DebugHarness h;
    CHECK(h.hmp("info cpus") == "* CPU #0: thread_id=100\r\n  CPU #1: thread_id=101\r\n  CPU #3: thread_id=103\r\n");
    CHECK(h.hmp("info cpus", 3) == "  CPU #0: thread_id=100\r\n  CPU #1: thread_id=101\r\n* CPU #3: thread_id=103\r\n");
    // A cpu-index that names no present CPU is QEMU's QMP error.
    for (int64_t bad : { int64_t(2), int64_t(4), int64_t(-1), int64_t(1) << 40 }) {
        INFO(bad);
        CHECK(h.run("human-monitor-command", { { "command-line", "info cpus" }, { "cpu-index", bad } })
            == error("Parameter 'cpu-index' expects a CPU number"));
    }
    CHECK(h.run("human-monitor-command", { { "command-line", 1 } })
        == error("Invalid parameter type for 'command-line', expected: string"));
}

TEST_CASE("human-monitor-command: info registers reads the current CPU, one CPU, or all", "[hmp]")
{
    DebugHarness h;
    auto one = h.hmp("info registers");
    CHECK(one.starts_with("\r\nCPU#0\r\nRAX=0000000000000000 RBX="));
    CHECK(one.find("RIP=ffffffff81000000 RFL=00000002 [-------] CPL=0") != std::string::npos);
    CHECK(one.find("CR0=80000011 CR2=0000000000000000 CR3=0000000000010000 CR4=00000020\r\n") != std::string::npos);
    CHECK(one.find("EFER=0000000000000500\r\n") != std::string::npos);
    CHECK(one.find('\n') == one.find("\r\n") + 1); // CRLF throughout
    CHECK(h.backend.register_reads == std::vector<std::vector<uint32_t>> { { 0 } });

    h.backend.register_reads.clear();
    auto all = h.hmp("info registers -a");
    CHECK(h.backend.register_reads == std::vector<std::vector<uint32_t>> { { 0, 1, 3 } });
    auto cpu0 = all.find("\r\nCPU#0\r\n"), cpu1 = all.find("\r\nCPU#1\r\n"), cpu3 = all.find("\r\nCPU#3\r\n");
    CHECK(cpu0 == 0);
    CHECK(cpu1 != std::string::npos);
    CHECK(cpu3 != std::string::npos);
    CHECK((cpu0 < cpu1 && cpu1 < cpu3));
    CHECK(all.find("CPU#2") == std::string::npos);

    h.backend.register_reads.clear();
    CHECK(h.hmp("info registers 3").starts_with("\r\nCPU#3\r\n"));
    CHECK(h.hmp("info registers", 1).starts_with("\r\nCPU#1\r\n"));
    CHECK(h.backend.register_reads == std::vector<std::vector<uint32_t>> { { 3 }, { 1 } });
    CHECK(h.hmp("info registers 2") == "CPU#2 not available\r\n");
    CHECK(h.hmp("info registers 9") == "CPU#9 not available\r\n");
    CHECK(h.hmp("info registers -b") == "registers: unsupported option -b\r\nTry \"help info registers\" for more information\r\n");
    CHECK(h.hmp("info registers 0x100000000")
        == "'registers' has failed: integer is for 32-bit values\r\nTry \"help info registers\" for more information\r\n");
    CHECK(h.hmp("info registers 1 2")
        == "registers: extraneous characters at the end of line\r\nTry \"help info registers\" for more information\r\n");
    CHECK(h.backend.register_reads.size() == 2);
}

TEST_CASE("human-monitor-command: a register read that fails is the command's error", "[hmp]")
{
    DebugHarness h;
    h.backend.registers_failure = generic_error("vCPU 1 did not stop within 1000 ms");
    CHECK(h.run("human-monitor-command", { { "command-line", "info registers -a" } })
        == error("vCPU 1 did not stop within 1000 ms"));
    // Commands that need no registers still work.
    CHECK(h.hmp("xp /1xb 0x1001") == "0000000000001001: 0x01\r\n");
}

TEST_CASE("human-monitor-command: info status follows the run state", "[hmp]")
{
    DebugHarness h;
    CHECK(h.hmp("info status") == "VM status: running\r\n");
    h.backend.state = RunState::Paused;
    CHECK(h.hmp("info status") == "VM status: paused\r\n");
    h.backend.state = RunState::Prelaunch;
    CHECK(h.hmp("info status") == "VM status: paused (prelaunch)\r\n");
}

TEST_CASE("human-monitor-command: xp dumps guest-physical memory without reading registers", "[hmp]")
{
    DebugHarness h;
    CHECK(h.hmp("xp /4x 0x1000") == "0000000000001000: 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c\r\n");
    CHECK(h.hmp("xp/2g 0x1000") == "0000000000001000: 0x0706050403020100 0x0f0e0d0c0b0a0908\r\n");
    CHECK(h.hmp("xp 0x1000") == "0000000000001000: 0x03020100\r\n"); // QEMU's default: one word in hex
    CHECK(h.hmp("xp /3xh 0x1000 + 2*2") == "0000000000001004: 0x0504 0x0706 0x0908\r\n");
    CHECK(h.hmp("xp /11c 0x5000") == "0000000000005000: 's' 'e' 'c' 'o' 'n' 'd' ' ' 'p'\r\n"
                                     "0000000000005008: 'a' 'g' 'e'\r\n");
    CHECK(h.hmp("xp /4x 0x7ffff8") == "00000000007ffff8: Cannot access memory\r\n");
    CHECK(h.hmp("xp /1x 0xfee00000") == "00000000fee00000: Cannot access memory\r\n");
    CHECK(h.hmp("xp /2x 0xfffffffffffffffc") == "fffffffffffffffc: Cannot access memory\r\n");
    CHECK(h.backend.register_reads.empty());
}

TEST_CASE("human-monitor-command: x reads through the current CPU's page tables", "[hmp]")
{
    DebugHarness h;
    CHECK(h.hmp("x /2g 0xffffffff81000000") == "ffffffff81000000: 0x0706050403020100 0x0f0e0d0c0b0a0908\r\n");
    // Across the 4 KiB boundary into the page mapped elsewhere.
    CHECK(h.hmp("x /4xw 0xffffffff81000ff8") == "ffffffff81000ff8: 0xfbfaf9f8 0xfffefdfc 0x6f636573 0x7020646e\r\n");
    CHECK(h.hmp("x /1g 0xffffffff81002000") == "ffffffff81002000: Cannot access memory\r\n"); // not present
    CHECK(h.hmp("x /1xb 0x1001") == "0000000000001001: 0x01\r\n"); // the 2 MiB identity page
    CHECK(h.hmp("x /1g 0x0000800000000000") == "0000800000000000: Cannot access memory\r\n"); // not canonical
    CHECK(h.hmp("x /1xb 0x1001", 1) == "0000000000001001: Cannot access memory\r\n"); // CPU 1 maps nothing
    CHECK(h.backend.register_reads == std::vector<std::vector<uint32_t>> { { 0 }, { 0 }, { 0 }, { 0 }, { 0 }, { 1 } });
    // $registers are the current CPU's: $rip is KERNEL, $cr3 the PML4.
    CHECK(h.hmp("x /1xb $rip + 3") == "ffffffff81000003: 0x03\r\n");
    CHECK(h.hmp("xp /1g $cr3 + 511 * 8") == "0000000000010ff8: 0x0000000000011003\r\n");
}

TEST_CASE("human-monitor-command: syntax errors print QEMU's lines and the help hint", "[hmp]")
{
    DebugHarness h;
    CHECK(h.hmp("xp") == "unexpected end of expression\r\nTry \"help xp\" for more information\r\n");
    CHECK(h.hmp("xp /4q 0") == "invalid char in format: 'q'\r\nTry \"help xp\" for more information\r\n");
    CHECK(h.hmp("xp 1/0") == "division by zero\r\nTry \"help xp\" for more information\r\n");
    CHECK(h.hmp("xp 0x10 junk") == "xp: extraneous characters at the end of line\r\nTry \"help xp\" for more information\r\n");
    CHECK(h.hmp("x $nosuch") == "unknown register\r\nTry \"help x\" for more information\r\n");
    CHECK(h.hmp("  x   (1") == "')' expected\r\nTry \"help   x\" for more information\r\n");
    CHECK(h.hmp("cpu") == "unexpected end of expression\r\nTry \"help cpu\" for more information\r\n");
    CHECK(h.hmp("xp /i 0") == "xp: the 'i' format (disassembly) is not supported\r\n");
    CHECK(h.hmp("x /100000g 0") == "x: at most 65536 bytes at a time\r\n");
    CHECK(h.hmp("xp /99999999999999999999x 0") == "xp: at most 65536 bytes at a time\r\n");
    CHECK(h.backend.register_reads.empty());
}

TEST_CASE("human-monitor-command: cpu checks its index and lasts for its own line only", "[hmp]")
{
    DebugHarness h;
    CHECK(h.hmp("cpu 1") == "");
    CHECK(h.hmp("cpu 2") == "invalid CPU index\r\n");
    CHECK(h.hmp("cpu -1") == "'cpu' has failed: integer is for 32-bit values\r\nTry \"help cpu\" for more information\r\n");
    // As in QEMU, each human-monitor-command has a monitor of its own: CPU 0 is current again.
    CHECK(h.hmp("info cpus").starts_with("* CPU #0"));
}

TEST_CASE("human-monitor-command: help lists the commands, info alone lists its subcommands", "[hmp]")
{
    DebugHarness h;
    auto all = h.hmp("help");
    CHECK(all.find("info [subcommand] -- show various information about the system state\r\n") != std::string::npos);
    CHECK(all.find("x /fmt addr -- virtual memory dump starting at 'addr'\r\n") != std::string::npos);
    CHECK(all.find("xp /fmt addr -- physical memory dump starting at 'addr'\r\n") != std::string::npos);
    CHECK(all.find("help|? [cmd] -- show the help\r\n") != std::string::npos);
    auto info = h.hmp("info");
    CHECK(info == h.hmp("help info"));
    CHECK(info.find("info cpus  -- show infos for each CPU\r\n") != std::string::npos);
    CHECK(info.find("info registers [-a|vcpu] -- show the cpu registers") != std::string::npos);
    CHECK(h.hmp("? x") == "x /fmt addr -- virtual memory dump starting at 'addr'\r\n");
    CHECK(h.hmp("help foo") == "unknown command: 'foo'\r\n");
    CHECK(h.hmp("help info foo") == "unknown command: 'info foo'\r\n");
}

TEST_CASE("pmemsave writes guest-physical memory to the file", "[hmp]")
{
    DebugHarness h;
    CHECK(h.run("pmemsave", { { "val", 0x1010 }, { "size", 32 }, { "filename", h.file("a") } }) == ok());
    auto bytes = h.read("a");
    REQUIRE(bytes.size() == 32);
    for (size_t i = 0; i < bytes.size(); ++i)
        CHECK(uint8_t(bytes[i]) == uint8_t(0x10 + i));
    // The whole of RAM, and nothing: an empty file.
    CHECK(h.run("pmemsave", { { "val", 0 }, { "size", 8 << 20 }, { "filename", h.file("all") } }) == ok());
    CHECK(h.read("all") == std::string(h.backend.ram.begin(), h.backend.ram.end()));
    CHECK(h.run("pmemsave", { { "val", 0x1000 }, { "size", 0 }, { "filename", h.file("empty") } }) == ok());
    CHECK(std::filesystem::exists(h.dir / "empty"));
    CHECK(std::filesystem::file_size(h.dir / "empty") == 0);
    CHECK((std::filesystem::status(h.dir / "a").permissions() & std::filesystem::perms::all)
        == (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
}

TEST_CASE("pmemsave refuses ranges that are not all RAM before it creates the file", "[hmp]")
{
    DebugHarness h;
    CHECK(h.run("pmemsave", { { "val", 0x7ffff0 }, { "size", 0x20 }, { "filename", h.file("b") } })
        == error("Invalid addr 0x00000000007ffff0/size 32 specified: no guest RAM at 0x800000"));
    CHECK(h.run("pmemsave", { { "val", 0xfee00000 }, { "size", 4 }, { "filename", h.file("b") } })
        == error("Invalid addr 0x00000000fee00000/size 4 specified: no guest RAM at 0xfee00000"));
    CHECK(h.run("pmemsave", { { "val", -16 }, { "size", 32 }, { "filename", h.file("b") } })
        == error("Invalid addr 0xfffffffffffffff0/size 32 specified: no guest RAM at 0xfffffffffffffff0"));
    CHECK_FALSE(std::filesystem::exists(h.dir / "b"));
    CHECK(h.run("pmemsave", { { "val", 0 }, { "size", -1 }, { "filename", h.file("b") } })
        == error("Parameter 'size' expects a non-negative integer"));
    CHECK(h.run("pmemsave", { { "val", "0" }, { "size", 1 }, { "filename", h.file("b") } })
        == error("Invalid parameter type for 'val', expected: integer"));
    CHECK(h.run("pmemsave", { { "val", 0 }, { "size", 1 } }) == error("Parameter 'filename' is missing"));
    CHECK_FALSE(std::filesystem::exists(h.dir / "b"));
}

TEST_CASE("pmemsave and memsave say why a file cannot be written", "[hmp]")
{
    DebugHarness h;
    auto missing = h.file("no/such/dir");
    CHECK(h.run("pmemsave", { { "val", 0 }, { "size", 1 }, { "filename", missing } })
        == error("Could not open '" + missing + "': No such file or directory"));
    CHECK(h.run("memsave", { { "val", 0 }, { "size", 1 }, { "filename", missing } })
        == error("Could not open '" + missing + "': No such file or directory"));
    // A FIFO nobody reads fails at once instead of blocking the VMM.
    auto fifo = h.file("fifo");
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(h.run("pmemsave", { { "val", 0 }, { "size", 1 }, { "filename", fifo } })
        == error("Could not open '" + fifo + "': No such device or address"));
}

TEST_CASE("memsave writes memory at a virtual address through the CPU's page tables", "[hmp]")
{
    DebugHarness h;
    // 16 bytes at the end of the first page and 11 of the second, which maps elsewhere.
    CHECK(h.run("memsave", { { "val", int64_t(KERNEL + 0xff0) }, { "size", 27 }, { "filename", h.file("v") } }) == ok());
    auto bytes = h.read("v");
    REQUIRE(bytes.size() == 27);
    for (size_t i = 0; i < 16; ++i)
        CHECK(uint8_t(bytes[i]) == uint8_t(0xf0 + i));
    CHECK(bytes.substr(16) == "second page");
    CHECK(h.backend.register_reads == std::vector<std::vector<uint32_t>> { { 0 } });
    // The same address as an unsigned JSON number.
    CHECK(h.run("memsave", { { "val", KERNEL + 0xff0 }, { "size", 27 }, { "filename", h.file("u") } }) == ok());
    CHECK(h.read("u") == bytes);
}

TEST_CASE("memsave refuses unmapped ranges, absent CPUs and sizes beyond RAM", "[hmp]")
{
    DebugHarness h;
    CHECK(h.run("memsave", { { "val", int64_t(KERNEL + 0x1ff0) }, { "size", 0x20 }, { "filename", h.file("m") } })
        == error("Invalid addr 0xffffffff81001ff0/size 32 specified: 0xffffffff81002000 is not mapped by CPU 0's page tables"));
    CHECK(h.run("memsave", { { "val", 0x1000 }, { "size", 1 }, { "filename", h.file("m") }, { "cpu-index", 1 } })
        == error("Invalid addr 0x0000000000001000/size 1 specified: 0x1000 is not mapped by CPU 1's page tables"));
    CHECK(h.run("memsave", { { "val", 0x0000800000000000 }, { "size", 1 }, { "filename", h.file("m") } })
        == error("Invalid addr 0x0000800000000000/size 1 specified: 0x800000000000 is not a canonical address in CPU 0's paging mode"));
    CHECK(h.run("memsave", { { "val", 0 }, { "size", 1 }, { "filename", h.file("m") }, { "cpu-index", 2 } })
        == error("Parameter 'cpu-index' expects a CPU number"));
    CHECK(h.run("memsave", { { "val", 0 }, { "size", (8 << 20) + 1 }, { "filename", h.file("m") } })
        == error("Invalid addr 0x0000000000000000/size 8388609 specified: larger than guest RAM (8388608 bytes)"));
    CHECK_FALSE(std::filesystem::exists(h.dir / "m"));
}

TEST_CASE("the debugging commands are in query-commands' list of the machine", "[hmp]")
{
    CommandTable table;
    FakeBackend backend;
    add_debug_commands(table, backend);
    CHECK(table.names() == std::vector<std::string> { "human-monitor-command", "memsave", "pmemsave" });
}
