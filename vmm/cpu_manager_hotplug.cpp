// CpuManager: CPU hot-plug (QMP -> the ACPI register block -> the guest, and back). Everything here runs on
// the io thread: device callbacks and status events arrive on vCPU threads and are posted here, so the
// slots need no lock except against run()'s teardown. The whole path is described in docs/hotplug.md.
#include "cpu_manager.hpp"

#include "arch/x86_64/topology.hpp"

#include <guest/abi/cpu_hotplug.hpp>

#include <boost/asio/post.hpp>
#include <algorithm>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vmm {

namespace {

constexpr auto HOTPLUG_POLL_INTERVAL = std::chrono::milliseconds(50);
constexpr auto EJECT_POLL_INTERVAL = std::chrono::milliseconds(1);
constexpr auto VCPU_EJECT_TIMEOUT = std::chrono::seconds(1);
constexpr auto VCPU_START_TIMEOUT = std::chrono::seconds(1);
// The guest brings a hot-added CPU up with the INIT delay and the state machine's own timeouts; give it
// more than a removal, which needs no INIT.
constexpr int PLUG_TIMEOUT_FACTOR = 4;

} // namespace

cpuplug::Result<void, std::string> CpuManager::plug(std::vector<uint32_t> const& indexes,
    std::optional<std::string> const& id, bool paused)
{
    // Checked again: other requests may have run while this one waited in the control queue.
    for (auto index : indexes)
        if (m_slots[index].present())
            return cpuplug::unexpected(fmt::format("CPU[{}] with APIC ID {} exists", index, m_apic_ids[index]));
    if (m_hooks.vm_ending())
        return cpuplug::unexpected(std::string(VM_ENDING_TEXT));
    // A vCPU unplugged earlier is reused from its power-on state; KVM cannot give us a new one for the same id.
    for (auto index : indexes) {
        auto& slot = m_slots[index];
        if (!slot.vcpu) {
            auto vcpu = make_vcpu(index, slot.power_on);
            if (!vcpu.has_value())
                return cpuplug::unexpected(vcpu.error());
            slot.vcpu = vcpu.release_value();
        }
        // Also for a vCPU created just now: KVM_SET_LAPIC makes KVM rebuild its APIC-id map, which a
        // vCPU created after the others first ran is otherwise missing from, so INIT/SIPI to it are lost.
        if (auto restored = restore_vcpu_state(*slot.vcpu, slot.power_on); !restored.has_value())
            return cpuplug::unexpected(fmt::format("cannot reset vCPU {}: {}", index, restored.error().message()));
    }
    auto now = std::chrono::steady_clock::now();
    for (auto index : indexes) {
        auto& slot = m_slots[index];
        auto thread = make_thread(*slot.vcpu);
        // A stopped VM gets its new vCPU stopped too; `cont` releases it with the others.
        if (paused)
            thread->request_pause();
        thread->start();
        // The thread must be in KVM_RUN before the guest can INIT it; this takes microseconds.
        if (!thread->wait_started(VCPU_START_TIMEOUT))
            spdlog::warn("vcpu{}: slow to start", thread->vcpu_id());
        {
            std::lock_guard lock(m_mutex);
            slot.thread = std::move(thread);
        }
        slot.device_id = id;
        slot.qom_path = id ? fmt::format("/machine/peripheral/{}", *id)
                           : fmt::format("/machine/peripheral-anon/device[{}]", m_anonymous_devices++);
        slot.op = Slot::Op::Plugging;
        slot.deadline = now + PLUG_TIMEOUT_FACTOR * m_unplug_timeout;
    }
    if (!m_hotplug->request_insert(indexes))
        spdlog::error("the CPU hotplug device refused an insertion the machine allowed");
    arm_hotplug_timer();
    return {};
}

cpuplug::Result<void, std::string> CpuManager::unplug(std::vector<uint32_t> const& indexes)
{
    // A CPU still being plugged may be removed too, as in QEMU: the device then holds its insert and its
    // remove event together, and the guest handles them in that order.
    for (auto index : indexes) {
        auto const& slot = m_slots[index];
        bool settled = slot.op == Slot::Op::None || slot.op == Slot::Op::Plugging;
        if (!slot.present() || !settled || index == 0)
            return cpuplug::unexpected(fmt::format("CPU {} changed while the request waited; try again", index));
    }
    if (!m_hotplug->request_remove(indexes))
        return cpuplug::unexpected(std::string("the CPU hotplug device refused the removal"));
    auto now = std::chrono::steady_clock::now();
    for (auto index : indexes) {
        auto& slot = m_slots[index];
        // The guest brings a CPU still being plugged up first: its removal may take the rest of the plug's
        // time as well as its own.
        auto start = slot.op == Slot::Op::Plugging ? std::max(slot.deadline, now) : now;
        slot.op = Slot::Op::Unplugging;
        slot.deadline = start + m_unplug_timeout;
    }
    arm_hotplug_timer();
    return {}; // as QEMU: the request is sent; DEVICE_DELETED says it is done
}

