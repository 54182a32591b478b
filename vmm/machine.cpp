// Machine: set-up order matters to KVM (x2APIC API and irqchip before vCPUs; CPUID before the first
// KVM_RUN), and every step's failure becomes one sentence for the user.
#include "machine.hpp"

#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/regs.hpp"
#include "arch/x86_64/topology.hpp"
#include "boot/elf.hpp"
#include "boot/pvh.hpp"
#include "embedded_guest.hpp"

#include <acpi/tables.hpp>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace vmm {

namespace {

constexpr uint32_t SCI_GSI = 9;
constexpr auto VCPU_STOP_TIMEOUT = std::chrono::seconds(1);
constexpr auto VCPU_PAUSE_TIMEOUT = std::chrono::seconds(1);
constexpr auto VCPU_REKICK_INTERVAL = std::chrono::milliseconds(10);
constexpr auto QMP_FLUSH_TIMEOUT = std::chrono::milliseconds(500);

std::string fail(char const* what, SysError const& error) { return fmt::format("{}: {}", what, error.message()); }

cpuplug::Result<std::vector<uint8_t>, std::string> read_file(std::string const& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return cpuplug::unexpected(fmt::format("cannot read kernel {}: {}", path, std::strerror(errno)));
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return bytes;
}

} // namespace

Machine::Machine(MachineConfig const& config, Kvm kvm, GuestMemory memory, Vm vm)
    : m_config(config)
    , m_kvm(std::move(kvm))
    , m_memory(std::move(memory))
    , m_vm(std::move(vm))
{
    for (uint32_t i = 0; i < config.smp.maxcpus; ++i)
        m_apic_ids.push_back(apic_id_from_index(config.smp.topology, i));
    m_slots.resize(config.smp.maxcpus);
    // Boot CPUs are created before any device, so QEMU names them device[0], device[1]...
    for (uint32_t i = 0; i < config.smp.cpus; ++i)
        m_slots[i].qom_path = fmt::format("/machine/unattached/device[{}]", i);
    m_slots.front().guest_view = Slot::GuestView::Online; // online before the guest's state machine starts
    GuestChannel::Listener listener;
    listener.milestone = [this](status_port::Milestone milestone, auto when) { m_boot->milestone(milestone, when); };
    listener.cpu = [this](status_port::CpuEvent event, uint32_t cpu, uint8_t step, auto when) { on_cpu_event(event, cpu, step, when); };
    listener.exit = [this](uint8_t status) {
        if (status == 0)
            request_exit({ EXIT_OK, "the guest reported success", true, "guest-shutdown" });
        else
            request_exit({ EXIT_GUEST_FAILURE, fmt::format("the guest reported failure status {}", status), true,
                "guest-panic" });
    };
    listener.vm_ending = [this] { return exit_requested(); };
    listener.raise_gpe = [this] { m_pm->raise_gpe(control::GPE_BIT); };
    m_guest = std::make_unique<GuestChannel>(m_io, m_memory, std::move(listener));
    std::vector<uint32_t> present(m_apic_ids.begin(), m_apic_ids.begin() + config.smp.cpus);
    m_boot = std::make_unique<BootObserver>(config, guest_cmdline(), std::move(present), [this] {
        if (m_serial)
            m_serial->flush();
    });
}

Machine::~Machine()
{
    {
        std::lock_guard lock(m_slots_mutex);
        m_tearing_down = true; // stopped threads no longer ask the io thread to reap them
    }
    for (auto& slot : m_slots)
        if (slot.thread)
            slot.thread->request_stop();
    for (auto& slot : m_slots)
        slot.thread.reset(); // each joins with a bound
    m_io.stop();
    if (m_io_thread.joinable())
        m_io_thread.join();
    if (m_serial)
        m_serial->flush();
}

