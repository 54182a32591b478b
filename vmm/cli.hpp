// The vmm command line (CLI11): parses argv into a MachineConfig, or into an exit code and the text to
// print (help, version, or a one-line error). A pure function, unit-tested.
#pragma once

#include "config.hpp"

#include <cpuplug/base/result.hpp>

#include <string>
#include <string_view>

namespace vmm {

struct CliExit {
    int code;             // 0 for --help/--version, 2 for usage errors
    std::string message;  // what to print: help text to stdout, errors to stderr
};

struct CliOptions {
    MachineConfig machine;
    std::string log_level { "warn" };
};

cpuplug::Result<CliOptions, CliExit> parse_command_line(int argc, char const* const* argv);

// "256M", "1G", "512" (MiB, as QEMU's -m), "64KiB"...; nullopt when it does not parse or overflows.
std::optional<uint64_t> parse_memory_size(std::string_view text);

} // namespace vmm
