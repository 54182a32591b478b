// Skipping one test case honestly: it says why and stops. ctest runs every case on its own and reports
// one that printed a "cpuplug-skip: " line as skipped (tests/CMakeLists.txt); a run of the whole binary
// shows the reason as a warning. Never use it for something CI must run: require it instead.
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

namespace test_support {

inline void print_skip_line(std::string const& reason)
{
    std::printf("cpuplug-skip: %s\n", reason.c_str());
    std::fflush(stdout);
}

} // namespace test_support

#define CPUPLUG_SKIP(reason)                                   \
    do {                                                       \
        std::string const cpuplug_skip_reason_ = (reason);     \
        test_support::print_skip_line(cpuplug_skip_reason_);   \
        WARN("skipped: " << cpuplug_skip_reason_);             \
        return;                                                \
    } while (false)
