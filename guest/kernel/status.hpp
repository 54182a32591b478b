// The guest side of cpuplug's status port (guest/include/guest/abi/status_port.hpp).
#pragma once

#include <guest/abi/status_port.hpp>

#include <cstdint>

namespace kernel {

// Looks for the port through CPUID; under QEMU there is none and reports become no-ops.
void status_init();
bool status_present();
void status_report(uint32_t event);

} // namespace kernel
