// SMP: the CPUs the MADT lists, the hotplug core that brings them up and down, and the platform it runs
// on (INIT/SIPI, IPIs, halts). Everything here runs at the kernel's level (CPL0, or CPL3 on nested PVM).
#pragma once

#include <guest/abi/platform.h>
#include <guest/lib/acpi_tables.hpp>
#include <guest/lib/cmdline.hpp>
#include <guest/lib/start_info.hpp>

#include <cpuplug/cpuhp.hpp>

#include <cstddef>
#include <cstdint>

namespace kernel::smp {

struct Config {
    bool parallel { true };           // cpuhp.parallel=
    uint64_t init_udelay_us { platform::INIT_DELAY_US }; // cpu_init_udelay=
    bool trace_steps { false };        // cpuhp.trace=1: report every step to the VMM
    bool test_states { false };        // cpuhp.test_states=1: no-op states in both dynamic ranges
    uint64_t lose_wakeups { 0 };       // smp.lose_wakeups=N: one in N wake-up IPIs to APs is not sent, the first included
};
Config config_from(guest::Cmdline const& cmdline);

// Sets up the per-CPU tables for the CPUs of the MADT, the boot CPU's area, the trampoline and the
// hotplug core. False (with a console line) when something needed is missing.
bool init(guest::acpi::MadtCpu const* cpus, size_t count, uint32_t boot_apic_id, Config const& config,
    guest::BootInfo const& boot);

// Applies cpuhp.fail=<cpu>:<state>[,...] from the command line.
void apply_fail_injection(guest::Cmdline const& cmdline);

struct BringupResult {
    uint32_t online;   // CPUs online afterwards, the boot CPU included
    uint32_t present;
    uint64_t elapsed_ns;
};
BringupResult bring_up();
// Takes `cpus` (present, offline) to online as the boot pass does: in parallel unless cpuhp.parallel=0.
void bring_up_cpus(cpuplug::CpuMask const& cpus);
// The error of the step that failed on `cpu` in its last bring_up_cpus, 0 if none (the core's
// last_result is the rollback's, which succeeds).
int failed_error(uint32_t cpu);

// The guest's number for the CPU whose MADT UID (the ACPI CPU-hotplug selector index) is `uid`: the same
// number under QEMU and cpuplug, whose MADT lists every possible CPU in index order, but looked up rather
// than assumed. -1 when no possible CPU has it.
int32_t cpu_of_uid(uint32_t uid);
// Makes a CPU the MADT did not list possible, as number `uid`, with this APIC id. nullptr on success, else
// why not (a number or APIC id in use or out of range, or an APIC id xAPIC mode cannot reach).
char const* add_possible_cpu(uint32_t uid, uint32_t apic_id);

cpuplug::Cpuhp& hotplug();
// Wakes `cpu` (deferred to this CPU's next halt in x2APIC mode).
void wake_requester(uint32_t cpu);
uint32_t possible_count();
uint32_t apic_id_of(uint32_t cpu);

} // namespace kernel::smp
