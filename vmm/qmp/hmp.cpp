// HMP: the parts of QEMU's monitor/hmp.c, monitor/hmp-cmds-target.c and hw/core/machine-hmp-cmds.c that
// cpuplug's commands need, rewritten from their documented behaviour and output. Parsing and output follow
// QEMU's, errors included: HMP prints them, so a client sees the same text it would from QEMU.
#include "hmp.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>

namespace vmm::qmp {

// --- memory -----------------------------------------------------------------------------------------

bool read_physical(GuestRam const& ram, uint64_t address, std::span<uint8_t> out)
{
    size_t done = 0;
    while (done < out.size()) {
        uint64_t at = address + done;
        if (at < address)
            return false; // wrapped past the top of the address space
        auto view = ram(at, out.size() - done);
        if (view.empty())
            return false;
        std::memcpy(out.data() + done, view.data(), view.size());
        done += view.size();
    }
    return true;
}

x86::PagingRegisters paging_registers(CpuRegisters const& regs)
{
    return { regs.cr0, regs.cr3, regs.cr4, regs.efer };
}

bool read_linear(GuestRam const& ram, x86::PagingRegisters const& paging, uint64_t address, std::span<uint8_t> out)
{
    auto physical = [&ram](uint64_t at, void* bytes, size_t size) {
        return read_physical(ram, at, { static_cast<uint8_t*>(bytes), size });
    };
    size_t done = 0;
    while (done < out.size()) {
        uint64_t linear = address + done;
        auto translation = x86::translate(paging, linear, physical);
        if (!translation.has_value())
            return false;
        // Up to the end of this 4 KiB piece, whatever the page's size: simple, and never wrong.
        uint64_t piece = std::min<uint64_t>(out.size() - done, 4096 - (linear & 4095));
        if (!read_physical(ram, translation->physical, out.subspan(done, piece)))
            return false;
        done += piece;
        if (address + done < address && done < out.size())
            return false; // the range wrapped
    }
    return true;
}

// --- registers --------------------------------------------------------------------------------------

std::optional<uint64_t> register_value(CpuRegisters const& r, std::string_view name)
{
    struct Named {
        std::string_view name;
        uint64_t value;
    };
    // QEMU's x86 monitor_defs give the whole register for the 32-bit names too (target_long is 64-bit).
    Named const table[] = {
        { "rax", r.rax }, { "rbx", r.rbx }, { "rcx", r.rcx }, { "rdx", r.rdx }, { "rsi", r.rsi }, { "rdi", r.rdi },
        { "rbp", r.rbp }, { "rsp", r.rsp }, { "r8", r.r8 }, { "r9", r.r9 }, { "r10", r.r10 }, { "r11", r.r11 },
        { "r12", r.r12 }, { "r13", r.r13 }, { "r14", r.r14 }, { "r15", r.r15 }, { "eax", r.rax }, { "ebx", r.rbx },
        { "ecx", r.rcx }, { "edx", r.rdx }, { "esi", r.rsi }, { "edi", r.rdi }, { "ebp", r.rbp }, { "esp", r.rsp },
        { "rip", r.rip }, { "eip", r.rip }, { "pc", r.cs.base + r.rip }, { "eflags", r.rflags },
        { "rflags", r.rflags }, { "cs", r.cs.selector }, { "ds", r.ds.selector }, { "es", r.es.selector },
        { "ss", r.ss.selector }, { "fs", r.fs.selector }, { "gs", r.gs.selector }, { "cr0", r.cr0 },
        { "cr2", r.cr2 }, { "cr3", r.cr3 }, { "cr4", r.cr4 }, { "efer", r.efer },
    };
    for (auto const& entry : table)
        if (entry.name == name)
            return entry.value;
    return std::nullopt;
}

// --- expressions ------------------------------------------------------------------------------------

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// QEMU's expr_error() jumps out of the recursion with siglongjmp; this is its C++ spelling, caught in
// evaluate_hmp_expression() and nowhere else.
struct ExpressionError {
    std::string message;
};

class Expression {
public:
    Expression(std::string_view text, size_t position, RegisterLookup const& registers)
        : m_text(text)
        , m_pos(position)
        , m_registers(registers)
    {
    }

