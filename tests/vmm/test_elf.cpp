#include "boot/elf.hpp"

#include "elf_builder.hpp"

#include <catch2/catch.hpp>

using namespace vmm;
using test_support::build_elf;
using test_support::ElfSpec;

TEST_CASE("a 64-bit x86 executable with a PVH note parses", "[elf]")
{
    auto file = build_elf({});
    auto image = parse_pvh_elf(file);
    REQUIRE(image.has_value());
    CHECK(image->pvh_entry == 0x100000);
    REQUIRE(image->segments.size() == 1);
    CHECK(image->segments[0].physical_address == 0x100000);
    CHECK(image->segments[0].file_size == 64);
    CHECK(image->segments[0].memory_size == 64 + 0x1000);
}

TEST_CASE("an 8-byte PVH note descriptor is read as a 64-bit entry", "[elf]")
{
    ElfSpec spec;
    spec.note_desc_size = 8;
    spec.entry_offset = 16;
    auto image = parse_pvh_elf(build_elf(spec));
    REQUIRE(image.has_value());
    CHECK(image->pvh_entry == 0x100010);
}

TEST_CASE("a file that is not ELF is refused", "[elf]")
{
    std::vector<uint8_t> text = { 'r', 'o', 'o', 't', ':', 'x', ':', '0' };
    auto image = parse_pvh_elf(text);
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().kind == ElfErrorKind::NotElf);
    CHECK_FALSE(parse_pvh_elf({}).has_value());
}

TEST_CASE("every truncation of a good kernel is refused without reading past the end", "[elf]")
{
    auto file = build_elf({});
    for (size_t size = 0; size < file.size(); ++size) {
        std::vector<uint8_t> prefix(file.begin(), file.begin() + static_cast<long>(size));
        auto image = parse_pvh_elf(prefix);
        INFO("size " << size);
        CHECK_FALSE(image.has_value());
    }
}

TEST_CASE("a 32-bit ELF is refused with a message that says so", "[elf]")
{
    ElfSpec spec;
    spec.elf_class = ELFCLASS32;
    auto image = parse_pvh_elf(build_elf(spec));
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().kind == ElfErrorKind::Not64Bit);
    CHECK(image.error().message.find("32-bit") != std::string::npos);
}

TEST_CASE("an ELF without the Xen PVH note is refused", "[elf]")
{
    ElfSpec spec;
    spec.with_note = false;
    auto image = parse_pvh_elf(build_elf(spec));
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().kind == ElfErrorKind::NoPvhNote);

    ElfSpec other_type;
    other_type.note_type = 17;
    auto other = parse_pvh_elf(build_elf(other_type));
    REQUIRE_FALSE(other.has_value());
    CHECK(other.error().kind == ElfErrorKind::NoPvhNote);
}

TEST_CASE("other machines and non-executables are refused", "[elf]")
{
    ElfSpec arm;
    arm.machine = EM_AARCH64;
    CHECK(parse_pvh_elf(build_elf(arm)).error().kind == ElfErrorKind::NotX86_64);
    ElfSpec shared;
    shared.type = ET_DYN;
    CHECK(parse_pvh_elf(build_elf(shared)).error().kind == ElfErrorKind::NotExecutable);
}

TEST_CASE("a PVH entry outside the loaded bytes is refused", "[elf]")
{
    ElfSpec spec;
    spec.entry_offset = 0x800; // inside the bss, not the file bytes
    auto image = parse_pvh_elf(build_elf(spec));
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().kind == ElfErrorKind::EntryOutsideSegments);
}

TEST_CASE("a segment whose file bytes exceed its memory size is refused", "[elf]")
{
    auto file = build_elf({});
    auto* ph = reinterpret_cast<Elf64_Phdr*>(file.data() + sizeof(Elf64_Ehdr));
    ph->p_memsz = 8;
    CHECK(parse_pvh_elf(file).error().kind == ElfErrorKind::BadSegment);
}

TEST_CASE("a note whose sizes point past its segment is refused", "[elf]")
{
    auto file = build_elf({});
    auto* nh = reinterpret_cast<Elf64_Nhdr*>(file.data() + sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr));
    nh->n_descsz = 0xFFFFFFF0;
    CHECK(parse_pvh_elf(file).error().kind == ElfErrorKind::BadPvhNote);
}

TEST_CASE("the built guest kernel is a PVH ELF with a 4-byte-aligned note", "[elf][guest]")
{
    FILE* f = std::fopen(CPUPLUG_GUEST_ELF, "rb");
    REQUIRE(f);
    std::vector<uint8_t> file;
    uint8_t buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0)
        file.insert(file.end(), buffer, buffer + n);
    std::fclose(f);
    auto image = parse_pvh_elf(file);
    REQUIRE(image.has_value());
    CHECK(image->pvh_entry >= 0x100000);

    auto const* eh = reinterpret_cast<Elf64_Ehdr const*>(file.data());
    bool found_note = false;
    for (int i = 0; i < eh->e_phnum; ++i) {
        auto const* ph = reinterpret_cast<Elf64_Phdr const*>(file.data() + eh->e_phoff + size_t(i) * sizeof(Elf64_Phdr));
        if (ph->p_type == PT_NOTE) {
            found_note = true;
            CHECK(ph->p_align == 4); // QEMU aligns the note name by p_align
        }
    }
    CHECK(found_note);
}
