// The machine's QMP commands over a fake Backend: payload shapes as QEMU writes them, and run control
// forwarded to the backend only when the request is valid.
#include "qmp/commands.hpp"

#include "fake_backend.hpp"

#include <catch2/catch.hpp>

using namespace vmm::qmp;
using qmp_test::FakeBackend;
using qmp_test::SessionHarness;
using Lines = std::vector<std::string>;

namespace {

// A negotiated session with the machine commands over `backend`.
struct MachineHarness : SessionHarness {
    FakeBackend backend;

    MachineHarness()
    {
        add_machine_commands(table, backend, version_json(QemuVersion {}, "cpuplug-test"));
        negotiate();
    }
};

CpuSlot slot(uint32_t index, uint32_t socket, uint32_t die, uint32_t core, uint32_t thread,
    std::optional<std::string> qom_path = std::nullopt, int64_t thread_id = 0)
{
    CpuSlot s;
    s.index = index;
    s.socket = socket;
    s.die = die;
    s.core = core;
    s.thread = thread;
    s.qom_path = std::move(qom_path);
    s.thread_id = thread_id;
    return s;
}

// 2 sockets x 2 dies x 1 core x 2 threads; CPUs 0, 1 and 5 present.
std::vector<CpuSlot> sample_slots()
{
    return {
        slot(0, 0, 0, 0, 0, "/machine/unattached/device[0]", 4711),
        slot(1, 0, 0, 0, 1, "/machine/unattached/device[1]", 4712),
        slot(2, 0, 1, 0, 0),
        slot(3, 0, 1, 0, 1),
        slot(4, 1, 0, 0, 0),
        slot(5, 1, 0, 0, 1, "/machine/peripheral/cpu5", 4799),
        slot(6, 1, 1, 0, 0),
        slot(7, 1, 1, 0, 1),
    };
}

} // namespace

TEST_CASE("version_json has QEMU's shape and key order", "[commands]")
{
    CHECK(to_qmp_text(version_json(QemuVersion {}, "")) == R"({"qemu": {"micro": 0, "minor": 2, "major": 9}, "package": ""})");
    CHECK(to_qmp_text(version_json(QemuVersion { 10, 1, 3 }, "p"))
        == R"({"qemu": {"micro": 3, "minor": 1, "major": 10}, "package": "p"})");
}

TEST_CASE("query-version returns the version it was given", "[commands]")
{
    MachineHarness harness;
    CHECK(harness.exchange(R"({"execute": "query-version", "id": 1})")
        == R"({"return": {"qemu": {"micro": 0, "minor": 2, "major": 9}, "package": "cpuplug-test"}, "id": 1})");
}

TEST_CASE("query-commands lists qmp_capabilities and every command in the table", "[commands]")
{
    MachineHarness harness;
    harness.table.add({ "device_add", {}, [](Json const&, Reply reply) { reply(Json::object()); } });
    auto reply = Json::parse(harness.exchange(R"({"execute": "query-commands", "id": 1})"));
    CHECK(reply["id"] == 1);
    Json expected = Json::array();
    for (auto const* name : { "qmp_capabilities", "cont", "device_add", "query-commands", "query-cpus-fast",
             "query-hotpluggable-cpus", "query-status", "query-version", "quit", "stop", "system_powerdown",
             "system_reset" })
        expected.push_back(Json { { "name", name } });
    CHECK(reply["return"] == expected);
}

TEST_CASE("query-status reports each run state", "[commands]")
{
    struct Case {
        RunState state;
        char const* reply;
    };
    auto c = GENERATE(Case { RunState::Prelaunch, R"({"return": {"running": false, "status": "prelaunch"}, "id": 1})" },
        Case { RunState::Running, R"({"return": {"running": true, "status": "running"}, "id": 1})" },
        Case { RunState::Paused, R"({"return": {"running": false, "status": "paused"}, "id": 1})" },
        Case { RunState::Shutdown, R"({"return": {"running": false, "status": "shutdown"}, "id": 1})" });
    MachineHarness harness;
    harness.backend.state = c.state;
    CHECK(harness.exchange(R"({"execute": "query-status", "id": 1})") == c.reply);
}

TEST_CASE("run states have QEMU's names", "[commands]")
{
    CHECK(std::string(to_string(RunState::Prelaunch)) == "prelaunch");
    CHECK(std::string(to_string(RunState::Running)) == "running");
    CHECK(std::string(to_string(RunState::Paused)) == "paused");
    CHECK(std::string(to_string(RunState::Shutdown)) == "shutdown");
}

