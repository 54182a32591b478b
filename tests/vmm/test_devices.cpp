#include "devices/acpi_pm.hpp"
#include "devices/serial.hpp"
#include "devices/status_port.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

using namespace vmm;

namespace {

struct CollectingSink : SerialSink {
    std::vector<std::string>* writes;
    explicit CollectingSink(std::vector<std::string>* w)
        : writes(w)
    {
    }
    void write(std::string_view bytes) override { writes->emplace_back(bytes); }
};

void out(IoDevice& d, uint64_t offset, uint8_t value) { d.write(offset, { &value, 1 }); }
uint8_t in(IoDevice& d, uint64_t offset)
{
    uint8_t value = 0;
    d.read(offset, { &value, 1 });
    return value;
}
void out16(IoDevice& d, uint64_t offset, uint16_t value)
{
    uint8_t bytes[2] = { uint8_t(value), uint8_t(value >> 8) };
    d.write(offset, bytes);
}
uint32_t in32(IoDevice& d, uint64_t offset)
{
    uint8_t bytes[4] {};
    d.read(offset, bytes);
    return bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (uint32_t(bytes[3]) << 24);
}

} // namespace

TEST_CASE("the UART hands output to the sink a line at a time", "[serial]")
{
    std::vector<std::string> writes;
    Serial16550 uart(std::make_unique<CollectingSink>(&writes));
    for (char c : std::string("hello\r\nwor"))
        out(uart, 0, static_cast<uint8_t>(c));
    REQUIRE(writes.size() == 1);
    CHECK(writes[0] == "hello\r\n");
    uart.flush();
    REQUIRE(writes.size() == 2);
    CHECK(writes[1] == "wor");
}

TEST_CASE("the UART is always ready to transmit and keeps its divisor latch apart", "[serial]")
{
    std::vector<std::string> writes;
    Serial16550 uart(std::make_unique<CollectingSink>(&writes));
    CHECK((in(uart, 5) & 0x60) == 0x60);
    out(uart, 3, 0x80); // DLAB
    out(uart, 0, 0x01); // divisor low, not data
    out(uart, 1, 0x00);
    CHECK(in(uart, 0) == 0x01);
    out(uart, 3, 0x03);
    out(uart, 7, 0x5A);
    CHECK(in(uart, 7) == 0x5A);
    CHECK(in(uart, 2) == 0x01); // no interrupt pending
    uart.flush();
    CHECK(writes.empty());
}

TEST_CASE("a long line without a newline is still forwarded", "[serial]")
{
    std::vector<std::string> writes;
    Serial16550 uart(std::make_unique<CollectingSink>(&writes));
    for (size_t i = 0; i < Serial16550::MAX_LINE; ++i)
        out(uart, 0, 'x');
    REQUIRE(writes.size() == 1);
    CHECK(writes[0].size() == Serial16550::MAX_LINE);
}

TEST_CASE("SLP_EN with SLP_TYP reports a sleep request and reads back clear", "[acpi_pm]")
{
    std::vector<int> sleeps;
    AcpiPm pm({ [&](uint8_t type) { sleeps.push_back(type); }, {} });
    out16(pm, AcpiPm::PM1A_CNT, 1 << 13);
    out16(pm, AcpiPm::PM1A_CNT, (5 << 10) | (1 << 13));
    REQUIRE(sleeps == std::vector<int> { 0, 5 });
    uint8_t control[2] {};
    pm.read(AcpiPm::PM1A_CNT, control);
    CHECK((control[1] & 0x20) == 0); // SLP_EN
    CHECK((control[0] & 1) == 1);    // SCI_EN always on
    out16(pm, AcpiPm::PM1A_CNT, 5 << 10);
    CHECK(sleeps.size() == 2); // no SLP_EN, no request
}

TEST_CASE("the SCI follows GPE status and enable, and status bits are write-1-to-clear", "[acpi_pm]")
{
    std::vector<bool> levels;
    AcpiPm pm({ {}, [&](bool level) { levels.push_back(level); } });
    pm.raise_gpe(2);
    CHECK(in(pm, AcpiPm::GPE0) == 0x04);
    CHECK(levels.empty()); // not enabled yet
    out(pm, AcpiPm::GPE0 + 8, 0x04);
    REQUIRE(levels == std::vector<bool> { true });
    out(pm, AcpiPm::GPE0, 0x00); // writing 0 clears nothing
    CHECK(pm.sci_level());
    out(pm, AcpiPm::GPE0, 0x04);
    CHECK(levels == std::vector<bool> { true, false });
    CHECK(in(pm, AcpiPm::GPE0) == 0);
}

