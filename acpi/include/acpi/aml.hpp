// AML builder: ASL-shaped C++ types that encode themselves as AML bytes (ACPI 6.5 chapter 20, AML encoding;
// the builder's rules are in docs/acpi.md).
//
//     using namespace acpi::aml;
//     Scope("\\_SB", { Device("CPUS", { Name("_HID", String("ACPI0010")),
//                                       Method("_STA", 0, { Return(0x0F) }) }) }).emit(sink);
//
// Every construct is a small value type with `void emit(AmlSink&) const`; `Aml` erases the type so trees
// can be written as nested initializer lists. Names, argument counts and EISA ids are checked when a
// construct is made: a malformed literal is a bug in the VMM, so it panics with the offending text.
// `NameString::parse` and `EisaId::parse` report the same errors as values, for names that come from data.
#pragma once

#include <cpuplug/base/result.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace acpi::aml {

// Collects the encoded bytes; multi-byte values are little-endian as everywhere in ACPI.
class AmlSink {
public:
    void byte(uint8_t value) { m_bytes.push_back(value); }
    void word(uint16_t value);
    void dword(uint32_t value);
    void qword(uint64_t value);
    void bytes(std::span<uint8_t const> data);

    size_t size() const { return m_bytes.size(); }
    std::vector<uint8_t> const& data() const { return m_bytes; }
    std::vector<uint8_t> take() { return std::move(m_bytes); }

private:
    std::vector<uint8_t> m_bytes;
};

template<typename T>
concept Emitter = requires(T const& node, AmlSink& sink) { node.emit(sink); };

// Encodes a construct on its own; handy for tests and for Buffer contents such as a _MAT entry.
template<Emitter T>
std::vector<uint8_t> to_bytes(T const& node)
{
    AmlSink sink;
    node.emit(sink);
    return sink.take();
}

// The PkgLength in front of a body of `body_length` bytes, in its shortest form. The encoded value counts
// the PkgLength's own bytes (1 to 4) plus the body, not the opcode.
class PkgLength {
public:
    explicit PkgLength(size_t body_length)
        : m_body_length(body_length)
    {
    }
    void emit(AmlSink&) const;

private:
    size_t m_body_length;
};

// Writes `opcode` (one or two bytes, e.g. {0x5B, 0x82}), a PkgLength and the body that `body` emits.
// Encoding the body first into its own sink is what lets the PkgLength take its shortest form.
template<typename F>
void emit_package(AmlSink& sink, std::initializer_list<uint8_t> opcode, F&& body)
{
    AmlSink inner;
    std::forward<F>(body)(inner);
    for (auto b : opcode)
        sink.byte(b);
    PkgLength(inner.size()).emit(sink);
    sink.bytes(inner.data());
}

// A type-erased, immutable AML term. Nodes are shared, not cloned, so copying a subtree into another list
// (initializer lists only hand out const elements) costs a reference count, and sharing is safe because a
// node never changes after it is made.
class Aml {
public:
    template<typename T>
        requires(Emitter<std::remove_cvref_t<T>> && !std::same_as<std::remove_cvref_t<T>, Aml>)
    Aml(T&& node) // implicit on purpose: it is what lets trees read like ASL
        : m_node(std::make_shared<Model<std::remove_cvref_t<T>> const>(std::forward<T>(node)))
    {
    }
    // Integers become Integer (shortest encoding); a negative value converts two's-complement, so -1 is Ones.
    template<std::integral T>
        requires(!std::same_as<T, bool>)
    Aml(T value);

    void emit(AmlSink& sink) const { m_node->emit(sink); }

private:
    struct Node {
        virtual ~Node() = default;
        virtual void emit(AmlSink&) const = 0;
    };
    template<typename T>
    struct Model final : Node {
        template<typename U>
        explicit Model(U&& node)
            : m_node(std::forward<U>(node))
        {
        }
        void emit(AmlSink& sink) const override { m_node.emit(sink); }
        T m_node;
    };

    std::shared_ptr<Node const> m_node;
};

void emit_all(AmlSink&, std::span<Aml const>);

