// parse_endpoint: QEMU's chardev spelling of --qmp, with cpuplug's defaults (listen, no wait, loopback).
#include "qmp/endpoint.hpp"

#include <catch2/catch.hpp>

#include <string>

using vmm::qmp::Endpoint;
using vmm::qmp::parse_endpoint;

namespace {

std::string error_of(std::string const& text)
{
    auto result = parse_endpoint(text);
    REQUIRE_FALSE(result.has_value());
    return result.error();
}

Endpoint parsed(std::string const& text)
{
    auto result = parse_endpoint(text);
    INFO(text);
    REQUIRE(result.has_value());
    return result.value();
}

} // namespace

TEST_CASE("unix:PATH is a Unix socket that does not wait", "[endpoint]")
{
    auto endpoint = parsed("unix:/tmp/vm.sock");
    CHECK(endpoint.kind == Endpoint::Kind::Unix);
    CHECK(endpoint.path == "/tmp/vm.sock");
    CHECK(endpoint.host.empty());
    CHECK(endpoint.port == 0);
    CHECK_FALSE(endpoint.wait);
    CHECK(endpoint.text == "unix:/tmp/vm.sock");
    CHECK(parsed("unix:relative/x.sock").path == "relative/x.sock");
}

TEST_CASE("unix sockets take server and wait in QEMU's spellings", "[endpoint]")
{
    CHECK_FALSE(parsed("unix:/tmp/a,server=on").wait);
    CHECK_FALSE(parsed("unix:/tmp/a,server").wait);
    CHECK_FALSE(parsed("unix:/tmp/a,server=on,wait=off").wait);
    CHECK_FALSE(parsed("unix:/tmp/a,server,nowait").wait);
    CHECK_FALSE(parsed("unix:/tmp/a,wait=on,nowait").wait); // the last one wins
    CHECK(parsed("unix:/tmp/a,server=on,wait=on").wait);
    CHECK(parsed("unix:/tmp/a,wait").wait);
    CHECK(parsed("unix:/tmp/a,nowait,wait=yes").wait);
    CHECK(parsed("unix:/tmp/a,server=true,wait=true").wait);
    CHECK_FALSE(parsed("unix:/tmp/a,server=yes,wait=no").wait);
    CHECK_FALSE(parsed("unix:/tmp/a,wait=false").wait);
    auto endpoint = parsed("unix:/tmp/a,server=on,wait=on");
    CHECK(endpoint.path == "/tmp/a");
    CHECK(endpoint.text == "unix:/tmp/a,server=on,wait=on");
}

TEST_CASE("server=off is refused because cpuplug only listens", "[endpoint]")
{
    CHECK(error_of("unix:/tmp/a,server=off")
        == "server=off (connecting out to a client) is not supported; cpuplug listens");
    CHECK(error_of("tcp::4444,server=no")
        == "server=off (connecting out to a client) is not supported; cpuplug listens");
}

TEST_CASE("an unknown option is refused by name", "[endpoint]")
{
    CHECK(error_of("unix:/tmp/a,reconnect=5") == "unknown option 'reconnect' (cpuplug takes server and wait)");
    CHECK(error_of("unix:/tmp/a,nowait=on") == "unknown option 'nowait' (cpuplug takes server and wait)");
    CHECK(error_of("unix:/tmp/a,") == "unknown option '' (cpuplug takes server and wait)");
    CHECK(error_of("tcp::4444,telnet=on") == "unknown option 'telnet' (cpuplug takes server and wait)");
}

TEST_CASE("a switch with a value that is not on or off is refused", "[endpoint]")
{
    CHECK(error_of("unix:/tmp/a,wait=maybe") == "'maybe' is not a value for wait (use on or off)");
    CHECK(error_of("unix:/tmp/a,server=1") == "'1' is not a value for server (use on or off)");
    CHECK(error_of("unix:/tmp/a,wait=") == "'' is not a value for wait (use on or off)");
    CHECK(error_of("unix:/tmp/a,wait=ON") == "'ON' is not a value for wait (use on or off)");
}

TEST_CASE("a Unix socket path must be there and fit in sun_path", "[endpoint]")
{
    CHECK(error_of("unix:") == "unix: needs a socket path");
    CHECK(error_of("unix:,server=on") == "unix: needs a socket path");
    std::string longest = "/" + std::string(106, 'p');
    REQUIRE(longest.size() == 107);
    CHECK(parsed("unix:" + longest).path == longest);
    CHECK(error_of("unix:" + longest + "q") == "the socket path is 108 bytes long; Unix sockets take at most 107");
}

