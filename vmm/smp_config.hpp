// --cpus in QEMU's -smp syntax: "N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T]", completed and
// validated with QEMU's rules (hw/core/machine-smp.c, cores preferred as for machine types since 6.2)
// and its error wording, so a QEMU user's topologies mean the same here.
#pragma once

#include "arch/x86_64/topology.hpp"

#include <cpuplug/base/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace vmm {

struct SmpConfig {
    uint32_t cpus { 1 };    // present at boot
    uint32_t maxcpus { 1 }; // possible (hot-pluggable up to this)
    CpuTopology topology;   // sockets x dies x cores x threads == maxcpus
};

// The most CPUs a cpuplug machine takes (the guest's and the hotplug core's MAX_CPUS).
inline constexpr uint32_t MACHINE_MAX_CPUS = 1024;
inline constexpr char const* MACHINE_NAME = "cpuplug";

cpuplug::Result<SmpConfig, std::string> parse_smp(std::string_view text);

} // namespace vmm
