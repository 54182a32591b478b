// LineBuffer: bounded text building for console lines.
#include <guest/lib/format.hpp>

namespace guest {

LineBuffer& LineBuffer::ch(char c)
{
    if (m_size < CAPACITY)
        m_data[m_size++] = c;
    else
        m_truncated = true;
    return *this;
}

LineBuffer& LineBuffer::text(StringView s)
{
    for (size_t i = 0; i < s.size; ++i)
        ch(s[i]);
    return *this;
}

LineBuffer& LineBuffer::dec(uint64_t value)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0)
        ch(digits[--n]);
    return *this;
}

LineBuffer& LineBuffer::sdec(int64_t value)
{
    if (value < 0) {
        ch('-');
        return dec(static_cast<uint64_t>(-(value + 1)) + 1);
    }
    return dec(static_cast<uint64_t>(value));
}

LineBuffer& LineBuffer::hex(uint64_t value, unsigned digits)
{
    char buffer[16];
    int n = 0;
    do {
        unsigned nibble = value & 0xF;
        buffer[n++] = static_cast<char>(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
        value >>= 4;
    } while (value != 0 && n < 16);
    while (static_cast<unsigned>(n) < digits && n < 16)
        buffer[n++] = '0';
    ch('0').ch('x');
    while (n > 0)
        ch(buffer[--n]);
    return *this;
}

} // namespace guest
