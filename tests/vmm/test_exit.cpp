#include "cpu/exit.hpp"

#include "recording_device.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

using namespace vmm;
using test_support::RecordingDevice;

namespace {

struct Fixture {
    std::vector<uint64_t> storage = std::vector<uint64_t>(3 * 4096 / 8, 0);
    IoBus io { "pio" };
    IoBus mmio { "mmio" };
    std::shared_ptr<RecordingDevice> port = std::make_shared<RecordingDevice>();
    std::shared_ptr<RecordingDevice> window = std::make_shared<RecordingDevice>();

    Fixture()
    {
        REQUIRE(io.insert({ 0x3F8, 8 }, port).has_value());
        REQUIRE(mmio.insert({ 0xD0000000, 0x1000 }, window).has_value());
    }
    std::span<uint8_t> area() { return { reinterpret_cast<uint8_t*>(storage.data()), storage.size() * 8 }; }
    kvm_run& run() { return *reinterpret_cast<kvm_run*>(storage.data()); }
    ExitAction handle() { return handle_exit(area(), Buses { io, mmio }); }
};

} // namespace

TEST_CASE("a port write reaches the device at its offset", "[exit]")
{
    Fixture f;
    f.run().exit_reason = KVM_EXIT_IO;
    f.run().io = { KVM_EXIT_IO_OUT, 1, 0x3FD, 1, 4096 };
    f.area()[4096] = 0x42;
    CHECK(f.handle().kind == ExitKind::Continue);
    REQUIRE(f.port->accesses.size() == 1);
    CHECK(f.port->accesses[0].offset == 5);
    CHECK(f.port->accesses[0].data[0] == 0x42);
}

TEST_CASE("string I/O with count > 1 becomes one access per element", "[exit]")
{
    Fixture f;
    f.run().exit_reason = KVM_EXIT_IO;
    f.run().io = { KVM_EXIT_IO_OUT, 1, 0x3F8, 5, 4096 };
    std::memcpy(f.area().data() + 4096, "hello", 5);
    CHECK(f.handle().kind == ExitKind::Continue);
    REQUIRE(f.port->accesses.size() == 5);
    CHECK(f.port->accesses[4].data[0] == 'o');
}

TEST_CASE("a port read fills the data area, all ones when unclaimed", "[exit]")
{
    Fixture f;
    f.run().exit_reason = KVM_EXIT_IO;
    f.run().io = { KVM_EXIT_IO_IN, 1, 0x3FD, 1, 4096 };
    CHECK(f.handle().kind == ExitKind::Continue);
    CHECK(f.area()[4096] == 0x5A);
    f.run().io = { KVM_EXIT_IO_IN, 4, 0x70, 1, 4100 };
    CHECK(f.handle().kind == ExitKind::Continue);
    CHECK(f.area()[4100] == 0xFF);
    CHECK(f.area()[4103] == 0xFF);
}

TEST_CASE("a port exit whose data lies outside kvm_run is fatal, not a wild access", "[exit]")
{
    Fixture f;
    f.run().exit_reason = KVM_EXIT_IO;
    f.run().io = { KVM_EXIT_IO_OUT, 4, 0x3F8, 4096, 4096 };
    CHECK(f.handle().kind == ExitKind::Fatal);
    f.run().io = { KVM_EXIT_IO_OUT, 1, 0x3F8, 1, 1u << 30 };
    CHECK(f.handle().kind == ExitKind::Fatal);
    f.run().io = { KVM_EXIT_IO_OUT, 3, 0x3F8, 1, 4096 };
    CHECK(f.handle().kind == ExitKind::Fatal);
}

TEST_CASE("MMIO reads and writes go to the MMIO bus", "[exit]")
{
    Fixture f;
    f.run().exit_reason = KVM_EXIT_MMIO;
    f.run().mmio.phys_addr = 0xD0000010;
    f.run().mmio.len = 4;
    f.run().mmio.is_write = 0;
    CHECK(f.handle().kind == ExitKind::Continue);
    CHECK(f.run().mmio.data[0] == 0x5A);
    f.run().mmio.phys_addr = 0xE0000000;
    CHECK(f.handle().kind == ExitKind::Continue);
    CHECK(f.run().mmio.data[0] == 0xFF);
    f.run().mmio.len = 9;
    CHECK(f.handle().kind == ExitKind::Fatal);
}

TEST_CASE("fatal exits carry a reason a user can read", "[exit]")
{
    Fixture f;
    f.run().exit_reason = KVM_EXIT_SHUTDOWN;
    auto triple = f.handle();
    CHECK(triple.kind == ExitKind::Fatal);
    CHECK(triple.reason.find("triple-fault") != std::string::npos);

    f.run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
    f.run().internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    f.run().internal.ndata = 2;
    f.run().internal.data[0] = 0xAB;
    auto internal = f.handle();
    CHECK(internal.kind == ExitKind::Fatal);
    CHECK(internal.reason.find("emulation failed") != std::string::npos);
    CHECK(internal.reason.find("0xab") != std::string::npos);

    f.run().exit_reason = KVM_EXIT_FAIL_ENTRY;
    f.run().fail_entry.hardware_entry_failure_reason = 0x21;
    auto entry = f.handle();
    CHECK(entry.kind == ExitKind::Fatal);
    CHECK(entry.reason.find("0x21") != std::string::npos);

    f.run().exit_reason = 9999;
    CHECK(f.handle().kind == ExitKind::Fatal);
}

TEST_CASE("a shutdown system event stops the VM, other events are fatal", "[exit]")
{
    Fixture f;
    f.run().exit_reason = KVM_EXIT_SYSTEM_EVENT;
    f.run().system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
    CHECK(f.handle().kind == ExitKind::Shutdown);
    f.run().system_event.type = KVM_SYSTEM_EVENT_CRASH;
    CHECK(f.handle().kind == ExitKind::Fatal);
}

TEST_CASE("benign exits just continue", "[exit]")
{
    Fixture f;
    for (uint32_t reason : { KVM_EXIT_HLT, KVM_EXIT_INTR, KVM_EXIT_IRQ_WINDOW_OPEN }) {
        f.run().exit_reason = reason;
        CHECK(f.handle().kind == ExitKind::Continue);
    }
}
