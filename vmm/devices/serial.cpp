// Serial16550: enough of the register file that drivers probing the UART (Linux's 8250, ours) are happy.
#include "serial.hpp"

#include <cerrno>
#include <unistd.h>

namespace vmm {

namespace {

constexpr uint8_t LCR_DLAB = 0x80;
constexpr uint8_t LSR_THRE = 0x20; // transmit holding register empty
constexpr uint8_t LSR_TEMT = 0x40; // transmitter empty
constexpr uint8_t IIR_NO_INTERRUPT = 0x01;
constexpr uint8_t IIR_FIFO_ENABLED = 0xC0;
constexpr uint8_t MSR_CTS_DSR_DCD = 0xB0;
constexpr uint8_t MCR_LOOP = 0x10;

class FdSink final : public SerialSink {
public:
    FdSink(int fd, bool owned)
        : m_fd(fd)
        , m_owned(owned)
    {
    }
    ~FdSink() override
    {
        if (m_owned)
            ::close(m_fd);
    }
    void write(std::string_view bytes) override
    {
        while (!bytes.empty()) {
            ssize_t n = ::write(m_fd, bytes.data(), bytes.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return; // the console is gone (closed pipe): drop output rather than stall a vCPU
            bytes.remove_prefix(static_cast<size_t>(n));
        }
    }

private:
    int m_fd;
    bool m_owned;
};

class NullSink final : public SerialSink {
public:
    void write(std::string_view) override { }
};

} // namespace

std::unique_ptr<SerialSink> make_fd_sink(int fd, bool owned) { return std::make_unique<FdSink>(fd, owned); }
std::unique_ptr<SerialSink> make_null_sink() { return std::make_unique<NullSink>(); }

void Serial16550::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    bool dlab = (m_lcr & LCR_DLAB) != 0;
    uint8_t value = 0;
    switch (offset) {
    case 0:
        value = dlab ? m_dll : 0; // no input: the receive buffer reads empty
        break;
    case 1:
        value = dlab ? m_dlm : m_ier;
        break;
    case 2:
        value = IIR_NO_INTERRUPT | ((m_fcr & 1) ? IIR_FIFO_ENABLED : 0);
        break;
    case 3:
        value = m_lcr;
        break;
    case 4:
        value = m_mcr;
        break;
    case 5:
        value = LSR_THRE | LSR_TEMT;
        break;
    case 6:
        // In loopback mode a driver's probe expects the modem outputs reflected; outside it, "all ready".
        value = (m_mcr & MCR_LOOP) ? static_cast<uint8_t>((m_mcr & 0x0F) << 4) : MSR_CTS_DSR_DCD;
        break;
    case 7:
        value = m_scr;
        break;
    }
    data[0] = value;
}

void Serial16550::write(uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_mutex);
    uint8_t value = data[0];
    bool dlab = (m_lcr & LCR_DLAB) != 0;
    switch (offset) {
    case 0:
        if (dlab)
            m_dll = value;
        else if (!(m_mcr & MCR_LOOP))
            transmit(value);
        break;
    case 1:
        if (dlab)
            m_dlm = value;
        else
            m_ier = value & 0x0F;
        break;
    case 2:
        m_fcr = value;
        break;
    case 3:
        m_lcr = value;
        break;
    case 4:
        m_mcr = value & 0x1F;
        break;
    case 7:
        m_scr = value;
        break;
    default:
        break; // LSR and MSR are read-only
    }
}

void Serial16550::transmit(uint8_t byte)
{
    m_line.push_back(static_cast<char>(byte));
    if (byte == '\n' || m_line.size() >= MAX_LINE) {
        m_sink->write(m_line);
        m_line.clear();
    }
}

void Serial16550::flush()
{
    std::lock_guard lock(m_mutex);
    if (!m_line.empty()) {
        m_sink->write(m_line);
        m_line.clear();
    }
}

void Serial16550::reset()
{
    std::lock_guard lock(m_mutex);
    if (!m_line.empty()) {
        m_sink->write(m_line + "\n"); // the old boot's last words stay on their own line
        m_line.clear();
    }
    m_ier = m_lcr = m_mcr = m_scr = m_dll = m_dlm = m_fcr = 0;
}

} // namespace vmm
