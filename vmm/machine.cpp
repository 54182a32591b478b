// Machine: set-up order matters to KVM (x2APIC API and irqchip before vCPUs; CPUID before the first
// KVM_RUN), and every step's failure becomes one sentence for the user. After set-up the machine only
// routes: each part's callbacks go to the part they concern (wire_parts).
#include "machine.hpp"

#include "arch/x86_64/layout.hpp"
#include "boot/elf.hpp"
#include "boot/linux.hpp"
#include "boot/pvh.hpp"
#include "embedded_guest.hpp"

#include <acpi/tables.hpp>
#include <guest/abi/control.hpp>
#include <guest/abi/cpu_hotplug.hpp>
#include <guest/abi/platform.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
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

constexpr auto QMP_FLUSH_TIMEOUT = std::chrono::milliseconds(500);

std::string fail(char const* what, SysError const& error) { return fmt::format("{}: {}", what, error.message()); }

cpuplug::Result<std::vector<uint8_t>, std::string> read_file(char const* what, std::string const& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return cpuplug::unexpected(fmt::format("cannot read {} {}: {}", what, path, std::strerror(errno)));
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return bytes;
}

cpuplug::Result<KernelFiles, std::string> read_kernel_files(MachineConfig const& config)
{
    KernelFiles files;
    if (!config.kernel_path)
        return files;
    files.kernel = TRY(read_file("kernel", *config.kernel_path));
    bool other_pvh = false; // a PVH ELF that boots but is not Linux
    switch (detect_kernel_kind(files.kernel)) {
    case KernelKind::BzImage:
        files.is_linux = true;
        break;
    case KernelKind::Elf:
        // A file that does not parse is left to load_kernel, which says what is wrong with it.
        if (auto image = parse_pvh_elf(files.kernel); image.has_value()) {
            files.is_linux = image->linux_notes;
            other_pvh = !image->linux_notes;
        }
        break;
    case KernelKind::Unknown:
        break;
    }
    if (files.is_linux) {
        if (auto error = linux_topology_error(config.smp.topology))
            return cpuplug::unexpected(fmt::format("--cpus: {}", *error));
    }
    if (config.initrd_path) {
        if (other_pvh)
            return cpuplug::unexpected(fmt::format("--initrd: {} is not a Linux kernel (a bzImage, or a vmlinux with "
                                                   "Linux's ELF notes), and only Linux takes an initrd",
                *config.kernel_path));
        files.initrd = TRY(read_file("initrd", *config.initrd_path));
    }
    // The embedded guest's own options mean nothing to Linux (docs/cli.md); say so for the one that visibly
    // would not happen.
    if (files.is_linux && config.exit_after_boot)
        spdlog::warn("--exit-after-boot is ignored with a Linux kernel: pass e.g. panic=-1 and power off from the guest");
    return files;
}

} // namespace

Machine::Machine(MachineConfig const& config, Kvm kvm, GuestMemory memory, Vm vm, KernelFiles kernel)
    : m_config(config)
    , m_kvm(std::move(kvm))
    , m_memory(std::move(memory))
    , m_vm(std::move(vm))
    , m_kernel(std::move(kernel))
{
    wire_parts();
}

