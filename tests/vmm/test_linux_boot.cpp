// The Linux boot protocol loader over synthetic bzImages: just enough setup header for each check.
#include "boot/linux.hpp"
#include "boot/pvh.hpp"

#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/regs.hpp"
#include "elf_builder.hpp"

#include <catch2/catch.hpp>

#include <cstring>

using namespace vmm;

namespace {

struct BzSpec {
    uint8_t setup_sects { 4 };
    uint16_t version { 0x020F };
    uint8_t loadflags { bootparam::LOADED_HIGH };
    uint16_t xloadflags { bootparam::XLF_KERNEL_64 | 0x2 };
    uint8_t relocatable { 1 };
    uint32_t kernel_alignment { 0x200000 };
    uint64_t pref_address { 0x1000000 };
    uint32_t init_size { 0x400000 };
    uint32_t initrd_addr_max { 0x7FFFFFFF };
    uint32_t cmdline_size { 2047 };
    uint16_t boot_flag { 0xAA55 };
    uint8_t header_length { 0x6A }; // the jump's second byte: the header ends at 0x202 + this (0x26C)
    size_t kernel_bytes { 0x3000 };
};

template<typename T>
void put(std::vector<uint8_t>& file, uint64_t offset, T value)
{
    std::memcpy(file.data() + offset, &value, sizeof(T));
}

std::vector<uint8_t> build_bzimage(BzSpec const& spec = {})
{
    uint64_t setup = (uint64_t(spec.setup_sects == 0 ? 4 : spec.setup_sects) + 1) * 512;
    std::vector<uint8_t> file(setup + spec.kernel_bytes, 0);
    for (size_t i = setup; i < file.size(); ++i)
        file[i] = static_cast<uint8_t>(i * 7);
    file[bootparam::SETUP_SECTS] = spec.setup_sects;
    put<uint16_t>(file, bootparam::BOOT_FLAG, spec.boot_flag);
    file[bootparam::JUMP] = 0xEB;
    file[bootparam::JUMP + 1] = spec.header_length;
    put<uint32_t>(file, bootparam::HEADER, bootparam::HDRS_MAGIC);
    put<uint16_t>(file, bootparam::VERSION, spec.version);
    file[bootparam::LOADFLAGS] = spec.loadflags;
    put<uint32_t>(file, bootparam::CODE32_START, 0x100000);
    put<uint32_t>(file, bootparam::INITRD_ADDR_MAX, spec.initrd_addr_max);
    put<uint32_t>(file, bootparam::KERNEL_ALIGNMENT, spec.kernel_alignment);
    file[bootparam::RELOCATABLE_KERNEL] = spec.relocatable;
    put<uint16_t>(file, bootparam::XLOADFLAGS, spec.xloadflags);
    put<uint32_t>(file, bootparam::CMDLINE_SIZE, spec.cmdline_size);
    put<uint64_t>(file, bootparam::PREF_ADDRESS, spec.pref_address);
    put<uint32_t>(file, bootparam::INIT_SIZE, spec.init_size);
    return file;
}

template<typename T>
T at(GuestMemory const& memory, uint64_t address)
{
    return memory.read_object<T>(address).value();
}

BzImageErrorKind error_of(std::vector<uint8_t> const& file)
{
    auto image = parse_bzimage(file);
    REQUIRE_FALSE(image.has_value());
    CHECK_FALSE(image.error().message.empty());
    return image.error().kind;
}

} // namespace

TEST_CASE("the kernel's kind comes from its first bytes", "[boot][linux]")
{
    CHECK(detect_kernel_kind(build_bzimage()) == KernelKind::BzImage);
    CHECK(detect_kernel_kind(test_support::build_elf({})) == KernelKind::Elf);
    std::vector<uint8_t> text(4096, 'x');
    CHECK(detect_kernel_kind(text) == KernelKind::Unknown);
    CHECK(detect_kernel_kind({}) == KernelKind::Unknown);
    std::vector<uint8_t> short_file(0x204, 0);
    CHECK(detect_kernel_kind(short_file) == KernelKind::Unknown);
}

TEST_CASE("a valid bzImage header is read", "[boot][linux]")
{
    auto image = parse_bzimage(build_bzimage());
    REQUIRE(image.has_value());
    CHECK(image->version == 0x020F);
    CHECK(image->kernel_offset == 5 * 512);
    CHECK(image->header_end == 0x26C);
    CHECK(image->relocatable);
    CHECK(image->kernel_alignment == 0x200000);
    CHECK(image->pref_address == 0x1000000);
    CHECK(image->init_size == 0x400000);

    BzSpec zero;
    zero.setup_sects = 0; // means 4
    CHECK(parse_bzimage(build_bzimage(zero))->kernel_offset == 5 * 512);
}

