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
#include <guest/lib/cmdline.hpp>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
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

std::string fail(char const* what, SysError const& error) { return fmt::format("{}: {}", what, error.message()); }

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b)
{
    return std::chrono::duration<double, std::milli>(b - a).count();
}

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
    m_timeline.process_start = config.process_start;
    for (uint32_t i = 0; i < config.smp.maxcpus; ++i)
        m_apic_ids.push_back(apic_id_from_index(config.smp.topology, i));
    // What the guest will really use: the last occurrence on its command line wins, as in Linux.
    std::string const cmdline = guest_cmdline();
    guest::Cmdline line(guest::StringView(cmdline.data(), cmdline.size()));
    BootReport::Settings settings;
    settings.vcpus = config.smp.cpus;
    settings.parallel = line.get_bool("cpuhp.parallel", true);
    settings.init_delay_us = line.get_u64("cpu_init_udelay", 10000);
    std::vector<uint32_t> present(m_apic_ids.begin(), m_apic_ids.begin() + config.smp.cpus);
    m_report = std::make_unique<BootReport>(config.process_start, std::move(present), settings);
}

Machine::~Machine()
{
    for (auto& thread : m_threads)
        thread->request_stop();
    m_threads.clear(); // each joins with a bound
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
    machine->m_timeline.vm_created = std::chrono::steady_clock::now();
    TRY(machine->check_limits());
    TRY(machine->set_up_devices());
    TRY(machine->build_acpi());
    TRY(machine->load_kernel());
    machine->m_report->vcpus_creating(std::chrono::steady_clock::now());
    TRY(machine->create_vcpus());
    machine->m_timeline.vcpus_created = std::chrono::steady_clock::now();
    machine->m_report->vcpus_created(machine->m_timeline.vcpus_created);
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
        platform.cpus.push_back({ i, m_apic_ids[i], i < m_config.smp.cpus });
    platform.pm_base = AcpiPm::BASE;
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
            request_exit({ EXIT_OK, "the guest powered off" });
        else
            spdlog::warn("guest asked for sleep type {}; only soft-off (S5) is supported", sleep_type);
    };
    pm_callbacks.sci = [this](bool level) {
        if (auto raised = m_vm.irq_line(SCI_GSI, level); !raised.has_value())
            spdlog::error("cannot set the SCI line: {}", raised.error());
    };
    m_pm = std::make_shared<AcpiPm>(std::move(pm_callbacks));
    m_status = std::make_shared<StatusPort>([this](uint32_t event, auto when) { on_status_event(event, when); });

    struct Registration {
        IoRange range;
        std::shared_ptr<IoDevice> device;
        char const* name;
    };
    for (auto const& r : { Registration { { Serial16550::COM1_BASE, Serial16550::REGISTER_COUNT }, m_serial, "COM1" },
             Registration { { AcpiPm::BASE, AcpiPm::SIZE }, m_pm, "ACPI PM" },
             Registration { { status_port::DEFAULT_PORT, status_port::PORT_SIZE }, m_status, "status port" } }) {
        if (auto inserted = m_io_bus.insert(r.range, r.device); !inserted.has_value())
            return cpuplug::unexpected(fmt::format("cannot register {}: {}", r.name, to_string(inserted.error())));
    }
    if (auto inserted = m_mmio_bus.insert({ layout::STATUS_MMIO, status_port::PORT_SIZE }, m_status); !inserted.has_value())
        return cpuplug::unexpected(fmt::format("cannot register the status registers: {}", to_string(inserted.error())));
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
    std::vector<uint8_t> file_storage;
    std::span<uint8_t const> file = embedded_guest_image();
    std::string name = "the embedded guest";
    if (m_config.kernel_path) {
        file_storage = TRY(read_file(*m_config.kernel_path));
        file = file_storage;
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

cpuplug::Result<void, std::string> Machine::create_vcpus()
{
    auto supported = m_kvm.supported_cpuid();
    if (!supported.has_value())
        return cpuplug::unexpected(fail("cannot read the host's CPUID", supported.error()));

    // KVM_CREATE_VCPU holds the VM's lock only for its bookkeeping; most of its ~0.3 ms here is vCPU
    // set-up outside the lock, so a few workers create vCPUs side by side (one per host core).
    uint32_t count = m_config.smp.cpus;
    uint32_t workers = std::clamp<uint32_t>(std::thread::hardware_concurrency(), 1, 8);
    workers = std::min(workers, (count + 15) / 16); // small VMs are not worth a thread
    std::vector<std::unique_ptr<Vcpu>> vcpus(count);
    std::vector<std::string> errors(workers == 0 ? 1 : workers);
    auto tsc_khz = std::make_shared<std::atomic<uint32_t>>(0);
    auto create_range = [&](uint32_t worker, uint32_t stride) {
        CpuidParams params;
        params.topology = m_config.smp.topology;
        params.status_port = status_port::DEFAULT_PORT;
        params.status_mmio = layout::STATUS_MMIO;
        for (uint32_t index = worker; index < count; index += stride) {
            uint32_t apic_id = m_apic_ids[index];
            // vCPU id = APIC id: KVM gives each vCPU's local APIC its id.
            auto vcpu = m_vm.create_vcpu(apic_id);
            if (!vcpu.has_value()) {
                errors[worker] = fail(fmt::format("cannot create vCPU {}", index).c_str(), vcpu.error());
                return;
            }
            auto created = std::make_unique<Vcpu>(vcpu.release_value());
            if (tsc_khz->load() == 0)
                tsc_khz->store(created->tsc_khz().value_or(0));
            params.tsc_khz = tsc_khz->load();
            params.apic_id = apic_id;
            if (auto set = created->set_cpuid(build_cpuid(supported.value(), params)); !set.has_value()) {
                errors[worker] = fail("cannot set a vCPU's CPUID", set.error());
                return;
            }
            vcpus[index] = std::move(created);
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
    Buses buses { m_io_bus, m_mmio_bus };
    for (auto& vcpu : vcpus) {
        m_threads.push_back(std::make_unique<VcpuThread>(*vcpu, buses, static_cast<VcpuThreadEvents&>(*this)));
        m_vcpus.push_back(std::move(vcpu));
    }

    auto& bsp = *m_vcpus.front();
    auto sregs = bsp.get_sregs();
    if (!sregs.has_value())
        return cpuplug::unexpected(fail("cannot read vCPU 0's registers", sregs.error()));
    set_pvh_entry_sregs(sregs.value());
    if (auto set = bsp.set_sregs(sregs.value()); !set.has_value())
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
        m_io.run();
    });

    // Application processors first, each in its KVM_RUN loop before the boot vCPU runs. (KVM queues an
    // INIT/SIPI for a vCPU that is not running yet, but one that does not exist would lose it.)
    for (size_t i = 1; i < m_threads.size(); ++i)
        m_threads[i]->start();
    for (size_t i = 1; i < m_threads.size(); ++i)
        m_threads[i]->wait_started(std::chrono::seconds(5));
    {
        std::lock_guard lock(m_mutex);
        m_timeline.guest_started = std::chrono::steady_clock::now();
    }
    m_report->guest_started(m_timeline.guest_started);
    m_threads[0]->start();

    ExitRequest request;
    {
        std::unique_lock lock(m_mutex);
        m_exit_cv.wait(lock, [this] { return m_exit.has_value(); });
        request = *m_exit;
    }

    for (auto& thread : m_threads)
        thread->request_stop();
    for (auto& thread : m_threads) {
        if (!thread->join(VCPU_STOP_TIMEOUT)) {
            spdlog::critical("vcpu{} did not stop within {} ms", thread->vcpu_id(),
                std::chrono::duration_cast<std::chrono::milliseconds>(VCPU_STOP_TIMEOUT).count());
            request.code = EXIT_VMM_ERROR;
        }
    }
    work.reset();
    m_io.stop();
    m_io_thread.join();
    m_serial->flush();

    if (request.code == EXIT_OK)
        spdlog::info("{}", request.reason);
    else
        spdlog::error("{}", request.reason);
    if (!m_report->done())
        write_boot_report(request.reason);
    log_timeline();
    return request.code;
}

void Machine::request_exit(ExitRequest request)
{
    std::lock_guard lock(m_mutex);
    if (m_exit)
        return;
    m_exit = std::move(request);
    m_exit_cv.notify_all();
}

BootTimeline Machine::timeline() const
{
    std::lock_guard lock(m_mutex);
    return m_timeline;
}

void Machine::on_status_event(uint32_t event, std::chrono::steady_clock::time_point when)
{
    using namespace status_port;
    switch (event_kind(event)) {
    case Kind::Milestone: {
        auto milestone = static_cast<Milestone>(event_payload(event) & 0xFFFF);
        {
            std::lock_guard lock(m_mutex);
            if (milestone == Milestone::KernelEntry && !m_timeline.kernel_entry)
                m_timeline.kernel_entry = when;
            else if (milestone == Milestone::BootDone && !m_timeline.boot_done)
                m_timeline.boot_done = when;
        }
        if (milestone == Milestone::KernelEntry)
            m_report->kernel_entry(when);
        if (milestone == Milestone::BootDone) {
            m_report->boot_done(when);
            write_boot_report(std::nullopt);
        }
        break;
    }
    case Kind::Cpu:
        on_cpu_event(event, when);
        break;
    case Kind::Exit: {
        auto status = static_cast<uint8_t>(event_payload(event));
        if (status == 0)
            request_exit({ EXIT_OK, "the guest reported success" });
        else
            request_exit({ EXIT_GUEST_FAILURE, fmt::format("the guest reported failure status {}", status) });
        break;
    }
    default:
        spdlog::warn("status port: unknown event {:#010x}", event);
        break;
    }
}

void Machine::on_cpu_event(uint32_t event, std::chrono::steady_clock::time_point when)
{
    using namespace status_port;
    uint32_t cpu = event_cpu(event);
    uint8_t step = event_step(event);
    uint8_t state = step & 0x3F;
    switch (event_cpu_event(event)) {
    case CpuEvent::Kicked:
        m_report->kicked(cpu, when);
        break;
    case CpuEvent::Alive:
        m_report->alive(cpu, when);
        break;
    case CpuEvent::Online:
        m_report->online(cpu, when);
        break;
    case CpuEvent::Offline:
        m_report->offline(cpu, when);
        break;
    case CpuEvent::StepFailed:
        m_report->step_failed(cpu, state, (step & STEP_DOWN) != 0);
        spdlog::info("cpu {}: step {} failed going {}", cpu, state, (step & STEP_DOWN) ? "down" : "up");
        break;
    case CpuEvent::Stopped:
        m_report->stopped(cpu, state);
        break;
    case CpuEvent::Step:
        spdlog::debug("cpu {}: step {} {}{}", cpu, state, (step & STEP_DOWN) ? "down" : "up",
            (step & STEP_ROLLBACK) ? " (rollback)" : "");
        break;
    default:
        spdlog::warn("status port: unknown CPU event {:#010x}", event);
        break;
    }
}

void Machine::write_boot_report(std::optional<std::string> const& error)
{
    {
        std::lock_guard lock(m_mutex);
        if (m_report_written || !m_config.boot_report)
            return;
        m_report_written = true;
    }
    std::string text = m_report->json(error) + "\n";
    if (*m_config.boot_report == "-") {
        m_serial->flush(); // keep the console's lines whole around the report
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return;
    }
    FILE* file = std::fopen(m_config.boot_report->c_str(), "w");
    if (!file) {
        spdlog::error("cannot write the boot report to {}: {}", *m_config.boot_report, std::strerror(errno));
        return;
    }
    std::fwrite(text.data(), 1, text.size(), file);
    std::fclose(file);
}

void Machine::log_timeline() const
{
    auto t = timeline();
    auto start = t.process_start;
    spdlog::info("timeline: VM created {:.2f} ms, vCPUs ready {:.2f} ms, guest started {:.2f} ms", ms_between(start, t.vm_created),
        ms_between(start, t.vcpus_created), ms_between(start, t.guest_started));
    if (t.kernel_entry && t.boot_done)
        spdlog::info("timeline: kernel entry +{:.3f} ms, boot done +{:.3f} ms after the guest started (total {:.2f} ms)",
            ms_between(t.guest_started, *t.kernel_entry), ms_between(t.guest_started, *t.boot_done),
            ms_between(start, *t.boot_done));
}

void Machine::vcpu_failed(uint32_t vcpu_id, std::string const& reason)
{
    request_exit({ EXIT_VMM_ERROR, fmt::format("vcpu{}: {}", vcpu_id, reason) });
}

void Machine::vcpu_shutdown(uint32_t vcpu_id)
{
    request_exit({ EXIT_OK, fmt::format("vcpu{}: the guest shut down", vcpu_id) });
}

} // namespace vmm
