// IOAPIC access: select register at +0, data window at +0x10; redirection entry n at 0x10 + 2n.
#include "ioapic.hpp"

#include <guest/abi/platform.h>

namespace kernel::ioapic {

namespace {
uintptr_t g_base = platform::IOAPIC_BASE;
uint32_t g_gsi_base = 0;
uint32_t g_low[24] {};

void write(uint32_t reg, uint32_t value)
{
    *reinterpret_cast<uint32_t volatile*>(g_base) = reg;
    *reinterpret_cast<uint32_t volatile*>(g_base + 0x10) = value;
}

uint32_t read(uint32_t reg)
{
    *reinterpret_cast<uint32_t volatile*>(g_base) = reg;
    return *reinterpret_cast<uint32_t volatile*>(g_base + 0x10);
}

constexpr uint32_t MASKED = 1u << 16;
} // namespace

void init(uint32_t address, uint32_t gsi_base)
{
    if (address != 0)
        g_base = address;
    g_gsi_base = gsi_base;
}

uint32_t pins() { return ((read(1) >> 16) & 0xFF) + 1; }

uint32_t route(Route const& r)
{
    uint32_t pin = r.gsi - g_gsi_base;
    uint32_t low = r.vector | (r.level ? 1u << 15 : 0) | (r.active_low ? 1u << 13 : 0) | MASKED;
    if (pin < 24)
        g_low[pin] = low;
    write(0x11 + 2 * pin, (r.dest_apic_id & 0xFF) << 24);
    write(0x10 + 2 * pin, low);
    return low;
}

void unmask(uint32_t gsi)
{
    uint32_t pin = gsi - g_gsi_base;
    if (pin < 24)
        write(0x10 + 2 * pin, g_low[pin] & ~MASKED);
}

} // namespace kernel::ioapic
