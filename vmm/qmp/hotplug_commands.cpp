// CPU hot-plug over QMP in QEMU 9.2's shapes and words (qapi/qdev.json, system/qdev-monitor.c, hw/i386/
// x86-common.c's pre-plug checks), plus cpuplug's own x- commands. Every check runs before the backend is
// called, on the server's thread, so a request the backend sees is consistent with the slots it just listed.
#include "commands.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace vmm::qmp {

namespace {

constexpr char const* CPU_TYPE_SUFFIX = "-x86_64-cpu";

Outcome failure(std::string desc) { return cpuplug::unexpected(generic_error(std::move(desc))); }

// One topology level of device_add: X86CPU's int32 property "<name>-id", the machine's count, and the value
// given. Negative is QEMU's "not set" (the properties default to -1). cpuplug has one module per die.
struct Level {
    char const* name; // "socket", "die", "module", "core", "thread"
    uint32_t count;
    int64_t value { -1 };
};

// A property value as QEMU 9.2's device_add reads it (qdev_device_add_from_qdict with from_json, so the strict
// QObject input visitor): a JSON integer that fits int64, then the property's int32 range.
std::optional<Error> read_int32_property(std::string const& property, Json const& value, int64_t& out)
{
    bool int64 = value.is_number_integer()
        && (!value.is_number_unsigned() || value.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()));
    if (!int64)
        return generic_error(fmt::format("Invalid parameter type for '{}', expected: integer", property));
    auto number = value.get<int64_t>();
    if (number < std::numeric_limits<int32_t>::min() || number > std::numeric_limits<int32_t>::max())
        return generic_error(fmt::format("Parameter '{}' expects int32", property));
    out = number;
    return std::nullopt;
}

// x86_cpu_pre_plug()'s topology checks, after the properties were set: the slot index, or QEMU's error.
Outcome find_slot_for(CpuTopology const& topology, std::vector<CpuSlot> const& slots, std::vector<Level>& levels)
{
    auto& socket = levels[0];
    auto& die = levels[1];
    auto& module = levels[2];
    auto& core = levels[3];
    auto& thread = levels[4];
    // die-id was optional before dies existed, module-id before modules: QEMU still defaults them when there
    // is only one.
    if (die.value < 0 && topology.dies == 1)
        die.value = 0;
    if (module.value < 0)
        module.value = 0;
    for (auto const& level : levels) {
        if (level.value < 0)
            return failure(fmt::format("CPU {}-id is not set", level.name));
        if (level.value > int64_t(level.count) - 1)
            return failure(
                fmt::format("Invalid CPU {}-id: {} must be in range 0:{}", level.name, level.value, level.count - 1));
    }
    auto matches = [&](CpuSlot const& slot) {
        return slot.socket == socket.value && slot.die == die.value && slot.core == core.value
            && slot.thread == thread.value;
    };
    // The ids were checked against their counts just above, so they fit 32 bits. Modules take no bits:
    // there is one per die.
    auto apic_id = apic_id_from_ids(topology, { uint32_t(socket.value), uint32_t(die.value), uint32_t(core.value),
        uint32_t(thread.value) });
    auto slot = std::find_if(slots.begin(), slots.end(), matches);
    if (slot == slots.end()) // ids in range always name a slot; kept for a topology that says otherwise
        return failure(fmt::format(
            "Invalid CPU [socket: {}, die: {}, module: {}, core: {}, thread: {}] with APIC ID {}, valid index range 0:{}",
            socket.value, die.value, module.value, core.value, thread.value, apic_id, int64_t(slots.size()) - 1));
    if (slot->qom_path)
        return failure(fmt::format("CPU[{}] with APIC ID {} exists", slot->index, slot->apic_id));
    return Json(slot->index);
}

