// JsonStream: splits a byte stream into JSON texts, as QEMU's json-streamer does for QMP. It follows
// strings and nesting without parsing values, turns QEMU's single-quoted strings into standard ones, and
// recovers from garbage: a control character or a 0xFF byte outside a string resets it (the QMP spec's
// recovery recipe), and a message over the size or nesting limit is reported at once and skipped to its end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace vmm::qmp {

class JsonStream {
public:
    static constexpr size_t MAX_MESSAGE = 1u << 20; // 1 MiB per message
    static constexpr size_t MAX_NESTING = 1024;      // QEMU's limit

    struct Handlers {
        std::function<void(std::string text)> message;  // one complete JSON text (a top-level value)
        std::function<void(std::string reason)> error;   // input that cannot become a message
    };

    explicit JsonStream(Handlers handlers)
        : m_handlers(std::move(handlers))
    {
    }

    void feed(std::string_view bytes);

private:
    enum class State { Idle, Structure, Scalar };
    void feed_one(char c);
    void reset();
    void finish();                   // the current value ended
    void fail(std::string reason);   // report now, reset
    void discard(std::string reason); // report now, skip the rest of this value
    void append(char c);

    Handlers m_handlers;
    State m_state { State::Idle };
    std::string m_text;
    size_t m_depth { 0 };
    char m_quote { 0 }; // inside a string: its quote character
    bool m_escape { false };
    bool m_discarding { false }; // an error was reported; the value's remaining bytes are dropped
};

} // namespace vmm::qmp
