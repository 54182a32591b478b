// Order matters on restore: the APIC base (in sregs) before the LAPIC registers, since KVM interprets the
// register page in the mode the base selects; the MP state last, once nothing else can change it.
#include "vcpu_state.hpp"

namespace vmm {

namespace {

// System-call, SYSENTER, PAT, TSC_AUX, TSC deadline and MISC_ENABLE: state a guest writes that neither
// KVM_SET_SREGS nor KVM_SET_LAPIC covers. FS and GS bases live in sregs' segments.
constexpr uint32_t RESETTABLE_MSRS[] = {
    0xC0000081, // STAR
    0xC0000082, // LSTAR
    0xC0000083, // CSTAR
    0xC0000084, // SFMASK
    0xC0000102, // KERNEL_GS_BASE
    0xC0000103, // TSC_AUX
    0x174,      // SYSENTER_CS
    0x175,      // SYSENTER_ESP
    0x176,      // SYSENTER_EIP
    0x277,      // PAT
    0x6E0,      // TSC_DEADLINE
    0x1A0,      // MISC_ENABLE
};

} // namespace

SysResult<VcpuState> capture_vcpu_state(Vcpu const& vcpu)
{
    VcpuState state;
    state.regs = TRY(vcpu.get_regs());
    state.sregs = TRY(vcpu.get_sregs());
    state.fpu = TRY(vcpu.get_fpu());
    state.lapic = TRY(vcpu.get_lapic());
    state.mp_state = TRY(vcpu.get_mp_state()).mp_state;
    for (uint32_t index : RESETTABLE_MSRS) {
        // An MSR this host's KVM does not know is one the guest cannot have changed either.
        if (auto value = vcpu.get_msr(index); value.has_value())
            state.msrs.emplace_back(index, value.value());
    }
    return state;
}

SysResult<void> restore_vcpu_state(Vcpu& vcpu, VcpuState const& state)
{
    TRY(vcpu.set_sregs(state.sregs));
    TRY(vcpu.set_regs(state.regs));
    TRY(vcpu.set_fpu(state.fpu));
    if (!state.msrs.empty())
        TRY(vcpu.set_msrs(state.msrs));
    TRY(vcpu.set_lapic(state.lapic));
    kvm_vcpu_events events {};
    // Valid NMI-pending and SMM fields, all zero: no NMI pending, not in SMM, no latched INIT.
    events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SMM;
    if (auto set = vcpu.set_vcpu_events(events); !set.has_value()) {
        // A KVM without SMM support refuses the SMM fields; then there is no SMM state to clear.
        events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
        TRY(vcpu.set_vcpu_events(events));
    }
    TRY(vcpu.set_mp_state(state.mp_state));
    return {};
}

} // namespace vmm
