// The cpuplug guest kernel, built by guest/ and embedded into vmm (embedded_guest.S), so vmm needs no files.
#pragma once

#include <cstdint>
#include <span>

extern "C" uint8_t const cpuplug_guest_image_begin[];
extern "C" uint8_t const cpuplug_guest_image_end[];

namespace vmm {

inline std::span<uint8_t const> embedded_guest_image()
{
    return { cpuplug_guest_image_begin, cpuplug_guest_image_end };
}

} // namespace vmm
