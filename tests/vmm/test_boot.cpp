#include "boot/pvh.hpp"

#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/regs.hpp"
#include "elf_builder.hpp"

#include <catch2/catch.hpp>

#include <cstring>

using namespace vmm;

namespace {

// A kernel built from `spec` and guest RAM of `ram` bytes, ready for load_pvh_kernel().
struct Loadable {
    GuestMemory memory;
    std::vector<uint8_t> file;
    ElfImage image;

    static Loadable make(uint64_t ram, test_support::ElfSpec const& spec = {})
    {
        auto file = test_support::build_elf(spec);
        auto image = parse_pvh_elf(file);
        REQUIRE(image.has_value());
        return { MUST(GuestMemory::create(ram)), std::move(file), image.release_value() };
    }
    cpuplug::Result<PvhBoot, std::string> load(std::string_view cmdline, uint64_t rsdp = 0)
    {
        return load_pvh_kernel(memory, file, image, cmdline, rsdp);
    }
};

} // namespace

TEST_CASE("the PVH entry state is flat 32-bit protected mode with paging off", "[boot]")
{
    kvm_sregs sregs {};
    sregs.apic_base = 0xFEE00900;
    set_pvh_entry_sregs(sregs);
    CHECK(sregs.cr0 == 0x11);
    CHECK(sregs.cr4 == 0);
    CHECK(sregs.efer == 0);
    CHECK(sregs.cs.base == 0);
    CHECK(sregs.cs.limit == 0xFFFFFFFF);
    CHECK(sregs.cs.db == 1);
    CHECK(sregs.cs.l == 0);
    CHECK(sregs.cs.type == 0xB);
    CHECK(sregs.ss.type == 0x3);
    CHECK(sregs.tr.limit == 0x67);
    CHECK(sregs.tr.type == 0xB);
    CHECK(sregs.apic_base == 0xFEE00900); // untouched

    auto regs = pvh_entry_regs(0x101000, 0x6000);
    CHECK(regs.rip == 0x101000);
    CHECK(regs.rbx == 0x6000);
    CHECK(regs.rflags == 0x2);
}

TEST_CASE("loading a kernel writes its segments, start info, memory map and command line", "[boot]")
{
    auto kernel = Loadable::make(32 * layout::MiB);
    auto* memory = &kernel.memory;
    // Dirty the bss area first: the loader must zero it (a reset re-loads into used memory).
    REQUIRE(memory->fill(0x100000, 0x2000, 0xCC).has_value());
    auto boot = kernel.load("console=ttyS0 exit_after_boot", 0xE0000);
    REQUIRE(boot.has_value());
    CHECK(boot->entry == 0x100000);
    CHECK(boot->start_info == layout::START_INFO);
    CHECK(boot->kernel_end == 0x100000 + 64 + 0x1000);
    CHECK(memory->read_object<uint8_t>(0x100000).value() == 0x90);
    CHECK(memory->read_object<uint8_t>(0x100000 + 64).value() == 0);
    CHECK(memory->read_object<uint8_t>(0x100000 + 64 + 0xFFF).value() == 0);

    auto info = memory->read_object<pvh::StartInfo>(layout::START_INFO).value();
    CHECK(info.magic == pvh::START_INFO_MAGIC);
    CHECK(info.version == 1);
    CHECK(info.rsdp_paddr == 0xE0000);
    CHECK(info.cmdline_paddr == layout::CMDLINE);
    char cmdline[64] {};
    REQUIRE(memory->read(layout::CMDLINE, { reinterpret_cast<uint8_t*>(cmdline), sizeof(cmdline) }).has_value());
    CHECK(std::string(cmdline) == "console=ttyS0 exit_after_boot");

    REQUIRE(info.memmap_entries >= 4);
    uint64_t ram = 0;
    bool acpi = false;
    for (uint32_t i = 0; i < info.memmap_entries; ++i) {
        auto e = memory->read_object<pvh::MemmapEntry>(info.memmap_paddr + i * sizeof(pvh::MemmapEntry)).value();
        if (e.type == pvh::MemType::Ram)
            ram += e.size;
        if (e.type == pvh::MemType::Acpi)
            acpi = e.addr == layout::ACPI_TABLES_START;
    }
    CHECK(ram == 32 * layout::MiB - (layout::BIOS_AREA_END - layout::EBDA_START));
    CHECK(acpi);
}

TEST_CASE("the memory map reports RAM above 4 GiB for large guests", "[boot]")
{
    auto memory = GuestMemory::create(4 * layout::GiB);
    REQUIRE(memory.has_value());
    auto map = build_memmap(*memory, false);
    CHECK(map.back().addr == 4 * layout::GiB);
    CHECK(map.back().size == layout::GiB);
    CHECK(map.back().type == pvh::MemType::Ram);
    for (auto const& e : map)
        CHECK(e.type != pvh::MemType::Acpi);
}

TEST_CASE("a segment outside RAM or below 1 MiB is refused before anything is written", "[boot]")
{
    test_support::ElfSpec high;
    high.load_address = 64 * layout::MiB;
    auto boot = Loadable::make(16 * layout::MiB, high).load("");
    REQUIRE_FALSE(boot.has_value());
    CHECK(boot.error().find("does not fit in guest RAM") != std::string::npos);

    test_support::ElfSpec low;
    low.load_address = 0x8000;
    auto low_boot = Loadable::make(16 * layout::MiB, low).load("");
    REQUIRE_FALSE(low_boot.has_value());
    CHECK(low_boot.error().find("below 1 MiB") != std::string::npos);
}

TEST_CASE("an over-long command line is refused", "[boot]")
{
    auto kernel = Loadable::make(16 * layout::MiB);
    std::string line(layout::CMDLINE_MAX, 'x');
    CHECK_FALSE(kernel.load(line).has_value());
    line.pop_back();
    CHECK(kernel.load(line).has_value());
}
