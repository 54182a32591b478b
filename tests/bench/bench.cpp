// cpuplug_bench: boots the same guest ELF under cpuplug and under QEMU with KVM and measures the time
// from launching the VMM to the guest's "all CPUs online" line, serial and parallel bring-up, at INIT
// delays of 0 and 10 ms; then hot-add and hot-remove latency of one vCPU and of one socket over QMP on
// both; and each VMM's peak RSS. Progress on stderr, the table on stdout, CSV and gnuplot data in --out.
// tests/bench/run wraps it (build, run, plot); docs/benchmark.md explains the figures. With --linux it
// boots Debian's Linux on both instead (linux_bench.cpp).
#include "bench_stats.hpp"
#include "linux_bench.hpp"
#include "qmp_vm/qemu.hpp"
#include "support/process.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <sys/utsname.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using qmp_test::Json;
using qmp_test::QmpClient;
using Clock = std::chrono::steady_clock;

enum class Vmm { Cpuplug, Qemu };
constexpr char const* name_of(Vmm vmm) { return vmm == Vmm::Cpuplug ? "cpuplug" : "qemu"; }

// q35's limit in QEMU 7.2 (Debian 12): more CPUs are refused at start.
constexpr unsigned QEMU_Q35_MAX_CPUS = 288;
// The hot-plug machine: one socket of four CPUs present, and three empty sockets per cycle, each plugged
// once (a vCPU, a socket by device_add, a socket by x-socket-add): QEMU 7.2 cannot plug a slot again
// after unplugging it on this host (kvm_arch_init_vcpu fails with EINVAL on the parked vCPU and QEMU
// exits), so every cycle uses fresh slots on both VMMs. cpuplug's re-plug is measured on its own.
constexpr unsigned SOCKET_THREADS = 4;
constexpr unsigned SOCKETS_PER_CYCLE = 3;
std::string hotplug_smp(int cycles)
{
    unsigned sockets = 1 + SOCKETS_PER_CYCLE * static_cast<unsigned>(cycles);
    return fmt::format("{},sockets={},cores={},maxcpus={}", SOCKET_THREADS, sockets, SOCKET_THREADS, sockets * SOCKET_THREADS);
}

struct Options {
    bool quick { false };
    std::string vmm;
    std::string qemu { "qemu-system-x86_64" };
    std::string firmware { "qboot.rom" };
    std::string guest;
    std::string out { "bench-results" };
    std::vector<unsigned> cpus;
    std::vector<unsigned> udelays { 0, 10000 };
    int repeats { 0 };
    int hotplug_repeats { 0 };
    bool with_qemu { true };
    std::string memory { "256M" };
    bool linux_mode { false };
    bench::LinuxOptions linux_options;
    int linux_boot_timeout_s { 900 };
    int linux_plug_timeout_s { 300 };
};

// One way to start a VM; the same guest command line on both VMMs.
struct Launch {
    Vmm vmm;
    std::string smp;
    bool parallel { true };
    unsigned udelay { 0 };
    bool exit_after_boot { true };
    bool hotplug { false };
    std::string qmp_socket;
};

std::vector<std::string> argv_for(Options const& o, Launch const& l)
{
    std::vector<std::string> argv;
    if (l.vmm == Vmm::Cpuplug) {
        argv = { o.vmm, "--kernel", o.guest, "--cpus", l.smp, "--memory", o.memory, "--bringup",
            l.parallel ? "parallel" : "serial", "--init-delay-us", std::to_string(l.udelay), "--serial", "stdio" };
        if (l.exit_after_boot)
            argv.push_back("--exit-after-boot");
        if (l.hotplug)
            argv.push_back("--hotplug");
        if (!l.qmp_socket.empty())
            argv.insert(argv.end(), { "--qmp", "unix:" + l.qmp_socket });
        return argv;
    }
    std::string append = fmt::format("cpuhp.parallel={} cpu_init_udelay={}", l.parallel ? 1 : 0, l.udelay);
    if (l.exit_after_boot)
        append += " exit_after_boot=1";
    return qmp_test::qemu_argv({ o.qemu, o.guest, l.smp, append, o.memory, o.firmware, l.qmp_socket });
}

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

