// The debugging commands against booted guests: registers of running, stopped and never-run vCPUs, the
// guest's memory read physically and through its page tables, and the VM running on (or staying stopped)
// afterwards.
#include "qmp_client.hpp"
#include "running_vm.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>

using namespace std::chrono_literals;
using namespace qmp_test;

namespace {

// Where the embedded guest's kernel lies (guest/linker.ld loads it at 1 MiB; it is far smaller than 16 MiB).
constexpr uint64_t KERNEL_START = 0x100000;
constexpr uint64_t KERNEL_END = 0x1000000;
// The ACPI RSDP, which the VMM writes at a fixed address (vmm/arch/x86_64/layout.hpp).
constexpr uint64_t RSDP = 0xE0000;

std::string hmp(QmpClient& c, std::string const& line, std::optional<int> cpu_index = std::nullopt)
{
    Json arguments { { "command-line", line } };
    if (cpu_index)
        arguments["cpu-index"] = *cpu_index;
    auto reply = c.execute("human-monitor-command", arguments, std::nullopt, 30s);
    REQUIRE(reply);
    INFO(reply->dump());
    REQUIRE(reply->contains("return"));
    return (*reply)["return"].get<std::string>();
}

// `info registers -a` split by CPU: index -> that CPU's block.
std::map<int, std::string> blocks_by_cpu(std::string const& dump)
{
    std::map<int, std::string> blocks;
    std::regex header("\r\nCPU#([0-9]+)\r\n");
    auto begin = std::sregex_iterator(dump.begin(), dump.end(), header);
    std::vector<std::pair<int, size_t>> starts;
    for (auto it = begin; it != std::sregex_iterator(); ++it)
        starts.emplace_back(std::stoi((*it)[1]), size_t(it->position() + it->length()));
    for (size_t i = 0; i < starts.size(); ++i) {
        size_t end = i + 1 < starts.size() ? dump.rfind("\r\nCPU#", starts[i + 1].second - 1) : dump.size();
        blocks[starts[i].first] = dump.substr(starts[i].second, end - starts[i].second);
    }
    return blocks;
}

// The instruction pointer in a register block: RIP in 64-bit code, EIP otherwise.
std::optional<uint64_t> instruction_pointer(std::string const& block)
{
    std::smatch match;
    if (!std::regex_search(block, match, std::regex("(?:RIP|EIP)=([0-9a-f]+) ")))
        return std::nullopt;
    return std::stoull(match[1], nullptr, 16);
}

struct TempDir {
    std::filesystem::path path;
    TempDir()
    {
        char pattern[] = "/tmp/cpuplug-hmp-XXXXXX";
        REQUIRE(mkdtemp(pattern));
        path = pattern;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(std::string const& name) const { return (path / name).string(); }
    std::string read(std::string const& name) const
    {
        std::ifstream in(path / name, std::ios::binary);
        return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
    }
};

} // namespace

TEST_CASE("info registers -a shows every running vCPU in the kernel and the VM runs on", "[qmp][hmp]")
{
    RunningVm vm({ "--cpus", "4" }, 4);
    auto c = vm.client();
    auto dump = hmp(*c, "info registers -a");
    INFO(dump);
    auto blocks = blocks_by_cpu(dump);
    REQUIRE(blocks.size() == 4);
    for (int cpu = 0; cpu < 4; ++cpu) {
        INFO("CPU " << cpu);
        REQUIRE(blocks.count(cpu) == 1);
        auto const& block = blocks[cpu];
        auto rip = instruction_pointer(block);
        REQUIRE(rip);
        CHECK(*rip >= KERNEL_START);
        CHECK(*rip < KERNEL_END);
        // Booted: long mode with paging, a 64-bit code segment, tables and the rest all there.
        CHECK(block.starts_with("RAX="));
        CHECK(block.find(" CS64 ") != std::string::npos);
        for (char const* part : { "RSP=", "RFL=", "R15=", "ES =", "SS =", "DS =", "FS =", "GS =", "TR =", "GDT=",
                 "IDT=", "CR0=", "CR2=", "CR3=", "CR4=", "EFER=" })
            CHECK(block.find(part) != std::string::npos);
        std::smatch efer;
        REQUIRE(std::regex_search(block, efer, std::regex("EFER=([0-9a-f]{16})")));
        CHECK((std::stoull(efer[1], nullptr, 16) & 0x400) != 0); // LMA
    }
    CHECK(hmp(*c, "info registers").starts_with("\r\nCPU#0\r\nRAX="));
    CHECK(hmp(*c, "info registers", 2).starts_with("\r\nCPU#2\r\nRAX="));

    // info cpus: QEMU's lines, with the threads query-cpus-fast names.
    auto cpus = c->execute("query-cpus-fast");
    REQUIRE(cpus);
    std::string expected;
    for (auto const& cpu : (*cpus)["return"])
        expected += std::string(cpu["cpu-index"] == 0 ? "*" : " ") + " CPU #" + std::to_string(cpu["cpu-index"].get<int>())
            + ": thread_id=" + std::to_string(cpu["thread-id"].get<int64_t>()) + "\r\n";
    CHECK(hmp(*c, "info cpus") == expected);
    CHECK(hmp(*c, "info status") == "VM status: running\r\n");
    CHECK(hmp(*c, "no-such-command") == "unknown command: 'no-such-command'\r\n");

    // Every vCPU was resumed: the guest still serves the power button and powers off.
    CHECK(c->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });
    CHECK(c->execute("system_powerdown") == ok());
    CHECK(c->wait_event("SHUTDOWN", 30s));
    CHECK(vm.process->wait(10s).exit_code == 0);
}

