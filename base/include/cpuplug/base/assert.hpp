// Assertions and panic, the one place that knows whether we run hosted (VMM, tests) or freestanding (guest).
#pragma once

#if __STDC_HOSTED__
#    include <cstdio>
#    include <cstdlib>
namespace cpuplug {
// Hosted: a broken invariant is a bug; say where and abort so a core dump or sanitizer trace follows.
[[noreturn]] inline void panic(char const* message, char const* file, int line)
{
    std::fprintf(stderr, "cpuplug: panic at %s:%d: %s\n", file, line, message);
    std::abort();
}
} // namespace cpuplug
#else
namespace cpuplug {
// Freestanding: the guest kernel provides it (prints to the console, reports to the VMM, powers off).
[[noreturn]] void panic(char const* message, char const* file, int line);
} // namespace cpuplug
#endif

#define CPUPLUG_ASSERT(condition)                                                  \
    do {                                                                           \
        if (!(condition)) [[unlikely]]                                             \
            ::cpuplug::panic("assertion failed: " #condition, __FILE__, __LINE__); \
    } while (0)
