#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <unistd.h>
#include <sys/stat.h>
#include <utility>
#include <string>

using namespace std::chrono_literals;
using test_support::Process;
using test_support::run_process;

namespace {

std::string const VMM = CPUPLUG_VMM_BINARY;

int count_lines(std::string const& text)
{
    int lines = 0;
    for (char c : text)
        lines += c == '\n';
    return lines;
}

} // namespace

TEST_CASE("the embedded guest boots on one vCPU, prints its banner and powers off", "[integration][boot]")
{
    auto result = run_process({ VMM, "--cpus", "1", "--exit-after-boot" }, 20s);
    INFO(result.out << result.err);
    CHECK_FALSE(result.timed_out);
    CHECK(result.exit_code == 0);
    CHECK(result.out.find("cpuplug guest") != std::string::npos);
    CHECK(result.out.find("boot cpu apic id 0") != std::string::npos);
    CHECK(result.out.find("255 MiB RAM") != std::string::npos);
    CHECK(result.out.find("status port on") != std::string::npos);
    CHECK(result.err.empty());
}

TEST_CASE("the guest sees the memory size and the command line it is given", "[integration][boot]")
{
    auto result = run_process({ VMM, "--memory", "64M", "--cmdline", "hello=world", "--exit-after-boot" }, 20s);
    INFO(result.out << result.err);
    CHECK(result.exit_code == 0);
    CHECK(result.out.find("63 MiB RAM") != std::string::npos);
    CHECK(result.out.find("exit_after_boot hello=world\"") != std::string::npos);
}

TEST_CASE("the guest's kernel runs at the privilege level --guest-cpl asks for, and auto is CPL3 only on nested PVM", "[integration][boot]")
{
    for (auto [cpl, banner] : { std::pair { "0", "kernel at CPL0" }, std::pair { "3", "kernel at CPL3" } }) {
        auto result = run_process({ VMM, "--cpus", "4", "--guest-cpl", cpl, "--exit-after-boot" }, 30s);
        INFO(result.out << result.err);
        CHECK(result.exit_code == 0);
        CHECK(result.out.find(banner) != std::string::npos);
        CHECK(result.out.find(std::string("kernel.cpl=") + cpl) != std::string::npos);
        CHECK(result.out.find("smp: 4 of 4 CPUs online") != std::string::npos);
    }
    // A user's --cmdline comes last and wins, as for every other guest parameter.
    auto overridden = run_process({ VMM, "--guest-cpl", "0", "--cmdline", "kernel.cpl=3", "--exit-after-boot" }, 20s);
    CHECK(overridden.out.find("kernel at CPL3") != std::string::npos);

    auto loaded = [](std::string const& module) {
        struct stat info {};
        return ::stat(("/sys/module/" + module).c_str(), &info) == 0;
    };
    bool pvm = loaded("kvm_pvm") && !loaded("kvm_intel") && !loaded("kvm_amd");
    auto automatic = run_process({ VMM, "--guest-cpl", "auto", "--exit-after-boot" }, 20s);
    INFO(automatic.out << automatic.err);
    CHECK(automatic.exit_code == 0);
    CHECK(automatic.out.find(pvm ? "kernel at CPL3" : "kernel at CPL0") != std::string::npos);
}

TEST_CASE("an explicit --kernel boots the same guest from a file", "[integration][boot]")
{
    auto result = run_process({ VMM, "--kernel", CPUPLUG_GUEST_ELF, "--exit-after-boot" }, 20s);
    INFO(result.out << result.err);
    CHECK(result.exit_code == 0);
    CHECK(result.out.find("cpuplug guest") != std::string::npos);
}

