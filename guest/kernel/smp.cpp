// SMP bring-up for the guest: the hotplug core's Platform on real x86 (INIT/SIPI to one APIC id at a time,
// IPIs, halting waits), the per-CPU areas, the AP's main loop, and the boot passes.
#include "smp.hpp"

#include "apic.hpp"
#include "clock.hpp"
#include "console.hpp"
#include "memory.hpp"
#include "percpu.hpp"
#include "status.hpp"
#include "sys.hpp"

#include <guest/abi/platform.h>
#include <guest/abi/status_port.hpp>
#include <guest/lib/format.hpp>

#include <new>

extern "C" uint64_t gdt[];
extern "C" char trampoline_start[];
extern "C" char trampoline_end[];

// Filled here, read by the AP entry code in entry.S.
namespace kernel {
extern "C" {
uint16_t apic_to_cpu[4096];
PerCpu* percpu_table[GUEST_MAX_CPUS];
PerCpu bsp_percpu;
}
} // namespace kernel

namespace kernel::smp {

namespace {

using cpuplug::CpuhpState;
using cpuplug::TraceEvent;

constexpr size_t KERNEL_STACK_SIZE = 4096;  // interrupt frames only; trap reports run on it too
constexpr size_t USER_STACK_SIZE = 16384;   // the kernel, the hotplug core and its callbacks (and, at CPL0, interrupts)
constexpr uint64_t RUN_ON_CPU_TIMEOUT_NS = 20'000'000'000;

Config g_config;
std::atomic<uint64_t> g_wakeups_to_aps { 0 }; // counted for smp.lose_wakeups
uint32_t g_possible = 0;
uint32_t g_boot_cpu = 0;
uint32_t g_cpu_apic[GUEST_MAX_CPUS];
constexpr uint32_t NO_UID = 0xFFFFFFFF;
uint32_t g_cpu_uid[GUEST_MAX_CPUS]; // the MADT UID of each possible CPU (NO_UID for a gap)
uint8_t g_sipi_vector = 0;
cpuplug::Cpuhp* g_hotplug = nullptr;
// The step that last failed on each CPU, for the console line at the end of the operation.
uint16_t g_failed_step[GUEST_MAX_CPUS];
int g_failed_error[GUEST_MAX_CPUS];

uint8_t step_bits(CpuhpState state, bool down, bool rollback)
{
    return static_cast<uint8_t>(cpuplug::to_index(state) | (down ? status_port::STEP_DOWN : 0)
        | (rollback ? status_port::STEP_ROLLBACK : 0));
}

void report(status_port::CpuEvent event, uint32_t cpu, uint8_t step = 0)
{
    status_report(status_port::cpu_event(event, cpu, step));
}

// A name for console lines: the table's, or with `registered` the core's (a dynamic state's registered
// name). Only where the core's state lock is not held: not from trace() or warn().
void name_state(guest::LineBuffer& line, CpuhpState state, cpuplug::Cpuhp const* registered = nullptr)
{
    line.dec(cpuplug::to_index(state));
    char const* name = registered ? registered->state_name(state) : cpuplug::state_info(state).name;
    if (name)
        line.text(" (").text(name).ch(')');
}

void write_tss_descriptor(uint16_t selector, Tss const* tss)
{
    auto base = reinterpret_cast<uint64_t>(tss);
    uint64_t low = (sizeof(Tss) - 1) | ((base & 0xFFFFFF) << 16) | (uint64_t(0x89) << 40) | (((base >> 24) & 0xFF) << 56);
    gdt[selector / 8] = low;      // type 0x89: available (a ltr on a re-plug needs it not busy)
    gdt[selector / 8 + 1] = base >> 32;
}

// Before every start of an AP, not just the first: a CPU that ran before (taken down, hot-removed and
// added again, or resting in a PREPARE state on its way back up, where percpu:prepare does not run again)
// left its TSS descriptor busy, which would make its ltr fault, and maybe work in its mailbox that it
// never finished. (Its deferred wake-up IPI it sent before parking: ap_main.)
void prepare_start(PerCpu& area)
{
    write_tss_descriptor(area.tss_selector, &area.tss);
    area.done.store(area.posted.load(std::memory_order_relaxed), std::memory_order_relaxed);
    apic_to_cpu[area.apic_id & 0xFFF] = static_cast<uint16_t>(area.cpu);
}

// Parallel bring-up with an INIT delay sends every AP its INIT first, so that the delay, which the MP
// spec asks for between a CPU's INIT and its STARTUP, is waited about once for the batch instead of once
// per AP; kick_ap then sends only the STARTUPs. When each INIT went out (0: none pending), boot CPU only.
uint64_t g_init_sent_ns[GUEST_MAX_CPUS];

void send_inits(cpuplug::CpuMask const& cpus)
{
    for (uint32_t cpu : cpus) {
        apic::send_init(g_cpu_apic[cpu]);
        g_init_sent_ns[cpu] = now_ns() | 1; // never 0
    }
}

class GuestPlatform final : public cpuplug::Platform {
public:
    uint32_t this_cpu() override { return this_percpu().cpu; }