// ---------------------------------------------------------------------------------------------------------
// Data objects

// Integer with the shortest encoding: ZeroOp, OneOp, OnesOp (all 64 bits set), then Byte/Word/DWord/QWord
// constants. OnesOp is only used for the 64-bit all-ones value: our DSDT is revision 2 (64-bit integers).
class Integer {
public:
    explicit Integer(uint64_t value)
        : m_value(value)
    {
    }
    void emit(AmlSink&) const;

private:
    uint64_t m_value;
};

struct Zero {
    void emit(AmlSink& sink) const { sink.byte(0x00); }
};
struct One {
    void emit(AmlSink& sink) const { sink.byte(0x01); }
};
struct Ones {
    void emit(AmlSink& sink) const { sink.byte(0xFF); }
};

template<std::integral T>
    requires(!std::same_as<T, bool>)
Aml::Aml(T value)
    : Aml(Integer(static_cast<uint64_t>(value)))
{
}

// A NUL-terminated ASCII string (StringPrefix 0x0D). Panics on NUL or non-ASCII characters.
class String {
public:
    explicit String(std::string_view text);
    void emit(AmlSink&) const;

private:
    std::string m_text;
};

// EISAID("PNP0A05"): three upper-case letters and four hex digits compressed into a DWord. Always encoded
// with the DWord prefix (as iasl does), even when the value would fit in fewer bytes.
class EisaId {
public:
    explicit EisaId(std::string_view id); // panics if malformed
    static cpuplug::Result<EisaId, std::string> parse(std::string_view id);
    uint32_t value() const { return m_value; }
    void emit(AmlSink&) const;

private:
    struct Parsed {};
    EisaId(Parsed, uint32_t value)
        : m_value(value)
    {
    }
    uint32_t m_value;
};

// Buffer(n) { bytes }, n = the number of bytes.
class Buffer {
public:
    explicit Buffer(std::vector<uint8_t> bytes)
        : m_bytes(std::move(bytes))
    {
    }
    void emit(AmlSink&) const;

private:
    std::vector<uint8_t> m_bytes;
};

// Package(count) { elements }: a fixed-size package. Without a count, count = the number of elements;
// a larger count leaves the remaining elements uninitialized, like ASL's `Package(0xFF) {}`.
class Package {
public:
    explicit Package(std::vector<Aml> elements);
    Package(size_t count, std::vector<Aml> elements);
    void emit(AmlSink&) const;

private:
    uint8_t m_count;
    std::vector<Aml> m_elements;
};

// VarPackage(count) { elements }: the package whose element count is a TermArg, which is what ASL's
// Package(n) compiles to when n is above 255 or not a constant (`Package (Arg0) {}`).
class VarPackage {
public:
    VarPackage(Aml count, std::vector<Aml> elements)
        : m_count(std::move(count))
        , m_elements(std::move(elements))
    {
    }
    void emit(AmlSink&) const;

private:
    Aml m_count;
    std::vector<Aml> m_elements;
};

// ---------------------------------------------------------------------------------------------------------
// Names

// One four-character name segment. Shorter names are padded with '_' ("_SB" is "_SB_"); the first character
// is A-Z or '_', the others A-Z, 0-9 or '_'. Lower case is refused rather than folded, so a typo shows.
class NameSeg {
public:
    template<typename S>
        requires std::convertible_to<S const&, std::string_view>
    NameSeg(S const& text) // implicit, so "CPEN" can stand for a segment
        : NameSeg(from_literal(std::string_view(text)))
    {
    }
    static cpuplug::Result<NameSeg, std::string> parse(std::string_view text);

    std::string_view view() const { return { m_chars.data(), m_chars.size() }; }
    void emit(AmlSink&) const;
    bool operator==(NameSeg const&) const = default;

private:
    explicit NameSeg(std::array<char, 4> chars)
        : m_chars(chars)
    {
    }
    static NameSeg from_literal(std::string_view text);

    std::array<char, 4> m_chars;
};