cpuplug::Result<std::unique_ptr<Machine>, std::string> Machine::create(MachineConfig const& config)
{
    auto kvm = TRY(Kvm::open());
    auto memory = GuestMemory::create(config.memory_bytes);
    if (!memory.has_value())
        return cpuplug::unexpected(fail("cannot reserve guest RAM", memory.error()));
    auto vm = kvm.create_vm();
    if (!vm.has_value())
        return cpuplug::unexpected(fail("cannot create the VM", vm.error()));

    auto& v = vm.value();
    for (auto step : { v.set_tss_address(layout::KVM_TSS), v.set_identity_map_address(layout::KVM_IDENTITY_MAP),
             v.enable_x2apic_api(), v.create_irqchip() })
        if (!step.has_value())
            return cpuplug::unexpected(fail("cannot set up the VM", step.error()));
    for (uint32_t slot = 0; slot < memory->regions().size(); ++slot) {
        auto const& region = memory->regions()[slot];
        auto added = v.set_user_memory_region(slot, region.guest_address, region.size,
            memory->host_base() + region.host_offset);
        if (!added.has_value())
            return cpuplug::unexpected(fail("cannot give the VM its RAM", added.error()));
    }

    std::unique_ptr<Machine> machine(new Machine(config, std::move(kvm), memory.release_value(), vm.release_value()));
    machine->m_boot->vm_created(std::chrono::steady_clock::now());
    TRY(machine->check_limits());
    TRY(machine->set_up_devices());
    TRY(machine->build_acpi());
    TRY(machine->load_kernel());
    machine->m_boot->vcpus_creating(std::chrono::steady_clock::now());
    TRY(machine->create_vcpus());
    machine->m_boot->vcpus_created(std::chrono::steady_clock::now());
    for (uint32_t chip = 0; chip < machine->m_irqchip_power_on.size(); ++chip) {
        auto state = machine->m_vm.get_irqchip(chip);
        if (!state.has_value())
            return cpuplug::unexpected(fail("cannot read the interrupt controllers", state.error()));
        machine->m_irqchip_power_on[chip] = state.value();
    }
    TRY(machine->set_up_qmp());
    return machine;
}

cpuplug::Result<void, std::string> Machine::check_limits() const
{
    auto const& limits = m_kvm.limits();
    auto const& smp = m_config.smp;
    if (smp.maxcpus > limits.max_vcpus)
        return cpuplug::unexpected(fmt::format(
            "Number of SMP cpus requested ({}) exceeds the maximum cpus supported by KVM ({})", smp.maxcpus,
            limits.max_vcpus));
    uint32_t highest = *std::max_element(m_apic_ids.begin(), m_apic_ids.end());
    if (highest >= limits.max_vcpu_id)
        return cpuplug::unexpected(fmt::format(
            "the topology needs APIC id {}, but KVM takes vCPU ids below {}: use a denser topology", highest,
            limits.max_vcpu_id));
    return {};
}

cpuplug::Result<void, std::string> Machine::build_acpi()
{
    acpi::PlatformConfig platform;
    for (uint32_t i = 0; i < m_config.smp.maxcpus; ++i)
        platform.cpus.push_back({ i, m_apic_ids[i], m_slots[i].present() });
    platform.pm_base = AcpiPm::BASE;
    platform.cpu_hotplug = m_config.hotplug;
    platform.cpu_hotplug_base = cpu_hotplug::DEFAULT_BASE;
    platform.boot_cpu = 0;
    platform.sci_irq = SCI_GSI;
    auto tables = acpi::build_tables(platform, layout::ACPI_TABLES_START,
        layout::ACPI_TABLES_END - layout::ACPI_TABLES_START, layout::RSDP);
    if (!tables.has_value())
        return cpuplug::unexpected(fmt::format("cannot build the ACPI tables: {}", tables.error()));
    MUST(m_memory.write(tables->blob_address, tables->blob));
    MUST(m_memory.write(tables->rsdp_address, tables->rsdp));
    m_rsdp = tables->rsdp_address;
    return {};
}

