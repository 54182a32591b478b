// handle_exit: port I/O (including KVM's batched string I/O) and MMIO go to the buses; the fatal exits
// carry a sentence for the user.
#include "exit.hpp"

#include <fmt/format.h>

namespace vmm {

namespace {

ExitAction fatal(std::string reason) { return { ExitKind::Fatal, std::move(reason) }; }

ExitAction handle_io(std::span<uint8_t> run_area, kvm_run& run, Buses const& buses)
{
    auto const& io = run.io;
    uint64_t bytes = uint64_t(io.size) * io.count;
    bool size_ok = io.size == 1 || io.size == 2 || io.size == 4;
    if (!size_ok || io.data_offset > run_area.size() || bytes > run_area.size() - io.data_offset)
        return fatal(fmt::format("malformed port I/O exit (port {:#x}, size {}, count {}, data offset {:#x})", io.port,
            io.size, io.count, io.data_offset));
    // `rep outsb` arrives as one exit with count > 1: each element is its own access at the same port.
    uint8_t* data = run_area.data() + io.data_offset;
    for (uint32_t i = 0; i < io.count; ++i) {
        std::span<uint8_t> element(data + size_t(i) * io.size, io.size);
        if (io.direction == KVM_EXIT_IO_OUT)
            buses.io.write(io.port, element);
        else
            buses.io.read(io.port, element);
    }
    return {};
}

ExitAction handle_mmio(kvm_run& run, Buses const& buses)
{
    auto& mmio = run.mmio;
    if (mmio.len == 0 || mmio.len > sizeof(mmio.data))
        return fatal(fmt::format("malformed MMIO exit (address {:#x}, length {})", mmio.phys_addr, mmio.len));
    std::span<uint8_t> data(mmio.data, mmio.len);
    if (mmio.is_write)
        buses.mmio.write(mmio.phys_addr, data);
    else
        buses.mmio.read(mmio.phys_addr, data);
    return {};
}

char const* internal_error_name(uint32_t suberror)
{
    switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION:
        return "instruction emulation failed";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
        return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
        return "event delivery failed";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
        return "unexpected exit reason";
    default:
        return "unknown internal error";
    }
}

} // namespace

ExitAction handle_exit(std::span<uint8_t> run_area, Buses const& buses)
{
    // SAFETY: run_area is the vCPU's kvm_run mapping (at least sizeof(kvm_run) bytes, page aligned).
    auto& run = *reinterpret_cast<kvm_run*>(run_area.data());
    switch (run.exit_reason) {
    case KVM_EXIT_IO:
        return handle_io(run_area, run, buses);
    case KVM_EXIT_MMIO:
        return handle_mmio(run, buses);
    case KVM_EXIT_HLT:
    case KVM_EXIT_INTR:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_DEBUG:
        return {};
    case KVM_EXIT_SHUTDOWN:
        return fatal("the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
    case KVM_EXIT_FAIL_ENTRY:
        return fatal(fmt::format("KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason {:#x})",
            static_cast<uint64_t>(run.fail_entry.hardware_entry_failure_reason)));
    case KVM_EXIT_INTERNAL_ERROR: {
        std::string detail;
        for (uint32_t i = 0; i < run.internal.ndata && i < 16; ++i)
            detail += fmt::format(" {:#x}", static_cast<uint64_t>(run.internal.data[i]));
        return fatal(fmt::format("KVM internal error {} ({}){}{}", run.internal.suberror,
            internal_error_name(run.internal.suberror), detail.empty() ? "" : ", data:", detail));
    }
    case KVM_EXIT_SYSTEM_EVENT:
        if (run.system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
            return { ExitKind::Shutdown, "the guest shut down (KVM_SYSTEM_EVENT_SHUTDOWN)" };
        return fatal(fmt::format("unhandled KVM system event {}", run.system_event.type));
    case KVM_EXIT_UNKNOWN:
        return fatal(fmt::format("KVM_EXIT_UNKNOWN (hardware exit reason {:#x})",
            static_cast<uint64_t>(run.hw.hardware_exit_reason)));
    default:
        return fatal(fmt::format("unhandled KVM exit reason {}", run.exit_reason));
    }
}

} // namespace vmm
