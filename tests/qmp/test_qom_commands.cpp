// qom-list and qom-get over a fake Backend: the containers down to the CPUs, every CPU property with its
// type and value, each kind of CPU path (boot, device_add with and without an id), paths after device_add
// and device_del, QEMU's path resolution (absolute, partial, ambiguous) and QEMU's errors.
#include "qmp/commands.hpp"

#include "fake_backend.hpp"

#include <catch2/catch.hpp>

using namespace vmm::qmp;
using qmp_test::FakeBackend;
using qmp_test::SessionHarness;

namespace {

constexpr char const* CPU = "host-x86_64-cpu";

// 2 sockets x 2 cores x 1 thread: index = socket * 2 + core, APIC ID = socket << 1 | core. CPUs 0 and 1 boot.
std::vector<CpuSlot> boot_slots()
{
    std::vector<CpuSlot> slots;
    for (uint32_t index = 0; index < 4; ++index) {
        CpuSlot slot;
        slot.index = index;
        slot.socket = index / 2;
        slot.core = index % 2;
        slot.apic_id = index;
        if (index < 2) {
            slot.qom_path = "/machine/unattached/device[" + std::to_string(index) + "]";
            slot.thread_id = 1000 + index;
        }
        slots.push_back(slot);
    }
    return slots;
}

// A negotiated session with the machine, hot-plug and QOM commands over a FakeBackend of host-x86_64-cpus.
struct QomHarness : SessionHarness {
    FakeBackend backend;

    QomHarness()
    {
        backend.type = CPU;
        backend.topo = { 2, 1, 2, 1 };
        backend.slots = boot_slots();
        add_machine_commands(table, backend, version_json(QemuVersion {}, "cpuplug-test"));
        add_hotplug_commands(table, backend);
        add_qom_commands(table, backend);
        negotiate();
    }

    std::string list(std::string const& path)
    {
        return exchange(R"({"execute": "qom-list", "arguments": {"path": ")" + path + R"("}, "id": 1})");
    }

    std::string get(std::string const& path, std::string const& property)
    {
        return exchange(R"({"execute": "qom-get", "arguments": {"path": ")" + path + R"(", "property": ")"
            + property + R"("}, "id": 1})");
    }

    // What the machine does once a hot-add went through: the slot gets its QOM path (and its id).
    void plugged(uint32_t index, std::optional<std::string> id, std::string path)
    {
        backend.slots[index].device_id = std::move(id);
        backend.slots[index].qom_path = std::move(path);
    }

    // What it does once the guest ejected a CPU (DEVICE_DELETED): the slot is free again.
    void deleted(uint32_t index)
    {
        backend.slots[index].device_id.reset();
        backend.slots[index].qom_path.reset();
    }
};

std::string ok(std::string const& value) { return R"({"return": )" + value + R"(, "id": 1})"; }

std::string not_found(std::string const& path)
{
    return R"({"error": {"class": "DeviceNotFound", "desc": "Device ')" + path + R"(' not found"}, "id": 1})";
}

std::string generic(std::string const& desc)
{
    return R"({"error": {"class": "GenericError", "desc": ")" + desc + R"("}, "id": 1})";
}

std::string const CPU_PROPERTIES = R"([{"name": "type", "type": "string"}, {"name": "realized", "type": "bool"}, )"
                                   R"({"name": "hotpluggable", "type": "bool"}, {"name": "hotplugged", "type": "bool"}, )"
                                   R"({"name": "parent_bus", "type": "link<bus>"}, {"name": "apic-id", "type": "uint32"}, )"
                                   R"({"name": "node-id", "type": "int32"}, {"name": "socket-id", "type": "int32"}, )"
                                   R"({"name": "die-id", "type": "int32"}, {"name": "module-id", "type": "int32"}, )"
                                   R"({"name": "core-id", "type": "int32"}, {"name": "thread-id", "type": "int32"}, )"
                                   R"({"name": "lapic", "type": "child<kvm-apic>"}])";

} // namespace

TEST_CASE("qom-list and qom-get are in query-commands", "[qom]")
{
    QomHarness harness;
    auto reply = harness.exchange(R"({"execute": "query-commands"})");
    CHECK(reply.find(R"({"name": "qom-list"})") != std::string::npos);
    CHECK(reply.find(R"({"name": "qom-get"})") != std::string::npos);
}