TEST_CASE("tcp:HOST:PORT is a TCP socket on that address", "[endpoint]")
{
    auto endpoint = parsed("tcp:192.168.1.2:4444");
    CHECK(endpoint.kind == Endpoint::Kind::Tcp);
    CHECK(endpoint.host == "192.168.1.2");
    CHECK(endpoint.port == 4444);
    CHECK(endpoint.path.empty());
    CHECK_FALSE(endpoint.wait);
    CHECK(endpoint.text == "tcp:192.168.1.2:4444");
    CHECK(parsed("tcp:localhost:1").host == "localhost");
    CHECK(parsed("tcp:0.0.0.0:65535").port == 65535);
    CHECK(parsed("tcp:127.0.0.1:0").port == 0);
    CHECK(parsed("tcp:127.0.0.1:4444,server=on,wait=on").wait);
}

TEST_CASE("tcp::PORT listens on loopback, not every interface", "[endpoint]")
{
    auto endpoint = parsed("tcp::4444");
    CHECK(endpoint.host == "127.0.0.1");
    CHECK(endpoint.port == 4444);
    CHECK(parsed("tcp::0,nowait").host == "127.0.0.1");
}

TEST_CASE("an IPv6 address goes in brackets", "[endpoint]")
{
    auto endpoint = parsed("tcp:[::1]:4444");
    CHECK(endpoint.kind == Endpoint::Kind::Tcp);
    CHECK(endpoint.host == "::1");
    CHECK(endpoint.port == 4444);
    CHECK(parsed("tcp:[fe80::1%eth0]:22").host == "fe80::1%eth0");
    CHECK(error_of("tcp:[::1]") == "an IPv6 address goes in brackets: tcp:[::1]:4444");
    CHECK(error_of("tcp:[::1]4444") == "an IPv6 address goes in brackets: tcp:[::1]:4444");
    CHECK(error_of("tcp:[::1:4444") == "an IPv6 address goes in brackets: tcp:[::1]:4444");
    CHECK(error_of("tcp:[::1]:") == "'' is not a TCP port");
}

TEST_CASE("a TCP port must be a number from 0 to 65535", "[endpoint]")
{
    CHECK(error_of("tcp:127.0.0.1:") == "'' is not a TCP port");
    CHECK(error_of("tcp::") == "'' is not a TCP port");
    CHECK(error_of("tcp:127.0.0.1:65536") == "'65536' is not a TCP port");
    CHECK(error_of("tcp:127.0.0.1:99999999999999999999") == "'99999999999999999999' is not a TCP port");
    CHECK(error_of("tcp:127.0.0.1:http") == "'http' is not a TCP port");
    CHECK(error_of("tcp:127.0.0.1:44x") == "'44x' is not a TCP port");
    CHECK(error_of("tcp:127.0.0.1:-1") == "'-1' is not a TCP port");
    CHECK(error_of("tcp:127.0.0.1:+1") == "'+1' is not a TCP port");
    CHECK(error_of("tcp:127.0.0.1: 1") == "' 1' is not a TCP port");
}

TEST_CASE("a TCP address without a port is refused", "[endpoint]")
{
    CHECK(error_of("tcp:4444") == "a TCP address needs a port: tcp:[HOST]:PORT");
    CHECK(error_of("tcp:") == "a TCP address needs a port: tcp:[HOST]:PORT");
    CHECK(error_of("tcp:localhost") == "a TCP address needs a port: tcp:[HOST]:PORT");
}

TEST_CASE("an address that is neither unix: nor tcp: is refused", "[endpoint]")
{
    CHECK(error_of("/tmp/vm.sock") == "'/tmp/vm.sock' is not unix:PATH or tcp:[HOST]:PORT");
    CHECK(error_of("vsock:3:4444") == "'vsock:3:4444' is not unix:PATH or tcp:[HOST]:PORT");
    CHECK(error_of("UNIX:/tmp/a") == "'UNIX:/tmp/a' is not unix:PATH or tcp:[HOST]:PORT");
    CHECK(error_of("stdio") == "'stdio' is not unix:PATH or tcp:[HOST]:PORT");
    CHECK(error_of("") == "'' is not unix:PATH or tcp:[HOST]:PORT");
    CHECK(error_of("unix/tmp/a,server") == "'unix/tmp/a' is not unix:PATH or tcp:[HOST]:PORT");
}
