// A vCPU's registers for the debugging commands (qmp::CpuRegisters), from KVM's structures. The conversion is
// a pure function, tested on hand-filled structures; the read is a handful of ioctls on a vCPU that is not
// in KVM_RUN.
#pragma once

#include "../kvm/sys_error.hpp"
#include "../kvm/vcpu.hpp"
#include "qmp/cpu_dump.hpp"

#include <linux/kvm.h>

#include <cstdint>
#include <optional>

namespace vmm {

struct KvmCpuState {
    kvm_regs regs {};
    kvm_sregs sregs {};
    std::optional<kvm_fpu> fpu;
    std::optional<kvm_debugregs> debugregs;
    std::optional<kvm_vcpu_events> events;
    uint32_t mp_state { KVM_MP_STATE_RUNNABLE };
};

qmp::SegmentRegister to_segment_register(kvm_segment const& segment);
qmp::CpuRegisters to_cpu_registers(uint32_t index, KvmCpuState const& state);

// The vCPU must not be in KVM_RUN (it is paused, stopped or was never started). The FPU, debug registers
// and pending events are optional (a KVM that refuses them still gives the rest); the others are not.
SysResult<qmp::CpuRegisters> read_cpu_registers(uint32_t index, Vcpu const& vcpu);

} // namespace vmm
