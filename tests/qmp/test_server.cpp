// Server over real Unix and TCP sockets: an io_context on its own thread, plain POSIX clients with a
// deadline on every wait (a broken server fails a test instead of hanging it), a temp dir per test.
#define CATCH_CONFIG_ENABLE_OPTIONAL_STRINGMAKER // print std::optional<std::string> in failures
#include "qmp/server.hpp"

#include "fake_backend.hpp"
#include "qmp/commands.hpp"
#include "support/skip.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace vmm::qmp;
using namespace std::chrono_literals;
using qmp_test::FakeBackend;

namespace {

using Clock = std::chrono::steady_clock;

std::string const GREETING
    = R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 9}, "package": "cpuplug-test"}, "capabilities": ["oob"]}})";
std::string const RUNNING = R"({"return": {"running": true, "status": "running"}})";

template<typename Condition>
bool wait_until(Condition&& condition, std::chrono::milliseconds timeout = 5s)
{
    auto deadline = Clock::now() + timeout;
    while (!condition()) {
        if (Clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

int remaining_ms(Clock::time_point deadline)
{
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

class TempDir {
public:
    TempDir()
    {
        char pattern[] = "/tmp/cpuplug-qmp-test-XXXXXX";
        char* made = ::mkdtemp(pattern);
        REQUIRE(made != nullptr);
        m_path = made;
    }
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(m_path, ignored);
    }
    TempDir(TempDir const&) = delete;
    TempDir& operator=(TempDir const&) = delete;

    std::string file(std::string const& name) const { return m_path + "/" + name; }

private:
    std::string m_path;
};

sockaddr_un unix_address(std::string const& path)
{
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(address.sun_path));
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

sockaddr_in loopback(uint16_t port)
{
    sockaddr_in address {};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

// A Unix socket bound at `path`; listening too if asked. The caller closes it.
int bind_unix_socket(std::string const& path, bool listening)
{
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    auto address = unix_address(path);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr const*>(&address), sizeof(address)) == 0);
    if (listening)
        REQUIRE(::listen(fd, 4) == 0);
    return fd;
}

// A TCP port that was free a moment ago: the Server does not tell which port 0 picked.
uint16_t free_tcp_port()
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    auto address = loopback(0);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr const*>(&address), sizeof(address)) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

// A QMP peer on a plain socket. Every wait has a deadline.
class TestClient {
public:
    static std::unique_ptr<TestClient> connect_unix(std::string const& path)
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        auto address = unix_address(path);
        int result = ::connect(fd, reinterpret_cast<sockaddr const*>(&address), sizeof(address));
        std::string reason = result == 0 ? "" : std::strerror(errno);
        INFO("connect " << path << ": " << reason);
        if (result != 0)
            ::close(fd);
        REQUIRE(result == 0);
        return std::unique_ptr<TestClient>(new TestClient(fd));
    }

    static std::unique_ptr<TestClient> connect_tcp(uint16_t port)
    {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        auto address = loopback(port);
        int result = ::connect(fd, reinterpret_cast<sockaddr const*>(&address), sizeof(address));
        std::string reason = result == 0 ? "" : std::strerror(errno);
        INFO("connect 127.0.0.1:" << port << ": " << reason);
        if (result != 0)
            ::close(fd);
        REQUIRE(result == 0);
        return std::unique_ptr<TestClient>(new TestClient(fd));
    }

    static std::unique_ptr<TestClient> adopt(int fd) { return std::unique_ptr<TestClient>(new TestClient(fd)); }

    ~TestClient() { close(); }

    // No more requests: what a script piping into socat does at the end of its input.
    void close_write() { REQUIRE(::shutdown(m_fd, SHUT_WR) == 0); }
    TestClient(TestClient const&) = delete;
    TestClient& operator=(TestClient const&) = delete;

    void close()
    {
        if (m_fd >= 0)
            ::close(m_fd);
        m_fd = -1;
    }

    // Writes everything; false once the connection broke or the peer stopped reading for `timeout`.
    bool send(std::string_view bytes, std::chrono::milliseconds timeout = 5s)
    {
        auto deadline = Clock::now() + timeout;
        while (!bytes.empty()) {
            pollfd entry { m_fd, POLLOUT, 0 };
            if (::poll(&entry, 1, remaining_ms(deadline)) <= 0)
                return false;
            ssize_t sent = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                return false;
            }
            bytes.remove_prefix(static_cast<size_t>(sent));
        }
        return true;
    }

    // The next line with its line ending; nullopt on EOF, a reset or after `timeout`.
    std::optional<std::string> raw_line(std::chrono::milliseconds timeout = 5s)
    {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            if (auto end = m_buffer.find('\n'); end != std::string::npos) {
                std::string line = m_buffer.substr(0, end + 1);
                m_buffer.erase(0, end + 1);
                return line;
            }
            if (m_eof || !fill(deadline))
                return std::nullopt;
        }
    }

    // The next line without its CRLF. A line that ends in a bare LF is marked so that it compares unequal.
    std::optional<std::string> line(std::chrono::milliseconds timeout = 5s)
    {
        auto raw = raw_line(timeout);
        if (!raw)
            return std::nullopt;
        if (!raw->ends_with("\r\n"))
            return raw->substr(0, raw->size() - 1) + " <ends in LF, not CRLF>";
        raw->resize(raw->size() - 2);
        return raw;
    }

    // Sends one request and returns the next line.
    std::optional<std::string> exchange(std::string const& request)
    {
        REQUIRE(send(request));
        return line();
    }

    void greet_and_negotiate()
    {
        REQUIRE(line() == GREETING);
        REQUIRE(exchange(R"({"execute": "qmp_capabilities"})") == R"({"return": {}})");
    }

    // Reads and discards until the server closes the connection; false on timeout.
    bool wait_eof(std::chrono::milliseconds timeout = 5s)
    {
        auto deadline = Clock::now() + timeout;
        while (!m_eof) {
            m_buffer.clear();
            if (!fill(deadline))
                return m_eof;
        }
        return true;
    }

    // True when nothing arrives for `duration`.
    bool quiet(std::chrono::milliseconds duration)
    {
        if (!m_buffer.empty())
            return false;
        return !fill(Clock::now() + duration) && !m_eof;
    }

