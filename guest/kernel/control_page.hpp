// The control page (guest/abi/control.hpp): the VMM's requests to the hotplug core, on GPE0 bit 7. Runs
// on the boot CPU's main loop.
#pragma once

namespace kernel::control_page {

// With the status port present: allocates and zeroes the page, fills in its header and announces its
// address to the VMM. True when announced (then GPE0 bit control::GPE_BIT is to be enabled).
bool init();

// GPE0 bit 7 was set (and has been cleared): answers the pending request, if any.
void serve();

} // namespace kernel::control_page
