#include <cpuplug/cpuhp.hpp>

#include "cpuhp_fixture.hpp"

#include <catch2/catch.hpp>

#include <limits>

#include <algorithm>
#include <random>
#include <thread>

using namespace cpuplug;
using test_support::CpuhpFixture;
using test_support::Step;
using test_support::TEST_CPUS;

namespace {

uint16_t idx(CpuhpState state) { return to_index(state); }

std::vector<Step> concat(std::vector<Step> a, std::vector<Step> const& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// The states where fail injection is accepted for a CPU resting at `from`, in the direction it would go.
std::vector<uint16_t> failable(CpuhpFixture& f, uint32_t cpu)
{
    std::vector<uint16_t> states;
    for (uint16_t s = 1; s < idx(CpuhpState::Online); ++s) {
        if (f.hotplug->set_fail(cpu, s) == 0)
            states.push_back(s);
        f.hotplug->set_fail(cpu, CPUHP_INVALID);
    }
    return states;
}

} // namespace

TEST_CASE("every CPU comes up to online and goes back down to offline", "[hotplug]")
{
    CpuhpFixture f;
    for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu) {
        REQUIRE(f.hotplug->cpu_up(cpu) == 0);
        CHECK(f.hotplug->state(cpu) == CpuhpState::Online);
        CHECK(f.steps(cpu) == f.walk(0, idx(CpuhpState::Online)));
    }
    CHECK(f.hotplug->online_mask().count() == TEST_CPUS);
    CHECK(f.hotplug->active_mask().count() == TEST_CPUS);
    for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu)
        CHECK(f.hotplug->sync(cpu) == ApSync::Online);

    f.platform.clear_traces();
    for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu) {
        REQUIRE(f.hotplug->cpu_down(cpu) == 0);
        CHECK(f.hotplug->state(cpu) == CpuhpState::Offline);
        CHECK(f.hotplug->sync(cpu) == ApSync::Dead);
        CHECK(f.steps(cpu) == f.walk(idx(CpuhpState::Online), 0));
        for (auto s : f.with_callback(true))
            CHECK_FALSE(f.recorder.is_up(cpu, from_index(s)));
    }
    CHECK(f.hotplug->online_mask().count() == 1);
    CHECK(f.hotplug->active_mask().count() == 1);
    CHECK(f.recorder.violations() == 0);
    CHECK(f.platform.warnings().empty());
    INFO(f.recorder.violation_log().size());
}

TEST_CASE("a CPU comes back after going down, on a fresh kick", "[hotplug]")
{
    CpuhpFixture f;
    for (int round = 0; round < 3; ++round) {
        REQUIRE(f.hotplug->cpu_up(3) == 0);
        REQUIRE(f.hotplug->cpu_down(3) == 0);
    }
    CHECK(f.platform.ap_threads_started() == 3);
    CHECK(f.recorder.violations() == 0);
}

TEST_CASE("fail injection at every failable state on the way up rolls back exactly the steps done", "[hotplug][rollback]")
{
    CpuhpFixture f;
    uint32_t cpu = 2;
    auto states = failable(f, cpu);
    // Everything with a startup, below cpu:bringup or in the ONLINE section; never STARTING.
    CHECK(states == std::vector<uint16_t> { idx(CpuhpState::PercpuPrepare), idx(f.PREPARE_DYN), idx(CpuhpState::KickAp),
                        idx(CpuhpState::BringupCpu), idx(CpuhpState::TeardownCpu), idx(f.ONLINE_DYN_A),
                        idx(f.ONLINE_DYN_B), idx(CpuhpState::ApActive) });
    for (uint16_t s : states) {
        if (s == idx(CpuhpState::TeardownCpu))
            continue; // only a teardown: never runs on the way up
        DYNAMIC_SECTION("fail at state " << s)
        {
            f.platform.clear_traces();
            REQUIRE(f.hotplug->set_fail(cpu, s) == 0);
            CHECK(f.hotplug->cpu_up(cpu) == -ERR_AGAIN);
            auto expected = concat(concat(f.walk(0, s - 1), { { s, true, true } }), f.walk(s - 1, 0));
            INFO("got      " << test_support::describe(f.steps(cpu)));
            INFO("expected " << test_support::describe(expected));
            CHECK(f.steps(cpu) == expected);
            CHECK(f.hotplug->state(cpu) == CpuhpState::Offline);
            CHECK(f.hotplug->fail(cpu) == CPUHP_INVALID); // one-shot
            CHECK(f.hotplug->last_result(cpu) == -ERR_AGAIN);
            CHECK(f.hotplug->rolled_back(cpu));
            CHECK_FALSE(f.hotplug->cpu_online(cpu));
            CHECK(f.recorder.violations() == 0);
            // And the CPU is not harmed: it comes up cleanly afterwards.
            REQUIRE(f.hotplug->cpu_up(cpu) == 0);
            REQUIRE(f.hotplug->cpu_down(cpu) == 0);
        }
    }
}

TEST_CASE("fail injection at every failable state on the way down rolls back up again", "[hotplug][rollback]")
{
    CpuhpFixture f;
    uint32_t cpu = 5;
    REQUIRE(f.hotplug->cpu_up(cpu) == 0);
    auto states = failable(f, cpu);
    // An online CPU: only the ONLINE section (PREPARE teardowns run after the AP died and cannot fail).
    CHECK(states == std::vector<uint16_t> { idx(CpuhpState::TeardownCpu), idx(f.ONLINE_DYN_A), idx(f.ONLINE_DYN_B),
                        idx(CpuhpState::ApActive) });
    for (uint16_t s : states) {
        DYNAMIC_SECTION("fail at state " << s)
        {
            f.platform.clear_traces();
            REQUIRE(f.hotplug->set_fail(cpu, s) == 0);
            CHECK(f.hotplug->cpu_down(cpu) == -ERR_AGAIN);
            uint16_t online = idx(CpuhpState::Online);
            auto expected = concat(concat(f.walk(online, s), { { s, false, true } }), f.walk(s, online));
            INFO("got      " << test_support::describe(f.steps(cpu)));
            INFO("expected " << test_support::describe(expected));
            CHECK(f.steps(cpu) == expected);
            CHECK(f.hotplug->state(cpu) == CpuhpState::Online);
            CHECK(f.hotplug->cpu_online(cpu));
            CHECK(f.hotplug->active_mask().test(cpu));
            CHECK(f.recorder.violations() == 0);
        }
    }
}

