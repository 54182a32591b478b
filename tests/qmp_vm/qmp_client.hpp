// A QMP client for tests: POSIX sockets with deadlines everywhere, so a broken server fails a test
// instead of hanging it. Replies and events are told apart as QMP defines (events have "event").
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <utility>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>

namespace qmp_test {

using Json = nlohmann::ordered_json;
using namespace std::chrono_literals;

// A fresh path for a QMP server's Unix socket, unique in this process and among processes.
inline std::string socket_path()
{
    static int counter = 0;
    return "/tmp/cpuplug-qmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".sock";
}

class QmpClient {
public:
    // Connects to a Unix socket (retrying until it exists or `timeout` passes) and reads the greeting.
    static std::unique_ptr<QmpClient> connect_unix(std::string const& path, std::chrono::milliseconds timeout = 10s);
    static std::unique_ptr<QmpClient> connect_tcp(std::string const& host, uint16_t port, std::chrono::milliseconds timeout = 10s);
    // Connects without reading anything.
    static std::unique_ptr<QmpClient> connect_raw_unix(std::string const& path, std::chrono::milliseconds timeout = 10s);
    ~QmpClient();
    QmpClient(QmpClient const&) = delete;
    QmpClient& operator=(QmpClient const&) = delete;

    Json const& greeting() const { return m_greeting; }

    // Writes everything (or until the peer stops reading for `timeout`); false if the connection broke.
    bool send_raw(std::string_view bytes, std::chrono::milliseconds timeout = 10s);
    bool send(Json const& message) { return send_raw(message.dump() + "\n"); }

    // The next line as sent (with its CRLF); nullopt on EOF or timeout.
    std::optional<std::string> read_raw_line(std::chrono::milliseconds timeout = 10s);
    // The next message that is not an event (events are kept for wait_event); nullopt on EOF or timeout.
    std::optional<Json> read_reply(std::chrono::milliseconds timeout = 10s);
    // Sends {"execute": name, "arguments"?, "id"?} and returns the reply.
    std::optional<Json> execute(std::string const& name, std::optional<Json> arguments = std::nullopt,
        std::optional<Json> id = std::nullopt, std::chrono::milliseconds timeout = 10s);
    // qmp_capabilities; true when it returned {}.
    bool negotiate();
    // The next event called `name` (earlier events of other names are kept); nullopt on timeout.
    std::optional<Json> wait_event(std::string const& name, std::chrono::milliseconds timeout = 10s);
    // The next event `name` whose data has `key` == `value`, skipping (and dropping) others of that name.
    std::optional<Json> wait_event_with(std::string const& name, std::string const& key, Json const& value,
        std::chrono::milliseconds timeout = 20s);
    // Events received so far and not yet taken by wait_event, in order.
    std::deque<Json> const& events() const { return m_events; }
    // Takes every event received so far, in order.
    std::deque<Json> take_events() { return std::exchange(m_events, {}); }
    // Reads whatever arrives during `duration` (sorting replies from events); false once EOF was seen.
    bool drain(std::chrono::milliseconds duration);
    // True once the server closed the connection (EOF or reset).
    bool closed() const { return m_closed; }
    // Waits until the server closes the connection, discarding what it sends; false on timeout.
    bool wait_closed(std::chrono::milliseconds timeout = 10s);

private:
    explicit QmpClient(int fd)
        : m_fd(fd)
    {
    }
    bool fill(std::chrono::steady_clock::time_point deadline);
    std::optional<Json> next_message(std::chrono::steady_clock::time_point deadline);

    int m_fd { -1 };
    std::string m_buffer;
    std::deque<Json> m_events;
    std::deque<Json> m_replies;
    Json m_greeting;
    bool m_closed { false };
};

} // namespace qmp_test
