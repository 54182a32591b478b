// A vmm with a QMP socket running the embedded guest, and reply shapes, shared by the KVM test binaries
// that speak QMP (test_qmp_vm, test_hotplug_e2e).
#pragma once

#include "qmp_client.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace qmp_test {

inline bool file_exists(std::string const& path)
{
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0;
}

// A vmm running the embedded guest with one QMP socket, booted to its idle loop.
struct RunningVm {
    std::string socket = socket_path();
    std::unique_ptr<test_support::Process> process;

    explicit RunningVm(std::vector<std::string> args, int online = -1, std::string qmp_options = "")
    {
        std::vector<std::string> argv { CPUPLUG_VMM_BINARY, "--qmp", "unix:" + socket + qmp_options, "--init-delay-us", "0" };
        argv.insert(argv.end(), args.begin(), args.end());
        process = std::make_unique<test_support::Process>(argv);
        if (online >= 0)
            REQUIRE(booted(online, 1));
    }
    bool booted(int online, size_t times, std::chrono::milliseconds timeout = 60s)
    {
        bool ok = process->wait_for_count("smp: " + std::to_string(online) + " of ", times, timeout);
        INFO(process->out() << process->err());
        return ok;
    }
    std::unique_ptr<QmpClient> client(bool negotiate = true)
    {
        auto c = QmpClient::connect_unix(socket);
        REQUIRE(c);
        if (negotiate)
            REQUIRE(c->negotiate());
        return c;
    }
};

inline Json ok() { return Json { { "return", Json::object() } }; }
inline Json error(std::string const& error_class, std::string const& desc)
{
    return Json { { "error", { { "class", error_class }, { "desc", desc } } } };
}
inline Json with_id(Json reply, Json id)
{
    reply["id"] = std::move(id);
    return reply;
}

inline std::string thread_name(int pid, int64_t tid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
    std::string name;
    std::getline(in, name);
    return name;
}


} // namespace qmp_test
