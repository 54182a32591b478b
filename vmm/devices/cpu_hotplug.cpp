// CpuHotplugDevice: registers decode on the access's offset only, as QEMU's do, so a wide access at 0x4
// never reaches the command byte and a byte read at 0x9 is 0. Guest writes only change slot state under
// the lock; what they ask of the machine (eject, _OST) and their warnings run after it is released.
#include "cpu_hotplug.hpp"

#include <algorithm>
#include <optional>
#include <spdlog/spdlog.h>

namespace vmm {

using namespace cpu_hotplug;

namespace {

// The first few are worth a warning; a guest repeating the same mistake in a loop must not flood the log.
bool valid_size(size_t size) { return size >= 1 && size <= 4; } // QEMU's min/max access size

void drop_events(CpuHotplugDevice::Slot& slot)
{
    slot.insert_pending = slot.remove_pending = slot.unplug_requested = slot.fw_remove = slot.withdrawn = false;
}

} // namespace

struct CpuHotplugDevice::Effect {
    std::optional<uint32_t> ejected;
    struct Ost {
        uint32_t index, event, status;
    };
    std::optional<Ost> ost;
    char const* refusal { nullptr }; // why an eject or a firmware hand-off was ignored
    uint32_t index { 0 };
    uint8_t control { 0 };
};

CpuHotplugDevice::CpuHotplugDevice(std::vector<uint64_t> arch_ids, uint32_t boot_index, Callbacks callbacks)
    : m_arch_ids(std::move(arch_ids))
    , m_boot_index(boot_index)
    , m_callbacks(std::move(callbacks))
    , m_slots(m_arch_ids.size(), Slot {})
{
}

uint32_t CpuHotplugDevice::read_register(uint64_t offset) const
{
    if (m_selector >= possible())
        return 0;
    auto const& slot = m_slots[m_selector];
    switch (offset) {
    case REG_SELECTOR: // command data 2
        return m_command == Command::ArchId ? static_cast<uint32_t>(m_arch_ids[m_selector] >> 32) : 0;
    case REG_STATUS:
        return (slot.present ? STATUS_ENABLED : 0) | (slot.insert_pending ? STATUS_INSERT : 0)
            | (slot.remove_pending ? STATUS_REMOVE : 0) | (slot.fw_remove ? STATUS_FW_REMOVE : 0);
    case REG_DATA:
        if (m_command == Command::NextEvent)
            return m_selector;
        if (m_command == Command::ArchId)
            return static_cast<uint32_t>(m_arch_ids[m_selector]);
        return 0;
    default:
        return 0;
    }
}

void CpuHotplugDevice::read(uint64_t offset, std::span<uint8_t> data)
{
    std::ranges::fill(data, uint8_t { 0 });
    if (!valid_size(data.size())) {
        warn_ignored("read", offset, data.size());
        return;
    }
    uint32_t value;
    {
        std::lock_guard lock(m_mutex);
        value = read_register(offset);
    }
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(value >> (8 * i));
}

void CpuHotplugDevice::write(uint64_t offset, std::span<uint8_t const> data)
{
    if (!valid_size(data.size())) {
        warn_ignored("write", offset, data.size());
        return;
    }
    uint32_t value = 0;
    for (size_t i = 0; i < data.size(); ++i)
        value |= uint32_t { data[i] } << (8 * i);

    Effect effect;
    {
        std::lock_guard lock(m_mutex);
        write_register(offset, value, effect);
    }
    if (effect.refusal)
        warn_refused(effect.refusal, effect.index, effect.control);
    // The machine's handlers stop vCPUs and post QMP events; they may come back into this device.
    if (effect.ejected && m_callbacks.ejected)
        m_callbacks.ejected(*effect.ejected);
    if (effect.ost && m_callbacks.ost)
        m_callbacks.ost(effect.ost->index, effect.ost->event, effect.ost->status);
}

void CpuHotplugDevice::write_register(uint64_t offset, uint32_t value, Effect& effect)
{
    if (offset == REG_SELECTOR) {
        m_selector = value; // kept as written: an out-of-range selector is how enumeration ends
        return;
    }
    if (m_selector >= possible()) {
        spdlog::debug("cpu hotplug: write of {:#x} at offset {} ignored, selector {} is not a possible CPU", value,
            offset, m_selector);
        return;
    }
    auto& slot = m_slots[m_selector];
    switch (offset) {
    case REG_STATUS:
        write_control(value, effect);
        break;
    case REG_COMMAND:
        if (value <= static_cast<uint32_t>(Command::ArchId)) {
            m_command = static_cast<Command>(value);
            if (m_command == Command::NextEvent)
                next_event();
        }
        break;
    case REG_DATA:
        if (m_command == Command::OstEvent) {
            slot.ost_event = value;
        } else if (m_command == Command::OstStatus) {
            slot.ost_status = value;
            effect.ost = Effect::Ost { m_selector, slot.ost_event, slot.ost_status };
        }
        break;
    default:
        break;
    }
}

void CpuHotplugDevice::write_control(uint32_t value, Effect& effect)
{
    auto& slot = m_slots[m_selector];
    // QEMU's priority chain: only the first set bit of these acts.
    if (value & CONTROL_CLEAR_INSERT) {
        slot.insert_pending = false;
    } else if (value & CONTROL_CLEAR_REMOVE) {
        slot.remove_pending = false; // the unplug request stays: the guest clears the event before it ejects
    } else if (value & (CONTROL_EJECT | CONTROL_FW_EJECT)) {
        effect.refusal = eject_refusal(m_selector);
        if (effect.refusal) {
            effect.index = m_selector;
            effect.control = static_cast<uint8_t>(value);
        } else if (value & CONTROL_EJECT) {
            // An empty slot keeps no events: a stale one would have CSCN notify a CPU that is gone.
            slot.present = false;
            drop_events(slot);
            effect.ejected = m_selector;
        } else {
            // No SMM firmware here to act on the hand-off: it only shows in status b4 and in the command 0
            // search until the guest ejects the CPU, the VMM cancels the removal, or the machine resets.
            slot.fw_remove = true;
        }
    }
}

// QEMU refuses only absent CPUs and the boot CPU; like Cloud Hypervisor we also refuse what the VMM did
// not ask to remove, so a guest cannot take CPUs away on its own.
char const* CpuHotplugDevice::eject_refusal(uint32_t index) const
{
    auto const& slot = m_slots[index];
    if (!slot.present)
        return "the CPU is absent";
    if (index == m_boot_index)
        return "it is the boot CPU";
    if (!slot.unplug_requested)
        return "its removal was not requested";
    return nullptr;
}

void CpuHotplugDevice::next_event()
{
    uint64_t const count = possible();
    for (uint64_t i = 0; i < count; ++i) {
        auto index = static_cast<uint32_t>((m_selector + i) % count);
        auto const& slot = m_slots[index];
        if (slot.insert_pending || slot.remove_pending || slot.fw_remove) {
            m_selector = index;
            return;
        }
    }
}

void CpuHotplugDevice::set_present(uint32_t index, bool present)
{
    std::lock_guard lock(m_mutex);
    if (index >= possible())
        return;
    auto& slot = m_slots[index];
    slot.present = present;
    if (!present)
        drop_events(slot);
}

bool CpuHotplugDevice::request_insert(std::span<uint32_t const> indexes)
{
    {
        std::lock_guard lock(m_mutex);
        std::vector<bool> seen(possible());
        for (uint32_t index : indexes) {
            if (index >= possible() || seen[index] || m_slots[index].present)
                return false;
            seen[index] = true;
        }
        for (uint32_t index : indexes) {
            m_slots[index].present = true;
            m_slots[index].insert_pending = true;
        }
    }
    if (!indexes.empty() && m_callbacks.raise_gpe)
        m_callbacks.raise_gpe();
    return true;
}

bool CpuHotplugDevice::request_remove(std::span<uint32_t const> indexes)
{
    {
        std::lock_guard lock(m_mutex);
        std::vector<bool> seen(possible());
        for (uint32_t index : indexes) {
            if (index >= possible() || index == m_boot_index || seen[index] || !m_slots[index].present
                || (m_slots[index].unplug_requested && !m_slots[index].withdrawn))
                return false;
            seen[index] = true;
        }
        for (uint32_t index : indexes) {
            m_slots[index].remove_pending = true;
            m_slots[index].unplug_requested = true;
            m_slots[index].withdrawn = false;
        }
    }
    if (!indexes.empty() && m_callbacks.raise_gpe)
        m_callbacks.raise_gpe();
    return true;
}

void CpuHotplugDevice::cancel_remove(uint32_t index)
{
    std::lock_guard lock(m_mutex);
    if (index >= possible())
        return;
    auto& slot = m_slots[index];
    slot.remove_pending = false;
    slot.fw_remove = false;
    slot.unplug_requested = false;
    slot.withdrawn = false;
}

void CpuHotplugDevice::withdraw_remove(uint32_t index)
{
    std::lock_guard lock(m_mutex);
    if (index >= possible() || !m_slots[index].unplug_requested)
        return;
    auto& slot = m_slots[index];
    slot.remove_pending = false;
    slot.fw_remove = false;
    slot.withdrawn = true;
}

void CpuHotplugDevice::reset()
{
    std::lock_guard lock(m_mutex);
    for (auto& slot : m_slots) {
        drop_events(slot);
        slot.ost_event = slot.ost_status = 0;
    }
    m_command = Command::NextEvent;
}

CpuHotplugDevice::Slot CpuHotplugDevice::slot(uint32_t index) const
{
    std::lock_guard lock(m_mutex);
    return index < possible() ? m_slots[index] : Slot {};
}

void CpuHotplugDevice::warn_refused(char const* why, uint32_t index, uint8_t control)
{
    VMM_GUEST_LOG(m_refused_ejects, warn, "cpu hotplug: {} of CPU {} ignored: {}",
        control & CONTROL_EJECT ? "eject" : "eject hand-off to firmware", index, why);
}

void CpuHotplugDevice::warn_ignored(char const* what, uint64_t offset, size_t size)
{
    VMM_GUEST_LOG(m_ignored_accesses, warn, "cpu hotplug: {}-byte {} at offset {:#x} ignored", size, what, offset);
}

} // namespace vmm
