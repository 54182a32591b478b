// QMP against booted guests: a real vmm process, a real socket, the embedded guest running.
#include "qmp_client.hpp"
#include "running_vm.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <thread>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;
using qmp_test::Json;
using qmp_test::QmpClient;
using namespace qmp_test;


TEST_CASE("the greeting and capability negotiation are QEMU's", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto raw = QmpClient::connect_raw_unix(vm.socket);
    REQUIRE(raw);
    auto greeting = raw->read_raw_line();
    REQUIRE(greeting);
    CHECK(greeting->ends_with("\r\n"));
    auto parsed = Json::parse(*greeting);
    CHECK(parsed["QMP"]["version"]["qemu"] == Json { { "micro", 0 }, { "minor", 2 }, { "major", 9 } });
    CHECK(std::string(parsed["QMP"]["version"]["package"]).starts_with("cpuplug "));
    CHECK(parsed["QMP"]["capabilities"] == Json::array({ "oob" }));

    // Before negotiation only qmp_capabilities works; events are not sent.
    CHECK(raw->execute("query-status", std::nullopt, 0)
        == with_id(error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"), 0));
    CHECK(raw->execute("no-such-command")
        == error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"));
    CHECK(raw->execute("qmp_capabilities", Json { { "enable", { "magic" } } })
        == error("GenericError", "Parameter 'enable[0]' does not accept value 'magic'"));
    CHECK(raw->execute("qmp_capabilities", std::nullopt, "n") == with_id(ok(), "n"));
    CHECK(raw->execute("qmp_capabilities")
        == error("CommandNotFound", "Capabilities negotiation is already complete, command ignored"));
    CHECK(raw->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });
}

TEST_CASE("every server message is one line ending in CRLF", "[qmp]")
{
    RunningVm vm({ "--cpus", "4" }, 4);
    auto c = vm.client();
    REQUIRE(c->send(Json { { "execute", "query-hotpluggable-cpus" } }));
    REQUIRE(c->send(Json { { "execute", "stop" } }));
    REQUIRE(c->send(Json { { "execute", "cont" } }));
    for (int i = 0; i < 5; ++i) { // a reply, STOP, a reply, RESUME, a reply
        auto line = c->read_raw_line();
        REQUIRE(line);
        CHECK(line->ends_with("\r\n"));
        CHECK(line->find('\n') == line->size() - 1);
        CHECK_FALSE(Json::parse(*line, nullptr, false).is_discarded());
    }
}

TEST_CASE("query-version, query-commands and query-status", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto c = vm.client();
    auto version = c->execute("query-version");
    REQUIRE(version);
    CHECK((*version)["return"] == c->greeting()["QMP"]["version"]);

    auto commands = c->execute("query-commands");
    REQUIRE(commands);
    std::set<std::string> names;
    for (auto const& command : (*commands)["return"])
        names.insert(command["name"]);
    for (char const* expected : { "qmp_capabilities", "query-version", "query-commands", "query-status",
             "query-cpus-fast", "query-hotpluggable-cpus", "stop", "cont", "system_reset", "system_powerdown", "quit",
             "qom-list", "qom-get" })
        CHECK(names.count(expected) == 1);

    CHECK(c->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });
}

TEST_CASE("query-cpus-fast names each vCPU's host thread", "[qmp]")
{
    RunningVm vm({ "--cpus", "4,sockets=2,cores=2" }, 4);
    auto c = vm.client();
    auto reply = c->execute("query-cpus-fast");
    REQUIRE(reply);
    auto const& cpus = (*reply)["return"];
    REQUIRE(cpus.size() == 4);
    for (int i = 0; i < 4; ++i) {
        auto const& cpu = cpus[i];
        CHECK(cpu["cpu-index"] == i);
        // QEMU's names: its kvmvapic device is device[1].
        CHECK(cpu["qom-path"] == "/machine/unattached/device[" + std::to_string(i == 0 ? 0 : i + 1) + "]");
        CHECK(cpu["target"] == "x86_64");
        CHECK(cpu["props"] == Json { { "socket-id", i / 2 }, { "core-id", i % 2 }, { "thread-id", 0 } });
        CHECK(thread_name(vm.process->pid(), cpu["thread-id"].get<int64_t>()) == "vcpu" + std::to_string(i));
    }
}

TEST_CASE("query-hotpluggable-cpus lists every slot of the topology, occupied ones with a QOM path", "[qmp]")
{
    {
        RunningVm vm({ "--cpus", "4,maxcpus=8,sockets=2,cores=2,threads=2" }, 4);
        auto c = vm.client();
        auto reply = c->execute("query-hotpluggable-cpus");
        REQUIRE(reply);
        auto const& slots = (*reply)["return"];
        REQUIRE(slots.size() == 8);
        for (int i = 0; i < 8; ++i) {
            int index = 7 - i; // highest index first, as QEMU
            auto const& slot = slots[i];
            CHECK(slot["type"] == "host-x86_64-cpu");
            CHECK(slot["vcpus-count"] == 1);
            CHECK(slot["props"] == Json { { "socket-id", index / 4 }, { "core-id", index / 2 % 2 }, { "thread-id", index % 2 } });
            if (index < 4)
                CHECK(slot["qom-path"] == "/machine/unattached/device[" + std::to_string(index == 0 ? 0 : index + 1) + "]");
            else
                CHECK_FALSE(slot.contains("qom-path"));
        }
    }
    {
        RunningVm vm({ "--cpus", "2,dies=2" }, 2);
        auto c = vm.client();
        auto reply = c->execute("query-hotpluggable-cpus");
        REQUIRE(reply);
        CHECK((*reply)["return"][0]["props"] == Json { { "socket-id", 0 }, { "die-id", 1 }, { "core-id", 0 }, { "thread-id", 0 } });
    }
}

TEST_CASE("id is echoed verbatim whatever its JSON type", "[qmp]")
{
    RunningVm vm({ "--cpus", "1" }, 1);
    auto c = vm.client();
    for (auto const& id : { Json("abc"), Json(7), Json(-3), Json(2.5), Json(true), Json(nullptr), Json::array({ 1, "x" }),
             Json { { "a", { { "b", Json::array() } } } } }) {
        INFO(id.dump());
        auto reply = c->execute("query-status", std::nullopt, id);
        REQUIRE(reply);
        CHECK((*reply)["id"] == id);
        auto failed = c->execute("no-such-command", std::nullopt, id);
        REQUIRE(failed);
        CHECK((*failed)["id"] == id);
        CHECK((*failed)["error"]["class"] == "CommandNotFound");
    }
}

TEST_CASE("bad input gets QEMU's errors and the connection and the VM live on", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto c = vm.client();
    auto status_ok = [&] {
        auto reply = c->execute("query-status", std::nullopt, "alive");
        return reply && (*reply)["return"]["running"] == true;
    };

    REQUIRE(c->send_raw("{\"execute\": }\n"));
    auto parse_error = c->read_reply();
    REQUIRE(parse_error);
    CHECK((*parse_error)["error"]["class"] == "GenericError");
    CHECK(std::string((*parse_error)["error"]["desc"]).starts_with("JSON parse error"));
    CHECK_FALSE(parse_error->contains("id"));
    CHECK(status_ok());

    CHECK(c->execute("query-status", Json::object(), std::nullopt) == Json { { "return", { { "running", true }, { "status", "running" } } } });
    REQUIRE(c->send_raw("[1, 2]\n"));
    CHECK(c->read_reply() == error("GenericError", "QMP input must be a JSON object"));
    REQUIRE(c->send_raw("{\"execute\": 1, \"id\": 5}"));
    CHECK(c->read_reply() == with_id(error("GenericError", "QMP input member 'execute' must be a string"), 5));
    REQUIRE(c->send_raw("{\"execute\": \"query-status\", \"arguments\": [], \"id\": 6}"));
    CHECK(c->read_reply() == with_id(error("GenericError", "QMP input member 'arguments' must be an object"), 6));
    REQUIRE(c->send_raw("{\"exec\": \"query-status\"}"));
    CHECK(c->read_reply() == error("GenericError", "QMP input member 'exec' is unexpected"));
    REQUIRE(c->send_raw("{\"id\": 1}"));
    CHECK(c->read_reply() == with_id(error("GenericError", "QMP input lacks member 'execute'"), 1));
    CHECK(c->execute("query-nothing") == error("CommandNotFound", "The command query-nothing has not been found"));
    CHECK(c->execute("query-status", Json { { "verbose", true } }) == error("GenericError", "Parameter 'verbose' is unexpected"));
    CHECK(c->execute("stop", Json { { "now", 1 } }) == error("GenericError", "Parameter 'now' is unexpected"));
    CHECK(c->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });

    // Single quotes are QEMU's extension, and work.
    REQUIRE(c->send_raw("{'execute': 'query-status', 'id': 'single'}"));
    CHECK(c->read_reply() == with_id(Json { { "return", { { "running", true }, { "status", "running" } } } }, "single"));

    // Garbage, then the QMP spec's reset bytes, then a good command: the stream recovers.
    REQUIRE(c->send_raw(std::string("{\"execute\": \"query-st\x01") + "\xff"));
    auto reset = c->read_reply();
    REQUIRE(reset);
    CHECK((*reset)["error"]["class"] == "GenericError");
    CHECK(status_ok());

    // Over the 1 MiB message cap: one error, then the next message works.
    std::string huge = "{\"execute\": \"query-status\", \"id\": \"" + std::string(2u << 20, 'x') + "\"}";
    REQUIRE(c->send_raw(huge, 30s));
    auto too_big = c->read_reply();
    REQUIRE(too_big);
    CHECK((*too_big)["error"]["desc"] == "JSON parse error, message exceeds 1048576 bytes");
    CHECK(status_ok());

    // Nested deeper than QEMU's 1024 levels.
    REQUIRE(c->send_raw(std::string(2000, '[') + std::string(2000, ']')));
    CHECK(c->read_reply() == error("GenericError", "JSON nesting depth limit exceeded"));
    CHECK(status_ok());
    CHECK(vm.process->count_in_out("smp: 2 of ") == 1); // the guest never noticed
}

