// Kvm, Vm and Vcpu: every ioctl cpuplug issues lives in this file.
#include "kvm.hpp"

#include "ioctl.hpp"

#include <guest/abi/platform.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>

namespace vmm {

namespace {

constexpr int KVM_API_VERSION_EXPECTED = 12;

// linux-libc-dev 6.1 wraps the flexible arrays of kvm_cpuid2 and kvm_msrs in __DECLARE_FLEX_ARRAY, whose
// empty struct has size 1 in C++: the structs grow (12 and 16 bytes instead of 8), their entries move,
// and the ioctl numbers, which encode the size, change. These headers have the C layout; entries follow
// at offset 8.
struct CpuidHeader {
    uint32_t nent;
    uint32_t padding;
};
struct MsrsHeader {
    uint32_t nmsrs;
    uint32_t padding;
};
struct RoutingHeader {
    uint32_t nr;
    uint32_t flags;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(RoutingHeader) == 8);
constexpr unsigned long IOCTL_GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long IOCTL_SET_CPUID2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long IOCTL_GET_MSRS = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long IOCTL_SET_MSRS = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long IOCTL_SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, RoutingHeader);

// A header followed by `count` entries, laid out as the kernel expects.
template<typename Header, typename Entry>
struct FlexBuffer {
    explicit FlexBuffer(size_t count)
        : storage((sizeof(Header) + count * sizeof(Entry) + 7) / 8)
    {
    }
    // SAFETY: the storage is u64-aligned and sized for the header and `count` entries.
    Header* header() { return reinterpret_cast<Header*>(storage.data()); }
    Entry* entries() { return reinterpret_cast<Entry*>(reinterpret_cast<uint8_t*>(storage.data()) + sizeof(Header)); }
    std::vector<uint64_t> storage;
};

struct RequiredCap {
    long capability;
    char const* name;
    char const* why;
};

// What the design needs from the host; each missing one is reported with what it is needed for.
constexpr RequiredCap REQUIRED_CAPS[] = {
    { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "INIT/SIPI go through the in-kernel LAPIC" },
    { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM is a user-space mapping" },
    { KVM_CAP_X2APIC_API, "KVM_CAP_X2APIC_API", "APIC ids above 254 need 32-bit x2APIC ids" },
    { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "vCPUs are stopped without losing a kick" },
    { KVM_CAP_MAX_VCPUS, "KVM_CAP_MAX_VCPUS", "vCPU counts are checked against the host's limit" },
    { KVM_CAP_MAX_VCPU_ID, "KVM_CAP_MAX_VCPU_ID", "sparse APIC ids are checked against the host's limit" },
    { KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "vCPUs are reset and parked through their MP state" },
    { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "each vCPU gets its own CPUID" },
    { KVM_CAP_PIT2, "KVM_CAP_PIT2", "Linux calibrates its clocks against the in-kernel PIT" },
    { KVM_CAP_PIT_STATE2, "KVM_CAP_PIT_STATE2", "system_reset puts the PIT back to its power-on state" },
    { KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "the PIT's IRQ 0 goes to IOAPIC pin 2, where the MADT says" },
};

} // namespace

bool supervisor_mode_emulated()
{
    // kvm_pvm can be loaded without providing /dev/kvm (it declines inside a PVM guest), and a machine with
    // VT-x or SVM has kvm_intel or kvm_amd, which then provide it.
    auto loaded = [](char const* module) {
        struct stat info {};
        return ::stat((std::string("/sys/module/") + module).c_str(), &info) == 0;
    };
    return loaded("kvm_pvm") && !loaded("kvm_intel") && !loaded("kvm_amd");
}

cpuplug::Result<Kvm, std::string> Kvm::open(char const* path)
{
    int raw = ::open(path, O_RDWR | O_CLOEXEC);
    if (raw < 0) {
        int error = errno;
        if (error == ENOENT)
            return cpuplug::unexpected(fmt::format(
                "{} does not exist: load the KVM module (modprobe kvm_intel or kvm_amd) on a host with "
                "virtualization enabled",
                path));
        if (error == EACCES || error == EPERM)
            return cpuplug::unexpected(fmt::format(
                "no permission to open {}: add your user to the group that owns it (usually 'kvm') or run as root",
                path));
        return cpuplug::unexpected(fmt::format("cannot open {}: {}", path, std::strerror(error)));
    }
    UniqueFd fd(raw);

    auto version = KVM_IOCTL(fd.get(), KVM_GET_API_VERSION, 0);
    if (!version.has_value())
        return cpuplug::unexpected(fmt::format("{} is not a KVM device ({})", path, version.error()));
    if (version.value() != KVM_API_VERSION_EXPECTED)
        return cpuplug::unexpected(fmt::format(
            "KVM API version {} is not the stable version {}: use a Linux host kernel 2.6.22 or newer",
            version.value(), KVM_API_VERSION_EXPECTED));

    for (auto const& cap : REQUIRED_CAPS) {
        auto present = KVM_IOCTL(fd.get(), KVM_CHECK_EXTENSION, cap.capability);
        if (!present.has_value() || present.value() <= 0)
            return cpuplug::unexpected(fmt::format(
                "KVM on this host lacks {} ({}): upgrade the host kernel", cap.name, cap.why));
    }
    auto x2apic = KVM_IOCTL(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_X2APIC_API);
    if (!(x2apic.value_or(0) & KVM_X2APIC_API_USE_32BIT_IDS))
        return cpuplug::unexpected(std::string(
            "KVM on this host cannot use 32-bit x2APIC ids (KVM_X2APIC_API_USE_32BIT_IDS): upgrade the host kernel"));

    auto mmap_size = KVM_IOCTL(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (!mmap_size.has_value() || mmap_size.value() < static_cast<int>(sizeof(kvm_run)))
        return cpuplug::unexpected(std::string("KVM_GET_VCPU_MMAP_SIZE failed: the KVM module is broken"));

    KvmLimits limits;
    limits.max_vcpus = static_cast<uint32_t>(KVM_IOCTL(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS).value_or(0));
    limits.max_vcpu_id = static_cast<uint32_t>(KVM_IOCTL(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID).value_or(0));
    limits.recommended_vcpus = static_cast<uint32_t>(KVM_IOCTL(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS).value_or(0));
    // api.rst: "if KVM_CAP_MAX_VCPU_ID is not available, the maximum vcpu id is KVM_CAP_MAX_VCPUS".
    if (limits.max_vcpu_id == 0)
        limits.max_vcpu_id = limits.max_vcpus;
    return Kvm(std::move(fd), mmap_size.value(), limits);
}

int Kvm::check_extension(long capability) const
{
    return KVM_IOCTL(m_fd.get(), KVM_CHECK_EXTENSION, capability).value_or(0);
}

SysResult<std::vector<kvm_cpuid_entry2>> Kvm::supported_cpuid() const
{
    // Grow on E2BIG; KVM refuses more than KVM_MAX_CPUID_ENTRIES (256) with EINVAL.
    for (uint32_t capacity = 128; capacity <= 256; capacity *= 2) {
        FlexBuffer<CpuidHeader, kvm_cpuid_entry2> buffer(capacity);
        buffer.header()->nent = capacity;
        auto result = kvm_ioctl(m_fd.get(), IOCTL_GET_SUPPORTED_CPUID, "KVM_GET_SUPPORTED_CPUID", buffer.header());
        if (!result.has_value()) {
            if (result.error().code == E2BIG)
                continue;
            return cpuplug::unexpected(result.error());
        }
        return std::vector<kvm_cpuid_entry2>(buffer.entries(), buffer.entries() + buffer.header()->nent);
    }
    return sys_error(E2BIG, "KVM_GET_SUPPORTED_CPUID");
}

SysResult<Vm> Kvm::create_vm() const
{
    // Retry on EINTR: VM creation can be interrupted by a signal and has no side effect then.
    for (;;) {
        auto fd = KVM_IOCTL(m_fd.get(), KVM_CREATE_VM, 0);
        if (fd.has_value())
            return Vm(UniqueFd(fd.value()), m_vcpu_mmap_size);
        if (fd.error().code != EINTR)
            return cpuplug::unexpected(fd.error());
    }
}

std::vector<kvm_irq_routing_entry> pc_gsi_routing()
{
    constexpr uint32_t PIC_PINS = 16, IOAPIC_PINS = 24, CASCADE = 2;
    auto entry = [](uint32_t gsi, uint32_t chip, uint32_t pin) {
        kvm_irq_routing_entry e {};
        e.gsi = gsi;
        e.type = KVM_IRQ_ROUTING_IRQCHIP;
        e.u.irqchip.irqchip = chip;
        e.u.irqchip.pin = pin;
        return e;
    };
    std::vector<kvm_irq_routing_entry> table;
    for (uint32_t gsi = 0; gsi < PIC_PINS; ++gsi)
        if (gsi != CASCADE)
            table.push_back(entry(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8));
    for (uint32_t gsi = 0; gsi < IOAPIC_PINS; ++gsi) {
        if (gsi == platform::PIT_GSI)
            table.push_back(entry(gsi, KVM_IRQCHIP_IOAPIC, platform::PIT_IOAPIC_PIN));
        else if (gsi != platform::PIT_IOAPIC_PIN)
            table.push_back(entry(gsi, KVM_IRQCHIP_IOAPIC, gsi));
    }
    return table;
}

// ---- Vm -----------------------------------------------------------------------------------------------

SysResult<void> Vm::set_tss_address(uint64_t address)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(address)));
    return {};
}