TEST_CASE("the power button raises the SCI only when enabled", "[acpi_pm]")
{
    std::vector<bool> levels;
    AcpiPm pm({ {}, [&](bool level) { levels.push_back(level); } });
    pm.press_power_button();
    CHECK(levels.empty());
    out16(pm, AcpiPm::PM1A_EVT + 2, AcpiPm::PM1_PWRBTN);
    CHECK(levels == std::vector<bool> { true });
    out16(pm, AcpiPm::PM1A_EVT, AcpiPm::PM1_PWRBTN);
    CHECK(levels == std::vector<bool> { true, false });
}

TEST_CASE("the PM timer counts at 3.58 MHz within 24 bits", "[acpi_pm]")
{
    AcpiPm pm({});
    uint32_t a = in32(pm, AcpiPm::PM_TMR);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    uint32_t b = in32(pm, AcpiPm::PM_TMR);
    CHECK(a <= 0xFFFFFF);
    CHECK(b <= 0xFFFFFF);
    CHECK(((b - a) & 0xFFFFFF) >= 5 * 3579); // at least 5 ms worth of ticks
}

TEST_CASE("a 4-byte PM timer read is one sample, so the timer never runs backwards", "[acpi_pm]")
{
    // Bytes sampled at different instants tear across a carry (0x12FF then 0x1300 reads as 0x13FF);
    // the guest's TSC calibration then divides by a wrong interval.
    AcpiPm pm({});
    uint32_t previous = in32(pm, AcpiPm::PM_TMR);
    uint32_t backwards = 0;
    for (int i = 0; i < 200'000; ++i) {
        uint32_t now = in32(pm, AcpiPm::PM_TMR);
        if (((now - previous) & 0xFFFFFF) >= 0x800000)
            ++backwards;
        previous = now;
    }
    CHECK(backwards == 0);
}

TEST_CASE("the status port passes 32-bit event writes and ignores others", "[status_port]")
{
    std::vector<uint32_t> events;
    StatusPort port([&](uint32_t event, auto) { events.push_back(event); });
    uint32_t event = status_port::milestone(status_port::Milestone::BootDone);
    port.write(0, { reinterpret_cast<uint8_t const*>(&event), 4 });
    port.write(0, { reinterpret_cast<uint8_t const*>(&event), 2 });
    port.write(4, { reinterpret_cast<uint8_t const*>(&event), 4 });
    REQUIRE(events.size() == 1);
    CHECK(status_port::event_kind(events[0]) == status_port::Kind::Milestone);
    CHECK(status_port::event_payload(events[0]) == 2);
}

TEST_CASE("a guest hammering the status port with bad writes gets a few log lines, not one per write", "[devices][log]")
{
    // Each line would be written synchronously on the guest's vCPU thread: 100000 writes must not make
    // 100000 lines.
    auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100000);
    auto logger = std::make_shared<spdlog::logger>("count", sink);
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(logger);
    vmm::StatusPort port([](uint32_t, auto) { });
    uint8_t bytes[2] {};
    for (int i = 0; i < 100000; ++i)
        port.write(0, std::span<uint8_t const>(bytes, 2));
    spdlog::set_default_logger(previous);
    auto lines = sink->last_formatted();
    CHECK(port.ignored_writes() == 100000);
    CHECK(lines.size() == vmm::GuestLogLimit::FIRST + 100000 / vmm::GuestLogLimit::EVERY);
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.back().find("(#100000)") != std::string::npos);
}

TEST_CASE("the guest log limit lets the first few through, then one in 10000, counting all", "[devices][log]")
{
    vmm::GuestLogLimit limit;
    uint64_t logged = 0;
    uint64_t nth = 0;
    for (int i = 0; i < 30000; ++i)
        logged += limit.should_log(nth) ? 1 : 0;
    CHECK(nth == 30000);
    CHECK(limit.count() == 30000);
    CHECK(logged == 8 + 3);
}
