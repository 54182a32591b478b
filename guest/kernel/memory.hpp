// Boot-time memory: a bump allocator over the RAM after the kernel image. Per-CPU areas and stacks, the
// hotplug core and ACPI's CPU list come from here; nothing is ever freed (a CPU that goes away keeps its
// area for when it comes back).
#pragma once

#include <guest/lib/start_info.hpp>

#include <cstddef>
#include <cstdint>

namespace kernel {

void memory_init(guest::BootInfo const& boot);
enum class Zeroed { No, Yes };
// nullptr when RAM runs out. `Zeroed::No` leaves untouched pages untouched (a first touch costs ~8 us).
void* allocate(size_t size, size_t alignment, Zeroed zeroed = Zeroed::Yes);
uint64_t memory_free_bytes();

} // namespace kernel