private:
    explicit TestClient(int fd)
        : m_fd(fd)
    {
    }

    // Reads what is there; false on timeout, EOF or error (EOF and errors set m_eof).
    bool fill(Clock::time_point deadline)
    {
        for (;;) {
            pollfd entry { m_fd, POLLIN, 0 };
            int ready = ::poll(&entry, 1, remaining_ms(deadline));
            if (ready < 0 && errno == EINTR)
                continue;
            if (ready <= 0)
                return false;
            char chunk[65536];
            ssize_t got = ::recv(m_fd, chunk, sizeof(chunk), MSG_DONTWAIT);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got <= 0) {
                m_eof = true; // EOF, or a reset
                return false;
            }
            m_buffer.append(chunk, static_cast<size_t>(got));
            return true;
        }
    }

    int m_fd { -1 };
    std::string m_buffer;
    bool m_eof { false };
};

// A Server on its own io thread, over a FakeBackend with 64 CPU slots, plus a "slow" command whose
// Replies are kept for the test (touch them on the io thread only, through on_io()).
class ServerFixture {
public:
    explicit ServerFixture(Server::Limits limits = {})
    {
        spdlog::set_level(spdlog::level::err);
        for (uint32_t i = 0; i < 64; ++i) {
            CpuSlot slot;
            slot.index = i;
            slot.socket = i / 8;
            slot.core = i % 8;
            if (i < 4)
                slot.qom_path = "/machine/unattached/device[" + std::to_string(i) + "]";
            backend.slots.push_back(slot);
        }
        add_machine_commands(table, backend, version_json(QemuVersion {}, "cpuplug-test"));
        table.add({ "slow", {}, [this](Json const&, Reply reply) {
                       slow_replies.push_back(std::move(reply));
                       slow_started.fetch_add(1, std::memory_order_release);
                   } });
        vmm::qmp::Command guest { "guest", {}, [this](Json const&, Reply reply) {
                                     guest_replies.push_back(std::move(reply));
                                     guest_started.fetch_add(1, std::memory_order_release);
                                 } };
        guest.waits_for_guest = true;
        table.add(std::move(guest));
        server = std::make_unique<Server>(io, table, version_json(QemuVersion {}, "cpuplug-test"), limits);
    }

    ~ServerFixture()
    {
        stop();
        // A handler that throws ends io_context::run(); vmm turns that into a VM exit.
        if (std::uncaught_exceptions() == 0)
            CHECK(escaped().empty());
    }
    ServerFixture(ServerFixture const&) = delete;
    ServerFixture& operator=(ServerFixture const&) = delete;

    std::string listen_unix(std::string const& name = "qmp.sock")
    {
        auto path = dir.file(name);
        auto endpoint = parse_endpoint("unix:" + path);
        REQUIRE(endpoint.has_value());
        auto listening = server->listen(endpoint.value());
        INFO((listening.has_value() ? std::string() : listening.error()));
        REQUIRE(listening.has_value());
        return path;
    }

