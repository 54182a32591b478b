#include <guest/lib/hotplug_registers.hpp>
#include <guest/lib/control_page.hpp>

#include <cpuplug/base/errno.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace hp = ::cpu_hotplug;
using guest::hotplug::Refusal;

namespace {

// QEMU's register block (hw/acpi/cpu.c; table in docs/acpi.md) in memory, logging every access the way it would
// reach the VMM: "sel 3", "cmd 0", "rd data 3", "rd sts 0x3", "ctl 0x2", "wr data 1".
class FakeBlock final : public guest::hotplug::Registers {
public:
    struct Cpu {
        bool present { false };
        bool insert { false };
        bool remove { false };
        bool fw_remove { false };
        uint32_t arch_id { 0 };
    };
    struct Ost {
        uint32_t index, event, status;
        bool operator==(Ost const&) const = default;
    };

    explicit FakeBlock(uint32_t max_cpus)
        : cpus(max_cpus)
    {
        for (uint32_t i = 0; i < max_cpus; ++i)
            cpus[i].arch_id = i < 8 ? i : i + 4;
        cpus[0].present = true;
    }

    void select(uint32_t index) override
    {
        log.push_back("sel " + std::to_string(index));
        selector = index;
    }
    void command(hp::Command value) override
    {
        log.push_back("cmd " + std::to_string(int(value)));
        if (!valid())
            return;
        current = value;
        if (value != hp::Command::NextEvent)
            return;
        for (uint32_t n = 0; n < cpus.size(); ++n) {
            uint32_t i = static_cast<uint32_t>((selector + n) % cpus.size());
            if (cpus[i].insert || cpus[i].remove || cpus[i].fw_remove) {
                selector = i;
                return;
            }
        }
    }
    uint8_t read_status() override
    {
        uint8_t status = 0;
        if (valid()) {
            auto const& c = cpus[selector];
            status = static_cast<uint8_t>((c.present ? hp::STATUS_ENABLED : 0) | (c.insert ? hp::STATUS_INSERT : 0)
                | (c.remove ? hp::STATUS_REMOVE : 0) | (c.fw_remove ? hp::STATUS_FW_REMOVE : 0));
        }
        char text[8];
        std::snprintf(text, sizeof text, "%#x", status);
        log.push_back(std::string("rd sts ") + (status ? text : "0"));
        return status;
    }
    void control(uint8_t bits) override
    {
        log.push_back("ctl " + std::to_string(bits));
        if (!valid())
            return;
        auto& c = cpus[selector];
        if (bits & hp::CONTROL_CLEAR_INSERT)
            c.insert = false;
        else if (bits & hp::CONTROL_CLEAR_REMOVE)
            c.remove = false;
        else if ((bits & hp::CONTROL_EJECT) && c.present && selector != 0 && !keep_ejected) {
            c.present = false;
            if (replug_after_eject) // the VMM's device_add of the freed slot, before the guest looks again
                c.present = c.insert = true;
        }
    }
    uint32_t read_data() override
    {
        uint32_t value = 0;
        if (valid())
            value = current == hp::Command::NextEvent ? selector
                : current == hp::Command::ArchId      ? cpus[selector].arch_id
                                                      : 0;
        if (hostile_data)
            value = hostile_data(value);
        log.push_back("rd data " + std::to_string(value));
        return value;
    }
    void write_data(uint32_t value) override
    {
        log.push_back("wr data " + std::to_string(value));
        if (!valid())
            return;
        if (current == hp::Command::OstEvent)
            ost_event = value;
        else if (current == hp::Command::OstStatus)
            osts.push_back({ selector, ost_event, value });
    }

    bool valid() const { return selector < cpus.size(); }
    void plug(uint32_t index)
    {
        cpus[index].present = true;
        cpus[index].insert = true;
    }
    void unplug_request(uint32_t index) { cpus[index].remove = true; }

    std::vector<Cpu> cpus;
    std::vector<std::string> log;
    std::vector<Ost> osts;
    uint32_t selector { 0 };
    hp::Command current { hp::Command::NextEvent };
    uint32_t ost_event { 0 };
    bool keep_ejected { false };
    bool replug_after_eject { false };
    uint32_t (*hostile_data)(uint32_t) { nullptr };
};

struct Lists {
    uint16_t inserts[1024] {};
    uint16_t removes[1024] {};
    std::vector<uint16_t> ins(guest::hotplug::Scan const& scan) const { return { inserts, inserts + scan.inserts }; }
    std::vector<uint16_t> rem(guest::hotplug::Scan const& scan) const { return { removes, removes + scan.removes }; }
};

using Log = std::vector<std::string>;

} // namespace

