// QEMU interop: cpuplug's guest kernel booted by a real QEMU (qemu-system-x86_64 -accel kvm -M q35), with
// QEMU's own firmware, ACPI tables and CPU hot-plug. Nothing here is cpuplug's VMM: the guest must boot,
// bring up its CPUs and follow QEMU's ACPI CPU hot-plug interface over QMP as it does under vmm.
//
// QEMU: $CPUPLUG_QEMU, else qemu-system-x86_64 on PATH. Without it (or without qboot, for the cases that
// boot qboot) each case is skipped with the reason, unless CPUPLUG_REQUIRE_QEMU=1, which makes it fail.
// Without a usable /dev/kvm the cases are skipped, as every KVM test's.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "qmp_vm/qemu.hpp"
#include "qmp_vm/running_vm.hpp"
#include "support/process.hpp"
#include "support/skip.hpp"

#include <linux/kvm.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using qmp_test::Json;
using qmp_test::QmpClient;
using test_support::Process;

namespace {

// Set by main() before any test runs.
std::string g_qemu;
std::string g_qemu_missing; // why g_qemu is empty
std::string g_qboot;        // empty: QEMU ships no qboot.rom

bool qemu_required()
{
    char const* required = std::getenv("CPUPLUG_REQUIRE_QEMU");
    return required && std::string(required) == "1";
}

// Every case starts here: without QEMU (or qboot, when the case boots it) it is skipped with the reason,
// or fails where QEMU is required.
#define NEED_QEMU(with_qboot)                                                                              \
    do {                                                                                                   \
        std::string why_ = !g_qemu_missing.empty()      ? g_qemu_missing                                   \
            : ((with_qboot) && g_qboot.empty())         ? "QEMU ships no qboot.rom (Debian: qemu-system-data)" \
                                                        : "";                                              \
        if (!why_.empty()) {                                                                               \
            if (qemu_required())                                                                           \
                FAIL("QEMU is required (CPUPLUG_REQUIRE_QEMU=1) but " << why_);                            \
            CPUPLUG_SKIP(why_);                                                                            \
        }                                                                                                  \
    } while (false)

constexpr auto BOOT_TIMEOUT = 60s;  // SeaBIOS alone takes ~3 s on the slow nested development host
constexpr auto EVENT_TIMEOUT = 20s; // one hot-plug step, QMP to guest and back
constexpr char const* CPU_TYPE = "host-x86_64-cpu";

std::string find_qemu()
{
    if (char const* explicit_path = std::getenv("CPUPLUG_QEMU"); explicit_path && *explicit_path)
        return qmp_test::find_executable(explicit_path);
    return qmp_test::find_executable("qemu-system-x86_64");
}

// QEMU re-plugs a slot by reusing the vCPU it parked on unplug (KVM cannot destroy one) and sets its CPUID
// again. KVM accepts that after the vCPU has run only if the table is unchanged; the nested kvm_pvm host
// compares with a table it amended itself, so even the very same entries are refused (EINVAL) and QEMU 7.2
// exits ("kvm_arch_init_vcpu failed (2): Invalid argument"). This asks KVM directly: a vCPU runs one `hlt`
// in real mode, then gets the same CPUID again. False if KVM refuses (or the probe cannot run).
bool kvm_accepts_cpuid_after_run()
{
    struct Fd {
        int fd;
        ~Fd()
        {
            if (fd >= 0)
                ::close(fd);
        }
    };
    Fd kvm { ::open("/dev/kvm", O_RDWR | O_CLOEXEC) };
    if (kvm.fd < 0)
        return false;
    Fd vm { ::ioctl(kvm.fd, KVM_CREATE_VM, 0) };
    if (vm.fd < 0)
        return false;
    constexpr size_t MEMORY = 0x2000;
    void* memory = ::mmap(nullptr, MEMORY, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        return false;
    std::unique_ptr<void, void (*)(void*)> unmap(memory, [](void* m) { ::munmap(m, MEMORY); });
    static_cast<uint8_t*>(memory)[0x1000] = 0xF4; // hlt
    kvm_userspace_memory_region region {};
    region.memory_size = MEMORY;
    region.userspace_addr = reinterpret_cast<uint64_t>(memory);
    if (::ioctl(vm.fd, KVM_SET_USER_MEMORY_REGION, &region) != 0)
        return false;
    Fd vcpu { ::ioctl(vm.fd, KVM_CREATE_VCPU, 0) };
    if (vcpu.fd < 0)
        return false;

    constexpr uint32_t ENTRIES = 256;
    std::vector<uint8_t> buffer(sizeof(kvm_cpuid2) + ENTRIES * sizeof(kvm_cpuid_entry2));
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buffer.data());
    cpuid->nent = ENTRIES;
    if (::ioctl(kvm.fd, KVM_GET_SUPPORTED_CPUID, cpuid) != 0 || ::ioctl(vcpu.fd, KVM_SET_CPUID2, cpuid) != 0)
        return false;

    int run_size = ::ioctl(kvm.fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0)
        return false;
    void* run_map = ::mmap(nullptr, static_cast<size_t>(run_size), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.fd, 0);
    if (run_map == MAP_FAILED)
        return false;
    auto run_unmap = [&](void*) { ::munmap(run_map, static_cast<size_t>(run_size)); };
    std::unique_ptr<void, decltype(run_unmap)> unmap_run(run_map, run_unmap);
    kvm_sregs sregs {};
    if (::ioctl(vcpu.fd, KVM_GET_SREGS, &sregs) != 0)
        return false;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    kvm_regs regs {};
    regs.rip = 0x1000;
    regs.rflags = 2;
    if (::ioctl(vcpu.fd, KVM_SET_SREGS, &sregs) != 0 || ::ioctl(vcpu.fd, KVM_SET_REGS, &regs) != 0)
        return false;
    int ran = -1;
    for (int attempt = 0; attempt < 3 && ran != 0; ++attempt) // EAGAIN/EINTR once is possible here
        ran = ::ioctl(vcpu.fd, KVM_RUN, 0);
    if (ran != 0)
        return false;
    return ::ioctl(vcpu.fd, KVM_SET_CPUID2, cpuid) == 0;
}

// True when `value` has everything `pattern` has: objects member by member (extra members allowed), the
// rest equal.
bool matches(Json const& value, Json const& pattern)
{
    if (!pattern.is_object())
        return value == pattern;
    if (!value.is_object())
        return false;
    for (auto const& [key, expected] : pattern.items())
        if (!value.contains(key) || !matches(value[key], expected))
            return false;
    return true;
}

// Nothing the guest prints only when things go wrong. Under QEMU there is no status port: a guest panic
// or exception powers off and QEMU exits 0, so the console is the only witness.
void expect_clean(std::string const& console)
{
    INFO(console);
    for (auto const* bad : { "panic", "exception", "refused", "did not come online", "incomplete", "failed" })
        CHECK(console.find(bad) == std::string::npos);
}

// An ACPI_DEVICE_OST's data: CPU slot `slot` answered _OST(source, status), for `device` if one is named.
Json ost(int source, int status, int slot, std::string const& device = "")
{
    Json info { { "source", source }, { "status", status }, { "slot", std::to_string(slot) }, { "slot-type", "CPU" } };
    if (!device.empty())
        info["device"] = device;
    return Json { { "info", info } };
}

Json ok() { return Json { { "return", Json::object() } }; }

struct Boot {
    std::string smp;
    std::string cmdline;
    bool qboot { true };
    bool qmp { false };
};

// One QEMU running cpuplug's guest, its serial console on stdout; with a QMP socket if asked.
struct Qemu {
    struct SocketFile {
        std::string path;
        ~SocketFile()
        {
            if (!path.empty())
                ::unlink(path.c_str());
        }
    };
    // Declared first, so removed after QEMU is gone, also when the constructor fails.
    SocketFile socket;
    std::unique_ptr<Process> process;
    std::unique_ptr<QmpClient> qmp;
    std::deque<Json> unclaimed; // events wait_for read past

