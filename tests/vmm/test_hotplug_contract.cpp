// The contract between the guest's hot-plug driver (guest/lib/hotplug_registers.cpp, what the guest kernel
// runs) and the VMM's device model (vmm/devices/cpu_hotplug.cpp, what it runs against under vmm): the
// driver's sequences driven straight into the real CpuHotplugDevice, at the offsets and widths a vCPU's
// port I/O would use, with no KVM in between. tests/guest's FakeBlock checks the driver's access pattern;
// this checks that the two halves agree on what the registers mean.
#include "devices/cpu_hotplug.hpp"

#include <guest/lib/hotplug_registers.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

namespace hp = ::cpu_hotplug;
using vmm::CpuHotplugDevice;

namespace {

// guest::hotplug::Registers over the device: each call one access, as the guest's port I/O makes it.
class DeviceRegisters final : public guest::hotplug::Registers {
public:
    explicit DeviceRegisters(CpuHotplugDevice& device)
        : m_device(device)
    {
    }
    void select(uint32_t index) override { write(hp::REG_SELECTOR, index, 4); }
    void command(hp::Command command) override { write(hp::REG_COMMAND, static_cast<uint8_t>(command), 1); }
    uint8_t read_status() override { return static_cast<uint8_t>(read(hp::REG_STATUS, 1)); }
    void control(uint8_t bits) override { write(hp::REG_STATUS, bits, 1); }
    uint32_t read_data() override { return read(hp::REG_DATA, 4); }
    void write_data(uint32_t value) override { write(hp::REG_DATA, value, 4); }

private:
    void write(uint16_t offset, uint32_t value, size_t size)
    {
        uint8_t bytes[4];
        std::memcpy(bytes, &value, sizeof bytes);
        m_device.write(offset, std::span<uint8_t const>(bytes, size));
    }
    uint32_t read(uint16_t offset, size_t size)
    {
        uint8_t bytes[4] {};
        m_device.read(offset, std::span<uint8_t>(bytes, size));
        uint32_t value;
        std::memcpy(&value, bytes, sizeof value);
        return value;
    }
    CpuHotplugDevice& m_device;
};

struct Ost {
    uint32_t index, event, status;
    bool operator==(Ost const&) const = default;
};

// A machine's view of the device: 8 possible CPUs, APIC ids as a sparse topology gives them, CPUs 0-3
// cold-plugged, and every callback recorded.
struct Fixture {
    std::vector<uint32_t> ejected;
    std::vector<Ost> osts;
    int gpes { 0 };
    CpuHotplugDevice device { { 0, 1, 2, 3, 8, 9, 10, 11 }, 0,
        { [this](uint32_t index) { ejected.push_back(index); },
            [this](uint32_t index, uint32_t event, uint32_t status) { osts.push_back({ index, event, status }); },
            [this] { ++gpes; } } };
    DeviceRegisters registers { device };

    Fixture()
    {
        for (uint32_t i = 0; i < 4; ++i)
            device.set_present(i, true);
    }

    guest::hotplug::Scan scan(std::vector<uint16_t>& inserts, std::vector<uint16_t>& removes, uint32_t capacity = 8)
    {
        inserts.assign(capacity, 0);
        removes.assign(capacity, 0);
        auto found = guest::hotplug::scan_events(registers, device.possible(), device.possible(), inserts.data(),
            removes.data(), capacity);
        inserts.resize(found.inserts);
        removes.resize(found.removes);
        return found;
    }
};

} // namespace

