#include "logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace vmm {

void install_logger(std::string const& level)
{
    // _mt: vCPU, io and main threads all log. The _st sink has no lock, and two threads writing at once
    // race on its formatter and buffer.
    auto logger = spdlog::get("vmm");
    if (!logger)
        logger = spdlog::stderr_color_mt("vmm");
    logger->set_pattern("vmm: %^%l%$: %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level));
}

} // namespace vmm
