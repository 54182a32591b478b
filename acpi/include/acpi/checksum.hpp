// ACPI checksums: a table's bytes (checksum field included) sum to zero modulo 256.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace acpi {

uint8_t sum(std::span<uint8_t const> bytes);
// The value for the checksum byte that makes `bytes` (with that byte counted as zero) sum to zero.
uint8_t checksum_for(std::span<uint8_t const> bytes, size_t checksum_offset);
// Rewrites the checksum byte at `checksum_offset` in place.
void update_checksum(std::span<uint8_t> bytes, size_t checksum_offset);

} // namespace acpi
