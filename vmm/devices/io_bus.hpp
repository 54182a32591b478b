// IoBus: maps port (or MMIO) ranges to devices. A device sees only offsets into its own range. The bus is
// filled once in Machine::create() and is immutable while vCPUs run, so dispatch takes no lock.
#pragma once

#include "guest_log.hpp"

#include <cpuplug/base/result.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace vmm {

class IoDevice {
public:
    virtual ~IoDevice() = default;
    // `data` is the access (1, 2, 4 or 8 bytes); reads find it zero-filled.
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<uint8_t const> data) = 0;
};

struct IoRange {
    uint64_t base;
    uint64_t size;
};

enum class BusError {
    EmptyRange,
    Overflow,
    Overlap,
};
char const* to_string(BusError);

class IoBus {
public:
    explicit IoBus(std::string name)
        : m_name(std::move(name))
    {
    }

    cpuplug::Result<void, BusError> insert(IoRange range, std::shared_ptr<IoDevice> device);

    // False when no device claims the whole access; reads then see all ones, as on an ISA bus.
    bool read(uint64_t address, std::span<uint8_t> data) const;
    bool write(uint64_t address, std::span<uint8_t const> data) const;

    uint64_t unclaimed_accesses() const { return m_unclaimed.count(); }

private:
    struct Entry {
        IoRange range;
        std::shared_ptr<IoDevice> device;
    };
    Entry const* find(uint64_t address, uint64_t length) const;
    void warn_unclaimed(char const* what, uint64_t address, size_t length) const;

    std::string m_name;
    std::vector<Entry> m_entries; // sorted by base, non-overlapping
    mutable GuestLogLimit m_unclaimed;
};

} // namespace vmm