    // INIT, the INIT delay, then two STARTUPs, to this CPU's APIC id alone (never a broadcast, which would
    // reset CPUs that are already online).
    int kick_ap(uint32_t cpu) override
    {
        PerCpu* area = percpu_table[cpu];
        if (!area)
            return -cpuplug::ERR_IO;
        prepare_start(*area);
        flush_deferred_ipi();
        uint64_t init_sent = g_init_sent_ns[cpu];
        g_init_sent_ns[cpu] = 0;
        if (init_sent == 0) {
            apic::kick(area->apic_id, g_sipi_vector, g_config.init_udelay_us);
            return 0;
        }
        // Its INIT went out with the batch's (send_inits): only what is left of its delay remains.
        uint64_t ready = init_sent + g_config.init_udelay_us * 1000;
        uint64_t now = now_ns();
        if (now < ready)
            delay_us((ready - now + 999) / 1000);
        apic::send_startups(area->apic_id, g_sipi_vector);
        return 0;
    }

    int run_on_cpu(uint32_t cpu, int (*work)(void*), void* arg) override
    {
        PerCpu* target = percpu_table[cpu];
        if (!target)
            return -cpuplug::ERR_IO;
        target->work = work;
        target->work_arg = arg;
        target->requester = this_percpu().cpu;
        uint32_t ticket = target->posted.load(std::memory_order_relaxed) + 1;
        target->posted.store(ticket, std::memory_order_release);
        wake(cpu); // sent with the wait's first halt
        if (!kernel::wait_until([&] { return target->done.load(std::memory_order_acquire) == ticket; }, RUN_ON_CPU_TIMEOUT_NS))
            return -cpuplug::ERR_TIMEDOUT;
        return target->work_result;
    }

    bool wait_until(bool (*done)(void const*), void const* arg, uint64_t timeout_ns) override
    {
        return kernel::wait_until([&] { return done(arg); }, timeout_ns);
    }

    // In x2APIC mode the IPI waits for this CPU's next halt, which follows at once wherever the core
    // wakes someone, and goes out in the same system call (kernel::wait_once).
    void wake(uint32_t cpu) override
    {
        PerCpu* target = cpu < GUEST_MAX_CPUS ? percpu_table[cpu] : nullptr;
        if (!target)
            return;
        auto& me = this_percpu();
        if (target == &me) {
            target->wake.fetch_add(1, std::memory_order_release);
            return;
        }
        // Fault injection: the hypervisor "loses" this IPI to an AP; the AP's next recheck must find the news.
        if (g_config.lose_wakeups != 0 && cpu != g_boot_cpu
            && g_wakeups_to_aps.fetch_add(1, std::memory_order_relaxed) % g_config.lose_wakeups == 0)
            return;
        if (!apic::x2apic()) {
            apic::send_ipi(target->apic_id, VECTOR_WAKE); // MMIO: no system call even at CPL3
            return;
        }
        flush_deferred_ipi();
        me.deferred_ipi = apic::ipi_command(target->apic_id, VECTOR_WAKE);
    }

    void irq_disable() override { apic::set_task_priority(0xF0); }
    void irq_enable() override { apic::set_task_priority(0); }
    uint64_t now_ns() override { return kernel::now_ns(); }
    void relax() override { asm volatile("pause"); }