TEST_CASE("each bzImage header check refuses with its own reason", "[boot][linux]")
{
    std::vector<uint8_t> not_bz(8192, 0);
    CHECK(error_of(not_bz) == BzImageErrorKind::NotBzImage);

    auto short_file = build_bzimage();
    short_file.resize(0x240);
    CHECK(error_of(short_file) == BzImageErrorKind::Truncated);

    auto setup_only = build_bzimage();
    setup_only.resize(5 * 512);
    CHECK(error_of(setup_only) == BzImageErrorKind::Truncated);

    BzSpec spec;
    spec.boot_flag = 0;
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::BadBootFlag);

    spec = {};
    spec.version = 0x020B;
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::OldProtocol);
    CHECK(parse_bzimage(build_bzimage(spec)).error().message.find("2.11") != std::string::npos);

    spec = {};
    spec.loadflags = 0;
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::NotLoadedHigh);

    spec = {};
    spec.xloadflags = 0x2;
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::No64BitEntry);

    spec = {};
    spec.kernel_alignment = 0x300000;
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::BadAlignment);
    spec.kernel_alignment = 0;
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::BadAlignment);
    spec.relocatable = 0; // the alignment only matters to a relocatable kernel
    CHECK(parse_bzimage(build_bzimage(spec)).has_value());

    spec = {};
    spec.init_size = 0x1000;
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::BadInitSize);

    spec = {};
    spec.header_length = 0x40; // ends at 0x242, before fields we read
    CHECK(error_of(build_bzimage(spec)) == BzImageErrorKind::Truncated);
}

TEST_CASE("loading a bzImage writes the kernel, the zero page, the command line and the initrd", "[boot][linux]")
{
    auto memory = MUST(GuestMemory::create(128 * layout::MiB));
    auto file = build_bzimage();
    auto image = MUST(parse_bzimage(file));
    std::vector<uint8_t> initrd(10000, 0x5A);
    auto boot = load_bzimage(memory, file, image, "console=ttyS0 root=/dev/ram0", initrd, layout::RSDP);
    REQUIRE(boot.has_value());

    // Relocatable, pref_address aligned and in RAM: loaded there, entered at +0x200.
    CHECK(boot->load_address == 0x1000000);
    CHECK(boot->entry == 0x1000200);
    CHECK(boot->kernel_end == 0x1400000);
    CHECK(boot->zero_page == layout::ZERO_PAGE);
    CHECK(at<uint8_t>(memory, 0x1000000) == file[5 * 512]);
    CHECK(at<uint8_t>(memory, 0x1000000 + 0x2FFF) == file[5 * 512 + 0x2FFF]);

    uint64_t zp = layout::ZERO_PAGE;
    // The setup header is the file's, with the loader's fields filled in.
    CHECK(at<uint32_t>(memory, zp + bootparam::HEADER) == bootparam::HDRS_MAGIC);
    CHECK(at<uint16_t>(memory, zp + bootparam::VERSION) == 0x020F);
    CHECK(at<uint32_t>(memory, zp + bootparam::INIT_SIZE) == 0x400000);
    CHECK(at<uint8_t>(memory, zp + bootparam::TYPE_OF_LOADER) == 0xFF);
    CHECK(at<uint8_t>(memory, zp + bootparam::LOADFLAGS) == (bootparam::LOADED_HIGH | bootparam::CAN_USE_HEAP));
    CHECK(at<uint16_t>(memory, zp + bootparam::HEAP_END_PTR) == 0xFE00);
    CHECK(at<uint32_t>(memory, zp + bootparam::CODE32_START) == 0x1000000);
    CHECK(at<uint32_t>(memory, zp + bootparam::CMD_LINE_PTR) == layout::CMDLINE);
    CHECK(at<uint32_t>(memory, zp + bootparam::EXT_CMD_LINE_PTR) == 0);
    CHECK(at<uint64_t>(memory, zp + bootparam::ACPI_RSDP_ADDR) == layout::RSDP);
    char cmdline[64] {};
    REQUIRE(memory.read(layout::CMDLINE, { reinterpret_cast<uint8_t*>(cmdline), sizeof(cmdline) }).has_value());
    CHECK(std::string(cmdline) == "console=ttyS0 root=/dev/ram0");

    // The initrd: page-aligned, as high as low RAM allows, above the kernel, and its bytes there.
    uint32_t initrd_at = at<uint32_t>(memory, zp + bootparam::RAMDISK_IMAGE);
    CHECK(initrd_at == boot->initrd_address);
    CHECK(at<uint32_t>(memory, zp + bootparam::RAMDISK_SIZE) == 10000);
    CHECK(initrd_at % 4096 == 0);
    CHECK(initrd_at + 10000 <= 128 * layout::MiB);
    CHECK(initrd_at + 10000 + 4096 > 128 * layout::MiB);
    CHECK(initrd_at >= boot->kernel_end);
    CHECK(at<uint8_t>(memory, initrd_at) == 0x5A);
    CHECK(at<uint8_t>(memory, initrd_at + 9999) == 0x5A);

    // The e820 table is build_memmap's, ACPI included.
    auto map = build_memmap(memory, true);
    REQUIRE(at<uint8_t>(memory, zp + bootparam::E820_ENTRIES) == map.size());
    bool acpi = false;
    for (size_t i = 0; i < map.size(); ++i) {
        uint64_t e = zp + bootparam::E820_TABLE + i * 20;
        CHECK(at<uint64_t>(memory, e) == map[i].addr);
        CHECK(at<uint64_t>(memory, e + 8) == map[i].size);
        CHECK(at<uint32_t>(memory, e + 16) == static_cast<uint32_t>(map[i].type));
        if (at<uint32_t>(memory, e + 16) == 3)
            acpi = at<uint64_t>(memory, e) == layout::ACPI_TABLES_START;
    }
    CHECK(acpi);
    CHECK(at<uint32_t>(memory, zp + bootparam::E820_TABLE + 16) == 1); // RAM from 0
    CHECK(at<uint32_t>(memory, zp + bootparam::E820_TABLE + 20 + 16) == 2); // the EBDA, reserved
}

