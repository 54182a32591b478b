// parse_command_line: CLI11 does the parsing; the checks that need a sentence of explanation are ours.
#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cctype>
#include <limits>

namespace vmm {

namespace {

constexpr char const* VERSION = CPUPLUG_VERSION;

CliExit usage_error(std::string message) { return { 2, fmt::format("vmm: error: {}", message) }; }

} // namespace

std::optional<uint64_t> parse_memory_size(std::string_view text)
{
    size_t i = 0;
    uint64_t number = 0;
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])))
        return std::nullopt;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        uint64_t digit = static_cast<uint64_t>(text[i] - '0');
        if (number > (std::numeric_limits<uint64_t>::max() - digit) / 10)
            return std::nullopt;
        number = number * 10 + digit;
        ++i;
    }
    std::string suffix;
    for (; i < text.size(); ++i)
        suffix.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(text[i]))));
    unsigned shift;
    if (suffix.empty())
        shift = 20; // a bare number is MiB, as with QEMU's -m
    else if (suffix == "B")
        shift = 0;
    else if (suffix == "K" || suffix == "KB" || suffix == "KIB")
        shift = 10;
    else if (suffix == "M" || suffix == "MB" || suffix == "MIB")
        shift = 20;
    else if (suffix == "G" || suffix == "GB" || suffix == "GIB")
        shift = 30;
    else if (suffix == "T" || suffix == "TB" || suffix == "TIB")
        shift = 40;
    else
        return std::nullopt;
    if (shift > 0 && number > (std::numeric_limits<uint64_t>::max() >> shift))
        return std::nullopt;
    return number << shift;
}

