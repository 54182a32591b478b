// Register state for entering a guest: the PVH 32-bit entry state (the PVH boot ABI, Xen's docs/misc/pvh.pandoc)
// and the Linux boot protocol's 64-bit entry state (Documentation/arch/x86/boot.rst); see docs/boot.md. Pure
// functions over KVM's structures, so the exact bits are unit-tested.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace vmm {

// 32-bit protected mode, paging off: flat CS/DS/ES/FS/GS/SS, a 32-bit TSS in TR, CR0 = PE|ET, CR4 = 0.
// Keeps the rest of `sregs` (APIC base, interrupt bitmap) as KVM gave it.
void set_pvh_entry_sregs(kvm_sregs& sregs);
// EIP = entry, EBX = start info, EFLAGS with only the reserved bit 1.
kvm_regs pvh_entry_regs(uint32_t entry, uint32_t start_info);

// 64-bit long mode with paging on: CR0 = PE|ET|PG, CR4 = PAE, EFER = LME|LMA, CR3 = the identity tables,
// CS = __BOOT_CS (0x10, 64-bit), DS/ES/FS/GS/SS = __BOOT_DS (0x18), TR = the GDT's TSS (0x20), GDTR as given,
// an empty IDT (interrupts stay off until the kernel loads its own).
void set_linux64_entry_sregs(kvm_sregs& sregs, uint64_t gdt_base, uint16_t gdt_limit, uint64_t page_tables);
// RIP = entry, RSI = boot_params, RFLAGS with only the reserved bit 1 (IF clear).
kvm_regs linux64_entry_regs(uint64_t entry, uint64_t boot_params);

// How the boot vCPU starts, kept so system_reset can put it back there.
struct BootEntry {
    enum class Mode { Pvh32, Linux64 };
    Mode mode { Mode::Pvh32 };
    uint64_t rip { 0 };
    uint64_t boot_info { 0 }; // PVH: EBX = hvm_start_info; Linux: RSI = boot_params
    uint64_t gdt_base { 0 };  // Linux only, as the three below
    uint16_t gdt_limit { 0 };
    uint64_t page_tables { 0 };
};

void set_boot_entry_sregs(kvm_sregs& sregs, BootEntry const& entry);
kvm_regs boot_entry_regs(BootEntry const& entry);

} // namespace vmm
