// The benchmark's parsing and statistics, without KVM.
#define CATCH_CONFIG_MAIN
#include "bench_stats.hpp"

#include <catch2/catch.hpp>

using namespace bench;

TEST_CASE("the guest's bring-up line is read on either VMM's console", "[bench]")
{
    std::string console = "cpuplug guest 0.2.0: boot cpu apic id 0 (x2APIC), 255 MiB RAM\r\n"
                          "smp: 255 of 255 CPUs online (parallel, cpu_init_udelay=0) in 208.040 ms\r\n";
    auto line = parse_smp_line(console);
    REQUIRE(line);
    CHECK(line->online == 255);
    CHECK(line->present == 255);
    CHECK(line->parallel);
    CHECK(line->init_udelay_us == 0);
    CHECK(line->bringup_ms == Approx(208.040));

    line = parse_smp_line("smp: 7 of 8 CPUs online (serial, cpu_init_udelay=10000) in 91.5 ms\n");
    REQUIRE(line);
    CHECK(line->online == 7);
    CHECK(line->present == 8);
    CHECK_FALSE(line->parallel);
    CHECK(line->init_udelay_us == 10000);
}

TEST_CASE("a partial or foreign bring-up line is not read", "[bench]")
{
    CHECK_FALSE(parse_smp_line(""));
    CHECK_FALSE(parse_smp_line("no smp here"));
    CHECK_FALSE(parse_smp_line("smp: 4 of 4 CPUs online (parallel, cpu_init_udelay=0) in 3.1")); // cut short
    CHECK_FALSE(parse_smp_line("smp: 4 of 4 CPUs online (sideways, cpu_init_udelay=0) in 3.1 ms"));
    CHECK_FALSE(parse_smp_line("smp: x of 4 CPUs online (parallel, cpu_init_udelay=0) in 3.1 ms"));
}

TEST_CASE("medians, minima and the table's cells", "[bench]")
{
    auto odd = stats_of({ 5, 1, 3 });
    CHECK(odd.count == 3);
    CHECK(odd.median == 3);
    CHECK(odd.min == 1);
    auto even = stats_of({ 4, 1, 3, 2 });
    CHECK(even.median == 2.5);
    CHECK(even.min == 1);
    auto none = stats_of({});
    CHECK(none.count == 0);
    CHECK(std::isnan(none.median));

    CHECK(cell(odd) == "3.0 (1.0)");
    CHECK(cell(stats_of({ 250, 120 })) == "185 (120)");
    CHECK(cell(none) == "-");
    CHECK(ratio(1, 4) == "0.25");
    CHECK(ratio(1, 0) == "-");
    CHECK(ratio(NAN, 2) == "-");
    CHECK(number(NAN) == "NaN");
    CHECK(number(1.5, 1) == "1.5");
}
