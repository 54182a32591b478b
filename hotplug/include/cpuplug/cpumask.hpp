// CpuMask: a fixed-size CPU bitmap (possible/present/online/active), freestanding, sized at compile time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cpuplug {

// The most CPUs any part of cpuplug handles: KVM's default KVM_MAX_NR_VCPUS on x86.
inline constexpr uint32_t MAX_CPUS = 1024;

class CpuMask {
public:
    static constexpr uint32_t WORDS = (MAX_CPUS + 63) / 64;

    // Ids past MAX_CPUS are ignored (and test() false): no caller can write outside the mask.
    constexpr void set(uint32_t cpu)
    {
        if (cpu < MAX_CPUS)
            m_bits[cpu / 64] |= bit(cpu);
    }
    constexpr void clear(uint32_t cpu)
    {
        if (cpu < MAX_CPUS)
            m_bits[cpu / 64] &= ~bit(cpu);
    }
    constexpr void assign(uint32_t cpu, bool value) { value ? set(cpu) : clear(cpu); }
    constexpr bool test(uint32_t cpu) const { return cpu < MAX_CPUS && (m_bits[cpu / 64] & bit(cpu)) != 0; }
    constexpr void clear_all()
    {
        for (auto& word : m_bits)
            word = 0;
    }

    uint32_t count() const;
    bool empty() const { return count() == 0; }
    // The first set CPU at or after `from`, or MAX_CPUS when there is none.
    uint32_t next(uint32_t from) const;
    uint32_t first() const { return next(0); }

    // Linux's cpulist format ("0-3,5,8-9"), NUL-terminated; returns the length, or the length needed if
    // the buffer is too small (then the buffer holds a truncated, still terminated, prefix).
    size_t format(char* buffer, size_t size) const;

    // Range-for over the set CPUs.
    class Iterator {
    public:
        constexpr Iterator(CpuMask const& mask, uint32_t cpu)
            : m_mask(mask)
            , m_cpu(cpu)
        {
        }
        uint32_t operator*() const { return m_cpu; }
        Iterator& operator++()
        {
            m_cpu = m_mask.next(m_cpu + 1);
            return *this;
        }
        bool operator!=(Iterator const& other) const { return m_cpu != other.m_cpu; }

    private:
        CpuMask const& m_mask;
        uint32_t m_cpu;
    };
    Iterator begin() const { return { *this, first() }; }
    Iterator end() const { return { *this, MAX_CPUS }; }

    bool operator==(CpuMask const&) const = default;

private:
    static constexpr uint64_t bit(uint32_t cpu) { return uint64_t(1) << (cpu % 64); }
    uint64_t m_bits[WORDS] {};
};

} // namespace cpuplug
