// CPU topology: sockets x dies x cores x threads, and QEMU's APIC-id layout (include/hw/i386/topology.h):
// fields from the least significant bit: SMT, core, die, package, each as wide as its count needs.
#pragma once

#include <cstdint>

namespace vmm {

struct CpuTopology {
    uint32_t sockets { 1 };
    uint32_t dies { 1 };              // per socket
    uint32_t cores { 1 };             // per die
    uint32_t threads { 1 };           // per core

    constexpr uint32_t threads_per_die() const { return cores * threads; }
    constexpr uint32_t threads_per_socket() const { return dies * cores * threads; }
    constexpr uint32_t max_cpus() const { return sockets * threads_per_socket(); }
};

struct CpuIds {
    uint32_t socket, die, core, thread;
};

// ceil(log2(count)), 0 for a count of 1: how many APIC-id bits a level with `count` members takes.
constexpr uint32_t id_width(uint32_t count)
{
    uint32_t width = 0;
    while ((1u << width) < count)
        ++width;
    return width;
}

constexpr uint32_t smt_width(CpuTopology const& t) { return id_width(t.threads); }
constexpr uint32_t core_offset(CpuTopology const& t) { return smt_width(t); }
constexpr uint32_t die_offset(CpuTopology const& t) { return core_offset(t) + id_width(t.cores); }
constexpr uint32_t package_offset(CpuTopology const& t) { return die_offset(t) + id_width(t.dies); }

// cpu_index -> topology ids, QEMU's order: threads fastest, then cores, dies, sockets.
constexpr CpuIds ids_from_index(CpuTopology const& t, uint32_t index)
{
    return {
        index / t.threads_per_socket(),
        index / t.threads_per_die() % t.dies,
        index / t.threads % t.cores,
        index % t.threads,
    };
}

constexpr uint32_t apic_id_from_ids(CpuTopology const& t, CpuIds ids)
{
    return (ids.socket << package_offset(t)) | (ids.die << die_offset(t)) | (ids.core << core_offset(t)) | ids.thread;
}

constexpr uint32_t apic_id_from_index(CpuTopology const& t, uint32_t index)
{
    return apic_id_from_ids(t, ids_from_index(t, index));
}

} // namespace vmm
