// A vCPU's registers as the debugging commands show them (HMP `info registers`), in plain types so the QMP
// library stays free of KVM: the machine fills one from KVM's structures (cpu/cpu_registers.hpp), the tests
// and the fuzzer by hand.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vmm::qmp {

// A segment register's visible and hidden parts, as KVM's kvm_segment has them.
struct SegmentRegister {
    uint16_t selector { 0 };
    uint64_t base { 0 };
    uint32_t limit { 0 };
    uint8_t type { 0 }; // the descriptor's 4-bit type
    uint8_t dpl { 0 };
    bool present { false };
    bool s { false }; // code or data (not a system segment)
    bool db { false };
    bool l { false };
    bool g { false };
    bool avl { false };
    bool unusable { false };
};

struct TableRegister {
    uint64_t base { 0 };
    uint16_t limit { 0 };
};

struct CpuRegisters {
    uint32_t index { 0 }; // cpu-index
    uint64_t rax { 0 }, rbx { 0 }, rcx { 0 }, rdx { 0 }, rsi { 0 }, rdi { 0 }, rbp { 0 }, rsp { 0 };
    uint64_t r8 { 0 }, r9 { 0 }, r10 { 0 }, r11 { 0 }, r12 { 0 }, r13 { 0 }, r14 { 0 }, r15 { 0 };
    uint64_t rip { 0 };
    uint64_t rflags { 0x2 };
    SegmentRegister es, cs, ss, ds, fs, gs, ldt, tr;
    TableRegister gdt, idt;
    uint64_t cr0 { 0 }, cr2 { 0 }, cr3 { 0 }, cr4 { 0 }, cr8 { 0 };
    uint64_t efer { 0 };
    std::array<uint64_t, 4> dr {}; // DR0 to DR3
    uint64_t dr6 { 0 }, dr7 { 0 };
    bool interrupt_shadow { false }; // after STI or MOV SS: QEMU's II
    bool smm { false };
    bool halted { false }; // HLT, waiting for an interrupt
    // The x87 and SSE state (FXSAVE's layout); each FPR holds an 80-bit value in its first 10 bytes.
    uint16_t fcw { 0x37F };
    uint16_t fsw { 0 };
    uint8_t ftw { 0 }; // abridged: bit i set when physical register i is in use
    uint32_t mxcsr { 0x1F80 };
    std::array<std::array<uint8_t, 16>, 8> fpr {};
    std::array<std::array<uint8_t, 16>, 16> xmm {};
};

// QEMU's x86_cpu_dump_state() layout with its FPU part (target/i386/cpu-dump.c): 64-bit names and widths
// while the CPU runs 64-bit code, 32-bit ones otherwise. Lines end in "\n".
std::string dump_cpu_registers(CpuRegisters const& regs);

// QEMU's segment flags (the descriptor's second dword, without the limit's and base's bits) of a segment as
// KVM describes it, as QEMU's KVM code builds them.
uint32_t segment_flags(SegmentRegister const& segment);

// The privilege level the CPU runs at: SS's DPL in protected mode, 3 in virtual-8086 mode, 0 in real mode.
int current_privilege_level(CpuRegisters const& regs);

} // namespace vmm::qmp