    explicit Qemu(Boot const& boot)
    {
        if (boot.qboot)
            REQUIRE_FALSE(g_qboot.empty());
        if (boot.qmp)
            socket.path = qmp_test::socket_path();
        process = std::make_unique<Process>(qmp_test::qemu_argv(
            { g_qemu, CPUPLUG_GUEST_ELF, boot.smp, boot.cmdline, "256M", boot.qboot ? g_qboot : "", socket.path }));
        if (boot.qmp) {
            qmp = QmpClient::connect_unix(socket.path, 20s);
            INFO(process->out() << process->err());
            REQUIRE(qmp);
            REQUIRE(qmp->greeting()["QMP"]["version"].contains("qemu"));
            REQUIRE(qmp->negotiate());
        }
    }
    // The members' destructors close QMP, kill QEMU if it still runs (its process group), then remove the
    // socket.

    std::string const& console() const { return process->out(); }

    bool console_has(std::string const& needle, std::chrono::milliseconds timeout = EVENT_TIMEOUT)
    {
        return process->wait_for_output(needle, timeout);
    }

    void wait_booted(int online)
    {
        auto line = "smp: " + std::to_string(online) + " of " + std::to_string(online) + " CPUs online";
        bool booted = process->wait_for_output(line, BOOT_TIMEOUT);
        INFO(process->out() << process->err());
        REQUIRE(booted);
    }

    Json execute(std::string const& command, std::optional<Json> arguments = std::nullopt)
    {
        auto reply = qmp->execute(command, std::move(arguments), std::nullopt, 10s);
        if (!reply)
            process->collect_for(500ms); // QEMU's last words, if it is exiting
        INFO(command << ": " << process->out() << process->err());
        REQUIRE(reply);
        return *reply;
    }

