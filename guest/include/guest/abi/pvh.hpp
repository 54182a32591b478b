// The PVH boot ABI (Xen's hvm_start_info, version 1), shared by the VMM that writes it and the guest that
// reads it. Layout: xen/include/public/arch-x86/hvm/start_info.h; see docs/boot.md.
#pragma once

#include <cstdint>

namespace pvh {

inline constexpr uint32_t START_INFO_MAGIC = 0x336ec578;
inline constexpr uint32_t XEN_ELFNOTE_PHYS32_ENTRY = 18;

struct StartInfo {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;    // version 1 and later
    uint32_t memmap_entries;  // version 1 and later
    uint32_t reserved;
};
static_assert(sizeof(StartInfo) == 56);

// One module (Xen's hvm_modlist_entry): Linux takes the first as its initrd.
struct ModlistEntry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr; // 0: none
    uint64_t reserved;
};
static_assert(sizeof(ModlistEntry) == 32);

enum class MemType : uint32_t {
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
    Nvs = 4,
    Unusable = 5,
    Disabled = 6,
    Pmem = 7,
};

struct MemmapEntry {
    uint64_t addr;
    uint64_t size;
    MemType type;
    uint32_t reserved;
};
static_assert(sizeof(MemmapEntry) == 24);

} // namespace pvh