    int64_t parse()
    {
        skip_blanks();
        return sum();
    }
    size_t position() const { return m_pos; }

private:
    // Nesting bound: "((((..." or "----..." recurse, and a command line may be a megabyte long.
    static constexpr int MAX_DEPTH = 256;

    char peek() const { return m_pos < m_text.size() ? m_text[m_pos] : '\0'; }
    void skip_blanks()
    {
        while (is_blank(peek()))
            ++m_pos;
    }
    void next()
    {
        if (peek() != '\0') {
            ++m_pos;
            skip_blanks();
        }
    }
    [[noreturn]] static void fail(std::string message) { throw ExpressionError { std::move(message) }; }

    uint64_t unary()
    {
        if (++m_depth > MAX_DEPTH)
            fail("expression too deeply nested");
        uint64_t n = 0;
        switch (peek()) {
        case '+':
            next();
            n = unary();
            break;
        case '-':
            next();
            n = 0 - unary(); // unsigned: INT64_MIN wraps as QEMU's int64 would in practice
            break;
        case '~':
            next();
            n = ~unary();
            break;
        case '(':
            next();
            n = sum();
            if (peek() != ')')
                fail("')' expected");
            next();
            break;
        case '\'':
            ++m_pos;
            if (peek() == '\0')
                fail("character constant expected");
            n = static_cast<uint64_t>(static_cast<int64_t>(static_cast<signed char>(peek()))); // C's char
            ++m_pos;
            if (peek() != '\'')
                fail("missing terminating ' character");
            next();
            break;
        case '$': {
            ++m_pos;
            size_t start = m_pos;
            auto name_char = [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '.';
            };
            while (name_char(peek()))
                ++m_pos;
            auto name = m_text.substr(start, std::min<size_t>(m_pos - start, 127)); // QEMU keeps 127 characters
            skip_blanks();
            auto value = m_registers(name);
            if (!value)
                fail("unknown register");
            n = *value;
            break;
        }
        case '\0':
            fail("unexpected end of expression");
        default:
            n = number();
            skip_blanks();
            break;
        }
        --m_depth;
        return n;
    }

    // strtoull(p, &end, 0): 0x for hexadecimal, a leading 0 for octal, else decimal.
    uint64_t number()
    {
        size_t start = m_pos;
        unsigned base = 10;
        auto digit_value = [](char c) -> unsigned {
            if (is_digit(c))
                return unsigned(c - '0');
            if (c >= 'a' && c <= 'z')
                return unsigned(c - 'a' + 10);
            if (c >= 'A' && c <= 'Z')
                return unsigned(c - 'A' + 10);
            return 99;
        };
        if (peek() == '0') {
            char x = m_pos + 1 < m_text.size() ? m_text[m_pos + 1] : '\0';
            char after = m_pos + 2 < m_text.size() ? m_text[m_pos + 2] : '\0';
            if ((x == 'x' || x == 'X') && digit_value(after) < 16) {
                base = 16;
                m_pos += 2;
            } else {
                base = 8;
            }
        }
        uint64_t value = 0;
        bool overflow = false;
        while (digit_value(peek()) < base) {
            unsigned digit = digit_value(peek());
            if (value > (std::numeric_limits<uint64_t>::max() - digit) / base)
                overflow = true;
            value = value * base + digit;
            ++m_pos;
        }
        if (m_pos == start)
            fail(fmt::format("invalid char '{}' in expression", peek()));
        if (overflow)
            fail("number too large");
        return value;
    }

