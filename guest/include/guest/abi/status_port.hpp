// The guest status port: cpuplug's paravirtual device through which the guest reports boot milestones,
// CPU state changes and its exit status with one 32-bit write each. Shared by the VMM (device model) and
// the guest (driver). Absent on QEMU: the guest then reports on the console only. See docs/status-port.md.
#pragma once

#include <cstdint>

namespace status_port {

// Discovery: CPUID leaf 0x40000100 returns EBX:ECX:EDX = "cpuplugstat\0" and EAX = the I/O port base
// (EAX = 0x40000101 would not fit a port: the leaf's EAX is the port, not a maximum leaf).
// KVM's own hypervisor leaves stay at 0x40000000 so Linux still detects KVM.
inline constexpr uint32_t CPUID_LEAF = 0x40000100;
inline constexpr uint32_t SIGNATURE_EBX = 0x70757063; // "cpup"
inline constexpr uint32_t SIGNATURE_ECX = 0x7367756c; // "lugs"
inline constexpr uint32_t SIGNATURE_EDX = 0x00746174; // "tat\0"

inline constexpr uint16_t DEFAULT_PORT = 0x0520;
inline constexpr uint16_t PORT_SIZE = 16;

// The same registers in MMIO, found through CPUID leaf 0x40000101 (EAX:EBX = the address, 0 if none):
// a guest running its kernel at CPL3 can store there without entering CPL0, which port I/O needs.
inline constexpr uint32_t CPUID_MMIO_LEAF = 0x40000101;
inline constexpr uint64_t DEFAULT_MMIO = 0xFEB00000;

// Register offsets from the base.
inline constexpr uint16_t REG_EVENT = 0x0; // write, 32 bits: one event word

// Event word: [31:28] kind, the rest depends on the kind.
enum class Kind : uint32_t {
    Milestone = 0x1, // [15:0] Milestone
    Cpu = 0x2,       // [27:16] CPU index, [15:8] CpuEvent, [7:0] step: [5:0] state, [6] going down, [7] rollback
    Control = 0x3,   // [27:24] ControlEvent, [23:0] its value (guest/abi/control.hpp)
    Exit = 0xF,      // [7:0] exit status the VMM should exit with (0 = success)
};

enum class Milestone : uint16_t {
    KernelEntry = 1, // first kernel code on the boot CPU
    BootDone = 2,    // every present CPU has been brought up (or tried), the boot is finished
    SmpStart = 3,    // the bring-up of the application processors begins
};

enum class CpuEvent : uint8_t {
    Kicked = 1,     // cpu:kick_ap begins: INIT goes out next
    Alive = 2,      // the AP reached its sync point
    Online = 3,     // the CPU reached the online state
    Offline = 4,    // the CPU reached the offline state
    StepFailed = 5, // a step failed (the step field names it); a rollback follows
    Step = 6,       // a step completed (only with cpuhp.trace=1)
    Stopped = 7,    // an operation ended elsewhere than online/offline (the step field: the state)
};

// The control page's handshake (guest/abi/control.hpp).
enum class ControlEvent : uint8_t {
    Page = 1, // [23:0] the control page's guest-physical frame number (address >> 12, below 64 GiB)
    Done = 2, // [23:0] the low 24 bits of the request_seq just answered
};

constexpr uint32_t MAX_CPU_INDEX = 0xFFF;
constexpr uint8_t STEP_DOWN = 1u << 6;
constexpr uint8_t STEP_ROLLBACK = 1u << 7;

constexpr uint32_t make_event(Kind kind, uint32_t payload)
{
    return (static_cast<uint32_t>(kind) << 28) | (payload & 0x0FFFFFFF);
}
constexpr Kind event_kind(uint32_t event) { return static_cast<Kind>(event >> 28); }
constexpr uint32_t event_payload(uint32_t event) { return event & 0x0FFFFFFF; }

constexpr uint32_t milestone(Milestone m) { return make_event(Kind::Milestone, static_cast<uint32_t>(m)); }
constexpr uint32_t cpu_event(CpuEvent event, uint32_t cpu, uint8_t step)
{
    return make_event(Kind::Cpu, ((cpu & MAX_CPU_INDEX) << 16) | (uint32_t(event) << 8) | step);
}
constexpr uint32_t event_cpu(uint32_t event) { return (event >> 16) & MAX_CPU_INDEX; }
constexpr CpuEvent event_cpu_event(uint32_t event) { return static_cast<CpuEvent>((event >> 8) & 0xFF); }
constexpr uint8_t event_step(uint32_t event) { return static_cast<uint8_t>(event & 0xFF); }
constexpr uint32_t control_event(ControlEvent event, uint32_t value)
{
    return make_event(Kind::Control, (uint32_t(event) << 24) | (value & 0xFFFFFF));
}
constexpr uint32_t control_page(uint64_t address) { return control_event(ControlEvent::Page, static_cast<uint32_t>(address >> 12)); }
constexpr uint32_t control_done(uint32_t request_seq) { return control_event(ControlEvent::Done, request_seq); }
constexpr ControlEvent event_control(uint32_t event) { return static_cast<ControlEvent>((event >> 24) & 0xF); }
constexpr uint32_t event_control_value(uint32_t event) { return event & 0xFFFFFF; }
constexpr uint32_t exit_with(uint8_t status) { return make_event(Kind::Exit, status); }

} // namespace status_port