TEST_CASE("pmemsave writes the RSDP's bytes, and xp, x and memsave read the same", "[qmp][hmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto c = vm.client();
    TempDir dir;
    CHECK(c->execute("pmemsave", Json { { "val", RSDP }, { "size", 20 }, { "filename", dir.file("rsdp") } }) == ok());
    auto bytes = dir.read("rsdp");
    REQUIRE(bytes.size() == 20);
    CHECK(bytes.substr(0, 8) == "RSD PTR ");
    CHECK(bytes.substr(9, 6) == "CPUPLG"); // the OEM id (acpi/tables.hpp)
    CHECK(hmp(*c, "xp /8c 0xe0000") == "00000000000e0000: 'R' 'S' 'D' ' ' 'P' 'T' 'R' ' '\r\n");
    // The guest identity-maps its low memory: the same bytes at the same virtual address.
    CHECK(hmp(*c, "x /8c 0xe0000") == "00000000000e0000: 'R' 'S' 'D' ' ' 'P' 'T' 'R' ' '\r\n");
    CHECK(c->execute("memsave", Json { { "val", RSDP }, { "size", 20 }, { "filename", dir.file("v") }, { "cpu-index", 1 } })
        == ok());
    CHECK(dir.read("v") == bytes);

    // Bad requests are errors; the connection and the VM live on.
    CHECK(c->execute("pmemsave", Json { { "val", 0xFEE00000 }, { "size", 16 }, { "filename", dir.file("x") } })
        == error("GenericError", "Invalid addr 0x00000000fee00000/size 16 specified: no guest RAM at 0xfee00000"));
    CHECK(c->execute("pmemsave", Json { { "val", RSDP }, { "size", 8 }, { "filename", dir.file("no/dir") } })
        == error("GenericError", "Could not open '" + dir.file("no/dir") + "': No such file or directory"));
    CHECK(c->execute("memsave", Json { { "val", 0 }, { "size", 8 }, { "filename", dir.file("x") }, { "cpu-index", 9 } })
        == error("GenericError", "Parameter 'cpu-index' expects a CPU number"));
    CHECK(c->execute("human-monitor-command", Json { { "command-line", "info cpus" }, { "cpu-index", 5 } })
        == error("GenericError", "Parameter 'cpu-index' expects a CPU number"));
    CHECK(hmp(*c, "xp /4x 0xfee00000") == "00000000fee00000: Cannot access memory\r\n");
    CHECK(hmp(*c, "x /4x 0x0000800000000000") == "0000800000000000: Cannot access memory\r\n");
    CHECK(c->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });
    CHECK(vm.process->count_in_out("smp: 2 of ") == 1);
}

TEST_CASE("a stopped VM stays stopped, and a vCPU plugged while stopped shows its power-on state", "[qmp][hmp]")
{
    RunningVm vm({ "--cpus", "2,sockets=2,cores=2,maxcpus=4", "--hotplug" }, 2);
    auto c = vm.client();
    REQUIRE(c->execute("stop") == ok());
    REQUIRE(c->wait_event("STOP"));
    auto first = hmp(*c, "info registers -a");
    CHECK(hmp(*c, "info registers -a") == first); // nothing runs: the same registers twice
    CHECK(blocks_by_cpu(first).size() == 2);
    CHECK(hmp(*c, "info status") == "VM status: paused\r\n");

    // Plugged while stopped, CPU 2's vCPU exists but has never run: the reset vector, in real mode.
    REQUIRE(c->execute("device_add", Json { { "driver", "host-x86_64-cpu" }, { "id", "cpu2" }, { "socket-id", 1 },
                          { "core-id", 0 }, { "thread-id", 0 } })
        == ok());
    auto blocks = blocks_by_cpu(hmp(*c, "info registers -a"));
    REQUIRE(blocks.size() == 3);
    INFO(blocks[2]);
    CHECK(blocks[2].find("EIP=0000fff0 ") != std::string::npos);
    CHECK(blocks[2].find("CS =f000 ffff0000 0000ffff") != std::string::npos);
    CHECK(blocks[0] == blocks_by_cpu(first)[0]);

    // Still stopped: no vCPU was resumed by the reads.
    CHECK(c->execute("query-status") == Json { { "return", { { "running", false }, { "status", "paused" } } } });
    CHECK_FALSE(c->wait_event("CPU_ONLINE", 500ms));

    // Once the VM runs, the guest brings CPU 2 up and it runs the kernel.
    REQUIRE(c->execute("cont") == ok());
    REQUIRE(c->wait_event_with("CPU_ONLINE", "cpu-index", 2, 60s));
    auto online = blocks_by_cpu(hmp(*c, "info registers 2"));
    REQUIRE(online.count(2) == 1);
    auto rip = instruction_pointer(online[2]);
    REQUIRE(rip);
    CHECK(*rip >= KERNEL_START);
    CHECK(*rip < KERNEL_END);
}
