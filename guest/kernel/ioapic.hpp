// The IOAPIC (MMIO, reachable from CPL3): routing one GSI to a vector on one CPU.
#pragma once

#include <cstdint>

namespace kernel::ioapic {

void init(uint32_t address, uint32_t gsi_base);
uint32_t pins();

struct Route {
    uint32_t gsi;
    uint8_t vector;
    bool level;
    bool active_low;
    uint32_t dest_apic_id;
};
// Programs the entry masked and returns its low word (so the SCI stub can re-mask it).
uint32_t route(Route const& route);
void unmask(uint32_t gsi);

} // namespace kernel::ioapic