TEST_CASE("stop pauses every vCPU and cont resumes them, with STOP and RESUME", "[qmp]")
{
    RunningVm vm({ "--cpus", "4" }, 4);
    auto c = vm.client();
    REQUIRE(c->send(Json { { "execute", "stop" }, { "id", 1 } }));
    auto first = c->read_raw_line();
    REQUIRE(first);
    CHECK(Json::parse(*first)["event"] == "STOP"); // the event comes before the reply, as in QEMU
    CHECK(c->read_reply() == with_id(ok(), 1));
    CHECK(c->execute("query-status") == Json { { "return", { { "running", false }, { "status", "paused" } } } });

    // Stopped for real: a power-button press is not served until the guest runs again.
    CHECK(c->execute("system_powerdown") == ok());
    CHECK(c->wait_event("POWERDOWN"));
    CHECK_FALSE(c->wait_event("SHUTDOWN", 500ms));
    CHECK(vm.process->count_in_out("power button") == 0);

    CHECK(c->execute("stop") == ok()); // already stopped: no second STOP
    CHECK(c->execute("cont") == ok());
    CHECK(c->wait_event("RESUME"));
    auto shutdown = c->wait_event("SHUTDOWN");
    REQUIRE(shutdown);
    CHECK((*shutdown)["data"] == Json { { "guest", true }, { "reason", "guest-shutdown" } });
    auto result = vm.process->wait(10s);
    CHECK(result.exit_code == 0);
    std::set<std::string> names;
    for (auto const& event : c->events())
        names.insert(event["event"]);
    CHECK(names.count("STOP") == 0);
    CHECK_FALSE(file_exists(vm.socket));
}

