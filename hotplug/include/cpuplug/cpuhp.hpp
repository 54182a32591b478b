// Cpuhp: the CPU hotplug state machine, after Linux's kernel/cpu.c. Every CPU walks the linear state list
// one step at a time; a failure flips the direction and undoes exactly the steps completed; a CPU can be
// driven to any state it may rest in. Freestanding: fixed storage, no heap, no exceptions, platform
// effects through the Platform interface.
#pragma once

#include <cpuplug/base/errno.hpp>
#include <cpuplug/base/sync.hpp>
#include <cpuplug/cpuhp_state.hpp>
#include <cpuplug/cpumask.hpp>
#include <cpuplug/platform.hpp>

#include <atomic>
#include <cstdint>

namespace cpuplug {

// A node of a multi-instance state (Linux's hlist_node): embed it in the object the instance stands for.
struct CpuhpInstance {
    CpuhpInstance* next { nullptr };
};

using CpuhpCallback = int (*)(uint32_t cpu, void* data);
using CpuhpMultiCallback = int (*)(uint32_t cpu, CpuhpInstance* instance, void* data);

// The AP's bring-up and tear-down handshake with the control CPU (Linux's cpuhp_ap_sync).
enum class ApSync : uint8_t {
    Dead,         // never started, or reported dead
    Kicked,       // INIT/SIPI sent
    ShouldDie,    // the control CPU asked it to die
    Alive,        // the AP reached its sync point and waits to be released
    ShouldOnline, // released by the control CPU
    Online,       // finished the STARTING section
};
char const* to_string(ApSync);

struct CpuhpTimeouts {
    uint64_t alive_ns { 10'000'000'000 };   // kick to ALIVE (Linux: 10 s)
    uint64_t online_ns { 10'000'000'000 };  // release to the end of STARTING
    uint64_t dead_ns { 10'000'000'000 };    // takedown to DEAD
    // No timeout for an ALIVE AP's wait to be released: as in Linux, it waits for as long as it takes,
    // so a late release always works. A new kick resets it if the control CPU starts over instead.
};

class Cpuhp {
public:
    explicit Cpuhp(Platform& platform, CpuhpTimeouts timeouts = {});
    Cpuhp(Cpuhp const&) = delete;
    Cpuhp& operator=(Cpuhp const&) = delete;

    // ---- CPU masks ---------------------------------------------------------------------------------------
    int set_possible(uint32_t cpu);
    // A CPU becomes present when it is plugged; it can only stop being present while offline (-ERR_BUSY).
    int set_present(uint32_t cpu, bool present);
    // The boot CPU already runs: it is marked Online without callbacks, and is the one CPU never taken down.
    // -ERR_INVAL for a CPU id past MAX_CPUS, as every entry point that takes one; the accessors below read
    // such an id as a CPU that is not there (Offline, no fail, Dead, not in limbo, last result -ERR_INVAL).
    int boot_cpu_online(uint32_t cpu);
    uint32_t boot_cpu() const { return m_boot_cpu; }
    CpuMask possible_mask() const;
    CpuMask present_mask() const;
    CpuMask online_mask() const;
    CpuMask active_mask() const;
    bool cpu_present(uint32_t cpu) const;
    bool cpu_online(uint32_t cpu) const;

    // ---- hotplug operations ------------------------------------------------------------------------------
    // 0, or a negative errno: -ERR_INVAL (not possible/present, bad target), -ERR_BUSY (hotplug disabled, a
    // cpu_down while only one CPU is online (Linux's rule, whatever the target), the calling CPU), -ERR_PERM (the boot CPU), -ERR_IO (a CPU left in limbo), or what a step returned.
    int cpu_up(uint32_t cpu, CpuhpState target = CpuhpState::Online);
    int cpu_down(uint32_t cpu, CpuhpState target = CpuhpState::Offline);
    // Linux's cpuN/hotplug/target: any named state a CPU may rest in, up or down; cpu:kick_ap only up.
    int set_target(uint32_t cpu, CpuhpState target);
    // Boot passes over `cpus`; each returns how many reached Online. Serial: each CPU walks every state
    // before the next starts. Parallel: every CPU is taken to cpu:kick_ap first, then each to online.
    uint32_t bringup_serial(CpuMask const& cpus);
    uint32_t bringup_parallel(CpuMask const& cpus);

    // ---- state registration ------------------------------------------------------------------------------
    // `state` is a Platform-owned static state or BpPrepareDyn / ApOnlineDyn for a dynamic slot. Returns the
    // dynamic slot (> 0) or 0, or -ERR_INVAL, -ERR_BUSY (slot taken), -ERR_NOSPC (dynamic range full), or the error
    // of a startup; then the startups already run are torn down and the state is uninstalled.
    int setup_state(CpuhpState state, char const* name, CpuhpCallback startup, CpuhpCallback teardown,
        void* data = nullptr);
    int setup_state_nocalls(CpuhpState state, char const* name, CpuhpCallback startup, CpuhpCallback teardown,
        void* data = nullptr);
    int setup_state_multi(CpuhpState state, char const* name, CpuhpMultiCallback startup,
        CpuhpMultiCallback teardown, void* data = nullptr);
    // Instances are called in the order they were added (Linux: newest first). -ERR_EXIST if `instance` is
    // already on the state's list; -ERR_INVAL if the state is not an installed multi-instance one.
    int add_instance(CpuhpState state, CpuhpInstance* instance);
    int add_instance_nocalls(CpuhpState state, CpuhpInstance* instance);
    int remove_instance(CpuhpState state, CpuhpInstance* instance);
    int remove_instance_nocalls(CpuhpState state, CpuhpInstance* instance);
    // -ERR_BUSY for a multi-instance state that still has instances.
    int remove_state(CpuhpState state);
    int remove_state_nocalls(CpuhpState state);
    // Linux's *_cpuslocked forms, for a caller that already holds cpus_read_lock(): the plain forms take it
    // themselves, and taking it twice deadlocks once a hotplug operation waits for the write side in
    // between. -ERR_INVAL (and a warning) if nobody holds it for reading.
    int setup_state_cpuslocked(CpuhpState state, char const* name, CpuhpCallback startup, CpuhpCallback teardown,
        void* data = nullptr);
    int setup_state_nocalls_cpuslocked(CpuhpState state, char const* name, CpuhpCallback startup,
        CpuhpCallback teardown, void* data = nullptr);
    int add_instance_cpuslocked(CpuhpState state, CpuhpInstance* instance);
    int add_instance_nocalls_cpuslocked(CpuhpState state, CpuhpInstance* instance);
    int remove_state_cpuslocked(CpuhpState state);
    int remove_state_nocalls_cpuslocked(CpuhpState state);

    // ---- locking -----------------------------------------------------------------------------------------
    // Readers hold off hotplug operations (and wait for a running one).
    void cpus_read_lock();
    void cpus_read_unlock();
    // Counted; while disabled, cpu_up/cpu_down fail at once with -ERR_BUSY. Waits for a running operation.
    void cpu_hotplug_disable();
    void cpu_hotplug_enable();
    bool cpu_hotplug_disabled() const;

    // ---- fail injection and introspection -------------------------------------------------------------
    // Linux's cpuN/hotplug/fail: the next invocation of `state` on `cpu` fails with -ERR_AGAIN, once.
    // CPUHP_INVALID clears it. -ERR_INVAL for STARTING states, states without callbacks, and PREPARE/bridge
    // states of a CPU that is past cpu:bringup (their teardowns run after the AP died and cannot fail).
    int set_fail(uint32_t cpu, uint16_t state);
    CpuhpState state(uint32_t cpu) const;
    CpuhpState target(uint32_t cpu) const;
    uint16_t fail(uint32_t cpu) const;
    int last_result(uint32_t cpu) const;
    bool rolled_back(uint32_t cpu) const;
    ApSync sync(uint32_t cpu) const;
    bool in_limbo(uint32_t cpu) const; // an operation lost the AP; only a new kick may help
    // The name a state shows in the list of states: the table's, or a dynamic slot's registered name;
    // nullptr for an unused dynamic slot.
    char const* state_name(CpuhpState state) const;
    bool state_installed(CpuhpState state) const;

    // ---- entry points the platform calls on an AP ---------------------------------------------------------
    // After INIT/SIPI: report ALIVE, wait (without a deadline) to be released, run the STARTING section with
    // interrupts off and become online. False if the AP was not kicked (it should park; a kick restarts it).
    bool ap_startup(uint32_t cpu);
    // After running work for the control CPU: true when the AP was told to die and has run its DYING steps;
    // the platform then calls ap_report_dead() and parks the CPU for good.
    bool ap_should_die(uint32_t cpu) const;
    int ap_report_dead(uint32_t cpu);

private:
    struct Step {
        char const* name { nullptr };
        CpuhpCallback startup { nullptr };
        CpuhpCallback teardown { nullptr };
        CpuhpMultiCallback multi_startup { nullptr };
        CpuhpMultiCallback multi_teardown { nullptr };
        void* data { nullptr };
        CpuhpInstance* instances { nullptr };
        bool multi_instance { false };
        bool installed { false };
    };

    // Work handed to an AP through Platform::run_on_cpu.
    struct ApRequest {
        enum class Kind : uint8_t { Walk, Call, Dying };
        Cpuhp* self;
        uint32_t cpu;
        Kind kind;
        bool bringup;
        CpuhpState state; // Walk: the target; Call: the state to call
        CpuhpInstance* instance;
        bool completed;   // set by the AP when the work ran to its end
    };

    struct CpuState {
        std::atomic<uint16_t> state { 0 };
        std::atomic<uint16_t> target { 0 };
        std::atomic<uint16_t> fail { CPUHP_INVALID };
        std::atomic<int32_t> result { 0 };
        std::atomic<bool> rollback { false };
        std::atomic<bool> bringup { false };
        std::atomic<bool> limbo { false };
        std::atomic<uint8_t> sync { static_cast<uint8_t>(ApSync::Dead) };
        std::atomic<uint32_t> control_cpu { 0 };
        ApRequest request {};
    };

    // Walking.
    int operation(uint32_t cpu, CpuhpState target, bool bringup, bool from_core = false);
    int transition(uint32_t cpu, CpuhpState target, bool bringup);
    int walk(uint32_t cpu, CpuhpState target, bool bringup);
    int up_walk(uint32_t cpu, CpuhpState target);
    int down_walk(uint32_t cpu, CpuhpState target);
    CpuhpState set_state(uint32_t cpu, CpuhpState target, bool bringup);
    void reset_state(uint32_t cpu, CpuhpState previous);
    void settle_failed_rollback(uint32_t cpu, bool was_bringup);
    bool next_state(CpuState& st, bool bringup, CpuhpState target, CpuhpState& to_run) const;
    int invoke_range(uint32_t cpu, bool bringup, CpuhpState target);
    int invoke_callback(uint32_t cpu, CpuhpState state, bool bringup, CpuhpInstance* instance);
    int invoke_multi(uint32_t cpu, CpuhpState state, bool bringup, Step const& step);
    int run_on_ap(uint32_t cpu, ApRequest::Kind kind, bool bringup, CpuhpState state, CpuhpInstance* instance);
    static int ap_request_entry(void* request);
    int issue_call(uint32_t cpu, CpuhpState state, bool bringup, CpuhpInstance* instance);
    void trace(uint32_t cpu, CpuhpState state, TraceEvent::Phase phase, bool bringup, int result,
        CpuhpInstance* instance);
    bool step_empty(bool bringup, Step const& step) const;

    // Registration.
    static Step single_step(CpuhpCallback startup, CpuhpCallback teardown, void* data);
    int install(CpuhpState state, char const* name, Step const& callbacks, bool invoke, bool cpus_held);
    bool cpus_read_held(CpuhpState state);
    int reserve_dynamic(CpuhpState first);
    void rollback_install(uint32_t failed_cpu, CpuhpState state, CpuhpInstance* instance);
    int do_add_instance(CpuhpState state, CpuhpInstance* instance, bool invoke, bool cpus_held);
    int do_remove_instance(CpuhpState state, CpuhpInstance* instance, bool invoke);
    int do_remove_state(CpuhpState state, bool invoke, bool cpus_held);

    // The core's own steps.
    static int kick_ap_startup(uint32_t cpu, void* self);
    static int bringup_startup(uint32_t cpu, void* self);
    static int takedown_teardown(uint32_t cpu, void* self);
    static int active_startup(uint32_t cpu, void* self);
    static int active_teardown(uint32_t cpu, void* self);
    bool can_boot_ap(uint32_t cpu);
    bool wait_sync(uint32_t cpu, ApSync wanted, uint64_t timeout_ns);
    int ap_dying(uint32_t cpu);

    void set_mask(CpuMask& mask, uint32_t cpu, bool value);
    uint32_t count_online() const;
    bool valid_cpu(uint32_t cpu) const { return cpu < MAX_CPUS; }

    Platform& m_platform;
    CpuhpTimeouts m_timeouts;
    uint32_t m_boot_cpu { 0 };

    // Lock order: m_maps_lock, then m_hotplug_lock, then m_state_lock, then m_mask_lock.
    SpinMutex m_maps_lock;      // serialises hotplug operations and the disable count (cpu_add_remove_lock)
    RwLock m_hotplug_lock;      // readers: cpus_read_lock(); writer: a hotplug operation (cpu_hotplug_lock)
    mutable SpinMutex m_state_lock; // serialises registration (cpuhp_state_mutex)
    mutable SpinMutex m_mask_lock; // guards the four masks
    std::atomic<uint32_t> m_disable_count { 0 };

    Step m_steps[CPUHP_STATE_COUNT];
    CpuState m_cpus[MAX_CPUS];
    CpuMask m_possible, m_present, m_online, m_active;
};

} // namespace cpuplug