TEST_CASE("a failing callback cleans up after itself and the rest is undone", "[hotplug][rollback]")
{
    CpuhpFixture f;
    SECTION("a startup in PREPARE")
    {
        f.recorder.fail_startup(1, f.PREPARE_DYN, -ERR_NOMEM);
        CHECK(f.hotplug->cpu_up(1) == -ERR_NOMEM);
        CHECK(f.steps(1) == concat(concat(f.walk(0, idx(f.PREPARE_DYN) - 1), { { idx(f.PREPARE_DYN), true, true } }),
                                f.walk(idx(f.PREPARE_DYN) - 1, 0)));
        CHECK(f.hotplug->state(1) == CpuhpState::Offline);
    }
    SECTION("a startup in ONLINE, on the AP")
    {
        f.recorder.fail_startup(1, f.ONLINE_DYN_B, -ERR_NOMEM);
        CHECK(f.hotplug->cpu_up(1) == -ERR_NOMEM);
        uint16_t s = idx(f.ONLINE_DYN_B);
        CHECK(f.steps(1) == concat(concat(f.walk(0, s - 1), { { s, true, true } }), f.walk(s - 1, 0)));
        CHECK(f.hotplug->state(1) == CpuhpState::Offline);
        CHECK(f.hotplug->sync(1) == ApSync::Dead);
        CHECK_FALSE(f.hotplug->cpu_online(1));
    }
    SECTION("a teardown in ONLINE vetoes going down")
    {
        REQUIRE(f.hotplug->cpu_up(1) == 0);
        f.platform.clear_traces();
        f.recorder.fail_teardown(1, f.ONLINE_DYN_A, -ERR_BUSY);
        CHECK(f.hotplug->cpu_down(1) == -ERR_BUSY);
        uint16_t s = idx(f.ONLINE_DYN_A), online = idx(CpuhpState::Online);
        CHECK(f.steps(1) == concat(concat(f.walk(online, s), { { s, false, true } }), f.walk(s, online)));
        CHECK(f.hotplug->state(1) == CpuhpState::Online);
    }
    CHECK(f.recorder.violations() == 0);
}

TEST_CASE("a failure while rolling back is reported and leaves the CPU where it stands", "[hotplug][rollback]")
{
    CpuhpFixture f;
    SECTION("going up")
    {
        REQUIRE(f.hotplug->set_fail(1, idx(f.ONLINE_DYN_B)) == 0);
        f.recorder.fail_teardown(1, f.ONLINE_DYN_A, -ERR_IO);
        CHECK(f.hotplug->cpu_up(1) == -ERR_AGAIN);
        // The rollback stopped at ONLINE_DYN_A, whose teardown failed: it is still up, and so is the CPU.
        CHECK(f.hotplug->state(1) == f.ONLINE_DYN_A);
        CHECK(f.recorder.is_up(1, f.ONLINE_DYN_A));
        CHECK(f.hotplug->cpu_online(1));
    }
    SECTION("going down")
    {
        REQUIRE(f.hotplug->cpu_up(1) == 0);
        REQUIRE(f.hotplug->set_fail(1, idx(f.ONLINE_DYN_A)) == 0);
        f.recorder.fail_startup(1, f.ONLINE_DYN_B, -ERR_IO);
        CHECK(f.hotplug->cpu_down(1) == -ERR_AGAIN);
        // Re-doing ONLINE_DYN_B failed: the CPU stays at ONLINE_DYN_A, which never went down.
        CHECK(f.hotplug->state(1) == f.ONLINE_DYN_A);
        CHECK_FALSE(f.recorder.is_up(1, f.ONLINE_DYN_B));
        CHECK(f.recorder.is_up(1, f.ONLINE_DYN_A));
    }
    auto warnings = f.platform.warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].what.find("no way forward, no way back") != std::string::npos);
    CHECK(warnings[0].cpu == 1);
    CHECK(f.recorder.violations() == 0);
}

TEST_CASE("fail injection refuses what Linux's fail file refuses", "[hotplug][fail]")
{
    CpuhpFixture f;
    CHECK(f.hotplug->set_fail(1, idx(CpuhpState::ApicStarting)) == -ERR_INVAL);  // STARTING cannot fail
    CHECK(f.hotplug->set_fail(1, idx(CpuhpState::ApOnlineIdle)) == -ERR_INVAL);  // no callbacks
    CHECK(f.hotplug->set_fail(1, idx(CpuhpState::ApOnlineDyn) + 5) == -ERR_INVAL); // unused slot
    CHECK(f.hotplug->set_fail(1, CPUHP_STATE_COUNT) == -ERR_INVAL);
    CHECK(f.hotplug->set_fail(1, idx(CpuhpState::PercpuPrepare)) == 0);
    REQUIRE(f.hotplug->set_fail(1, CPUHP_INVALID) == 0);
    REQUIRE(f.hotplug->cpu_up(1) == 0);
    CHECK(f.hotplug->set_fail(1, idx(CpuhpState::PercpuPrepare)) == -ERR_INVAL); // past cpu:bringup
    CHECK(f.hotplug->set_fail(1, idx(CpuhpState::KickAp)) == -ERR_INVAL);
    CHECK(f.hotplug->set_fail(1, idx(CpuhpState::ApActive)) == 0);
}

