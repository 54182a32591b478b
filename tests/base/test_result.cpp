#include <cpuplug/base/result.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

using cpuplug::Result;
using cpuplug::unexpected;

namespace {

enum class Error { Bad, Worse };

Result<int, Error> parse(int x)
{
    if (x < 0)
        return unexpected(Error::Bad);
    return x * 2;
}

Result<int, Error> chain(int x)
{
    int doubled = TRY(parse(x));
    return doubled + 1;
}

Result<void, Error> check(bool ok)
{
    if (!ok)
        return unexpected(Error::Worse);
    return {};
}

Result<int, Error> chain_void(bool ok)
{
    TRY(check(ok));
    return 7;
}

} // namespace

TEST_CASE("a Result holds a value or an error", "[result]")
{
    auto good = parse(4);
    REQUIRE(good.has_value());
    CHECK(good.value() == 8);
    CHECK(*good == 8);
    auto bad = parse(-1);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error() == Error::Bad);
    CHECK(bad.value_or(3) == 3);
}

TEST_CASE("TRY propagates errors and unwraps values, also for void", "[result]")
{
    CHECK(chain(2).value() == 5);
    CHECK(chain(-2).error() == Error::Bad);
    CHECK(chain_void(true).value() == 7);
    CHECK(chain_void(false).error() == Error::Worse);
}

TEST_CASE("and_then, transform and or_else compose", "[result]")
{
    auto r = parse(3).and_then([](int v) { return parse(v + 1); });
    CHECK(r.value() == 14);
    auto t = parse(3).transform([](int v) { return std::to_string(v); });
    CHECK(t.value() == "6");
    auto o = parse(-3).or_else([](Error) { return Result<int, Error>(42); });
    CHECK(o.value() == 42);
}

TEST_CASE("move-only values move through a Result", "[result]")
{
    Result<std::unique_ptr<int>, std::string> r(std::make_unique<int>(9));
    auto moved = std::move(r);
    REQUIRE(moved.has_value());
    auto owned = moved.release_value();
    CHECK(*owned == 9);
    Result<std::unique_ptr<int>, std::string> e(unexpected(std::string("no")));
    CHECK(e.error() == "no");
}

#include <cerrno>
#include <cpuplug/base/errno.hpp>

TEST_CASE("the core's error numbers are Linux's", "[result]")
{
    STATIC_REQUIRE(cpuplug::ERR_PERM == EPERM);
    STATIC_REQUIRE(cpuplug::ERR_IO == EIO);
    STATIC_REQUIRE(cpuplug::ERR_AGAIN == EAGAIN);
    STATIC_REQUIRE(cpuplug::ERR_NOMEM == ENOMEM);
    STATIC_REQUIRE(cpuplug::ERR_BUSY == EBUSY);
    STATIC_REQUIRE(cpuplug::ERR_INVAL == EINVAL);
    STATIC_REQUIRE(cpuplug::ERR_NOSPC == ENOSPC);
    STATIC_REQUIRE(cpuplug::ERR_TIMEDOUT == ETIMEDOUT);
    STATIC_REQUIRE(cpuplug::ERR_CANCELED == ECANCELED);
}