std::string last_line(std::string const& text)
{
    auto end = text.find_last_not_of("\r\n");
    if (end == std::string::npos)
        return "";
    auto begin = text.find_last_of('\n', end);
    return text.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
}

// ---- boot ----------------------------------------------------------------------------------------------

struct BootSample {
    bool ok { false };
    std::string error;
    double online_ms { NAN };  // launch to the guest's "CPUs online" line on the console
    double bringup_ms { NAN }; // the guest's own figure: first INIT to the last CPU online
    double total_ms { NAN };   // launch to the VMM's exit after the guest powered off
    long rss_kib { 0 };
};

BootSample boot_once(Options const& o, Launch const& l, unsigned cpus)
{
    BootSample sample;
    test_support::Process process(argv_for(o, l));
    auto timeout = std::chrono::milliseconds(30'000 + 60 * cpus + cpus * l.udelay / 1000 * 3);
    bool seen = process.wait_for_output("CPUs online", timeout);
    double online_ms = ms_since(process.started());
    auto result = process.wait(timeout);
    sample.total_ms = result.elapsed_ms;
    sample.rss_kib = result.max_rss_kib;
    auto line = bench::parse_smp_line(result.out);
    if (!seen || !line) {
        auto why = last_line(result.err).empty() ? last_line(result.out) : last_line(result.err);
        sample.error = result.timed_out ? "timed out" : fmt::format("no bring-up line (exit {}): {}", result.exit_code, why);
    } else if (line->online != cpus || line->present != cpus) {
        sample.error = fmt::format("{} of {} CPUs online", line->online, line->present);
    } else if (result.exit_code != 0) {
        sample.error = fmt::format("exit status {}: {}", result.exit_code, last_line(result.err));
    } else {
        sample.ok = true;
        sample.online_ms = online_ms;
        sample.bringup_ms = line->bringup_ms;
    }
    return sample;
}

struct BootKey {
    Vmm vmm;
    unsigned cpus;
    bool parallel;
    unsigned udelay;
    auto operator<=>(BootKey const&) const = default;
};

// ---- hot-plug -----------------------------------------------------------------------------------------

struct HotplugSession {
    std::unique_ptr<test_support::Process> process;
    std::unique_ptr<QmpClient> qmp;
    std::string socket;
    std::string cpu_type;
};

// Waits for one event per entry of `pending` (ids of devices, or "" for anonymous ones) that `match`
// accepts, removing the entries it sees; false on timeout or a failure status.
bool wait_events(QmpClient& qmp, std::string const& name, std::multiset<std::string> pending,
    std::function<bool(Json const&, std::string& device)> const& match, std::string& error)
{
    auto deadline = Clock::now() + 30s;
    while (!pending.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left <= 0ms) {
            error = fmt::format("no {} within 30 s", name);
            return false;
        }
        auto event = qmp.wait_event(name, left);
        if (!event) {
            error = fmt::format("no {} within 30 s", name);
            return false;
        }
        std::string device;
        if (!match((*event)["data"], device))
            continue;
        auto it = pending.find(device);
        if (it == pending.end())
            it = pending.find("");
        if (it != pending.end())
            pending.erase(it);
    }
    return true;
}

// An insert _OST from the guest: success once the CPU is online (both VMMs emit it the same way).
bool inserted(Json const& data, std::string& device, std::string& error)
{
    auto const& info = data["info"];
    if (info.value("source", -1) != 1)
        return false;
    if (info.value("status", -1) != 0) {
        error = fmt::format("the guest answered the insert with _OST status {}", info.value("status", -1));
        return false;
    }
    device = info.value("device", "");
    return true;
}

// Sends every command before reading any reply, as a client plugging a socket with device_add would.
bool execute_all(QmpClient& qmp, std::vector<Json> const& commands, std::string& error)
{
    for (auto const& command : commands) {
        if (!qmp.send(command)) {
            error = "QMP connection lost";
            return false;
        }
    }
    for (size_t i = 0; i < commands.size(); ++i) {
        auto reply = qmp.read_reply(30s);
        if (!reply || !reply->contains("return")) {
            error = reply ? fmt::format("{} failed: {}", commands[i]["execute"].get<std::string>(), reply->dump()) : "no reply";
            return false;
        }
    }
    return true;
}