    Json returned(std::string const& command, std::optional<Json> arguments = std::nullopt)
    {
        auto reply = execute(command, std::move(arguments));
        INFO(command << " answered " << reply.dump());
        REQUIRE(reply.contains("return"));
        return reply["return"];
    }

    // The guest's cpu-index -> qom-path, as QEMU sees its CPUs.
    std::map<int, std::string> cpus()
    {
        std::map<int, std::string> cpus;
        for (auto const& cpu : returned("query-cpus-fast"))
            cpus[cpu["cpu-index"].get<int>()] = cpu["qom-path"].get<std::string>();
        return cpus;
    }

    // Before any device_add: a CPU added while q35 is still in its legacy interface has no insert event the
    // guest sees; the guest knows it only if the MADT, built when the firmware loads the tables, lists it.
    void wait_modern_hotplug()
    {
        bool modern = qmp_test::wait_modern_cpu_hotplug(*qmp, EVENT_TIMEOUT);
        INFO(process->out() << process->err());
        REQUIRE(modern);
    }

    // The next event `name` whose data has everything `pattern` has. Events of that name read on the way
    // are kept for later calls, in order.
    std::optional<Json> wait_for(std::string const& name, Json const& pattern)
    {
        for (auto it = unclaimed.begin(); it != unclaimed.end(); ++it)
            if ((*it)["event"] == name && matches((*it)["data"], pattern)) {
                auto event = std::move(*it);
                unclaimed.erase(it);
                return event;
            }
        auto deadline = std::chrono::steady_clock::now() + EVENT_TIMEOUT;
        for (;;) {
            auto left = deadline - std::chrono::steady_clock::now();
            if (left <= 0ms)
                return std::nullopt;
            auto event = qmp->wait_event(name, std::chrono::duration_cast<std::chrono::milliseconds>(left));
            if (!event)
                return std::nullopt;
            if (matches((*event)["data"], pattern))
                return event;
            unclaimed.push_back(std::move(*event));
        }
    }

    Json add_cpu(std::string const& id, int socket_id, int core_id, int thread_id)
    {
        return execute("device_add", Json { { "driver", CPU_TYPE }, { "id", id }, { "socket-id", socket_id },
                                         { "core-id", core_id }, { "thread-id", thread_id } });
    }

    // The hot-add's outcome: QEMU's ACPI_DEVICE_OST with the guest's _OST(1, success), and the guest's line.
    void expect_online(std::string const& id, int index)
    {
        auto slot = std::to_string(index);
        auto added = wait_for("ACPI_DEVICE_OST", ost(1, 0, index, id));
        INFO(process->out() << process->err());
        CHECK(added);
        CHECK(console_has("acpi: cpu " + slot + " (apic id " + slot + ") hot-added, online"));
    }

    // The hot-remove's outcome: "eject in progress" (0x84), DEVICE_DELETED for the CPU, the final _OST,
    // the guest's line.
    void expect_removed(std::string const& id, int index)
    {
        auto slot = std::to_string(index);
        auto progress = wait_for("ACPI_DEVICE_OST", ost(3, 0x84, index, id));
        auto deleted = wait_for("DEVICE_DELETED", Json { { "device", id } });
        // The slot is empty by then: QEMU's final _OST event names no device, only the slot.
        auto done = wait_for("ACPI_DEVICE_OST", ost(3, 0, index));
        INFO(process->out() << process->err());
        CHECK(progress);
        REQUIRE(deleted);
        CHECK((*deleted)["data"]["path"] == "/machine/peripheral/" + id);
        CHECK(done);
        CHECK(console_has("acpi: cpu " + slot + " ejected"));
    }

    // `quit`: QEMU answers, closes QMP and exits 0.
    void quit()
    {
        CHECK(execute("quit") == ok());
        CHECK(qmp->wait_closed(10s));
        auto result = process->wait(20s);
        INFO(result.out << result.err);
        CHECK_FALSE(result.timed_out);
        CHECK(result.exit_code == 0);
    }

    void expect_clean_console() { expect_clean(console()); }
};

// Boots with exit_after_boot=1 and returns QEMU's result once the guest has powered off.
test_support::ProcessResult boot_to_poweroff(Boot const& boot)
{
    Qemu qemu(boot);
    auto result = qemu.process->wait(BOOT_TIMEOUT);
    INFO("QEMU's console and stderr:\n" << result.out << result.err);
    REQUIRE_FALSE(result.timed_out);
    REQUIRE(result.exit_code == 0);
    expect_clean(result.out);
    return result;
}

} // namespace

