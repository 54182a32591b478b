// A test IoDevice that records every access and answers reads with a fixed byte.
#pragma once

#include "devices/io_bus.hpp"

#include <vector>

namespace test_support {

struct RecordingDevice : vmm::IoDevice {
    struct Access {
        bool write;
        uint64_t offset;
        std::vector<uint8_t> data;
    };
    std::vector<Access> accesses;
    uint8_t read_value { 0x5A };

    void read(uint64_t offset, std::span<uint8_t> data) override
    {
        for (auto& b : data)
            b = read_value;
        accesses.push_back({ false, offset, { data.begin(), data.end() } });
    }
    void write(uint64_t offset, std::span<uint8_t const> data) override
    {
        accesses.push_back({ true, offset, { data.begin(), data.end() } });
    }
};

} // namespace test_support
