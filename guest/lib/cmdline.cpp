// Command-line lookup: scans the words once per query; the line is short and queried a handful of times.
#include <guest/lib/cmdline.hpp>

namespace guest {

bool Cmdline::find(StringView key, StringView& value) const
{
    bool found = false;
    size_t i = 0;
    while (i < m_text.size) {
        while (i < m_text.size && m_text[i] == ' ')
            ++i;
        size_t start = i;
        while (i < m_text.size && m_text[i] != ' ')
            ++i;
        StringView word(m_text.data + start, i - start);
        if (word.empty())
            continue;
        size_t eq = 0;
        while (eq < word.size && word[eq] != '=')
            ++eq;
        if (StringView(word.data, eq) == key) {
            value = eq < word.size ? word.substr(eq + 1) : StringView(word.data + word.size, 0);
            found = true;
        }
    }
    return found;
}

uint64_t Cmdline::get_u64(StringView key, uint64_t fallback) const
{
    StringView value;
    uint64_t number;
    if (!find(key, value) || !parse_u64(value, number))
        return fallback;
    return number;
}

bool Cmdline::get_bool(StringView key, bool fallback) const
{
    StringView value;
    if (!find(key, value))
        return fallback;
    if (value.empty() || value == "1" || value == "y" || value == "yes" || value == "on")
        return true;
    if (value == "0" || value == "n" || value == "no" || value == "off")
        return false;
    return fallback;
}

} // namespace guest
