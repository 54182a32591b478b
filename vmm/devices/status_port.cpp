// StatusPort: only aligned 32-bit writes to the event register count; anything else is a guest bug.
#include "status_port.hpp"

#include <cstring>
#include <spdlog/spdlog.h>

namespace vmm {

void StatusPort::read(uint64_t, std::span<uint8_t>)
{
    // Nothing to read yet: the data is already zero-filled by the bus.
}

void StatusPort::write(uint64_t offset, std::span<uint8_t const> data)
{
    auto when = Clock::now();
    if (offset != status_port::REG_EVENT || data.size() != 4) {
        VMM_GUEST_LOG(m_ignored, warn, "status port: ignored {}-byte write at offset {:#x}", data.size(), offset);
        return;
    }
    uint32_t event;
    std::memcpy(&event, data.data(), 4);
    m_handler(event, when);
}

} // namespace vmm