TEST_CASE("cont on a running VM answers {} without an event", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto c = vm.client();
    CHECK(c->execute("cont") == ok());
    c->drain(200ms);
    CHECK(c->events().empty());
}

TEST_CASE("system_reset reboots the guest on every vCPU, running or paused", "[qmp]")
{
    RunningVm vm({ "--cpus", "4" }, 4);
    auto c = vm.client();
    CHECK(c->execute("system_reset", std::nullopt, "r1") == with_id(ok(), "r1"));
    auto reset = c->wait_event("RESET");
    REQUIRE(reset);
    CHECK((*reset)["data"] == Json { { "guest", false }, { "reason", "host-qmp-system-reset" } });
    CHECK(vm.booted(4, 2));
    CHECK(vm.process->count_in_out("cpuplug guest ") == 2);

    // Reset while stopped: the VM stays stopped (prelaunch, as QEMU) until cont.
    CHECK(c->execute("stop") == ok());
    CHECK(c->execute("system_reset") == ok());
    CHECK(c->execute("query-status") == Json { { "return", { { "running", false }, { "status", "prelaunch" } } } });
    vm.process->collect_for(300ms);
    CHECK(vm.process->count_in_out("cpuplug guest ") == 2);
    CHECK(c->execute("cont") == ok());
    CHECK(c->wait_event("RESUME"));
    CHECK(vm.booted(4, 3));
    CHECK(c->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });
}