// Who calls whom. The threads each callback runs on, and the locks held then, are in
// docs/architecture.md ("Threads and locks").
void Machine::wire_parts()
{
    auto emit_event = [this](std::string const& name, std::optional<qmp::Json> data) { emit(name, std::move(data)); };

    RunControl::Hooks run;
    run.emit = emit_event;
    run.exiting = [this](ExitRequest const& request) {
        emit("SHUTDOWN", qmp::Json { { "guest", request.guest }, { "reason", request.cause } });
        // Commands waiting for the guest will get no answer now: fail them while their clients may still read.
        boost::asio::post(m_io, [this] { m_guest->fail_all(GuestCallError::VmEnding); });
    };
    run.quit_answered = [this] { m_guest->fail_all(GuestCallError::VmEnding); };
    run.pause = [this](auto done) { m_cpus->pause_all(std::move(done)); };
    run.resume = [this] { m_cpus->resume_all(); };
    run.reset = [this] { return reset_machine(); };
    run.power_button = [this] { m_pm->press_power_button(); };
    m_run = std::make_unique<RunControl>(m_io, std::move(run));

    CpuManager::Hooks cpus;
    cpus.emit = emit_event;
    cpus.request_exit = [this](ExitRequest request) { m_run->request_exit(std::move(request)); };
    cpus.vm_ending = [this] { return m_run->exit_requested(); };
    cpus.raise_gpe = [this] { m_pm->raise_gpe(cpu_hotplug::GPE_BIT); };
    m_cpus = std::make_unique<CpuManager>(m_config, m_kvm, m_vm, Buses { m_io_bus, m_mmio_bus }, m_io, std::move(cpus));

    std::vector<uint32_t> present(m_cpus->apic_ids().begin(), m_cpus->apic_ids().begin() + m_config.smp.cpus);
    m_boot = std::make_unique<BootObserver>(m_config, guest_cmdline(), std::move(present), [this] {
        if (m_serial)
            m_serial->flush();
    });

    GuestChannel::Listener guest;
    guest.milestone = [this](status_port::Milestone milestone, auto when) { m_boot->milestone(milestone, when); };
    guest.cpu = [this](status_port::CpuEvent event, uint32_t cpu, uint8_t step, auto when) {
        m_boot->cpu_event(event, cpu, step, when);
        m_cpus->guest_reported(event, cpu);
    };
    guest.exit = [this](uint8_t status) {
        if (status == 0)
            request_exit({ EXIT_OK, "the guest reported success", true, "guest-shutdown" });
        else
            request_exit({ EXIT_GUEST_FAILURE, fmt::format("the guest reported failure status {}", status), true,
                "guest-panic" });
    };
    guest.vm_ending = [this] { return m_run->exit_requested(); };
    guest.raise_gpe = [this] { m_pm->raise_gpe(control::GPE_BIT); };
    m_guest = std::make_unique<GuestChannel>(m_io, m_memory, std::move(guest));
}

Machine::~Machine()
{
    if (m_cpus)
        m_cpus->shut_down();
    m_io.stop();
    if (m_io_thread.joinable())
        m_io_thread.join();
    if (m_serial)
        m_serial->flush();
}

cpuplug::Result<std::unique_ptr<Machine>, std::string> Machine::create(MachineConfig const& config)
{
    auto kernel = TRY(read_kernel_files(config));
    auto kvm = TRY(Kvm::open());
    auto memory = GuestMemory::create(config.memory_bytes);
    if (!memory.has_value())
        return cpuplug::unexpected(fail("cannot reserve guest RAM", memory.error()));
    auto vm = kvm.create_vm();
    if (!vm.has_value())
        return cpuplug::unexpected(fail("cannot create the VM", vm.error()));

    auto& v = vm.value();
    for (auto step : { v.set_tss_address(layout::KVM_TSS), v.set_identity_map_address(layout::KVM_IDENTITY_MAP),
             v.enable_x2apic_api(), v.create_irqchip(), v.set_gsi_routing(pc_gsi_routing()), v.create_pit() })
        if (!step.has_value())
            return cpuplug::unexpected(fail("cannot set up the VM", step.error()));
    for (uint32_t slot = 0; slot < memory->regions().size(); ++slot) {
        auto const& region = memory->regions()[slot];
        auto added = v.set_user_memory_region(slot, region.guest_address, region.size,
            memory->host_base() + region.host_offset);
        if (!added.has_value())
            return cpuplug::unexpected(fail("cannot give the VM its RAM", added.error()));
    }

    std::unique_ptr<Machine> machine(
        new Machine(config, std::move(kvm), memory.release_value(), vm.release_value(), std::move(kernel)));
    machine->m_boot->vm_created(std::chrono::steady_clock::now());
    TRY(machine->m_cpus->check_limits());
    TRY(machine->set_up_devices());
    TRY(machine->build_acpi());
    TRY(machine->load_kernel());
    machine->m_boot->vcpus_creating(std::chrono::steady_clock::now());
    TRY(machine->m_cpus->create_boot_vcpus());
    TRY(machine->m_cpus->set_boot_entry(machine->m_boot_entry));
    machine->m_boot->vcpus_created(std::chrono::steady_clock::now());
    for (uint32_t chip = 0; chip < machine->m_irqchip_power_on.size(); ++chip) {
        auto state = machine->m_vm.get_irqchip(chip);
        if (!state.has_value())
            return cpuplug::unexpected(fail("cannot read the interrupt controllers", state.error()));
        machine->m_irqchip_power_on[chip] = state.value();
    }
    auto pit = machine->m_vm.get_pit();
    if (!pit.has_value())
        return cpuplug::unexpected(fail("cannot read the PIT", pit.error()));
    machine->m_pit_power_on = pit.value();
    TRY(machine->set_up_qmp());
    return machine;
}