    uint16_t listen_tcp(std::string const& host = "127.0.0.1")
    {
        uint16_t port = free_tcp_port();
        auto endpoint = parse_endpoint("tcp:" + host + ":" + std::to_string(port));
        REQUIRE(endpoint.has_value());
        auto listening = server->listen(endpoint.value());
        INFO((listening.has_value() ? std::string() : listening.error()));
        REQUIRE(listening.has_value());
        return port;
    }

    void start()
    {
        // As Machine::run does: an exception out of a handler is recorded and the loop goes on.
        m_thread = std::thread([this] {
            for (;;) {
                try {
                    io.run();
                    return;
                } catch (std::exception const& error) {
                    std::lock_guard lock(m_mutex);
                    m_escaped.push_back(error.what());
                }
            }
        });
    }

    std::vector<std::string> escaped()
    {
        std::lock_guard lock(m_mutex);
        return m_escaped;
    }

    void shutdown(std::chrono::milliseconds bound = 2s)
    {
        server->shutdown(bound);
        m_shut = true;
    }

    void stop()
    {
        if (!m_thread.joinable())
            return;
        if (!m_shut)
            shutdown();
        m_guard.reset();
        io.stop();
        m_thread.join();
    }

    // Runs `work` on the io thread and waits for it.
    void on_io(std::function<void()> work)
    {
        auto done = std::make_shared<std::promise<void>>();
        auto finished = done->get_future();
        boost::asio::post(io, [work = std::move(work), done] {
            work();
            done->set_value();
        });
        REQUIRE(finished.wait_for(5s) == std::future_status::ready);
    }

    // True once `count` calls of the "slow" command have started (they wait for answer_slow()).
    bool slow_running(int count = 1)
    {
        return wait_until([&] { return slow_started.load(std::memory_order_acquire) == count; });
    }
    // Answers the index-th "slow" call, on the io thread as a backend would.
    void answer_slow(size_t index, Json reply)
    {
        on_io([this, index, reply = std::move(reply)] { slow_replies.at(index)(reply); });
    }

    boost::asio::io_context io;
    FakeBackend backend;
    CommandTable table;
    std::vector<Reply> slow_replies;
    std::atomic<int> slow_started { 0 };
    std::vector<Reply> guest_replies; // of "guest", a command that waits for the guest
    std::atomic<int> guest_started { 0 };
    TempDir dir;
    std::unique_ptr<Server> server;

private:
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> m_guard { io.get_executor() };
    std::thread m_thread;
    bool m_shut { false };
    std::mutex m_mutex;
    std::vector<std::string> m_escaped; // what() of exceptions that left io_context::run()
};

Json fixed_event(std::string const& name, std::optional<Json> data = std::nullopt)
{
    Json event;
    event["timestamp"] = { { "seconds", 1700000000 }, { "microseconds", 1234 } };
    event["event"] = name;
    if (data)
        event["data"] = *data;
    return event;
}

} // namespace

TEST_CASE("the greeting comes first and ends in CRLF", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    CHECK(client->raw_line() == GREETING + "\r\n");
    CHECK(client->quiet(50ms));
}

