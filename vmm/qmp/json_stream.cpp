// JsonStream: a small state machine. In a structure it counts {} and [] outside strings; a top-level
// scalar ends at whitespace or a structural character. No byte is kept past MAX_MESSAGE.
#include "json_stream.hpp"

#include <fmt/format.h>

namespace vmm::qmp {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A byte that is never part of JSON outside a string: the QMP spec's way to reset a confused parser.
bool is_reset(unsigned char c) { return (c < 0x20 && !is_space(static_cast<char>(c))) || c == 0xFF; }

bool ends_scalar(char c) { return is_space(c) || c == '{' || c == '[' || c == '}' || c == ']' || c == ',' || c == ':'; }

} // namespace

void JsonStream::reset()
{
    m_state = State::Idle;
    m_text.clear();
    m_depth = 0;
    m_quote = 0;
    m_escape = false;
    m_discarding = false;
}

void JsonStream::finish()
{
    bool discarded = m_discarding;
    std::string text = std::move(m_text);
    reset();
    if (!discarded)
        m_handlers.message(std::move(text));
}

void JsonStream::fail(std::string reason)
{
    reset();
    m_handlers.error(std::move(reason));
}

void JsonStream::discard(std::string reason)
{
    if (m_discarding)
        return;
    m_discarding = true;
    m_text.clear();
    m_text.shrink_to_fit();
    m_handlers.error(std::move(reason));
}

void JsonStream::append(char c)
{
    if (m_discarding)
        return;
    if (m_text.size() >= MAX_MESSAGE) {
        discard(fmt::format("JSON parse error, message exceeds {} bytes", MAX_MESSAGE));
        return;
    }
    m_text.push_back(c);
}

void JsonStream::feed(std::string_view bytes)
{
    for (char c : bytes)
        feed_one(c);
}

void JsonStream::feed_one(char c)
{
    auto byte = static_cast<unsigned char>(c);
    if (m_quote != 0) {
        // Inside a string. Raw control characters are invalid there too, and they are the reset signal.
        if (is_reset(byte)) {
            fail("JSON parse error, invalid control character in a string");
            return;
        }
        if (m_escape) {
            m_escape = false;
            if (c == '\'') {
                // \' is QEMU's escape for a quote in a single-quoted string; standard JSON has no \'.
                if (!m_discarding)
                    m_text.pop_back(); // the backslash
                append('\'');
            } else {
                append(c);
            }
            return;
        }
        if (c == '\\') {
            m_escape = true;
            append(c);
        } else if (c == m_quote) {
            m_quote = 0;
            append('"');
            if (m_state == State::Scalar)
                finish();
        } else if (c == '"') {
            append('\\'); // a double quote inside a single-quoted string
            append('"');
        } else {
            append(c);
        }
        return;
    }
    if (is_reset(byte)) {
        if (m_state != State::Idle)
            fail("JSON parse error, invalid input");
        return;
    }
    switch (m_state) {
    case State::Idle:
        if (is_space(c))
            return;
        if (c == '{' || c == '[') {
            m_state = State::Structure;
            m_depth = 1;
            append(c);
        } else if (c == '"' || c == '\'') {
            m_state = State::Scalar;
            m_quote = c;
            append('"');
        } else if (c == '}' || c == ']' || c == ',' || c == ':') {
            m_handlers.error(fmt::format("JSON parse error, stray '{}'", c));
        } else {
            m_state = State::Scalar;
            append(c);
        }
        return;
    case State::Scalar:
        if (ends_scalar(c)) {
            finish();
            feed_one(c); // the byte that ended the scalar starts what follows
        } else {
            append(c);
        }
        return;
    case State::Structure:
        if (c == '"' || c == '\'') {
            m_quote = c;
            append('"');
        } else if (c == '{' || c == '[') {
            if (++m_depth > MAX_NESTING)
                discard("JSON nesting depth limit exceeded");
            append(c);
        } else if (c == '}' || c == ']') {
            append(c);
            if (--m_depth == 0)
                finish();
        } else {
            append(c);
        }
        return;
    }
}

} // namespace vmm::qmp
