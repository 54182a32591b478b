// The process's logger: every thread logs (vCPU threads, the io thread, main), so its sink is locked.
#pragma once

#include <string>

namespace vmm {

// Installs "vmm" as spdlog's default logger, writing "vmm: LEVEL: message" lines to stderr.
void install_logger(std::string const& level);

} // namespace vmm