TEST_CASE("where a bzImage goes depends on its header and RAM", "[boot][linux]")
{
    auto memory = MUST(GuestMemory::create(64 * layout::MiB));

    BzSpec spec;
    spec.relocatable = 0; // moves itself to pref_address: loaded at 1 MiB, needs RAM from pref_address
    auto file = build_bzimage(spec);
    auto boot = load_bzimage(memory, file, MUST(parse_bzimage(file)), "", {}, 0);
    REQUIRE(boot.has_value());
    CHECK(boot->load_address == 0x100000);
    CHECK(boot->entry == 0x100200);
    CHECK(boot->kernel_end == 0x1400000);
    CHECK(boot->initrd_address == 0);
    CHECK(at<uint32_t>(memory, layout::ZERO_PAGE + bootparam::RAMDISK_IMAGE) == 0);

    spec = {};
    spec.pref_address = 0x1100000; // not 2 MiB aligned: 1 MiB, and the kernel aligns itself up
    file = build_bzimage(spec);
    boot = load_bzimage(memory, file, MUST(parse_bzimage(file)), "", {}, 0);
    REQUIRE(boot.has_value());
    CHECK(boot->load_address == 0x100000);
    CHECK(boot->kernel_end == 0x1100000 + 0x400000);

    spec = {};
    spec.init_size = 60 * layout::MiB; // from 16 MiB: past 64 MiB of RAM
    file = build_bzimage(spec);
    boot = load_bzimage(memory, file, MUST(parse_bzimage(file)), "", {}, 0);
    REQUIRE_FALSE(boot.has_value());
    CHECK(boot.error().find("more --memory") != std::string::npos);

    // An older protocol gets no acpi_rsdp_addr (the kernel finds the RSDP in the BIOS area).
    spec = {};
    spec.version = 0x020D;
    file = build_bzimage(spec);
    REQUIRE(memory.fill(layout::ZERO_PAGE, 4096, 0xEE).has_value());
    REQUIRE(load_bzimage(memory, file, MUST(parse_bzimage(file)), "", {}, layout::RSDP).has_value());
    CHECK(at<uint64_t>(memory, layout::ZERO_PAGE + bootparam::ACPI_RSDP_ADDR) == 0);
}

