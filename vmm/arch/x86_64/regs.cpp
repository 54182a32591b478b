// The PVH entry state: the segment values follow Firecracker's PVH set-up (code 0xC09B, data 0xC093,
// TSS 0x008B with limit 0x67), which Linux's and our PVH entry code accept. The Linux 64-bit entry state uses
// the same flat segments with CS in 64-bit mode, matching the descriptors write_boot_gdt puts in memory.
#include "regs.hpp"

namespace vmm {

namespace {

kvm_segment flat_segment(uint16_t selector, uint8_t type)
{
    kvm_segment segment {};
    segment.base = 0;
    segment.limit = 0xFFFFFFFF;
    segment.selector = selector;
    segment.type = type;
    segment.present = 1;
    segment.dpl = 0;
    segment.db = 1;
    segment.s = 1;
    segment.l = 0;
    segment.g = 1;
    return segment;
}

// A busy TSS of the minimal size; type 0xB means "32-bit TSS, busy" in legacy mode and "64-bit TSS, busy" in
// long mode. VM entry requires TR to hold a busy TSS; the guest loads its own before it needs one.
kvm_segment busy_tss(uint16_t selector)
{
    kvm_segment tss {};
    tss.base = 0;
    tss.limit = 0x67;
    tss.selector = selector;
    tss.type = 0xB;
    tss.present = 1;
    tss.s = 0;
    return tss;
}

constexpr uint64_t CR0_PE = 1u << 0;
constexpr uint64_t CR0_ET = 1u << 4;
constexpr uint64_t CR0_PG = 1u << 31;
constexpr uint64_t CR4_PAE = 1u << 5;
constexpr uint64_t EFER_LME = 1u << 8;
constexpr uint64_t EFER_LMA = 1u << 10;

} // namespace

void set_pvh_entry_sregs(kvm_sregs& sregs)
{
    sregs.cs = flat_segment(0x08, 0xB); // execute/read, accessed
    auto data = flat_segment(0x10, 0x3); // read/write, accessed
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;

    sregs.tr = busy_tss(0x18);

    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
}

kvm_regs pvh_entry_regs(uint32_t entry, uint32_t start_info)
{
    kvm_regs regs {};
    regs.rip = entry;
    regs.rbx = start_info;
    regs.rflags = 0x2;
    return regs;
}

void set_linux64_entry_sregs(kvm_sregs& sregs, uint64_t gdt_base, uint16_t gdt_limit, uint64_t page_tables)
{
    auto code = flat_segment(0x10, 0xB); // execute/read, accessed
    code.l = 1;
    code.db = 0; // L and D together are reserved
    sregs.cs = code;
    auto data = flat_segment(0x18, 0x3); // read/write, accessed
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;

    sregs.tr = busy_tss(0x20);

    sregs.gdt.base = gdt_base;
    sregs.gdt.limit = gdt_limit;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sregs.cr3 = page_tables;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
}

kvm_regs linux64_entry_regs(uint64_t entry, uint64_t boot_params)
{
    kvm_regs regs {};
    regs.rip = entry;
    regs.rsi = boot_params;
    regs.rflags = 0x2;
    return regs;
}

void set_boot_entry_sregs(kvm_sregs& sregs, BootEntry const& entry)
{
    if (entry.mode == BootEntry::Mode::Linux64)
        set_linux64_entry_sregs(sregs, entry.gdt_base, entry.gdt_limit, entry.page_tables);
    else
        set_pvh_entry_sregs(sregs);
}

kvm_regs boot_entry_regs(BootEntry const& entry)
{
    if (entry.mode == BootEntry::Mode::Linux64)
        return linux64_entry_regs(entry.rip, entry.boot_info);
    return pvh_entry_regs(static_cast<uint32_t>(entry.rip), static_cast<uint32_t>(entry.boot_info));
}

} // namespace vmm
