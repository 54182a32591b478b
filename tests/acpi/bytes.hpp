// Test helpers for byte vectors: writing expected AML as hex and names, reading little-endian table fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace acpi_test {

// One piece of an expected byte sequence: raw bytes `{ 0x5B, 0x80 }` or the characters of a name `"PRST"`.
struct Part {
    Part(std::initializer_list<uint8_t> raw)
        : bytes(raw)
    {
    }
    Part(char const* text)
        : bytes(text, text + std::string_view(text).size())
    {
    }
    Part(std::vector<uint8_t> raw)
        : bytes(std::move(raw))
    {
    }
    std::vector<uint8_t> bytes;
};

inline std::vector<uint8_t> cat(std::initializer_list<Part> parts)
{
    std::vector<uint8_t> out;
    for (auto const& part : parts)
        out.insert(out.end(), part.bytes.begin(), part.bytes.end());
    return out;
}

// "5B 80 50 52": compared as strings so a failing CHECK prints both sides readably.
inline std::string hex(std::span<uint8_t const> bytes)
{
    constexpr char DIGITS[] = "0123456789ABCDEF";
    std::string text;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (i != 0)
            text += ' ';
        text += DIGITS[bytes[i] >> 4];
        text += DIGITS[bytes[i] & 0xF];
    }
    return text;
}

inline uint64_t read_le(std::span<uint8_t const> bytes, size_t offset, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; ++i)
        value |= uint64_t(bytes[offset + i]) << (8 * i);
    return value;
}
inline uint8_t u8(std::span<uint8_t const> bytes, size_t offset)
{
    return bytes[offset];
}
inline uint16_t u16(std::span<uint8_t const> bytes, size_t offset)
{
    return static_cast<uint16_t>(read_le(bytes, offset, 2));
}
inline uint32_t u32(std::span<uint8_t const> bytes, size_t offset)
{
    return static_cast<uint32_t>(read_le(bytes, offset, 4));
}
inline uint64_t u64(std::span<uint8_t const> bytes, size_t offset)
{
    return read_le(bytes, offset, 8);
}
inline std::string chars(std::span<uint8_t const> bytes, size_t offset, size_t length)
{
    return std::string(bytes.begin() + static_cast<std::ptrdiff_t>(offset),
        bytes.begin() + static_cast<std::ptrdiff_t>(offset + length));
}

} // namespace acpi_test