TEST_CASE("the guest driver finds the VMM device's inserted CPUs, reads their APIC ids and acknowledges them", "[cpu-hotplug][contract]")
{
    Fixture f;
    uint32_t const plugged[] = { 4, 6 };
    REQUIRE(f.device.request_insert(plugged));
    CHECK(f.gpes == 1);

    std::vector<uint16_t> inserts, removes;
    auto found = f.scan(inserts, removes);
    CHECK(inserts == std::vector<uint16_t> { 4, 6 });
    CHECK(removes.empty());
    CHECK_FALSE(found.rescan);
    // Collected, not yet handled: the events stay pending until acknowledged.
    CHECK(f.device.slot(4).insert_pending);

    CHECK(guest::hotplug::read_arch_id(f.registers, 4) == 8);
    CHECK(guest::hotplug::read_arch_id(f.registers, 6) == 10);
    for (uint16_t index : inserts)
        guest::hotplug::acknowledge(f.registers, index, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS);
    CHECK(f.osts == std::vector<Ost> { { 4, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS }, { 6, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS } });
    CHECK_FALSE(f.device.slot(4).insert_pending);
    CHECK_FALSE(f.device.slot(6).insert_pending);
    CHECK(f.device.slot(6).present);

    f.scan(inserts, removes);
    CHECK(inserts.empty());
    CHECK(removes.empty());
}

TEST_CASE("a removal the VMM asks for reaches the guest driver, whose eject the device honours", "[cpu-hotplug][contract]")
{
    Fixture f;
    uint32_t const unplugged[] = { 3 };
    REQUIRE(f.device.request_remove(unplugged));

    std::vector<uint16_t> inserts, removes;
    f.scan(inserts, removes);
    CHECK(inserts.empty());
    CHECK(removes == std::vector<uint16_t> { 3 });
    // The scan answers _OST(eject request, in progress) and clears the event, as QEMU's CSCN does.
    CHECK(f.osts == std::vector<Ost> { { 3, hp::OST_EJECT_REQUEST, hp::OST_EJECT_IN_PROGRESS } });
    CHECK_FALSE(f.device.slot(3).remove_pending);
    CHECK(f.device.slot(3).unplug_requested);

    CHECK(guest::hotplug::eject(f.registers, 3));
    CHECK(f.ejected == std::vector<uint32_t> { 3 });
    CHECK_FALSE(f.device.slot(3).present);
    f.scan(inserts, removes);
    CHECK(removes.empty());
}

TEST_CASE("the device refuses the guest driver's eject of a CPU nobody asked to remove, and of the boot CPU", "[cpu-hotplug][contract]")
{
    Fixture f;
    CHECK_FALSE(guest::hotplug::eject(f.registers, 2));
    CHECK_FALSE(guest::hotplug::eject(f.registers, 0));
    CHECK(f.ejected.empty());
    CHECK(f.device.slot(2).present);
    CHECK(f.device.slot(0).present);
    CHECK(f.device.refused_ejects() == 2);

    // A removal the guest refused and the VMM cancelled: an eject after that is refused too.
    uint32_t const unplugged[] = { 2 };
    REQUIRE(f.device.request_remove(unplugged));
    std::vector<uint16_t> inserts, removes;
    f.scan(inserts, removes);
    f.registers.select(2); // as the guest's refusal does: select, then _OST
    guest::hotplug::write_ost(f.registers, hp::OST_EJECT_REQUEST, guest::hotplug::ost_status(guest::hotplug::Refusal::Vetoed));
    CHECK(f.osts.back() == Ost { 2, hp::OST_EJECT_REQUEST, hp::OST_DEVICE_IN_USE });
    f.device.cancel_remove(2);
    CHECK_FALSE(guest::hotplug::eject(f.registers, 2));
    CHECK(f.device.slot(2).present);
}

TEST_CASE("an eject the guest driver began before the VMM withdrew the removal is still honoured", "[cpu-hotplug][contract]")
{
    Fixture f;
    uint32_t const unplugged[] = { 1 };
    REQUIRE(f.device.request_remove(unplugged));
    std::vector<uint16_t> inserts, removes;
    f.scan(inserts, removes);
    REQUIRE(removes == std::vector<uint16_t> { 1 });
    f.device.withdraw_remove(1);
    CHECK(guest::hotplug::eject(f.registers, 1));
    CHECK(f.ejected == std::vector<uint32_t> { 1 });
}