SysResult<void> Vm::set_identity_map_address(uint64_t address)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &address));
    return {};
}

SysResult<void> Vm::create_irqchip()
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_CREATE_IRQCHIP, 0));
    return {};
}

SysResult<void> Vm::create_pit()
{
    kvm_pit_config config {}; // flags 0: a real speaker port (0x61), whose gate Linux's PIT calibration drives
    TRY(KVM_IOCTL(m_fd.get(), KVM_CREATE_PIT2, &config));
    return {};
}

SysResult<kvm_pit_state2> Vm::get_pit() const
{
    kvm_pit_state2 state {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_PIT2, &state));
    return state;
}

SysResult<void> Vm::set_pit(kvm_pit_state2 const& state)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_PIT2, &state));
    return {};
}

SysResult<void> Vm::set_gsi_routing(std::span<kvm_irq_routing_entry const> entries)
{
    FlexBuffer<RoutingHeader, kvm_irq_routing_entry> buffer(entries.size());
    buffer.header()->nr = static_cast<uint32_t>(entries.size());
    buffer.header()->flags = 0;
    std::memcpy(buffer.entries(), entries.data(), entries.size_bytes());
    TRY(kvm_ioctl(m_fd.get(), IOCTL_SET_GSI_ROUTING, "KVM_SET_GSI_ROUTING", buffer.header()));
    return {};
}

