// The register dump in QEMU's layout, so that people and scripts used to QEMU's `info registers` read ours
// the same way. Written from QEMU's output format; the flags and names follow the SDM's descriptor layout.
#include "cpu_dump.hpp"

#include <fmt/format.h>

#include <cstring>
#include <iterator>

namespace vmm::qmp {

namespace {

// The descriptor's second dword, as QEMU keeps it (target/i386/cpu.h's DESC_* bits).
constexpr uint32_t DESC_TYPE_SHIFT = 8;
constexpr uint32_t DESC_A = 1u << 8;   // data and code: accessed
constexpr uint32_t DESC_RW = 1u << 9;  // code: readable; data: writable
constexpr uint32_t DESC_CE = 1u << 10; // code: conforming; data: expand-down
constexpr uint32_t DESC_CODE = 1u << 11;
constexpr uint32_t DESC_S = 1u << 12;
constexpr uint32_t DESC_DPL_SHIFT = 13;
constexpr uint32_t DESC_P = 1u << 15;
constexpr uint32_t DESC_AVL = 1u << 20;
constexpr uint32_t DESC_L = 1u << 21;
constexpr uint32_t DESC_B = 1u << 22;
constexpr uint32_t DESC_G = 1u << 23;

constexpr uint64_t RFLAGS_CF = 1u << 0, RFLAGS_PF = 1u << 2, RFLAGS_AF = 1u << 4, RFLAGS_ZF = 1u << 6,
                   RFLAGS_SF = 1u << 7, RFLAGS_DF = 1u << 10, RFLAGS_OF = 1u << 11, RFLAGS_VM = 1u << 17;
constexpr uint64_t CR0_PE = 1u << 0;
constexpr uint64_t EFER_LMA = 1u << 10;

// System descriptor types by mode (SDM vol. 3, table 3-2).
constexpr char const* SYSTEM_TYPES_32[16] = { "Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16",
    "TaskGate", "IntGate16", "TrapGate16", "Reserved", "TSS32-avl", "Reserved", "TSS32-busy", "CallGate32",
    "Reserved", "IntGate32", "TrapGate32" };
constexpr char const* SYSTEM_TYPES_64[16] = { "<hiword>", "Reserved", "LDT", "Reserved", "Reserved", "Reserved",
    "Reserved", "Reserved", "Reserved", "TSS64-avl", "Reserved", "TSS64-busy", "CallGate64", "Reserved",
    "IntGate64", "TrapGate64" };

using Out = fmt::memory_buffer;

template<typename... Args>
void put(Out& out, fmt::format_string<Args...> format, Args&&... args)
{
    fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

void dump_segment(Out& out, CpuRegisters const& regs, char const* name, SegmentRegister const& segment, bool cs64)
{
    uint32_t flags = segment_flags(segment);
    if (cs64)
        put(out, "{:<3}={:04x} {:016x} {:08x} {:08x}", name, segment.selector, segment.base, segment.limit,
            flags & 0x00FFFF00);
    else
        put(out, "{:<3}={:04x} {:08x} {:08x} {:08x}", name, segment.selector, uint32_t(segment.base), segment.limit,
            flags & 0x00FFFF00);
    bool lma = regs.efer & EFER_LMA;
    if ((regs.cr0 & CR0_PE) && (flags & DESC_P)) {
        put(out, " DPL={} ", (flags >> DESC_DPL_SHIFT) & 3);
        if (flags & DESC_S) {
            if (flags & DESC_CODE) {
                put(out, "{}", (flags & DESC_L) ? "CS64" : (flags & DESC_B) ? "CS32" : "CS16");
                put(out, " [{}{}", (flags & DESC_CE) ? 'C' : '-', (flags & DESC_RW) ? 'R' : '-');
            } else {
                put(out, "{}", ((flags & DESC_B) || lma) ? "DS  " : "DS16");
                put(out, " [{}{}", (flags & DESC_CE) ? 'E' : '-', (flags & DESC_RW) ? 'W' : '-');
            }
            put(out, "{}]", (flags & DESC_A) ? 'A' : '-');
        } else {
            put(out, "{}", (lma ? SYSTEM_TYPES_64 : SYSTEM_TYPES_32)[segment.type & 0xF]);
        }
    }
    put(out, "\n");
}

uint64_t low_quad(std::array<uint8_t, 16> const& bytes, size_t offset)
{
    uint64_t value = 0;
    std::memcpy(&value, bytes.data() + offset, sizeof(value)); // x86 is little-endian, as the host
    return value;
}

} // namespace

uint32_t segment_flags(SegmentRegister const& segment)
{
    uint32_t flags = uint32_t(segment.type & 0xF) << DESC_TYPE_SHIFT;
    if (segment.present && !segment.unusable)
        flags |= DESC_P;
    flags |= uint32_t(segment.dpl & 3) << DESC_DPL_SHIFT;
    if (segment.db)
        flags |= DESC_B;
    if (segment.s)
        flags |= DESC_S;
    if (segment.l)
        flags |= DESC_L;
    if (segment.g)
        flags |= DESC_G;
    if (segment.avl)
        flags |= DESC_AVL;
    return flags;
}

int current_privilege_level(CpuRegisters const& regs)
{
    if (!(regs.cr0 & CR0_PE))
        return 0;
    if (regs.rflags & RFLAGS_VM)
        return 3;
    return regs.ss.dpl & 3;
}

std::string dump_cpu_registers(CpuRegisters const& regs)
{
    Out out;
    bool lma = regs.efer & EFER_LMA;
    bool cs64 = lma && regs.cs.l;
    auto f = regs.rflags;
    char flag_letters[8] = { (f & RFLAGS_DF) ? 'D' : '-', (f & RFLAGS_OF) ? 'O' : '-', (f & RFLAGS_SF) ? 'S' : '-',
        (f & RFLAGS_ZF) ? 'Z' : '-', (f & RFLAGS_AF) ? 'A' : '-', (f & RFLAGS_PF) ? 'P' : '-',
        (f & RFLAGS_CF) ? 'C' : '-', '\0' };
    // A20 is always on: KVM has no A20 gate.
    auto status = fmt::format("[{}] CPL={} II={} A20=1 SMM={} HLT={}", flag_letters, current_privilege_level(regs),
        regs.interrupt_shadow ? 1 : 0, regs.smm ? 1 : 0, regs.halted ? 1 : 0);
    if (cs64) {
        put(out, "RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}\n", regs.rax, regs.rbx, regs.rcx, regs.rdx);
        put(out, "RSI={:016x} RDI={:016x} RBP={:016x} RSP={:016x}\n", regs.rsi, regs.rdi, regs.rbp, regs.rsp);
        put(out, "R8 ={:016x} R9 ={:016x} R10={:016x} R11={:016x}\n", regs.r8, regs.r9, regs.r10, regs.r11);
        put(out, "R12={:016x} R13={:016x} R14={:016x} R15={:016x}\n", regs.r12, regs.r13, regs.r14, regs.r15);
        put(out, "RIP={:016x} RFL={:08x} {}\n", regs.rip, uint32_t(regs.rflags), status);
    } else {
        put(out, "EAX={:08x} EBX={:08x} ECX={:08x} EDX={:08x}\n", uint32_t(regs.rax), uint32_t(regs.rbx),
            uint32_t(regs.rcx), uint32_t(regs.rdx));
        put(out, "ESI={:08x} EDI={:08x} EBP={:08x} ESP={:08x}\n", uint32_t(regs.rsi), uint32_t(regs.rdi),
            uint32_t(regs.rbp), uint32_t(regs.rsp));
        put(out, "EIP={:08x} EFL={:08x} {}\n", uint32_t(regs.rip), uint32_t(regs.rflags), status);
    }

    dump_segment(out, regs, "ES", regs.es, cs64);
    dump_segment(out, regs, "CS", regs.cs, cs64);
    dump_segment(out, regs, "SS", regs.ss, cs64);
    dump_segment(out, regs, "DS", regs.ds, cs64);
    dump_segment(out, regs, "FS", regs.fs, cs64);
    dump_segment(out, regs, "GS", regs.gs, cs64);
    dump_segment(out, regs, "LDT", regs.ldt, cs64);
    dump_segment(out, regs, "TR", regs.tr, cs64);

    if (lma) {
        put(out, "GDT=     {:016x} {:08x}\n", regs.gdt.base, regs.gdt.limit);
        put(out, "IDT=     {:016x} {:08x}\n", regs.idt.base, regs.idt.limit);
        put(out, "CR0={:08x} CR2={:016x} CR3={:016x} CR4={:08x}\n", uint32_t(regs.cr0), regs.cr2, regs.cr3,
            uint32_t(regs.cr4));
    } else {
        put(out, "GDT=     {:08x} {:08x}\n", uint32_t(regs.gdt.base), regs.gdt.limit);
        put(out, "IDT=     {:08x} {:08x}\n", uint32_t(regs.idt.base), regs.idt.limit);
        put(out, "CR0={:08x} CR2={:08x} CR3={:08x} CR4={:08x}\n", uint32_t(regs.cr0), uint32_t(regs.cr2),
            uint32_t(regs.cr3), uint32_t(regs.cr4));
    }
    // QEMU's x86_64 build prints debug registers 16 digits wide in every mode, with a space after DR3.
    for (size_t i = 0; i < regs.dr.size(); ++i)
        put(out, "DR{}={:016x} ", i, regs.dr[i]);
    put(out, "\nDR6={:016x} DR7={:016x}\n", regs.dr6, regs.dr7);
    put(out, "EFER={:016x}\n", regs.efer);

    put(out, "FCW={:04x} FSW={:04x} [ST={}] FTW={:02x} MXCSR={:08x}\n", regs.fcw, regs.fsw, (regs.fsw >> 11) & 7,
        regs.ftw, regs.mxcsr);
    for (size_t i = 0; i < regs.fpr.size(); ++i) {
        uint16_t exponent = uint16_t(regs.fpr[i][8] | (regs.fpr[i][9] << 8));
        put(out, "FPR{}={:016x} {:04x}{}", i, low_quad(regs.fpr[i], 0), exponent, (i & 1) ? "\n" : " ");
    }
    // XMM0-7 outside 64-bit code, as QEMU. Without XCR0 at hand the YMM form is not attempted.
    size_t xmm_count = cs64 ? 16 : 8;
    for (size_t i = 0; i < xmm_count; ++i)
        put(out, "XMM{:02}={:016x} {:016x}{}", i, low_quad(regs.xmm[i], 8), low_quad(regs.xmm[i], 0),
            (i & 1) ? "\n" : " ");
    return fmt::to_string(out);
}

} // namespace vmm::qmp
