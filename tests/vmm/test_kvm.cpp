#include "kvm/kvm.hpp"

#include <catch2/catch.hpp>

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
