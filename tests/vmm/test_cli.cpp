#include "cli.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <initializer_list>
#include <vector>

using namespace vmm;

namespace {

cpuplug::Result<CliOptions, CliExit> parse(std::vector<char const*> const& args)
{
    std::vector<char const*> argv { "vmm" };
    argv.insert(argv.end(), args.begin(), args.end());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

int exit_code_of(std::vector<char const*> const& args)
{
    auto result = parse(args);
    return result.has_value() ? -1 : result.error().code;
}

} // namespace

TEST_CASE("no arguments boot the embedded guest on one vCPU with defaults", "[cli]")
{
    auto options = parse({});
    REQUIRE(options.has_value());
    CHECK(options->machine.smp.cpus == 1);
    CHECK(options->machine.memory_bytes == 256 * layout::MiB);
    CHECK_FALSE(options->machine.kernel_path.has_value());
    CHECK(options->machine.serial.kind == SerialConfig::Kind::Stdio);
    CHECK_FALSE(options->machine.exit_after_boot);
    CHECK(options->log_level == "warn");
}

TEST_CASE("every option is read", "[cli]")
{
    auto options = parse({ "--cpus", "1", "--memory", "1G", "--cmdline", "a=b c", "--serial", "file:/tmp/x.log",
        "--log-level", "debug", "--exit-after-boot", "--kernel", "/etc/passwd" });
    REQUIRE(options.has_value());
    CHECK(options->machine.memory_bytes == layout::GiB);
    CHECK(options->machine.cmdline == "a=b c");
    CHECK(options->machine.serial.kind == SerialConfig::Kind::File);
    CHECK(options->machine.serial.path == "/tmp/x.log");
    CHECK(options->log_level == "debug");
    CHECK(options->machine.exit_after_boot);
    CHECK(options->machine.kernel_path == "/etc/passwd");
}

TEST_CASE("bad values exit 2 with one line naming the option", "[cli]")
{
    // Vectors, not initializer_lists: a list's array would not outlive the full expression.
    for (auto const& args : std::vector<std::vector<char const*>> {
             { "--cpus", "0" }, { "--cpus", "x" }, { "--cpus", "-1" }, { "--memory", "1K" }, { "--memory", "lots" },
             { "--memory", "2T" }, { "--memory", "99999999999999999999" }, { "--serial", "tcp:1" },
             { "--serial", "file:" }, { "--kernel", "/nonexistent/kernel" }, { "--log-level", "loud" },
             { "--bogus" }, { "--initrd", "/etc/passwd" }, { "--kernel", "/etc/passwd", "--initrd", "/nonexistent" } }) {
        auto result = parse(args);
        REQUIRE_FALSE(result.has_value());
        CHECK(result.error().code == 2);
        CHECK(result.error().message.rfind("vmm: error: ", 0) == 0);
        CHECK(result.error().message.find('\n') == std::string::npos);
    }
    CHECK(parse({ "--cpus", "0" }).error().message.find("--cpus") != std::string::npos);
    CHECK(parse({ "--memory", "1K" }).error().message.find("too small") != std::string::npos);
    CHECK(parse({ "--initrd", "/etc/passwd" }).error().message.find("needs a Linux --kernel") != std::string::npos);
}

TEST_CASE("an initrd goes with a kernel", "[cli]")
{
    auto options = parse({ "--kernel", "/etc/passwd", "--initrd", "/etc/hostname", "--cmdline", "console=ttyS0" });
    REQUIRE(options.has_value());
    CHECK(options->machine.initrd_path == "/etc/hostname");
    CHECK(options->machine.cmdline == "console=ttyS0");
}

TEST_CASE("the --help and --version options exit 0", "[cli]")
{
    CHECK(exit_code_of({ "--help" }) == 0);
    CHECK(parse({ "--help" }).error().message.find("--exit-after-boot") != std::string::npos);
    CHECK(exit_code_of({ "--version" }) == 0);
}

TEST_CASE("memory sizes follow QEMU's units", "[cli]")
{
    CHECK(parse_memory_size("512") == 512 * layout::MiB);
    CHECK(parse_memory_size("512M") == 512 * layout::MiB);
    CHECK(parse_memory_size("2g") == 2 * layout::GiB);
    CHECK(parse_memory_size("64KiB") == 64 * layout::KiB);
    CHECK(parse_memory_size("4096B") == 4096);
    CHECK(parse_memory_size("1T") == 1024 * layout::GiB);
    CHECK_FALSE(parse_memory_size("").has_value());
    CHECK_FALSE(parse_memory_size("M").has_value());
    CHECK_FALSE(parse_memory_size("1.5G").has_value());
    CHECK_FALSE(parse_memory_size("99999999999999T").has_value());
}

TEST_CASE("a bare --cpus count with --hotplug leaves room for a second socket", "[cli]")
{
    auto bare = parse({ "--cpus", "4", "--hotplug" });
    REQUIRE(bare.has_value());
    CHECK(bare->machine.hotplug);
    CHECK(bare->machine.smp.cpus == 4);
    CHECK(bare->machine.smp.maxcpus == 8);
    CHECK(bare->machine.smp.topology.sockets == 2);
    CHECK(bare->machine.smp.topology.cores == 4);

    // A topology or maxcpus of the user's own is kept as given.
    auto given = parse({ "--cpus", "2,maxcpus=16,sockets=4,cores=2,threads=2", "--hotplug" });
    REQUIRE(given.has_value());
    CHECK(given->machine.smp.maxcpus == 16);
    CHECK(given->machine.smp.topology.sockets == 4);
    auto cores = parse({ "--cpus", "4,cores=4", "--hotplug" });
    REQUIRE(cores.has_value());
    CHECK(cores->machine.smp.maxcpus == 4);
    // No room to double: as many as the machine takes (before, 600 stayed 600: hot-plug with no slot).
    auto large = parse({ "--cpus", "600", "--hotplug" });
    REQUIRE(large.has_value());
    CHECK(large->machine.smp.maxcpus == 1024);
    CHECK(large->machine.smp.topology.sockets == 2);
    CHECK(large->machine.smp.cpus == 600);
    // No room at all: refused in one line.
    auto full = parse({ "--cpus", "1024", "--hotplug" });
    REQUIRE_FALSE(full.has_value());
    CHECK(full.error().code == 2);
    CHECK(full.error().message.find("leaves no CPU to plug") != std::string::npos);
    CHECK(full.error().message.find('\n') == std::string::npos);
    // Without --hotplug nothing changes.
    auto plain = parse({ "--cpus", "4" });
    REQUIRE(plain.has_value());
    CHECK_FALSE(plain->machine.hotplug);
    CHECK(plain->machine.smp.maxcpus == 4);
}

TEST_CASE("the --unplug-timeout-ms option takes a positive number of milliseconds", "[cli]")
{
    auto options = parse({ "--unplug-timeout-ms", "250" });
    REQUIRE(options.has_value());
    CHECK(options->machine.unplug_timeout == std::chrono::milliseconds(250));
    CHECK(parse({})->machine.unplug_timeout == std::chrono::milliseconds(5000));
    for (auto bad : { "0", "-1", "x", "", "99999999" })
        CHECK(exit_code_of({ "--unplug-timeout-ms", bad }) == 2);
}

TEST_CASE("the --guest-cpl option takes auto, 0 or 3, with CPUPLUG_GUEST_CPL as its default", "[cli]")
{
    ::unsetenv("CPUPLUG_GUEST_CPL");
    CHECK(parse({})->machine.guest_cpl == GuestCpl::Auto);
    CHECK(parse({ "--guest-cpl", "0" })->machine.guest_cpl == GuestCpl::Cpl0);
    CHECK(parse({ "--guest-cpl", "3" })->machine.guest_cpl == GuestCpl::Cpl3);
    CHECK(parse({ "--guest-cpl", "auto" })->machine.guest_cpl == GuestCpl::Auto);
    for (auto bad : { "1", "2", "cpl0", "", "00" }) {
        auto result = parse({ "--guest-cpl", bad });
        REQUIRE_FALSE(result.has_value());
        CHECK(result.error().code == 2);
        CHECK(result.error().message.find("--guest-cpl") != std::string::npos);
    }

    ::setenv("CPUPLUG_GUEST_CPL", "3", 1);
    CHECK(parse({})->machine.guest_cpl == GuestCpl::Cpl3);
    CHECK(parse({ "--guest-cpl", "0" })->machine.guest_cpl == GuestCpl::Cpl0); // the option wins
    ::setenv("CPUPLUG_GUEST_CPL", "kernel", 1);
    auto bad_default = parse({});
    REQUIRE_FALSE(bad_default.has_value());
    CHECK(bad_default.error().message.find("CPUPLUG_GUEST_CPL") != std::string::npos);
    ::unsetenv("CPUPLUG_GUEST_CPL");
}