// --- what the guest does -------------------------------------------------------------------------------

qmp::Json CpuManager::slot_json(uint32_t index) const
{
    qmp::Json data = qmp::Json::object();
    auto const& slot = m_slots[index];
    if (slot.device_id)
        data["device"] = *slot.device_id;
    data["path"] = slot.qom_path;
    return data;
}

void CpuManager::on_ost(uint32_t index, uint32_t event, uint32_t status)
{
    if (index >= m_slots.size())
        return;
    auto& slot = m_slots[index];
    if (slot.op == Slot::Op::Ejecting) {
        if (slot.held_ost.size() < 64) // a guest writing _OST in a loop must not grow this for ever
            slot.held_ost.emplace_back(event, status);
        return;
    }
    qmp::Json info = qmp::Json::object();
    if (slot.present() && slot.device_id)
        info["device"] = *slot.device_id;
    info["slot"] = std::to_string(index);
    info["slot-type"] = "CPU";
    info["source"] = event;
    info["status"] = status;
    m_hooks.emit("ACPI_DEVICE_OST", qmp::Json { { "info", info } });

    using namespace cpu_hotplug;
    bool refused = event == OST_EJECT_REQUEST && status != OST_SUCCESS && status != OST_EJECT_IN_PROGRESS;
    if (refused && slot.op == Slot::Op::Unplugging) {
        // The guest refused: the CPU stays, and the client learns it as from QEMU.
        VMM_GUEST_LOG(m_log_hotplug, info, "cpu {}: the guest refused its removal (_OST status {:#x})", index, status);
        m_hotplug->cancel_remove(index);
        slot.op = Slot::Op::None;
        m_hooks.emit("DEVICE_UNPLUG_GUEST_ERROR", slot_json(index));
    } else if (refused && slot.op == Slot::Op::None && m_hotplug->slot(index).withdrawn) {
        // A refusal after the timeout withdrew the request: the client heard DEVICE_UNPLUG_GUEST_ERROR
        // then; now no eject of it is to be honoured either.
        m_hotplug->cancel_remove(index);
    } else if (event == OST_DEVICE_CHECK && slot.op == Slot::Op::Plugging) {
        slot.op = Slot::Op::None;
        if (status != OST_SUCCESS)
            VMM_GUEST_LOG(m_log_hotplug, warn, "cpu {}: the guest could not bring the hot-added CPU online (_OST status {:#x})",
                index, status);
    }
}

void CpuManager::on_ejected(uint32_t index)
{
    auto& slot = m_slots[index];
    // The device honours only ejects we asked for: one in progress, or one withdrawn at its timeout (op
    // None) that the guest had already begun; after a refusal or a reset the request is gone.
    if ((slot.op != Slot::Op::Unplugging && slot.op != Slot::Op::None) || !slot.thread) {
        VMM_GUEST_LOG(m_log_hotplug, warn, "cpu {}: ignoring an eject that no removal is waiting for", index);
        return;
    }
    slot.op = Slot::Op::Ejecting;
    slot.thread->request_stop();
    check_ejected(index, std::chrono::steady_clock::now() + VCPU_EJECT_TIMEOUT);
}

// An ejected vCPU's thread has ended: finish the removal now rather than at the next poll.
void CpuManager::vcpu_stopped(uint32_t vcpu_id)
{
    {
        std::lock_guard lock(m_mutex);
        if (m_tearing_down)
            return;
    }
    boost::asio::post(m_io, [this, vcpu_id] {
        for (uint32_t index = 0; index < m_slots.size(); ++index) {
            auto const& slot = m_slots[index];
            if (slot.op == Slot::Op::Ejecting && slot.thread && slot.thread->vcpu_id() == vcpu_id)
                check_ejected(index, std::chrono::steady_clock::now() + VCPU_EJECT_TIMEOUT);
        }
    });
}

