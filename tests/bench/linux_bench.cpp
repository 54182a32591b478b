// cpuplug_bench --linux: Debian's kernel on cpuplug and on QEMU, one boot each, from one run.
//
// Per VMM: launch it with the kernel, initramfs and command line, connect QMP, wait for init's first line
// (tests/linux/init prints "cpuplug-linux: init online=..."), read Linux's SMP bring-up from its dated log,
// then for each free CPU slot (as query-hotpluggable-cpus lists them) device_add it, wait for init's
// "cpu-added N online=1", device_del it and wait for DEVICE_DELETED. Every wait has a deadline, and a
// phase that does not finish is reported as such in the table instead of holding the run.
#include "linux_bench.hpp"

#include "bench_stats.hpp"
#include "linux_log.hpp"
#include "qmp_vm/qemu.hpp"
#include "support/process.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <thread>

namespace bench {

namespace {

using namespace std::chrono_literals;
using qmp_test::Json;
using qmp_test::QmpClient;
using Clock = std::chrono::steady_clock;

// The machine of tests/linux/test_linux.cpp's hot-plug cases: two CPUs at boot, two free slots (on both
// VMMs four sockets of one core), each plugged once since QEMU 7.2 cannot plug a slot twice here.
constexpr char const* SMP = "2,maxcpus=4";
constexpr char const* BOOT_ONLINE = "0-1";
constexpr char const* MEMORY = "512M";
constexpr char const* INIT_NEEDLE = "cpuplug-linux: init online=";
// Console polling: coarse while Linux boots for minutes (each look costs the nested VM's one CPU, which
// the guest needs), fine while a hot-plug takes a fraction of a second.
constexpr auto BOOT_SLICE = 50ms;
constexpr auto PLUG_SLICE = 3ms;
constexpr auto HEARTBEAT = 30s;
// After the figure itself (the online line, DEVICE_DELETED), how long to wait for the phase's other
// signs (the _OST, the cpu-removed line) before the next cycle.
constexpr auto SETTLE_TIMEOUT = 20s;

enum class Vmm { Cpuplug, Qemu };
constexpr char const* name_of(Vmm vmm) { return vmm == Vmm::Cpuplug ? "cpuplug" : "qemu"; }

double ms_between(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double, std::milli>(to - from).count(); }
double ms_since(Clock::time_point from) { return ms_between(from, Clock::now()); }

// One figure of one boot: its samples, or why there are none (short, for the table's cell).
struct Measure {
    std::vector<double> values;
    std::string error;
};

// The table's rows, in order; the key is also the CSV's `measure`.
struct Row {
    char const* key;
    char const* label;
    char const* unit;
};
constexpr Row ROWS[] = {
    { "boot_to_init", "exec -> init's first line", "ms" },
    { "uptime_at_init", "Linux's uptime at init (its clock)", "ms" },
    { "smp_bringup", "SMP bring-up (Linux's log times)", "ms" },
    { "add_to_online", "device_add -> CPU online in Linux", "ms" },
    { "add_to_ost", "device_add -> _OST success", "ms" },
    { "del_to_deleted", "device_del -> DEVICE_DELETED", "ms" },
    { "del_to_removed", "device_del -> cpu-removed (init)", "ms" },
};

struct VmmRun {
    std::map<std::string, Measure> measures;
    std::vector<std::string> notes; // what went wrong, in full
    long rss_kib { 0 };
};

std::string last_line(std::string const& text)
{
    auto end = text.find_last_not_of("\r\n");
    if (end == std::string::npos)
        return "";
    auto begin = text.find_last_of('\n', end);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return text.substr(begin, end - begin + 1);
}

class Session {
public:
    Session(LinuxOptions const& o, Vmm vmm, int boot, std::function<void(std::string const&)> progress)
        : m_o(o)
        , m_vmm(vmm)
        , m_boot(boot)
        , m_progress(std::move(progress))
        , m_socket(qmp_test::socket_path())
    {
    }

