// Debian's stock Linux kernel on cpuplug: the client nobody here wrote. Each case boots the kernel that
// scripts/linux-guest fetched (the generic flavour, and PREEMPT_RT whose hotplug paths are the harder ones)
// with tests/linux/init as PID 1, which reports over the serial console in "cpuplug-linux: " lines, and
// drives CPUs over QMP as a cloud host would. Linux's own ACPI processor driver and cpuhp core do the work.
#include "qmp_vm/qmp_client.hpp"
#include "support/process.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using namespace qmp_test;

namespace {

constexpr char const* CPU_TYPE = "host-x86_64-cpu";
constexpr char const* SAY = "cpuplug-linux: ";
// Emulated time in the nested VM is slow: Linux at one vCPU reaches init in about 35 s there.
constexpr auto BOOT_TIMEOUT = 480s;
constexpr auto PLUG_TIMEOUT = 120s;

struct Kernel {
    std::string kernel;
    std::string initrd;
};

// The flavour's kernel and initramfs, as scripts/linux-guest prepared them (the linux/prepare fixture).
std::optional<Kernel> find_kernel(std::string const& flavour)
{
    auto result = test_support::run_process(
        { "/bin/sh", "-c", std::string(CPUPLUG_SOURCE_DIR) + "/scripts/linux-guest --print " + flavour }, 30s);
    if (result.exit_code != 0)
        return std::nullopt;
    std::istringstream in(result.out);
    Kernel k;
    in >> k.kernel >> k.initrd;
    if (k.kernel.empty() || k.initrd.empty())
        return std::nullopt;
    return k;
}

// "0-3,5" -> {0, 1, 2, 3, 5}, as /sys/devices/system/cpu/online writes it.
std::set<int> parse_cpu_list(std::string const& text)
{
    std::set<int> cpus;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, ',')) {
        if (part.empty())
            continue;
        auto dash = part.find('-');
        int first = std::stoi(part.substr(0, dash));
        int last = dash == std::string::npos ? first : std::stoi(part.substr(dash + 1));
        for (int cpu = first; cpu <= last; ++cpu)
            cpus.insert(cpu);
    }
    return cpus;
}

std::set<int> range(int first, int last)
{
    std::set<int> cpus;
    for (int cpu = first; cpu <= last; ++cpu)
        cpus.insert(cpu);
    return cpus;
}

struct LinuxVm {
    std::string socket = socket_path();
    std::unique_ptr<test_support::Process> process;
    std::unique_ptr<QmpClient> qmp;
    size_t scanned { 0 }; // how far next_line() has read the console

    LinuxVm(Kernel const& k, std::string const& smp, std::string const& extra_cmdline = "", bool hotplug = true)
    {
        std::vector<std::string> argv { CPUPLUG_VMM_BINARY, "--kernel", k.kernel, "--initrd", k.initrd, "--cpus", smp,
            "--memory", "512M", "--qmp", "unix:" + socket, "--unplug-timeout-ms", "120000", "--cmdline",
            "console=ttyS0 quiet " + extra_cmdline };
        if (hotplug)
            argv.push_back("--hotplug");
        process = std::make_unique<test_support::Process>(argv);
        qmp = QmpClient::connect_unix(socket, 30s);
        REQUIRE(qmp);
        REQUIRE(qmp->negotiate());
    }

    std::string console() const { return process->out(); }