TEST_CASE("setup_state runs the startup on every CPU at or past the state, and undoes it all on a failure",
    "[hotplug][registration]")
{
    CpuhpFixture f;
    for (uint32_t cpu : { 1u, 2u, 3u, 4u })
        REQUIRE(f.hotplug->cpu_up(cpu) == 0);
    REQUIRE(f.hotplug->cpu_up(5, CpuhpState::PercpuPrepare) == 0); // below the new state: not called

    auto slot = CpuhpState::ApOnlineDyn + 2;
    SECTION("success")
    {
        REQUIRE(f.install(CpuhpState::ApOnlineDyn, "test:late", true) == idx(slot));
        for (uint32_t cpu : { 0u, 1u, 2u, 3u, 4u })
            CHECK(f.recorder.is_up(cpu, slot));
        CHECK_FALSE(f.recorder.is_up(5, slot));
        CHECK(std::string(f.hotplug->state_name(slot)) == "test:late");
        REQUIRE(f.hotplug->remove_state(slot) == 0);
        for (uint32_t cpu : { 0u, 1u, 2u, 3u, 4u })
            CHECK_FALSE(f.recorder.is_up(cpu, slot));
        CHECK(f.hotplug->state_name(slot) == nullptr);
    }
    SECTION("the startup fails on the Nth CPU")
    {
        f.recorder.fail_startup(3, slot, -ERR_NOMEM);
        CHECK(f.install(CpuhpState::ApOnlineDyn, "test:late", true) == -ERR_NOMEM);
        // CPUs 0, 1 and 2 got it and had it taken back; 3 failed; 4 was never asked.
        for (uint32_t cpu : { 0u, 1u, 2u, 3u, 4u })
            CHECK_FALSE(f.recorder.is_up(cpu, slot));
        std::vector<uint32_t> torn;
        for (auto const& t : f.platform.traces())
            if (t.state == slot && t.phase == TraceEvent::Phase::Exit && !t.bringup)
                torn.push_back(t.cpu);
        CHECK(torn == std::vector<uint32_t> { 0, 1, 2 });
        CHECK_FALSE(f.hotplug->state_installed(slot)); // uninstalled, the slot is free again
        CHECK(f.install(CpuhpState::ApOnlineDyn, "test:again", false) == idx(slot));
    }
    CHECK(f.recorder.violations() == 0);
}

TEST_CASE("dynamic slots run out with ERR_NOSPC and static slots are taken once", "[hotplug][registration]")
{
    CpuhpFixture f;
    // The fixture holds one PREPARE and two ONLINE slots.
    int prepare = 1, online = 2;
    while (f.install(CpuhpState::BpPrepareDyn, "test:more", false) > 0)
        ++prepare;
    while (f.install(CpuhpState::ApOnlineDyn, "test:more", false) > 0)
        ++online;
    CHECK(prepare == 8);
    CHECK(online == 16);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::BpPrepareDyn, "x:y", nullptr, nullptr) == -ERR_NOSPC);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::ApOnlineDyn, "x:y", nullptr, nullptr) == -ERR_NOSPC);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::PercpuPrepare, "percpu:prepare", nullptr, nullptr) == -ERR_BUSY);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::KickAp, "cpu:kick_ap", nullptr, nullptr) == -ERR_BUSY);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::ApOnline, "ap:online", nullptr, nullptr) == -ERR_BUSY);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::ApOnlineDyn + 3, "x:y", nullptr, nullptr) == -ERR_INVAL);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::Online, "x:y", nullptr, nullptr) == -ERR_INVAL);
    CHECK(f.hotplug->setup_state_nocalls(CpuhpState::Offline, "x:y", nullptr, nullptr) == -ERR_INVAL);
    REQUIRE(f.hotplug->remove_state_nocalls(CpuhpState::ApOnlineDyn + 4) == 0);
    CHECK(f.install(CpuhpState::ApOnlineDyn, "test:reuse", false) == idx(CpuhpState::ApOnlineDyn) + 4);
}

namespace {

struct Thing {
    CpuhpInstance node;
    int id;
    std::vector<std::pair<uint32_t, bool>>* log;
    int fail_on_cpu { -1 };
};

int thing_up(uint32_t cpu, CpuhpInstance* node, void*)
{
    auto* thing = reinterpret_cast<Thing*>(node); // `node` is Thing's first member
    if (static_cast<int>(cpu) == thing->fail_on_cpu)
        return -ERR_NOMEM;
    thing->log->push_back({ cpu * 100 + static_cast<uint32_t>(thing->id), true });
    return 0;
}

int thing_down(uint32_t cpu, CpuhpInstance* node, void*)
{
    auto* thing = reinterpret_cast<Thing*>(node);
    thing->log->push_back({ cpu * 100 + static_cast<uint32_t>(thing->id), false });
    return 0;
}

} // namespace

TEST_CASE("multi-instance states call every instance and undo a partial failure", "[hotplug][multi]")
{
    CpuhpFixture f;
    REQUIRE(f.hotplug->cpu_up(1) == 0);
    std::vector<std::pair<uint32_t, bool>> log; // written by CPU threads one at a time (run_on_cpu waits)
    int slot = f.hotplug->setup_state_multi(CpuhpState::ApOnlineDyn, "test:multi", thing_up, thing_down);
    REQUIRE(slot > 0);
    auto state = from_index(static_cast<uint16_t>(slot));
    Thing a { {}, 1, &log }, b { {}, 2, &log }, c { {}, 3, &log };
    REQUIRE(f.hotplug->add_instance(state, &a.node) == 0);
    REQUIRE(f.hotplug->add_instance(state, &b.node) == 0);
    CHECK(log == std::vector<std::pair<uint32_t, bool>> { { 1, true }, { 101, true }, { 2, true }, { 102, true } });

    SECTION("adding an instance that fails on a CPU takes it back from the CPUs before")
    {
        log.clear();
        c.fail_on_cpu = 1;
        CHECK(f.hotplug->add_instance(state, &c.node) == -ERR_NOMEM);
        CHECK(log == std::vector<std::pair<uint32_t, bool>> { { 3, true }, { 3, false } });
    }
    SECTION("a CPU coming up with a failing instance undoes the ones before it")
    {
        REQUIRE(f.hotplug->add_instance_nocalls(state, &c.node) == 0);
        c.fail_on_cpu = 2;
        log.clear();
        CHECK(f.hotplug->cpu_up(2) == -ERR_NOMEM);
        CHECK(log == std::vector<std::pair<uint32_t, bool>> { { 201, true }, { 202, true }, { 201, false }, { 202, false } });
        CHECK(f.hotplug->state(2) == CpuhpState::Offline);
        c.fail_on_cpu = -1;
        REQUIRE(f.hotplug->remove_instance_nocalls(state, &c.node) == 0);
    }
    SECTION("removing instances and then the state")
    {
        log.clear();
        CHECK(f.hotplug->remove_state(state) == -ERR_BUSY); // instances left
        REQUIRE(f.hotplug->remove_instance(state, &a.node) == 0);
        CHECK(log == std::vector<std::pair<uint32_t, bool>> { { 1, false }, { 101, false } });
        REQUIRE(f.hotplug->remove_instance(state, &b.node) == 0);
        CHECK(f.hotplug->remove_instance(state, &b.node) == -ERR_INVAL);
        CHECK(f.hotplug->remove_state(state) == 0);
    }
}

