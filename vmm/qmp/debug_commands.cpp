// The commands one reaches for when a guest hangs, in QEMU 9.2's shapes (qapi/misc.json, qapi/machine.json):
// human-monitor-command (the HMP passthrough, hmp.hpp), pmemsave (guest-physical memory to a file) and
// memsave (memory at a virtual address, through a CPU's page tables). Arguments are checked here; the
// machine only reads registers and lends its RAM.
#include "commands.hpp"
#include "hmp.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace vmm::qmp {

namespace {

// One write() at a time at most this big, so that a huge dump is many ordinary writes.
constexpr uint64_t WRITE_CHUNK = 1 << 20;

Outcome failure(std::string desc) { return cpuplug::unexpected(generic_error(std::move(desc))); }

std::string invalid_cpu_index() { return "Parameter 'cpu-index' expects a CPU number"; }

// A present CPU's index from a JSON integer, or nothing (negative, too large, absent slot).
std::optional<uint32_t> present_cpu(Json const& value, std::vector<CpuSlot> const& slots)
{
    if (!value.is_number_unsigned() && value.get<int64_t>() < 0)
        return std::nullopt;
    uint64_t index = value.get<uint64_t>();
    if (index >= slots.size() || !slots[index].qom_path)
        return std::nullopt;
    return uint32_t(index);
}

// QAPI's 'int' is int64: a high virtual address comes as a negative number, as QEMU takes it. An unsigned
// JSON number above INT64_MAX is taken as it is, too (QEMU would refuse it), so tools need no care.
uint64_t address_value(Json const& value)
{
    return value.is_number_unsigned() ? value.get<uint64_t>() : static_cast<uint64_t>(value.get<int64_t>());
}

std::string invalid_range(uint64_t address, uint64_t size)
{
    return fmt::format("Invalid addr 0x{:016x}/size {} specified", address, size);
}

// Writes all of `bytes`; the reason when it cannot.
std::optional<std::string> write_all(int fd, std::span<uint8_t const> bytes)
{
    while (!bytes.empty()) {
        auto chunk = std::min<uint64_t>(bytes.size(), WRITE_CHUNK);
        ssize_t written = ::write(fd, bytes.data(), chunk);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            // The file is open non-blocking: a pipe nobody drains fails rather than stalling the VMM.
            return errno == EAGAIN ? std::string("the reader does not keep up") : std::string(std::strerror(errno));
        }
        if (written == 0)
            return std::string("nothing was written");
        bytes = bytes.subspan(size_t(written));
    }
    return std::nullopt;
}

// A contiguous stretch of guest-physical memory to write.
struct Piece {
    uint64_t address;
    uint64_t length;
};

// Opens `path` and writes the pieces of guest RAM to it, in order.
Outcome save(Backend const& backend, DumpFileOpener const& open, std::string const& path,
    std::vector<Piece> const& pieces)
{
    int fd = open(path);
    if (fd < 0)
        return failure(fmt::format("Could not open '{}': {}", path, std::strerror(-fd)));
    std::optional<std::string> error;
    for (auto const& piece : pieces) {
        uint64_t done = 0;
        while (!error && done < piece.length) {
            auto view = backend.guest_ram(piece.address + done, std::min(piece.length - done, WRITE_CHUNK));
            if (view.empty()) { // checked before the file was opened; kept for a backend that disagrees
                error = "guest RAM changed";
                break;
            }
            error = write_all(fd, view);
            done += view.size();
        }
        if (error)
            break;
    }
    if (::close(fd) != 0 && !error)
        error = std::strerror(errno);
    if (error)
        return failure(fmt::format("writing memory to '{}' failed: {}", path, *error));
    return Json::object();
}

// The size argument: a JSON integer that is not negative.
std::optional<uint64_t> size_value(Json const& value)
{
    if (!value.is_number_unsigned() && value.get<int64_t>() < 0)
        return std::nullopt;
    return value.get<uint64_t>();
}

void human_monitor_command(Backend& backend, Json const& arguments, Reply reply)
{
    HmpMachine machine;
    machine.slots = backend.cpu_slots();
    machine.state = backend.run_state();
    machine.ram = [&backend](uint64_t address, uint64_t length) { return backend.guest_ram(address, length); };
    if (auto it = arguments.find("cpu-index"); it != arguments.end()) {
        auto index = present_cpu(*it, machine.slots);
        if (!index)
            return reply(failure(invalid_cpu_index()));
        machine.current_cpu = *index;
    } else {
        // QEMU's first_cpu: the lowest present index (CPU 0 here, which cannot be unplugged).
        for (auto slot = machine.slots.rbegin(); slot != machine.slots.rend(); ++slot)
            if (slot->qom_path)
                machine.current_cpu = slot->index;
    }
    auto plan = plan_hmp_command(arguments.at("command-line").get<std::string>(), std::move(machine));
    if (plan.cpus.empty())
        return reply(Json(hmp_line_endings(plan.run({}))));
    backend.read_cpu_registers(plan.cpus,
        [reply = std::move(reply), run = std::move(plan.run)](cpuplug::Result<std::vector<CpuRegisters>, Error> read) {
            if (!read.has_value())
                return reply(cpuplug::unexpected(read.error()));
            reply(Json(hmp_line_endings(run(read.value()))));
        });
}

