// FACS: required whenever the FADT is not hardware-reduced; ours only carries the signature and version.
#include "sdt.hpp"

#include <acpi/tables.hpp>

namespace acpi {

std::vector<uint8_t> build_facs()
{
    using namespace sdt;
    // No SDT header and no checksum. Hardware signature, waking vectors, global lock and flags stay 0:
    // the guest never sleeps to S1-S4 and there is no firmware to share the global lock with.
    std::vector<uint8_t> facs(FACS_SIZE, 0);
    put_chars(facs, 0, "FACS");
    put_u32(facs, 4, static_cast<uint32_t>(FACS_SIZE));
    put_u8(facs, 32, 2); // version 2 (ACPI 4.0 and later)
    return facs;
}

} // namespace acpi