TEST_CASE("adding an instance that is already on its state's list is refused with EEXIST and the list stays whole",
    "[hotplug][multi]")
{
    CpuhpFixture f;
    std::vector<std::pair<uint32_t, bool>> log;
    int slot = f.hotplug->setup_state_multi(CpuhpState::ApOnlineDyn, "test:multi", thing_up, thing_down);
    REQUIRE(slot > 0);
    auto state = from_index(static_cast<uint16_t>(slot));
    Thing a { {}, 1, &log }, b { {}, 2, &log };
    REQUIRE(f.hotplug->add_instance(state, &a.node) == 0);
    REQUIRE(f.hotplug->add_instance(state, &b.node) == 0);
    CHECK(f.hotplug->add_instance(state, &a.node) == -ERR_EXIST);
    CHECK(f.hotplug->add_instance_nocalls(state, &b.node) == -ERR_EXIST);
    log.clear();
    REQUIRE(f.hotplug->cpu_up(2) == 0);
    CHECK(log == std::vector<std::pair<uint32_t, bool>> { { 201, true }, { 202, true } }); // both, once each
    REQUIRE(f.hotplug->remove_instance(state, &a.node) == 0);
    // Alone on the list: linking it again would point it at itself, and the next cpu_up would never end.
    REQUIRE(f.hotplug->add_instance_nocalls(state, &b.node) == -ERR_EXIST);
    log.clear();
    REQUIRE(f.hotplug->cpu_up(3) == 0);
    CHECK(log == std::vector<std::pair<uint32_t, bool>> { { 302, true } });
    REQUIRE(f.hotplug->remove_instance(state, &b.node) == 0);
    CHECK(f.hotplug->remove_state(state) == 0);
}