TEST_CASE("more events than the guest driver's lists hold are all found over several scans", "[cpu-hotplug][contract]")
{
    Fixture f;
    uint32_t const plugged[] = { 4, 5, 6, 7 };
    REQUIRE(f.device.request_insert(plugged));
    uint32_t const unplugged[] = { 1, 2 };
    REQUIRE(f.device.request_remove(unplugged));

    std::vector<uint16_t> seen_inserts, seen_removes;
    for (int pass = 0; pass < 8; ++pass) {
        std::vector<uint16_t> inserts, removes;
        auto found = f.scan(inserts, removes, 1);
        for (uint16_t index : inserts) {
            seen_inserts.push_back(index);
            guest::hotplug::acknowledge(f.registers, index, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS);
        }
        seen_removes.insert(seen_removes.end(), removes.begin(), removes.end());
        if (!found.rescan && inserts.empty() && removes.empty())
            break;
    }
    std::sort(seen_inserts.begin(), seen_inserts.end());
    std::sort(seen_removes.begin(), seen_removes.end());
    CHECK(seen_inserts == std::vector<uint16_t> { 4, 5, 6, 7 });
    CHECK(seen_removes == std::vector<uint16_t> { 1, 2 });
    for (uint32_t i = 0; i < 8; ++i) {
        CHECK_FALSE(f.device.slot(i).insert_pending);
        CHECK_FALSE(f.device.slot(i).remove_pending);
    }
}

TEST_CASE("a removal asked for before the guest saw the insertion is handled after it, then ejected", "[cpu-hotplug][contract]")
{
    Fixture f;
    uint32_t const cpu[] = { 5 };
    REQUIRE(f.device.request_insert(cpu));
    REQUIRE(f.device.request_remove(cpu)); // device_del right after device_add returned
    CHECK(f.gpes == 2);
    CHECK(f.device.slot(5).insert_pending);
    CHECK(f.device.slot(5).remove_pending);

    // The first walk takes the insertion only, and asks for another walk for the removal.
    std::vector<uint16_t> inserts, removes;
    auto found = f.scan(inserts, removes);
    CHECK(inserts == std::vector<uint16_t> { 5 });
    CHECK(removes.empty());
    CHECK(found.rescan);
    CHECK(f.osts.empty());
    guest::hotplug::acknowledge(f.registers, 5, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS);
    CHECK(f.device.slot(5).remove_pending);

    found = f.scan(inserts, removes);
    CHECK(inserts.empty());
    CHECK(removes == std::vector<uint16_t> { 5 });
    CHECK_FALSE(found.rescan);
    CHECK(guest::hotplug::eject(f.registers, 5));
    CHECK(f.osts == std::vector<Ost> { { 5, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS },
                                       { 5, hp::OST_EJECT_REQUEST, hp::OST_EJECT_IN_PROGRESS } });
    CHECK(f.ejected == std::vector<uint32_t> { 5 });
    CHECK_FALSE(f.device.slot(5).present);

    // The slot is free again: a new insertion of it is taken.
    REQUIRE(f.device.request_insert(cpu));
    CHECK(f.device.slot(5).insert_pending);
    CHECK_FALSE(f.device.slot(5).remove_pending);
}

TEST_CASE("a removal asked for while the guest brings an inserted CPU up is seen on its next walk", "[cpu-hotplug][contract]")
{
    Fixture f;
    uint32_t const cpu[] = { 4 };
    REQUIRE(f.device.request_insert(cpu));
    std::vector<uint16_t> inserts, removes;
    f.scan(inserts, removes);
    CHECK(inserts == std::vector<uint16_t> { 4 });
    // device_del between the walk and the insertion's _OST.
    REQUIRE(f.device.request_remove(cpu));
    guest::hotplug::acknowledge(f.registers, 4, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS);
    CHECK(f.device.slot(4).remove_pending);

    f.scan(inserts, removes);
    CHECK(inserts.empty());
    CHECK(removes == std::vector<uint16_t> { 4 });
    CHECK(guest::hotplug::eject(f.registers, 4));
    CHECK(f.ejected == std::vector<uint32_t> { 4 });
}
