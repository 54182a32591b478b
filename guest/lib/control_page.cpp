// The control page's commands, run on the hotplug core: Linux's cpuN/hotplug/{state,target,fail} and
// hotplug/states, and cpu_hotplug_disable/enable.
#include <guest/lib/control_page.hpp>

#include <cpuplug/base/errno.hpp>

namespace guest::control_page {

namespace {

using cpuplug::CpuhpState;
using cpuplug::from_index;
using cpuplug::to_index;

// The VMM may write any field at any time: one load each, never a re-read after the check.
uint32_t load(uint32_t const& field) { return __atomic_load_n(&field, __ATOMIC_RELAXED); }

void query(control::Header& header, Context& context)
{
    auto& hp = context.hotplug;
    uint32_t names = 0;
    for (uint16_t i = 0; i < cpuplug::CPUHP_STATE_COUNT && names < control::MAX_STATES; ++i) {
        char const* name = hp.state_name(from_index(i));
        if (!name)
            continue;
        auto& entry = header.states[names++];
        entry.index = i;
        size_t n = 0;
        for (; n < control::NAME_SIZE - 1 && name[n] != '\0'; ++n)
            entry.name[n] = name[n];
        for (; n < control::NAME_SIZE; ++n)
            entry.name[n] = '\0';
    }
    header.state_count = names;

    uint32_t count = context.possible < control::MAX_CPU_RECORDS ? context.possible : control::MAX_CPU_RECORDS;
    auto present = hp.present_mask();
    auto online = hp.online_mask();
    auto active = hp.active_mask();
    // The records follow the header in the same page, at an offset the ABI fixes.
    auto* records = reinterpret_cast<control::CpuRecord*>(reinterpret_cast<uint8_t*>(&header) + control::CPU_RECORDS_OFFSET);
    for (uint32_t cpu = 0; cpu < count; ++cpu) {
        control::CpuRecord record {};
        record.state = to_index(hp.state(cpu));
        record.target = to_index(hp.target(cpu));
        record.fail = hp.fail(cpu);
        record.flags = static_cast<uint8_t>((present.test(cpu) ? control::CPU_PRESENT : 0)
            | (online.test(cpu) ? control::CPU_ONLINE : 0) | (active.test(cpu) ? control::CPU_ACTIVE : 0)
            | (hp.rolled_back(cpu) ? control::CPU_ROLLED_BACK : 0) | (hp.in_limbo(cpu) ? control::CPU_LIMBO : 0));
        record.last_result = hp.last_result(cpu);
        record.apic_id = context.apic_id_of(cpu);
        records[cpu] = record;
    }
    header.cpu_count = count;
    header.disabled = context.disabled;
    header.boot_cpu = hp.boot_cpu();
}

int run(control::Header& header, Context& context, uint32_t command, uint32_t cpu, uint32_t state)
{
    int result = validate(command, cpu, state, context.possible);
    if (result != 0)
        return result;
    auto& hp = context.hotplug;
    switch (static_cast<control::Command>(command)) {
    case control::Command::QueryCpuhp:
        query(header, context);
        return 0;
    case control::Command::SetTarget:
        return hp.set_target(cpu, from_index(static_cast<uint16_t>(state)));
    case control::Command::SetFail:
        return hp.set_fail(cpu, static_cast<uint16_t>(state));
    case control::Command::HotplugDisable:
        hp.cpu_hotplug_disable();
        ++context.disabled;
        return 0;
    case control::Command::HotplugEnable:
        // The core only warns about an unbalanced enable; the VMM gets an answer.
        if (context.disabled == 0)
            return -cpuplug::ERR_INVAL;
        hp.cpu_hotplug_enable();
        --context.disabled;
        return 0;
    case control::Command::None:
        break;
    }
    return -cpuplug::ERR_INVAL;
}

} // namespace

void init(void* page)
{
    auto& header = *static_cast<control::Header*>(page);
    header.magic = control::MAGIC;
    header.version = control::VERSION;
}

int validate(uint32_t command, uint32_t cpu, uint32_t state, uint32_t possible)
{
    switch (static_cast<control::Command>(command)) {
    case control::Command::QueryCpuhp:
    case control::Command::HotplugDisable:
    case control::Command::HotplugEnable:
        return 0;
    case control::Command::SetTarget:
        return cpu < possible && state < cpuplug::CPUHP_STATE_COUNT ? 0 : -cpuplug::ERR_INVAL;
    case control::Command::SetFail:
        return cpu < possible && (state < cpuplug::CPUHP_STATE_COUNT || state == cpuplug::CPUHP_INVALID)
            ? 0
            : -cpuplug::ERR_INVAL;
    case control::Command::None:
        break;
    }
    return -cpuplug::ERR_INVAL;
}

bool serve(void* page, Context& context, uint32_t* answered)
{
    auto& header = *static_cast<control::Header*>(page);
    // Acquire: the VMM writes the request before request_seq.
    uint32_t request = __atomic_load_n(&header.request_seq, __ATOMIC_ACQUIRE);
    if (request == load(header.response_seq))
        return false;
    header.result = run(header, context, load(header.command), load(header.cpu), load(header.state));
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&header.response_seq, request, __ATOMIC_RELEASE);
    *answered = request;
    return true;
}

} // namespace guest::control_page
