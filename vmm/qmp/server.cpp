// Server::Impl owns the acceptors and the clients; everything in it runs on the io thread except the
// set-up in listen() (before that thread starts) and the thread-safe entry points, which post.
#include "server.hpp"

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <future>
#include <set>
#include <vector>

namespace vmm::qmp {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using ErrorCode = boost::system::error_code;
using Acceptor = asio::basic_socket_acceptor<Protocol>;

namespace {
constexpr size_t READ_CHUNK = 4096;
constexpr auto ACCEPT_RETRY = std::chrono::milliseconds(100);
} // namespace

class Client;

class Server::Impl : public std::enable_shared_from_this<Server::Impl> {
public:
    Impl(asio::io_context& io, CommandTable const& commands, Json version, Limits limits)
        : m_io(io)
        , m_commands(commands)
        , m_version(std::move(version))
        , m_limits(limits)
        , m_drain_timer(io)
    {
    }

    cpuplug::Result<void, std::string> listen(Endpoint const& endpoint);
    void start_accepting();
    void broadcast(std::string const& line);
    void shutdown(std::chrono::milliseconds bound, std::function<void()> done);
    void drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done);
    void remove(Client* client);
    void close_listeners();

    asio::io_context& m_io;
    CommandTable const& m_commands;
    Json m_version;
    Limits m_limits;
    std::function<void()> m_on_connect;
    std::atomic<size_t> m_client_count { 0 };

private:
    struct Listener {
        std::unique_ptr<Acceptor> acceptor;
        std::unique_ptr<asio::steady_timer> retry;
        Endpoint endpoint;
        int family { AF_UNIX };
        ino_t inode { 0 }; // of the socket file we created, so we never remove someone else's
    };
    cpuplug::Result<Acceptor::native_handle_type, std::string> bind_unix(Listener& listener);
    cpuplug::Result<Acceptor::native_handle_type, std::string> bind_tcp(Listener& listener);
    void accept(Listener& listener);
    void admit(Protocol::socket socket, Endpoint const& endpoint);

    std::vector<std::unique_ptr<Listener>> m_listeners;
    std::set<std::shared_ptr<Client>> m_clients;
    asio::steady_timer m_drain_timer;
    bool m_shutting_down { false };
};

// One connection: socket, session and output queue.
class Client : public std::enable_shared_from_this<Client> {
public:
    Client(std::shared_ptr<Server::Impl> server, Protocol::socket socket, std::string peer)
        : m_server(std::move(server))
        , m_socket(std::move(socket))
        , m_peer(std::move(peer))
    {
    }

    void start()
    {
        std::weak_ptr<Client> weak = weak_from_this();
        m_session = std::make_shared<Session>(m_server->m_commands,
            Session::Callbacks {
                [weak](std::string line) {
                    if (auto self = weak.lock())
                        self->send(std::move(line));
                },
                [weak] {
                    if (auto self = weak.lock())
                        self->read();
                } });
        m_session->greet(m_server->m_version);
        read();
    }

    void event(std::string const& line)
    {
        if (m_session)
            m_session->event(line);
    }

    // Stop reading, let queued output drain, then close (the server's shutdown).
    void finish()
    {
        m_finishing = true;
        if (m_out.empty() && m_inflight.empty())
            close();
    }

    void close()
    {
        if (m_closed)
            return;
        m_closed = true;
        if (m_session)
            m_session->close();
        ErrorCode ignored;
        m_socket.shutdown(Protocol::socket::shutdown_both, ignored);
        m_socket.close(ignored);
        m_server->remove(this);
    }

    // A line the peer is refused with before closing (too many clients).
    void refuse(std::string const& line)
    {
        m_finishing = true;
        send(line);
    }

private:
    void send(std::string line)
    {
        if (m_closed)
            return;
        if (m_out.size() + m_inflight.size() + line.size() + 2 > m_server->m_limits.max_output_bytes) {
            spdlog::warn("QMP: dropping client {}: it has not read its last {} KiB of output", m_peer,
                (m_out.size() + m_inflight.size()) / 1024);
            close();
            return;
        }
        m_out += line;
        m_out += "\r\n";
        write();
    }