// qmp_device_add() in QEMU 9.2's order (qdev_device_add_from_qdict): the driver, the id (qdev_set_id), the
// properties (object_set_properties_from_keyval), then x86_cpu_pre_plug()'s checks.
void device_add(Backend& backend, Json const& arguments, Reply reply)
{
    // QEMU takes the driver with qdict_get_try_str(): one that is not a string is missing.
    auto driver_member = arguments.find("driver");
    if (driver_member == arguments.end() || !driver_member->is_string())
        return reply(failure("Parameter 'driver' is missing"));
    auto driver = driver_member->get<std::string>();
    auto type = backend.cpu_type();
    // Only CPUs are devices here; another CPU model is QEMU's type error, anything else is unknown.
    if (driver != type && !driver.ends_with(CPU_TYPE_SUFFIX))
        return reply(failure(fmt::format("'{}' is not a valid device model name", driver)));
    // QEMU up to 9.1 checked the id's form (QemuOpts); 9.2 lost the check, cpuplug keeps it: an id becomes a
    // QOM path component.
    auto slots = backend.cpu_slots();
    std::optional<std::string> id;
    if (auto it = arguments.find("id"); it != arguments.end()) {
        id = it->get<std::string>();
        if (!id_wellformed(*id))
            return reply(failure("Parameter 'id' expects an identifier"));
        for (auto const& slot : slots)
            if (slot.device_id == id)
                return reply(failure(fmt::format("Duplicate device ID '{}'", *id)));
    }

    auto topology = backend.topology();
    std::vector<Level> levels { { "socket", topology.sockets }, { "die", topology.dies }, { "module", 1 },
        { "core", topology.cores }, { "thread", topology.threads } };
    // In the order they came (QEMU: its QDict's hash order), each property is found, then its value read.
    for (auto const& member : arguments.items()) {
        std::string const& key = member.key();
        if (key == "driver" || key == "id")
            continue;
        auto level = std::find_if(levels.begin(), levels.end(), [&](Level const& l) { return key == fmt::format("{}-id", l.name); });
        if (level == levels.end())
            return reply(failure(fmt::format("Property '{}.{}' not found", driver, key)));
        if (auto error = read_int32_property(key, member.value(), level->value))
            return reply(cpuplug::unexpected(*error));
    }
    if (!backend.cpu_hotplug_enabled())
        return reply(failure("CPU hotplug is off: start vmm with --hotplug"));
    if (driver != type)
        return reply(failure(fmt::format("Invalid CPU type, expected cpu type: '{}'", type)));
    auto index = find_slot_for(topology, slots, levels);
    if (!index.has_value())
        return reply(std::move(index));
    backend.plug_cpus({ index->get<uint32_t>() }, id, std::move(reply));
}

// The checks device_del and x-socket-del share, for the slots about to be released. `name` is what the
// client called the device (device_del); otherwise a slot is named by its id, or its QOM path.
std::optional<Error> check_unplug(std::vector<CpuSlot> const& slots, std::vector<uint32_t> const& indexes,
    std::optional<std::string> const& name)
{
    for (auto index : indexes) {
        auto const& slot = slots[index];
        auto device = name.value_or(slot.device_id.value_or(slot.qom_path.value_or("")));
        // qmp_device_del()'s pending-unplug check comes before x86_cpu_unplug_request_cb()'s boot CPU.
        if (slot.unplugging)
            return generic_error(fmt::format("Device {} is already in the process of unplug", device));
        if (index == 0)
            return generic_error("Boot CPU is unpluggable");
        // A CPU still being plugged is accepted, as QEMU does: its remove event joins the insert event,
        // and the guest handles the insertion first, then the removal (docs/hotplug.md).
    }
    // CPUs already on their way out do not count as staying.
    auto staying = std::count_if(slots.begin(), slots.end(), [&](CpuSlot const& s) {
        return s.qom_path && !s.unplugging && std::find(indexes.begin(), indexes.end(), s.index) == indexes.end();
    });
    if (staying == 0)
        return generic_error("cannot remove the last CPU");
    return std::nullopt;
}

void device_del(Backend& backend, Json const& arguments, Reply reply)
{
    auto id = arguments["id"].get<std::string>();
    auto slots = backend.cpu_slots();
    // QEMU resolves the name under /machine/peripheral (an id), or from the root (an absolute QOM path).
    auto it = std::find_if(slots.begin(), slots.end(), [&](auto const& s) { return s.device_id == id; });
    if (it == slots.end())
        it = std::find_if(slots.begin(), slots.end(), [&](auto const& s) { return s.qom_path == id; });
    if (it == slots.end())
        return reply(cpuplug::unexpected(Error { DEVICE_NOT_FOUND, fmt::format("Device '{}' not found", id) }));
    if (!backend.cpu_hotplug_enabled())
        return reply(failure("CPU hot unplug is off: start vmm with --hotplug"));
    std::vector<uint32_t> indexes { it->index };
    if (auto error = check_unplug(slots, indexes, id))
        return reply(cpuplug::unexpected(*error));
    backend.unplug_cpus(indexes, std::move(reply));
}

// An integer argument within [0, count): the protocol has checked it is an integer, of either sign.
bool index_in_range(Json const& value, uint64_t count)
{
    if (value.is_number_unsigned())
        return value.get<uint64_t>() < count;
    return value.get<int64_t>() >= 0 && uint64_t(value.get<int64_t>()) < count;
}

// x-socket-add / x-socket-del: every thread of one socket under a single SCI.
std::optional<Error> socket_slots(Backend const& backend, std::vector<CpuSlot> const& slots, Json const& arguments,
    bool present, std::vector<uint32_t>& indexes)
{
    auto const& value = arguments["socket-id"];
    auto sockets = backend.topology().sockets;
    if (!index_in_range(value, sockets))
        return generic_error(
            fmt::format("Invalid CPU socket-id: {} must be in range 0:{}", value.dump(), int64_t(sockets) - 1));
    auto socket = value.get<uint32_t>();
    for (auto const& slot : slots)
        if (slot.socket == socket && slot.qom_path.has_value() == present)
            indexes.push_back(slot.index);
    if (indexes.empty())
        return generic_error(present ? fmt::format("socket-id {} has no CPU to remove", socket)
                                     : fmt::format("socket-id {} has no free CPU slot", socket));
    return std::nullopt;
}

