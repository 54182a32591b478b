// AML encodings of the builder's constructs (ACPI 6.5 chapter 20: the grammar in §20.2, PkgLength in §20.2.4,
// the opcode values in §20.3).
#include <acpi/aml.hpp>
#include <cpuplug/base/assert.hpp>

#include <initializer_list>
#include <string>

namespace acpi::aml {

namespace {

// A malformed literal is a bug in the caller; say which text it was.
[[noreturn]] void panic_with(std::string const& message)
{
    cpuplug::panic(message.c_str(), __FILE__, __LINE__);
}

constexpr size_t MAX_PKG_LENGTH = (size_t(1) << 28) - 1; // 4 + 8 + 8 + 8 bits

bool is_lead_char(char c)
{
    return (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_name_char(char c)
{
    return is_lead_char(c) || (c >= '0' && c <= '9');
}

// The field-unit widths in a Field list use the PkgLength layout, but the value is the bit count itself:
// it does not include the encoding's own bytes.
void emit_field_bits(AmlSink& sink, uint32_t bits)
{
    if (bits < (1u << 6)) {
        sink.byte(static_cast<uint8_t>(bits));
        return;
    }
    CPUPLUG_ASSERT(bits <= MAX_PKG_LENGTH);
    unsigned extra = bits < (1u << 12) ? 1 : bits < (1u << 20) ? 2 : 3;
    sink.byte(static_cast<uint8_t>(extra << 6 | (bits & 0x0F)));
    for (unsigned i = 0; i < extra; ++i)
        sink.byte(static_cast<uint8_t>(bits >> (4 + 8 * i)));
}

void emit_body(AmlSink& sink, std::vector<Aml> const& body)
{
    emit_all(sink, body);
}

} // namespace

void AmlSink::word(uint16_t value)
{
    byte(static_cast<uint8_t>(value));
    byte(static_cast<uint8_t>(value >> 8));
}

void AmlSink::dword(uint32_t value)
{
    word(static_cast<uint16_t>(value));
    word(static_cast<uint16_t>(value >> 16));
}

void AmlSink::qword(uint64_t value)
{
    dword(static_cast<uint32_t>(value));
    dword(static_cast<uint32_t>(value >> 32));
}

void AmlSink::bytes(std::span<uint8_t const> data)
{
    m_bytes.insert(m_bytes.end(), data.begin(), data.end());
}

void PkgLength::emit(AmlSink& sink) const
{
    // The total includes the PkgLength bytes, so the form is chosen by what the total would be with it:
    // one byte holds 6 bits, and each further byte adds 8 to the 4 bits left in the lead byte.
    size_t body = m_body_length;
    if (body + 1 < (size_t(1) << 6)) {
        sink.byte(static_cast<uint8_t>(body + 1));
        return;
    }
    unsigned extra = body + 2 < (size_t(1) << 12) ? 1 : body + 3 < (size_t(1) << 20) ? 2 : 3;
    size_t total = body + 1 + extra;
    if (total > MAX_PKG_LENGTH)
        panic_with("AML package of " + std::to_string(body) + " bytes is beyond PkgLength's 2^28 - 1");
    sink.byte(static_cast<uint8_t>(extra << 6 | (total & 0x0F)));
    for (unsigned i = 0; i < extra; ++i)
        sink.byte(static_cast<uint8_t>(total >> (4 + 8 * i)));
}

void emit_all(AmlSink& sink, std::span<Aml const> terms)
{
    for (auto const& term : terms)
        term.emit(sink);
}

// --- data objects ----------------------------------------------------------------------------------------

void Integer::emit(AmlSink& sink) const
{
    if (m_value == 0) {
        sink.byte(0x00);
    } else if (m_value == 1) {
        sink.byte(0x01);
    } else if (m_value == ~uint64_t(0)) {
        sink.byte(0xFF);
    } else if (m_value <= 0xFF) {
        sink.byte(0x0A);
        sink.byte(static_cast<uint8_t>(m_value));
    } else if (m_value <= 0xFFFF) {
        sink.byte(0x0B);
        sink.word(static_cast<uint16_t>(m_value));
    } else if (m_value <= 0xFFFF'FFFF) {
        sink.byte(0x0C);
        sink.dword(static_cast<uint32_t>(m_value));
    } else {
        sink.byte(0x0E);
        sink.qword(m_value);
    }
}

String::String(std::string_view text)
    : m_text(text)
{
    for (char c : m_text)
        if (c == '\0' || static_cast<unsigned char>(c) > 0x7F)
            panic_with("AML String holds a NUL or non-ASCII character: \"" + m_text + "\"");
}

void String::emit(AmlSink& sink) const
{
    sink.byte(0x0D);
    for (char c : m_text)
        sink.byte(static_cast<uint8_t>(c));
    sink.byte(0x00);
}

cpuplug::Result<EisaId, std::string> EisaId::parse(std::string_view id)
{
    auto bad = [&](char const* why) {
        return cpuplug::unexpected("EISA id \"" + std::string(id) + "\" " + why);
    };
    if (id.size() != 7)
        return bad("is not 7 characters (3 letters, 4 hex digits)");
    uint32_t compressed = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (id[i] < 'A' || id[i] > 'Z')
            return bad("does not start with three upper-case letters");
        compressed |= static_cast<uint32_t>(id[i] - 0x40) << (26 - 5 * i);
    }
    for (size_t i = 3; i < 7; ++i) {
        char c = id[i];
        uint32_t digit;
        if (c >= '0' && c <= '9')
            digit = static_cast<uint32_t>(c - '0');
        else if (c >= 'A' && c <= 'F')
            digit = static_cast<uint32_t>(c - 'A' + 10);
        else
            return bad("does not end with four upper-case hex digits");
        compressed |= digit << (4 * (6 - i));
    }
    // The compressed id is stored big-endian; the integer is its byte swap.
    uint32_t swapped = (compressed >> 24) | ((compressed >> 8) & 0xFF00) | ((compressed << 8) & 0xFF'0000)
        | (compressed << 24);
    return EisaId(Parsed {}, swapped);
}

EisaId::EisaId(std::string_view id)
    : m_value(0)
{
    auto parsed = parse(id);
    if (!parsed)
        panic_with(parsed.error());
    m_value = parsed->m_value;
}

void EisaId::emit(AmlSink& sink) const
{
    sink.byte(0x0C);
    sink.dword(m_value);
}

void Buffer::emit(AmlSink& sink) const
{
    emit_package(sink, { 0x11 }, [&](AmlSink& body) {
        Integer(m_bytes.size()).emit(body);
        body.bytes(m_bytes);
    });
}

Package::Package(std::vector<Aml> elements)
    : m_count(0)
    , m_elements(std::move(elements))
{
    // Not delegating to Package(elements.size(), std::move(elements)): argument order is unspecified.
    if (m_elements.size() > 0xFF)
        panic_with("Package with " + std::to_string(m_elements.size()) + " elements: a fixed Package holds at most 255");
    m_count = static_cast<uint8_t>(m_elements.size());
}

Package::Package(size_t count, std::vector<Aml> elements)
    : m_count(0)
    , m_elements(std::move(elements))
{
    if (count > 0xFF || count < m_elements.size())
        panic_with("Package(" + std::to_string(count) + ") with " + std::to_string(m_elements.size())
            + " elements: a fixed Package holds at most 255, and at least its elements");
    m_count = static_cast<uint8_t>(count);
}

void Package::emit(AmlSink& sink) const
{
    emit_package(sink, { 0x12 }, [&](AmlSink& body) {
        body.byte(m_count);
        emit_body(body, m_elements);
    });
}

void VarPackage::emit(AmlSink& sink) const
{
    emit_package(sink, { 0x13 }, [&](AmlSink& body) {
        m_count.emit(body);
        emit_body(body, m_elements);
    });
}

// --- names -----------------------------------------------------------------------------------------------

cpuplug::Result<NameSeg, std::string> NameSeg::parse(std::string_view text)
{
    if (text.empty() || text.size() > 4)
        return cpuplug::unexpected("AML name segment \"" + std::string(text) + "\" is not 1 to 4 characters");
    if (!is_lead_char(text[0]))
        return cpuplug::unexpected("AML name segment \"" + std::string(text) + "\" does not start with A-Z or _");
    for (char c : text)
        if (!is_name_char(c))
            return cpuplug::unexpected("AML name segment \"" + std::string(text) + "\" has a character outside A-Z, 0-9, _");
    std::array<char, 4> chars { '_', '_', '_', '_' };
    for (size_t i = 0; i < text.size(); ++i)
        chars[i] = text[i];
    return NameSeg(chars);
}

NameSeg NameSeg::from_literal(std::string_view text)
{
    auto parsed = parse(text);
    if (!parsed)
        panic_with(parsed.error());
    return parsed.release_value();
}

void NameSeg::emit(AmlSink& sink) const
{
    for (char c : m_chars)
        sink.byte(static_cast<uint8_t>(c));
}

cpuplug::Result<NameString, std::string> NameString::parse(std::string_view text)
{
    NameString name;
    std::string_view rest = text;
    if (!rest.empty() && rest.front() == '\\') {
        name.m_root = true;
        rest.remove_prefix(1);
    }
    while (!rest.empty() && rest.front() == '^') {
        if (name.m_root)
            return cpuplug::unexpected("AML name \"" + std::string(text) + "\" mixes the root and parent prefixes");
        if (name.m_parents == 0xFF)
            return cpuplug::unexpected("AML name \"" + std::string(text) + "\" has too many parent prefixes");
        ++name.m_parents;
        rest.remove_prefix(1);
    }
    // No segments left is the NullName, which is legal after prefixes too ("\" is the root itself).
    while (!rest.empty()) {
        size_t dot = rest.find('.');
        auto segment = NameSeg::parse(rest.substr(0, dot));
        if (!segment)
            return cpuplug::unexpected(segment.error() + " (in \"" + std::string(text) + "\")");
        name.m_segments.push_back(segment.release_value());
        if (dot == std::string_view::npos)
            break;
        rest.remove_prefix(dot + 1);
        if (rest.empty())
            return cpuplug::unexpected("AML name \"" + std::string(text) + "\" ends with a '.'");
    }
    if (name.m_segments.size() > 0xFF)
        return cpuplug::unexpected("AML name \"" + std::string(text) + "\" has more than 255 segments");
    return name;
}

NameString NameString::from_literal(std::string_view text)
{
    auto parsed = parse(text);
    if (!parsed)
        panic_with(parsed.error());
    return parsed.release_value();
}

void NameString::emit(AmlSink& sink) const
{
    if (m_root)
        sink.byte(0x5C);
    for (unsigned i = 0; i < m_parents; ++i)
        sink.byte(0x5E);
    switch (m_segments.size()) {
    case 0:
        sink.byte(0x00); // NullName
        break;
    case 1:
        break;
    case 2:
        sink.byte(0x2E); // DualNamePrefix
        break;
    default:
        sink.byte(0x2F); // MultiNamePrefix
        sink.byte(static_cast<uint8_t>(m_segments.size()));
        break;
    }
    for (auto const& segment : m_segments)
        segment.emit(sink);
}

Local::Local(unsigned index)
    : m_index(static_cast<uint8_t>(index))
{
    if (index > 7)
        panic_with("Local" + std::to_string(index) + " does not exist (Local0-Local7)");
}

Arg::Arg(unsigned index)
    : m_index(static_cast<uint8_t>(index))
{
    if (index > 6)
        panic_with("Arg" + std::to_string(index) + " does not exist (Arg0-Arg6)");
}

// --- named objects ---------------------------------------------------------------------------------------

void Name::emit(AmlSink& sink) const
{
    sink.byte(0x08);
    m_name.emit(sink);
    m_value.emit(sink);
}

void Scope::emit(AmlSink& sink) const
{
    emit_package(sink, { 0x10 }, [&](AmlSink& body) {
        m_name.emit(body);
        emit_body(body, m_body);
    });
}

void Device::emit(AmlSink& sink) const
{
    emit_package(sink, { 0x5B, 0x82 }, [&](AmlSink& body) {
        m_name.emit(body);
        emit_body(body, m_body);
    });
}

Method::Method(NameString name, unsigned argc, Serialization serialization, unsigned sync_level, std::vector<Aml> body)
    : m_name(std::move(name))
    , m_flags(0)
    , m_body(std::move(body))
{
    if (argc > 7 || sync_level > 15)
        panic_with("Method with " + std::to_string(argc) + " arguments and sync level " + std::to_string(sync_level)
            + ": at most 7 and 15");
    m_flags = static_cast<uint8_t>(argc | (serialization == Serialization::Serialized ? 1u << 3 : 0u) | sync_level << 4);
}

void Method::emit(AmlSink& sink) const
{
    emit_package(sink, { 0x14 }, [&](AmlSink& body) {
        m_name.emit(body);
        body.byte(m_flags);
        emit_body(body, m_body);
    });
}

Mutex::Mutex(NameString name, unsigned sync_level)
    : m_name(std::move(name))
    , m_sync_level(static_cast<uint8_t>(sync_level))
{
    if (sync_level > 15)
        panic_with("Mutex sync level " + std::to_string(sync_level) + " is above 15");
}

void Mutex::emit(AmlSink& sink) const
{
    sink.byte(0x5B);
    sink.byte(0x01);
    m_name.emit(sink);
    sink.byte(m_sync_level);
}

void OperationRegion::emit(AmlSink& sink) const
{
    sink.byte(0x5B);
    sink.byte(0x80);
    m_name.emit(sink);
    sink.byte(static_cast<uint8_t>(m_space));
    m_offset.emit(sink);
    m_length.emit(sink);
}

void Field::emit(AmlSink& sink) const
{
    emit_package(sink, { 0x5B, 0x81 }, [&](AmlSink& body) {
        m_region.emit(body);
        body.byte(m_flags);
        uint64_t position = 0; // in bits, to turn FieldOffset into a reserved entry
        for (auto const& element : m_elements) {
            if (auto const* named = std::get_if<NamedField>(&element)) {
                named->name.emit(body);
                emit_field_bits(body, named->bits);
                position += named->bits;
            } else if (auto const* reserved = std::get_if<ReservedField>(&element)) {
                body.byte(0x00);
                emit_field_bits(body, reserved->bits);
                position += reserved->bits;
            } else {
                uint64_t target = uint64_t(std::get<FieldOffset>(element).byte_offset) * 8;
                if (target < position)
                    panic_with("Field Offset(" + std::to_string(target / 8) + ") lies before the current bit "
                        + std::to_string(position));
                if (target > position) {
                    body.byte(0x00);
                    emit_field_bits(body, static_cast<uint32_t>(target - position));
                    position = target;
                }
            }
        }
    });
}

// --- resource templates ----------------------------------------------------------------------------------

void Io::emit(AmlSink& sink) const
{
    sink.byte(0x47); // small item, type 0x08 (I/O port), 7 bytes of data
    sink.byte(static_cast<uint8_t>(decode));
    sink.word(minimum);
    sink.word(maximum);
    sink.byte(alignment);
    sink.byte(length);
}

void ResourceTemplate::emit(AmlSink& sink) const
{
    AmlSink descriptors;
    for (auto const& descriptor : m_descriptors)
        std::visit([&](auto const& d) { d.emit(descriptors); }, descriptor);
    descriptors.byte(0x79); // end tag
    descriptors.byte(0x00); // checksum 0: "do not check"
    Buffer(descriptors.take()).emit(sink);
}

// --- statements ------------------------------------------------------------------------------------------

void If::emit(AmlSink& sink) const
{
    emit_package(sink, { 0xA0 }, [&](AmlSink& body) {
        m_predicate.emit(body);
        emit_body(body, m_body);
    });
}

void Else::emit(AmlSink& sink) const
{
    emit_package(sink, { 0xA1 }, [&](AmlSink& body) { emit_body(body, m_body); });
}

void While::emit(AmlSink& sink) const
{
    emit_package(sink, { 0xA2 }, [&](AmlSink& body) {
        m_predicate.emit(body);
        emit_body(body, m_body);
    });
}

void Acquire::emit(AmlSink& sink) const
{
    sink.byte(0x5B);
    sink.byte(0x23);
    m_mutex.emit(sink);
    sink.word(m_timeout);
}

void Release::emit(AmlSink& sink) const
{
    sink.byte(0x5B);
    sink.byte(0x27);
    m_mutex.emit(sink);
}

void MethodCall::emit(AmlSink& sink) const
{
    m_method.emit(sink);
    emit_body(sink, m_args);
}

} // namespace acpi::aml
