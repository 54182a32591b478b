// VcpuState: a vCPU's architectural state as KVM made it at creation (power-on), captured once and put
// back on system_reset, so a reset vCPU is indistinguishable from a new one. KVM cannot destroy vCPUs,
// which makes this the only way to give a vCPU a fresh start.
#pragma once

#include "../kvm/sys_error.hpp"
#include "../kvm/vcpu.hpp"

#include <cstdint>
#include <utility>
#include <vector>

namespace vmm {

struct VcpuState {
    kvm_regs regs {};
    kvm_sregs sregs {}; // segments, control registers, EFER and APIC base
    kvm_fpu fpu {};
    kvm_lapic_state lapic {};
    uint32_t mp_state { KVM_MP_STATE_UNINITIALIZED };
    std::vector<std::pair<uint32_t, uint64_t>> msrs; // the MSRs outside sregs that a guest may change
};

// Call before the vCPU first runs.
SysResult<VcpuState> capture_vcpu_state(Vcpu const& vcpu);
// The vCPU must not be in KVM_RUN. Clears pending events (exceptions, interrupts, NMIs, a latched INIT).
SysResult<void> restore_vcpu_state(Vcpu& vcpu, VcpuState const& state);

} // namespace vmm
