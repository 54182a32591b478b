// How the VM ends: vmm's exit codes and a request to end the VM, as any part of the machine makes one.
#pragma once

#include <string>

namespace vmm {

// vmm's exit codes (docs/cli.md).
enum ExitCode : int {
    EXIT_OK = 0,            // the guest powered off, or the host asked vmm to stop
    EXIT_VMM_ERROR = 1,     // set-up failed or a vCPU hit a fatal exit
    EXIT_USAGE = 2,         // bad command line
    EXIT_GUEST_FAILURE = 3, // the guest reported a failure status (exception, panic)
};

struct ExitRequest {
    int code { EXIT_OK };
    std::string reason;                 // for the log
    bool guest { false };               // the guest asked (QMP SHUTDOWN's "guest")
    std::string cause { "host-error" }; // QMP's ShutdownCause
};

// What a request refused because the VM is ending says (device_add, the x-cpuhp commands).
inline constexpr char const* VM_ENDING_TEXT = "the VM is shutting down";

} // namespace vmm
