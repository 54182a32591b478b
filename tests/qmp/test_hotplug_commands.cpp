// CPU hot-plug over QMP with a fake Backend: device_add / device_del with QEMU's checks, order and words,
// cpuplug's x-socket-* and x-cpuhp-* commands, and that the backend is called only for a valid request,
// with the slots the request names.
#include "qmp/commands.hpp"

#include "fake_backend.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace vmm::qmp;
using qmp_test::FakeBackend;
using qmp_test::SessionHarness;
using Lines = std::vector<std::string>;
using Indexes = std::vector<std::vector<uint32_t>>;
using Ids = std::vector<std::optional<std::string>>;

namespace {

constexpr char const* CPU = "host-x86_64-cpu";

// QEMU's APIC-id layout: SMT, core, die, package from the least significant bit, each as wide as its count needs.
uint32_t width(uint32_t count)
{
    uint32_t bits = 0;
    while ((1u << bits) < count)
        ++bits;
    return bits;
}

// Every possible CPU of `topo` in QEMU's index order (threads fastest, then cores, dies, sockets); those in
// `present` are boot CPUs.
std::vector<CpuSlot> make_slots(CpuTopology const& topo, std::set<uint32_t> const& present)
{
    std::vector<CpuSlot> slots;
    uint32_t core_offset = width(topo.threads);
    uint32_t die_offset = core_offset + width(topo.cores);
    uint32_t package_offset = die_offset + width(topo.dies);
    for (uint32_t socket = 0; socket < topo.sockets; ++socket)
        for (uint32_t die = 0; die < topo.dies; ++die)
            for (uint32_t core = 0; core < topo.cores; ++core)
                for (uint32_t thread = 0; thread < topo.threads; ++thread) {
                    CpuSlot slot;
                    slot.index = uint32_t(slots.size());
                    slot.socket = socket;
                    slot.die = die;
                    slot.core = core;
                    slot.thread = thread;
                    slot.apic_id = (socket << package_offset) | (die << die_offset) | (core << core_offset) | thread;
                    if (present.contains(slot.index)) {
                        slot.qom_path = "/machine/unattached/device[" + std::to_string(slot.index) + "]";
                        slot.thread_id = 1000 + slot.index;
                    }
                    slots.push_back(std::move(slot));
                }
    return slots;
}

// A CPU hot-plugged with `id` (or anonymously).
void plug(CpuSlot& slot, std::optional<std::string> id)
{
    slot.device_id = id;
    slot.qom_path = id ? "/machine/peripheral/" + *id : "/machine/peripheral-anon/device[" + std::to_string(slot.index) + "]";
    slot.thread_id = 2000 + slot.index;
}

constexpr CpuTopology FLAT { 2, 1, 2, 1 };    // 4 slots: index = socket * 2 + core; APIC ID = index
constexpr CpuTopology DIES { 2, 2, 1, 1 };    // 4 slots: index = socket * 2 + die
constexpr CpuTopology THREADS { 2, 1, 2, 2 }; // 8 slots: index = socket * 4 + core * 2 + thread
constexpr CpuTopology THREE { 2, 1, 3, 1 };   // 6 slots: APIC ID = socket << 2 | core

// A negotiated session with the machine and hot-plug commands over a FakeBackend of `host-x86_64-cpu`s.
struct HotplugHarness : SessionHarness {
    FakeBackend backend;

    explicit HotplugHarness(CpuTopology topo = FLAT, std::set<uint32_t> present = { 0, 1 })
    {
        backend.type = CPU;
        backend.topo = topo;
        backend.dies = topo.dies > 1;
        backend.slots = make_slots(topo, present);
        add_machine_commands(table, backend, version_json(QemuVersion {}, "cpuplug-test"));
        add_hotplug_commands(table, backend);
        negotiate();
    }

    // One request with `arguments` (a JSON object's text) and id 1; its single answer.
    std::string run(std::string const& command, std::string const& arguments)
    {
        return exchange(R"({"execute": ")" + command + R"(", "arguments": )" + arguments + R"(, "id": 1})");
    }

    // device_add of `CPU` with `properties` (members without braces, may be empty).
    std::string add(std::string const& properties)
    {
        return run("device_add", std::string(R"({"driver": "host-x86_64-cpu")") + (properties.empty() ? "" : ", ")
                + properties + "}");
    }

    // True when nothing reached the backend's hot-plug side.
    bool untouched() const
    {
        return backend.calls.empty() && backend.plugged.empty() && backend.unplugged.empty()
            && backend.cpuhp_requests.empty();
    }
};

std::string const OK = R"({"return": {}, "id": 1})";

std::string generic(std::string const& desc)
{
    return R"({"error": {"class": "GenericError", "desc": ")" + desc + R"("}, "id": 1})";
}

std::string not_found(std::string const& name)
{
    return R"({"error": {"class": "DeviceNotFound", "desc": "Device ')" + name + R"(' not found"}, "id": 1})";
}

struct Case {
    char const* request; // arguments, or properties for HotplugHarness::add
    char const* reply;   // the error's desc, or "" for success
};

} // namespace

// ---------------------------------------------------------------------------------------------------
// device_add: success

TEST_CASE("device_add plugs the slot its ids name, with the id", "[hotplug]")
{
    HotplugHarness harness;
    CHECK(harness.exchange(R"({"execute": "device_add", "arguments": {"driver": "host-x86_64-cpu", "id": "cpu2", )"
                           R"("socket-id": 1, "core-id": 0, "thread-id": 0}, "id": 1})")
        == R"({"return": {}, "id": 1})");
    CHECK(harness.backend.calls == Lines { "plug_cpus" });
    CHECK(harness.backend.plugged == Indexes { { 2 } });
    CHECK(harness.backend.plug_ids == Ids { "cpu2" });
}

TEST_CASE("device_add without an id plugs an anonymous CPU", "[hotplug]")
{
    HotplugHarness harness;
    CHECK(harness.add(R"("socket-id": 1, "core-id": 1, "thread-id": 0)") == OK);
    CHECK(harness.backend.plugged == Indexes { { 3 } });
    CHECK(harness.backend.plug_ids == Ids { std::nullopt });
}

