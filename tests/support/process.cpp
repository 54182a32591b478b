// Process: fork/exec with two pipes and poll(); children get their own process group so a kill reaches
// everything they started.
#include "process.hpp"

#include <cerrno>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test_support {

Process::Process(std::vector<std::string> const& argv)
    : m_start(std::chrono::steady_clock::now())
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2 failed");
    std::vector<char*> args;
    for (auto const& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    m_pid = fork();
    if (m_pid < 0)
        throw std::runtime_error("fork failed");
    if (m_pid == 0) {
        setpgid(0, 0);
        // The test runner may block signals (vmm's own tests do); the child must start with a clean mask.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        execv(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    m_out = out[0];
    m_err = err[0];
}

Process::~Process()
{
    if (!m_reaped && m_pid > 0) {
        kill(-m_pid, SIGKILL);
        kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
    }
    if (m_out >= 0)
        close(m_out);
    if (m_err >= 0)
        close(m_err);
}

void Process::signal(int sig) const
{
    if (!m_reaped)
        kill(m_pid, sig);
}

bool Process::pump(std::chrono::milliseconds timeout)
{
    pollfd fds[2] = { { m_out, POLLIN, 0 }, { m_err, POLLIN, 0 } };
    int n = poll(fds, 2, static_cast<int>(timeout.count()));
    if (n <= 0)
        return false;
    bool any = false;
    char buffer[65536];
    for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = read(fds[i].fd, buffer, sizeof(buffer));
        if (got > 0) {
            (i == 0 ? m_result.out : m_result.err).append(buffer, static_cast<size_t>(got));
            any = true;
        } else if (got == 0) {
            close(fds[i].fd);
            (i == 0 ? m_out : m_err) = -1;
        }
    }
    return any;
}

bool Process::wait_for_output(std::string const& needle, std::chrono::milliseconds timeout)
{
    return wait_until([&] {
        return m_result.out.find(needle) != std::string::npos || m_result.err.find(needle) != std::string::npos;
    }, timeout);
}

size_t Process::count_in_out(std::string const& needle) const
{
    size_t count = 0;
    for (size_t at = m_result.out.find(needle); at != std::string::npos; at = m_result.out.find(needle, at + 1))
        ++count;
    return count;
}

bool Process::wait_for_count(std::string const& needle, size_t count, std::chrono::milliseconds timeout)
{
    return wait_until([&] { return count_in_out(needle) >= count; }, timeout);
}

void Process::collect_for(std::chrono::milliseconds duration)
{
    (void)wait_until([] { return false; }, duration);
}

bool Process::wait_until(std::function<bool()> const& done, std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (done())
            return true;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline || (m_out < 0 && m_err < 0))
            return false;
        pump(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) + std::chrono::milliseconds(1));
    }
}

ProcessResult Process::wait(std::chrono::milliseconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (m_out >= 0 || m_err >= 0) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            m_result.timed_out = true;
            kill(-m_pid, SIGKILL);
            kill(m_pid, SIGKILL);
            break;
        }
        pump(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) + std::chrono::milliseconds(1));
    }
    int status = 0;
    rusage usage {};
    if (!m_reaped) {
        if (m_result.timed_out) {
            wait4(m_pid, &status, 0, &usage);
        } else {
            // Pipes closed; the process may still be exiting.
            while (wait4(m_pid, &status, WNOHANG, &usage) == 0) {
                if (std::chrono::steady_clock::now() >= deadline) {
                    m_result.timed_out = true;
                    kill(m_pid, SIGKILL);
                    wait4(m_pid, &status, 0, &usage);
                    break;
                }
                usleep(1000);
            }
        }
        m_reaped = true;
        m_result.max_rss_kib = usage.ru_maxrss;
    }
    while (m_out >= 0 || m_err >= 0)
        if (!pump(std::chrono::milliseconds(10)))
            break;
    if (WIFEXITED(status))
        m_result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        m_result.signal = WTERMSIG(status);
    m_result.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - m_start).count();
    return m_result;
}

ProcessResult run_process(std::vector<std::string> const& argv, std::chrono::milliseconds timeout)
{
    Process process(argv);
    return process.wait(timeout);
}

bool kvm_available() { return access("/dev/kvm", R_OK | W_OK) == 0; }

bool kvm_cases_can_run(int argc, char* argv[])
{
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]).rfind("--list", 0) == 0)
            return true;
    if (kvm_available())
        return true;
    std::printf("cpuplug-skip: /dev/kvm is not usable here (ctest runs these cases in the nested VM: "
                "docs/development.md)\n");
    return false;
}

} // namespace test_support
