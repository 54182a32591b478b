// Builds small ELF files in memory for the loader tests: a valid PVH kernel and its broken variants.
#pragma once

#include <cstdint>
#include <cstring>
#include <elf.h>
#include <vector>

namespace test_support {

struct ElfSpec {
    uint64_t load_address { 0x100000 };
    uint32_t code_size { 64 };
    uint64_t bss_size { 0x1000 };
    bool with_note { true };
    uint32_t note_type { 18 };
    uint32_t note_desc_size { 4 };
    uint64_t entry_offset { 0 }; // into the segment
    uint8_t elf_class { ELFCLASS64 };
    uint16_t machine { EM_X86_64 };
    uint16_t type { ET_EXEC };
    bool linux_note { false }; // a "Linux" note after the Xen one, as a vmlinux has
};

inline std::vector<uint8_t> build_elf(ElfSpec const& spec)
{
    // Layout: ELF header, 2 program headers, note, code.
    constexpr size_t PH_OFFSET = sizeof(Elf64_Ehdr);
    constexpr size_t NOTE_OFFSET = PH_OFFSET + 2 * sizeof(Elf64_Phdr);
    size_t xen_note_size = sizeof(Elf64_Nhdr) + 4 + ((spec.note_desc_size + 3) & ~3u);
    constexpr size_t LINUX_NOTE_SIZE = sizeof(Elf64_Nhdr) + 8 + 4; // "Linux\0" padded to 8, a 4-byte descriptor
    size_t note_size = xen_note_size + (spec.linux_note ? LINUX_NOTE_SIZE : 0);
    size_t code_offset = (NOTE_OFFSET + note_size + 15) & ~size_t(15);
    std::vector<uint8_t> file(code_offset + spec.code_size, 0x90);

    Elf64_Ehdr eh {};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = spec.elf_class;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = spec.type;
    eh.e_machine = spec.machine;
    eh.e_version = EV_CURRENT;
    eh.e_entry = spec.load_address;
    eh.e_phoff = PH_OFFSET;
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = spec.with_note ? 2 : 1;
    std::memcpy(file.data(), &eh, sizeof(eh));

    Elf64_Phdr load {};
    load.p_type = PT_LOAD;
    load.p_flags = PF_R | PF_X;
    load.p_offset = code_offset;
    load.p_vaddr = load.p_paddr = spec.load_address;
    load.p_filesz = spec.code_size;
    load.p_memsz = spec.code_size + spec.bss_size;
    load.p_align = 0x1000;
    std::memcpy(file.data() + PH_OFFSET, &load, sizeof(load));

    if (spec.with_note) {
        Elf64_Phdr note {};
        note.p_type = PT_NOTE;
        note.p_flags = PF_R;
        note.p_offset = NOTE_OFFSET;
        note.p_filesz = note_size;
        note.p_align = 4;
        std::memcpy(file.data() + PH_OFFSET + sizeof(Elf64_Phdr), &note, sizeof(note));

        Elf64_Nhdr nh { 4, spec.note_desc_size, spec.note_type };
        std::memcpy(file.data() + NOTE_OFFSET, &nh, sizeof(nh));
        std::memcpy(file.data() + NOTE_OFFSET + sizeof(nh), "Xen", 4);
        std::vector<uint8_t> desc(spec.note_desc_size, 0);
        uint64_t entry = spec.load_address + spec.entry_offset;
        std::memcpy(desc.data(), &entry, desc.size() < 8 ? desc.size() : 8);
        std::memcpy(file.data() + NOTE_OFFSET + sizeof(nh) + 4, desc.data(), desc.size());
        if (spec.linux_note) {
            Elf64_Nhdr linux_nh { 6, 4, 0x100 };
            std::memcpy(file.data() + NOTE_OFFSET + xen_note_size, &linux_nh, sizeof(linux_nh));
            std::memcpy(file.data() + NOTE_OFFSET + xen_note_size + sizeof(linux_nh), "Linux", 6);
            std::memset(file.data() + NOTE_OFFSET + xen_note_size + sizeof(linux_nh) + 6, 0, 2 + 4);
        }
    }
    return file;
}

} // namespace test_support