TEST_CASE("device_add finds every slot of a machine with threads by its ids", "[hotplug]")
{
    auto index = GENERATE(range(2u, 8u));
    HotplugHarness harness(THREADS, { 0, 1 });
    auto const& slot = harness.backend.slots[index];
    INFO("index " << index);
    CHECK(harness.add(R"("id": "c", "socket-id": )" + std::to_string(slot.socket) + R"(, "core-id": )"
              + std::to_string(slot.core) + R"(, "thread-id": )" + std::to_string(slot.thread))
        == OK);
    CHECK(harness.backend.plugged == Indexes { { index } });
}

TEST_CASE("device_add on a machine with dies needs die-id and uses it", "[hotplug]")
{
    HotplugHarness harness(DIES, { 0 });
    SECTION("die 1 of socket 0")
    {
        CHECK(harness.add(R"("socket-id": 0, "die-id": 1, "core-id": 0, "thread-id": 0)") == OK);
        CHECK(harness.backend.plugged == Indexes { { 1 } });
    }
    SECTION("die 1 of socket 1")
    {
        CHECK(harness.add(R"("socket-id": 1, "die-id": 1, "core-id": 0, "thread-id": 0)") == OK);
        CHECK(harness.backend.plugged == Indexes { { 3 } });
    }
    SECTION("without die-id")
    {
        CHECK(harness.add(R"("socket-id": 1, "core-id": 0, "thread-id": 0)") == generic("CPU die-id is not set"));
        CHECK(harness.untouched());
    }
    SECTION("a negative die-id is not set either")
    {
        CHECK(harness.add(R"("socket-id": 1, "die-id": -1, "core-id": 0, "thread-id": 0)")
            == generic("CPU die-id is not set"));
        CHECK(harness.untouched());
    }
    SECTION("out of range")
    {
        CHECK(harness.add(R"("socket-id": 1, "die-id": 2, "core-id": 0, "thread-id": 0)")
            == generic("Invalid CPU die-id: 2 must be in range 0:1"));
        CHECK(harness.untouched());
    }
}

TEST_CASE("device_add defaults die-id and module-id to 0 where there is only one", "[hotplug]")
{
    auto properties = GENERATE(as<std::string> {}, R"("socket-id": 1, "core-id": 0, "thread-id": 0)",
        R"("socket-id": 1, "die-id": 0, "core-id": 0, "thread-id": 0)",
        R"("socket-id": 1, "die-id": -1, "core-id": 0, "thread-id": 0)",
        R"("socket-id": 1, "module-id": 0, "core-id": 0, "thread-id": 0)",
        R"("socket-id": 1, "module-id": -7, "core-id": 0, "thread-id": 0)");
    INFO(properties);
    HotplugHarness harness;
    CHECK(harness.add(properties) == OK);
    CHECK(harness.backend.plugged == Indexes { { 2 } });
}

TEST_CASE("device_add takes topology ids as JSON integers only, as QEMU 9.2 does", "[hotplug]")
{
    // QEMU 9.2's device_add reads properties with the strict QObject input visitor (no more QemuOpts strings).
    auto value = GENERATE(as<std::string> {}, R"("1")", "1.0", "1e0", "true", "null", "{}", "[1]", R"({"a": 1})");
    INFO(value);
    HotplugHarness harness;
    CHECK(harness.add(R"("socket-id": )" + value + R"(, "core-id": 0, "thread-id": 0)")
        == generic("Invalid parameter type for 'socket-id', expected: integer"));
    CHECK(harness.untouched());
}

TEST_CASE("device_add refuses an unknown property whatever its value", "[hotplug]")
{
    auto value = GENERATE(as<std::string> {}, "1", R"("x")", "true", "null", "{}", "[]", "1.5");
    INFO(value);
    HotplugHarness harness;
    CHECK(harness.add(R"("socket-id": 1, "core-id": 0, "thread-id": 0, "foo": )" + value)
        == generic("Property 'host-x86_64-cpu.foo' not found"));
    CHECK(harness.untouched());
}

TEST_CASE("device_add forwards the backend's answer, now or later", "[hotplug]")
{
    HotplugHarness harness;
    SECTION("an error")
    {
        harness.backend.failure = Error { GENERIC_ERROR, "vCPU 2 could not be created" };
        CHECK(harness.add(R"("socket-id": 1, "core-id": 0, "thread-id": 0)") == generic("vCPU 2 could not be created"));
        CHECK(harness.backend.plugged == Indexes { { 2 } });
    }
    SECTION("later, with the next request waiting")
    {
        harness.backend.defer = true;
        CHECK(harness
                  .feed(R"({"execute": "device_add", "arguments": {"driver": "host-x86_64-cpu", "socket-id": 1, )"
                        R"("core-id": 0, "thread-id": 0}, "id": 1}{"execute": "query-status", "id": 2})")
                  .empty());
        REQUIRE(harness.backend.pending.size() == 1);
        harness.lines.clear();
        harness.backend.pending[0](Json::object());
        CHECK(harness.lines == Lines { OK, R"({"return": {"running": true, "status": "running"}, "id": 2})" });
    }
}

// ---------------------------------------------------------------------------------------------------
// device_add: refusals. None of them reaches the backend.

