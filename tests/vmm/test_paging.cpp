// The page-table walk over synthetic tables in a buffer that stands for guest RAM: every paging mode, every
// page size, and each way a walk stops.
#include "arch/x86_64/paging.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

using namespace vmm::x86;

namespace {

constexpr uint64_t P = PTE_PRESENT;
constexpr uint64_t RW = 1ull << 1;
constexpr uint64_t PS = PTE_LARGE;
constexpr uint64_t NX = 1ull << 63;

// 8 MiB of "RAM" at physical address 0, with helpers to lay tables out in it.
struct Ram {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(8 << 20);
    std::vector<uint64_t> reads; // physical addresses read, in order

    void put64(uint64_t address, uint64_t value) { std::memcpy(bytes.data() + address, &value, 8); }
    void put32(uint64_t address, uint32_t value) { std::memcpy(bytes.data() + address, &value, 4); }
    // Entry `index` of the 8-byte-entry table at `table`.
    void entry(uint64_t table, uint64_t index, uint64_t value) { put64(table + index * 8, value); }

    PhysicalRead reader()
    {
        return [this](uint64_t address, void* out, size_t size) {
            reads.push_back(address);
            if (address > bytes.size() || size > bytes.size() - address)
                return false;
            std::memcpy(out, bytes.data() + address, size);
            return true;
        };
    }
};

constexpr uint64_t index_of(uint64_t linear, int level) { return (linear >> (12 + 9 * (level - 1))) & 0x1FF; }

PagingRegisters long_mode(uint64_t cr3, bool la57 = false)
{
    return { CR0_PE | CR0_PG, cr3, CR4_PAE | (la57 ? CR4_LA57 : 0), EFER_LMA | (1ull << 8) };
}

} // namespace

TEST_CASE("paging_mode follows CR0.PG, CR4.PAE, EFER.LMA and CR4.LA57", "[paging]")
{
    CHECK(paging_mode({ CR0_PE, 0, CR4_PAE, EFER_LMA }) == PagingMode::Off);
    CHECK(paging_mode({ CR0_PE | CR0_PG, 0, 0, 0 }) == PagingMode::Bits32);
    CHECK(paging_mode({ CR0_PE | CR0_PG, 0, CR4_PAE, 0 }) == PagingMode::Pae);
    CHECK(paging_mode(long_mode(0)) == PagingMode::Level4);
    CHECK(paging_mode(long_mode(0, true)) == PagingMode::Level5);
}

TEST_CASE("with paging off a linear address is physical, below 4 GiB", "[paging]")
{
    Ram ram;
    PagingRegisters off { CR0_PE, 0x1000, 0, 0 };
    auto t = translate(off, 0x12345, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x12345);
    CHECK(ram.reads.empty());
    auto high = translate(off, 0x1'0000'0000ull, ram.reader());
    REQUIRE_FALSE(high.has_value());
    CHECK(high.error().kind == PageFault::Kind::NonCanonical);
}