    VmmRun run()
    {
        m_process = std::make_unique<test_support::Process>(argv());
        if (boot())
            (void)hotplug();
        finish();
        return std::move(m_run);
    }

private:
    std::vector<std::string> argv() const
    {
        if (m_vmm == Vmm::Cpuplug)
            // A removal waits for Linux to offline the CPU, seconds of wall time in the nested VM: the
            // default 5 s would time out there (QEMU waits for ever).
            return { m_o.vmm, "--kernel", m_o.kernel, "--initrd", m_o.initrd, "--cmdline", m_o.cmdline, "--cpus", SMP,
                "--memory", MEMORY, "--hotplug", "--qmp", "unix:" + m_socket, "--serial", "stdio",
                "--unplug-timeout-ms", "120000" };
        qmp_test::QemuGuest guest { m_o.qemu, m_o.kernel, SMP, m_o.cmdline, MEMORY, m_o.firmware, m_socket };
        guest.initrd = m_o.initrd;
        guest.cpuplug_guest = false;
        return qmp_test::qemu_argv(guest);
    }

    std::string const& console() const { return m_process->out(); }
    double seconds() const { return ms_since(m_process->started()) / 1000; }
    void fail(std::string const& key, std::string const& cell, std::string const& note)
    {
        m_run.measures[key].error = cell;
        m_run.notes.push_back(fmt::format("{}: {}", key, note));
        m_progress(fmt::format("{}: {}: {}", name_of(m_vmm), key, note));
    }
    std::string said() const
    {
        auto line = last_line(console());
        auto err = last_line(m_process->err());
        return fmt::format("last console line: \"{}\"{}", line, err.empty() ? "" : fmt::format("; stderr: \"{}\"", err));
    }

    // Collects console and QMP in turns until `done` holds; false on the deadline or when the VMM is gone
    // (its QMP socket closed), with `why` saying which.
    bool pump_until(std::function<bool()> const& done, std::chrono::milliseconds timeout, std::string& why)
    {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            if (done())
                return true;
            if (m_qmp->closed() || !m_process->output_open()) {
                why = fmt::format("{} exited after {:.0f} s", name_of(m_vmm), seconds());
                return false;
            }
            if (Clock::now() >= deadline) {
                why = "timeout";
                return false;
            }
            m_process->collect_for(PLUG_SLICE);
            (void)m_qmp->drain(PLUG_SLICE);
        }
    }

    // The console line with `needle` at or after byte `from` (where the console ended when the step began),
    // once complete: an earlier step's line is not this one's.
    std::optional<std::string> line_after(std::string_view needle, size_t from) const
    {
        return console_line(console(), needle, from);
    }

    bool boot()
    {
        // The socket appears once the VMM has set up; a VMM that fails first says why on stderr and exits.
        auto qmp_deadline = Clock::now() + 120s;
        while (!m_qmp && m_process->output_open() && Clock::now() < qmp_deadline) {
            m_qmp = QmpClient::connect_unix(m_socket, 1s);
            m_process->collect_for(10ms);
        }
        if (!m_qmp || !m_qmp->negotiate()) {
            m_process->collect_for(100ms);
            bool exited = !m_process->output_open();
            fail("boot_to_init", exited ? fmt::format("exited after {:.0f} s", seconds()) : "no QMP",
                fmt::format("{}; {}", exited ? "exited before its QMP socket took a client" : "no QMP connection within 120 s", said()));
            return false;
        }
        // Launch to init's first line. The search starts a little before the end of what it had seen, so
        // a needle split between two reads is found.
        size_t scanned = 0;
        auto deadline = m_process->started() + m_o.boot_timeout;
        auto heartbeat = Clock::now() + HEARTBEAT;
        std::optional<double> init_ms;
        while (!init_ms) {
            auto const& out = console();
            auto at = out.find(INIT_NEEDLE, scanned > 64 ? scanned - 64 : 0);
            if (at != std::string::npos) {
                init_ms = ms_since(m_process->started());
                break;
            }
            scanned = out.size();
            if (Clock::now() >= deadline) {
                fail("boot_to_init", fmt::format("stalled after {} s", m_o.boot_timeout.count()),
                    fmt::format("no init line within {} s; {}", m_o.boot_timeout.count(), said()));
                return false;
            }
            if (m_qmp->closed() || !m_process->output_open()) {
                fail("boot_to_init", fmt::format("exited after {:.0f} s", seconds()),
                    fmt::format("{} exited before init; {}", name_of(m_vmm), said()));
                return false;
            }
            if (Clock::now() >= heartbeat) {
                m_progress(fmt::format("{}: booting, {:.0f} s; {}", name_of(m_vmm), seconds(), said()));
                heartbeat += HEARTBEAT;
            }
            m_process->collect_for(BOOT_SLICE);
            // Reads (and keeps) whatever QMP sent, which also notices the VMM's exit.
            (void)m_qmp->drain(1ms);
        }
        m_run.measures["boot_to_init"].values.push_back(*init_ms);
        std::string why;
        std::optional<std::string> line;
        if (!pump_until([&] { return (line = line_after(INIT_NEEDLE, 0)).has_value(); }, 30s, why) || !line) {
            fail("uptime_at_init", "no init line", "init's first line did not end; " + why);
            return false;
        }
        auto init = parse_init_line(*line);
        if (!init) {
            fail("uptime_at_init", "unreadable", fmt::format("cannot read init's line \"{}\"", *line));
        } else {
            m_run.measures["uptime_at_init"].values.push_back(init->uptime_s * 1000);
            if (init->online != BOOT_ONLINE)
                m_run.notes.push_back(fmt::format("init saw CPUs {} online, not {}", init->online, BOOT_ONLINE));
        }
        m_progress(fmt::format("{}: init after {:.1f} s: {}", name_of(m_vmm), *init_ms / 1000, *line));

        // From the kernel's log on the console, or (with `quiet`) init's copies, which follow its first line.
        std::optional<LinuxSmp> smp;
        if (!pump_until([&] { return (smp = parse_linux_smp(console())).has_value(); }, 60s, why)) {
            fail("smp_bringup", "no smp lines",
                "neither the kernel's log nor init's copies of it have dated \"smp: Bringing up secondary CPUs\" and "
                "\"smp: Brought up\" lines (" + why + ")");
        } else {
            m_run.measures["smp_bringup"].values.push_back(smp->ms());
            if (smp->cpus != 2)
                m_run.notes.push_back(fmt::format("Linux brought up {} CPUs, not 2", smp->cpus));
            m_progress(fmt::format("{}: SMP bring-up {:.1f} ms by Linux's log ({:.6f} s to {:.6f} s)", name_of(m_vmm),
                smp->ms(), smp->start_s, smp->end_s));
        }
        return true;
    }

