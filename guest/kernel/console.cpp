// COM1 output. No UART set-up: both our VMM's 16550 and QEMU's accept THR writes from reset, and every
// register write would be a VM exit. A line costs one exit (`rep outsb`), and at CPL3 one system call.
#include "console.hpp"

#include "sys.hpp"

#include <guest/abi/platform.h>

namespace kernel {

namespace {
constexpr uint16_t COM1 = platform::COM1_PORT;

void send(char const* data, size_t count) { sys::outsb(COM1, data, count); }
} // namespace

void console_write(guest::StringView text)
{
    if (!text.empty())
        send(text.data, text.size);
}

void console_write_line(guest::LineBuffer const& line) { send(line.data(), line.terminate_crlf()); }

} // namespace kernel
