// Local APIC access. Register numbers are the xAPIC MMIO offsets; in x2APIC mode MSR = 0x800 + offset/16.
#include "apic.hpp"

#include "clock.hpp"
#include "percpu.hpp"
#include "sys.hpp"
#include "x86.hpp"

#include <guest/abi/platform.h>
#include <guest/arch/percpu_layout.h>

namespace kernel::apic {

namespace {

constexpr uint32_t MSR_APIC_BASE = 0x1B;
constexpr uint64_t APIC_BASE_ENABLE = 1u << 11;
constexpr uint64_t APIC_BASE_X2APIC = 1u << 10;
constexpr uintptr_t XAPIC_MMIO = platform::LAPIC_BASE;

enum Register : uint32_t {
    ID = 0x20,
    TPR = 0x80,
    SVR = 0xF0,
    ESR = 0x280,
    ICR_LOW = 0x300,
    ICR_HIGH = 0x310,
    LVT_TIMER = 0x320,
    LVT_LINT0 = 0x350,
    LVT_LINT1 = 0x360,
    LVT_ERROR = 0x370,
    TIMER_INITIAL = 0x380,
    TIMER_DIVIDE = 0x3E0,
};

constexpr uint32_t LVT_MASKED = 1u << 16;
constexpr uint32_t ICR_ASSERT = 1u << 14;
constexpr uint32_t ICR_INIT = 5u << 8;
constexpr uint32_t ICR_STARTUP = 6u << 8;

void write(Register reg, uint32_t value)
{
    if (apic_x2apic)
        sys::wrmsr(0x800 + (reg >> 4), value);
    else
        *reinterpret_cast<uint32_t volatile*>(XAPIC_MMIO + reg) = value;
}

uint32_t read(Register reg)
{
    if (apic_x2apic)
        return static_cast<uint32_t>(sys::rdmsr(0x800 + (reg >> 4)));
    return *reinterpret_cast<uint32_t volatile*>(XAPIC_MMIO + reg);
}

void send(uint32_t apic_id, uint32_t low)
{
    if (apic_x2apic) {
        sys::wrmsr(0x830, (uint64_t(apic_id) << 32) | low); // one write: destination and command
        return;
    }
    write(ICR_HIGH, apic_id << 24); // the destination first: the low write sends
    write(ICR_LOW, low);
}

} // namespace

bool x2apic() { return apic_x2apic != 0; }

void init_boot_cpu(bool allow_x2apic)
{
    bool offered = allow_x2apic && (sys::cpuid(1).ecx & (1u << 21)) != 0;
    uint64_t base = sys::rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE;
    if (offered) {
        sys::wrmsr(MSR_APIC_BASE, base | APIC_BASE_X2APIC);
        apic_x2apic = 1;
    } else {
        sys::wrmsr(MSR_APIC_BASE, base);
    }
    write(SVR, 0x100 | VECTOR_SPURIOUS);
    set_task_priority(0);
    starting();
    init_timer(); // an AP's timer is set up by its entry code (entry.S)
}

uint32_t read_id() { return apic_x2apic ? read(ID) : read(ID) >> 24; }

void init_timer()
{
    write(TIMER_DIVIDE, 0xB); // divide by 1
    write(LVT_TIMER, VECTOR_TIMER); // one-shot, unmasked
}

void starting()
{
    if (apic_x2apic) {
        sys::apic_starting(); // the four writes below, in one system call
        return;
    }
    write(LVT_LINT0, LVT_MASKED);
    write(LVT_LINT1, 0x400); // NMI
    write(LVT_ERROR, LVT_MASKED);
    write(ESR, 0);
}

void dying()
{
    write(LVT_TIMER, LVT_MASKED);
    write(TIMER_INITIAL, 0);
}

void set_task_priority(uint8_t priority) { write(TPR, priority); }

void send_ipi(uint32_t apic_id, uint8_t vector) { send(apic_id, ICR_ASSERT | vector); }

uint64_t ipi_command(uint32_t apic_id, uint8_t vector) { return (uint64_t(apic_id) << 32) | ICR_ASSERT | vector; }

void send_init(uint32_t apic_id)
{
    uint32_t init = ICR_ASSERT | ICR_INIT;
    if (apic_x2apic)
        sys::ipi3((uint64_t(apic_id) << 32) | init, 0, 0);
    else
        send(apic_id, init);
}

void send_startups(uint32_t apic_id, uint8_t vector_page)
{
    uint32_t startup = ICR_ASSERT | ICR_STARTUP | vector_page;
    if (apic_x2apic) {
        uint64_t dest = uint64_t(apic_id) << 32;
        sys::ipi3(dest | startup, dest | startup, 0);
        return;
    }
    send(apic_id, startup);
    send(apic_id, startup);
}

void kick(uint32_t apic_id, uint8_t vector_page, uint64_t init_delay_us)
{
    if (apic_x2apic && init_delay_us == 0) {
        uint64_t dest = uint64_t(apic_id) << 32;
        uint32_t startup = ICR_ASSERT | ICR_STARTUP | vector_page;
        sys::ipi3(dest | ICR_ASSERT | ICR_INIT, dest | startup, dest | startup); // one system call
        return;
    }
    send_init(apic_id);
    delay_us(init_delay_us);
    send_startups(apic_id, vector_page);
}

} // namespace kernel::apic