TEST_CASE("cpu_props has socket, core and thread ids, and the die id only when asked", "[commands]")
{
    auto s = slot(9, 3, 2, 1, 1);
    CHECK(to_qmp_text(cpu_props(s, false)) == R"({"socket-id": 3, "core-id": 1, "thread-id": 1})");
    CHECK(to_qmp_text(cpu_props(s, true)) == R"({"socket-id": 3, "die-id": 2, "core-id": 1, "thread-id": 1})");
}

TEST_CASE("query-cpus-fast lists only present CPUs", "[commands]")
{
    MachineHarness harness;
    harness.backend.slots = sample_slots();
    CHECK(harness.exchange(R"({"execute": "query-cpus-fast", "id": 3})")
        == R"({"return": [)"
           R"({"cpu-index": 0, "qom-path": "/machine/unattached/device[0]", "thread-id": 4711, )"
           R"("props": {"socket-id": 0, "core-id": 0, "thread-id": 0}, "target": "x86_64"}, )"
           R"({"cpu-index": 1, "qom-path": "/machine/unattached/device[1]", "thread-id": 4712, )"
           R"("props": {"socket-id": 0, "core-id": 0, "thread-id": 1}, "target": "x86_64"}, )"
           R"({"cpu-index": 5, "qom-path": "/machine/peripheral/cpu5", "thread-id": 4799, )"
           R"("props": {"socket-id": 1, "core-id": 0, "thread-id": 1}, "target": "x86_64"}], "id": 3})");
}

TEST_CASE("query-cpus-fast shows die-id only on machines with dies", "[commands]")
{
    MachineHarness harness;
    harness.backend.slots = sample_slots();
    harness.backend.dies = true;
    auto reply = Json::parse(harness.exchange(R"({"execute": "query-cpus-fast"})"));
    REQUIRE(reply["return"].size() == 3);
    CHECK(to_qmp_text(reply["return"][2]["props"]) == R"({"socket-id": 1, "die-id": 0, "core-id": 0, "thread-id": 1})");
    for (auto const& cpu : reply["return"])
        CHECK(cpu["props"].contains("die-id"));
}

TEST_CASE("query-cpus-fast with no present CPU is an empty list", "[commands]")
{
    MachineHarness harness;
    harness.backend.slots = { slot(0, 0, 0, 0, 0), slot(1, 1, 0, 0, 0) };
    CHECK(harness.exchange(R"({"execute": "query-cpus-fast"})") == R"({"return": []})");
}

TEST_CASE("query-hotpluggable-cpus lists every slot, highest index first", "[commands]")
{
    MachineHarness harness;
    harness.backend.slots = { slot(0, 0, 0, 0, 0, "/machine/unattached/device[0]", 100), slot(1, 1, 0, 0, 0),
        slot(2, 1, 0, 1, 0, "/machine/peripheral/cpu2", 101) };
    harness.backend.type = "host-x86_64-cpu";
    CHECK(harness.exchange(R"({"execute": "query-hotpluggable-cpus", "id": 4})")
        == R"({"return": [)"
           R"({"type": "host-x86_64-cpu", "vcpus-count": 1, "props": {"socket-id": 1, "core-id": 1, "thread-id": 0}, )"
           R"("qom-path": "/machine/peripheral/cpu2"}, )"
           R"({"type": "host-x86_64-cpu", "vcpus-count": 1, "props": {"socket-id": 1, "core-id": 0, "thread-id": 0}}, )"
           R"({"type": "host-x86_64-cpu", "vcpus-count": 1, "props": {"socket-id": 0, "core-id": 0, "thread-id": 0}, )"
           R"("qom-path": "/machine/unattached/device[0]"}], "id": 4})");
}

TEST_CASE("query-hotpluggable-cpus matches the QMP spec's sample transcript", "[commands]")
{
    MachineHarness harness;
    harness.backend.slots = { slot(0, 0, 0, 0, 0, "/machine/unattached/device[0]", 1), slot(1, 1, 0, 0, 0) };
    CHECK(harness.exchange(R"({"execute": "query-hotpluggable-cpus", "id": 1})")
        == R"({"return": [{"type": "qemu64-x86_64-cpu", "vcpus-count": 1, "props": {"socket-id": 1, "core-id": 0, "thread-id": 0}}, )"
           R"({"type": "qemu64-x86_64-cpu", "vcpus-count": 1, "props": {"socket-id": 0, "core-id": 0, "thread-id": 0}, )"
           R"("qom-path": "/machine/unattached/device[0]"}], "id": 1})");
}