    uint64_t product()
    {
        uint64_t value = unary();
        for (;;) {
            char op = peek();
            if (op != '*' && op != '/' && op != '%')
                return value;
            next();
            uint64_t other = unary();
            if (op == '*') {
                value *= other;
                continue;
            }
            if (other == 0)
                fail("division by zero");
            auto a = static_cast<int64_t>(value);
            auto b = static_cast<int64_t>(other);
            if (a == std::numeric_limits<int64_t>::min() && b == -1) // the one quotient int64 cannot hold
                value = op == '/' ? value : 0;
            else
                value = static_cast<uint64_t>(op == '/' ? a / b : a % b);
        }
    }

    uint64_t logic()
    {
        uint64_t value = product();
        for (;;) {
            char op = peek();
            if (op != '&' && op != '|' && op != '^')
                return value;
            next();
            uint64_t other = product();
            value = op == '&' ? value & other : op == '|' ? value | other : value ^ other;
        }
    }

    uint64_t sum()
    {
        uint64_t value = logic();
        for (;;) {
            char op = peek();
            if (op != '+' && op != '-')
                return value;
            next();
            uint64_t other = logic();
            value = op == '+' ? value + other : value - other;
        }
    }

    std::string_view m_text;
    size_t m_pos;
    RegisterLookup const& m_registers;
    int m_depth { 0 };
};

} // namespace

cpuplug::Result<int64_t, std::string> evaluate_hmp_expression(std::string_view text, size_t& position,
    RegisterLookup const& registers)
{
    Expression expression(text, position, registers);
    try {
        auto value = static_cast<int64_t>(expression.parse());
        position = expression.position();
        return value;
    } catch (ExpressionError const& error) {
        return cpuplug::unexpected(error.message);
    }
}

// --- memory dumps -----------------------------------------------------------------------------------

