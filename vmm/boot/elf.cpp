// parse_pvh_elf: every offset and size from the file is checked before it is used, with overflow-safe
// arithmetic, so a truncated or hostile file is refused with a message and never read out of bounds.
#include "elf.hpp"

#include <guest/abi/pvh.hpp>

#include <cstring>
#include <elf.h>
#include <fmt/format.h>

namespace vmm {

namespace {

constexpr uint16_t MAX_PROGRAM_HEADERS = 64;

cpuplug::Unexpected<ElfError> fail(ElfErrorKind kind, std::string message)
{
    return cpuplug::unexpected(ElfError { kind, std::move(message) });
}

// True if [offset, offset + length) lies inside a file of `size` bytes.
bool within(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

template<typename T>
T read_at(std::span<uint8_t const> file, uint64_t offset)
{
    T value;
    std::memcpy(&value, file.data() + offset, sizeof(T)); // callers check bounds first
    return value;
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) & ~(alignment - 1); }

// Walks one PT_NOTE segment for the Xen PHYS32_ENTRY note (returns true and sets the entry when found) and
// for notes owned by "Linux", which every vmlinux carries (its build salt, for one).
cpuplug::Result<bool, ElfError> find_pvh_note(
    std::span<uint8_t const> file, Elf64_Phdr const& note, ElfImage& image, bool entry_known)
{
    bool found = false;
    if (!within(note.p_offset, note.p_filesz, file.size()))
        return fail(ElfErrorKind::Truncated, fmt::format("note segment at offset {:#x} runs past the end of the file",
                                                 note.p_offset));
    // Notes are 4-byte aligned in practice even in ELF64; honour an 8-byte p_align as the gABI allows.
    uint64_t alignment = note.p_align == 8 ? 8 : 4;
    uint64_t position = note.p_offset;
    uint64_t end = note.p_offset + note.p_filesz;
    while (position + sizeof(Elf64_Nhdr) <= end) {
        auto header = read_at<Elf64_Nhdr>(file, position);
        uint64_t name_offset = position + sizeof(Elf64_Nhdr);
        uint64_t desc_offset = name_offset + align_up(header.n_namesz, alignment);
        uint64_t next = desc_offset + align_up(header.n_descsz, alignment);
        if (header.n_namesz > end || header.n_descsz > end || next > end)
            return fail(ElfErrorKind::BadPvhNote, fmt::format("malformed note at offset {:#x}", position));
        bool is_xen = header.n_namesz == 4 && std::memcmp(file.data() + name_offset, "Xen", 4) == 0;
        if (header.n_namesz == 6 && std::memcmp(file.data() + name_offset, "Linux", 6) == 0)
            image.linux_notes = true;
        if (is_xen && header.n_type == pvh::XEN_ELFNOTE_PHYS32_ENTRY && !found && !entry_known) {
            uint64_t value;
            if (header.n_descsz == 4)
                value = read_at<uint32_t>(file, desc_offset);
            else if (header.n_descsz == 8)
                value = read_at<uint64_t>(file, desc_offset);
            else
                return fail(ElfErrorKind::BadPvhNote,
                    fmt::format("the PVH entry note has a {}-byte descriptor (expected 4 or 8)", header.n_descsz));
            if (value > UINT32_MAX)
                return fail(ElfErrorKind::BadPvhNote,
                    fmt::format("the PVH entry {:#x} is above 4 GiB (PVH starts in 32-bit mode)", value));
            image.pvh_entry = static_cast<uint32_t>(value);
            found = true;
        }
        position = next;
    }
    return found;
}

} // namespace

cpuplug::Result<ElfImage, ElfError> parse_pvh_elf(std::span<uint8_t const> file)
{
    if (file.size() < SELFMAG || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0)
        return fail(ElfErrorKind::NotElf, "not an ELF file (no \\x7fELF magic)");
    if (file.size() < EI_NIDENT)
        return fail(ElfErrorKind::Truncated, "truncated ELF identification");
    if (file[EI_CLASS] == ELFCLASS32)
        return fail(ElfErrorKind::Not64Bit, "32-bit ELF: cpuplug boots 64-bit (ELFCLASS64) PVH kernels");
    if (file[EI_CLASS] != ELFCLASS64)
        return fail(ElfErrorKind::Not64Bit, fmt::format("unknown ELF class {}", file[EI_CLASS]));
    if (file[EI_DATA] != ELFDATA2LSB)
        return fail(ElfErrorKind::NotLittleEndian, "big-endian ELF: x86 kernels are little-endian");
    if (file.size() < sizeof(Elf64_Ehdr))
        return fail(ElfErrorKind::Truncated,
            fmt::format("truncated ELF header ({} bytes, need {})", file.size(), sizeof(Elf64_Ehdr)));

    auto header = read_at<Elf64_Ehdr>(file, 0);
    if (header.e_machine != EM_X86_64)
        return fail(ElfErrorKind::NotX86_64, fmt::format("ELF machine {} is not x86-64", header.e_machine));
    if (header.e_type != ET_EXEC)
        return fail(ElfErrorKind::NotExecutable, "not an executable ELF (relocatable or shared object)");
    if (header.e_phnum == 0 || header.e_phnum > MAX_PROGRAM_HEADERS || header.e_phentsize != sizeof(Elf64_Phdr))
        return fail(ElfErrorKind::BadProgramHeaders,
            fmt::format("bad program header table ({} entries of {} bytes)", header.e_phnum, header.e_phentsize));
    uint64_t table_size = uint64_t(header.e_phnum) * sizeof(Elf64_Phdr);
    if (!within(header.e_phoff, table_size, file.size()))
        return fail(ElfErrorKind::Truncated,
            fmt::format("truncated: the program headers end past the file's {} bytes", file.size()));

    ElfImage image;
    bool found_note = false;
    for (uint16_t i = 0; i < header.e_phnum; ++i) {
        auto ph = read_at<Elf64_Phdr>(file, header.e_phoff + uint64_t(i) * sizeof(Elf64_Phdr));
        if (ph.p_type == PT_LOAD) {
            if (ph.p_memsz == 0)
                continue;
            if (ph.p_filesz > ph.p_memsz)
                return fail(ElfErrorKind::BadSegment,
                    fmt::format("segment {} has more file bytes ({:#x}) than memory ({:#x})", i, ph.p_filesz, ph.p_memsz));
            if (!within(ph.p_offset, ph.p_filesz, file.size()))
                return fail(ElfErrorKind::Truncated,
                    fmt::format("truncated: segment {} needs file bytes [{:#x}, {:#x}) but the file has {}", i,
                        ph.p_offset, ph.p_offset + ph.p_filesz, file.size()));
            if (ph.p_paddr + ph.p_memsz < ph.p_paddr)
                return fail(ElfErrorKind::BadSegment, fmt::format("segment {} wraps around the address space", i));
            image.segments.push_back({ ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz, (ph.p_flags & PF_X) != 0 });
        } else if (ph.p_type == PT_NOTE) {
            // Every note segment is walked: the "Linux" notes may sit in another one than the entry note.
            bool found = TRY(find_pvh_note(file, ph, image, found_note));
            found_note = found_note || found;
        }
    }
    if (image.segments.empty())
        return fail(ElfErrorKind::NoLoadableSegment, "the ELF has no loadable segment");
    if (!found_note)
        return fail(ElfErrorKind::NoPvhNote,
            "no PVH entry note (ELF note \"Xen\", type 18): boot a kernel built with PVH support");
    bool entry_inside = false;
    for (auto const& segment : image.segments)
        if (image.pvh_entry >= segment.physical_address
            && image.pvh_entry < segment.physical_address + segment.file_size)
            entry_inside = true;
    if (!entry_inside)
        return fail(ElfErrorKind::EntryOutsideSegments,
            fmt::format("the PVH entry {:#x} lies outside every loadable segment", image.pvh_entry));
    return image;
}

} // namespace vmm
