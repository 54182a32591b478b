#include "memory/guest_memory.hpp"

#include "arch/x86_64/layout.hpp"

#include <catch2/catch.hpp>

using namespace vmm;

TEST_CASE("RAM below 3 GiB is one region at address 0", "[memory]")
{
    auto memory = GuestMemory::create(64 * layout::MiB);
    REQUIRE(memory.has_value());
    REQUIRE(memory->regions().size() == 1);
    CHECK(memory->regions()[0].guest_address == 0);
    CHECK(memory->regions()[0].size == 64 * layout::MiB);
}

TEST_CASE("RAM beyond 3 GiB continues at 4 GiB, around the MMIO hole", "[memory]")
{
    auto memory = GuestMemory::create(4 * layout::GiB);
    REQUIRE(memory.has_value());
    REQUIRE(memory->regions().size() == 2);
    CHECK(memory->regions()[1].guest_address == 4 * layout::GiB);
    CHECK(memory->regions()[1].size == 1 * layout::GiB);
    CHECK(memory->contains(4 * layout::GiB + 10, 100));
    CHECK_FALSE(memory->contains(3 * layout::GiB, 1)); // the hole
    CHECK_FALSE(memory->contains(3 * layout::GiB - 1, 2)); // straddles the hole's start
}

TEST_CASE("every access outside RAM is refused, including overflowing ones", "[memory]")
{
    auto memory = GuestMemory::create(16 * layout::MiB);
    REQUIRE(memory.has_value());
    CHECK(memory->slice(0, 16 * layout::MiB).has_value());
    CHECK_FALSE(memory->slice(0, 16 * layout::MiB + 1).has_value());
    CHECK_FALSE(memory->slice(16 * layout::MiB, 1).has_value());
    CHECK(memory->slice(16 * layout::MiB, 0).has_value()); // empty range at the end is fine
    CHECK_FALSE(memory->slice(~0ull, 2).has_value());
    CHECK_FALSE(memory->slice(8, ~0ull).has_value());
    auto error = memory->slice(32 * layout::MiB, 4).error();
    CHECK(error.message().find("outside guest RAM") != std::string::npos);
}

TEST_CASE("objects written are read back", "[memory]")
{
    auto memory = GuestMemory::create(16 * layout::MiB);
    REQUIRE(memory.has_value());
    REQUIRE(memory->write_object<uint64_t>(0x1000, 0x1122334455667788ull).has_value());
    CHECK(memory->read_object<uint64_t>(0x1000).value() == 0x1122334455667788ull);
    CHECK(memory->read_object<uint32_t>(0x1004).value() == 0x11223344u);
    CHECK_FALSE(memory->write_object<uint64_t>(16 * layout::MiB - 4, 0).has_value());
}
