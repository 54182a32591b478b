// The ACPI fixed-hardware block of QEMU q35 (ICH9 PM I/O at 0x600): PM1a event (status/enable), PM1a
// control (soft-off via SLP_EN), the 3.579545 MHz PM timer and the GPE0 block (8 status + 8 enable bytes).
// The SCI level is recomputed after every register write and every event, as QEMU's acpi_update_sci() does
// (registers: ACPI 6.5 §4.8.4, PM1, and §4.8.5.1, GPE blocks).
#pragma once

#include "io_bus.hpp"

#include <guest/abi/platform.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

namespace vmm {

class AcpiPm final : public IoDevice {
public:
    static constexpr uint16_t BASE = platform::PM_BASE;
    static constexpr uint16_t SIZE = 0x30;
    // Offsets in the block (the FADT advertises BASE + these).
    static constexpr uint16_t PM1A_EVT = platform::PM1A_EVT_OFFSET; // 2 bytes status, 2 bytes enable
    static constexpr uint16_t PM1A_CNT = platform::PM1A_CNT_OFFSET; // 2 bytes
    static constexpr uint16_t PM_TMR = platform::PM_TMR_OFFSET;     // 4 bytes, 24-bit counter
    static constexpr uint16_t GPE0 = platform::GPE0_OFFSET;         // 8 bytes status, 8 bytes enable
    static constexpr uint16_t GPE0_LENGTH = platform::GPE0_LENGTH;

    static constexpr uint16_t PM1_PWRBTN = 1 << 8;
    static constexpr uint16_t PM1_CNT_SCI_EN = 1 << 0;
    static constexpr uint16_t PM1_CNT_SLP_EN = 1 << 13;
    static constexpr uint32_t PM_TIMER_HZ = platform::PM_TIMER_HZ;

    struct Callbacks {
        std::function<void(uint8_t sleep_type)> sleep; // SLP_EN written, with SLP_TYP
        std::function<void(bool level)> sci;           // SCI line level changed
    };

    explicit AcpiPm(Callbacks callbacks);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    // Sets a GPE0 status bit (0..63) and re-evaluates the SCI.
    void raise_gpe(unsigned bit);
    // The ACPI power button (QMP system_powerdown): PWRBTN_STS, and SCI if the guest enabled it.
    void press_power_button();
    bool sci_level() const;
    // Power-on register values (system_reset): events and enables cleared, SCI low.
    void reset();

private:
    uint8_t read_byte(uint64_t offset, uint32_t timer) const;
    void write_byte(uint64_t offset, uint8_t value);
    void update_sci(); // called with m_mutex held; reports changes through the callback
    uint32_t timer_value() const;

    Callbacks m_callbacks;
    std::chrono::steady_clock::time_point m_timer_start;
    mutable std::mutex m_mutex; // guards the registers and m_sci
    uint16_t m_pm1_status { 0 };
    uint16_t m_pm1_enable { 0 };
    uint16_t m_pm1_control { PM1_CNT_SCI_EN };
    uint8_t m_gpe_status[8] {};
    uint8_t m_gpe_enable[8] {};
    bool m_sci { false };
};

} // namespace vmm
