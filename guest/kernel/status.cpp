// Status port driver: one CPUID at boot, then one `outl` per event.
#include "status.hpp"

#include "sys.hpp"

namespace kernel {

namespace {
// Written once by the boot CPU before any other CPU runs, read-only afterwards.
uint16_t g_status_port = 0;
uint32_t volatile* g_status_mmio = nullptr;
} // namespace

void status_init()
{
    auto r = sys::cpuid(status_port::CPUID_LEAF);
    if (r.ebx == status_port::SIGNATURE_EBX && r.ecx == status_port::SIGNATURE_ECX
        && r.edx == status_port::SIGNATURE_EDX && r.eax != 0 && r.eax <= 0xFFFF) {
        g_status_port = static_cast<uint16_t>(r.eax);
        auto mmio = sys::cpuid(status_port::CPUID_MMIO_LEAF);
        uint64_t address = (uint64_t(mmio.ebx) << 32) | mmio.eax;
        if (address != 0 && address < (uint64_t(4) << 30)) // mapped by entry.S's page tables
            g_status_mmio = reinterpret_cast<uint32_t volatile*>(address + status_port::REG_EVENT);
    }
}

bool status_present() { return g_status_port != 0; }

void status_report(uint32_t event)
{
    if (g_status_port == 0)
        return;
    auto port = static_cast<uint16_t>(g_status_port + status_port::REG_EVENT);
    if (g_status_mmio && sys::user_mode())
        *g_status_mmio = event; // one VM exit, no system call (at CPL0 the port is cheaper: no decode)
    else
        sys::outl(port, event);
}

} // namespace kernel
