// qmp_fuzz: libFuzzer over QMP parse-and-dispatch, the whole path a client's bytes take without the
// socket: JsonStream framing, Session negotiation, validation and dispatch, add_machine_commands over a
// fake machine, add_hotplug_commands, add_qom_commands and add_debug_commands (human-monitor-command's HMP
// parser over fake registers and RAM; pmemsave and memsave writing to /dev/null), replies (now, later,
// never, twice, from a handler that throws) and QMP's text format.
// Then parse_endpoint over the same bytes taken as a --qmp address.
//
// Input: a 6-byte header, then the bytes a client sends. Missing header bytes read as 0.
//   [0] actions: bit mask of what a run-control command (stop, cont, system_reset, system_powerdown,
//       quit) may do; each call picks one of the set bits. 0 (or no known bit) means "reply now".
//         0x01 reply now        0x02 reply an error now   0x04 reply later (the harness delivers it)
//         0x08 never reply while the session lives        0x10 reply now and once more later
//         0x20 keep the reply and throw
//   [1] split: 0 feeds everything at once, 1 byte by byte, N chunks of 0..N bytes
//   [2] flags: 0x01 an event between chunks, 0x02 deliver some later replies between chunks (else at the
//       end only), 0x04 deliver all later replies before closing, 0x08 call kept replies after close()
//       while the session is still alive (else only once it is gone), 0x10 the machine has dies,
//       0xe0 number of CPU slots - 1
//   [3] seed of the pseudo-random choices (actions, chunk sizes, deliveries)
//   [4] the client is dropped from inside send() once this many replies went out (0: never); the
//       owner lets go of the session there, as the server does with a client that stops reading
//   [5] which CPU slots are present (bit i: slot i)
//
// Every line the session sends is checked (__builtin_trap on a violation): valid JSON, an object,
// printable ASCII only (so no raw newline); the greeting first, exactly; events only when negotiated;
// every other line a reply: exactly one of "return"/"error" plus an optional "id", an error being
// {"class": one of QEMU's five, "desc": string}; each reply answers the request the session names (the
// n-th JSON text or framing error a second JsonStream fed the same chunks produced), once, after every
// request before it except guest-waiting ones (Command::waits_for_guest) when it is not one itself, and
// except when it is itself an `exec-oob` request (which may overtake everything once oob is enabled); so
// there are never more replies than texts, the id is the request's own, negotiation comes first, and echo
// commands get their arguments back unchanged. Finally each request's reply must be the one a reference
// session gave it, fed the whole input at once and answering everything at once, and with everything
// answered there must be as many: splitting and timing change nothing else, except the value an
// out-of-band query returns (it may run before or after an in-band `stop` sent earlier, as in QEMU): for
// an `exec-oob` request, a "return" matches any "return" of the reference.
#include "qmp/commands.hpp"
#include "qmp/endpoint.hpp"
#include "qmp/json_format.hpp"
#include "qmp/json_stream.hpp"
#include "qmp/protocol.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

using namespace vmm::qmp;

[[noreturn]] void broken(char const* condition, int line, std::string_view context)
{
    std::fprintf(stderr, "qmp_fuzz: invariant broken at qmp_fuzz.cpp:%d: %s\n", line, condition);
    if (!context.empty())
        std::fprintf(stderr, "qmp_fuzz: while checking: %.*s\n", static_cast<int>(std::min<size_t>(context.size(), 2000)),
            context.data());
    std::fflush(stderr);
    __builtin_trap();
}