TEST_CASE("a hot-add of one CPU is found in seven accesses and acknowledged in six", "[guest][hotplug]")
{
    FakeBlock block(8);
    block.plug(5);
    Lists lists;
    auto scan = guest::hotplug::scan_events(block, 8, 1024, lists.inserts, lists.removes, 1024);
    CHECK(lists.ins(scan) == std::vector<uint16_t> { 5 });
    CHECK(scan.removes == 0);
    CHECK_FALSE(scan.rescan);
    // The second search starts past 5, wraps onto 5's pending insert event and ends the walk.
    CHECK(block.log == Log { "sel 0", "cmd 0", "rd data 5", "rd sts 0x3", "sel 6", "cmd 0", "rd data 5" });
    CHECK(block.cpus[5].insert); // not cleared by the walk

    block.log.clear();
    guest::hotplug::acknowledge(block, 5, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS);
    CHECK(block.log == Log { "sel 5", "ctl 2", "cmd 1", "wr data 1", "cmd 2", "wr data 0" });
    CHECK_FALSE(block.cpus[5].insert);
    CHECK(block.osts == std::vector<FakeBlock::Ost> { { 5, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS } });
}

TEST_CASE("a removal request is cleared and answered in progress during the walk", "[guest][hotplug]")
{
    FakeBlock block(8);
    block.cpus[3].present = true;
    block.unplug_request(3);
    Lists lists;
    auto scan = guest::hotplug::scan_events(block, 8, 1024, lists.inserts, lists.removes, 1024);
    CHECK(lists.rem(scan) == std::vector<uint16_t> { 3 });
    CHECK(scan.inserts == 0);
    // Nothing is left pending, so the last search does not move the selector: the status says so.
    CHECK(block.log
        == Log { "sel 0", "cmd 0", "rd data 3", "rd sts 0x5", "ctl 4", "cmd 1", "wr data 3", "cmd 2", "wr data 132",
            "sel 4", "cmd 0", "rd data 4", "rd sts 0" });
    CHECK_FALSE(block.cpus[3].remove);
    CHECK(block.osts == std::vector<FakeBlock::Ost> { { 3, hp::OST_EJECT_REQUEST, hp::OST_EJECT_IN_PROGRESS } });

    block.log.clear();
    CHECK(guest::hotplug::eject(block, 3));
    guest::hotplug::write_ost(block, hp::OST_EJECT_REQUEST, hp::OST_SUCCESS);
    CHECK(block.log == Log { "sel 3", "ctl 8", "rd sts 0", "cmd 1", "wr data 3", "cmd 2", "wr data 0" });
    CHECK_FALSE(block.cpus[3].present);
    CHECK(block.osts.back() == FakeBlock::Ost { 3, hp::OST_EJECT_REQUEST, hp::OST_SUCCESS });
}

TEST_CASE("the walk collects mixed events in index order and stops when the search wraps", "[guest][hotplug]")
{
    FakeBlock block(16);
    block.plug(2);
    block.cpus[4].present = true;
    block.unplug_request(4);
    block.plug(9);
    block.cpus[12].present = true;
    block.unplug_request(12);
    block.plug(15);
    // The selector was left somewhere else by an earlier operation: the walk starts from 0 regardless.
    block.selector = 11;
    Lists lists;
    auto scan = guest::hotplug::scan_events(block, 16, 1024, lists.inserts, lists.removes, 1024);
    CHECK(lists.ins(scan) == std::vector<uint16_t> { 2, 9, 15 });
    CHECK(lists.rem(scan) == std::vector<uint16_t> { 4, 12 });
    CHECK_FALSE(scan.rescan);
    // After 15 the next index is 16, the end of the block: no further search.
    CHECK(block.log.back() == "rd sts 0x3");
    CHECK(block.osts.size() == 2);

    // Once the insertions are acknowledged, a new walk finds nothing in one look.
    for (uint16_t index : { 2, 9, 15 })
        guest::hotplug::acknowledge(block, index, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS);
    block.log.clear();
    scan = guest::hotplug::scan_events(block, 16, 1024, lists.inserts, lists.removes, 1024);
    CHECK(scan.inserts == 0);
    CHECK(scan.removes == 0);
    CHECK(block.log == Log { "sel 0", "cmd 0", "rd data 0", "rd sts 0x1" });
}