void CpuManager::check_ejected(uint32_t index, std::chrono::steady_clock::time_point deadline)
{
    auto& slot = m_slots[index];
    if (slot.op != Slot::Op::Ejecting)
        return;
    if (slot.thread && !slot.thread->finished()) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            // Never wait on a vCPU here: keep the slot busy and look again later.
            spdlog::error("vcpu{}: its thread has not stopped {} ms after the eject", slot.thread->vcpu_id(),
                std::chrono::duration_cast<std::chrono::milliseconds>(VCPU_EJECT_TIMEOUT).count());
            deadline = now + VCPU_EJECT_TIMEOUT;
        }
        auto timer = std::make_shared<boost::asio::steady_timer>(m_io, EJECT_POLL_INTERVAL);
        timer->async_wait([this, index, deadline, timer](boost::system::error_code) { check_ejected(index, deadline); });
        return;
    }
    std::unique_ptr<VcpuThread> thread;
    {
        std::lock_guard lock(m_mutex);
        if (m_tearing_down)
            return; // run() is stopping this thread among the others: leave it to the destructor
        thread = std::move(slot.thread);
    }
    if (thread)
        thread->join(std::chrono::milliseconds(0)); // it has finished: this only reaps it
    auto deleted = slot_json(index);
    slot.qom_path.clear();
    slot.device_id.reset();
    slot.op = Slot::Op::None;
    slot.guest_view = Slot::GuestView::Offline;
    spdlog::info("cpu {}: ejected; vCPU {} parked", index, m_apic_ids[index]);
    // QEMU's order: the CPU's APIC child goes first (it has no id, only a path), then the CPU, then the
    // guest's _OST that followed its eject, which no longer names the device.
    m_hooks.emit("DEVICE_DELETED", qmp::Json { { "path", deleted["path"].get<std::string>() + "/lapic" } });
    m_hooks.emit("DEVICE_DELETED", deleted);
    auto held = std::move(slot.held_ost);
    slot.held_ost.clear();
    for (auto [event, status] : held)
        on_ost(index, event, status);
}

void CpuManager::on_cpu_state(uint32_t index, bool online)
{
    // The guest's word is checked against the VMM's own view: only a plugged slot, and only a change.
    auto view = online ? Slot::GuestView::Online : Slot::GuestView::Offline;
    if (index >= m_slots.size() || !m_slots[index].present() || m_slots[index].guest_view == view) {
        VMM_GUEST_LOG(m_log_cpu_state, warn, "cpu {}: the guest reported it {} (slot {}); no event",
            index, online ? "online" : "offline",
            index >= m_slots.size() ? "out of range" : !m_slots[index].present() ? "not plugged" : "already so");
        return;
    }
    auto& slot = m_slots[index];
    slot.guest_view = view;
    if (online && slot.op == Slot::Op::Plugging)
        slot.op = Slot::Op::None;
    auto ids = ids_from_index(m_topology, index);
    qmp::CpuSlot cpu { index, ids.socket, ids.die, ids.core, ids.thread, m_apic_ids[index], {}, {}, 0, false, false };
    m_hooks.emit(online ? "CPU_ONLINE" : "CPU_OFFLINE",
        qmp::Json { { "cpu-index", index }, { "apic-id", m_apic_ids[index] }, { "props", qmp::cpu_props(cpu, has_dies()) } });
}

void CpuManager::arm_hotplug_timer()
{
    if (m_hotplug_timer_armed)
        return;
    m_hotplug_timer_armed = true;
    m_hotplug_timer.expires_after(HOTPLUG_POLL_INTERVAL);
    m_hotplug_timer.async_wait([this](boost::system::error_code code) {
        m_hotplug_timer_armed = false;
        if (!code)
            check_hotplug_deadlines();
    });
}

void CpuManager::check_hotplug_deadlines()
{
    auto now = std::chrono::steady_clock::now();
    bool waiting = false;
    for (uint32_t index = 0; index < m_slots.size(); ++index) {
        auto& slot = m_slots[index];
        if (slot.op != Slot::Op::Plugging && slot.op != Slot::Op::Unplugging)
            continue;
        if (now < slot.deadline) {
            waiting = true;
            continue;
        }
        if (slot.op == Slot::Op::Unplugging) {
            spdlog::warn("cpu {}: the guest did not complete its removal within {} ms; the request is withdrawn "
                "(an eject the guest already began still completes it)", index, m_unplug_timeout.count());
            m_hotplug->withdraw_remove(index);
            slot.op = Slot::Op::None;
            m_hooks.emit("DEVICE_UNPLUG_GUEST_ERROR", slot_json(index));
        } else {
            spdlog::warn("cpu {}: the guest has not brought the hot-added CPU online", index);
            slot.op = Slot::Op::None;
        }
    }
    if (waiting)
        arm_hotplug_timer();
}

void CpuManager::guest_reported(status_port::CpuEvent event, uint32_t index)
{
    using status_port::CpuEvent;
    if (event == CpuEvent::Online || event == CpuEvent::Offline)
        boost::asio::post(m_io, [this, index, online = event == CpuEvent::Online] { on_cpu_state(index, online); });
    else if (event == CpuEvent::Stopped)
        boost::asio::post(m_io, [this, index] {
            if (index < m_slots.size() && m_slots[index].present())
                m_slots[index].guest_view = Slot::GuestView::Elsewhere;
        });
}

} // namespace vmm
