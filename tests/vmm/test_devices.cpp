#include "devices/acpi_pm.hpp"
#include "devices/legacy.hpp"
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

namespace {

// A UART whose interrupt line is recorded, every level change in order.
struct IrqUart {
    std::vector<std::string> writes;
    std::vector<bool> levels;
    Serial16550 uart { std::make_unique<CollectingSink>(&writes), [this](bool level) { levels.push_back(level); } };
};

constexpr uint8_t MCR_OUT2 = 0x08;

} // namespace

// The order of accesses is that of autoconfig() in Linux's drivers/tty/serial/8250/8250_port.c.
TEST_CASE("the UART passes Linux's 8250 probe as a 16550A", "[serial]")
{
    IrqUart u;
    auto& uart = u.uart;
    // The IER test: bits 3..0 read back as written, 0 then 0x0F.
    uint8_t saved_ier = in(uart, 1);
    out(uart, 1, 0x00);
    CHECK((in(uart, 1) & 0x0F) == 0x00);
    out(uart, 1, 0x0F);
    CHECK((in(uart, 1) & 0x0F) == 0x0F);
    out(uart, 1, saved_ier);
    // The loopback test: LOOP | OUT2 | RTS must show exactly DCD | CTS in MSR's status bits.
    uint8_t saved_mcr = in(uart, 4);
    out(uart, 4, 0x10 | 0x0A);
    CHECK((in(uart, 6) & 0xF0) == 0x90);
    out(uart, 4, saved_mcr);
    // EFR access (LCR 0xBF), then the FIFO type from IIR's top bits: 3 means a 16550A.
    out(uart, 3, 0xBF);
    out(uart, 2, 0x00);
    out(uart, 3, 0x00);
    out(uart, 2, 0x01);
    CHECK(in(uart, 2) >> 6 == 3);
    // autoconfig_16550a(): no EFR under LCR 0x80 or 0xBF (the register reads non-zero: it is IIR)...
    out(uart, 3, 0x80);
    CHECK(in(uart, 2) != 0);
    out(uart, 3, 0xBF);
    CHECK(in(uart, 2) != 0);
    // ...not a 16750: IIR bit 5 stays clear whatever FCR's 64-byte bit says, with or without DLAB.
    out(uart, 3, 0x00);
    out(uart, 2, 0x01 | 0x20);
    CHECK(in(uart, 2) >> 5 == 6);
    out(uart, 3, 0x80);
    out(uart, 2, 0x01 | 0x20);
    CHECK(in(uart, 2) >> 5 == 6);
    // ...and IER's UUE bit (an XScale UART) does not stick.
    out(uart, 3, 0x00);
    out(uart, 1, 0x40);
    CHECK(in(uart, 1) == 0x00);
    CHECK(u.levels.empty()); // the probe raised no interrupt
    CHECK(u.writes.empty());
}

TEST_CASE("enabling the THR-empty interrupt raises it at once, and reading IIR acknowledges it", "[serial]")
{
    IrqUart u;
    auto& uart = u.uart;
    out(uart, 4, MCR_OUT2);
    out(uart, 2, 0x01); // FIFOs on
    // serial8250_do_startup()'s THRE test: IER = THRI, IIR shows THRE; IER = 0, IER = THRI, IIR shows it again.
    out(uart, 1, 0x02);
    CHECK(u.levels == std::vector<bool> { true });
    CHECK(in(uart, 2) == 0xC2);
    CHECK(u.levels == std::vector<bool> { true, false });
    CHECK(in(uart, 2) == 0xC1); // acknowledged
    out(uart, 1, 0x00);
    out(uart, 1, 0x02);
    CHECK(in(uart, 2) == 0xC2);
    // Each byte written re-arms it with a new rising edge, even if the line was still high.
    out(uart, 0, 'a');
    CHECK(u.levels == std::vector<bool> { true, false, true, false, true });
    out(uart, 0, 'b');
    CHECK(u.levels == std::vector<bool> { true, false, true, false, true, false, true });
    CHECK(in(uart, 2) == 0xC2);
    CHECK(in(uart, 2) == 0xC1);
    CHECK_FALSE(uart.irq_level());
    // Without OUT2 the PC's gate keeps the pin off the interrupt controller; IIR still reports.
    out(uart, 4, 0x00);
    out(uart, 1, 0x00);
    out(uart, 1, 0x02);
    CHECK_FALSE(uart.irq_level());
    CHECK(in(uart, 2) == 0xC2);
}