namespace {

template<typename... Args>
void put(std::string& out, fmt::format_string<Args...> format, Args&&... args)
{
    fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

// monitor_printc(): a byte in single quotes, C-escaped when not printable.
void put_char(std::string& out, uint8_t c)
{
    out += '\'';
    switch (c) {
    case '\'':
        out += "\\'";
        break;
    case '\\':
        out += "\\\\";
        break;
    case '\n':
        out += "\\n";
        break;
    case '\r':
        out += "\\r";
        break;
    default:
        if (c >= 32 && c <= 126)
            out += char(c);
        else
            put(out, "\\x{:02x}", c);
        break;
    }
    out += '\'';
}

} // namespace

std::string format_memory_dump(uint64_t address, uint64_t count, char format, int size, MemoryReader const& read)
{
    std::string out;
    if (format == 'c')
        size = 1;
    uint64_t length = count * uint64_t(size);
    uint64_t line_size = size == 1 ? 8 : 16;
    int digits = 0;
    switch (format) {
    case 'o':
        digits = (size * 8 + 2) / 3;
        break;
    case 'u':
    case 'd':
        digits = (size * 8 * 10 + 32) / 33;
        break;
    default:
        digits = size * 2;
        break;
    }
    while (length > 0) {
        put(out, "{:016x}:", address);
        uint64_t chunk = std::min(length, line_size);
        std::array<uint8_t, 16> buffer {};
        if (!read(address, std::span<uint8_t>(buffer.data(), chunk))) {
            out += " Cannot access memory\n";
            break;
        }
        for (uint64_t i = 0; i < chunk; i += uint64_t(size)) {
            // Little-endian units, zero-extended: QEMU loads them unsigned, so "d" is signed for 8 bytes only.
            uint64_t value = 0;
            std::memcpy(&value, buffer.data() + i, size_t(size));
            out += ' ';
            switch (format) {
            case 'o':
                put(out, "{:#{}o}", value, digits);
                break;
            case 'u':
                put(out, "{:{}}", value, digits);
                break;
            case 'd':
                put(out, "{:{}}", static_cast<int64_t>(value), digits);
                break;
            case 'c':
                put_char(out, uint8_t(value));
                break;
            default:
                put(out, "0x{:0{}x}", value, digits);
                break;
            }
        }
        out += '\n';
        address += chunk;
        length -= chunk;
    }
    return out;
}

// --- the command line -------------------------------------------------------------------------------

namespace {

enum class Action { Help, InfoHelp, Cpu, VirtualDump, PhysicalDump, InfoCpus, InfoRegisters, InfoStatus };

struct Definition {
    std::string_view names;  // "help|?": the name and its aliases
    std::string_view args;   // QEMU's args_type
    std::string_view params; // for help
    std::string_view help;
    Action action;
    std::span<Definition const> sub {}; // a command with subcommands (info)
};

constexpr Definition INFO_COMMANDS[] = {
    { "cpus", "", "", "show infos for each CPU", Action::InfoCpus },
    { "registers", "cpustate_all:-a,vcpu:i?", "[-a|vcpu]",
        "show the cpu registers (-a: show register info for all cpus; vcpu: specific vCPU to query; show the "
        "current CPU's registers if omitted)",
        Action::InfoRegisters },
    { "status", "", "", "show the current VM status (running|paused)", Action::InfoStatus },
};

constexpr Definition COMMANDS[] = {
    { "help|?", "name:S?", "[cmd]", "show the help", Action::Help },
    { "cpu", "index:i", "index", "set the default CPU", Action::Cpu },
    { "info", "item:s?", "[subcommand]", "show various information about the system state", Action::InfoHelp,
        INFO_COMMANDS },
    { "x", "fmt:/,addr:l", "/fmt addr", "virtual memory dump starting at 'addr'", Action::VirtualDump },
    { "xp", "fmt:/,addr:l", "/fmt addr", "physical memory dump starting at 'addr'", Action::PhysicalDump },
};

// hmp_compare_cmd(): `name` is one of the '|'-separated names.
bool names_match(std::string_view name, std::string_view names)
{
    while (!names.empty()) {
        auto bar = names.find('|');
        if (names.substr(0, bar) == name)
            return true;
        if (bar == std::string_view::npos)
            break;
        names.remove_prefix(bar + 1);
    }
    return false;
}

Definition const* find_command(std::span<Definition const> table, std::string_view name)
{
    for (auto const& definition : table)
        if (names_match(name, definition.names))
            return &definition;
    return nullptr;
}

struct Arguments {
    std::map<std::string, int64_t, std::less<>> ints;
    std::map<std::string, bool, std::less<>> flags;
    std::map<std::string, std::string, std::less<>> strings;
    uint64_t count { 1 };
    char format { 'x' };
    int size { 4 };
};

// The first word of the command's name for messages: "registers" for info registers, as QEMU's cmd->name.
std::string_view first_name(Definition const& command) { return command.names.substr(0, command.names.find('|')); }

// monitor_parse_arguments(): fills `out` from `line[pos]` as `command.args` says; on failure, the lines
// QEMU prints (before its "Try help" line).
std::optional<std::string> parse_arguments(Definition const& command, std::string_view line, size_t pos,
    RegisterLookup const& registers, Arguments& out)
{
    auto peek = [&](size_t at) { return at < line.size() ? line[at] : '\0'; };
    auto skip_blanks = [&] {
        while (is_blank(peek(pos)))
            ++pos;
    };
    auto name = first_name(command);
    std::string_view types = command.args;
    while (!types.empty()) {
        auto comma = types.find(',');
        auto item = types.substr(0, comma);
        types = comma == std::string_view::npos ? std::string_view {} : types.substr(comma + 1);
        auto colon = item.find(':');
        std::string key(item.substr(0, colon));
        std::string_view type = item.substr(colon + 1);
        bool optional = type.size() > 1 && type[1] == '?';
        switch (type[0]) {
        case '/': {
            skip_blanks();
            if (peek(pos) != '/')
                break; // QEMU's defaults: one unit, x, 4 bytes
            ++pos;
            if (is_digit(peek(pos))) {
                out.count = 0;
                while (is_digit(peek(pos))) {
                    // Saturates where QEMU's int would overflow; the dump's size limit refuses it anyway.
                    out.count = std::min<uint64_t>(out.count * 10 + uint64_t(peek(pos) - '0'), 1ull << 40);
                    ++pos;
                }
            }
            std::optional<char> format;
            std::optional<int> size;
            for (bool more = true; more;) {
                switch (char c = peek(pos)) {
                case 'o':
                case 'd':
                case 'u':
                case 'x':
                case 'i':
                case 'c':
                    format = c;
                    ++pos;
                    break;
                case 'b':
                    size = 1;
                    ++pos;
                    break;
                case 'h':
                    size = 2;
                    ++pos;
                    break;
                case 'w':
                    size = 4;
                    ++pos;
                    break;
                case 'g':
                case 'L':
                    size = 8;
                    ++pos;
                    break;
                default:
                    more = false;
                    break;
                }
            }
            if (peek(pos) != '\0' && !is_blank(peek(pos)))
                return fmt::format("invalid char in format: '{}'\n", peek(pos));
            out.format = format.value_or('x');
            out.size = size.value_or(4);
            break;
        }
        case 'i':
        case 'l': {
            skip_blanks();
            if (optional && peek(pos) == '\0')
                break;
            auto value = evaluate_hmp_expression(line, pos, registers);
            if (!value.has_value())
                return value.error() + "\n";
            if (type[0] == 'i' && (uint64_t(value.value()) >> 32) != 0)
                return fmt::format("'{}' has failed: integer is for 32-bit values\n", name);
            out.ints[key] = value.value();
            break;
        }
        case '-': {
            // A boolean option: "-a" sets `key`.
            char option = type.size() > 1 ? type[1] : '\0';
            skip_blanks();
            if (peek(pos) == '-') {
                ++pos;
                if (char given = peek(pos); given != option) {
                    // Another option of this command comes later in the list: leave it for its turn.
                    if (given == '\0')
                        return fmt::format("{}: unsupported option -\n", name);
                    if (types.find(std::string { '-', given }) == std::string_view::npos)
                        return fmt::format("{}: unsupported option -{}\n", name, given);
                    --pos;
                } else {
                    ++pos;
                    out.flags[key] = true;
                }
            }
            break;
        }
        case 's': {
            // One word (QEMU's get_str(), without its quoting, which none of these commands needs).
            skip_blanks();
            if (optional && peek(pos) == '\0')
                break;
            size_t start = pos;
            while (peek(pos) != '\0' && !is_blank(peek(pos)))
                ++pos;
            if (start == pos)
                return fmt::format("{}: string expected\n", name);
            out.strings[key] = std::string(line.substr(start, pos - start));
            break;
        }
        case 'S': {
            // The rest of the line.
            skip_blanks();
            if (optional && peek(pos) == '\0')
                break;
            if (peek(pos) == '\0')
                return fmt::format("{}: string expected\n", name);
            out.strings[key] = std::string(line.substr(pos));
            pos = line.size();
            break;
        }
        default:
            return fmt::format("{}: unknown type '{}'\n", name, type[0]);
        }
    }
    skip_blanks();
    if (peek(pos) != '\0')
        return fmt::format("{}: extraneous characters at the end of line\n", name);
    return std::nullopt;
}

// A command line split into its command and arguments, or the output that ends it early.
struct Parsed {
    Definition const* command { nullptr };
    Arguments arguments;
    std::string output; // when `command` is null: what HMP prints (an unknown command, a syntax error)
};

// The command name as get_command_name() takes it: up to a blank or '/'.
size_t name_end(std::string_view line, size_t pos)
{
    while (pos < line.size() && line[pos] != '/' && !is_blank(line[pos]))
        ++pos;
    return pos;
}

Parsed parse_line(std::string_view line, RegisterLookup const& registers)
{
    Parsed parsed;
    size_t pos = 0;
    std::span<Definition const> table = COMMANDS;
    Definition const* command = nullptr;
    // monitor_parse_command(): a name, then a subcommand's while the command has subcommands and text follows.
    for (;;) {
        while (pos < line.size() && is_blank(line[pos]))
            ++pos;
        if (pos >= line.size())
            return parsed; // a blank line: no output
        size_t end = name_end(line, pos);
        // QEMU copies at most 255 characters of the name.
        auto name = line.substr(pos, std::min<size_t>(end - pos, 255));
        auto const* found = find_command(table, name);
        if (!found) {
            parsed.output = fmt::format("unknown command: '{}'\n", line.substr(0, end));
            return parsed;
        }
        command = found;
        pos = end;
        while (pos < line.size() && is_blank(line[pos]))
            ++pos;
        if (command->sub.empty() || pos >= line.size())
            break;
        table = command->sub;
    }
    // "Try help" names the command as typed: from the line's start to its name, blanks after it trimmed.
    size_t typed = pos;
    while (typed > 0 && is_blank(line[typed - 1]))
        --typed;
    if (auto error = parse_arguments(*command, line, pos, registers, parsed.arguments)) {
        parsed.output = *error + fmt::format("Try \"help {}\" for more information\n", line.substr(0, typed));
        return parsed;
    }
    parsed.command = command;
    return parsed;
}

// help_cmd_dump(): one command, or every command of a table, each with the words that led to it.
void help_dump(std::string& out, std::span<Definition const> table, std::vector<std::string> const& words,
    size_t index)
{
    auto dump_one = [&](Definition const& command, size_t prefix) {
        for (size_t i = 0; i < prefix; ++i)
            out += words[i] + " ";
        put(out, "{} {} -- {}\n", command.names, command.params, command.help);
    };
    if (index >= words.size()) {
        for (auto const& command : table)
            dump_one(command, index);
        return;
    }
    if (auto const* command = find_command(table, words[index])) {
        if (!command->sub.empty())
            help_dump(out, command->sub, words, index + 1);
        else
            dump_one(*command, index);
        return;
    }
    out += "unknown command: '";
    for (size_t i = 0; i <= index; ++i)
        out += words[i] + (i == index ? "'\n" : " ");
}

std::string help(std::string_view topic)
{
    std::vector<std::string> words;
    size_t pos = 0;
    while (pos < topic.size()) {
        while (pos < topic.size() && is_blank(topic[pos]))
            ++pos;
        size_t start = pos;
        while (pos < topic.size() && !is_blank(topic[pos]))
            ++pos;
        if (pos > start)
            words.emplace_back(topic.substr(start, pos - start));
    }
    std::string out;
    help_dump(out, COMMANDS, words, 0);
    return out;
}

bool present(HmpMachine const& machine, int64_t index)
{
    return index >= 0 && uint64_t(index) < machine.slots.size() && machine.slots[size_t(index)].qom_path.has_value();
}

// $names known to HMP read as 0: for checking a line's syntax before the registers are read.
std::optional<uint64_t> probe_register(std::string_view name, bool& used)
{
    static CpuRegisters const zero {};
    auto value = register_value(zero, name);
    if (value)
        used = true;
    return value ? std::optional<uint64_t>(0) : std::nullopt;
}

std::optional<std::string> check_dump(Arguments const& arguments, std::string_view name)
{
    if (arguments.format == 'i')
        return fmt::format("{}: the 'i' format (disassembly) is not supported\n", name);
    uint64_t size = arguments.format == 'c' ? 1 : uint64_t(arguments.size);
    if (arguments.count > HMP_MAX_DUMP_BYTES / size)
        return fmt::format("{}: at most {} bytes at a time\n", name, HMP_MAX_DUMP_BYTES);
    return std::nullopt;
}

} // namespace

std::string hmp_line_endings(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + text.size() / 32);
    for (char c : text) {
        if (c == '\n')
            out += '\r';
        out += c;
    }
    return out;
}

