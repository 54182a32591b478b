// GuestChannel: status-port decoding (vCPU threads) and the control page's request/answer handshake (io
// thread). The handshake's steps are in guest/abi/control.hpp.
#include "guest_channel.hpp"

#include "exit_request.hpp"

#include <boost/asio/post.hpp>
#include <cstddef>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace vmm {

namespace {

constexpr auto GUEST_CALL_TIMEOUT = std::chrono::seconds(30);

} // namespace

std::string to_string(GuestCallError error)
{
    switch (error) {
    case GuestCallError::VmEnding:
        return VM_ENDING_TEXT;
    case GuestCallError::NoControlPage:
        return "the guest has no control page: x-cpuhp commands need cpuplug's guest, once it has booted";
    case GuestCallError::GuestReset:
        return "the guest was reset";
    case GuestCallError::Timeout:
        return fmt::format("the guest did not answer within {} s",
            std::chrono::duration_cast<std::chrono::seconds>(GUEST_CALL_TIMEOUT).count());
    }
    return "the guest did not answer";
}

GuestChannel::GuestChannel(boost::asio::io_context& io, GuestMemory& memory, Listener listener)
    : m_io(io)
    , m_memory(memory)
    , m_listener(std::move(listener))
    , m_status(std::make_shared<StatusPort>([this](uint32_t event, auto when) { on_status_event(event, when); }))
    , m_timer(io)
{
}

void GuestChannel::on_status_event(uint32_t event, TimePoint when)
{
    using namespace status_port;
    switch (event_kind(event)) {
    case Kind::Milestone:
        m_listener.milestone(static_cast<Milestone>(event_payload(event) & 0xFFFF), when);
        break;
    case Kind::Cpu: {
        auto kind = event_cpu_event(event);
        if (kind < CpuEvent::Kicked || kind > CpuEvent::Stopped) {
            VMM_GUEST_LOG(m_log_unknown_event, warn, "status port: unknown CPU event {:#010x}", event);
            break;
        }
        m_listener.cpu(kind, event_cpu(event), event_step(event), when);
        break;
    }
    case Kind::Control: {
        uint32_t value = event_control_value(event);
        if (event_control(event) == ControlEvent::Page) {
            boost::asio::post(m_io, [this, address = uint64_t(value) << 12] { page_announced(address); });
        } else if (event_control(event) == ControlEvent::Done) {
            boost::asio::post(m_io, [this, value] { answered(value); });
        } else {
            VMM_GUEST_LOG(m_log_unknown_event, warn, "status port: unknown control event {:#010x}", event);
        }
        break;
    }
    case Kind::Exit:
        m_listener.exit(static_cast<uint8_t>(event_payload(event)));
        break;
    default:
        VMM_GUEST_LOG(m_log_unknown_event, warn, "status port: unknown event {:#010x}", event);
        break;
    }
}

void GuestChannel::page_announced(uint64_t address)
{
    if (!m_memory.contains(address, control::SIZE)) {
        VMM_GUEST_LOG(m_log_control_page, warn, "guest: control page at {:#x} is not RAM; ignored", address);
        return;
    }
    m_page = address;
}

void GuestChannel::call(Call call)
{
    if (m_listener.vm_ending()) {
        call.done(cpuplug::unexpected(GuestCallError::VmEnding));
        return;
    }
    if (m_page == 0) {
        call.done(cpuplug::unexpected(GuestCallError::NoControlPage));
        return;
    }
    m_calls.push_back(std::move(call));
    if (!m_sent)
        send();
}

void GuestChannel::send()
{
    if (m_calls.empty())
        return;
    if (m_page == 0) { // the guest was reset meanwhile
        finish(cpuplug::unexpected(GuestCallError::GuestReset));
        return;
    }
    auto const& call = m_calls.front();
    auto field = [this](size_t offset, uint32_t value) { MUST(m_memory.write_object(m_page + offset, value)); };
    field(offsetof(control::Header, command), static_cast<uint32_t>(call.command));
    field(offsetof(control::Header, cpu), call.cpu);
    field(offsetof(control::Header, state), call.state);
    // The sequence number last: the guest reads the request once it sees it change. The GPE ioctl that
    // follows is a full barrier for the guest's view.
    std::atomic_thread_fence(std::memory_order_release);
    field(offsetof(control::Header, request_seq), ++m_seq);
    m_sent = true;
    m_listener.raise_gpe();
    m_timer.expires_after(GUEST_CALL_TIMEOUT);
    m_timer.async_wait([this, seq = m_seq](boost::system::error_code code) {
        if (!code && m_sent && m_seq == seq)
            finish(cpuplug::unexpected(GuestCallError::Timeout));
    });
}

void GuestChannel::answered(uint32_t seq)
{
    if (!m_sent || (m_seq & 0xFFFFFF) != seq || m_page == 0)
        return; // late or foreign: the call it belonged to has timed out
    std::vector<uint8_t> page(control::SIZE);
    MUST(m_memory.read(m_page, page));
    finish(std::move(page));
}

void GuestChannel::finish(Answer result)
{
    m_timer.cancel();
    m_sent = false;
    auto call = std::move(m_calls.front());
    m_calls.pop_front();
    call.done(std::move(result));
    if (!m_calls.empty())
        boost::asio::post(m_io, [this] {
            if (!m_sent)
                send();
        });
}

void GuestChannel::fail_all(GuestCallError why)
{
    m_timer.cancel();
    m_sent = false; // an answer still on its way is ignored
    auto calls = std::move(m_calls);
    m_calls.clear();
    for (auto& call : calls)
        call.done(cpuplug::unexpected(why));
}

void GuestChannel::reset()
{
    m_page = 0; // the new guest announces its own
    if (m_sent)
        finish(cpuplug::unexpected(GuestCallError::GuestReset));
}

} // namespace vmm
