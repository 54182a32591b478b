#include "support/boot_report.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <set>
#include <string>

using namespace std::chrono_literals;
using test_support::BootedVm;
using test_support::boot;

TEST_CASE("every vCPU comes online, in parallel and in serial bring-up", "[integration][smp]")
{
    for (int cpus : { 1, 2, 8, 64 }) {
        for (char const* mode : { "parallel", "serial" }) {
            auto vm = boot({ "--cpus", std::to_string(cpus), "--bringup", mode, "--init-delay-us", "0" });
            INFO(cpus << " " << mode << ": " << vm.process.err);
            REQUIRE(vm.process.exit_code == 0);
            CHECK(vm.report["vcpus"] == cpus);
            CHECK(vm.report["online"] == cpus);
            CHECK(vm.report["bringup"] == mode);
            CHECK(vm.report["boot"] == "done");
            CHECK(vm.report["cpus"].size() == static_cast<size_t>(cpus));
            for (auto const& cpu : vm.report["cpus"])
                CHECK(cpu["online"] == true);
            CHECK(vm.process.out.find("smp: " + std::to_string(cpus) + " of " + std::to_string(cpus) + " CPUs online ("
                      + mode)
                != std::string::npos);
        }
    }
}

TEST_CASE("without x2APIC the guest drives the xAPIC by MMIO and skips CPUs it cannot reach", "[integration][smp]")
{
    for (char const* mode : { "parallel", "serial" }) {
        auto vm = boot({ "--cpus", "8", "--bringup", mode, "--init-delay-us", "0", "--cmdline", "nox2apic" });
        INFO(vm.process.out);
        REQUIRE(vm.process.exit_code == 0);
        CHECK(vm.process.out.find("(xAPIC)") != std::string::npos);
        CHECK(vm.report["online"] == 8);
    }
    auto large = boot({ "--cpus", "258", "--init-delay-us", "0", "--cmdline", "nox2apic" }, 240s);
    REQUIRE(large.process.exit_code == 0);
    CHECK(large.process.out.find("xAPIC mode reaches APIC ids below 255 only: using 255 of 258 CPUs") != std::string::npos);
    CHECK(large.report["online"] == 255);
    CHECK(large.report["cpus"][257]["online"] == false);
}

TEST_CASE("the TSC frequency from the PM timer matches the one from CPUID", "[integration][smp]")
{
    auto mhz = [](std::string const& out) {
        auto at = out.find("TSC ");
        REQUIRE(at != std::string::npos);
        return std::stoi(out.substr(at + 4));
    };
    auto cpuid = boot({ "--cpus", "2" });
    auto calibrated = boot({ "--cpus", "2", "--cmdline", "clock.calibrate=1" });
    REQUIRE(calibrated.process.exit_code == 0);
    CHECK(cpuid.process.out.find("MHz (cpuid)") != std::string::npos);
    CHECK(calibrated.process.out.find("MHz (calibrated)") != std::string::npos);
    // Within 5 %: a wrong unit, a PM-timer wrap, a lost tick, or a PM-timer read whose exit was preempted
    // and not retried is off by far more (1071 MHz against 2099 was seen before reads were bracketed).
    CHECK(std::abs(mhz(calibrated.process.out) - mhz(cpuid.process.out)) <= mhz(cpuid.process.out) / 20);
    CHECK(calibrated.report["online"] == 2);
}

TEST_CASE("300 vCPUs come online, with APIC ids past 254 through x2APIC", "[integration][smp][large]")
{
    for (char const* mode : { "parallel", "serial" }) {
        auto vm = boot({ "--cpus", "300", "--bringup", mode, "--init-delay-us", "0" }, 240s);
        INFO(mode << ": " << vm.process.err);
        REQUIRE(vm.process.exit_code == 0);
        CHECK(vm.report["online"] == 300);
        CHECK(vm.report["cpus"][299]["apic_id"] == 299);
        CHECK(vm.report["cpus"][299]["online"] == true);
    }
}

TEST_CASE("a sparse topology boots with the APIC ids QEMU would give", "[integration][smp]")
{
    auto vm = boot({ "--cpus", "12,sockets=2,cores=3,threads=2", "--init-delay-us", "0" });
    REQUIRE(vm.process.exit_code == 0);
    CHECK(vm.report["online"] == 12);
    std::vector<int> ids;
    for (auto const& cpu : vm.report["cpus"])
        ids.push_back(cpu["apic_id"]);
    CHECK(ids == std::vector<int> { 0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13 });
}

TEST_CASE("the report times every CPU's kick, alive and online in order", "[integration][smp]")
{
    auto vm = boot({ "--cpus", "4", "--init-delay-us", "0" });
    REQUIRE(vm.process.exit_code == 0);
    auto const& cpus = vm.report["cpus"];
    CHECK(cpus[0]["kick_ms"].is_null()); // the boot CPU is not kicked
    for (size_t i = 1; i < cpus.size(); ++i) {
        double kick = cpus[i]["kick_ms"], alive = cpus[i]["alive_ms"], online = cpus[i]["online_ms"];
        CHECK(kick <= alive);
        CHECK(alive <= online);
        CHECK(online <= double(vm.report["total_ms"]));
    }
    auto const& phases = vm.report["phases_ms"];
    for (char const* phase : { "vmm_setup", "vcpu_create", "guest_start_to_first_kick", "ap_bringup" })
        CHECK(double(phases[phase]) > 0);
    CHECK(double(phases["vcpu_create"]) < double(phases["vmm_setup"]));
}

