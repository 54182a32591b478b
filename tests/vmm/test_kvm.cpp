#include "kvm/kvm.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

using namespace vmm;

TEST_CASE("a missing KVM device is one sentence that says what to do", "[kvm]")
{
    auto kvm = Kvm::open("/nonexistent/kvm");
    REQUIRE_FALSE(kvm.has_value());
    CHECK(kvm.error().find("does not exist") != std::string::npos);
    CHECK(kvm.error().find("modprobe") != std::string::npos);
    CHECK(kvm.error().find('\n') == std::string::npos);
}

TEST_CASE("a file that is not a KVM device is named as such", "[kvm]")
{
    auto kvm = Kvm::open("/dev/null");
    REQUIRE_FALSE(kvm.has_value());
    CHECK(kvm.error().find("is not a KVM device") != std::string::npos);
}

TEST_CASE("the real KVM device passes every capability check", "[kvm]")
{
    if (access("/dev/kvm", R_OK | W_OK) != 0)
        return; // nothing to check on a host without KVM
    auto kvm = Kvm::open();
    REQUIRE(kvm.has_value());
    CHECK(kvm->limits().max_vcpus >= 1);
    CHECK(kvm->limits().max_vcpu_id >= kvm->limits().max_vcpus);
    auto cpuid = kvm->supported_cpuid();
    REQUIRE(cpuid.has_value());
    CHECK(cpuid->size() > 10);
}
