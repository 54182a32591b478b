// The ACPI CPU-hotplug driver: what QEMU's \_GPE._E02 (CSCN), Linux's ACPI processor hotplug and _EJ0 do
// together, on the register block through port I/O system calls. Every access costs a system call and a
// VM exit (~33 us here), so the sequences are QEMU's AML's and nothing more (guest/lib/hotplug_registers).
#include "acpi_hotplug.hpp"

#include "console.hpp"
#include "smp.hpp"
#include "sys.hpp"

#include <guest/abi/cpu_hotplug.hpp>
#include <guest/arch/percpu_layout.h>
#include <guest/lib/format.hpp>
#include <guest/lib/hotplug_registers.hpp>

#include <cpuplug/base/errno.hpp>

namespace kernel::acpi_hotplug {

namespace {

namespace hp = ::cpu_hotplug;
using guest::hotplug::Refusal;

class PortRegisters final : public guest::hotplug::Registers {
public:
    void select(uint32_t index) override { sys::outl(port(hp::REG_SELECTOR), index); }
    void command(hp::Command command) override { sys::outb(port(hp::REG_COMMAND), static_cast<uint8_t>(command)); }
    uint8_t read_status() override { return sys::inb(port(hp::REG_STATUS)); }
    void control(uint8_t bits) override { sys::outb(port(hp::REG_STATUS), bits); }
    uint32_t read_data() override { return sys::inl(port(hp::REG_DATA)); }
    void write_data(uint32_t value) override { sys::outl(port(hp::REG_DATA), value); }