TEST_CASE("system_powerdown presses the ACPI power button and the guest powers off", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto c = vm.client();
    CHECK(c->execute("system_powerdown") == ok());
    CHECK(c->wait_event("POWERDOWN"));
    auto shutdown = c->wait_event("SHUTDOWN");
    REQUIRE(shutdown);
    CHECK((*shutdown)["data"] == Json { { "guest", true }, { "reason", "guest-shutdown" } });
    CHECK(c->wait_closed());
    auto result = vm.process->wait(10s);
    CHECK(result.exit_code == 0);
    CHECK(result.out.find("acpi: power button pressed") != std::string::npos);
}

TEST_CASE("quit sends SHUTDOWN, then its reply, and vmm exits 0 and removes the socket", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto c = vm.client();
    REQUIRE(c->send(Json { { "execute", "quit" }, { "id", "q" } }));
    auto first = c->read_raw_line();
    REQUIRE(first);
    auto event = Json::parse(*first);
    CHECK(event["event"] == "SHUTDOWN");
    CHECK(event["data"] == Json { { "guest", false }, { "reason", "host-qmp-quit" } });
    CHECK(event["timestamp"]["seconds"].is_number_integer());
    CHECK(event["timestamp"]["microseconds"].is_number_integer());
    CHECK(c->read_reply() == with_id(ok(), "q"));
    CHECK(c->wait_closed());
    auto result = vm.process->wait(10s);
    CHECK(result.exit_code == 0);
    CHECK_FALSE(file_exists(vm.socket));
}

TEST_CASE("SIGTERM ends the VM with SHUTDOWN host-signal", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, 2);
    auto c = vm.client();
    vm.process->signal(SIGTERM);
    auto shutdown = c->wait_event("SHUTDOWN");
    REQUIRE(shutdown);
    CHECK((*shutdown)["data"] == Json { { "guest", false }, { "reason", "host-signal" } });
    CHECK(vm.process->wait(10s).exit_code == 0);
    CHECK_FALSE(file_exists(vm.socket));
}

