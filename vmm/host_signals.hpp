// HostSignals: SIGINT, SIGTERM, SIGHUP and SIGQUIT delivered through a signalfd on an asio io_context,
// so no thread is interrupted at a random point and the VM shuts down in order.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <sys/signalfd.h>

#include <functional>

namespace vmm {

class HostSignals {
public:
    // Blocks those signals in the calling thread, which every thread created afterwards inherits. Call it
    // first thing in main().
    static void block();

    HostSignals(boost::asio::io_context& io, std::function<void(int signal)> handler);

private:
    void arm();

    boost::asio::posix::stream_descriptor m_descriptor;
    std::function<void(int)> m_handler;
    signalfd_siginfo m_info {};
};

} // namespace vmm
