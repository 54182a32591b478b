// The CPU hotplug states: one explicit, linear list (Linux's enum cpuhp_state), each with a name
// "subsys:phase", a section saying where it runs, and whether a CPU may rest in it. Checked at compile time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cpuplug {

enum class CpuhpState : uint16_t {
    Offline = 0,

    // PREPARE: on the control CPU, before the AP runs and after it died. Startup may fail (and rolls back).
    PercpuPrepare,                      // "percpu:prepare": the AP's stack and per-CPU area
    BpPrepareDyn,                       // dynamic slots, allocated by setup_state(BpPrepareDyn, ...)
    BpPrepareDynEnd = BpPrepareDyn + 7,

    // Bridge: the control CPU starts the AP.
    KickAp,                             // "cpu:kick_ap": INIT/SIPI; the AP runs up to its ALIVE sync point
    BringupCpu,                         // "cpu:bringup": wait for ALIVE, release the AP, wait for it to start

    // STARTING: on the AP with interrupts off. Nothing here may fail, startup or teardown (DYING).
    ApOffline,                          // "ap:offline"
    ApicStarting,                       // "apic:starting": the AP's local APIC
    TscStarting,                        // "tsc:starting": the AP's clock
    ApOnline,                           // "ap:online"

    // ONLINE: on the AP with interrupts on. Startup and teardown may fail (and roll back).
    TeardownCpu,                        // "cpu:teardown": its teardown (takedown) runs on the control CPU
    ApOnlineIdle,                       // "cpu:online_idle": the AP idles, serving work
    ApOnlineDyn,                        // dynamic slots, allocated by setup_state(ApOnlineDyn, ...)
    ApOnlineDynEnd = ApOnlineDyn + 15,
    ApActive,                           // "sched:active": the CPU joins the active mask

    Online,                             // "online": fully up
};

inline constexpr uint16_t CPUHP_STATE_COUNT = static_cast<uint16_t>(CpuhpState::Online) + 1;
inline constexpr uint16_t CPUHP_INVALID = 0xFFFF; // "no state" (Linux's CPUHP_INVALID = -1)

enum class Section : uint8_t {
    None,     // Offline and Online: the ends
    Prepare,  // control CPU, may fail
    Bridge,   // control CPU, kicks and releases the AP
    Starting, // the AP, interrupts off, cannot fail
    OnlineAp, // the AP, interrupts on, may fail
};

// Who provides a state's callbacks.
enum class Owner : uint8_t {
    None,     // a marker: no callbacks
    Core,     // the hotplug core itself (kick, bringup, takedown, active)
    Platform, // the platform installs them with setup_state (the guest's APIC, TSC, per-CPU area)
    Dynamic,  // allocated by setup_state from a dynamic range
};

struct StateInfo {
    CpuhpState state;
    char const* name; // nullptr for dynamic slots (their name comes with registration)
    Section section;
    Owner owner;
    bool cant_stop;   // a CPU may not rest here (not a valid target)
};

constexpr uint16_t to_index(CpuhpState state) { return static_cast<uint16_t>(state); }
constexpr CpuhpState from_index(uint16_t index) { return static_cast<CpuhpState>(index); }
constexpr CpuhpState operator+(CpuhpState state, int delta) { return from_index(static_cast<uint16_t>(to_index(state) + delta)); }

namespace detail {

constexpr StateInfo dyn(CpuhpState state, Section section) { return { state, nullptr, section, Owner::Dynamic, false }; }

} // namespace detail

// One row per state, in enum order. A STARTING state is cant_stop here (Linux only marks ap:offline): the
// AP runs that section with interrupts off and cannot park in the middle of it.
inline constexpr StateInfo STATE_TABLE[CPUHP_STATE_COUNT] = {
    { CpuhpState::Offline, "offline", Section::None, Owner::None, false },
    { CpuhpState::PercpuPrepare, "percpu:prepare", Section::Prepare, Owner::Platform, false },
    detail::dyn(CpuhpState::BpPrepareDyn + 0, Section::Prepare),
    detail::dyn(CpuhpState::BpPrepareDyn + 1, Section::Prepare),
    detail::dyn(CpuhpState::BpPrepareDyn + 2, Section::Prepare),
    detail::dyn(CpuhpState::BpPrepareDyn + 3, Section::Prepare),
    detail::dyn(CpuhpState::BpPrepareDyn + 4, Section::Prepare),
    detail::dyn(CpuhpState::BpPrepareDyn + 5, Section::Prepare),
    detail::dyn(CpuhpState::BpPrepareDyn + 6, Section::Prepare),
    detail::dyn(CpuhpState::BpPrepareDyn + 7, Section::Prepare),
    { CpuhpState::KickAp, "cpu:kick_ap", Section::Bridge, Owner::Core, false },
    { CpuhpState::BringupCpu, "cpu:bringup", Section::Bridge, Owner::Core, true },
    { CpuhpState::ApOffline, "ap:offline", Section::Starting, Owner::None, true },
    { CpuhpState::ApicStarting, "apic:starting", Section::Starting, Owner::Platform, true },
    { CpuhpState::TscStarting, "tsc:starting", Section::Starting, Owner::Platform, true },
    { CpuhpState::ApOnline, "ap:online", Section::Starting, Owner::None, true },
    { CpuhpState::TeardownCpu, "cpu:teardown", Section::OnlineAp, Owner::Core, true },
    { CpuhpState::ApOnlineIdle, "cpu:online_idle", Section::OnlineAp, Owner::None, false },
    detail::dyn(CpuhpState::ApOnlineDyn + 0, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 1, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 2, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 3, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 4, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 5, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 6, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 7, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 8, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 9, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 10, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 11, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 12, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 13, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 14, Section::OnlineAp),
    detail::dyn(CpuhpState::ApOnlineDyn + 15, Section::OnlineAp),
    { CpuhpState::ApActive, "sched:active", Section::OnlineAp, Owner::Core, false },
    { CpuhpState::Online, "online", Section::None, Owner::None, false },
};