    struct Slot {
        std::string type;
        Json props;
    };

    bool hotplug()
    {
        static constexpr char const* PLUG_KEYS[] = { "add_to_online", "add_to_ost", "del_to_deleted", "del_to_removed" };
        auto fail_all = [&](std::string const& cell, std::string const& note) {
            for (auto key : PLUG_KEYS)
                m_run.measures[key].error = cell;
            m_run.notes.push_back(note);
            m_progress(fmt::format("{}: hot-plug: {}", name_of(m_vmm), note));
            return false;
        };
        auto cpus = m_qmp->execute("query-hotpluggable-cpus", std::nullopt, std::nullopt, 30s);
        if (!cpus || !(*cpus)["return"].is_array())
            return fail_all("no slots", "query-hotpluggable-cpus failed");
        std::vector<Slot> free;
        for (auto const& cpu : (*cpus)["return"])
            if (!cpu.contains("qom-path"))
                free.push_back({ cpu.value("type", ""), cpu["props"] });
        // Lowest socket first on both VMMs (QEMU lists its slots from the highest).
        auto order = [](Json const& p) {
            return std::tuple(p.value("socket-id", 0), p.value("die-id", 0), p.value("core-id", 0), p.value("thread-id", 0));
        };
        std::sort(free.begin(), free.end(), [&](Slot const& a, Slot const& b) { return order(a.props) < order(b.props); });
        if (free.empty())
            return fail_all("no free slot", "query-hotpluggable-cpus lists no free slot");
        // q35 switches to its modern CPU hot-plug interface when the guest's AML first touches it, long
        // before init; a CPU added before that would get no event Linux sees.
        if (m_vmm == Vmm::Qemu && !qmp_test::wait_modern_cpu_hotplug(*m_qmp, 30s))
            return fail_all("legacy hot-plug", "QEMU's CPU hot-plug interface did not leave legacy mode within 30 s");

        int cycles = std::min(m_o.cycles, static_cast<int>(free.size()));
        for (int cycle = 0; cycle < cycles; ++cycle)
            if (!plug_cycle(cycle, free[static_cast<size_t>(cycle)]))
                return false;
        return true;
    }

