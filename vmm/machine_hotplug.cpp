// Machine: CPU hot-plug (QMP -> the ACPI register block -> the guest, and back) and the guest's control
// page (x-cpuhp commands). Everything here runs on the io thread: device callbacks and status events
// arrive on vCPU threads and are posted here, so the slots need no lock except against run()'s teardown.
// The whole path is described in docs/hotplug.md.
#include "machine.hpp"

#include "arch/x86_64/topology.hpp"

#include <cpuplug/base/errno.hpp>
#include <cpuplug/cpuhp_state.hpp>
#include <guest/abi/cpu_hotplug.hpp>

#include <boost/asio/post.hpp>
#include <cstddef>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vmm {

namespace {

constexpr auto HOTPLUG_POLL_INTERVAL = std::chrono::milliseconds(50);
constexpr auto EJECT_POLL_INTERVAL = std::chrono::milliseconds(1);
constexpr auto VCPU_EJECT_TIMEOUT = std::chrono::seconds(1);
constexpr auto VCPU_START_TIMEOUT = std::chrono::seconds(1);
constexpr auto GUEST_CALL_TIMEOUT = std::chrono::seconds(30);
// The guest brings a hot-added CPU up with the INIT delay and the state machine's own timeouts; give it
// more than a removal, which needs no INIT.
constexpr int PLUG_TIMEOUT_FACTOR = 4;

qmp::Error error(std::string text) { return qmp::generic_error(std::move(text)); }

// A name from the guest's page: printable ASCII up to its NUL, whatever the guest wrote.
std::string page_string(char const* text, size_t size)
{
    std::string out;
    for (size_t i = 0; i < size && text[i] != '\0'; ++i)
        out += (text[i] >= 0x20 && text[i] < 0x7F) ? text[i] : '?';
    return out;
}

} // namespace

// --- QMP entry points --------------------------------------------------------------------------------

void Machine::plug_cpus(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id, qmp::Reply reply)
{
    // Through run control, so a plug never interleaves with stop, cont or system_reset.
    control([this, indexes, id, reply = std::move(reply)](Done done) {
        plug_now(indexes, id, reply);
        done();
    });
}

void Machine::unplug_cpus(std::vector<uint32_t> const& indexes, qmp::Reply reply)
{
    control([this, indexes, reply = std::move(reply)](Done done) {
        unplug_now(indexes, reply);
        done();
    });
}

void Machine::plug_now(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id, qmp::Reply reply)
{
    // Checked again: other requests may have run while this one waited in the control queue.
    for (auto index : indexes)
        if (m_slots[index].present()) {
            reply(cpuplug::unexpected(error(fmt::format("CPU[{}] with APIC ID {} exists", index, m_apic_ids[index]))));
            return;
        }
    if (exit_requested()) {
        reply(cpuplug::unexpected(error("the VM is shutting down")));
        return;
    }
    // A vCPU unplugged earlier is reused from its power-on state; KVM cannot give us a new one for the same id.
    for (auto index : indexes) {
        auto& slot = m_slots[index];
        if (!slot.vcpu) {
            auto vcpu = make_vcpu(index, slot.power_on);
            if (!vcpu.has_value()) {
                reply(cpuplug::unexpected(error(vcpu.error())));
                return;
            }
            slot.vcpu = vcpu.release_value();
        }
        // Also for a vCPU created just now: KVM_SET_LAPIC makes KVM rebuild its APIC-id map, which a
        // vCPU created after the others first ran is otherwise missing from, so INIT/SIPI to it are lost.
        if (auto restored = restore_vcpu_state(*slot.vcpu, slot.power_on); !restored.has_value()) {
            reply(cpuplug::unexpected(error(fmt::format("cannot reset vCPU {}: {}", index, restored.error().message()))));
            return;
        }
    }
    auto now = std::chrono::steady_clock::now();
    for (auto index : indexes) {
        auto& slot = m_slots[index];
        auto thread = make_thread(*slot.vcpu);
        // A stopped VM gets its new vCPU stopped too; `cont` releases it with the others.
        if (m_run_state != qmp::RunState::Running)
            thread->request_pause();
        thread->start();
        // The thread must be in KVM_RUN before the guest can INIT it; this takes microseconds.
        if (!thread->wait_started(VCPU_START_TIMEOUT))
            spdlog::warn("vcpu{}: slow to start", thread->vcpu_id());
        {
            std::lock_guard lock(m_slots_mutex);
            slot.thread = std::move(thread);
        }
        slot.device_id = id;
        slot.qom_path = id ? fmt::format("/machine/peripheral/{}", *id)
                           : fmt::format("/machine/peripheral-anon/device[{}]", m_anonymous_devices++);
        slot.op = Slot::Op::Plugging;
        slot.deadline = now + PLUG_TIMEOUT_FACTOR * m_config.unplug_timeout;
    }
    if (!m_cpu_hotplug->request_insert(indexes))
        spdlog::error("the CPU hotplug device refused an insertion the machine allowed");
    arm_hotplug_timer();
    reply(qmp::Json::object());
}

