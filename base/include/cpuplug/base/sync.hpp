// Freestanding locks: a spin mutex and a reader/writer lock on std::atomic. A waiter calls relax() on what
// the caller passes between attempts (the hotplug core passes its Platform: `pause` in the guest); they
// suit short critical sections under little contention, such as hotplug operations.
#pragma once

#include <atomic>
#include <cstdint>

namespace cpuplug {

// What a lock calls while it waits: `waiter.relax()`.
template<typename W>
concept SpinWaiter = requires(W& waiter) { waiter.relax(); };

class SpinMutex {
public:
    void lock(SpinWaiter auto& waiter)
    {
        while (m_locked.exchange(true, std::memory_order_acquire))
            while (m_locked.load(std::memory_order_relaxed))
                waiter.relax();
    }
    bool try_lock() { return !m_locked.exchange(true, std::memory_order_acquire); }
    void unlock() { m_locked.store(false, std::memory_order_release); }

private:
    std::atomic<bool> m_locked { false };
};

// Readers share; a writer excludes readers and other writers. A waiting writer holds off new readers, so
// a stream of readers cannot starve a writer such as a hotplug operation (Linux's percpu rw-semaphore does
// the same).
class RwLock {
public:
    void read_lock(SpinWaiter auto& waiter)
    {
        for (;;) {
            uint32_t value = m_word.load(std::memory_order_relaxed);
            if ((value & WRITER) == 0
                && m_word.compare_exchange_weak(value, value + 1, std::memory_order_acquire, std::memory_order_relaxed))
                return;
            waiter.relax();
        }
    }
    void read_unlock() { m_word.fetch_sub(1, std::memory_order_release); }

    void write_lock(SpinWaiter auto& waiter)
    {
        for (;;) {
            uint32_t value = m_word.load(std::memory_order_relaxed);
            if ((value & WRITER) == 0
                && m_word.compare_exchange_weak(value, value | WRITER, std::memory_order_acquire, std::memory_order_relaxed))
                break;
            waiter.relax();
        }
        while ((m_word.load(std::memory_order_acquire) & ~WRITER) != 0)
            waiter.relax();
    }
    void write_unlock() { m_word.fetch_and(~WRITER, std::memory_order_release); }

    uint32_t readers() const { return m_word.load(std::memory_order_relaxed) & ~WRITER; }
    bool write_locked() const { return (m_word.load(std::memory_order_relaxed) & WRITER) != 0; }

private:
    static constexpr uint32_t WRITER = 1u << 31;
    std::atomic<uint32_t> m_word { 0 };
};

} // namespace cpuplug