TEST_CASE("QEMU's firmware, SeaBIOS or qboot, boots the guest, which brings up all its CPUs", "[interop][boot]")
{
    NEED_QEMU(false);
    auto qboot = GENERATE(false, true);
    DYNAMIC_SECTION((qboot ? "qboot" : "SeaBIOS"))
    {
        if (qboot)
            NEED_QEMU(true);
        auto result = boot_to_poweroff({ "4,maxcpus=8", "exit_after_boot=1 cpu_init_udelay=0", qboot, false });
        INFO(result.out << result.err);
        CHECK(result.out.find("cpuplug guest ") != std::string::npos);
        CHECK(result.out.find("boot cpu apic id 0") != std::string::npos);
        // From QEMU's MADT: every possible CPU listed, the absent ones disabled.
        CHECK(result.out.find("8 possible CPUs (4 present)") != std::string::npos);
        // No status port under QEMU: the guest reports on the console only.
        CHECK(result.out.find("status port absent") != std::string::npos);
        CHECK(result.out.find("smp: 4 of 4 CPUs online (parallel, cpu_init_udelay=0)") != std::string::npos);
    }
}

TEST_CASE("8 CPUs come up under QEMU both in parallel and one by one", "[interop][boot]")
{
    NEED_QEMU(true);
    auto parallel = GENERATE(true, false);
    auto mode = std::string(parallel ? "parallel" : "serial");
    DYNAMIC_SECTION(mode)
    {
        auto cmdline = std::string("exit_after_boot=1 cpu_init_udelay=0 cpuhp.parallel=") + (parallel ? "1" : "0");
        auto result = boot_to_poweroff({ "8", cmdline, true, false });
        INFO(result.out << result.err);
        CHECK(result.out.find("8 possible CPUs (8 present)") != std::string::npos);
        CHECK(result.out.find("smp: 8 of 8 CPUs online (" + mode + ", cpu_init_udelay=0)") != std::string::npos);
    }
}

TEST_CASE("a CPU is hot-added and hot-removed over QEMU's QMP, then its slot re-plugged", "[interop][hotplug]")
{
    NEED_QEMU(false);
    // Two sockets of two cores: socket 1 is empty; its core 0 is cpu-index 2, APIC id 2, ACPI slot 2.
    Qemu qemu({ "2,sockets=2,cores=2,maxcpus=4", "cpu_init_udelay=0", !g_qboot.empty(), true });
    qemu.wait_booted(2);
    CHECK(qemu.console().find("4 possible CPUs (2 present)") != std::string::npos);
    qemu.wait_modern_hotplug();

    bool slot_listed = false;
    for (auto const& slot : qemu.returned("query-hotpluggable-cpus"))
        if (matches(slot["props"], Json { { "socket-id", 1 }, { "core-id", 0 }, { "thread-id", 0 } })) {
            slot_listed = true;
            CHECK(slot["type"] == CPU_TYPE);
            CHECK_FALSE(slot.contains("qom-path"));
        }
    CHECK(slot_listed);
    REQUIRE(qemu.cpus().size() == 2);

    REQUIRE(qemu.add_cpu("cpu2", 1, 0, 0) == ok());
    qemu.expect_online("cpu2", 2);
    auto plugged = qemu.cpus();
    CHECK(plugged.size() == 3);
    CHECK(plugged[2] == "/machine/peripheral/cpu2");

    REQUIRE(qemu.execute("device_del", Json { { "id", "cpu2" } }) == ok());
    qemu.expect_removed("cpu2", 2);
    auto after = qemu.cpus();
    CHECK(after.size() == 2);
    CHECK(after.count(2) == 0);

    // The same slot again: QEMU reuses the vCPU it parked; the guest sees CPU 2 come back.
    if (kvm_accepts_cpuid_after_run()) {
        REQUIRE(qemu.add_cpu("cpu2", 1, 0, 0) == ok());
        auto added = qemu.wait_for("ACPI_DEVICE_OST", ost(1, 0, 2, "cpu2"));
        INFO(qemu.console() << qemu.process->err());
        CHECK(added);
        CHECK(qemu.process->wait_for_count("acpi: cpu 2 (apic id 2) hot-added, online", 2, EVENT_TIMEOUT));
        CHECK(qemu.cpus().size() == 3);
    } else {
        WARN("re-plug not tried: this host's KVM refuses KVM_SET_CPUID2 with the same table on a vCPU that "
             "has run, and QEMU re-plugging a slot sets it again on the parked vCPU (QEMU would exit: "
             "\"kvm_arch_init_vcpu failed (2): Invalid argument\")");
    }
    qemu.expect_clean_console();
    qemu.quit();
}

