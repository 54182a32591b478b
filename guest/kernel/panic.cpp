// cpuplug::panic for the freestanding build: report on the console, then power off with a failure status.
#include <cpuplug/base/assert.hpp>

#include "console.hpp"
#include "power.hpp"
#include "trap.hpp"

namespace cpuplug {

void panic(char const* message, char const* file, int line)
{
    guest::LineBuffer text;
    text.text("guest: panic: ").text(message).text(" at ").text(file).ch(':').dec(static_cast<uint64_t>(line));
    kernel::console_write_line(text);
    kernel::power_off_failure(kernel::EXIT_GUEST_PANIC);
}

} // namespace cpuplug
