// The hotplug core: walking, rollback, registration, locking, the AP handshake. Comments name the Linux
// function each piece follows (kernel/cpu.c) where the behaviour is the same.
#include <cpuplug/cpuhp.hpp>

namespace cpuplug {

namespace {

// RAII for the core's locks, which need the platform to wait.
class MutexGuard {
public:
    MutexGuard(SpinMutex& mutex, Platform& platform)
        : m_mutex(mutex)
    {
        m_mutex.lock(platform);
    }
    ~MutexGuard() { m_mutex.unlock(); }
    MutexGuard(MutexGuard const&) = delete;
    MutexGuard& operator=(MutexGuard const&) = delete;

private:
    SpinMutex& m_mutex;
};

// cpus_read_lock() for a registration, unless the caller holds it already (the _cpuslocked forms): taking
// it again would deadlock as soon as a hotplug operation waits for the write side in between.
class CpusReadGuard {
public:
    CpusReadGuard(Cpuhp& hotplug, bool held_by_caller)
        : m_hotplug(hotplug)
        , m_take(!held_by_caller)
    {
        if (m_take)
            m_hotplug.cpus_read_lock();
    }
    ~CpusReadGuard()
    {
        if (m_take)
            m_hotplug.cpus_read_unlock();
    }
    CpusReadGuard(CpusReadGuard const&) = delete;
    CpusReadGuard& operator=(CpusReadGuard const&) = delete;

private:
    Cpuhp& m_hotplug;
    bool m_take;
};

} // namespace

// A single-instance state's callbacks, for the setup_state* forms.
Cpuhp::Step Cpuhp::single_step(CpuhpCallback startup, CpuhpCallback teardown, void* data)
{
    Step step;
    step.startup = startup;
    step.teardown = teardown;
    step.data = data;
    return step;
}

namespace {

CpuhpState min_state(CpuhpState a, CpuhpState b) { return a < b ? a : b; }
CpuhpState max_state(CpuhpState a, CpuhpState b) { return a > b ? a : b; }

struct SyncWait {
    std::atomic<uint8_t> const* word;
    uint8_t wanted;
};

bool sync_reached(void const* arg)
{
    auto const* wait = static_cast<SyncWait const*>(arg);
    return wait->word->load(std::memory_order_acquire) == wait->wanted;
}

} // namespace

char const* to_string(ApSync sync)
{
    switch (sync) {
    case ApSync::Dead:
        return "dead";
    case ApSync::Kicked:
        return "kicked";
    case ApSync::ShouldDie:
        return "should_die";
    case ApSync::Alive:
        return "alive";
    case ApSync::ShouldOnline:
        return "should_online";
    case ApSync::Online:
        return "online";
    }
    return "?";
}

Cpuhp::Cpuhp(Platform& platform, CpuhpTimeouts timeouts)
    : m_platform(platform)
    , m_timeouts(timeouts)
{
    for (uint16_t i = 0; i < CPUHP_STATE_COUNT; ++i)
        m_steps[i].name = STATE_TABLE[i].name;
    // The core's own steps (Linux's static entries in cpuhp_hp_states[]).
    auto own = [this](CpuhpState state, CpuhpCallback startup, CpuhpCallback teardown) {
        auto& step = m_steps[to_index(state)];
        step.startup = startup;
        step.teardown = teardown;
        step.data = this;
        step.installed = true;
    };
    own(CpuhpState::KickAp, kick_ap_startup, nullptr);
    own(CpuhpState::BringupCpu, bringup_startup, nullptr);
    own(CpuhpState::TeardownCpu, nullptr, takedown_teardown);
    own(CpuhpState::ApActive, active_startup, active_teardown);
    // Markers count as installed: they are not slots anyone may claim.
    for (auto const& row : STATE_TABLE)
        if (row.owner == Owner::None)
            m_steps[to_index(row.state)].installed = true;
}

// ---- masks ------------------------------------------------------------------------------------------------

void Cpuhp::set_mask(CpuMask& mask, uint32_t cpu, bool value)
{
    MutexGuard guard(m_mask_lock, m_platform);
    mask.assign(cpu, value);
}

int Cpuhp::set_possible(uint32_t cpu)
{
    if (!valid_cpu(cpu))
        return -ERR_INVAL;
    set_mask(m_possible, cpu, true);
    return 0;
}

int Cpuhp::set_present(uint32_t cpu, bool present)
{
    if (!valid_cpu(cpu))
        return -ERR_INVAL;
    MutexGuard maps(m_maps_lock, m_platform);
    MutexGuard guard(m_mask_lock, m_platform);
    if (!m_possible.test(cpu))
        return -ERR_INVAL;
    if (!present && m_cpus[cpu].state.load(std::memory_order_relaxed) != to_index(CpuhpState::Offline))
        return -ERR_BUSY;
    m_present.assign(cpu, present);
    return 0;
}

int Cpuhp::boot_cpu_online(uint32_t cpu)
{
    if (!valid_cpu(cpu))
        return -ERR_INVAL;
    m_boot_cpu = cpu;
    auto& st = m_cpus[cpu];
    st.state.store(to_index(CpuhpState::Online), std::memory_order_relaxed);
    st.target.store(to_index(CpuhpState::Online), std::memory_order_relaxed);
    st.sync.store(static_cast<uint8_t>(ApSync::Online), std::memory_order_release);
    MutexGuard guard(m_mask_lock, m_platform);
    m_possible.set(cpu);
    m_present.set(cpu);
    m_online.set(cpu);
    m_active.set(cpu);
    return 0;
}

CpuMask Cpuhp::possible_mask() const
{
    MutexGuard guard(m_mask_lock, m_platform);
    return m_possible;
}

CpuMask Cpuhp::present_mask() const
{
    MutexGuard guard(m_mask_lock, m_platform);
    return m_present;
}

CpuMask Cpuhp::online_mask() const
{
    MutexGuard guard(m_mask_lock, m_platform);
    return m_online;
}

CpuMask Cpuhp::active_mask() const
{
    MutexGuard guard(m_mask_lock, m_platform);
    return m_active;
}

bool Cpuhp::cpu_present(uint32_t cpu) const
{
    MutexGuard guard(m_mask_lock, m_platform);
    return m_present.test(cpu);
}

bool Cpuhp::cpu_online(uint32_t cpu) const
{
    MutexGuard guard(m_mask_lock, m_platform);
    return m_online.test(cpu);
}

uint32_t Cpuhp::count_online() const
{
    MutexGuard guard(m_mask_lock, m_platform);
    return m_online.count();
}

// ---- introspection ---------------------------------------------------------------------------------------

// A CPU id past MAX_CPUS (a guest's request, a platform's bug) reads as a CPU that is not there.
CpuhpState Cpuhp::state(uint32_t cpu) const
{
    return valid_cpu(cpu) ? from_index(m_cpus[cpu].state.load(std::memory_order_relaxed)) : CpuhpState::Offline;
}
CpuhpState Cpuhp::target(uint32_t cpu) const
{
    return valid_cpu(cpu) ? from_index(m_cpus[cpu].target.load(std::memory_order_relaxed)) : CpuhpState::Offline;
}
uint16_t Cpuhp::fail(uint32_t cpu) const
{
    return valid_cpu(cpu) ? m_cpus[cpu].fail.load(std::memory_order_relaxed) : CPUHP_INVALID;
}
int Cpuhp::last_result(uint32_t cpu) const
{
    return valid_cpu(cpu) ? m_cpus[cpu].result.load(std::memory_order_relaxed) : -ERR_INVAL;
}
bool Cpuhp::rolled_back(uint32_t cpu) const { return valid_cpu(cpu) && m_cpus[cpu].rollback.load(std::memory_order_relaxed); }
ApSync Cpuhp::sync(uint32_t cpu) const
{
    return valid_cpu(cpu) ? static_cast<ApSync>(m_cpus[cpu].sync.load(std::memory_order_acquire)) : ApSync::Dead;
}
bool Cpuhp::in_limbo(uint32_t cpu) const { return valid_cpu(cpu) && m_cpus[cpu].limbo.load(std::memory_order_relaxed); }

char const* Cpuhp::state_name(CpuhpState state) const
{
    if (to_index(state) >= CPUHP_STATE_COUNT)
        return nullptr;
    MutexGuard guard(m_state_lock, m_platform);
    return m_steps[to_index(state)].name;
}

bool Cpuhp::state_installed(CpuhpState state) const
{
    if (to_index(state) >= CPUHP_STATE_COUNT)
        return false;
    MutexGuard guard(m_state_lock, m_platform);
    return m_steps[to_index(state)].installed;
}

// ---- locking ---------------------------------------------------------------------------------------------

void Cpuhp::cpus_read_lock() { m_hotplug_lock.read_lock(m_platform); }
void Cpuhp::cpus_read_unlock() { m_hotplug_lock.read_unlock(); }

void Cpuhp::cpu_hotplug_disable()
{
    MutexGuard maps(m_maps_lock, m_platform); // waits for an operation in progress
    m_disable_count.fetch_add(1, std::memory_order_relaxed);
}

void Cpuhp::cpu_hotplug_enable()
{
    MutexGuard maps(m_maps_lock, m_platform);
    if (m_disable_count.load(std::memory_order_relaxed) == 0) {
        m_platform.warn("unbalanced cpu_hotplug_enable", m_platform.this_cpu(), CpuhpState::Offline, -ERR_INVAL);
        return;
    }
    m_disable_count.fetch_sub(1, std::memory_order_relaxed);
}

bool Cpuhp::cpu_hotplug_disabled() const { return m_disable_count.load(std::memory_order_relaxed) != 0; }

// ---- invoking callbacks ----------------------------------------------------------------------------------

void Cpuhp::trace(uint32_t cpu, CpuhpState state, TraceEvent::Phase phase, bool bringup, int result,
    CpuhpInstance* instance)
{
    TraceEvent event { cpu, state, phase, bringup, m_cpus[cpu].rollback.load(std::memory_order_relaxed), result,
        instance };
    m_platform.trace(event);
}

bool Cpuhp::step_empty(bool bringup, Step const& step) const
{
    if (step.multi_instance)
        return bringup ? step.multi_startup == nullptr : step.multi_teardown == nullptr;
    return bringup ? step.startup == nullptr : step.teardown == nullptr;
}

// Linux: cpuhp_invoke_callback(). The failing step cleans up after itself, so a multi-instance step undoes
// the instances it already did before reporting the failure.
int Cpuhp::invoke_callback(uint32_t cpu, CpuhpState state, bool bringup, CpuhpInstance* instance)
{
    auto& st = m_cpus[cpu];
    uint16_t expected = to_index(state);
    if (st.fail.load(std::memory_order_relaxed) == expected
        && st.fail.compare_exchange_strong(expected, CPUHP_INVALID, std::memory_order_relaxed)) {
        trace(cpu, state, TraceEvent::Phase::Enter, bringup, 0, instance);
        trace(cpu, state, TraceEvent::Phase::Exit, bringup, -ERR_AGAIN, instance);
        return -ERR_AGAIN;
    }
    Step const& step = m_steps[to_index(state)];
    if (!step.multi_instance) {
        auto callback = bringup ? step.startup : step.teardown;
        if (!callback)
            return 0;
        trace(cpu, state, TraceEvent::Phase::Enter, bringup, 0, nullptr);
        int result = callback(cpu, step.data);
        trace(cpu, state, TraceEvent::Phase::Exit, bringup, result, nullptr);
        return result;
    }
    auto callback = bringup ? step.multi_startup : step.multi_teardown;
    if (!callback)
        return 0;
    if (instance) {
        trace(cpu, state, TraceEvent::Phase::Enter, bringup, 0, instance);
        int result = callback(cpu, instance, step.data);
        trace(cpu, state, TraceEvent::Phase::Exit, bringup, result, instance);
        return result;
    }
    return invoke_multi(cpu, state, bringup, step);
}

int Cpuhp::invoke_multi(uint32_t cpu, CpuhpState state, bool bringup, Step const& step)
{
    auto callback = bringup ? step.multi_startup : step.multi_teardown;
    uint32_t done = 0;
    int result = 0;
    for (auto* node = step.instances; node; node = node->next) {
        trace(cpu, state, TraceEvent::Phase::Enter, bringup, 0, node);
        result = callback(cpu, node, step.data);
        trace(cpu, state, TraceEvent::Phase::Exit, bringup, result, node);
        if (result != 0)
            break;
        ++done;
    }
    if (result == 0)
        return 0;
    // Undo the instances that succeeded, in the same order (Linux's cpuhp_invoke_callback err: path).
    auto undo = bringup ? step.multi_teardown : step.multi_startup;
    if (undo) {
        auto* node = step.instances;
        for (uint32_t i = 0; i < done && node; ++i, node = node->next) {
            trace(cpu, state, TraceEvent::Phase::Enter, !bringup, 0, node);
            int undone = undo(cpu, node, step.data);
            trace(cpu, state, TraceEvent::Phase::Exit, !bringup, undone, node);
            if (undone != 0)
                m_platform.warn("undoing a multi-instance step failed", cpu, state, undone);
        }
    }
    return result;
}

// Linux: cpuhp_next_state(). Up: the state is advanced before its startup runs, so after a failure it names
// the failed step. Down: it is lowered before the teardown runs, so after a failure it is one below.
bool Cpuhp::next_state(CpuState& st, bool bringup, CpuhpState target, CpuhpState& to_run) const
{
    for (;;) {
        uint16_t current = st.state.load(std::memory_order_relaxed);
        if (bringup) {
            if (current >= to_index(target))
                return false;
            to_run = from_index(static_cast<uint16_t>(current + 1));
            st.state.store(to_index(to_run), std::memory_order_relaxed);
        } else {
            if (current <= to_index(target))
                return false;
            to_run = from_index(current);
            st.state.store(static_cast<uint16_t>(current - 1), std::memory_order_relaxed);
        }
        if (!step_empty(bringup, m_steps[to_index(to_run)]))
            return true;
    }
}

// Linux: __cpuhp_invoke_callback_range(). STARTING/DYING steps must not fail: a failure there is reported
// and the walk goes on (Linux's _nofail variant); anywhere else the walk stops at the failure.
int Cpuhp::invoke_range(uint32_t cpu, bool bringup, CpuhpState target)
{
    auto& st = m_cpus[cpu];
    CpuhpState to_run;
    while (next_state(st, bringup, target, to_run)) {
        int result = invoke_callback(cpu, to_run, bringup, nullptr);
        if (result == 0)
            continue;
        if (is_atomic_state(to_run)) {
            m_platform.warn(bringup ? "a STARTING callback failed (ignored)" : "a DYING callback failed (ignored)", cpu,
                to_run, result);
            continue;
        }
        return result;
    }
    return 0;
}

int Cpuhp::ap_request_entry(void* arg)
{
    auto* request = static_cast<ApRequest*>(arg);
    Cpuhp& self = *request->self;
    int result = -ERR_INVAL;
    switch (request->kind) {
    case ApRequest::Kind::Walk:
        result = self.invoke_range(request->cpu, request->bringup, request->state);
        break;
    case ApRequest::Kind::Call: {
        bool atomic = is_atomic_state(request->state);
        if (atomic)
            self.m_platform.irq_disable();
        result = self.invoke_callback(request->cpu, request->state, request->bringup, request->instance);
        if (atomic)
            self.m_platform.irq_enable();
        break;
    }
    case ApRequest::Kind::Dying:
        result = self.ap_dying(request->cpu);
        break;
    }
    request->completed = true;
    return result;
}

// Runs work for `cpu` on that CPU: directly when it is the caller (the boot CPU registering a state),
// else through the platform.
int Cpuhp::run_on_ap(uint32_t cpu, ApRequest::Kind kind, bool bringup, CpuhpState state, CpuhpInstance* instance)
{
    auto& request = m_cpus[cpu].request;
    request = ApRequest { this, cpu, kind, bringup, state, instance, false };
    if (cpu == m_platform.this_cpu())
        return ap_request_entry(&request);
    int result = m_platform.run_on_cpu(cpu, ap_request_entry, &request);
    if (!request.completed) {
        // The platform lost the AP (it never ran the work, or not to the end): its state is unknown.
        m_cpus[cpu].limbo.store(true, std::memory_order_relaxed);
        m_platform.warn("CPU did not run the work it was given", cpu, state, result != 0 ? result : -ERR_IO);
        return result != 0 ? result : -ERR_IO;
    }
    return result;
}

// ---- walking -----------------------------------------------------------------------------------------------

// Linux: cpuhp_set_state().
CpuhpState Cpuhp::set_state(uint32_t cpu, CpuhpState target, bool bringup)
{
    auto& st = m_cpus[cpu];
    auto previous = from_index(st.state.load(std::memory_order_relaxed));
    st.rollback.store(false, std::memory_order_relaxed);
    st.target.store(to_index(target), std::memory_order_relaxed);
    st.bringup.store(bringup, std::memory_order_relaxed);
    st.control_cpu.store(m_platform.this_cpu(), std::memory_order_relaxed);
    return previous;
}

// Linux: cpuhp_reset_state(). Flips the direction; the failed step is not undone (it cleaned up after
// itself), so the walk back starts one step over from it.
void Cpuhp::reset_state(uint32_t cpu, CpuhpState previous)
{
    auto& st = m_cpus[cpu];
    bool bringup = !st.bringup.load(std::memory_order_relaxed);
    st.target.store(to_index(previous), std::memory_order_relaxed);
    if (st.rollback.load(std::memory_order_relaxed))
        return;
    st.rollback.store(true, std::memory_order_relaxed);
    uint16_t current = st.state.load(std::memory_order_relaxed);
    st.state.store(static_cast<uint16_t>(bringup ? current + 1 : current - 1), std::memory_order_relaxed);
    st.bringup.store(bringup, std::memory_order_relaxed);
}

// A rollback stopped at a failing step: leave the CPU where it stands, with `state` naming the last step
// that is really done (a failed teardown's step is still up; a failed startup's is not).
void Cpuhp::settle_failed_rollback(uint32_t cpu, bool was_bringup)
{
    auto& st = m_cpus[cpu];
    if (st.limbo.load(std::memory_order_relaxed))
        return;
    uint16_t current = st.state.load(std::memory_order_relaxed);
    st.state.store(static_cast<uint16_t>(was_bringup ? current - 1 : current + 1), std::memory_order_relaxed);
}

// Up to `target`: the control CPU walks PREPARE and the bridge (cpu:bringup has the AP walk STARTING),
// then the AP walks the ONLINE section.
int Cpuhp::up_walk(uint32_t cpu, CpuhpState target)
{
    auto& st = m_cpus[cpu];
    auto bp_target = min_state(target, CpuhpState::BringupCpu);
    if (from_index(st.state.load(std::memory_order_relaxed)) < bp_target) {
        int result = invoke_range(cpu, true, bp_target);
        if (result)
            return result;
    }
    if (from_index(st.state.load(std::memory_order_relaxed)) < target)
        return run_on_ap(cpu, ApRequest::Kind::Walk, true, target, nullptr);
    return 0;
}

// Down to `target`: the AP walks the ONLINE section down to cpu:teardown, then the control CPU takes it
// down (takedown has the AP run DYING and die) and walks the bridge and PREPARE teardowns.
int Cpuhp::down_walk(uint32_t cpu, CpuhpState target)
{
    auto& st = m_cpus[cpu];
    if (from_index(st.state.load(std::memory_order_relaxed)) > CpuhpState::TeardownCpu) {
        int result = run_on_ap(cpu, ApRequest::Kind::Walk, false, max_state(target, CpuhpState::TeardownCpu), nullptr);
        if (result)
            return result;
    }
    if (from_index(st.state.load(std::memory_order_relaxed)) > target)
        return invoke_range(cpu, false, target);
    return 0;
}

int Cpuhp::walk(uint32_t cpu, CpuhpState target, bool bringup)
{
    return bringup ? up_walk(cpu, target) : down_walk(cpu, target);
}

// One operation (Linux: _cpu_up / _cpu_down): walk to the target; on a failure walk back to where it
// began. A CPU in limbo is not walked back: its state is unknown.
int Cpuhp::transition(uint32_t cpu, CpuhpState target, bool bringup)
{
    auto& st = m_cpus[cpu];
    auto previous = set_state(cpu, target, bringup);
    int result = walk(cpu, target, bringup);
    if (result != 0 && !st.limbo.load(std::memory_order_relaxed)) {
        reset_state(cpu, previous);
        int undone = walk(cpu, previous, !bringup);
        if (undone != 0) {
            settle_failed_rollback(cpu, !bringup);
            m_platform.warn(bringup ? "rollback of cpu_up failed: no way forward, no way back"
                                    : "rollback of cpu_down failed: no way forward, no way back",
                cpu, state(cpu), undone);
        }
    }
    st.result.store(result, std::memory_order_relaxed);
    m_platform.completed(cpu, state(cpu), result);
    return result;
}

// The checks every operation makes, then the transition under the maps lock and the hotplug write lock.
int Cpuhp::operation(uint32_t cpu, CpuhpState target, bool bringup, bool from_core)
{
    if (!valid_cpu(cpu) || to_index(target) >= CPUHP_STATE_COUNT || state_info(target).cant_stop)
        return -ERR_INVAL;
    // A kicked AP waits at its sync point; one that went down is dead and cannot be un-kicked, so
    // cpu:kick_ap is a place to rest only on the way up (parallel bring-up's first pass).
    if (!bringup && target == CpuhpState::KickAp)
        return -ERR_INVAL;
    MutexGuard maps(m_maps_lock, m_platform);
    if (m_disable_count.load(std::memory_order_relaxed) != 0)
        return -ERR_BUSY;
    // Linux's _cpu_down(): nothing goes down, to any state, while only one CPU is online. The core's own
    // clean-up of a failed parallel bring-up (CPUs that never got online) is exempt.
    if (!bringup && !from_core && count_online() <= 1)
        return -ERR_BUSY;
    if (!cpu_present(cpu))
        return -ERR_INVAL;
    if (!bringup) {
        if (cpu == m_boot_cpu)
            return -ERR_PERM;
        if (cpu == m_platform.this_cpu())
            return -ERR_BUSY;
        // Leaving the online set: never the last CPU standing.
        if (target < CpuhpState::TeardownCpu && cpu_online(cpu) && count_online() <= 1)
            return -ERR_BUSY;
    }
    if (m_cpus[cpu].limbo.load(std::memory_order_relaxed))
        return -ERR_IO;
    m_hotplug_lock.write_lock(m_platform);
    int result = 0;
    if (bringup ? state(cpu) < target : state(cpu) > target)
        result = transition(cpu, target, bringup);
    m_hotplug_lock.write_unlock();
    return result;
}

int Cpuhp::cpu_up(uint32_t cpu, CpuhpState target) { return operation(cpu, target, true); }
int Cpuhp::cpu_down(uint32_t cpu, CpuhpState target) { return operation(cpu, target, false); }

int Cpuhp::set_target(uint32_t cpu, CpuhpState target)
{
    if (!valid_cpu(cpu) || to_index(target) >= CPUHP_STATE_COUNT)
        return -ERR_INVAL;
    // Linux's target_store(): only named states a CPU may rest in.
    if (state_info(target).cant_stop || state_name(target) == nullptr)
        return -ERR_INVAL;
    if (target < state(cpu))
        return cpu_down(cpu, target);
    return cpu_up(cpu, target);
}

uint32_t Cpuhp::bringup_serial(CpuMask const& cpus)
{
    uint32_t online = 0;
    for (uint32_t cpu : cpus)
        if (cpu_up(cpu, CpuhpState::Online) == 0 && state(cpu) == CpuhpState::Online)
            ++online;
    return online;
}

// Linux: cpuhp_bringup_cpus_parallel(). Pass one kicks every AP, so they run their start-up code at the
// same time; pass two releases and finishes them one by one.
uint32_t Cpuhp::bringup_parallel(CpuMask const& cpus)
{
    for (uint32_t cpu : cpus)
        (void)cpu_up(cpu, CpuhpState::KickAp);
    uint32_t online = 0;
    for (uint32_t cpu : cpus) {
        if (state(cpu) == CpuhpState::Online) {
            ++online;
            continue;
        }
        if (state(cpu) != CpuhpState::KickAp)
            continue; // pass one failed and rolled back
        if (cpu_up(cpu, CpuhpState::Online) == 0) {
            ++online;
            continue;
        }
        // cpu_up rolled back to cpu:kick_ap, where pass two started: finish the job (cpuhp_bringup_mask).
        if (!in_limbo(cpu) && state(cpu) != CpuhpState::Offline)
            (void)operation(cpu, CpuhpState::Offline, false, true);
    }
    return online;
}

// ---- the core's own steps -------------------------------------------------------------------------------

// Linux: cpuhp_can_boot_ap(). A CPU that never came up (KICKED) or got stuck at its sync point (ALIVE) may
// be kicked again; one in any other state is in limbo.
bool Cpuhp::can_boot_ap(uint32_t cpu)
{
    auto& sync = m_cpus[cpu].sync;
    for (;;) {
        uint8_t current = sync.load(std::memory_order_acquire);
        auto value = static_cast<ApSync>(current);
        if (value != ApSync::Dead && value != ApSync::Kicked && value != ApSync::Alive)
            return false;
        if (sync.compare_exchange_weak(current, static_cast<uint8_t>(ApSync::Kicked), std::memory_order_acq_rel))
            return true;
    }
}

bool Cpuhp::wait_sync(uint32_t cpu, ApSync wanted, uint64_t timeout_ns)
{
    SyncWait wait { &m_cpus[cpu].sync, static_cast<uint8_t>(wanted) };
    return m_platform.wait_until(sync_reached, &wait, timeout_ns);
}

int Cpuhp::kick_ap_startup(uint32_t cpu, void* self_pointer)
{
    auto& self = *static_cast<Cpuhp*>(self_pointer);
    if (!self.can_boot_ap(cpu))
        return -ERR_AGAIN;
    return self.m_platform.kick_ap(cpu);
}

// Linux: cpuhp_bringup_ap(): wait for ALIVE, release, and here also wait for the end of STARTING (the
// AP sets Online), since STARTING cannot fail. Losing the AP after releasing it puts the CPU in limbo.
int Cpuhp::bringup_startup(uint32_t cpu, void* self_pointer)
{
    auto& self = *static_cast<Cpuhp*>(self_pointer);
    auto& st = self.m_cpus[cpu];
    // A CPU resting at cpu:kick_ap normally has its AP waiting at ALIVE. After a rolled-back attempt the
    // AP went through takedown and is dead: kick it again rather than wait for an ALIVE that cannot come.
    if (static_cast<ApSync>(st.sync.load(std::memory_order_acquire)) == ApSync::Dead) {
        int kicked = kick_ap_startup(cpu, self_pointer);
        if (kicked != 0)
            return kicked;
    }
    if (!self.wait_sync(cpu, ApSync::Alive, self.m_timeouts.alive_ns)) {
        self.m_platform.warn("CPU failed to report alive state", cpu, CpuhpState::BringupCpu, -ERR_IO);
        return -ERR_IO;
    }
    uint8_t alive = static_cast<uint8_t>(ApSync::Alive);
    if (!st.sync.compare_exchange_strong(alive, static_cast<uint8_t>(ApSync::ShouldOnline), std::memory_order_acq_rel))
        return -ERR_IO;
    self.m_platform.wake(cpu);
    if (!self.wait_sync(cpu, ApSync::Online, self.m_timeouts.online_ns)) {
        st.limbo.store(true, std::memory_order_relaxed);
        self.m_platform.warn("CPU was released but did not finish starting", cpu, CpuhpState::BringupCpu, -ERR_TIMEDOUT);
        return -ERR_TIMEDOUT;
    }
    return 0;
}

// Linux: takedown_cpu(): have the AP run the DYING steps and die, then wait for it to report DEAD.
int Cpuhp::takedown_teardown(uint32_t cpu, void* self_pointer)
{
    auto& self = *static_cast<Cpuhp*>(self_pointer);
    auto& st = self.m_cpus[cpu];
    st.sync.store(static_cast<uint8_t>(ApSync::ShouldDie), std::memory_order_release);
    int result = self.run_on_ap(cpu, ApRequest::Kind::Dying, false, CpuhpState::BringupCpu, nullptr);
    if (result != 0) {
        st.limbo.store(true, std::memory_order_relaxed);
        self.m_platform.warn("CPU did not run its DYING steps", cpu, CpuhpState::TeardownCpu, result);
        return result;
    }
    if (!self.wait_sync(cpu, ApSync::Dead, self.m_timeouts.dead_ns)) {
        st.limbo.store(true, std::memory_order_relaxed);
        self.m_platform.warn("CPU did not report dead", cpu, CpuhpState::TeardownCpu, -ERR_TIMEDOUT);
        return -ERR_TIMEDOUT;
    }
    return 0;
}

int Cpuhp::active_startup(uint32_t cpu, void* self_pointer)
{
    auto& self = *static_cast<Cpuhp*>(self_pointer);
    self.set_mask(self.m_active, cpu, true);
    return 0;
}

int Cpuhp::active_teardown(uint32_t cpu, void* self_pointer)
{
    auto& self = *static_cast<Cpuhp*>(self_pointer);
    self.set_mask(self.m_active, cpu, false);
    return 0;
}

// On the dying AP (Linux: take_cpu_down()): leave the online set and run DYING with interrupts off. They
// stay off: the AP reports dead next and parks.
int Cpuhp::ap_dying(uint32_t cpu)
{
    m_platform.irq_disable();
    set_mask(m_online, cpu, false);
    return invoke_range(cpu, false, CpuhpState::BringupCpu);
}

// ---- the AP's side ----------------------------------------------------------------------------------------

bool Cpuhp::ap_startup(uint32_t cpu)
{
    if (!valid_cpu(cpu))
        return false;
    auto& st = m_cpus[cpu];
    uint32_t control = st.control_cpu.load(std::memory_order_relaxed);
    // Linux: cpuhp_ap_sync_alive(). Everything before this point runs on all APs in parallel.
    // A compare-exchange from KICKED rather than Linux's exchange: if an earlier start of this AP (kicked,
    // then re-kicked before it arrived) already reported ALIVE and the control CPU released it, the
    // release stands for this start too instead of being overwritten, which would strand both sides.
    uint8_t seen = static_cast<uint8_t>(ApSync::Kicked);
    if (!st.sync.compare_exchange_strong(seen, static_cast<uint8_t>(ApSync::Alive), std::memory_order_acq_rel)
        && seen != static_cast<uint8_t>(ApSync::Alive) && seen != static_cast<uint8_t>(ApSync::ShouldOnline)) {
        m_platform.warn("AP started without being kicked", cpu, CpuhpState::KickAp, -ERR_INVAL);
        return false;
    }
    m_platform.wake(control);
    // Linux's AP, too, waits to be released for as long as it takes: with a deadline, an AP that gave up
    // would leave the sync word at ALIVE while it parked, and the release that came later would be lost
    // with the CPU. A control CPU that starts over re-kicks it instead (INIT resets the wait).
    if (!wait_sync(cpu, ApSync::ShouldOnline, WAIT_FOREVER))
        return false;
    // Linux: notify_cpu_starting(), then set_cpu_online().
    m_platform.irq_disable();
    (void)invoke_range(cpu, true, min_state(from_index(st.target.load(std::memory_order_relaxed)), CpuhpState::ApOnline));
    set_mask(m_online, cpu, true);
    m_platform.irq_enable();
    st.sync.store(static_cast<uint8_t>(ApSync::Online), std::memory_order_release);
    m_platform.wake(control);
    return true;
}

bool Cpuhp::ap_should_die(uint32_t cpu) const
{
    if (!valid_cpu(cpu))
        return false;
    auto const& st = m_cpus[cpu];
    return static_cast<ApSync>(st.sync.load(std::memory_order_acquire)) == ApSync::ShouldDie
        && from_index(st.state.load(std::memory_order_relaxed)) <= CpuhpState::BringupCpu;
}

int Cpuhp::ap_report_dead(uint32_t cpu)
{
    if (!valid_cpu(cpu))
        return -ERR_INVAL;
    auto& st = m_cpus[cpu];
    st.sync.store(static_cast<uint8_t>(ApSync::Dead), std::memory_order_release);
    m_platform.wake(st.control_cpu.load(std::memory_order_relaxed));
    return 0;
}

// ---- registration ----------------------------------------------------------------------------------------

int Cpuhp::reserve_dynamic(CpuhpState first)
{
    for (uint16_t i = to_index(first); i < CPUHP_STATE_COUNT && is_dynamic(from_index(i)); ++i)
        if (!m_steps[i].installed)
            return i;
    return -ERR_NOSPC;
}

// Call a step's callback for one CPU where it runs: the AP for AP states, the caller otherwise
// (Linux: cpuhp_issue_call()).
int Cpuhp::issue_call(uint32_t cpu, CpuhpState state, bool bringup, CpuhpInstance* instance)
{
    if (step_empty(bringup, m_steps[to_index(state)]))
        return 0;
    if (is_ap_state(state))
        return run_on_ap(cpu, ApRequest::Kind::Call, bringup, state, instance);
    return invoke_callback(cpu, state, bringup, instance);
}

// Linux: cpuhp_rollback_install(). Teardowns here must not fail.
void Cpuhp::rollback_install(uint32_t failed_cpu, CpuhpState state, CpuhpInstance* instance)
{
    CpuMask present = present_mask();
    for (uint32_t cpu : present) {
        if (cpu >= failed_cpu)
            break;
        if (this->state(cpu) >= state) {
            int result = issue_call(cpu, state, false, instance);
            if (result != 0)
                m_platform.warn("teardown while undoing a registration failed", cpu, state, result);
        }
    }
}

int Cpuhp::install(CpuhpState state, char const* name, Step const& callbacks, bool invoke, bool cpus_held)
{
    if (to_index(state) == 0 || to_index(state) >= to_index(CpuhpState::Online) || name == nullptr)
        return -ERR_INVAL;
    auto owner = state_info(state).owner;
    bool dynamic_request = state == CpuhpState::BpPrepareDyn || state == CpuhpState::ApOnlineDyn;
    if (!dynamic_request && owner != Owner::Platform)
        return owner == Owner::Dynamic ? -ERR_INVAL : -ERR_BUSY; // core-owned and marker states are taken
    if (cpus_held && !cpus_read_held(state))
        return -ERR_INVAL;

    CpusReadGuard cpus(*this, cpus_held);
    int result;
    {
        MutexGuard guard(m_state_lock, m_platform);
        if (dynamic_request) {
            result = reserve_dynamic(state);
            if (result < 0) {
                m_platform.warn("no more dynamic states available", m_platform.this_cpu(), state, result);
                return result;
            }
            state = from_index(static_cast<uint16_t>(result));
        } else if (m_steps[to_index(state)].installed) {
            return -ERR_BUSY;
        }
        auto& step = m_steps[to_index(state)];
        step = callbacks;
        step.name = dynamic_request ? name : STATE_TABLE[to_index(state)].name;
        step.installed = true;
        step.instances = nullptr;

        result = 0;
        bool has_startup = step.multi_instance ? false : step.startup != nullptr; // multi: instances come later
        if (invoke && has_startup) {
            CpuMask present = present_mask();
            for (uint32_t cpu : present) {
                if (this->state(cpu) < state)
                    continue;
                result = issue_call(cpu, state, true, nullptr);
                if (result != 0) {
                    if (step.teardown)
                        rollback_install(cpu, state, nullptr);
                    step = Step {};
                    step.name = STATE_TABLE[to_index(state)].name;
                    break;
                }
            }
        }
    }
    if (result != 0)
        return result;
    return dynamic_request ? to_index(state) : 0;
}

int Cpuhp::setup_state(CpuhpState state, char const* name, CpuhpCallback startup, CpuhpCallback teardown, void* data)
{
    return install(state, name, single_step(startup, teardown, data), true, false);
}

int Cpuhp::setup_state_cpuslocked(CpuhpState state, char const* name, CpuhpCallback startup,
    CpuhpCallback teardown, void* data)
{
    return install(state, name, single_step(startup, teardown, data), true, true);
}

int Cpuhp::setup_state_nocalls(CpuhpState state, char const* name, CpuhpCallback startup, CpuhpCallback teardown,
    void* data)
{
    return install(state, name, single_step(startup, teardown, data), false, false);
}

int Cpuhp::setup_state_nocalls_cpuslocked(CpuhpState state, char const* name, CpuhpCallback startup,
    CpuhpCallback teardown, void* data)
{
    return install(state, name, single_step(startup, teardown, data), false, true);
}

int Cpuhp::setup_state_multi(CpuhpState state, char const* name, CpuhpMultiCallback startup,
    CpuhpMultiCallback teardown, void* data)
{
    Step step;
    step.multi_startup = startup;
    step.multi_teardown = teardown;
    step.multi_instance = true;
    step.data = data;
    return install(state, name, step, false, false); // Linux: setup_state_multi never invokes
}

int Cpuhp::do_add_instance(CpuhpState state, CpuhpInstance* instance, bool invoke, bool cpus_held)
{
    if (to_index(state) >= CPUHP_STATE_COUNT || instance == nullptr)
        return -ERR_INVAL;
    if (cpus_held && !cpus_read_held(state))
        return -ERR_INVAL;
    CpusReadGuard cpus(*this, cpus_held);
    int result = 0;
    {
        MutexGuard guard(m_state_lock, m_platform);
        auto& step = m_steps[to_index(state)];
        bool listed = false;
        for (auto* node = step.instances; node && !listed; node = node->next)
            listed = node == instance;
        if (!step.multi_instance || !step.installed) {
            result = -ERR_INVAL;
        } else if (listed) {
            // Linking it again would drop the instances after it from the list (or, alone, point it at
            // itself, and the next walk of the state would never end).
            result = -ERR_EXIST;
        } else {
            if (invoke && step.multi_startup) {
                CpuMask present = present_mask();
                for (uint32_t cpu : present) {
                    if (this->state(cpu) < state)
                        continue;
                    result = issue_call(cpu, state, true, instance);
                    if (result != 0) {
                        if (step.multi_teardown)
                            rollback_install(cpu, state, instance);
                        break;
                    }
                }
            }
            if (result == 0) {
                // Appended, so every CPU calls instances in the order they were added (Linux adds at the
                // head and calls the newest first; docs/hotplug.md).
                CpuhpInstance** tail = &step.instances;
                while (*tail)
                    tail = &(*tail)->next;
                instance->next = nullptr;
                *tail = instance;
            }
        }
    }
    return result;
}

int Cpuhp::add_instance(CpuhpState state, CpuhpInstance* instance) { return do_add_instance(state, instance, true, false); }
int Cpuhp::add_instance_nocalls(CpuhpState state, CpuhpInstance* instance)
{
    return do_add_instance(state, instance, false, false);
}
int Cpuhp::add_instance_cpuslocked(CpuhpState state, CpuhpInstance* instance)
{
    return do_add_instance(state, instance, true, true);
}
int Cpuhp::add_instance_nocalls_cpuslocked(CpuhpState state, CpuhpInstance* instance)
{
    return do_add_instance(state, instance, false, true);
}

int Cpuhp::do_remove_instance(CpuhpState state, CpuhpInstance* instance, bool invoke)
{
    if (to_index(state) >= CPUHP_STATE_COUNT || instance == nullptr)
        return -ERR_INVAL;
    CpusReadGuard cpus(*this, false);
    int result = 0;
    {
        MutexGuard guard(m_state_lock, m_platform);
        auto& step = m_steps[to_index(state)];
        CpuhpInstance** link = &step.instances;
        while (*link && *link != instance)
            link = &(*link)->next;
        if (!step.multi_instance || *link == nullptr) {
            result = -ERR_INVAL;
        } else {
            if (invoke && step.multi_teardown) {
                CpuMask present = present_mask();
                for (uint32_t cpu : present) {
                    if (this->state(cpu) < state)
                        continue;
                    int torn = issue_call(cpu, state, false, instance);
                    if (torn != 0)
                        m_platform.warn("instance teardown failed", cpu, state, torn);
                }
            }
            *link = instance->next;
            instance->next = nullptr;
        }
    }
    return result;
}

int Cpuhp::remove_instance(CpuhpState state, CpuhpInstance* instance)
{
    return do_remove_instance(state, instance, true);
}

int Cpuhp::remove_instance_nocalls(CpuhpState state, CpuhpInstance* instance)
{
    return do_remove_instance(state, instance, false);
}

int Cpuhp::do_remove_state(CpuhpState state, bool invoke, bool cpus_held)
{
    if (to_index(state) == 0 || to_index(state) >= to_index(CpuhpState::Online))
        return -ERR_INVAL;
    auto owner = state_info(state).owner;
    if (owner != Owner::Platform && owner != Owner::Dynamic)
        return -ERR_INVAL;
    if (cpus_held && !cpus_read_held(state))
        return -ERR_INVAL;
    CpusReadGuard cpus(*this, cpus_held);
    int result = 0;
    {
        MutexGuard guard(m_state_lock, m_platform);
        auto& step = m_steps[to_index(state)];
        if (!step.installed) {
            result = -ERR_INVAL;
        } else if (step.multi_instance && step.instances != nullptr) {
            m_platform.warn("removing a state which has instances left", m_platform.this_cpu(), state, -ERR_BUSY);
            result = -ERR_BUSY;
        } else {
            if (invoke && !step.multi_instance && step.teardown) {
                CpuMask present = present_mask();
                for (uint32_t cpu : present) {
                    if (this->state(cpu) < state)
                        continue;
                    int torn = issue_call(cpu, state, false, nullptr);
                    if (torn != 0)
                        m_platform.warn("teardown while removing a state failed", cpu, state, torn);
                }
            }
            step = Step {};
            step.name = STATE_TABLE[to_index(state)].name;
        }
    }
    return result;
}

int Cpuhp::remove_state(CpuhpState state) { return do_remove_state(state, true, false); }
int Cpuhp::remove_state_nocalls(CpuhpState state) { return do_remove_state(state, false, false); }
int Cpuhp::remove_state_cpuslocked(CpuhpState state) { return do_remove_state(state, true, true); }
int Cpuhp::remove_state_nocalls_cpuslocked(CpuhpState state) { return do_remove_state(state, false, true); }

// The _cpuslocked forms trust the caller to hold cpus_read_lock(); a lock nobody holds for reading is a
// caller's mistake (Linux's lockdep_assert_cpus_held()), refused rather than run unprotected.
bool Cpuhp::cpus_read_held(CpuhpState state)
{
    if (m_hotplug_lock.readers() != 0)
        return true;
    m_platform.warn("a _cpuslocked registration without cpus_read_lock() held", m_platform.this_cpu(), state, -ERR_INVAL);
    return false;
}

// Linux: fail_store().
int Cpuhp::set_fail(uint32_t cpu, uint16_t state)
{
    if (!valid_cpu(cpu))
        return -ERR_INVAL;
    auto& st = m_cpus[cpu];
    if (state == CPUHP_INVALID) {
        st.fail.store(CPUHP_INVALID, std::memory_order_relaxed);
        return 0;
    }
    if (state >= CPUHP_STATE_COUNT)
        return -ERR_INVAL;
    auto fail_state = from_index(state);
    if (is_atomic_state(fail_state))
        return -ERR_INVAL;
    if (fail_state <= CpuhpState::BringupCpu && this->state(cpu) > CpuhpState::BringupCpu)
        return -ERR_INVAL;
    {
        MutexGuard guard(m_state_lock, m_platform);
        auto const& step = m_steps[state];
        if (step.multi_instance ? (!step.multi_startup && !step.multi_teardown) : (!step.startup && !step.teardown))
            return -ERR_INVAL;
    }
    st.fail.store(state, std::memory_order_relaxed);
    return 0;
}

} // namespace cpuplug
