// The common SDT header and little-endian field writers used by every table builder.
#include "sdt.hpp"

#include <acpi/checksum.hpp>
#include <acpi/tables.hpp>
#include <cpuplug/base/assert.hpp>

namespace acpi::sdt {

void put_u8(std::span<uint8_t> table, size_t offset, uint8_t value)
{
    CPUPLUG_ASSERT(offset < table.size());
    table[offset] = value;
}

void put_u16(std::span<uint8_t> table, size_t offset, uint16_t value)
{
    put_u8(table, offset, static_cast<uint8_t>(value));
    put_u8(table, offset + 1, static_cast<uint8_t>(value >> 8));
}

void put_u32(std::span<uint8_t> table, size_t offset, uint32_t value)
{
    put_u16(table, offset, static_cast<uint16_t>(value));
    put_u16(table, offset + 2, static_cast<uint16_t>(value >> 16));
}

void put_u64(std::span<uint8_t> table, size_t offset, uint64_t value)
{
    put_u32(table, offset, static_cast<uint32_t>(value));
    put_u32(table, offset + 4, static_cast<uint32_t>(value >> 32));
}

void put_chars(std::span<uint8_t> table, size_t offset, std::string_view text)
{
    for (size_t i = 0; i < text.size(); ++i)
        put_u8(table, offset + i, static_cast<uint8_t>(text[i]));
}

std::vector<uint8_t> make_sdt(std::string_view signature, uint8_t revision, size_t length)
{
    CPUPLUG_ASSERT(signature.size() == 4 && length >= SDT_HEADER_SIZE && length <= UINT32_MAX);
    std::vector<uint8_t> table(length, 0);
    put_chars(table, 0, signature);
    put_u32(table, 4, static_cast<uint32_t>(length));
    put_u8(table, 8, revision);
    // 9: checksum, set by finish_sdt()
    put_chars(table, 10, OEM_ID);
    put_chars(table, 16, OEM_TABLE_ID);
    put_u32(table, 24, OEM_REVISION);
    put_chars(table, 28, CREATOR_ID);
    put_u32(table, 32, CREATOR_REVISION);
    return table;
}

void finish_sdt(std::vector<uint8_t>& table)
{
    update_checksum(table, 9);
}

uint32_t low_address(uint64_t address)
{
    return address <= UINT32_MAX ? static_cast<uint32_t>(address) : 0;
}

} // namespace acpi::sdt
