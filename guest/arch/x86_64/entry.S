/* guest/arch/x86_64/entry.S: the guest's CPL0 layer. The PVH entry and the switch to long mode, the boot
 * CPU's drop to CPL3, the AP path (real-mode trampoline to long mode to the kernel), the system calls, the
 * interrupt stubs, and the static GDT, IDT and page tables.
 *
 * The kernel runs at CPL3 with kernel.cpl=3 (nested PVM, below) and at CPL0 otherwise: the boot CPU moves
 * there with SYS_ENTER_CPL0 and APs then enter ap_main at CPL0. At CPL0 the kernel reaches the system-call
 * handlers directly, through a frame it builds as the #UD gate would (kernel/sys.hpp), with no exit.
 *
 * On nested PVM every CPL0 instruction goes through KVM's emulator (~0.6 us each) while CPL3 runs natively,
 * so this layer is as small as it can be: everything a loader would compute is static data, the kernel's
 * logic runs at CPL3, and CPL0 is entered only for what needs it (see docs/platform.md). */

#include <guest/abi/platform.h>
#include <guest/arch/percpu_layout.h>

#define ISR_BASE        0x100000    /* linker.ld places .text.isr here and asserts it */
#define ISR_STUB_SIZE   16
#define MSR_EFER        0xC0000080
#define MSR_GS_BASE     0xC0000101
#define MSR_APIC_BASE   0x1B
#define X2APIC_ID       0x802
#define X2APIC_EOI      0x80B
#define X2APIC_SVR      0x80F
#define X2APIC_TIMER_INITIAL 0x838
#define X2APIC_TIMER_DIVIDE 0x83E
#define X2APIC_LVT_TIMER 0x832
#define X2APIC_ICR      0x830
#define X2APIC_ESR      0x828
#define X2APIC_LVT_LINT0 0x835
#define X2APIC_LVT_LINT1 0x836
#define X2APIC_LVT_ERROR 0x837
#define XAPIC_BASE      PLATFORM_LAPIC_BASE
#define IOAPIC_BASE     PLATFORM_IOAPIC_BASE
#define EFER_LME_SCE    0x100       /* long mode (no SCE: system calls use int $0x80) */
#define CR0_PE_ET_PG    0x80000011
#define CR4_PAE         0x20
#define RFLAGS_IF       0x202
#define SVR_ENABLE      (0x100 | VECTOR_SPURIOUS)

/* ---- the PVH ELF note (XEN_ELFNOTE_PHYS32_ENTRY = 18), in a 4-byte-aligned PT_NOTE ------------------ */
    .section .note.Xen, "a"
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz: the entry as a 64-bit word; 32-bit readers see its low half */
    .long 18
    .asciz "Xen"
    .balign 4
    .quad pvh_start32

/* ---- 32-bit entry: flat protected mode, paging off, EBX = hvm_start_info (PVH ABI) ------------------- */
    .section .text.entry32, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    /* Mask both 8259s: a BIOS that ran before us (SeaBIOS under QEMU) leaves the PIT ticking into the
       master PIC at its vector base 8, which would arrive as a #DF once the kernel sets IF. */
    mov     $0xFF, %al
    out     %al, $0xA1
    out     %al, $0x21
    lgdt    gdt_pointer
    mov     $KERNEL_DS, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     $pml4, %eax
    mov     %eax, %cr3
    mov     $CR4_PAE, %eax
    mov     %eax, %cr4
    mov     $MSR_EFER, %ecx
    mov     $EFER_LME_SCE, %eax
    xor     %edx, %edx
    wrmsr
    mov     $CR0_PE_ET_PG, %eax
    mov     %eax, %cr0
    ljmp    $KERNEL_CS, $bsp_start64

/* ---- the boot CPU in long mode: per-CPU set-up, then kernel_main at CPL3 ------------------------------- */
    .code64
bsp_start64:
    mov     %ebx, %r12d                 /* the start info, for kernel_main */
    mov     $bsp_kernel_stack_top, %esp
    lidt    idt_pointer
    mov     $FIRST_TSS_SELECTOR, %eax
    ltr     %ax
    mov     $bsp_percpu, %ebx
    call    cpu_msrs                    /* GS base */
    call    user_data_segments
    mov     %r12d, %edi                 /* kernel_main(start info) */
    pushq   $USER_DS
    pushq   $bsp_user_stack_top
    pushq   $RFLAGS_IF
    pushq   $USER_CS
    pushq   $kernel_main
    iretq