void pmemsave(Backend& backend, DumpFileOpener const& open, Json const& arguments, Reply reply)
{
    uint64_t address = address_value(arguments.at("val"));
    auto size = size_value(arguments.at("size"));
    if (!size)
        return reply(failure("Parameter 'size' expects a non-negative integer"));
    // The whole range must be RAM before the file is touched (QEMU opens it first and writes what it
    // reads from wherever the range goes, MMIO and holes included).
    std::vector<Piece> pieces;
    uint64_t done = 0;
    while (done < *size) {
        uint64_t at = address + done;
        auto view = at < address ? std::span<uint8_t const> {} : backend.guest_ram(at, *size - done);
        if (view.empty())
            return reply(failure(fmt::format("{}: no guest RAM at 0x{:x}", invalid_range(address, *size), at)));
        pieces.push_back({ at, view.size() });
        done += view.size();
    }
    reply(save(backend, open, arguments.at("filename").get<std::string>(), pieces));
}

// Why a page of a memsave range cannot be saved.
std::string unreadable(x86::PageFault const& fault, uint64_t linear, uint32_t cpu)
{
    switch (fault.kind) {
    case x86::PageFault::Kind::NonCanonical:
        return fmt::format("0x{:x} is not a canonical address in CPU {}'s paging mode", linear, cpu);
    case x86::PageFault::Kind::TableUnreadable:
        return fmt::format("a page table of 0x{:x} at 0x{:x} is not in guest RAM", linear, fault.table);
    case x86::PageFault::Kind::NotPresent:
        break;
    }
    return fmt::format("0x{:x} is not mapped by CPU {}'s page tables", linear, cpu);
}

void memsave(Backend& backend, DumpFileOpener const& open, Json const& arguments, Reply reply)
{
    auto slots = backend.cpu_slots();
    uint32_t cpu = 0;
    if (auto it = arguments.find("cpu-index"); it != arguments.end()) {
        auto index = present_cpu(*it, slots);
        if (!index)
            return reply(failure(invalid_cpu_index()));
        cpu = *index;
    } else if (!present_cpu(Json(0), slots)) {
        return reply(failure(invalid_cpu_index()));
    }
    uint64_t address = address_value(arguments.at("val"));
    auto size = size_value(arguments.at("size"));
    if (!size)
        return reply(failure("Parameter 'size' expects a non-negative integer"));
    // The walk below takes a step per page; a size beyond RAM can only repeat memory, and would let a
    // guest's aliased page tables keep the VMM busy for hours.
    if (*size > backend.guest_ram_size())
        return reply(failure(fmt::format("{}: larger than guest RAM ({} bytes)", invalid_range(address, *size),
            backend.guest_ram_size())));
    auto filename = arguments.at("filename").get<std::string>();
    backend.read_cpu_registers({ cpu },
        [&backend, open, reply = std::move(reply), address, size = *size, filename, cpu](
            cpuplug::Result<std::vector<CpuRegisters>, Error> read) {
            if (!read.has_value())
                return reply(cpuplug::unexpected(read.error()));
            auto paging = paging_registers(read.value().front());
            auto physical = [&backend](uint64_t at, void* bytes, size_t length) {
                return read_physical([&backend](uint64_t a, uint64_t l) { return backend.guest_ram(a, l); }, at,
                    { static_cast<uint8_t*>(bytes), length });
            };
            // Every page translated and found in RAM before the file is touched; then written in order.
            std::vector<Piece> pieces;
            uint64_t done = 0;
            while (done < size) {
                uint64_t linear = address + done;
                auto translation = x86::translate(paging, linear, physical);
                if (!translation.has_value())
                    return reply(failure(fmt::format("{}: {}", invalid_range(address, size),
                        unreadable(translation.error(), linear, cpu))));
                // To the end of the page (at most to the end of the range), as far as it is RAM.
                uint64_t in_page = translation->page_size - (linear & (translation->page_size - 1));
                uint64_t length = std::min(in_page, size - done);
                auto view = backend.guest_ram(translation->physical, length);
                if (view.empty())
                    return reply(failure(fmt::format("{}: 0x{:x} maps to 0x{:x}, which is not guest RAM",
                        invalid_range(address, size), linear, translation->physical)));
                length = view.size();
                if (!pieces.empty() && pieces.back().address + pieces.back().length == translation->physical)
                    pieces.back().length += length;
                else
                    pieces.push_back({ translation->physical, length });
                done += length;
            }
            reply(save(backend, open, filename, pieces));
        });
}

} // namespace

int open_dump_file(std::string const& path)
{
    // 0600 rather than fopen()'s 0666: guest memory may hold the guest's secrets.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0600);
    return fd >= 0 ? fd : -errno;
}

void add_debug_commands(CommandTable& table, Backend& backend, DumpFileOpener open)
{
    table.add({ "human-monitor-command",
        { { "command-line", ArgType::String }, { "cpu-index", ArgType::Integer, true } },
        [&backend](Json const& arguments, Reply reply) {
            human_monitor_command(backend, arguments, std::move(reply));
        } });
    table.add({ "pmemsave",
        { { "val", ArgType::Integer }, { "size", ArgType::Integer }, { "filename", ArgType::String } },
        [&backend, open](Json const& arguments, Reply reply) {
            pmemsave(backend, open, arguments, std::move(reply));
        } });
    table.add({ "memsave",
        { { "val", ArgType::Integer }, { "size", ArgType::Integer }, { "filename", ArgType::String },
            { "cpu-index", ArgType::Integer, true } },
        [&backend, open](Json const& arguments, Reply reply) {
            memsave(backend, open, arguments, std::move(reply));
        } });
}

} // namespace vmm::qmp
