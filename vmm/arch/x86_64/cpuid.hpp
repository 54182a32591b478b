// Per-vCPU CPUID, built from KVM_GET_SUPPORTED_CPUID: APIC id and topology leaves, x2APIC and hypervisor
// bits, KVM's signature, the TSC frequency, and cpuplug's status-port leaf. A pure function, unit-tested.
#pragma once

#include "topology.hpp"

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

namespace vmm {

struct CpuidParams {
    uint32_t apic_id { 0 };
    CpuTopology topology;
    uint32_t tsc_khz { 0 };         // 0: leave leaf 0x40000010 out, the guest calibrates
    uint16_t status_port { 0 };     // 0: no status port leaves
    uint64_t status_mmio { 0 };     // 0: the status registers only in I/O space
    // Offer the TSC-deadline timer (leaf 1 ECX bit 24). KVM emulates it when it has KVM_CAP_TSC_DEADLINE_TIMER,
    // but KVM_GET_SUPPORTED_CPUID leaves the bit to the VMM, as QEMU, Firecracker and Cloud Hypervisor set it.
    bool tsc_deadline { false };
};

std::vector<kvm_cpuid_entry2> build_cpuid(std::span<kvm_cpuid_entry2 const> supported, CpuidParams const& params);

// Finds an entry; nullptr if absent.
kvm_cpuid_entry2 const* find_cpuid(std::span<kvm_cpuid_entry2 const> entries, uint32_t function, uint32_t index = 0);

} // namespace vmm
