#include "devices/cpu_hotplug.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <random>
#include <thread>
#include <vector>

using namespace vmm;
namespace hp = cpu_hotplug;

namespace {

constexpr uint32_t BOOT = 0;

// Distinct high halves, so a swapped or truncated half shows.
std::vector<uint64_t> arch_ids(uint32_t count)
{
    std::vector<uint64_t> ids;
    for (uint32_t i = 0; i < count; ++i)
        ids.push_back((uint64_t { 0xA0 + i } << 32) | (0x10 + 2 * i));
    return ids;
}

struct Ost {
    uint32_t index, event, status;
    bool operator==(Ost const&) const = default;
};

// The device plus everything its callbacks reported.
struct Rig {
    std::vector<uint32_t> ejected;
    std::vector<Ost> osts;
    std::atomic<int> gpes { 0 };
    CpuHotplugDevice device;

    explicit Rig(uint32_t count = 8, uint32_t boot = BOOT)
        : device(arch_ids(count), boot,
            { [this](uint32_t index) { ejected.push_back(index); },
                [this](uint32_t index, uint32_t event, uint32_t status) { osts.push_back({ index, event, status }); },
                [this] { ++gpes; } })
    {
    }

    void out(uint64_t offset, uint64_t value, size_t size = 1)
    {
        std::array<uint8_t, 8> bytes {};
        for (size_t i = 0; i < size; ++i)
            bytes[i] = static_cast<uint8_t>(value >> (8 * i));
        device.write(offset, std::span(bytes.data(), size));
    }
    uint64_t in(uint64_t offset, size_t size = 1)
    {
        std::array<uint8_t, 8> bytes;
        bytes.fill(0xEE); // the device must zero what it does not set
        device.read(offset, std::span(bytes.data(), size));
        uint64_t value = 0;
        for (size_t i = 0; i < size; ++i)
            value |= uint64_t { bytes[i] } << (8 * i);
        return value;
    }

    void select(uint32_t index) { out(hp::REG_SELECTOR, index, 4); }
    void command(hp::Command value) { out(hp::REG_COMMAND, static_cast<uint8_t>(value)); }
    void control(uint8_t bits) { out(hp::REG_STATUS, bits); }
    uint8_t status() { return static_cast<uint8_t>(in(hp::REG_STATUS)); }
    uint32_t data() { return static_cast<uint32_t>(in(hp::REG_DATA, 4)); }
    uint32_t data2() { return static_cast<uint32_t>(in(hp::REG_SELECTOR, 4)); }
    // Command 0, then the CPU it left selected: the selector itself when no CPU has an event.
    uint32_t next_event()
    {
        command(hp::Command::NextEvent);
        return data();
    }

    bool insert(std::initializer_list<uint32_t> indexes)
    {
        return device.request_insert(std::vector<uint32_t>(indexes));
    }
    bool remove(std::initializer_list<uint32_t> indexes)
    {
        return device.request_remove(std::vector<uint32_t>(indexes));
    }
    void cold_plug(uint32_t count)
    {
        for (uint32_t i = 0; i < count; ++i)
            device.set_present(i, true);
    }
};

bool idle(CpuHotplugDevice::Slot const& s)
{
    return !s.insert_pending && !s.remove_pending && !s.unplug_requested && !s.fw_remove && !s.withdrawn;
}

} // namespace

TEST_CASE("cpu hotplug: slots start absent, cold plug shows presence without an event", "[cpu_hotplug]")
{
    Rig rig(4);
    CHECK(rig.device.possible() == 4);
    for (uint32_t i = 0; i < 4; ++i) {
        rig.select(i);
        CHECK(rig.status() == 0);
    }
    rig.device.set_present(0, true);
    rig.device.set_present(2, true);
    rig.device.set_present(4, true); // not a possible CPU: ignored
    rig.select(2);
    CHECK(rig.status() == hp::STATUS_ENABLED);
    CHECK(rig.device.slot(2).present);
    CHECK(idle(rig.device.slot(2)));
    CHECK_FALSE(rig.device.slot(1).present);
    CHECK_FALSE(rig.device.slot(4).present);
    CHECK(rig.gpes == 0);
    rig.device.set_present(2, false);
    CHECK(rig.status() == 0);
}

