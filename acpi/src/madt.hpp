// The MADT's processor entry, shared by the MADT and the DSDT's _MAT objects so the two cannot drift apart.
#pragma once

#include <acpi/tables.hpp>

#include <cstdint>
#include <vector>

namespace acpi::madt {

// Processor flags (ACPI 6.5 §5.2.12.2, Local APIC flags; the x2APIC entry uses the same bits). ACPI 6.3 forbids
// setting both.
enum class CpuFlag : uint32_t {
    Enabled = 1u << 0,
    OnlineCapable = 1u << 1, // absent now, may be brought online later
};

// The entry describing `cpu` with `flag` as its only flag: Local APIC (type 0, 8 bytes) when both the APIC id
// and the UID fit a byte below the reserved 0xFF, else Local x2APIC (type 9, 16 bytes).
std::vector<uint8_t> processor_entry(CpuEntry const& cpu, CpuFlag flag);

} // namespace acpi::madt