/* DS and ES with the DPL-3 data selector before dropping to CPL3, where an iretq would null a DPL-0 one:
   the system calls' emulated string I/O (rep outsb) then finds a usable DS. Clobbers rax. */
user_data_segments:
    mov     $USER_DS, %eax
    mov     %eax, %ds
    mov     %eax, %es
    ret

/* %rbx = PerCpu*. Sets GS base to it; clobbers rax, rcx, rdx. */
cpu_msrs:
    mov     $MSR_GS_BASE, %ecx
    mov     %ebx, %eax
    mov     %rbx, %rdx
    shr     $32, %rdx
    wrmsr
    ret

/* ---- an application processor in long mode (from the trampoline) --------------------------------------- */
    .global ap_start64
ap_start64:
    mov     $KERNEL_DS, %eax
    mov     %eax, %ss
    /* Who am I: the APIC id, then apic_to_cpu[] and percpu_table[] that the boot CPU filled. */
    cmpb    $0, apic_x2apic
    je      1f
    mov     $MSR_APIC_BASE, %ecx
    rdmsr
    or      $0xC00, %eax                /* x2APIC mode: enable + extended */
    wrmsr
    mov     $X2APIC_ID, %ecx
    rdmsr
    jmp     2f
1:  mov     $(XAPIC_BASE + 0x20), %eax
    mov     (%rax), %eax
    shr     $24, %eax
2:  movzwl  apic_to_cpu(,%rax,2), %eax
    mov     percpu_table(,%rax,8), %rbx
    mov     PERCPU_KERNEL_STACK(%rbx), %rsp
    lidt    idt_pointer
    movzwl  PERCPU_TSS_SELECTOR(%rbx), %eax
    ltr     %ax
    call    cpu_msrs
    /* Software-enable the local APIC now: a halted AP waiting at its sync point is woken by an IPI,
       and a software-disabled APIC drops fixed IPIs. The rest of its set-up is the apic:starting step. */
    /* The one-shot timer too, so that the AP's waits before apic:starting can time out. */
    cmpb    $0, apic_x2apic
    je      3f
    xor     %edx, %edx
    mov     $X2APIC_SVR, %ecx
    mov     $SVR_ENABLE, %eax
    wrmsr
    mov     $X2APIC_TIMER_DIVIDE, %ecx
    mov     $0xB, %eax                  /* divide by 1 */
    wrmsr
    mov     $X2APIC_LVT_TIMER, %ecx
    mov     $VECTOR_TIMER, %eax         /* one-shot, unmasked */
    wrmsr
    jmp     4f
3:  mov     $XAPIC_BASE, %eax
    movl    $SVR_ENABLE, 0xF0(%rax)
    movl    $0xB, 0x3E0(%rax)
    movl    $VECTOR_TIMER, 0x320(%rax)
4:  call    user_data_segments
    mov     %rbx, %rdi                  /* ap_main(PerCpu*) at the kernel's privilege level */
    cmpb    $0, kernel_cpl0
    jne     5f
    pushq   $USER_DS
    pushq   PERCPU_USER_STACK(%rbx)
    pushq   $RFLAGS_IF
    pushq   $USER_CS
    pushq   $ap_main
    iretq
5:  pushq   $KERNEL_DS                  /* kernel.cpl=0: the same stack, at CPL0 */
    pushq   PERCPU_USER_STACK(%rbx)
    pushq   $RFLAGS_IF
    pushq   $KERNEL_CS
    pushq   $ap_main
    iretq

/* ---- system calls: `ud1 %eax, %eax` at CPL3 with rax = number, rdi/rsi/rdx/r10 = arguments; the result in
   rax; rcx, rdx, rdi, rsi and r8 are clobbered. On this host neither `syscall` (it reaches LSTAR without leaving CPL3) nor `int n`
   (#UD) enters CPL0 from user mode, but exceptions do: the #UD gate switches to the TSS's RSP0 stack with
   IF clear, and ud_entry tells a call (that exact encoding, from CPL3) from a real #UD such as GCC's ud2
   for __builtin_trap (docs/platform.md). ------------------------------ */