TEST_CASE("device_add refuses a bad driver", "[hotplug]")
{
    auto c = GENERATE(Case { R"({})", "Parameter 'driver' is missing" },
        Case { R"({"id": "cpu2", "socket-id": 1, "core-id": 0, "thread-id": 0})", "Parameter 'driver' is missing" },
        // QEMU takes the driver with qdict_get_try_str(): one that is not a string is missing.
        Case { R"({"driver": 5})", "Parameter 'driver' is missing" },
        Case { R"({"driver": null, "socket-id": 1, "core-id": 0, "thread-id": 0})", "Parameter 'driver' is missing" },
        Case { R"({"driver": ["host-x86_64-cpu"]})", "Parameter 'driver' is missing" },
        Case { R"({"driver": 5, "id": "1cpu"})", "Parameter 'driver' is missing" },
        Case { R"({"driver": "virtio-net-pci"})", "'virtio-net-pci' is not a valid device model name" },
        Case { R"({"driver": "e1000", "id": "net0", "mac": "52:54:00:12:34:56"})", "'e1000' is not a valid device model name" },
        Case { R"({"driver": ""})", "'' is not a valid device model name" },
        Case { R"({"driver": "x86_64-cpu"})", "'x86_64-cpu' is not a valid device model name" },
        Case { R"({"driver": "qemu64-x86_64-cpu", "socket-id": 1, "core-id": 0, "thread-id": 0})",
            "Invalid CPU type, expected cpu type: 'host-x86_64-cpu'" },
        Case { R"({"driver": "max-x86_64-cpu", "id": "m", "socket-id": 1, "core-id": 0, "thread-id": 0})",
            "Invalid CPU type, expected cpu type: 'host-x86_64-cpu'" },
        // The type is checked by the pre-plug handler, after the properties were set.
        Case { R"({"driver": "qemu64-x86_64-cpu", "socket-id": 1, "foo": 1})", "Property 'qemu64-x86_64-cpu.foo' not found" },
        Case { R"({"driver": "qemu64-x86_64-cpu", "socket-id": "x"})", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"({"driver": "qemu64-x86_64-cpu", "socket-id": 9})", "Invalid CPU type, expected cpu type: 'host-x86_64-cpu'" },
        Case { R"({"driver": "qemu64-x86_64-cpu"})", "Invalid CPU type, expected cpu type: 'host-x86_64-cpu'" });
    INFO(c.request);
    HotplugHarness harness;
    CHECK(harness.run("device_add", c.request) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("device_add refuses an id that is not an identifier, after the driver and before the properties", "[hotplug]")
{
    // QEMU up to 9.1 checked this in QemuOpts; 9.2 lost the check and cpuplug keeps it.
    auto id = GENERATE(as<std::string> {}, "1cpu", "", "a b", "-a", "_a", ".a", "a/b", "a:b", "cpu[1]", "\\u00e9");
    INFO(id);
    HotplugHarness harness;
    auto const desc = generic("Parameter 'id' expects an identifier");
    CHECK(harness.add(R"("id": ")" + id + R"(", "socket-id": 1, "core-id": 0, "thread-id": 0)") == desc);
    CHECK(harness.add(R"("id": ")" + id + R"(", "foo": 1, "socket-id": "x")") == desc);
    CHECK(harness.run("device_add", R"({"id": ")" + id + R"("})") == generic("Parameter 'driver' is missing"));
    CHECK(harness.run("device_add", R"({"driver": "virtio-net-pci", "id": ")" + id + R"("})")
        == generic("'virtio-net-pci' is not a valid device model name"));
    CHECK(harness.untouched());
}

TEST_CASE("device_add takes any well-formed id", "[hotplug]")
{
    auto id = GENERATE(as<std::string> {}, "a", "Z", "cpu2", "a-b.c_d", "A1-2.3_4", "x--", "a.");
    INFO(id);
    HotplugHarness harness;
    CHECK(harness.add(R"("id": ")" + id + R"(", "socket-id": 1, "core-id": 0, "thread-id": 0)") == OK);
    CHECK(harness.backend.plug_ids == Ids { id });
}

TEST_CASE("device_add refuses a non-string id", "[hotplug]")
{
    HotplugHarness harness;
    CHECK(harness.add(R"("id": 5, "socket-id": 1, "core-id": 0, "thread-id": 0)")
        == generic("Invalid parameter type for 'id', expected: string"));
    CHECK(harness.untouched());
}

TEST_CASE("device_add refuses a duplicate id, after the driver and before the properties", "[hotplug]")
{
    HotplugHarness harness;
    plug(harness.backend.slots[2], "x");
    CHECK(harness.add(R"("id": "x", "socket-id": 1, "core-id": 1, "thread-id": 0)") == generic("Duplicate device ID 'x'"));
    CHECK(harness.add(R"("id": "x", "foo": 1)") == generic("Duplicate device ID 'x'"));
    CHECK(harness.run("device_add", R"({"driver": "e1000", "id": "x"})") == generic("'e1000' is not a valid device model name"));
    CHECK(harness.untouched());
    // Ids are case-sensitive, and a free one works.
    CHECK(harness.add(R"("id": "X", "socket-id": 1, "core-id": 1, "thread-id": 0)") == OK);
    CHECK(harness.backend.plug_ids == Ids { "X" });
}

TEST_CASE("device_add refuses a property the CPU does not have", "[hotplug]")
{
    auto c = GENERATE(Case { R"("foo": 1, "socket-id": 1, "core-id": 0, "thread-id": 0)", "Property 'host-x86_64-cpu.foo' not found" },
        Case { R"("socket-id": 1, "core-id": 0, "thread-id": 0, "bus": "pci.0")", "Property 'host-x86_64-cpu.bus' not found" },
        Case { R"("socket-id": 1, "core-id": 0, "thread-id": 0, "node-id": 0)", "Property 'host-x86_64-cpu.node-id' not found" },
        Case { R"("socket_id": 1)", "Property 'host-x86_64-cpu.socket_id' not found" },
        Case { R"("foo": true)", "Property 'host-x86_64-cpu.foo' not found" },
        Case { R"("foo": "")", "Property 'host-x86_64-cpu.foo' not found" },
        Case { R"("foo": 1.5)", "Property 'host-x86_64-cpu.foo' not found" },
        Case { R"("foo": null)", "Property 'host-x86_64-cpu.foo' not found" },
        // Members in the order they came: a bad value before an unknown property is reported first.
        Case { R"("socket-id": "one", "foo": 1)", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"("foo": 1, "socket-id": "one")", "Property 'host-x86_64-cpu.foo' not found" });
    INFO(c.request);
    HotplugHarness harness;
    CHECK(harness.add(c.request) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("device_add refuses topology ids that are not int32", "[hotplug]")
{
    auto c = GENERATE(Case { R"("socket-id": "abc", "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"("socket-id": "1", "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"("socket-id": true, "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"("socket-id": 1, "core-id": false, "thread-id": 0)", "Invalid parameter type for 'core-id', expected: integer" },
        Case { R"("socket-id": 1, "core-id": 0.5, "thread-id": 0)", "Invalid parameter type for 'core-id', expected: integer" },
        Case { R"("socket-id": 1, "core-id": 0, "thread-id": 0.0)", "Invalid parameter type for 'thread-id', expected: integer" },
        Case { R"("socket-id": 1, "core-id": 0, "thread-id": null)", "Invalid parameter type for 'thread-id', expected: integer" },
        Case { R"("socket-id": 1, "die-id": "zero", "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'die-id', expected: integer" },
        Case { R"("socket-id": 1, "module-id": [], "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'module-id', expected: integer" },
        Case { R"("socket-id": 2147483648, "core-id": 0, "thread-id": 0)", "Parameter 'socket-id' expects int32" },
        Case { R"("socket-id": -2147483649, "core-id": 0, "thread-id": 0)", "Parameter 'socket-id' expects int32" },
        Case { R"("socket-id": 1, "core-id": 4294967296, "thread-id": 0)", "Parameter 'core-id' expects int32" },
        Case { R"("socket-id": 9223372036854775807, "core-id": 0, "thread-id": 0)", "Parameter 'socket-id' expects int32" },
        Case { R"("socket-id": -9223372036854775808, "core-id": 0, "thread-id": 0)", "Parameter 'socket-id' expects int32" },
        // Beyond int64 QEMU's QNum holds a uint64 (or a double), which is no integer to its visitor.
        Case { R"("socket-id": 9223372036854775808, "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"("socket-id": 18446744073709551615, "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"("socket-id": 18446744073709551616, "core-id": 0, "thread-id": 0)", "Invalid parameter type for 'socket-id', expected: integer" },
        // Read as each property is set, so before a missing id is noticed.
        Case { R"("thread-id": "t")", "Invalid parameter type for 'thread-id', expected: integer" },
        Case { R"("thread-id": 2147483648)", "Parameter 'thread-id' expects int32" },
        Case { R"("socket-id": 2147483647, "core-id": 0, "thread-id": 0)", "Invalid CPU socket-id: 2147483647 must be in range 0:1" });
    INFO(c.request);
    HotplugHarness harness;
    CHECK(harness.add(c.request) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("device_add needs every topology id, in QEMU's order", "[hotplug]")
{
    auto c = GENERATE(Case { R"("core-id": 0, "thread-id": 0)", "CPU socket-id is not set" },
        Case { R"("socket-id": 1, "thread-id": 0)", "CPU core-id is not set" },
        Case { R"("socket-id": 1, "core-id": 0)", "CPU thread-id is not set" },
        Case { "", "CPU socket-id is not set" },
        Case { R"("thread-id": 0)", "CPU socket-id is not set" },
        Case { R"("socket-id": 1)", "CPU core-id is not set" },
        // Negative is QEMU's "not set" (the properties default to -1).
        Case { R"("socket-id": -1, "core-id": 0, "thread-id": 0)", "CPU socket-id is not set" },
        Case { R"("socket-id": 1, "core-id": -5, "thread-id": 0)", "CPU core-id is not set" },
        Case { R"("socket-id": 1, "core-id": 0, "thread-id": -2147483648)", "CPU thread-id is not set" },
        Case { R"("socket-id": -2147483648, "core-id": 0, "thread-id": 0)", "CPU socket-id is not set" },
        // Each level is checked whole (set, then in range) before the next.
        Case { R"("socket-id": 5, "thread-id": 0)", "Invalid CPU socket-id: 5 must be in range 0:1" },
        Case { R"("socket-id": 1, "core-id": 7)", "Invalid CPU core-id: 7 must be in range 0:1" });
    INFO(c.request);
    HotplugHarness harness;
    CHECK(harness.add(c.request) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("device_add refuses topology ids out of range", "[hotplug]")
{
    struct Range {
        CpuTopology topo;
        char const* properties;
        char const* reply;
    };
    auto c = GENERATE(Range { FLAT, R"("socket-id": 2, "core-id": 0, "thread-id": 0)", "Invalid CPU socket-id: 2 must be in range 0:1" },
        Range { FLAT, R"("socket-id": 1, "core-id": 2, "thread-id": 0)", "Invalid CPU core-id: 2 must be in range 0:1" },
        Range { FLAT, R"("socket-id": 1, "core-id": 0, "thread-id": 1)", "Invalid CPU thread-id: 1 must be in range 0:0" },
        Range { FLAT, R"("socket-id": 1, "die-id": 1, "core-id": 0, "thread-id": 0)", "Invalid CPU die-id: 1 must be in range 0:0" },
        Range { FLAT, R"("socket-id": 1, "module-id": 1, "core-id": 0, "thread-id": 0)", "Invalid CPU module-id: 1 must be in range 0:0" },
        Range { THREADS, R"("socket-id": 1, "core-id": 1, "thread-id": 2)", "Invalid CPU thread-id: 2 must be in range 0:1" },
        Range { THREE, R"("socket-id": 1, "core-id": 3, "thread-id": 0)", "Invalid CPU core-id: 3 must be in range 0:2" },
        Range { DIES, R"("socket-id": 1, "die-id": 1, "core-id": 1, "thread-id": 0)", "Invalid CPU core-id: 1 must be in range 0:0" },
        Range { FLAT, R"("socket-id": 2147483647, "core-id": 2147483647, "thread-id": 0)",
            "Invalid CPU socket-id: 2147483647 must be in range 0:1" });
    INFO(c.properties);
    HotplugHarness harness(c.topo, { 0 });
    CHECK(harness.add(c.properties) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("device_add refuses an occupied slot with its index and APIC ID", "[hotplug]")
{
    SECTION("a boot CPU")
    {
        HotplugHarness harness;
        CHECK(harness.add(R"("socket-id": 0, "core-id": 1, "thread-id": 0)") == generic("CPU[1] with APIC ID 1 exists"));
        CHECK(harness.add(R"("socket-id": 0, "core-id": 0, "thread-id": 0)") == generic("CPU[0] with APIC ID 0 exists"));
        CHECK(harness.untouched());
    }
    SECTION("a hot-plugged CPU, with an id or without")
    {
        HotplugHarness harness;
        plug(harness.backend.slots[2], "cpu2");
        plug(harness.backend.slots[3], std::nullopt);
        CHECK(harness.add(R"("id": "other", "socket-id": 1, "core-id": 0, "thread-id": 0)") == generic("CPU[2] with APIC ID 2 exists"));
        CHECK(harness.add(R"("socket-id": 1, "core-id": 1, "thread-id": 0)") == generic("CPU[3] with APIC ID 3 exists"));
        CHECK(harness.untouched());
    }
    SECTION("a CPU still being plugged, or being removed, occupies its slot")
    {
        HotplugHarness harness;
        plug(harness.backend.slots[2], "cpu2");
        harness.backend.slots[2].plugging = true;
        plug(harness.backend.slots[3], "cpu3");
        harness.backend.slots[3].unplugging = true;
        CHECK(harness.add(R"("socket-id": 1, "core-id": 0, "thread-id": 0)") == generic("CPU[2] with APIC ID 2 exists"));
        CHECK(harness.add(R"("socket-id": 1, "core-id": 1, "thread-id": 0)") == generic("CPU[3] with APIC ID 3 exists"));
        CHECK(harness.untouched());
    }
    SECTION("the APIC ID is not the index when a count is not a power of two")
    {
        HotplugHarness harness(THREE, { 0, 3 });
        CHECK(harness.add(R"("socket-id": 1, "core-id": 0, "thread-id": 0)") == generic("CPU[3] with APIC ID 4 exists"));
        CHECK(harness.untouched());
        CHECK(harness.add(R"("socket-id": 1, "core-id": 2, "thread-id": 0)") == OK);
        CHECK(harness.backend.plugged == Indexes { { 5 } });
    }
    SECTION("threads and dies")
    {
        HotplugHarness threads(THREADS, { 0, 1, 2, 3, 6 });
        CHECK(threads.add(R"("socket-id": 1, "core-id": 1, "thread-id": 0)") == generic("CPU[6] with APIC ID 6 exists"));
        HotplugHarness dies(DIES, { 0, 3 });
        CHECK(dies.add(R"("socket-id": 1, "die-id": 1, "core-id": 0, "thread-id": 0)") == generic("CPU[3] with APIC ID 3 exists"));
        CHECK(threads.untouched());
        CHECK(dies.untouched());
    }
}

TEST_CASE("device_add with ids in range but no such slot says which CPU it looked for", "[hotplug]")
{
    // A topology that promises more than the slots: QEMU's message for a CPU not among the possible ones.
    HotplugHarness harness;
    harness.backend.slots.pop_back();
    CHECK(harness.add(R"("socket-id": 1, "core-id": 1, "thread-id": 0)")
        == generic("Invalid CPU [socket: 1, die: 0, module: 0, core: 1, thread: 0] with APIC ID 3, valid index range 0:2"));
    harness.backend.slots.clear();
    CHECK(harness.add(R"("socket-id": 0, "core-id": 0, "thread-id": 0)")
        == generic("Invalid CPU [socket: 0, die: 0, module: 0, core: 0, thread: 0] with APIC ID 0, valid index range 0:-1"));
    CHECK(harness.untouched());
}

TEST_CASE("device_add with hotplug off says so, after the properties and before the CPU type", "[hotplug]")
{
    HotplugHarness harness;
    harness.backend.hotplug = false;
    auto const off = generic("CPU hotplug is off: start vmm with --hotplug");
    CHECK(harness.add(R"("id": "c", "socket-id": 1, "core-id": 0, "thread-id": 0)") == off);
    CHECK(harness.add(R"("socket-id": 9)") == off);
    CHECK(harness.add("") == off);
    CHECK(harness.run("device_add", R"({"driver": "qemu64-x86_64-cpu", "socket-id": 1, "core-id": 0, "thread-id": 0})") == off);
    CHECK(harness.add(R"("foo": 1)") == generic("Property 'host-x86_64-cpu.foo' not found"));
    CHECK(harness.add(R"("core-id": "x")") == generic("Invalid parameter type for 'core-id', expected: integer"));
    CHECK(harness.run("device_add", R"({"driver": "e1000"})") == generic("'e1000' is not a valid device model name"));
    CHECK(harness.add(R"("id": "1")") == generic("Parameter 'id' expects an identifier"));
    CHECK(harness.untouched());
}

// ---------------------------------------------------------------------------------------------------
// device_del

TEST_CASE("device_del removes a CPU named by its id or its QOM path", "[hotplug]")
{
    HotplugHarness harness;
    plug(harness.backend.slots[2], "cpu2");
    plug(harness.backend.slots[3], std::nullopt);
    struct Name {
        char const* id;
        uint32_t index;
    };
    auto c = GENERATE(Name { "cpu2", 2 }, Name { "/machine/peripheral/cpu2", 2 },
        Name { "/machine/peripheral-anon/device[3]", 3 }, Name { "/machine/unattached/device[1]", 1 });
    INFO(c.id);
    CHECK(harness.exchange(std::string(R"({"execute": "device_del", "arguments": {"id": ")") + c.id + R"("}, "id": 1})")
        == R"({"return": {}, "id": 1})");
    CHECK(harness.backend.calls == Lines { "unplug_cpus" });
    CHECK(harness.backend.unplugged == Indexes { { c.index } });
}

TEST_CASE("device_del of a name nothing has is DeviceNotFound", "[hotplug]")
{
    auto id = GENERATE(as<std::string> {}, "x", "cpu3", "", "CPU2", "peripheral/cpu2", "/machine/peripheral/cpu3",
        "/machine/unattached/device[2]", "/machine/unattached/device[9]", "/machine", "/machine/peripheral/");
    INFO(id);
    HotplugHarness harness;
    plug(harness.backend.slots[2], "cpu2");
    CHECK(harness.run("device_del", R"({"id": ")" + id + R"("})") == not_found(id));
    // Before the hotplug switch is looked at, as QEMU looks the device up first.
    harness.backend.hotplug = false;
    CHECK(harness.run("device_del", R"({"id": ")" + id + R"("})") == not_found(id));
    CHECK(harness.untouched());
}

TEST_CASE("device_del of the boot CPU is refused", "[hotplug]")
{
    HotplugHarness harness;
    CHECK(harness.run("device_del", R"({"id": "/machine/unattached/device[0]"})") == generic("Boot CPU is unpluggable"));
    CHECK(harness.untouched());
}

TEST_CASE("device_del of a CPU already being removed names it as the client did", "[hotplug]")
{
    HotplugHarness harness;
    plug(harness.backend.slots[2], "cpu2");
    harness.backend.slots[2].unplugging = true;
    harness.backend.slots[1].unplugging = true;
    CHECK(harness.run("device_del", R"({"id": "cpu2"})") == generic("Device cpu2 is already in the process of unplug"));
    CHECK(harness.run("device_del", R"({"id": "/machine/peripheral/cpu2"})")
        == generic("Device /machine/peripheral/cpu2 is already in the process of unplug"));
    CHECK(harness.run("device_del", R"({"id": "/machine/unattached/device[1]"})")
        == generic("Device /machine/unattached/device[1] is already in the process of unplug"));
    CHECK(harness.untouched());
}

TEST_CASE("device_del of a CPU still being plugged is accepted, as by QEMU", "[hotplug]")
{
    HotplugHarness harness;
    plug(harness.backend.slots[2], "cpu2");
    harness.backend.slots[2].plugging = true;
    plug(harness.backend.slots[3], std::nullopt);
    harness.backend.slots[3].plugging = true;
    CHECK(harness.run("device_del", R"({"id": "cpu2"})") == OK);
    CHECK(harness.run("device_del", R"({"id": "/machine/peripheral-anon/device[3]"})") == OK);
    CHECK(harness.backend.unplugged == Indexes { { 2 }, { 3 } });
}

TEST_CASE("device_del of a CPU still being plugged keeps the other refusals", "[hotplug]")
{
    HotplugHarness harness;
    plug(harness.backend.slots[2], "cpu2");
    harness.backend.slots[2].plugging = true;
    SECTION("already being removed")
    {
        harness.backend.slots[2].plugging = false;
        harness.backend.slots[2].unplugging = true;
        CHECK(harness.run("device_del", R"({"id": "cpu2"})") == generic("Device cpu2 is already in the process of unplug"));
    }
    SECTION("the last CPU")
    {
        harness.backend.slots[0].unplugging = true;
        harness.backend.slots[1].unplugging = true;
        CHECK(harness.run("device_del", R"({"id": "cpu2"})") == generic("cannot remove the last CPU"));
    }
    CHECK(harness.untouched());
}

TEST_CASE("device_del with hotplug off says so", "[hotplug]")
{
    HotplugHarness harness;
    harness.backend.hotplug = false;
    plug(harness.backend.slots[2], "cpu2");
    auto const off = generic("CPU hot unplug is off: start vmm with --hotplug");
    CHECK(harness.run("device_del", R"({"id": "cpu2"})") == off);
    CHECK(harness.run("device_del", R"({"id": "/machine/unattached/device[1]"})") == off);
    CHECK(harness.run("device_del", R"({"id": "/machine/unattached/device[0]"})") == off);
    CHECK(harness.untouched());
}

TEST_CASE("device_del never removes the last CPU", "[hotplug]")
{
    // Only reachable without the boot CPU, which can never go: a machine the checks must still not empty.
    SECTION("the only one")
    {
        HotplugHarness harness(FLAT, { 2 });
        CHECK(harness.run("device_del", R"({"id": "/machine/unattached/device[2]"})") == generic("cannot remove the last CPU"));
        CHECK(harness.untouched());
    }
    SECTION("the only one not already on its way out")
    {
        HotplugHarness harness(FLAT, { 2, 3 });
        harness.backend.slots[3].unplugging = true;
        CHECK(harness.run("device_del", R"({"id": "/machine/unattached/device[2]"})") == generic("cannot remove the last CPU"));
        CHECK(harness.untouched());
    }
    SECTION("one of two")
    {
        HotplugHarness harness(FLAT, { 2, 3 });
        CHECK(harness.run("device_del", R"({"id": "/machine/unattached/device[2]"})") == OK);
        CHECK(harness.backend.unplugged == Indexes { { 2 } });
    }
}

TEST_CASE("device_del checks its argument", "[hotplug]")
{
    auto c = GENERATE(Case { "{}", "Parameter 'id' is missing" },
        Case { R"({"id": 2})", "Invalid parameter type for 'id', expected: string" },
        Case { R"({"id": null})", "Invalid parameter type for 'id', expected: string" },
        Case { R"({"id": "cpu2", "force": true})", "Parameter 'force' is unexpected" });
    INFO(c.request);
    HotplugHarness harness;
    plug(harness.backend.slots[2], "cpu2");
    CHECK(harness.run("device_del", c.request) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("device_del forwards the backend's error", "[hotplug]")
{
    HotplugHarness harness;
    plug(harness.backend.slots[2], "cpu2");
    harness.backend.failure = Error { GENERIC_ERROR, "the guest has no hotplug driver" };
    CHECK(harness.run("device_del", R"({"id": "cpu2"})") == generic("the guest has no hotplug driver"));
    CHECK(harness.backend.unplugged == Indexes { { 2 } });
}

// ---------------------------------------------------------------------------------------------------
// x-socket-add, x-socket-del

TEST_CASE("x-socket-add plugs the free slots of the socket, anonymously, in one call", "[hotplug]")
{
    HotplugHarness harness(THREADS, { 0, 1, 2, 3, 5 });
    CHECK(harness.exchange(R"({"execute": "x-socket-add", "arguments": {"socket-id": 1}, "id": 1})")
        == R"({"return": {}, "id": 1})");
    CHECK(harness.backend.calls == Lines { "plug_cpus" });
    CHECK(harness.backend.plugged == Indexes { { 4, 6, 7 } });
    CHECK(harness.backend.plug_ids == Ids { std::nullopt });
}

TEST_CASE("x-socket-add on a machine with dies takes every die of the socket", "[hotplug]")
{
    HotplugHarness harness(DIES, { 0 });
    CHECK(harness.run("x-socket-add", R"({"socket-id": 0})") == OK);
    CHECK(harness.run("x-socket-add", R"({"socket-id": 1})") == OK);
    CHECK(harness.backend.plugged == Indexes { { 1 }, { 2, 3 } });
}

TEST_CASE("x-socket-add refusals", "[hotplug]")
{
    auto c = GENERATE(Case { R"({"socket-id": 0})", "socket-id 0 has no free CPU slot" },
        Case { R"({"socket-id": 2})", "Invalid CPU socket-id: 2 must be in range 0:1" },
        Case { R"({"socket-id": -1})", "Invalid CPU socket-id: -1 must be in range 0:1" },
        Case { R"({"socket-id": 4294967296})", "Invalid CPU socket-id: 4294967296 must be in range 0:1" },
        Case { R"({"socket-id": 18446744073709551615})", "Invalid CPU socket-id: 18446744073709551615 must be in range 0:1" },
        Case { R"({"socket-id": -9223372036854775808})", "Invalid CPU socket-id: -9223372036854775808 must be in range 0:1" },
        Case { "{}", "Parameter 'socket-id' is missing" },
        Case { R"({"socket-id": "1"})", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"({"socket-id": 1.0})", "Invalid parameter type for 'socket-id', expected: integer" },
        Case { R"({"socket-id": 1, "id": "s"})", "Parameter 'id' is unexpected" });
    INFO(c.request);
    HotplugHarness harness(FLAT, { 0, 1 });
    CHECK(harness.run("x-socket-add", c.request) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("x-socket-add with hotplug off says so before looking at the socket", "[hotplug]")
{
    auto socket = GENERATE(as<std::string> {}, "0", "1", "7", "-1");
    HotplugHarness harness;
    harness.backend.hotplug = false;
    CHECK(harness.run("x-socket-add", R"({"socket-id": )" + socket + "}") == generic("CPU hotplug is off: start vmm with --hotplug"));
    CHECK(harness.untouched());
}

TEST_CASE("x-socket-del releases the present CPUs of the socket in one call", "[hotplug]")
{
    HotplugHarness harness(THREADS, { 0, 1 });
    plug(harness.backend.slots[4], "a");
    plug(harness.backend.slots[7], std::nullopt);
    CHECK(harness.exchange(R"({"execute": "x-socket-del", "arguments": {"socket-id": 1}, "id": 1})")
        == R"({"return": {}, "id": 1})");
    CHECK(harness.backend.calls == Lines { "unplug_cpus" });
    CHECK(harness.backend.unplugged == Indexes { { 4, 7 } });
}

TEST_CASE("x-socket-del removes a CPU of the socket still being plugged with the others", "[hotplug]")
{
    HotplugHarness harness(THREADS, { 0, 1, 2 });
    plug(harness.backend.slots[4], "a");
    plug(harness.backend.slots[6], std::nullopt);
    harness.backend.slots[6].plugging = true;
    CHECK(harness.run("x-socket-del", R"({"socket-id": 1})") == OK);
    CHECK(harness.backend.unplugged == Indexes { { 4, 6 } });
}

TEST_CASE("x-socket-del refusals", "[hotplug]")
{
    HotplugHarness harness(THREADS, { 0, 1, 2 });
    SECTION("the boot CPU's socket")
    {
        CHECK(harness.run("x-socket-del", R"({"socket-id": 0})") == generic("Boot CPU is unpluggable"));
    }
    SECTION("a socket with no CPU")
    {
        CHECK(harness.run("x-socket-del", R"({"socket-id": 1})") == generic("socket-id 1 has no CPU to remove"));
    }
    SECTION("out of range")
    {
        CHECK(harness.run("x-socket-del", R"({"socket-id": 2})") == generic("Invalid CPU socket-id: 2 must be in range 0:1"));
        CHECK(harness.run("x-socket-del", R"({"socket-id": -3})") == generic("Invalid CPU socket-id: -3 must be in range 0:1"));
        CHECK(harness.run("x-socket-del", R"({"socket-id": 18446744073709551615})")
            == generic("Invalid CPU socket-id: 18446744073709551615 must be in range 0:1"));
    }
    SECTION("a CPU of it already being removed")
    {
        plug(harness.backend.slots[4], "a");
        plug(harness.backend.slots[5], "b");
        harness.backend.slots[5].unplugging = true;
        CHECK(harness.run("x-socket-del", R"({"socket-id": 1})") == generic("Device b is already in the process of unplug"));
    }
    SECTION("hotplug off, whatever the socket")
    {
        harness.backend.hotplug = false;
        plug(harness.backend.slots[4], "a");
        auto socket = GENERATE(as<std::string> {}, "0", "1", "2");
        CHECK(harness.run("x-socket-del", R"({"socket-id": )" + socket + "}")
            == generic("CPU hot unplug is off: start vmm with --hotplug"));
    }
    SECTION("arguments")
    {
        CHECK(harness.run("x-socket-del", "{}") == generic("Parameter 'socket-id' is missing"));
        CHECK(harness.run("x-socket-del", R"({"socket-id": true})")
            == generic("Invalid parameter type for 'socket-id', expected: integer"));
    }
    CHECK(harness.untouched());
}

TEST_CASE("x-socket-del never removes the last CPU", "[hotplug]")
{
    HotplugHarness harness(FLAT, { 2, 3 });
    CHECK(harness.run("x-socket-del", R"({"socket-id": 1})") == generic("cannot remove the last CPU"));
    CHECK(harness.untouched());
}

// ---------------------------------------------------------------------------------------------------
// x-cpuhp-*

TEST_CASE("x-query-cpuhp asks the backend and forwards its answer", "[hotplug]")
{
    HotplugHarness harness;
    CHECK(harness.exchange(R"({"execute": "x-query-cpuhp", "id": 1})") == R"({"return": {}, "id": 1})");
    REQUIRE(harness.backend.cpuhp_requests.size() == 1);
    CHECK(harness.backend.cpuhp_requests[0].kind == CpuhpRequest::Kind::Query);
    harness.backend.failure = Error { GENERIC_ERROR, "the guest's control page is not ready" };
    CHECK(harness.exchange(R"({"execute": "x-query-cpuhp", "id": 1})") == generic("the guest's control page is not ready"));
    CHECK(harness.backend.cpuhp_requests.size() == 2);
    CHECK(harness.run("x-query-cpuhp", R"({"cpu": 1})") == generic("Parameter 'cpu' is unexpected"));
    CHECK(harness.backend.cpuhp_requests.size() == 2);
}

TEST_CASE("x-cpuhp-set-target and x-cpuhp-fail forward the CPU and the state, a number or a name", "[hotplug]")
{
    struct Target {
        char const* name;
        CpuhpRequest::Kind kind;
    };
    auto command = GENERATE(Target { "x-cpuhp-set-target", CpuhpRequest::Kind::SetTarget },
        Target { "x-cpuhp-fail", CpuhpRequest::Kind::SetFail });
    INFO(command.name);
    HotplugHarness harness(THREADS, { 0, 1 });
    CHECK(harness.exchange(std::string(R"({"execute": ")") + command.name
              + R"(", "arguments": {"cpu-index": 1, "state": "offline"}, "id": 1})")
        == R"({"return": {}, "id": 1})");
    CHECK(harness.run(command.name, R"({"cpu-index": 7, "state": 42})") == OK);
    CHECK(harness.run(command.name, R"({"state": -1, "cpu-index": 0})") == OK);
    CHECK(harness.run(command.name, R"({"cpu-index": 2, "state": "none"})") == OK);
    REQUIRE(harness.backend.cpuhp_requests.size() == 4);
    auto const& requests = harness.backend.cpuhp_requests;
    for (auto const& request : requests)
        CHECK(request.kind == command.kind);
    CHECK(requests[0].cpu == 1);
    CHECK(requests[0].state == Json("offline"));
    CHECK(requests[1].cpu == 7);
    CHECK(requests[1].state == Json(42));
    CHECK(requests[2].cpu == 0);
    CHECK(requests[2].state == Json(-1));
    CHECK(requests[3].cpu == 2);
    CHECK(requests[3].state == Json("none"));
    // The backend's answer (an errno from the guest, say) goes back as it is.
    harness.backend.failure = Error { GENERIC_ERROR, "cpu 1: step 'sched:active' failed: EBUSY (-16)" };
    CHECK(harness.run(command.name, R"({"cpu-index": 1, "state": 3})") == generic("cpu 1: step 'sched:active' failed: EBUSY (-16)"));
}

TEST_CASE("x-cpuhp-set-target and x-cpuhp-fail refusals", "[hotplug]")
{
    auto name = GENERATE(as<std::string> {}, "x-cpuhp-set-target", "x-cpuhp-fail");
    auto c = GENERATE(Case { R"({"cpu-index": 8, "state": 1})", "Invalid cpu-index: 8 must be in range 0:7" },
        Case { R"({"cpu-index": -1, "state": 1})", "Invalid cpu-index: -1 must be in range 0:7" },
        Case { R"({"cpu-index": 4294967296, "state": 1})", "Invalid cpu-index: 4294967296 must be in range 0:7" },
        Case { R"({"cpu-index": 18446744073709551615, "state": 1})", "Invalid cpu-index: 18446744073709551615 must be in range 0:7" },
        Case { R"({"cpu-index": 1, "state": true})", "Invalid parameter type for 'state', expected: integer or string" },
        Case { R"({"cpu-index": 1, "state": null})", "Invalid parameter type for 'state', expected: integer or string" },
        Case { R"({"cpu-index": 1, "state": 1.5})", "Invalid parameter type for 'state', expected: integer or string" },
        Case { R"({"cpu-index": 1, "state": {}})", "Invalid parameter type for 'state', expected: integer or string" },
        Case { R"({"cpu-index": 1, "state": ["online"]})", "Invalid parameter type for 'state', expected: integer or string" },
        // The CPU first, then the state.
        Case { R"({"cpu-index": 9, "state": false})", "Invalid cpu-index: 9 must be in range 0:7" },
        Case { R"({"state": 1})", "Parameter 'cpu-index' is missing" },
        Case { R"({"cpu-index": 1})", "Parameter 'state' is missing" },
        Case { "{}", "Parameter 'cpu-index' is missing" },
        Case { R"({"cpu-index": "1", "state": 1})", "Invalid parameter type for 'cpu-index', expected: integer" },
        Case { R"({"cpu-index": 1, "state": 1, "once": true})", "Parameter 'once' is unexpected" });
    INFO(name << " " << c.request);
    HotplugHarness harness(THREADS, { 0, 1 });
    CHECK(harness.run(name, c.request) == generic(c.reply));
    CHECK(harness.untouched());
}

TEST_CASE("x-cpu-hotplug-disable and -enable are forwarded", "[hotplug]")
{
    HotplugHarness harness;
    CHECK(harness.exchange(R"({"execute": "x-cpu-hotplug-disable", "id": 1})") == R"({"return": {}, "id": 1})");
    CHECK(harness.exchange(R"({"execute": "x-cpu-hotplug-enable", "id": 1})") == R"({"return": {}, "id": 1})");
    harness.backend.failure = Error { GENERIC_ERROR, "hotplug is not disabled: EINVAL (-22)" };
    CHECK(harness.exchange(R"({"execute": "x-cpu-hotplug-enable", "id": 1})") == generic("hotplug is not disabled: EINVAL (-22)"));
    REQUIRE(harness.backend.cpuhp_requests.size() == 3);
    CHECK(harness.backend.cpuhp_requests[0].kind == CpuhpRequest::Kind::Disable);
    CHECK(harness.backend.cpuhp_requests[1].kind == CpuhpRequest::Kind::Enable);
    CHECK(harness.backend.cpuhp_requests[2].kind == CpuhpRequest::Kind::Enable);
    CHECK(harness.backend.calls == Lines { "cpuhp", "cpuhp", "cpuhp" });
    CHECK(harness.run("x-cpu-hotplug-disable", R"({"count": 2})") == generic("Parameter 'count' is unexpected"));
    CHECK(harness.backend.cpuhp_requests.size() == 3);
}

// ---------------------------------------------------------------------------------------------------
// The rest

TEST_CASE("id_wellformed is QEMU's: a letter, then letters, digits, '-', '.', '_'", "[hotplug]")
{
    for (auto const* id : { "a", "Z", "cpu2", "a-b.c_d", "A1-2.3_4", "x--", "a.", "abcdefghijklmnopqrstuvwxyz0123456789" })
        CHECK(id_wellformed(id));
    for (auto const* id : { "", "1cpu", "0", "-a", "_a", ".a", "a b", " a", "a ", "a/b", "a:b", "a,b", "cpu[1]", "a\tb", "\xc3\xa9",
             "a\xc3\xa9" })
        CHECK_FALSE(id_wellformed(id));
    CHECK_FALSE(id_wellformed(std::string("a\0b", 3)));
}

TEST_CASE("query-commands lists every hot-plug command", "[hotplug]")
{
    HotplugHarness harness;
    auto reply = Json::parse(harness.exchange(R"({"execute": "query-commands", "id": 1})"));
    std::set<std::string> names;
    for (auto const& entry : reply["return"])
        names.insert(entry["name"].get<std::string>());
    for (auto const* name : { "device_add", "device_del", "x-socket-add", "x-socket-del", "x-query-cpuhp",
             "x-cpuhp-set-target", "x-cpuhp-fail", "x-cpu-hotplug-disable", "x-cpu-hotplug-enable" }) {
        INFO(name);
        CHECK(names.contains(name));
    }
    CHECK(names.size() == reply["return"].size()); // no name twice
    CHECK(names.size() == 1 + 10 + 9);             // qmp_capabilities, the machine's, the hot-plug ones
}

TEST_CASE("hot-plug commands need negotiation first", "[hotplug]")
{
    SessionHarness harness;
    FakeBackend backend;
    backend.slots = make_slots(FLAT, { 0, 1 });
    add_hotplug_commands(harness.table, backend);
    auto name = GENERATE(as<std::string> {}, "device_add", "device_del", "x-socket-add", "x-socket-del", "x-query-cpuhp",
        "x-cpuhp-set-target", "x-cpuhp-fail", "x-cpu-hotplug-disable", "x-cpu-hotplug-enable");
    CHECK(harness.exchange(R"({"execute": ")" + name + R"(", "id": 1})")
        == R"({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}, "id": 1})");
    CHECK(backend.calls.empty());
}