TEST_CASE("qom-list walks from the root to the boot CPUs", "[qom]")
{
    QomHarness harness;
    CHECK(harness.list("/")
        == ok(R"([{"name": "type", "type": "string"}, {"name": "machine", "type": "child<cpuplug-machine>"}])"));
    CHECK(harness.list("/machine")
        == ok(R"([{"name": "type", "type": "string"}, {"name": "unattached", "type": "child<container>"}, )"
              R"({"name": "peripheral", "type": "child<container>"}, )"
              R"({"name": "peripheral-anon", "type": "child<container>"}])"));
    CHECK(harness.list("/machine/unattached")
        == ok(R"([{"name": "type", "type": "string"}, {"name": "device[0]", "type": "child<host-x86_64-cpu>"}, )"
              R"({"name": "device[1]", "type": "child<host-x86_64-cpu>"}])"));
    CHECK(harness.list("/machine/peripheral") == ok(R"([{"name": "type", "type": "string"}])"));
    CHECK(harness.list("/machine/peripheral-anon") == ok(R"([{"name": "type", "type": "string"}])"));
    CHECK(harness.list("/machine/unattached/device[0]") == ok(CPU_PROPERTIES));
    CHECK(harness.list("/machine/unattached/device[1]") == ok(CPU_PROPERTIES));
    CHECK(harness.list("/machine/unattached/device[1]/lapic")
        == ok(R"([{"name": "type", "type": "string"}, {"name": "realized", "type": "bool"}, )"
              R"({"name": "hotpluggable", "type": "bool"}, {"name": "hotplugged", "type": "bool"}, )"
              R"({"name": "parent_bus", "type": "link<bus>"}, {"name": "id", "type": "uint32"}])"));
}

TEST_CASE("qom-get reads every property of a boot CPU", "[qom]")
{
    QomHarness harness;
    std::string const path = "/machine/unattached/device[1]";
    CHECK(harness.get(path, "type") == ok(R"("host-x86_64-cpu")"));
    CHECK(harness.get(path, "realized") == ok("true"));
    CHECK(harness.get(path, "hotpluggable") == ok("true"));
    CHECK(harness.get(path, "hotplugged") == ok("false"));
    CHECK(harness.get(path, "parent_bus") == ok(R"("")"));
    CHECK(harness.get(path, "apic-id") == ok("1"));
    CHECK(harness.get(path, "node-id") == ok("-1"));
    CHECK(harness.get(path, "socket-id") == ok("0"));
    CHECK(harness.get(path, "die-id") == ok("0"));
    CHECK(harness.get(path, "module-id") == ok("0"));
    CHECK(harness.get(path, "core-id") == ok("1"));
    CHECK(harness.get(path, "thread-id") == ok("0"));
    CHECK(harness.get(path, "lapic") == ok(R"("/machine/unattached/device[1]/lapic")"));
    CHECK(harness.get(path + "/lapic", "type") == ok(R"("kvm-apic")"));
    CHECK(harness.get(path + "/lapic", "id") == ok("1"));
    CHECK(harness.get(path + "/lapic", "hotplugged") == ok("false"));
}

TEST_CASE("qom-get reads the containers' types and children", "[qom]")
{
    QomHarness harness;
    CHECK(harness.get("/", "type") == ok(R"("container")"));
    CHECK(harness.get("/", "machine") == ok(R"("/machine")"));
    CHECK(harness.get("/machine", "type") == ok(R"("cpuplug-machine")"));
    CHECK(harness.get("/machine", "peripheral-anon") == ok(R"("/machine/peripheral-anon")"));
    CHECK(harness.get("/machine/unattached", "type") == ok(R"("container")"));
    CHECK(harness.get("/machine/unattached", "device[0]") == ok(R"("/machine/unattached/device[0]")"));
}