TEST_CASE("a whole socket is hot-added one CPU after another, then removed", "[interop][hotplug]")
{
    NEED_QEMU(false);
    // Two sockets of two cores of two threads: socket 1 (cpu-index and APIC ids 4-7) starts empty.
    Qemu qemu({ "4,sockets=2,cores=2,threads=2,maxcpus=8", "cpu_init_udelay=0", !g_qboot.empty(), true });
    qemu.wait_booted(4);
    CHECK(qemu.console().find("8 possible CPUs (4 present)") != std::string::npos);
    qemu.wait_modern_hotplug();
    REQUIRE(qemu.cpus().size() == 4);

    // Back to back, without waiting for the guest in between: it may see them in one walk or several.
    for (int index = 4; index < 8; ++index)
        REQUIRE(qemu.add_cpu("cpu" + std::to_string(index), 1, index / 2 % 2, index % 2) == ok());
    for (int index = 4; index < 8; ++index)
        qemu.expect_online("cpu" + std::to_string(index), index);
    auto plugged = qemu.cpus();
    CHECK(plugged.size() == 8);
    for (int index = 4; index < 8; ++index)
        CHECK(plugged[index] == "/machine/peripheral/cpu" + std::to_string(index));

    for (int index = 4; index < 8; ++index)
        REQUIRE(qemu.execute("device_del", Json { { "id", "cpu" + std::to_string(index) } }) == ok());
    // Each removal's events, whatever order the guest answered them in.
    for (int index = 4; index < 8; ++index)
        qemu.expect_removed("cpu" + std::to_string(index), index);
    CHECK(qemu.cpus().size() == 4);
    qemu.expect_clean_console();
    qemu.quit();
}

// ---- QMP parity: the same session against QEMU and against vmm, compared field by field ----

namespace parity {

// One exchange of the session: what was sent (or "greeting"), the reply, and the events that followed it
// before the next step.
struct Step {
    std::string label;
    Json reply;
    std::vector<Json> events;
};

// The server under test, QEMU or vmm: only its QMP socket differs.
struct Server {
    std::string name;
    std::string socket;
    std::unique_ptr<QmpClient> qmp;
    std::vector<Step> steps;
    std::function<std::string()> log;

    void connect()
    {
        qmp = QmpClient::connect_unix(socket, 20s);
        INFO(name << ": " << log());
        REQUIRE(qmp);
        steps.push_back({ "greeting", qmp->greeting(), {} });
    }

    // The events received so far, until one satisfying `done` was seen (or the timeout), then a short
    // settle so late ones of the same step are not counted for the next.
    std::vector<Json> events_until(std::function<bool(Json const&)> const& done, std::chrono::milliseconds timeout)
    {
        auto seen = [&] {
            for (auto const& event : qmp->events())
                if (done(event))
                    return true;
            return false;
        };
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!seen() && std::chrono::steady_clock::now() < deadline)
            qmp->drain(100ms);
        INFO(name << ": " << log());
        CHECK(seen());
        qmp->drain(300ms);
        auto taken = qmp->take_events();
        return { taken.begin(), taken.end() };
    }

    Json send(std::string const& label, Json const& request)
    {
        REQUIRE(qmp->send(request));
        auto reply = qmp->read_reply(15s);
        INFO(name << ": " << label << ": " << log());
        REQUIRE(reply);
        steps.push_back({ label, *reply, {} });
        return *reply;
    }

    Json execute(std::string const& label, std::string const& command, std::optional<Json> arguments = std::nullopt)
    {
        Json request { { "execute", command } };
        if (arguments)
            request["arguments"] = *arguments;
        return send(label, request);
    }

    // The step's events: those until `done` holds for one of them.
    void events(std::function<bool(Json const&)> const& done, std::chrono::milliseconds timeout = EVENT_TIMEOUT)
    {
        steps.back().events = events_until(done, timeout);
    }
};

bool is_ost(Json const& event, int source, int status, int slot)
{
    return event["event"] == "ACPI_DEVICE_OST" && event["data"]["info"]["source"] == source
        && event["data"]["info"]["status"] == status && event["data"]["info"]["slot"] == std::to_string(slot);
}

