// vmm's entry point: the command line, logging, signals, then one Machine until it ends.
#include "cli.hpp"
#include "host_signals.hpp"
#include "logging.hpp"
#include "machine.hpp"

#include <cstdio>
#include <spdlog/spdlog.h>

int main(int argc, char** argv)
{
    auto const process_start = std::chrono::steady_clock::now();
    // Before any thread exists, so every thread inherits the mask and signals arrive on the signalfd.
    vmm::HostSignals::block();

    auto parsed = vmm::parse_command_line(argc, argv);
    if (!parsed.has_value()) {
        auto const& exit = parsed.error();
        std::fprintf(exit.code == 0 ? stdout : stderr, "%s\n", exit.message.c_str());
        return exit.code;
    }
    auto options = parsed.release_value();
    options.machine.process_start = process_start;

    vmm::install_logger(options.log_level);

    try {
        auto machine = vmm::Machine::create(options.machine);
        if (!machine.has_value()) {
            spdlog::error("{}", machine.error());
            return vmm::EXIT_VMM_ERROR;
        }
        auto& vm = *machine.value();
        vmm::HostSignals signals(vm.io_context(), [&vm](int signal) {
            vm.request_exit({ vmm::EXIT_OK, fmt::format("terminating on signal {}", signal), false, "host-signal" });
        });
        return vm.run();
    } catch (std::exception const& error) {
        spdlog::critical("unexpected error: {}", error.what());
        return vmm::EXIT_VMM_ERROR;
    }
}