TEST_CASE("two clients: each gets its own replies in order and both get every event", "[qmp]")
{
    RunningVm vm({ "--cpus", "4" }, 4);
    auto a = vm.client();
    auto b = vm.client();
    auto late = vm.client(false); // connected, not negotiated: no events for it

    REQUIRE(a->send(Json { { "execute", "query-status" }, { "id", "a1" } }));
    REQUIRE(b->send(Json { { "execute", "stop" }, { "id", "b1" } }));
    REQUIRE(a->send(Json { { "execute", "query-cpus-fast" }, { "id", "a2" } }));
    REQUIRE(b->send(Json { { "execute", "cont" }, { "id", "b2" } }));
    auto a1 = a->read_reply();
    auto a2 = a->read_reply();
    auto b1 = b->read_reply();
    auto b2 = b->read_reply();
    REQUIRE((a1 && a2 && b1 && b2));
    CHECK((*a1)["id"] == "a1");
    CHECK((*a2)["id"] == "a2");
    CHECK((*a2)["return"].size() == 4);
    CHECK(*b1 == with_id(ok(), "b1"));
    CHECK(*b2 == with_id(ok(), "b2"));
    for (auto* client : { a.get(), b.get() }) {
        auto stop = client->wait_event("STOP");
        auto resume = client->wait_event("RESUME");
        REQUIRE((stop && resume));
        // Timestamps are in emission order.
        auto micros = [](Json const& e) {
            return e["timestamp"]["seconds"].get<int64_t>() * 1'000'000 + e["timestamp"]["microseconds"].get<int64_t>();
        };
        CHECK(micros(*stop) <= micros(*resume));
    }
    late->drain(200ms);
    CHECK(late->events().empty());
    REQUIRE(late->negotiate());
    CHECK(a->execute("stop") == ok());
    CHECK(late->wait_event("STOP"));
    CHECK(b->wait_event("STOP"));
    CHECK(a->wait_event("STOP"));
}

TEST_CASE("a client that never reads is dropped, and the VM and other clients never wait for it", "[qmp]")
{
    RunningVm vm({ "--cpus", "8,maxcpus=64" }, 8);
    auto hog = vm.client();
    auto other = vm.client();
    // Each reply is ~7 KB; thousands of them unread overflow the server's 4 MiB queue for this client.
    std::string request = "{\"execute\": \"query-hotpluggable-cpus\"}\n";
    std::string burst;
    for (int i = 0; i < 100; ++i)
        burst += request;
    bool broken = false;
    for (int round = 0; round < 40 && !broken; ++round) {
        broken = !hog->send_raw(burst, 2s);
        // The io thread answers the hog's burst (up to 100 replies of ~7 KB) before this one: instant on
        // KVM, but ~10 s under ThreadSanitizer in the nested VM's emulated CPU. What matters is that the
        // answer comes while the hog reads nothing, so the bound is generous.
        auto reply = other->execute("query-status", std::nullopt, std::nullopt, 120s);
        REQUIRE(reply);
        CHECK((*reply)["return"]["running"] == true);
    }
    // Dropped: its connection ends (after whatever the kernel buffered).
    CHECK(hog->wait_closed(30s));
    CHECK(other->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });
    INFO(vm.process->err());
    CHECK(vm.process->wait_for_output("dropping client", 5s));
}

TEST_CASE("a client that leaves mid-command leaves nothing half done", "[qmp]")
{
    RunningVm vm({ "--cpus", "4" }, 4);
    auto watcher = vm.client();
    {
        auto leaver = vm.client();
        REQUIRE(leaver->send(Json { { "execute", "stop" } }));
    } // closed before its reply
    CHECK(watcher->wait_event("STOP"));
    CHECK(watcher->execute("query-status") == Json { { "return", { { "running", false }, { "status", "paused" } } } });
    CHECK(watcher->execute("cont") == ok());
    CHECK(watcher->wait_event("RESUME"));
}

