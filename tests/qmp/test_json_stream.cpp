// JsonStream: framing of a QMP byte stream into JSON texts, QEMU's single quotes, and recovery.
#include "qmp/json_stream.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using vmm::qmp::JsonStream;

namespace {

// Everything the stream reported, in order: "msg <text>" or "err <reason>".
class Recorder {
public:
    Recorder()
        : m_stream({ [this](std::string text) { events.push_back("msg " + text); },
            [this](std::string reason) { events.push_back("err " + reason); } })
    {
    }
    Recorder(Recorder const&) = delete;
    Recorder& operator=(Recorder const&) = delete;

    std::vector<std::string> feed(std::string_view bytes)
    {
        events.clear();
        m_stream.feed(bytes);
        return events;
    }

    std::vector<std::string> feed_bytewise(std::string_view bytes)
    {
        events.clear();
        for (char c : bytes)
            m_stream.feed(std::string_view(&c, 1));
        return events;
    }

    std::vector<std::string> events;

private:
    JsonStream m_stream;
};

using Events = std::vector<std::string>;

std::string const SIZE_ERROR = "err JSON parse error, message exceeds 1048576 bytes";
std::string const NESTING_ERROR = "err JSON nesting depth limit exceeded";

} // namespace

TEST_CASE("concatenated objects and arrays come out as separate messages", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(R"({"a": 1}{"b": [1, 2]}[3, {"c": 4}][])")
        == Events { R"(msg {"a": 1})", R"(msg {"b": [1, 2]})", R"(msg [3, {"c": 4}])", "msg []" });
}

TEST_CASE("whitespace between messages is dropped and whitespace inside them is kept", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(" \r\n\t{ \"a\" :\t[ 1 ,\r\n2 ] }\r\n  [ ]\n")
        == Events { "msg { \"a\" :\t[ 1 ,\r\n2 ] }", "msg [ ]" });
    CHECK(recorder.feed(" \t\r\n ").empty());
}

TEST_CASE("a message split across feeds is delivered once it is complete", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(R"({"execute": )").empty());
    CHECK(recorder.feed(R"("query-)").empty());
    CHECK(recorder.feed(R"(status"})") == Events { R"(msg {"execute": "query-status"})" });
}

TEST_CASE("top-level scalars end at whitespace or at the next structure", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("42 \"str\"true\n-1.5e3\t{\"x\": 1}null[0]false ")
        == Events { "msg 42", "msg \"str\"", "msg true", "msg -1.5e3", "msg {\"x\": 1}", "msg null", "msg [0]",
            "msg false" });
    CHECK(recorder.feed("7{\"a\": 1}true[]-2]") == Events { "msg 7", "msg {\"a\": 1}", "msg true", "msg []", "msg -2",
        "err JSON parse error, stray ']'" });
    CHECK(recorder.feed("1,2:3 ") == Events { "msg 1", "err JSON parse error, stray ','", "msg 2",
        "err JSON parse error, stray ':'", "msg 3" });
    // An unquoted scalar has no end of its own: it waits for the byte that ends it.
    CHECK(recorder.feed("123").empty());
    CHECK(recorder.feed("4\n") == Events { "msg 1234" });
}

TEST_CASE("braces, brackets and quotes inside strings do not end a message", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(R"({"a": "}{][", "b": "x\"}", "c": ":,"}{"d": 1})")
        == Events { R"(msg {"a": "}{][", "b": "x\"}", "c": ":,"})", R"(msg {"d": 1})" });
}

TEST_CASE("an escaped backslash before a quote does not escape the quote", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(R"({"a": "x\\"}{"b": "\\\""})")
        == Events { R"(msg {"a": "x\\"})", R"(msg {"b": "\\\""})" });
}

TEST_CASE("QEMU's backslash-quote escape becomes a plain quote in double-quoted strings", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(R"({"a": "it\'s"})") == Events { R"(msg {"a": "it's"})" });
}

