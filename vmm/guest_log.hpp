// Log lines a guest can cause. A guest decides how often they would be written, and each is written
// synchronously, often on a vCPU thread: so each kind is logged the first few times, then once in
// 10000, with its running count. A guest in a loop costs a counter increment, not a log line.
#pragma once

#include <atomic>
#include <cstdint>

namespace vmm {

class GuestLogLimit {
public:
    static constexpr uint64_t FIRST = 8;
    static constexpr uint64_t EVERY = 10000;

    // Counts one occurrence; true if it is to be logged. `nth` is its 1-based number.
    bool should_log(uint64_t& nth)
    {
        nth = m_count.fetch_add(1, std::memory_order_relaxed) + 1;
        return nth <= FIRST || nth % EVERY == 0;
    }
    uint64_t count() const { return m_count.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> m_count { 0 };
};

} // namespace vmm

// Logs at `level` through spdlog if `limit` lets this occurrence through, with " (#N)" appended.
#define VMM_GUEST_LOG(limit, level, format, ...)                                                      \
    do {                                                                                               \
        uint64_t vmm_guest_log_nth_;                                                                   \
        if ((limit).should_log(vmm_guest_log_nth_))                                                   \
            spdlog::level(format " (#{})" __VA_OPT__(, ) __VA_ARGS__, vmm_guest_log_nth_);            \
    } while (false)
