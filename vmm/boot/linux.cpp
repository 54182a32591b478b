// parse_bzimage checks every header field the 64-bit entry relies on before load_bzimage trusts it; the loader
// checks RAM before it writes anything.
#include "linux.hpp"

#include "../arch/x86_64/layout.hpp"
#include "pvh.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace vmm {

namespace {

constexpr uint64_t PAGE = 0x1000;

template<typename T>
T get(std::span<uint8_t const> bytes, uint64_t offset)
{
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

template<typename T>
void put(std::span<uint8_t> bytes, uint64_t offset, T value)
{
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

cpuplug::Unexpected<BzImageError> fail(BzImageErrorKind kind, std::string message)
{
    return cpuplug::unexpected(BzImageError { kind, std::move(message) });
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

uint64_t low_ram_end(GuestMemory const& memory)
{
    auto low = memory.regions()[0];
    return low.guest_address + low.size;
}

std::string version_text(uint16_t version) { return fmt::format("{}.{:02}", version >> 8, version & 0xFF); }

} // namespace

KernelKind detect_kernel_kind(std::span<uint8_t const> file)
{
    if (file.size() >= bootparam::HEADER + 4 && get<uint32_t>(file, bootparam::HEADER) == bootparam::HDRS_MAGIC)
        return KernelKind::BzImage;
    if (file.size() >= 4 && std::memcmp(file.data(), "\x7f" "ELF", 4) == 0)
        return KernelKind::Elf;
    return KernelKind::Unknown;
}

cpuplug::Result<BzImage, BzImageError> parse_bzimage(std::span<uint8_t const> file)
{
    if (file.size() < bootparam::HEADER + 4 || get<uint32_t>(file, bootparam::HEADER) != bootparam::HDRS_MAGIC)
        return fail(BzImageErrorKind::NotBzImage, "not a bzImage (no \"HdrS\" setup header magic at 0x202)");
    if (file.size() < bootparam::HEADER_FIELDS_END)
        return fail(BzImageErrorKind::Truncated,
            fmt::format("truncated bzImage: {} bytes, not even a whole setup header", file.size()));
    if (get<uint16_t>(file, bootparam::BOOT_FLAG) != bootparam::BOOT_FLAG_MAGIC)
        return fail(BzImageErrorKind::BadBootFlag,
            fmt::format("bad boot flag {:#06x} at 0x1fe (expected 0xaa55)", get<uint16_t>(file, bootparam::BOOT_FLAG)));

    BzImage image;
    image.version = get<uint16_t>(file, bootparam::VERSION);
    if (image.version < bootparam::MIN_VERSION)
        return fail(BzImageErrorKind::OldProtocol,
            fmt::format("boot protocol {} is older than 2.12, the first that says whether a kernel has a 64-bit entry",
                version_text(image.version)));
    if (!(file[bootparam::LOADFLAGS] & bootparam::LOADED_HIGH))
        return fail(BzImageErrorKind::NotLoadedHigh, "a zImage (loaded below 1 MiB): only bzImages are supported");
    if (!(get<uint16_t>(file, bootparam::XLOADFLAGS) & bootparam::XLF_KERNEL_64))
        return fail(BzImageErrorKind::No64BitEntry,
            "the kernel has no 64-bit entry point (xloadflags lacks XLF_KERNEL_64): a 32-bit kernel?");

    uint8_t setup_sects = file[bootparam::SETUP_SECTS];
    image.kernel_offset = (uint64_t(setup_sects == 0 ? 4 : setup_sects) + 1) * 512;
    image.header_end = bootparam::HEADER + file[bootparam::JUMP + 1];
    // The header we copy must hold every field we read or write. It always ends inside the setup sectors:
    // 0x202 + 255 is below 0x400, where the protected-mode kernel starts at the earliest.
    if (image.header_end < bootparam::HEADER_FIELDS_END)
        return fail(BzImageErrorKind::Truncated,
            fmt::format("the setup header ends at {:#x}, before the boot protocol 2.12 fields end at {:#x}",
                image.header_end, bootparam::HEADER_FIELDS_END));
    if (file.size() <= image.kernel_offset)
        return fail(BzImageErrorKind::Truncated,
            fmt::format("truncated bzImage: {} bytes, but the protected-mode kernel starts at {:#x}", file.size(),
                image.kernel_offset));

    image.relocatable = file[bootparam::RELOCATABLE_KERNEL] != 0;
    image.kernel_alignment = get<uint32_t>(file, bootparam::KERNEL_ALIGNMENT);
    image.pref_address = get<uint64_t>(file, bootparam::PREF_ADDRESS);
    image.init_size = get<uint32_t>(file, bootparam::INIT_SIZE);
    image.initrd_addr_max = get<uint32_t>(file, bootparam::INITRD_ADDR_MAX);
    image.cmdline_size = get<uint32_t>(file, bootparam::CMDLINE_SIZE);
    // The decompressor aligns its run address up to kernel_alignment: it must be a power of two, and a page
    // at least (the page tables it builds map pages).
    if (image.relocatable
        && (image.kernel_alignment < PAGE || (image.kernel_alignment & (image.kernel_alignment - 1)) != 0))
        return fail(BzImageErrorKind::BadAlignment,
            fmt::format("kernel_alignment {:#x} is not a power of two of at least 4 KiB", image.kernel_alignment));
    if (image.init_size < file.size() - image.kernel_offset)
        return fail(BzImageErrorKind::BadInitSize,
            fmt::format("init_size {:#x} is smaller than the kernel's {:#x} bytes", image.init_size,
                file.size() - image.kernel_offset));
    return image;
}

cpuplug::Result<uint64_t, std::string> place_initrd(GuestMemory const& memory, uint64_t size, uint64_t lowest,
    uint64_t limit)
{
    uint64_t top = std::min(limit, low_ram_end(memory));
    uint64_t address = top >= size ? (top - size) / PAGE * PAGE : 0;
    lowest = align_up(lowest, PAGE);
    if (top < size || address < lowest)
        return cpuplug::unexpected(fmt::format(
            "the initrd ({} KiB) does not fit between the kernel's end {:#x} and {:#x}: give the VM more --memory",
            (size + 1023) / 1024, lowest, top));
    return address;
}

void write_identity_page_tables(GuestMemory const& memory)
{
    constexpr uint64_t PRESENT = 1u << 0, WRITABLE = 1u << 1, PAGE_SIZE = 1u << 7;
    MUST(memory.fill(layout::BOOT_PML4, layout::BOOT_PAGE_TABLES_END - layout::BOOT_PML4, 0));
    MUST(memory.write_object(layout::BOOT_PML4, layout::BOOT_PDPT | PRESENT | WRITABLE));
    std::array<uint64_t, 512> directory {};
    for (uint64_t gib = 0; gib < 4; ++gib) {
        uint64_t table = layout::BOOT_PD + gib * PAGE;
        MUST(memory.write_object(layout::BOOT_PDPT + gib * 8, table | PRESENT | WRITABLE));
        for (uint64_t i = 0; i < directory.size(); ++i)
            directory[i] = (gib * layout::GiB + i * 2 * layout::MiB) | PRESENT | WRITABLE | PAGE_SIZE;
        MUST(memory.write_object(table, directory));
    }
}

uint16_t write_boot_gdt(GuestMemory const& memory)
{
    // Flat 4 GiB descriptors: base 0, limit 0xFFFFF in 4 KiB units (G). Code: present, DPL0, execute/read,
    // L (64-bit). Data: present, DPL0, read/write, D/B. The TSS: 64-bit busy TSS, limit 0x67, two slots.
    std::array<uint64_t, 6> gdt {
        0,
        0,
        0x00AF9B000000FFFF, // 0x10 __BOOT_CS
        0x00CF93000000FFFF, // 0x18 __BOOT_DS
        0x00008B0000000067, // 0x20 TSS, low half
        0,                  //      TSS, high half (base 63:32)
    };
    MUST(memory.write_object(layout::BOOT_GDT, gdt));
    return static_cast<uint16_t>(sizeof(gdt) - 1);
}

cpuplug::Result<LinuxBoot, std::string> load_bzimage(GuestMemory const& memory, std::span<uint8_t const> file,
    BzImage const& image, std::string_view cmdline, std::span<uint8_t const> initrd, uint64_t rsdp_address)
{
    uint64_t const ram_end = low_ram_end(memory);
    auto kernel = file.subspan(image.kernel_offset);

    // A relocatable kernel runs where it is loaded, aligned up to kernel_alignment but never below
    // pref_address (its LOAD_PHYSICAL_ADDR); loading it at pref_address spares the decompressor a copy.
    // A kernel that is not relocatable moves itself to pref_address whatever we do.
    LinuxBoot boot;
    boot.load_address = layout::KERNEL_MIN_ADDRESS;
    if (image.relocatable && image.pref_address >= layout::KERNEL_MIN_ADDRESS
        && image.pref_address % image.kernel_alignment == 0 && image.pref_address + image.init_size <= ram_end)
        boot.load_address = image.pref_address;
    uint64_t runs_at = image.relocatable
        ? std::max(align_up(boot.load_address, image.kernel_alignment), image.pref_address)
        : std::max(boot.load_address, image.pref_address);
    boot.kernel_end = std::max(runs_at + image.init_size, boot.load_address + kernel.size());
    if (boot.kernel_end > ram_end)
        return cpuplug::unexpected(fmt::format(
            "the kernel needs RAM up to {:#x} (init_size {} MiB from {:#x}) but low RAM ends at {:#x}: give the VM "
            "more --memory", boot.kernel_end, (image.init_size + layout::MiB - 1) / layout::MiB, runs_at, ram_end));

    // cmdline_size is the longest line the kernel keeps, without its NUL.
    uint64_t cmdline_max = std::min<uint64_t>(image.cmdline_size, layout::CMDLINE_MAX - 1);
    if (cmdline.size() > cmdline_max)
        return cpuplug::unexpected(
            fmt::format("the kernel command line is {} bytes; this kernel takes at most {}", cmdline.size(), cmdline_max));

    if (!initrd.empty()) {
        // initrd_addr_max is inclusive; below 4 GiB either way, as ramdisk_image is 32 bits here.
        uint64_t limit = std::min<uint64_t>(uint64_t(image.initrd_addr_max) + 1, layout::MMIO_HOLE_START);
        boot.initrd_address = TRY(place_initrd(memory, initrd.size(), boot.kernel_end, limit));
    }

    MUST(memory.write(boot.load_address, kernel));
    if (!initrd.empty())
        MUST(memory.write(boot.initrd_address, initrd));
    MUST(memory.write(layout::CMDLINE, std::span(reinterpret_cast<uint8_t const*>(cmdline.data()), cmdline.size())));
    MUST(memory.fill(layout::CMDLINE + cmdline.size(), 1, 0));

    // The zero page: the file's setup header, then what a boot loader fills in.
    std::array<uint8_t, bootparam::SIZE> zero_page {};
    std::span<uint8_t> zp(zero_page);
    std::memcpy(zp.data() + bootparam::SETUP_HEADER, file.data() + bootparam::SETUP_HEADER,
        image.header_end - bootparam::SETUP_HEADER);
    zp[bootparam::TYPE_OF_LOADER] = bootparam::LOADER_UNDEFINED;
    // CAN_USE_HEAP with the conventional heap end matters only to the real-mode setup code, which the 64-bit
    // entry skips; set as every loader does, so the header reads the same to the kernel whichever way it came.
    zp[bootparam::LOADFLAGS] |= bootparam::CAN_USE_HEAP;
    put<uint16_t>(zp, bootparam::HEAP_END_PTR, 0xFE00);
    put<uint32_t>(zp, bootparam::CODE32_START, static_cast<uint32_t>(boot.load_address));
    put<uint32_t>(zp, bootparam::CMD_LINE_PTR, static_cast<uint32_t>(layout::CMDLINE));
    put<uint32_t>(zp, bootparam::RAMDISK_IMAGE, static_cast<uint32_t>(boot.initrd_address));
    put<uint32_t>(zp, bootparam::RAMDISK_SIZE, static_cast<uint32_t>(initrd.size()));
    if (image.version >= bootparam::RSDP_VERSION)
        put<uint64_t>(zp, bootparam::ACPI_RSDP_ADDR, rsdp_address);

    auto memmap = build_memmap(memory, rsdp_address != 0);
    CPUPLUG_ASSERT(memmap.size() <= bootparam::E820_MAX_ENTRIES);
    zp[bootparam::E820_ENTRIES] = static_cast<uint8_t>(memmap.size());
    for (size_t i = 0; i < memmap.size(); ++i) {
        uint64_t at = bootparam::E820_TABLE + i * bootparam::E820_ENTRY_SIZE;
        put<uint64_t>(zp, at, memmap[i].addr);
        put<uint64_t>(zp, at + 8, memmap[i].size);
        put<uint32_t>(zp, at + 16, static_cast<uint32_t>(memmap[i].type)); // e820 and PVH share the numbering
    }
    MUST(memory.write(layout::ZERO_PAGE, zp));

    boot.gdt_base = layout::BOOT_GDT;
    boot.gdt_limit = write_boot_gdt(memory);
    write_identity_page_tables(memory);
    boot.page_tables = layout::BOOT_PML4;
    boot.zero_page = layout::ZERO_PAGE;
    boot.entry = boot.load_address + bootparam::ENTRY_64_OFFSET;
    return boot;
}

std::optional<std::string> linux_topology_error(CpuTopology const& topology)
{
    // APIC ids grow with the slot index, so the last slot has the highest.
    uint32_t last = topology.max_cpus() - 1;
    uint32_t highest = apic_id_from_index(topology, last);
    if (highest <= LINUX_MAX_APIC_ID)
        return std::nullopt;
    uint32_t first_over = last;
    while (first_over > 0 && apic_id_from_index(topology, first_over - 1) > LINUX_MAX_APIC_ID)
        --first_over;
    return fmt::format("CPU slot {} of {} would get APIC id {}, and Linux brings up no CPU above APIC id {} here (that "
                       "needs interrupt remapping or an extended MSI destination id, which KVM's in-kernel IOAPIC "
                       "lacks): give at most {} CPUs, maxcpus included, with APIC ids below 255",
        first_over, topology.max_cpus(), apic_id_from_index(topology, first_over), LINUX_MAX_APIC_ID,
        LINUX_MAX_APIC_ID + 1);
}

} // namespace vmm
