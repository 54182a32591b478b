// The Linux x86 boot protocol (Documentation/arch/x86/boot.rst; struct boot_params and struct setup_header in
// arch/x86/include/uapi/asm/bootparam.h): reads a bzImage's setup header, places the protected-mode kernel,
// the initrd and the command line, writes boot_params (the "zero page") and the boot data the 64-bit entry
// needs (a GDT and identity page tables). Pure functions over the file's bytes and guest RAM, so every check
// is unit-tested; layout in docs/boot.md.
#pragma once

#include "../arch/x86_64/topology.hpp"
#include "../memory/guest_memory.hpp"

#include <cpuplug/base/result.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vmm {

// Offsets into the file and into boot_params: the setup header sits at 0x1F1 in both.
namespace bootparam {
inline constexpr uint64_t ACPI_RSDP_ADDR = 0x070;  // u64, read by Linux 5.0 and later
inline constexpr uint64_t EXT_RAMDISK_IMAGE = 0x0C0;
inline constexpr uint64_t EXT_RAMDISK_SIZE = 0x0C4;
inline constexpr uint64_t EXT_CMD_LINE_PTR = 0x0C8;
inline constexpr uint64_t E820_ENTRIES = 0x1E8;     // u8
inline constexpr uint64_t SETUP_HEADER = 0x1F1;
inline constexpr uint64_t SETUP_SECTS = 0x1F1;      // u8; 0 means 4
inline constexpr uint64_t BOOT_FLAG = 0x1FE;        // u16, 0xAA55
inline constexpr uint64_t JUMP = 0x200;             // its second byte + 0x202 is the header's end
inline constexpr uint64_t HEADER = 0x202;           // "HdrS"
inline constexpr uint64_t VERSION = 0x206;          // u16
inline constexpr uint64_t TYPE_OF_LOADER = 0x210;   // u8
inline constexpr uint64_t LOADFLAGS = 0x211;        // u8
inline constexpr uint64_t CODE32_START = 0x214;     // u32
inline constexpr uint64_t RAMDISK_IMAGE = 0x218;    // u32
inline constexpr uint64_t RAMDISK_SIZE = 0x21C;     // u32
inline constexpr uint64_t HEAP_END_PTR = 0x224;     // u16
inline constexpr uint64_t CMD_LINE_PTR = 0x228;     // u32
inline constexpr uint64_t INITRD_ADDR_MAX = 0x22C;  // u32, the highest address the initrd may occupy
inline constexpr uint64_t KERNEL_ALIGNMENT = 0x230; // u32
inline constexpr uint64_t RELOCATABLE_KERNEL = 0x234; // u8
inline constexpr uint64_t XLOADFLAGS = 0x236;       // u16
inline constexpr uint64_t CMDLINE_SIZE = 0x238;     // u32, excluding the NUL
inline constexpr uint64_t PREF_ADDRESS = 0x258;     // u64
inline constexpr uint64_t INIT_SIZE = 0x260;        // u32
inline constexpr uint64_t HEADER_FIELDS_END = 0x264; // the fields above, all of protocol 2.12's that we read
inline constexpr uint64_t E820_TABLE = 0x2D0;       // 128 packed {u64 addr, u64 size, u32 type}
inline constexpr uint64_t E820_ENTRY_SIZE = 20;
inline constexpr uint64_t E820_MAX_ENTRIES = 128;
inline constexpr uint64_t SIZE = 0x1000;

inline constexpr uint32_t HDRS_MAGIC = 0x53726448; // "HdrS", little-endian
inline constexpr uint16_t BOOT_FLAG_MAGIC = 0xAA55;
inline constexpr uint16_t MIN_VERSION = 0x020C;     // 2.12: xloadflags, so the 64-bit entry can be checked for
inline constexpr uint16_t RSDP_VERSION = 0x020E;    // 2.14: acpi_rsdp_addr
inline constexpr uint8_t LOADED_HIGH = 1u << 0;
inline constexpr uint8_t CAN_USE_HEAP = 1u << 7;
inline constexpr uint16_t XLF_KERNEL_64 = 1u << 0;
inline constexpr uint8_t LOADER_UNDEFINED = 0xFF;
inline constexpr uint64_t ENTRY_64_OFFSET = 0x200; // the 64-bit entry, from the protected-mode kernel's start
} // namespace bootparam

