// The PVH loader: places a PVH ELF's segments in guest RAM and writes hvm_start_info version 1 with the
// memory map and command line (the PVH boot ABI, Xen's docs/misc/pvh.pandoc; struct hvm_start_info from Xen's
// xen/include/public/arch-x86/hvm/start_info.h; layout in docs/boot.md).
#pragma once

#include "../memory/guest_memory.hpp"
#include "elf.hpp"

#include <guest/abi/pvh.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmm {

struct PvhBoot {
    uint32_t entry { 0 };
    uint32_t start_info { 0 };
    uint64_t kernel_end { 0 }; // first byte past the highest segment
    uint64_t initrd_address { 0 }; // the one module's address; 0 without an initrd
};

// The e820-style map the guest is told about, derived from the RAM regions and the fixed layout.
std::vector<pvh::MemmapEntry> build_memmap(GuestMemory const& memory, bool acpi_tables);

// A non-empty `initrd` becomes the one PVH module (Linux takes its first module as the initrd), placed
// page-aligned at the top of low RAM, above the kernel.
cpuplug::Result<PvhBoot, std::string> load_pvh_kernel(GuestMemory const& memory, std::span<uint8_t const> file,
    ElfImage const& image, std::string_view cmdline, uint64_t rsdp_address, std::span<uint8_t const> initrd = {});

} // namespace vmm