    void write()
    {
        if (m_closed || !m_inflight.empty() || m_out.empty())
            return;
        m_inflight.swap(m_out);
        asio::async_write(m_socket, asio::buffer(m_inflight), [self = shared_from_this()](ErrorCode error, size_t) {
            self->m_inflight.clear();
            if (error) {
                self->close();
                return;
            }
            if (self->m_finishing && self->m_out.empty()) {
                self->close();
                return;
            }
            self->write();
        });
    }

    void read()
    {
        if (m_closed || m_reading || m_finishing)
            return;
        if (m_input_ended) {
            // The peer half-closed: its last replies go out, then the connection closes.
            if (m_session && m_session->backlog() == 0)
                finish();
            return;
        }
        m_reading = true;
        m_socket.async_read_some(asio::buffer(m_buffer), [self = shared_from_this()](ErrorCode error, size_t length) {
            self->m_reading = false;
            if (error == asio::error::eof && !self->m_closed) {
                // A half-close (`socat -`, `nc -N`): what was sent is still answered, commands waiting for
                // the guest included; the session's drained callback comes back here as they finish.
                self->m_input_ended = true;
                self->read();
                return;
            }
            if (error || self->m_closed) {
                // A reset: whatever command is running completes; its reply is dropped.
                self->close();
                return;
            }
            if (self->m_finishing)
                return;
            self->m_session->feed(std::string_view(self->m_buffer.data(), length));
            // While a request other than a guest command waits for its answer (or too many of those do),
            // leave the rest in the socket: the peer's writes block, not our memory. The session's drained
            // callback reads again.
            if (self->m_session && self->m_session->wants_input())
                self->read();
        });
    }

    std::shared_ptr<Server::Impl> m_server;
    Protocol::socket m_socket;
    std::string m_peer;
    std::shared_ptr<Session> m_session;
    std::array<char, READ_CHUNK> m_buffer {};
    std::string m_out;      // queued, not yet handed to the socket
    std::string m_inflight; // being written
    bool m_reading { false };
    bool m_finishing { false };
    bool m_input_ended { false }; // the peer sent EOF
    bool m_closed { false };
};

cpuplug::Result<Acceptor::native_handle_type, std::string> Server::Impl::bind_unix(Listener& listener)
{
    auto const& path = listener.endpoint.path;
    struct stat info {};
    if (::lstat(path.c_str(), &info) == 0) {
        if (!S_ISSOCK(info.st_mode))
            return cpuplug::unexpected(fmt::format("{} exists and is not a socket", path));
        // A socket file: live if something accepts on it, stale (left by a dead run) if not.
        asio::local::stream_protocol::socket probe(m_io);
        ErrorCode error;
        probe.connect(asio::local::stream_protocol::endpoint(path), error);
        if (!error)
            return cpuplug::unexpected(fmt::format("{} is in use by a running program", path));
        if (error != asio::error::connection_refused)
            return cpuplug::unexpected(fmt::format("cannot check {}: {}", path, error.message()));
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return cpuplug::unexpected(fmt::format("cannot replace the stale socket {}: {}", path, std::strerror(errno)));
    }
    asio::local::stream_protocol::acceptor acceptor(m_io);
    ErrorCode error;
    acceptor.open(asio::local::stream_protocol(), error);
    if (!error) {
        // bind() creates the file with the umask's permissions; a tight umask closes the window before the
        // chmod below. listen() runs before the VMM starts its threads, so changing the umask is safe here.
        mode_t previous = ::umask(0177);
        acceptor.bind(asio::local::stream_protocol::endpoint(path), error);
        ::umask(previous);
    }
    if (error)
        return cpuplug::unexpected(fmt::format("cannot create {}: {}", path, error.message()));
    // connect() needs write permission on the file: 0600 keeps the VM to its owner.
    if (::chmod(path.c_str(), 0600) != 0 || ::lstat(path.c_str(), &info) != 0) {
        int saved = errno;
        ::unlink(path.c_str());
        return cpuplug::unexpected(fmt::format("cannot restrict {} to its owner: {}", path, std::strerror(saved)));
    }
    listener.inode = info.st_ino;
    acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
        ::unlink(path.c_str());
        return cpuplug::unexpected(fmt::format("cannot listen on {}: {}", path, error.message()));
    }
    return acceptor.release();
}

