// The guest-physical address map: every region cpuplug places something in, in one place.
//
//   0x0000_0000 - 0x0000_5FFF   low RAM, left to the guest (real-mode IVT area, AP trampoline pages)
//   0x0000_6000 - 0x0000_603F   hvm_start_info (PVH)
//   0x0000_6040 - 0x0000_6FBF   PVH memory map (up to 165 entries)
//   0x0000_6FC0 - 0x0000_6FFF   PVH module list (the initrd: one hvm_modlist_entry)
//   0x0000_7000 - 0x0000_7FFF   kernel command line (NUL-terminated, at most 4 KiB)
//   0x0000_8000 - 0x0000_8FFF   Linux boot protocol: boot_params, the "zero page" (bzImage only)
//   0x0000_9000 - 0x0000_9FFF   Linux boot protocol: the GDT for the 64-bit entry (bzImage only)
//   0x0000_A000 - 0x0000_FFFF   Linux boot protocol: identity page tables for 4 GiB (bzImage only)
//   0x0001_0000 - 0x0009_FBFF   low RAM, the guest's
//   0x0009_FC00 - 0x0009_FFFF   reserved (where a PC keeps its EBDA)
//   0x000A_0000 - 0x000D_FFFF   ACPI tables (XSDT, FADT, FACS, MADT, DSDT): memmap type ACPI
//   0x000E_0000 - 0x000F_FFFF   reserved "BIOS" area; the RSDP sits at its start for scanners
//   0x0010_0000 - RAM end       RAM; the kernel loads at 1 MiB
//   0xC000_0000 - 0xFFFF_FFFF   MMIO hole: RAM above 3 GiB moves to 4 GiB
//     0xFEB0_0000               cpuplug's status registers (also at I/O port 0x520)
//     0xFEC0_0000               IOAPIC (in-kernel irqchip)
//     0xFEE0_0000               local APICs (in-kernel irqchip)
//     0xFFFB_C000 - 0xFFFB_FFFF KVM's private identity-map page and TSS (KVM_SET_*_ADDR)
//   0x1_0000_0000 -             RAM beyond 3 GiB, if any
#pragma once

#include <guest/abi/platform.h>
#include <guest/abi/status_port.hpp>

#include <cstdint>

namespace vmm::layout {

inline constexpr uint64_t KiB = 1024;
inline constexpr uint64_t MiB = 1024 * KiB;
inline constexpr uint64_t GiB = 1024 * MiB;

inline constexpr uint64_t START_INFO = 0x6000;
inline constexpr uint64_t MEMMAP = 0x6040;
inline constexpr uint64_t MEMMAP_END = 0x6FC0;
inline constexpr uint64_t MODLIST = 0x6FC0;
inline constexpr uint64_t MODLIST_END = 0x7000;
inline constexpr uint64_t CMDLINE = 0x7000;
inline constexpr uint64_t CMDLINE_MAX = 0x1000; // including the NUL

// The bzImage 64-bit entry's boot data. Linux copies boot_params and builds its own page tables and GDT
// before it allocates memory, so the area stays RAM in the memory map (and Linux reserves low memory anyway).
inline constexpr uint64_t ZERO_PAGE = 0x8000;
inline constexpr uint64_t BOOT_GDT = 0x9000;
inline constexpr uint64_t BOOT_PML4 = 0xA000;
inline constexpr uint64_t BOOT_PDPT = 0xB000;
inline constexpr uint64_t BOOT_PD = 0xC000; // four pages: one page directory of 2 MiB pages per GiB
inline constexpr uint64_t BOOT_PAGE_TABLES_END = 0x10000;

inline constexpr uint64_t EBDA_START = 0x9FC00;
inline constexpr uint64_t ACPI_TABLES_START = 0xA0000;
inline constexpr uint64_t ACPI_TABLES_END = 0xE0000;
inline constexpr uint64_t RSDP = 0xE0000;
inline constexpr uint64_t BIOS_AREA_END = 0x100000;

inline constexpr uint64_t KERNEL_MIN_ADDRESS = 1 * MiB; // segments below would overlap the areas above
inline constexpr uint64_t MMIO_HOLE_START = 3 * GiB;
inline constexpr uint64_t MMIO_HOLE_END = 4 * GiB;
inline constexpr uint64_t HIGH_RAM_START = 4 * GiB;

inline constexpr uint64_t STATUS_MMIO = status_port::DEFAULT_MMIO;
inline constexpr uint64_t IOAPIC_BASE = platform::IOAPIC_BASE;
inline constexpr uint64_t LAPIC_BASE = platform::LAPIC_BASE;
inline constexpr uint64_t KVM_IDENTITY_MAP = 0xFFFBC000; // one page
inline constexpr uint64_t KVM_TSS = 0xFFFBD000;          // three pages

// The smallest RAM cpuplug accepts: the areas above plus room for a kernel at 1 MiB.
inline constexpr uint64_t MIN_RAM = 8 * MiB;
inline constexpr uint64_t DEFAULT_RAM = 256 * MiB;
inline constexpr uint64_t MAX_RAM = 1024 * GiB; // a sanity bound; the mapping is NORESERVE either way

static_assert(MEMMAP_END <= MODLIST && MODLIST_END <= CMDLINE && CMDLINE + CMDLINE_MAX <= ZERO_PAGE);
static_assert(BOOT_PD + 4 * 0x1000 == BOOT_PAGE_TABLES_END && BOOT_PAGE_TABLES_END <= EBDA_START);
static_assert(ACPI_TABLES_END <= RSDP);

} // namespace vmm::layout
