#include "arch/x86_64/cpuid.hpp"

#include <guest/abi/status_port.hpp>

#include <catch2/catch.hpp>

#include <vector>

using namespace vmm;

namespace {

// A few leaves shaped like KVM_GET_SUPPORTED_CPUID's output on this host.
std::vector<kvm_cpuid_entry2> supported()
{
    std::vector<kvm_cpuid_entry2> entries;
    auto add = [&](uint32_t function, uint32_t index, uint32_t flags, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
        kvm_cpuid_entry2 e {};
        e.function = function;
        e.index = index;
        e.flags = flags;
        e.eax = a;
        e.ebx = b;
        e.ecx = c;
        e.edx = d;
        entries.push_back(e);
    };
    add(0, 0, 0, 0x1C, 0x68747541, 0x444d4163, 0x69746e65);
    add(1, 0, 0, 0x00a10f11, 0x07020800, 0x01202000, 0x178bfbff);
    add(0xB, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 0, 0, 0, 7);
    add(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
    add(0x80000000, 0, 0, 0x80000021, 0, 0, 0);
    add(0x80000008, 0, 0, 0x3030, 0, 0x00007007, 0);
    add(0x8000001E, 0, 0, 7, 0x100, 0, 0);
    return entries;
}

} // namespace

TEST_CASE("leaf 1 carries the APIC id, x2APIC and the hypervisor bit", "[cpuid]")
{
    CpuidParams params;
    params.apic_id = 13;
    params.topology = { 2, 1, 3, 2 };
    auto entries = build_cpuid(supported(), params);
    auto const* leaf1 = find_cpuid(entries, 1);
    REQUIRE(leaf1);
    CHECK((leaf1->ebx >> 24) == 13);
    CHECK(((leaf1->ebx >> 16) & 0xFF) == 8); // 1 << package offset (3)
    CHECK((leaf1->ebx & 0xFFFF) == 0x0800);  // CLFLUSH size kept
    CHECK((leaf1->ecx & (1u << 21)) != 0);
    CHECK((leaf1->ecx & (1u << 31)) != 0);
    CHECK((leaf1->edx & (1u << 28)) != 0); // HTT: 6 threads per package
}

TEST_CASE("the TSC-deadline bit is offered only when asked for", "[cpuid]")
{
    CpuidParams params;
    params.tsc_deadline = true;
    CHECK((find_cpuid(build_cpuid(supported(), params), 1)->ecx & (1u << 24)) != 0);
    params.tsc_deadline = false;
    // Cleared even if the supported set had it: on nested PVM the timer never fires.
    auto with_bit = supported();
    with_bit[1].ecx |= 1u << 24;
    CHECK((find_cpuid(build_cpuid(with_bit, params), 1)->ecx & (1u << 24)) == 0);
}

TEST_CASE("a single-thread package clears HTT", "[cpuid]")
{
    auto entries = build_cpuid(supported(), {});
    CHECK((find_cpuid(entries, 1)->edx & (1u << 28)) == 0);
}

TEST_CASE("leaf 0xB has an SMT and a core level with the x2APIC id in every subleaf", "[cpuid]")
{
    CpuidParams params;
    params.apic_id = 300;
    params.topology = { 2, 1, 3, 2 };
    auto entries = build_cpuid(supported(), params);
    auto const* smt = find_cpuid(entries, 0xB, 0);
    auto const* core = find_cpuid(entries, 0xB, 1);
    auto const* end = find_cpuid(entries, 0xB, 2);
    REQUIRE(smt);
    REQUIRE(core);
    REQUIRE(end);
    CHECK(smt->eax == 1);
    CHECK(smt->ebx == 2);
    CHECK(smt->ecx == 0x100);
    CHECK(core->eax == 3);
    CHECK(core->ebx == 6);
    CHECK(core->ecx == 0x201);
    CHECK(end->ecx == 2);
    for (auto const* e : { smt, core, end })
        CHECK(e->edx == 300);
    CHECK(find_cpuid(entries, 0xB, 3) == nullptr);
}

TEST_CASE("KVM's signature stays and the TSC frequency leaf is added", "[cpuid]")
{
    CpuidParams params;
    params.tsc_khz = 2596142;
    auto entries = build_cpuid(supported(), params);
    auto const* hv = find_cpuid(entries, 0x40000000);
    REQUIRE(hv);
    CHECK(hv->eax == 0x40000010);
    CHECK(hv->ebx == 0x4b4d564b);
    auto const* freq = find_cpuid(entries, 0x40000010);
    REQUIRE(freq);
    CHECK(freq->eax == 2596142);
    CHECK(freq->ebx == 1000000);
}

TEST_CASE("the status port leaf is present only when a port is given", "[cpuid]")
{
    CHECK(find_cpuid(build_cpuid(supported(), {}), status_port::CPUID_LEAF) == nullptr);
    CpuidParams params;
    params.status_port = 0x520;
    auto entries = build_cpuid(supported(), params);
    auto const* leaf = find_cpuid(entries, status_port::CPUID_LEAF);
    REQUIRE(leaf);
    CHECK(leaf->eax == 0x520);
    CHECK(leaf->ebx == status_port::SIGNATURE_EBX);
    CHECK(leaf->ecx == status_port::SIGNATURE_ECX);
    CHECK(leaf->edx == status_port::SIGNATURE_EDX);
}

TEST_CASE("AMD's topology leaves describe the package", "[cpuid]")
{
    CpuidParams params;
    params.apic_id = 13;
    params.topology = { 2, 1, 3, 2 };
    auto entries = build_cpuid(supported(), params);
    auto const* size = find_cpuid(entries, 0x80000008);
    REQUIRE(size);
    CHECK((size->ecx & 0xFF) == 5);          // 6 threads per package, minus one
    CHECK(((size->ecx >> 12) & 0xF) == 3);   // APIC id bits below the package
    auto const* ids = find_cpuid(entries, 0x8000001E);
    REQUIRE(ids);
    CHECK(ids->eax == 13);
    CHECK(((ids->ebx >> 8) & 0xFF) == 1);    // threads per core minus one
    CHECK(ids->ecx == 1);                    // socket 1
}
