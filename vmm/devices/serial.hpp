// A 16550A UART (COM1 at 0x3F8, IRQ 4) for the console. Transmit is instantaneous (THR is always empty);
// output is collected per line and handed to a sink, so a guest's `rep outsb` of a line becomes one host
// write. Input arrives through receive() into an RX buffer. Interrupts: received data and THR empty, with
// the 16550A's IIR priorities and FIFO bits, so Linux's 8250 driver detects a 16550A and runs it
// interrupt-driven; the interrupt line follows "an enabled interrupt is pending", as the chip's INTR pin.
#pragma once

#include "io_bus.hpp"

#include <guest/abi/platform.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

namespace vmm {

class SerialSink {
public:
    virtual ~SerialSink() = default;
    virtual void write(std::string_view bytes) = 0;
};

// Writes to a file descriptor it may own (a file) or borrow (stdout).
std::unique_ptr<SerialSink> make_fd_sink(int fd, bool owned);
std::unique_ptr<SerialSink> make_null_sink();

class Serial16550 final : public IoDevice {
public:
    static constexpr uint16_t COM1_BASE = platform::COM1_PORT;
    static constexpr uint16_t REGISTER_COUNT = 8;
    static constexpr size_t MAX_LINE = 4096;
    // Input waiting for the guest. Larger than the chip's 16-byte FIFO so that a paste is not lost while
    // the guest is busy; the host reader holds back what does not fit (receive() says how much it took).
    static constexpr size_t RX_CAPACITY = 4096;

    // `irq` sets the interrupt line's level; it is called with the device's lock held, so it must not
    // call back into the device (KVM_IRQ_LINE does not).
    explicit Serial16550(std::unique_ptr<SerialSink> sink, std::function<void(bool level)> irq = {})
        : m_sink(std::move(sink))
        , m_irq(std::move(irq))
    {
    }
    ~Serial16550() override { flush(); }

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;
    // Host input for the guest; returns how many bytes fit (any thread).
    size_t receive(std::span<uint8_t const> bytes);
    // Sends a partial line (at exit, so nothing the guest printed is lost).
    void flush();
    // Power-on register values (system_reset); the output line in progress is sent first, input is dropped.
    void reset();
    bool irq_level() const;

private:
    void transmit(uint8_t byte);
    uint8_t interrupt_id() const; // IIR bits 3..0
    void update_irq();            // with m_mutex held

    mutable std::mutex m_mutex; // guards everything below; taken by vCPU threads, the io thread and flush()
    std::unique_ptr<SerialSink> m_sink;
    std::function<void(bool)> m_irq;
    std::string m_line;
    std::deque<uint8_t> m_rx;
    bool m_thr_interrupt { false }; // THR-empty interrupt latched, cleared by an IIR read that reports it or a THR write
    bool m_irq_level { false };
    uint8_t m_ier { 0 }, m_lcr { 0 }, m_mcr { 0 }, m_scr { 0 }, m_dll { 0 }, m_dlm { 0 }, m_fcr { 0 };
};

} // namespace vmm
