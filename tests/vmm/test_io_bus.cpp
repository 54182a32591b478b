#include "devices/io_bus.hpp"

#include "recording_device.hpp"

#include <catch2/catch.hpp>

using namespace vmm;
using test_support::RecordingDevice;

TEST_CASE("overlapping, empty and wrapping ranges are refused", "[io_bus]")
{
    IoBus bus("test");
    auto device = std::make_shared<RecordingDevice>();
    REQUIRE(bus.insert({ 0x3F8, 8 }, device).has_value());
    CHECK(bus.insert({ 0x3F8, 8 }, device).error() == BusError::Overlap);
    CHECK(bus.insert({ 0x3F0, 9 }, device).error() == BusError::Overlap);
    CHECK(bus.insert({ 0x3FF, 1 }, device).error() == BusError::Overlap);
    CHECK(bus.insert({ 0x400, 0 }, device).error() == BusError::EmptyRange);
    CHECK(bus.insert({ ~0ull - 1, 4 }, device).error() == BusError::Overflow);
    CHECK(bus.insert({ 0x400, 1 }, nullptr).error() == BusError::EmptyRange);
    CHECK(bus.insert({ 0x3F0, 8 }, device).has_value()); // adjacent below
    CHECK(bus.insert({ 0x400, 8 }, device).has_value()); // adjacent above
}

TEST_CASE("devices see offsets into their own range", "[io_bus]")
{
    IoBus bus("test");
    auto low = std::make_shared<RecordingDevice>();
    auto high = std::make_shared<RecordingDevice>();
    REQUIRE(bus.insert({ 0x600, 0x30 }, high).has_value());
    REQUIRE(bus.insert({ 0x3F8, 8 }, low).has_value());
    uint8_t byte = 0x41;
    CHECK(bus.write(0x3F8, { &byte, 1 }));
    uint8_t word[2] = { 0, 0 };
    CHECK(bus.read(0x604, word));
    REQUIRE(low->accesses.size() == 1);
    CHECK(low->accesses[0].write);
    CHECK(low->accesses[0].offset == 0);
    CHECK(low->accesses[0].data == std::vector<uint8_t> { 0x41 });
    REQUIRE(high->accesses.size() == 1);
    CHECK(high->accesses[0].offset == 4);
    CHECK(word[0] == 0x5A);
}

TEST_CASE("unclaimed reads return all ones and are counted", "[io_bus]")
{
    IoBus bus("test");
    auto device = std::make_shared<RecordingDevice>();
    REQUIRE(bus.insert({ 0x100, 4 }, device).has_value());
    uint8_t data[4] = { 0, 0, 0, 0 };
    CHECK_FALSE(bus.read(0x80, data));
    CHECK(data[0] == 0xFF);
    CHECK(data[3] == 0xFF);
    // An access that starts inside a device but runs past its end belongs to nobody.
    CHECK_FALSE(bus.read(0x102, data));
    CHECK(device->accesses.empty());
    uint8_t byte = 1;
    CHECK_FALSE(bus.write(0x104, { &byte, 1 }));
    CHECK(bus.unclaimed_accesses() == 3);
}