    // The next "cpuplug-linux: " line that starts with `prefix` (after the prefix), in console order from
    // where the last match was found; nullopt after `timeout`.
    std::optional<std::string> next_line(std::string const& prefix, std::chrono::milliseconds timeout)
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string needle = SAY + prefix;
        for (;;) {
            auto const& out = process->out();
            auto at = out.find(needle, scanned);
            if (at != std::string::npos) {
                auto end = out.find('\n', at);
                if (end != std::string::npos) {
                    scanned = end;
                    auto line = out.substr(at + needle.size(), end - at - needle.size());
                    if (!line.empty() && line.back() == '\r')
                        line.pop_back();
                    return line;
                }
            }
            if (std::chrono::steady_clock::now() >= deadline)
                return std::nullopt;
            process->collect_for(100ms);
        }
    }

    // Waits for init's first line and returns the online CPUs it saw.
    std::set<int> booted()
    {
        auto line = next_line("init online=", BOOT_TIMEOUT);
        INFO(console() << process->err());
        REQUIRE(line);
        return parse_cpu_list(line->substr(0, line->find(' ')));
    }

    // Waits until the online set init last reported (its poller prints every change, and its first line the
    // set at start) is `cpus`. The latest report, not the next: the change may have been printed before a
    // line an earlier wait looked for (Linux offlines a CPU before it ejects it).
    bool online_becomes(std::set<int> const& cpus, std::chrono::milliseconds timeout)
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto last = last_online(); last && *last == cpus)
                return true;
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            process->collect_for(100ms);
        }
    }

    // The first `count` "cpuplug-linux: " lines that start with `prefix`, anywhere in the console (after the
    // prefix); fewer after `timeout`.
    std::vector<std::string> lines_with(std::string const& prefix, size_t count, std::chrono::milliseconds timeout)
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string needle = SAY + prefix;
        for (;;) {
            std::vector<std::string> found;
            auto const& out = process->out();
            for (auto at = out.find(needle); at != std::string::npos && found.size() < count; at = out.find(needle, at + 1)) {
                auto end = out.find_first_of("\r\n", at);
                if (end == std::string::npos)
                    break;
                found.push_back(out.substr(at + needle.size(), end - at - needle.size()));
            }
            if (found.size() >= count || std::chrono::steady_clock::now() >= deadline)
                return found;
            process->collect_for(100ms);
        }
    }

    std::optional<std::set<int>> last_online() const
    {
        auto const& out = process->out();
        for (char const* prefix : { "online=", "init online=" }) {
            auto needle = std::string("\n") + SAY + prefix;
            auto at = out.rfind(needle);
            if (at == std::string::npos)
                continue;
            at += needle.size();
            auto end = out.find_first_of(" \r\n", at);
            if (end == std::string::npos)
                return std::nullopt; // the line is still being written
            return parse_cpu_list(out.substr(at, end - at));
        }
        return std::nullopt;
    }

    Json execute(std::string const& name, std::optional<Json> arguments = std::nullopt)
    {
        auto reply = qmp->execute(name, std::move(arguments), std::nullopt, 30s);
        REQUIRE(reply);
        return *reply;
    }

    // device_add of a CPU by its topology, then Linux's ACPI driver makes it present and init onlines it.
    // Returns the logical CPU number Linux gave it: Linux keeps a number for every APIC id it has seen, so
    // a CPU in a new slot can get a higher number than one just removed; it is not the test's to choose.
    int plug(std::string const& id, int socket_id, int core, int thread)
    {
        INFO("plugging " << id);
        REQUIRE(execute("device_add",
                    Json { { "driver", CPU_TYPE }, { "id", id }, { "socket-id", socket_id }, { "core-id", core },
                        { "thread-id", thread } })
            == Json { { "return", Json::object() } });
        auto added = next_line("cpu-added ", PLUG_TIMEOUT);
        INFO(console());
        REQUIRE(added);
        std::smatch m;
        std::regex re("([0-9]+) online=([01])");
        REQUIRE(std::regex_match(*added, m, re));
        CHECK(m[2] == "1");
        return std::stoi(m[1]);
    }

    // device_del: Linux offlines the CPU and ejects it; QMP says DEVICE_DELETED.
    void unplug(std::string const& id, int linux_cpu)
    {
        INFO("unplugging " << id);
        REQUIRE(execute("device_del", Json { { "id", id } }) == Json { { "return", Json::object() } });
        auto deleted = qmp->wait_event_with("DEVICE_DELETED", "device", id, PLUG_TIMEOUT);
        INFO(console() << process->err());
        REQUIRE(deleted);
        REQUIRE(next_line("cpu-removed " + std::to_string(linux_cpu), PLUG_TIMEOUT));
    }

    size_t qmp_cpu_count()
    {
        auto reply = execute("query-cpus-fast");
        return reply["return"].size();
    }

    // Presses the ACPI power button; init powers Linux off after reporting its health.
    int power_down(int& problems)
    {
        REQUIRE(execute("system_powerdown") == Json { { "return", Json::object() } });
        REQUIRE(next_line("powering-off", 60s));
        auto health = next_line("health problems=", 60s);
        INFO(console());
        REQUIRE(health);
        problems = std::stoi(*health);
        auto shutdown = qmp->wait_event("SHUTDOWN", 120s);
        REQUIRE(shutdown);
        CHECK((*shutdown)["data"]["guest"] == true);
        auto result = process->wait(60s);
        return result.exit_code;
    }
};

