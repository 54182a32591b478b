// Traps: the frame isr_common (entry.S) builds, and the C++ dispatcher it calls.
#pragma once

#include <cstdint>

namespace kernel {

// Pushed by isr_common in this order (lowest address first); keep in sync with entry.S.
struct TrapFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
    uint64_t vector;
    uint64_t error_code;
    // Pushed by the CPU.
    uint64_t rip, cs, rflags, rsp, ss;
};

inline constexpr uint8_t EXIT_GUEST_EXCEPTION = 3;
inline constexpr uint8_t EXIT_GUEST_PANIC = 4;

} // namespace kernel

extern "C" void trap_dispatch(kernel::TrapFrame* frame);
