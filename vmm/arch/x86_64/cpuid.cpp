// build_cpuid: KVM passes host topology through and leaves the hypervisor bit off (Linux arch/x86/kvm/cpuid.c);
// every leaf that names a CPU or the topology is rewritten here, per vCPU. Leaf layouts: Intel SDM vol. 2A,
// CPUID (leaves 1, 0xB, 0x1F); AMD APM vol. 3, appendix E (0x80000008, 0x8000001E); KVM's leaves: Linux
// Documentation/virt/kvm/x86/cpuid.rst. What each vCPU gets: docs/smp.md.
#include "cpuid.hpp"

#include <guest/abi/status_port.hpp>

#include <algorithm>

namespace vmm {

namespace {

constexpr uint32_t LEAF1_ECX_X2APIC = 1u << 21;
constexpr uint32_t LEAF1_ECX_TSC_DEADLINE = 1u << 24;
constexpr uint32_t LEAF1_ECX_HYPERVISOR = 1u << 31;
constexpr uint32_t LEAF1_EDX_HTT = 1u << 28;
constexpr uint32_t KVM_SIGNATURE_EBX = 0x4b4d564b; // "KVMK"
constexpr uint32_t KVM_SIGNATURE_ECX = 0x564b4d56; // "VMKV"
constexpr uint32_t KVM_SIGNATURE_EDX = 0x0000004d; // "M\0\0\0"
constexpr uint32_t LAPIC_TIMER_KHZ = 1'000'000;     // KVM's LAPIC timer counts at 1 GHz

kvm_cpuid_entry2& upsert(std::vector<kvm_cpuid_entry2>& entries, uint32_t function, uint32_t index, uint32_t flags)
{
    for (auto& e : entries)
        if (e.function == function && ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) == 0 || e.index == index))
            return e;
    kvm_cpuid_entry2 entry {};
    entry.function = function;
    entry.index = index;
    entry.flags = flags;
    entries.push_back(entry);
    return entries.back();
}

void remove_leaf(std::vector<kvm_cpuid_entry2>& entries, uint32_t function)
{
    std::erase_if(entries, [&](auto const& e) { return e.function == function; });
}

// Leaf 0xB / 0x1F: one subleaf per level, EDX = this CPU's x2APIC id in every one, then a terminator.
void set_topology_leaf(std::vector<kvm_cpuid_entry2>& entries, uint32_t leaf, CpuidParams const& p, bool with_die)
{
    auto const& t = p.topology;
    remove_leaf(entries, leaf);
    struct Level {
        uint32_t shift, count, type;
    };
    // Level types: 1 SMT, 2 core, 5 die (0x1F only).
    Level levels[3];
    int n = 0;
    levels[n++] = { core_offset(t), t.threads, 1 };
    if (with_die) {
        levels[n++] = { die_offset(t), t.threads_per_die(), 2 };
        levels[n++] = { package_offset(t), t.threads_per_socket(), 5 };
    } else {
        levels[n++] = { package_offset(t), t.threads_per_socket(), 2 };
    }
    for (int i = 0; i <= n; ++i) {
        kvm_cpuid_entry2 e {};
        e.function = leaf;
        e.index = static_cast<uint32_t>(i);
        e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        if (i < n) {
            e.eax = levels[i].shift;
            e.ebx = levels[i].count;
            e.ecx = static_cast<uint32_t>(i) | (levels[i].type << 8);
        } else {
            e.ecx = static_cast<uint32_t>(i); // type 0: invalid, ends the enumeration
        }
        e.edx = p.apic_id;
        entries.push_back(e);
    }
}

} // namespace

kvm_cpuid_entry2 const* find_cpuid(std::span<kvm_cpuid_entry2 const> entries, uint32_t function, uint32_t index)
{
    for (auto const& e : entries)
        if (e.function == function && ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) == 0 || e.index == index))
            return &e;
    return nullptr;
}