TEST_CASE("cpu hotplug: registers decode on the offset only, at every size", "[cpu_hotplug]")
{
    Rig rig(8);
    rig.cold_plug(8);
    REQUIRE(rig.insert({})); // nothing to do, nothing raised
    CHECK(rig.gpes == 0);
    rig.device.set_present(5, false);
    REQUIRE(rig.insert({ 5 }));
    rig.select(5);

    uint64_t const status = hp::STATUS_ENABLED | hp::STATUS_INSERT;
    for (size_t size : { 1, 2, 4 }) {
        INFO("size " << size);
        CHECK(rig.in(hp::REG_STATUS, size) == status); // the command byte is not part of a wide status read
        CHECK(rig.in(hp::REG_DATA, size) == 5);
        CHECK(rig.in(hp::REG_SELECTOR, size) == 0); // data 2 under command 0
        for (uint64_t offset : { 1, 2, 3, 5, 6, 7, 9, 10, 11 })
            if (offset + size <= hp::SIZE)
                CHECK(rig.in(offset, size) == 0);
    }
    // 8-byte accesses are not the block's: reads are 0, writes do nothing.
    CHECK(rig.in(hp::REG_SELECTOR, 8) == 0);
    CHECK(rig.in(hp::REG_STATUS, 8) == 0);
    rig.out(hp::REG_SELECTOR, 3, 8);
    rig.out(hp::REG_STATUS, hp::CONTROL_CLEAR_INSERT, 8);
    CHECK(rig.data() == 5);
    CHECK(rig.status() == status);
    // Sizes the bus never produces are refused too.
    CHECK(rig.in(hp::REG_STATUS, 0) == 0);
    rig.out(hp::REG_STATUS, hp::CONTROL_CLEAR_INSERT, 0);
    CHECK(rig.status() == status);
    // A write to a reserved offset changes nothing.
    for (uint64_t offset : { 1, 2, 3, 6, 7, 9, 10, 11 })
        rig.out(offset, 0xFF);
    CHECK(rig.data() == 5);
    CHECK(rig.status() == status);
}

TEST_CASE("cpu hotplug: the selector takes the value as written, at any size", "[cpu_hotplug]")
{
    Rig rig(8);
    CHECK(rig.next_event() == 0);
    rig.out(hp::REG_SELECTOR, 3, 1);
    CHECK(rig.next_event() == 3);
    rig.out(hp::REG_SELECTOR, 6, 2);
    CHECK(rig.next_event() == 6);
    rig.out(hp::REG_SELECTOR, 0x0102, 2); // out of range now: data reads 0
    CHECK(rig.next_event() == 0);
    rig.out(hp::REG_SELECTOR, 0x01, 1); // a byte write replaces the whole selector, as in QEMU
    CHECK(rig.next_event() == 1);
    rig.out(hp::REG_SELECTOR, 7, 4);
    CHECK(rig.next_event() == 7);
}

