// Register state for entering a guest: the PVH 32-bit entry state (the PVH boot ABI, Xen's docs/misc/pvh.pandoc;
// see docs/boot.md). Pure functions over KVM's structures, so the exact bits are unit-tested.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace vmm {

// 32-bit protected mode, paging off: flat CS/DS/ES/FS/GS/SS, a 32-bit TSS in TR, CR0 = PE|ET, CR4 = 0.
// Keeps the rest of `sregs` (APIC base, interrupt bitmap) as KVM gave it.
void set_pvh_entry_sregs(kvm_sregs& sregs);
// EIP = entry, EBX = start info, EFLAGS with only the reserved bit 1.
kvm_regs pvh_entry_regs(uint32_t entry, uint32_t start_info);

} // namespace vmm
