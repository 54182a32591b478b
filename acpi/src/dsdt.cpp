// DSDT: the processor container \_SB.CPUS with one ACPI0007 device per possible CPU, \_S5 for soft-off and
// the \_GPE scope, built as an AML tree; with CPU hotplug also QEMU's register block, helper methods and GPE
// handler (modelled on build_cpus_aml() in QEMU's hw/acpi/cpu.c; the ASL and where it differs: docs/acpi.md).
#include "madt.hpp"
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

// The register block's objects, by absolute path: the methods that use them live in \_SB.CPUS, and only a
// single-segment name is searched for in the enclosing scopes.
constexpr char CPLK[] = "\\_SB.PRES.CPLK";
constexpr char CPEN[] = "\\_SB.PRES.CPEN";
constexpr char CINS[] = "\\_SB.PRES.CINS";
constexpr char CRMV[] = "\\_SB.PRES.CRMV";
constexpr char CEJ0[] = "\\_SB.PRES.CEJ0";
constexpr char CCMD[] = "\\_SB.PRES.CCMD";
constexpr char CSEL[] = "\\_SB.PRES.CSEL";
constexpr char CDAT[] = "\\_SB.PRES.CDAT";

// Commands written to CCMD (QEMU's docs/specs/acpi_cpu_hotplug.rst; register table in docs/acpi.md).
constexpr uint8_t COMMAND_NEXT_EVENT = 0; // select the next CPU with an event, from CSEL inclusive, wrapping
constexpr uint8_t COMMAND_OST_EVENT = 1;  // the next CDAT write is an _OST source event
constexpr uint8_t COMMAND_OST_STATUS = 2; // the next CDAT write is an _OST status

constexpr uint8_t NOTIFY_DEVICE_CHECK = 1;
constexpr uint8_t NOTIFY_EJECT_REQUEST = 3;

// Insertions are collected in batches of this many: a Package holds at most 255 elements, and Windows caps a
// VarPackage the same way (QEMU's reason for the batches).
constexpr unsigned SCAN_BATCH = 255;

// Device(\_SB.PRES): owns the register block, as in Cloud Hypervisor; QEMU hangs it under \_SB.PCI0, which
// this machine does not have.
Aml register_block(PlatformConfig const& config)
{
    uint16_t const base = config.cpu_hotplug_base;
    return Device("PRES", {
        Name("_HID", EisaId("PNP0A06")), // generic container, as in QEMU; its _CRS tells the OS the ports are taken
        Name("_UID", String("CPU Hotplug resources")),
        Mutex("CPLK", 0), // one selector for all CPUs: every method selects and accesses under it
        Name("_CRS", ResourceTemplate({ Io { IoDecode::Decode16, base, base, 1, CPU_HOTPLUG_LENGTH } })),
        OperationRegion("PRST", RegionSpace::SystemIO, base, CPU_HOTPLUG_LENGTH),
        // The flags are write-1-to-act (clear an event, eject), so a write of one flag must carry zeros in the
        // others: WriteAsZeros, where Preserve would write back the pending events it read and clear them.
        // Byte access keeps the status write from reaching the command register next to it.
        Field("PRST", FieldAccess::Byte, FieldLock::NoLock, FieldUpdate::WriteAsZeros, {
            FieldOffset { 4 },
            NamedField { "CPEN", 1 }, // read: present
            NamedField { "CINS", 1 }, // read: insert event pending; write 1: clear it
            NamedField { "CRMV", 1 }, // read: remove event pending; write 1: clear it
            NamedField { "CEJ0", 1 }, // write 1: eject
            NamedField { "CEJF", 1 }, // firmware eject: declared for QEMU's layout, unused without SMM
            ReservedField { 3 },
            NamedField { "CCMD", 8 },
        }),
        // The selector and the command data are 32-bit registers at 0 and 8.
        Field("PRST", FieldAccess::DWord, FieldLock::NoLock, FieldUpdate::Preserve, {
            NamedField { "CSEL", 32 },
            ReservedField { 32 },
            NamedField { "CDAT", 32 },
        }),
    });
}

