// The QMP protocol for one client, without I/O: it takes bytes and hands out lines. Greeting, capability
// negotiation, request framing and validation, `id` echo, QEMU's error classes and words, and one request
// at a time so replies keep the order of the requests, except that a command waiting for the guest's
// software does not hold back the ones after it (Command::waits_for_guest), and, once the client enabled
// the `oob` capability, `exec-oob` requests run at once, ahead of the in-band ones still queued or running
// (Command::allow_oob). The server (server.hpp) wires it to a socket; the tests and the fuzzer drive it
// directly.
#pragma once

#include "json_format.hpp"
#include "json_stream.hpp"

#include <cpuplug/base/result.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vmm::qmp {

// QEMU's error classes (qapi/error.json); there are no others.
inline constexpr char const* GENERIC_ERROR = "GenericError";
inline constexpr char const* COMMAND_NOT_FOUND = "CommandNotFound";
inline constexpr char const* DEVICE_NOT_ACTIVE = "DeviceNotActive";
inline constexpr char const* DEVICE_NOT_FOUND = "DeviceNotFound";
inline constexpr char const* KVM_MISSING_CAP = "KVMMissingCap";

struct Error {
    std::string error_class;
    std::string desc;
};
inline Error generic_error(std::string desc) { return { GENERIC_ERROR, std::move(desc) }; }

using Outcome = cpuplug::Result<Json, Error>;
// A command's answer. Call it once, on the server's thread, now or later (asynchronous commands).
using Reply = std::function<void(Outcome)>;

enum class ArgType { String, Integer, Boolean, Number, Object, Array, Any };

struct Param {
    std::string name;
    ArgType type;
    bool optional { false };
};

struct Command {
    std::string name;
    std::vector<Param> params;
    std::function<void(Json const& arguments, Reply reply)> handler;
    bool allow_extra_arguments { false }; // device_add's properties depend on the driver
    // It waits for the guest's software to answer (the x-cpuhp commands), which a hung or hostile guest
    // may never do: the requests after it run meanwhile and their replies may come first, so that
    // `query-status` or `quit` never wait on the guest. Such commands run one at a time, in order, each
    // once every request before it has been answered.
    bool waits_for_guest { false };
    // It may be sent with `exec-oob` (QEMU's 'allow-oob': true) once the client enabled the `oob`
    // capability: it then runs as soon as it is read, ahead of in-band requests queued or still waiting
    // for their answers. Only for commands that answer at once and never wait.
    bool allow_oob { false };
};

class CommandTable {
public:
    void add(Command command);
    Command const* find(std::string const& name) const;
    std::vector<std::string> names() const;

private:
    std::map<std::string, Command> m_commands;
};

// Whether a JSON value is of a parameter's type.
bool has_type(Json const& value, ArgType type);

// Checks arguments against a command's parameters, before anything runs: unknown members, missing ones
// and wrong types, in QEMU's words.
std::optional<Error> check_arguments(Command const& command, Json const& arguments);

class Session : public std::enable_shared_from_this<Session> {
public:
    struct Callbacks {
        std::function<void(std::string line)> send; // one server message, without its CRLF
        std::function<void()> drained;              // wants_input() turned true: read on
        // Optional: called just before a reply goes out, with the number of the request it answers (0 for
        // the first JSON text or framing error), since replies to guest-waiting commands can come late.
        std::function<void(uint64_t request)> answering {};
    };
    // Guest-waiting requests that may wait in the queue behind the one running before reading stops.
    static constexpr size_t MAX_QUEUED_GUEST_CALLS = 8;
    // With out-of-band execution enabled, in-band requests that may wait in the queues (behind the ones
    // running) before reading stops: QEMU's QMP_REQ_QUEUE_LEN_MAX.
    static constexpr size_t MAX_QUEUED_REQUESTS = 8;

    // Own it with a shared_ptr: asynchronous replies hold a weak_ptr to it. `offer_oob`: whether the
    // greeting offers the `oob` capability (QEMU offers it on every socket monitor).
    Session(CommandTable const& commands, Callbacks callbacks, bool offer_oob = true);

    // The greeting, with the version object of query-version.
    void greet(Json const& version);
    void feed(std::string_view bytes);
    // An event line (already formatted); dropped unless capabilities were negotiated.
    void event(std::string const& line);
    bool negotiated() const { return m_negotiated; }
    // Whether the client enabled out-of-band execution (`qmp_capabilities` with `enable: ["oob"]`).
    bool oob_enabled() const { return m_oob; }
    // Requests received and not yet answered.
    size_t backlog() const
    {
        return m_queue.size() + m_guest_queue.size() + (m_busy ? 1 : 0) + (m_guest_busy ? 1 : 0) + m_oob_running;
    }
    // Whether more input may be read. Without out-of-band execution: nothing is queued or running but
    // guest-waiting commands, and few of those. With it, as QEMU: fewer than MAX_QUEUED_REQUESTS in-band
    // requests wait in the queues, whatever runs, so an `exec-oob` still gets read and answered while an
    // in-band command waits. Otherwise the server leaves the rest in the socket, so a client's writes
    // block, not our memory.
    bool wants_input() const
    {
        if (m_oob)
            return m_queue.size() + m_guest_queue.size() < MAX_QUEUED_REQUESTS;
        return !m_busy && m_queue.empty() && m_guest_queue.size() < MAX_QUEUED_GUEST_CALLS;
    }
    // The client is gone: late replies are dropped.
    void close() { m_closed = true; }

private:
    struct Item {
        std::optional<std::string> text;  // a message, or
        std::string error;                // a framing error
        uint64_t number { 0 };            // of the request, from 0
        bool oob { false };               // it has `exec-oob` and no `execute` (QEMU's qmp_is_oob())
    };
    // Where a request runs: in order, in the guest-waiting queue, or out of band.
    enum class Lane { InBand, Guest, OutOfBand };
    void enqueue(Item item);
    void pump();
    void process(Item const& item, Lane lane);
    void release(Lane lane);
    Outcome negotiate(Json const& arguments);
    void respond(Outcome outcome, std::optional<Json> const& id, uint64_t number);
    void send(Json const& message);

    CommandTable const& m_commands;
    Callbacks m_callbacks;
    JsonStream m_stream;
    std::deque<Item> m_queue;       // requests to run in order
    std::deque<Item> m_guest_queue; // guest-waiting commands (Command::waits_for_guest)
    uint64_t m_received { 0 };      // requests framed so far
    bool m_busy { false };          // a command from m_queue is running; its reply has not come yet
    uint64_t m_busy_number { 0 };   // the number of that command, while m_busy
    bool m_guest_busy { false };    // one from m_guest_queue is
    size_t m_oob_running { 0 };     // out-of-band commands whose reply has not come yet
    bool m_pumping { false }; // inside pump(): a synchronous reply must not recurse into it
    bool m_offer_oob { true };
    bool m_oob { false };           // out-of-band execution enabled
    bool m_negotiated { false };
    bool m_closed { false };
};

// {"timestamp": {...}, "event": name, "data": data}: the wall clock at the call.
Json make_event(std::string const& name, std::optional<Json> const& data);

} // namespace vmm::qmp
