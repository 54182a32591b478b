// Cross-check with ACPICA: every generated table must disassemble with `iasl -d` without a single error or
// warning. iasl's FADT decoder runs ACPICA's own FADT checks (32/64-bit address and width mismatches), and
// checksums are verified for every table, so this catches what the OS would complain about at boot.
#include <acpi/tables.hpp>

#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// iasl from acpica-tools; PATH first, then where Debian installs it.
std::string find_iasl()
{
    if (char const* path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        std::string dir;
        while (std::getline(dirs, dir, ':')) {
            if (dir.empty())
                continue;
            auto candidate = fs::path(dir) / "iasl";
            if (access(candidate.c_str(), X_OK) == 0)
                return candidate.string();
        }
    }
    return access("/usr/bin/iasl", X_OK) == 0 ? "/usr/bin/iasl" : "";
}

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
public:
    TempDir()
    {
        std::string pattern = (fs::temp_directory_path() / "cpuplug-acpi-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        m_path = pattern;
    }
    ~TempDir()
    {
        std::error_code ignored;
        fs::remove_all(m_path, ignored);
    }
    TempDir(TempDir const&) = delete;
    TempDir& operator=(TempDir const&) = delete;
    fs::path const& path() const { return m_path; }

private:
    fs::path m_path;
};

std::string lower(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

std::string read_text(fs::path const& path)
{
    std::ifstream in(path, std::ios::binary);
    return { std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>() };
}

acpi::PlatformConfig make_config(uint32_t count, uint32_t present)
{
    acpi::PlatformConfig config;
    for (uint32_t i = 0; i < count; ++i)
        config.cpus.push_back({ i, i, i < present });
    return config;
}

// Writes each table of `built` to `<dir>/<signature>.dat`, runs `iasl -d` on it and checks the output.
// Returns the .dsl texts by signature.
std::map<std::string, std::string> disassemble_all(std::string const& iasl, acpi::BuiltTables const& built,
    fs::path const& dir)
{
    std::map<std::string, std::string> dsl;
    // The RSDP is not among them: iasl 20200925 only accepts binaries whose signature is a valid name
    // segment, and "RSD PTR " has a space ("Loading an RSDP is not supported" in its acfileio.c). The RSDP's
    // fields and both checksums are checked in test_tables.cpp instead.
    for (auto const& table : built.tables) {
        auto const dat = dir / (table.signature + ".dat");
        {
            std::ofstream out(dat, std::ios::binary);
            auto const* first = built.blob.data() + (table.address - built.blob_address);
            out.write(reinterpret_cast<char const*>(first), table.length); // SAFETY: bytes as chars, same size
            REQUIRE(out.good());
        }
        auto result = test_support::run_process({ iasl, "-d", dat.string() }, std::chrono::seconds(60));
        std::string const output = result.out + result.err;
        INFO(table.signature << ": iasl -d said:\n" << output);
        REQUIRE_FALSE(result.timed_out);
        CHECK(result.exit_code == 0);
        std::istringstream lines(output);
        std::string line;
        while (std::getline(lines, line)) {
            auto const l = lower(line);
            if (l.find("error") != std::string::npos || l.find("warning") != std::string::npos)
                FAIL_CHECK(table.signature << ": iasl reports: " << line);
        }
        auto const dsl_path = dir / (table.signature + ".dsl");
        REQUIRE(fs::exists(dsl_path));
        auto text = read_text(dsl_path);
        CHECK_FALSE(text.empty());
        dsl[table.signature] = std::move(text);
    }
    return dsl;
}

} // namespace

