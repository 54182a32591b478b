// kernel_main: the boot CPU's kernel, entered at CPL3 from entry.S and at CPL0 from its first steps unless
// kernel.cpl=3. Reads the start info and ACPI, sets
// up the local APIC, the clock and the SCI, brings the other CPUs up through the hotplug core, then
// serves ACPI events (the power button, CPU hotplug, the VMM's control page) until the machine powers off.
#include "acpi_hotplug.hpp"
#include "apic.hpp"
#include "clock.hpp"
#include "console.hpp"
#include "control_page.hpp"
#include "ioapic.hpp"
#include "memory.hpp"
#include "percpu.hpp"
#include "power.hpp"
#include "smp.hpp"
#include "status.hpp"
#include "sys.hpp"
#include "trap.hpp"
#include "x86.hpp"

#include <guest/abi/platform.h>
#include <guest/abi/control.hpp>
#include <guest/abi/cpu_hotplug.hpp>
#include <guest/lib/acpi_tables.hpp>
#include <guest/lib/cmdline.hpp>
#include <guest/lib/start_info.hpp>

extern "C" uint32_t sci_ioregsel;
extern "C" uint32_t sci_rte_masked;
extern "C" uint32_t sci_count;

namespace kernel {

namespace {

constexpr char const* VERSION = "0.2.0";
constexpr uint8_t EXIT_BAD_START_INFO = 5;
constexpr uint64_t IDENTITY_MAPPED = uint64_t(4) << 30; // entry.S maps the first 4 GiB
constexpr uint16_t PM1_PWRBTN = 1 << 8;
// Both GPEs live in the first status byte (and the first enable byte) of GPE0.
static_assert(cpu_hotplug::GPE_BIT < 8 && control::GPE_BIT < 8);
constexpr uint8_t GPE_CPU_HOTPLUG = 1u << cpu_hotplug::GPE_BIT;
constexpr uint8_t GPE_CONTROL = 1u << control::GPE_BIT;

uint64_t identity_readable(void*, uint64_t address)
{
    return address < IDENTITY_MAPPED ? IDENTITY_MAPPED - address : 0;
}
void const* identity_pointer(void*, uint64_t address) { return reinterpret_cast<void const*>(address); }

constexpr guest::PhysicalView PHYSICAL { identity_readable, identity_pointer, nullptr };

// `fault=ud|pf|gp|de|panic` makes the kernel fail on purpose, so tests can see how failures are reported.
void inject_fault(guest::StringView kind)
{
    if (kind == "ud") {
        asm volatile("ud2");
    } else if (kind == "pf") {
        (void)*reinterpret_cast<uint8_t volatile*>(IDENTITY_MAPPED + 0x1000); // past the identity map
    } else if (kind == "gp") {
        (void)*reinterpret_cast<uint8_t volatile*>(0x8000000000000000ull); // non-canonical
    } else if (kind == "de") {
        // Inline asm: GCC turns `1u / x` into a compare, which would not fault.
        uint32_t dividend = 1, divisor = 0;
        asm volatile("xor %%edx, %%edx; divl %1" : "+a"(dividend) : "r"(divisor) : "rdx");
    } else if (kind == "panic") {
        cpuplug::panic("requested by fault=panic", __FILE__, __LINE__);
    }
}

struct AcpiState {
    bool present { false };
    guest::acpi::Fadt fadt;
    guest::acpi::Madt madt;
    guest::acpi::MadtCpu* cpus { nullptr };
};

AcpiState read_acpi(guest::BootInfo const& boot)
{
    AcpiState acpi;
    uint64_t rsdp = guest::acpi::find_rsdp(PHYSICAL, boot.rsdp_address);
    auto tables = guest::acpi::read_tables(PHYSICAL, rsdp);
    if (!tables.has_value()) {
        console_write_line(guest::LineBuffer().text("acpi: ").text(guest::acpi::to_string(tables.error()))
                               .text("; booting one CPU"));
        return acpi;
    }
    acpi.cpus = static_cast<guest::acpi::MadtCpu*>(allocate(sizeof(guest::acpi::MadtCpu) * GUEST_MAX_CPUS, 8, Zeroed::No));
    auto madt = guest::acpi::read_madt(PHYSICAL, tables->madt, acpi.cpus, GUEST_MAX_CPUS);
    if (!madt.has_value()) {
        console_write_line(guest::LineBuffer().text("acpi: MADT: ").text(guest::acpi::to_string(madt.error()))
                               .text("; booting one CPU"));
        return acpi;
    }
    acpi.present = true;
    acpi.fadt = tables->fadt;
    acpi.madt = madt.release_value();
    return acpi;
}

// The SCI: routed through the IOAPIC to the boot CPU, level-triggered as the MADT's override says.
// The stub in entry.S masks it on arrival; serve_sci() clears the event and unmasks it.
uint32_t g_sci_gsi = platform::SCI_GSI;

void route_sci(AcpiState const& acpi, uint32_t boot_apic_id)
{
    uint32_t gsi = acpi.fadt.sci_irq;
    uint16_t flags = guest::acpi::override_flags(acpi.madt, static_cast<uint8_t>(acpi.fadt.sci_irq), &gsi);
    // ACPI: the SCI is level-triggered and active low unless an override says otherwise.
    bool level = (flags & 0xC) != 0x4;
    bool active_low = (flags & 0x3) == 0x3 || (flags & 0x3) == 0;
    g_sci_gsi = gsi;
    uint32_t low = ioapic::route({ gsi, VECTOR_SCI, level, active_low, boot_apic_id });
    sci_ioregsel = 0x10 + 2 * (gsi - acpi.madt.ioapic_gsi_base);
    sci_rte_masked = low;
    // The power button (fixed feature) raises the SCI when enabled: QMP's system_powerdown.
    if (acpi.fadt.pm1a_event != 0)
        sys::outw(static_cast<uint16_t>(acpi.fadt.pm1a_event + acpi.fadt.pm1_event_length / 2), PM1_PWRBTN);
    ioapic::unmask(gsi);
}

// GPE0's first status byte and the bits of it enabled (0: none, then GPE0 is never read).
uint16_t g_gpe0 = 0;
uint8_t g_gpe_enabled = 0;

bool has_gpe0(guest::acpi::Fadt const& fadt) { return fadt.gpe0 != 0 && fadt.gpe0_length >= 2 && !fadt.hw_reduced(); }

// QEMU's register block, when the DSDT has it, is taken before bring-up: the first write of its selector
// switches QEMU's q35 from the legacy CPU-hotplug interface to this one, and a CPU plugged before that
// switch never shows an insert event. Its events wait, pending, until enable_gpes().
void init_cpu_hotplug(AcpiState const& acpi)
{
    if (!has_gpe0(acpi.fadt))
        return;
    auto region = guest::acpi::find_cpu_hotplug_region(PHYSICAL, acpi.fadt.dsdt);
    if (region.port != 0 && region.length >= cpu_hotplug::SIZE)
        acpi_hotplug::init(region.port, acpi.cpus, acpi.madt.cpu_count);
}

// CPU hotplug when the DSDT has QEMU's register block, the control page when the VMM has the status port;
// each behind its GPE0 bit. Any events already pending raise the SCI as soon as their bit is enabled.
void enable_gpes(AcpiState const& acpi)
{
    auto const& fadt = acpi.fadt;
    if (!has_gpe0(fadt))
        return;
    uint8_t bits = 0;
    if (acpi_hotplug::present())
        bits |= GPE_CPU_HOTPLUG;
    if (control_page::init())
        bits |= GPE_CONTROL;
    if (bits == 0)
        return;
    g_gpe0 = fadt.gpe0;
    g_gpe_enabled = bits;
    sys::outb(static_cast<uint16_t>(fadt.gpe0 + fadt.gpe0_length / 2), bits); // enables follow the status bytes
}

void serve_sci(AcpiState const& acpi)
{
    // GPE status is cleared before its events are handled: one that arrives meanwhile sets its bit again
    // and raises the SCI anew once the pin is unmasked. The SCI is level-triggered, so a power button
    // pressed together with a GPE keeps it raised and is seen on the next pass: PM1 is read only when no
    // GPE was pending, one system call fewer per hotplug event.
    uint8_t gpe = g_gpe_enabled ? static_cast<uint8_t>(sys::inb(g_gpe0) & g_gpe_enabled) : 0;
    if (gpe != 0)
        sys::outb(g_gpe0, gpe); // write 1 to clear
    uint16_t status = acpi.fadt.pm1a_event && gpe == 0 ? sys::inw(acpi.fadt.pm1a_event) : 0;
    if (status & PM1_PWRBTN) {
        sys::outw(acpi.fadt.pm1a_event, PM1_PWRBTN); // write 1 to clear
        console_write_line(guest::LineBuffer().text("acpi: power button pressed, powering off"));
        power_off();
    }
    if (gpe & GPE_CPU_HOTPLUG)
        acpi_hotplug::serve();
    if (gpe & GPE_CONTROL)
        control_page::serve();
    ioapic::unmask(g_sci_gsi);
}

} // namespace

} // namespace kernel

