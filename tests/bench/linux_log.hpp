// Reading a Linux guest's serial console for the benchmark's Linux mode: the kernel's own timestamps of
// its SMP bring-up, and the lines tests/linux/init prints. Pure, so test_bench checks it without KVM.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace bench {

// The console line that contains `needle` (its first occurrence at or after `from`), without its line
// break and CR; nullopt when there is none or it is not complete yet (no '\n' after it).
inline std::optional<std::string> console_line(std::string_view console, std::string_view needle, size_t from = 0)
{
    auto at = console.find(needle, from);
    if (at == std::string_view::npos)
        return std::nullopt;
    auto end = console.find('\n', at);
    if (end == std::string_view::npos)
        return std::nullopt;
    auto begin = console.rfind('\n', at);
    begin = begin == std::string_view::npos ? 0 : begin + 1;
    std::string line(console.substr(begin, end - begin));
    if (!line.empty() && line.back() == '\r')
        line.pop_back();
    return line;
}

// The printk timestamp of a kernel log line, "[    1.234567] smp: ...", in seconds; nullopt without one
// (a kernel built without CONFIG_PRINTK_TIME and booted without printk.time=1 prints none).
inline std::optional<double> kernel_timestamp(std::string_view line)
{
    double seconds = 0;
    int consumed = 0;
    std::string copy(line);
    if (std::sscanf(copy.c_str(), " [ %lf]%n", &seconds, &consumed) != 1 || consumed == 0)
        return std::nullopt;
    return seconds;
}

// Linux's SMP bring-up as its log dates it: kernel/smp.c's "smp: Bringing up secondary CPUs ..." before it
// starts the first AP, "smp: Brought up N node(s), M CPU(s)" once every AP is online.
struct LinuxSmp {
    double start_s { 0 };
    double end_s { 0 };
    unsigned cpus { 0 };
    double ms() const { return (end_s - start_s) * 1000; }
};

// The timestamp of the first line with `needle`: the kernel's own on the console (without `quiet`), or
// tests/linux/init's copy from dmesg ("cpuplug-linux: log [    6.930468] smp: ..."), whichever comes first.
inline std::optional<double> dated(std::string_view console, std::string_view needle)
{
    auto line = console_line(console, needle);
    if (!line)
        return std::nullopt;
    auto bracket = line->rfind('[', line->find(needle));
    if (bracket == std::string::npos)
        return std::nullopt;
    return kernel_timestamp(std::string_view(*line).substr(bracket));
}

inline std::optional<LinuxSmp> parse_linux_smp(std::string_view console)
{
    auto end_line = console_line(console, "smp: Brought up ");
    auto start = dated(console, "smp: Bringing up secondary CPUs");
    auto end = dated(console, "smp: Brought up ");
    if (!end_line || !start || !end || *end < *start)
        return std::nullopt;
    LinuxSmp smp { *start, *end, 0 };
    unsigned nodes = 0;
    auto brought = end_line->substr(end_line->find("smp: Brought up "));
    if (std::sscanf(brought.c_str(), "smp: Brought up %u node%*[s], %u CPU", &nodes, &smp.cpus) != 2
        && std::sscanf(brought.c_str(), "smp: Brought up %u node, %u CPU", &nodes, &smp.cpus) != 2)
        return std::nullopt;
    return smp;
}

// tests/linux/init's first line, "cpuplug-linux: init online=0-1 possible=0-3 uptime=12.34".
struct InitLine {
    std::string online;
    double uptime_s { 0 };
};

inline std::optional<InitLine> parse_init_line(std::string_view line)
{
    auto at = line.find("cpuplug-linux: init online=");
    if (at == std::string_view::npos)
        return std::nullopt;
    std::string copy(line.substr(at));
    char online[64] = {};
    InitLine parsed;
    if (std::sscanf(copy.c_str(), "cpuplug-linux: init online=%63s possible=%*s uptime=%lf", online, &parsed.uptime_s) != 2)
        return std::nullopt;
    parsed.online = online;
    return parsed;
}

// Its hot-add line, "cpuplug-linux: cpu-added 2 online=1": Linux's logical CPU and whether init could
// online it.
struct CpuAdded {
    unsigned cpu { 0 };
    bool online { false };
};

inline std::optional<CpuAdded> parse_cpu_added(std::string_view line)
{
    auto at = line.find("cpuplug-linux: cpu-added ");
    if (at == std::string_view::npos)
        return std::nullopt;
    std::string copy(line.substr(at));
    CpuAdded parsed;
    int online = -1;
    if (std::sscanf(copy.c_str(), "cpuplug-linux: cpu-added %u online=%d", &parsed.cpu, &online) != 2 || online < 0)
        return std::nullopt;
    parsed.online = online == 1;
    return parsed;
}

} // namespace bench