TEST_CASE("an event on the last CPU ends the walk at the bound, a looser bound costs one more search", "[guest][hotplug]")
{
    FakeBlock block(8);
    block.plug(7);
    Lists lists;
    auto scan = guest::hotplug::scan_events(block, 8, 1024, lists.inserts, lists.removes, 1024);
    CHECK(lists.ins(scan) == std::vector<uint16_t> { 7 });
    CHECK(block.log == Log { "sel 0", "cmd 0", "rd data 7", "rd sts 0x3" });

    // A bound past the block's end: the selector is out of range, reads are 0, and 0 is a wrap.
    block.log.clear();
    scan = guest::hotplug::scan_events(block, 1024, 1024, lists.inserts, lists.removes, 1024);
    CHECK(lists.ins(scan) == std::vector<uint16_t> { 7 });
    CHECK(block.log == Log { "sel 0", "cmd 0", "rd data 7", "rd sts 0x3", "sel 8", "cmd 0", "rd data 0" });
}

TEST_CASE("a CPU with an insert and a remove event is taken as an insertion and asks for another walk", "[guest][hotplug]")
{
    FakeBlock block(4);
    block.plug(1);
    block.unplug_request(1);
    block.cpus[2].fw_remove = true; // firmware hand-off: nothing for the OS, skipped
    block.plug(3);
    Lists lists;
    auto scan = guest::hotplug::scan_events(block, 4, 1024, lists.inserts, lists.removes, 1024);
    CHECK(lists.ins(scan) == std::vector<uint16_t> { 1, 3 });
    CHECK(scan.removes == 0);
    CHECK(scan.rescan);
    CHECK(block.cpus[1].remove);

    for (uint16_t index : { 1, 3 })
        guest::hotplug::acknowledge(block, index, hp::CONTROL_CLEAR_INSERT, hp::OST_DEVICE_CHECK, hp::OST_SUCCESS);
    scan = guest::hotplug::scan_events(block, 4, 1024, lists.inserts, lists.removes, 1024);
    CHECK(scan.inserts == 0);
    CHECK(lists.rem(scan) == std::vector<uint16_t> { 1 });
    CHECK_FALSE(scan.rescan);
}

TEST_CASE("a full list ends the walk and asks for another", "[guest][hotplug]")
{
    FakeBlock block(8);
    for (uint32_t i = 1; i < 8; ++i)
        block.plug(i);
    Lists lists;
    auto scan = guest::hotplug::scan_events(block, 8, 1024, lists.inserts, lists.removes, 3);
    CHECK(lists.ins(scan) == std::vector<uint16_t> { 1, 2, 3 });
    CHECK(scan.rescan);
}

TEST_CASE("a hostile device cannot make the walk loop or leave its bounds", "[guest][hotplug]")
{
    Lists lists;
    SECTION("an index past the limit")
    {
        FakeBlock block(8);
        block.plug(1);
        block.hostile_data = [](uint32_t) -> uint32_t { return 5000; };
        auto scan = guest::hotplug::scan_events(block, 8, 1024, lists.inserts, lists.removes, 1024);
        CHECK(scan.inserts == 0);
        CHECK(block.log.size() == 3);
    }
    SECTION("a data register that always names CPU 0")
    {
        FakeBlock block(8);
        block.plug(1);
        block.hostile_data = [](uint32_t) -> uint32_t { return 0; };
        // CPU 0 has an event and is the answer to every search: the index asked for grows past 0 at
        // once, so the next answer is a wrap.
        block.cpus[0].insert = true;
        auto scan = guest::hotplug::scan_events(block, 8, 1024, lists.inserts, lists.removes, 1024);
        CHECK(lists.ins(scan) == std::vector<uint16_t> { 0 });
    }
    SECTION("a block with more CPUs than the limit")
    {
        FakeBlock block(2048);
        for (uint32_t i = 1; i < 2048; ++i)
            block.plug(i);
        auto scan = guest::hotplug::scan_events(block, 2048, 1024, lists.inserts, lists.removes, 1024);
        CHECK(scan.inserts == 1023); // 1..1023; 1024 is past the limit
        CHECK(lists.inserts[1022] == 1023);
    }
}

