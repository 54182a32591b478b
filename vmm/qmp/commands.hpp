// The QMP commands of the machine itself (not of a device): version, status, CPUs, run control, power.
// They speak to the VM through Backend, so the fuzzer and the unit tests run them over a fake machine.
#pragma once

#include "arch/x86_64/topology.hpp"
#include "cpu_dump.hpp"
#include "protocol.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace vmm::qmp {

// The QEMU release whose QMP behaviour cpuplug follows; tools that test versions see this one.
struct QemuVersion {
    int major { 9 };
    int minor { 2 };
    int micro { 0 };
};

// qapi/run-state.json's RunState members that a cpuplug VM can be in.
enum class RunState { Prelaunch, Running, Paused, Shutdown };
char const* to_string(RunState state);

// One possible CPU: its topology ids, and for a present one where it lives.
struct CpuSlot {
    uint32_t index { 0 };
    uint32_t socket { 0 }, die { 0 }, core { 0 }, thread { 0 };
    uint32_t apic_id { 0 };
    std::optional<std::string> qom_path;  // present CPUs only
    std::optional<std::string> device_id; // device_add's `id`, for CPUs plugged with one
    int64_t thread_id { 0 };              // host TID of the vCPU thread, when present
    bool plugging { false };              // a hot-add is in flight: the guest has not answered yet
    bool unplugging { false };            // a removal is in flight
};

// The machine's topology (what device_add's ids are checked against) and QEMU's APIC-id layout.
using vmm::CpuTopology;

// The guest hotplug core's test controls (x-query-cpuhp and friends), after Linux's cpuN/hotplug files.
struct CpuhpRequest {
    enum class Kind { Query, SetTarget, SetFail, Disable, Enable } kind { Kind::Query };
    uint32_t cpu { 0 };
    Json state; // SetTarget, SetFail: a state's index or name
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual RunState run_state() const = 0;
    // Every possible CPU, by index.
    virtual std::vector<CpuSlot> cpu_slots() const = 0;
    // QEMU shows die-id only on machines with more than one die per socket.
    virtual bool has_dies() const = 0;
    virtual std::string cpu_type() const = 0;

    // Run control. Each replies once, on the QMP thread, when the action is complete (or failed).
    virtual void stop(Reply reply) = 0;
    virtual void cont(Reply reply) = 0;
    virtual void system_reset(Reply reply) = 0;
    virtual void system_powerdown(Reply reply) = 0;
    virtual void quit(Reply reply) = 0;

    // CPU hot-plug. The commands have validated the request against cpu_slots() (ids, occupancy, the
    // boot CPU, operations in flight) on this same thread, so the backend sees only plausible requests.
    virtual CpuTopology topology() const = 0;
    virtual bool cpu_hotplug_enabled() const = 0;
    // Plugs absent slots; `id` only for a single CPU. Replies once the vCPUs run and the guest was told.
    virtual void plug_cpus(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id, Reply reply) = 0;
    // Asks the guest to release present slots; replies at once, DEVICE_DELETED follows per CPU.
    virtual void unplug_cpus(std::vector<uint32_t> const& indexes, Reply reply) = 0;
    virtual void cpuhp(CpuhpRequest const& request, Reply reply) = 0;

    // Debugging (human-monitor-command, memsave, pmemsave).
    using RegistersReply = std::function<void(cpuplug::Result<std::vector<CpuRegisters>, Error>)>;
    // The registers of present CPUs, in the order asked. A vCPU that runs is paused for the read and runs
    // again after it; one that is stopped or not started yet is read as it is. Replies once, on this thread.
    virtual void read_cpu_registers(std::vector<uint32_t> const& indexes, RegistersReply reply) = 0;
    // Guest RAM at a guest-physical address: up to `length` bytes, fewer where RAM ends, none where there
    // is no RAM. Valid until the server's thread next returns to its loop.
    virtual std::span<uint8_t const> guest_ram(uint64_t address, uint64_t length) const = 0;
    virtual uint64_t guest_ram_size() const = 0;
};

// {"qemu": {"micro": ..., "minor": ..., "major": ...}, "package": ...}: query-version and the greeting.
Json version_json(QemuVersion const& version, std::string const& package);

// CpuInstanceProperties of a slot, in QEMU's x86 shape.
Json cpu_props(CpuSlot const& slot, bool with_die);

// Adds qmp_capabilities' companions: query-version, query-commands, query-status, query-cpus-fast,
// query-hotpluggable-cpus, stop, cont, system_reset, system_powerdown, quit. `table` must outlive them.
void add_machine_commands(CommandTable& table, Backend& backend, Json version);

// device_add and device_del for CPUs, x-socket-add and x-socket-del, and the x-cpuhp test controls
// (x-query-cpuhp, x-cpuhp-set-target, x-cpuhp-fail, x-cpu-hotplug-disable, x-cpu-hotplug-enable).
void add_hotplug_commands(CommandTable& table, Backend& backend);

// Opens a file to write a memory dump to: an fd, or -errno. The fuzzer replaces it so that no input of its
// writes files.
using DumpFileOpener = std::function<int(std::string const& path)>;
// The real one: created (mode 0600) or truncated, never blocking (a FIFO without a reader fails at once).
int open_dump_file(std::string const& path);

// The debugging commands: human-monitor-command (HMP's info registers, info cpus, info status, x, xp, cpu,
// help; hmp.hpp), pmemsave and memsave.
void add_debug_commands(CommandTable& table, Backend& backend, DumpFileOpener open = open_dump_file);

// The QOM type of /machine. cpuplug is no QEMU machine type, so it names its own (after QEMU's
// "<name>-machine" pattern).
inline constexpr char const* MACHINE_QOM_TYPE = "cpuplug-machine";

// qom-list and qom-get over the QOM tree's CPUs and the containers above them (docs/qmp.md, QOM).
void add_qom_commands(CommandTable& table, Backend& backend);

// QEMU's id_wellformed(): a letter, then letters, digits, '-', '.' and '_'.
bool id_wellformed(std::string const& id);

} // namespace vmm::qmp
