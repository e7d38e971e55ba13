/* Entry trampolines for patched functions (x86-64 SysV).
 *
 * A patched function's 2-byte gate jumps back into its 14-byte prefix, which holds an 8-byte
 * pointer and `jmp *ptr`. During a transition the pointer names one of the stubs below; the stub
 * loads its index into %r11d and jumps (never calls) to graft_tramp_common, which asks the
 * selector (patch.cpp, graft_select_fast / graft_select_slow) for the version this thread must
 * run and jumps there with every argument register restored. No return address is ever
 * rewritten: the patched function returns straight to its caller, so C++ exceptions,
 * pthread_cancel and debuggers see an ordinary stack.
 *
 * The stubs live in this object's text (not in anonymous memory) so that every instruction a
 * thread can be stopped at belongs to a known ELF object with CFI: one FDE covers the whole stub
 * array (the CFA is %rsp+8 at every stub instruction, as at a function entry).
 */
#define GRAFT_STUB_COUNT 32768

    .text
    .balign 64
    .globl graft_stubs_begin
    .hidden graft_stubs_begin
    .type graft_stubs_begin, @function
graft_stubs_begin:
    .cfi_startproc
    .set i, 0
    .rept GRAFT_STUB_COUNT
    movl $i, %r11d          /* 6 bytes: 41 bb imm32 */
    jmp graft_tramp_common  /* 5 bytes: e9 rel32 (forced below by .balign) */
    .balign 16, 0xcc
    .set i, i+1
    .endr
    .cfi_endproc
    .size graft_stubs_begin, . - graft_stubs_begin
    .globl graft_stubs_end
    .hidden graft_stubs_end
graft_stubs_end:

    .balign 16
    .globl graft_tramp_common
    .hidden graft_tramp_common
    .type graft_tramp_common, @function
graft_tramp_common:
    .cfi_startproc
    /* Argument registers, %rax (vector count for varargs) and %r10 (static chain). */
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    pushq %rdx
    .cfi_adjust_cfa_offset 8
    pushq %rcx
    .cfi_adjust_cfa_offset 8
    pushq %r8
    .cfi_adjust_cfa_offset 8
    pushq %r9
    .cfi_adjust_cfa_offset 8
    pushq %rax
    .cfi_adjust_cfa_offset 8
    pushq %r10
    .cfi_adjust_cfa_offset 8
    pushq %r11              /* the stub index; also aligns %rsp to 16 for the call */
    .cfi_adjust_cfa_offset 8
    movl %r11d, %edi
    leaq 72(%rsp), %rsi     /* where the patched function's return address is */
    call graft_select_fast  /* general registers only: vector registers stay untouched */
    testq %rax, %rax
    jz 2f
1:
    movq %rax, %r11
    popq %rax               /* discard the saved index */
    .cfi_adjust_cfa_offset -8
    popq %r10
    .cfi_adjust_cfa_offset -8
    popq %rax
    .cfi_adjust_cfa_offset -8
    popq %r9
    .cfi_adjust_cfa_offset -8
    popq %r8
    .cfi_adjust_cfa_offset -8
    popq %rcx
    .cfi_adjust_cfa_offset -8
    popq %rdx
    .cfi_adjust_cfa_offset -8
    popq %rsi
    .cfi_adjust_cfa_offset -8
    popq %rdi
    .cfi_adjust_cfa_offset -8
    jmp *%r11
    .cfi_adjust_cfa_offset 72
2:
    /* Slow path (first call on a thread, or a pending thread trying to switch itself): it may
     * run the unwinder and libc, which can clobber any vector register, so save the whole
     * extended state with xsave. %rbx keeps the frame: it is callee-saved and restored below. */
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    movq %rsp, %rbx
    .cfi_def_cfa_register %rbx
    subq $16384, %rsp
    andq $-64, %rsp
    /* zero the xsave header (bytes 512..575) as XSAVE requires a sane XSTATE_BV for XRSTOR */
    xorl %eax, %eax
    movq %rax, 512(%rsp)
    movq %rax, 520(%rsp)
    movq %rax, 528(%rsp)
    movq %rax, 536(%rsp)
    movq %rax, 544(%rsp)
    movq %rax, 552(%rsp)
    movq %rax, 560(%rsp)
    movq %rax, 568(%rsp)
    movl $-1, %eax
    movl $-1, %edx
    xsave (%rsp)
    movl 8(%rbx), %edi      /* the saved stub index */
    call graft_select_slow
    movq %rax, %r11
    movl $-1, %eax
    movl $-1, %edx
    xrstor (%rsp)
    movq %r11, %rax
    movq %rbx, %rsp
    .cfi_def_cfa_register %rsp
    popq %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    jmp 1b
    .cfi_endproc
    .size graft_tramp_common, . - graft_tramp_common
    .globl graft_tramp_common_end
    .hidden graft_tramp_common_end
graft_tramp_common_end:

    .section .note.GNU-stack, "", @progbits
