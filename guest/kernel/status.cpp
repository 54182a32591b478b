// Status port driver: one CPUID at boot, then one `outl` per event.
#include "status.hpp"

#include "percpu.hpp"
#include "sys.hpp"
#include "x86.hpp"

namespace kernel {

namespace {
// Written once by the boot CPU before any other CPU runs, read-only afterwards.
uint16_t g_status_port = 0;
} // namespace

void status_init()
{
    auto r = sys::cpuid(status_port::CPUID_LEAF);
    if (r.ebx == status_port::SIGNATURE_EBX && r.ecx == status_port::SIGNATURE_ECX
        && r.edx == status_port::SIGNATURE_EDX && r.eax != 0 && r.eax <= 0xFFFF)
        g_status_port = static_cast<uint16_t>(r.eax);
}

bool status_present() { return g_status_port != 0; }

void status_report(uint32_t event)
{
    if (g_status_port == 0)
        return;
    auto port = static_cast<uint16_t>(g_status_port + status_port::REG_EVENT);
    if (at_cpl3())
        sys::outl(port, event);
    else
        x86::outl(port, event);
}

} // namespace kernel
