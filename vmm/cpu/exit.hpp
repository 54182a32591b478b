// handle_exit: what to do with one KVM exit. A free function over kvm_run and the buses, so every exit
// kind is unit-tested on a hand-filled kvm_run without a VM.
#pragma once

#include "../devices/io_bus.hpp"

#include <linux/kvm.h>

#include <cstddef>
#include <span>
#include <string>

namespace vmm {

enum class ExitKind {
    Continue, // handled; run again
    Shutdown, // the guest asked to turn off (KVM_SYSTEM_EVENT_SHUTDOWN)
    Fatal,    // the vCPU cannot go on; `reason` says why
};

struct ExitAction {
    ExitKind kind { ExitKind::Continue };
    std::string reason;
};

struct Buses {
    IoBus const& io;
    IoBus const& mmio;
};

// `run_area` is the whole kvm_run mapping: string I/O data lives inside it at io.data_offset.
ExitAction handle_exit(std::span<uint8_t> run_area, Buses const& buses);

} // namespace vmm
