// AcpiPm: byte-wise register semantics (W1C status, plain enables), so 1-, 2- and 4-byte accesses at any
// offset behave as on ICH9.
#include "acpi_pm.hpp"

#include <algorithm>
#include <iterator>
#include <optional>

namespace vmm {

namespace {
// PM1 status bits that can raise an SCI when enabled (TMR, GBL, PWRBTN, SLPBTN, RTC).
constexpr uint16_t PM1_SCI_SOURCES = (1 << 0) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 10);
constexpr uint16_t SLP_TYP_SHIFT = 10;
constexpr uint16_t SLP_TYP_MASK = 0x7;
} // namespace

AcpiPm::AcpiPm(Callbacks callbacks)
    : m_callbacks(std::move(callbacks))
    , m_timer_start(std::chrono::steady_clock::now())
{
}

uint32_t AcpiPm::timer_value() const
{
    auto elapsed = std::chrono::steady_clock::now() - m_timer_start;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
    // 128-bit intermediate: ns * 3.58e6 overflows 64 bits after ~85 minutes.
    auto ticks = static_cast<unsigned __int128>(ns) * PM_TIMER_HZ / 1'000'000'000u;
    return static_cast<uint32_t>(ticks) & 0x00FFFFFF; // 24-bit timer: the FADT leaves TMR_VAL_EXT clear
}

uint8_t AcpiPm::read_byte(uint64_t offset, uint32_t timer) const
{
    if (offset < 2)
        return static_cast<uint8_t>(m_pm1_status >> (8 * offset));
    if (offset < 4)
        return static_cast<uint8_t>(m_pm1_enable >> (8 * (offset - 2)));
    if (offset < 6) // SLP_EN is write-only and reads 0
        return static_cast<uint8_t>((m_pm1_control & ~PM1_CNT_SLP_EN) >> (8 * (offset - 4)));
    if (offset >= PM_TMR && offset < PM_TMR + 4)
        return static_cast<uint8_t>(timer >> (8 * (offset - PM_TMR)));
    if (offset >= GPE0 && offset < GPE0 + 8)
        return m_gpe_status[offset - GPE0];
    if (offset >= GPE0 + 8 && offset < GPE0 + GPE0_LENGTH)
        return m_gpe_enable[offset - GPE0 - 8];
    return 0;
}

void AcpiPm::write_byte(uint64_t offset, uint8_t value)
{
    if (offset < 2) {
        m_pm1_status &= static_cast<uint16_t>(~(uint16_t(value) << (8 * offset))); // write 1 to clear
    } else if (offset < 4) {
        unsigned shift = 8 * static_cast<unsigned>(offset - 2);
        m_pm1_enable = static_cast<uint16_t>((m_pm1_enable & ~(0xFF << shift)) | (value << shift));
    } else if (offset < 6) {
        unsigned shift = 8 * static_cast<unsigned>(offset - 4);
        m_pm1_control = static_cast<uint16_t>((m_pm1_control & ~(0xFF << shift)) | (value << shift));
        m_pm1_control |= PM1_CNT_SCI_EN; // no SMM: the platform is always in ACPI mode
    } else if (offset >= GPE0 && offset < GPE0 + 8) {
        m_gpe_status[offset - GPE0] &= static_cast<uint8_t>(~value);
    } else if (offset >= GPE0 + 8 && offset < GPE0 + GPE0_LENGTH) {
        m_gpe_enable[offset - GPE0 - 8] = value;
    }
}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data)
{
    std::lock_guard lock(m_mutex);
    // One sample per access: bytes of a 4-byte read taken at different instants tear across a carry.
    uint32_t timer = timer_value();
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = read_byte(offset + i, timer);
}

void AcpiPm::write(uint64_t offset, std::span<uint8_t const> data)
{
    std::optional<uint8_t> sleep_type;
    {
        std::lock_guard lock(m_mutex);
        for (size_t i = 0; i < data.size(); ++i)
            write_byte(offset + i, data[i]);
        if (m_pm1_control & PM1_CNT_SLP_EN) {
            m_pm1_control &= static_cast<uint16_t>(~PM1_CNT_SLP_EN);
            sleep_type = static_cast<uint8_t>((m_pm1_control >> SLP_TYP_SHIFT) & SLP_TYP_MASK);
        }
        update_sci();
    }
    // Outside the lock: the callback stops the machine, which may touch this device again.
    if (sleep_type && m_callbacks.sleep)
        m_callbacks.sleep(*sleep_type);
}

void AcpiPm::raise_gpe(unsigned bit)
{
    std::lock_guard lock(m_mutex);
    m_gpe_status[(bit / 8) % 8] |= static_cast<uint8_t>(1u << (bit % 8));
    update_sci();
}

void AcpiPm::press_power_button()
{
    std::lock_guard lock(m_mutex);
    m_pm1_status |= PM1_PWRBTN;
    update_sci();
}

void AcpiPm::reset()
{
    std::lock_guard lock(m_mutex);
    m_pm1_status = 0;
    m_pm1_enable = 0;
    m_pm1_control = PM1_CNT_SCI_EN;
    std::fill(std::begin(m_gpe_status), std::end(m_gpe_status), 0);
    std::fill(std::begin(m_gpe_enable), std::end(m_gpe_enable), 0);
    update_sci();
}

bool AcpiPm::sci_level() const
{
    std::lock_guard lock(m_mutex);
    return m_sci;
}

void AcpiPm::update_sci()
{
    bool level = (m_pm1_status & m_pm1_enable & PM1_SCI_SOURCES) != 0;
    for (int i = 0; i < 8; ++i)
        level = level || (m_gpe_status[i] & m_gpe_enable[i]) != 0;
    if (level != m_sci) {
        m_sci = level;
        // KVM_IRQ_LINE does not call back into this device, so this is safe under the lock and keeps
        // level changes in order.
        if (m_callbacks.sci)
            m_callbacks.sci(level);
    }
}

} // namespace vmm