TEST_CASE("a reader of the CPU lock registers with the _cpuslocked forms while a hotplug operation waits",
    "[hotplug][lock]")
{
    CpuhpFixture f;
    REQUIRE(f.hotplug->cpu_up(1) == 0);
    static std::atomic<int> calls;
    calls = 0;
    auto count = [](uint32_t, void*) {
        calls++;
        return 0;
    };
    Thing a { {}, 1, nullptr };
    int multi = f.hotplug->setup_state_multi(CpuhpState::BpPrepareDyn, "test:locked_multi", nullptr, nullptr);
    REQUIRE(multi > 0);
    f.hotplug->cpus_read_lock();
    // A writer now waits for the lock: the plain forms would take it for reading again behind the writer
    // and wait for ever (the writer waits for this reader).
    std::atomic<int> up_result { 1 };
    std::thread writer([&] { up_result = f.hotplug->cpu_up(2); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int slot = f.hotplug->setup_state_cpuslocked(CpuhpState::ApOnlineDyn, "test:locked", count, nullptr);
    CHECK(slot > 0);
    CHECK(calls == 2); // CPUs 0 and 1, online; CPU 2 waits for the lock
    CHECK(f.hotplug->add_instance_nocalls_cpuslocked(from_index(static_cast<uint16_t>(multi)), &a.node) == 0);
    CHECK(up_result == 1); // still waiting
    f.hotplug->cpus_read_unlock();
    writer.join();
    CHECK(up_result == 0);
    CHECK(calls == 3); // and CPU 2 walked the new state on its way up
    CHECK(f.hotplug->remove_instance(from_index(static_cast<uint16_t>(multi)), &a.node) == 0);

    f.hotplug->cpus_read_lock();
    CHECK(f.hotplug->remove_state_nocalls_cpuslocked(from_index(static_cast<uint16_t>(slot))) == 0);
    CHECK(f.hotplug->remove_state_cpuslocked(from_index(static_cast<uint16_t>(multi))) == 0);
    f.hotplug->cpus_read_unlock();
    // Without the lock held they refuse rather than run unprotected.
    CHECK(f.hotplug->setup_state_nocalls_cpuslocked(CpuhpState::ApOnlineDyn, "test:unlocked", count, nullptr)
        == -ERR_INVAL);
    CHECK_FALSE(f.platform.warnings().empty());
}

TEST_CASE("disabled hotplug makes up and down fail at once with ERR_BUSY", "[hotplug][lock]")
{
    CpuhpFixture f;
    REQUIRE(f.hotplug->cpu_up(1) == 0);
    f.hotplug->cpu_hotplug_disable();
    f.hotplug->cpu_hotplug_disable();
    CHECK(f.hotplug->cpu_up(2) == -ERR_BUSY);
    CHECK(f.hotplug->cpu_down(1) == -ERR_BUSY);
    f.hotplug->cpu_hotplug_enable();
    CHECK(f.hotplug->cpu_hotplug_disabled());
    CHECK(f.hotplug->cpu_up(2) == -ERR_BUSY);
    f.hotplug->cpu_hotplug_enable();
    CHECK(f.hotplug->cpu_up(2) == 0);
    CHECK(f.hotplug->cpu_down(1) == 0);
    f.hotplug->cpu_hotplug_enable(); // unbalanced
    REQUIRE(f.platform.warnings().size() == 1);
    CHECK(f.platform.warnings()[0].what.find("unbalanced") != std::string::npos);
    CHECK_FALSE(f.hotplug->cpu_hotplug_disabled());
}

TEST_CASE("readers hold off hotplug operations until they unlock", "[hotplug][lock]")
{
    CpuhpFixture f;
    f.hotplug->cpus_read_lock();
    std::atomic<bool> done { false };
    std::thread writer([&] {
        CHECK(f.hotplug->cpu_up(1) == 0);
        done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    CHECK_FALSE(done.load());
    CHECK(f.hotplug->state(1) == CpuhpState::Offline);
    f.hotplug->cpus_read_unlock();
    writer.join();
    CHECK(done.load());
    CHECK(f.hotplug->state(1) == CpuhpState::Online);
}

TEST_CASE("the boot CPU, the calling CPU and absent CPUs are refused", "[hotplug][rules]")
{
    CpuhpFixture f;
    REQUIRE(f.hotplug->cpu_up(1) == 0); // two online: alone, the boot CPU gets Linux's -EBUSY (below)
    CHECK(f.hotplug->cpu_down(0) == -ERR_PERM);
    CHECK(f.hotplug->cpu_up(1, CpuhpState::BringupCpu) == -ERR_INVAL);    // cant_stop
    CHECK(f.hotplug->cpu_up(1, CpuhpState::ApicStarting) == -ERR_INVAL);  // STARTING
    CHECK(f.hotplug->cpu_up(MAX_CPUS, CpuhpState::Online) == -ERR_INVAL);
    REQUIRE(f.hotplug->set_present(6, false) == 0);
    CHECK(f.hotplug->cpu_up(6) == -ERR_INVAL);
    REQUIRE(f.hotplug->cpu_up(7) == 0);
    CHECK(f.hotplug->set_present(7, false) == -ERR_BUSY); // only an offline CPU can go
    CHECK(f.hotplug->present_mask().test(7));
    CHECK(f.hotplug->cpu_up(TEST_CPUS + 1) == -ERR_INVAL); // not possible
}

TEST_CASE("CPU ids past MAX_CPUS are refused by every entry point and read as absent, never out of bounds",
    "[hotplug][rules]")
{
    CpuhpFixture f;
    for (uint32_t cpu : { MAX_CPUS, MAX_CPUS + 1, 0xFFFFFFFFu }) {
        INFO("cpu " << cpu);
        CHECK(f.hotplug->state(cpu) == CpuhpState::Offline);
        CHECK(f.hotplug->target(cpu) == CpuhpState::Offline);
        CHECK(f.hotplug->fail(cpu) == CPUHP_INVALID);
        CHECK(f.hotplug->last_result(cpu) == -ERR_INVAL);
        CHECK_FALSE(f.hotplug->rolled_back(cpu));
        CHECK(f.hotplug->sync(cpu) == ApSync::Dead);
        CHECK_FALSE(f.hotplug->in_limbo(cpu));
        CHECK_FALSE(f.hotplug->cpu_present(cpu));
        CHECK_FALSE(f.hotplug->cpu_online(cpu));
        CHECK(f.hotplug->boot_cpu_online(cpu) == -ERR_INVAL);
        CHECK(f.hotplug->ap_report_dead(cpu) == -ERR_INVAL);
        CHECK_FALSE(f.hotplug->ap_should_die(cpu));
        CHECK_FALSE(f.hotplug->ap_startup(cpu));
        CHECK(f.hotplug->set_fail(cpu, idx(f.ONLINE_DYN_A)) == -ERR_INVAL);
        CHECK(f.hotplug->set_target(cpu, CpuhpState::Online) == -ERR_INVAL);
        CHECK(f.hotplug->cpu_up(cpu) == -ERR_INVAL);
        CHECK(f.hotplug->cpu_down(cpu) == -ERR_INVAL);
        CHECK(f.hotplug->set_possible(cpu) == -ERR_INVAL);
        CHECK(f.hotplug->set_present(cpu, true) == -ERR_INVAL);
    }
    CHECK(f.hotplug->boot_cpu() == 0);
    CHECK(f.hotplug->cpu_up(1) == 0); // nothing was disturbed
}

TEST_CASE("the last online CPU is never taken down", "[hotplug][rules]")
{
    // Without a boot CPU marked online, the control thread (CPU 0) is outside the online set, so an AP
    // can be the last CPU standing.
    test_support::ThreadPlatform platform(4);
    auto hotplug = std::make_unique<Cpuhp>(platform, CpuhpFixture::short_timeouts());
    platform.attach(*hotplug);
    for (uint32_t cpu = 0; cpu < 4; ++cpu) {
        hotplug->set_possible(cpu);
        hotplug->set_present(cpu, true);
    }
    REQUIRE(hotplug->cpu_up(1) == 0);
    CHECK(hotplug->cpu_down(1) == -ERR_BUSY);
    // Linux's _cpu_down() refuses any cpu_down while one CPU is online, even to a state that stays online.
    CHECK(hotplug->cpu_down(1, CpuhpState::ApOnlineIdle) == -ERR_BUSY);
    CHECK(hotplug->state(1) == CpuhpState::Online);
    REQUIRE(hotplug->cpu_up(2) == 0);
    CHECK(hotplug->cpu_down(1, CpuhpState::ApOnlineIdle) == 0); // with two online it may
    CHECK(hotplug->cpu_down(1) == 0);
    CHECK(hotplug->cpu_down(2) == -ERR_BUSY);
    platform.shutdown();
}

TEST_CASE("with only the boot CPU online every cpu_down is EBUSY, as Linux's _cpu_down", "[hotplug][rules]")
{
    CpuhpFixture f;
    REQUIRE(f.hotplug->cpu_up(3, CpuhpState::KickAp) == 0); // not online: the boot CPU is alone
    CHECK(f.hotplug->cpu_down(0) == -ERR_BUSY);
    CHECK(f.hotplug->cpu_down(3) == -ERR_BUSY);
    CHECK(f.hotplug->set_target(3, CpuhpState::Offline) == -ERR_BUSY);
    CHECK(f.hotplug->state(3) == CpuhpState::KickAp);
    CHECK(f.hotplug->cpu_up(3) == 0); // going up is not affected
    CHECK(f.hotplug->cpu_down(3) == 0);
}

TEST_CASE("a CPU can be driven to any state it may rest in and back", "[hotplug][target]")
{
    CpuhpFixture f;
    uint32_t cpu = 4;
    for (auto target : { CpuhpState::PercpuPrepare, f.PREPARE_DYN, CpuhpState::ApOnlineIdle,
             f.ONLINE_DYN_A, f.ONLINE_DYN_B, CpuhpState::ApActive, CpuhpState::Online }) {
        DYNAMIC_SECTION("to state " << idx(target) << " and back")
        {
            REQUIRE(f.hotplug->cpu_up(cpu) == 0);
            f.platform.clear_traces();
            REQUIRE(f.hotplug->set_target(cpu, target) == 0);
            CHECK(f.hotplug->state(cpu) == target);
            CHECK(f.steps(cpu) == f.walk(idx(CpuhpState::Online), idx(target)));
            bool online = target >= CpuhpState::ApOnlineIdle;
            CHECK(f.hotplug->cpu_online(cpu) == online);
            CHECK(f.hotplug->active_mask().test(cpu) == (target >= CpuhpState::ApActive));
            for (auto s : f.with_callback(true))
                if (s != idx(CpuhpState::KickAp) && s != idx(CpuhpState::BringupCpu) && s != idx(CpuhpState::ApActive))
                    CHECK(f.recorder.is_up(cpu, from_index(s)) == (s <= idx(target)));
            f.platform.clear_traces();
            REQUIRE(f.hotplug->set_target(cpu, CpuhpState::Online) == 0);
            CHECK(f.hotplug->state(cpu) == CpuhpState::Online);
            CHECK(f.steps(cpu) == f.walk(idx(target), idx(CpuhpState::Online)));
            REQUIRE(f.hotplug->set_target(cpu, CpuhpState::Offline) == 0);
            CHECK(f.recorder.violations() == 0);
        }
    }
    // cpu:kick_ap: only on the way up (a kicked AP waits to be released; a dead one cannot be un-kicked).
    REQUIRE(f.hotplug->cpu_up(cpu) == 0);
    CHECK(f.hotplug->set_target(cpu, CpuhpState::KickAp) == -ERR_INVAL);
    REQUIRE(f.hotplug->cpu_down(cpu) == 0);
    REQUIRE(f.hotplug->set_target(cpu, CpuhpState::KickAp) == 0);
    REQUIRE(f.hotplug->set_target(cpu, CpuhpState::Online) == 0);
    CHECK(f.recorder.violations() == 0);
    CHECK(f.hotplug->set_target(cpu, CpuhpState::BringupCpu) == -ERR_INVAL);
    CHECK(f.hotplug->set_target(cpu, CpuhpState::TeardownCpu) == -ERR_INVAL);
    CHECK(f.hotplug->set_target(cpu, CpuhpState::ApOnlineDyn + 9) == -ERR_INVAL); // unnamed
}

TEST_CASE("serial bring-up walks each CPU fully, parallel kicks all before waiting for any", "[hotplug][bringup]")
{
    CpuhpFixture f;
    CpuMask aps;
    for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu)
        aps.set(cpu);
    auto order = [&] {
        // The order of kicks and releases across CPUs, from the trace.
        std::vector<std::string> out;
        for (auto const& t : f.platform.traces())
            if (t.phase == TraceEvent::Phase::Exit && t.bringup
                && (t.state == CpuhpState::KickAp || t.state == CpuhpState::BringupCpu))
                out.push_back((t.state == CpuhpState::KickAp ? "kick " : "up ") + std::to_string(t.cpu));
        return out;
    };
    SECTION("serial")
    {
        CHECK(f.hotplug->bringup_serial(aps) == TEST_CPUS - 1);
        std::vector<std::string> expected;
        for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu) {
            expected.push_back("kick " + std::to_string(cpu));
            expected.push_back("up " + std::to_string(cpu));
        }
        CHECK(order() == expected);
    }
    SECTION("parallel")
    {
        CHECK(f.hotplug->bringup_parallel(aps) == TEST_CPUS - 1);
        std::vector<std::string> expected;
        for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu)
            expected.push_back("kick " + std::to_string(cpu));
        for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu)
            expected.push_back("up " + std::to_string(cpu));
        CHECK(order() == expected);
    }
    SECTION("parallel, with one CPU failing in each pass")
    {
        REQUIRE(f.hotplug->set_fail(2, idx(CpuhpState::KickAp)) == 0);
        REQUIRE(f.hotplug->set_fail(5, idx(f.ONLINE_DYN_A)) == 0);
        CHECK(f.hotplug->bringup_parallel(aps) == TEST_CPUS - 3);
        CHECK(f.hotplug->state(2) == CpuhpState::Offline);
        CHECK(f.hotplug->state(5) == CpuhpState::Offline); // rolled back to kick_ap, then taken to offline
        for (auto s : f.with_callback(true))
            CHECK_FALSE(f.recorder.is_up(5, from_index(s))); // core states are never marked up: trivially true
    }
    for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu)
        CHECK(f.hotplug->cpu_online(cpu) == (f.hotplug->state(cpu) == CpuhpState::Online));
    CHECK(f.recorder.violations() == 0);
}

