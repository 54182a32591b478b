#include "arch/x86_64/topology.hpp"

#include <catch2/catch.hpp>

using namespace vmm;

TEST_CASE("APIC ids follow QEMU's layout, leaving holes", "[topology]")
{
    CpuTopology t { 2, 1, 3, 2 }; // docs/smp.md's example (QEMU's include/hw/i386/topology.h layout)
    STATIC_REQUIRE(id_width(1) == 0);
    STATIC_REQUIRE(id_width(3) == 2);
    STATIC_REQUIRE(id_width(4) == 2);
    STATIC_REQUIRE(id_width(5) == 3);
    CHECK(package_offset(t) == 3);
    CHECK(apic_id_from_ids(t, { 1, 0, 2, 1 }) == 13);
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < t.max_cpus(); ++i)
        ids.push_back(apic_id_from_index(t, i));
    CHECK(ids == std::vector<uint32_t> { 0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13 });
}

TEST_CASE("a flat topology has APIC id = index", "[topology]")
{
    CpuTopology t { 1, 1, 300, 1 };
    for (uint32_t i = 0; i < 300; ++i)
        CHECK(apic_id_from_index(t, i) == i);
}