// CTFY(uid, event): Notify takes an object, not an index, so one If per possible CPU.
Aml notify_method(PlatformConfig const& config)
{
    std::vector<Aml> body;
    for (auto const& cpu : config.cpus)
        body.push_back(If(LEqual(Arg(0), cpu.uid), { Notify(NameString(cpu_device_name(cpu.uid)), Arg(1)) }));
    return Method("CTFY", 2, std::move(body));
}

// CSTA(uid): 0x0F (present, enabled, shown, functioning) or 0.
Aml status_method()
{
    return Method("CSTA", 1, Serialization::Serialized, {
        Acquire(CPLK),
        Store(Arg(0), NameString(CSEL)),
        Store(0, Local(0)),
        If(LEqual(NameString(CPEN), 1), { Store(0x0F, Local(0)) }),
        Release(CPLK),
        Return(Local(0)),
    });
}

// CEJ0(uid): the OS has offlined the CPU; the VMM removes it.
Aml eject_method()
{
    return Method("CEJ0", 1, Serialization::Serialized, {
        Acquire(CPLK),
        Store(Arg(0), NameString(CSEL)),
        Store(1, NameString(CEJ0)),
        Release(CPLK),
    });
}

// CSCN(): walks the CPUs with pending events. A remove event is notified (eject request) and cleared at once;
// insertions are collected and notified (device check) after the search, a batch at a time, as QEMU does so
// that firmware could be told of the whole batch before the OS sees it (there is no such upcall here). After
// a batch the search starts over, until one finds no insertion: a CPU with both events gets its device check
// first and its eject request in the same call, and the OS's hotplug queue takes them in that order.
Aml scan_method(PlatformConfig const& config)
{
    Local const found { 0 };  // the last search found an event: search again
    Local const count { 1 };  // insertions collected in CNEW
    Local const next { 2 };   // the next collected insertion to notify
    Local const cursor { 3 }; // where the search starts
    Local const more { 4 };   // the batch filled up before the search was done
    NameString const cnew("CNEW");
    return Method("CSCN", 0, Serialization::Serialized, {
        Acquire(CPLK),
        Name("CNEW", Package(SCAN_BATCH, {})), // a named object inside a method needs it Serialized
        Store(0, cursor),
        Store(1, more),
        While(LEqual(more, 1), {
            Store(0, more),
            Store(1, found),
            Store(0, count),
            While(LAnd(LEqual(found, 1), LLess(cursor, config.cpus.size())), {
                Store(0, found),
                Store(cursor, NameString(CSEL)),
                Store(COMMAND_NEXT_EVENT, NameString(CCMD)),
                // The search wraps around: a CPU below the cursor means none is left from the cursor up. With no
                // event at all the selector stays at the cursor, whose flags then read 0 and end the loop.
                If(LLess(NameString(CDAT), cursor), { Break {} }),
                If(LEqual(count, SCAN_BATCH), {
                    Store(1, more),
                    Break {},
                }),
                Store(NameString(CDAT), cursor),
                If(LEqual(NameString(CINS), 1), {
                    Store(cursor, Index(cnew, count)),
                    Increment(count),
                    Store(1, found),
                }),
                Else({
                    If(LEqual(NameString(CRMV), 1), {
                        MethodCall("CTFY", { cursor, NOTIFY_EJECT_REQUEST }),
                        Store(1, NameString(CRMV)),
                        Store(1, found),
                    }),
                }),
                Increment(cursor),
            }),
            Store(0, next),
            While(LLess(next, count), {
                Store(DerefOf(Index(cnew, next)), cursor),
                MethodCall("CTFY", { cursor, NOTIFY_DEVICE_CHECK }),
                Store(cursor, NameString(CSEL)),
                Store(1, NameString(CINS)),
                Increment(next),
            }),
            // Search again from the start after notifying insertions: a CPU whose removal was asked for while
            // its insertion was pending (device_del right after device_add) still has its remove event, which
            // the search above passed over for the insertion. No new SCI would come for it.
            If(LGreater(count, 0), {
                Store(1, more),
                Store(0, cursor),
            }),
        }),
        Release(CPLK),
    });
}

