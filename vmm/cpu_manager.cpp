// CpuManager: vCPU creation, the vCPU threads, pausing and resetting them. Hot-plug is in
// cpu_manager_hotplug.cpp.
#include "cpu_manager.hpp"

#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/regs.hpp"
#include "arch/x86_64/topology.hpp"
#include "cpu/cpu_registers.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <thread>

namespace vmm {

namespace {

constexpr auto VCPU_STOP_TIMEOUT = std::chrono::seconds(1);
constexpr auto VCPU_PAUSE_TIMEOUT = std::chrono::seconds(1);
constexpr auto VCPU_REKICK_INTERVAL = std::chrono::milliseconds(10);

std::string fail(char const* what, SysError const& error) { return fmt::format("{}: {}", what, error.message()); }

} // namespace

CpuManager::CpuManager(MachineConfig const& config, Kvm const& kvm, Vm& vm, Buses buses, boost::asio::io_context& io,
    Hooks hooks)
    : m_topology(config.smp.topology)
    , m_boot_cpus(config.smp.cpus)
    , m_unplug_timeout(config.unplug_timeout)
    , m_kvm(kvm)
    , m_vm(vm)
    , m_buses(buses)
    , m_io(io)
    , m_hooks(std::move(hooks))
    , m_pause_timer(io)
    , m_hotplug_timer(io)
    , m_inspection_timer(io)
{
    for (uint32_t i = 0; i < config.smp.maxcpus; ++i)
        m_apic_ids.push_back(apic_id_from_index(config.smp.topology, i));
    m_slots.resize(config.smp.maxcpus);
    // Boot CPUs are created before any other device, so QEMU names them device[0], device[2], device[3]...:
    // realizing the first CPU's APIC creates QEMU's kvmvapic device, which takes device[1].
    for (uint32_t i = 0; i < config.smp.cpus; ++i)
        m_slots[i].qom_path = fmt::format("/machine/unattached/device[{}]", i == 0 ? 0 : i + 1);
    m_slots.front().guest_view = Slot::GuestView::Online; // online before the guest's state machine starts

    if (config.hotplug) {
        CpuHotplugDevice::Callbacks callbacks;
        // Device callbacks run on the vCPU thread that wrote the register; the slots belong to the io thread.
        callbacks.ejected = [this](uint32_t index) { boost::asio::post(m_io, [this, index] { on_ejected(index); }); };
        callbacks.ost = [this](uint32_t index, uint32_t event, uint32_t status) {
            boost::asio::post(m_io, [this, index, event, status] { on_ost(index, event, status); });
        };
        callbacks.raise_gpe = [this] { m_hooks.raise_gpe(); };
        std::vector<uint64_t> arch_ids(m_apic_ids.begin(), m_apic_ids.end());
        m_hotplug = std::make_shared<CpuHotplugDevice>(std::move(arch_ids), 0, std::move(callbacks));
        for (uint32_t i = 0; i < config.smp.cpus; ++i)
            m_hotplug->set_present(i, true);
    }
}

void CpuManager::shut_down()
{
    {
        std::lock_guard lock(m_mutex);
        m_tearing_down = true; // stopped threads no longer ask the io thread to reap them
    }
    for (auto& slot : m_slots)
        if (slot.thread)
            slot.thread->request_stop();
    for (auto& slot : m_slots)
        slot.thread.reset(); // each joins with a bound
}

cpuplug::Result<void, std::string> CpuManager::check_limits() const
{
    auto const& limits = m_kvm.limits();
    if (m_slots.size() > limits.max_vcpus)
        return cpuplug::unexpected(fmt::format(
            "Number of SMP cpus requested ({}) exceeds the maximum cpus supported by KVM ({})", m_slots.size(),
            limits.max_vcpus));
    uint32_t highest = *std::max_element(m_apic_ids.begin(), m_apic_ids.end());
    if (highest >= limits.max_vcpu_id)
        return cpuplug::unexpected(fmt::format(
            "the topology needs APIC id {}, but KVM takes vCPU ids below {}: use a denser topology", highest,
            limits.max_vcpu_id));
    return {};
}

cpuplug::Result<std::unique_ptr<Vcpu>, std::string> CpuManager::make_vcpu(uint32_t index, VcpuState& power_on)
{
    uint32_t apic_id = m_apic_ids[index];
    // vCPU id = APIC id: KVM gives each vCPU's local APIC its id.
    auto vcpu = m_vm.create_vcpu(apic_id);
    if (!vcpu.has_value())
        return cpuplug::unexpected(fail(fmt::format("cannot create vCPU {}", index).c_str(), vcpu.error()));
    auto created = std::make_unique<Vcpu>(vcpu.release_value());
    // Every vCPU runs at the host's TSC rate: ask KVM once, not once per vCPU on the boot path.
    if (m_tsc_khz.load() == 0)
        m_tsc_khz.store(created->tsc_khz().value_or(0));
    CpuidParams params;
    params.topology = m_topology;
    params.status_port = status_port::DEFAULT_PORT;
    params.status_mmio = layout::STATUS_MMIO;
    params.tsc_khz = m_tsc_khz.load();
    params.apic_id = apic_id;
    params.tsc_deadline = m_tsc_deadline;
    if (auto set = created->set_cpuid(build_cpuid(m_supported_cpuid, params)); !set.has_value())
        return cpuplug::unexpected(fail("cannot set a vCPU's CPUID", set.error()));
    auto state = capture_vcpu_state(*created);
    if (!state.has_value())
        return cpuplug::unexpected(fail("cannot read a new vCPU's state", state.error()));
    power_on = state.release_value();
    return created;
}

std::unique_ptr<VcpuThread> CpuManager::make_thread(Vcpu& vcpu)
{
    return std::make_unique<VcpuThread>(vcpu, m_buses, static_cast<VcpuThreadEvents&>(*this));
}

cpuplug::Result<void, std::string> CpuManager::create_boot_vcpus()
{
    auto supported = m_kvm.supported_cpuid();
    if (!supported.has_value())
        return cpuplug::unexpected(fail("cannot read the host's CPUID", supported.error()));
    m_supported_cpuid = supported.release_value();
    // Linux prefers the TSC-deadline timer when CPUID offers it. Nested PVM accepts the MSR but never fires the
    // timer (docs/platform.md), so there the guest keeps the one-shot LAPIC timer.
    m_tsc_deadline = m_kvm.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0 && !supervisor_mode_emulated();

    // KVM_CREATE_VCPU holds the VM's lock only for its bookkeeping; most of its ~0.3 ms here is vCPU
    // set-up outside the lock, so a few workers create vCPUs side by side (one per host core).
    uint32_t count = m_boot_cpus;
    uint32_t workers = std::clamp<uint32_t>(std::thread::hardware_concurrency(), 1, 8);
    workers = std::min(workers, (count + 15) / 16); // small VMs are not worth a thread
    std::vector<std::string> errors(workers == 0 ? 1 : workers);
    auto create_range = [&](uint32_t worker, uint32_t stride) {
        for (uint32_t index = worker; index < count; index += stride) {
            auto vcpu = make_vcpu(index, m_slots[index].power_on);
            if (!vcpu.has_value()) {
                errors[worker] = vcpu.error();
                return;
            }
            m_slots[index].vcpu = vcpu.release_value();
        }
    };
    if (workers <= 1) {
        create_range(0, 1);
    } else {
        std::vector<std::thread> pool;
        for (uint32_t w = 0; w < workers; ++w)
            pool.emplace_back(create_range, w, workers);
        for (auto& thread : pool)
            thread.join();
    }
    for (auto const& error : errors)
        if (!error.empty())
            return cpuplug::unexpected(error);

    // Application processors stay as KVM made them: UNINITIALIZED until the guest's INIT/SIPI.
    std::lock_guard lock(m_mutex);
    for (uint32_t index = 0; index < count; ++index)
        m_slots[index].thread = make_thread(*m_slots[index].vcpu);
    return {};
}

cpuplug::Result<void, std::string> CpuManager::set_boot_entry(BootEntry const& entry)
{
    auto& bsp = *m_slots.front().vcpu;
    auto sregs = m_slots.front().power_on.sregs;
    set_boot_entry_sregs(sregs, entry);
    if (auto set = bsp.set_sregs(sregs); !set.has_value())
        return cpuplug::unexpected(fail("cannot set vCPU 0's segment registers", set.error()));
    if (auto set = bsp.set_regs(boot_entry_regs(entry)); !set.has_value())
        return cpuplug::unexpected(fail("cannot set vCPU 0's registers", set.error()));
    return {};
}

void CpuManager::start_application_processors()
{
    for (size_t i = 1; i < m_boot_cpus; ++i)
        m_slots[i].thread->start();
    for (size_t i = 1; i < m_boot_cpus; ++i)
        m_slots[i].thread->wait_started(std::chrono::seconds(5));
}

void CpuManager::start_boot_processor() { m_slots[0].thread->start(); }

bool CpuManager::stop_all()
{
    // The io thread still serves QMP and may read the slots; from here on it no longer reaps threads, so
    // these stay valid (the destructor frees them, and any a late plug adds).
    std::vector<VcpuThread*> threads;
    {
        std::lock_guard lock(m_mutex);
        m_tearing_down = true;
        for (auto& slot : m_slots)
            if (slot.thread)
                threads.push_back(slot.thread.get());
    }
    for (auto& thread : threads)
        thread->request_stop();
    bool all = true;
    for (auto& thread : threads) {
        if (thread->started() && !thread->join(VCPU_STOP_TIMEOUT)) {
            spdlog::critical("vcpu{} did not stop within {} ms", thread->vcpu_id(),
                std::chrono::duration_cast<std::chrono::milliseconds>(VCPU_STOP_TIMEOUT).count());
            all = false;
        }
    }
    return all;
}

void CpuManager::pause_all(std::function<void(std::optional<std::string>)> done)
{
    m_pause_done = std::move(done);
    m_pause_deadline = std::chrono::steady_clock::now() + VCPU_PAUSE_TIMEOUT;
    for (auto& slot : m_slots)
        if (slot.thread && slot.thread->started())
            slot.thread->request_pause();
    check_paused(false);
}

void CpuManager::check_paused(bool rekick)
{
    if (!m_pause_done)
        return;
    std::optional<uint32_t> waiting;
    for (auto& slot : m_slots) {
        auto* thread = slot.thread.get();
        // A thread that ended (the VM is going down, or its CPU was ejected) counts as stopped.
        if (!thread || !thread->started() || thread->paused() || thread->finished())
            continue;
        if (!waiting)
            waiting = thread->vcpu_id();
        if (rekick)
            thread->rekick(); // the first kick may have landed between its check and KVM_RUN
    }
    if (!waiting || std::chrono::steady_clock::now() >= m_pause_deadline) {
        m_pause_timer.cancel();
        auto done = std::move(m_pause_done);
        m_pause_done = nullptr;
        if (waiting) {
            resume_all(); // all or nothing: the ones that did stop run again
            done(fmt::format("vCPU {} did not stop within {} ms", *waiting,
                std::chrono::duration_cast<std::chrono::milliseconds>(VCPU_PAUSE_TIMEOUT).count()));
        } else {
            done(std::nullopt);
        }
        return;
    }
    m_pause_timer.expires_after(VCPU_REKICK_INTERVAL);
    m_pause_timer.async_wait([this](boost::system::error_code error) {
        if (!error)
            check_paused(true);
    });
}

void CpuManager::resume_all()
{
    for (auto& slot : m_slots)
        if (slot.thread && slot.thread->started())
            slot.thread->resume();
}

void CpuManager::read_registers(std::vector<uint32_t> const& indexes, RegistersDone done)
{
    if (m_inspection) {
        done(cpuplug::unexpected(std::string("another register read is in progress")));
        return;
    }
    for (auto index : indexes)
        if (index >= m_slots.size() || !m_slots[index].vcpu) {
            done(cpuplug::unexpected(fmt::format("CPU {} has no vCPU", index)));
            return;
        }
    Inspection inspection { indexes, {}, std::move(done), std::chrono::steady_clock::now() + VCPU_PAUSE_TIMEOUT };
    for (auto index : indexes) {
        auto* thread = m_slots[index].thread.get();
        // Only a thread running the guest is asked; one already asked to pause will be paused by whoever
        // asked, and resumed by them.
        if (!thread || !thread->started() || thread->finished() || thread->pause_requested())
            continue;
        if (std::find(inspection.paused.begin(), inspection.paused.end(), index) != inspection.paused.end())
            continue; // asked twice in one read
        thread->request_pause();
        inspection.paused.push_back(index);
    }
    m_inspection = std::move(inspection);
    check_inspection(false);
}

void CpuManager::check_inspection(bool rekick)
{
    if (!m_inspection)
        return;
    std::optional<uint32_t> waiting;
    for (auto index : m_inspection->indexes) {
        auto* thread = m_slots[index].thread.get();
        // KVM's vCPU ioctls wait for KVM_RUN to return: read only threads that are out of it for good or
        // waiting in their pause.
        if (!thread || !thread->started() || thread->paused() || thread->finished())
            continue;
        if (!waiting)
            waiting = index;
        if (rekick)
            thread->rekick();
    }
    if (waiting && std::chrono::steady_clock::now() < m_inspection->deadline) {
        m_inspection_timer.expires_after(VCPU_REKICK_INTERVAL);
        m_inspection_timer.async_wait([this](boost::system::error_code error) {
            if (!error)
                check_inspection(true);
        });
        return;
    }
    m_inspection_timer.cancel();
    auto inspection = std::move(*m_inspection);
    m_inspection.reset();
    cpuplug::Result<std::vector<qmp::CpuRegisters>, std::string> result = std::vector<qmp::CpuRegisters> {};
    if (waiting) {
        result = cpuplug::unexpected(fmt::format("vCPU {} did not stop within {} ms", *waiting,
            std::chrono::duration_cast<std::chrono::milliseconds>(VCPU_PAUSE_TIMEOUT).count()));
    } else {
        for (auto index : inspection.indexes) {
            // A slot keeps its vCPU once created (KVM cannot destroy one), so the check above still holds.
            auto read = read_cpu_registers(index, *m_slots[index].vcpu);
            if (!read.has_value()) {
                auto what = fmt::format("cannot read CPU {}'s registers", index);
                result = cpuplug::unexpected(fail(what.c_str(), read.error()));
                break;
            }
            result.value().push_back(read.release_value());
        }
    }
    for (auto index : inspection.paused)
        if (auto* thread = m_slots[index].thread.get(); thread && thread->started())
            thread->resume();
    inspection.done(std::move(result));
}

void CpuManager::vcpu_paused(uint32_t)
{
    boost::asio::post(m_io, [this] {
        check_paused(false);
        check_inspection(false);
    });
}

void CpuManager::vcpu_failed(uint32_t vcpu_id, std::string const& reason)
{
    m_hooks.request_exit({ EXIT_VMM_ERROR, fmt::format("vcpu{}: {}", vcpu_id, reason), false, "host-error" });
}

void CpuManager::vcpu_shutdown(uint32_t vcpu_id)
{
    m_hooks.request_exit({ EXIT_OK, fmt::format("vcpu{}: the guest shut down", vcpu_id), true, "guest-shutdown" });
}

std::vector<qmp::CpuSlot> CpuManager::slots() const
{
    std::vector<qmp::CpuSlot> list;
    for (uint32_t index = 0; index < m_slots.size(); ++index) {
        auto ids = ids_from_index(m_topology, index);
        auto const& slot = m_slots[index];
        qmp::CpuSlot cpu { index, ids.socket, ids.die, ids.core, ids.thread, m_apic_ids[index], std::nullopt,
            slot.device_id, 0, slot.op == Slot::Op::Plugging, slot.op == Slot::Op::Unplugging || slot.op == Slot::Op::Ejecting };
        if (slot.present()) {
            cpu.qom_path = slot.qom_path;
            cpu.thread_id = slot.thread ? slot.thread->tid() : 0;
        }
        list.push_back(std::move(cpu));
    }
    return list;
}

void CpuManager::forget_operations()
{
    for (auto& slot : m_slots) {
        if (slot.op == Slot::Op::Plugging || slot.op == Slot::Op::Unplugging)
            slot.op = Slot::Op::None;
        slot.guest_view = Slot::GuestView::Offline; // the new guest reports its CPUs again
        slot.held_ost.clear();
    }
    m_slots.front().guest_view = Slot::GuestView::Online;
    if (m_hotplug)
        m_hotplug->reset();
}

cpuplug::Result<void, std::string> CpuManager::restore_power_on(BootEntry const& entry)
{
    // Every vCPU is out of KVM_RUN, so their ioctls run here without waiting.
    for (size_t i = 0; i < m_slots.size(); ++i)
        if (m_slots[i].thread)
            if (auto restored = restore_vcpu_state(*m_slots[i].vcpu, m_slots[i].power_on); !restored.has_value())
                return cpuplug::unexpected(fail(fmt::format("cannot reset vCPU {}", i).c_str(), restored.error()));
    return set_boot_entry(entry);
}

} // namespace vmm