TEST_CASE("the initrd respects initrd_addr_max and must fit above the kernel", "[boot][linux]")
{
    auto memory = MUST(GuestMemory::create(256 * layout::MiB));
    BzSpec spec;
    spec.initrd_addr_max = 0x3FFFFFF; // the last byte at most at 64 MiB - 1
    auto file = build_bzimage(spec);
    std::vector<uint8_t> initrd(0x1800, 1);
    auto boot = load_bzimage(memory, file, MUST(parse_bzimage(file)), "", initrd, 0);
    REQUIRE(boot.has_value());
    CHECK(boot->initrd_address == 0x4000000 - 0x2000);

    std::vector<uint8_t> huge(60 * layout::MiB, 1); // 64 MiB limit - 20 MiB kernel end: no room
    auto refused = load_bzimage(memory, file, MUST(parse_bzimage(file)), "", huge, 0);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().find("initrd") != std::string::npos);

    CHECK(place_initrd(memory, 4096, 0x100000, 0x200000).value() == 0x1FF000);
    CHECK(place_initrd(memory, 4097, 0x100000, 0x200000).value() == 0x1FE000);
    CHECK_FALSE(place_initrd(memory, 0x200000, 0x100000, 0x200000).has_value());
    // Low RAM's end bounds it too.
    CHECK(place_initrd(memory, 4096, 0x100000, 4 * layout::GiB).value() == 256 * layout::MiB - 4096);
}

TEST_CASE("a command line longer than the kernel's cmdline_size is refused", "[boot][linux]")
{
    auto memory = MUST(GuestMemory::create(64 * layout::MiB));
    BzSpec spec;
    spec.cmdline_size = 10;
    auto file = build_bzimage(spec);
    auto image = MUST(parse_bzimage(file));
    CHECK(load_bzimage(memory, file, image, "0123456789", {}, 0).has_value());
    auto refused = load_bzimage(memory, file, image, "0123456789a", {}, 0);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().find("at most 10") != std::string::npos);
}

TEST_CASE("the 64-bit entry's page tables identity-map 4 GiB in 2 MiB pages", "[boot][linux]")
{
    auto memory = MUST(GuestMemory::create(16 * layout::MiB));
    REQUIRE(memory.fill(layout::BOOT_PML4, layout::BOOT_PAGE_TABLES_END - layout::BOOT_PML4, 0xFF).has_value());
    write_identity_page_tables(memory);
    CHECK(at<uint64_t>(memory, layout::BOOT_PML4) == (layout::BOOT_PDPT | 3));
    CHECK(at<uint64_t>(memory, layout::BOOT_PML4 + 8) == 0);
    for (uint64_t gib = 0; gib < 4; ++gib)
        CHECK(at<uint64_t>(memory, layout::BOOT_PDPT + gib * 8) == ((layout::BOOT_PD + gib * 4096) | 3));
    CHECK(at<uint64_t>(memory, layout::BOOT_PDPT + 4 * 8) == 0);
    CHECK(at<uint64_t>(memory, layout::BOOT_PD) == 0x83);
    CHECK(at<uint64_t>(memory, layout::BOOT_PD + 8) == (0x200000 | 0x83));
    CHECK(at<uint64_t>(memory, layout::BOOT_PD + 4096 + 8) == ((layout::GiB + 0x200000) | 0x83));
    // The last 2 MiB below 4 GiB, where the LAPIC and IOAPIC are.
    CHECK(at<uint64_t>(memory, layout::BOOT_PAGE_TABLES_END - 8) == ((4 * layout::GiB - 0x200000) | 0x83));
}

TEST_CASE("the 64-bit entry state is long mode with the boot GDT's selectors", "[boot][linux]")
{
    auto memory = MUST(GuestMemory::create(16 * layout::MiB));
    uint16_t limit = write_boot_gdt(memory);
    CHECK(limit == 47);
    CHECK(at<uint64_t>(memory, layout::BOOT_GDT + 0x10) == 0x00AF9B000000FFFF);
    CHECK(at<uint64_t>(memory, layout::BOOT_GDT + 0x18) == 0x00CF93000000FFFF);

    kvm_sregs sregs {};
    sregs.apic_base = 0xFEE00900;
    BootEntry entry { BootEntry::Mode::Linux64, 0x1000200, layout::ZERO_PAGE, layout::BOOT_GDT, limit,
        layout::BOOT_PML4 };
    set_boot_entry_sregs(sregs, entry);
    CHECK(sregs.cr0 == 0x80000011);
    CHECK(sregs.cr3 == layout::BOOT_PML4);
    CHECK(sregs.cr4 == 0x20);
    CHECK(sregs.efer == 0x500);
    CHECK(sregs.cs.selector == 0x10);
    CHECK(sregs.cs.l == 1);
    CHECK(sregs.cs.db == 0);
    CHECK(sregs.cs.type == 0xB);
    CHECK(sregs.ds.selector == 0x18);
    CHECK(sregs.ss.selector == 0x18);
    CHECK(sregs.ss.type == 0x3);
    CHECK(sregs.tr.selector == 0x20);
    CHECK(sregs.gdt.base == layout::BOOT_GDT);
    CHECK(sregs.gdt.limit == 47);
    CHECK(sregs.apic_base == 0xFEE00900);

    auto regs = boot_entry_regs(entry);
    CHECK(regs.rip == 0x1000200);
    CHECK(regs.rsi == layout::ZERO_PAGE);
    CHECK(regs.rflags == 0x2); // interrupts off

    BootEntry pvh { BootEntry::Mode::Pvh32, 0x101000, layout::START_INFO, 0, 0, 0 };
    set_boot_entry_sregs(sregs, pvh);
    CHECK(sregs.cr0 == 0x11);
    CHECK(sregs.efer == 0);
    CHECK(boot_entry_regs(pvh).rbx == layout::START_INFO);
}

