// The ELF reader for PVH kernels: validates a 64-bit x86 executable and finds its loadable segments and
// the Xen PVH entry note. A pure function over the file's bytes, so every refusal is unit-tested.
#pragma once

#include <cpuplug/base/result.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmm {

enum class ElfErrorKind {
    NotElf,
    Not64Bit,
    NotLittleEndian,
    NotX86_64,
    NotExecutable,
    Truncated,
    BadProgramHeaders,
    BadSegment,
    NoPvhNote,
    BadPvhNote,
    NoLoadableSegment,
    EntryOutsideSegments,
};

struct ElfError {
    ElfErrorKind kind;
    std::string message;
};

struct ElfSegment {
    uint64_t physical_address;
    uint64_t file_offset;
    uint64_t file_size;
    uint64_t memory_size;
    bool executable;
};

struct ElfImage {
    std::vector<ElfSegment> segments; // PT_LOAD entries with a non-zero memory size
    uint32_t pvh_entry { 0 };         // XEN_ELFNOTE_PHYS32_ENTRY
    bool linux_notes { false };       // a note owned by "Linux": a vmlinux, which takes a Linux command line
};

cpuplug::Result<ElfImage, ElfError> parse_pvh_elf(std::span<uint8_t const> file);

} // namespace vmm
