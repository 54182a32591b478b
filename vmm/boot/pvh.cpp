// load_pvh_kernel: every segment is checked against RAM and the boot-data area before anything is copied.
#include "pvh.hpp"

#include "../arch/x86_64/layout.hpp"
#include "linux.hpp"

#include <fmt/format.h>

namespace vmm {

std::vector<pvh::MemmapEntry> build_memmap(GuestMemory const& memory, bool acpi_tables)
{
    using pvh::MemType;
    std::vector<pvh::MemmapEntry> map;
    auto add = [&](uint64_t start, uint64_t end, MemType type) {
        if (end > start)
            map.push_back({ start, end - start, type, 0 });
    };
    auto low = memory.regions()[0];
    uint64_t low_end = low.guest_address + low.size;
    add(0, layout::EBDA_START, MemType::Ram);
    add(layout::EBDA_START, layout::ACPI_TABLES_START, MemType::Reserved);
    add(layout::ACPI_TABLES_START, layout::ACPI_TABLES_END, acpi_tables ? MemType::Acpi : MemType::Reserved);
    add(layout::ACPI_TABLES_END, layout::BIOS_AREA_END, MemType::Reserved);
    add(layout::BIOS_AREA_END, low_end, MemType::Ram);
    for (auto const& region : memory.regions().subspan(1))
        add(region.guest_address, region.guest_address + region.size, MemType::Ram);
    return map;
}

cpuplug::Result<PvhBoot, std::string> load_pvh_kernel(GuestMemory const& memory, std::span<uint8_t const> file,
    ElfImage const& image, std::string_view cmdline, uint64_t rsdp_address, std::span<uint8_t const> initrd)
{
    PvhBoot boot;
    for (auto const& segment : image.segments) {
        uint64_t start = segment.physical_address;
        uint64_t end = start + segment.memory_size;
        if (start < layout::KERNEL_MIN_ADDRESS)
            return cpuplug::unexpected(fmt::format(
                "kernel segment [{:#x}, {:#x}) lies below 1 MiB, where cpuplug keeps the boot tables", start, end));
        if (!memory.contains(start, segment.memory_size))
            return cpuplug::unexpected(fmt::format(
                "kernel segment [{:#x}, {:#x}) does not fit in guest RAM ({} MiB): give the VM more --memory", start,
                end, memory.ram_bytes() / layout::MiB));
        // Bounds were checked by parse_pvh_elf (file) and just above (RAM), so these cannot fail.
        MUST(memory.write(start, file.subspan(segment.file_offset, segment.file_size)));
        MUST(memory.fill(start + segment.file_size, segment.memory_size - segment.file_size, 0));
        boot.kernel_end = std::max(boot.kernel_end, end);
    }
    // Placed before the boot tables are written, so a refusal leaves them as they were.
    if (!initrd.empty())
        boot.initrd_address = TRY(place_initrd(memory, initrd.size(), boot.kernel_end, layout::MMIO_HOLE_START));

    if (cmdline.size() + 1 > layout::CMDLINE_MAX)
        return cpuplug::unexpected(fmt::format(
            "the kernel command line is {} bytes; at most {} fit", cmdline.size(), layout::CMDLINE_MAX - 1));
    MUST(memory.write(layout::CMDLINE, std::span(reinterpret_cast<uint8_t const*>(cmdline.data()), cmdline.size())));
    MUST(memory.fill(layout::CMDLINE + cmdline.size(), 1, 0));

    auto memmap = build_memmap(memory, rsdp_address != 0);
    CPUPLUG_ASSERT(layout::MEMMAP + memmap.size() * sizeof(pvh::MemmapEntry) <= layout::MEMMAP_END);
    MUST(memory.write(layout::MEMMAP,
        std::span(reinterpret_cast<uint8_t const*>(memmap.data()), memmap.size() * sizeof(pvh::MemmapEntry))));

    pvh::StartInfo info {};
    info.magic = pvh::START_INFO_MAGIC;
    info.version = 1;
    info.cmdline_paddr = layout::CMDLINE;
    info.rsdp_paddr = rsdp_address;
    info.memmap_paddr = layout::MEMMAP;
    info.memmap_entries = static_cast<uint32_t>(memmap.size());
    if (!initrd.empty()) {
        MUST(memory.write(boot.initrd_address, initrd));
        pvh::ModlistEntry module {};
        module.paddr = boot.initrd_address;
        module.size = initrd.size();
        MUST(memory.write_object(layout::MODLIST, module));
        info.nr_modules = 1;
        info.modlist_paddr = layout::MODLIST;
    }
    MUST(memory.write_object(layout::START_INFO, info));

    boot.entry = image.pvh_entry;
    boot.start_info = static_cast<uint32_t>(layout::START_INFO);
    return boot;
}

} // namespace vmm
