// SerialInput: async_wait for readability, then a plain read() of what FIONREAD says is there, so the
// descriptor stays blocking (asio's async_read_some would set O_NONBLOCK on the shared description).
#include "serial_input.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vmm {

std::unique_ptr<SerialInput> SerialInput::open(boost::asio::io_context& io, int fd,
    std::shared_ptr<Serial16550> uart)
{
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        spdlog::debug("serial input: stdin is closed");
        return nullptr;
    }
    bool tty = ::isatty(fd) != 0;
    if (!tty && !S_ISFIFO(info.st_mode) && !S_ISSOCK(info.st_mode)) {
        spdlog::debug("serial input: stdin is neither a terminal nor a pipe; the guest gets no input");
        return nullptr;
    }
    // A background job that reads its terminal is stopped by SIGTTIN: only the foreground reads it.
    if (tty && ::tcgetpgrp(fd) != ::getpgrp()) {
        spdlog::debug("serial input: vmm is not in the terminal's foreground; the guest gets no input");
        return nullptr;
    }
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
        spdlog::warn("serial input: cannot duplicate stdin: {}", std::strerror(errno));
        return nullptr;
    }
    std::unique_ptr<SerialInput> input(new SerialInput(io, copy, std::move(uart)));
    input->wait();
    return input;
}

SerialInput::SerialInput(boost::asio::io_context& io, int fd, std::shared_ptr<Serial16550> uart)
    : m_descriptor(io, fd)
    , m_retry(io)
    , m_uart(std::move(uart))
{
}

SerialInput::~SerialInput()
{
    boost::system::error_code ignored;
    m_retry.cancel();
    m_descriptor.cancel(ignored);
    m_descriptor.close(ignored);
}

void SerialInput::wait()
{
    if (m_eof || m_waiting || !m_pending.empty())
        return;
    m_waiting = true;
    m_descriptor.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code error) {
        m_waiting = false;
        if (error == boost::asio::error::operation_aborted)
            return;
        if (error) {
            spdlog::warn("serial input: waiting on stdin failed: {}; the guest gets no more input", error.message());
            return;
        }
        on_readable();
    });
}

void SerialInput::on_readable()
{
    int available = 0;
    if (::ioctl(m_descriptor.native_handle(), FIONREAD, &available) != 0 || available <= 0)
        available = 1; // readable with nothing buffered: end of file (read returns 0 at once) or a hang-up
    std::vector<uint8_t> buffer(std::min<size_t>(static_cast<size_t>(available), CHUNK));
    ssize_t n = ::read(m_descriptor.native_handle(), buffer.data(), buffer.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        wait();
        return;
    }
    if (n <= 0) {
        // End of file (or a terminal gone): the guest simply gets no more input.
        spdlog::debug("serial input: end of stdin");
        m_eof = true;
        return;
    }
    m_pending.assign(buffer.begin(), buffer.begin() + n);
    deliver();
}

void SerialInput::deliver()
{
    size_t taken = m_uart->receive(m_pending);
    m_pending.erase(m_pending.begin(), m_pending.begin() + static_cast<std::ptrdiff_t>(taken));
    if (m_pending.empty()) {
        wait();
        return;
    }
    // The guest is not reading (or not yet): hold the rest and stop reading stdin until it fits.
    m_retry.expires_after(RETRY);
    m_retry.async_wait([this](boost::system::error_code error) {
        if (!error)
            deliver();
    });
}

void SerialInput::discard_pending()
{
    bool was_holding = !m_pending.empty();
    m_pending.clear();
    if (was_holding) {
        m_retry.cancel();
        wait();
    }
}

} // namespace vmm