cpuplug::Result<void, std::string> Machine::build_acpi()
{
    acpi::PlatformConfig platform;
    for (uint32_t i = 0; i < m_config.smp.maxcpus; ++i)
        platform.cpus.push_back({ i, m_cpus->apic_ids()[i], m_cpus->present(i) });
    platform.pm_base = AcpiPm::BASE;
    platform.cpu_hotplug = m_config.hotplug;
    platform.cpu_hotplug_base = cpu_hotplug::DEFAULT_BASE;
    platform.boot_cpu = 0;
    platform.sci_irq = ::platform::SCI_GSI;
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
    m_serial = std::make_shared<Serial16550>(std::move(sink), [this](bool level) {
        if (auto set = m_vm.irq_line(::platform::COM1_GSI, level); !set.has_value())
            spdlog::error("cannot set COM1's interrupt line: {}", set.error());
    });
    if (m_config.serial.kind == SerialConfig::Kind::Stdio)
        m_serial_input = SerialInput::open(m_io, STDIN_FILENO, m_serial);

    // A guest's reset request (0xCF9, the i8042's pulse): the writing vCPU stops at once, the io thread
    // does system_reset's work.
    auto guest_reset = [this] {
        VcpuThread::pause_calling_thread();
        m_run->guest_reset();
    };
    m_pci = std::make_shared<PciConfigPorts>(guest_reset);
    m_i8042 = std::make_shared<I8042>(guest_reset);
    m_cmos = std::make_shared<Cmos>();
    auto absent = std::make_shared<AbsentPorts>();

    AcpiPm::Callbacks pm_callbacks;
    pm_callbacks.sleep = [this](uint8_t sleep_type) {
        // \_S5 is {0, 0}: SLP_TYP 0 is soft-off, as on QEMU q35.
        if (sleep_type == 0)
            request_exit({ EXIT_OK, "the guest powered off", true, "guest-shutdown" });
        else
            VMM_GUEST_LOG(m_log_sleep_type, warn, "guest asked for sleep type {}; only soft-off (S5) is supported",
                sleep_type);
    };
    pm_callbacks.sci = [this](bool level) {
        if (auto raised = m_vm.irq_line(::platform::SCI_GSI, level); !raised.has_value())
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
             Registration { { status_port::DEFAULT_PORT, status_port::PORT_SIZE }, status, "status port" },
             Registration { { PciConfigPorts::BASE, PciConfigPorts::SIZE }, m_pci, "PCI configuration and reset ports" },
             Registration { { ::platform::I8042_DATA_PORT, 1 }, std::make_shared<PortWindow>(m_i8042, I8042::DATA), "i8042 data" },
             Registration { { ::platform::I8042_CMD_PORT, 1 }, std::make_shared<PortWindow>(m_i8042, I8042::COMMAND), "i8042 command" },
             Registration { { Cmos::BASE, Cmos::SIZE }, m_cmos, "CMOS" },
             Registration { { ::platform::POST_PORT, 1 }, absent, "POST port" },
             Registration { { ::platform::DMA_PAGE0_PORT, 1 }, absent, "DMA page register" },
             Registration { { ::platform::SUPERIO_PORT, 2 }, absent, "Super I/O configuration" },
             Registration { { ::platform::SUPERIO_ALT_PORT, 2 }, absent, "Super I/O configuration (alternate)" },
             Registration { { ::platform::COM2_PORT, Serial16550::REGISTER_COUNT }, absent, "COM2" },
             Registration { { ::platform::COM3_PORT, Serial16550::REGISTER_COUNT }, absent, "COM3" },
             Registration { { ::platform::COM4_PORT, Serial16550::REGISTER_COUNT }, absent, "COM4" } }) {
        if (auto inserted = m_io_bus.insert(r.range, r.device); !inserted.has_value())
            return cpuplug::unexpected(fmt::format("cannot register {}: {}", r.name, to_string(inserted.error())));
    }
    if (auto inserted = m_mmio_bus.insert({ layout::STATUS_MMIO, status_port::PORT_SIZE }, status); !inserted.has_value())
        return cpuplug::unexpected(fmt::format("cannot register the status registers: {}", to_string(inserted.error())));

    if (auto const& hotplug = m_cpus->hotplug_device()) {
        if (auto inserted = m_io_bus.insert({ cpu_hotplug::DEFAULT_BASE, cpu_hotplug::SIZE }, hotplug); !inserted.has_value())
            return cpuplug::unexpected(fmt::format("cannot register the CPU hotplug registers: {}", to_string(inserted.error())));
    }
    return {};
}