TEST_CASE("iasl disassembles every generated table without errors or warnings", "[acpi][iasl]")
{
    auto const iasl = find_iasl();
    if (iasl.empty())
        FAIL("iasl not found (PATH, /usr/bin/iasl): install acpica-tools (apt-get install acpica-tools); "
             "this test checks the tables with ACPICA and must not be skipped");

    for (uint32_t count : { 8u, 300u }) {
        INFO(count << " possible CPUs");
        auto built = acpi::build_tables(make_config(count, 2), 0x000F'0000, 0x10'0000, 0x000E'0000);
        REQUIRE(built.has_value());
        TempDir dir;
        auto dsl = disassemble_all(iasl, *built, dir.path());
        REQUIRE(dsl.size() == 5);
        for (char const* signature : { "XSDT", "FACP", "FACS", "APIC", "DSDT" })
            CHECK(dsl.count(signature) == 1);

        // The decompiled DSDT shows the objects by their names and ids, so the AML parsed as intended.
        auto const& dsdt = dsl["DSDT"];
        CHECK(dsdt.find("DefinitionBlock (\"\", \"DSDT\", 2, \"CPUPLG\", \"CPUPLUG \"") != std::string::npos);
        CHECK(dsdt.find("Device (C001)") != std::string::npos);
        CHECK(dsdt.find("ACPI0007") != std::string::npos);
        CHECK(dsdt.find("Name (_CID, EisaId (\"PNP0A05\")") != std::string::npos);
        CHECK(dsdt.find("Name (\\_S5, Package (0x04)") != std::string::npos);
        CHECK(dsdt.find("Scope (\\_GPE)") != std::string::npos);
        if (count == 300) {
            CHECK(dsdt.find("Device (C12B)") != std::string::npos);
            CHECK(dsdt.find("Name (_UID, 0x012B)") != std::string::npos);
            CHECK(dsl["APIC"].find("Processor Local x2APIC") != std::string::npos);
            CHECK(dsl["APIC"].find("Local x2APIC NMI") != std::string::npos);
        }
        CHECK(dsl["FACP"].find("FADT Minor Revision : 03") != std::string::npos);
        CHECK(dsl["FACP"].find("Reset Register Supported (V2) : 1") != std::string::npos);
        CHECK(dsl["FACP"].find("Value to cause reset : 06") != std::string::npos);
    }
}

namespace {

size_t count_of(std::string const& text, std::string const& needle)
{
    size_t count = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++count;
    return count;
}

std::vector<uint8_t> read_bytes(fs::path const& path)
{
    auto text = read_text(path);
    return { text.begin(), text.end() };
}

} // namespace

TEST_CASE("iasl disassembles the CPU-hotplug DSDT cleanly and compiles it back to the same AML", "[acpi][iasl][hotplug]")
{
    auto const iasl = find_iasl();
    if (iasl.empty())
        FAIL("iasl not found (PATH, /usr/bin/iasl): install acpica-tools (apt-get install acpica-tools); "
             "this test checks the tables with ACPICA and must not be skipped");

    // 1, 2 and 16 CPUs; 300 (type 9 entries from 255, and a CSCN bound above a byte); x2APIC ids from CPU 1.
    std::vector<acpi::PlatformConfig> configs { make_config(1, 1), make_config(2, 1), make_config(16, 3),
        make_config(300, 2) };
    acpi::PlatformConfig sparse;
    sparse.cpus = { { 0, 0, true }, { 1, 0x1000, true }, { 2, 0x1001, false }, { 3, 300, false } };
    sparse.boot_cpu = 1;
    configs.push_back(sparse);

    for (auto config : configs) {
        config.cpu_hotplug = true;
        size_t const count = config.cpus.size();
        INFO(count << " possible CPUs, boot CPU " << config.boot_cpu);
        auto built = acpi::build_tables(config, 0x000F'0000, 0x10'0000, 0x000E'0000);
        REQUIRE(built.has_value());
        TempDir dir;
        auto dsl = disassemble_all(iasl, *built, dir.path());
        auto const& dsdt = dsl["DSDT"];

        // Every name resolved: iasl declares what it could not find as External.
        CHECK(dsdt.find("External (") == std::string::npos);
        CHECK(dsdt.find("Device (PRES)") != std::string::npos);
        CHECK(dsdt.find("OperationRegion (PRST, SystemIO, 0x0CD8, 0x0C)") != std::string::npos);
        CHECK(dsdt.find("Field (PRST, ByteAcc, NoLock, WriteAsZeros)") != std::string::npos);
        CHECK(dsdt.find("Field (PRST, DWordAcc, NoLock, Preserve)") != std::string::npos);
        for (char const* method : { "Method (CTFY, 2, NotSerialized)", "Method (CSTA, 1, Serialized)",
                 "Method (CEJ0, 1, Serialized)", "Method (CSCN, 0, Serialized)", "Method (COST, 4, Serialized)",
                 "Method (_E02, 0, NotSerialized)" })
            CHECK(dsdt.find(method) != std::string::npos);
        CHECK(dsdt.find("\\_SB.CPUS.CSCN ()") != std::string::npos);
        CHECK(dsdt.find("ElseIf ((\\_SB.PRES.CRMV == One))") != std::string::npos);
        CHECK(count_of(dsdt, "Notify (C") == count);
        CHECK(count_of(dsdt, "Return (CSTA (") == count);
        CHECK(count_of(dsdt, "Name (_MAT, Buffer (") == count);
        CHECK(count_of(dsdt, "Method (_OST, 3, Serialized)") == count);
        CHECK(count_of(dsdt, "Method (_EJ0, 1, NotSerialized)") == count - 1);
        if (count == 300) {
            CHECK(dsdt.find("While (((Local0 == One) && (Local3 < 0x012C)))") != std::string::npos);
            CHECK(dsdt.find("Name (_MAT, Buffer (0x10)") != std::string::npos);
        }
        if (config.boot_cpu == 1) {
            CHECK(dsdt.find("CEJ0 (Zero)") != std::string::npos);
            CHECK(dsdt.find("CEJ0 (One)") == std::string::npos);
            CHECK(count_of(dsdt, "Name (_MAT, Buffer (0x10)") == 3);
        }

        // Compiled back without optimizations (which would shorten the \_SB.PRES paths), the ASL gives our bytes.
        auto const prefix = dir.path() / "recompiled";
        auto result = test_support::run_process({ iasl, "-oa", "-p", prefix.string(), (dir.path() / "DSDT.dsl").string() },
            std::chrono::seconds(60));
        std::string const output = result.out + result.err;
        INFO("iasl said:\n" << output);
        REQUIRE_FALSE(result.timed_out);
        CHECK(result.exit_code == 0);
        CHECK(output.find("Compilation successful. 0 Errors, 0 Warnings") != std::string::npos);
        auto const recompiled = read_bytes(prefix.string() + ".aml");
        auto const& table = *std::find_if(built->tables.begin(), built->tables.end(),
            [](acpi::TableInfo const& t) { return t.signature == "DSDT"; });
        auto const* ours = built->blob.data() + (table.address - built->blob_address);
        REQUIRE(recompiled.size() == table.length);
        // The header differs (iasl writes its own compiler id and checksum); the AML after it must not.
        CHECK(std::equal(recompiled.begin() + acpi::SDT_HEADER_SIZE, recompiled.end(), ours + acpi::SDT_HEADER_SIZE));
    }
}
