// IoBus: sorted ranges, binary search, and rate-limited warnings for accesses nobody claims.
#include "io_bus.hpp"

#include <algorithm>
#include <cstring>
#include <spdlog/spdlog.h>

namespace vmm {

char const* to_string(BusError error)
{
    switch (error) {
    case BusError::EmptyRange:
        return "empty range";
    case BusError::Overflow:
        return "range wraps around the address space";
    case BusError::Overlap:
        return "range overlaps a registered device";
    }
    return "unknown bus error";
}

cpuplug::Result<void, BusError> IoBus::insert(IoRange range, std::shared_ptr<IoDevice> device)
{
    if (range.size == 0 || !device)
        return cpuplug::unexpected(BusError::EmptyRange);
    if (range.base + range.size < range.base)
        return cpuplug::unexpected(BusError::Overflow);
    for (auto const& entry : m_entries)
        if (range.base < entry.range.base + entry.range.size && entry.range.base < range.base + range.size)
            return cpuplug::unexpected(BusError::Overlap);
    auto position = std::lower_bound(m_entries.begin(), m_entries.end(), range.base,
        [](Entry const& entry, uint64_t base) { return entry.range.base < base; });
    m_entries.insert(position, Entry { range, std::move(device) });
    return {};
}

IoBus::Entry const* IoBus::find(uint64_t address, uint64_t length) const
{
    auto position = std::upper_bound(m_entries.begin(), m_entries.end(), address,
        [](uint64_t value, Entry const& entry) { return value < entry.range.base; });
    if (position == m_entries.begin())
        return nullptr;
    auto const& entry = *(position - 1);
    uint64_t offset = address - entry.range.base;
    if (offset >= entry.range.size || length > entry.range.size - offset)
        return nullptr;
    return &entry;
}

void IoBus::warn_unclaimed(char const* what, uint64_t address, size_t length) const
{
    // The first few are worth a warning; a guest probing ports in a loop must not flood the log.
    VMM_GUEST_LOG(m_unclaimed, warn, "{}: unclaimed {} of {} bytes at {:#x}", m_name, what, length, address);
}

bool IoBus::read(uint64_t address, std::span<uint8_t> data) const
{
    std::memset(data.data(), 0, data.size());
    auto const* entry = find(address, data.size());
    if (!entry) {
        std::memset(data.data(), 0xFF, data.size());
        warn_unclaimed("read", address, data.size());
        return false;
    }
    entry->device->read(address - entry->range.base, data);
    return true;
}

bool IoBus::write(uint64_t address, std::span<uint8_t const> data) const
{
    auto const* entry = find(address, data.size());
    if (!entry) {
        warn_unclaimed("write", address, data.size());
        return false;
    }
    entry->device->write(address - entry->range.base, data);
    return true;
}

} // namespace vmm
