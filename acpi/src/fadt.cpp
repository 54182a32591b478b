// FADT ("FACP") revision 6.3: fixed ACPI hardware at the q35-style PM block, not hardware-reduced
// (offsets: ACPI 6.5 §5.2.9, FADT; choices: docs/acpi.md).
#include "sdt.hpp"

#include <acpi/tables.hpp>

namespace acpi {

namespace {

// Flags (offset 112)
constexpr uint32_t FLAG_WBINVD = 1u << 0;
constexpr uint32_t FLAG_PROC_C1 = 1u << 2;
// Bit 4 (PWR_BUTTON) stays clear: the power button is the fixed-feature one in PM1 (PWRBTN_STS/EN), which is
// what the VMM raises for system_powerdown.
constexpr uint32_t FLAG_SLP_BUTTON = 1u << 5; // set: no sleep button at all
constexpr uint32_t FLAG_RTC_S4 = 1u << 7;
constexpr uint32_t FLAG_RESET_REG_SUP = 1u << 10; // RESET_REG and RESET_VALUE below are valid
constexpr uint32_t FLAG_USE_PLATFORM_CLOCK = 1u << 15;

// IAPC_BOOT_ARCH (offset 109)
// Bit 1 ("8042") stays clear: there is no keyboard behind the VMM's i8042, so Linux's i8042 driver should not
// probe one (it skips the controller when the flag is clear); the controller is there only for the pulse-reset
// command, which Linux's reboot path sends whatever this flag says.
constexpr uint16_t BOOT_ARCH_VGA_NOT_PRESENT = 1u << 2;
constexpr uint16_t BOOT_ARCH_CMOS_RTC_NOT_PRESENT = 1u << 5;

constexpr uint8_t GAS_SYSTEM_IO = 1;
// GAS access sizes
constexpr uint8_t ACCESS_BYTE = 1;
constexpr uint8_t ACCESS_WORD = 2;
constexpr uint8_t ACCESS_DWORD = 3;

// A Generic Address Structure for an I/O port block; its bit width must be 8 x the legacy length field or
// ACPICA reports a "32/64X length mismatch".
void put_io_gas(std::span<uint8_t> table, size_t offset, uint16_t port, uint8_t length, uint8_t access_size)
{
    using namespace sdt;
    put_u8(table, offset, GAS_SYSTEM_IO);
    put_u8(table, offset + 1, static_cast<uint8_t>(length * 8));
    put_u8(table, offset + 2, 0); // bit offset
    put_u8(table, offset + 3, access_size);
    put_u64(table, offset + 4, port);
}

} // namespace

std::vector<uint8_t> build_fadt(PlatformConfig const& config, uint64_t facs_address, uint64_t dsdt_address)
{
    using namespace sdt;
    auto fadt = make_sdt("FACP", 6, FADT_SIZE);
    uint16_t const pm1a_evt = static_cast<uint16_t>(config.pm_base + PM1A_EVT_OFFSET);
    uint16_t const pm1a_cnt = static_cast<uint16_t>(config.pm_base + PM1A_CNT_OFFSET);
    uint16_t const pm_tmr = static_cast<uint16_t>(config.pm_base + PM_TMR_OFFSET);
    uint16_t const gpe0 = static_cast<uint16_t>(config.pm_base + GPE0_OFFSET);

    put_u32(fadt, 36, low_address(facs_address)); // FIRMWARE_CTRL
    put_u32(fadt, 40, low_address(dsdt_address)); // DSDT
    put_u8(fadt, 45, 0);                          // Preferred_PM_Profile: unspecified
    put_u16(fadt, 46, config.sci_irq);            // SCI_INT
    put_u32(fadt, 48, 0); // SMI_CMD: no SMM, so the OS finds the machine already in ACPI mode (SCI_EN reads 1)
    put_u32(fadt, 56, pm1a_evt);
    put_u32(fadt, 64, pm1a_cnt);
    put_u32(fadt, 76, pm_tmr);
    put_u32(fadt, 80, gpe0);
    put_u8(fadt, 88, PM1_EVT_LENGTH);
    put_u8(fadt, 89, PM1_CNT_LENGTH);
    put_u8(fadt, 91, PM_TMR_LENGTH);
    put_u8(fadt, 92, GPE0_LENGTH);
    // C2/C3 latencies above 100/1000 us mean "not supported": a vCPU idles with HLT (C1) only.
    put_u16(fadt, 96, 0x0FFF);  // P_LVL2_LAT
    put_u16(fadt, 98, 0x0FFF);  // P_LVL3_LAT
    put_u8(fadt, 108, 0);       // CENTURY: no CMOS RTC
    put_u16(fadt, 109, BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_CMOS_RTC_NOT_PRESENT);
    put_u32(fadt, 112, FLAG_WBINVD | FLAG_PROC_C1 | FLAG_SLP_BUTTON | FLAG_RTC_S4 | FLAG_RESET_REG_SUP
            | FLAG_USE_PLATFORM_CLOCK);
    // The reset register: the reset control port, one byte (Linux's acpi_reboot() insists on bit width 8
    // and bit offset 0); Linux's reboot writes RESET_VALUE there before any other method.
    put_io_gas(fadt, 116, platform::RESET_PORT, 1, ACCESS_BYTE); // RESET_REG
    put_u8(fadt, 128, platform::RESET_VALUE);                    // RESET_VALUE
    // Minor version 3 makes this FADT 6.3, the version from which Linux honours the MADT Online Capable
    // flag (absent CPUs become hot-pluggable slots).
    put_u8(fadt, 131, 3);
    put_u64(fadt, 132, facs_address); // X_FIRMWARE_CTRL
    put_u64(fadt, 140, dsdt_address); // X_DSDT
    // The access sizes are those of the registers inside each block: PM1 status/enable and PM1 control are
    // 16-bit, the PM timer 32-bit, GPE status/enable bytes 8-bit.
    put_io_gas(fadt, 148, pm1a_evt, PM1_EVT_LENGTH, ACCESS_WORD); // X_PM1a_EVT_BLK
    put_io_gas(fadt, 172, pm1a_cnt, PM1_CNT_LENGTH, ACCESS_WORD); // X_PM1a_CNT_BLK
    put_io_gas(fadt, 208, pm_tmr, PM_TMR_LENGTH, ACCESS_DWORD);   // X_PM_TMR_BLK
    put_io_gas(fadt, 220, gpe0, GPE0_LENGTH, ACCESS_BYTE);        // X_GPE0_BLK
    // 244/256 SLEEP_CONTROL/STATUS (hardware-reduced only) and 268 hypervisor vendor identity stay 0.
    finish_sdt(fadt);
    return fadt;
}

} // namespace acpi
