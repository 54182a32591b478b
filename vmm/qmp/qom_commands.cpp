// qom-list and qom-get over the part of QEMU's object tree (QOM) that cpuplug has: the root, the machine, its
// three device containers and the CPUs in them, each CPU with its local APIC. The tree is built afresh from
// Backend::cpu_slots() for every request, so it always shows the CPUs query-cpus-fast shows, at the paths it
// shows. Paths resolve as QEMU's object_resolve_path() does: absolute ones from the root (empty components
// skipped), partial ones anywhere in the tree if exactly one object matches. Errors are QEMU's
// (qom/qom-qmp-cmds.c, qom/object.c): DeviceNotFound "Device 'P' not found", GenericError "Path 'P' is
// ambiguous" (qom-list only), GenericError "Property 'TYPE.NAME' not found".
#include "commands.hpp"

#include <fmt/format.h>

#include <memory>
#include <string_view>

namespace vmm::qmp {

namespace {

constexpr char const* CONTAINER = "container";
// The local APIC child of a CPU: KVM's in-kernel one, as QEMU's x86 CPU has with KVM's irqchip.
constexpr char const* LAPIC = "kvm-apic";

// One QOM object: its type, its properties in the order qom-list gives them, and its children (each also a
// "child<TYPE>" property whose value is the child's canonical path).
struct Object {
    struct Property {
        std::string name;
        std::string type; // ObjectPropertyInfo's type: "string", "bool", "int32", "child<...>", "link<...>"
        Json value;
    };
    std::string type;
    std::string path; // canonical, "/" for the root
    std::vector<Property> properties;
    std::vector<std::pair<std::string, std::unique_ptr<Object>>> children;

    explicit Object(std::string type_, std::string path_)
        : type(std::move(type_))
        , path(std::move(path_))
    {
        properties.push_back({ "type", "string", type });
    }

    Object* child(std::string_view name) const
    {
        for (auto const& [child_name, object] : children)
            if (child_name == name)
                return object.get();
        return nullptr;
    }

    Object& add_child(std::string const& name, std::string child_type)
    {
        auto child_path = (path == "/" ? "/" : path + "/") + name;
        children.emplace_back(name, std::make_unique<Object>(std::move(child_type), child_path));
        auto& object = *children.back().second;
        properties.push_back({ name, fmt::format("child<{}>", object.type), object.path });
        return object;
    }

    // The child called `name`, added as a container when there is none.
    Object& container(std::string const& name)
    {
        if (auto* existing = child(name))
            return *existing;
        return add_child(name, CONTAINER);
    }

