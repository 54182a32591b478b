// Session: framing by JsonStream, then QEMU's order of checks (qapi/qmp-dispatch.c): a JSON object, only
// known members, `execute` (or `exec-oob`) a string, `arguments` an object, negotiation state, the command,
// whether it may run out of band, its arguments.
#include "protocol.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <limits>

#include <sys/time.h>

namespace vmm::qmp {

void CommandTable::add(Command command)
{
    auto name = command.name;
    m_commands.insert_or_assign(std::move(name), std::move(command));
}

Command const* CommandTable::find(std::string const& name) const
{
    auto it = m_commands.find(name);
    return it == m_commands.end() ? nullptr : &it->second;
}

std::vector<std::string> CommandTable::names() const
{
    std::vector<std::string> names;
    for (auto const& [name, command] : m_commands)
        names.push_back(name);
    return names;
}

namespace {

char const* type_name(ArgType type)
{
    switch (type) {
    case ArgType::String:
        return "string";
    case ArgType::Integer:
        return "integer";
    case ArgType::Boolean:
        return "boolean";
    case ArgType::Number:
        return "number";
    case ArgType::Object:
        return "object";
    case ArgType::Array:
        return "array";
    case ArgType::Any:
        return "any";
    }
    return "value";
}

// nlohmann's messages start with a tag and, for syntax errors, a position: "[json.exception.parse_error.101]
// parse error at line 1, column 9: syntax error while parsing value - ...". Keep what a person needs.
std::string parse_error_detail(std::string what)
{
    if (auto tag = what.find("] "); what.starts_with("[json.exception.") && tag != std::string::npos)
        what.erase(0, tag + 2);
    if (auto position = what.find(": "); what.starts_with("parse error") && position != std::string::npos)
        what.erase(0, position + 2);
    return what;
}

} // namespace

bool has_type(Json const& value, ArgType type)
{
    switch (type) {
    case ArgType::String:
        return value.is_string();
    case ArgType::Integer:
        return value.is_number_integer();
    case ArgType::Boolean:
        return value.is_boolean();
    case ArgType::Number:
        return value.is_number();
    case ArgType::Object:
        return value.is_object();
    case ArgType::Array:
        return value.is_array();
    case ArgType::Any:
        return true;
    }
    return false;
}

std::optional<Error> check_arguments(Command const& command, Json const& arguments)
{
    // QEMU's visitor order: declared parameters first (missing, wrong type), then members left over.
    for (auto const& param : command.params) {
        auto it = arguments.find(param.name);
        if (it == arguments.end()) {
            if (!param.optional)
                return generic_error(fmt::format("Parameter '{}' is missing", param.name));
            continue;
        }
        if (!has_type(*it, param.type))
            return generic_error(
                fmt::format("Invalid parameter type for '{}', expected: {}", param.name, type_name(param.type)));
    }
    if (command.allow_extra_arguments)
        return std::nullopt;
    for (auto const& [key, value] : arguments.items()) {
        bool known = false;
        for (auto const& param : command.params)
            known = known || param.name == key;
        if (!known)
            return generic_error(fmt::format("Parameter '{}' is unexpected", key));
    }
    return std::nullopt;
}

Session::Session(CommandTable const& commands, Callbacks callbacks, bool offer_oob)
    : m_commands(commands)
    , m_callbacks(std::move(callbacks))
    , m_stream({ [this](std::string text) { enqueue({ std::move(text), {} }); },
        [this](std::string reason) { enqueue({ std::nullopt, std::move(reason) }); } })
    , m_offer_oob(offer_oob)
{
}

void Session::enqueue(Item item)
{
    item.number = m_received++;
    // Parsed here to tell which queue it joins, and again when it runs: only the text waits in the queue
    // (a parsed document takes many times the memory of its text).
    bool guest = false;
    if (item.text) {
        Json request = Json::parse(*item.text, nullptr, false);
        if (request.is_object()) {
            auto execute = request.find("execute");
            if (execute != request.end() && execute->is_string())
                if (auto const* command = m_commands.find(execute->get<std::string>()))
                    guest = command->waits_for_guest;
            // As QEMU: `exec-oob` without `execute` marks an out-of-band request, whatever else it holds;
            // it jumps the queue only once oob is enabled (pump), and is checked in full when it runs.
            item.oob = execute == request.end() && request.contains("exec-oob");
        }
    }
    // Out-of-band requests wait in the in-band queue, in their place: until oob is enabled they are
    // in-band requests (which fail: 'exec-oob' is unexpected then).
    (guest ? m_guest_queue : m_queue).push_back(std::move(item));
}

void Session::greet(Json const& version)
{
    // QEMU offers out-of-band execution on a monitor with its own I/O thread (every socket); here every
    // session can do it.
    Json capabilities = Json::array();
    if (m_offer_oob)
        capabilities.push_back("oob");
    send(Json { { "QMP", { { "version", version }, { "capabilities", capabilities } } } });
}

void Session::feed(std::string_view bytes)
{
    m_stream.feed(bytes);
    pump();
}

void Session::event(std::string const& line)
{
    if (m_negotiated && !m_closed)
        m_callbacks.send(line);
}

void Session::send(Json const& message)
{
    if (!m_closed)
        m_callbacks.send(to_qmp_text(message));
}

void Session::pump()
{
    if (m_pumping)
        return; // the loop below picks up where a synchronous reply left off
    // A reply may make the owner drop us (a send that overflows closes the client): stay alive till the end.
    auto self = shared_from_this();
    m_pumping = true;
    // Requests from m_queue run one at a time, in order. A guest-waiting one goes when no other runs and
    // every request before it has been answered, whether or not a later, ordinary one is running (which
    // must not hold it back: that one might wait long, and the guest command came first).
    // Out-of-band requests (once enabled) go first, whatever runs or waits.
    while (!m_closed) {
        if (m_oob) {
            auto oob = std::find_if(m_queue.begin(), m_queue.end(), [](Item const& item) { return item.oob; });
            if (oob != m_queue.end()) {
                Item item = std::move(*oob);
                m_queue.erase(oob);
                ++m_oob_running;
                process(item, Lane::OutOfBand);
                continue;
            }
        }
        uint64_t first_unanswered = m_busy ? m_busy_number
            : m_queue.empty()              ? std::numeric_limits<uint64_t>::max()
                                           : m_queue.front().number;
        bool guest = !m_guest_busy && !m_guest_queue.empty() && m_guest_queue.front().number < first_unanswered;
        if (!guest && (m_busy || m_queue.empty()))
            break;
        auto& queue = guest ? m_guest_queue : m_queue;
        Item item = std::move(queue.front());
        queue.pop_front();
        if (!item.text) {
            respond(cpuplug::unexpected(generic_error(item.error)), std::nullopt, item.number);
            continue;
        }
        (guest ? m_guest_busy : m_busy) = true;
        if (!guest)
            m_busy_number = item.number;
        process(item, guest ? Lane::Guest : Lane::InBand);
    }
    m_pumping = false;
    if (wants_input() && !m_closed && m_callbacks.drained)
        m_callbacks.drained();
}

void Session::respond(Outcome outcome, std::optional<Json> const& id, uint64_t number)
{
    if (m_closed)
        return;
    if (m_callbacks.answering)
        m_callbacks.answering(number);
    Json message;
    if (outcome.has_value()) {
        message["return"] = std::move(outcome).value();
    } else {
        auto const& error = outcome.error();
        message["error"] = { { "class", error.error_class }, { "desc", error.desc } };
    }
    if (id)
        message["id"] = *id;
    send(message);
}

Outcome Session::negotiate(Json const& arguments)
{
    // Arguments are checked first, as QEMU's generated marshaller does before the command runs.
    for (auto const& [key, value] : arguments.items())
        if (key != "enable")
            return cpuplug::unexpected(generic_error(fmt::format("Parameter '{}' is unexpected", key)));
    bool wants_oob = false;
    if (auto enable = arguments.find("enable"); enable != arguments.end()) {
        if (!enable->is_array())
            return cpuplug::unexpected(generic_error("Invalid parameter type for 'enable', expected: array"));
        // QEMU's order: every element's type and value (QMPCapability has one member, oob), then whether
        // negotiation is over, then whether the capability is on offer.
        for (size_t i = 0; i < enable->size(); ++i) {
            auto const& capability = (*enable)[i];
            if (!capability.is_string())
                return cpuplug::unexpected(
                    generic_error(fmt::format("Invalid parameter type for 'enable[{}]', expected: string", i)));
            auto name = capability.get<std::string>();
            if (name != "oob")
                return cpuplug::unexpected(
                    generic_error(fmt::format("Parameter 'enable[{}]' does not accept value '{}'", i, name)));
            wants_oob = true;
        }
    }
    if (m_negotiated)
        return cpuplug::unexpected(Error { COMMAND_NOT_FOUND, "Capabilities negotiation is already complete, command ignored" });
    if (wants_oob && !m_offer_oob)
        return cpuplug::unexpected(generic_error("Capability oob not available"));
    m_oob = wants_oob;
    m_negotiated = true;
    return Json::object();
}

void Session::release(Lane lane)
{
    switch (lane) {
    case Lane::InBand:
        m_busy = false;
        break;
    case Lane::Guest:
        m_guest_busy = false;
        break;
    case Lane::OutOfBand:
        --m_oob_running;
        break;
    }
}

void Session::process(Item const& item, Lane lane)
{
    std::optional<Json> id;
    uint64_t number = item.number;
    auto finish = [this, &id, number, lane](Outcome outcome) {
        respond(std::move(outcome), id, number);
        release(lane);
    };

    Json request;
    try {
        request = Json::parse(*item.text);
    } catch (Json::exception const& error) {
        // A syntax error (parse_error) or a number JSON allows but a double cannot hold, 1e400 (out_of_range).
        finish(cpuplug::unexpected(generic_error("JSON parse error, " + parse_error_detail(error.what()))));
        return;
    }
    if (!request.is_object()) {
        finish(cpuplug::unexpected(generic_error("QMP input must be a JSON object")));
        return;
    }
    if (auto it = request.find("id"); it != request.end())
        id = *it; // echoed verbatim, whatever its type, from here on
    // `exec-oob` is a known member only on a connection that enabled oob, as QEMU's allow_oob.
    for (auto const& [key, value] : request.items())
        if (key != "execute" && key != "arguments" && key != "id" && !(key == "exec-oob" && m_oob)) {
            finish(cpuplug::unexpected(generic_error(fmt::format("QMP input member '{}' is unexpected", key))));
            return;
        }
    auto execute = request.find("execute");
    bool oob = false;
    if (auto exec_oob = request.find("exec-oob"); exec_oob != request.end()) {
        if (execute != request.end()) {
            // QEMU names whichever of the two its hash table yields second; here always this one.
            finish(cpuplug::unexpected(generic_error("QMP input member 'execute' clashes with 'exec-oob'")));
            return;
        }
        execute = exec_oob;
        oob = true;
    }
    if (execute == request.end()) {
        finish(cpuplug::unexpected(generic_error("QMP input lacks member 'execute'")));
        return;
    }
    if (!execute->is_string()) {
        finish(cpuplug::unexpected(
            generic_error(fmt::format("QMP input member '{}' must be a string", oob ? "exec-oob" : "execute"))));
        return;
    }
    Json arguments = Json::object();
    if (auto it = request.find("arguments"); it != request.end()) {
        if (!it->is_object()) {
            finish(cpuplug::unexpected(generic_error("QMP input member 'arguments' must be an object")));
            return;
        }
        arguments = *it;
    }
    auto name = execute->get<std::string>();

    if (name == "qmp_capabilities") {
        // QEMU's qmp_capabilities is not 'allow-oob' (and exec-oob needs negotiation done).
        finish(oob ? cpuplug::unexpected(generic_error("The command qmp_capabilities does not support OOB"))
                   : negotiate(arguments));
        return;
    }
    if (!m_negotiated) {
        finish(cpuplug::unexpected(Error { COMMAND_NOT_FOUND, "Expecting capabilities negotiation with 'qmp_capabilities'" }));
        return;
    }

    auto const* command = m_commands.find(name);
    if (!command) {
        finish(cpuplug::unexpected(Error { COMMAND_NOT_FOUND, fmt::format("The command {} has not been found", name) }));
        return;
    }
    if (oob && !command->allow_oob) {
        finish(cpuplug::unexpected(generic_error(fmt::format("The command {} does not support OOB", name))));
        return;
    }
    if (auto error = check_arguments(*command, arguments)) {
        finish(cpuplug::unexpected(*error));
        return;
    }
    // The handler may answer at once or later; either way the next request of its kind waits for the answer.
    std::weak_ptr<Session> weak = weak_from_this();
    auto answered = std::make_shared<bool>(false);
    try {
        command->handler(arguments, [weak, id, answered, number, lane](Outcome outcome) {
            if (*answered)
                return; // a second answer would break the one-reply-per-request rule; the first stands
            *answered = true;
            auto self = weak.lock();
            if (!self)
                return; // the client left; the command ran to its end regardless
            self->respond(std::move(outcome), id, number);
            self->release(lane);
            self->pump();
        });
    } catch (std::exception const& error) {
        // A command that throws (a JSON type error, say) becomes an error reply, not a dead server.
        if (!*answered) {
            *answered = true;
            finish(cpuplug::unexpected(generic_error(error.what())));
        }
    }
}

Json make_event(std::string const& name, std::optional<Json> const& data)
{
    timeval now {};
    gettimeofday(&now, nullptr);
    Json event;
    event["timestamp"] = { { "seconds", static_cast<int64_t>(now.tv_sec) }, { "microseconds", static_cast<int64_t>(now.tv_usec) } };
    event["event"] = name;
    if (data)
        event["data"] = *data;
    return event;
}

} // namespace vmm::qmp