TEST_CASE("4-level paging maps a 4 KiB page through four tables", "[paging]")
{
    Ram ram;
    uint64_t linear = 0x0000'7F12'3456'7ABCull;
    ram.entry(0x1000, index_of(linear, 4), 0x2000 | P | RW);
    ram.entry(0x2000, index_of(linear, 3), 0x3000 | P | RW);
    ram.entry(0x3000, index_of(linear, 2), 0x4000 | P | RW);
    ram.entry(0x4000, index_of(linear, 1), 0x0065'4000 | P | RW | NX);
    // CR3's low bits (PCD, PWT, a PCID) are not part of the table's address.
    auto t = translate(long_mode(0x1000 | 0x18), linear, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x0065'4ABC);
    CHECK(t->page_size == 4096);
    CHECK(ram.reads == std::vector<uint64_t> { 0x1000 + index_of(linear, 4) * 8, 0x2000 + index_of(linear, 3) * 8,
                           0x3000 + index_of(linear, 2) * 8, 0x4000 + index_of(linear, 1) * 8 });
}

TEST_CASE("a PS entry maps a 2 MiB page in the directory and a 1 GiB page in the PDPT", "[paging]")
{
    Ram ram;
    // A kernel address in the top 2 GiB, as Linux's text: PML4 511, PDPT 510.
    uint64_t kernel = 0xFFFF'FFFF'8123'4567ull;
    ram.entry(0x1000, 511, 0x2000 | P);
    ram.entry(0x2000, 510, 0x3000 | P);
    // A 2 MiB page with PAT (bit 12) set: the bit is not part of the address.
    ram.entry(0x3000, index_of(kernel, 2), 0x0060'0000 | (1ull << 12) | PS | P);
    auto two = translate(long_mode(0x1000), kernel, ram.reader());
    REQUIRE(two.has_value());
    CHECK(two->physical == 0x0060'0000 + (kernel & 0x1F'FFFF));
    CHECK(two->page_size == 2u << 20);

    // A 1 GiB page, as a direct map: PDPT entry 3 of PML4 entry 1.
    uint64_t direct = (1ull << 39) + 3 * (1ull << 30) + 0x1234'5678;
    ram.entry(0x1000, 1, 0x5000 | P);
    ram.entry(0x5000, 3, 0x1'4000'0000ull | PS | P);
    auto giant = translate(long_mode(0x1000), direct, ram.reader());
    REQUIRE(giant.has_value());
    CHECK(giant->physical == 0x1'4000'0000ull + 0x1234'5678);
    CHECK(giant->page_size == 1u << 30);
}

TEST_CASE("a walk stops at the first entry that is not present and says where", "[paging]")
{
    Ram ram;
    uint64_t linear = 0x4020'1000;
    auto walk = [&] { return translate(long_mode(0x1000), linear, ram.reader()); };

    auto fault = walk();
    REQUIRE_FALSE(fault.has_value());
    CHECK(fault.error().kind == PageFault::Kind::NotPresent);
    CHECK(fault.error().level == 4);
    CHECK(fault.error().table == 0x1000);

    ram.entry(0x1000, index_of(linear, 4), 0x2000 | P);
    ram.entry(0x2000, index_of(linear, 3), 0x3000 | P);
    ram.entry(0x3000, index_of(linear, 2), 0x4000 | P);
    ram.entry(0x4000, index_of(linear, 1), 0x9000); // present bit clear, other bits kept
    fault = walk();
    REQUIRE_FALSE(fault.has_value());
    CHECK(fault.error().level == 1);
    CHECK(fault.error().table == 0x4000);
    CHECK(fault.error().entry == 0x9000);

    ram.entry(0x4000, index_of(linear, 1), 0x9000 | P);
    REQUIRE(walk().has_value());
    CHECK(walk()->physical == 0x9000);
}

TEST_CASE("non-canonical addresses and tables outside RAM stop the walk", "[paging]")
{
    Ram ram;
    for (uint64_t bad : { 0x0000'8000'0000'0000ull, 0xFFFF'7FFF'FFFF'F000ull, 0x8000'0000'0000'0000ull }) {
        auto fault = translate(long_mode(0x1000), bad, ram.reader());
        REQUIRE_FALSE(fault.has_value());
        CHECK(fault.error().kind == PageFault::Kind::NonCanonical);
    }
    // CR3 beyond RAM, then a PML4 entry pointing beyond RAM (a hostile guest's tables).
    auto cr3_out = translate(long_mode(0x4000'0000), 0x1000, ram.reader());
    REQUIRE_FALSE(cr3_out.has_value());
    CHECK(cr3_out.error().kind == PageFault::Kind::TableUnreadable);
    CHECK(cr3_out.error().level == 4);
    CHECK(cr3_out.error().table == 0x4000'0000);

    ram.entry(0x1000, 0, 0x000F'FFFF'FFFF'F000ull | P);
    auto entry_out = translate(long_mode(0x1000), 0x1000, ram.reader());
    REQUIRE_FALSE(entry_out.has_value());
    CHECK(entry_out.error().kind == PageFault::Kind::TableUnreadable);
    CHECK(entry_out.error().level == 3);
    CHECK(entry_out.error().table == 0x000F'FFFF'FFFF'F000ull);
}

TEST_CASE("a table that points at itself still ends in four steps", "[paging]")
{
    // The recursive mapping trick: PML4 entry 0 is the PML4. Every level reads the same table.
    Ram ram;
    ram.entry(0x1000, 0, 0x1000 | P);
    auto t = translate(long_mode(0x1000), 0x123, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x1123);
    CHECK(ram.reads.size() == 4);
}

TEST_CASE("5-level paging adds the PML5 and its wider canonical form", "[paging]")
{
    Ram ram;
    uint64_t linear = 0x00AB'CDEF'1234'5678ull; // canonical with 57 bits
    ram.entry(0x1000, index_of(linear, 5), 0x2000 | P);
    ram.entry(0x2000, index_of(linear, 4), 0x3000 | P);
    ram.entry(0x3000, index_of(linear, 3), 0x4000 | P);
    ram.entry(0x4000, index_of(linear, 2), 0x0040'0000 | PS | P);
    auto t = translate(long_mode(0x1000, true), linear, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x0040'0000 + (linear & 0x1F'FFFF));
    // Canonical for 4 levels only with LA57 clear: the same address faults.
    auto four = translate(long_mode(0x1000), linear, ram.reader());
    REQUIRE_FALSE(four.has_value());
    CHECK(four.error().kind == PageFault::Kind::NonCanonical);
}

TEST_CASE("PAE paging walks the four PDPTEs CR3 points at", "[paging]")
{
    Ram ram;
    PagingRegisters pae { CR0_PE | CR0_PG, 0x1020, CR4_PAE, 0 }; // CR3 32-byte aligned, not page aligned
    uint64_t linear = 0xC012'3456;                              // PDPTE 3
    ram.entry(0x1020, 3, 0x2000 | P);
    ram.entry(0x2000, index_of(linear, 2), 0x3000 | P);
    ram.entry(0x3000, index_of(linear, 1), 0x7000 | P);
    auto t = translate(pae, linear, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x7456);

    ram.entry(0x2000, index_of(linear, 2), 0x0060'0000 | PS | P);
    t = translate(pae, linear, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x0060'0000 + (linear & 0x1F'FFFF));
    CHECK(t->page_size == 2u << 20);

    auto fault = translate(pae, 0x1234, ram.reader()); // PDPTE 0 is empty
    REQUIRE_FALSE(fault.has_value());
    CHECK(fault.error().level == 3);
}

TEST_CASE("32-bit paging: 4 KiB pages, and 4 MiB pages with PSE and PSE-36", "[paging]")
{
    Ram ram;
    uint64_t linear = 0x8040'1ABC; // directory entry 0x201, table entry 1
    ram.put32(0x1000 + 0x201 * 4, 0x2000 | P);
    ram.put32(0x2000 + 1 * 4, 0x0055'5000 | P);
    PagingRegisters plain { CR0_PE | CR0_PG, 0x1000, 0, 0 };
    auto t = translate(plain, linear, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x0055'5ABC);

    // PS with CR4.PSE: a 4 MiB page, bits 13-20 of the entry giving physical bits 32-39.
    ram.put32(0x1000 + 0x201 * 4, 0x0080'0000 | (0x3u << 13) | PS | P);
    PagingRegisters pse { CR0_PE | CR0_PG, 0x1000, CR4_PSE, 0 };
    t = translate(pse, linear, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x3'0080'0000ull + (linear & 0x3F'FFFF));
    CHECK(t->page_size == 4u << 20);

    // Without CR4.PSE the PS bit is ignored and the entry names a page table.
    ram.put32(0x1000 + 0x201 * 4, 0x2000 | PS | P);
    t = translate(plain, linear, ram.reader());
    REQUIRE(t.has_value());
    CHECK(t->physical == 0x0055'5ABC);
}
