// GuestMemory: the RAM mapping and its bounds checks.
#include "guest_memory.hpp"

#include "../arch/x86_64/layout.hpp"

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>
#include <sys/mman.h>

namespace vmm {

std::string MemoryError::message() const
{
    return fmt::format("guest-physical range [{:#x}, {:#x}) is outside guest RAM", guest_address,
        guest_address + length);
}

SysResult<GuestMemory> GuestMemory::create(uint64_t ram_bytes)
{
    // SAFETY: private anonymous memory, NORESERVE so untouched guest pages cost nothing; the Mapping
    // unmaps it after the VM (which references it through memory slots) is gone, see Machine's member order.
    auto mapping = TRY(Mapping::map(static_cast<size_t>(ram_bytes), PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, "mmap(guest RAM)"));
    std::vector<MemoryRegion> regions;
    uint64_t low = ram_bytes < layout::MMIO_HOLE_START ? ram_bytes : layout::MMIO_HOLE_START;
    regions.push_back({ 0, low, 0 });
    if (ram_bytes > low)
        regions.push_back({ layout::HIGH_RAM_START, ram_bytes - low, low });
    return GuestMemory(std::move(mapping), std::move(regions));
}

bool GuestMemory::contains(uint64_t guest_address, uint64_t length) const
{
    return slice(guest_address, length).has_value();
}

MemoryResult<std::span<uint8_t>> GuestMemory::slice(uint64_t guest_address, uint64_t length) const
{
    for (auto const& region : m_regions) {
        if (guest_address < region.guest_address)
            continue;
        uint64_t offset = guest_address - region.guest_address;
        // Written to avoid overflow for hostile addresses and lengths near 2^64.
        if (offset > region.size || length > region.size - offset)
            continue;
        return std::span<uint8_t>(host_base() + region.host_offset + offset, static_cast<size_t>(length));
    }
    return cpuplug::unexpected(MemoryError { guest_address, length });
}

std::span<uint8_t const> GuestMemory::ram_from(uint64_t guest_address, uint64_t max_length) const
{
    for (auto const& region : m_regions) {
        if (guest_address < region.guest_address || guest_address - region.guest_address >= region.size)
            continue;
        uint64_t offset = guest_address - region.guest_address;
        uint64_t length = std::min(max_length, region.size - offset);
        return { host_base() + region.host_offset + offset, static_cast<size_t>(length) };
    }
    return {};
}

MemoryResult<void> GuestMemory::write(uint64_t guest_address, std::span<uint8_t const> bytes) const
{
    auto target = TRY(slice(guest_address, bytes.size()));
    if (!bytes.empty())
        std::memcpy(target.data(), bytes.data(), bytes.size());
    return {};
}

MemoryResult<void> GuestMemory::read(uint64_t guest_address, std::span<uint8_t> bytes) const
{
    auto source = TRY(slice(guest_address, bytes.size()));
    if (!bytes.empty())
        std::memcpy(bytes.data(), source.data(), bytes.size());
    return {};
}

MemoryResult<void> GuestMemory::fill(uint64_t guest_address, uint64_t length, uint8_t value) const
{
    auto target = TRY(slice(guest_address, length));
    if (!target.empty())
        std::memset(target.data(), value, target.size());
    return {};
}

SysResult<void> GuestMemory::discard_all() const
{
    // A private anonymous mapping refills from the zero page after MADV_DONTNEED; KVM's MMU notifier drops
    // its own mappings of these pages at the same time.
    if (::madvise(m_mapping.as<uint8_t>(), m_mapping.size(), MADV_DONTNEED) != 0)
        return sys_error(errno, "madvise(MADV_DONTNEED, guest RAM)");
    return {};
}

} // namespace vmm