TEST_CASE("commands work over a Unix socket and every reply ends in CRLF", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    REQUIRE(client->line() == GREETING);
    CHECK(client->exchange(R"({"execute": "query-status", "id": 0})")
        == R"({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}, "id": 0})");
    REQUIRE(client->send("{'execute': 'qmp_capabilities'}\n{\"execute\": \"query-status\", \"id\": 1}"));
    CHECK(client->raw_line() == "{\"return\": {}}\r\n");
    CHECK(client->raw_line() == "{\"return\": {\"running\": true, \"status\": \"running\"}, \"id\": 1}\r\n");
    CHECK(client->exchange(R"({"execute": "nope"})")
        == R"({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})");
    // A request split over several writes.
    REQUIRE(client->send(R"({"execute": "query-)"));
    CHECK(client->quiet(20ms));
    REQUIRE(client->send(R"(status"})"));
    CHECK(client->line() == RUNNING);
}

TEST_CASE("commands work over TCP", "[server]")
{
    ServerFixture fixture;
    auto port = fixture.listen_tcp();
    fixture.start();
    auto client = TestClient::connect_tcp(port);
    CHECK(client->raw_line() == GREETING + "\r\n");
    REQUIRE(client->exchange(R"({"execute": "qmp_capabilities"})") == R"({"return": {}})");
    CHECK(client->exchange(R"({"execute": "query-status", "id": "t"})")
        == R"({"return": {"running": true, "status": "running"}, "id": "t"})");
}

TEST_CASE("tcp::PORT and localhost listen on loopback", "[server]")
{
    ServerFixture fixture;
    uint16_t bare = free_tcp_port();
    auto endpoint = parse_endpoint("tcp::" + std::to_string(bare));
    REQUIRE(endpoint.has_value());
    REQUIRE(fixture.server->listen(endpoint.value()).has_value());
    auto named = fixture.listen_tcp("localhost");
    fixture.start();
    CHECK(TestClient::connect_tcp(bare)->line() == GREETING);
    CHECK(TestClient::connect_tcp(named)->line() == GREETING);
}

TEST_CASE("commands work over TCP on IPv6 loopback", "[server]")
{
    int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 address {};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_loopback;
    bool usable = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr const*>(&address), sizeof(address)) == 0;
    socklen_t length = sizeof(address);
    usable = usable && ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    if (probe >= 0)
        ::close(probe);
    if (!usable)
        CPUPLUG_SKIP("no IPv6 loopback here (::1 cannot be bound)");
    uint16_t port = ntohs(address.sin6_port);
    ServerFixture fixture;
    auto endpoint = parse_endpoint("tcp:[::1]:" + std::to_string(port));
    REQUIRE(endpoint.has_value());
    REQUIRE(fixture.server->listen(endpoint.value()).has_value());
    fixture.start();

    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr const*>(&address), sizeof(address)) == 0);
    auto client = TestClient::adopt(fd);
    client->greet_and_negotiate();
    CHECK(client->exchange(R"({"execute": "query-status"})") == RUNNING);
}

TEST_CASE("a TCP address that is not numeric or is taken is refused", "[server]")
{
    ServerFixture fixture;
    auto named = parse_endpoint("tcp:example.invalid:4444");
    REQUIRE(named.has_value());
    auto refused = fixture.server->listen(named.value());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == "'example.invalid' is not an IP address");

    int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(taken >= 0);
    auto address = loopback(0);
    REQUIRE(::bind(taken, reinterpret_cast<sockaddr const*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(taken, 1) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    auto port = std::to_string(ntohs(address.sin_port));
    auto busy = fixture.server->listen(parse_endpoint("tcp:127.0.0.1:" + port).value());
    ::close(taken);
    REQUIRE_FALSE(busy.has_value());
    CHECK(busy.error().starts_with("cannot listen on 127.0.0.1:" + port + ": "));
}

TEST_CASE("TCP port 0 listens on some free port", "[server]")
{
    ServerFixture fixture;
    CHECK(fixture.server->listen(parse_endpoint("tcp:127.0.0.1:0").value()).has_value());
}

TEST_CASE("the Unix socket file has mode 0600 whatever the umask", "[server]")
{
    ServerFixture fixture;
    mode_t old_mask = ::umask(0);
    auto path = fixture.listen_unix();
    ::umask(old_mask);
    struct stat info {};
    REQUIRE(::lstat(path.c_str(), &info) == 0);
    CHECK(S_ISSOCK(info.st_mode));
    CHECK((info.st_mode & 07777) == 0600);
}

TEST_CASE("a stale socket file is replaced", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.dir.file("qmp.sock");
    ::close(bind_unix_socket(path, false)); // a dead run's socket: the file stays, nothing accepts
    struct stat info {};
    REQUIRE(::lstat(path.c_str(), &info) == 0);
    REQUIRE(S_ISSOCK(info.st_mode));
    fixture.listen_unix();
    fixture.start();
    CHECK(TestClient::connect_unix(path)->line() == GREETING);
}

TEST_CASE("a socket something still accepts on is refused and left alone", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.dir.file("qmp.sock");
    int other = bind_unix_socket(path, true);
    struct stat before {};
    REQUIRE(::lstat(path.c_str(), &before) == 0);
    auto refused = fixture.server->listen(parse_endpoint("unix:" + path).value());
    struct stat after {};
    bool still_there = ::lstat(path.c_str(), &after) == 0;
    ::close(other);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == path + " is in use by a running program");
    CHECK(still_there);
    CHECK(after.st_ino == before.st_ino);
}

TEST_CASE("a regular file at the socket path is refused and left alone", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.dir.file("qmp.sock");
    std::ofstream(path) << "precious";
    auto refused = fixture.server->listen(parse_endpoint("unix:" + path).value());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == path + " exists and is not a socket");
    std::ifstream in(path);
    std::string content;
    in >> content;
    CHECK(content == "precious");
}