void socket_add(Backend& backend, Json const& arguments, Reply reply)
{
    if (!backend.cpu_hotplug_enabled())
        return reply(failure("CPU hotplug is off: start vmm with --hotplug"));
    auto slots = backend.cpu_slots();
    std::vector<uint32_t> indexes;
    if (auto error = socket_slots(backend, slots, arguments, false, indexes))
        return reply(cpuplug::unexpected(*error));
    backend.plug_cpus(indexes, std::nullopt, std::move(reply));
}

void socket_del(Backend& backend, Json const& arguments, Reply reply)
{
    if (!backend.cpu_hotplug_enabled())
        return reply(failure("CPU hot unplug is off: start vmm with --hotplug"));
    auto slots = backend.cpu_slots();
    std::vector<uint32_t> indexes;
    auto error = socket_slots(backend, slots, arguments, true, indexes);
    if (!error)
        error = check_unplug(slots, indexes, std::nullopt);
    if (error)
        return reply(cpuplug::unexpected(*error));
    backend.unplug_cpus(indexes, std::move(reply));
}

// A state is a number or a name; the backend resolves names against the guest's list.
std::optional<Error> check_cpuhp_target(Backend const& backend, Json const& arguments)
{
    auto const& cpu = arguments["cpu-index"];
    auto possible = backend.cpu_slots().size();
    if (!index_in_range(cpu, possible))
        return generic_error(
            fmt::format("Invalid cpu-index: {} must be in range 0:{}", cpu.dump(), int64_t(possible) - 1));
    auto const& state = arguments["state"];
    if (!state.is_number_integer() && !state.is_string())
        return generic_error("Invalid parameter type for 'state', expected: integer or string");
    return std::nullopt;
}

void cpuhp_with_target(Backend& backend, CpuhpRequest::Kind kind, Json const& arguments, Reply reply)
{
    if (auto error = check_cpuhp_target(backend, arguments))
        return reply(cpuplug::unexpected(*error));
    backend.cpuhp({ kind, arguments["cpu-index"].get<uint32_t>(), arguments["state"] }, std::move(reply));
}

} // namespace

bool id_wellformed(std::string const& id)
{
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (id.empty() || !letter(id[0]))
        return false;
    return std::all_of(id.begin(), id.end(), [&](char c) {
        return letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    });
}

void add_hotplug_commands(CommandTable& table, Backend& backend)
{
    // `driver` is the handler's to check, in QEMU's words; `id` must be a string (QEMU 9.2 ignores any other).
    Command add { "device_add", { { "driver", ArgType::Any, true }, { "id", ArgType::String, true } },
        [&backend](Json const& arguments, Reply reply) { device_add(backend, arguments, std::move(reply)); } };
    add.allow_extra_arguments = true; // the driver's properties
    table.add(std::move(add));
    table.add({ "device_del", { { "id", ArgType::String } },
        [&backend](Json const& arguments, Reply reply) { device_del(backend, arguments, std::move(reply)); } });
    table.add({ "x-socket-add", { { "socket-id", ArgType::Integer } },
        [&backend](Json const& arguments, Reply reply) { socket_add(backend, arguments, std::move(reply)); } });
    table.add({ "x-socket-del", { { "socket-id", ArgType::Integer } },
        [&backend](Json const& arguments, Reply reply) { socket_del(backend, arguments, std::move(reply)); } });

    // The x-cpuhp commands are answered by the guest's state machine: they wait for its software.
    using Kind = CpuhpRequest::Kind;
    auto add_guest_command = [&table](std::string name, std::vector<Param> params, auto handler) {
        Command command { std::move(name), std::move(params), std::move(handler) };
        command.waits_for_guest = true;
        table.add(std::move(command));
    };
    add_guest_command("x-query-cpuhp", {},
        [&backend](Json const&, Reply reply) { backend.cpuhp({ Kind::Query, 0, {} }, std::move(reply)); });
    std::vector<Param> target { { "cpu-index", ArgType::Integer }, { "state", ArgType::Any } };
    add_guest_command("x-cpuhp-set-target", target, [&backend](Json const& arguments, Reply reply) {
        cpuhp_with_target(backend, Kind::SetTarget, arguments, std::move(reply));
    });
    add_guest_command("x-cpuhp-fail", target, [&backend](Json const& arguments, Reply reply) {
        cpuhp_with_target(backend, Kind::SetFail, arguments, std::move(reply));
    });
    add_guest_command("x-cpu-hotplug-disable", {},
        [&backend](Json const&, Reply reply) { backend.cpuhp({ Kind::Disable, 0, {} }, std::move(reply)); });
    add_guest_command("x-cpu-hotplug-enable", {},
        [&backend](Json const&, Reply reply) { backend.cpuhp({ Kind::Enable, 0, {} }, std::move(reply)); });
}

} // namespace vmm::qmp
