// The guest status port device (guest/include/guest/abi/status_port.hpp): each 32-bit write is an event,
// time-stamped on arrival and handed to the machine.
#pragma once

#include "io_bus.hpp"

#include <guest/abi/status_port.hpp>

#include <chrono>
#include <cstdint>
#include <functional>

namespace vmm {

class StatusPort final : public IoDevice {
public:
    using Clock = std::chrono::steady_clock;
    using Handler = std::function<void(uint32_t event, Clock::time_point when)>;

    explicit StatusPort(Handler handler)
        : m_handler(std::move(handler))
    {
    }

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<uint8_t const> data) override;

    uint64_t ignored_writes() const { return m_ignored.count(); }

private:
    Handler m_handler;
    GuestLogLimit m_ignored;
};

} // namespace vmm
