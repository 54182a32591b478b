// parse_endpoint: the address, then comma-separated options. QEMU's old bare flags (server, nowait) are
// accepted too, since scripts still use them.
#include "endpoint.hpp"

#include <fmt/format.h>

#include <charconv>
#include <vector>

namespace vmm::qmp {

namespace {

std::vector<std::string_view> split(std::string_view text, char separator)
{
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (;;) {
        size_t at = text.find(separator, start);
        parts.push_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos)
            return parts;
        start = at + 1;
    }
}

cpuplug::Result<bool, std::string> parse_switch(std::string_view name, std::string_view value)
{
    if (value == "on" || value == "yes" || value == "true")
        return true;
    if (value == "off" || value == "no" || value == "false")
        return false;
    return cpuplug::unexpected(fmt::format("'{}' is not a value for {} (use on or off)", value, name));
}

cpuplug::Result<void, std::string> parse_tcp(std::string_view address, Endpoint& endpoint)
{
    // tcp:HOST:PORT, tcp::PORT, tcp:[IPv6]:PORT
    std::string_view host;
    std::string_view port;
    if (!address.empty() && address.front() == '[') {
        auto close = address.find(']');
        if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
            return cpuplug::unexpected(std::string("an IPv6 address goes in brackets: tcp:[::1]:4444"));
        host = address.substr(1, close - 1);
        port = address.substr(close + 2);
    } else {
        auto colon = address.rfind(':');
        if (colon == std::string_view::npos)
            return cpuplug::unexpected(std::string("a TCP address needs a port: tcp:[HOST]:PORT"));
        host = address.substr(0, colon);
        port = address.substr(colon + 1);
    }
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535)
        return cpuplug::unexpected(fmt::format("'{}' is not a TCP port", port));
    // No host means loopback here, not every interface as in QEMU: a VMM's control socket should not be
    // reachable from the network unless someone says so.
    endpoint.host = host.empty() ? "127.0.0.1" : std::string(host);
    endpoint.port = static_cast<uint16_t>(value);
    return {};
}

} // namespace

cpuplug::Result<Endpoint, std::string> parse_endpoint(std::string_view text)
{
    Endpoint endpoint;
    endpoint.text = std::string(text);
    auto parts = split(text, ',');
    std::string_view address = parts.front();
    if (address.starts_with("unix:")) {
        endpoint.kind = Endpoint::Kind::Unix;
        endpoint.path = std::string(address.substr(5));
        if (endpoint.path.empty())
            return cpuplug::unexpected(std::string("unix: needs a socket path"));
        // sun_path holds 108 bytes with the terminating NUL.
        if (endpoint.path.size() > 107)
            return cpuplug::unexpected(fmt::format("the socket path is {} bytes long; Unix sockets take at most 107",
                endpoint.path.size()));
    } else if (address.starts_with("tcp:")) {
        endpoint.kind = Endpoint::Kind::Tcp;
        TRY(parse_tcp(address.substr(4), endpoint));
    } else {
        return cpuplug::unexpected(fmt::format("'{}' is not unix:PATH or tcp:[HOST]:PORT", address));
    }
    for (size_t i = 1; i < parts.size(); ++i) {
        auto option = parts[i];
        auto equals = option.find('=');
        auto name = option.substr(0, equals);
        auto value = equals == std::string_view::npos ? std::string_view("on") : option.substr(equals + 1);
        if (name == "server") {
            if (!TRY(parse_switch(name, value)))
                return cpuplug::unexpected(std::string("server=off (connecting out to a client) is not supported; "
                                                       "cpuplug listens"));
        } else if (name == "wait") {
            endpoint.wait = TRY(parse_switch(name, value));
        } else if (name == "nowait" && equals == std::string_view::npos) {
            endpoint.wait = false;
        } else {
            return cpuplug::unexpected(fmt::format("unknown option '{}' (cpuplug takes server and wait)", name));
        }
    }
    return endpoint;
}

} // namespace vmm::qmp