    uint16_t base { 0 };

private:
    uint16_t port(uint16_t offset) const { return static_cast<uint16_t>(base + offset); }
};

PortRegisters g_registers;
guest::acpi::MadtCpu const* g_madt_cpus = nullptr;
uint32_t g_madt_count = 0;
// One walk's events, by CPU index; with capacity for every CPU, a list is never full.
uint16_t g_inserts[GUEST_MAX_CPUS];
uint16_t g_removes[GUEST_MAX_CPUS];
int32_t g_insert_cpu[GUEST_MAX_CPUS]; // the guest's number for each insertion, -1 if refused
// A walk asks for another only when a CPU had an insert and a remove event at once; bounded, so a device
// that keeps both set cannot hold the boot CPU here.
constexpr int MAX_WALKS = 4;

guest::LineBuffer& cpu_line(guest::LineBuffer& line, uint32_t index)
{
    return line.text("acpi: cpu ").dec(index);
}

// The APIC id of a CPU smp::init left out: the MADT's, else the register block's (command 3, _MAT's
// stand-in here), for firmware whose MADT lists only the CPUs present at boot.
uint32_t apic_id_for(uint32_t index)
{
    for (uint32_t i = 0; i < g_madt_count; ++i)
        if (g_madt_cpus[i].uid == index)
            return g_madt_cpus[i].apic_id;
    return guest::hotplug::read_arch_id(g_registers, index);
}

void refuse_removal(uint32_t index, int32_t cpu, Refusal refusal)
{
    auto& hotplug = smp::hotplug();
    g_registers.select(index);
    guest::hotplug::write_ost(g_registers, hp::OST_EJECT_REQUEST, guest::hotplug::ost_status(refusal));
    guest::LineBuffer line;
    cpu_line(line, index).text(" eject refused (").text(guest::hotplug::to_string(refusal));
    if (refusal == Refusal::Busy)
        line.text(hotplug.cpu_hotplug_disabled() ? ": hotplug disabled" : ": last online CPU");
    else if (cpu >= 0 && (refusal == Refusal::Vetoed || refusal == Refusal::Failed))
        line.text(": ").text(cpuplug::errno_name(hotplug.last_result(static_cast<uint32_t>(cpu))));
    console_write_line(line.ch(')'));
}

// Linux's order: offline, then _EJ0, then _STA, then _OST. The remove event was cleared and "eject in
// progress" answered during the walk. A CPU the guest does not run (unknown, or not present here) has
// nothing to take down and is ejected as asked.
void remove(uint32_t index)
{
    auto& hotplug = smp::hotplug();
    int32_t cpu = smp::cpu_of_uid(index);
    if (cpu >= 0 && static_cast<uint32_t>(cpu) == hotplug.boot_cpu())
        return refuse_removal(index, cpu, Refusal::BootCpu);
    bool taken_down = cpu >= 0 && hotplug.cpu_present(static_cast<uint32_t>(cpu));
    if (taken_down) {
        auto number = static_cast<uint32_t>(cpu);
        int result = hotplug.cpu_down(number);
        if (result == 0)
            result = hotplug.set_present(number, false);
        auto refusal = guest::hotplug::refusal_of(result, hotplug.cpu_online(number) && !hotplug.in_limbo(number));
        if (refusal != Refusal::None)
            return refuse_removal(index, cpu, refusal);
    }
    guest::LineBuffer line;
    if (!guest::hotplug::eject(g_registers, index)) {
        // The VMM kept it: then it stays present here too, offline.
        if (taken_down)
            (void)hotplug.set_present(static_cast<uint32_t>(cpu), true);
        guest::hotplug::write_ost(g_registers, hp::OST_EJECT_REQUEST, hp::OST_FAILURE);
        console_write_line(cpu_line(line, index).text(" eject incomplete: still present, offline"));
        return;
    }
    guest::hotplug::write_ost(g_registers, hp::OST_EJECT_REQUEST, hp::OST_SUCCESS);
    console_write_line(cpu_line(line, index).text(" ejected"));
}

// The batch comes up together (in parallel unless cpuhp.parallel=0); each insertion is then acknowledged
// and answered, success only if its CPU reached online.
void insert(uint32_t count)
{
    auto& hotplug = smp::hotplug();
    cpuplug::CpuMask batch;
    for (uint32_t i = 0; i < count; ++i) {
        uint32_t index = g_inserts[i];
        int32_t cpu = smp::cpu_of_uid(index);
        char const* why = nullptr;
        if (cpu < 0) {
            why = smp::add_possible_cpu(index, apic_id_for(index));
            cpu = why ? -1 : static_cast<int32_t>(index);
        }
        if (cpu >= 0 && hotplug.set_present(static_cast<uint32_t>(cpu), true) != 0) {
            why = "not a possible CPU";
            cpu = -1;
        }
        g_insert_cpu[i] = cpu;
        if (cpu < 0) {
            guest::hotplug::acknowledge(g_registers, index, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_FAILURE);
            guest::LineBuffer line;
            console_write_line(cpu_line(line, index).text(" hot-add refused (").text(why).ch(')'));
            continue;
        }
        batch.set(static_cast<uint32_t>(cpu));
    }
    // Disabled (the control page's HotplugDisable): the CPUs become present but stay offline, and the
    // insertions are answered with a failure.
    bool disabled = hotplug.cpu_hotplug_disabled();
    if (!batch.empty() && !disabled)
        smp::bring_up_cpus(batch);
    for (uint32_t i = 0; i < count; ++i) {
        if (g_insert_cpu[i] < 0)
            continue;
        auto cpu = static_cast<uint32_t>(g_insert_cpu[i]);
        bool online = hotplug.state(cpu) == cpuplug::CpuhpState::Online;
        guest::hotplug::acknowledge(g_registers, g_inserts[i], hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK,
            online ? hp::OST_SUCCESS : hp::OST_FAILURE);
        guest::LineBuffer line;
        cpu_line(line, g_inserts[i]).text(" (apic id ").dec(smp::apic_id_of(cpu)).text(") hot-added, ");
        if (online)
            line.text("online");
        else if (disabled)
            line.text("offline (hotplug disabled)");
        else
            line.text("did not come online (").text(cpuplug::errno_name(smp::failed_error(cpu))).ch(')');
        console_write_line(line);
    }
}

} // namespace

void init(uint16_t base, guest::acpi::MadtCpu const* cpus, size_t count)
{
    g_registers.base = base;
    g_madt_cpus = cpus;
    g_madt_count = static_cast<uint32_t>(count);
    g_registers.select(0);
}

bool present() { return g_registers.base != 0; }

void serve()
{
    if (!present())
        return;
    for (int walk = 0; walk < MAX_WALKS; ++walk) {
        // Bounded like CSCN by the CPUs the firmware describes; the search itself wraps over all of them.
        auto scan = guest::hotplug::scan_events(g_registers, g_madt_count, GUEST_MAX_CPUS, g_inserts, g_removes,
            GUEST_MAX_CPUS);
        // CSCN's order: the removal requests are notified during the walk, the insertions after it.
        for (uint32_t i = 0; i < scan.removes; ++i)
            remove(g_removes[i]);
        if (scan.inserts != 0)
            insert(scan.inserts);
        if (!scan.rescan)
            break;
    }
}

} // namespace kernel::acpi_hotplug
