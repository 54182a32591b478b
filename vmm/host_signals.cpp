// HostSignals: one signalfd, read asynchronously; each signal becomes one handler call on the io thread.
#include "host_signals.hpp"

#include <boost/asio/buffer.hpp>
#include <csignal>
#include <spdlog/spdlog.h>

namespace vmm {

namespace {

sigset_t host_signal_set()
{
    sigset_t set;
    sigemptyset(&set);
    for (int s : { SIGINT, SIGTERM, SIGHUP, SIGQUIT })
        sigaddset(&set, s);
    return set;
}

} // namespace

void HostSignals::block()
{
    sigset_t set = host_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    // A vanished console or QMP peer must not kill the VMM; write() then fails with EPIPE instead.
    std::signal(SIGPIPE, SIG_IGN);
}

HostSignals::HostSignals(boost::asio::io_context& io, std::function<void(int)> handler)
    : m_descriptor(io)
    , m_handler(std::move(handler))
{
    sigset_t set = host_signal_set();
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        spdlog::warn("signalfd failed; SIGINT/SIGTERM will not stop the VM cleanly");
        return;
    }
    m_descriptor.assign(fd);
    arm();
}

void HostSignals::arm()
{
    m_descriptor.async_read_some(boost::asio::buffer(&m_info, sizeof(m_info)),
        [this](boost::system::error_code const& error, size_t bytes) {
            if (error)
                return; // cancelled at shutdown
            if (bytes == sizeof(m_info))
                m_handler(static_cast<int>(m_info.ssi_signo));
            arm();
        });
}

} // namespace vmm
