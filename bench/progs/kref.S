/* Reference implementation of the kernel's livepatch call path, for comparison only (never part
 * of graft): ftrace's `call __fentry__` at the function's entry, a trampoline that saves the
 * argument registers and calls the handler (kref.c: klp_ftrace_handler) on EVERY call, then
 * rewrites its own return address to the chosen function and `ret`s into it (as
 * ftrace_regs_caller does with regs->ip). The `ret` goes where no `call` came from, so the
 * return-stack buffer mispredicts it, and the patched function's own `ret` then mispredicts too.
 */
    .text
    .p2align 4
    .globl f_kref
    .type f_kref, @function
f_kref:                       /* same body as f_direct: x + 1 */
    .cfi_startproc
    call kref_fentry
    leaq 1(%rdi), %rax
    ret
    .cfi_endproc
    .size f_kref, . - f_kref

    .p2align 4
    .type kref_fentry, @function
kref_fentry:
    .cfi_startproc
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
    movq 64(%rsp), %rdi       /* ip: the return address into f_kref */
    subq $5, %rdi             /* -> the call site, as ftrace reports it */
    movq 72(%rsp), %rsi       /* parent ip */
    leaq kref_ops(%rip), %rdx /* per-ops trampoline: the ops is known */
    leaq 64(%rsp), %rcx       /* &regs->ip */
    call kref_handler
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
    ret                       /* to regs->ip: the new function, or back into f_kref */
    .cfi_endproc
    .size kref_fentry, . - kref_fentry

    .section .note.GNU-stack, "", @progbits