TEST_CASE("a CPU device_add'ed with an id is under /machine/peripheral", "[qom]")
{
    QomHarness harness;
    CHECK(harness.exchange(R"({"execute": "device_add", "arguments": {"driver": "host-x86_64-cpu", "id": "cpu3", )"
                           R"("socket-id": 1, "core-id": 1, "thread-id": 0}, "id": 1})")
        == ok("{}"));
    REQUIRE(harness.backend.plugged == std::vector<std::vector<uint32_t>> { { 3 } });
    harness.plugged(3, "cpu3", "/machine/peripheral/cpu3");

    CHECK(harness.list("/machine/peripheral")
        == ok(R"([{"name": "type", "type": "string"}, {"name": "cpu3", "type": "child<host-x86_64-cpu>"}])"));
    CHECK(harness.list("/machine/peripheral/cpu3") == ok(CPU_PROPERTIES));
    CHECK(harness.get("/machine/peripheral/cpu3", "hotplugged") == ok("true"));
    CHECK(harness.get("/machine/peripheral/cpu3", "apic-id") == ok("3"));
    CHECK(harness.get("/machine/peripheral/cpu3", "socket-id") == ok("1"));
    CHECK(harness.get("/machine/peripheral/cpu3", "core-id") == ok("1"));
    CHECK(harness.get("/machine/peripheral/cpu3/lapic", "hotplugged") == ok("true"));
    // A partial path: QEMU finds the one object whose path ends so.
    CHECK(harness.get("cpu3", "apic-id") == ok("3"));
    CHECK(harness.get("peripheral/cpu3", "apic-id") == ok("3"));
    // The boot CPUs are where they were.
    CHECK(harness.list("/machine/unattached")
        == ok(R"([{"name": "type", "type": "string"}, {"name": "device[0]", "type": "child<host-x86_64-cpu>"}, )"
              R"({"name": "device[1]", "type": "child<host-x86_64-cpu>"}])"));
}

TEST_CASE("a CPU device_add'ed without an id is under /machine/peripheral-anon", "[qom]")
{
    QomHarness harness;
    CHECK(harness.exchange(R"({"execute": "device_add", "arguments": {"driver": "host-x86_64-cpu", )"
                           R"("socket-id": 1, "core-id": 0, "thread-id": 0}, "id": 1})")
        == ok("{}"));
    REQUIRE(harness.backend.plugged == std::vector<std::vector<uint32_t>> { { 2 } });
    harness.plugged(2, std::nullopt, "/machine/peripheral-anon/device[0]");

    CHECK(harness.list("/machine/peripheral-anon")
        == ok(R"([{"name": "type", "type": "string"}, {"name": "device[0]", "type": "child<host-x86_64-cpu>"}])"));
    CHECK(harness.list("/machine/peripheral-anon/device[0]") == ok(CPU_PROPERTIES));
    CHECK(harness.get("/machine/peripheral-anon/device[0]", "hotplugged") == ok("true"));
    CHECK(harness.get("/machine/peripheral-anon/device[0]", "apic-id") == ok("2"));
    CHECK(harness.get("/machine/peripheral-anon/device[0]", "lapic")
        == ok(R"("/machine/peripheral-anon/device[0]/lapic")"));
    // device[0] now names two objects, as it would in QEMU.
    CHECK(harness.list("device[0]") == generic("Path 'device[0]' is ambiguous"));
    CHECK(harness.get("device[0]", "type") == not_found("device[0]"));
    CHECK(harness.get("peripheral-anon/device[0]", "type") == ok(R"("host-x86_64-cpu")"));
}

TEST_CASE("after device_del a CPU's path is gone", "[qom]")
{
    QomHarness harness;
    harness.plugged(3, "cpu3", "/machine/peripheral/cpu3");
    CHECK(harness.exchange(R"({"execute": "device_del", "arguments": {"id": "cpu3"}, "id": 1})") == ok("{}"));
    // Until the guest ejects it, the CPU is still there.
    CHECK(harness.get("/machine/peripheral/cpu3", "realized") == ok("true"));
    harness.deleted(3);
    CHECK(harness.list("/machine/peripheral") == ok(R"([{"name": "type", "type": "string"}])"));
    CHECK(harness.list("/machine/peripheral/cpu3") == not_found("/machine/peripheral/cpu3"));
    CHECK(harness.get("/machine/peripheral/cpu3", "type") == not_found("/machine/peripheral/cpu3"));
    CHECK(harness.get("/machine/peripheral/cpu3/lapic", "id") == not_found("/machine/peripheral/cpu3/lapic"));

    SECTION("a boot CPU removed leaves /machine/unattached")
    {
        CHECK(harness.exchange(R"({"execute": "device_del", "arguments": {"id": "/machine/unattached/device[1]"}, "id": 1})")
            == ok("{}"));
        harness.deleted(1);
        CHECK(harness.list("/machine/unattached")
            == ok(R"([{"name": "type", "type": "string"}, {"name": "device[0]", "type": "child<host-x86_64-cpu>"}])"));
        CHECK(harness.list("/machine/unattached/device[1]") == not_found("/machine/unattached/device[1]"));
    }
}