#define REQUIRE_KERNEL(flavour, var)                                                                                 \
    auto var##_found = find_kernel(flavour);                                                                        \
    if (!var##_found) {                                                                                             \
        if (std::getenv("CPUPLUG_REQUIRE_KVM"))                                                                     \
            FAIL("Debian's " flavour " kernel is not prepared: run scripts/linux-guest --prepare");                 \
        CPUPLUG_SKIP("Debian's " flavour " kernel is not prepared (scripts/linux-guest --prepare fetches it)");     \
    }                                                                                                               \
    Kernel const& var = *var##_found

void boots_with_all_cpus_online(char const* flavour, int cpus)
{
    auto k = find_kernel(flavour);
    REQUIRE(k);
    LinuxVm vm(*k, std::to_string(cpus), "", false);
    CHECK(vm.booted() == range(0, cpus - 1));
    CHECK(vm.qmp_cpu_count() == static_cast<size_t>(cpus));
    int problems = -1;
    CHECK(vm.power_down(problems) == 0);
    INFO(vm.console());
    CHECK(problems == 0);
}

} // namespace

// Both flavours, each case its own test so a failure names its kernel. Where this host has no hardware
// KVM they run inside the nested VM (tests/linux/launch), where each takes about a minute of wall time.
#define LINUX_CASE(name, flavour, body, tags)                                                                        \
    TEST_CASE(name " (" flavour ")", "[linux][" flavour "]" tags)                                                    \
    {                                                                                                               \
        REQUIRE_KERNEL(flavour, kernel);                                                                            \
        (void)kernel;                                                                                               \
        body(flavour);                                                                                              \
    }

