// The x-cpuhp commands (QMP) over the guest's control page: the request becomes a control-page call, the
// page the guest answers with becomes QMP's reply. Names of states are the guest's, read from its page.
#include "guest_channel.hpp"

#include <cpuplug/cpuhp_state.hpp>
#include <cpuplug/base/errno.hpp>

#include <cstring>
#include <fmt/format.h>

namespace vmm {

namespace {

qmp::Error error(std::string text) { return qmp::generic_error(std::move(text)); }

// A name from the guest's page: printable ASCII up to its NUL, whatever the guest wrote.
std::string page_string(char const* text, size_t size)
{
    std::string out;
    for (size_t i = 0; i < size && text[i] != '\0'; ++i)
        out += (text[i] >= 0x20 && text[i] < 0x7F) ? text[i] : '?';
    return out;
}

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

void cpuhp_with_states(GuestChannel& channel, qmp::CpuhpRequest const& request, qmp::Reply reply, std::vector<uint8_t> const& page)
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
    channel.call({ command, request.cpu, state, [request, reply](auto result) {
                    if (!result.has_value()) {
                        reply(cpuplug::unexpected(error(to_string(result.error()))));
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

} // namespace

void cpuhp_over_channel(GuestChannel& channel, qmp::CpuhpRequest const& request, qmp::Reply reply)
{
    using Kind = qmp::CpuhpRequest::Kind;
    if (request.kind == Kind::Query || ((request.kind == Kind::SetTarget || request.kind == Kind::SetFail)
                                           && request.state.is_string())) {
        // Names are the guest's (dynamic states are named when registered): ask for the list first.
        channel.call({ control::Command::QueryCpuhp, 0, 0, [&channel, request, reply](auto result) {
                        if (!result.has_value()) {
                            reply(cpuplug::unexpected(error(to_string(result.error()))));
                            return;
                        }
                        if (auto bad = check_page(header_of(result.value()))) {
                            reply(cpuplug::unexpected(error(*bad)));
                            return;
                        }
                        if (request.kind == Kind::Query)
                            reply(query_json(result.value()));
                        else
                            cpuhp_with_states(channel, request, reply, result.value());
                    } });
        return;
    }
    cpuhp_with_states(channel, request, std::move(reply), {});
}

} // namespace vmm