    Property const* property(std::string_view name) const
    {
        for (auto const& property : properties)
            if (property.name == name)
                return &property;
        return nullptr;
    }
};

// DeviceState's own properties (hw/core/qdev.c), which every device has. No CPU sits on a bus, so the
// parent_bus link is empty, which qom-get reads as "".
void add_device_properties(Object& device, bool hotplugged)
{
    device.properties.push_back({ "realized", "bool", true });
    device.properties.push_back({ "hotpluggable", "bool", true });
    device.properties.push_back({ "hotplugged", "bool", hotplugged });
    device.properties.push_back({ "parent_bus", "link<bus>", "" });
}

// An x86 CPU: the topology properties x86_cpu_pre_plug() fills in, apic-id, node-id (-1: cpuplug has no
// NUMA nodes), and its lapic child.
void add_cpu(Object& parent, std::string const& name, CpuSlot const& slot, std::string const& type)
{
    auto& cpu = parent.add_child(name, type);
    // Boot CPUs are created with the machine under /machine/unattached; everything else came by device_add.
    bool hotplugged = !cpu.path.starts_with("/machine/unattached/");
    add_device_properties(cpu, hotplugged);
    cpu.properties.push_back({ "apic-id", "uint32", slot.apic_id });
    cpu.properties.push_back({ "node-id", "int32", -1 });
    cpu.properties.push_back({ "socket-id", "int32", slot.socket });
    cpu.properties.push_back({ "die-id", "int32", slot.die });
    cpu.properties.push_back({ "module-id", "int32", 0 }); // one module per die
    cpu.properties.push_back({ "core-id", "int32", slot.core });
    cpu.properties.push_back({ "thread-id", "int32", slot.thread });
    auto& lapic = cpu.add_child("lapic", LAPIC);
    add_device_properties(lapic, hotplugged);
    lapic.properties.push_back({ "id", "uint32", slot.apic_id });
}

std::vector<std::string> split_path(std::string_view path)
{
    // g_strsplit(path, "/", 0): "" gives no parts, "/a" gives "", "a".
    std::vector<std::string> parts;
    if (path.empty())
        return parts;
    size_t start = 0;
    while (true) {
        auto slash = path.find('/', start);
        parts.emplace_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos)
            return parts;
        start = slash + 1;
    }
}

// The machine's tree: /machine with its device containers, and every present CPU at its QOM path.
std::unique_ptr<Object> build_tree(Backend const& backend)
{
    auto root = std::make_unique<Object>(CONTAINER, "/");
    auto& machine = root->add_child("machine", MACHINE_QOM_TYPE);
    machine.container("unattached");
    machine.container("peripheral");
    machine.container("peripheral-anon");
    auto type = backend.cpu_type();
    for (auto const& slot : backend.cpu_slots()) {
        if (!slot.qom_path)
            continue;
        auto parts = split_path(*slot.qom_path);
        // Paths are absolute, "/machine/CONTAINER/NAME"; the first part is the empty one before the slash.
        if (parts.size() < 2 || !parts.front().empty())
            continue;
        Object* parent = root.get();
        for (size_t i = 1; i + 1 < parts.size(); ++i)
            parent = &parent->container(parts[i]);
        if (!parent->child(parts.back()))
            add_cpu(*parent, parts.back(), slot, type);
    }
    return root;
}

// object_resolve_abs_path(): follows child properties (cpuplug has no link that points anywhere).
Object const* resolve_absolute(Object const& from, std::vector<std::string> const& parts, size_t first)
{
    Object const* object = &from;
    for (size_t i = first; i < parts.size() && object; ++i)
        if (!parts[i].empty())
            object = object->child(parts[i]);
    return object;
}

// object_resolve_partial_path(): the path from `from` itself, or from any object below it; two matches
// anywhere make it ambiguous.
Object const* resolve_partial(Object const& from, std::vector<std::string> const& parts, bool& ambiguous)
{
    auto const* found = resolve_absolute(from, parts, 0);
    for (auto const& [name, child] : from.children) {
        auto const* below = resolve_partial(*child, parts, ambiguous);
        if (ambiguous)
            return nullptr;
        if (below) {
            if (found) {
                ambiguous = true;
                return nullptr;
            }
            found = below;
        }
    }
    return found;
}

// object_resolve_path(): absolute when the path starts with '/', partial otherwise.
Object const* resolve(Object const& root, std::string const& path, bool& ambiguous)
{
    ambiguous = false;
    auto parts = split_path(path);
    if (!parts.empty() && parts.front().empty())
        return resolve_absolute(root, parts, 1);
    return resolve_partial(root, parts, ambiguous);
}

Outcome device_not_found(std::string const& path)
{
    return cpuplug::unexpected(Error { DEVICE_NOT_FOUND, fmt::format("Device '{}' not found", path) });
}

void qom_list(Backend const& backend, Json const& arguments, Reply reply)
{
    auto path = arguments["path"].get<std::string>();
    auto root = build_tree(backend);
    bool ambiguous = false;
    auto const* object = resolve(*root, path, ambiguous);
    if (!object) {
        if (ambiguous)
            return reply(cpuplug::unexpected(generic_error(fmt::format("Path '{}' is ambiguous", path))));
        return reply(device_not_found(path));
    }
    Json list = Json::array();
    for (auto const& property : object->properties)
        list.push_back(Json { { "name", property.name }, { "type", property.type } });
    reply(std::move(list));
}

void qom_get(Backend const& backend, Json const& arguments, Reply reply)
{
    auto path = arguments["path"].get<std::string>();
    auto name = arguments["property"].get<std::string>();
    auto root = build_tree(backend);
    bool ambiguous = false;
    auto const* object = resolve(*root, path, ambiguous);
    if (!object) // qom-get does not tell an ambiguous path from a missing one
        return reply(device_not_found(path));
    auto const* property = object->property(name);
    if (!property)
        return reply(cpuplug::unexpected(generic_error(fmt::format("Property '{}.{}' not found", object->type, name))));
    reply(property->value);
}

} // namespace

void add_qom_commands(CommandTable& table, Backend& backend)
{
    table.add({ "qom-list", { { "path", ArgType::String } },
        [&backend](Json const& arguments, Reply reply) { qom_list(backend, arguments, std::move(reply)); } });
    table.add({ "qom-get", { { "path", ArgType::String }, { "property", ArgType::String } },
        [&backend](Json const& arguments, Reply reply) { qom_get(backend, arguments, std::move(reply)); } });
}

} // namespace vmm::qmp