TEST_CASE("cpu hotplug: a selector past the possible CPUs reads 0 and ignores all but selector writes",
    "[cpu_hotplug]")
{
    Rig rig(4);
    rig.cold_plug(4);
    rig.device.set_present(3, false);
    REQUIRE(rig.insert({ 3 }));
    REQUIRE(rig.remove({ 2 }));
    rig.select(1);
    rig.command(hp::Command::ArchId);

    for (uint32_t selector : { 4u, 5u, 0xFFFFu, 0xFFFF'FFFFu }) {
        INFO("selector " << selector);
        rig.select(selector);
        for (size_t size : { 1, 2, 4 })
            for (uint64_t offset = 0; offset + size <= hp::SIZE; ++offset)
                CHECK(rig.in(offset, size) == 0);
        rig.control(hp::CONTROL_CLEAR_INSERT);
        rig.control(hp::CONTROL_CLEAR_REMOVE);
        rig.control(hp::CONTROL_EJECT);
        rig.control(hp::CONTROL_FW_EJECT);
        rig.command(hp::Command::OstStatus);
        rig.out(hp::REG_DATA, 0x1234, 4);
    }
    CHECK(rig.ejected.empty());
    CHECK(rig.osts.empty());
    CHECK(rig.device.slot(3).insert_pending);
    CHECK(rig.device.slot(2).remove_pending);
    CHECK(rig.device.slot(2).unplug_requested);
    CHECK_FALSE(rig.device.slot(2).fw_remove);
    // The command write was ignored: it is still 3 (arch id) once a real CPU is selected.
    rig.select(1);
    CHECK(rig.data() == static_cast<uint32_t>(arch_ids(4)[1]));
    CHECK(rig.data2() == arch_ids(4)[1] >> 32);
}

TEST_CASE("cpu hotplug: control bits act in priority order, first set bit only", "[cpu_hotplug]")
{
    Rig rig(4);
    rig.cold_plug(2);
    REQUIRE(rig.insert({ 2 }));
    REQUIRE(rig.remove({ 2 }));
    rig.select(2);
    auto const all = hp::STATUS_ENABLED | hp::STATUS_INSERT | hp::STATUS_REMOVE;
    REQUIRE(rig.status() == all);

    rig.control(hp::CONTROL_FW_EJECT | hp::CONTROL_EJECT | hp::CONTROL_CLEAR_REMOVE | hp::CONTROL_CLEAR_INSERT);
    CHECK(rig.status() == (hp::STATUS_ENABLED | hp::STATUS_REMOVE)); // insert cleared, nothing else

    rig.control(hp::CONTROL_FW_EJECT | hp::CONTROL_EJECT | hp::CONTROL_CLEAR_REMOVE);
    CHECK(rig.status() == hp::STATUS_ENABLED); // remove cleared, not ejected
    CHECK(rig.ejected.empty());
    CHECK(rig.device.slot(2).unplug_requested); // the event is the guest's to clear; the request is not

    // Bit 0 and bits 5..7 are reserved: no action.
    rig.control(0xE1);
    CHECK(rig.status() == hp::STATUS_ENABLED);
    CHECK(rig.ejected.empty());

    rig.control(hp::CONTROL_FW_EJECT | hp::CONTROL_EJECT);
    CHECK(rig.ejected == std::vector<uint32_t> { 2 }); // eject wins over the firmware hand-off
    CHECK(rig.status() == 0);
    CHECK_FALSE(rig.device.slot(2).fw_remove);

    // A wide write at the status offset is control alone: the byte at 0x5 is not the command.
    rig.command(hp::Command::NextEvent);
    rig.select(1);
    rig.out(hp::REG_STATUS, (uint32_t { 3 } << 8) | 0x00, 2);
    CHECK(rig.data() == 1); // still command 0
}

TEST_CASE("cpu hotplug: commands 0..3 are taken, anything else is ignored", "[cpu_hotplug]")
{
    Rig rig(4);
    rig.cold_plug(4);
    rig.select(2);
    rig.command(hp::Command::ArchId);
    auto const id = arch_ids(4)[2];
    CHECK(rig.data() == static_cast<uint32_t>(id));
    for (uint64_t value : { 4u, 5u, 0xFFu }) {
        rig.out(hp::REG_COMMAND, value);
        CHECK(rig.data() == static_cast<uint32_t>(id));
    }
    rig.out(hp::REG_COMMAND, 0x0100, 2); // dispatch takes the whole value: 256 is no command
    rig.out(hp::REG_COMMAND, 0x0000'0100, 4);
    CHECK(rig.data() == static_cast<uint32_t>(id));
    rig.out(hp::REG_COMMAND, 0x0000, 2); // a wide 0 is command 0
    CHECK(rig.data() == 2);
    CHECK(rig.data2() == 0);
    for (auto command : { hp::Command::OstEvent, hp::Command::OstStatus }) {
        rig.command(command);
        CHECK(rig.data() == 0);
        CHECK(rig.data2() == 0);
    }
}

TEST_CASE("cpu hotplug: command 3 reads the selected CPU's arch id, low and high halves", "[cpu_hotplug]")
{
    std::vector<uint64_t> ids { 0, 1, 0xFFFF'FFFF, 0x1'0000'0000, 0xDEAD'BEEF'CAFE'F00D };
    CpuHotplugDevice device(ids, BOOT, {});
    auto in32 = [&](uint64_t offset) {
        std::array<uint8_t, 4> b {};
        device.read(offset, b);
        return b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t { b[3] } << 24);
    };
    auto out = [&](uint64_t offset, uint32_t value) {
        std::array<uint8_t, 4> b { uint8_t(value), uint8_t(value >> 8), uint8_t(value >> 16), uint8_t(value >> 24) };
        device.write(offset, b);
    };
    out(hp::REG_COMMAND, static_cast<uint8_t>(hp::Command::ArchId));
    for (uint32_t i = 0; i < ids.size(); ++i) {
        out(hp::REG_SELECTOR, i); // absent CPUs have arch ids too: the guest reads them before plugging
        CHECK(in32(hp::REG_DATA) == static_cast<uint32_t>(ids[i]));
        CHECK(in32(hp::REG_SELECTOR) == ids[i] >> 32);
    }
    uint8_t byte = 0;
    device.read(hp::REG_DATA, std::span(&byte, 1));
    CHECK(byte == 0x0D);
}

TEST_CASE("cpu hotplug: command 0 searches from the selector inclusive, wraps, and clears nothing",
    "[cpu_hotplug]")
{
    Rig rig(8);
    rig.cold_plug(8);

    SECTION("no event anywhere: the selector stays")
    {
        for (uint32_t start : { 0u, 3u, 7u }) {
            rig.select(start);
            CHECK(rig.next_event() == start);
        }
    }
    SECTION("the selected CPU itself is found first")
    {
        REQUIRE(rig.remove({ 3 }));
        REQUIRE(rig.remove({ 5 }));
        rig.select(3);
        CHECK(rig.next_event() == 3);
        CHECK(rig.next_event() == 3); // searching again does not move on: nothing was cleared
        CHECK(rig.status() == (hp::STATUS_ENABLED | hp::STATUS_REMOVE));
    }
    SECTION("upward, then around the end")
    {
        rig.device.set_present(1, false);
        rig.device.set_present(6, false);
        REQUIRE(rig.insert({ 1, 6 }));
        rig.select(2);
        CHECK(rig.next_event() == 6);
        rig.select(7);
        CHECK(rig.next_event() == 1); // 7, wrap, 0, 1
        rig.control(hp::CONTROL_CLEAR_INSERT);
        CHECK(rig.next_event() == 6);
        rig.control(hp::CONTROL_CLEAR_INSERT);
        CHECK(rig.next_event() == 6); // none left: unchanged
    }
    SECTION("a firmware hand-off counts as an event")
    {
        REQUIRE(rig.remove({ 4 }));
        rig.select(4);
        rig.control(hp::CONTROL_CLEAR_REMOVE);
        rig.control(hp::CONTROL_FW_EJECT);
        rig.select(0);
        CHECK(rig.next_event() == 4);
        CHECK(rig.status() == (hp::STATUS_ENABLED | hp::STATUS_FW_REMOVE));
    }
}

TEST_CASE("cpu hotplug: _OST event then status reaches the callback", "[cpu_hotplug]")
{
    Rig rig(4);
    rig.cold_plug(4);
    rig.select(3);
    rig.command(hp::Command::OstEvent);
    rig.out(hp::REG_DATA, hp::OST_EJECT_REQUEST, 4);
    CHECK(rig.osts.empty());
    rig.command(hp::Command::OstStatus);
    rig.out(hp::REG_DATA, hp::OST_EJECT_IN_PROGRESS, 4);
    CHECK(rig.osts == std::vector<Ost> { { 3, hp::OST_EJECT_REQUEST, hp::OST_EJECT_IN_PROGRESS } });
    auto slot = rig.device.slot(3);
    CHECK(slot.ost_event == hp::OST_EJECT_REQUEST);
    CHECK(slot.ost_status == hp::OST_EJECT_IN_PROGRESS);

    // Command 2 stays in force: each status write reports again, with the stored event.
    rig.out(hp::REG_DATA, hp::OST_SUCCESS, 1);
    CHECK(rig.osts.back() == Ost { 3, hp::OST_EJECT_REQUEST, hp::OST_SUCCESS });
    // A full 32-bit status is kept as written.
    rig.out(hp::REG_DATA, 0x8000'0001, 4);
    CHECK(rig.osts.back().status == 0x8000'0001);

    // Data writes under commands 0 and 3 store nothing.
    rig.osts.clear();
    for (auto command : { hp::Command::NextEvent, hp::Command::ArchId }) {
        rig.command(command);
        rig.out(hp::REG_DATA, 0x77, 4);
    }
    CHECK(rig.osts.empty());
    CHECK(rig.device.slot(3).ost_event == hp::OST_EJECT_REQUEST);
    CHECK(rig.device.slot(3).ost_status == 0x8000'0001);
}

TEST_CASE("cpu hotplug: callbacks run after the device's lock is released", "[cpu_hotplug]")
{
    // A callback that needs the device from another thread: if the lock were still held, the helper
    // would wait past the deadline (and finish once the write returns, so the test cannot hang).
    std::future<CpuHotplugDevice::Slot> helper;
    bool ost_unlocked = false, eject_unlocked = false;
    CpuHotplugDevice* device = nullptr;
    auto unlocked = [&](uint32_t index) {
        helper = std::async(std::launch::async, [&, index] { return device->slot(index); });
        return helper.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    };
    CpuHotplugDevice dev(arch_ids(4), BOOT,
        { [&](uint32_t index) {
             eject_unlocked = unlocked(index);
             CHECK(device->request_insert(std::vector<uint32_t> { index })); // the machine may re-plug at once
         },
            [&](uint32_t index, uint32_t, uint32_t) { ost_unlocked = unlocked(index); }, {} });
    device = &dev;
    for (uint32_t i = 0; i < 4; ++i)
        dev.set_present(i, true);
    REQUIRE(dev.request_remove(std::vector<uint32_t> { 2 }));

    uint8_t const select2[4] { 2, 0, 0, 0 };
    uint8_t const ost_status = static_cast<uint8_t>(hp::Command::OstStatus);
    uint8_t const eject = hp::CONTROL_EJECT;
    dev.write(hp::REG_SELECTOR, select2);
    dev.write(hp::REG_COMMAND, std::span(&ost_status, 1));
    dev.write(hp::REG_DATA, select2);
    CHECK(ost_unlocked);
    dev.write(hp::REG_STATUS, std::span(&eject, 1));
    CHECK(eject_unlocked);
    CHECK(dev.slot(2).present);
    CHECK(dev.slot(2).insert_pending);
}

TEST_CASE("cpu hotplug: insert requests plug every CPU, then raise the GPE once", "[cpu_hotplug]")
{
    Rig rig(8);
    rig.cold_plug(2);
    REQUIRE(rig.insert({ 2, 5, 7 }));
    CHECK(rig.gpes == 1);
    for (uint32_t i : { 2, 5, 7 }) {
        auto slot = rig.device.slot(i);
        CHECK(slot.present);
        CHECK(slot.insert_pending);
        CHECK_FALSE(slot.remove_pending);
        CHECK_FALSE(slot.unplug_requested);
        rig.select(i);
        CHECK(rig.status() == (hp::STATUS_ENABLED | hp::STATUS_INSERT));
    }

    // Refused as a whole: nothing changes, no GPE.
    for (auto const& bad : { std::vector<uint32_t> { 3, 8 }, { 3, 1 }, { 3, 5 }, { 3, 4, 3 }, { 0xFFFF'FFFF } }) {
        CHECK_FALSE(rig.device.request_insert(bad));
        CHECK_FALSE(rig.device.slot(3).present);
        CHECK_FALSE(rig.device.slot(4).present);
    }
    CHECK(rig.gpes == 1);
}

TEST_CASE("cpu hotplug: remove requests mark every CPU, then raise the GPE once", "[cpu_hotplug]")
{
    Rig rig(8, 1);
    rig.cold_plug(6);
    REQUIRE(rig.remove({ 0, 3, 5 })); // CPU 0 is an ordinary CPU here; the boot CPU is 1
    CHECK(rig.gpes == 1);
    for (uint32_t i : { 0, 3, 5 }) {
        auto slot = rig.device.slot(i);
        CHECK(slot.present);
        CHECK(slot.remove_pending);
        CHECK(slot.unplug_requested);
        CHECK_FALSE(slot.insert_pending);
        rig.select(i);
        CHECK(rig.status() == (hp::STATUS_ENABLED | hp::STATUS_REMOVE));
    }

    // Refused as a whole: beyond the possible CPUs, absent, the boot CPU, already requested (even with
    // the event cleared by the guest), repeated.
    rig.select(3);
    rig.control(hp::CONTROL_CLEAR_REMOVE);
    for (auto const& bad :
        { std::vector<uint32_t> { 4, 8 }, { 4, 6 }, { 4, 1 }, { 4, 3 }, { 4, 5 }, { 4, 2, 4 } }) {
        CHECK_FALSE(rig.device.request_remove(bad));
        CHECK(idle(rig.device.slot(4)));
        CHECK(idle(rig.device.slot(2)));
    }
    CHECK(rig.gpes == 1);
    REQUIRE(rig.remove({}));
    CHECK(rig.gpes == 1);
}

TEST_CASE("cpu hotplug: the guest cannot eject what the VMM did not ask to remove", "[cpu_hotplug]")
{
    Rig rig(8);
    rig.cold_plug(4);
    auto refused = [&](uint32_t index, uint8_t bits) {
        auto before = rig.device.refused_ejects();
        auto slot_before = rig.device.slot(index);
        rig.select(index);
        rig.control(bits);
        auto after = rig.device.slot(index);
        return rig.ejected.empty() && rig.device.refused_ejects() == before + 1
            && after.present == slot_before.present && after.fw_remove == slot_before.fw_remove;
    };
    for (uint8_t bits : { hp::CONTROL_EJECT, hp::CONTROL_FW_EJECT }) {
        INFO("control " << int(bits));
        CHECK(refused(6, bits));    // absent
        CHECK(refused(BOOT, bits)); // the boot CPU, present
        CHECK(refused(2, bits));    // present, but no removal requested
        REQUIRE(rig.remove({ 3 }));
        rig.device.cancel_remove(3); // the guest refused it (_OST 0x81), or the VMM gave up
        CHECK(idle(rig.device.slot(3)));
        CHECK(refused(3, bits));
    }
    // Past the possible CPUs nothing is reached at all, so nothing is counted either.
    REQUIRE(rig.remove({ 2 }));
    auto before = rig.device.refused_ejects();
    rig.select(8);
    rig.control(hp::CONTROL_EJECT);
    rig.select(0xFFFF'FFFF);
    rig.control(hp::CONTROL_EJECT);
    CHECK(rig.ejected.empty());
    CHECK(rig.device.refused_ejects() == before);
    CHECK(rig.device.slot(2).present);
    CHECK(rig.device.slot(2).unplug_requested);
}

TEST_CASE("cpu hotplug: a withdrawn removal shows no event, yet the eject a guest already began is honoured", "[cpu_hotplug]")
{
    Rig rig(4);
    rig.cold_plug(4);
    REQUIRE(rig.remove({ 2, 3 }));
    rig.device.withdraw_remove(2);
    rig.device.withdraw_remove(3);
    rig.device.withdraw_remove(1); // never requested: nothing to withdraw
    CHECK(idle(rig.device.slot(1)));
    for (uint32_t index : { 2, 3 }) {
        auto slot = rig.device.slot(index);
        CHECK_FALSE(slot.remove_pending); // a guest that has not seen the request never will
        CHECK(slot.unplug_requested);
        CHECK(slot.withdrawn);
        rig.select(index);
        CHECK(rig.status() == hp::STATUS_ENABLED);
    }
    // A guest that was already taking CPU 2 down ejects it: honoured.
    rig.select(2);
    rig.control(hp::CONTROL_EJECT);
    CHECK(rig.ejected == std::vector<uint32_t> { 2 });
    CHECK(idle(rig.device.slot(2)));
    // A withdrawn request can be made again; a refused one (cancel_remove) leaves nothing to eject.
    REQUIRE(rig.remove({ 3 }));
    CHECK(rig.device.slot(3).remove_pending);
    CHECK_FALSE(rig.device.slot(3).withdrawn);
    CHECK_FALSE(rig.remove({ 3 })); // a standing request is not made twice
    rig.device.cancel_remove(3);
    CHECK(idle(rig.device.slot(3)));
    rig.select(3);
    rig.control(hp::CONTROL_EJECT);
    CHECK(rig.ejected == std::vector<uint32_t> { 2 });
}

TEST_CASE("cpu hotplug: an eject of a requested CPU empties the slot and reports it", "[cpu_hotplug]")
{
    Rig rig(4);
    rig.cold_plug(4);
    REQUIRE(rig.remove({ 2 }));
    rig.select(2);
    rig.command(hp::Command::OstEvent);
    rig.out(hp::REG_DATA, hp::OST_EJECT_REQUEST, 4);
    rig.control(hp::CONTROL_CLEAR_REMOVE); // as CSCN does before OSPM evaluates _EJ0
    rig.control(hp::CONTROL_EJECT);
    CHECK(rig.ejected == std::vector<uint32_t> { 2 });
    CHECK(rig.status() == 0);
    auto slot = rig.device.slot(2);
    CHECK_FALSE(slot.present);
    CHECK(idle(slot));
    CHECK(slot.ost_event == hp::OST_EJECT_REQUEST); // the final _OST(3, 0) still names its event

    // Once gone it cannot be ejected again, and it can be plugged again.
    rig.control(hp::CONTROL_EJECT);
    CHECK(rig.ejected.size() == 1);
    REQUIRE(rig.insert({ 2 }));
    CHECK(rig.status() == (hp::STATUS_ENABLED | hp::STATUS_INSERT));

    SECTION("events still pending are dropped with the CPU")
    {
        REQUIRE(rig.remove({ 2 })); // before the guest even saw the insert
        rig.control(hp::CONTROL_EJECT);
        CHECK(rig.ejected == std::vector<uint32_t> { 2, 2 });
        CHECK(idle(rig.device.slot(2)));
        rig.select(0);
        CHECK(rig.next_event() == 0); // nothing left for the search to find
    }
    SECTION("after a firmware hand-off")
    {
        REQUIRE(rig.remove({ 1 }));
        rig.select(1);
        rig.control(hp::CONTROL_FW_EJECT);
        CHECK(rig.status() == (hp::STATUS_ENABLED | hp::STATUS_REMOVE | hp::STATUS_FW_REMOVE));
        CHECK(rig.ejected.size() == 1); // the hand-off itself ejects nothing
        rig.control(hp::CONTROL_EJECT);
        CHECK(rig.ejected.back() == 1);
        CHECK(idle(rig.device.slot(1)));
    }
    SECTION("cancel_remove also withdraws a firmware hand-off")
    {
        REQUIRE(rig.remove({ 1 }));
        rig.select(1);
        rig.control(hp::CONTROL_FW_EJECT);
        rig.device.cancel_remove(1);
        CHECK(rig.status() == hp::STATUS_ENABLED);
        CHECK(rig.device.slot(1).present);
        CHECK(idle(rig.device.slot(1)));
        rig.device.cancel_remove(7); // not a possible CPU: ignored
    }
}

TEST_CASE("cpu hotplug: reset drops events and requests, keeps presence and the selector", "[cpu_hotplug]")
{
    Rig rig(8);
    rig.cold_plug(4);
    REQUIRE(rig.insert({ 5 }));
    REQUIRE(rig.remove({ 2, 3 }));
    rig.select(3);
    rig.control(hp::CONTROL_FW_EJECT);
    rig.command(hp::Command::OstEvent);
    rig.out(hp::REG_DATA, 1, 4);
    rig.select(6);
    rig.command(hp::Command::ArchId);

    rig.device.reset();
    for (uint32_t i = 0; i < 8; ++i) {
        auto slot = rig.device.slot(i);
        CHECK(slot.present == (i < 4 || i == 5));
        CHECK(idle(slot));
        CHECK(slot.ost_event == 0);
    }
    CHECK(rig.data() == 6); // command 0 again, and the selector kept
    rig.select(3);
    rig.control(hp::CONTROL_EJECT); // the request died with the reset
    CHECK(rig.ejected.empty());
    REQUIRE(rig.remove({ 3 })); // and can be made again
    CHECK(rig.gpes == 3);
}

// The guest's CSCN (QEMU's, from hw/acpi/cpu.c; ours in docs/acpi.md) and the driver that mirrors it: from
// uid 0, select uid, command 0, read the selected CPU from data (a smaller value means the search wrapped),
// act on its status, clear the event, continue from the next uid. Repeats while a pass found anything.
TEST_CASE("cpu hotplug: a CSCN-style scan sees every event exactly once", "[cpu_hotplug]")
{
    constexpr uint32_t N = 16;
    Rig rig(N);
    rig.cold_plug(8);
    REQUIRE(rig.insert({ 8, 11, 15 }));
    REQUIRE(rig.remove({ 1, 7 }));
    REQUIRE(rig.insert({ 9 }));
    REQUIRE(rig.remove({ 11 })); // inserted and removed before the guest looked: insert first, then remove

    auto scan = [&] {
        std::map<uint32_t, int> inserts, removes;
        bool has_event = true;
        int passes = 0;
        while (has_event && passes++ < 8) {
            has_event = false;
            for (uint32_t uid = 0; uid < N; ++uid) {
                rig.select(uid);
                rig.command(hp::Command::NextEvent);
                uint32_t found = rig.data();
                if (found < uid)
                    break;
                uid = found;
                uint8_t status = rig.status();
                if (status & hp::STATUS_INSERT) {
                    ++inserts[uid];
                    rig.control(hp::CONTROL_CLEAR_INSERT);
                    has_event = true;
                } else if (status & hp::STATUS_REMOVE) {
                    ++removes[uid];
                    rig.control(hp::CONTROL_CLEAR_REMOVE);
                    has_event = true;
                }
            }
        }
        return std::pair { inserts, removes };
    };

    rig.select(13); // a stale selector from an earlier _STA changes nothing
    auto [inserts, removes] = scan();
    CHECK(inserts == std::map<uint32_t, int> { { 8, 1 }, { 9, 1 }, { 11, 1 }, { 15, 1 } });
    CHECK(removes == std::map<uint32_t, int> { { 1, 1 }, { 7, 1 }, { 11, 1 } });
    CHECK(rig.gpes == 4);

    // OSPM ejects what it was asked to remove; then a new GPE finds nothing left over.
    for (uint32_t uid : { 1, 7, 11 }) {
        rig.select(uid);
        rig.control(hp::CONTROL_EJECT);
    }
    CHECK(rig.ejected == std::vector<uint32_t> { 1, 7, 11 });
    auto [again_inserts, again_removes] = scan();
    CHECK(again_inserts.empty());
    CHECK(again_removes.empty());

    // Events at both ends of the range, found from a start past them.
    REQUIRE(rig.insert({ 1 }));
    REQUIRE(rig.remove({ 15 }));
    auto [edge_inserts, edge_removes] = scan();
    CHECK(edge_inserts == std::map<uint32_t, int> { { 1, 1 } });
    CHECK(edge_removes == std::map<uint32_t, int> { { 15, 1 } });
}

TEST_CASE("cpu hotplug: guest accesses race VMM requests safely", "[cpu_hotplug]")
{
    constexpr uint32_t N = 8;
    constexpr int GUEST_THREADS = 3;
    constexpr int VMM_OPERATIONS = 20000;

    std::array<std::atomic<int>, N> ejected {};
    std::array<std::atomic<int>, N> requested {};
    std::atomic<int> total_ejected { 0 };
    std::atomic<int> foreign_ejected { 0 };
    std::atomic<bool> done { false };
    CpuHotplugDevice device(arch_ids(N), BOOT,
        { [&](uint32_t index) {
             if (index == BOOT || index >= N)
                 ++foreign_ejected;
             else
                 ++ejected[index];
             ++total_ejected;
         },
            [](uint32_t, uint32_t, uint32_t) {}, [] {} });
    for (uint32_t i = 0; i < N; ++i)
        device.set_present(i, true);

    auto out = [&](uint64_t offset, uint32_t value, size_t size = 1) {
        std::array<uint8_t, 4> bytes { uint8_t(value), uint8_t(value >> 8), uint8_t(value >> 16), uint8_t(value >> 24) };
        device.write(offset, std::span(bytes.data(), size));
    };
    // Without the AML's CPLK mutex the threads' selector writes interleave: each one ends up acting on
    // whatever another selected, which is exactly what a hostile guest can do.
    std::vector<std::thread> guests;
    for (int t = 0; t < GUEST_THREADS; ++t)
        guests.emplace_back([&, t] {
            std::minstd_rand rng(static_cast<unsigned>(t + 1));
            while (!done.load()) {
                if (rng() % 2) { // a driver's step: find an event, acknowledge it, eject on remove
                    std::array<uint8_t, 4> status {};
                    out(hp::REG_SELECTOR, rng() % N, 4);
                    out(hp::REG_COMMAND, static_cast<uint8_t>(hp::Command::NextEvent));
                    device.read(hp::REG_STATUS, std::span(status.data(), 1));
                    if (status[0] & hp::STATUS_INSERT) {
                        out(hp::REG_STATUS, hp::CONTROL_CLEAR_INSERT);
                    } else if (status[0] & hp::STATUS_REMOVE) {
                        out(hp::REG_STATUS, hp::CONTROL_CLEAR_REMOVE);
                        out(hp::REG_STATUS, hp::CONTROL_EJECT);
                    }
                    continue;
                }
                uint64_t offset = rng() % hp::SIZE;
                size_t size = std::array<size_t, 4> { 1, 2, 4, 8 }[rng() % 4];
                if (offset + size > hp::SIZE)
                    offset = 0;
                std::array<uint8_t, 8> bytes {};
                if (rng() % 2) {
                    device.read(offset, std::span(bytes.data(), size));
                } else {
                    uint64_t value = rng(); // 64 bits: an 8-byte access shifts by up to 56
                    if (offset == hp::REG_SELECTOR)
                        value %= N + 2; // mostly in range, sometimes not
                    else if (offset == hp::REG_STATUS)
                        value = 1u << (1 + rng() % 4);
                    else if (offset == hp::REG_COMMAND)
                        value %= 5;
                    for (size_t b = 0; b < size; ++b)
                        bytes[b] = static_cast<uint8_t>(value >> (8 * b));
                    device.write(offset, std::span(bytes.data(), size));
                }
            }
        });

    std::minstd_rand rng(99);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int op = 0; op < VMM_OPERATIONS || (total_ejected == 0 && std::chrono::steady_clock::now() < deadline);
         ++op) {
        uint32_t index = static_cast<uint32_t>(rng() % N);
        std::array<uint32_t, 1> one { index };
        switch (rng() % 4) {
        case 0:
            device.request_insert(one);
            break;
        case 1:
            if (device.request_remove(one))
                ++requested[index];
            break;
        case 2:
            device.cancel_remove(index);
            break;
        default: {
            auto slot = device.slot(index);
            if (!slot.present)
                CHECK(idle(slot)); // an empty slot never keeps an event or a request
            break;
        }
        }
    }
    done = true;
    for (auto& guest : guests)
        guest.join();

    CHECK(total_ejected > 0);
    CHECK(foreign_ejected == 0);
    CHECK(device.slot(BOOT).present);
    for (uint32_t i = 0; i < N; ++i) {
        INFO("CPU " << i);
        CHECK(ejected[i] <= requested[i]); // each accepted eject used up one request
    }
}