// The session, identical for both servers. Topology: 2 sockets of 2 cores, socket 1 empty.
void run_session(Server& server)
{
    // A first connection negotiates oob, runs an out-of-band query, and leaves.
    server.connect();
    server.execute("qmp_capabilities enable oob", "qmp_capabilities", Json { { "enable", { "oob" } } });
    server.send("exec-oob query-status", Json { { "exec-oob", "query-status" }, { "id", "oob-1" } });
    server.qmp.reset();

    // The second one, plain, does the rest. QEMU serves one client at a time: it accepts this one once it
    // has seen the first close.
    server.connect();
    server.execute("qmp_capabilities", "qmp_capabilities");
    server.execute("query-status", "query-status");
    server.execute("query-version", "query-version");
    server.execute("query-hotpluggable-cpus (2 of 4)", "query-hotpluggable-cpus");
    server.execute("query-cpus-fast (2)", "query-cpus-fast");

    server.execute("device_add with id", "device_add",
        Json { { "driver", CPU_TYPE }, { "id", "cpu2" }, { "socket-id", 1 }, { "core-id", 0 }, { "thread-id", 0 } });
    server.events([](Json const& e) { return is_ost(e, 1, 0, 2); });
    server.execute("device_add without id", "device_add",
        Json { { "driver", CPU_TYPE }, { "socket-id", 1 }, { "core-id", 1 }, { "thread-id", 0 } });
    server.events([](Json const& e) { return is_ost(e, 1, 0, 3); });
    server.execute("query-hotpluggable-cpus (4 of 4)", "query-hotpluggable-cpus");
    auto cpus = server.execute("query-cpus-fast (4)", "query-cpus-fast");

    // QOM: the CPUs by id, anonymous and at boot, and a lapic.
    std::vector<std::string> paths { "/machine/peripheral/cpu2", "/machine/unattached/device[0]" };
    for (auto const& cpu : cpus["return"])
        if (cpu["cpu-index"] == 3)
            paths.push_back(cpu["qom-path"].get<std::string>());
    REQUIRE(paths.size() == 3);
    paths.push_back("/machine/peripheral/cpu2/lapic");
    for (auto const& path : paths)
        server.execute("qom-list " + path, "qom-list", Json { { "path", path } });
    // Every property docs/qmp.md lists for a CPU, and the lapic's APIC ID.
    for (auto const& path : { paths[0], paths[1], paths[2] })
        for (auto const* property : { "type", "realized", "hotpluggable", "hotplugged", "parent_bus", "apic-id",
                 "node-id", "socket-id", "die-id", "module-id", "core-id", "thread-id", "lapic" })
            server.execute("qom-get " + path + " " + property, "qom-get",
                Json { { "path", path }, { "property", property } });
    server.execute("qom-get lapic id", "qom-get", Json { { "path", paths[3] }, { "property", "id" } });

    // Errors, all before the removals so the duplicate id is still there.
    server.execute("error: unknown command", "no-such-command");
    server.execute("error: device_del without id", "device_del", Json::object());
    server.execute("error: device_del id not a string", "device_del", Json { { "id", 1 } });
    server.execute("error: device_del unknown device", "device_del", Json { { "id", "nosuch" } });
    server.execute("error: device_del boot CPU", "device_del", Json { { "id", "/machine/unattached/device[0]" } });
    server.execute("error: device_add duplicate id", "device_add",
        Json { { "driver", CPU_TYPE }, { "id", "cpu2" }, { "socket-id", 1 }, { "core-id", 1 }, { "thread-id", 0 } });
    server.execute("error: device_add socket-id not an integer", "device_add",
        Json { { "driver", CPU_TYPE }, { "id", "cpu9" }, { "socket-id", "1" }, { "core-id", 1 }, { "thread-id", 0 } });
    server.execute("error: device_add without socket-id", "device_add",
        Json { { "driver", CPU_TYPE }, { "id", "cpu9" }, { "core-id", 1 }, { "thread-id", 0 } });
    server.execute("error: qom-get unknown property", "qom-get",
        Json { { "path", "/machine/peripheral/cpu2" }, { "property", "nosuch" } });
    server.send("error: exec-oob without oob", Json { { "exec-oob", "query-status" } });

    server.execute("device_del with id", "device_del", Json { { "id", "cpu2" } });
    server.events([](Json const& e) { return is_ost(e, 3, 0, 2); });
    server.execute("device_del by qom-path", "device_del", Json { { "id", paths[2] } });
    server.events([](Json const& e) { return is_ost(e, 3, 0, 3); });
    server.execute("query-cpus-fast (2 again)", "query-cpus-fast");
    server.execute("quit", "quit");
    server.steps.back().events = server.events_until([](Json const& e) { return e["event"] == "SHUTDOWN"; }, 10s);
}

// Masks what differs between any two runs, whoever serves them: timestamps, host thread ids, version
// numbers and package strings, the oob query's state. Events of a step are sorted: the guest's timing
// decides their order.
Json normalise(Step const& step)
{
    Json reply = step.reply;
    if (step.label == "greeting") {
        reply["QMP"]["version"]["qemu"] = { { "micro", 0 }, { "minor", 0 }, { "major", 0 } };
        reply["QMP"]["version"]["package"] = "";
    }
    if (step.label == "query-version") {
        reply["return"]["qemu"] = { { "micro", 0 }, { "minor", 0 }, { "major", 0 } };
        reply["return"]["package"] = "";
    }
    if (step.label.rfind("query-cpus-fast", 0) == 0)
        for (auto& cpu : reply["return"])
            cpu["thread-id"] = 0;
    if (step.label.rfind("qom-list", 0) == 0 && reply.contains("return")) {
        // name -> type; the order is QOM's hash table's in QEMU.
        Json properties = Json::object();
        for (auto const& property : reply["return"])
            properties[property["name"].get<std::string>()] = property["type"];
        reply["return"] = properties;
    }
    std::vector<std::string> events;
    for (auto event : step.events) {
        event["timestamp"] = { { "seconds", 0 }, { "microseconds", 0 } };
        events.push_back(event.dump());
    }
    std::sort(events.begin(), events.end());
    Json normalised { { "reply", reply }, { "events", Json::array() } };
    for (auto const& event : events)
        normalised["events"].push_back(Json::parse(event));
    return normalised;
}

