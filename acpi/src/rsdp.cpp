// RSDP: the 36-byte ACPI 2.0+ root pointer, pointing at the XSDT only (ACPI 6.5 §5.2.5.3).
#include "sdt.hpp"

#include <acpi/checksum.hpp>
#include <acpi/tables.hpp>

namespace acpi {

std::vector<uint8_t> build_rsdp(uint64_t xsdt_address)
{
    using namespace sdt;
    std::vector<uint8_t> rsdp(RSDP_SIZE, 0);
    put_chars(rsdp, 0, "RSD PTR ");
    put_chars(rsdp, 9, OEM_ID);
    put_u8(rsdp, 15, 2); // revision 2: the XSDT fields below are valid
    put_u32(rsdp, 16, 0); // no RSDT: every guest we boot reads the XSDT
    put_u32(rsdp, 20, static_cast<uint32_t>(RSDP_SIZE));
    put_u64(rsdp, 24, xsdt_address);
    // The ACPI 1.0 checksum covers the first 20 bytes; the extended one all 36, the first checksum included.
    update_checksum(std::span(rsdp).first(20), 8);
    update_checksum(rsdp, 32);
    return rsdp;
}

} // namespace acpi
