#include <guest/lib/cmdline.hpp>
#include <guest/lib/format.hpp>
#include <guest/lib/start_info.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

using namespace guest;

namespace {
std::string str(LineBuffer const& line) { return std::string(line.data(), line.size()); }
std::string str(StringView view) { return std::string(view.data, view.size); }
} // namespace

TEST_CASE("the command line finds keys, flags and the last duplicate", "[guest][cmdline]")
{
    Cmdline cmdline("  exit_after_boot cpuhp.parallel=0 cpu_init_udelay=10000 cpuhp.parallel=1 fault=ud ");
    StringView value;
    REQUIRE(cmdline.find("fault", value));
    CHECK(str(value) == "ud");
    CHECK(cmdline.get_u64("cpuhp.parallel", 9) == 1);
    CHECK(cmdline.get_u64("cpu_init_udelay", 0) == 10000);
    CHECK(cmdline.get_bool("exit_after_boot", false));
    CHECK(cmdline.has("exit_after_boot"));
    CHECK_FALSE(cmdline.has("exit_after"));
    CHECK_FALSE(cmdline.has("cpuhp"));
    CHECK(cmdline.get_u64("missing", 5) == 5);
}

TEST_CASE("command-line numbers and booleans fall back on bad values", "[guest][cmdline]")
{
    Cmdline cmdline("a=0x1F b=12x c=99999999999999999999 d=off e=yes f=maybe g=");
    CHECK(cmdline.get_u64("a", 0) == 31);
    CHECK(cmdline.get_u64("b", 7) == 7);
    CHECK(cmdline.get_u64("c", 7) == 7);
    CHECK_FALSE(cmdline.get_bool("d", true));
    CHECK(cmdline.get_bool("e", false));
    CHECK(cmdline.get_bool("f", false) == false);
    CHECK(cmdline.get_bool("g", false)); // `g=` counts as set, like a bare flag
}

TEST_CASE("a line buffer formats numbers and truncates at capacity", "[guest][format]")
{
    LineBuffer line;
    line.text("cpu ").dec(0).ch(' ').dec(18446744073709551615ull).ch(' ').hex(0x1f, 4).ch(' ').sdec(-42).ch(' ')
        .sdec(INT64_MIN);
    CHECK(str(line) == "cpu 0 18446744073709551615 0x001f -42 -9223372036854775808");
    CHECK_FALSE(line.truncated());
    LineBuffer long_line;
    for (int i = 0; i < 300; ++i)
        long_line.ch('x');
    CHECK(long_line.size() == LineBuffer::CAPACITY);
    CHECK(long_line.truncated());
    size_t with_crlf = long_line.terminate_crlf();
    CHECK(with_crlf == LineBuffer::CAPACITY + 2);
    CHECK(long_line.data()[LineBuffer::CAPACITY + 1] == '\n');
}

namespace {

// Guest-physical memory for the parser, backed by a vector; addresses index into it.
struct FakeMemory {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(0x10000, 0);

    PhysicalView view()
    {
        return { [](void* self, uint64_t address) -> uint64_t {
                    auto& m = *static_cast<FakeMemory*>(self);
                    return address < m.bytes.size() ? m.bytes.size() - address : 0;
                },
            [](void* self, uint64_t address) -> void const* { return static_cast<FakeMemory*>(self)->bytes.data() + address; },
            this };
    }
    template<typename T>
    void put(uint64_t address, T const& value)
    {
        std::memcpy(bytes.data() + address, &value, sizeof(T));
    }
};

void write_valid(FakeMemory& m, char const* cmdline)
{
    pvh::StartInfo info {};
    info.magic = pvh::START_INFO_MAGIC;
    info.version = 1;
    info.cmdline_paddr = 0x7000;
    info.memmap_paddr = 0x6040;
    info.memmap_entries = 3;
    info.rsdp_paddr = 0xE0000;
    m.put(0x6000, info);
    m.put(0x6040, pvh::MemmapEntry { 0, 0x9FC00, pvh::MemType::Ram, 0 });
    m.put(0x6058, pvh::MemmapEntry { 0x9FC00, 0x60400, pvh::MemType::Reserved, 0 });
    m.put(0x6070, pvh::MemmapEntry { 0x100000, 0xFF00000, pvh::MemType::Ram, 0 });
    std::memcpy(m.bytes.data() + 0x7000, cmdline, std::strlen(cmdline) + 1);
}

} // namespace

TEST_CASE("the start info yields the command line, RAM and RSDP", "[guest][start_info]")
{
    FakeMemory m;
    write_valid(m, "exit_after_boot");
    auto boot = parse_start_info(0x6000, m.view());
    REQUIRE(boot.has_value());
    CHECK(str(boot->cmdline) == "exit_after_boot");
    CHECK(boot->ram_bytes == 0x9FC00 + 0xFF00000);
    CHECK(boot->rsdp_address == 0xE0000);
    CHECK(boot->memmap_entries == 3);
}

TEST_CASE("a bad start info is refused with the reason", "[guest][start_info]")
{
    FakeMemory m;
    write_valid(m, "");
    CHECK(parse_start_info(0x20000, m.view()).error() == StartInfoError::Unmapped);
    m.put<uint32_t>(0x6004, 0); // version 0
    CHECK(parse_start_info(0x6000, m.view()).error() == StartInfoError::OldVersion);
    write_valid(m, "");
    m.put<uint32_t>(0x6030, 0); // no memmap entries
    CHECK(parse_start_info(0x6000, m.view()).error() == StartInfoError::NoMemmap);
    write_valid(m, "");
    m.put<uint64_t>(0x6028, 0xFFF0); // memmap runs off the end
    CHECK(parse_start_info(0x6000, m.view()).error() == StartInfoError::Unmapped);
    write_valid(m, "");
    m.put<uint32_t>(0x6000, 0x12345678);
    CHECK(parse_start_info(0x6000, m.view()).error() == StartInfoError::BadMagic);
    CHECK(std::string(to_string(StartInfoError::BadMagic)).find("magic") != std::string::npos);
}

TEST_CASE("an unterminated command line at the end of memory stops there", "[guest][start_info]")
{
    FakeMemory m;
    write_valid(m, "");
    m.put<uint64_t>(0x6018, m.bytes.size() - 4);
    std::memset(m.bytes.data() + m.bytes.size() - 4, 'z', 4);
    auto boot = parse_start_info(0x6000, m.view());
    REQUIRE(boot.has_value());
    CHECK(str(boot->cmdline) == "zzzz");
}