cpuplug::Result<Acceptor::native_handle_type, std::string> Server::Impl::bind_tcp(Listener& listener)
{
    auto& endpoint = listener.endpoint;
    ErrorCode error;
    auto address = asio::ip::make_address(endpoint.host == "localhost" ? "127.0.0.1" : endpoint.host, error);
    if (error)
        return cpuplug::unexpected(fmt::format("'{}' is not an IP address", endpoint.host));
    asio::ip::tcp::endpoint where(address, endpoint.port);
    asio::ip::tcp::acceptor acceptor(m_io);
    acceptor.open(where.protocol(), error);
    if (!error)
        acceptor.set_option(asio::socket_base::reuse_address(true), error);
    if (!error)
        acceptor.bind(where, error);
    if (!error)
        acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error)
        return cpuplug::unexpected(fmt::format("cannot listen on {}:{}: {}", endpoint.host, endpoint.port, error.message()));
    endpoint.port = acceptor.local_endpoint().port();
    listener.family = address.is_v6() ? AF_INET6 : AF_INET;
    return acceptor.release();
}

cpuplug::Result<void, std::string> Server::Impl::listen(Endpoint const& endpoint)
{
    auto listener = std::make_unique<Listener>();
    listener->endpoint = endpoint;
    bool is_unix = endpoint.kind == Endpoint::Kind::Unix;
    auto handle = is_unix ? TRY(bind_unix(*listener)) : TRY(bind_tcp(*listener));
    listener->acceptor = std::make_unique<Acceptor>(m_io, Protocol(listener->family, 0), handle);
    listener->retry = std::make_unique<asio::steady_timer>(m_io);
    if (is_unix)
        spdlog::info("QMP listening on unix:{}", endpoint.path);
    else
        spdlog::info("QMP listening on tcp:{}:{}", listener->endpoint.host, listener->endpoint.port);
    m_listeners.push_back(std::move(listener));
    return {};
}

void Server::Impl::start_accepting()
{
    for (auto& listener : m_listeners)
        accept(*listener);
}

void Server::Impl::accept(Listener& listener)
{
    listener.acceptor->async_accept([self = shared_from_this(), &listener](ErrorCode error, Protocol::socket socket) {
        if (self->m_shutting_down || error == asio::error::operation_aborted)
            return;
        if (error) {
            // EMFILE and friends: wait a little rather than spin on a listener that stays readable.
            spdlog::warn("QMP: cannot accept a client on {}: {}", listener.endpoint.text, error.message());
            listener.retry->expires_after(ACCEPT_RETRY);
            listener.retry->async_wait([self, &listener](ErrorCode waited) {
                if (!waited && !self->m_shutting_down)
                    self->accept(listener);
            });
            return;
        }
        self->admit(std::move(socket), listener.endpoint);
        self->accept(listener);
    });
}

void Server::Impl::admit(Protocol::socket socket, Endpoint const& endpoint)
{
    if (endpoint.kind == Endpoint::Kind::Tcp) {
        ErrorCode ignored;
        socket.set_option(asio::ip::tcp::no_delay(true), ignored); // replies are small and awaited
    }
    std::string peer = endpoint.kind == Endpoint::Kind::Unix ? "unix:" + endpoint.path : endpoint.text;
    auto client = std::make_shared<Client>(shared_from_this(), std::move(socket), peer);
    if (m_clients.size() >= m_limits.max_clients) {
        spdlog::warn("QMP: refusing a client on {}: {} are connected already", peer, m_clients.size());
        m_clients.insert(client);
        client->refuse(to_qmp_text(Json { { "error",
            { { "class", GENERIC_ERROR },
                { "desc", fmt::format("Too many QMP clients ({}); try again later", m_limits.max_clients) } } } }));
        return;
    }
    m_clients.insert(client);
    m_client_count.store(m_clients.size(), std::memory_order_relaxed);
    client->start();
    if (m_on_connect)
        m_on_connect();
}