std::string Machine::guest_cmdline() const
{
    // Linux gets the user's line as it is: cpuplug's guest parameters would only be unknown options to it.
    if (m_kernel.is_linux)
        return m_config.cmdline;
    bool cpl3 = m_config.guest_cpl == GuestCpl::Cpl3
        || (m_config.guest_cpl == GuestCpl::Auto && supervisor_mode_emulated());
    std::string line = fmt::format("cpuhp.parallel={} cpu_init_udelay={} kernel.cpl={}",
        m_config.bringup == Bringup::Parallel ? 1 : 0, m_config.init_delay_us, cpl3 ? 3 : 0);
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
        file = m_kernel.kernel;
        name = *m_config.kernel_path;
    }
    auto cannot = [&](std::string const& why) {
        return cpuplug::unexpected(fmt::format("cannot boot {}: {}", name, why));
    };
    switch (detect_kernel_kind(file)) {
    case KernelKind::BzImage: {
        auto image = parse_bzimage(file);
        if (!image.has_value())
            return cannot(image.error().message);
        auto boot = load_bzimage(m_memory, file, image.value(), guest_cmdline(), m_kernel.initrd, m_rsdp);
        if (!boot.has_value())
            return cannot(boot.error());
        m_boot_entry = { BootEntry::Mode::Linux64, boot->entry, boot->zero_page, boot->gdt_base, boot->gdt_limit,
            boot->page_tables };
        return {};
    }
    case KernelKind::Elf: {
        auto image = parse_pvh_elf(file);
        if (!image.has_value())
            return cannot(image.error().message);
        auto boot = load_pvh_kernel(m_memory, file, image.value(), guest_cmdline(), m_rsdp, m_kernel.initrd);
        if (!boot.has_value())
            return cannot(boot.error());
        m_boot_entry = { BootEntry::Mode::Pvh32, boot->entry, boot->start_info, 0, 0, 0 };
        return {};
    }
    case KernelKind::Unknown:
        break;
    }
    return cannot("neither a Linux bzImage (\"HdrS\" setup header at 0x202) nor an ELF with a PVH entry note");
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

    start_guest();
    ExitRequest request = m_run->wait_for_exit();

    if (!m_cpus->stop_all())
        request.code = EXIT_VMM_ERROR;
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
        if (!m_run->wait_for_client())
            return false;
    }
    m_cpus->start_application_processors();
    m_boot->guest_started(std::chrono::steady_clock::now());
    m_cpus->start_boot_processor();
    // Run control was held back until now: a `stop` that came early pauses every vCPU, not some.
    boost::asio::post(m_io, [this] { m_run->guest_started(); });
    return true;
}