cpuplug::Result<CliOptions, CliExit> parse_command_line(int argc, char const* const* argv)
{
    CliOptions options;
    auto& machine = options.machine;
    CLI::App app { "cpuplug vmm: a VMM on raw /dev/kvm for fast vCPU bring-up and CPU hotplug", "vmm" };
    app.set_version_flag("--version", VERSION);

    std::string cpus_text = "1";
    std::string memory_text;
    std::string serial_text = "stdio";
    std::string kernel;
    std::string initrd;
    app.add_option("--cpus", cpus_text,
           "vCPUs and topology, as QEMU's -smp: N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T]")
        ->type_name("N[,...]");
    app.add_option("--memory,-m", memory_text,
           "Guest RAM: a number with an optional K/M/G/T suffix; a bare number is MiB (default 256M)")
        ->type_name("SIZE");
    app.add_option("--kernel", kernel,
           "Boot this kernel instead of the embedded cpuplug guest: a Linux bzImage, or a PVH ELF (a vmlinux or a "
           "cpuplug-style guest)")
        ->check(CLI::ExistingFile)
        ->type_name("FILE");
    app.add_option("--initrd", initrd, "An initial RAM disk for a Linux --kernel")
        ->check(CLI::ExistingFile)
        ->type_name("FILE");
    app.add_option("--cmdline", machine.cmdline,
           "A Linux kernel's whole command line; for cpuplug's guest, appended to its own parameters")
        ->type_name("STR");
    app.add_option("--serial", serial_text, "Where COM1 goes: stdio, file:PATH or none (default stdio)")
        ->type_name("stdio|file:PATH|none");
    app.add_option("--log-level", options.log_level, "trace, debug, info, warn (default), error, critical or off")
        ->check(CLI::IsMember({ "trace", "debug", "info", "warn", "error", "critical", "off" }))
        ->type_name("LEVEL");
    std::string bringup = "parallel";
    app.add_option("--bringup", bringup, "How the guest starts its APs: parallel (default) or serial")
        ->check(CLI::IsMember({ "parallel", "serial" }))
        ->type_name("parallel|serial");
    std::string init_delay = std::to_string(platform::INIT_DELAY_US);
    app.add_option("--init-delay-us", init_delay,
           fmt::format("Microseconds between INIT and STARTUP (guest cpu_init_udelay; default {}, 0 as Linux on KVM)",
               platform::INIT_DELAY_US))
        ->type_name("N");
    // The environment's CPUPLUG_GUEST_CPL is the default, so a whole test suite can run in either mode.
    char const* cpl_env = std::getenv("CPUPLUG_GUEST_CPL");
    std::string guest_cpl = cpl_env && *cpl_env ? cpl_env : "auto";
    app.add_option("--guest-cpl", guest_cpl,
           "The privilege level of the guest's kernel: auto (default: 3 on nested PVM, where KVM emulates "
           "supervisor code, else 0), 0 or 3; CPUPLUG_GUEST_CPL sets the default")
        ->type_name("auto|0|3");
    std::string boot_report;
    app.add_option("--boot-report", boot_report, "Write the boot report (JSON) to FILE, or to stdout with -")
        ->type_name("FILE");
    std::vector<std::string> qmp;
    app.add_option("--qmp", qmp,
           "A QMP socket, as QEMU's -qmp: unix:PATH[,wait=on|off] or tcp:[HOST]:PORT[,wait=on|off]; repeatable")
        ->type_name("ADDRESS")
        ->allow_extra_args(false);
    app.add_flag("--exit-after-boot", machine.exit_after_boot,
        "Power the guest off once it has booted (for tests and benchmarks)");
    app.add_flag("--hotplug", machine.hotplug,
        "ACPI CPU hotplug (QMP device_add/device_del); --cpus N alone then means N,sockets=2,maxcpus=2N");
    std::string unplug_timeout = "5000";
    app.add_option("--unplug-timeout-ms", unplug_timeout,
           "How long a CPU removal may wait for the guest before it fails with DEVICE_UNPLUG_GUEST_ERROR (default 5000)")
        ->type_name("N");

    try {
        app.parse(argc, argv);
    } catch (CLI::CallForHelp const&) {
        return cpuplug::unexpected(CliExit { 0, app.help() });
    } catch (CLI::CallForVersion const&) {
        return cpuplug::unexpected(CliExit { 0, fmt::format("vmm (cpuplug) {}", VERSION) });
    } catch (CLI::ParseError const& error) {
        std::string what = error.what();
        return cpuplug::unexpected(usage_error(what.empty() ? "bad command line" : what));
    }

    // With --hotplug and a bare count, leave room to plug as many again (up to the machine's limit) in two
    // sockets, so that socket hot-plug has a socket to work on. A count that leaves no room is refused:
    // hot-plug AML with nothing to plug would only mislead.
    if (machine.hotplug && !cpus_text.empty() && cpus_text.find_first_not_of("0123456789") == std::string::npos
        && cpus_text.size() <= 4 && std::stoul(cpus_text) >= 1) {
        unsigned long count = std::stoul(cpus_text);
        if (count >= MACHINE_MAX_CPUS)
            return cpuplug::unexpected(usage_error(fmt::format(
                "--cpus {} with --hotplug leaves no CPU to plug ({} is the machine's limit): give fewer CPUs",
                count, MACHINE_MAX_CPUS)));
        cpus_text += fmt::format(",sockets=2,maxcpus={}", std::min<unsigned long>(2 * count, MACHINE_MAX_CPUS));
    }
    auto smp = parse_smp(cpus_text);
    if (!smp.has_value())
        return cpuplug::unexpected(usage_error(fmt::format("--cpus: {}", smp.error())));
    machine.smp = smp.release_value();

    machine.bringup = bringup == "serial" ? Bringup::Serial : Bringup::Parallel;
    if (guest_cpl == "auto")
        machine.guest_cpl = GuestCpl::Auto;
    else if (guest_cpl == "0")
        machine.guest_cpl = GuestCpl::Cpl0;
    else if (guest_cpl == "3")
        machine.guest_cpl = GuestCpl::Cpl3;
    else
        return cpuplug::unexpected(usage_error(fmt::format("--guest-cpl{}: '{}' is not auto, 0 or 3",
            cpl_env && guest_cpl == cpl_env ? " (from CPUPLUG_GUEST_CPL)" : "", guest_cpl)));
    if (init_delay.empty() || init_delay.size() > 9 || init_delay.find_first_not_of("0123456789") != std::string::npos)
        return cpuplug::unexpected(usage_error(fmt::format("--init-delay-us: '{}' is not a number of microseconds", init_delay)));
    machine.init_delay_us = std::stoull(init_delay);
    if (!boot_report.empty())
        machine.boot_report = boot_report;
    if (unplug_timeout.empty() || unplug_timeout.size() > 7 || unplug_timeout.find_first_not_of("0123456789") != std::string::npos
        || std::stoul(unplug_timeout) == 0)
        return cpuplug::unexpected(usage_error(fmt::format("--unplug-timeout-ms: '{}' is not a positive number of milliseconds", unplug_timeout)));
    machine.unplug_timeout = std::chrono::milliseconds(std::stoul(unplug_timeout));

    if (!memory_text.empty()) {
        auto bytes = parse_memory_size(memory_text);
        if (!bytes)
            return cpuplug::unexpected(usage_error(fmt::format(
                "--memory: '{}' is not a size (use e.g. 256M or 1G; a bare number means MiB)", memory_text)));
        if (*bytes < layout::MIN_RAM)
            return cpuplug::unexpected(usage_error(fmt::format(
                "--memory: {} is too small; cpuplug needs at least {} MiB", memory_text, layout::MIN_RAM / layout::MiB)));
        if (*bytes > layout::MAX_RAM)
            return cpuplug::unexpected(usage_error(fmt::format(
                "--memory: {} is too large; cpuplug accepts at most {} GiB", memory_text, layout::MAX_RAM / layout::GiB)));
        if (*bytes % 4096 != 0)
            return cpuplug::unexpected(usage_error(fmt::format("--memory: {} is not a whole number of 4 KiB pages", memory_text)));
        machine.memory_bytes = *bytes;
    }

    if (serial_text == "stdio") {
        machine.serial.kind = SerialConfig::Kind::Stdio;
    } else if (serial_text == "none") {
        machine.serial.kind = SerialConfig::Kind::None;
    } else if (serial_text.rfind("file:", 0) == 0 && serial_text.size() > 5) {
        machine.serial.kind = SerialConfig::Kind::File;
        machine.serial.path = serial_text.substr(5);
    } else {
        return cpuplug::unexpected(usage_error(fmt::format("--serial: '{}' is not stdio, file:PATH or none", serial_text)));
    }

    if (!kernel.empty())
        machine.kernel_path = kernel;
    if (!initrd.empty()) {
        if (kernel.empty())
            return cpuplug::unexpected(
                usage_error("--initrd needs a Linux --kernel: the embedded guest has no use for an initrd"));
        machine.initrd_path = initrd;
    }
    for (auto const& text : qmp) {
        auto endpoint = qmp::parse_endpoint(text);
        if (!endpoint.has_value())
            return cpuplug::unexpected(usage_error(fmt::format("--qmp {}: {}", text, endpoint.error())));
        machine.qmp.push_back(endpoint.release_value());
    }
    return options;
}

} // namespace vmm
