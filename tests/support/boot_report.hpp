// Boots vmm with --exit-after-boot and a boot report, and hands back the process result and the JSON.
#pragma once

#include "process.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace test_support {

struct BootedVm {
    ProcessResult process;
    nlohmann::json report;
};

inline BootedVm boot(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(60))
{
    static int counter = 0;
    std::string path = "/tmp/cpuplug-report-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".json";
    std::vector<std::string> argv { CPUPLUG_VMM_BINARY, "--exit-after-boot", "--boot-report", path };
    argv.insert(argv.end(), args.begin(), args.end());
    BootedVm vm;
    vm.process = run_process(argv, timeout);
    std::ifstream in(path);
    if (in)
        vm.report = nlohmann::json::parse(in, nullptr, false);
    std::remove(path.c_str());
    return vm;
}

} // namespace test_support
