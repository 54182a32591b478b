// QEMU's human monitor (HMP) as far as `human-monitor-command` needs it to look into a stuck guest: the
// command-line syntax (command names, `/fmt`, expressions with $registers, -options), `info registers`,
// `info cpus`, `info status`, `x`, `xp`, `cpu` and `help`, with QEMU's texts, including its errors, which
// HMP prints as output rather than failing. No KVM here: the machine is reached through HmpMachine, and the
// registers come in once read, so the tests and the fuzzer drive all of it over plain data.
#pragma once

#include "arch/x86_64/paging.hpp"
#include "commands.hpp"
#include "cpu_dump.hpp"

#include <cpuplug/base/result.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmm::qmp {

// The largest `x`/`xp` dump, in bytes: a reply is one QMP line, and a client's unsent output is capped.
inline constexpr uint64_t HMP_MAX_DUMP_BYTES = 64 * 1024;

// Guest RAM at a guest-physical address: up to `length` bytes, fewer where RAM ends, none where there is no RAM.
using GuestRam = std::function<std::span<uint8_t const>(uint64_t address, uint64_t length)>;

// Copies guest-physical memory; false unless every byte is RAM.
bool read_physical(GuestRam const& ram, uint64_t address, std::span<uint8_t> out);
// Copies memory at a linear address through the page tables; false unless every byte maps to RAM.
bool read_linear(GuestRam const& ram, x86::PagingRegisters const& paging, uint64_t address, std::span<uint8_t> out);
x86::PagingRegisters paging_registers(CpuRegisters const& regs);

// A register's value for `$name` in an expression; nullopt for a name HMP does not know.
using RegisterLookup = std::function<std::optional<uint64_t>(std::string_view name)>;
// x86 names as QEMU's monitor has them (rax...r15, eax...edi, rip, eip, pc, eflags, rflags, the segment
// selectors), plus cr0, cr2, cr3, cr4 and efer.
std::optional<uint64_t> register_value(CpuRegisters const& regs, std::string_view name);

// QEMU's HMP expression from `text[position]`: + - * / % & | ^ ~ ( ), numbers in C's bases, 'c', $register.
// Advances `position` past it and the blanks after; the error is the line QEMU prints (without "\n").
cpuplug::Result<int64_t, std::string> evaluate_hmp_expression(std::string_view text, size_t& position,
    RegisterLookup const& registers);

// Reads memory for a dump; false where it cannot.
using MemoryReader = std::function<bool(uint64_t address, std::span<uint8_t> out)>;
// QEMU's memory_dump(): `count` units of `size` bytes (1, 2, 4, 8) shown in `format` (o, x, u, d, c) from
// `address`, 8 bytes a line for single bytes and 16 otherwise, stopping at " Cannot access memory".
std::string format_memory_dump(uint64_t address, uint64_t count, char format, int size, MemoryReader const& read);

// What the HMP commands see of the machine.
struct HmpMachine {
    std::vector<CpuSlot> slots;
    uint32_t current_cpu { 0 }; // QEMU's "current CPU": human-monitor-command's cpu-index, else the first present
    RunState state { RunState::Running };
    GuestRam ram;
};

// A command line made ready to run: the registers it needs (cpu indexes, read by the caller, in this order),
// then `run` with them, which returns the output with "\n" line ends.
struct HmpPlan {
    std::vector<uint32_t> cpus;
    std::function<std::string(std::vector<CpuRegisters> const& registers)> run;
};
HmpPlan plan_hmp_command(std::string_view line, HmpMachine machine);

// The monitor's output as QMP returns it: every "\n" becomes "\r\n".
std::string hmp_line_endings(std::string_view text);

} // namespace vmm::qmp
