// The benchmark's pure parts: reading the guest's bring-up line, medians and minima, the table's cells.
// Kept apart from the process and QMP driving so test_bench can check them without KVM.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace bench {

// "smp: 255 of 255 CPUs online (parallel, cpu_init_udelay=0) in 208.040 ms": what the guest prints once
// bring-up is over, on cpuplug and on QEMU alike (guest/kernel/main.cpp).
struct SmpLine {
    unsigned online { 0 };
    unsigned present { 0 };
    bool parallel { false };
    unsigned init_udelay_us { 0 };
    double bringup_ms { 0 };
};

inline std::optional<SmpLine> parse_smp_line(std::string_view console)
{
    auto at = console.rfind("smp: ");
    if (at == std::string_view::npos)
        return std::nullopt;
    auto end = console.find('\n', at);
    std::string line(console.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    SmpLine parsed;
    char mode[16] = {};
    int consumed = 0;
    // %15[a-z] stops at the comma; %n proves the whole pattern matched up to " ms".
    if (std::sscanf(line.c_str(), "smp: %u of %u CPUs online (%15[a-z], cpu_init_udelay=%u) in %lf ms%n",
            &parsed.online, &parsed.present, mode, &parsed.init_udelay_us, &parsed.bringup_ms, &consumed) != 5
        || consumed == 0)
        return std::nullopt;
    std::string_view m(mode);
    if (m != "parallel" && m != "serial")
        return std::nullopt;
    parsed.parallel = m == "parallel";
    return parsed;
}

struct Stats {
    size_t count { 0 };
    double median { NAN };
    double min { NAN };
};

inline Stats stats_of(std::vector<double> values)
{
    Stats s;
    s.count = values.size();
    if (values.empty())
        return s;
    std::sort(values.begin(), values.end());
    size_t n = values.size();
    s.median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    s.min = values.front();
    return s;
}

// "18.4 (17.0)"; "-" when there is nothing, as for QEMU beyond its machine's limit.
inline std::string cell(Stats const& s)
{
    if (s.count == 0)
        return "-";
    int digits = s.median >= 100 ? 0 : 1;
    return fmt::format("{:.{}f} ({:.{}f})", s.median, digits, s.min, digits);
}

inline std::string ratio(double numerator, double denominator)
{
    if (!std::isfinite(numerator) || !std::isfinite(denominator) || denominator <= 0)
        return "-";
    return fmt::format("{:.2f}", numerator / denominator);
}

// A CSV field or gnuplot value: empty data is "NaN", which gnuplot skips.
inline std::string number(double value, int digits = 3)
{
    return std::isfinite(value) ? fmt::format("{:.{}f}", value, digits) : "NaN";
}

} // namespace bench