void Machine::unplug_now(std::vector<uint32_t> const& indexes, qmp::Reply reply)
{
    for (auto index : indexes) {
        auto const& slot = m_slots[index];
        if (!slot.present() || slot.op != Slot::Op::None || index == 0) {
            reply(cpuplug::unexpected(error(fmt::format("CPU {} changed while the request waited; try again", index))));
            return;
        }
    }
    if (!m_cpu_hotplug->request_remove(indexes)) {
        reply(cpuplug::unexpected(error("the CPU hotplug device refused the removal")));
        return;
    }
    auto deadline = std::chrono::steady_clock::now() + m_config.unplug_timeout;
    for (auto index : indexes) {
        m_slots[index].op = Slot::Op::Unplugging;
        m_slots[index].deadline = deadline;
    }
    arm_hotplug_timer();
    reply(qmp::Json::object()); // as QEMU: the request is sent; DEVICE_DELETED says it is done
}

// --- what the guest does -------------------------------------------------------------------------------

qmp::Json Machine::slot_json(uint32_t index) const
{
    qmp::Json data = qmp::Json::object();
    auto const& slot = m_slots[index];
    if (slot.device_id)
        data["device"] = *slot.device_id;
    data["path"] = slot.qom_path;
    return data;
}

void Machine::on_ost(uint32_t index, uint32_t event, uint32_t status)
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
    emit("ACPI_DEVICE_OST", qmp::Json { { "info", info } });

    using namespace cpu_hotplug;
    bool refused = event == OST_EJECT_REQUEST && status != OST_SUCCESS && status != OST_EJECT_IN_PROGRESS;
    if (refused && slot.op == Slot::Op::Unplugging) {
        // The guest refused: the CPU stays, and the client learns it as from QEMU.
        VMM_GUEST_LOG(m_guest_log.hotplug, info, "cpu {}: the guest refused its removal (_OST status {:#x})", index, status);
        m_cpu_hotplug->cancel_remove(index);
        slot.op = Slot::Op::None;
        emit("DEVICE_UNPLUG_GUEST_ERROR", slot_json(index));
    } else if (refused && slot.op == Slot::Op::None && m_cpu_hotplug->slot(index).withdrawn) {
        // A refusal after the timeout withdrew the request: the client heard DEVICE_UNPLUG_GUEST_ERROR
        // then; now no eject of it is to be honoured either.
        m_cpu_hotplug->cancel_remove(index);
    } else if (event == OST_DEVICE_CHECK && slot.op == Slot::Op::Plugging) {
        slot.op = Slot::Op::None;
        if (status != OST_SUCCESS)
            VMM_GUEST_LOG(m_guest_log.hotplug, warn, "cpu {}: the guest could not bring the hot-added CPU online (_OST status {:#x})",
                index, status);
    }
}