TEST_CASE("query-hotpluggable-cpus shows die-id only on machines with dies", "[commands]")
{
    MachineHarness harness;
    harness.backend.slots = sample_slots();
    SECTION("without dies")
    {
        auto reply = Json::parse(harness.exchange(R"({"execute": "query-hotpluggable-cpus"})"));
        REQUIRE(reply["return"].size() == 8);
        for (auto const& cpu : reply["return"])
            CHECK_FALSE(cpu["props"].contains("die-id"));
    }
    SECTION("with dies")
    {
        harness.backend.dies = true;
        auto reply = Json::parse(harness.exchange(R"({"execute": "query-hotpluggable-cpus"})"));
        REQUIRE(reply["return"].size() == 8);
        // Slot 7 comes first: socket 1, die 1, thread 1.
        CHECK(to_qmp_text(reply["return"][0]) == R"({"type": "qemu64-x86_64-cpu", "vcpus-count": 1, )"
                                                 R"("props": {"socket-id": 1, "die-id": 1, "core-id": 0, "thread-id": 1}})");
        CHECK(to_qmp_text(reply["return"][2]["props"]) == R"({"socket-id": 1, "die-id": 0, "core-id": 0, "thread-id": 1})");
        CHECK(reply["return"][2]["qom-path"] == "/machine/peripheral/cpu5");
        int with_path = 0;
        for (auto const& cpu : reply["return"]) {
            CHECK(cpu["props"].contains("die-id"));
            with_path += cpu.contains("qom-path") ? 1 : 0;
        }
        CHECK(with_path == 3);
    }
}

TEST_CASE("run-control commands call the backend and forward its reply", "[commands]")
{
    auto name = GENERATE(as<std::string> {}, "stop", "cont", "system_reset", "system_powerdown", "quit");
    INFO(name);
    MachineHarness harness;
    SECTION("success")
    {
        CHECK(harness.exchange(R"({"execute": ")" + name + R"(", "id": 1})") == R"({"return": {}, "id": 1})");
        CHECK(harness.backend.calls == Lines { name });
    }
    SECTION("failure")
    {
        harness.backend.failure = Error { GENERIC_ERROR, "vCPU 3 did not stop within 1000 ms" };
        CHECK(harness.exchange(R"({"execute": ")" + name + R"(", "id": 2})")
            == R"({"error": {"class": "GenericError", "desc": "vCPU 3 did not stop within 1000 ms"}, "id": 2})");
        CHECK(harness.backend.calls == Lines { name });
    }
    SECTION("answered later, with the next request waiting")
    {
        harness.backend.defer = true;
        CHECK(harness.feed(R"({"execute": ")" + name + R"(", "id": 3}{"execute": "query-status", "id": 4})").empty());
        CHECK(harness.backend.calls == Lines { name });
        REQUIRE(harness.backend.pending.size() == 1);
        harness.lines.clear();
        harness.backend.pending[0](Json::object());
        CHECK(harness.lines
            == Lines { R"({"return": {}, "id": 3})", R"({"return": {"running": true, "status": "running"}, "id": 4})" });
    }
}

TEST_CASE("run-control commands with arguments are refused without calling the backend", "[commands]")
{
    auto name = GENERATE(as<std::string> {}, "stop", "cont", "system_reset", "system_powerdown", "quit");
    INFO(name);
    MachineHarness harness;
    CHECK(harness.exchange(R"({"execute": ")" + name + R"(", "arguments": {"force": true}, "id": 1})")
        == R"({"error": {"class": "GenericError", "desc": "Parameter 'force' is unexpected"}, "id": 1})");
    CHECK(harness.backend.calls.empty());
    CHECK(harness.exchange(R"({"execute": ")" + name + R"(", "arguments": {}, "id": 2})") == R"({"return": {}, "id": 2})");
    CHECK(harness.backend.calls == Lines { name });
}

TEST_CASE("query commands with arguments are refused", "[commands]")
{
    auto name = GENERATE(as<std::string> {}, "query-version", "query-commands", "query-status", "query-cpus-fast",
        "query-hotpluggable-cpus");
    MachineHarness harness;
    CHECK(harness.exchange(R"({"execute": ")" + name + R"(", "arguments": {"verbose": 1}})")
        == R"({"error": {"class": "GenericError", "desc": "Parameter 'verbose' is unexpected"}})");
}

TEST_CASE("machine commands need negotiation first", "[commands]")
{
    SessionHarness harness;
    FakeBackend backend;
    add_machine_commands(harness.table, backend, version_json(QemuVersion {}, ""));
    CHECK(harness.exchange(R"({"execute": "stop", "id": 1})")
        == R"({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}, "id": 1})");
    CHECK(backend.calls.empty());
}