cpuplug::Result<void, std::string> Machine::set_up_devices()
{
    std::unique_ptr<SerialSink> sink;
    switch (m_config.serial.kind) {
    case SerialConfig::Kind::Stdio:
        sink = make_fd_sink(STDOUT_FILENO, false);
        break;
    case SerialConfig::Kind::None:
        sink = make_null_sink();
        break;
    case SerialConfig::Kind::File: {
        int fd = ::open(m_config.serial.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return cpuplug::unexpected(fmt::format("cannot open serial output file {}: {}", m_config.serial.path,
                std::strerror(errno)));
        sink = make_fd_sink(fd, true);
        break;
    }
    }
    m_serial = std::make_shared<Serial16550>(std::move(sink));

    AcpiPm::Callbacks pm_callbacks;
    pm_callbacks.sleep = [this](uint8_t sleep_type) {
        // \_S5 is {0, 0}: SLP_TYP 0 is soft-off, as on QEMU q35.
        if (sleep_type == 0)
            request_exit({ EXIT_OK, "the guest powered off", true, "guest-shutdown" });
        else
            VMM_GUEST_LOG(m_guest_log.sleep_type, warn, "guest asked for sleep type {}; only soft-off (S5) is supported",
                sleep_type);
    };
    pm_callbacks.sci = [this](bool level) {
        if (auto raised = m_vm.irq_line(SCI_GSI, level); !raised.has_value())
            spdlog::error("cannot set the SCI line: {}", raised.error());
    };
    m_pm = std::make_shared<AcpiPm>(std::move(pm_callbacks));
    auto const& status = m_guest->status_port();

    struct Registration {
        IoRange range;
        std::shared_ptr<IoDevice> device;
        char const* name;
    };
    for (auto const& r : { Registration { { Serial16550::COM1_BASE, Serial16550::REGISTER_COUNT }, m_serial, "COM1" },
             Registration { { AcpiPm::BASE, AcpiPm::SIZE }, m_pm, "ACPI PM" },
             Registration { { status_port::DEFAULT_PORT, status_port::PORT_SIZE }, status, "status port" } }) {
        if (auto inserted = m_io_bus.insert(r.range, r.device); !inserted.has_value())
            return cpuplug::unexpected(fmt::format("cannot register {}: {}", r.name, to_string(inserted.error())));
    }
    if (auto inserted = m_mmio_bus.insert({ layout::STATUS_MMIO, status_port::PORT_SIZE }, status); !inserted.has_value())
        return cpuplug::unexpected(fmt::format("cannot register the status registers: {}", to_string(inserted.error())));

    if (m_config.hotplug) {
        CpuHotplugDevice::Callbacks callbacks;
        // Device callbacks run on the vCPU thread that wrote the register; the slots belong to the io thread.
        callbacks.ejected = [this](uint32_t index) { boost::asio::post(m_io, [this, index] { on_ejected(index); }); };
        callbacks.ost = [this](uint32_t index, uint32_t event, uint32_t ost_status) {
            boost::asio::post(m_io, [this, index, event, ost_status] { on_ost(index, event, ost_status); });
        };
        callbacks.raise_gpe = [this] { m_pm->raise_gpe(cpu_hotplug::GPE_BIT); };
        std::vector<uint64_t> arch_ids(m_apic_ids.begin(), m_apic_ids.end());
        m_cpu_hotplug = std::make_shared<CpuHotplugDevice>(std::move(arch_ids), 0, std::move(callbacks));
        for (uint32_t i = 0; i < m_config.smp.cpus; ++i)
            m_cpu_hotplug->set_present(i, true);
        if (auto inserted = m_io_bus.insert({ cpu_hotplug::DEFAULT_BASE, cpu_hotplug::SIZE }, m_cpu_hotplug);
            !inserted.has_value())
            return cpuplug::unexpected(fmt::format("cannot register the CPU hotplug registers: {}", to_string(inserted.error())));
    }
    return {};
}

std::string Machine::guest_cmdline() const
{
    std::string line = fmt::format("cpuhp.parallel={} cpu_init_udelay={}",
        m_config.bringup == Bringup::Parallel ? 1 : 0, m_config.init_delay_us);
    if (m_config.exit_after_boot)
        line += " exit_after_boot";
    if (!m_config.cmdline.empty())
        line += " " + m_config.cmdline; // last, so a user's setting overrides ours
    return line;
}

cpuplug::Result<void, std::string> Machine::load_kernel()
{
    std::span<uint8_t const> file = embedded_guest_image();
    std::string name = "the embedded guest";
    if (m_config.kernel_path) {
        // Read once: system_reset boots the same kernel even if the file changed or went away since.
        if (m_kernel_file.empty())
            m_kernel_file = TRY(read_file(*m_config.kernel_path));
        file = m_kernel_file;
        name = *m_config.kernel_path;
    }
    auto image = parse_pvh_elf(file);
    if (!image.has_value())
        return cpuplug::unexpected(fmt::format("cannot boot {}: {}", name, image.error().message));
    auto boot = load_pvh_kernel(m_memory, file, image.value(), guest_cmdline(), m_rsdp);
    if (!boot.has_value())
        return cpuplug::unexpected(fmt::format("cannot boot {}: {}", name, boot.error()));
    m_boot_entry = boot->entry;
    m_boot_start_info = boot->start_info;
    return {};
}

cpuplug::Result<std::unique_ptr<Vcpu>, std::string> Machine::make_vcpu(uint32_t index, VcpuState& power_on)
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
    params.topology = m_config.smp.topology;
    params.status_port = status_port::DEFAULT_PORT;
    params.status_mmio = layout::STATUS_MMIO;
    params.tsc_khz = m_tsc_khz.load();
    params.apic_id = apic_id;
    if (auto set = created->set_cpuid(build_cpuid(m_supported_cpuid, params)); !set.has_value())
        return cpuplug::unexpected(fail("cannot set a vCPU's CPUID", set.error()));
    auto state = capture_vcpu_state(*created);
    if (!state.has_value())
        return cpuplug::unexpected(fail("cannot read a new vCPU's state", state.error()));
    power_on = state.release_value();
    return created;
}

