// The control page: how the VMM asks the guest's hotplug core something (QMP's x-query-cpuhp,
// x-cpuhp-set-target, x-cpuhp-fail, x-cpu-hotplug-disable/-enable), Linux's cpuN/hotplug sysfs files as
// the model. Shared by the VMM and the guest. See docs/status-port.md.
//
// 1. At boot the guest zeroes PAGES pages of its RAM, fills in `magic` and `version`, and announces the
//    address with the status-port event control_page(address) (which carries the frame number). It then enables GPE0 bit GPE_BIT.
//    Both happen before the BootDone milestone: a guest that has reported BootDone without a control
//    page has none.
// 2. The VMM writes a request (command, cpu, state), then request_seq (one more than before), then sets
//    GPE0 status bit GPE_BIT, which raises the SCI.
// 3. The guest's SCI handler clears the GPE bit, sees request_seq != response_seq, runs the command on
//    its boot CPU, writes `result` and the command's data, then response_seq = request_seq, then reports
//    the status-port event control_done(request_seq).
// 4. The VMM reads the response when that event arrives. One request is in flight at a time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace control {

inline constexpr uint32_t MAGIC = 0x6c746e63; // "cntl"
inline constexpr uint32_t VERSION = 1;
inline constexpr uint32_t PAGES = 5;
inline constexpr uint32_t SIZE = PAGES * 4096;
inline constexpr unsigned GPE_BIT = 7; // QEMU's q35 uses GPE0 bits 1-4; 7 is free

enum class Command : uint32_t {
    None = 0,
    QueryCpuhp = 1,     // fills `states` and `cpus` (the possible CPUs, by index)
    SetTarget = 2,      // drives `cpu` to `state`, up or down (Cpuhp::set_target)
    SetFail = 3,        // arms a one-shot failure of `state` on `cpu` (0xFFFF clears it)
    HotplugDisable = 4, // Cpuhp::cpu_hotplug_disable(); also refuses ACPI hot-plug requests meanwhile
    HotplugEnable = 5,  // Cpuhp::cpu_hotplug_enable(); -EINVAL (22) when not disabled
};

inline constexpr size_t NAME_SIZE = 30;
struct StateName {
    uint16_t index;
    char name[NAME_SIZE]; // NUL-terminated
};
static_assert(sizeof(StateName) == 32);

// Flags of a CpuRecord.
inline constexpr uint8_t CPU_PRESENT = 1u << 0;
inline constexpr uint8_t CPU_ONLINE = 1u << 1;
inline constexpr uint8_t CPU_ACTIVE = 1u << 2;
inline constexpr uint8_t CPU_ROLLED_BACK = 1u << 3; // the last operation failed and was rolled back
inline constexpr uint8_t CPU_LIMBO = 1u << 4;       // an operation lost the AP

struct CpuRecord {
    uint16_t state;
    uint16_t target;
    uint16_t fail;       // 0xFFFF: none armed
    uint8_t flags;
    uint8_t reserved;
    int32_t last_result; // 0 or a negative errno of the last operation
    uint32_t apic_id;
};
static_assert(sizeof(CpuRecord) == 16);

inline constexpr uint32_t MAX_STATES = 64;
struct Header {
    uint32_t magic;
    uint32_t version;
    uint32_t request_seq;  // written by the VMM, last
    uint32_t response_seq; // written by the guest, last
    uint32_t command;      // Command
    uint32_t cpu;
    uint32_t state;
    int32_t result;        // 0 or a negative errno (cpuplug/base/errno.hpp values)
    uint32_t state_count;  // QueryCpuhp: entries in `states`
    uint32_t cpu_count;    // QueryCpuhp: entries in the CpuRecord array after the header
    uint32_t disabled;     // QueryCpuhp: the hotplug disable count
    uint32_t boot_cpu;     // QueryCpuhp: the boot CPU's index
    uint32_t reserved[4];
    StateName states[MAX_STATES]; // the named states, ascending index: the list of cpuN/hotplug/states
};
static_assert(sizeof(Header) == 64 + MAX_STATES * sizeof(StateName));

inline constexpr size_t CPU_RECORDS_OFFSET = sizeof(Header);
inline constexpr uint32_t MAX_CPU_RECORDS = static_cast<uint32_t>((SIZE - CPU_RECORDS_OFFSET) / sizeof(CpuRecord));
static_assert(MAX_CPU_RECORDS >= 1024); // the most CPUs the VMM and the guest support

} // namespace control