// A NameString: optional root prefix '\' or parent prefixes '^', then segments separated by '.'.
// "" is the NullName (a single 0x00). Encoding: one segment bare, two after DualNamePrefix (0x2E), three or
// more after MultiNamePrefix (0x2F) and a count. Emitted on its own it is a reference to the named object.
class NameString {
public:
    template<typename S>
        requires std::convertible_to<S const&, std::string_view>
    NameString(S const& text) // implicit, so "\\_SB.CPUS" can stand for a path
        : NameString(from_literal(std::string_view(text)))
    {
    }
    static cpuplug::Result<NameString, std::string> parse(std::string_view text);

    bool is_root() const { return m_root; }
    size_t parent_count() const { return m_parents; }
    std::vector<NameSeg> const& segments() const { return m_segments; }
    void emit(AmlSink&) const;

private:
    NameString() = default;
    static NameString from_literal(std::string_view text);

    bool m_root { false };
    uint8_t m_parents { 0 };
    std::vector<NameSeg> m_segments;
};

// The NullName (0x00), which also stands for "no target" in operators that take an optional Target.
struct NullName {
    void emit(AmlSink& sink) const { sink.byte(0x00); }
};

// Local0..Local7 and Arg0..Arg6.
class Local {
public:
    explicit Local(unsigned index);
    void emit(AmlSink& sink) const { sink.byte(static_cast<uint8_t>(0x60 + m_index)); }

private:
    uint8_t m_index;
};

class Arg {
public:
    explicit Arg(unsigned index);
    void emit(AmlSink& sink) const { sink.byte(static_cast<uint8_t>(0x68 + m_index)); }

private:
    uint8_t m_index;
};

// ---------------------------------------------------------------------------------------------------------
// Named objects and namespace modifiers

// Name(name, value)
class Name {
public:
    Name(NameString name, Aml value)
        : m_name(std::move(name))
        , m_value(std::move(value))
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_name;
    Aml m_value;
};

// Scope(name) { body }
class Scope {
public:
    Scope(NameString name, std::vector<Aml> body)
        : m_name(std::move(name))
        , m_body(std::move(body))
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_name;
    std::vector<Aml> m_body;
};

// Device(name) { body }
class Device {
public:
    Device(NameString name, std::vector<Aml> body)
        : m_name(std::move(name))
        , m_body(std::move(body))
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_name;
    std::vector<Aml> m_body;
};

enum class Serialization : uint8_t {
    NotSerialized,
    Serialized,
};

// Method(name, argc, Serialized/NotSerialized, sync level) { body }; argc 0..7, sync level 0..15.
class Method {
public:
    Method(NameString name, unsigned argc, std::vector<Aml> body)
        : Method(std::move(name), argc, Serialization::NotSerialized, 0, std::move(body))
    {
    }
    Method(NameString name, unsigned argc, Serialization serialization, std::vector<Aml> body)
        : Method(std::move(name), argc, serialization, 0, std::move(body))
    {
    }
    Method(NameString name, unsigned argc, Serialization, unsigned sync_level, std::vector<Aml> body);
    void emit(AmlSink&) const;

private:
    NameString m_name;
    uint8_t m_flags;
    std::vector<Aml> m_body;
};

// Mutex(name, sync level)
class Mutex {
public:
    explicit Mutex(NameString name, unsigned sync_level = 0);
    void emit(AmlSink&) const;

private:
    NameString m_name;
    uint8_t m_sync_level;
};

enum class RegionSpace : uint8_t {
    SystemMemory = 0,
    SystemIO = 1,
};

// OperationRegion(name, space, offset, length)
class OperationRegion {
public:
    OperationRegion(NameString name, RegionSpace space, Aml offset, Aml length)
        : m_name(std::move(name))
        , m_space(space)
        , m_offset(std::move(offset))
        , m_length(std::move(length))
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_name;
    RegionSpace m_space;
    Aml m_offset;
    Aml m_length;
};

enum class FieldAccess : uint8_t { Any = 0, Byte = 1, Word = 2, DWord = 3, QWord = 4, Buffer = 5 };
enum class FieldLock : uint8_t { NoLock = 0, Lock = 1 };
enum class FieldUpdate : uint8_t { Preserve = 0, WriteAsOnes = 1, WriteAsZeros = 2 };