TEST_CASE("qom paths resolve as QEMU's object_resolve_path", "[qom]")
{
    QomHarness harness;
    SECTION("empty components and a trailing slash are skipped")
    {
        CHECK(harness.get("//machine//unattached/device[0]/", "apic-id") == ok("0"));
        CHECK(harness.list("/machine/") == harness.list("/machine"));
    }
    SECTION("a partial path that names one object")
    {
        CHECK(harness.get("machine", "type") == ok(R"("cpuplug-machine")"));
        CHECK(harness.get("unattached/device[1]", "apic-id") == ok("1"));
        CHECK(harness.get("device[1]/lapic", "id") == ok("1"));
    }
    SECTION("a partial path that names several")
    {
        CHECK(harness.list("lapic") == generic("Path 'lapic' is ambiguous"));
        CHECK(harness.get("lapic", "id") == not_found("lapic"));
        CHECK(harness.list("") == generic("Path '' is ambiguous"));
    }
    SECTION("nothing there")
    {
        CHECK(harness.list("/x") == not_found("/x"));
        CHECK(harness.list("/machine/unattached/device[2]") == not_found("/machine/unattached/device[2]"));
        CHECK(harness.list("/machine/unattached/device[0]/type") == not_found("/machine/unattached/device[0]/type"));
        CHECK(harness.list("nothing") == not_found("nothing"));
        CHECK(harness.get("/x", "type") == not_found("/x"));
        CHECK(harness.get("machine/device[0]", "type") == not_found("machine/device[0]"));
    }
}

TEST_CASE("qom-get of an unknown property names the object's type", "[qom]")
{
    QomHarness harness;
    CHECK(harness.get("/machine/unattached/device[0]", "foo") == generic("Property 'host-x86_64-cpu.foo' not found"));
    CHECK(harness.get("/machine/unattached/device[0]", "device[0]")
        == generic("Property 'host-x86_64-cpu.device[0]' not found"));
    CHECK(harness.get("/machine/unattached/device[0]/lapic", "apic-id") == generic("Property 'kvm-apic.apic-id' not found"));
    CHECK(harness.get("/machine/unattached", "device[5]") == generic("Property 'container.device[5]' not found"));
    CHECK(harness.get("/machine", "foo") == generic("Property 'cpuplug-machine.foo' not found"));
    CHECK(harness.get("/", "") == generic("Property 'container.' not found"));
}

TEST_CASE("qom-list and qom-get check their arguments", "[qom]")
{
    QomHarness harness;
    CHECK(harness.exchange(R"({"execute": "qom-list", "id": 1})") == generic("Parameter 'path' is missing"));
    CHECK(harness.exchange(R"({"execute": "qom-list", "arguments": {"path": 1}, "id": 1})")
        == generic("Invalid parameter type for 'path', expected: string"));
    CHECK(harness.exchange(R"({"execute": "qom-list", "arguments": {"path": "/", "x": 1}, "id": 1})")
        == generic("Parameter 'x' is unexpected"));
    CHECK(harness.exchange(R"({"execute": "qom-get", "arguments": {"path": "/"}, "id": 1})")
        == generic("Parameter 'property' is missing"));
    CHECK(harness.exchange(R"({"execute": "qom-get", "arguments": {"property": "type"}, "id": 1})")
        == generic("Parameter 'path' is missing"));
    CHECK(harness.exchange(R"({"execute": "qom-get", "arguments": {"path": "/", "property": true}, "id": 1})")
        == generic("Invalid parameter type for 'property', expected: string"));
    CHECK(harness.backend.calls.empty());
}

TEST_CASE("qom on a machine with dies and threads gives each CPU its ids", "[qom]")
{
    QomHarness harness;
    CpuSlot slot;
    slot.index = 5;
    slot.socket = 1;
    slot.die = 1;
    slot.core = 0;
    slot.thread = 1;
    slot.apic_id = 0x0d;
    slot.qom_path = "/machine/peripheral/c5";
    slot.device_id = "c5";
    harness.backend.slots.push_back(slot);
    CHECK(harness.get("/machine/peripheral/c5", "socket-id") == ok("1"));
    CHECK(harness.get("/machine/peripheral/c5", "die-id") == ok("1"));
    CHECK(harness.get("/machine/peripheral/c5", "core-id") == ok("0"));
    CHECK(harness.get("/machine/peripheral/c5", "thread-id") == ok("1"));
    CHECK(harness.get("/machine/peripheral/c5", "apic-id") == ok("13"));
    CHECK(harness.get("/machine/peripheral/c5/lapic", "id") == ok("13"));
}
