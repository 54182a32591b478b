#include <acpi/checksum.hpp>

#include <catch2/catch.hpp>

#include <vector>

TEST_CASE("a table with its checksum byte updated sums to zero", "[acpi][checksum]")
{
    std::vector<uint8_t> table = { 'F', 'A', 'C', 'S', 0x40, 0, 0, 0, 1, 0xAA, 0x10, 0x20 };
    acpi::update_checksum(table, 9);
    CHECK(acpi::sum(table) == 0);
    table[4] ^= 1;
    CHECK(acpi::sum(table) != 0);
    CHECK(acpi::checksum_for(table, 9) != table[9]);
}