TEST_CASE("single-quoted strings become standard JSON strings", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(R"({'execute': 'query-status', 'id': 'a'})")
        == Events { R"(msg {"execute": "query-status", "id": "a"})" });
    // A double quote inside single quotes must be escaped in the standard form; \" stays as it is.
    CHECK(recorder.feed(R"({'a': 'say "hi"', 'b': 'x\"y'})")
        == Events { R"(msg {"a": "say \"hi\"", "b": "x\"y"})" });
    // \' is the way to write a single quote inside single quotes; standard JSON has no \'.
    CHECK(recorder.feed(R"({'a': 'it\'s', 'b': 'x\\'})") == Events { R"(msg {"a": "it's", "b": "x\\"})" });
    // A single quote inside double quotes is an ordinary character.
    CHECK(recorder.feed(R"({"a": "it's"})") == Events { R"(msg {"a": "it's"})" });
    CHECK(recorder.feed("'top' ") == Events { "msg \"top\"" });
}

TEST_CASE("converted single-quoted text parses to the intended values", "[json_stream]")
{
    Recorder recorder;
    auto events = recorder.feed(R"({'q': 'say "hi"', 'a': 'it\'s', 'b': 'x\\', 'c': '\u00e9\n'})");
    REQUIRE(events.size() == 1);
    auto value = nlohmann::json::parse(events[0].substr(4));
    CHECK(value["q"] == "say \"hi\"");
    CHECK(value["a"] == "it's");
    CHECK(value["b"] == "x\\");
    CHECK(value["c"] == "\xc3\xa9\n");
}

TEST_CASE("feeding byte by byte gives the same messages as feeding at once", "[json_stream]")
{
    std::string const input = " {\"execute\": \"a\", \"arguments\": {\"s\": \"}{\\\"\\\\\"}}\r\n"
                              "{'execute': 'b', 'x': 'say \"hi\" it\\'s'}[1, [2, {\"c\": []}]]"
                              "42 'q' true }\x01{\"tail\": \"\xc3\xa9\"} ";
    Recorder at_once;
    Recorder bytewise;
    Events const expected { "msg {\"execute\": \"a\", \"arguments\": {\"s\": \"}{\\\"\\\\\"}}",
        "msg {\"execute\": \"b\", \"x\": \"say \\\"hi\\\" it's\"}", "msg [1, [2, {\"c\": []}]]", "msg 42",
        "msg \"q\"", "msg true", "err JSON parse error, stray '}'", "msg {\"tail\": \"\xc3\xa9\"}" };
    CHECK(at_once.feed(input) == expected);
    CHECK(bytewise.feed_bytewise(input) == expected);
}

TEST_CASE("a control character outside a string resets a half message", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("{\"execute\": [1, \x01{\"execute\": \"x\"}")
        == Events { "err JSON parse error, invalid input", R"(msg {"execute": "x"})" });
    // Between messages a reset byte is not an error: it is how a client makes sure the stream is clean.
    CHECK(recorder.feed("\x01\x1b{\"a\": 1}") == Events { R"(msg {"a": 1})" });
}

TEST_CASE("a 0xFF byte outside a string resets a half message", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("{\"execute\": {\"a\"\xff{\"b\": 2}")
        == Events { "err JSON parse error, invalid input", R"(msg {"b": 2})" });
    CHECK(recorder.feed("\xff\xff{\"c\": 3}") == Events { R"(msg {"c": 3})" });
}

TEST_CASE("a control character resets a half-read top-level scalar", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("12\x01{\"a\": 1}") == Events { "err JSON parse error, invalid input", R"(msg {"a": 1})" });
}

TEST_CASE("a raw control character inside a string is an error and the stream recovers", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("{\"a\": \"b\x01\n{\"c\": 1}")
        == Events { "err JSON parse error, invalid control character in a string", R"(msg {"c": 1})" });
    CHECK(recorder.feed("{\"a\": 'b\x1f\n{\"c\": 2}")
        == Events { "err JSON parse error, invalid control character in a string", R"(msg {"c": 2})" });
    CHECK(recorder.feed("\"top\xff\n{\"c\": 3}")
        == Events { "err JSON parse error, invalid control character in a string", R"(msg {"c": 3})" });
}

TEST_CASE("tab, CR and LF inside a string are passed on for the parser to judge", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("{\"a\": \"x\ty\r\nz\"}") == Events { "msg {\"a\": \"x\ty\r\nz\"}" });
}

TEST_CASE("a stray closing bracket, comma or colon is an error of its own", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("}{\"a\": 1}") == Events { "err JSON parse error, stray '}'", R"(msg {"a": 1})" });
    CHECK(recorder.feed("] , :")
        == Events { "err JSON parse error, stray ']'", "err JSON parse error, stray ','",
            "err JSON parse error, stray ':'" });
    CHECK(recorder.feed("{\"b\": 2}}") == Events { R"(msg {"b": 2})", "err JSON parse error, stray '}'" });
}