std::unique_ptr<VcpuThread> Machine::make_thread(Vcpu& vcpu)
{
    return std::make_unique<VcpuThread>(vcpu, Buses { m_io_bus, m_mmio_bus }, static_cast<VcpuThreadEvents&>(*this));
}

cpuplug::Result<void, std::string> Machine::create_vcpus()
{
    auto supported = m_kvm.supported_cpuid();
    if (!supported.has_value())
        return cpuplug::unexpected(fail("cannot read the host's CPUID", supported.error()));
    m_supported_cpuid = supported.release_value();

    // KVM_CREATE_VCPU holds the VM's lock only for its bookkeeping; most of its ~0.3 ms here is vCPU
    // set-up outside the lock, so a few workers create vCPUs side by side (one per host core).
    uint32_t count = m_config.smp.cpus;
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
    for (uint32_t index = 0; index < count; ++index)
        m_slots[index].thread = make_thread(*m_slots[index].vcpu);

    return set_bsp_entry(*m_slots.front().vcpu, m_slots.front().power_on);
}

cpuplug::Result<void, std::string> Machine::set_bsp_entry(Vcpu& bsp, VcpuState const& power_on)
{
    auto sregs = power_on.sregs;
    set_pvh_entry_sregs(sregs);
    if (auto set = bsp.set_sregs(sregs); !set.has_value())
        return cpuplug::unexpected(fail("cannot set vCPU 0's segment registers", set.error()));
    if (auto set = bsp.set_regs(pvh_entry_regs(m_boot_entry, m_boot_start_info)); !set.has_value())
        return cpuplug::unexpected(fail("cannot set vCPU 0's registers", set.error()));
    return {};
}