TEST_CASE("an eject the device ignores is seen in the status read after it", "[guest][hotplug]")
{
    FakeBlock block(4);
    block.cpus[2].present = true;
    block.keep_ejected = true;
    CHECK_FALSE(guest::hotplug::eject(block, 2));
    block.keep_ejected = false;
    CHECK_FALSE(guest::hotplug::eject(block, 0)); // the boot CPU: QEMU refuses
    CHECK(guest::hotplug::eject(block, 2));
}

TEST_CASE("an eject followed at once by a new insertion of the slot is an eject done", "[guest][hotplug]")
{
    // The VMM frees the slot on the eject and may plug it again before the guest reads the status: the
    // CPU then shows present again, with an insert event, which the next walk handles.
    FakeBlock block(4);
    block.cpus[2].present = true;
    block.replug_after_eject = true;
    CHECK(guest::hotplug::eject(block, 2));
    CHECK(block.cpus[2].insert);
    // A refused eject shows no insert event.
    block.replug_after_eject = false;
    block.keep_ejected = true;
    block.cpus[2].insert = false;
    CHECK_FALSE(guest::hotplug::eject(block, 2));
}

TEST_CASE("command 3 reads a CPU's arch id", "[guest][hotplug]")
{
    FakeBlock block(16);
    block.log.clear();
    CHECK(guest::hotplug::read_arch_id(block, 9) == 13);
    CHECK(block.log == Log { "sel 9", "cmd 3", "rd data 13" });
}

TEST_CASE("a refused removal answers Linux's _OST code for its reason", "[guest][hotplug]")
{
    using guest::hotplug::ost_status;
    using guest::hotplug::refusal_of;
    CHECK(refusal_of(0, false) == Refusal::None);
    CHECK(refusal_of(-cpuplug::ERR_PERM, true) == Refusal::BootCpu);
    CHECK(refusal_of(-cpuplug::ERR_BUSY, true) == Refusal::Busy);
    CHECK(refusal_of(-cpuplug::ERR_AGAIN, true) == Refusal::Vetoed);
    CHECK(refusal_of(-cpuplug::ERR_AGAIN, false) == Refusal::Failed);
    CHECK(refusal_of(-cpuplug::ERR_IO, false) == Refusal::Failed);
    CHECK(ost_status(Refusal::None) == 0x00);
    CHECK(ost_status(Refusal::BootCpu) == 0x80);
    CHECK(ost_status(Refusal::Vetoed) == 0x81);
    CHECK(ost_status(Refusal::Busy) == 0x82);
    CHECK(ost_status(Refusal::Failed) == 0x01);
}

// ---- the control page ---------------------------------------------------------------------------------

namespace {

using cpuplug::CpuhpState;

// The control CPU alone: enough for PREPARE-section walks, which run on it; no AP ever starts.
class SoloPlatform final : public cpuplug::Platform {
public:
    uint32_t this_cpu() override { return 0; }
    int kick_ap(uint32_t) override { return -cpuplug::ERR_IO; }
    int run_on_cpu(uint32_t, int (*)(void*), void*) override { return -cpuplug::ERR_IO; }
    bool wait_until(bool (*done)(void const*), void const* arg, uint64_t) override { return done(arg); }
    void wake(uint32_t) override { }
    uint64_t now_ns() override { return ++m_now; }
    void warn(char const* what, uint32_t, CpuhpState, int) override { warnings.push_back(what); }
    std::vector<std::string> warnings;

private:
    uint64_t m_now { 0 };
};

int nothing(uint32_t, void*) { return 0; }
uint32_t apic_of(uint32_t cpu) { return cpu * 2; }

struct ControlFixture {
    SoloPlatform platform;
    std::unique_ptr<cpuplug::Cpuhp> hotplug = std::make_unique<cpuplug::Cpuhp>(platform);
    std::vector<uint64_t> memory = std::vector<uint64_t>(control::SIZE / 8, 0);
    guest::control_page::Context context { *hotplug, 4, apic_of };
    uint32_t seq { 0 };