// Field list entries: `NamedField { "CPEN", 1 }` (a field unit of that many bits), `ReservedField { 3 }`
// (skip bits) and `FieldOffset { 4 }` (ASL's Offset(4): skip to that byte; emitted as a reserved entry
// for the bits in between, nothing if already there; going backwards panics).
struct NamedField {
    NameSeg name;
    uint32_t bits;
};
struct ReservedField {
    uint32_t bits;
};
struct FieldOffset {
    uint32_t byte_offset;
};
using FieldElement = std::variant<NamedField, ReservedField, FieldOffset>;

// Field(region, access, lock, update) { elements }
class Field {
public:
    Field(NameString region, FieldAccess access, FieldLock lock, FieldUpdate update, std::vector<FieldElement> elements)
        : m_region(std::move(region))
        , m_flags(static_cast<uint8_t>(static_cast<uint8_t>(access) | static_cast<uint8_t>(lock) << 4
              | static_cast<uint8_t>(update) << 5))
        , m_elements(std::move(elements))
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_region;
    uint8_t m_flags;
    std::vector<FieldElement> m_elements;
};

// ---------------------------------------------------------------------------------------------------------
// Resource templates

enum class IoDecode : uint8_t {
    Decode10 = 0,
    Decode16 = 1,
};

// IO(decode, min, max, alignment, length): the 8-byte small I/O port descriptor.
struct Io {
    IoDecode decode;
    uint16_t minimum;
    uint16_t maximum;
    uint8_t alignment;
    uint8_t length;
    void emit(AmlSink&) const;
};

using ResourceDescriptor = std::variant<Io>;

// ResourceTemplate() { descriptors }: a Buffer holding the descriptors and the end tag (0x79, checksum 0,
// which tells the OS not to check it).
class ResourceTemplate {
public:
    explicit ResourceTemplate(std::vector<ResourceDescriptor> descriptors)
        : m_descriptors(std::move(descriptors))
    {
    }
    void emit(AmlSink&) const;

private:
    std::vector<ResourceDescriptor> m_descriptors;
};

// ---------------------------------------------------------------------------------------------------------
// Statements

// If(predicate) { body }; an Else must directly follow its If in the enclosing list.
class If {
public:
    If(Aml predicate, std::vector<Aml> body)
        : m_predicate(std::move(predicate))
        , m_body(std::move(body))
    {
    }
    void emit(AmlSink&) const;

private:
    Aml m_predicate;
    std::vector<Aml> m_body;
};

class Else {
public:
    explicit Else(std::vector<Aml> body)
        : m_body(std::move(body))
    {
    }
    void emit(AmlSink&) const;

private:
    std::vector<Aml> m_body;
};

class While {
public:
    While(Aml predicate, std::vector<Aml> body)
        : m_predicate(std::move(predicate))
        , m_body(std::move(body))
    {
    }
    void emit(AmlSink&) const;

private:
    Aml m_predicate;
    std::vector<Aml> m_body;
};

struct Break {
    void emit(AmlSink& sink) const { sink.byte(0xA5); }
};

// Acquire(mutex, timeout in ms; 0xFFFF waits forever)
class Acquire {
public:
    explicit Acquire(NameString mutex, uint16_t timeout = 0xFFFF)
        : m_mutex(std::move(mutex))
        , m_timeout(timeout)
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_mutex;
    uint16_t m_timeout;
};

class Release {
public:
    explicit Release(NameString mutex)
        : m_mutex(std::move(mutex))
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_mutex;
};

// A call: the method's NameString followed by its arguments. The count must match the method's argc,
// because the AML parser knows where the call ends only from the method's declaration.
class MethodCall {
public:
    explicit MethodCall(NameString method, std::vector<Aml> args = {})
        : m_method(std::move(method))
        , m_args(std::move(args))
    {
    }
    void emit(AmlSink&) const;

private:
    NameString m_method;
    std::vector<Aml> m_args;
};

