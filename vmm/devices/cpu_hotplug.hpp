// QEMU's "modern" ACPI CPU hotplug register block (QEMU's docs/specs/acpi_cpu_hotplug.rst; table in
// docs/acpi.md): 12 bytes the guest's AML (and driver) uses to find CPUs with pending insert/remove events,
// read their APIC ids, acknowledge events, report _OST and eject. Register semantics follow QEMU's
// hw/acpi/cpu.c; ejects follow Cloud Hypervisor: the guest may only eject a CPU whose removal the VMM asked
// for, and never the boot CPU.
#pragma once

#include "io_bus.hpp"

#include <guest/abi/cpu_hotplug.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace vmm {

class CpuHotplugDevice final : public IoDevice {
public:
    // Called on the accessing vCPU thread, after the device's lock is released, so they may call back in.
    struct Callbacks {
        std::function<void(uint32_t index)> ejected; // an accepted eject: the slot is now absent
        std::function<void(uint32_t index, uint32_t event, uint32_t status)> ost; // an _OST status write
        std::function<void()> raise_gpe; // GPE0 bit cpu_hotplug::GPE_BIT, then SCI (AcpiPm::raise_gpe)
    };

    struct Slot {
        bool present;
        bool insert_pending;
        bool remove_pending;
        bool unplug_requested; // sticky: survives the guest clearing the remove event, until eject or cancel
        bool fw_remove;
        bool withdrawn;        // the VMM stopped waiting: no event left, but a late eject is still honoured
        uint32_t ost_event;
        uint32_t ost_status;
    };

    // arch_ids: the APIC id of each possible CPU, by CPU index. Every slot starts absent.
    CpuHotplugDevice(std::vector<uint64_t> arch_ids, uint32_t boot_index, Callbacks callbacks);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    // VMM side (the io thread), safe against concurrent guest accesses.
    // Cold-plugged CPUs at start: presence without an event. An invalid index is ignored.
    void set_present(uint32_t index, bool present);
    // Each CPU becomes present with an insert event, then one GPE. False, with nothing changed, if any
    // index is not possible, already present or repeated.
    bool request_insert(std::span<uint32_t const> indexes);
    // Each CPU gets a remove event and an unplug request, then one GPE. False, with nothing changed, if any
    // index is not possible, absent, the boot CPU, already being removed (a withdrawn request may be made
    // again) or repeated.
    bool request_remove(std::span<uint32_t const> indexes);
    // A removal the VMM stopped waiting for: the event and the firmware hand-off are dropped, so a guest
    // that has not seen the request yet never will; but a guest already taking the CPU down may still
    // eject it, and that eject is honoured. An invalid index is ignored.
    void withdraw_remove(uint32_t index);
    // A removal the guest refused: the event, the firmware hand-off and the request are dropped; the CPU
    // stays present and an eject of it is refused. An invalid index is ignored.
    void cancel_remove(uint32_t index);
    // system_reset: pending events, requests and _OST results cleared; presence and the selector kept;
    // the command back to 0.
    void reset();

    Slot slot(uint32_t index) const; // all zero for an invalid index
    uint32_t possible() const { return static_cast<uint32_t>(m_arch_ids.size()); }
    // Ejects and firmware hand-offs the guest asked for and the device ignored.
    uint64_t refused_ejects() const { return m_refused_ejects.count(); }

private:
    struct Effect; // what a guest write asks of the machine, run after the lock is released

    uint32_t read_register(uint64_t offset) const;
    void write_register(uint64_t offset, uint32_t value, Effect& effect);
    void write_control(uint32_t value, Effect& effect);
    void next_event(); // command 0
    char const* eject_refusal(uint32_t index) const; // nullptr when the guest may eject the CPU
    void warn_refused(char const* why, uint32_t index, uint8_t control);
    void warn_ignored(char const* what, uint64_t offset, size_t size);

    std::vector<uint64_t> const m_arch_ids;
    uint32_t const m_boot_index;
    Callbacks const m_callbacks;

    mutable std::mutex m_mutex; // guards m_slots, m_selector and m_command; never held across a callback
    std::vector<Slot> m_slots;
    uint32_t m_selector { 0 }; // as the guest wrote it, possibly not a possible CPU
    cpu_hotplug::Command m_command { cpu_hotplug::Command::NextEvent };

    // Atomic only: warning rate limits, bumped under or outside the lock.
    GuestLogLimit m_refused_ejects;
    GuestLogLimit m_ignored_accesses;
};

} // namespace vmm