HmpPlan plan_hmp_command(std::string_view line_in, HmpMachine machine)
{
    // QEMU's command line is a C string: anything after a NUL is not there.
    std::string line(line_in.substr(0, line_in.find('\0')));
    auto text = [](std::string output) {
        return HmpPlan { {}, [output = std::move(output)](std::vector<CpuRegisters> const&) { return output; } };
    };
    bool uses_registers = false;
    auto parsed = parse_line(line,
        [&uses_registers](std::string_view name) { return probe_register(name, uses_registers); });
    if (!parsed.command)
        return text(parsed.output);
    auto const& arguments = parsed.arguments;
    bool have_cpu = present(machine, machine.current_cpu);

    switch (parsed.command->action) {
    case Action::Help: {
        auto topic = arguments.strings.find("name");
        return text(help(topic == arguments.strings.end() ? std::string_view {} : std::string_view(topic->second)));
    }
    case Action::InfoHelp:
        return text(help("info"));
    case Action::Cpu:
        // human-monitor-command runs each line in a monitor of its own, so the choice lasts for this line
        // only, as in QEMU: use the command's cpu-index.
        return text(present(machine, arguments.ints.at("index")) ? "" : "invalid CPU index\n");
    case Action::InfoStatus: {
        auto state = machine.state;
        std::string out = state == RunState::Running ? "VM status: running" : "VM status: paused";
        if (state != RunState::Running && state != RunState::Paused)
            out += fmt::format(" ({})", to_string(state));
        return text(out + "\n");
    }
    case Action::InfoCpus: {
        std::string out;
        for (auto const& slot : machine.slots)
            if (slot.qom_path)
                put(out, "{} CPU #{}: thread_id={}\n", slot.index == machine.current_cpu ? '*' : ' ', slot.index,
                    slot.thread_id);
        return text(out);
    }
    case Action::InfoRegisters: {
        HmpPlan plan;
        if (arguments.flags.contains("cpustate_all")) {
            for (auto const& slot : machine.slots)
                if (slot.qom_path)
                    plan.cpus.push_back(slot.index);
        } else if (auto vcpu = arguments.ints.find("vcpu"); vcpu != arguments.ints.end()) {
            if (!present(machine, vcpu->second))
                return text(fmt::format("CPU#{} not available\n", vcpu->second));
            plan.cpus.push_back(uint32_t(vcpu->second));
        } else {
            if (!have_cpu)
                return text("No CPU available\n");
            plan.cpus.push_back(machine.current_cpu);
        }
        plan.run = [](std::vector<CpuRegisters> const& registers) {
            std::string out;
            for (auto const& regs : registers)
                out += fmt::format("\nCPU#{}\n", regs.index) + dump_cpu_registers(regs);
            return out;
        };
        return plan;
    }
    case Action::VirtualDump:
    case Action::PhysicalDump: {
        bool physical = parsed.command->action == Action::PhysicalDump;
        auto name = first_name(*parsed.command);
        if (!have_cpu && (!physical || uses_registers))
            return text(physical ? "No CPU available\n" : "Can not dump without CPU\n");
        if (auto refused = check_dump(arguments, name))
            return text(*refused);
        HmpPlan plan;
        if (!physical || uses_registers)
            plan.cpus.push_back(machine.current_cpu);
        plan.run = [line, physical, uses_registers, arguments = parsed.arguments, ram = machine.ram](
                       std::vector<CpuRegisters> const& registers) mutable {
            if (uses_registers) {
                // Again, now with the current CPU's registers for its $names.
                auto const& regs = registers.front();
                auto again = parse_line(line, [&regs](std::string_view reg) { return register_value(regs, reg); });
                if (!again.command)
                    return again.output;
                arguments = again.arguments;
            }
            auto address = static_cast<uint64_t>(arguments.ints.at("addr"));
            MemoryReader reader;
            if (physical)
                reader = [&ram](uint64_t at, std::span<uint8_t> out) { return read_physical(ram, at, out); };
            else
                reader = [&ram, paging = paging_registers(registers.front())](uint64_t at, std::span<uint8_t> out) {
                    return read_linear(ram, paging, at, out);
                };
            return format_memory_dump(address, arguments.count, arguments.format, arguments.size, reader);
        };
        return plan;
    }
    }
    return text("");
}

} // namespace vmm::qmp
