// QmpClient: poll() with deadlines, line framing on CRLF, JSON via nlohmann.
#include "qmp_client.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace qmp_test {

namespace {

int remaining_ms(std::chrono::steady_clock::time_point deadline)
{
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

int connect_with_retry(sockaddr const* address, socklen_t length, int family, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (::connect(fd, address, length) == 0)
            return fd;
        ::close(fd);
        if (std::chrono::steady_clock::now() >= deadline)
            return -1;
        std::this_thread::sleep_for(10ms);
    }
}

} // namespace

std::unique_ptr<QmpClient> QmpClient::connect_raw_unix(std::string const& path, std::chrono::milliseconds timeout)
{
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    int fd = connect_with_retry(reinterpret_cast<sockaddr const*>(&address), sizeof(address), AF_UNIX, timeout);
    if (fd < 0)
        return nullptr;
    return std::unique_ptr<QmpClient>(new QmpClient(fd));
}

std::unique_ptr<QmpClient> QmpClient::connect_unix(std::string const& path, std::chrono::milliseconds timeout)
{
    auto client = connect_raw_unix(path, timeout);
    if (!client)
        return nullptr;
    auto greeting = client->next_message(std::chrono::steady_clock::now() + timeout);
    if (!greeting)
        return nullptr;
    client->m_greeting = *greeting;
    return client;
}

std::unique_ptr<QmpClient> QmpClient::connect_tcp(std::string const& host, uint16_t port, std::chrono::milliseconds timeout)
{
    sockaddr_in address {};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1)
        return nullptr;
    int fd = connect_with_retry(reinterpret_cast<sockaddr const*>(&address), sizeof(address), AF_INET, timeout);
    if (fd < 0)
        return nullptr;
    std::unique_ptr<QmpClient> client(new QmpClient(fd));
    auto greeting = client->next_message(std::chrono::steady_clock::now() + timeout);
    if (!greeting)
        return nullptr;
    client->m_greeting = *greeting;
    return client;
}

QmpClient::~QmpClient()
{
    if (m_fd >= 0)
        ::close(m_fd);
}

bool QmpClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!bytes.empty()) {
        ssize_t sent = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) {
            bytes.remove_prefix(static_cast<size_t>(sent));
            continue;
        }
        if (sent < 0 && errno != EAGAIN && errno != EINTR)
            return false;
        pollfd p { m_fd, POLLOUT, 0 };
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0)
            return false;
    }
    return true;
}

bool QmpClient::fill(std::chrono::steady_clock::time_point deadline)
{
    if (m_closed)
        return false;
    pollfd p { m_fd, POLLIN, 0 };
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0)
        return false;
    char chunk[65536];
    ssize_t got = ::recv(m_fd, chunk, sizeof(chunk), 0);
    if (got <= 0) {
        m_closed = true;
        return false;
    }
    m_buffer.append(chunk, static_cast<size_t>(got));
    return true;
}

std::optional<std::string> QmpClient::read_raw_line(std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto end = m_buffer.find('\n');
        if (end != std::string::npos) {
            std::string line = m_buffer.substr(0, end + 1);
            m_buffer.erase(0, end + 1);
            return line;
        }
        if (!fill(deadline))
            return std::nullopt;
    }
}

std::optional<Json> QmpClient::next_message(std::chrono::steady_clock::time_point deadline)
{
    auto line = read_raw_line(std::chrono::milliseconds(remaining_ms(deadline)));
    if (!line)
        return std::nullopt;
    auto message = Json::parse(*line, nullptr, false);
    if (message.is_discarded())
        return Json { { "unparsable", *line } };
    return message;
}

std::optional<Json> QmpClient::read_reply(std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (m_replies.empty()) {
        auto message = next_message(deadline);
        if (!message)
            return std::nullopt;
        if (message->contains("event"))
            m_events.push_back(std::move(*message));
        else
            m_replies.push_back(std::move(*message));
    }
    auto reply = std::move(m_replies.front());
    m_replies.pop_front();
    return reply;
}

std::optional<Json> QmpClient::execute(std::string const& name, std::optional<Json> arguments, std::optional<Json> id,
    std::chrono::milliseconds timeout)
{
    Json request { { "execute", name } };
    if (arguments)
        request["arguments"] = *arguments;
    if (id)
        request["id"] = *id;
    if (!send(request))
        return std::nullopt;
    return read_reply(timeout);
}

bool QmpClient::negotiate()
{
    auto reply = execute("qmp_capabilities");
    return reply && reply->contains("return") && (*reply)["return"] == Json::object();
}

std::optional<Json> QmpClient::wait_event_with(std::string const& name, std::string const& key, Json const& value,
    std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left <= 0ms)
            return std::nullopt;
        auto event = wait_event(name, left);
        if (!event)
            return std::nullopt;
        if ((*event)["data"][key] == value)
            return event;
    }
}

std::optional<Json> QmpClient::wait_event(std::string const& name, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (auto it = m_events.begin(); it != m_events.end(); ++it)
            if ((*it)["event"] == name) {
                auto event = std::move(*it);
                m_events.erase(it);
                return event;
            }
        auto message = next_message(deadline);
        if (!message)
            return std::nullopt;
        if (message->contains("event"))
            m_events.push_back(std::move(*message));
        else
            m_replies.push_back(std::move(*message));
    }
}

bool QmpClient::drain(std::chrono::milliseconds duration)
{
    auto deadline = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < deadline) {
        auto message = next_message(deadline);
        if (!message)
            break;
        if (message->contains("event"))
            m_events.push_back(std::move(*message));
        else
            m_replies.push_back(std::move(*message));
    }
    return !m_closed;
}

bool QmpClient::wait_closed(std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!m_closed) {
        m_buffer.clear();
        if (!fill(deadline) && !m_closed)
            return false;
    }
    return true;
}

} // namespace qmp_test