Json device_add(std::string const& type, std::string const& id, unsigned socket, unsigned core)
{
    return Json { { "execute", "device_add" },
        { "arguments", { { "driver", type }, { "id", id }, { "socket-id", socket }, { "core-id", core }, { "thread-id", 0 } } } };
}
Json device_del(std::string const& id) { return Json { { "execute", "device_del" }, { "arguments", { { "id", id } } } }; }

// One plug and unplug of `ids` (cores 0.. of `socket`), or of the whole socket with cpuplug's x-socket-add.
struct PlugTimes {
    double add_ms { NAN };
    double del_ms { NAN };
};

bool plug_cycle(HotplugSession& s, unsigned socket, std::vector<std::string> const& ids, bool x_socket, PlugTimes& times,
    std::string& error)
{
    std::vector<Json> adds, dels;
    std::multiset<std::string> pending;
    for (unsigned i = 0; i < ids.size(); ++i) {
        adds.push_back(x_socket ? Json { { "execute", "x-socket-add" }, { "arguments", { { "socket-id", socket } } } }
                                : device_add(s.cpu_type, ids[i], socket, i));
        dels.push_back(x_socket ? Json { { "execute", "x-socket-del" }, { "arguments", { { "socket-id", socket } } } }
                                : device_del(ids[i]));
        pending.insert(x_socket ? "" : ids[i]);
    }
    if (x_socket) {
        adds.resize(1);
        dels.resize(1);
    }
    std::string status_error;
    auto start = Clock::now();
    if (!execute_all(*s.qmp, adds, error))
        return false;
    if (!wait_events(*s.qmp, "ACPI_DEVICE_OST", pending,
            [&](Json const& data, std::string& device) { return inserted(data, device, status_error); }, error)) {
        if (!status_error.empty())
            error = status_error;
        return false;
    }
    times.add_ms = ms_since(start);
    start = Clock::now();
    if (!execute_all(*s.qmp, dels, error))
        return false;
    if (!wait_events(*s.qmp, "DEVICE_DELETED", pending,
            [&](Json const& data, std::string& device) {
                // QEMU also reports the CPU's child LAPIC device, by path only: not a CPU.
                if (data.value("path", "").ends_with("/lapic"))
                    return false;
                device = data.value("device", "");
                return true;
            },
            error))
        return false;
    times.del_ms = ms_since(start);
    // QEMU's last _OST of a removal follows DEVICE_DELETED; let it arrive before the next cycle.
    s.qmp->drain(20ms);
    return true;
}

struct HotplugResult {
    std::map<std::string, std::vector<double>> samples; // "cpu add", "cpu del", "socket add", ...
    std::string error;
    long rss_kib { 0 };
};