TEST_CASE("an up from cpu:kick_ap that fails late leaves a dead AP that the next up kicks again", "[hotplug][sync]")
{
    CpuhpFixture f;
    REQUIRE(f.hotplug->cpu_up(4, CpuhpState::KickAp) == 0);
    REQUIRE(f.hotplug->set_fail(4, idx(f.ONLINE_DYN_B)) == 0);
    CHECK(f.hotplug->cpu_up(4) == -ERR_AGAIN);
    CHECK(f.hotplug->state(4) == CpuhpState::KickAp); // rolled back to where this attempt began
    CHECK(f.hotplug->sync(4) == ApSync::Dead);          // through takedown
    CHECK(f.hotplug->cpu_up(4) == 0);
    CHECK(f.hotplug->state(4) == CpuhpState::Online);
    CHECK(f.platform.warnings().empty());
    CHECK(f.recorder.violations() == 0);
}

TEST_CASE("an AP that never reports alive times out, rolls back, and can be kicked again", "[hotplug][sync]")
{
    CpuhpFixture f;
    f.platform.set_never_alive(3, true);
    CHECK(f.hotplug->cpu_up(3) == -ERR_IO);
    CHECK(f.hotplug->state(3) == CpuhpState::Offline);
    CHECK(f.hotplug->sync(3) == ApSync::Kicked);
    REQUIRE_FALSE(f.platform.warnings().empty());
    CHECK(f.platform.warnings()[0].what.find("failed to report alive") != std::string::npos);
    f.platform.set_never_alive(3, false);
    CHECK(f.hotplug->cpu_up(3) == 0); // KICKED may be re-kicked
    CHECK(f.recorder.violations() == 0);
}

