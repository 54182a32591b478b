// ACPI checksum helpers used by every table builder.
#include <acpi/checksum.hpp>

namespace acpi {

uint8_t sum(std::span<uint8_t const> bytes)
{
    uint8_t total = 0;
    for (auto b : bytes)
        total = static_cast<uint8_t>(total + b);
    return total;
}

uint8_t checksum_for(std::span<uint8_t const> bytes, size_t checksum_offset)
{
    uint8_t total = static_cast<uint8_t>(sum(bytes) - bytes[checksum_offset]);
    return static_cast<uint8_t>(-total);
}

void update_checksum(std::span<uint8_t> bytes, size_t checksum_offset)
{
    bytes[checksum_offset] = checksum_for(bytes, checksum_offset);
}

} // namespace acpi
