// A minimal string view for the freestanding guest (libstdc++'s views pull in hosted error paths).
#pragma once

#include <cstddef>
#include <cstdint>

namespace guest {

struct StringView {
    char const* data { nullptr };
    size_t size { 0 };

    constexpr StringView() = default;
    constexpr StringView(char const* text, size_t length)
        : data(text)
        , size(length)
    {
    }
    // From a NUL-terminated literal.
    constexpr StringView(char const* text)
        : data(text)
        , size(0)
    {
        while (text[size] != '\0')
            ++size;
    }

    constexpr bool empty() const { return size == 0; }
    constexpr char operator[](size_t i) const { return data[i]; }
    constexpr bool operator==(StringView other) const
    {
        if (size != other.size)
            return false;
        for (size_t i = 0; i < size; ++i)
            if (data[i] != other.data[i])
                return false;
        return true;
    }
    constexpr bool starts_with(StringView prefix) const
    {
        return prefix.size <= size && StringView(data, prefix.size) == prefix;
    }
    constexpr StringView substr(size_t from) const
    {
        return from >= size ? StringView(data + size, 0) : StringView(data + from, size - from);
    }
};

// Bounded strlen: a hostile or corrupt command line never runs past `max`.
constexpr size_t bounded_length(char const* text, size_t max)
{
    size_t n = 0;
    while (n < max && text[n] != '\0')
        ++n;
    return n;
}

// Parses a decimal or 0x-prefixed hexadecimal unsigned number; false on any stray character or overflow.
bool parse_u64(StringView text, uint64_t& out);

} // namespace guest