TEST_CASE("the INIT delay is honoured", "[integration][smp]")
{
    auto vm = boot({ "--cpus", "3", "--bringup", "serial", "--init-delay-us", "10000" });
    REQUIRE(vm.process.exit_code == 0);
    CHECK(vm.report["init_delay_us"] == 10000);
    CHECK(double(vm.report["phases_ms"]["ap_bringup"]) >= 20.0); // two kicks, each waiting 10 ms after INIT

    // Parallel: the INITs go out together and the STARTUPs follow one delay later, still 10 ms after
    // each CPU's INIT. The kick step ends after the STARTUPs, so no AP is kicked before the delay.
    vm = boot({ "--cpus", "8", "--bringup", "parallel", "--init-delay-us", "10000" });
    REQUIRE(vm.process.exit_code == 0);
    CHECK(vm.report["online"] == 8);
    double first_kick = vm.report["cpus"][1]["kick_ms"];
    for (size_t i = 2; i < 8; ++i)
        CHECK(double(vm.report["cpus"][i]["kick_ms"]) >= first_kick);
    CHECK(double(vm.report["phases_ms"]["ap_bringup"]) >= 10.0);
}

TEST_CASE("a CPU that got its INIT with the batch but failed before its kick stays offline", "[integration][smp][rollback]")
{
    // 1 is percpu:prepare, a boot-CPU step before the kick: CPU 3 received the batch's INIT, is never
    // sent its STARTUPs, and the others come online.
    auto vm = boot({ "--cpus", "4", "--bringup", "parallel", "--init-delay-us", "10000", "--cmdline", "cpuhp.fail=3:1" });
    INFO(vm.process.out);
    REQUIRE(vm.process.exit_code == 0);
    CHECK(vm.report["online"] == 3);
    CHECK(vm.report["cpus"][3]["online"] == false);
    CHECK(vm.report["cpus"][3]["failed_step"] == 1);
    CHECK(vm.report["cpus"][3]["alive_ms"].is_null());
}

TEST_CASE("a failing step rolls its CPU back to offline while the others come online", "[integration][smp][rollback]")
{
    for (char const* mode : { "parallel", "serial" }) {
        // 18 is the first ONLINE dynamic slot, which cpuhp.test_states fills: the rollback runs through
        // the AP's takedown. 1 is percpu:prepare, on the boot CPU.
        for (char const* fail : { "2:18", "3:1", "1:11" }) {
            auto vm = boot({ "--cpus", "4", "--bringup", mode, "--init-delay-us", "0", "--cmdline",
                std::string("cpuhp.test_states=1 cpuhp.fail=") + fail });
            INFO(mode << " " << fail << ": " << vm.process.out);
            REQUIRE(vm.process.exit_code == 0);
            uint32_t cpu = std::stoul(std::string(fail).substr(0, 1));
            int step = std::stoi(std::string(fail).substr(2));
            CHECK(vm.report["online"] == 3);
            CHECK(vm.report["cpus"][cpu]["online"] == false);
            CHECK(vm.report["cpus"][cpu]["failed_step"] == step);
            CHECK(vm.report["cpus"][cpu]["state"] == 0);
            for (uint32_t other = 0; other < 4; ++other)
                if (other != cpu)
                    CHECK(vm.report["cpus"][other]["online"] == true);
            CHECK(vm.process.out.find("cpuhp: cpu " + std::to_string(cpu) + ": step " + std::to_string(step))
                != std::string::npos);
            CHECK(vm.process.out.find("failed (EAGAIN), rolled back") != std::string::npos);
        }
    }
}

TEST_CASE("a wake-up IPI the hypervisor loses delays an AP instead of stranding it for ever", "[integration][smp]")
{
    // smp.lose_wakeups=N drops one in N of the wake-ups sent to APs, the first included: releases at the
    // sync point and the work the core hands them. Each AP must find the news at its next recheck.
    for (char const* mode : { "parallel", "serial" }) {
        auto vm = boot({ "--cpus", "4", "--bringup", mode, "--init-delay-us", "0", "--cmdline", "smp.lose_wakeups=2" });
        INFO(mode << ": " << vm.process.out << vm.process.err);
        REQUIRE(vm.process.exit_code == 0);
        CHECK(vm.report["online"] == 4);
        for (auto const& cpu : vm.report["cpus"]) {
            CHECK(cpu["online"] == true);
            CHECK(!cpu.contains("failed_step"));
        }
        CHECK(vm.process.out.find("smp: fault injection: one in 2 wake-up IPIs to APs is dropped") != std::string::npos);
        CHECK(vm.process.out.find("did not finish starting") == std::string::npos);
    }
}

TEST_CASE("an exception on an SMP guest is reported and vmm exits non-zero", "[integration][smp]")
{
    auto vm = boot({ "--cpus", "4", "--cmdline", "fault=gp" });
    CHECK(vm.process.exit_code == 3);
    CHECK(vm.process.out.find("guest: exception 13") != std::string::npos);
    CHECK(vm.report["boot"] == "failed");
}

TEST_CASE("topologies KVM cannot host are refused before anything runs", "[integration][smp]")
{
    auto too_many = test_support::run_process({ CPUPLUG_VMM_BINARY, "--cpus", "1025" }, 20s);
    CHECK(too_many.exit_code == 2);
    CHECK(too_many.err.find("The max CPUs supported by machine 'cpuplug' is 1024") != std::string::npos);
    auto bad = test_support::run_process({ CPUPLUG_VMM_BINARY, "--cpus", "8,sockets=3" }, 20s);
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("product of the hierarchy must match maxcpus") != std::string::npos);
}