HotplugResult hotplug_bench(Options const& o, Vmm vmm, int repeats, std::function<void(std::string const&)> const& progress)
{
    HotplugResult r;
    HotplugSession s;
    s.socket = qmp_test::socket_path();
    Launch l { vmm, hotplug_smp(repeats), true, 0, false, true, s.socket };
    s.process = std::make_unique<test_support::Process>(argv_for(o, l));
    auto finish = [&] {
        if (s.qmp)
            (void)s.qmp->execute("quit", std::nullopt, std::nullopt, 10s);
        auto result = s.process->wait(30s);
        r.rss_kib = result.max_rss_kib;
        if (!r.error.empty() && !last_line(result.err).empty())
            r.error += fmt::format(" ({} said: {})", name_of(vmm), last_line(result.err));
        std::filesystem::remove(s.socket);
        return r;
    };
    if (!s.process->wait_for_output("CPUs online", 60s)) {
        r.error = "the guest did not boot: " + last_line(s.process->err());
        return finish();
    }
    s.qmp = QmpClient::connect_unix(s.socket, 10s);
    if (!s.qmp || !s.qmp->negotiate()) {
        r.error = "no QMP";
        return finish();
    }
    auto cpus = s.qmp->execute("query-hotpluggable-cpus");
    if (!cpus || !(*cpus)["return"].is_array() || (*cpus)["return"].empty()) {
        r.error = "query-hotpluggable-cpus failed";
        return finish();
    }
    s.cpu_type = (*cpus)["return"][0].value("type", "");
    if (vmm == Vmm::Qemu && !qmp_test::wait_modern_cpu_hotplug(*s.qmp, 30s)) {
        r.error = "QEMU's CPU hot-plug interface did not leave legacy mode";
        return finish();
    }
    auto ids = [](int rep, char what, unsigned count) {
        std::vector<std::string> v;
        for (unsigned i = 0; i < count; ++i)
            v.push_back(fmt::format("bench-{}{}-{}", what, rep, i));
        return v;
    };
    for (int rep = 0; rep < repeats && r.error.empty(); ++rep) {
        unsigned socket = 1 + SOCKETS_PER_CYCLE * static_cast<unsigned>(rep);
        PlugTimes t;
        if (!plug_cycle(s, socket, ids(rep, 'c', 1), false, t, r.error))
            break;
        r.samples["vCPU add"].push_back(t.add_ms);
        r.samples["vCPU remove"].push_back(t.del_ms);
        if (!plug_cycle(s, socket + 1, ids(rep, 's', SOCKET_THREADS), false, t, r.error))
            break;
        r.samples["socket add"].push_back(t.add_ms);
        r.samples["socket remove"].push_back(t.del_ms);
        if (vmm == Vmm::Cpuplug) {
            if (!plug_cycle(s, socket + 2, ids(rep, 'x', SOCKET_THREADS), true, t, r.error))
                break;
            r.samples["socket add (x-socket-add)"].push_back(t.add_ms);
            r.samples["socket remove (x-socket-del)"].push_back(t.del_ms);
        }
        progress(fmt::format("hot-plug {:7} cycle {}/{}: vCPU add {:.2f} ms, remove {:.2f} ms; socket add {:.2f} ms, "
                             "remove {:.2f} ms",
            name_of(vmm), rep + 1, repeats, r.samples["vCPU add"].back(), r.samples["vCPU remove"].back(),
            r.samples["socket add"].back(), r.samples["socket remove"].back()));
    }
    // cpuplug keeps an unplugged vCPU parked and plugs it again; QEMU 7.2 cannot here (see above).
    for (int rep = 0; vmm == Vmm::Cpuplug && rep < repeats && r.error.empty(); ++rep) {
        PlugTimes t;
        if (!plug_cycle(s, 1, ids(rep, 'r', 1), false, t, r.error))
            break;
        r.samples["vCPU re-add (same slot)"].push_back(t.add_ms);
        r.samples["vCPU re-remove (same slot)"].push_back(t.del_ms);
    }
    return finish();
}

// ---- report ----------------------------------------------------------------------------------------------

std::string machine_description()
{
    utsname u {};
    uname(&u);
    std::string model;
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    return fmt::format("{} host CPUs ({}), Linux {}", sysconf(_SC_NPROCESSORS_ONLN), model, u.release);
}

std::string qemu_version(Options const& o)
{
    auto result = test_support::run_process({ o.qemu, "--version" }, 10s);
    auto first = result.out.substr(0, result.out.find('\n'));
    return first.empty() ? "unknown" : first;
}

} // namespace