namespace {

void boot_1(char const* flavour) { boots_with_all_cpus_online(flavour, 1); }
void boot_4(char const* flavour) { boots_with_all_cpus_online(flavour, 4); }
void boot_16(char const* flavour) { boots_with_all_cpus_online(flavour, 16); }

// One CPU, then a whole socket (2 cores), added and removed; Linux's view and QMP's agree throughout.
void hotplug_cpu_and_socket(char const* flavour)
{
    LinuxVm vm(*find_kernel(flavour), "2,maxcpus=8,sockets=4,cores=2,threads=1");
    REQUIRE(vm.booted() == range(0, 1));
    int cpu = vm.plug("cpu2", 1, 0, 0);
    CHECK(vm.online_becomes({ 0, 1, cpu }, PLUG_TIMEOUT));
    CHECK(vm.qmp_cpu_count() == 3);
    vm.unplug("cpu2", cpu);
    CHECK(vm.online_becomes(range(0, 1), PLUG_TIMEOUT));
    CHECK(vm.qmp_cpu_count() == 2);

    // A socket: both of its cores, then away again.
    int first = vm.plug("s2c0", 2, 0, 0);
    int second = vm.plug("s2c1", 2, 1, 0);
    CHECK(first != second);
    CHECK(vm.online_becomes({ 0, 1, first, second }, PLUG_TIMEOUT));
    CHECK(vm.qmp_cpu_count() == 4);
    vm.unplug("s2c1", second);
    vm.unplug("s2c0", first);
    CHECK(vm.online_becomes(range(0, 1), PLUG_TIMEOUT));
    CHECK(vm.qmp_cpu_count() == 2);

    int problems = -1;
    CHECK(vm.power_down(problems) == 0);
    INFO(vm.console());
    CHECK(problems == 0);
}

// Linux refuses ejects (init wrote 0 to /sys/firmware/acpi/hotplug/processor/enabled): the CPU stays,
// and QMP says DEVICE_UNPLUG_GUEST_ERROR.
void refused_unplug(char const* flavour)
{
    // -smp 2,maxcpus=4 is one socket of four cores (QEMU's default since 6.2 prefers cores): slots 2 and 3.
    LinuxVm vm(*find_kernel(flavour), "2,maxcpus=4", "cpuplug.noeject=1");
    REQUIRE(vm.booted() == range(0, 1));
    vm.plug("cpu2", 0, 2, 0);
    REQUIRE(vm.execute("device_del", Json { { "id", "cpu2" } }) == Json { { "return", Json::object() } });
    auto refused = vm.qmp->wait_event_with("DEVICE_UNPLUG_GUEST_ERROR", "device", "cpu2", PLUG_TIMEOUT);
    INFO(vm.console() << vm.process->err());
    CHECK(refused);
    CHECK(vm.qmp_cpu_count() == 3);
    int problems = -1;
    CHECK(vm.power_down(problems) == 0);
}

// device_del sent right after device_add returned, before Linux has handled the Device Check: Linux's
// ACPI hotplug work takes the notifications in order, adding the CPU, then offlining and ejecting it.
void del_during_plug(char const* flavour)
{
    LinuxVm vm(*find_kernel(flavour), "2,maxcpus=4");
    REQUIRE(vm.booted() == range(0, 1));
    REQUIRE(vm.execute("device_add", Json { { "driver", CPU_TYPE }, { "id", "cpu2" }, { "socket-id", 0 },
                                         { "core-id", 2 }, { "thread-id", 0 } })
        == Json { { "return", Json::object() } });
    REQUIRE(vm.execute("device_del", Json { { "id", "cpu2" } }) == Json { { "return", Json::object() } });
    auto deleted = vm.qmp->wait_event_with("DEVICE_DELETED", "device", "cpu2", PLUG_TIMEOUT);
    INFO(vm.console() << vm.process->err());
    REQUIRE(deleted);
    CHECK(vm.qmp_cpu_count() == 2);
    // Linux registered the CPU (init onlines it on the add uevent; it may be gone again before the online
    // poll sees it), then took it away.
    auto added = vm.next_line("cpu-added ", PLUG_TIMEOUT);
    auto removed = vm.next_line("cpu-removed ", PLUG_TIMEOUT);
    INFO(vm.console());
    REQUIRE(added);
    REQUIRE(removed);
    CHECK(added->substr(0, added->find(' ')) == *removed);
    // The slot takes a CPU again.
    int cpu = vm.plug("cpu2", 0, 2, 0);
    CHECK(vm.online_becomes({ 0, 1, cpu }, PLUG_TIMEOUT));
    vm.unplug("cpu2", cpu);
    int problems = -1;
    CHECK(vm.power_down(problems) == 0);
    CHECK(problems == 0);
}

// 50 add/remove cycles while one CPU-bound worker per possible CPU runs: Linux stays healthy, its CPU
// count matches QMP's, and every worker finishes all of its work.
void cycles_under_load(char const* flavour)
{
    constexpr int CYCLES = 50;
    constexpr int MAX_CPUS = 4;
    // Enough work to outlast many cycles: one chunk (three processes) takes about 0.1 s in the nested VM.
    constexpr int CHUNKS = 800;
    LinuxVm vm(*find_kernel(flavour), "2,maxcpus=4", "cpuplug.work=" + std::to_string(CHUNKS));
    REQUIRE(vm.booted() == range(0, 1));
    for (int cycle = 0; cycle < CYCLES; ++cycle) {
        INFO("cycle " << cycle);
        int cpu = vm.plug("hp", 0, 2 + cycle % 2, 0);
        vm.unplug("hp", cpu);
    }
    CHECK(vm.online_becomes(range(0, 1), PLUG_TIMEOUT));
    CHECK(vm.qmp_cpu_count() == 2);
    // Workers report whenever they finish, possibly in the middle of the cycles: look from the start.
    auto reports = vm.lines_with("work ", MAX_CPUS, 600s);
    INFO(vm.console());
    REQUIRE(reports.size() == static_cast<size_t>(MAX_CPUS));
    std::set<int> done;
    for (auto const& line : reports) {
        std::smatch m;
        std::regex re("([0-9]+) done chunks=([0-9]+) sum=([0-9a-f]+)");
        REQUIRE(std::regex_match(line, m, re));
        CHECK(m[2] == std::to_string(CHUNKS));
        CHECK(m[3] == "de2f256064a0af79"); // sha256 of 64 KiB of zeros, first 16 digits
        done.insert(std::stoi(m[1]));
    }
    CHECK(done == range(0, MAX_CPUS - 1));
    int problems = -1;
    CHECK(vm.power_down(problems) == 0);
    INFO(vm.console());
    CHECK(problems == 0);
}

// system_reset boots Linux again from the start: the kernel, initrd and entry state as at power-on.
void reset_and_reboot(char const* flavour)
{
    LinuxVm vm(*find_kernel(flavour), "1", "", false);
    REQUIRE(vm.booted() == range(0, 0));
    REQUIRE(vm.execute("system_reset") == Json { { "return", Json::object() } });
    auto reset = vm.qmp->wait_event("RESET", 30s);
    REQUIRE(reset);
    CHECK((*reset)["data"]["guest"] == false);
    CHECK(vm.booted() == range(0, 0));
    int problems = -1;
    CHECK(vm.power_down(problems) == 0);
}

} // namespace

