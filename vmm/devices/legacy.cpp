// Legacy PC ports: register semantics in the comments, Linux's use of them in docs/platform.md.
#include "legacy.hpp"

#include <cstring>

namespace vmm {

namespace {

constexpr uint32_t PCI_ENABLE = 0x8000'0000u;
// CONFIG_ADDRESS: enable (31), bus (23-16), device (15-11), function (10-8), dword register (7-2). Bits 30-24
// are reserved and 1-0 always read 0.
constexpr uint32_t PCI_ADDRESS_MASK = 0x80FF'FFFCu;
constexpr uint64_t CONFIG_DATA = 4; // 0xCFC, from the block's base
constexpr uint64_t RESET_CONTROL = platform::RESET_PORT - platform::PCI_CONFIG_PORT;

constexpr uint8_t I8042_STATUS_OBF = 0x01; // a byte waits at the data port
constexpr uint8_t I8042_STATUS_SYS = 0x04; // the self test passed since power-on
constexpr uint8_t I8042_READ_COMMAND_BYTE = 0x20;
constexpr uint8_t I8042_WRITE_COMMAND_BYTE = 0x60;
constexpr uint8_t I8042_AUX_TEST = 0xA9;
constexpr uint8_t I8042_SELF_TEST = 0xAA;
constexpr uint8_t I8042_KBD_TEST = 0xAB;
constexpr uint8_t I8042_WRITE_OUTPUT_PORT = 0xD1;
constexpr uint8_t I8042_SELF_TEST_PASSED = 0x55;
constexpr uint8_t I8042_OUTPUT_PORT_RESET = 0x01; // the CPU reset line, active low

constexpr uint8_t RTC_SECONDS = 0x00, RTC_MINUTES = 0x02, RTC_HOURS = 0x04, RTC_WEEKDAY = 0x06,
                  RTC_DAY = 0x07, RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0A, RTC_REG_B = 0x0B,
                  RTC_REG_C = 0x0C, RTC_REG_D = 0x0D, RTC_CENTURY = 0x32;
constexpr uint8_t RTC_FIRST_RAM = 0x0E;
constexpr uint8_t RTC_REG_A_VALUE = 0x26; // 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) never set
constexpr uint8_t RTC_REG_B_VALUE = 0x02; // 24-hour mode, BCD, no interrupts enabled
constexpr uint8_t RTC_REG_D_VALUE = 0x80; // VRT: the battery is good and the time valid
constexpr uint8_t CMOS_NMI_MASK = 0x80;   // index bit 7 masks NMIs on a PC; the index is the low 7 bits

uint8_t bcd(int value) { return static_cast<uint8_t>(((value / 10) % 10) << 4 | (value % 10)); }

} // namespace

void AbsentPorts::read(uint64_t, std::span<uint8_t> data) { std::memset(data.data(), 0xFF, data.size()); }

// --- PCI configuration mechanism 1, and the reset control register inside its address dword ---------------

uint8_t PciConfigPorts::config_byte(uint32_t address, unsigned byte) const
{
    uint32_t bus = (address >> 16) & 0xFF;
    uint32_t devfn = (address >> 8) & 0xFF;
    uint32_t reg = (address & 0xFC) + byte;
    if (bus != 0 || devfn != 0)
        return 0xFF; // no device: a master abort reads all ones
    switch (reg) {
    case 0x00: return static_cast<uint8_t>(HOST_VENDOR);
    case 0x01: return static_cast<uint8_t>(HOST_VENDOR >> 8);
    case 0x02: return static_cast<uint8_t>(HOST_DEVICE);
    case 0x03: return static_cast<uint8_t>(HOST_DEVICE >> 8);
    case 0x09: return static_cast<uint8_t>(HOST_CLASS);       // programming interface
    case 0x0A: return static_cast<uint8_t>(HOST_CLASS >> 8);  // subclass
    case 0x0B: return static_cast<uint8_t>(HOST_CLASS >> 16); // class
    default: return 0; // revision 0, header type 0, no BARs, no capabilities, no interrupt
    }
}

void PciConfigPorts::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    if (offset == 0 && data.size() == 4) {
        std::memcpy(data.data(), &m_address, 4); // little-endian host, as the guest
    } else if (offset == RESET_CONTROL && data.size() == 1) {
        data[0] = m_reset_control;
    } else if (offset >= CONFIG_DATA && (m_address & PCI_ENABLE)) {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = config_byte(m_address, static_cast<unsigned>(offset - CONFIG_DATA + i));
    } else {
        // Byte and word accesses to 0xCF8-0xCFB other than 0xCF9 go to the ISA bus, where nothing answers:
        // Linux's check for configuration mechanism 2 reads them and must not find zeros.
        std::memset(data.data(), 0xFF, data.size());
    }
}

