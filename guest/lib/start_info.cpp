// PVH start-info validation: magic, version >= 1 with a memory map (Linux insists on both), bounded sizes.
#include <guest/lib/start_info.hpp>

#include <guest/lib/cmdline.hpp>

namespace guest {

namespace {
// More entries than any sane loader writes; a larger count is treated as corrupt rather than walked.
constexpr uint32_t MAX_MEMMAP_ENTRIES = 128;
} // namespace

char const* to_string(StartInfoError error)
{
    switch (error) {
    case StartInfoError::Unmapped:
        return "start info or its tables lie outside mapped memory";
    case StartInfoError::BadMagic:
        return "start info has the wrong magic (not booted through PVH?)";
    case StartInfoError::OldVersion:
        return "start info version 0 has no memory map";
    case StartInfoError::NoMemmap:
        return "start info has an empty or oversized memory map";
    }
    return "unknown start info error";
}

cpuplug::Result<BootInfo, StartInfoError> parse_start_info(uint64_t address, PhysicalView view)
{
    auto const* info = view.at<pvh::StartInfo>(address);
    if (!info)
        return cpuplug::unexpected(StartInfoError::Unmapped);
    if (info->magic != pvh::START_INFO_MAGIC)
        return cpuplug::unexpected(StartInfoError::BadMagic);
    if (info->version < 1)
        return cpuplug::unexpected(StartInfoError::OldVersion);
    if (info->memmap_entries == 0 || info->memmap_entries > MAX_MEMMAP_ENTRIES)
        return cpuplug::unexpected(StartInfoError::NoMemmap);

    BootInfo boot;
    boot.start_info = info;
    boot.memmap = view.at<pvh::MemmapEntry>(info->memmap_paddr, info->memmap_entries);
    if (!boot.memmap)
        return cpuplug::unexpected(StartInfoError::Unmapped);
    boot.memmap_entries = info->memmap_entries;
    for (uint32_t i = 0; i < boot.memmap_entries; ++i)
        if (boot.memmap[i].type == pvh::MemType::Ram)
            boot.ram_bytes += boot.memmap[i].size;

    if (info->cmdline_paddr != 0) {
        uint64_t readable = view.readable(view.context, info->cmdline_paddr);
        if (readable == 0)
            return cpuplug::unexpected(StartInfoError::Unmapped);
        auto const* text = static_cast<char const*>(view.pointer(view.context, info->cmdline_paddr));
        size_t bound = readable < Cmdline::MAX_LENGTH ? static_cast<size_t>(readable) : Cmdline::MAX_LENGTH;
        boot.cmdline = StringView(text, bounded_length(text, bound));
    }
    boot.rsdp_address = info->rsdp_paddr;
    return boot;
}

} // namespace guest
