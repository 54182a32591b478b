// XSDT: the list of 64-bit table addresses (FADT first, then MADT); DSDT and FACS are reached via the FADT.
#include "sdt.hpp"

#include <acpi/tables.hpp>

namespace acpi {

std::vector<uint8_t> build_xsdt(std::span<uint64_t const> table_addresses)
{
    using namespace sdt;
    auto xsdt = make_sdt("XSDT", 1, SDT_HEADER_SIZE + 8 * table_addresses.size());
    for (size_t i = 0; i < table_addresses.size(); ++i)
        put_u64(xsdt, SDT_HEADER_SIZE + 8 * i, table_addresses[i]);
    finish_sdt(xsdt);
    return xsdt;
}

} // namespace acpi
