// CpuMask's non-inline parts: counting, searching and the cpulist formatter.
#include <cpuplug/cpumask.hpp>

namespace cpuplug {

uint32_t CpuMask::count() const
{
    uint32_t total = 0;
    for (auto word : m_bits)
        total += static_cast<uint32_t>(__builtin_popcountll(word));
    return total;
}

uint32_t CpuMask::next(uint32_t from) const
{
    while (from < MAX_CPUS) {
        uint64_t word = m_bits[from / 64] >> (from % 64);
        if (word != 0)
            return from + static_cast<uint32_t>(__builtin_ctzll(word));
        from = (from / 64 + 1) * 64;
    }
    return MAX_CPUS;
}

namespace {

struct Writer {
    char* buffer;
    size_t size;
    size_t length = 0;

    void put(char c)
    {
        if (length + 1 < size)
            buffer[length] = c;
        ++length;
    }
    void put_number(uint32_t value)
    {
        char digits[10];
        int n = 0;
        do {
            digits[n++] = static_cast<char>('0' + value % 10);
            value /= 10;
        } while (value != 0);
        while (n > 0)
            put(digits[--n]);
    }
    size_t finish()
    {
        if (size > 0)
            buffer[length < size ? length : size - 1] = '\0';
        return length;
    }
};

} // namespace

size_t CpuMask::format(char* buffer, size_t size) const
{
    Writer out { buffer, size };
    uint32_t cpu = first();
    bool first_range = true;
    while (cpu < MAX_CPUS) {
        uint32_t last = cpu;
        while (last + 1 < MAX_CPUS && test(last + 1))
            ++last;
        if (!first_range)
            out.put(',');
        first_range = false;
        out.put_number(cpu);
        if (last != cpu) {
            out.put('-');
            out.put_number(last);
        }
        cpu = next(last + 1);
    }
    return out.finish();
}

} // namespace cpuplug
