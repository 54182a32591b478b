// The benchmark's Linux mode (cpuplug_bench --linux): cpuplug and QEMU boot the same Debian kernel,
// initramfs (tests/linux/init) and command line, and hot-plug a CPU that Linux onlines.
#pragma once

#include <chrono>
#include <string>

namespace bench {

struct LinuxOptions {
    std::string vmm;
    std::string qemu;     // resolved path; unused without with_qemu
    std::string firmware; // QEMU's -bios; empty: SeaBIOS
    std::string kernel;
    std::string initrd;
    std::string out;
    // `quiet`: otherwise the VMMs' emulated UARTs, an exit per byte of the kernel's whole log, weigh more
    // in the boot than anything else in the nested VM. init copies the dated SMP lines from dmesg.
    std::string cmdline { "console=ttyS0 quiet printk.time=1" };
    int repeats { 5 }; // boots per VMM
    int cycles { 2 };  // hot-plug cycles per boot
    std::chrono::seconds boot_timeout { 900 };
    std::chrono::seconds plug_timeout { 300 };
    bool with_qemu { true };
    std::string qemu_version;
    std::string machine;
};

// Prints progress on stderr and the table on stdout, writes linux.csv and each boot's console into `out`.
// 0 when every figure was measured on every VMM, 1 otherwise (the table says what failed).
int run_linux_bench(LinuxOptions const& options);

} // namespace bench