    bool plug_cycle(int cycle, Slot const& slot)
    {
        auto id = fmt::format("bench-cpu{}", cycle);
        auto plug_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(m_o.plug_timeout);
        Json args = slot.props;
        args["driver"] = slot.type;
        args["id"] = id;
        m_qmp->take_events();

        // device_add to init's "cpu-added N online=1"; the _OST success on the way.
        size_t from = console().size();
        auto start = Clock::now();
        auto reply = m_qmp->execute("device_add", args, std::nullopt, 30s);
        if (!reply || !reply->contains("return")) {
            fail("add_to_online", "device_add failed",
                fmt::format("device_add {} failed: {}", args.dump(), reply ? reply->dump() : "no reply"));
            return false;
        }
        std::optional<std::string> added_line;
        std::optional<double> online_ms, ost_ms;
        std::string ost_error;
        auto look_ost = [&] {
            for (auto const& e : m_qmp->events()) {
                auto const& info = e["data"]["info"];
                if (ost_ms || e.value("event", "") != "ACPI_DEVICE_OST" || info.value("device", "") != id
                    || info.value("source", -1) != 1)
                    continue;
                if (info.value("status", -1) == 0)
                    ost_ms = ms_since(start);
                else
                    ost_error = fmt::format("_OST status {}", info.value("status", -1));
            }
        };
        std::string why;
        bool seen = pump_until(
            [&] {
                look_ost();
                if (!added_line && (added_line = line_after("cpuplug-linux: cpu-added ", from)))
                    online_ms = ms_since(start);
                return added_line.has_value();
            },
            plug_timeout, why);
        if (!seen) {
            auto cell = why == "timeout" ? fmt::format("stalled after {} s", m_o.plug_timeout.count()) : why;
            fail("add_to_online", cell, fmt::format("cycle {}: no cpu-added line after device_add ({}); {}", cycle + 1, why, said()));
            if (ost_ms)
                m_run.measures["add_to_ost"].values.push_back(*ost_ms);
            return false;
        }
        auto added = parse_cpu_added(*added_line);
        if (!added || !added->online) {
            fail("add_to_online", "not onlined", fmt::format("cycle {}: init says \"{}\"", cycle + 1, *added_line));
            return false;
        }
        m_run.measures["add_to_online"].values.push_back(*online_ms);
        if (!ost_ms && ost_error.empty())
            (void)pump_until([&] { look_ost(); return ost_ms || !ost_error.empty(); }, SETTLE_TIMEOUT, why);
        if (ost_ms)
            m_run.measures["add_to_ost"].values.push_back(*ost_ms);
        else
            fail("add_to_ost", ost_error.empty() ? "no _OST" : ost_error,
                fmt::format("cycle {}: {}", cycle + 1, ost_error.empty() ? "no insert _OST within 20 s of the online line" : ost_error));

        // device_del to DEVICE_DELETED; init's cpu-removed line on the way or soon after.
        from = console().size();
        start = Clock::now();
        reply = m_qmp->execute("device_del", Json { { "id", id } }, std::nullopt, 30s);
        if (!reply || !reply->contains("return")) {
            fail("del_to_deleted", "device_del failed", fmt::format("device_del {} failed: {}", id, reply ? reply->dump() : "no reply"));
            return false;
        }
        std::optional<double> deleted_ms, removed_ms;
        std::string refused;
        auto look_deleted = [&] {
            for (auto const& e : m_qmp->events()) {
                if (e["data"].value("device", "") != id)
                    continue;
                auto name = e.value("event", "");
                if (name == "DEVICE_DELETED" && !deleted_ms)
                    deleted_ms = ms_since(start);
                if (name == "DEVICE_UNPLUG_GUEST_ERROR")
                    refused = "the guest refused (DEVICE_UNPLUG_GUEST_ERROR)";
            }
            if (!removed_ms && line_after("cpuplug-linux: cpu-removed ", from))
                removed_ms = ms_since(start);
        };
        seen = pump_until([&] { look_deleted(); return deleted_ms || !refused.empty(); }, plug_timeout, why);
        if (!seen || !deleted_ms) {
            auto cell = !refused.empty() ? "refused"
                : why == "timeout"       ? fmt::format("stalled after {} s", m_o.plug_timeout.count())
                                         : why;
            fail("del_to_deleted", cell,
                fmt::format("cycle {}: no DEVICE_DELETED after device_del ({}); {}", cycle + 1, refused.empty() ? why : refused, said()));
            return false;
        }
        m_run.measures["del_to_deleted"].values.push_back(*deleted_ms);
        if (!removed_ms)
            (void)pump_until([&] { look_deleted(); return removed_ms.has_value(); }, SETTLE_TIMEOUT, why);
        if (removed_ms)
            m_run.measures["del_to_removed"].values.push_back(*removed_ms);
        else
            fail("del_to_removed", "no cpu-removed", fmt::format("cycle {}: no cpu-removed line within 20 s of DEVICE_DELETED", cycle + 1));
        m_progress(fmt::format("{}: cycle {}: device_add -> online {:.1f} ms (_OST {}), device_del -> DEVICE_DELETED {:.1f} ms",
            name_of(m_vmm), cycle + 1, *online_ms, ost_ms ? fmt::format("{:.1f} ms", *ost_ms) : "-", *deleted_ms));
        // Whatever else the removal sends (QEMU's _OST follows DEVICE_DELETED) stays out of the next cycle.
        m_process->collect_for(200ms);
        (void)m_qmp->drain(200ms);
        return true;
    }

