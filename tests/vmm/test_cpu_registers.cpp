// KVM's register structures to the debugging commands' CpuRegisters, on hand-filled structures.
#include "cpu/cpu_registers.hpp"
#include "memory/guest_memory.hpp"

#include <catch2/catch.hpp>

using namespace vmm;

TEST_CASE("to_cpu_registers copies KVM's registers, segments, FPU and events", "[cpu-registers]")
{
    KvmCpuState state;
    state.regs.rax = 0x1111;
    state.regs.rsp = 0x2222;
    state.regs.r15 = 0xF15;
    state.regs.rip = 0xFFFF'FFFF'8100'0000ull;
    state.regs.rflags = 0x246;
    state.sregs.cs = { 0, 0xFFFFFFFF, 0x10, 0xB, 1, 0, 0, 1, 1, 1, 0, 0, 0 }; // base, limit, selector, type, P, DPL, DB, S, L, G
    state.sregs.tr = { 0xFFFF'FE00'0000'3000ull, 0x4087, 0x40, 0xB, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
    state.sregs.gdt = { 0xFFFF'FE00'0000'1000ull, 0x7F, {} };
    state.sregs.cr0 = 0x8005'0033;
    state.sregs.cr3 = 0x1234'5000;
    state.sregs.efer = 0xD01;
    kvm_fpu fpu {};
    fpu.fcw = 0x37F;
    fpu.mxcsr = 0x1F80;
    fpu.xmm[3][0] = 0xAB;
    fpu.fpr[1][9] = 0x40;
    state.fpu = fpu;
    kvm_debugregs debugregs {};
    debugregs.db[2] = 0xD2;
    debugregs.dr7 = 0x400;
    state.debugregs = debugregs;
    kvm_vcpu_events events {};
    events.interrupt.shadow = 1;
    state.events = events;
    state.mp_state = KVM_MP_STATE_HALTED;

    auto regs = to_cpu_registers(3, state);
    CHECK(regs.index == 3);
    CHECK(regs.rax == 0x1111);
    CHECK(regs.rsp == 0x2222);
    CHECK(regs.r15 == 0xF15);
    CHECK(regs.rip == 0xFFFF'FFFF'8100'0000ull);
    CHECK(regs.rflags == 0x246);
    CHECK(regs.cs.selector == 0x10);
    CHECK(regs.cs.type == 0xB);
    CHECK(regs.cs.present);
    CHECK(regs.cs.l);
    CHECK(regs.cs.g);
    CHECK_FALSE(regs.cs.db);
    CHECK(regs.tr.base == 0xFFFF'FE00'0000'3000ull);
    CHECK(regs.tr.limit == 0x4087);
    CHECK(regs.gdt.base == 0xFFFF'FE00'0000'1000ull);
    CHECK(regs.gdt.limit == 0x7F);
    CHECK(regs.cr0 == 0x8005'0033);
    CHECK(regs.cr3 == 0x1234'5000);
    CHECK(regs.efer == 0xD01);
    CHECK(regs.xmm[3][0] == 0xAB);
    CHECK(regs.fpr[1][9] == 0x40);
    CHECK(regs.dr[2] == 0xD2);
    CHECK(regs.dr7 == 0x400);
    CHECK(regs.interrupt_shadow);
    CHECK_FALSE(regs.smm);
    CHECK(regs.halted);
}

TEST_CASE("to_cpu_registers leaves the optional parts at their power-on values when KVM gave none", "[cpu-registers]")
{
    KvmCpuState state;
    state.mp_state = KVM_MP_STATE_UNINITIALIZED; // an AP waiting for INIT/SIPI
    auto regs = to_cpu_registers(1, state);
    CHECK_FALSE(regs.halted);
    CHECK(regs.fcw == 0x37F);
    CHECK(regs.mxcsr == 0x1F80);
    CHECK(regs.dr7 == 0);
    CHECK_FALSE(regs.interrupt_shadow);
}

TEST_CASE("GuestMemory::ram_from gives RAM up to its region's end and nothing elsewhere", "[memory]")
{
    auto memory = GuestMemory::create(16 << 20);
    REQUIRE(memory.has_value());
    CHECK(memory->ram_from(0x1000, 16).size() == 16);
    CHECK(memory->ram_from(0x1000, 16).data() == memory->host_base() + 0x1000);
    CHECK(memory->ram_from((16 << 20) - 8, 100).size() == 8);
    CHECK(memory->ram_from(16 << 20, 1).empty());
    CHECK(memory->ram_from(~0ull, ~0ull).empty());
    CHECK(memory->ram_from(0, ~0ull).size() == 16u << 20);
}