TEST_CASE("a directory at the socket path is refused", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.dir.file("qmp.sock");
    REQUIRE(std::filesystem::create_directory(path));
    auto refused = fixture.server->listen(parse_endpoint("unix:" + path).value());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == path + " exists and is not a socket");
}

TEST_CASE("a socket in a missing directory is refused with the path", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.dir.file("no/such/dir/qmp.sock");
    auto refused = fixture.server->listen(parse_endpoint("unix:" + path).value());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().starts_with("cannot create " + path + ": "));
}

TEST_CASE("shutdown removes the socket file and closes the clients", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    REQUIRE(client->line() == GREETING);
    REQUIRE(wait_until([&] { return fixture.server->client_count() == 1; }));
    fixture.shutdown();
    CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
    CHECK(client->wait_eof());
    CHECK(fixture.server->client_count() == 0);
}

TEST_CASE("shutdown leaves a file that replaced our socket alone", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    REQUIRE(::unlink(path.c_str()) == 0);
    std::ofstream(path) << "someone else's";
    fixture.shutdown();
    CHECK(std::filesystem::is_regular_file(path));
}

TEST_CASE("a server destroyed without shutdown still removes its socket file", "[server]")
{
    TempDir dir;
    auto path = dir.file("qmp.sock");
    {
        boost::asio::io_context io;
        CommandTable table;
        Server server(io, table, version_json(QemuVersion {}, ""), Server::Limits {});
        REQUIRE(server.listen(parse_endpoint("unix:" + path).value()).has_value());
        REQUIRE(std::filesystem::exists(std::filesystem::symlink_status(path)));
    }
    CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
}

TEST_CASE("on_connect runs for each accepted client", "[server]")
{
    ServerFixture fixture;
    std::atomic<int> connects { 0 };
    fixture.server->on_connect([&connects] { connects.fetch_add(1); });
    auto path = fixture.listen_unix();
    fixture.start();
    auto first = TestClient::connect_unix(path);
    auto second = TestClient::connect_unix(path);
    CHECK(wait_until([&] { return connects.load() == 2; }));
    CHECK(wait_until([&] { return fixture.server->client_count() == 2; }));
}

TEST_CASE("broadcast reaches only clients that negotiated", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto negotiated = TestClient::connect_unix(path);
    negotiated->greet_and_negotiate();
    auto waiting = TestClient::connect_unix(path);
    REQUIRE(waiting->line() == GREETING);
    REQUIRE(wait_until([&] { return fixture.server->client_count() == 2; }));

    auto event = fixed_event("STOP");
    fixture.server->broadcast(event);
    CHECK(negotiated->raw_line() == to_qmp_text(event) + "\r\n");
    CHECK(waiting->quiet(50ms));
    // The event went out before this request was read, so the reply is the next line.
    CHECK(waiting->exchange(R"({"execute": "qmp_capabilities"})") == R"({"return": {}})");
    fixture.server->broadcast(fixed_event("RESUME"));
    CHECK(waiting->line() == to_qmp_text(fixed_event("RESUME")));
    CHECK(negotiated->line() == to_qmp_text(fixed_event("RESUME")));
}

TEST_CASE("two clients receive the same event line", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    auto port = fixture.listen_tcp();
    fixture.start();
    auto first = TestClient::connect_unix(path);
    first->greet_and_negotiate();
    auto second = TestClient::connect_tcp(port);
    second->greet_and_negotiate();
    auto event = fixed_event("RESET", Json { { "guest", false }, { "reason", "host-qmp-system-reset" } });
    fixture.server->broadcast(event);
    std::string const expected = R"({"timestamp": {"seconds": 1700000000, "microseconds": 1234}, "event": "RESET", )"
                                 R"("data": {"guest": false, "reason": "host-qmp-system-reset"}})";
    CHECK(first->line() == expected);
    CHECK(second->line() == expected);
}

TEST_CASE("events from many threads all arrive", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    client->greet_and_negotiate();
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t)
        senders.emplace_back([&fixture, t] {
            for (int i = 0; i < 50; ++i)
                fixture.server->broadcast(fixed_event("E", Json { { "t", t }, { "i", i } }));
        });
    for (auto& sender : senders)
        sender.join();
    std::vector<int> next(4, 0);
    for (int n = 0; n < 200; ++n) {
        auto line = client->line();
        REQUIRE(line);
        auto data = Json::parse(*line)["data"];
        int t = data["t"].get<int>();
        // Each sender's events keep their order.
        CHECK(data["i"].get<int>() == next.at(static_cast<size_t>(t)));
        ++next.at(static_cast<size_t>(t));
    }
    CHECK(client->quiet(20ms));
}