    ControlFixture()
    {
        for (uint32_t cpu = 0; cpu < 4; ++cpu)
            (void)hotplug->set_possible(cpu);
        (void)hotplug->set_present(1, true);
        (void)hotplug->set_present(3, true);
        hotplug->boot_cpu_online(0);
        (void)hotplug->setup_state_nocalls(CpuhpState::PercpuPrepare, "percpu:prepare", nothing, nothing);
        (void)hotplug->setup_state_nocalls(CpuhpState::BpPrepareDyn, "test:prepare", nothing, nothing);
        guest::control_page::init(page());
    }
    void* page() { return memory.data(); }
    control::Header& header() { return *static_cast<control::Header*>(page()); }
    control::CpuRecord const& record(uint32_t cpu)
    {
        return reinterpret_cast<control::CpuRecord const*>(
            reinterpret_cast<uint8_t const*>(page()) + control::CPU_RECORDS_OFFSET)[cpu];
    }
    // One request as the VMM makes it; the guest's answer.
    int request(control::Command command, uint32_t cpu = 0, uint32_t state = 0)
    {
        header().command = static_cast<uint32_t>(command);
        header().cpu = cpu;
        header().state = state;
        header().request_seq = ++seq;
        uint32_t answered = 0;
        REQUIRE(guest::control_page::serve(page(), context, &answered));
        CHECK(answered == seq);
        CHECK(header().response_seq == seq);
        return header().result;
    }
};

} // namespace

TEST_CASE("the control page answers only a new request", "[guest][control]")
{
    ControlFixture f;
    CHECK(f.header().magic == control::MAGIC);
    CHECK(f.header().version == control::VERSION);
    uint32_t answered = 99;
    CHECK_FALSE(guest::control_page::serve(f.page(), f.context, &answered));
    CHECK(answered == 99);
    CHECK(f.request(control::Command::HotplugDisable) == 0);
    CHECK_FALSE(guest::control_page::serve(f.page(), f.context, &answered)); // already answered
}

TEST_CASE("QueryCpuhp lists the named states and every possible CPU", "[guest][control]")
{
    ControlFixture f;
    CHECK(f.request(control::Command::QueryCpuhp) == 0);
    auto const& h = f.header();
    std::vector<std::pair<uint16_t, std::string>> states;
    for (uint32_t i = 0; i < h.state_count; ++i)
        states.emplace_back(h.states[i].index, h.states[i].name);
    REQUIRE(states.size() >= 4);
    CHECK(states.front() == std::pair<uint16_t, std::string> { 0, "offline" });
    CHECK(states[1] == std::pair<uint16_t, std::string> { 1, "percpu:prepare" });
    CHECK(states[2] == std::pair<uint16_t, std::string> { 2, "test:prepare" }); // a registered dynamic slot
    CHECK(states[3] == std::pair<uint16_t, std::string> { 10, "cpu:kick_ap" }); // unnamed slots 3-9 left out
    CHECK(states.back() == std::pair<uint16_t, std::string> { 35, "online" });
    for (uint32_t i = 1; i < h.state_count; ++i)
        CHECK(h.states[i - 1].index < h.states[i].index);

    CHECK(h.cpu_count == 4);
    CHECK(h.boot_cpu == 0);
    CHECK(h.disabled == 0);
    CHECK(f.record(0).state == 35);
    CHECK(f.record(0).flags == (control::CPU_PRESENT | control::CPU_ONLINE | control::CPU_ACTIVE));
    CHECK(f.record(1).state == 0);
    CHECK(f.record(1).flags == control::CPU_PRESENT);
    CHECK(f.record(1).fail == cpuplug::CPUHP_INVALID);
    CHECK(f.record(2).flags == 0);
    CHECK(f.record(3).apic_id == 6);
}

TEST_CASE("SetTarget and SetFail drive the hotplug core, with a one-shot failure and its rollback", "[guest][control]")
{
    ControlFixture f;
    CHECK(f.request(control::Command::SetFail, 1, 2) == 0); // test:prepare
    CHECK(f.request(control::Command::QueryCpuhp) == 0);
    CHECK(f.record(1).fail == 2);
    CHECK(f.request(control::Command::SetTarget, 1, 2) == -cpuplug::ERR_AGAIN);
    CHECK(f.request(control::Command::QueryCpuhp) == 0);
    CHECK(f.record(1).state == 0);
    CHECK(f.record(1).last_result == -cpuplug::ERR_AGAIN);
    CHECK(f.record(1).flags == (control::CPU_PRESENT | control::CPU_ROLLED_BACK));
    CHECK(f.record(1).fail == cpuplug::CPUHP_INVALID);

    CHECK(f.request(control::Command::SetTarget, 1, 2) == 0);
    CHECK(f.hotplug->state(1) == CpuhpState::BpPrepareDyn);
    // Down again: refused while the boot CPU is the only one online, as Linux's _cpu_down() (-EBUSY).
    CHECK(f.request(control::Command::SetTarget, 1, 1) == -cpuplug::ERR_BUSY);
    CHECK(f.hotplug->state(1) == CpuhpState::BpPrepareDyn);

    CHECK(f.request(control::Command::SetFail, 3, 1) == 0);
    CHECK(f.request(control::Command::SetFail, 3, cpuplug::CPUHP_INVALID) == 0);
    CHECK(f.hotplug->fail(3) == cpuplug::CPUHP_INVALID);
}

