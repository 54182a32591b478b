// parse_smp: keyval parsing, then QEMU's machine_parse_smp_config() order: zero check, unsupported levels,
// fill-in from maxcpus (cores first), product check, cpus <= maxcpus, the machine's maximum.
#include "smp_config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <optional>

namespace vmm {

namespace {

using cpuplug::unexpected;

struct Given {
    std::optional<uint64_t> cpus, maxcpus, sockets, dies, cores, threads, modules, clusters, books, drawers;
};

std::optional<uint64_t>* field(Given& given, std::string_view key)
{
    if (key == "cpus")
        return &given.cpus;
    if (key == "maxcpus")
        return &given.maxcpus;
    if (key == "sockets")
        return &given.sockets;
    if (key == "dies")
        return &given.dies;
    if (key == "cores")
        return &given.cores;
    if (key == "threads")
        return &given.threads;
    if (key == "modules")
        return &given.modules;
    if (key == "clusters")
        return &given.clusters;
    if (key == "books")
        return &given.books;
    if (key == "drawers")
        return &given.drawers;
    return nullptr;
}

cpuplug::Result<Given, std::string> parse_keyval(std::string_view text)
{
    Given given;
    bool first = true;
    while (true) {
        size_t comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        std::string_view key = "cpus", value = item;
        if (size_t eq = item.find('='); eq != std::string_view::npos) {
            key = item.substr(0, eq);
            value = item.substr(eq + 1);
        } else if (!first) {
            return unexpected(fmt::format("Parameter 'smp.{}' is unexpected", item));
        }
        auto* slot = field(given, key);
        if (!slot)
            return unexpected(fmt::format("Parameter 'smp.{}' is unexpected", key));
        uint64_t number = 0;
        auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
        if (value.empty() || error != std::errc() || end != value.data() + value.size() || number > UINT32_MAX)
            return unexpected(fmt::format("Parameter 'smp.{}' expects integer", key));
        *slot = number;
        first = false;
        if (comma == std::string_view::npos)
            break;
        text.remove_prefix(comma + 1);
    }
    return given;
}

std::string hierarchy(uint64_t sockets, uint64_t dies, uint64_t cores, uint64_t threads)
{
    // x86 supports dies and modules; cpuplug has no modules, which QEMU prints as 1.
    return fmt::format("sockets ({}) * dies ({}) * modules (1) * cores ({}) * threads ({})", sockets, dies, cores,
        threads);
}

} // namespace

cpuplug::Result<SmpConfig, std::string> parse_smp(std::string_view text)
{
    auto given = TRY(parse_keyval(text));

    for (auto const* value : { &given.cpus, &given.maxcpus, &given.sockets, &given.dies, &given.cores,
             &given.threads, &given.modules, &given.clusters, &given.books, &given.drawers })
        if (value->has_value() && **value == 0)
            return unexpected(std::string("Invalid CPU topology: CPU topology parameters must be greater than zero"));

    struct Unsupported {
        std::optional<uint64_t> const* value;
        char const* name;
    };
    for (auto const& level : { Unsupported { &given.modules, "modules" }, Unsupported { &given.clusters, "clusters" },
             Unsupported { &given.books, "books" }, Unsupported { &given.drawers, "drawers" } })
        if (level.value->has_value() && **level.value > 1)
            return unexpected(fmt::format("{} > 1 not supported by this machine's CPU topology", level.name));

    uint64_t dies = given.dies.value_or(1);
    uint64_t cpus = given.cpus.value_or(0), maxcpus = given.maxcpus.value_or(0);
    uint64_t sockets = given.sockets.value_or(0), cores = given.cores.value_or(0), threads = given.threads.value_or(0);
    if (cpus == 0 && maxcpus == 0) {
        sockets = sockets ? sockets : 1;
        cores = cores ? cores : 1;
        threads = threads ? threads : 1;
    } else {
        maxcpus = maxcpus ? maxcpus : cpus;
        if (cores == 0) {
            sockets = sockets ? sockets : 1;
            threads = threads ? threads : 1;
            cores = maxcpus / (dies * sockets * threads);
        } else if (sockets == 0) {
            threads = threads ? threads : 1;
            sockets = maxcpus / (dies * cores * threads);
        }
        if (threads == 0)
            threads = maxcpus / (dies * sockets * cores);
    }
    uint64_t total = sockets * dies * cores * threads;
    maxcpus = maxcpus ? maxcpus : total;
    cpus = cpus ? cpus : maxcpus;

    if (total != maxcpus)
        return unexpected(fmt::format("Invalid CPU topology: product of the hierarchy must match maxcpus: {} != maxcpus ({})",
            hierarchy(sockets, dies, cores, threads), maxcpus));
    if (maxcpus < cpus)
        return unexpected(fmt::format(
            "Invalid CPU topology: maxcpus must be equal to or greater than smp: {} == maxcpus ({}) < smp_cpus ({})",
            hierarchy(sockets, dies, cores, threads), maxcpus, cpus));
    if (maxcpus > MACHINE_MAX_CPUS)
        return unexpected(fmt::format("Invalid SMP CPUs {}. The max CPUs supported by machine '{}' is {}", maxcpus,
            MACHINE_NAME, MACHINE_MAX_CPUS));

    SmpConfig config;
    config.cpus = static_cast<uint32_t>(cpus);
    config.maxcpus = static_cast<uint32_t>(maxcpus);
    config.topology = { static_cast<uint32_t>(sockets), static_cast<uint32_t>(dies), static_cast<uint32_t>(cores),
        static_cast<uint32_t>(threads) };
    return config;
}

} // namespace vmm
