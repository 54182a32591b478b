// ACPI S5: SLP_TYP from \_S5 (0 on QEMU q35 and on cpuplug) with SLP_EN (bit 13) in PM1a_CNT.
#include "power.hpp"

#include "status.hpp"
#include "sys.hpp"

#include <guest/abi/platform.h>

namespace kernel {

namespace {
uint16_t g_pm1a_control = platform::PM_BASE + platform::PM1A_CNT_OFFSET;
constexpr uint16_t SLP_EN = 1 << 13;
constexpr uint16_t SLP_TYP_S5 = 0 << 10;
} // namespace

void power_set_pm1a_control(uint16_t port) { g_pm1a_control = port; }

void power_off()
{
    sys::outw(g_pm1a_control, SLP_TYP_S5 | SLP_EN);
    sys::park(); // a platform without ACPI soft-off: stop here rather than run on
}

void power_off_failure(uint8_t status)
{
    status_report(status_port::exit_with(status));
    power_off();
}

} // namespace kernel
