// The console: COM1 (16550 at 0x3F8). Lines are built in a LineBuffer and sent with one `rep outsb`.
#pragma once

#include <guest/lib/format.hpp>

namespace kernel {

// Sends the line plus "\r\n". Safe from any CPU: each line is one instruction, so lines do not interleave
// character by character (whole lines from two CPUs may still interleave).
void console_write_line(guest::LineBuffer const& line);
void console_write(guest::StringView text);

} // namespace kernel
