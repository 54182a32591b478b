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

TEST_CASE("the GSI routing sends the PIT's GSI 0 to IOAPIC pin 2 and the rest one to one", "[kvm][irq]")
{
    auto table = pc_gsi_routing();
    auto routes = [&](uint32_t gsi) {
        std::vector<std::pair<uint32_t, uint32_t>> found; // (chip, pin)
        for (auto const& e : table)
            if (e.gsi == gsi) {
                CHECK(e.type == KVM_IRQ_ROUTING_IRQCHIP);
                found.emplace_back(e.u.irqchip.irqchip, e.u.irqchip.pin);
            }
        return found;
    };
    using Routes = std::vector<std::pair<uint32_t, uint32_t>>;
    CHECK(routes(0) == Routes { { KVM_IRQCHIP_PIC_MASTER, 0 }, { KVM_IRQCHIP_IOAPIC, 2 } });
    CHECK(routes(2).empty()); // the cascade; IOAPIC pin 2 belongs to GSI 0
    CHECK(routes(4) == Routes { { KVM_IRQCHIP_PIC_MASTER, 4 }, { KVM_IRQCHIP_IOAPIC, 4 } });   // COM1
    CHECK(routes(9) == Routes { { KVM_IRQCHIP_PIC_SLAVE, 1 }, { KVM_IRQCHIP_IOAPIC, 9 } });    // the SCI
    CHECK(routes(23) == Routes { { KVM_IRQCHIP_IOAPIC, 23 } });
    CHECK(routes(24).empty());
}