cpuplug::Result<void, std::string> Machine::reset_machine()
{
    // Every vCPU is out of KVM_RUN, so their ioctls run here without waiting.
    m_serial->reset();
    if (m_serial_input)
        m_serial_input->discard_pending();
    m_pm->reset();
    m_pci->power_on_reset();
    m_i8042->power_on_reset();
    m_cmos->power_on_reset();
    for (auto const& chip : m_irqchip_power_on)
        if (auto set = m_vm.set_irqchip(chip); !set.has_value())
            return cpuplug::unexpected(fail("cannot reset the interrupt controllers", set.error()));
    // KVM_SET_PIT2 reloads each channel's count and restarts its timer, as a power-on would.
    if (auto set = m_vm.set_pit(m_pit_power_on); !set.has_value())
        return cpuplug::unexpected(fail("cannot reset the PIT", set.error()));
    if (auto discarded = m_memory.discard_all(); !discarded.has_value())
        return cpuplug::unexpected(fail("cannot clear guest RAM", discarded.error()));
    // Hot-plugged CPUs stay plugged and are present at the next boot, as in QEMU; operations in flight
    // are dropped with the guest that was running them.
    m_cpus->forget_operations();
    m_guest->reset();
    TRY(build_acpi());
    TRY(load_kernel());
    return m_cpus->restore_power_on(m_boot_entry);
}

// --- QMP ------------------------------------------------------------------------------------------

cpuplug::Result<void, std::string> Machine::set_up_qmp()
{
    if (m_config.qmp.empty())
        return {};
    auto version = qmp::version_json(qmp::QemuVersion {}, fmt::format("cpuplug {}", CPUPLUG_VERSION));
    qmp::add_machine_commands(m_commands, *this, version);
    qmp::add_hotplug_commands(m_commands, *this);
    qmp::add_debug_commands(m_commands, *this);
    qmp::add_qom_commands(m_commands, *this);
    m_qmp = std::make_unique<qmp::Server>(m_io, m_commands, version, qmp::Server::Limits {});
    m_qmp->on_connect([this] { m_run->client_connected(); });
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

void Machine::plug_cpus(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id, qmp::Reply reply)
{
    // Through run control, so a plug never interleaves with stop, cont or system_reset. The reply goes out
    // with no lock held: it runs the client's next request, which may take any of them.
    m_run->queue([this, indexes, id, reply = std::move(reply)](RunControl::Done done) {
        auto plugged = m_cpus->plug(indexes, id, m_run->state() != qmp::RunState::Running);
        if (plugged.has_value())
            reply(qmp::Json::object());
        else
            reply(cpuplug::unexpected(qmp::generic_error(plugged.error())));
        done();
    });
}

void Machine::unplug_cpus(std::vector<uint32_t> const& indexes, qmp::Reply reply)
{
    m_run->queue([this, indexes, reply = std::move(reply)](RunControl::Done done) {
        auto requested = m_cpus->unplug(indexes);
        if (requested.has_value())
            reply(qmp::Json::object());
        else
            reply(cpuplug::unexpected(qmp::generic_error(requested.error())));
        done();
    });
}

void Machine::read_cpu_registers(std::vector<uint32_t> const& indexes, RegistersReply reply)
{
    // Through run control, so that no `cont` resumes, and no reset or unplug changes, the vCPUs while they
    // are read.
    m_run->queue([this, indexes, reply = std::move(reply)](RunControl::Done done) {
        m_cpus->read_registers(indexes, [reply, done](cpuplug::Result<std::vector<qmp::CpuRegisters>, std::string> read) {
            if (read.has_value())
                reply(read.release_value());
            else
                reply(cpuplug::unexpected(qmp::generic_error(read.error())));
            done();
        });
    });
}

} // namespace vmm
