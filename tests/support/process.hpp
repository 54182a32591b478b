// Runs a program with captured stdout/stderr and a deadline; the building block of integration tests.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace test_support {

struct ProcessResult {
    int exit_code { -1 };    // -1 if killed by a signal
    int signal { 0 };        // the signal that ended it, if any
    bool timed_out { false };
    std::string out;
    std::string err;
    double elapsed_ms { 0 };
    long max_rss_kib { 0 }; // the child's peak resident set (getrusage's ru_maxrss), once reaped
};

// Runs `argv` (argv[0] is a path) to completion; kills it (SIGKILL) after `timeout`.
ProcessResult run_process(std::vector<std::string> const& argv, std::chrono::milliseconds timeout);

// A running child whose output is collected in the background by the caller's polls.
class Process {
public:
    explicit Process(std::vector<std::string> const& argv);
    ~Process();
    Process(Process const&) = delete;
    Process& operator=(Process const&) = delete;

    pid_t pid() const { return m_pid; }
    void signal(int sig) const;
    // Reads what is available for up to `timeout`; true once `needle` appears in stdout or stderr.
    bool wait_for_output(std::string const& needle, std::chrono::milliseconds timeout);
    // Same, until `needle` has appeared `count` times in stdout (a second boot's banner, say).
    bool wait_for_count(std::string const& needle, size_t count, std::chrono::milliseconds timeout);
    size_t count_in_out(std::string const& needle) const;
    // Collects output for `duration` whatever comes.
    void collect_for(std::chrono::milliseconds duration);
    // Waits for exit (SIGKILL after `timeout`) and returns everything collected.
    ProcessResult wait(std::chrono::milliseconds timeout);
    std::string const& out() const { return m_result.out; }
    // False once the child closed both stdout and stderr, which it does by exiting (it is not reaped).
    bool output_open() const { return m_out >= 0 || m_err >= 0; }
    std::string const& err() const { return m_result.err; }
    // When the child was started (just before fork), the origin of elapsed times.
    std::chrono::steady_clock::time_point started() const { return m_start; }

private:
    bool pump(std::chrono::milliseconds timeout);
    bool wait_until(std::function<bool()> const& done, std::chrono::milliseconds timeout);
    pid_t m_pid { -1 };
    int m_out { -1 };
    int m_err { -1 };
    bool m_reaped { false };
    std::chrono::steady_clock::time_point m_start;
    ProcessResult m_result;
};

// The /dev/kvm check every KVM test binary makes: exit code 77 (ctest SKIP_RETURN_CODE) without it.
bool kvm_available();
// For a KVM test binary's main(): false (after printing the skip line ctest reads) when the cases cannot
// run here; listing them (--list-*) never needs KVM.
bool kvm_cases_can_run(int argc, char* argv[]);

} // namespace test_support