TEST_CASE("the client cap refuses the 17th client with an error and keeps the others", "[qmp]")
{
    RunningVm vm({ "--cpus", "1" }, 1);
    std::vector<std::unique_ptr<QmpClient>> clients;
    for (int i = 0; i < 16; ++i)
        clients.push_back(vm.client(false));
    auto extra = QmpClient::connect_raw_unix(vm.socket);
    REQUIRE(extra);
    auto line = extra->read_raw_line();
    REQUIRE(line);
    CHECK(Json::parse(*line)["error"]["desc"] == "Too many QMP clients (16); try again later");
    CHECK(extra->wait_closed());
    REQUIRE(clients.back()->negotiate());
    clients.pop_back();
    // A slot is free again once one leaves.
    std::unique_ptr<QmpClient> again;
    for (int attempt = 0; attempt < 50 && !again; ++attempt) {
        again = QmpClient::connect_unix(vm.socket);
        if (again && again->greeting().contains("error"))
            again.reset();
    }
    REQUIRE(again);
    CHECK(again->greeting().contains("QMP"));
}

TEST_CASE("the socket file is the owner's alone, a live one is refused and a stale one replaced", "[qmp]")
{
    RunningVm vm({ "--cpus", "1" }, 1);
    struct stat info {};
    REQUIRE(::stat(vm.socket.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);

    auto second = test_support::run_process({ CPUPLUG_VMM_BINARY, "--qmp", "unix:" + vm.socket, "--exit-after-boot" }, 30s);
    CHECK(second.exit_code == 1);
    CHECK(second.err.find("is in use by a running program") != std::string::npos);
    CHECK(vm.client()->execute("query-status"));

    // Killed without a chance to clean up, it leaves a stale file behind; the next run replaces it.
    ::kill(vm.process->pid(), SIGKILL);
    vm.process->wait(10s);
    REQUIRE(file_exists(vm.socket));
    auto third = test_support::run_process({ CPUPLUG_VMM_BINARY, "--qmp", "unix:" + vm.socket, "--exit-after-boot" }, 30s);
    CHECK(third.exit_code == 0);
    CHECK_FALSE(file_exists(vm.socket));
}

TEST_CASE("wait=on holds the guest until a client connects", "[qmp]")
{
    RunningVm vm({ "--cpus", "2" }, -1, ",server=on,wait=on");
    vm.process->collect_for(500ms);
    CHECK(vm.process->count_in_out("cpuplug guest ") == 0);
    auto c = vm.client();
    CHECK(vm.booted(2, 1));
    CHECK(c->execute("query-status") == Json { { "return", { { "running", true }, { "status", "running" } } } });
}

TEST_CASE("QMP over TCP on loopback", "[qmp]")
{
    std::string socket = socket_path();
    test_support::Process vm({ CPUPLUG_VMM_BINARY, "--cpus", "2", "--qmp", "tcp:127.0.0.1:0", "--qmp", "unix:" + socket,
        "--log-level", "info" });
    REQUIRE(vm.wait_for_output("smp: 2 of ", 60s));
    std::smatch match;
    std::string err = vm.err();
    REQUIRE(std::regex_search(err, match, std::regex("QMP listening on tcp:127\\.0\\.0\\.1:([0-9]+)")));
    auto tcp = QmpClient::connect_tcp("127.0.0.1", static_cast<uint16_t>(std::stoi(match[1])));
    REQUIRE(tcp);
    REQUIRE(tcp->negotiate());
    auto unix_client = QmpClient::connect_unix(socket);
    REQUIRE(unix_client);
    REQUIRE(unix_client->negotiate());
    CHECK(unix_client->execute("stop") == ok());
    CHECK(tcp->wait_event("STOP")); // both sockets feed the same VM
    CHECK(tcp->execute("quit") == ok());
    CHECK(vm.wait(10s).exit_code == 0);
}

TEST_CASE("a bad --qmp exits 2 with one line", "[qmp]")
{
    for (char const* bad : { "unix:", "pipe:/tmp/x", "tcp:127.0.0.1", "tcp:127.0.0.1:70000", "unix:/tmp/x,server=off",
             "unix:/tmp/x,colour=blue" }) {
        auto result = test_support::run_process({ CPUPLUG_VMM_BINARY, "--qmp", bad }, 10s);
        INFO(bad << ": " << result.err);
        CHECK(result.exit_code == 2);
        CHECK(result.err.starts_with("vmm: error: --qmp "));
        CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    }
}

TEST_CASE("qom-list and qom-get reach boot and hot-plugged CPUs at the paths query-cpus-fast gives", "[qmp][qom]")
{
    RunningVm vm({ "--cpus", "2,maxcpus=4,sockets=2,cores=2", "--hotplug" }, 2);
    auto c = vm.client();
    auto get = [&](std::string const& path, std::string const& property) {
        auto reply = c->execute("qom-get", Json { { "path", path }, { "property", property } });
        REQUIRE(reply);
        return *reply;
    };
    // qom-list as a map from name to type, or the error.
    auto list = [&](std::string const& path) {
        auto reply = c->execute("qom-list", Json { { "path", path } });
        REQUIRE(reply);
        if (!reply->contains("return"))
            return *reply;
        Json entries = Json::object();
        for (auto const& entry : (*reply)["return"])
            entries[entry["name"].get<std::string>()] = entry["type"];
        return entries;
    };
    auto value = [](Json const& v) { return Json { { "return", v } }; };
    // Hot-plug needs the guest's ACPI driver up: wait until it reports CPU 1 online.
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        auto reply = c->execute("x-query-cpuhp");
        if (reply && reply->contains("return") && (*reply)["return"]["cpus"][1]["state"] == "online")
            break;
        std::this_thread::sleep_for(20ms);
    }

    CHECK(list("/")["machine"] == "child<cpuplug-machine>");
    auto machine = list("/machine");
    CHECK(machine["unattached"] == "child<container>");
    CHECK(machine["peripheral"] == "child<container>");
    CHECK(machine["peripheral-anon"] == "child<container>");
    CHECK(list("/machine/unattached")
        == Json { { "type", "string" }, { "device[0]", "child<host-x86_64-cpu>" }, { "device[2]", "child<host-x86_64-cpu>" } });

    // Plug CPU 2 with an id and CPU 3 without.
    REQUIRE(c->execute("device_add",
                Json { { "driver", "host-x86_64-cpu" }, { "id", "cpu2" }, { "socket-id", 1 }, { "core-id", 0 },
                    { "thread-id", 0 } })
        == ok());
    REQUIRE(c->wait_event_with("CPU_ONLINE", "cpu-index", 2, 20s));
    REQUIRE(c->execute("device_add",
                Json { { "driver", "host-x86_64-cpu" }, { "socket-id", 1 }, { "core-id", 1 }, { "thread-id", 0 } })
        == ok());
    REQUIRE(c->wait_event_with("CPU_ONLINE", "cpu-index", 3, 20s));

    auto cpus = c->execute("query-cpus-fast");
    REQUIRE(cpus);
    REQUIRE((*cpus)["return"].size() == 4);
    for (auto const& cpu : (*cpus)["return"]) {
        auto path = cpu["qom-path"].get<std::string>();
        int index = cpu["cpu-index"];
        INFO(path);
        auto properties = list(path);
        for (char const* name : { "type", "realized", "hotplugged", "hotpluggable", "apic-id", "node-id", "socket-id",
                 "core-id", "thread-id", "lapic" })
            CHECK(properties.contains(name));
        CHECK(properties["socket-id"] == "int32");
        CHECK(properties["apic-id"] == "uint32");
        CHECK(get(path, "type") == value("host-x86_64-cpu"));
        CHECK(get(path, "realized") == value(true));
        CHECK(get(path, "hotplugged") == value(index >= 2));
        CHECK(get(path, "apic-id") == value(index));
        CHECK(get(path, "socket-id") == value(cpu["props"]["socket-id"]));
        CHECK(get(path, "core-id") == value(cpu["props"]["core-id"]));
        CHECK(get(path, "thread-id") == value(cpu["props"]["thread-id"]));
        CHECK(get(path, "lapic") == value(path + "/lapic"));
        CHECK(get(path + "/lapic", "id") == value(index));
    }
    CHECK(list("/machine/peripheral") == Json { { "type", "string" }, { "cpu2", "child<host-x86_64-cpu>" } });
    auto anonymous = list("/machine/peripheral-anon");
    CHECK(anonymous.size() == 2);
    CHECK(get("cpu2", "apic-id") == value(2)); // a partial path

    // Unplugged, the CPU is gone from the tree.
    REQUIRE(c->execute("device_del", Json { { "id", "cpu2" } }) == ok());
    REQUIRE(c->wait_event_with("DEVICE_DELETED", "device", "cpu2", 20s));
    CHECK(list("/machine/peripheral") == Json { { "type", "string" } });
    CHECK(list("/machine/peripheral/cpu2") == error("DeviceNotFound", "Device '/machine/peripheral/cpu2' not found"));
    CHECK(get("/machine/peripheral/cpu2", "type")
        == error("DeviceNotFound", "Device '/machine/peripheral/cpu2' not found"));
    CHECK(get("/machine/unattached/device[0]", "foo")
        == error("GenericError", "Property 'host-x86_64-cpu.foo' not found"));
}

