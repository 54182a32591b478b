/* guest/arch/x86_64/entry.S: the PVH entry, the switch to long mode, and the static GDT, IDT and page tables.
 *
 * Everything a boot loader would usually compute at run time is static data here, because on nested PVM
 * every CPL0 instruction goes through KVM's emulator (~0.6 us each): the whole path from the PVH entry
 * to kernel_main is about twenty instructions. */

#define ISR_BASE        0x100000    /* linker.ld places .text.isr here and asserts it */
#define ISR_STUB_SIZE   16
#define KERNEL_CS       0x08
#define KERNEL_DS       0x10
#define MSR_EFER        0xC0000080
#define EFER_LME        0x100
#define CR0_PE_ET_PG    0x80000011
#define CR4_PAE         0x20

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
    mov     $EFER_LME, %eax
    xor     %edx, %edx
    wrmsr
    mov     $CR0_PE_ET_PG, %eax
    mov     %eax, %cr0
    ljmp    $KERNEL_CS, $start64

    .code64
start64:
    mov     $boot_stack_top, %esp
    mov     %ebx, %edi              /* kernel_main(start_info physical address) */
    lidt    idt_pointer
    call    kernel_main
1:  cli
    hlt
    jmp     1b

/* ---- interrupt stubs: one per vector, 16 bytes apart, at ISR_BASE --------------------------------------- */
    .section .text.isr, "ax"
    .code64
    .set vector, 0
    .rept 256
    .balign ISR_STUB_SIZE
    /* Vectors where the CPU pushes an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX. */
    .if !((vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30))
    pushq   $0
    .endif
    pushq   $vector
    jmp     isr_common
    .set vector, vector + 1
    .endr

    .text
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
    mov     %rsp, %rdi              /* TrapFrame*: the layout in kernel/trap.hpp */
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
    add     $16, %rsp               /* vector and error code */
    iretq

/* ---- descriptor tables -------------------------------------------------------------------------------- */
    .section .rodata
    .balign 16
    .global gdt
gdt:
    .quad 0                         /* 0x00 null */
    .quad 0x00AF9B000000FFFF        /* 0x08 kernel code, 64-bit (accessed bit preset: the table stays read-only) */
    .quad 0x00CF93000000FFFF        /* 0x10 kernel data */
    .quad 0x00CFFB000000FFFF        /* 0x18 user code, 32-bit: SYSRET's layout wants it before user data */
    .quad 0x00CFF3000000FFFF        /* 0x20 user data */
    .quad 0x00AFFB000000FFFF        /* 0x28 user code, 64-bit */
gdt_end:
    .balign 8
    .global gdt_pointer
gdt_pointer:
    .word gdt_end - gdt - 1
    .quad gdt                       /* a 32-bit lgdt reads only the low half */

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
    .quad pdpt + 0x7                /* present, writable, user: CPL3 code may run on the same tables */
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

    .bss
    .balign 16
boot_stack:
    .skip 16384
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