LINUX_CASE("Debian's kernel boots with 1 vCPU to init", "generic", boot_1, "")
LINUX_CASE("Debian's kernel boots with 4 vCPUs, all online at init", "generic", boot_4, "[smp]")
LINUX_CASE("Debian's kernel boots with 16 vCPUs, all online at init", "generic", boot_16, "[smp]")
LINUX_CASE("Linux hot-adds and hot-removes a CPU and a socket over QMP", "generic", hotplug_cpu_and_socket, "[smp]")
LINUX_CASE("Linux refusing an eject gives DEVICE_UNPLUG_GUEST_ERROR and keeps the CPU", "generic", refused_unplug, "[smp]")
LINUX_CASE("device_del right after device_add: Linux adds the CPU, then ejects it", "generic", del_during_plug, "[smp]")
LINUX_CASE("50 add and remove cycles under a CPU-bound load lose no work", "generic", cycles_under_load, "[smp]")
LINUX_CASE("system_reset boots Linux again", "generic", reset_and_reboot, "")

LINUX_CASE("Debian's kernel boots with 1 vCPU to init", "rt", boot_1, "")
LINUX_CASE("Debian's kernel boots with 4 vCPUs, all online at init", "rt", boot_4, "[smp]")
LINUX_CASE("Debian's kernel boots with 16 vCPUs, all online at init", "rt", boot_16, "[smp]")
LINUX_CASE("Linux hot-adds and hot-removes a CPU and a socket over QMP", "rt", hotplug_cpu_and_socket, "[smp]")
LINUX_CASE("Linux refusing an eject gives DEVICE_UNPLUG_GUEST_ERROR and keeps the CPU", "rt", refused_unplug, "[smp]")
LINUX_CASE("device_del right after device_add: Linux adds the CPU, then ejects it", "rt", del_during_plug, "[smp]")
LINUX_CASE("50 add and remove cycles under a CPU-bound load lose no work", "rt", cycles_under_load, "[smp]")
LINUX_CASE("system_reset boots Linux again", "rt", reset_and_reboot, "")
