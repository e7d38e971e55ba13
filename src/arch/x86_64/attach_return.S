/* Where a thread borrowed by `graft attach` goes when dlopen returns (docs/design.md §4.13): the
 * agent's constructor points the call's return address here. The stack pointer is then at the
 * signal frame's ucontext that `graft attach` wrote (16-byte aligned), exactly as glibc's
 * __restore_rt would find it: errno is put back first, then rt_sigreturn restores everything
 * else. Nothing here unwinds: no CFI, and nothing can throw through it. */
    .text
    .globl graft_attach_return
    .hidden graft_attach_return
    .type graft_attach_return, @function
graft_attach_return:
    call graft_attach_restore_errno
    movl $15, %eax          /* SYS_rt_sigreturn */
    syscall
    ud2
    .size graft_attach_return, .-graft_attach_return

    .section .note.GNU-stack, "", @progbits