ud_entry:
    testb   $3, 8(%rsp)                 /* the CS the CPU pushed: from CPL3? */
    jz      2f
    push    %rcx
    mov     8(%rsp), %rcx               /* RIP of the faulting instruction */
    cmpw    $0xB90F, (%rcx)             /* ud1 %eax, %eax: 0F B9 C0 */
    jne     1f
    cmpb    $0xC0, 2(%rcx)
1:  pop     %rcx
    jne     2f
    addq    $3, (%rsp)                  /* resume after it */
    jmp     syscall_entry
2:  pushq   $0                          /* a real #UD (ud2 included: GCC's __builtin_trap) */
    pushq   $6
    jmp     isr_common

    .global syscall_entry
syscall_entry:
    cmp     $SYS_COUNT, %rax
    jae     1f
    jmp     *syscall_table(,%rax,8)
1:  mov     $-1, %rax
    iretq

sys_ipi_wait:
    test    %rdi, %rdi
    jz      1f
    mov     $X2APIC_ICR, %ecx
    mov     %edi, %eax
    push    %rdx
    mov     %rdi, %rdx
    shr     $32, %rdx
    wrmsr
    pop     %rdx
1:  mov     %rsi, %rdi                  /* then SYS_WAIT(word, seen, r10 ticks) */
    mov     %edx, %esi
    mov     %r10, %rdx
    jmp     sys_wait

sys_ipi3:
    mov     $X2APIC_ICR, %ecx
    mov     %rdx, %r8
    call    1f
    mov     %rsi, %rdi
    call    1f
    mov     %r8, %rdi
    call    1f
    jmp     syscall_return
1:  test    %rdi, %rdi                  /* one ICR write, unless 0 */
    jz      2f
    mov     %edi, %eax
    mov     %rdi, %rdx
    shr     $32, %rdx
    wrmsr
2:  ret

sys_apic_starting:
    xor     %edx, %edx
    mov     $X2APIC_LVT_LINT0, %ecx
    mov     $0x10000, %eax              /* masked */
    wrmsr
    mov     $X2APIC_LVT_LINT1, %ecx
    mov     $0x400, %eax                /* NMI */
    wrmsr
    mov     $X2APIC_LVT_ERROR, %ecx
    mov     $0x10000, %eax
    wrmsr
    mov     $X2APIC_ESR, %ecx
    xor     %eax, %eax
    wrmsr
    jmp     syscall_return

sys_wait:
    cmp     %esi, (%rdi)
    jne     syscall_return              /* already changed: no halt */
    test    %rdx, %rdx
    jz      2f
    cmpb    $0, apic_x2apic
    je      1f
    mov     $X2APIC_TIMER_INITIAL, %ecx
    mov     %edx, %eax
    shr     $32, %rdx
    wrmsr
    jmp     2f
1:  mov     $(XAPIC_BASE + 0x380), %eax
    mov     %edx, (%rax)
2:  sti                                 /* the shadow of sti covers the hlt: no wake-up is lost */
    hlt
    jmp     syscall_return
sys_outb:
    mov     %esi, %eax
    mov     %edi, %edx
    outb    %al, %dx
    jmp     syscall_return
sys_outw:
    mov     %esi, %eax
    mov     %edi, %edx
    outw    %ax, %dx
    jmp     syscall_return
sys_outl:
    mov     %esi, %eax
    mov     %edi, %edx
    outl    %eax, %dx
    jmp     syscall_return
sys_inb:
    mov     %edi, %edx
    xor     %eax, %eax
    inb     %dx, %al
    jmp     syscall_return
sys_inw:
    mov     %edi, %edx
    xor     %eax, %eax
    inw     %dx, %ax
    jmp     syscall_return
sys_inl:
    mov     %edi, %edx
    inl     %dx, %eax
    jmp     syscall_return
sys_outsb:
    push    %rsi
    mov     %rdx, %rcx
    mov     %edi, %edx
    rep outsb                           /* rsi = buffer; one VM exit for the whole string */
    pop     %rsi
    jmp     syscall_return
sys_wrmsr:
    mov     %edi, %ecx
    mov     %rsi, %rax
    mov     %rsi, %rdx
    shr     $32, %rdx
    wrmsr
    jmp     syscall_return