enum class KernelKind { BzImage, Elf, Unknown };

// By the first bytes alone: "HdrS" at 0x202 is a bzImage, \x7fELF an ELF (parse_pvh_elf says whether it boots).
KernelKind detect_kernel_kind(std::span<uint8_t const> file);

enum class BzImageErrorKind {
    NotBzImage,
    Truncated,
    BadBootFlag,
    OldProtocol,
    NotLoadedHigh,
    No64BitEntry,
    BadAlignment,
    BadInitSize,
};

struct BzImageError {
    BzImageErrorKind kind;
    std::string message;
};

struct BzImage {
    uint16_t version { 0 };
    uint64_t kernel_offset { 0 }; // (setup_sects + 1) * 512: where the protected-mode kernel starts in the file
    uint64_t header_end { 0 };    // the setup header's end in the file (0x202 + the jump's second byte)
    bool relocatable { false };
    uint32_t kernel_alignment { 0 };
    uint64_t pref_address { 0 };
    uint32_t init_size { 0 };     // the memory the kernel needs from where it runs, decompression included
    uint32_t initrd_addr_max { 0 };
    uint32_t cmdline_size { 0 };
};

cpuplug::Result<BzImage, BzImageError> parse_bzimage(std::span<uint8_t const> file);

struct LinuxBoot {
    uint64_t entry { 0 };          // the 64-bit entry: load address + 0x200
    uint64_t zero_page { 0 };
    uint64_t load_address { 0 };
    uint64_t kernel_end { 0 };     // the end of what the kernel uses while it decompresses and runs
    uint64_t initrd_address { 0 }; // 0 without an initrd
    uint64_t gdt_base { 0 };
    uint16_t gdt_limit { 0 };
    uint64_t page_tables { 0 };    // CR3
};

// Loads the protected-mode kernel (at pref_address when the kernel is relocatable and it fits, else 1 MiB),
// the initrd (page-aligned, as high as initrd_addr_max and low RAM allow, above the kernel), the command line,
// boot_params with the e820 map, the GDT and the page tables.
cpuplug::Result<LinuxBoot, std::string> load_bzimage(GuestMemory const& memory, std::span<uint8_t const> file,
    BzImage const& image, std::string_view cmdline, std::span<uint8_t const> initrd, uint64_t rsdp_address);

// The highest page-aligned address an initrd of `size` bytes fits at with its last byte below `limit` and
// within low RAM, not below `lowest`; one sentence when it does not fit.
cpuplug::Result<uint64_t, std::string> place_initrd(GuestMemory const& memory, uint64_t size, uint64_t lowest,
    uint64_t limit);

// Identity page tables for the first 4 GiB in 2 MiB pages at layout::BOOT_PML4 (the PVH guest notes this host
// has no 1 GiB pages, so neither may the entry state).
void write_identity_page_tables(GuestMemory const& memory);
// The GDT at layout::BOOT_GDT: null, null, __BOOT_CS (0x10) flat 64-bit code, __BOOT_DS (0x18) flat data and a
// 64-bit TSS descriptor at 0x20 matching the TR the vCPU gets. Returns its limit.
uint16_t write_boot_gdt(GuestMemory const& memory);

// The highest APIC id Linux brings a CPU up with on this machine. Above it Linux needs interrupt remapping or
// the hypervisor's extended MSI destination id (KVM_FEATURE_MSI_EXT_DEST_ID) to reach the CPU; KVM does not
// offer the feature bit itself, and its in-kernel IOAPIC, which cpuplug uses, has only the 8-bit destination.
// Linux also skips MADT entries with an APIC id of 255 or more unless the CPU is in x2APIC mode at boot.
inline constexpr uint32_t LINUX_MAX_APIC_ID = 254;

// One sentence when some CPU slot of `topology` (present or hot-pluggable) gets an APIC id Linux cannot bring
// up, so the machine is refused before it starts rather than handing Linux CPUs it would leave offline.
std::optional<std::string> linux_topology_error(CpuTopology const& topology);

} // namespace vmm
