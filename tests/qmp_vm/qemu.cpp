#include "qemu.hpp"

#include "support/process.hpp"

#include <cstdlib>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace qmp_test {

namespace {

bool executable_file(std::string const& path)
{
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The guest's privilege level as vmm's --guest-cpl auto chooses it, so both VMMs run the same guest code:
// CPL3 on nested PVM (kvm_pvm loaded and no kvm_intel or kvm_amd: supervisor code is emulated), CPL0
// elsewhere (vmm::supervisor_mode_emulated() is the same rule); CPUPLUG_GUEST_CPL overrides.
std::string guest_cpl_parameter()
{
    char const* forced = std::getenv("CPUPLUG_GUEST_CPL");
    if (forced && (std::string(forced) == "0" || std::string(forced) == "3"))
        return std::string(" kernel.cpl=") + forced;
    auto loaded = [](std::string const& module) {
        struct stat info {};
        return ::stat(("/sys/module/" + module).c_str(), &info) == 0;
    };
    bool pvm = loaded("kvm_pvm") && !loaded("kvm_intel") && !loaded("kvm_amd");
    return pvm ? " kernel.cpl=3" : " kernel.cpl=0";
}

} // namespace

std::string find_executable(std::string const& program)
{
    if (program.find('/') != std::string::npos)
        return executable_file(program) ? program : "";
    char const* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        std::string candidate = (dir.empty() ? "." : dir) + "/" + program; // an empty entry is the current directory
        if (executable_file(candidate))
            return candidate;
    }
    return "";
}

std::string find_qemu_data_file(std::string const& qemu, std::string const& name)
{
    auto result = test_support::run_process({ qemu, "-L", "help" }, std::chrono::seconds(10));
    std::stringstream dirs(result.out);
    for (std::string dir; std::getline(dirs, dir);) {
        std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), R_OK) == 0)
            return candidate;
    }
    return "";
}

std::vector<std::string> qemu_argv(QemuGuest const& guest)
{
    // -cpu host alone aborts here: QEMU copies IA32_ARCH_CAPABILITIES, which this nested KVM refuses.
    // The console goes to the caller's pipe through file:/dev/stdout rather than "stdio": QEMU's stdio
    // backend sets up the terminal when stdin is one, and from its own process group that stops it (SIGTTOU).
    std::vector<std::string> argv { guest.qemu, "-accel", "kvm", "-M", "q35", "-cpu", "host,-arch-capabilities", "-m",
        guest.memory, "-kernel", guest.kernel, "-nodefaults", "-no-user-config", "-display", "none", "-serial",
        "file:/dev/stdout", "-no-reboot", "-smp", guest.smp, "-append",
        guest.cpuplug_guest ? guest.append + guest_cpl_parameter() : guest.append };
    if (!guest.initrd.empty())
        argv.insert(argv.end(), { "-initrd", guest.initrd });
    if (!guest.firmware.empty())
        argv.insert(argv.end(), { "-bios", guest.firmware });
    if (!guest.qmp_socket.empty())
        argv.insert(argv.end(), { "-qmp", "unix:" + guest.qmp_socket + ",server=on,wait=off" });
    return argv;
}

bool wait_modern_cpu_hotplug(QmpClient& qmp, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto children = qmp.execute("qom-list", Json { { "path", "/machine/unattached" } });
    std::string lpc;
    if (children && (*children)["return"].is_array())
        for (auto const& child : (*children)["return"])
            if (child.value("type", "") == "child<ICH9-LPC>")
                lpc = "/machine/unattached/" + child.value("name", "");
    if (lpc.empty())
        return false;
    while (std::chrono::steady_clock::now() < deadline) {
        auto legacy = qmp.execute("qom-get", Json { { "path", lpc }, { "property", "cpu-hotplug-legacy" } });
        if (legacy && (*legacy)["return"] == false)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

} // namespace qmp_test