// The fixture's timeouts are at most 2 s; before the AP's wait for release lost its deadline (then 2 s here,
// 10 s by default), an AP that outwaited it parked with the sync word still at ALIVE, and the CPU was lost.
constexpr auto LONGER_THAN_ANY_TIMEOUT = std::chrono::milliseconds(2500);

TEST_CASE("a CPU rested at cpu:kick_ap longer than any timeout still comes online when released late", "[hotplug][sync]")
{
    CpuhpFixture f;
    REQUIRE(f.hotplug->cpu_up(2, CpuhpState::KickAp) == 0);
    for (int i = 0; i < 1000 && f.hotplug->sync(2) != ApSync::Alive; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(f.hotplug->sync(2) == ApSync::Alive);
    std::this_thread::sleep_for(LONGER_THAN_ANY_TIMEOUT);
    CHECK(f.hotplug->sync(2) == ApSync::Alive);
    CHECK(f.hotplug->cpu_up(2) == 0);
    CHECK(f.hotplug->state(2) == CpuhpState::Online);
    CHECK_FALSE(f.hotplug->in_limbo(2));
    CHECK(f.platform.warnings().empty());
    // And it can still go down and up again: nothing was lost.
    CHECK(f.hotplug->cpu_down(2) == 0);
    CHECK(f.hotplug->cpu_up(2) == 0);
    CHECK(f.recorder.violations() == 0);
}

TEST_CASE("a parallel bring-up whose ONLINE steps outlast every timeout brings every CPU online", "[hotplug][sync]")
{
    CpuhpFixture f;
    // Every CPU's ONLINE section takes 0.7 s, so the last of 4 APs waits ~2.8 s at ALIVE for its release.
    REQUIRE(f.hotplug->setup_state_nocalls(CpuhpState::ApOnlineDyn, "test:slow_online",
                [](uint32_t, void*) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(700));
                    return 0;
                },
                nullptr)
        > 0);
    CpuMask aps;
    for (uint32_t cpu = 1; cpu <= 4; ++cpu)
        aps.set(cpu);
    CHECK(f.hotplug->bringup_parallel(aps) == 4);
    for (uint32_t cpu = 1; cpu <= 4; ++cpu) {
        INFO("cpu " << cpu);
        CHECK(f.hotplug->state(cpu) == CpuhpState::Online);
        CHECK_FALSE(f.hotplug->in_limbo(cpu));
    }
    CHECK(f.platform.warnings().empty());
}

TEST_CASE("a CPU left waiting at ALIVE is re-kicked, one lost after release is in limbo and refused", "[hotplug][sync]")
{
    CpuhpFixture f;
    SECTION("alive but never released")
    {
        REQUIRE(f.hotplug->cpu_up(1) == 0); // a second CPU online, so that cpu_down is allowed at all
        REQUIRE(f.hotplug->cpu_up(2, CpuhpState::KickAp) == 0);
        // Wait until the AP sits at its sync point.
        for (int i = 0; i < 1000 && f.hotplug->sync(2) != ApSync::Alive; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        CHECK(f.hotplug->sync(2) == ApSync::Alive);
        REQUIRE(f.hotplug->cpu_down(2) == 0); // back to offline: the AP is still waiting (limbo-free)
        CHECK(f.hotplug->cpu_up(2) == 0);     // ALIVE may be re-kicked
    }
    SECTION("a released AP that never finishes starting")
    {
        cpuplug::CpuhpTimeouts t = CpuhpFixture::short_timeouts();
        t.online_ns = 100'000'000;
        CpuhpFixture slow(t);
        // A STARTING step that takes longer than the online timeout.
        REQUIRE(slow.hotplug->remove_state_nocalls(CpuhpState::TscStarting) == 0);
        REQUIRE(slow.hotplug->setup_state_nocalls(CpuhpState::TscStarting, "tsc:starting",
                    [](uint32_t, void*) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(400));
                        return 0;
                    },
                    nullptr)
            == 0);
        CHECK(slow.hotplug->cpu_up(2) == -ERR_TIMEDOUT);
        CHECK(slow.hotplug->in_limbo(2));
        CHECK(slow.hotplug->cpu_up(2) == -ERR_IO);
        bool warned = false;
        for (auto const& w : slow.platform.warnings())
            warned = warned || w.what.find("did not finish starting") != std::string::npos;
        CHECK(warned);
    }
}

