// The benchmark's parsing and statistics, and its Linux mode's reading of the console, without KVM.
#define CATCH_CONFIG_MAIN
#include "bench_stats.hpp"
#include "linux_log.hpp"

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

TEST_CASE("Linux's SMP bring-up is read from its dated log lines", "[bench][linux]")
{
    std::string console = "[    0.000000] Linux version 6.1.0-57-amd64\r\n"
                          "[    0.412345] smp: Bringing up secondary CPUs ...\r\n"
                          "[    0.412400] x86: Booting SMP configuration:\r\n"
                          "[    0.412500] .... node  #0, CPUs:      #1\r\n"
                          "[    0.533456] smp: Brought up 1 node, 2 CPUs\r\n"
                          "[    0.533500] smpboot: Max logical packages: 4\r\n";
    auto smp = parse_linux_smp(console);
    REQUIRE(smp);
    CHECK(smp->start_s == Approx(0.412345));
    CHECK(smp->end_s == Approx(0.533456));
    CHECK(smp->ms() == Approx(121.111));
    CHECK(smp->cpus == 2);

    auto numa = parse_linux_smp("[ 1.5] smp: Bringing up secondary CPUs ...\n[ 2.25] smp: Brought up 2 nodes, 8 CPUs\n");
    REQUIRE(numa);
    CHECK(numa->cpus == 8);
    CHECK(numa->ms() == Approx(750));

    // With `quiet`, init's copies from dmesg.
    auto quiet = parse_linux_smp("cpuplug-linux: init online=0-1 possible=0-3 uptime=14.22\r\n"
                                 "cpuplug-linux: log [    6.930468] smp: Bringing up secondary CPUs ...\r\n"
                                 "cpuplug-linux: log [    7.023531] smp: Brought up 1 node, 2 CPUs\r\n");
    REQUIRE(quiet);
    CHECK(quiet->ms() == Approx(93.063));
    CHECK(quiet->cpus == 2);

    // Undated lines (printk.time=0), a missing end, a line not yet complete: nothing to read.
    CHECK_FALSE(parse_linux_smp("smp: Bringing up secondary CPUs ...\nsmp: Brought up 1 node, 2 CPUs\n"));
    CHECK_FALSE(parse_linux_smp("[    0.4] smp: Bringing up secondary CPUs ...\n"));
    CHECK_FALSE(parse_linux_smp("[    0.4] smp: Bringing up secondary CPUs ...\n[    0.5] smp: Brought up 1 node, 2 CPUs"));
}

TEST_CASE("tests/linux/init's lines are read", "[bench][linux]")
{
    auto line = console_line("noise\r\ncpuplug-linux: init online=0-1 possible=0-3 uptime=12.34\r\nmore", "init online=");
    REQUIRE(line);
    CHECK(*line == "cpuplug-linux: init online=0-1 possible=0-3 uptime=12.34");
    auto init = parse_init_line(*line);
    REQUIRE(init);
    CHECK(init->online == "0-1");
    CHECK(init->uptime_s == Approx(12.34));
    CHECK_FALSE(parse_init_line("cpuplug-linux: init online=0-1"));
    CHECK_FALSE(console_line("cpuplug-linux: init online=0-1 possi", "init online=")); // not complete yet

    // console_line starts looking at `from`: an earlier cpu-added line is not the next one's.
    std::string console = "cpuplug-linux: cpu-added 2 online=1\ncpuplug-linux: cpu-added 3 online=0\n";
    auto second = console_line(console, "cpu-added ", console.find('\n'));
    REQUIRE(second);
    auto added = parse_cpu_added(*second);
    REQUIRE(added);
    CHECK(added->cpu == 3);
    CHECK_FALSE(added->online);
    added = parse_cpu_added(*console_line(console, "cpu-added "));
    REQUIRE(added);
    CHECK(added->cpu == 2);
    CHECK(added->online);
    CHECK_FALSE(parse_cpu_added("cpuplug-linux: cpu-removed 2"));

    CHECK(kernel_timestamp("[   10.000500] x") == Approx(10.0005));
    CHECK_FALSE(kernel_timestamp("smp: no time"));
}
