// Reads the PVH start info: validates it and extracts what the kernel needs (command line, RAM, RSDP).
#pragma once

#include <guest/abi/pvh.hpp>
#include <guest/lib/string.hpp>

#include <cpuplug/base/result.hpp>

#include <cstdint>

namespace guest {

// Guest-physical memory as the parser sees it. In the guest this is the identity map below 4 GiB; host
// tests back it with a buffer. Every access is checked against `readable` first.
struct PhysicalView {
    uint64_t (*readable)(void* context, uint64_t address); // bytes readable from `address` on, 0 if none
    void const* (*pointer)(void* context, uint64_t address);
    void* context;

    template<typename T>
    T const* at(uint64_t address, uint64_t count = 1) const
    {
        if (readable(context, address) < sizeof(T) * count)
            return nullptr;
        return static_cast<T const*>(pointer(context, address));
    }
};

enum class StartInfoError {
    Unmapped,
    BadMagic,
    OldVersion,
    NoMemmap,
};
char const* to_string(StartInfoError);

struct BootInfo {
    pvh::StartInfo const* start_info { nullptr };
    StringView cmdline;
    uint64_t ram_bytes { 0 };     // sum of the RAM entries of the memory map
    uint64_t rsdp_address { 0 };  // 0 when the loader gave none
    pvh::MemmapEntry const* memmap { nullptr };
    uint32_t memmap_entries { 0 };
};

cpuplug::Result<BootInfo, StartInfoError> parse_start_info(uint64_t address, PhysicalView view);

} // namespace guest