void Machine::on_ejected(uint32_t index)
{
    auto& slot = m_slots[index];
    // The device honours only ejects we asked for: one in progress, or one withdrawn at its timeout (op
    // None) that the guest had already begun; after a refusal or a reset the request is gone.
    if ((slot.op != Slot::Op::Unplugging && slot.op != Slot::Op::None) || !slot.thread) {
        VMM_GUEST_LOG(m_guest_log.hotplug, warn, "cpu {}: ignoring an eject that no removal is waiting for", index);
        return;
    }
    slot.op = Slot::Op::Ejecting;
    slot.thread->request_stop();
    check_ejected(index, std::chrono::steady_clock::now() + VCPU_EJECT_TIMEOUT);
}

// An ejected vCPU's thread has ended: finish the removal now rather than at the next poll.
void Machine::vcpu_stopped(uint32_t vcpu_id)
{
    {
        std::lock_guard lock(m_slots_mutex);
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

void Machine::check_ejected(uint32_t index, std::chrono::steady_clock::time_point deadline)
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
        std::lock_guard lock(m_slots_mutex);
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
    emit("DEVICE_DELETED", qmp::Json { { "path", deleted["path"].get<std::string>() + "/lapic" } });
    emit("DEVICE_DELETED", deleted);
    auto held = std::move(slot.held_ost);
    slot.held_ost.clear();
    for (auto [event, status] : held)
        on_ost(index, event, status);
}

void Machine::on_cpu_state(uint32_t index, bool online)
{
    // The guest's word is checked against the VMM's own view: only a plugged slot, and only a change.
    auto view = online ? Slot::GuestView::Online : Slot::GuestView::Offline;
    if (index >= m_slots.size() || !m_slots[index].present() || m_slots[index].guest_view == view) {
        VMM_GUEST_LOG(m_guest_log.unknown_event, warn, "cpu {}: the guest reported it {} (slot {}); no event",
            index, online ? "online" : "offline",
            index >= m_slots.size() ? "out of range" : !m_slots[index].present() ? "not plugged" : "already so");
        return;
    }
    auto& slot = m_slots[index];
    slot.guest_view = view;
    if (online && slot.op == Slot::Op::Plugging)
        slot.op = Slot::Op::None;
    auto ids = ids_from_index(m_config.smp.topology, index);
    qmp::CpuSlot cpu { index, ids.socket, ids.die, ids.core, ids.thread, m_apic_ids[index], {}, {}, 0, false, false };
    emit(online ? "CPU_ONLINE" : "CPU_OFFLINE",
        qmp::Json { { "cpu-index", index }, { "apic-id", m_apic_ids[index] }, { "props", qmp::cpu_props(cpu, has_dies()) } });
}

void Machine::arm_hotplug_timer()
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

void Machine::check_hotplug_deadlines()
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
                "(an eject the guest already began still completes it)", index, m_config.unplug_timeout.count());
            m_cpu_hotplug->withdraw_remove(index);
            slot.op = Slot::Op::None;
            emit("DEVICE_UNPLUG_GUEST_ERROR", slot_json(index));
        } else {
            spdlog::warn("cpu {}: the guest has not brought the hot-added CPU online", index);
            slot.op = Slot::Op::None;
        }
    }
    if (waiting)
        arm_hotplug_timer();
}

// --- the guest's control page ----------------------------------------------------------------------------

void Machine::guest_call(GuestCall call)
{
    if (exit_requested()) {
        call.done(cpuplug::unexpected(std::string("the VM is shutting down")));
        return;
    }
    if (m_control_page == 0) {
        call.done(cpuplug::unexpected(std::string(
            "the guest has no control page: x-cpuhp commands need cpuplug's guest, once it has booted")));
        return;
    }
    m_guest_calls.push_back(std::move(call));
    if (!m_guest_call_sent)
        send_guest_call();
}