constexpr StateInfo const& state_info(CpuhpState state) { return STATE_TABLE[to_index(state)]; }
constexpr Section section_of(CpuhpState state) { return state_info(state).section; }
constexpr bool is_dynamic(CpuhpState state) { return state_info(state).owner == Owner::Dynamic; }
// Runs on the AP (STARTING and ONLINE sections), as Linux's cpuhp_is_ap_state().
constexpr bool is_ap_state(CpuhpState state) { return state > CpuhpState::BringupCpu && state < CpuhpState::Online; }
// Runs with interrupts off and must not fail (Linux's cpuhp_is_atomic_state()).
constexpr bool is_atomic_state(CpuhpState state) { return section_of(state) == Section::Starting; }

// ---- compile-time checks of the table -------------------------------------------------------------------

namespace detail {

constexpr bool rows_in_enum_order()
{
    for (uint16_t i = 0; i < CPUHP_STATE_COUNT; ++i)
        if (to_index(STATE_TABLE[i].state) != i)
            return false;
    return true;
}

// Sections appear in order None, Prepare, Bridge, Starting, OnlineAp, None, each as one block.
constexpr bool sections_in_order()
{
    for (uint16_t i = 1; i + 1 < CPUHP_STATE_COUNT; ++i) {
        auto previous = static_cast<int>(STATE_TABLE[i - 1].section);
        auto current = static_cast<int>(STATE_TABLE[i].section);
        if (current == static_cast<int>(Section::None) || (i > 1 && current < previous))
            return false;
    }
    return STATE_TABLE[0].section == Section::None && STATE_TABLE[CPUHP_STATE_COUNT - 1].section == Section::None;
}

// "subsys:phase": one colon with a non-empty lower-case identifier on each side.
constexpr bool valid_name(char const* name)
{
    int colons = 0;
    int before = 0, after = 0;
    for (char const* p = name; *p; ++p) {
        char c = *p;
        if (c == ':') {
            ++colons;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '/';
        if (!ok)
            return false;
        (colons == 0 ? before : after)++;
    }
    return colons == 1 && before > 0 && after > 0;
}

constexpr bool names_valid()
{
    for (auto const& row : STATE_TABLE) {
        if (row.owner == Owner::Dynamic) {
            if (row.name != nullptr)
                return false;
            continue;
        }
        if (row.state == CpuhpState::Offline || row.state == CpuhpState::Online)
            continue; // Linux's own two exceptions
        if (row.name == nullptr || !valid_name(row.name))
            return false;
    }
    return true;
}

constexpr bool dynamic_ranges_where_allowed()
{
    for (auto const& row : STATE_TABLE)
        if (row.owner == Owner::Dynamic && row.section != Section::Prepare && row.section != Section::OnlineAp)
            return false;
    return true;
}

constexpr bool starting_states_cannot_stop()
{
    for (auto const& row : STATE_TABLE)
        if (row.section == Section::Starting && !row.cant_stop)
            return false;
    return true;
}

} // namespace detail

static_assert(detail::rows_in_enum_order(), "STATE_TABLE rows must follow the enum");
static_assert(detail::sections_in_order(), "sections must be contiguous and in order");
static_assert(detail::names_valid(), "static states are named subsys:phase; dynamic slots are unnamed");
static_assert(detail::dynamic_ranges_where_allowed(), "dynamic ranges only in PREPARE and ONLINE");
static_assert(detail::starting_states_cannot_stop(), "a CPU cannot rest in the STARTING section");
static_assert(section_of(CpuhpState::KickAp) == Section::Bridge && section_of(CpuhpState::BringupCpu) == Section::Bridge);
static_assert(state_info(CpuhpState::BringupCpu).cant_stop, "cpu:bringup is cant_stop, as in Linux");

} // namespace cpuplug