int Machine::run()
{
    auto work = boost::asio::make_work_guard(m_io);
    m_io_thread = std::thread([this] {
        pthread_setname_np(pthread_self(), "vmm-io");
        for (;;) {
            try {
                m_io.run();
                return;
            } catch (std::exception const& error) {
                // A handler that throws is a bug; stop the VM in order rather than lose the event loop.
                request_exit({ EXIT_VMM_ERROR, fmt::format("event loop: {}", error.what()) });
            }
        }
    });

    if (start_guest()) {
        std::unique_lock lock(m_mutex);
        m_exit_cv.wait(lock, [this] { return m_exit.has_value(); });
    }
    ExitRequest request;
    {
        std::lock_guard lock(m_mutex);
        request = *m_exit;
    }

    // The io thread still serves QMP and may read the slots; from here on it no longer reaps threads, so
    // these stay valid (the destructor frees them, and any a late plug adds).
    std::vector<VcpuThread*> threads;
    {
        std::lock_guard lock(m_slots_mutex);
        m_tearing_down = true;
        for (auto& slot : m_slots)
            if (slot.thread)
                threads.push_back(slot.thread.get());
    }
    for (auto& thread : threads)
        thread->request_stop();
    for (auto& thread : threads) {
        if (thread->started() && !thread->join(VCPU_STOP_TIMEOUT)) {
            spdlog::critical("vcpu{} did not stop within {} ms", thread->vcpu_id(),
                std::chrono::duration_cast<std::chrono::milliseconds>(VCPU_STOP_TIMEOUT).count());
            request.code = EXIT_VMM_ERROR;
        }
    }
    if (m_qmp)
        m_qmp->shutdown(QMP_FLUSH_TIMEOUT); // SHUTDOWN and the last replies reach the clients
    work.reset();
    m_io.stop();
    m_io_thread.join();
    m_serial->flush();

    if (request.code == EXIT_OK)
        spdlog::info("{}", request.reason);
    else
        spdlog::error("{}", request.reason);
    m_boot->vm_ended(request.reason);
    return request.code;
}

bool Machine::start_guest()
{
    bool wait = std::any_of(m_config.qmp.begin(), m_config.qmp.end(), [](auto const& e) { return e.wait; });
    if (wait) {
        spdlog::info("waiting for a QMP client before starting the guest (wait=on)");
        std::unique_lock lock(m_mutex);
        m_exit_cv.wait(lock, [this] { return m_qmp_client_seen || m_exit.has_value(); });
        if (m_exit)
            return false;
    }

    // Application processors first, each in its KVM_RUN loop before the boot vCPU runs. (KVM queues an
    // INIT/SIPI for a vCPU that is not running yet, but one that does not exist would lose it.)
    for (size_t i = 1; i < m_config.smp.cpus; ++i)
        m_slots[i].thread->start();
    for (size_t i = 1; i < m_config.smp.cpus; ++i)
        m_slots[i].thread->wait_started(std::chrono::seconds(5));
    m_boot->guest_started(std::chrono::steady_clock::now());
    m_slots[0].thread->start();
    // Run control was held back until now: a `stop` that came early pauses every vCPU, not some.
    boost::asio::post(m_io, [this] {
        m_run_state = qmp::RunState::Running;
        control_done();
    });
    return true;
}

void Machine::request_exit(ExitRequest request)
{
    {
        std::lock_guard lock(m_mutex);
        if (m_exit)
            return;
        m_exit = request;
        m_exit_cv.notify_all();
    }
    emit("SHUTDOWN", qmp::Json { { "guest", request.guest }, { "reason", request.cause } });
    // Commands waiting for the guest will get no answer now: fail them while their clients may still read.
    boost::asio::post(m_io, [this] { m_guest->fail_all("the VM is shutting down"); });
}

bool Machine::exit_requested() const
{
    std::lock_guard lock(m_mutex);
    return m_exit.has_value();
}

BootTimeline Machine::timeline() const { return m_boot->timeline(); }

void Machine::on_cpu_event(status_port::CpuEvent event, uint32_t cpu, uint8_t step, std::chrono::steady_clock::time_point when)
{
    using status_port::CpuEvent;
    m_boot->cpu_event(event, cpu, step, when);
    if (event == CpuEvent::Online || event == CpuEvent::Offline)
        boost::asio::post(m_io, [this, cpu, online = event == CpuEvent::Online] { on_cpu_state(cpu, online); });
    else if (event == CpuEvent::Stopped)
        boost::asio::post(m_io, [this, cpu] {
            if (cpu < m_slots.size() && m_slots[cpu].present())
                m_slots[cpu].guest_view = Slot::GuestView::Elsewhere;
        });
}

void Machine::vcpu_failed(uint32_t vcpu_id, std::string const& reason)
{
    request_exit({ EXIT_VMM_ERROR, fmt::format("vcpu{}: {}", vcpu_id, reason), false, "host-error" });
}