// ---------------------------------------------------------------------------------------------------------
// Operators. They share four shapes, so each is an alias of one of these templates.

namespace detail {

// op operand
template<uint8_t OPCODE>
class UnaryOp {
public:
    explicit UnaryOp(Aml operand)
        : m_operand(std::move(operand))
    {
    }
    void emit(AmlSink& sink) const
    {
        sink.byte(OPCODE);
        m_operand.emit(sink);
    }

private:
    Aml m_operand;
};

// op operand target (target defaults to the NullName: result only returned)
template<uint8_t OPCODE>
class UnaryTargetOp {
public:
    explicit UnaryTargetOp(Aml operand, Aml target = NullName {})
        : m_operand(std::move(operand))
        , m_target(std::move(target))
    {
    }
    void emit(AmlSink& sink) const
    {
        sink.byte(OPCODE);
        m_operand.emit(sink);
        m_target.emit(sink);
    }

private:
    Aml m_operand;
    Aml m_target;
};

// op left right
template<uint8_t OPCODE>
class BinaryOp {
public:
    BinaryOp(Aml left, Aml right)
        : m_left(std::move(left))
        , m_right(std::move(right))
    {
    }
    void emit(AmlSink& sink) const
    {
        sink.byte(OPCODE);
        m_left.emit(sink);
        m_right.emit(sink);
    }

private:
    Aml m_left;
    Aml m_right;
};

// op left right target
template<uint8_t OPCODE>
class BinaryTargetOp {
public:
    BinaryTargetOp(Aml left, Aml right, Aml target = NullName {})
        : m_left(std::move(left))
        , m_right(std::move(right))
        , m_target(std::move(target))
    {
    }
    void emit(AmlSink& sink) const
    {
        sink.byte(OPCODE);
        m_left.emit(sink);
        m_right.emit(sink);
        m_target.emit(sink);
    }

private:
    Aml m_left;
    Aml m_right;
    Aml m_target;
};

} // namespace detail

using Return = detail::UnaryOp<0xA4>;     // Return(value)
using Store = detail::BinaryOp<0x70>;     // Store(source, destination)
using Notify = detail::BinaryOp<0x86>;    // Notify(object, value)
using Increment = detail::UnaryOp<0x75>;  // Increment(name)
using Decrement = detail::UnaryOp<0x76>;  // Decrement(name)
using DerefOf = detail::UnaryOp<0x83>;    // DerefOf(reference)
using SizeOf = detail::UnaryOp<0x87>;     // SizeOf(object)
using LNot = detail::UnaryOp<0x92>;       // LNot(value)
using ToInteger = detail::UnaryTargetOp<0x99>; // ToInteger(value, target)

using Add = detail::BinaryTargetOp<0x72>;        // Add(a, b, target)
using Subtract = detail::BinaryTargetOp<0x74>;   // Subtract(a, b, target)
using ShiftLeft = detail::BinaryTargetOp<0x79>;  // ShiftLeft(value, count, target)
using ShiftRight = detail::BinaryTargetOp<0x7A>; // ShiftRight(value, count, target)
using And = detail::BinaryTargetOp<0x7B>;        // And(a, b, target)
using Or = detail::BinaryTargetOp<0x7D>;         // Or(a, b, target)
using Index = detail::BinaryTargetOp<0x88>;      // Index(package, index, target)

using LAnd = detail::BinaryOp<0x90>;
using LOr = detail::BinaryOp<0x91>;
using LEqual = detail::BinaryOp<0x93>;
using LGreater = detail::BinaryOp<0x94>;
using LLess = detail::BinaryOp<0x95>;

// LNotEqual has no opcode of its own: it is LNot(LEqual(a, b)).
class LNotEqual {
public:
    LNotEqual(Aml left, Aml right)
        : m_equal(std::move(left), std::move(right))
    {
    }
    void emit(AmlSink& sink) const
    {
        sink.byte(0x92);
        m_equal.emit(sink);
    }

private:
    LEqual m_equal;
};

} // namespace acpi::aml