    void finish()
    {
        if (m_qmp && !m_qmp->closed())
            (void)m_qmp->execute("quit", std::nullopt, std::nullopt, 10s);
        auto result = m_process->wait(60s);
        m_run.rss_kib = result.max_rss_kib;
        std::ofstream(fmt::format("{}/linux-console-{}-{}.log", m_o.out, name_of(m_vmm), m_boot)) << result.out;
        if (!result.err.empty())
            std::ofstream(fmt::format("{}/linux-stderr-{}-{}.log", m_o.out, name_of(m_vmm), m_boot)) << result.err;
        std::filesystem::remove(m_socket);
    }

    LinuxOptions const& m_o;
    Vmm m_vmm;
    int m_boot;
    std::function<void(std::string const&)> m_progress;
    std::string m_socket;
    std::unique_ptr<test_support::Process> m_process;
    std::unique_ptr<QmpClient> m_qmp;
    VmmRun m_run;
};

// One figure of one VMM over every boot: the samples, and why boots gave none.
struct Figure {
    std::vector<double> values;
    std::vector<std::string> errors;
};

std::string cell_of(Figure const& f)
{
    if (f.values.empty())
        return f.errors.empty() ? "-" : f.errors.front();
    auto s = stats_of(f.values);
    auto text = s.count == 1 ? fmt::format("{:.{}f}", s.median, s.median >= 100 ? 0 : 1) : bench::cell(s);
    return f.errors.empty() ? text : fmt::format("{}, {} failed", text, f.errors.size());
}

} // namespace

