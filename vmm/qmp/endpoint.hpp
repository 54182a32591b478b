// --qmp in QEMU's chardev spelling: unix:PATH[,server=on][,wait=on|off] or tcp:[HOST]:PORT[,...]. cpuplug
// always listens (server=on is implied; server=off is refused), does not wait for a client unless told
// (wait=off is the default, unlike QEMU), and a TCP socket without a host binds to loopback only.
#pragma once

#include <cpuplug/base/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace vmm::qmp {

struct Endpoint {
    enum class Kind { Unix, Tcp };
    Kind kind { Kind::Unix };
    std::string path;  // Unix
    std::string host;  // Tcp: a numeric address
    uint16_t port { 0 }; // Tcp; 0 picks a free port (logged at start)
    bool wait { false }; // start the guest only once a client has connected
    std::string text;    // as given, for messages
};

cpuplug::Result<Endpoint, std::string> parse_endpoint(std::string_view text);

} // namespace vmm::qmp
