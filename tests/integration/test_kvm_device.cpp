// The real KVM device: what the VMM asks of it at start-up. (The refusals of a missing or wrong device
// are test_vmm's; this needs KVM, so it runs where the other KVM tests do.)
#include "kvm/kvm.hpp"

#include <catch2/catch.hpp>

using namespace vmm;

TEST_CASE("the real KVM device passes every capability check", "[integration][kvm]")
{
    auto kvm = Kvm::open();
    REQUIRE(kvm.has_value());
    CHECK(kvm->limits().max_vcpus >= 1);
    CHECK(kvm->limits().max_vcpu_id >= kvm->limits().max_vcpus);
    auto cpuid = kvm->supported_cpuid();
    REQUIRE(cpuid.has_value());
    CHECK(cpuid->size() > 10);
}