    void trace(TraceEvent const& event) override
    {
        if (event.instance != nullptr)
            return;
        // Kicked is when the kick begins (INIT goes out next): reported at the end of the step, after the
        // STARTUPs, a fast AP could report ALIVE first.
        if (event.phase == TraceEvent::Phase::Enter) {
            if (event.state == CpuhpState::KickAp && event.bringup && !event.rollback)
                report(status_port::CpuEvent::Kicked, event.cpu, step_bits(event.state, false, false));
            return;
        }
        uint8_t step = step_bits(event.state, !event.bringup, event.rollback);
        if (event.result != 0) {
            if (event.cpu < GUEST_MAX_CPUS && !event.rollback) {
                g_failed_step[event.cpu] = cpuplug::to_index(event.state);
                g_failed_error[event.cpu] = event.result;
            }
            report(status_port::CpuEvent::StepFailed, event.cpu, step);
            return;
        }
        if (g_config.trace_steps)
            report(status_port::CpuEvent::Step, event.cpu, step);
    }

    void completed(uint32_t cpu, CpuhpState state, int result) override
    {
        if (state == CpuhpState::Online)
            report(status_port::CpuEvent::Online, cpu, step_bits(state, false, false));
        else if (state == CpuhpState::Offline)
            report(status_port::CpuEvent::Offline, cpu, step_bits(state, true, false));
        else if (!(state == CpuhpState::KickAp && result == 0)) // parallel bring-up's first pass: not news
            report(status_port::CpuEvent::Stopped, cpu, step_bits(state, false, false));
        if (result == 0)
            return;
        guest::LineBuffer line;
        line.text("cpuhp: cpu ").dec(cpu).text(": step ");
        name_state(line, cpuplug::from_index(g_failed_step[cpu < GUEST_MAX_CPUS ? cpu : 0]), g_hotplug);
        line.text(" failed (").text(cpuplug::errno_name(result)).text("), rolled back to state ");
        name_state(line, state, g_hotplug);
        console_write_line(line);
    }

