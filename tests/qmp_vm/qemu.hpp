// QEMU as the interop test and the benchmark run it: finding it and its firmware, its command line for
// cpuplug's guest (with this host's workarounds), and q35's switch to the modern CPU hot-plug interface.
// No Catch here: the benchmark uses it too.
#pragma once

#include "qmp_client.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace qmp_test {

// `program` itself when it has a '/', else the first match on PATH; "" unless it is an executable file.
std::string find_executable(std::string const& program);

// A file from QEMU's data directories (`qemu -L help`), where `-bios NAME` looks too; "" if none has it.
std::string find_qemu_data_file(std::string const& qemu, std::string const& name);

// cpuplug's guest ELF booted by `qemu -accel kvm -M q35` through PVH, or a Linux bzImage with its
// initrd, its console on QEMU's stdout.
struct QemuGuest {
    std::string qemu;
    std::string kernel;
    std::string smp;
    std::string append;
    std::string memory { "256M" };
    std::string firmware;   // -bios; empty: QEMU's default, SeaBIOS
    std::string qmp_socket; // a QMP server socket; empty: none
    std::string initrd {};  // -initrd; empty: none
    // cpuplug's guest reads kernel.cpl= (set as vmm's --guest-cpl auto would); Linux would only hand that
    // unknown word on to init, so a Linux kernel gets `append` as it is.
    bool cpuplug_guest { true };
};
std::vector<std::string> qemu_argv(QemuGuest const& guest);

// q35 starts with the legacy CPU hot-plug interface and switches to the modern one (the register block
// the guest drives) when the guest first writes its selector, which cpuplug's guest does before its
// bring-up. A CPU added before the switch gets no insert event the guest sees, so a client waits for the
// ICH9 LPC's "cpu-hotplug-legacy" to turn false. False on timeout, or if the machine has no ICH9 LPC.
bool wait_modern_cpu_hotplug(QmpClient& qmp, std::chrono::milliseconds timeout);

} // namespace qmp_test
