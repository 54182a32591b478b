// The guest's side of QEMU's ACPI CPU-hotplug register block (guest/abi/cpu_hotplug.hpp) without an AML
// interpreter: what QEMU's CSCN, COST and CEJ0 methods do, as functions over an abstract accessor, so the
// host tests run them against a fake block. Every access is a VM exit (and, from the CPL3 kernel, a system
// call), so the sequences here are the AML's with nothing added.
#pragma once

#include <guest/abi/cpu_hotplug.hpp>

#include <cstdint>

namespace guest::hotplug {

// One access each, at the widths QEMU's AML uses: the selector and data as dwords, status, control and
// command as bytes.
class Registers {
public:
    virtual ~Registers() = default;
    virtual void select(uint32_t index) = 0;                // offset 0
    virtual void command(::cpu_hotplug::Command command) = 0; // offset 5
    virtual uint8_t read_status() = 0;                      // offset 4
    virtual void control(uint8_t bits) = 0;                 // offset 4
    virtual uint32_t read_data() = 0;                       // offset 8
    virtual void write_data(uint32_t value) = 0;            // offset 8
};

struct Scan {
    uint32_t inserts { 0 }; // CPU indexes written to the caller's insert list, ascending
    uint32_t removes { 0 }; // and to its removal list
    // Events were left pending: a list was full, or a CPU had an insert and a remove event (the insert is
    // taken, as CSCN does; the remove waits). Walk again once these are handled.
    bool rescan { false };
};

// CSCN's walk: from index 0, command 0 (the next CPU with an event, from the selector inclusive, wrapping),
// the found index read back from the data register; it stops when that index wrapped below the one asked
// for, or when the selector stayed put on a CPU without events (there are none left), or at `possible`.
// Insertions are only collected: their events stay pending until the caller acknowledges them, so the
// final search wraps onto one of them and ends the walk. A removal request's event is cleared at once,
// while the selector is on it, and answered _OST(eject request, in progress). A CPU with only the
// firmware-eject flag is skipped. An index at or past `index_limit` ends the walk (a hostile device cannot
// make it loop or overflow a list: the index asked for only grows).
Scan scan_events(Registers& registers, uint32_t possible, uint32_t index_limit, uint16_t* inserts,
    uint16_t* removes, uint32_t capacity);

// COST on the selected CPU: the event, then the status (whose write makes the VMM emit ACPI_DEVICE_OST).
void write_ost(Registers& registers, uint32_t event, uint32_t status);
// Selects `index`, writes `control` (clear an event) and answers _OST, sharing the one selector write.
void acknowledge(Registers& registers, uint32_t index, uint8_t control, uint32_t event, uint32_t status);
// CEJ0 on `index`, then _STA's look at the enabled bit, as OSPM does after _EJ0: true if the CPU is gone,
// or back with a new insert event (the VMM plugged the freed slot again at once). Leaves `index` selected.
bool eject(Registers& registers, uint32_t index);
// Command 3: the low 32 bits of the CPU's arch id (its APIC id), for a CPU the MADT did not list.
uint32_t read_arch_id(Registers& registers, uint32_t index);

// Why a removal request was refused, and the _OST status that says so.
enum class Refusal : uint8_t {
    None,
    BootCpu,  // the boot CPU is also the control CPU: OST_NOT_SUPPORTED
    Busy,     // hotplug disabled, or the last online CPU: OST_DEVICE_BUSY
    Vetoed,   // a teardown step failed and the CPU was rolled back online: OST_DEVICE_IN_USE
    Failed,   // anything else (a CPU in limbo, a timeout): OST_FAILURE
};
// From cpu_down's result (-ERR_PERM, -ERR_BUSY, ...) and whether the CPU is back online after a rollback.
Refusal refusal_of(int error, bool rolled_back_online);
uint32_t ost_status(Refusal refusal);
char const* to_string(Refusal refusal);

} // namespace guest::hotplug
