// COM1 output. No UART set-up: both our VMM's 16550 and QEMU's accept THR writes from reset, and every
// register write would be a VM exit.
#include "console.hpp"

#include "x86.hpp"

namespace kernel {

namespace {
constexpr uint16_t COM1 = 0x3F8;
}

void console_write(guest::StringView text)
{
    if (!text.empty())
        x86::outsb(COM1, text.data, text.size);
}

void console_write_line(guest::LineBuffer const& line)
{
    x86::outsb(COM1, line.data(), line.terminate_crlf());
}

} // namespace kernel
