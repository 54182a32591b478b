// SerialInput: the host's stdin fed to the UART's receive side, on the io thread. It reads only when
// stdin can be waited on (a terminal in the foreground, a pipe or a socket: not /dev/null or a regular
// file, which epoll refuses) and never changes stdin's flags (no O_NONBLOCK, no raw mode), because the
// file description is shared with the shell that started vmm. End of file stops reading; input the guest
// has no room for is retried every RETRY until it fits.
#pragma once

#include "serial.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace vmm {

class SerialInput {
public:
    static constexpr auto RETRY = std::chrono::milliseconds(10);
    static constexpr size_t CHUNK = 1024;

    // Null when `fd` is not something to read a console from; the reason goes to the debug log.
    static std::unique_ptr<SerialInput> open(boost::asio::io_context& io, int fd, std::shared_ptr<Serial16550> uart);
    ~SerialInput();

    // io thread: drop input read but not yet taken (system_reset: the next boot starts afresh).
    void discard_pending();

private:
    SerialInput(boost::asio::io_context& io, int fd, std::shared_ptr<Serial16550> uart);
    void wait();
    void on_readable();
    void deliver();

    boost::asio::posix::stream_descriptor m_descriptor; // a dup of stdin, so closing it leaves stdin open
    boost::asio::steady_timer m_retry;
    std::shared_ptr<Serial16550> m_uart;
    std::vector<uint8_t> m_pending; // read from the host, not yet taken by the UART
    bool m_eof { false };
    bool m_waiting { false }; // one wait at a time, however deliver() and discard_pending() interleave
};

} // namespace vmm