// A known difference: a line of compare()'s report starting with `where` (the step's label and the path
// in its normalised transcript) and containing `what`, and why cpuplug keeps it. docs/qmp.md lists them.
struct Allowed {
    std::string where;
    std::string what;
    std::string reason;
};

// Every difference the comparison accepts, each with its reason. Anything else fails the case.
std::vector<Allowed> const& allowed()
{
    static std::string const own_event = "cpuplug's own event (the guest has the CPU online or offline), "
                                         "documented in docs/qmp.md; QEMU cannot know";
    static std::string const module_id = "cpuplug has QEMU 9.x's module-id (always 0); QEMU 7.2 has none";
    static std::vector<Allowed> const list {
        { "device_add with id/events", "only in vmm: CPU_ONLINE", own_event },
        { "device_add without id/events", "only in vmm: CPU_ONLINE", own_event },
        { "device_del with id/events", "only in vmm: CPU_OFFLINE", own_event },
        { "device_del by qom-path/events", "only in vmm: CPU_OFFLINE", own_event },
        { "exec-oob query-status/reply/", "",
            "cpuplug runs its read-only queries out of band (docs/qmp.md, Out-of-band execution); QEMU's only "
            "out-of-band commands (migrate-recover, migrate-pause, yank) are not cpuplug's" },
        { "query-status/reply/return/singlestep", "only in QEMU",
            "QEMU 7.2's deprecated singlestep member; QEMU 8.1 removed it, and cpuplug has none" },
        { "qom-list ", "/reply/module-id: only in vmm", module_id },
        { "qom-get ", " module-id/reply/", module_id },
        { "error: device_add socket-id not an integer/reply/error/desc", "",
            "QEMU 7.2's QMP device_add takes \"1\" for an integer property; QEMU 9.2 reads strict JSON, as "
            "cpuplug (docs/qmp.md)" },
    };
    return list;
}

// Walks both values; every place they differ is one line: the path, QEMU's value, vmm's.
void diff(Json const& qemu, Json const& vmm, std::string const& path, std::vector<std::string>& out)
{
    if (qemu.is_object() && vmm.is_object()) {
        for (auto const& [key, value] : qemu.items())
            if (!vmm.contains(key))
                out.push_back(path + "/" + key + ": only in QEMU: " + value.dump());
            else
                diff(value, vmm[key], path + "/" + key, out);
        for (auto const& [key, value] : vmm.items())
            if (!qemu.contains(key))
                out.push_back(path + "/" + key + ": only in vmm: " + value.dump());
        return;
    }
    if (qemu.is_array() && vmm.is_array()) {
        for (size_t i = 0; i < std::max(qemu.size(), vmm.size()); ++i) {
            auto here = path + "/" + std::to_string(i);
            if (i >= vmm.size())
                out.push_back(here + ": only in QEMU: " + qemu[i].dump());
            else if (i >= qemu.size())
                out.push_back(here + ": only in vmm: " + vmm[i].dump());
            else
                diff(qemu[i], vmm[i], here, out);
        }
        return;
    }
    if (qemu != vmm)
        out.push_back(path + ": QEMU " + qemu.dump() + ", vmm " + vmm.dump());
}

// The events of a step, compared as a set, each equal as JSON (members in any order: QEMU's and vmm's
// ACPI_DEVICE_OST list theirs differently): one only one side sent is "only in QEMU/vmm: NAME DATA".
void diff_events(Json const& qemu, Json const& vmm, std::string const& path, std::vector<std::string>& out)
{
    std::vector<Json> left(qemu.begin(), qemu.end());
    std::vector<Json> right(vmm.begin(), vmm.end());
    for (auto it = left.begin(); it != left.end();) {
        auto match = std::find_if(right.begin(), right.end(),
            [&](Json const& event) { return nlohmann::json(event) == nlohmann::json(*it); });
        if (match == right.end()) {
            ++it;
            continue;
        }
        right.erase(match);
        it = left.erase(it);
    }
    for (auto const& event : left)
        out.push_back(path + ": only in QEMU: " + event["event"].get<std::string>() + " " + event["data"].dump());
    for (auto const& event : right)
        out.push_back(path + ": only in vmm: " + event["event"].get<std::string>() + " " + event["data"].dump());
}

