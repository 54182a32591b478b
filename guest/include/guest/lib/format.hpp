// LineBuffer: builds one console line without a heap, so the kernel sends it with a single `rep outsb`.
#pragma once

#include <guest/lib/string.hpp>

#include <cstddef>
#include <cstdint>

namespace guest {

class LineBuffer {
public:
    static constexpr size_t CAPACITY = 256;

    LineBuffer& text(StringView s);
    LineBuffer& ch(char c);
    LineBuffer& dec(uint64_t value);
    LineBuffer& sdec(int64_t value);
    // Lower-case hexadecimal with a 0x prefix, zero-padded to at least `digits` digits.
    LineBuffer& hex(uint64_t value, unsigned digits = 1);

    char const* data() const { return m_data; }
    // Appends "\r\n" in the two bytes reserved past CAPACITY and returns the length including them, so the
    // console can send the line with one instruction and no copy.
    size_t terminate_crlf() const
    {
        m_data[m_size] = '\r';
        m_data[m_size + 1] = '\n';
        return m_size + 2;
    }
    size_t size() const { return m_size; }
    bool truncated() const { return m_truncated; }
    void clear()
    {
        m_size = 0;
        m_truncated = false;
    }

private:
    mutable char m_data[CAPACITY + 2];
    size_t m_size { 0 };
    bool m_truncated { false };
};

} // namespace guest
