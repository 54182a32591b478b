// Serial16550: the register file as Linux's 8250 driver probes and runs it (autoconfig, the THRE test at
// startup, interrupt-driven RX and TX), and as our guest polls it.
#include "serial.hpp"

#include <algorithm>
#include <cerrno>
#include <unistd.h>

namespace vmm {

namespace {

// Register offsets.
constexpr uint64_t RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

constexpr uint8_t IER_RDI = 0x01;  // received data available
constexpr uint8_t IER_THRI = 0x02; // transmit holding register empty
constexpr uint8_t IER_MASK = 0x0F; // bits 7..4 do not exist on a 16550A (Linux checks they read back 0)
constexpr uint8_t IIR_NO_INTERRUPT = 0x01;
constexpr uint8_t IIR_THRI = 0x02;
constexpr uint8_t IIR_RDI = 0x04;
// Both bits set with FIFOs enabled is what marks a 16550A with working FIFOs; bit 5 (a 16750's 64-byte
// FIFO) stays clear, or Linux would take the chip for a 16750.
constexpr uint8_t IIR_FIFO_ENABLED = 0xC0;
constexpr uint8_t FCR_ENABLE = 0x01;
constexpr uint8_t FCR_CLEAR_RX = 0x02;
constexpr uint8_t FCR_KEPT = 0xC9; // enable, DMA mode, RX trigger level; the clear bits act once, bit 5 (64-byte FIFO) is not a 16550A's
constexpr uint8_t LCR_DLAB = 0x80;
constexpr uint8_t MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
constexpr uint8_t MCR_MASK = 0x1F;
constexpr uint8_t LSR_DR = 0x01;   // data ready
constexpr uint8_t LSR_THRE = 0x20; // transmit holding register empty
constexpr uint8_t LSR_TEMT = 0x40; // transmitter empty
constexpr uint8_t MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80;

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

uint8_t Serial16550::interrupt_id() const
{
    // The 16550's priorities: line status (never raised here), received data, THR empty, modem status
    // (never raised: the modem lines do not change).
    if ((m_ier & IER_RDI) && !m_rx.empty())
        return IIR_RDI;
    if ((m_ier & IER_THRI) && m_thr_interrupt)
        return IIR_THRI;
    return IIR_NO_INTERRUPT;
}

void Serial16550::update_irq()
{
    // On a PC the UART's INTR pin reaches the interrupt controller through a gate driven by MCR OUT2; Linux
    // sets OUT2 on ports it runs with an IRQ and clears it at shutdown. The line is a level that follows
    // the pending state, as the chip's pin does; ISA IRQ 4 is edge-triggered at the IOAPIC and the PIC,
    // so each new cause after Linux's handler has read IIR down to "no interrupt" is a fresh rising edge.
    bool level = (m_mcr & MCR_OUT2) && interrupt_id() != IIR_NO_INTERRUPT;
    if (level != m_irq_level) {
        m_irq_level = level;
        if (m_irq)
            m_irq(level);
    }
}

void Serial16550::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    bool dlab = (m_lcr & LCR_DLAB) != 0;
    uint8_t value = 0;
    switch (offset) {
    case RBR_THR:
        if (dlab) {
            value = m_dll;
        } else if (!m_rx.empty()) {
            value = m_rx.front();
            m_rx.pop_front();
            update_irq();
        }
        break;
    case IER:
        value = dlab ? m_dlm : m_ier;
        break;
    case IIR_FCR: {
        uint8_t id = interrupt_id();
        value = static_cast<uint8_t>(id | ((m_fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0));
        if (id == IIR_THRI) { // reading IIR acknowledges a THR-empty interrupt it reports
            m_thr_interrupt = false;
            update_irq();
        }
        break;
    }
    case LCR:
        value = m_lcr;
        break;
    case MCR:
        value = m_mcr;
        break;
    case LSR:
        value = static_cast<uint8_t>(LSR_THRE | LSR_TEMT | (m_rx.empty() ? 0 : LSR_DR));
        break;
    case MSR:
        if (m_mcr & MCR_LOOP) {
            // Loopback wires the modem outputs to the inputs: DTR to DSR, RTS to CTS, OUT1 to RI, OUT2 to
            // DCD. Linux's probe writes LOOP | RTS | OUT2 and expects exactly CTS | DCD.
            value = static_cast<uint8_t>(((m_mcr & MCR_DTR) ? MSR_DSR : 0) | ((m_mcr & MCR_RTS) ? MSR_CTS : 0)
                | ((m_mcr & MCR_OUT1) ? MSR_RI : 0) | ((m_mcr & MCR_OUT2) ? MSR_DCD : 0));
        } else {
            value = MSR_DCD | MSR_DSR | MSR_CTS; // a console that is always there and always ready
        }
        break;
    case SCR:
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
    case RBR_THR:
        if (dlab) {
            m_dll = value;
            break;
        }
        // Writing THR acknowledges its interrupt; the byte leaves at once and THR is empty again, which
        // latches a new one. Two updates, so a line that was high drops and rises: a new edge, as the
        // chip gives once the byte has moved to the shift register.
        m_thr_interrupt = false;
        update_irq();
        if (m_mcr & MCR_LOOP) {
            if (m_rx.size() < RX_CAPACITY)
                m_rx.push_back(value);
        } else {
            transmit(value);
        }
        m_thr_interrupt = true;
        update_irq();
        break;
    case IER:
        if (dlab) {
            m_dlm = value;
            break;
        }
        {
            uint8_t enabled = static_cast<uint8_t>(value & IER_MASK);
            // Enabling the THR-empty interrupt while THR is empty (it always is) raises it at once; Linux's
            // startup test (and its start_tx) rely on that.
            if ((enabled & IER_THRI) && !(m_ier & IER_THRI))
                m_thr_interrupt = true;
            else if (!(enabled & IER_THRI))
                m_thr_interrupt = false;
            m_ier = enabled;
        }
        update_irq();
        break;
    case IIR_FCR:
        // Clearing the RX FIFO, or switching the FIFOs on or off, drops what was received.
        if ((value & FCR_CLEAR_RX) || ((value ^ m_fcr) & FCR_ENABLE))
            m_rx.clear();
        m_fcr = static_cast<uint8_t>(value & FCR_KEPT);
        update_irq();
        break;
    case LCR:
        m_lcr = value;
        break;
    case MCR:
        m_mcr = static_cast<uint8_t>(value & MCR_MASK);
        update_irq();
        break;
    case SCR:
        m_scr = value;
        break;
    default:
        break; // LSR and MSR are read-only
    }
}

size_t Serial16550::receive(std::span<uint8_t const> bytes)
{
    std::lock_guard lock(m_mutex);
    if (m_mcr & MCR_LOOP)
        return bytes.size(); // loopback disconnects the receive line: what arrives meanwhile is lost, as on the chip
    size_t taken = std::min(bytes.size(), RX_CAPACITY - m_rx.size());
    m_rx.insert(m_rx.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(taken));
    update_irq();
    return taken;
}

bool Serial16550::irq_level() const
{
    std::lock_guard lock(m_mutex);
    return m_irq_level;
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
    m_rx.clear();
    m_thr_interrupt = false;
    m_ier = m_lcr = m_mcr = m_scr = m_dll = m_dlm = m_fcr = 0;
    update_irq();
}

} // namespace vmm