TEST_CASE("the control page refuses what it cannot trust", "[guest][control]")
{
    ControlFixture f;
    CHECK(f.request(control::Command::SetTarget, 4, 1) == -cpuplug::ERR_INVAL);          // not possible
    CHECK(f.request(control::Command::SetTarget, 0xFFFFFFFF, 1) == -cpuplug::ERR_INVAL);
    CHECK(f.request(control::Command::SetTarget, 1, 36) == -cpuplug::ERR_INVAL);         // no such state
    CHECK(f.request(control::Command::SetTarget, 1, 0x10001) == -cpuplug::ERR_INVAL);    // not truncated to 1
    CHECK(f.request(control::Command::SetTarget, 1, 11) == -cpuplug::ERR_INVAL);         // cpu:bringup, cant_stop
    CHECK(f.request(control::Command::SetTarget, 1, 5) == -cpuplug::ERR_INVAL);          // an unnamed slot
    CHECK(f.request(control::Command::SetTarget, 2, 1) == -cpuplug::ERR_INVAL);          // possible, not present
    CHECK(f.request(control::Command::SetTarget, 0, 0) == -cpuplug::ERR_BUSY);           // the only online CPU
    CHECK(f.request(control::Command::SetFail, 1, 36) == -cpuplug::ERR_INVAL);
    CHECK(f.request(control::Command::SetFail, 1, 13) == -cpuplug::ERR_INVAL);           // STARTING
    CHECK(f.request(control::Command::None) == -cpuplug::ERR_INVAL);
    CHECK(f.request(static_cast<control::Command>(99)) == -cpuplug::ERR_INVAL);
    CHECK(f.hotplug->state(1) == CpuhpState::Offline);
}

TEST_CASE("hotplug disable and enable nest, and an unmatched enable is refused", "[guest][control]")
{
    ControlFixture f;
    CHECK(f.request(control::Command::HotplugEnable) == -cpuplug::ERR_INVAL);
    CHECK(f.request(control::Command::HotplugDisable) == 0);
    CHECK(f.request(control::Command::HotplugDisable) == 0);
    CHECK(f.request(control::Command::QueryCpuhp) == 0);
    CHECK(f.header().disabled == 2);
    CHECK(f.request(control::Command::SetTarget, 1, 1) == -cpuplug::ERR_BUSY);
    CHECK(f.request(control::Command::HotplugEnable) == 0);
    CHECK(f.request(control::Command::SetTarget, 1, 1) == -cpuplug::ERR_BUSY);
    CHECK(f.request(control::Command::HotplugEnable) == 0);
    CHECK(f.request(control::Command::SetTarget, 1, 1) == 0);
    CHECK(f.request(control::Command::HotplugEnable) == -cpuplug::ERR_INVAL);
    CHECK(f.platform.warnings.empty()); // the core never saw the unbalanced enable
}

TEST_CASE("validate checks the command, the CPU and the state", "[guest][control]")
{
    using guest::control_page::validate;
    CHECK(validate(uint32_t(control::Command::QueryCpuhp), 9999, 9999, 4) == 0);
    CHECK(validate(uint32_t(control::Command::SetTarget), 3, 35, 4) == 0);
    CHECK(validate(uint32_t(control::Command::SetTarget), 3, cpuplug::CPUHP_INVALID, 4) == -cpuplug::ERR_INVAL);
    CHECK(validate(uint32_t(control::Command::SetFail), 3, cpuplug::CPUHP_INVALID, 4) == 0);
    CHECK(validate(uint32_t(control::Command::SetFail), 4, 1, 4) == -cpuplug::ERR_INVAL);
    CHECK(validate(6, 0, 0, 4) == -cpuplug::ERR_INVAL);
}
