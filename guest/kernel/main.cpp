// kernel_main: the boot CPU's first C++ code. Reads the PVH start info, prints the banner, and either powers
// off (exit_after_boot) or idles. Every line here runs at CPL0, where each instruction costs ~0.6 us on
// nested PVM, so it stays short.
#include "console.hpp"
#include "power.hpp"
#include "status.hpp"
#include "trap.hpp"
#include "x86.hpp"

#include <guest/lib/cmdline.hpp>
#include <guest/lib/start_info.hpp>

namespace kernel {

namespace {

constexpr char const* VERSION = "0.1.0";
constexpr uint8_t EXIT_BAD_START_INFO = 5;
constexpr uint64_t IDENTITY_MAPPED = uint64_t(4) << 30; // entry.S maps the first 4 GiB

uint64_t identity_readable(void*, uint64_t address)
{
    return address < IDENTITY_MAPPED ? IDENTITY_MAPPED - address : 0;
}
void const* identity_pointer(void*, uint64_t address) { return reinterpret_cast<void const*>(address); }

uint32_t boot_apic_id()
{
    // Leaf 0xB gives the full 32-bit x2APIC id; leaf 1 only its low 8 bits.
    if (x86::cpuid(0).eax >= 0xB)
        return x86::cpuid(0xB).edx;
    return x86::cpuid(1).ebx >> 24;
}

// `fault=ud|pf|gp|de|panic` makes the kernel fail on purpose, so tests can see how failures are reported.
void inject_fault(guest::StringView kind)
{
    if (kind == "ud") {
        asm volatile("ud2");
    } else if (kind == "pf") {
        // Just past the 4 GiB identity map: not present.
        (void)*reinterpret_cast<uint8_t volatile*>(IDENTITY_MAPPED + 0x1000);
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

} // namespace

} // namespace kernel

extern "C" [[noreturn]] void kernel_main(uint32_t start_info_address)
{
    using namespace kernel;
    status_init();
    status_report(status_port::milestone(status_port::Milestone::KernelEntry));

    guest::PhysicalView view { identity_readable, identity_pointer, nullptr };
    auto boot = guest::parse_start_info(start_info_address, view);
    if (!boot.has_value()) {
        guest::LineBuffer line;
        line.text("guest: cannot boot: ").text(guest::to_string(boot.error()));
        console_write_line(line);
        power_off_failure(EXIT_BAD_START_INFO);
    }
    guest::Cmdline cmdline(boot->cmdline);

    guest::LineBuffer line;
    line.text("cpuplug guest ").text(VERSION).text(": boot cpu apic id ").dec(boot_apic_id()).text(", ")
        .dec(boot->ram_bytes >> 20).text(" MiB RAM, status port ");
    if (status_present())
        line.text("on");
    else
        line.text("absent");
    line.text(", cmdline \"").text(cmdline.text()).ch('"');
    console_write_line(line);

    guest::StringView fault;
    if (cmdline.find("fault", fault))
        inject_fault(fault);

    status_report(status_port::milestone(status_port::Milestone::BootDone));
    if (cmdline.get_bool("exit_after_boot", false))
        power_off();

    for (;;)
        x86::safe_halt();
}
