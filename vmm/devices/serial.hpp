// A 16550 UART (COM1 at 0x3F8) for the console: transmit only, always ready, no interrupts. Output is
// collected per line and handed to a sink, so a guest's `rep outsb` of a line becomes one host write.
#pragma once

#include "io_bus.hpp"

#include <guest/abi/platform.h>

#include <memory>
#include <mutex>
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

    explicit Serial16550(std::unique_ptr<SerialSink> sink)
        : m_sink(std::move(sink))
    {
    }
    ~Serial16550() override { flush(); }

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;
    // Sends a partial line (at exit, so nothing the guest printed is lost).
    void flush();
    // Power-on register values (system_reset); the output line in progress is sent first.
    void reset();

private:
    void transmit(uint8_t byte);

    std::mutex m_mutex; // guards everything below; taken by vCPU threads and by flush()
    std::unique_ptr<SerialSink> m_sink;
    std::string m_line;
    uint8_t m_ier { 0 }, m_lcr { 0 }, m_mcr { 0 }, m_scr { 0 }, m_dll { 0 }, m_dlm { 0 }, m_fcr { 0 };
};

} // namespace vmm