sys_rdmsr:
    mov     %edi, %ecx
    rdmsr
    shl     $32, %rdx
    or      %rdx, %rax
    jmp     syscall_return
sys_park:
    cli
1:  hlt
    jmp     1b
/* kernel.cpl=0: the caller goes on at CPL0 on its own stack (in 64-bit mode iretq pops SS:RSP at any
   level), and APs started from now on enter ap_main at CPL0. DS and ES keep the DPL-3 data selector,
   which CPL0 may use. */
sys_enter_cpl0:
    movq    $KERNEL_CS, 8(%rsp)
    movq    $KERNEL_DS, 32(%rsp)
    movb    $1, kernel_cpl0
    jmp     syscall_return
sys_cpuid:
    push    %rbx
    mov     %rdx, %r8
    mov     %edi, %eax
    mov     %esi, %ecx
    cpuid
    mov     %eax, (%r8)
    mov     %ebx, 4(%r8)
    mov     %ecx, 8(%r8)
    mov     %edx, 12(%r8)
    pop     %rbx
    jmp     syscall_return

syscall_return:
    iretq

    .section .rodata
    .balign 8
syscall_table:
    .quad sys_wait, sys_outb, sys_outw, sys_outl, sys_inb, sys_inw, sys_inl, sys_outsb, sys_wrmsr, sys_rdmsr
    .quad sys_park, sys_cpuid, sys_ipi_wait, sys_ipi3, sys_apic_starting, sys_enter_cpl0

/* ---- interrupt stubs: one per vector, 16 bytes apart, at ISR_BASE ----------------------------------------- */
    .section .text.isr, "ax"
    .code64
    .set vector, 0
    .rept 256
    .balign ISR_STUB_SIZE
    .if vector == 6
    jmp     ud_entry
    .elseif vector == VECTOR_WAKE || vector == VECTOR_TIMER
    jmp     irq_wake
    .elseif vector == VECTOR_SCI
    jmp     irq_sci
    .elseif vector == VECTOR_SPURIOUS
    iretq
    .else
    /* Vectors where the CPU pushes an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX. */
    .if !((vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30))
    pushq   $0
    .endif
    pushq   $vector
    jmp     isr_common
    .endif
    .set vector, vector + 1
    .endr

    .text
/* A wake-up IPI or the timer: count it for whoever waits on this CPU, EOI, return. */
irq_wake:
    lock incl %gs:PERCPU_WAKE
irq_eoi_return:
    push    %rax
    push    %rcx
    push    %rdx
    cmpb    $0, apic_x2apic
    je      1f
    mov     $X2APIC_EOI, %ecx
    xor     %eax, %eax
    xor     %edx, %edx
    wrmsr
    jmp     2f
1:  mov     $(XAPIC_BASE + 0xB0), %eax
    movl    $0, (%rax)
2:  pop     %rdx
    pop     %rcx
    pop     %rax
    iretq

/* The SCI is level-triggered: mask its IOAPIC pin (the CPL3 handler clears the event and unmasks),
   count it, wake this CPU, EOI. */
irq_sci:
    push    %rax
    push    %rdx
    mov     $IOAPIC_BASE, %eax
    mov     sci_ioregsel, %edx
    mov     %edx, (%rax)
    mov     sci_rte_masked, %edx
    mov     %edx, 0x10(%rax)
    lock incl sci_count
    pop     %rdx
    pop     %rax
    lock incl %gs:PERCPU_WAKE
    jmp     irq_eoi_return

isr_common:
    push    %rax
    push    %rcx
    push    %rdx
    push    %rbx
    push    %rbp
    push    %rsi
    push    %rdi
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, %rdi                  /* TrapFrame*: the layout in kernel/trap.hpp */
    cld
    call    trap_dispatch
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rdi
    pop     %rsi
    pop     %rbp
    pop     %rbx
    pop     %rdx
    pop     %rcx
    pop     %rax
    add     $16, %rsp                   /* vector and error code */
    iretq

/* ---- the AP trampoline: copied below 1 MiB by the boot CPU, entered in real mode at CS:0 by the SIPI ----
   Goes straight from real mode to long mode (PE and PG together) on the static tables. */
    .section .rodata.trampoline, "a"
    .code16
    .global trampoline_start, trampoline_end
