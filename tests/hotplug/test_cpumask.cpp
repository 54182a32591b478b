#include <cpuplug/cpumask.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using cpuplug::CpuMask;
using cpuplug::MAX_CPUS;

namespace {
std::string cpulist(CpuMask const& mask)
{
    char buffer[64];
    mask.format(buffer, sizeof(buffer));
    return buffer;
}
} // namespace

TEST_CASE("a mask sets, clears, counts and iterates across word boundaries", "[cpumask]")
{
    CpuMask mask;
    CHECK(mask.empty());
    CHECK(mask.first() == MAX_CPUS);
    for (uint32_t cpu : { 0u, 63u, 64u, 65u, 1023u })
        mask.set(cpu);
    CHECK(mask.count() == 5);
    CHECK(mask.test(64));
    CHECK_FALSE(mask.test(62));
    CHECK_FALSE(mask.test(MAX_CPUS + 5)); // out of range reads as clear
    CHECK(mask.next(1) == 63);
    CHECK(mask.next(66) == 1023);
    std::vector<uint32_t> seen;
    for (auto cpu : mask)
        seen.push_back(cpu);
    CHECK(seen == std::vector<uint32_t> { 0, 63, 64, 65, 1023 });
    mask.clear(64);
    CHECK(mask.count() == 4);
    mask.clear_all();
    CHECK(mask.empty());
}

TEST_CASE("masks print in Linux's cpulist format", "[cpumask]")
{
    CpuMask mask;
    CHECK(cpulist(mask).empty());
    for (uint32_t cpu : { 0u, 1u, 2u, 3u, 5u, 8u, 9u })
        mask.set(cpu);
    CHECK(cpulist(mask) == "0-3,5,8-9");
    mask.set(1023);
    CHECK(cpulist(mask) == "0-3,5,8-9,1023");
}

TEST_CASE("formatting into a short buffer truncates but reports the full length", "[cpumask]")
{
    CpuMask mask;
    for (uint32_t cpu = 0; cpu < 20; cpu += 2)
        mask.set(cpu);
    char small[8];
    size_t length = mask.format(small, sizeof(small));
    CHECK(length == std::string("0,2,4,6,8,10,12,14,16,18").size());
    CHECK(std::string(small) == "0,2,4,6");
}

TEST_CASE("a CPU mask ignores ids past MAX_CPUS", "[cpumask]")
{
    cpuplug::CpuMask mask;
    mask.set(cpuplug::MAX_CPUS);
    mask.set(0xFFFFFFFFu);
    CHECK(mask.empty());
    mask.set(3);
    mask.clear(cpuplug::MAX_CPUS + 64);
    CHECK(mask.count() == 1);
    CHECK_FALSE(mask.test(cpuplug::MAX_CPUS));
}
