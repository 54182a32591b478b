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
    }
}