TEST_CASE("with oob enabled exec-oob queries are answered while an in-band command waits for the guest", "[qmp]")
{
    RunningVm vm({ "--cpus", "2", "--hotplug" }, 2);
    auto client = QmpClient::connect_unix(vm.socket);
    REQUIRE(client);
    CHECK(client->greeting()["QMP"]["capabilities"] == Json::array({ "oob" }));
    CHECK(client->execute("qmp_capabilities", Json { { "enable", { "oob" } } }) == ok());
    // The guest answers x- commands once it has set up its control page, a little after its banner.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        auto query = client->execute("x-query-cpuhp");
        REQUIRE(query);
        if (query->contains("return"))
            break;
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(20ms);
    }
    REQUIRE(client->execute("stop") == ok()); // a paused guest cannot answer x-query-cpuhp
    REQUIRE(client->send(Json { { "execute", "x-query-cpuhp" }, { "id", "guest" } }));
    // The guest call is still waiting (it gives up after 30 s); out-of-band queries answer at once.
    REQUIRE(client->send(Json { { "exec-oob", "query-status" }, { "id", "oob-status" } }));
    auto status = client->read_reply(5s);
    REQUIRE(status);
    CHECK(*status == with_id(Json { { "return", { { "running", false }, { "status", "paused" } } } }, "oob-status"));
    REQUIRE(client->send(Json { { "exec-oob", "query-cpus-fast" }, { "id", "oob-cpus" } }));
    auto cpus = client->read_reply(5s);
    REQUIRE(cpus);
    CHECK((*cpus)["id"] == "oob-cpus");
    CHECK((*cpus)["return"].size() == 2);
    REQUIRE(client->send(Json { { "exec-oob", "quit" }, { "id", "oob-quit" } }));
    auto refused = client->read_reply(5s);
    REQUIRE(refused);
    CHECK(*refused == with_id(error("GenericError", "The command quit does not support OOB"), "oob-quit"));
    // Once the guest runs again it answers the call that waited.
    REQUIRE(client->send(Json { { "execute", "cont" }, { "id", "cont" } }));
    auto cont = client->read_reply(5s);
    REQUIRE(cont);
    CHECK(*cont == with_id(ok(), "cont"));
    auto guest = client->read_reply(20s);
    REQUIRE(guest);
    CHECK((*guest)["id"] == "guest");
    CHECK(guest->contains("return"));
}

TEST_CASE("without oob enabled exec-oob is refused in its turn", "[qmp]")
{
    RunningVm vm({ "--cpus", "1" }, 1);
    auto client = vm.client();
    CHECK(client->execute("query-status", std::nullopt, 1) == with_id(Json { { "return", { { "running", true }, { "status", "running" } } } }, 1));
    REQUIRE(client->send(Json { { "exec-oob", "query-status" }, { "id", 2 } }));
    auto reply = client->read_reply();
    REQUIRE(reply);
    CHECK(*reply == with_id(error("GenericError", "QMP input member 'exec-oob' is unexpected"), 2));
}
