// ACPI CPU hotplug: QEMU's register block driven directly (there is no AML interpreter here), on GPE0
// bit 2. Insertions come online through the hotplug core; removal requests go down, are ejected and
// answered with _OST. Runs on the boot CPU's main loop.
#pragma once

#include <guest/lib/acpi_tables.hpp>

#include <cstddef>
#include <cstdint>

namespace kernel::acpi_hotplug {

// `base`: the register block's port (the DSDT's PRST region). `cpus`: every processor entry of the MADT,
// for the APIC id of a CPU that smp::init left out. Does what QEMU's PRES._INI did: a write of 0 to the
// selector, which switches a QEMU that starts in the legacy interface to the modern one.
void init(uint16_t base, guest::acpi::MadtCpu const* cpus, size_t count);
bool present();

// GPE0 bit 2 was set (and has been cleared): handle every pending event.
void serve();

} // namespace kernel::acpi_hotplug
