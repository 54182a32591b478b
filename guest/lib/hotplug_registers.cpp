// The ACPI CPU-hotplug register sequences (QEMU's CSCN, COST, CEJ0), over an abstract accessor.
#include <guest/lib/hotplug_registers.hpp>

#include <cpuplug/base/errno.hpp>

namespace guest::hotplug {

namespace hp = ::cpu_hotplug;

Scan scan_events(Registers& registers, uint32_t possible, uint32_t index_limit, uint16_t* inserts,
    uint16_t* removes, uint32_t capacity)
{
    Scan scan;
    uint32_t uid = 0;
    while (uid < possible) {
        registers.select(uid);
        registers.command(hp::Command::NextEvent);
        uint32_t found = registers.read_data();
        if (found < uid || found >= index_limit)
            break; // wrapped onto an event already collected (or a nonsense answer)
        uint8_t status = registers.read_status();
        bool insert = (status & hp::STATUS_INSERT) != 0;
        bool remove = (status & hp::STATUS_REMOVE) != 0;
        if (!insert && !remove && (status & hp::STATUS_FW_REMOVE) == 0)
            break; // the search found nothing, so the selector did not move
        if (insert) {
            if (scan.inserts == capacity) {
                scan.rescan = true;
                break;
            }
            inserts[scan.inserts++] = static_cast<uint16_t>(found);
            scan.rescan = scan.rescan || remove;
        } else if (remove) {
            if (scan.removes == capacity) {
                scan.rescan = true;
                break;
            }
            // Cleared now, while selected: one selector write fewer than clearing it later.
            registers.control(hp::CONTROL_CLEAR_REMOVE);
            write_ost(registers, hp::OST_EJECT_REQUEST, hp::OST_EJECT_IN_PROGRESS);
            removes[scan.removes++] = static_cast<uint16_t>(found);
        }
        uid = found + 1;
    }
    return scan;
}

void write_ost(Registers& registers, uint32_t event, uint32_t status)
{
    registers.command(hp::Command::OstEvent);
    registers.write_data(event);
    registers.command(hp::Command::OstStatus);
    registers.write_data(status);
}

void acknowledge(Registers& registers, uint32_t index, uint8_t control, uint32_t event, uint32_t status)
{
    registers.select(index);
    registers.control(control);
    write_ost(registers, event, status);
}

bool eject(Registers& registers, uint32_t index)
{
    registers.select(index);
    registers.control(hp::CONTROL_EJECT);
    // An insert event means the eject was taken and the VMM has already plugged the freed slot again
    // (device_add right after DEVICE_DELETED); a refused eject leaves the CPU present without one.
    uint8_t status = registers.read_status();
    return (status & hp::STATUS_ENABLED) == 0 || (status & hp::STATUS_INSERT) != 0;
}

uint32_t read_arch_id(Registers& registers, uint32_t index)
{
    registers.select(index);
    registers.command(hp::Command::ArchId);
    return registers.read_data();
}

Refusal refusal_of(int error, bool rolled_back_online)
{
    if (error == 0)
        return Refusal::None;
    if (error == -cpuplug::ERR_PERM)
        return Refusal::BootCpu;
    if (error == -cpuplug::ERR_BUSY)
        return Refusal::Busy;
    return rolled_back_online ? Refusal::Vetoed : Refusal::Failed;
}

uint32_t ost_status(Refusal refusal)
{
    switch (refusal) {
    case Refusal::None:
        return hp::OST_SUCCESS;
    case Refusal::BootCpu:
        return hp::OST_NOT_SUPPORTED;
    case Refusal::Busy:
        return hp::OST_DEVICE_BUSY;
    case Refusal::Vetoed:
        return hp::OST_DEVICE_IN_USE;
    case Refusal::Failed:
        break;
    }
    return hp::OST_FAILURE;
}

char const* to_string(Refusal refusal)
{
    switch (refusal) {
    case Refusal::None:
        return "none";
    case Refusal::BootCpu:
        return "boot CPU";
    case Refusal::Busy:
        return "busy";
    case Refusal::Vetoed:
        return "a teardown step vetoed it";
    case Refusal::Failed:
        break;
    }
    return "failed";
}

} // namespace guest::hotplug