void Machine::send_guest_call()
{
    if (m_guest_calls.empty())
        return;
    if (m_control_page == 0) { // the guest was reset meanwhile
        finish_guest_call(cpuplug::unexpected(std::string("the guest was reset")));
        return;
    }
    auto const& call = m_guest_calls.front();
    auto field = [this](size_t offset, uint32_t value) { MUST(m_memory.write_object(m_control_page + offset, value)); };
    field(offsetof(control::Header, command), static_cast<uint32_t>(call.command));
    field(offsetof(control::Header, cpu), call.cpu);
    field(offsetof(control::Header, state), call.state);
    // The sequence number last: the guest reads the request once it sees it change. The GPE ioctl that
    // follows is a full barrier for the guest's view.
    std::atomic_thread_fence(std::memory_order_release);
    field(offsetof(control::Header, request_seq), ++m_guest_seq);
    m_guest_call_sent = true;
    m_pm->raise_gpe(control::GPE_BIT);
    m_guest_call_timer.expires_after(GUEST_CALL_TIMEOUT);
    m_guest_call_timer.async_wait([this, seq = m_guest_seq](boost::system::error_code code) {
        if (!code && m_guest_call_sent && m_guest_seq == seq)
            finish_guest_call(cpuplug::unexpected(fmt::format("the guest did not answer within {} s",
                std::chrono::duration_cast<std::chrono::seconds>(GUEST_CALL_TIMEOUT).count())));
    });
}

void Machine::guest_call_answered(uint32_t seq)
{
    if (!m_guest_call_sent || (m_guest_seq & 0xFFFFFF) != seq || m_control_page == 0)
        return; // late or foreign: the call it belonged to has timed out
    std::vector<uint8_t> page(control::SIZE);
    MUST(m_memory.read(m_control_page, page));
    finish_guest_call(std::move(page));
}

void Machine::finish_guest_call(cpuplug::Result<std::vector<uint8_t>, std::string> result)
{
    m_guest_call_timer.cancel();
    m_guest_call_sent = false;
    auto call = std::move(m_guest_calls.front());
    m_guest_calls.pop_front();
    call.done(std::move(result));
    if (!m_guest_calls.empty())
        boost::asio::post(m_io, [this] {
            if (!m_guest_call_sent)
                send_guest_call();
        });
}

void Machine::fail_guest_calls(std::string const& why)
{
    m_guest_call_timer.cancel();
    m_guest_call_sent = false; // an answer still on its way is ignored
    auto calls = std::move(m_guest_calls);
    m_guest_calls.clear();
    for (auto& call : calls)
        call.done(cpuplug::unexpected(why));
}

namespace {

control::Header header_of(std::vector<uint8_t> const& page)
{
    control::Header header;
    std::memcpy(&header, page.data(), sizeof(header));
    return header;
}

std::optional<std::string> check_page(control::Header const& header)
{
    if (header.magic != control::MAGIC || header.version != control::VERSION)
        return "the guest's control page is not version 1";
    if (header.state_count > control::MAX_STATES || header.cpu_count > control::MAX_CPU_RECORDS)
        return "the guest's control page is inconsistent";
    return std::nullopt;
}

std::string state_name(control::Header const& header, uint16_t index)
{
    for (uint32_t i = 0; i < header.state_count; ++i)
        if (header.states[i].index == index)
            return page_string(header.states[i].name, control::NAME_SIZE);
    return std::to_string(index);
}

qmp::Json query_json(std::vector<uint8_t> const& page)
{
    auto header = header_of(page);
    qmp::Json states = qmp::Json::array();
    for (uint32_t i = 0; i < header.state_count; ++i)
        states.push_back({ { "index", header.states[i].index },
            { "name", page_string(header.states[i].name, control::NAME_SIZE) } });
    qmp::Json cpus = qmp::Json::array();
    for (uint32_t i = 0; i < header.cpu_count; ++i) {
        control::CpuRecord record;
        std::memcpy(&record, page.data() + control::CPU_RECORDS_OFFSET + i * sizeof(record), sizeof(record));
        qmp::Json cpu;
        cpu["cpu-index"] = i;
        cpu["apic-id"] = record.apic_id;
        cpu["state"] = state_name(header, record.state);
        cpu["state-index"] = record.state;
        cpu["target"] = state_name(header, record.target);
        cpu["present"] = (record.flags & control::CPU_PRESENT) != 0;
        cpu["online"] = (record.flags & control::CPU_ONLINE) != 0;
        cpu["active"] = (record.flags & control::CPU_ACTIVE) != 0;
        cpu["fail"] = record.fail == cpuplug::CPUHP_INVALID ? qmp::Json(nullptr) : qmp::Json(state_name(header, record.fail));
        cpu["rolled-back"] = (record.flags & control::CPU_ROLLED_BACK) != 0;
        cpu["last-result"] = cpuplug::errno_name(record.last_result);
        cpus.push_back(std::move(cpu));
    }
    return { { "states", states }, { "cpus", cpus }, { "hotplug-disabled", header.disabled > 0 },
        { "boot-cpu", header.boot_cpu } };
}

} // namespace