std::vector<kvm_cpuid_entry2> build_cpuid(std::span<kvm_cpuid_entry2 const> supported, CpuidParams const& p)
{
    std::vector<kvm_cpuid_entry2> entries(supported.begin(), supported.end());
    auto const& t = p.topology;
    uint32_t max_basic = 0;
    if (auto const* leaf0 = find_cpuid(entries, 0))
        max_basic = leaf0->eax;

    // Leaf 1: initial APIC id, logical processors per package, HTT, x2APIC, hypervisor present.
    auto& leaf1 = upsert(entries, 1, 0, 0);
    uint32_t logical_per_package = std::min<uint32_t>(1u << package_offset(t), 255);
    leaf1.ebx = (leaf1.ebx & 0x0000FFFF) | ((p.apic_id & 0xFF) << 24) | (logical_per_package << 16);
    if (t.threads_per_socket() > 1)
        leaf1.edx |= LEAF1_EDX_HTT;
    else
        leaf1.edx &= ~LEAF1_EDX_HTT;
    leaf1.ecx |= LEAF1_ECX_X2APIC | LEAF1_ECX_HYPERVISOR;
    if (p.tsc_deadline)
        leaf1.ecx |= LEAF1_ECX_TSC_DEADLINE;
    else
        leaf1.ecx &= ~LEAF1_ECX_TSC_DEADLINE;

    if (max_basic >= 0xB)
        set_topology_leaf(entries, 0xB, p, false);
    if (max_basic >= 0x1F)
        set_topology_leaf(entries, 0x1F, p, true);

    // AMD's topology leaves: threads per package and the APIC-id width of a core, and the extended APIC id.
    // (Copy the maximum leaf out: upsert() may reallocate and invalidate pointers into `entries`.)
    uint32_t max_extended = 0;
    if (auto const* ext = find_cpuid(entries, 0x80000000))
        max_extended = ext->eax;
    if (max_extended >= 0x80000008) {
        auto& leaf = upsert(entries, 0x80000008, 0, 0);
        leaf.ecx = (leaf.ecx & ~0xF0FFu) | (package_offset(t) << 12) | ((t.threads_per_socket() - 1) & 0xFF);
    }
    if (max_extended >= 0x8000001E) {
        auto& ids = upsert(entries, 0x8000001E, 0, 0);
        uint32_t socket = p.apic_id >> package_offset(t);
        uint32_t core = (p.apic_id >> core_offset(t)) & ((1u << id_width(t.cores)) - 1);
        ids.eax = p.apic_id;
        ids.ebx = ((t.threads - 1) << 8) | (core & 0xFF);
        ids.ecx = socket & 0xFF;
        ids.edx = 0;
    }

    // KVM's hypervisor leaves, so guests (and Linux's MADT rules) know they run on KVM; 0x40000010 holds
    // the TSC and LAPIC-timer frequencies (the VMware convention Linux and our guest read).
    auto& hv = upsert(entries, 0x40000000, 0, 0);
    hv.ebx = KVM_SIGNATURE_EBX;
    hv.ecx = KVM_SIGNATURE_ECX;
    hv.edx = KVM_SIGNATURE_EDX;
    hv.eax = std::max<uint32_t>(hv.eax, 0x40000001);
    if (p.tsc_khz != 0) {
        hv.eax = std::max<uint32_t>(hv.eax, 0x40000010);
        auto& freq = upsert(entries, 0x40000010, 0, 0);
        freq.eax = p.tsc_khz;
        freq.ebx = LAPIC_TIMER_KHZ;
        freq.ecx = freq.edx = 0;
    }

    remove_leaf(entries, status_port::CPUID_LEAF);
    remove_leaf(entries, status_port::CPUID_MMIO_LEAF);
    if (p.status_port != 0 && p.status_mmio != 0) {
        auto& leaf = upsert(entries, status_port::CPUID_MMIO_LEAF, 0, 0);
        leaf.eax = static_cast<uint32_t>(p.status_mmio);
        leaf.ebx = static_cast<uint32_t>(p.status_mmio >> 32);
        leaf.ecx = leaf.edx = 0;
    }
    if (p.status_port != 0) {
        auto& leaf = upsert(entries, status_port::CPUID_LEAF, 0, 0);
        leaf.eax = p.status_port;
        leaf.ebx = status_port::SIGNATURE_EBX;
        leaf.ecx = status_port::SIGNATURE_ECX;
        leaf.edx = status_port::SIGNATURE_EDX;
    }
    return entries;
}

} // namespace vmm