void Machine::vcpu_shutdown(uint32_t vcpu_id)
{
    request_exit({ EXIT_OK, fmt::format("vcpu{}: the guest shut down", vcpu_id), true, "guest-shutdown" });
}

// --- QMP ------------------------------------------------------------------------------------------

cpuplug::Result<void, std::string> Machine::set_up_qmp()
{
    if (m_config.qmp.empty())
        return {};
    auto version = qmp::version_json(qmp::QemuVersion {}, fmt::format("cpuplug {}", CPUPLUG_VERSION));
    qmp::add_machine_commands(m_commands, *this, version);
    qmp::add_hotplug_commands(m_commands, *this);
    m_qmp = std::make_unique<qmp::Server>(m_io, m_commands, version, qmp::Server::Limits {});
    m_qmp->on_connect([this] {
        std::lock_guard lock(m_mutex);
        m_qmp_client_seen = true;
        m_exit_cv.notify_all();
    });
    for (auto const& endpoint : m_config.qmp)
        if (auto listening = m_qmp->listen(endpoint); !listening.has_value())
            return cpuplug::unexpected(fmt::format("--qmp {}: {}", endpoint.text, listening.error()));
    return {};
}

void Machine::emit(std::string const& name, std::optional<qmp::Json> data)
{
    if (m_qmp)
        m_qmp->broadcast(qmp::make_event(name, data));
}

std::vector<qmp::CpuSlot> Machine::cpu_slots() const
{
    std::vector<qmp::CpuSlot> slots;
    auto const& topology = m_config.smp.topology;
    for (uint32_t index = 0; index < m_config.smp.maxcpus; ++index) {
        auto ids = ids_from_index(topology, index);
        auto const& slot = m_slots[index];
        qmp::CpuSlot cpu { index, ids.socket, ids.die, ids.core, ids.thread, m_apic_ids[index], std::nullopt,
            slot.device_id, 0, slot.op == Slot::Op::Plugging, slot.op == Slot::Op::Unplugging || slot.op == Slot::Op::Ejecting };
        if (slot.present()) {
            cpu.qom_path = slot.qom_path;
            cpu.thread_id = slot.thread ? slot.thread->tid() : 0;
        }
        slots.push_back(std::move(cpu));
    }
    return slots;
}

CpuTopology Machine::topology() const { return m_config.smp.topology; }

void Machine::control(std::function<void(Done)> operation)
{
    m_control_queue.push_back(std::move(operation));
    if (!m_control_busy)
        control_done();
}

void Machine::control_done()
{
    if (m_control_queue.empty()) {
        m_control_busy = false;
        return;
    }
    m_control_busy = true;
    auto operation = std::move(m_control_queue.front());
    m_control_queue.pop_front();
    // Posted, so a chain of synchronous operations unwinds instead of nesting.
    operation([this] { boost::asio::post(m_io, [this] { control_done(); }); });
}

void Machine::pause_vcpus(std::function<void(std::optional<std::string>)> done)
{
    m_pause_done = std::move(done);
    m_pause_deadline = std::chrono::steady_clock::now() + VCPU_PAUSE_TIMEOUT;
    for (auto& slot : m_slots)
        if (slot.thread && slot.thread->started())
            slot.thread->request_pause();
    check_paused(false);
}

void Machine::check_paused(bool rekick)
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
            resume_vcpus(); // all or nothing: the ones that did stop run again
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

void Machine::resume_vcpus()
{
    for (auto& slot : m_slots)
        if (slot.thread && slot.thread->started())
            slot.thread->resume();
}

void Machine::vcpu_paused(uint32_t)
{
    boost::asio::post(m_io, [this] { check_paused(false); });
}

void Machine::stop(qmp::Reply reply)
{
    control([this, reply = std::move(reply)](Done done) {
        if (m_run_state != qmp::RunState::Running) {
            reply(qmp::Json::object()); // already stopped: QEMU answers {} and sends no event
            done();
            return;
        }
        pause_vcpus([this, reply, done](std::optional<std::string> error) {
            if (error) {
                reply(cpuplug::unexpected(qmp::generic_error(*error)));
            } else {
                m_run_state = qmp::RunState::Paused;
                emit("STOP");
                reply(qmp::Json::object());
            }
            done();
        });
    });
}

