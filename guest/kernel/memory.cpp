// The bump allocator: from the end of the kernel image to the end of the RAM entry that holds it, capped
// at the 4 GiB the page tables map.
#include "memory.hpp"

extern "C" char __image_end[];

namespace kernel {

namespace {
uint64_t g_next = 0;
uint64_t g_limit = 0;
constexpr uint64_t MAPPED_LIMIT = uint64_t(4) << 30;
} // namespace

void memory_init(guest::BootInfo const& boot)
{
    uint64_t start = reinterpret_cast<uint64_t>(__image_end);
    for (uint32_t i = 0; i < boot.memmap_entries; ++i) {
        auto const& e = boot.memmap[i];
        if (e.type != pvh::MemType::Ram || start < e.addr || start >= e.addr + e.size)
            continue;
        g_next = start;
        g_limit = e.addr + e.size < MAPPED_LIMIT ? e.addr + e.size : MAPPED_LIMIT;
        return;
    }
}

void* allocate(size_t size, size_t alignment, Zeroed zeroed)
{
    uint64_t at = (g_next + alignment - 1) & ~(uint64_t(alignment) - 1);
    if (at + size > g_limit || at + size < at)
        return nullptr;
    g_next = at + size;
    auto* pointer = reinterpret_cast<void*>(at);
    if (zeroed == Zeroed::Yes)
        __builtin_memset(pointer, 0, size);
    return pointer;
}

uint64_t memory_free_bytes() { return g_limit > g_next ? g_limit - g_next : 0; }

} // namespace kernel
