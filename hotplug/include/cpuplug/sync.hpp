// Locks for the freestanding hotplug core: a spin mutex and a reader/writer lock on std::atomic. Waiters
// call Platform::relax() between attempts; hotplug operations are rare, so contention is short.
#pragma once

#include <cpuplug/platform.hpp>

#include <atomic>
#include <cstdint>

namespace cpuplug {

class SpinMutex {
public:
    void lock(Platform& platform)
    {
        while (m_locked.exchange(true, std::memory_order_acquire))
            while (m_locked.load(std::memory_order_relaxed))
                platform.relax();
    }
    bool try_lock() { return !m_locked.exchange(true, std::memory_order_acquire); }
    void unlock() { m_locked.store(false, std::memory_order_release); }

private:
    std::atomic<bool> m_locked { false };
};

// Readers share; a writer excludes readers and other writers. A waiting writer holds off new readers, so
// a stream of readers cannot starve a hotplug operation (Linux's percpu rw-semaphore does the same).
class RwLock {
public:
    void read_lock(Platform& platform)
    {
        for (;;) {
            uint32_t value = m_word.load(std::memory_order_relaxed);
            if ((value & WRITER) == 0
                && m_word.compare_exchange_weak(value, value + 1, std::memory_order_acquire, std::memory_order_relaxed))
                return;
            platform.relax();
        }
    }
    void read_unlock() { m_word.fetch_sub(1, std::memory_order_release); }

    void write_lock(Platform& platform)
    {
        for (;;) {
            uint32_t value = m_word.load(std::memory_order_relaxed);
            if ((value & WRITER) == 0
                && m_word.compare_exchange_weak(value, value | WRITER, std::memory_order_acquire, std::memory_order_relaxed))
                break;
            platform.relax();
        }
        while ((m_word.load(std::memory_order_acquire) & ~WRITER) != 0)
            platform.relax();
    }
    void write_unlock() { m_word.fetch_and(~WRITER, std::memory_order_release); }

    uint32_t readers() const { return m_word.load(std::memory_order_relaxed) & ~WRITER; }
    bool write_locked() const { return (m_word.load(std::memory_order_relaxed) & WRITER) != 0; }

private:
    static constexpr uint32_t WRITER = 1u << 31;
    std::atomic<uint32_t> m_word { 0 };
};

} // namespace cpuplug
