// The PC ports Linux touches on its way up that cpuplug answers itself (KVM's in-kernel PIC, PIT and speaker
// port take 0x20/0x21/0xA0/0xA1, 0x4D0/0x4D1, 0x40-0x43 and 0x61 before they reach us). Each is as small as
// Linux allows: what it reads, what it concludes, is in docs/platform.md.
// - PciConfigPorts (0xCF8-0xCFF): PCI configuration mechanism 1 with one host bridge at 00:00.0 and nothing
//   else, and the reset control register at 0xCF9;
// - I8042 (0x60, 0x64): a keyboard controller with no keyboard, whose pulse-reset command resets;
// - Cmos (0x70, 0x71): the RTC's registers, read-only, with the host's UTC time;
// - AbsentPorts: reads all ones, writes ignored, no log (POST codes, the DMA page register, COM2-4,
//   the Super I/O configuration ports).
#pragma once

#include "io_bus.hpp"

#include <guest/abi/platform.h>

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

namespace vmm {

// Reads all ones (an ISA bus with nothing on it), ignores writes, and says nothing: for ports Linux probes
// or writes on every PC, where the IoBus's "unclaimed" warning would only be noise.
class AbsentPorts final : public IoDevice {
public:
    void read(uint64_t, std::span<uint8_t> data) override;
    void write(uint64_t, std::span<uint8_t const>) override { }
};

// Presents one port of a device that decodes several, apart from each other (the i8042's 0x60 and 0x64):
// the device sees `offset` added to the bus's.
class PortWindow final : public IoDevice {
public:
    PortWindow(std::shared_ptr<IoDevice> device, uint64_t offset)
        : m_device(std::move(device))
        , m_offset(offset)
    {
    }
    void read(uint64_t offset, std::span<uint8_t> data) override { m_device->read(m_offset + offset, data); }
    void write(uint64_t offset, std::span<uint8_t const> data) override { m_device->write(m_offset + offset, data); }

private:
    std::shared_ptr<IoDevice> m_device;
    uint64_t m_offset;
};

class PciConfigPorts final : public IoDevice {
public:
    static constexpr uint16_t BASE = platform::PCI_CONFIG_PORT;
    static constexpr uint16_t SIZE = platform::PCI_CONFIG_SIZE;
    // The host bridge at 00:00.0: Red Hat's "QEMU PCIe host bridge" id, which no Linux quirk keys on.
    static constexpr uint16_t HOST_VENDOR = 0x1B36;
    static constexpr uint16_t HOST_DEVICE = 0x0008;
    static constexpr uint32_t HOST_CLASS = 0x060000; // bridge, host

    // `reset` runs on the writing vCPU's thread, with no lock held.
    explicit PciConfigPorts(std::function<void()> reset)
        : m_reset(std::move(reset))
    {
    }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;
    void power_on_reset();

private:
    uint8_t config_byte(uint32_t address, unsigned byte) const; // with m_mutex held

    std::function<void()> m_reset;
    std::mutex m_mutex; // guards the two registers
    uint32_t m_address { 0 };
    uint8_t m_reset_control { 0 };
};

class I8042 final : public IoDevice {
public:
    // Offsets as seen through PortWindows at 0x60 (offset DATA) and 0x64 (offset COMMAND).
    static constexpr uint64_t DATA = 0;
    static constexpr uint64_t COMMAND = platform::I8042_CMD_PORT - platform::I8042_DATA_PORT;

    explicit I8042(std::function<void()> reset)
        : m_reset(std::move(reset))
    {
    }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;
    void power_on_reset();

private:
    std::function<void()> m_reset;
    std::mutex m_mutex;
    std::optional<uint8_t> m_output;          // the byte a command left for the data port
    std::optional<uint8_t> m_pending_command; // a command whose parameter the next data write is
    uint8_t m_command_byte { 0 };
};

class Cmos final : public IoDevice {
public:
    static constexpr uint16_t BASE = platform::CMOS_PORT;
    static constexpr uint16_t SIZE = 2;
    using Clock = std::function<std::time_t()>;

    explicit Cmos(Clock clock = [] { return std::time(nullptr); })
        : m_clock(std::move(clock))
    {
    }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;
    void power_on_reset();

private:
    uint8_t register_value(uint8_t index) const; // with m_mutex held

    Clock m_clock;
    std::mutex m_mutex;
    uint8_t m_index { 0 };
    std::array<uint8_t, 128> m_ram {}; // the bytes past the clock registers, writable
};

} // namespace vmm