void Machine::cpuhp(qmp::CpuhpRequest const& request, qmp::Reply reply)
{
    using Kind = qmp::CpuhpRequest::Kind;
    if (request.kind == Kind::Query || ((request.kind == Kind::SetTarget || request.kind == Kind::SetFail)
                                           && request.state.is_string())) {
        // Names are the guest's (dynamic states are named when registered): ask for the list first.
        guest_call({ control::Command::QueryCpuhp, 0, 0, [this, request, reply](auto result) {
                        if (!result.has_value()) {
                            reply(cpuplug::unexpected(error(result.error())));
                            return;
                        }
                        if (auto bad = check_page(header_of(result.value()))) {
                            reply(cpuplug::unexpected(error(*bad)));
                            return;
                        }
                        if (request.kind == Kind::Query)
                            reply(query_json(result.value()));
                        else
                            cpuhp_with_states(request, reply, result.value());
                    } });
        return;
    }
    cpuhp_with_states(request, std::move(reply), {});
}

void Machine::cpuhp_with_states(qmp::CpuhpRequest const& request, qmp::Reply reply, std::vector<uint8_t> const& page)
{
    using Kind = qmp::CpuhpRequest::Kind;
    uint32_t state = 0;
    if (request.kind == Kind::SetTarget || request.kind == Kind::SetFail) {
        if (request.state.is_string()) {
            auto name = request.state.get<std::string>();
            auto header = header_of(page);
            std::optional<uint32_t> found;
            for (uint32_t i = 0; i < header.state_count; ++i)
                if (page_string(header.states[i].name, control::NAME_SIZE) == name)
                    found = header.states[i].index;
            if (request.kind == Kind::SetFail && name == "none")
                found = cpuplug::CPUHP_INVALID;
            if (!found) {
                reply(cpuplug::unexpected(error(fmt::format("'{}' is not a hotplug state of this guest", name))));
                return;
            }
            state = *found;
        } else {
            auto value = request.state.get<int64_t>();
            // Linux's fail file takes -1 to disarm.
            if (request.kind == Kind::SetFail && value == -1)
                value = cpuplug::CPUHP_INVALID;
            if (value < 0 || value > 0xFFFF) {
                reply(cpuplug::unexpected(error(fmt::format("Invalid state: {}", value))));
                return;
            }
            state = static_cast<uint32_t>(value);
        }
    }
    control::Command command = control::Command::None;
    switch (request.kind) {
    case Kind::SetTarget:
        command = control::Command::SetTarget;
        break;
    case Kind::SetFail:
        command = control::Command::SetFail;
        break;
    case Kind::Disable:
        command = control::Command::HotplugDisable;
        break;
    case Kind::Enable:
        command = control::Command::HotplugEnable;
        break;
    case Kind::Query:
        return;
    }
    guest_call({ command, request.cpu, state, [request, reply](auto result) {
                    if (!result.has_value()) {
                        reply(cpuplug::unexpected(error(result.error())));
                        return;
                    }
                    auto header = header_of(result.value());
                    if (header.result == 0) {
                        reply(qmp::Json::object());
                        return;
                    }
                    // The state machine's answer, as Linux's sysfs write would fail with it.
                    auto what = request.kind == Kind::Enable ? std::string("hotplug is not disabled")
                                                             : fmt::format("cpu {}", request.cpu);
                    reply(cpuplug::unexpected(error(fmt::format("{}: {} ({})", what,
                        cpuplug::errno_name(header.result), header.result))));
                } });
}

} // namespace vmm