TEST_CASE("a PVH ELF with a Linux-owned note is a vmlinux", "[boot][linux]")
{
    test_support::ElfSpec spec;
    spec.linux_note = true; // after the entry note: the reader walks on past it
    auto image = parse_pvh_elf(test_support::build_elf(spec));
    REQUIRE(image.has_value());
    CHECK(image->linux_notes);
    CHECK(image->pvh_entry == 0x100000);
    CHECK_FALSE(parse_pvh_elf(test_support::build_elf({}))->linux_notes);
}

TEST_CASE("a PVH kernel gets its initrd as the one module", "[boot][linux]")
{
    auto memory = MUST(GuestMemory::create(32 * layout::MiB));
    auto file = test_support::build_elf({});
    auto image = MUST(parse_pvh_elf(file));
    CHECK_FALSE(image.linux_notes);
    std::vector<uint8_t> initrd(5000, 0xA5);
    auto boot = load_pvh_kernel(memory, file, image, "", 0, initrd);
    REQUIRE(boot.has_value());
    auto info = at<pvh::StartInfo>(memory, layout::START_INFO);
    CHECK(info.nr_modules == 1);
    CHECK(info.modlist_paddr == layout::MODLIST);
    auto module = at<pvh::ModlistEntry>(memory, layout::MODLIST);
    CHECK(module.paddr == boot->initrd_address);
    CHECK(module.size == 5000);
    CHECK(module.cmdline_paddr == 0);
    CHECK(module.paddr % 4096 == 0);
    CHECK(module.paddr >= boot->kernel_end);
    CHECK(module.paddr + module.size <= 32 * layout::MiB);
    CHECK(at<uint8_t>(memory, module.paddr + 4999) == 0xA5);

    // Without one, no module.
    auto memory2 = MUST(GuestMemory::create(32 * layout::MiB));
    REQUIRE(load_pvh_kernel(memory2, file, image, "", 0).has_value());
    CHECK(at<pvh::StartInfo>(memory2, layout::START_INFO).nr_modules == 0);

    std::vector<uint8_t> huge(40 * layout::MiB, 1);
    CHECK_FALSE(load_pvh_kernel(memory2, file, image, "", 0, huge).has_value());
}

TEST_CASE("a Linux kernel is refused a topology with APIC ids above 254", "[boot][linux]")
{
    // 255 single-thread cores: APIC ids 0-254, all within Linux's reach.
    CHECK_FALSE(linux_topology_error(CpuTopology { 1, 1, 255, 1 }).has_value());
    // Two sockets of 127 cores each take 7 bits of core id: socket 1 ends at APIC id 128 + 126 = 254.
    CHECK_FALSE(linux_topology_error(CpuTopology { 2, 1, 127, 1 }).has_value());

    SECTION("one slot too many")
    {
        auto error = linux_topology_error(CpuTopology { 1, 1, 256, 1 });
        REQUIRE(error.has_value());
        CHECK(error->find("CPU slot 255 of 256 would get APIC id 255") != std::string::npos);
        CHECK(error->find("at most 255 CPUs") != std::string::npos);
    }
    SECTION("few CPUs, but a sparse APIC id space")
    {
        // Three cores take two bits, so socket 64 (the 65th) starts at APIC id 256 although there are 195 slots.
        auto error = linux_topology_error(CpuTopology { 65, 1, 3, 1 });
        REQUIRE(error.has_value());
        CHECK(error->find("CPU slot 192 of 195 would get APIC id 256") != std::string::npos);
    }
    SECTION("hot-pluggable slots count as well as present ones")
    {
        auto error = linux_topology_error(CpuTopology { 2, 1, 256, 1 });
        REQUIRE(error.has_value());
        CHECK(error->find("CPU slot 255 of 512 would get APIC id 255") != std::string::npos);
    }
}