TEST_CASE("received bytes set LSR DR and raise the RX interrupt, which outranks THR empty", "[serial]")
{
    IrqUart u;
    auto& uart = u.uart;
    out(uart, 4, MCR_OUT2);
    CHECK((in(uart, 5) & 0x01) == 0);
    uint8_t const input[] = { 'h', 'i' };
    CHECK(uart.receive(input) == 2);
    CHECK((in(uart, 5) & 0x01) == 0x01);
    CHECK(u.levels.empty()); // IER's RX bit is clear
    out(uart, 1, 0x01 | 0x02);
    CHECK(u.levels == std::vector<bool> { true });
    CHECK((in(uart, 2) & 0x0F) == 0x04); // received data first
    CHECK(in(uart, 0) == 'h');
    CHECK((in(uart, 2) & 0x0F) == 0x04);
    CHECK(in(uart, 0) == 'i');
    CHECK((in(uart, 5) & 0x01) == 0);
    CHECK((in(uart, 2) & 0x0F) == 0x02); // then THR empty, acknowledged by this read
    CHECK((in(uart, 2) & 0x0F) == 0x01);
    CHECK(u.levels == std::vector<bool> { true, false });
    // What does not fit waits on the host's side.
    std::vector<uint8_t> big(Serial16550::RX_CAPACITY + 10, 'x');
    CHECK(uart.receive(big) == Serial16550::RX_CAPACITY);
    CHECK(uart.receive(big) == 0);
    // FCR's RX clear drops it.
    out(uart, 2, 0x01 | 0x02);
    CHECK((in(uart, 5) & 0x01) == 0);
}

TEST_CASE("in loopback the UART receives what it sends and the console sees nothing", "[serial]")
{
    IrqUart u;
    auto& uart = u.uart;
    out(uart, 4, 0x10);
    out(uart, 0, 'z');
    CHECK((in(uart, 5) & 0x01) == 0x01);
    CHECK(in(uart, 0) == 'z');
    uint8_t const outside[] = { 'q' };
    CHECK(uart.receive(outside) == 1); // the receive line is disconnected: accepted and lost
    CHECK((in(uart, 5) & 0x01) == 0);
    out(uart, 4, 0x00);
    uart.flush();
    CHECK(u.writes.empty());
}

