// to_qmp_text: a recursive writer; strings and numbers come from nlohmann's own escaping.
#include "json_format.hpp"

#include <fmt/format.h>

namespace vmm::qmp {

namespace {

// One code point from UTF-8 at `at`, advancing it; U+FFFD for a malformed or overlong sequence.
uint32_t next_code_point(std::string const& text, size_t& at)
{
    auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
    uint8_t lead = byte(at++);
    if (lead < 0x80)
        return lead;
    size_t extra;
    if (lead >= 0xC2 && lead <= 0xDF)
        extra = 1;
    else if (lead >= 0xE0 && lead <= 0xEF)
        extra = 2;
    else if (lead >= 0xF0 && lead <= 0xF4)
        extra = 3;
    else
        return 0xFFFD; // a continuation byte, an overlong lead or past U+10FFFF
    uint32_t point = lead & (0x3F >> extra);
    for (size_t i = 0; i < extra; ++i) {
        if (at >= text.size() || (byte(at) & 0xC0) != 0x80)
            return 0xFFFD;
        point = (point << 6) | (byte(at++) & 0x3F);
    }
    static constexpr uint32_t SMALLEST[] = { 0, 0x80, 0x800, 0x10000 };
    if (point < SMALLEST[extra] || point > 0x10FFFF || (point >= 0xD800 && point < 0xE000))
        return 0xFFFD;
    return point;
}

// QEMU's string escapes (qobject/qjson.c): the short forms, then \uXXXX in upper case for control
// characters, DEL and everything past ASCII, as a surrogate pair beyond the BMP.
void write_string(std::string const& text, std::string& out)
{
    out += '"';
    for (size_t at = 0; at < text.size();) {
        uint32_t point = next_code_point(text, at);
        switch (point) {
        case '"':
            out += "\\\"";
            continue;
        case '\\':
            out += "\\\\";
            continue;
        case '\b':
            out += "\\b";
            continue;
        case '\f':
            out += "\\f";
            continue;
        case '\n':
            out += "\\n";
            continue;
        case '\r':
            out += "\\r";
            continue;
        case '\t':
            out += "\\t";
            continue;
        default:
            break;
        }
        if (point >= 0x20 && point < 0x7F) {
            out += static_cast<char>(point);
        } else if (point > 0xFFFF) {
            point -= 0x10000;
            out += fmt::format("\\u{:04X}\\u{:04X}", 0xD800 + (point >> 10), 0xDC00 + (point & 0x3FF));
        } else {
            out += fmt::format("\\u{:04X}", point);
        }
    }
    out += '"';
}

void write(Json const& value, std::string& out)
{
    switch (value.type()) {
    case Json::value_t::object: {
        out += '{';
        bool first = true;
        for (auto const& [key, member] : value.items()) {
            if (!first)
                out += ", ";
            first = false;
            write_string(key, out);
            out += ": ";
            write(member, out);
        }
        out += '}';
        break;
    }
    case Json::value_t::array: {
        out += '[';
        bool first = true;
        for (auto const& element : value) {
            if (!first)
                out += ", ";
            first = false;
            write(element, out);
        }
        out += ']';
        break;
    }
    case Json::value_t::string:
        write_string(value.get_ref<std::string const&>(), out);
        break;
    default:
        out += value.dump();
        break;
    }
}

} // namespace

std::string to_qmp_text(Json const& value)
{
    std::string out;
    write(value, out);
    return out;
}

} // namespace vmm::qmp