TEST_CASE("states are listed with their names, as Linux's hotplug/states file", "[hotplug][introspection]")
{
    CpuhpFixture f;
    std::vector<std::string> names;
    for (uint16_t s = 0; s < CPUHP_STATE_COUNT; ++s)
        if (auto const* name = f.hotplug->state_name(from_index(s)))
            names.push_back(std::to_string(s) + ": " + name);
    CHECK(names.front() == "0: offline");
    CHECK(names.back() == std::to_string(CPUHP_STATE_COUNT - 1) + ": online");
    CHECK(std::find(names.begin(), names.end(), std::to_string(idx(f.PREPARE_DYN)) + ": test:prepare") != names.end());
    CHECK(std::find(names.begin(), names.end(), std::to_string(idx(CpuhpState::KickAp)) + ": cpu:kick_ap") != names.end());
    CHECK(names.size() == 15); // 12 static names + 3 installed dynamic slots
    REQUIRE(f.hotplug->cpu_up(1) == 0);
    CHECK(f.hotplug->target(1) == CpuhpState::Online);
    CHECK(std::string(errno_name(-ERR_BUSY)) == "EBUSY");
    // Any number a guest may have written: negating INT_MIN would be undefined (UBSan aborts on it).
    volatile int most_negative = std::numeric_limits<int>::min();
    CHECK(std::string(errno_name(most_negative)) == "E?");
    CHECK(std::string(errno_name(std::numeric_limits<int>::max())) == "E?");
    CHECK(std::string(errno_name(ERR_EXIST)) == "EEXIST");
    CHECK(std::string(to_string(ApSync::ShouldOnline)) == "should_online");
}

TEST_CASE("concurrent up/down requests from several threads keep every invariant", "[hotplug][stress]")
{
    CpuhpFixture f;
    std::vector<CpuhpState> targets { CpuhpState::Offline, CpuhpState::PercpuPrepare, f.PREPARE_DYN, CpuhpState::KickAp,
        CpuhpState::ApOnlineIdle, f.ONLINE_DYN_A, f.ONLINE_DYN_B, CpuhpState::ApActive, CpuhpState::Online };
    std::vector<uint16_t> injectable { idx(CpuhpState::PercpuPrepare), idx(f.PREPARE_DYN), idx(CpuhpState::KickAp),
        idx(CpuhpState::BringupCpu), idx(CpuhpState::TeardownCpu), idx(f.ONLINE_DYN_A), idx(f.ONLINE_DYN_B),
        idx(CpuhpState::ApActive) };
    std::atomic<int> bad_results { 0 }, broken_invariants { 0 }, operations { 0 };
    std::mutex log_mutex;
    std::vector<std::string> log;

    auto check_invariants = [&] {
        f.hotplug->cpus_read_lock();
        auto online = f.hotplug->online_mask();
        auto active = f.hotplug->active_mask();
        for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu) {
            auto state = f.hotplug->state(cpu);
            bool ok = !state_info(state).cant_stop && online.test(cpu) == (state >= CpuhpState::ApOnlineIdle)
                && active.test(cpu) == (state >= CpuhpState::ApActive);
            for (auto s : f.with_callback(true))
                if (s != idx(CpuhpState::KickAp) && s != idx(CpuhpState::BringupCpu) && s != idx(CpuhpState::ApActive))
                    ok = ok && f.recorder.is_up(cpu, from_index(s)) == (s <= idx(state));
            if (!ok) {
                broken_invariants++;
                std::lock_guard lock(log_mutex);
                log.push_back("cpu " + std::to_string(cpu) + " at " + std::to_string(idx(state)));
            }
        }
        f.hotplug->cpus_read_unlock();
    };

    auto worker = [&](unsigned seed) {
        std::mt19937 random(seed);
        for (int i = 0; i < 40; ++i) {
            uint32_t cpu = 1 + random() % (TEST_CPUS - 1);
            if (random() % 4 == 0)
                (void)f.hotplug->set_fail(cpu, injectable[random() % injectable.size()]);
            auto target = targets[random() % targets.size()];
            // cpu:kick_ap is refused going down (-EINVAL, checked alone above): set_target decides from the
            // state when it is called, which another worker may change between here and there, so here any
            // -EINVAL for that target is accepted.
            bool down_to_kick = target == CpuhpState::KickAp;
            // Going down while only the boot CPU is online is -EBUSY (Linux's _cpu_down()); whether that
            // holds when set_target looks is up to the other workers, so a down's -EBUSY is accepted.
            bool down = target < f.hotplug->state(cpu);
            int result = f.hotplug->set_target(cpu, target);
            operations++;
            if (result != 0 && result != -ERR_AGAIN && !(result == -ERR_INVAL && down_to_kick)
                && !(result == -ERR_BUSY && down)) {
                bad_results++;
                std::lock_guard lock(log_mutex);
                log.push_back("cpu " + std::to_string(cpu) + " target " + std::to_string(idx(target)) + ": result "
                    + std::to_string(result) + ", now at " + std::to_string(idx(f.hotplug->state(cpu))));
            }
            check_invariants();
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t)
        threads.emplace_back(worker, 1000 + t);
    for (int i = 0; i < 30; ++i) {
        // A reader that keeps checking while the workers run.
        check_invariants();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (auto& thread : threads)
        thread.join();
    std::string all;
    for (auto const& line : log)
        all += line + "\n";
    INFO(all);
    CHECK(operations == 160);
    CHECK(bad_results == 0);
    CHECK(broken_invariants == 0);
    CHECK(f.recorder.violations() == 0);
    for (auto const& w : f.platform.warnings())
        UNSCOPED_INFO(w.what << " cpu " << w.cpu << " state " << idx(w.state) << " error " << w.error);
    if (!f.platform.warnings().empty()) {
        auto events = f.platform.events();
        size_t warn_at = 0;
        for (size_t i = 0; i < events.size(); ++i)
            if (events[i].rfind("WARN", 0) == 0) {
                warn_at = i;
                break;
            }
        for (size_t i = warn_at > 60 ? warn_at - 60 : 0; i <= warn_at && i < events.size(); ++i)
            UNSCOPED_INFO(events[i]);
    }
    CHECK(f.platform.warnings().empty());
    // Every CPU up first: with only the boot CPU online, a CPU resting below online could not go down.
    for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu) {
        REQUIRE(f.hotplug->set_fail(cpu, CPUHP_INVALID) == 0);
        REQUIRE(f.hotplug->set_target(cpu, CpuhpState::Online) == 0);
    }
    for (uint32_t cpu = 1; cpu < TEST_CPUS; ++cpu)
        REQUIRE(f.hotplug->set_target(cpu, CpuhpState::Offline) == 0);
    CHECK(f.hotplug->online_mask().count() == 1);
}