TEST_CASE("a reset drops input and lowers the interrupt line", "[serial]")
{
    IrqUart u;
    auto& uart = u.uart;
    out(uart, 4, MCR_OUT2);
    out(uart, 1, 0x01);
    uint8_t const input[] = { 'x' };
    uart.receive(input);
    CHECK(uart.irq_level());
    uart.reset();
    CHECK_FALSE(uart.irq_level());
    CHECK((in(uart, 5) & 0x01) == 0);
    CHECK(in(uart, 1) == 0);
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

// --- the legacy PC ports (devices/legacy.hpp) ---------------------------------------------------------------

namespace {

void out32(IoDevice& d, uint64_t offset, uint32_t value)
{
    uint8_t bytes[4] = { uint8_t(value), uint8_t(value >> 8), uint8_t(value >> 16), uint8_t(value >> 24) };
    d.write(offset, bytes);
}
uint16_t in16(IoDevice& d, uint64_t offset)
{
    uint8_t bytes[2] {};
    d.read(offset, bytes);
    return static_cast<uint16_t>(bytes[0] | (bytes[1] << 8));
}

} // namespace

// The accesses of pci_check_type1(), pci_sanity_check() and pci_check_type2() in Linux's arch/x86/pci/direct.c.
TEST_CASE("PCI configuration mechanism 1 answers with one host bridge and nothing else", "[legacy][pci]")
{
    int resets = 0;
    PciConfigPorts pci([&] { ++resets; });
    // Type 1: a dword written to 0xCF8 reads back.
    out(pci, 3, 0x01);
    out32(pci, 0, 0x8000'0000);
    CHECK(in32(pci, 0) == 0x8000'0000);
    // The sanity check: 00:00.0's class is a host bridge; its vendor is not Intel (no quirks apply).
    out32(pci, 0, 0x8000'0008);
    CHECK(in16(pci, 4 + 2) == 0x0600);
    out32(pci, 0, 0x8000'0000);
    CHECK(in16(pci, 4) == PciConfigPorts::HOST_VENDOR);
    CHECK(in16(pci, 4 + 2) == PciConfigPorts::HOST_DEVICE);
    CHECK(in32(pci, 4) == 0x0008'1B36);
    // Any other function is absent: all ones.
    out32(pci, 0, 0x8000'0800); // 00:01.0
    CHECK(in32(pci, 4) == 0xFFFF'FFFF);
    out32(pci, 0, 0x8001'0000); // 01:00.0
    CHECK(in32(pci, 4) == 0xFFFF'FFFF);
    // Configuration disabled (bit 31 clear): all ones; reserved bits never read back.
    out32(pci, 0, 0x7F00'0003);
    CHECK(in32(pci, 0) == 0);
    CHECK(in32(pci, 4) == 0xFFFF'FFFF);
    // Type 2's probe writes zero bytes and must not read them back as zero.
    out(pci, 3, 0x00);
    out(pci, 0, 0x00);
    out(pci, 2, 0x00);
    CHECK(in(pci, 0) == 0xFF);
    CHECK(in(pci, 2) == 0xFF);
    CHECK(resets == 0);
}

TEST_CASE("0xCF9 resets on a write with bit 2 set, as the FADT's RESET_VALUE and Linux's CF9 method write", "[legacy][reset]")
{
    int resets = 0;
    PciConfigPorts pci([&] { ++resets; });
    uint64_t const cf9 = platform::RESET_PORT - platform::PCI_CONFIG_PORT;
    out(pci, cf9, 0x02); // Linux's "cf9 | 2" first: no reset yet
    CHECK(resets == 0);
    CHECK(in(pci, cf9) == 0x02);
    out(pci, cf9, platform::RESET_VALUE);
    CHECK(resets == 1);
    CHECK(in(pci, cf9) == 0x02); // bit 2 does not stick
    out(pci, cf9, 0x0E);
    CHECK(resets == 2);
    // A dword at 0xCF8 is the configuration address, never a reset.
    out32(pci, 0, 0x8000'0400);
    CHECK(resets == 2);
}

TEST_CASE("the i8042 answers its self test, is never busy, and resets on command 0xFE", "[legacy][i8042]")
{
    int resets = 0;
    I8042 kbc([&] { ++resets; });
    CHECK((in(kbc, I8042::COMMAND) & 0x03) == 0); // output and input buffers empty: Linux's kb_wait() returns
    out(kbc, I8042::COMMAND, 0xAA);
    CHECK((in(kbc, I8042::COMMAND) & 0x01) == 0x01);
    CHECK(in(kbc, I8042::DATA) == 0x55);
    CHECK((in(kbc, I8042::COMMAND) & 0x01) == 0);
    out(kbc, I8042::COMMAND, 0x60);
    out(kbc, I8042::DATA, 0x45);
    out(kbc, I8042::COMMAND, 0x20);
    CHECK(in(kbc, I8042::DATA) == 0x45);
    out(kbc, I8042::DATA, 0xF2); // a keyboard command, with no keyboard: no answer
    CHECK((in(kbc, I8042::COMMAND) & 0x01) == 0);
    CHECK(resets == 0);
    out(kbc, I8042::COMMAND, platform::I8042_CMD_RESET);
    CHECK(resets == 1);
    out(kbc, I8042::COMMAND, 0xFF); // pulses no line
    CHECK(resets == 1);
    out(kbc, I8042::COMMAND, 0xD1); // write output port with the reset line low
    out(kbc, I8042::DATA, 0x00);
    CHECK(resets == 2);
}

TEST_CASE("the CMOS clock reads the host's UTC time in BCD and never shows an update in progress", "[legacy][cmos]")
{
    Cmos cmos([] { return std::time_t { 1'700'000'000 }; }); // 2023-11-14 22:13:20 UTC, a Tuesday
    auto reg = [&](uint8_t index) {
        out(cmos, 0, index);
        return in(cmos, 1);
    };
    CHECK(reg(0x00) == 0x20);
    CHECK(reg(0x02) == 0x13);
    CHECK(reg(0x04) == 0x22);
    CHECK(reg(0x06) == 0x03);
    CHECK(reg(0x07) == 0x14);
    CHECK(reg(0x08) == 0x11);
    CHECK(reg(0x09) == 0x23);
    CHECK(reg(0x32) == 0x20);
    CHECK((reg(0x0A) & 0x80) == 0); // UIP clear
    CHECK(reg(0x0B) == 0x02);       // 24-hour, BCD
    CHECK(reg(0x0D) == 0x80);       // valid
    out(cmos, 0, 0x80 | 0x40);      // NMI mask bit with a RAM index
    out(cmos, 1, 0x5A);
    CHECK(reg(0x40) == 0x5A);
    out(cmos, 0, 0x00);
    out(cmos, 1, 0x59); // the clock is not settable
    CHECK(reg(0x00) == 0x20);
}

TEST_CASE("absent ports read all ones and take writes", "[legacy]")
{
    AbsentPorts absent;
    out(absent, 0, 0x12);
    CHECK(in(absent, 0) == 0xFF);
    CHECK(in32(absent, 0) == 0xFFFF'FFFF);
}
