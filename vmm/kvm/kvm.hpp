// Kvm: the /dev/kvm handle. Opening it checks the API version and every capability cpuplug relies on, and
// turns each failure into one sentence that says what to fix.
#pragma once

#include "unique_fd.hpp"
#include "vm.hpp"

#include <linux/kvm.h>

#include <string>
#include <vector>

namespace vmm {

struct KvmLimits {
    uint32_t max_vcpus { 0 };        // KVM_CAP_MAX_VCPUS: how many vCPUs one VM may have
    uint32_t max_vcpu_id { 0 };      // KVM_CAP_MAX_VCPU_ID: vCPU ids (= APIC ids) must be below this
    uint32_t recommended_vcpus { 0 }; // KVM_CAP_NR_VCPUS
};

// True on nested PVM (kvm_pvm loaded, and neither kvm_intel nor kvm_amd, so kvm_pvm is what provides
// /dev/kvm): the guest's supervisor mode is emulated there,
// ~1000x slower than its user mode, so cpuplug's guest keeps its kernel at CPL3 (docs/platform.md).
bool supervisor_mode_emulated();

class Kvm {
public:
    // `path` is /dev/kvm except in tests of the error messages.
    static cpuplug::Result<Kvm, std::string> open(char const* path = "/dev/kvm");

    KvmLimits const& limits() const { return m_limits; }
    int check_extension(long capability) const;
    SysResult<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
    SysResult<Vm> create_vm() const;

private:
    Kvm(UniqueFd fd, int vcpu_mmap_size, KvmLimits limits)
        : m_fd(std::move(fd))
        , m_vcpu_mmap_size(vcpu_mmap_size)
        , m_limits(limits)
    {
    }
    UniqueFd m_fd;
    int m_vcpu_mmap_size { 0 };
    KvmLimits m_limits;
};

} // namespace vmm
