// GuestMemory: guest RAM as one MAP_NORESERVE mapping, split around the MMIO hole, with bounds-checked
// access by guest-physical address. Nothing else in the VMM touches guest RAM through raw pointers.
#pragma once

#include "../kvm/unique_fd.hpp"

#include <cpuplug/base/result.hpp>

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace vmm {

struct MemoryRegion {
    uint64_t guest_address;
    uint64_t size;
    uint64_t host_offset; // into the one mapping
};

struct MemoryError {
    uint64_t guest_address;
    uint64_t length;
    std::string message() const;
};

template<typename T>
using MemoryResult = cpuplug::Result<T, MemoryError>;

class GuestMemory {
public:
    // RAM below 3 GiB sits at 0; the rest at 4 GiB.
    static SysResult<GuestMemory> create(uint64_t ram_bytes);

    uint64_t ram_bytes() const { return m_mapping.size(); }
    std::span<MemoryRegion const> regions() const { return m_regions; }
    uint8_t* host_base() const { return m_mapping.as<uint8_t>(); }

    bool contains(uint64_t guest_address, uint64_t length) const;
    // A view of [guest_address, +length), which must lie inside one region.
    MemoryResult<std::span<uint8_t>> slice(uint64_t guest_address, uint64_t length) const;
    // RAM from `guest_address` on: at most `max_length` bytes, fewer where its region ends, none where there
    // is no RAM (for readers that walk a range region by region, such as the memory dump commands).
    std::span<uint8_t const> ram_from(uint64_t guest_address, uint64_t max_length) const;
    MemoryResult<void> write(uint64_t guest_address, std::span<uint8_t const> bytes) const;
    MemoryResult<void> read(uint64_t guest_address, std::span<uint8_t> bytes) const;
    MemoryResult<void> fill(uint64_t guest_address, uint64_t length, uint8_t value) const;
    // Gives every page back to the host: RAM reads as zeros again, as at power-on (system_reset).
    SysResult<void> discard_all() const;

    template<typename T>
    MemoryResult<void> write_object(uint64_t guest_address, T const& object) const
    {
        static_assert(std::is_trivially_copyable_v<T>);
        // SAFETY: a trivially copyable object may be viewed as its bytes.
        return write(guest_address, std::span<uint8_t const>(reinterpret_cast<uint8_t const*>(&object), sizeof(T)));
    }
    template<typename T>
    MemoryResult<T> read_object(uint64_t guest_address) const
    {
        static_assert(std::is_trivially_copyable_v<T>);
        T object;
        TRY(read(guest_address, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&object), sizeof(T))));
        return object;
    }

private:
    GuestMemory(Mapping mapping, std::vector<MemoryRegion> regions)
        : m_mapping(std::move(mapping))
        , m_regions(std::move(regions))
    {
    }
    Mapping m_mapping;
    std::vector<MemoryRegion> m_regions;
};

} // namespace vmm