TEST_CASE("a message of exactly 1 MiB is delivered", "[json_stream]")
{
    std::string const head = "{\"a\": \"";
    std::string const tail = "\"}";
    std::string message = head + std::string(JsonStream::MAX_MESSAGE - head.size() - tail.size(), 'x') + tail;
    REQUIRE(message.size() == JsonStream::MAX_MESSAGE);
    Recorder recorder;
    auto events = recorder.feed(message);
    REQUIRE(events.size() == 1);
    CHECK(events[0] == "msg " + message);
}

TEST_CASE("a message one byte over 1 MiB gives one error and the next message is delivered", "[json_stream]")
{
    std::string const head = "{\"a\": \"";
    std::string const tail = "\"}";
    std::string message = head + std::string(JsonStream::MAX_MESSAGE + 1 - head.size() - tail.size(), 'x') + tail;
    REQUIRE(message.size() == JsonStream::MAX_MESSAGE + 1);
    Recorder recorder;
    CHECK(recorder.feed(message + "{\"b\": 1}") == Events { SIZE_ERROR, R"(msg {"b": 1})" });
}

TEST_CASE("a 3 MiB string reports the size error once however it arrives", "[json_stream]")
{
    std::string const big(3u << 20, 'y');
    Recorder recorder;
    SECTION("inside an object, at once")
    {
        CHECK(recorder.feed("{\"a\": \"" + big + "\"}{\"b\": 1}") == Events { SIZE_ERROR, R"(msg {"b": 1})" });
    }
    SECTION("inside an object, in 4 KiB reads")
    {
        std::string input = "{\"a\": \"" + big + "\"}{\"b\": 1}";
        Events all;
        for (size_t at = 0; at < input.size(); at += 4096)
            for (auto& event : recorder.feed(std::string_view(input).substr(at, 4096)))
                all.push_back(std::move(event));
        CHECK(all == Events { SIZE_ERROR, R"(msg {"b": 1})" });
    }
    SECTION("as a top-level string")
    {
        CHECK(recorder.feed("\"" + big + "\" {\"b\": 1}") == Events { SIZE_ERROR, R"(msg {"b": 1})" });
    }
    SECTION("as a top-level number")
    {
        CHECK(recorder.feed(std::string(3u << 20, '7') + " {\"b\": 1}") == Events { SIZE_ERROR, R"(msg {"b": 1})" });
    }
    SECTION("with single-quote escapes on the way")
    {
        std::string escaped;
        for (size_t i = 0; i < (1u << 20); ++i)
            escaped += "\\'\"";
        CHECK(recorder.feed("{'a': '" + escaped + "'}{\"b\": 1}") == Events { SIZE_ERROR, R"(msg {"b": 1})" });
    }
}

TEST_CASE("a control character in an oversized message resets it", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed("{\"a\": \"" + std::string(2u << 20, 'x') + "\x01\n{\"b\": 1}")
        == Events { SIZE_ERROR, "err JSON parse error, invalid control character in a string", R"(msg {"b": 1})" });
}

TEST_CASE("nesting of exactly 1024 levels is delivered", "[json_stream]")
{
    std::string message = std::string(1024, '[') + std::string(1024, ']');
    Recorder recorder;
    CHECK(recorder.feed(message) == Events { "msg " + message });
}

TEST_CASE("nesting over 1024 levels gives one error and the stream recovers", "[json_stream]")
{
    Recorder recorder;
    CHECK(recorder.feed(std::string(1025, '[') + std::string(1025, ']') + "{\"b\": 1}")
        == Events { NESTING_ERROR, R"(msg {"b": 1})" });
    CHECK(recorder.feed("{\"a\": " + std::string(5000, '[') + std::string(5000, ']') + "}{\"c\": 2}")
        == Events { NESTING_ERROR, R"(msg {"c": 2})" });
}

TEST_CASE("a message both too deep and too long reports one error", "[json_stream]")
{
    Recorder recorder;
    std::string input = std::string(2000, '{') + std::string(2u << 20, ' ') + std::string(2000, '}') + "[1]";
    CHECK(recorder.feed(input) == Events { NESTING_ERROR, "msg [1]" });
}

TEST_CASE("strings inside a discarded message are still followed", "[json_stream]")
{
    // The brackets inside the string must not close the discarded value early.
    Recorder recorder;
    std::string input = std::string(1025, '[') + "\"]]]]\"" + std::string(1025, ']') + "{\"b\": 1}";
    CHECK(recorder.feed(input) == Events { NESTING_ERROR, R"(msg {"b": 1})" });
}