SysResult<void> Vm::enable_x2apic_api()
{
    kvm_enable_cap cap {};
    cap.cap = KVM_CAP_X2APIC_API;
    cap.args[0] = KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK;
    TRY(KVM_IOCTL(m_fd.get(), KVM_ENABLE_CAP, &cap));
    return {};
}

SysResult<void> Vm::set_user_memory_region(uint32_t slot, uint64_t guest_address, uint64_t size, void* host)
{
    kvm_userspace_memory_region region {};
    region.slot = slot;
    region.guest_phys_addr = guest_address;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host);
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region));
    return {};
}

SysResult<kvm_irqchip> Vm::get_irqchip(uint32_t chip) const
{
    kvm_irqchip state {};
    state.chip_id = chip;
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_IRQCHIP, &state));
    return state;
}

SysResult<void> Vm::set_irqchip(kvm_irqchip const& state)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_IRQCHIP, &state));
    return {};
}

SysResult<void> Vm::irq_line(uint32_t gsi, bool level)
{
    kvm_irq_level irq {};
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    TRY(KVM_IOCTL(m_fd.get(), KVM_IRQ_LINE, &irq));
    return {};
}

SysResult<Vcpu> Vm::create_vcpu(uint32_t id)
{
    auto fd = TRY(KVM_IOCTL(m_fd.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
    UniqueFd owned(fd);
    // SAFETY: KVM requires a shared mapping of exactly KVM_GET_VCPU_MMAP_SIZE bytes at offset 0.
    auto run = TRY(Mapping::map(static_cast<size_t>(m_vcpu_mmap_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0,
        "mmap(kvm_run)"));
    return Vcpu(std::move(owned), std::move(run), id);
}

// ---- Vcpu ---------------------------------------------------------------------------------------------

SysResult<void> Vcpu::run()
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_RUN, 0));
    return {};
}

void Vcpu::set_immediate_exit(bool value)
{
    // Written by the kicking thread, read by KVM on the vCPU thread's next KVM_RUN: release ordering makes
    // the command written before the kick visible to the vCPU thread once it sees the flag.
    std::atomic_ref<uint8_t>(run_state().immediate_exit).store(value ? 1 : 0, std::memory_order_release);
}

