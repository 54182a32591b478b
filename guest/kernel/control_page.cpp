// The control page's place in the kernel: its memory, its announcement and its handshake with the VMM
// through the status port; the commands themselves are guest/lib/control_page.
#include "control_page.hpp"

#include "memory.hpp"
#include "smp.hpp"
#include "status.hpp"

#include <guest/abi/control.hpp>
#include <guest/abi/status_port.hpp>
#include <guest/lib/control_page.hpp>

namespace kernel::control_page {

namespace {
void* g_page = nullptr;
uint32_t g_disabled = 0; // cpu_hotplug_disable requests the VMM has not undone
} // namespace

bool init()
{
    if (!status_present())
        return false;
    g_page = allocate(control::SIZE, 4096, Zeroed::Yes);
    // The event carries a 24-bit frame number; RAM here is identity-mapped below 4 GiB anyway.
    if (!g_page || reinterpret_cast<uint64_t>(g_page) >> 36 != 0) {
        g_page = nullptr;
        return false;
    }
    guest::control_page::init(g_page);
    status_report(status_port::control_page(reinterpret_cast<uint64_t>(g_page)));
    return true;
}

void serve()
{
    if (!g_page)
        return;
    // The possible CPUs can grow (a hot-added CPU the MADT did not list): counted afresh each time.
    guest::control_page::Context context { smp::hotplug(), smp::possible_count(), smp::apic_id_of, g_disabled };
    uint32_t answered = 0;
    bool ran = guest::control_page::serve(g_page, context, &answered);
    g_disabled = context.disabled;
    if (ran)
        status_report(status_port::control_done(answered));
}

} // namespace kernel::control_page
