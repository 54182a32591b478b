// KVM's register structures in the shape the debugging commands print.
#include "cpu_registers.hpp"

#include <algorithm>

namespace vmm {

qmp::SegmentRegister to_segment_register(kvm_segment const& s)
{
    qmp::SegmentRegister out;
    out.selector = s.selector;
    out.base = s.base;
    out.limit = s.limit;
    out.type = s.type;
    out.dpl = s.dpl;
    out.present = s.present != 0;
    out.s = s.s != 0;
    out.db = s.db != 0;
    out.l = s.l != 0;
    out.g = s.g != 0;
    out.avl = s.avl != 0;
    out.unusable = s.unusable != 0;
    return out;
}

qmp::CpuRegisters to_cpu_registers(uint32_t index, KvmCpuState const& state)
{
    qmp::CpuRegisters out;
    out.index = index;
    auto const& r = state.regs;
    out.rax = r.rax;
    out.rbx = r.rbx;
    out.rcx = r.rcx;
    out.rdx = r.rdx;
    out.rsi = r.rsi;
    out.rdi = r.rdi;
    out.rbp = r.rbp;
    out.rsp = r.rsp;
    out.r8 = r.r8;
    out.r9 = r.r9;
    out.r10 = r.r10;
    out.r11 = r.r11;
    out.r12 = r.r12;
    out.r13 = r.r13;
    out.r14 = r.r14;
    out.r15 = r.r15;
    out.rip = r.rip;
    out.rflags = r.rflags;

    auto const& s = state.sregs;
    out.es = to_segment_register(s.es);
    out.cs = to_segment_register(s.cs);
    out.ss = to_segment_register(s.ss);
    out.ds = to_segment_register(s.ds);
    out.fs = to_segment_register(s.fs);
    out.gs = to_segment_register(s.gs);
    out.ldt = to_segment_register(s.ldt);
    out.tr = to_segment_register(s.tr);
    out.gdt = { s.gdt.base, s.gdt.limit };
    out.idt = { s.idt.base, s.idt.limit };
    out.cr0 = s.cr0;
    out.cr2 = s.cr2;
    out.cr3 = s.cr3;
    out.cr4 = s.cr4;
    out.cr8 = s.cr8;
    out.efer = s.efer;

    if (state.debugregs) {
        std::copy(std::begin(state.debugregs->db), std::end(state.debugregs->db), out.dr.begin());
        out.dr6 = state.debugregs->dr6;
        out.dr7 = state.debugregs->dr7;
    }
    if (state.events) {
        out.interrupt_shadow = state.events->interrupt.shadow != 0;
        out.smm = state.events->smi.smm != 0;
    }
    out.halted = state.mp_state == KVM_MP_STATE_HALTED;
    if (state.fpu) {
        auto const& f = *state.fpu;
        out.fcw = f.fcw;
        out.fsw = f.fsw;
        out.ftw = f.ftwx;
        out.mxcsr = f.mxcsr;
        for (size_t i = 0; i < out.fpr.size(); ++i)
            std::copy(std::begin(f.fpr[i]), std::end(f.fpr[i]), out.fpr[i].begin());
        for (size_t i = 0; i < out.xmm.size(); ++i)
            std::copy(std::begin(f.xmm[i]), std::end(f.xmm[i]), out.xmm[i].begin());
    }
    return out;
}

SysResult<qmp::CpuRegisters> read_cpu_registers(uint32_t index, Vcpu const& vcpu)
{
    KvmCpuState state;
    state.regs = TRY(vcpu.get_regs());
    state.sregs = TRY(vcpu.get_sregs());
    state.mp_state = TRY(vcpu.get_mp_state()).mp_state;
    if (auto fpu = vcpu.get_fpu(); fpu.has_value())
        state.fpu = fpu.value();
    if (auto debugregs = vcpu.get_debugregs(); debugregs.has_value())
        state.debugregs = debugregs.value();
    if (auto events = vcpu.get_vcpu_events(); events.has_value())
        state.events = events.value();
    return to_cpu_registers(index, state);
}

} // namespace vmm
