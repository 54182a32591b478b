/* guest/include/guest/arch/percpu_layout.h: offsets into the per-CPU area and fixed numbers that both the
 * assembly (entry.S) and C++ (kernel/percpu.hpp, which static_asserts them) use. Plain #defines so that
 * the assembler can include it. */
#pragma once

/* struct PerCpu (kernel/percpu.hpp), reached through %gs from CPL0 and CPL3 alike. */
#define PERCPU_KERNEL_STACK 0x00 /* u64: top of the CPL0 stack (also TSS.RSP0) */
#define PERCPU_USER_STACK 0x08   /* u64: top of the kernel's stack (at CPL3 or CPL0) */
#define PERCPU_SELF 0x10         /* u64: the PerCpu's own address */
#define PERCPU_CPU 0x18          /* u32: CPU index */
#define PERCPU_APIC_ID 0x1C      /* u32 */
#define PERCPU_TSS_SELECTOR 0x20 /* u16 */
#define PERCPU_WAKE 0x28         /* u32: bumped by every interrupt that may end a wait */

/* Segment selectors of the GDT in entry.S. */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS 0x23 /* 0x20 | RPL 3 */
#define USER_CS 0x2B /* 0x28 | RPL 3 */
#define FIRST_TSS_SELECTOR 0x30 /* then one 16-byte descriptor per CPU */
#define GDT_FIXED_ENTRIES 6
#define GUEST_MAX_CPUS 1024

/* Interrupt vectors. */
#define VECTOR_SCI 0x30
#define VECTOR_WAKE 0xF0  /* IPI: look at your mailbox and wait words */
#define VECTOR_TIMER 0xF1 /* LAPIC one-shot timer: a wait timed out */
#define VECTOR_SPURIOUS 0xFF

/* System call numbers (kernel/sys.hpp), in rax for `ud1 %eax, %eax` from CPL3, or for the direct entry from
   CPL0 (see entry.S). */
#define SYS_WAIT 0         /* (u32* word, u32 seen, u64 timer ticks): halt unless *word != seen */
#define SYS_OUTB 1         /* (port, value) */
#define SYS_OUTW 2
#define SYS_OUTL 3
#define SYS_INB 4          /* (port) -> value */
#define SYS_INW 5
#define SYS_INL 6
#define SYS_OUTSB 7        /* (port, buffer, count) */
#define SYS_WRMSR 8        /* (msr, value) */
#define SYS_RDMSR 9        /* (msr) -> value */
#define SYS_PARK 10        /* never returns: cli; hlt until INIT */
#define SYS_CPUID 11       /* (leaf, subleaf, u32 out[4]): the vCPU's CPUID (at CPL3 this host answers
                              with its own) */
#define SYS_IPI_WAIT 12    /* (x2APIC ICR value, u32* word, u32 seen; r10 = timer ticks): send one IPI, then
                              SYS_WAIT; an ICR value of 0 sends nothing */
#define SYS_IPI3 13        /* (icr, icr, icr): up to three x2APIC IPIs in order (0 = none): INIT, SIPI, SIPI */
#define SYS_APIC_STARTING 14 /* (): the apic:starting register writes in x2APIC mode */
#define SYS_ENTER_CPL0 15  /* (): return to the caller at CPL0 (kernel.cpl=0); APs then start at CPL0 too */
#define SYS_COUNT 16
