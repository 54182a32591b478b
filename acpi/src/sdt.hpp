// Little-endian field writers and the common 36-byte SDT header shared by the table builders (ACPI 6.5 §5.2.6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace acpi::sdt {

void put_u8(std::span<uint8_t> table, size_t offset, uint8_t value);
void put_u16(std::span<uint8_t> table, size_t offset, uint16_t value);
void put_u32(std::span<uint8_t> table, size_t offset, uint32_t value);
void put_u64(std::span<uint8_t> table, size_t offset, uint64_t value);
// Copies `text` without its terminator; fixed-width identifiers are not NUL-terminated in ACPI.
void put_chars(std::span<uint8_t> table, size_t offset, std::string_view text);

// A zero-filled table of `length` bytes with the header filled in (checksum still 0).
std::vector<uint8_t> make_sdt(std::string_view signature, uint8_t revision, size_t length);
// Sets the header checksum (offset 9) so the whole table sums to zero; the last step of every builder.
void finish_sdt(std::vector<uint8_t>& table);

// A 32-bit pointer field for an address that may not fit: 0 then, so only the 64-bit field is used
// (ACPICA warns when both are set and differ).
uint32_t low_address(uint64_t address);

} // namespace acpi::sdt
