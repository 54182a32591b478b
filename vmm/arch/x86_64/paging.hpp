// The x86 page-table walk, as the MMU does it, for the debugging commands (HMP `x`, QMP `memsave`): a
// linear address to a guest-physical one through a CPU's CR0, CR3, CR4 and EFER, reading the tables from
// guest RAM. Every mode a CPU may be in: paging off, 32-bit (4 MiB pages with PSE, PSE-36), PAE, 4-level
// and 5-level (2 MiB and 1 GiB pages). Permissions are not checked: a debugger reads what the guest's
// kernel could. Header only and free of KVM, so the QMP library and its fuzzer use it as they are.
#pragma once

#include <cpuplug/base/result.hpp>

#include <cstdint>
#include <cstring>
#include <functional>

namespace vmm::x86 {

inline constexpr uint64_t CR0_PE = 1ull << 0;
inline constexpr uint64_t CR0_PG = 1ull << 31;
inline constexpr uint64_t CR4_PSE = 1ull << 4;
inline constexpr uint64_t CR4_PAE = 1ull << 5;
inline constexpr uint64_t CR4_LA57 = 1ull << 12;
inline constexpr uint64_t EFER_LMA = 1ull << 10;

inline constexpr uint64_t PTE_PRESENT = 1ull << 0;
inline constexpr uint64_t PTE_LARGE = 1ull << 7; // PS: this entry maps a page, not a table
// Bits 12 to 51: the next table's, or a 4 KiB page's, physical address (MAXPHYADDR 52 at most).
inline constexpr uint64_t PTE_ADDRESS = 0x000F'FFFF'FFFF'F000ull;

struct PagingRegisters {
    uint64_t cr0 { 0 };
    uint64_t cr3 { 0 };
    uint64_t cr4 { 0 };
    uint64_t efer { 0 };
};

enum class PagingMode { Off, Bits32, Pae, Level4, Level5 };

constexpr PagingMode paging_mode(PagingRegisters const& regs)
{
    if (!(regs.cr0 & CR0_PG))
        return PagingMode::Off;
    if (!(regs.cr4 & CR4_PAE))
        return PagingMode::Bits32;
    if (!(regs.efer & EFER_LMA))
        return PagingMode::Pae;
    return (regs.cr4 & CR4_LA57) ? PagingMode::Level5 : PagingMode::Level4;
}

struct Translation {
    uint64_t physical { 0 };
    uint64_t page_size { 0 }; // of the page mapping it: 4 KiB, 2 or 4 MiB, 1 GiB
};

struct PageFault {
    enum class Kind {
        NonCanonical,   // not a canonical address for the mode (or above 4 GiB without long mode)
        NotPresent,     // an entry on the way is not present
        TableUnreadable // a table is not in guest RAM
    };
    Kind kind { Kind::NotPresent };
    int level { 0 };          // of the entry or table concerned: 1 (page table) to 5 (PML5)
    uint64_t entry { 0 };     // NotPresent: the entry's value
    uint64_t table { 0 };     // the physical address of the table read (or that could not be)
};

// Reads `size` bytes of guest-physical memory at `address` into `out`; false if they are not all RAM.
using PhysicalRead = std::function<bool(uint64_t address, void* out, size_t size)>;

namespace detail {

inline bool read_entry(PhysicalRead const& read, uint64_t address, bool wide, uint64_t& entry)
{
    if (wide) {
        uint64_t value = 0;
        if (!read(address, &value, sizeof(value)))
            return false;
        entry = value;
        return true;
    }
    uint32_t value = 0;
    if (!read(address, &value, sizeof(value)))
        return false;
    entry = value;
    return true;
}

} // namespace detail

// The guest-physical address of `linear`, or where the walk stopped.
inline cpuplug::Result<Translation, PageFault> translate(PagingRegisters const& regs, uint64_t linear,
    PhysicalRead const& read)
{
    using Kind = PageFault::Kind;
    auto fault = [](Kind kind, int level, uint64_t table, uint64_t entry = 0) {
        return cpuplug::unexpected(PageFault { kind, level, entry, table });
    };
    auto mode = paging_mode(regs);
    switch (mode) {
    case PagingMode::Off:
        // Linear is physical; outside long mode a linear address has 32 bits.
        if (linear >> 32)
            return fault(Kind::NonCanonical, 0, 0);
        return Translation { linear, 4096 };

    case PagingMode::Bits32: {
        if (linear >> 32)
            return fault(Kind::NonCanonical, 0, 0);
        uint64_t directory = regs.cr3 & 0xFFFF'F000ull;
        uint64_t pde_address = directory + ((linear >> 22) & 0x3FF) * 4;
        uint64_t pde = 0;
        if (!detail::read_entry(read, pde_address, false, pde))
            return fault(Kind::TableUnreadable, 2, directory);
        if (!(pde & PTE_PRESENT))
            return fault(Kind::NotPresent, 2, directory, pde);
        if ((pde & PTE_LARGE) && (regs.cr4 & CR4_PSE)) {
            // A 4 MiB page; PSE-36 puts physical bits 32 to 39 in the entry's bits 13 to 20.
            uint64_t base = (pde & 0xFFC0'0000ull) | (((pde >> 13) & 0xFF) << 32);
            return Translation { base | (linear & 0x3F'FFFF), 4ull << 20 };
        }
        uint64_t table = pde & 0xFFFF'F000ull;
        uint64_t pte = 0;
        if (!detail::read_entry(read, table + ((linear >> 12) & 0x3FF) * 4, false, pte))
            return fault(Kind::TableUnreadable, 1, table);
        if (!(pte & PTE_PRESENT))
            return fault(Kind::NotPresent, 1, table, pte);
        return Translation { (pte & 0xFFFF'F000ull) | (linear & 0xFFF), 4096 };
    }

    case PagingMode::Pae:
    case PagingMode::Level4:
    case PagingMode::Level5:
        break;
    }

    int levels = 0;
    uint64_t table = 0;
    if (mode == PagingMode::Pae) {
        if (linear >> 32)
            return fault(Kind::NonCanonical, 0, 0);
        // CR3 holds the 32-byte aligned address of four PDPTEs, which select a page directory each.
        uint64_t pdpt = regs.cr3 & 0xFFFF'FFE0ull;
        uint64_t pdpte = 0;
        if (!detail::read_entry(read, pdpt + ((linear >> 30) & 3) * 8, true, pdpte))
            return fault(Kind::TableUnreadable, 3, pdpt);
        if (!(pdpte & PTE_PRESENT))
            return fault(Kind::NotPresent, 3, pdpt, pdpte);
        table = pdpte & PTE_ADDRESS;
        levels = 2;
    } else {
        levels = mode == PagingMode::Level5 ? 5 : 4;
        // Canonical: the bits above the top index bit (47 or 56) copy it.
        unsigned top = levels == 5 ? 56 : 47;
        uint64_t upper = linear >> top;
        if (upper != 0 && upper != (~0ull >> top))
            return fault(Kind::NonCanonical, 0, 0);
        table = regs.cr3 & PTE_ADDRESS;
    }

    for (int level = levels; level >= 1; --level) {
        unsigned shift = 12 + 9 * unsigned(level - 1);
        uint64_t entry = 0;
        if (!detail::read_entry(read, table + ((linear >> shift) & 0x1FF) * 8, true, entry))
            return fault(Kind::TableUnreadable, level, table);
        if (!(entry & PTE_PRESENT))
            return fault(Kind::NotPresent, level, table, entry);
        // PS maps a 1 GiB page at level 3 and a 2 MiB page at level 2; at level 1 it is PAT, and above 3 it
        // is reserved (the MMU would fault; a debugger reads on as if it were clear).
        bool page = level == 1 || ((entry & PTE_LARGE) && (level == 2 || level == 3));
        if (page) {
            uint64_t size = 1ull << shift;
            uint64_t base = entry & PTE_ADDRESS & ~(size - 1);
            return Translation { base | (linear & (size - 1)), size };
        }
        table = entry & PTE_ADDRESS;
    }
    return fault(Kind::NotPresent, 1, table); // not reached: level 1 always maps a page
}

} // namespace vmm::x86