TEST_CASE("a client over the cap gets an error line and EOF", "[server]")
{
    ServerFixture fixture(Server::Limits { .max_clients = 2, .max_output_bytes = 4u << 20 });
    auto path = fixture.listen_unix();
    fixture.start();
    auto first = TestClient::connect_unix(path);
    REQUIRE(first->line() == GREETING);
    auto second = TestClient::connect_unix(path);
    REQUIRE(second->line() == GREETING);
    REQUIRE(wait_until([&] { return fixture.server->client_count() == 2; }));

    auto third = TestClient::connect_unix(path);
    // A scripted client writes at once, without waiting for a greeting; the refusal must still arrive.
    // The write itself may fail: the server can have closed the connection already.
    (void)third->send(R"({"execute": "qmp_capabilities"})");
    CHECK(third->raw_line()
        == R"({"error": {"class": "GenericError", "desc": "Too many QMP clients (2); try again later"}})"
           "\r\n");
    CHECK(third->wait_eof());
    CHECK(fixture.server->client_count() == 2);

    // The two admitted clients are unaffected, and a slot that frees up can be taken.
    REQUIRE(first->exchange(R"({"execute": "qmp_capabilities"})") == R"({"return": {}})");
    CHECK(first->exchange(R"({"execute": "query-status"})") == RUNNING);
    second->close();
    REQUIRE(wait_until([&] { return fixture.server->client_count() == 1; }));
    auto fourth = TestClient::connect_unix(path);
    CHECK(fourth->line() == GREETING);
    CHECK(wait_until([&] { return fixture.server->client_count() == 2; }));
}

TEST_CASE("a client that never reads events is dropped while another keeps working", "[server]")
{
    ServerFixture fixture(Server::Limits { .max_clients = 16, .max_output_bytes = 64u << 10 });
    auto path = fixture.listen_unix();
    fixture.start();
    auto stuck = TestClient::connect_unix(path);
    stuck->greet_and_negotiate();
    auto reader = TestClient::connect_unix(path);
    reader->greet_and_negotiate();
    REQUIRE(wait_until([&] { return fixture.server->client_count() == 2; }));

    // 1 KiB events, read by one client in batches of 20: up to 5 MiB in all, far past what the kernel
    // buffers and the 64 KiB queue hold for the other. A batch stays well under the limit because the
    // server counts a write as queued until its completion handler has run, which can be after the
    // reader already has the bytes.
    auto event = fixed_event("BULK", Json { { "pad", std::string(1024, 'p') } });
    std::string const line = to_qmp_text(event);
    bool dropped = false;
    int wrong = 0;
    std::string first_wrong;
    for (int batch = 0; batch < 250 && !dropped && wrong == 0; ++batch) {
        for (int i = 0; i < 20; ++i)
            fixture.server->broadcast(event);
        for (int i = 0; i < 20; ++i) {
            auto got = reader->line();
            if (got != line && wrong++ == 0)
                first_wrong = "batch " + std::to_string(batch) + " line " + std::to_string(i) + ": "
                    + (got ? got->substr(0, 200) : std::string("nothing")) + ", clients: "
                    + std::to_string(fixture.server->client_count());
        }
        dropped = fixture.server->client_count() == 1;
    }
    INFO(first_wrong);
    CHECK(wrong == 0);
    CHECK(dropped);
    CHECK(wait_until([&] { return fixture.server->client_count() == 1; }));
    CHECK(reader->exchange(R"({"execute": "query-status", "id": 1})")
        == R"({"return": {"running": true, "status": "running"}, "id": 1})");
    CHECK(stuck->wait_eof());
}

TEST_CASE("a client that never reads its replies is dropped while another keeps working", "[server]")
{
    ServerFixture fixture(Server::Limits { .max_clients = 16, .max_output_bytes = 64u << 10 });
    auto path = fixture.listen_unix();
    fixture.start();
    auto stuck = TestClient::connect_unix(path);
    stuck->greet_and_negotiate();
    auto reader = TestClient::connect_unix(path);
    reader->greet_and_negotiate();
    REQUIRE(wait_until([&] { return fixture.server->client_count() == 2; }));

    // Each reply lists 64 CPU slots (about 6 KiB); 1000 of them will not fit anywhere.
    std::string requests;
    for (int i = 0; i < 1000; ++i)
        requests += R"({"execute": "query-hotpluggable-cpus"})";
    (void)stuck->send(requests, 2s); // the server may drop us before it has read everything
    CHECK(wait_until([&] { return fixture.server->client_count() == 1; }));
    CHECK(reader->exchange(R"({"execute": "query-status", "id": 2})")
        == R"({"return": {"running": true, "status": "running"}, "id": 2})");
    CHECK(stuck->wait_eof());
}