int run_linux_bench(LinuxOptions const& o)
{
    auto start = Clock::now();
    std::filesystem::create_directories(o.out);
    std::vector<Vmm> vmms { Vmm::Cpuplug };
    if (o.with_qemu)
        vmms.push_back(Vmm::Qemu);

    // Boots interleave, the first VMM alternating, so a change in the host's load spreads over both. A VMM
    // whose boot failed twice is not booted again: a stall costs the whole boot timeout each time.
    constexpr int GIVE_UP_AFTER = 2;
    std::map<Vmm, std::vector<VmmRun>> runs;
    std::map<Vmm, int> failed_boots;
    std::ofstream csv(o.out + "/linux.csv");
    csv << "vmm,boot,measure,sample,value,unit,error\n";
    for (int boot = 1; boot <= o.repeats; ++boot) {
        auto order = vmms;
        if (boot % 2 == 0)
            std::reverse(order.begin(), order.end());
        for (auto vmm : order) {
            if (failed_boots[vmm] >= GIVE_UP_AFTER)
                continue;
            auto progress = [&, boot](std::string const& text) {
                fmt::print(stderr, "[linux {}/{}] {:5.0f} s  {}\n", boot, o.repeats, ms_since(start) / 1000, text);
            };
            // The last VM's teardown (half a GiB of guest memory freed) is not this one's boot.
            if (!runs.empty())
                std::this_thread::sleep_for(1s);
            progress(fmt::format("{}: booting {}", name_of(vmm), std::filesystem::path(o.kernel).filename().string()));
            auto run = Session(o, vmm, boot, progress).run();
            if (run.measures["boot_to_init"].values.empty())
                ++failed_boots[vmm];
            for (auto const& row : ROWS) {
                auto it = run.measures.find(row.key);
                if (it == run.measures.end())
                    continue;
                auto const& m = it->second;
                for (size_t i = 0; i < m.values.size(); ++i)
                    csv << fmt::format("{},{},{},{},{},{},\n", name_of(vmm), boot, row.key, i + 1, number(m.values[i]), row.unit);
                if (!m.error.empty())
                    csv << fmt::format("{},{},{},{},NaN,{},\"{}\"\n", name_of(vmm), boot, row.key, m.values.size() + 1,
                        row.unit, m.error);
            }
            csv << fmt::format("{},{},peak_rss,1,{},KiB,\n", name_of(vmm), boot, run.rss_kib);
            csv.flush();
            runs[vmm].push_back(std::move(run));
        }
    }

    // Every boot's samples of a figure together; a boot that did not reach a phase says why.
    auto figure = [&](Vmm vmm, char const* key) {
        Figure f;
        for (auto const& run : runs[vmm]) {
            auto it = run.measures.find(key);
            if (it == run.measures.end()) {
                f.errors.push_back("not run");
                continue;
            }
            f.values.insert(f.values.end(), it->second.values.begin(), it->second.values.end());
            if (!it->second.error.empty())
                f.errors.push_back(it->second.error);
        }
        return f;
    };

    fmt::print("\ncpuplug and QEMU booting Debian's Linux: {}\n", o.machine);
    fmt::print("Kernel {}, initramfs {}, command line \"{}\"\n", std::filesystem::path(o.kernel).filename().string(),
        std::filesystem::path(o.initrd).filename().string(), o.cmdline);
    fmt::print("Both: {} vCPUs ({}), {} RAM. cpuplug: --hotplug. QEMU: {}\n", 2, SMP, MEMORY,
        o.with_qemu ? fmt::format("{}, -M q35 -cpu host,-arch-capabilities, firmware {}", o.qemu_version,
                          o.firmware.empty() ? "SeaBIOS" : std::filesystem::path(o.firmware).filename().string())
                    : "not measured");
    fmt::print("{} boots per VMM, interleaved; in each, {} hot-plug cycles on fresh slots. Median (min) ms over them;\n"
               "a cell says why a boot gave no figure (a phase that did not finish ends that boot).\n\n",
        o.repeats, o.cycles);
    fmt::print("{:>36} | {:>22} {:>22} | {:>6}\n", "measure", "cpuplug", "QEMU", "cp/Q");
    bool complete = true;
    for (auto const& row : ROWS) {
        auto cp = figure(Vmm::Cpuplug, row.key);
        auto q = figure(Vmm::Qemu, row.key);
        complete = complete && !cp.values.empty() && cp.errors.empty() && (!o.with_qemu || (!q.values.empty() && q.errors.empty()));
        fmt::print("{:>36} | {:>22} {:>22} | {:>6}\n", row.label, cell_of(cp), o.with_qemu ? cell_of(q) : "-",
            ratio(stats_of(cp.values).median, stats_of(q.values).median));
    }
    // Only of boots that ran Linux: a VMM that failed at start says nothing about its footprint.
    auto rss = [&](Vmm vmm) {
        long peak = 0;
        for (auto& run : runs[vmm])
            if (!run.measures["boot_to_init"].values.empty())
                peak = std::max(peak, run.rss_kib);
        return peak ? fmt::format("{:.1f}", peak / 1024.0) : std::string("-");
    };
    fmt::print("{:>36} | {:>22} {:>22} |\n", "peak RSS (MiB)", rss(Vmm::Cpuplug), o.with_qemu ? rss(Vmm::Qemu) : "-");
    for (auto vmm : vmms)
        for (size_t b = 0; b < runs[vmm].size(); ++b)
            for (auto const& note : runs[vmm][b].notes)
                fmt::print("note, {} boot {}: {}\n", name_of(vmm), b + 1, note);
    for (auto vmm : vmms)
        if (failed_boots[vmm] >= GIVE_UP_AFTER && static_cast<int>(runs[vmm].size()) < o.repeats)
            fmt::print("note, {}: not booted again after {} failed boots\n", name_of(vmm), GIVE_UP_AFTER);
    fmt::print("\n{} boots in {:.0f} s ({}). Data: {}/linux.csv, consoles {}/linux-console-*.log\n",
        runs[Vmm::Cpuplug].size() + runs[Vmm::Qemu].size(), ms_since(start) / 1000,
        complete ? "every figure measured" : "some figures missing", o.out, o.out);
    return complete ? 0 : 1;
}

} // namespace bench
