// Server: QMP over Unix and TCP sockets on one asio io_context. Each connection is a Session with a
// bounded output queue: a client that stops reading is dropped, never waited for. Nothing here blocks
// the io thread; the VM's threads talk to the server through broadcast() and shutdown() only.
#pragma once

#include "endpoint.hpp"
#include "protocol.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace vmm::qmp {

class Server {
public:
    struct Limits {
        size_t max_clients { 16 };
        size_t max_output_bytes { 4u << 20 }; // queued and unsent; past it the client is dropped
    };

    // `commands` must outlive the server; `version` is the greeting's version object.
    Server(boost::asio::io_context& io, CommandTable const& commands, Json version, Limits limits);
    ~Server();
    Server(Server const&) = delete;
    Server& operator=(Server const&) = delete;

    // Binds and listens at once, so a bad address fails at start-up with a sentence; accepting begins
    // when the io_context runs. Call before the io thread starts.
    cpuplug::Result<void, std::string> listen(Endpoint const& endpoint);
    // Called on the io thread for each accepted client (wait=on waits for the first one).
    void on_connect(std::function<void()> callback);

    // Thread-safe: an event to every client that has negotiated capabilities.
    void broadcast(Json const& event);
    // Thread-safe, never on the io thread: stop accepting, let each client's queued output go out (at most
    // `bound`), close every connection and remove the socket files. Blocks until done.
    void shutdown(std::chrono::milliseconds bound);

    // How many clients are connected (io thread, or tests).
    size_t client_count() const;

    class Impl;

private:
    std::shared_ptr<Impl> m_impl;
};

} // namespace vmm::qmp
