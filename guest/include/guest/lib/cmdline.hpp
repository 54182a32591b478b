// The guest's kernel command line: space-separated `key=value` and bare `flag` words, Linux style.
#pragma once

#include <guest/lib/string.hpp>

#include <cstdint>

namespace guest {

class Cmdline {
public:
    static constexpr size_t MAX_LENGTH = 4096;

    Cmdline() = default;
    explicit Cmdline(char const* text)
        : m_text(text ? StringView(text, bounded_length(text, MAX_LENGTH)) : StringView())
    {
    }
    explicit Cmdline(StringView text)
        : m_text(text)
    {
    }

    StringView text() const { return m_text; }
    // The last occurrence wins, as in Linux's parse_args for most parameters.
    bool find(StringView key, StringView& value) const;
    bool has(StringView key) const
    {
        StringView ignored;
        return find(key, ignored);
    }
    // A number; `fallback` when the key is absent or its value does not parse.
    uint64_t get_u64(StringView key, uint64_t fallback) const;
    // A boolean: bare `key`, key=1/y/yes/on are true; key=0/n/no/off are false.
    bool get_bool(StringView key, bool fallback) const;

private:
    StringView m_text;
};

} // namespace guest
