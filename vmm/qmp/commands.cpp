// Payloads in QEMU's shapes (qapi/machine.json, qapi/run-state.json, qapi/control.json).
#include "commands.hpp"

namespace vmm::qmp {

char const* to_string(RunState state)
{
    switch (state) {
    case RunState::Prelaunch:
        return "prelaunch";
    case RunState::Running:
        return "running";
    case RunState::Paused:
        return "paused";
    case RunState::Shutdown:
        return "shutdown";
    }
    return "running";
}

Json version_json(QemuVersion const& version, std::string const& package)
{
    Json qemu;
    qemu["micro"] = version.micro;
    qemu["minor"] = version.minor;
    qemu["major"] = version.major;
    return Json { { "qemu", qemu }, { "package", package } };
}

Json cpu_props(CpuSlot const& slot, bool with_die)
{
    Json props;
    props["socket-id"] = slot.socket;
    if (with_die)
        props["die-id"] = slot.die;
    props["core-id"] = slot.core;
    props["thread-id"] = slot.thread;
    return props;
}

namespace {

// A query that answers at once from state on the io thread, and so may run out of band (docs/qmp.md).
Command out_of_band(Command command)
{
    command.allow_oob = true;
    return command;
}

} // namespace

void add_machine_commands(CommandTable& table, Backend& backend, Json version)
{
    table.add(out_of_band({ "query-version", {}, [version](Json const&, Reply reply) { reply(version); } }));

    table.add(out_of_band({ "query-commands", {}, [&table](Json const&, Reply reply) {
                   Json list = Json::array();
                   list.push_back({ { "name", "qmp_capabilities" } }); // served by the session itself
                   for (auto const& name : table.names())
                       list.push_back({ { "name", name } });
                   reply(std::move(list));
               } }));

    table.add(out_of_band({ "query-status", {}, [&backend](Json const&, Reply reply) {
                   auto state = backend.run_state();
                   reply(Json { { "running", state == RunState::Running }, { "status", to_string(state) } });
               } }));

    table.add(out_of_band({ "query-cpus-fast", {}, [&backend](Json const&, Reply reply) {
                   Json list = Json::array();
                   bool dies = backend.has_dies();
                   for (auto const& slot : backend.cpu_slots()) {
                       if (!slot.qom_path)
                           continue;
                       Json cpu;
                       cpu["cpu-index"] = slot.index;
                       cpu["qom-path"] = *slot.qom_path;
                       cpu["thread-id"] = slot.thread_id;
                       cpu["props"] = cpu_props(slot, dies);
                       cpu["target"] = "x86_64";
                       list.push_back(std::move(cpu));
                   }
                   reply(std::move(list));
               } }));

    table.add(out_of_band({ "query-hotpluggable-cpus", {}, [&backend](Json const&, Reply reply) {
                   // Highest index first, as QEMU builds the list by prepending.
                   auto slots = backend.cpu_slots();
                   bool dies = backend.has_dies();
                   auto type = backend.cpu_type();
                   Json list = Json::array();
                   for (auto it = slots.rbegin(); it != slots.rend(); ++it) {
                       Json cpu;
                       cpu["type"] = type;
                       cpu["vcpus-count"] = 1;
                       cpu["props"] = cpu_props(*it, dies);
                       if (it->qom_path)
                           cpu["qom-path"] = *it->qom_path;
                       list.push_back(std::move(cpu));
                   }
                   reply(std::move(list));
               } }));

    table.add({ "stop", {}, [&backend](Json const&, Reply reply) { backend.stop(std::move(reply)); } });
    table.add({ "cont", {}, [&backend](Json const&, Reply reply) { backend.cont(std::move(reply)); } });
    table.add({ "system_reset", {}, [&backend](Json const&, Reply reply) { backend.system_reset(std::move(reply)); } });
    table.add({ "system_powerdown", {},
        [&backend](Json const&, Reply reply) { backend.system_powerdown(std::move(reply)); } });
    table.add({ "quit", {}, [&backend](Json const&, Reply reply) { backend.quit(std::move(reply)); } });
}

} // namespace vmm::qmp
