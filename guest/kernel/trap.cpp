// Exception reporting: vector, name, error code, RIP (and CR2 for page faults), then power off with a
// failure status so the VMM exits non-zero. Interrupt vectors are handled by their own code (SMP issue).
#include "trap.hpp"

#include "console.hpp"
#include "power.hpp"
#include "x86.hpp"

namespace kernel {

namespace {

char const* exception_name(uint64_t vector)
{
    static char const* const names[32] = {
        "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range",
        "#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor overrun",
        "#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
        "#PF page fault", "reserved", "#MF x87 error", "#AC alignment check", "#MC machine check",
        "#XM SIMD error", "#VE virtualization", "#CP control protection", "reserved", "reserved",
        "reserved", "reserved", "reserved", "reserved", "#HV hypervisor injection", "#VC VMM communication",
        "#SX security", "reserved",
    };
    return vector < 32 ? names[vector] : "interrupt";
}

} // namespace

} // namespace kernel

extern "C" void trap_dispatch(kernel::TrapFrame* frame)
{
    using namespace kernel;
    if (frame->vector >= 32)
        return; // a stray interrupt: nothing is routed yet, ignore it

    guest::LineBuffer line;
    line.text("guest: exception ").dec(frame->vector).text(" (").text(exception_name(frame->vector))
        .text(") error ").hex(frame->error_code).text(" at rip ").hex(frame->rip, 16);
    if (frame->vector == 14)
        line.text(" cr2 ").hex(x86::read_cr2(), 16);
    line.text(" rsp ").hex(frame->rsp, 16);
    console_write_line(line);
    power_off_failure(EXIT_GUEST_EXCEPTION);
}
