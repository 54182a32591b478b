#include "logging.hpp"

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <thread>
#include <unistd.h>
#include <vector>

// vCPU threads, the io thread and main all log through the one logger. With a single-threaded sink this
// is a data race that ThreadSanitizer reports (CI runs this binary under TSan).
TEST_CASE("the vmm logger takes lines from many threads at once", "[logging]")
{
    int saved = ::dup(STDERR_FILENO);
    int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    REQUIRE(saved >= 0);
    REQUIRE(null >= 0);
    ::dup2(null, STDERR_FILENO); // the lines themselves are not the point
    vmm::install_logger("info");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([t] {
            for (int i = 0; i < 500; ++i)
                spdlog::warn("thread {} line {}", t, i);
        });
    for (auto& thread : threads)
        thread.join();
    spdlog::default_logger()->flush();
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(null);
    CHECK(spdlog::default_logger()->name() == "vmm");
    spdlog::set_level(spdlog::level::warn);
}