SysResult<kvm_regs> Vcpu::get_regs() const
{
    kvm_regs regs {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_REGS, &regs));
    return regs;
}

SysResult<void> Vcpu::set_regs(kvm_regs const& regs)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_REGS, &regs));
    return {};
}

SysResult<kvm_sregs> Vcpu::get_sregs() const
{
    kvm_sregs sregs {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_SREGS, &sregs));
    return sregs;
}

SysResult<void> Vcpu::set_sregs(kvm_sregs const& sregs)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_SREGS, &sregs));
    return {};
}

SysResult<kvm_fpu> Vcpu::get_fpu() const
{
    kvm_fpu fpu {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_FPU, &fpu));
    return fpu;
}

SysResult<void> Vcpu::set_fpu(kvm_fpu const& fpu)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_FPU, &fpu));
    return {};
}

SysResult<kvm_mp_state> Vcpu::get_mp_state() const
{
    kvm_mp_state state {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_MP_STATE, &state));
    return state;
}

SysResult<void> Vcpu::set_mp_state(uint32_t state)
{
    kvm_mp_state mp { state };
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_MP_STATE, &mp));
    return {};
}

SysResult<kvm_lapic_state> Vcpu::get_lapic() const
{
    kvm_lapic_state lapic {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_LAPIC, &lapic));
    return lapic;
}

SysResult<void> Vcpu::set_lapic(kvm_lapic_state const& lapic)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_LAPIC, &lapic));
    return {};
}

SysResult<kvm_vcpu_events> Vcpu::get_vcpu_events() const
{
    kvm_vcpu_events events {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_VCPU_EVENTS, &events));
    return events;
}

SysResult<kvm_debugregs> Vcpu::get_debugregs() const
{
    kvm_debugregs debugregs {};
    TRY(KVM_IOCTL(m_fd.get(), KVM_GET_DEBUGREGS, &debugregs));
    return debugregs;
}

SysResult<void> Vcpu::set_vcpu_events(kvm_vcpu_events const& events)
{
    TRY(KVM_IOCTL(m_fd.get(), KVM_SET_VCPU_EVENTS, &events));
    return {};
}

SysResult<void> Vcpu::set_cpuid(std::span<kvm_cpuid_entry2 const> entries)
{
    FlexBuffer<CpuidHeader, kvm_cpuid_entry2> buffer(entries.size());
    buffer.header()->nent = static_cast<uint32_t>(entries.size());
    std::memcpy(buffer.entries(), entries.data(), entries.size_bytes());
    TRY(kvm_ioctl(m_fd.get(), IOCTL_SET_CPUID2, "KVM_SET_CPUID2", buffer.header()));
    return {};
}

SysResult<void> Vcpu::set_msrs(std::span<std::pair<uint32_t, uint64_t> const> msrs)
{
    FlexBuffer<MsrsHeader, kvm_msr_entry> buffer(msrs.size());
    buffer.header()->nmsrs = static_cast<uint32_t>(msrs.size());
    for (size_t i = 0; i < msrs.size(); ++i) {
        buffer.entries()[i] = kvm_msr_entry {};
        buffer.entries()[i].index = msrs[i].first;
        buffer.entries()[i].data = msrs[i].second;
    }
    auto written = TRY(kvm_ioctl(m_fd.get(), IOCTL_SET_MSRS, "KVM_SET_MSRS", buffer.header()));
    // KVM returns how many it set; it stops at the first it refuses.
    if (static_cast<size_t>(written) != msrs.size())
        return sys_error(EINVAL, "KVM_SET_MSRS");
    return {};
}

SysResult<uint64_t> Vcpu::get_msr(uint32_t index) const
{
    FlexBuffer<MsrsHeader, kvm_msr_entry> buffer(1);
    buffer.header()->nmsrs = 1;
    buffer.entries()[0] = kvm_msr_entry {};
    buffer.entries()[0].index = index;
    auto read = TRY(kvm_ioctl(m_fd.get(), IOCTL_GET_MSRS, "KVM_GET_MSRS", buffer.header()));
    if (read != 1)
        return sys_error(EINVAL, "KVM_GET_MSRS");
    return static_cast<uint64_t>(buffer.entries()[0].data);
}

SysResult<uint32_t> Vcpu::tsc_khz() const
{
    auto khz = TRY(KVM_IOCTL(m_fd.get(), KVM_GET_TSC_KHZ, 0));
    return static_cast<uint32_t>(khz);
}

} // namespace vmm