void Machine::cont(qmp::Reply reply)
{
    control([this, reply = std::move(reply)](Done done) {
        if (m_run_state != qmp::RunState::Running) {
            resume_vcpus();
            m_run_state = qmp::RunState::Running;
            emit("RESUME");
        }
        reply(qmp::Json::object());
        done();
    });
}

void Machine::system_reset(qmp::Reply reply)
{
    control([this, reply = std::move(reply)](Done done) {
        bool was_running = m_run_state == qmp::RunState::Running;
        auto finish = [this, reply, done, was_running] {
            if (auto reset = reset_machine(); !reset.has_value()) {
                // Half-reset vCPUs cannot run on: end the VM and say why.
                reply(cpuplug::unexpected(qmp::generic_error(reset.error())));
                request_exit({ EXIT_VMM_ERROR, fmt::format("system_reset failed: {}", reset.error()) });
                done();
                return;
            }
            emit("RESET", qmp::Json { { "guest", false }, { "reason", "host-qmp-system-reset" } });
            if (was_running)
                resume_vcpus();
            else
                m_run_state = qmp::RunState::Prelaunch; // as QEMU: reset while stopped waits for `cont`
            reply(qmp::Json::object());
            done();
        };
        if (!was_running) {
            finish();
            return;
        }
        pause_vcpus([reply, done, finish](std::optional<std::string> error) {
            if (error) {
                reply(cpuplug::unexpected(qmp::generic_error(*error)));
                done();
                return;
            }
            finish();
        });
    });
}

cpuplug::Result<void, std::string> Machine::reset_machine()
{
    // Every vCPU is out of KVM_RUN, so their ioctls run here without waiting.
    m_serial->reset();
    m_pm->reset();
    for (auto const& chip : m_irqchip_power_on)
        if (auto set = m_vm.set_irqchip(chip); !set.has_value())
            return cpuplug::unexpected(fail("cannot reset the interrupt controllers", set.error()));
    if (auto discarded = m_memory.discard_all(); !discarded.has_value())
        return cpuplug::unexpected(fail("cannot clear guest RAM", discarded.error()));
    // Hot-plugged CPUs stay plugged and are present at the next boot, as in QEMU; operations in flight
    // are dropped with the guest that was running them.
    for (auto& slot : m_slots) {
        if (slot.op == Slot::Op::Plugging || slot.op == Slot::Op::Unplugging)
            slot.op = Slot::Op::None;
        slot.guest_view = Slot::GuestView::Offline; // the new guest reports its CPUs again
        slot.held_ost.clear();
    }
    m_slots.front().guest_view = Slot::GuestView::Online;
    if (m_cpu_hotplug)
        m_cpu_hotplug->reset();
    m_guest->reset();
    TRY(build_acpi());
    TRY(load_kernel());
    for (size_t i = 0; i < m_slots.size(); ++i)
        if (m_slots[i].thread)
            if (auto restored = restore_vcpu_state(*m_slots[i].vcpu, m_slots[i].power_on); !restored.has_value())
                return cpuplug::unexpected(fail(fmt::format("cannot reset vCPU {}", i).c_str(), restored.error()));
    return set_bsp_entry(*m_slots.front().vcpu, m_slots.front().power_on);
}

void Machine::system_powerdown(qmp::Reply reply)
{
    // The button is pressed even while paused; the guest sees it when it runs again.
    emit("POWERDOWN");
    m_pm->press_power_button();
    reply(qmp::Json::object());
}

void Machine::quit(qmp::Reply reply)
{
    // SHUTDOWN goes out before the reply, as in QEMU; the process then ends.
    request_exit({ EXIT_OK, "quit requested over QMP", false, "host-qmp-quit" });
    reply(qmp::Json::object());
    // Commands still waiting for the guest are answered now, while their clients can still read it.
    m_guest->fail_all("the VM is shutting down");
}

} // namespace vmm
