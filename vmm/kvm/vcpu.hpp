// Vcpu: a KVM vCPU fd and its kvm_run mapping; register, MP-state, LAPIC and CPUID access.
#pragma once

#include "unique_fd.hpp"

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace vmm {

class Vcpu {
public:
    Vcpu(UniqueFd fd, Mapping run, uint32_t id)
        : m_fd(std::move(fd))
        , m_run(std::move(run))
        , m_id(id)
    {
    }

    uint32_t id() const { return m_id; }
    int fd() const { return m_fd.get(); }
    kvm_run& run_state() const { return *m_run.as<kvm_run>(); }
    // The whole kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE bytes): string I/O data lives past kvm_run.
    std::span<uint8_t> run_area() const { return { m_run.as<uint8_t>(), m_run.size() }; }

    // One KVM_RUN. EINTR (a kick or immediate_exit) and EAGAIN (an AP woken by INIT) come back as errors
    // for the caller to treat as "interrupted".
    SysResult<void> run();
    // Another thread may set it (the kick recipe); KVM reads it on entry to KVM_RUN.
    void set_immediate_exit(bool value);

    SysResult<kvm_regs> get_regs() const;
    SysResult<void> set_regs(kvm_regs const&);
    SysResult<kvm_sregs> get_sregs() const;
    SysResult<void> set_sregs(kvm_sregs const&);
    SysResult<kvm_fpu> get_fpu() const;
    SysResult<void> set_fpu(kvm_fpu const&);
    SysResult<kvm_mp_state> get_mp_state() const;
    SysResult<void> set_mp_state(uint32_t state);
    SysResult<kvm_lapic_state> get_lapic() const;
    SysResult<void> set_lapic(kvm_lapic_state const&);
    SysResult<kvm_vcpu_events> get_vcpu_events() const;
    SysResult<void> set_vcpu_events(kvm_vcpu_events const&);
    SysResult<kvm_debugregs> get_debugregs() const;
    SysResult<void> set_cpuid(std::span<kvm_cpuid_entry2 const> entries);
    SysResult<void> set_msrs(std::span<std::pair<uint32_t, uint64_t> const> msrs);
    SysResult<uint64_t> get_msr(uint32_t index) const;
    SysResult<uint32_t> tsc_khz() const;

private:
    UniqueFd m_fd;
    Mapping m_run;
    uint32_t m_id { 0 };
};

} // namespace vmm
