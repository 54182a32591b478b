// The PVH entry state: the segment values follow Firecracker's PVH set-up (code 0xC09B, data 0xC093,
// TSS 0x008B with limit 0x67), which Linux's and our PVH entry code accept.
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

constexpr uint64_t CR0_PE = 1u << 0;
constexpr uint64_t CR0_ET = 1u << 4;

} // namespace

void set_pvh_entry_sregs(kvm_sregs& sregs)
{
    sregs.cs = flat_segment(0x08, 0xB); // execute/read, accessed
    auto data = flat_segment(0x10, 0x3); // read/write, accessed
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;

    kvm_segment tss {};
    tss.base = 0;
    tss.limit = 0x67;
    tss.selector = 0x18;
    tss.type = 0xB; // 32-bit TSS, busy
    tss.present = 1;
    tss.s = 0;
    sregs.tr = tss;

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

} // namespace vmm