TEST_CASE("bad command lines and kernels exit non-zero with one clear line", "[integration][boot]")
{
    struct Case {
        std::vector<std::string> args;
        int exit_code;
        char const* says;
    };
    for (auto const& c : std::vector<Case> {
             { { "--kernel", "/etc/passwd" }, 1, "neither a Linux bzImage" },
             { { "--cpus", "0" }, 2, "must be greater than zero" },
             { { "--memory", "1K" }, 2, "too small" },
             { { "--kernel", "/nonexistent" }, 2, "does not exist" },
         }) {
        std::vector<std::string> argv { VMM };
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        auto result = run_process(argv, 20s);
        INFO(c.args[0] << " " << c.args[1] << ": " << result.err);
        CHECK(result.exit_code == c.exit_code);
        CHECK(result.signal == 0);
        CHECK(count_lines(result.err) == 1);
        CHECK(result.err.find(c.says) != std::string::npos);
        CHECK(result.out.empty());
    }
}

TEST_CASE("a Linux kernel with APIC ids above 254 is refused before the VM starts", "[integration][boot]")
{
    // Only the setup header's magic matters here: the topology is checked as soon as the file reads as Linux.
    std::string path = "/tmp/cpuplug-test-bzimage." + std::to_string(getpid());
    {
        std::string bytes(0x400, '\0');
        bytes.replace(0x202, 4, "HdrS");
        std::ofstream(path, std::ios::binary) << bytes;
    }
    auto result = run_process({ VMM, "--kernel", path, "--cpus", "2,maxcpus=300" }, 20s);
    std::remove(path.c_str());
    INFO(result.err);
    CHECK(result.exit_code == 1);
    CHECK(count_lines(result.err) == 1);
    CHECK(result.err.find("CPU slot 255 of 300 would get APIC id 255") != std::string::npos);
    CHECK(result.out.empty());
}

TEST_CASE("a guest exception is reported with its vector and RIP and vmm exits non-zero", "[integration][boot]")
{
    for (char const* fault : { "ud", "pf", "gp", "de" }) {
        auto result = run_process({ VMM, "--cmdline", std::string("fault=") + fault }, 20s);
        INFO(fault << ": " << result.out << result.err);
        CHECK_FALSE(result.timed_out);
        CHECK(result.exit_code == 3);
        CHECK(result.out.find("guest: exception") != std::string::npos);
        CHECK(result.out.find("at rip 0x") != std::string::npos);
        CHECK(result.err.find("failure status 3") != std::string::npos);
    }
    auto panic = run_process({ VMM, "--cmdline", "fault=panic" }, 20s);
    CHECK(panic.exit_code == 3);
    CHECK(panic.out.find("guest: panic: requested by fault=panic") != std::string::npos);
}

TEST_CASE("SIGTERM and SIGINT stop a running VM cleanly", "[integration][boot]")
{
    for (int sig : { SIGTERM, SIGINT }) {
        Process vmm({ VMM, "--log-level", "info" });
        REQUIRE(vmm.wait_for_output("cpuplug guest", 20s));
        vmm.signal(sig);
        auto result = vmm.wait(10s);
        INFO(result.err);
        CHECK_FALSE(result.timed_out);
        CHECK(result.exit_code == 0);
        CHECK(result.err.find("terminating on signal") != std::string::npos);
    }
}

TEST_CASE("serial output can go to a file or nowhere", "[integration][boot]")
{
    std::string path = "/tmp/cpuplug-serial-test-" + std::to_string(getpid()) + ".log";
    auto result = run_process({ VMM, "--serial", "file:" + path, "--exit-after-boot" }, 20s);
    CHECK(result.exit_code == 0);
    CHECK(result.out.empty());
    FILE* f = std::fopen(path.c_str(), "r");
    REQUIRE(f);
    char buffer[512] {};
    size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, f);
    std::fclose(f);
    std::remove(path.c_str());
    CHECK(std::string(buffer, n).find("cpuplug guest") != std::string::npos);

    auto silent = run_process({ VMM, "--serial", "none", "--exit-after-boot" }, 20s);
    CHECK(silent.exit_code == 0);
    CHECK(silent.out.empty());
}