TEST_CASE("a client that leaves during an asynchronous command does no harm when it answers", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto leaving = TestClient::connect_unix(path);
    leaving->greet_and_negotiate();
    REQUIRE(leaving->send(R"({"execute": "slow", "id": 1}{"execute": "query-status", "id": 2})"));
    REQUIRE(fixture.slow_running());
    leaving->close();

    auto staying = TestClient::connect_unix(path);
    staying->greet_and_negotiate();
    fixture.answer_slow(0, Json { { "late", true } });
    CHECK(wait_until([&] { return fixture.server->client_count() == 1; }));
    CHECK(staying->exchange(R"({"execute": "query-status", "id": 3})")
        == R"({"return": {"running": true, "status": "running"}, "id": 3})");
    // A second call of the same Reply is ignored too.
    fixture.answer_slow(0, Json::object());
    CHECK(staying->quiet(20ms));
}

TEST_CASE("an asynchronous reply holds back the client's next request", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    client->greet_and_negotiate();
    REQUIRE(client->send(R"({"execute": "slow", "id": 1}{"execute": "query-status", "id": 2})"));
    REQUIRE(fixture.slow_running());
    CHECK(client->quiet(50ms));
    fixture.answer_slow(0, Json { { "done", true } });
    CHECK(client->line() == R"({"return": {"done": true}, "id": 1})");
    CHECK(client->line() == R"({"return": {"running": true, "status": "running"}, "id": 2})");
}

TEST_CASE("while a command runs the server leaves the client's further input in the socket", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    client->greet_and_negotiate();
    REQUIRE(client->send(R"({"execute": "slow", "id": 1})"));
    REQUIRE(fixture.slow_running());
    // 8 MiB of requests cannot fit in the kernel's buffers: the write must stall rather than fill the
    // server's memory.
    std::string flood;
    while (flood.size() < (8u << 20))
        flood += R"({"execute": "query-status"})";
    CHECK_FALSE(client->send(flood, 1s));
    fixture.answer_slow(0, Json::object());
    CHECK(client->line() == R"({"return": {}, "id": 1})");
    CHECK(client->line() == RUNNING);
}

TEST_CASE("with oob enabled an exec-oob is read and answered while an in-band command waits", "[server][oob]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    REQUIRE(client->line() == GREETING);
    REQUIRE(client->exchange(R"({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})") == R"({"return": {}})");
    REQUIRE(client->send(R"({"execute": "slow", "id": 1}{"execute": "query-status", "id": 2})"));
    REQUIRE(fixture.slow_running());
    CHECK(client->quiet(20ms));
    // Sent after the in-band ones, in another write: read and answered at once.
    CHECK(client->exchange(R"({"exec-oob": "query-status", "id": "oob"})")
        == R"({"return": {"running": true, "status": "running"}, "id": "oob"})");
    CHECK(client->exchange(R"({"exec-oob": "stop", "id": "no"})")
        == R"({"error": {"class": "GenericError", "desc": "The command stop does not support OOB"}, "id": "no"})");
    fixture.answer_slow(0, Json { { "done", true } });
    CHECK(client->line() == R"({"return": {"done": true}, "id": 1})");
    CHECK(client->line() == R"({"return": {"running": true, "status": "running"}, "id": 2})");
}

TEST_CASE("without oob enabled an exec-oob waits its turn behind a running command", "[server][oob]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    client->greet_and_negotiate();
    REQUIRE(client->send(R"({"execute": "slow", "id": 1})"));
    REQUIRE(fixture.slow_running());
    REQUIRE(client->send(R"({"exec-oob": "query-status", "id": 2})"));
    CHECK(client->quiet(50ms));
    fixture.answer_slow(0, Json::object());
    CHECK(client->line() == R"({"return": {}, "id": 1})");
    CHECK(client->line()
        == R"({"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}, "id": 2})");
}