extern "C" [[noreturn]] void kernel_main(uint32_t start_info_address)
{
    using namespace kernel;
    status_init();
    status_report(status_port::milestone(status_port::Milestone::KernelEntry));

    auto boot = guest::parse_start_info(start_info_address, PHYSICAL);
    if (!boot.has_value()) {
        console_write_line(guest::LineBuffer().text("guest: cannot boot: ").text(guest::to_string(boot.error())));
        power_off_failure(EXIT_BAD_START_INFO);
    }
    guest::Cmdline cmdline(boot->cmdline);
    // The privilege level the kernel runs at (kernel/sys.hpp): 0 unless told 3, which vmm does on nested
    // PVM. The earlier steps are few and run at CPL3 either way.
    if (cmdline.get_u64("kernel.cpl", 0) != 3)
        sys::enter_cpl0();
    memory_init(*boot);

    auto acpi = read_acpi(*boot);
    if (acpi.present)
        power_set_pm1a_control(acpi.fadt.pm1a_control);
    apic::init_boot_cpu(!cmdline.has("nox2apic"));
    uint32_t boot_apic_id = apic::read_id();
    clock_init(acpi.present ? acpi.fadt.pm_timer : 0, cmdline.get_bool("clock.calibrate", false));
    if (acpi.present) {
        ioapic::init(acpi.madt.ioapic_address, acpi.madt.ioapic_gsi_base);
        route_sci(acpi, boot_apic_id);
    }

    guest::acpi::MadtCpu self { 0, boot_apic_id, true, false };
    auto const* cpus = acpi.present ? acpi.cpus : &self;
    size_t count = acpi.present ? acpi.madt.cpu_count : 1;
    uint32_t present = 0;
    for (size_t i = 0; i < count; ++i)
        present += cpus[i].enabled ? 1 : 0;

    guest::LineBuffer line;
    line.text("cpuplug guest ").text(VERSION).text(": boot cpu apic id ").dec(boot_apic_id)
        .text(apic::x2apic() ? " (x2APIC), " : " (xAPIC), ").text(sys::user_mode() ? "kernel at CPL3, " : "kernel at CPL0, ")
        .dec(boot->ram_bytes >> 20).text(" MiB RAM, ")
        .dec(count).text(" possible CPUs (").dec(present).text(" present), TSC ").dec(tsc_hz() / 1'000'000)
        .text(tsc_hz_from_cpuid() ? " MHz (cpuid)" : " MHz (calibrated)").text(", status port ")
        .text(status_present() ? "on" : "absent").text(", cmdline \"").text(cmdline.text()).ch('"');
    console_write_line(line);

    guest::StringView fault;
    if (cmdline.find("fault", fault))
        inject_fault(fault);

    if (acpi.present)
        init_cpu_hotplug(acpi);
    auto config = smp::config_from(cmdline);
    if (!smp::init(cpus, count, boot_apic_id, config, *boot))
        power_off_failure(EXIT_GUEST_PANIC);
    smp::apply_fail_injection(cmdline);
    auto result = smp::bring_up();
    line.clear();
    line.text("smp: ").dec(result.online).text(" of ").dec(result.present).text(" CPUs online (")
        .text(config.parallel ? "parallel" : "serial").text(", cpu_init_udelay=").dec(config.init_udelay_us)
        .text(") in ").dec(result.elapsed_ns / 1'000'000).ch('.');
    uint64_t micros = (result.elapsed_ns / 1000) % 1000;
    line.ch(static_cast<char>('0' + micros / 100)).ch(static_cast<char>('0' + micros / 10 % 10))
        .ch(static_cast<char>('0' + micros % 10)).text(" ms");
    console_write_line(line);

    // Before BootDone, so the VMM knows by then whether there is a control page.
    if (acpi.present)
        enable_gpes(acpi);
    status_report(status_port::milestone(status_port::Milestone::BootDone));
    if (cmdline.get_bool("exit_after_boot", false))
        power_off();

    // Hotplug operations and control requests run here, one after the other; an SCI during one is served
    // after it. From 0: an SCI during boot left its pin masked and must be served too.
    auto& me = this_percpu();
    uint32_t sci_seen = 0;
    for (;;) {
        uint32_t wake = me.wake.load(std::memory_order_acquire);
        uint32_t sci = __atomic_load_n(&sci_count, __ATOMIC_ACQUIRE);
        if (sci != sci_seen) {
            sci_seen = sci;
            if (acpi.present)
                serve_sci(acpi);
            continue;
        }
        wait_once(me, wake, 0); // with a wake-up IPI the last operation may have left deferred
    }
}
