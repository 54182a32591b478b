// Vm: a KVM virtual machine fd: memory slots, the in-kernel irqchip, interrupt lines and vCPU creation.
#pragma once

#include "unique_fd.hpp"
#include "vcpu.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace vmm {

// The PC's GSI routing, as QEMU sets it for q35 with KVM's irqchip: GSI n reaches PIC pin n (0-15, not the
// cascade pin 2) and IOAPIC pin n (0-23), except that GSI 0, the PIT's, goes to IOAPIC pin 2 (the MADT's
// IRQ 0 override) and GSI 2 goes nowhere. KVM's default table sends GSI 0 to IOAPIC pin 0, where no OS reading
// our MADT looks for the timer.
std::vector<kvm_irq_routing_entry> pc_gsi_routing();

class Vm {
public:
    Vm(UniqueFd fd, int vcpu_mmap_size)
        : m_fd(std::move(fd))
        , m_vcpu_mmap_size(vcpu_mmap_size)
    {
    }

    int fd() const { return m_fd.get(); }

    SysResult<void> set_tss_address(uint64_t address);
    SysResult<void> set_identity_map_address(uint64_t address);
    // LAPIC per vCPU, IOAPIC and PIC in the kernel: INIT/SIPI between vCPUs never reaches user space.
    SysResult<void> create_irqchip();
    // KVM's i8254 (ports 0x40-0x43 and the speaker port 0x61), after the irqchip; it ticks on GSI 0.
    SysResult<void> create_pit();
    SysResult<kvm_pit_state2> get_pit() const;
    SysResult<void> set_pit(kvm_pit_state2 const& state);
    // Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING).
    SysResult<void> set_gsi_routing(std::span<kvm_irq_routing_entry const> entries);
    // 32-bit x2APIC ids (APIC ids above 254) and no broadcast quirk for id 0xFF; before any vCPU exists.
    SysResult<void> enable_x2apic_api();
    // SAFETY: `host` must stay mapped for `size` bytes for as long as the slot exists (the VM's lifetime).
    SysResult<void> set_user_memory_region(uint32_t slot, uint64_t guest_address, uint64_t size, void* host);
    SysResult<void> irq_line(uint32_t gsi, bool level);
    // The in-kernel PIC (chips 0 and 1) and IOAPIC (chip 2) state, saved at creation and put back on reset.
    SysResult<kvm_irqchip> get_irqchip(uint32_t chip) const;
    SysResult<void> set_irqchip(kvm_irqchip const& state);
    SysResult<Vcpu> create_vcpu(uint32_t id);

private:
    UniqueFd m_fd;
    int m_vcpu_mmap_size { 0 };
};

} // namespace vmm