TEST_CASE("with oob enabled a flood behind a running command still stays in the socket", "[server][oob]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    REQUIRE(client->line() == GREETING);
    REQUIRE(client->exchange(R"({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})") == R"({"return": {}})");
    REQUIRE(client->send(R"({"execute": "slow", "id": 1})"));
    REQUIRE(fixture.slow_running());
    std::string flood;
    while (flood.size() < (8u << 20))
        flood += R"({"execute": "query-status"})";
    CHECK_FALSE(client->send(flood, 1s));
    fixture.answer_slow(0, Json::object());
    CHECK(client->line() == R"({"return": {}, "id": 1})");
    CHECK(client->line() == RUNNING);
}

TEST_CASE("a reply that comes after shutdown is dropped", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    client->greet_and_negotiate();
    REQUIRE(client->send(R"({"execute": "slow", "id": 1})"));
    REQUIRE(fixture.slow_running());
    fixture.shutdown();
    CHECK(client->wait_eof());
    fixture.answer_slow(0, Json::object());
    CHECK(fixture.server->client_count() == 0);
}

TEST_CASE("a client that half-closes after its requests still gets every reply", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    auto port = fixture.listen_tcp();
    fixture.start();
    auto over_unix = TestClient::connect_unix(path);
    auto over_tcp = TestClient::connect_tcp(port);
    for (auto* client : { over_unix.get(), over_tcp.get() }) {
        REQUIRE(client->send(R"({"execute": "qmp_capabilities"}{"execute": "query-status", "id": 1})"
                             R"({"execute": "stop", "id": 2})"));
        client->close_write();
        CHECK(client->line() == GREETING);
        CHECK(client->line() == R"({"return": {}})");
        CHECK(client->line() == R"({"return": {"running": true, "status": "running"}, "id": 1})");
        CHECK(client->line() == R"({"return": {}, "id": 2})");
        CHECK(client->wait_eof());
    }
    CHECK(wait_until([&] { return fixture.server->client_count() == 0; }));
}

TEST_CASE("a client that half-closes while a guest command waits gets that reply too, then EOF", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    REQUIRE(client->send(R"({"execute": "qmp_capabilities"}{"execute": "guest", "id": "g"})"
                         R"({"execute": "query-status", "id": "s"})"));
    client->close_write();
    CHECK(client->line() == GREETING);
    CHECK(client->line() == R"({"return": {}})");
    CHECK(client->line() == R"({"return": {"running": true, "status": "running"}, "id": "s"})");
    REQUIRE(wait_until([&] { return fixture.guest_started.load(std::memory_order_acquire) == 1; }));
    fixture.on_io([&fixture] { fixture.guest_replies.at(0)(Json { { "late", true } }); });
    CHECK(client->line() == R"({"return": {"late": true}, "id": "g"})");
    CHECK(client->wait_eof());
    CHECK(wait_until([&] { return fixture.server->client_count() == 0; }));
}

// A regression test: nlohmann's out_of_range once escaped the read handler and ended the io loop.
TEST_CASE("a number too large for a double does not break the event loop", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    REQUIRE(client->line() == GREETING);
    REQUIRE(client->send(R"({"execute": "qmp_capabilities", "id": 1e400})"));
    CHECK(client->line(1s)
        == R"({"error": {"class": "GenericError", "desc": "JSON parse error, number overflow parsing '1e400'"}})");
    CHECK(client->exchange(R"({"execute": "qmp_capabilities"})") == R"({"return": {}})");
    CHECK(fixture.escaped().empty());
}

TEST_CASE("shutdown lets a pending event go out before it closes", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    client->greet_and_negotiate();
    auto event = fixed_event("SHUTDOWN", Json { { "guest", false }, { "reason", "host-qmp-quit" } });
    fixture.server->broadcast(event);
    fixture.shutdown();
    // Nothing was read before shutdown returned: the event must be waiting in the socket, then EOF.
    CHECK(client->raw_line() == to_qmp_text(event) + "\r\n");
    CHECK(client->wait_eof());
}

TEST_CASE("shutdown flushes a large backlog of output to a reading client", "[server]")
{
    ServerFixture fixture;
    auto path = fixture.listen_unix();
    fixture.start();
    auto client = TestClient::connect_unix(path);
    client->greet_and_negotiate();
    // About 1 MiB: more than the kernel holds, so part of it is still queued in the server.
    auto event = fixed_event("BULK", Json { { "pad", std::string(1024, 'p') } });
    for (int i = 0; i < 1000; ++i)
        fixture.server->broadcast(event);
    std::thread closer([&fixture] { fixture.shutdown(5s); });
    int received = 0;
    std::string const line = to_qmp_text(event);
    while (auto got = client->line()) {
        if (*got != line)
            break;
        ++received;
    }
    closer.join();
    CHECK(received == 1000);
}