void Server::Impl::remove(Client* client)
{
    for (auto it = m_clients.begin(); it != m_clients.end(); ++it)
        if (it->get() == client) {
            m_clients.erase(it);
            break;
        }
    m_client_count.store(m_clients.size(), std::memory_order_relaxed);
}

void Server::Impl::broadcast(std::string const& line)
{
    // A copy: a client whose queue overflows removes itself from m_clients on the way.
    auto clients = m_clients;
    for (auto const& client : clients)
        client->event(line);
}

void Server::Impl::close_listeners()
{
    for (auto& listener : m_listeners) {
        ErrorCode ignored;
        listener->retry->cancel();
        listener->acceptor->close(ignored);
        struct stat info {};
        auto const& endpoint = listener->endpoint;
        if (endpoint.kind == Endpoint::Kind::Unix && ::lstat(endpoint.path.c_str(), &info) == 0
            && info.st_ino == listener->inode)
            ::unlink(endpoint.path.c_str());
    }
    m_listeners.clear();
}

void Server::Impl::shutdown(std::chrono::milliseconds bound, std::function<void()> done)
{
    m_shutting_down = true;
    close_listeners();
    auto clients = m_clients;
    for (auto const& client : clients)
        client->finish();
    drain(std::chrono::steady_clock::now() + bound, std::move(done));
}

void Server::Impl::drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done)
{
    // Whatever has not gone out by the deadline is dropped with its client.
    if (m_clients.empty() || std::chrono::steady_clock::now() >= deadline) {
        auto rest = m_clients;
        for (auto const& client : rest)
            client->close();
        done();
        return;
    }
    m_drain_timer.expires_after(std::chrono::milliseconds(5));
    m_drain_timer.async_wait([self = shared_from_this(), deadline, done = std::move(done)](ErrorCode) mutable {
        self->drain(deadline, std::move(done));
    });
}

Server::Server(asio::io_context& io, CommandTable const& commands, Json version, Limits limits)
    : m_impl(std::make_shared<Impl>(io, commands, std::move(version), limits))
{
}

Server::~Server()
{
    // shutdown() normally ran; if not (a start-up failure), close what we own without the io thread.
    m_impl->close_listeners();
}

cpuplug::Result<void, std::string> Server::listen(Endpoint const& endpoint)
{
    TRY(m_impl->listen(endpoint));
    asio::post(m_impl->m_io, [impl = m_impl] { impl->start_accepting(); });
    return {};
}

void Server::on_connect(std::function<void()> callback) { m_impl->m_on_connect = std::move(callback); }

void Server::broadcast(Json const& event)
{
    // dispatch: on the io thread (a command emitting an event) it goes out at once, ahead of the reply.
    asio::dispatch(m_impl->m_io, [impl = m_impl, line = to_qmp_text(event)] { impl->broadcast(line); });
}

void Server::shutdown(std::chrono::milliseconds bound)
{
    auto finished = std::make_shared<std::promise<void>>();
    auto future = finished->get_future();
    asio::post(m_impl->m_io, [impl = m_impl, bound, finished] { impl->shutdown(bound, [finished] { finished->set_value(); }); });
    // The io thread may already be gone (a failed start): then there is nothing left to flush.
    future.wait_for(bound + std::chrono::milliseconds(500));
}

size_t Server::client_count() const { return m_impl->m_client_count.load(std::memory_order_relaxed); }

} // namespace vmm::qmp
