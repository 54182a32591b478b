// Powering the machine off: ACPI soft-off (S5), with a failure status when the VMM can receive one.
#pragma once

#include <cstdint>

namespace kernel {

// The PM1a control port; QEMU q35's 0x604 until the FADT tells otherwise.
void power_set_pm1a_control(uint16_t port);
[[noreturn]] void power_off();
// Reports `status` through the status port (the VMM exits with it), then powers off.
[[noreturn]] void power_off_failure(uint8_t status);

} // namespace kernel
