// SMP: the CPUs the MADT lists, the hotplug core that brings them up and down, and the platform it runs
// on (INIT/SIPI, IPIs, halts). Everything here runs at CPL3.
#pragma once

#include <guest/lib/acpi_tables.hpp>
#include <guest/lib/cmdline.hpp>
#include <guest/lib/start_info.hpp>

#include <cpuplug/cpuhp.hpp>

#include <cstddef>
#include <cstdint>

namespace kernel::smp {

struct Config {
    bool parallel { true };           // cpuhp.parallel=
    uint64_t init_udelay_us { 10000 }; // cpu_init_udelay=
    bool trace_steps { false };        // cpuhp.trace=1: report every step to the VMM
    bool test_states { false };        // cpuhp.test_states=1: no-op states in both dynamic ranges
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

cpuplug::Cpuhp& hotplug();
// Wakes `cpu` (deferred to this CPU's next halt in x2APIC mode).
void wake_requester(uint32_t cpu);
uint32_t possible_count();
uint32_t apic_id_of(uint32_t cpu);

} // namespace kernel::smp