int main(int argc, char** argv)
{
    Options o;
    CLI::App app { "Boot and hot-plug benchmark: cpuplug against QEMU with KVM, same guest ELF" };
    app.add_flag("--quick", o.quick, "fewer vCPU counts and repeats (under 5 minutes)");
    app.add_option("--vmm", o.vmm, "cpuplug's vmm binary")->required();
    app.add_option("--guest", o.guest, "the guest ELF both VMMs boot (required but with --linux)");
    app.add_option("--qemu", o.qemu, "qemu-system-x86_64 to compare with")->capture_default_str();
    app.add_option("--firmware", o.firmware, "QEMU's -bios, a path or a file in QEMU's data directories ('' for SeaBIOS)")
        ->capture_default_str();
    app.add_option("--out", o.out, "directory for the CSV and plot data")->capture_default_str();
    app.add_option("--cpus", o.cpus, "vCPU counts to sweep (default: by --quick)")->delimiter(',');
    app.add_option("--udelay", o.udelays, "INIT-to-STARTUP delays in microseconds")->delimiter(',')->capture_default_str();
    app.add_option("--repeats", o.repeats, "boots per configuration (default 5, 3 with --quick)");
    app.add_option("--hotplug-repeats", o.hotplug_repeats, "plug/unplug cycles per VMM (default 20, 5 with --quick)");
    app.add_flag("!--no-qemu", o.with_qemu, "measure cpuplug only");
    auto* linux_group = app.add_option_group("Linux", "boot Debian's Linux on both VMMs instead (docs/benchmark.md, Linux)");
    linux_group->add_flag("--linux", o.linux_mode, "the Linux mode: boot, SMP bring-up and CPU hot-plug with Linux");
    linux_group->add_option("--linux-kernel", o.linux_options.kernel, "the bzImage (scripts/linux-guest --print generic)");
    linux_group->add_option("--linux-initrd", o.linux_options.initrd, "its initramfs, with tests/linux/init as /init");
    linux_group->add_option("--linux-cmdline", o.linux_options.cmdline, "the kernel command line on both")->capture_default_str();
    linux_group->add_option("--linux-repeats", o.linux_options.repeats, "boots per VMM")->capture_default_str();
    linux_group->add_option("--linux-cycles", o.linux_options.cycles, "hot-plug cycles per VMM, each on a fresh slot (at most 2)")
        ->capture_default_str();
    linux_group->add_option("--linux-boot-timeout", o.linux_boot_timeout_s, "seconds to wait for init's first line")
        ->capture_default_str();
    linux_group->add_option("--linux-plug-timeout", o.linux_plug_timeout_s, "seconds to wait for each hot-plug step")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    if (o.linux_mode ? (o.linux_options.kernel.empty() || o.linux_options.initrd.empty()) : o.guest.empty()) {
        fmt::print(stderr, "cpuplug_bench: {} required\n", o.linux_mode ? "--linux-kernel and --linux-initrd are" : "--guest is");
        return 2;
    }
    if (o.linux_mode && (o.linux_options.cycles < 1 || o.linux_options.cycles > 2 || o.linux_options.repeats < 1)) {
        // The machine has two free slots, and QEMU 7.2 cannot plug one twice on these hosts.
        fmt::print(stderr, "cpuplug_bench: --linux-cycles takes 1 or 2, --linux-repeats at least 1\n");
        return 2;
    }

    if (o.cpus.empty())
        o.cpus = o.quick ? std::vector<unsigned> { 1, 8, 64, 255 }
                         : std::vector<unsigned> { 1, 2, 4, 8, 16, 32, 64, 128, 255, 288, 512, 1024 };
    if (o.repeats <= 0)
        o.repeats = o.quick ? 3 : 5;
    if (o.hotplug_repeats <= 0)
        o.hotplug_repeats = o.quick ? 5 : 20;
    if (o.with_qemu) {
        auto found = qmp_test::find_executable(o.qemu);
        if (found.empty()) {
            fmt::print(stderr, "cpuplug_bench: {} not found (install qemu-system-x86, or pass --no-qemu)\n", o.qemu);
            return 2;
        }
        o.qemu = found;
        if (!o.firmware.empty()) {
            auto firmware = o.firmware.find('/') == std::string::npos ? qmp_test::find_qemu_data_file(o.qemu, o.firmware)
                : access(o.firmware.c_str(), R_OK) == 0                 ? o.firmware
                                                                        : "";
            if (firmware.empty()) {
                fmt::print(stderr, "cpuplug_bench: firmware {} not found (install qemu-system-data, or --firmware '')\n", o.firmware);
                return 2;
            }
            o.firmware = firmware;
        }
    }
    std::filesystem::create_directories(o.out);

    if (o.linux_mode) {
        auto& l = o.linux_options;
        l.vmm = o.vmm;
        l.qemu = o.qemu;
        l.firmware = o.firmware;
        l.out = o.out;
        l.with_qemu = o.with_qemu;
        l.boot_timeout = std::chrono::seconds(o.linux_boot_timeout_s);
        l.plug_timeout = std::chrono::seconds(o.linux_plug_timeout_s);
        l.machine = machine_description();
        l.qemu_version = o.with_qemu ? qemu_version(o) : "";
        return bench::run_linux_bench(l);
    }

    std::vector<Vmm> vmms { Vmm::Cpuplug };
    if (o.with_qemu)
        vmms.push_back(Vmm::Qemu);
    auto runs_for = [&](Vmm vmm, unsigned cpus) { return vmm == Vmm::Qemu && cpus > QEMU_Q35_MAX_CPUS ? 0 : o.repeats; };
    size_t planned = 0, done = 0;
    for (auto vmm : vmms)
        for (auto cpus : o.cpus)
            planned += 2 * o.udelays.size() * runs_for(vmm, cpus);
    auto start = Clock::now();
    auto progress = [&](std::string const& text) {
        fmt::print(stderr, "[{:4}/{}] {:6.0f} s  {}\n", done, planned, ms_since(start) / 1000, text);
    };

    // Boots: the configurations interleave within a repeat so that drift in the host's load spreads over
    // all of them rather than landing on one.
    std::map<BootKey, std::vector<BootSample>> boots;
    std::ofstream boot_csv(o.out + "/boot.csv");
    boot_csv << "vmm,vcpus,bringup,init_udelay_us,run,ok,online_ms,guest_bringup_ms,exit_ms,peak_rss_kib,error\n";
    auto settle = std::chrono::milliseconds(0);
    for (int rep = 0; rep < o.repeats; ++rep) {
        for (auto udelay : o.udelays) {
            for (auto cpus : o.cpus) {
                for (auto vmm : vmms) {
                    if (runs_for(vmm, cpus) == 0)
                        continue;
                    // Which mode goes first alternates between repeats, and each boot waits for the host
                    // to finish tearing the last VM down: a boot right after a big VM's exit runs slow.
                    for (bool parallel : { rep % 2 == 0, rep % 2 != 0 }) {
                        Launch l { vmm, std::to_string(cpus), parallel, udelay, true, false, "" };
                        std::this_thread::sleep_for(settle);
                        auto sample = boot_once(o, l, cpus);
                        settle = std::chrono::milliseconds(20 + cpus / 2);
                        ++done;
                        boots[{ vmm, cpus, parallel, udelay }].push_back(sample);
                        boot_csv << fmt::format("{},{},{},{},{},{},{},{},{},{},\"{}\"\n", name_of(vmm), cpus,
                            parallel ? "parallel" : "serial", udelay, rep + 1, sample.ok ? 1 : 0,
                            bench::number(sample.online_ms), bench::number(sample.bringup_ms),
                            bench::number(sample.total_ms), sample.rss_kib, sample.error);
                        boot_csv.flush();
                        progress(fmt::format("boot {:7} {:4} vCPUs {:8} udelay {:5}: {}", name_of(vmm), cpus,
                            parallel ? "parallel" : "serial", udelay,
                            sample.ok ? fmt::format("{:.1f} ms online, bring-up {:.1f} ms, {} MiB", sample.online_ms,
                                            sample.bringup_ms, sample.rss_kib / 1024)
                                      : "FAILED: " + sample.error));
                    }
                }
            }
        }
    }

    std::map<Vmm, HotplugResult> hotplug;
    for (auto vmm : vmms) {
        hotplug[vmm] = hotplug_bench(o, vmm, o.hotplug_repeats, progress);
        if (!hotplug[vmm].error.empty())
            progress(fmt::format("hot-plug {}: FAILED: {}", name_of(vmm), hotplug[vmm].error));
    }
    std::ofstream hotplug_csv(o.out + "/hotplug.csv");
    hotplug_csv << "vmm,operation,run,latency_ms\n";
    for (auto const& [vmm, result] : hotplug)
        for (auto const& [op, values] : result.samples)
            for (size_t i = 0; i < values.size(); ++i)
                hotplug_csv << fmt::format("{},{},{},{}\n", name_of(vmm), op, i + 1, bench::number(values[i]));

    // ---- the table ----
    auto ok_values = [&](BootKey key, double BootSample::*field) {
        std::vector<double> v;
        for (auto const& s : boots[key])
            if (s.ok)
                v.push_back(s.*field);
        return bench::stats_of(v);
    };
    auto peak_rss = [&](Vmm vmm, unsigned cpus) {
        long peak = 0;
        for (auto const& [key, samples] : boots)
            if (key.vmm == vmm && key.cpus == cpus)
                for (auto const& s : samples)
                    peak = std::max(peak, s.ok ? s.rss_kib : 0);
        return peak ? fmt::format("{:.1f}", peak / 1024.0) : std::string("-");
    };
    size_t failures = 0;
    for (auto const& [key, samples] : boots)
        for (auto const& s : samples)
            failures += s.ok ? 0 : 1;

    std::string qemu_desc = o.with_qemu ? fmt::format("{}, -M q35 -cpu host,-arch-capabilities, firmware {}", qemu_version(o),
                                              o.firmware.empty() ? "SeaBIOS" : std::filesystem::path(o.firmware).filename().string())
                                        : "not measured";
    fmt::print("\ncpuplug boot and hot-plug benchmark: {}\n", machine_description());
    fmt::print("QEMU: {}\n", qemu_desc);
    fmt::print("Same guest ELF ({}) and guest command line on both, {} RAM; {} runs per boot configuration.\n",
        std::filesystem::path(o.guest).filename().string(), o.memory, o.repeats);
    fmt::print("Time to all online = launching the VMM to the guest's \"N of N CPUs online\" line: median (min), ms.\n");
    fmt::print("Ratios are of medians; peak RSS is the VMM process's largest resident set over its boots.\n\n");
    fmt::print("{:>5} {:>6} | {:>13} {:>13} | {:>13} {:>13} | {:>6} {:>6} | {:>8} {:>8} | {:>8} {:>8}\n", "", "INIT",
        "cpuplug", "cpuplug", "QEMU", "QEMU", "cp/Q", "cp/Q", "par/ser", "par/ser", "RSS MiB", "RSS MiB");
    fmt::print("{:>5} {:>6} | {:>13} {:>13} | {:>13} {:>13} | {:>6} {:>6} | {:>8} {:>8} | {:>8} {:>8}\n", "vCPUs", "delay",
        "parallel", "serial", "parallel", "serial", "par", "ser", "cpuplug", "QEMU", "cpuplug", "QEMU");
    std::ofstream plot_data[2];
    for (size_t u = 0; u < o.udelays.size() && u < 2; ++u) {
        plot_data[u].open(fmt::format("{}/boot-udelay{}.dat", o.out, o.udelays[u]));
        plot_data[u] << "# vcpus cpuplug_parallel cpuplug_serial qemu_parallel qemu_serial (median ms to all online)\n";
    }
    std::ofstream summary(o.out + "/summary.csv");
    summary << "vcpus,init_udelay_us,vmm,bringup,runs_ok,online_median_ms,online_min_ms,guest_bringup_median_ms,guest_bringup_min_ms\n";
    for (size_t u = 0; u < o.udelays.size(); ++u) {
        auto udelay = o.udelays[u];
        for (auto cpus : o.cpus) {
            auto cp_par = ok_values({ Vmm::Cpuplug, cpus, true, udelay }, &BootSample::online_ms);
            auto cp_ser = ok_values({ Vmm::Cpuplug, cpus, false, udelay }, &BootSample::online_ms);
            auto q_par = ok_values({ Vmm::Qemu, cpus, true, udelay }, &BootSample::online_ms);
            auto q_ser = ok_values({ Vmm::Qemu, cpus, false, udelay }, &BootSample::online_ms);
            fmt::print("{:>5} {:>6} | {:>13} {:>13} | {:>13} {:>13} | {:>6} {:>6} | {:>8} {:>8} | {:>8} {:>8}\n", cpus,
                udelay, bench::cell(cp_par), bench::cell(cp_ser), bench::cell(q_par), bench::cell(q_ser),
                bench::ratio(cp_par.median, q_par.median), bench::ratio(cp_ser.median, q_ser.median),
                bench::ratio(cp_par.median, cp_ser.median), bench::ratio(q_par.median, q_ser.median),
                peak_rss(Vmm::Cpuplug, cpus), peak_rss(Vmm::Qemu, cpus));
            if (u < 2)
                plot_data[u] << fmt::format("{} {} {} {} {}\n", cpus, bench::number(cp_par.median),
                    bench::number(cp_ser.median), bench::number(q_par.median), bench::number(q_ser.median));
            for (auto vmm : vmms) {
                for (bool parallel : { true, false }) {
                    BootKey key { vmm, cpus, parallel, udelay };
                    auto online = ok_values(key, &BootSample::online_ms);
                    auto bringup = ok_values(key, &BootSample::bringup_ms);
                    summary << fmt::format("{},{},{},{},{},{},{},{},{}\n", cpus, udelay, name_of(vmm),
                        parallel ? "parallel" : "serial", online.count, bench::number(online.median),
                        bench::number(online.min), bench::number(bringup.median), bench::number(bringup.min));
                }
            }
        }
    }

    fmt::print("\nGuest-measured bring-up (first INIT to last CPU online), median ms: the same guest code on both VMMs\n");
    fmt::print("{:>5} {:>6} | {:>9} {:>9} | {:>9} {:>9}\n", "vCPUs", "delay", "cp par", "cp ser", "QEMU par", "QEMU ser");
    for (auto udelay : o.udelays)
        for (auto cpus : o.cpus) {
            auto m = [&](Vmm vmm, bool parallel) {
                auto s = ok_values({ vmm, cpus, parallel, udelay }, &BootSample::bringup_ms);
                return s.count ? fmt::format("{:.1f}", s.median) : std::string("-");
            };
            fmt::print("{:>5} {:>6} | {:>9} {:>9} | {:>9} {:>9}\n", cpus, udelay, m(Vmm::Cpuplug, true),
                m(Vmm::Cpuplug, false), m(Vmm::Qemu, true), m(Vmm::Qemu, false));
        }

    fmt::print("\nHot-plug latency over QMP, {} cycles, median (min) ms; machine -smp {} (every cycle plugs fresh slots)\n",
        o.hotplug_repeats, hotplug_smp(o.hotplug_repeats));
    fmt::print("add: device_add sent to the guest's _OST success (ACPI_DEVICE_OST) for each CPU, which the guest writes\n"
               "once the CPU is online; remove: device_del sent to DEVICE_DELETED for each CPU. A socket is {} device_add\n"
               "or device_del commands sent back to back.\n",
        SOCKET_THREADS);
    std::ofstream hotplug_plot(o.out + "/hotplug.dat");
    hotplug_plot << "# operation cpuplug_median_ms qemu_median_ms\n";
    fmt::print("{:>30} | {:>15} {:>15} | {:>6}\n", "operation", "cpuplug", "QEMU", "cp/Q");
    for (auto const& op : { "vCPU add", "vCPU remove", "socket add", "socket remove", "socket add (x-socket-add)",
             "socket remove (x-socket-del)", "vCPU re-add (same slot)", "vCPU re-remove (same slot)" }) {
        auto cp = bench::stats_of(hotplug[Vmm::Cpuplug].samples[op]);
        auto q = bench::stats_of(o.with_qemu ? hotplug[Vmm::Qemu].samples[op] : std::vector<double> {});
        if (cp.count == 0 && q.count == 0)
            continue;
        auto c = [](bench::Stats const& s) {
            return s.count ? fmt::format("{:.2f} ({:.2f})", s.median, s.min) : std::string("-");
        };
        fmt::print("{:>30} | {:>15} {:>15} | {:>6}\n", op, c(cp), c(q), bench::ratio(cp.median, q.median));
        hotplug_plot << fmt::format("\"{}\" {} {}\n", op, bench::number(cp.median), bench::number(q.median));
    }
    fmt::print("{:>30} | {:>15} {:>15} |\n", "peak RSS, hot-plug VM (MiB)",
        fmt::format("{:.1f}", hotplug[Vmm::Cpuplug].rss_kib / 1024.0),
        o.with_qemu ? fmt::format("{:.1f}", hotplug[Vmm::Qemu].rss_kib / 1024.0) : std::string("-"));

    size_t hotplug_failures = 0;
    for (auto const& [vmm, result] : hotplug)
        hotplug_failures += result.error.empty() ? 0 : 1;
    fmt::print("\n{} boots in {:.0f} s, {} failed; hot-plug sessions failed: {}. Data: {}/\n", done,
        ms_since(start) / 1000, failures, hotplug_failures, o.out);
    return failures == 0 && hotplug_failures == 0 ? 0 : 1;
}
