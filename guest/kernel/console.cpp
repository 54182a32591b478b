// COM1 output. No UART set-up: both our VMM's 16550 and QEMU's accept THR writes from reset, and every
// register write would be a VM exit. From CPL3 a line costs one system call and one exit.
#include "console.hpp"

#include "percpu.hpp"
#include "sys.hpp"
#include "x86.hpp"

namespace kernel {

namespace {
constexpr uint16_t COM1 = 0x3F8;

void send(char const* data, size_t count)
{
    if (at_cpl3())
        sys::outsb(COM1, data, count);
    else
        x86::outsb(COM1, data, count);
}
} // namespace

void console_write(guest::StringView text)
{
    if (!text.empty())
        send(text.data, text.size);
}

void console_write_line(guest::LineBuffer const& line) { send(line.data(), line.terminate_crlf()); }

} // namespace kernel
