// Test doubles for the QMP library: a scripted Backend that records run-control calls, and a Session
// harness that collects the lines a session sends.
#pragma once

#include "qmp/commands.hpp"
#include "qmp/protocol.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qmp_test {

using vmm::qmp::Json;

// A machine whose state the test sets by hand. Run-control calls are recorded by name and answer at once
// with `failure` (or {}), unless `defer` is set: then the Reply is kept in `pending` for the test to call.
class FakeBackend final : public vmm::qmp::Backend {
public:
    vmm::qmp::RunState state { vmm::qmp::RunState::Running };
    std::vector<vmm::qmp::CpuSlot> slots;
    bool dies { false };
    std::string type { "qemu64-x86_64-cpu" };

    bool defer { false };
    std::optional<vmm::qmp::Error> failure;
    std::vector<std::string> calls;
    std::vector<vmm::qmp::Reply> pending;

    vmm::qmp::RunState run_state() const override { return state; }
    std::vector<vmm::qmp::CpuSlot> cpu_slots() const override { return slots; }
    bool has_dies() const override { return dies; }
    std::string cpu_type() const override { return type; }

    void stop(vmm::qmp::Reply reply) override { record("stop", std::move(reply)); }
    void cont(vmm::qmp::Reply reply) override { record("cont", std::move(reply)); }
    void system_reset(vmm::qmp::Reply reply) override { record("system_reset", std::move(reply)); }
    void system_powerdown(vmm::qmp::Reply reply) override { record("system_powerdown", std::move(reply)); }
    void quit(vmm::qmp::Reply reply) override { record("quit", std::move(reply)); }

    vmm::qmp::CpuTopology topo { 2, 1, 2, 1 };
    bool hotplug { true };
    std::vector<std::vector<uint32_t>> plugged, unplugged; // the indexes of each call
    std::vector<std::optional<std::string>> plug_ids;
    std::vector<vmm::qmp::CpuhpRequest> cpuhp_requests;

    vmm::qmp::CpuTopology topology() const override { return topo; }
    bool cpu_hotplug_enabled() const override { return hotplug; }
    void plug_cpus(std::vector<uint32_t> const& indexes, std::optional<std::string> const& id,
        vmm::qmp::Reply reply) override
    {
        plugged.push_back(indexes);
        plug_ids.push_back(id);
        record("plug_cpus", std::move(reply));
    }
    void unplug_cpus(std::vector<uint32_t> const& indexes, vmm::qmp::Reply reply) override
    {
        unplugged.push_back(indexes);
        record("unplug_cpus", std::move(reply));
    }
    void cpuhp(vmm::qmp::CpuhpRequest const& request, vmm::qmp::Reply reply) override
    {
        cpuhp_requests.push_back(request);
        record("cpuhp", std::move(reply));
    }

    // Debugging: registers by cpu index (a CPU without an entry reads as power-on with its index), guest RAM
    // as one buffer at `ram_base`, and the register reads asked for.
    std::map<uint32_t, vmm::qmp::CpuRegisters> registers;
    std::optional<vmm::qmp::Error> registers_failure;
    std::vector<std::vector<uint32_t>> register_reads;
    std::vector<uint8_t> ram;
    uint64_t ram_base { 0 };

    void read_cpu_registers(std::vector<uint32_t> const& indexes, RegistersReply reply) override
    {
        register_reads.push_back(indexes);
        if (registers_failure)
            return reply(cpuplug::unexpected(*registers_failure));
        std::vector<vmm::qmp::CpuRegisters> read;
        for (auto index : indexes) {
            auto it = registers.find(index);
            vmm::qmp::CpuRegisters regs = it != registers.end() ? it->second : vmm::qmp::CpuRegisters {};
            regs.index = index;
            read.push_back(regs);
        }
        reply(std::move(read));
    }
    std::span<uint8_t const> guest_ram(uint64_t address, uint64_t length) const override
    {
        if (address < ram_base || address - ram_base >= ram.size())
            return {};
        uint64_t offset = address - ram_base;
        return { ram.data() + offset, size_t(std::min<uint64_t>(length, ram.size() - offset)) };
    }
    uint64_t guest_ram_size() const override { return ram.size(); }

private:
    void record(std::string name, vmm::qmp::Reply reply)
    {
        calls.push_back(std::move(name));
        if (defer) {
            pending.push_back(std::move(reply));
            return;
        }
        if (failure)
            reply(cpuplug::unexpected(*failure));
        else
            reply(Json::object());
    }
};

// One Session over `table`, with every line it sends kept in `lines` and drained() calls counted.
// Not movable: the callbacks point at this object.
class SessionHarness {
public:
    vmm::qmp::CommandTable table;
    std::vector<std::string> lines;
    size_t drained { 0 };
    std::shared_ptr<vmm::qmp::Session> session;

    explicit SessionHarness(bool offer_oob = true)
        : session(std::make_shared<vmm::qmp::Session>(table,
            vmm::qmp::Session::Callbacks {
                [this](std::string line) { lines.push_back(std::move(line)); },
                [this] { ++drained; } },
            offer_oob))
    {
    }
    SessionHarness(SessionHarness const&) = delete;
    SessionHarness& operator=(SessionHarness const&) = delete;

    // Feeds `bytes` and returns the lines they produced.
    std::vector<std::string> feed(std::string_view bytes)
    {
        lines.clear();
        session->feed(bytes);
        return std::move(lines);
    }

    // Feeds one request and returns its single answer.
    std::string exchange(std::string_view request)
    {
        auto out = feed(request);
        REQUIRE(out.size() == 1);
        return out.front();
    }

    void negotiate()
    {
        REQUIRE(exchange(R"({"execute": "qmp_capabilities"})") == R"({"return": {}})");
        REQUIRE(session->negotiated());
    }
};

} // namespace qmp_test