    void warn(char const* what, uint32_t cpu, CpuhpState state, int error) override
    {
        guest::LineBuffer line;
        line.text("cpuhp: warning: cpu ").dec(cpu).text(", state ");
        name_state(line, state);
        line.text(": ").text(what).text(" (").text(cpuplug::errno_name(error)).ch(')');
        console_write_line(line);
    }
};

GuestPlatform g_platform;

} // namespace

void wake_requester(uint32_t cpu) { g_platform.wake(cpu); }

namespace {

// percpu:prepare: the AP's area, stacks and TSS, made once and kept for when it comes back.
int percpu_prepare(uint32_t cpu, void*)
{
    PerCpu*& area = percpu_table[cpu];
    if (!area) {
        void* memory = allocate(sizeof(PerCpu), alignof(PerCpu));
        auto* kernel_stack = static_cast<uint8_t*>(allocate(KERNEL_STACK_SIZE, 4096, Zeroed::No));
        auto* user_stack = static_cast<uint8_t*>(allocate(USER_STACK_SIZE, 16, Zeroed::No));
        if (!memory || !kernel_stack || !user_stack)
            return -cpuplug::ERR_NOMEM;
        area = new (memory) PerCpu {};
        area->self = area;
        area->cpu = cpu;
        area->kernel_stack_top = reinterpret_cast<uint64_t>(kernel_stack + KERNEL_STACK_SIZE);
        area->user_stack_top = reinterpret_cast<uint64_t>(user_stack + USER_STACK_SIZE);
        area->tss.rsp0 = area->kernel_stack_top;
        area->tss.iomap_base = sizeof(Tss);
        area->tss_selector = static_cast<uint16_t>(FIRST_TSS_SELECTOR + 16 * (1 + cpu));
    }
    area->apic_id = g_cpu_apic[cpu]; // the rest of a start's set-up is kick_ap's (prepare_start)
    return 0;
}

int apic_starting(uint32_t, void*)
{
    apic::starting();
    return 0;
}

int apic_dying(uint32_t, void*)
{
    apic::dying();
    return 0;
}

// cpuhp.test_states=1: steps that do nothing, in both dynamic ranges, so that fail injection can exercise
// a PREPARE and an ONLINE-section rollback in a real boot (the guest's own ONLINE steps are the core's).
int test_step(uint32_t, void*) { return 0; }

int tsc_starting(uint32_t, void*)
{
    // The TSC is the guest's clock: KVM keeps it synchronised across vCPUs, so there is nothing to
    // calibrate per CPU; reading it here makes sure it ticks.
    return x86::rdtsc() != 0 ? 0 : -cpuplug::ERR_IO;
}

// The lowest 4 KiB page below 640 KiB that is RAM and clear of the boot data, for the SIPI vector.
uint64_t trampoline_page(guest::BootInfo const& boot)
{
    auto overlaps = [](uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) { return a < b + b_len && b < a + a_len; };
    for (uint64_t page = 0x1000; page < 0x9F000; page += 0x1000) {
        bool ram = false;
        for (uint32_t i = 0; i < boot.memmap_entries; ++i) {
            auto const& e = boot.memmap[i];
            if (e.type == pvh::MemType::Ram && page >= e.addr && page + 0x1000 <= e.addr + e.size)
                ram = true;
        }
        auto start_info = reinterpret_cast<uint64_t>(boot.start_info);
        auto memmap = reinterpret_cast<uint64_t>(boot.memmap);
        auto cmdline = reinterpret_cast<uint64_t>(boot.cmdline.data);
        if (!ram || overlaps(page, 0x1000, start_info, sizeof(pvh::StartInfo))
            || overlaps(page, 0x1000, memmap, boot.memmap_entries * sizeof(pvh::MemmapEntry))
            || overlaps(page, 0x1000, cmdline, boot.cmdline.size + 1)
            || overlaps(page, 0x1000, boot.rsdp_address, 36))
            continue;
        return page;
    }
    return 0;
}

} // namespace

Config config_from(guest::Cmdline const& cmdline)
{
    Config config;
    config.parallel = cmdline.get_bool("cpuhp.parallel", true);
    config.init_udelay_us = cmdline.get_u64("cpu_init_udelay", platform::INIT_DELAY_US);
    config.trace_steps = cmdline.get_bool("cpuhp.trace", false);
    config.test_states = cmdline.get_bool("cpuhp.test_states", false);
    config.lose_wakeups = cmdline.get_u64("smp.lose_wakeups", 0);
    return config;
}

cpuplug::Cpuhp& hotplug() { return *g_hotplug; }
uint32_t possible_count() { return g_possible; }
uint32_t apic_id_of(uint32_t cpu) { return cpu < GUEST_MAX_CPUS ? g_cpu_apic[cpu] : 0; }
int failed_error(uint32_t cpu) { return cpu < GUEST_MAX_CPUS ? g_failed_error[cpu] : 0; }

int32_t cpu_of_uid(uint32_t uid)
{
    if (uid < g_possible && g_cpu_uid[uid] == uid)
        return static_cast<int32_t>(uid);
    for (uint32_t cpu = 0; cpu < g_possible; ++cpu)
        if (g_cpu_uid[cpu] == uid)
            return static_cast<int32_t>(cpu);
    return -1;
}

char const* add_possible_cpu(uint32_t uid, uint32_t apic_id)
{
    // The VMM and the status port name CPUs by index, so the new CPU's number is its index.
    if (uid >= GUEST_MAX_CPUS)
        return "index out of range";
    if (uid < g_possible)
        return "its number is taken";
    if (apic_id >= 4096) // apic_to_cpu[], which the AP entry code indexes
        return "APIC id out of range";
    if (!apic::x2apic() && apic_id >= 0xFF)
        return "xAPIC mode reaches APIC ids below 255 only";
    for (uint32_t cpu = 0; cpu < g_possible; ++cpu)
        if (g_cpu_uid[cpu] != NO_UID && g_cpu_apic[cpu] == apic_id)
            return "APIC id in use";
    for (uint32_t gap = g_possible; gap < uid; ++gap)
        g_cpu_uid[gap] = NO_UID;
    g_cpu_apic[uid] = apic_id;
    g_cpu_uid[uid] = uid;
    g_possible = uid + 1;
    (void)g_hotplug->set_possible(uid);
    return nullptr;
}

bool init(guest::acpi::MadtCpu const* cpus, size_t count, uint32_t boot_apic_id, Config const& config,
    guest::BootInfo const& boot)
{
    g_config = config;
    if (config.lose_wakeups != 0)
        console_write_line(guest::LineBuffer().text("smp: fault injection: one in ").dec(config.lose_wakeups)
                               .text(" wake-up IPIs to APs is dropped"));
    g_possible = static_cast<uint32_t>(count < GUEST_MAX_CPUS ? count : GUEST_MAX_CPUS);
    // In xAPIC mode an IPI names 8-bit APIC ids, and 0xFF is the broadcast: CPUs above 254 cannot be
    // reached, so they are left out (as Linux does without x2APIC).
    if (!apic::x2apic()) {
        uint32_t reachable = 0;
        while (reachable < g_possible && cpus[reachable].apic_id < 0xFF)
            ++reachable;
        if (reachable < g_possible) {
            guest::LineBuffer line;
            line.text("smp: xAPIC mode reaches APIC ids below 255 only: using ").dec(reachable).text(" of ")
                .dec(g_possible).text(" CPUs");
            console_write_line(line);
            g_possible = reachable;
        }
    }
    bool found_boot = false;
    for (uint32_t cpu = 0; cpu < g_possible; ++cpu) {
        g_cpu_apic[cpu] = cpus[cpu].apic_id;
        g_cpu_uid[cpu] = cpus[cpu].uid;
        if (cpus[cpu].apic_id == boot_apic_id) {
            g_boot_cpu = cpu;
            found_boot = true;
        }
    }
    if (!found_boot) {
        guest::LineBuffer line;
        line.text("smp: the boot CPU (apic id ").dec(boot_apic_id).text(") is not in the MADT; running on it alone");
        console_write_line(line);
        g_possible = 1;
        g_cpu_apic[0] = boot_apic_id;
        g_cpu_uid[0] = NO_UID;
        g_boot_cpu = 0;
    }

    // The boot CPU's area was set up by entry.S (GS base, TSS); give it its identity.
    bsp_percpu.self = &bsp_percpu;
    bsp_percpu.cpu = g_boot_cpu;
    bsp_percpu.apic_id = boot_apic_id;
    bsp_percpu.tss_selector = FIRST_TSS_SELECTOR;
    percpu_table[g_boot_cpu] = &bsp_percpu;
    apic_to_cpu[boot_apic_id & 0xFFF] = static_cast<uint16_t>(g_boot_cpu);

    uint64_t page = trampoline_page(boot);
    if (page == 0) {
        console_write_line(guest::LineBuffer().text("smp: no free page below 640 KiB for the AP trampoline"));
        return false;
    }
    __builtin_memcpy(reinterpret_cast<void*>(page), trampoline_start, static_cast<size_t>(trampoline_end - trampoline_start));
    g_sipi_vector = static_cast<uint8_t>(page >> 12);

    void* memory = allocate(sizeof(cpuplug::Cpuhp), alignof(cpuplug::Cpuhp), Zeroed::No);
    if (!memory) {
        console_write_line(guest::LineBuffer().text("smp: out of memory for the hotplug core"));
        return false;
    }
    g_hotplug = new (memory) cpuplug::Cpuhp(g_platform);
    auto& hp = *g_hotplug;
    for (uint32_t cpu = 0; cpu < g_possible; ++cpu) {
        (void)hp.set_possible(cpu);
        if (found_boot ? cpus[cpu].enabled : cpu == 0)
            (void)hp.set_present(cpu, true);
    }
    hp.boot_cpu_online(g_boot_cpu);
    // The boot CPU did these steps itself while booting, so the registrations do not call them for it.
    (void)hp.setup_state_nocalls(CpuhpState::PercpuPrepare, "percpu:prepare", percpu_prepare, nullptr);
    (void)hp.setup_state_nocalls(CpuhpState::ApicStarting, "apic:starting", apic_starting, apic_dying);
    (void)hp.setup_state_nocalls(CpuhpState::TscStarting, "tsc:starting", tsc_starting, nullptr);
    if (g_config.test_states) {
        (void)hp.setup_state_nocalls(CpuhpState::BpPrepareDyn, "test:prepare", test_step, test_step);
        (void)hp.setup_state_nocalls(CpuhpState::ApOnlineDyn, "test:online", test_step, test_step);
    }
    return true;
}

void apply_fail_injection(guest::Cmdline const& cmdline)
{
    guest::StringView value;
    if (!cmdline.find("cpuhp.fail", value))
        return;
    // cpu:state[,cpu:state...]
    size_t i = 0;
    while (i < value.size) {
        size_t end = i;
        while (end < value.size && value[end] != ',')
            ++end;
        guest::StringView item(value.data + i, end - i);
        size_t colon = 0;
        while (colon < item.size && item[colon] != ':')
            ++colon;
        uint64_t cpu = 0, state = 0;
        guest::LineBuffer line;
        if (colon < item.size && guest::parse_u64(guest::StringView(item.data, colon), cpu)
            && guest::parse_u64(item.substr(colon + 1), state) && cpu < g_possible) {
            int result = g_hotplug->set_fail(static_cast<uint32_t>(cpu), static_cast<uint16_t>(state));
            line.text("cpuhp: fail injection for cpu ").dec(cpu).text(" at state ");
            name_state(line, cpuplug::from_index(static_cast<uint16_t>(state)));
            line.text(result == 0 ? ": armed" : ": refused (").text(result == 0 ? "" : cpuplug::errno_name(result));
            if (result != 0)
                line.ch(')');
        } else {
            line.text("cpuhp: ignoring cpuhp.fail entry \"").text(item).text("\" (want cpu:state)");
        }
        console_write_line(line);
        i = end + 1;
    }
}

BringupResult bring_up()
{
    auto& hp = *g_hotplug;
    cpuplug::CpuMask aps = hp.present_mask();
    aps.clear(g_boot_cpu);
    status_report(status_port::milestone(status_port::Milestone::SmpStart));
    uint64_t start = now_ns();
    bring_up_cpus(aps);
    uint64_t elapsed = now_ns() - start;
    return { hp.online_mask().count(), hp.present_mask().count(), elapsed };
}

void bring_up_cpus(cpuplug::CpuMask const& cpus)
{
    for (uint32_t cpu : cpus)
        g_failed_error[cpu] = 0;
    if (!g_config.parallel) {
        (void)g_hotplug->bringup_serial(cpus);
        return;
    }
    bool batch_inits = g_config.init_udelay_us != 0 && cpus.count() > 1;
    if (batch_inits)
        send_inits(cpus);
    (void)g_hotplug->bringup_parallel(cpus);
    // A CPU the core did not kick (a step before the kick failed) must get a whole kick next time: a
    // vCPU the VMM parks and replugs meanwhile would ignore a STARTUP without its INIT.
    if (batch_inits)
        for (uint32_t cpu : cpus)
            g_init_sent_ns[cpu] = 0;
}

} // namespace kernel::smp

