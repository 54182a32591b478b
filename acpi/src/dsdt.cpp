// DSDT: the processor container \_SB.CPUS with one ACPI0007 device per possible CPU, \_S5 for soft-off and
// the \_GPE scope, built as an AML tree.
#include "sdt.hpp"

#include <acpi/tables.hpp>

#include <algorithm>

namespace acpi {

namespace {

using namespace aml;

// "C" and three upper-case hex digits of the index: C000..CFFF, the names QEMU gives its CPU objects.
std::string cpu_device_name(uint32_t index)
{
    constexpr char HEX[] = "0123456789ABCDEF";
    return { 'C', HEX[(index >> 8) & 0xF], HEX[(index >> 4) & 0xF], HEX[index & 0xF] };
}

Aml cpu_device(CpuEntry const& cpu)
{
    // _UID equals the MADT entry's UID: that is how the OS matches this object to its MADT entry.
    // Devices rather than the deprecated Processor() term, since x2APIC ids do not fit Processor's byte.
    return Device(cpu_device_name(cpu.uid), {
        Name("_HID", String("ACPI0007")),
        Name("_UID", cpu.uid),
        Method("_STA", 0, { Return(cpu.present ? 0x0F : 0) }),
    });
}

} // namespace

std::vector<aml::Aml> dsdt_terms(PlatformConfig const& config)
{
    std::vector<Aml> cpus {
        Name("_HID", String("ACPI0010")), // processor container
        Name("_CID", EisaId("PNP0A05")),  // generic container, for OSes that do not know ACPI0010
    };
    for (auto const& cpu : config.cpus)
        cpus.push_back(cpu_device(cpu));

    return {
        Scope("\\_SB", { Device("CPUS", std::move(cpus)) }),
        // Soft-off is PM1_CNT.SLP_TYP 0 with SLP_EN, the value the VMM's PM device treats as power-off.
        Name("\\_S5", Package({ Zero {}, Zero {}, Zero {}, Zero {} })),
        // The GPE block device, so the OS binds the FADT's GPE0 block (and, later, _E02 for CPU hotplug).
        Scope("\\_GPE", { Name("_HID", String("ACPI0006")) }),
    };
}

std::vector<uint8_t> build_dsdt_body(PlatformConfig const& config)
{
    AmlSink sink;
    emit_all(sink, dsdt_terms(config));
    return sink.take();
}

std::vector<uint8_t> build_dsdt(std::span<uint8_t const> aml_body)
{
    using namespace sdt;
    auto dsdt = make_sdt("DSDT", 2, SDT_HEADER_SIZE + aml_body.size());
    std::copy(aml_body.begin(), aml_body.end(), dsdt.begin() + SDT_HEADER_SIZE);
    finish_sdt(dsdt);
    return dsdt;
}

} // namespace acpi
