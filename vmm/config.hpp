// MachineConfig: everything the command line decides about a VM, validated by the CLI parser.
#pragma once

#include "arch/x86_64/layout.hpp"
#include "qmp/endpoint.hpp"
#include "smp_config.hpp"

#include <guest/abi/platform.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmm {

struct SerialConfig {
    enum class Kind { Stdio, File, None };
    Kind kind { Kind::Stdio };
    std::string path; // for Kind::File
};

enum class Bringup { Parallel, Serial };

// The privilege level cpuplug's guest runs its kernel at (guest kernel.cpl=): Auto is CPL3 where KVM
// emulates supervisor code (nested PVM), CPL0 elsewhere.
enum class GuestCpl { Auto, Cpl0, Cpl3 };

struct MachineConfig {
    SmpConfig smp;                          // --cpus
    Bringup bringup { Bringup::Parallel };  // --bringup: cpuhp.parallel= for the guest
    uint64_t init_delay_us { platform::INIT_DELAY_US }; // --init-delay-us: cpu_init_udelay= for the guest
    GuestCpl guest_cpl { GuestCpl::Auto };  // --guest-cpl: kernel.cpl= for the guest
    std::optional<std::string> boot_report; // --boot-report: a path, or "-" for stdout
    uint64_t memory_bytes { layout::DEFAULT_RAM };
    std::optional<std::string> kernel_path; // empty: the embedded guest
    std::optional<std::string> initrd_path; // --initrd: only with a Linux kernel
    std::string cmdline;                    // after cpuplug's own guest parameters; a Linux kernel's whole line
    SerialConfig serial;
    bool exit_after_boot { false };
    bool hotplug { false };                 // --hotplug: the ACPI CPU-hotplug device and its AML
    std::chrono::milliseconds unplug_timeout { 5000 }; // --unplug-timeout-ms: a removal the guest leaves unfinished
    std::vector<qmp::Endpoint> qmp;         // --qmp, in the order given
    std::chrono::steady_clock::time_point process_start { std::chrono::steady_clock::now() };
};

} // namespace vmm