// QOM: every property vmm lists QEMU must list with the same type; QEMU's others are not cpuplug's.
void diff_qom(Json const& qemu, Json const& vmm, std::string const& path, std::vector<std::string>& out)
{
    if (!qemu.contains("return") || !vmm.contains("return")) {
        diff(qemu, vmm, path, out);
        return;
    }
    for (auto const& [name, type] : vmm["return"].items())
        if (!qemu["return"].contains(name))
            out.push_back(path + "/" + name + ": only in vmm: " + type.dump());
        else if (qemu["return"][name] != type)
            out.push_back(path + "/" + name + ": QEMU " + qemu["return"][name].dump() + ", vmm " + type.dump());
}

// Both transcripts, step by step; the lines that are not allowed.
std::vector<std::string> compare(std::vector<Step> const& qemu, std::vector<Step> const& vmm)
{
    std::vector<std::string> differences;
    REQUIRE(qemu.size() == vmm.size());
    for (size_t i = 0; i < qemu.size(); ++i) {
        REQUIRE(qemu[i].label == vmm[i].label);
        auto label = qemu[i].label;
        auto left = normalise(qemu[i]);
        auto right = normalise(vmm[i]);
        if (label.rfind("qom-list", 0) == 0)
            diff_qom(left["reply"], right["reply"], label + "/reply", differences);
        else
            diff(left["reply"], right["reply"], label + "/reply", differences);
        diff_events(left["events"], right["events"], label + "/events", differences);
    }
    std::vector<std::string> unexpected;
    for (auto const& line : differences) {
        auto known = std::find_if(allowed().begin(), allowed().end(), [&](Allowed const& a) {
            return line.rfind(a.where, 0) == 0 && line.find(a.what) != std::string::npos;
        });
        if (known == allowed().end())
            unexpected.push_back(line);
        else
            WARN("known difference: " << line << " (" << known->reason << ")");
    }
    return unexpected;
}

std::string dump(std::vector<Step> const& steps)
{
    std::string text;
    for (auto const& step : steps) {
        text += step.label + ": " + step.reply.dump() + "\n";
        for (auto const& event : step.events)
            text += "    " + event.dump() + "\n";
    }
    return text;
}

} // namespace parity

TEST_CASE("the same QMP session against QEMU and against vmm gets the same answers", "[interop][parity]")
{
    NEED_QEMU(false);
    parity::Server qemu_server;
    parity::Server vmm_server;
    {
        Qemu qemu({ "2,sockets=2,cores=2,maxcpus=4", "cpu_init_udelay=0", !g_qboot.empty(), true });
        qemu.wait_booted(2);
        qemu.wait_modern_hotplug();
        // The fixture's own connection negotiated already; the session makes its own.
        qemu.qmp.reset();
        qemu_server.name = "QEMU";
        qemu_server.socket = qemu.socket.path;
        qemu_server.log = [&] { return qemu.process->out() + qemu.process->err(); };
        parity::run_session(qemu_server);
        auto result = qemu.process->wait(20s);
        CHECK(result.exit_code == 0);
    }
    {
        qmp_test::RunningVm vm({ "--cpus", "2,maxcpus=4,sockets=2,cores=2", "--hotplug" }, 2);
        vmm_server.name = "vmm";
        vmm_server.socket = vm.socket;
        vmm_server.log = [&] { return vm.process->out() + vm.process->err(); };
        parity::run_session(vmm_server);
        auto result = vm.process->wait(20s);
        CHECK(result.exit_code == 0);
    }
    INFO("QEMU's transcript:\n" << parity::dump(qemu_server.steps) << "vmm's transcript:\n" << parity::dump(vmm_server.steps));
    auto unexpected = parity::compare(qemu_server.steps, vmm_server.steps);
    std::string report;
    for (auto const& line : unexpected)
        report += line + "\n";
    INFO("differences not in the allow-list:\n" << report);
    CHECK(unexpected.empty());
}

int main(int argc, char* argv[])
{
    if (!test_support::kvm_cases_can_run(argc, argv))
        return 77;
    bool listing = false;
    for (int i = 1; i < argc; ++i)
        listing = listing || std::string(argv[i]).rfind("--list", 0) == 0;
    g_qemu = find_qemu();
    if (g_qemu.empty())
        g_qemu_missing = std::getenv("CPUPLUG_QEMU") && *std::getenv("CPUPLUG_QEMU")
            ? "CPUPLUG_QEMU does not name an executable file"
            : "qemu-system-x86_64 is not on PATH (set CPUPLUG_QEMU to use another)";
    else
        g_qboot = qmp_test::find_qemu_data_file(g_qemu, "qboot.rom");
    if (!listing)
        std::fprintf(stderr, "QEMU: %s, qboot: %s\n", g_qemu.empty() ? "none" : g_qemu.c_str(),
            g_qboot.empty() ? "none" : g_qboot.c_str());
    return Catch::Session().run(argc, argv);
}