trampoline_start:
    cli
    mov     %cs, %ax
    mov     %ax, %ds
    lgdtl   (trampoline_gdt_pointer - trampoline_start)
    movl    $CR4_PAE, %eax
    movl    %eax, %cr4
    movl    $pml4, %eax
    movl    %eax, %cr3
    movl    $MSR_EFER, %ecx
    movl    $EFER_LME_SCE, %eax
    xorl    %edx, %edx
    wrmsr
    movl    $CR0_PE_ET_PG, %eax
    movl    %eax, %cr0
    ljmpl   $KERNEL_CS, $ap_start64
    .balign 8
trampoline_gdt_pointer:
    .word gdt_end - gdt - 1
    .long gdt
trampoline_end:
    .code64

/* ---- descriptor tables -------------------------------------------------------------------------------- */
    .data
    .balign 16
    .global gdt
gdt:
    .quad 0                         /* 0x00 null */
    .quad 0x00AF9B000000FFFF        /* 0x08 kernel code, 64-bit (accessed bit preset) */
    .quad 0x00CF93000000FFFF        /* 0x10 kernel data */
    .quad 0x00CFFB000000FFFF        /* 0x18 user code, 32-bit (the syscall/sysret layout wants it here) */
    .quad 0x00CFF3000000FFFF        /* 0x20 user data */
    .quad 0x00AFFB000000FFFF        /* 0x28 user code, 64-bit */
    .quad BSP_TSS_DESCRIPTOR_LOW    /* 0x30 the boot CPU's TSS, computed by linker.ld */
    .quad 0
    .fill GUEST_MAX_CPUS * 2, 8, 0  /* CPU n's TSS at 0x30 + 16 * (1 + n), filled in by percpu:prepare */
gdt_end:
    .balign 8
    .global gdt_pointer
gdt_pointer:
    .word gdt_end - gdt - 1
    .quad gdt                       /* a 32-bit lgdt reads only the low half */

    .balign 16
    .global bsp_tss
bsp_tss:
    .long 0
    .quad bsp_kernel_stack_top      /* RSP0 */
    .fill 11, 8, 0
    .word 0
    .word 104                       /* I/O map base: no bitmap */

    .section .rodata
    .balign 16
idt:
    .set vector, 0
    .rept 256
    .word (ISR_BASE + vector * ISR_STUB_SIZE) & 0xFFFF
    .word KERNEL_CS
    .word 0x8E00                    /* present, DPL 0, 64-bit interrupt gate */
    .word ((ISR_BASE + vector * ISR_STUB_SIZE) >> 16) & 0xFFFF
    .long 0
    .long 0
    .set vector, vector + 1
    .endr
    .balign 8
    .global idt_pointer
idt_pointer:
    .word 256 * 16 - 1
    .quad idt

/* ---- identity page tables: 4 GiB in 2 MiB pages (this host has no 1 GiB pages) -------------------------- */
    .section .data.pagetables, "aw"
    .balign 4096
    .global pml4
pml4:
    .quad pdpt + 0x7                /* present, writable, user: CPL3 code runs on the same tables */
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x0007
    .quad pd + 0x1007
    .quad pd + 0x2007
    .quad pd + 0x3007
    .fill 508, 8, 0
pd:
    .set page, 0
    .rept 2048
    .if page >= 1536
    .quad (page << 21) | 0x9F       /* 3-4 GiB: MMIO (LAPIC, IOAPIC, PCI hole), uncached */
    .else
    .quad (page << 21) | 0x87       /* present, writable, user, 2 MiB */
    .endif
    .set page, page + 1
    .endr

/* ---- variables the stubs read, written by the CPL3 kernel ------------------------------------------------ */
    .data
    .global apic_x2apic, kernel_cpl0, sci_ioregsel, sci_rte_masked, sci_count
apic_x2apic:    .byte 0
kernel_cpl0:    .byte 0             /* 1 once the boot CPU took kernel.cpl=0: APs enter at CPL0 */
    .balign 4
sci_ioregsel:   .long 0
sci_rte_masked: .long 0x10000       /* a masked entry until the SCI is routed */
sci_count:      .long 0

    .bss
    .balign 4096
bsp_kernel_stack:
    .skip 8192
bsp_kernel_stack_top:
bsp_user_stack:
    .skip 32768
bsp_user_stack_top:

    .section .note.GNU-stack, "", @progbits