#define CHECK(condition, context)                                  \
    do {                                                           \
        if (!(condition)) [[unlikely]]                             \
            broken(#condition, __LINE__, (context));               \
    } while (0)

// QMP_FUZZ_VERBOSE=1 prints every line sent, to see what a seed does: ./qmp_fuzz corpus/stop
bool verbose()
{
    static bool const value = std::getenv("QMP_FUZZ_VERBOSE") != nullptr;
    return value;
}

constexpr char const* ERROR_CLASSES[] = { GENERIC_ERROR, COMMAND_NOT_FOUND, DEVICE_NOT_ACTIVE, DEVICE_NOT_FOUND,
    KVM_MISSING_CAP };

bool known_class(std::string const& name)
{
    return std::any_of(std::begin(ERROR_CLASSES), std::end(ERROR_CLASSES), [&](char const* c) { return name == c; });
}

// splitmix64: small, fast, and every bit depends on the seed.
struct Rng {
    uint64_t state;
    uint64_t next()
    {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
};

enum Flag : uint8_t {
    EVENTS = 0x01,
    DELIVER_BETWEEN = 0x02,
    DELIVER_AT_END = 0x04,
    KEPT_BEFORE_GONE = 0x08,
    DIES = 0x10,
};

struct Config {
    uint8_t actions { 0 };
    uint8_t split { 0 };
    uint8_t flags { 0 };
    uint8_t seed { 0 };
    uint8_t close_after { 0 };
    uint8_t present { 0 };
    std::string_view payload;
};

constexpr size_t HEADER = 6;

Config parse_config(uint8_t const* data, size_t size)
{
    uint8_t header[HEADER] {};
    std::memcpy(header, data, std::min(size, HEADER));
    Config config { header[0], header[1], header[2], header[3], header[4], header[5], {} };
    if (size > HEADER)
        config.payload = std::string_view(reinterpret_cast<char const*>(data) + HEADER, size - HEADER);
    return config;
}

Json const& version()
{
    static Json const value = version_json(QemuVersion {}, "cpuplug-fuzz");
    return value;
}

// ---------------------------------------------------------------------------------------------------
// The machine: CPU slots from the header, run control that answers as the header says.

enum class Action { Now, ErrorNow, Later, Never, Twice, Throw };
constexpr Action ACTIONS[] = { Action::Now, Action::ErrorNow, Action::Later, Action::Never, Action::Twice,
    Action::Throw };

class FakeBackend final : public Backend {
public:
    struct Pending {
        Reply reply;
        bool ok { true };
        size_t error_class { 0 };
    };

    FakeBackend(Config const& config, bool reference)
        : m_config(config)
        , m_reference(reference)
        , m_rng { 0x51ed270b0b5d4c1full ^ (uint64_t(config.seed) << 8) ^ config.actions }
        , m_guest_rng { 0x9e3779b97f4a7c15ull ^ (uint64_t(config.seed) << 8) ^ config.actions }
    {
        for (auto action : ACTIONS)
            if (config.actions & (1u << static_cast<unsigned>(action)))
                m_enabled.push_back(action);
        if (m_enabled.empty())
            m_enabled.push_back(Action::Now);
    }

    RunState run_state() const override { return m_state; }

    std::vector<CpuSlot> cpu_slots() const override
    {
        std::vector<CpuSlot> slots;
        uint32_t count = ((m_config.flags >> 5) & 7) + 1;
        for (uint32_t i = 0; i < count; ++i) {
            CpuSlot slot;
            slot.index = i;
            if (has_dies()) {
                slot.socket = i / 4;
                slot.die = (i / 2) % 2;
            } else {
                slot.socket = i / 2;
            }
            slot.core = i % 2;
            if (m_config.present & (1u << i)) {
                // One non-ASCII path: the output must escape it.
                slot.qom_path = i == 5 ? std::string("/machine/peripheral/cpu-\xc3\xa9") // é
                                       : "/machine/unattached/device[" + std::to_string(i == 0 ? 0 : i + 1) + "]";
                slot.thread_id = 4000 + i;
            }
            slots.push_back(std::move(slot));
        }
        return slots;
    }

    bool has_dies() const override { return (m_config.flags & DIES) != 0; }
    std::string cpu_type() const override { return "qemu64-x86_64-cpu"; }

    void stop(Reply reply) override { act(std::move(reply), RunState::Paused); }
    void cont(Reply reply) override { act(std::move(reply), RunState::Running); }
    void system_reset(Reply reply) override { act(std::move(reply), std::nullopt); }
    void system_powerdown(Reply reply) override { act(std::move(reply), std::nullopt); }
    void quit(Reply reply) override { act(std::move(reply), RunState::Shutdown); }

    CpuTopology topology() const override
    {
        return has_dies() ? CpuTopology { 2, 2, 2, 1 } : CpuTopology { 4, 1, 2, 1 };
    }
    bool cpu_hotplug_enabled() const override { return (m_config.flags & DIES) == 0 || (m_config.present & 1) != 0; }
    void plug_cpus(std::vector<uint32_t> const& indexes, std::optional<std::string> const&, Reply reply) override
    {
        check_indexes(indexes, false);
        act(std::move(reply), std::nullopt);
    }
    void unplug_cpus(std::vector<uint32_t> const& indexes, Reply reply) override
    {
        check_indexes(indexes, true);
        act(std::move(reply), std::nullopt);
    }
    // The x-cpuhp commands wait for the guest and may run after requests sent later: their own stream of
    // choices keeps each command's the same as the reference's, whatever the order.
    void cpuhp(CpuhpRequest const&, Reply reply) override { act(std::move(reply), std::nullopt, m_guest_rng); }

    // Register reads answer as run control does (now, later, never, twice, by throwing), with registers
    // that depend only on the CPU: even CPUs in 64-bit mode through the tables in fuzz_ram(), odd ones in
    // 32-bit protected mode without paging.
    void read_cpu_registers(std::vector<uint32_t> const& indexes, RegistersReply reply) override
    {
        auto slots = cpu_slots();
        for (auto index : indexes)
            CHECK(index < slots.size() && slots[index].qom_path.has_value(), "registers of a CPU that is not present");
        act([indexes, reply = std::move(reply)](Outcome outcome) {
            if (!outcome.has_value())
                return reply(cpuplug::unexpected(outcome.error()));
            std::vector<CpuRegisters> read;
            for (auto index : indexes)
                read.push_back(fuzz_registers(index));
            reply(std::move(read));
        },
            std::nullopt);
    }
    std::span<uint8_t const> guest_ram(uint64_t address, uint64_t length) const override
    {
        auto const& ram = fuzz_ram();
        if (address >= ram.size())
            return {};
        return { ram.data() + address, size_t(std::min<uint64_t>(length, ram.size() - address)) };
    }
    uint64_t guest_ram_size() const override { return fuzz_ram().size(); }

    static CpuRegisters fuzz_registers(uint32_t index)
    {
        CpuRegisters regs;
        regs.index = index;
        regs.rax = 0x1111'0000ull * (index + 1);
        regs.rip = 0x2000 + index;
        regs.cs.present = regs.cs.s = true;
        regs.cs.type = 0xB;
        if (index % 2 == 0) {
            regs.cr0 = 0x8000'0011;
            regs.cr3 = 0x1000;
            regs.cr4 = 0x20;
            regs.efer = 0x500;
            regs.cs.l = true;
        } else {
            regs.cr0 = 0x11;
            regs.cs.db = true;
        }
        return regs;
    }

    // 64 KiB of RAM: a PML4 at 0x1000 whose entry 0 maps the first GiB with one 1 GiB page, and entry 511
    // points back at itself; the rest counts up.
    static std::vector<uint8_t> const& fuzz_ram()
    {
        static std::vector<uint8_t> const ram = [] {
            std::vector<uint8_t> bytes(64 * 1024);
            for (size_t i = 0; i < bytes.size(); ++i)
                bytes[i] = uint8_t(i * 7);
            auto put = [&bytes](size_t at, uint64_t value) { std::memcpy(bytes.data() + at, &value, 8); };
            std::memset(bytes.data() + 0x1000, 0, 0x2000);
            put(0x1000, 0x2003);
            put(0x1000 + 511 * 8, 0x1003);
            put(0x2000, 0x83);
            return bytes;
        }();
        return ram;
    }

    static void answer(Pending pending)
    {
        if (pending.ok)
            pending.reply(Json::object());
        else
            pending.reply(cpuplug::unexpected(Error { ERROR_CLASSES[pending.error_class], "fuzz: failed later" }));
    }

    std::vector<Pending> later; // the session waits for these
    std::vector<Reply> kept;     // answered already, or never to be while the session lives
    size_t never { 0 };          // how many of `kept` the session waits for

private:
    // The commands promise the backend only slots that exist and are in the state the operation needs.
    void check_indexes(std::vector<uint32_t> const& indexes, bool present) const
    {
        auto slots = cpu_slots();
        CHECK(!indexes.empty(), "a hot-plug request with no CPU");
        for (auto index : indexes) {
            CHECK(index < slots.size() && slots[index].qom_path.has_value() == present, "a hot-plug request for a slot in the wrong state");
            CHECK(!(present && index == 0), "the boot CPU was handed to unplug_cpus");
        }
    }

    void act(Reply reply, std::optional<RunState> next) { act(std::move(reply), next, m_rng); }
    void act(Reply reply, std::optional<RunState> next, Rng& rng)
    {
        if (next)
            m_state = *next;
        uint64_t r = rng.next();
        Action action = m_enabled[r % m_enabled.size()];
        size_t error_class = (r >> 8) % std::size(ERROR_CLASSES);
        switch (action) {
        case Action::Now:
            reply(Json::object());
            return;
        case Action::ErrorNow:
            reply(cpuplug::unexpected(Error { ERROR_CLASSES[error_class], "fuzz: failed at once" }));
            return;
        case Action::Later: {
            Pending pending { std::move(reply), ((r >> 16) & 3) != 0, error_class };
            if (m_reference)
                answer(std::move(pending)); // the reference answers everything at once
            else
                later.push_back(std::move(pending));
            return;
        }
        case Action::Never:
            kept.push_back(std::move(reply));
            ++never;
            return;
        case Action::Twice:
            reply(Json::object());
            kept.push_back(std::move(reply)); // the second answer must be ignored
            return;
        case Action::Throw:
            kept.push_back(std::move(reply)); // an answer after the throw must be ignored too
            throw std::runtime_error("fuzz: the backend threw");
        }
    }

    Config m_config;
    bool m_reference;
    Rng m_rng;
    Rng m_guest_rng;
    std::vector<Action> m_enabled;
    RunState m_state { RunState::Running };
};

// ---------------------------------------------------------------------------------------------------
// Commands beyond the machine's: one parameter of every ArgType, extra arguments, a handler that throws.

std::vector<Param> const& typed_params()
{
    static std::vector<Param> const params {
        { "str", ArgType::String, false },
        { "int", ArgType::Integer, true },
        { "bool", ArgType::Boolean, true },
        { "num", ArgType::Number, true },
        { "obj", ArgType::Object, true },
        { "arr", ArgType::Array, true },
        { "any", ArgType::Any, true },
    };
    return params;
}

void add_fuzz_commands(CommandTable& table)
{
    // Runs only once check_arguments has passed: the arguments must be exactly what the table declares.
    table.add({ "x-fuzz-typed", typed_params(), [](Json const& arguments, Reply reply) {
                   for (auto const& param : typed_params()) {
                       auto it = arguments.find(param.name);
                       CHECK(param.optional || it != arguments.end(), arguments.dump());
                       CHECK(it == arguments.end() || has_type(*it, param.type), arguments.dump());
                   }
                   for (auto const& member : arguments.items()) {
                       bool declared = std::any_of(typed_params().begin(), typed_params().end(),
                           [&](Param const& param) { return param.name == member.key(); });
                       CHECK(declared, arguments.dump());
                   }
                   reply(arguments);
               } });
    table.add({ "x-fuzz-extra", { { "driver", ArgType::String, false }, { "id", ArgType::String, true } },
        [](Json const& arguments, Reply reply) {
            CHECK(arguments.contains("driver") && arguments["driver"].is_string(), arguments.dump());
            reply(arguments);
        },
        true });
    // A JSON type error inside a command must become an error reply.
    table.add({ "x-fuzz-throw", { { "value", ArgType::Any, true } }, [](Json const& arguments, Reply reply) {
                   reply(Json { { "n", arguments.at("value").get<int64_t>() } });
               } });
}

// pmemsave and memsave write to /dev/null whatever the path, so that no input writes a file; a path with
// "fail" in it cannot be opened.
int open_fuzz_file(std::string const& path)
{
    if (path.find("fail") != std::string::npos)
        return -EACCES;
    int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

bool echoes_arguments(std::string const& name) { return name == "x-fuzz-typed" || name == "x-fuzz-extra"; }

// ---------------------------------------------------------------------------------------------------
// One client: a session owned as the server owns it, its fake machine, and the checks.

class Client {
public:
    Client(Config const& config, bool reference)
        : m_config(config)
        , m_reference(reference)
        , m_backend(config, reference)
        , m_texts({ [this](std::string text) {
                       bool guest = waits_for_guest(text);
                       bool oob = out_of_band(text);
                       m_items.push_back({ true, std::move(text), guest, false, oob });
                   },
              [this](std::string) { m_items.push_back({ false, {} }); } })
    {
        add_machine_commands(m_table, m_backend, version());
        add_hotplug_commands(m_table, m_backend);
        add_debug_commands(m_table, m_backend, open_fuzz_file);
        add_qom_commands(m_table, m_backend);
        add_fuzz_commands(m_table);
        m_session = std::make_shared<Session>(m_table,
            Session::Callbacks { [this](std::string line) { on_send(std::move(line)); }, [this] { on_drained(); },
                [this](uint64_t request) { m_answering = request; } });
        m_weak = m_session;
        m_event_line = to_qmp_text(make_event("STOP", std::nullopt));
    }
    Client(Client const&) = delete;
    Client& operator=(Client const&) = delete;

    ~Client()
    {
        // Replies still kept by the machine hold only weak references: the session must be gone, and
        // answering now must send nothing.
        m_session.reset();
        CHECK(m_weak.expired(), "a reference to the session outlived its owner");
        answer_kept();
    }

    bool alive() const { return m_session != nullptr; }

    void greet()
    {
        m_session->greet(version());
        CHECK(m_greeted, "no greeting");
    }

    void feed(std::string_view bytes)
    {
        // The reference stream first, so a reply always finds its request.
        m_texts.feed(bytes);
        // Through a plain pointer: the owner may let go of the session from inside send(), and the session
        // must keep itself alive until feed() returns.
        Session* session = m_session.get();
        session->feed(bytes);
        check_settled();
    }

    void event()
    {
        if (!m_session || m_events_sent > 64)
            return;
        bool expected = m_session->negotiated() && !m_closed;
        size_t before = m_events_sent;
        m_in_event = true;
        m_session->event(m_event_line);
        m_in_event = false;
        CHECK(m_events_sent == before + (expected ? 1 : 0), m_event_line);
    }

    // Answers up to `count` of the replies the machine holds back (each may start the next command).
    void deliver(size_t count)
    {
        for (size_t i = 0; i < count && !m_backend.later.empty(); ++i) {
            auto pending = std::move(m_backend.later.front());
            m_backend.later.erase(m_backend.later.begin());
            FakeBackend::answer(std::move(pending));
            check_settled();
        }
    }

    void deliver_all()
    {
        // Each answer lets at most one more request run, and there are finitely many.
        while (!m_backend.later.empty())
            deliver(1);
    }

    // The client goes away. Returns whether every request that could be answered was.
    bool finish()
    {
        bool complete = m_session != nullptr && m_backend.later.empty();
        if (m_session) {
            m_session->close();
            m_closed = true;
        }
        if (m_config.flags & KEPT_BEFORE_GONE)
            answer_kept(); // closed but alive: late replies are dropped
        for (auto& pending : m_backend.later)
            m_backend.kept.push_back(std::move(pending.reply));
        m_backend.later.clear();
        return complete;
    }

    // (request number, reply line) in the order the replies went out.
    std::vector<std::pair<size_t, std::string>> const& replies() const { return m_replies; }
    bool out_of_band(size_t request) const { return request < m_items.size() && m_items[request].oob; }

private:
    struct Item {
        bool message { false }; // a JSON text, or a framing error
        std::string text;
        bool guest { false };    // it names a command that waits for the guest
        bool answered { false };
        bool oob { false };      // it has `exec-oob` and no `execute`: it may jump the queue
    };

    static bool out_of_band(std::string const& text)
    {
        Json request = Json::parse(text, nullptr, false);
        return request.is_object() && request.contains("exec-oob") && !request.contains("execute");
    }

    bool waits_for_guest(std::string const& text) const
    {
        Json request = Json::parse(text, nullptr, false);
        if (!request.is_object() || !request.contains("execute") || !request["execute"].is_string())
            return false;
        auto const* command = m_table.find(request["execute"].get<std::string>());
        return command && command->waits_for_guest;
    }

    void answer_kept()
    {
        auto kept = std::move(m_backend.kept);
        m_backend.kept.clear();
        size_t lines = m_lines;
        for (auto& reply : kept)
            reply(Json::object());
        CHECK(m_lines == lines, "a reply went out after close");
    }

    // With nothing held back by the machine, every request so far must have been answered.
    void check_settled()
    {
        if (!m_session || m_closed || !m_backend.later.empty() || m_backend.never != 0)
            return;
        CHECK(m_session->backlog() == 0, "requests left unanswered with nothing pending");
        CHECK(m_replies.size() == m_items.size(), "replies and requests do not pair up");
    }

    void on_drained()
    {
        auto session = m_weak.lock();
        CHECK(session && session->wants_input(), "drained while it wants no input");
    }

    void on_send(std::string line)
    {
        if (verbose())
            std::fprintf(stderr, "%s: %s\n", m_reference ? "reference" : "fuzzed", line.c_str());
        CHECK(!m_closed, line);
        ++m_lines;
        for (char c : line)
            CHECK(c >= 0x20 && c <= 0x7e, line); // ASCII, no raw newline or other control character
        Json message = Json::parse(line, nullptr, false);
        CHECK(!message.is_discarded(), line);
        CHECK(message.is_object(), line);

        if (!m_greeted) {
            Json greeting { { "QMP", { { "version", version() }, { "capabilities", Json::array({ "oob" }) } } } };
            CHECK(message == greeting, line);
            m_greeted = true;
            return;
        }
        if (m_in_event) {
            CHECK(line == m_event_line, line);
            auto session = m_weak.lock();
            CHECK(session && session->negotiated(), line);
            ++m_events_sent;
            return;
        }

        // The session names the request; it must be one not yet answered, and the order QMP promises
        // must hold: every request before it is answered, except, when it does not wait for the guest
        // itself, requests that do.
        CHECK(m_answering.has_value(), line);
        size_t index = *m_answering;
        m_answering.reset();
        CHECK(index < m_items.size(), line); // never more replies than JSON texts
        CHECK(!m_items[index].answered, line);
        for (size_t before = 0; before < index; ++before)
            CHECK(m_items[before].answered || (m_items[before].guest && !m_items[index].guest) || m_items[index].oob,
                line);
        m_items[index].answered = true;
        check_reply(message, m_items[index], line);
        m_replies.push_back({ index, line });

        if (!m_reference && m_config.close_after != 0 && m_replies.size() == m_config.close_after) {
            // The server's way of dropping a client that does not read: close, then let go.
            m_session->close();
            m_closed = true;
            m_session.reset();
        }
    }

    void check_reply(Json const& reply, Item const& item, std::string const& line)
    {
        for (auto const& [key, value] : reply.items())
            CHECK(key == "return" || key == "error" || key == "id", line);
        bool is_return = reply.contains("return");
        bool is_error = reply.contains("error");
        CHECK(is_return != is_error, line);
        if (is_error) {
            auto const& error = reply["error"];
            CHECK(error.is_object() && error.size() == 2, line);
            CHECK(error.contains("class") && error["class"].is_string(), line);
            CHECK(known_class(error["class"].get<std::string>()), line);
            CHECK(error.contains("desc") && error["desc"].is_string(), line);
        }

        if (!item.message) {
            // A framing error: no request to take an id from.
            CHECK(is_error && reply["error"]["class"] == GENERIC_ERROR, line);
            CHECK(!reply.contains("id"), line);
            return;
        }
        Json request = Json::parse(item.text, nullptr, false);
        if (request.is_discarded() || !request.is_object()) {
            CHECK(is_error && reply["error"]["class"] == GENERIC_ERROR, line);
            CHECK(!reply.contains("id"), line);
            return;
        }
        if (auto id = request.find("id"); id != request.end())
            CHECK(reply.contains("id") && reply["id"] == *id, line);
        else
            CHECK(!reply.contains("id"), line);

        if (item.oob && is_return) {
            // exec-oob runs a command only on a session that enabled oob.
            auto owner = m_weak.lock();
            CHECK(owner && owner->oob_enabled(), line);
        }

        auto execute = request.find("execute");
        if (execute == request.end() || !execute->is_string())
            return;
        auto name = execute->get<std::string>();
        auto session = m_weak.lock();
        if (name == "qmp_capabilities") {
            if (is_return) {
                CHECK(!m_negotiated, line); // only once
                CHECK(reply["return"] == Json::object(), line);
                m_negotiated = true;
            }
        } else if (!m_negotiated) {
            CHECK(is_error, line); // nothing runs before negotiation
        } else if (is_return && echoes_arguments(name)) {
            auto arguments = request.find("arguments");
            CHECK(reply["return"] == (arguments == request.end() ? Json::object() : *arguments), line);
        }
        CHECK(session && session->negotiated() == m_negotiated, line);
    }

    Config m_config;
    bool m_reference;
    FakeBackend m_backend;
    CommandTable m_table;
    JsonStream m_texts; // the same bytes, framed independently: request n is m_items[n]
    std::vector<Item> m_items;
    std::optional<uint64_t> m_answering; // the request the next reply answers, as the session announced
    std::shared_ptr<Session> m_session; // the owner's reference
    std::weak_ptr<Session> m_weak;
    std::string m_event_line;
    std::vector<std::pair<size_t, std::string>> m_replies;
    size_t m_lines { 0 };
    size_t m_events_sent { 0 };
    bool m_greeted { false };
    bool m_in_event { false };
    bool m_closed { false };
    bool m_negotiated { false };
};

void fuzz_endpoint(std::string_view text)
{
    auto endpoint = parse_endpoint(text);
    if (!endpoint.has_value())
        return;
    auto const& value = endpoint.value();
    CHECK(value.text == text, text);
    if (value.kind == Endpoint::Kind::Unix)
        CHECK(!value.path.empty() && value.path.size() <= 107, text);
    else
        CHECK(!value.host.empty(), text);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz_endpoint(std::string_view(reinterpret_cast<char const*>(data), size));

    Config config = parse_config(data, size);

    // The reference: everything at once, every answer at once. Skipped when the run below would be
    // the same run.
    bool same_run = config.split == 0 && (config.actions & (1u << static_cast<unsigned>(Action::Later))) == 0
        && config.close_after == 0;
    std::vector<std::pair<size_t, std::string>> expected;
    if (!same_run) {
        Client reference(config, true);
        reference.greet();
        reference.feed(config.payload);
        reference.finish();
        expected = reference.replies();
    }

    Client client(config, false);
    client.greet();
    Rng rng { 0x2545f4914f6cdd1dull ^ (uint64_t(config.seed) << 16) ^ config.split };
    std::string_view rest = config.payload;
    while (!rest.empty() && client.alive()) {
        size_t n = config.split == 0 ? rest.size() : config.split == 1 ? 1 : rng.next() % (config.split + 1u);
        n = std::min(n, rest.size());
        client.feed(rest.substr(0, n));
        rest.remove_prefix(n);
        if (!client.alive())
            break;
        if (config.flags & EVENTS)
            client.event();
        if (config.flags & DELIVER_BETWEEN)
            client.deliver(rng.next() % 3);
    }
    if (client.alive() && (config.flags & DELIVER_AT_END))
        client.deliver_all();
    if (client.alive() && (config.flags & EVENTS))
        client.event();
    bool complete = client.finish();

    auto const& got = client.replies();
    if (same_run)
        return 0;
    // Each request's reply is the reference's; the order may differ where QMP allows it (checked above).
    std::map<size_t, std::string> reference(expected.begin(), expected.end());
    CHECK(got.size() <= expected.size(), "more replies than the reference");
    for (auto const& [request, line] : got) {
        auto it = reference.find(request);
        CHECK(it != reference.end(), line + "\n  reference: no reply");
        if (client.out_of_band(request) && line.starts_with("{\"return\"") && it->second.starts_with("{\"return\""))
            continue; // an out-of-band query may see a state before or after earlier in-band commands
        CHECK(line == it->second, line + "\n  reference: " + it->second);
    }
    if (complete)
        CHECK(got.size() == expected.size(), "fewer replies than the reference");
    return 0;
}