// The AP at the kernel's privilege level, from ap_start64 (entry.S): report ALIVE to the hotplug core, wait to be released, run
// the STARTING section, then serve work from the control CPU until told to die.
extern "C" [[noreturn]] void ap_main(kernel::PerCpu* me)
{
    using namespace kernel;
    // The wait for release has no deadline (cpuplug's ap_startup): a new INIT is what ends it otherwise.
    smp::report(status_port::CpuEvent::Alive, me->cpu);
    auto& hp = smp::hotplug();
    if (!hp.ap_startup(me->cpu)) {
        flush_deferred_ipi();
        sys::park(); // started without a kick: halt until the next INIT
    }
    for (;;) {
        uint32_t seen = me->wake.load(std::memory_order_acquire);
        uint32_t posted = me->posted.load(std::memory_order_acquire);
        if (posted == me->done.load(std::memory_order_relaxed)) {
            wait_once(*me, seen, ns_to_timer_ticks(IDLE_RECHECK_NS));
            continue;
        }
        me->work_result = me->work(me->work_arg);
        me->done.store(posted, std::memory_order_release);
        smp::wake_requester(me->requester);
        if (hp.ap_should_die(me->cpu)) {
            hp.ap_report_dead(me->cpu);
            flush_deferred_ipi();
            sys::park(); // dead: only INIT brings it back
        }
    }
}
