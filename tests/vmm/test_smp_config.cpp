#include "smp_config.hpp"

#include <catch2/catch.hpp>

using namespace vmm;

namespace {

SmpConfig ok(char const* text)
{
    auto config = parse_smp(text);
    INFO(text << ": " << (config.has_value() ? "" : config.error()));
    REQUIRE(config.has_value());
    return config.value();
}

std::string error(char const* text)
{
    auto config = parse_smp(text);
    REQUIRE_FALSE(config.has_value());
    return config.error();
}

} // namespace

TEST_CASE("a bare count is that many cores in one socket, as in QEMU 6.2+", "[smp]")
{
    auto c = ok("8");
    CHECK(c.cpus == 8);
    CHECK(c.maxcpus == 8);
    CHECK(c.topology.sockets == 1);
    CHECK(c.topology.cores == 8);
    CHECK(c.topology.threads == 1);
    CHECK(ok("cpus=3").topology.cores == 3);
}

TEST_CASE("missing levels are filled in from maxcpus, cores first", "[smp]")
{
    auto a = ok("8,sockets=2");
    CHECK(a.topology.cores == 4);
    auto b = ok("8,cores=2");
    CHECK(b.topology.sockets == 4);
    auto c = ok("4,maxcpus=8");
    CHECK(c.cpus == 4);
    CHECK(c.maxcpus == 8);
    CHECK(c.topology.cores == 8);
    auto d = ok("16,sockets=2,cores=4");
    CHECK(d.topology.threads == 2);
    auto e = ok("sockets=2,cores=3,threads=2");
    CHECK(e.cpus == 12);
    CHECK(e.maxcpus == 12);
    auto f = ok("2,maxcpus=16,sockets=4,cores=2,threads=2");
    CHECK(f.cpus == 2);
    CHECK(f.maxcpus == 16);
    auto g = ok("8,dies=2");
    CHECK(g.topology.dies == 2);
    CHECK(g.topology.cores == 4);
    CHECK(ok("1,modules=1").maxcpus == 1);
}

TEST_CASE("bad topologies are refused with QEMU's words", "[smp]")
{
    CHECK(error("0") == "Invalid CPU topology: CPU topology parameters must be greater than zero");
    CHECK(error("4,threads=0") == "Invalid CPU topology: CPU topology parameters must be greater than zero");
    CHECK(error("8,sockets=3")
        == "Invalid CPU topology: product of the hierarchy must match maxcpus: sockets (3) * dies (1) * modules (1) * "
           "cores (2) * threads (1) != maxcpus (8)");
    CHECK(error("8,maxcpus=4")
        == "Invalid CPU topology: maxcpus must be equal to or greater than smp: sockets (1) * dies (1) * modules (1) * "
           "cores (4) * threads (1) == maxcpus (4) < smp_cpus (8)");
    CHECK(error("2000") == "Invalid SMP CPUs 2000. The max CPUs supported by machine 'cpuplug' is 1024");
    CHECK(error("4,modules=2") == "modules > 1 not supported by this machine's CPU topology");
    CHECK(error("4,clusters=2") == "clusters > 1 not supported by this machine's CPU topology");
    CHECK(error("4,bogus=1") == "Parameter 'smp.bogus' is unexpected");
    CHECK(error("x") == "Parameter 'smp.cpus' expects integer");
    CHECK(error("4,cores=two") == "Parameter 'smp.cores' expects integer");
    CHECK(error("4,8") == "Parameter 'smp.8' is unexpected");
}