void PciConfigPorts::write(uint64_t offset, std::span<uint8_t const> data)
{
    bool reset = false;
    {
        std::lock_guard lock(m_mutex);
        if (offset == 0 && data.size() == 4) {
            uint32_t value = 0;
            std::memcpy(&value, data.data(), 4);
            m_address = value & PCI_ADDRESS_MASK;
        } else if (offset == RESET_CONTROL && data.size() == 1) {
            // Bit 2 starts the reset; bits 1 (hard) and 3 (full) choose its kind, which is the same here.
            // Bit 2 itself does not stick: Linux reads the register back before writing 0x02 then 0x06.
            reset = (data[0] & platform::RESET_BIT) != 0;
            m_reset_control = static_cast<uint8_t>(data[0] & ~platform::RESET_BIT);
        }
        // Configuration data writes: the host bridge has nothing writable.
    }
    if (reset && m_reset)
        m_reset();
}

void PciConfigPorts::power_on_reset()
{
    std::lock_guard lock(m_mutex);
    m_address = 0;
    m_reset_control = 0;
}

// --- i8042 ------------------------------------------------------------------------------------------------

void I8042::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    uint8_t value = 0;
    if (offset == DATA) {
        value = m_output.value_or(0);
        m_output.reset();
    } else if (offset == COMMAND) {
        // Never "input buffer full" (bit 1): Linux's reboot path waits for it to clear before each 0xFE.
        value = static_cast<uint8_t>(I8042_STATUS_SYS | (m_output ? I8042_STATUS_OBF : 0));
    }
    std::memset(data.data(), 0, data.size());
    data[0] = value;
}

void I8042::write(uint64_t offset, std::span<uint8_t const> data)
{
    uint8_t value = data[0];
    bool reset = false;
    {
        std::lock_guard lock(m_mutex);
        if (offset == COMMAND) {
            m_pending_command.reset();
            if (value == I8042_READ_COMMAND_BYTE)
                m_output = m_command_byte;
            else if (value == I8042_WRITE_COMMAND_BYTE || value == I8042_WRITE_OUTPUT_PORT)
                m_pending_command = value;
            else if (value == I8042_SELF_TEST)
                m_output = I8042_SELF_TEST_PASSED;
            else if (value == I8042_KBD_TEST || value == I8042_AUX_TEST)
                m_output = 0x00; // the port's lines test good; nothing is plugged into them
            else if ((value & 0xF0) == 0xF0 && !(value & I8042_OUTPUT_PORT_RESET))
                reset = true; // 0xF0-0xFF pulse the output port's bits that are 0 in the low nibble; bit 0 is reset
        } else if (offset == DATA) {
            if (m_pending_command == I8042_WRITE_COMMAND_BYTE)
                m_command_byte = value;
            else if (m_pending_command == I8042_WRITE_OUTPUT_PORT)
                reset = !(value & I8042_OUTPUT_PORT_RESET);
            // Otherwise a byte for the keyboard, and there is none: it goes unanswered.
            m_pending_command.reset();
        }
    }
    if (reset && m_reset)
        m_reset();
}

void I8042::power_on_reset()
{
    std::lock_guard lock(m_mutex);
    m_output.reset();
    m_pending_command.reset();
    m_command_byte = 0;
}

// --- CMOS RTC ---------------------------------------------------------------------------------------------

uint8_t Cmos::register_value(uint8_t index) const
{
    auto now = m_clock();
    std::tm utc {};
    gmtime_r(&now, &utc);
    switch (index) {
    case RTC_SECONDS: return bcd(utc.tm_sec);
    case RTC_MINUTES: return bcd(utc.tm_min);
    case RTC_HOURS: return bcd(utc.tm_hour);
    case RTC_WEEKDAY: return bcd(utc.tm_wday + 1);
    case RTC_DAY: return bcd(utc.tm_mday);
    case RTC_MONTH: return bcd(utc.tm_mon + 1);
    case RTC_YEAR: return bcd(utc.tm_year % 100);
    case RTC_CENTURY: return bcd((utc.tm_year + 1900) / 100);
    case RTC_REG_A: return RTC_REG_A_VALUE;
    case RTC_REG_B: return RTC_REG_B_VALUE;
    case RTC_REG_C: return 0; // no interrupt flags: nothing is enabled
    case RTC_REG_D: return RTC_REG_D_VALUE;
    default: return index < RTC_FIRST_RAM ? 0 : m_ram[index]; // alarms 0; then battery-backed RAM
    }
}

void Cmos::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    std::memset(data.data(), 0, data.size());
    data[0] = offset == 0 ? m_index : register_value(m_index);
}

void Cmos::write(uint64_t offset, std::span<uint8_t const> data)
{
    std::lock_guard lock(m_mutex);
    if (offset == 0)
        m_index = static_cast<uint8_t>(data[0] & ~CMOS_NMI_MASK);
    else if (m_index >= RTC_FIRST_RAM && m_index != RTC_CENTURY)
        m_ram[m_index] = data[0]; // the clock itself is the host's and is not set from the guest
}

void Cmos::power_on_reset()
{
    std::lock_guard lock(m_mutex);
    m_index = 0;
}

} // namespace vmm