// COST(uid, event, status, info): hands an _OST to the VMM (its ACPI_DEVICE_OST event); the status write
// comes last because it is what makes the VMM report. The info buffer is not passed on, as in QEMU.
Aml ost_method()
{
    return Method("COST", 4, Serialization::Serialized, {
        Acquire(CPLK),
        Store(Arg(0), NameString(CSEL)),
        Store(COMMAND_OST_EVENT, NameString(CCMD)),
        Store(Arg(1), NameString(CDAT)),
        Store(COMMAND_OST_STATUS, NameString(CCMD)),
        Store(Arg(2), NameString(CDAT)),
        Release(CPLK),
    });
}

// _UID equals the MADT entry's UID: that is how the OS matches this object to its MADT entry.
// Devices rather than the deprecated Processor() term, since x2APIC ids do not fit Processor's byte.
Aml cpu_device(CpuEntry const& cpu, PlatformConfig const& config)
{
    std::vector<Aml> body {
        Name("_HID", String("ACPI0007")),
        Name("_UID", cpu.uid),
    };
    if (!config.cpu_hotplug) {
        body.push_back(Method("_STA", 0, { Return(cpu.present ? 0x0F : 0) }));
        return Device(cpu_device_name(cpu.uid), std::move(body));
    }
    body.push_back(Method("_STA", 0, Serialization::Serialized, { Return(MethodCall("CSTA", { cpu.uid })) }));
    // A CPU absent at boot is disabled in the MADT; _MAT is how the OS learns its APIC id when it arrives, and
    // Linux only takes an entry marked Enabled.
    body.push_back(Name("_MAT", Buffer(madt::processor_entry(cpu, madt::CpuFlag::Enabled))));
    if (cpu.uid != config.boot_cpu)
        body.push_back(Method("_EJ0", 1, { MethodCall("CEJ0", { cpu.uid }) }));
    body.push_back(Method("_OST", 3, Serialization::Serialized,
        { MethodCall("COST", { cpu.uid, Arg(0), Arg(1), Arg(2) }) }));
    return Device(cpu_device_name(cpu.uid), std::move(body));
}

} // namespace

std::vector<aml::Aml> dsdt_terms(PlatformConfig const& config)
{
    std::vector<Aml> cpus {
        Name("_HID", String("ACPI0010")), // processor container
        Name("_CID", EisaId("PNP0A05")),  // generic container, for OSes that do not know ACPI0010
    };
    // The helpers come before the CPU objects that call them: a disassembler learns a method's argument count
    // from its declaration, and needs it to tell where a call ends.
    if (config.cpu_hotplug) {
        cpus.push_back(notify_method(config));
        cpus.push_back(status_method());
        cpus.push_back(eject_method());
        cpus.push_back(scan_method(config));
        cpus.push_back(ost_method());
    }
    for (auto const& cpu : config.cpus)
        cpus.push_back(cpu_device(cpu, config));

    std::vector<Aml> system_bus;
    if (config.cpu_hotplug)
        system_bus.push_back(register_block(config));
    system_bus.push_back(Device("CPUS", std::move(cpus)));

    // The GPE block device, so the OS binds the FADT's GPE0 block, and the CPU-hotplug event's handler. _E02
    // rather than _L02: the OS clears an edge GPE's status before running its handler, so an event the VMM
    // raises while CSCN runs sets the bit again instead of being cleared with the one being handled.
    std::vector<Aml> gpe { Name("_HID", String("ACPI0006")) };
    static_assert(CPU_HOTPLUG_GPE == 2, "the handler below is _E02");
    if (config.cpu_hotplug)
        gpe.push_back(Method("_E02", 0, { MethodCall("\\_SB.CPUS.CSCN") }));

    return {
        Scope("\\_SB", std::move(system_bus)),
        // Soft-off is PM1_CNT.SLP_TYP 0 with SLP_EN, the value the VMM's PM device treats as power-off.
        Name("\\_S5", Package({ Zero {}, Zero {}, Zero {}, Zero {} })),
        Scope("\\_GPE", std::move(gpe)),
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
