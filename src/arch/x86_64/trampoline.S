/* Entry trampolines for patched functions (x86-64 SysV).
 *
 * A patched function's 2-byte gate jumps back into its 14-byte prefix, which holds an 8-byte
 * pointer and `jmp *ptr`. During a transition the pointer names one of the stubs below; the stub
 * loads its index into %r11d and jumps (never calls) to graft_tramp_common, which picks the
 * version this thread must run (its own fast path below, or src/agent/livepatch/selector.cpp's
 * graft_select_fast / graft_select_slow) and jumps there with every argument register restored. No return address is ever
 * rewritten: the patched function returns straight to its caller, so C++ exceptions,
 * pthread_cancel and debuggers see an ordinary stack.
 *
 * The stubs live in this object's text (not in anonymous memory) so that every instruction a
 * thread can be stopped at belongs to a known ELF object with CFI: one FDE covers the whole stub
 * array (the CFA is %rsp+8 at every stub instruction, as at a function entry).
 */
#include "arch/x86_64/selector_layout.h"

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
    .balign GRAFT_STUB_SIZE, 0xcc
    .set i, i+1
    .endr
    .cfi_endproc
    .size graft_stubs_begin, . - graft_stubs_begin
    .globl graft_stubs_end
    .hidden graft_stubs_end
graft_stubs_end:

/* The fast path's own saves: the registers it uses besides %r11. */
.macro fast_save
    pushq %rax
    .cfi_adjust_cfa_offset 8
    pushq %rcx
    .cfi_adjust_cfa_offset 8
    pushq %rdx
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    pushq %rdi
    .cfi_adjust_cfa_offset 8
.endm
.macro fast_restore
    popq %rdi
    .cfi_adjust_cfa_offset -8
    popq %rsi
    .cfi_adjust_cfa_offset -8
    popq %rdx
    .cfi_adjust_cfa_offset -8
    popq %rcx
    .cfi_adjust_cfa_offset -8
    popq %rax
    .cfi_adjust_cfa_offset -8
.endm
/* read_unlock() of the fast path: %edi holds seq + 1 from the lock, %rax the slot. */
.macro fast_unlock
    addl $1, %edi
    movl %edi, GRAFT_SLOT_SEQ(%rax)
    movl $0, GRAFT_SLOT_NEST(%rax)
.endm
/* Leave the fast path for the address in %r11 (five registers were saved). */
.macro fast_leave
    fast_unlock
    fast_restore
    jmp *%r11
    .cfi_adjust_cfa_offset 40
.endm
/* The frame graft_select_fast and the slow path expect: the argument registers, %rax (vector
 * count of a varargs call), %r10 (static chain), and the stub index (%r11) last. */
.macro c_frame_save
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
    pushq %r11
    .cfi_adjust_cfa_offset 8
.endm

    .balign 16
    .globl graft_tramp_common
    .hidden graft_tramp_common
    .type graft_tramp_common, @function
graft_tramp_common:
    .cfi_startproc
    /* Fast path: the selector of src/agent/livepatch/selector.cpp (select()) written out for a thread that
     * owns a slot and is not inside the selector already. It uses %rax, %rcx, %rdx, %rsi, %rdi
     * (saved here: %rax holds the vector count of a varargs call) and %r11 (the stub index, then the
     * address to run); every other register is left alone. Field
     * offsets: selector_layout.h; g_view and the stub table are hidden symbols of this object. Loads on x86-64 are acquire and stores release, which is all
     * the C++ version's atomics ask for; its compiler-only fences need nothing here. */
    fast_save
    movq _ZN5graft6t_slotE@gottpoff(%rip), %rax
    movq %fs:(%rax), %rax                   /* s = t_slot */
    testq %rax, %rax
    jz .Lto_c                               /* first call on this thread: claim a slot in C */
    cmpl $0, GRAFT_SLOT_NEST(%rax)
    jne .Lto_c                              /* nested (a signal handler): the C version */
    /* read_lock(): the owner alone writes nest and seq; membarrier_all() in the agent is the
     * other half of the pair (synchronize_threads, the approval check of try_complete_transition). */
    movl $1, GRAFT_SLOT_NEST(%rax)
    movl GRAFT_SLOT_SEQ(%rax), %edi         /* kept in %edi: the unlock stores it again, so a */
    addl $1, %edi                           /* call waits on one store-to-load forwarding of */
    movl %edi, GRAFT_SLOT_SEQ(%rax)         /* seq from the previous call, not on two */
    leaq graft_stub_table(%rip), %rsi
    movq (%rsi,%r11,8), %rsi                /* fs (idx was zero-extended by the stub's movl) */
    movl _ZN5graft6g_viewE+GRAFT_VIEW_TARGET(%rip), %ecx      /* goal: loaded before gen, initial and epoch */
    /* state = effective_state(s) */
    movq GRAFT_SLOT_WORD(%rax), %rdx
    shrq $8, %rdx                           /* the word's generation (< 2^32) */
    cmpl _ZN5graft6g_viewE+GRAFT_VIEW_GEN(%rip), %edx
    jne .Lold_word
    movzbl GRAFT_SLOT_WORD(%rax), %edx
    subl $1, %edx
.Lhave_state:
    /* Laid out so that a thread already switched, calling a function of the patch in
     * transition, takes no branch until its final jump: every taken branch costs the front end
     * a cycle or more on each call (docs/performance.md, section 1). */
    cmpl %ecx, %edx
    jne .Lnot_goal                          /* pending, or no transition (goal idle) */
.Lpick:
    /* %edx = this thread's state; pick the version (klp_ftrace_handler) */
    movq GRAFT_STACK_TOP(%rsi), %rcx        /* f = fs->top */
    movq GRAFT_STACK_BODY(%rsi), %r11       /* the original, if no version applies */
    testq %rcx, %rcx
    jz .Lunlock
    cmpb $0, GRAFT_FUNC_TRANSITION(%rcx)    /* read after top: the order of its release stores */
    je 5f
    testl %edx, %edx                        /* kUnpatched: the version below */
    je .Lbelow
5:  cmpb $0, GRAFT_FUNC_NOP(%rcx)
    jne .Lunlock
    movq GRAFT_FUNC_NEW(%rcx), %r11
.Lunlock:
    fast_leave

.Lbelow:
    movq GRAFT_FUNC_BELOW(%rcx), %rcx
    testq %rcx, %rcx
    jnz 5b
    jmp .Lunlock

.Lold_word:
    /* The word was set in an earlier transition: the thread is in this one's initial state. */
    movl _ZN5graft6g_viewE+GRAFT_VIEW_INITIAL(%rip), %edx
    jmp .Lhave_state

.Lnot_goal:
    cmpl $-1, %ecx
    je .Lpick                               /* no transition (goal idle) */
    /* A pending thread (state != goal). An approval from the worker names the seq this thread
     * had when its stack was seen clean: it holds if no section began since (seq - 1 now).
     * %r11 serves as a scratch register here: the stub index is read again from fs if needed. */
    movl _ZN5graft6g_viewE+GRAFT_VIEW_EPOCH(%rip), %r11d
    shlq $32, %r11
    leal -1(%rdi), %edx                     /* zero-extends */
    orq %rdx, %r11
    cmpq GRAFT_SLOT_APPROVED(%rax), %r11
    je .Lapproved
    /* Not approved. The slow path (a self-check) when the busy function found by the last one
     * returned (this entry's return-address slot lies at or above its), or when the countdown
     * runs out (the C slow path then reads the cycle counter). */
    leaq 40(%rsp), %rdx                     /* this entry's return-address slot: 5 pushes up */
    cmpq GRAFT_SLOT_BUSY_RA(%rax), %rdx
    jae 8f
    subl $1, GRAFT_SLOT_COUNTDOWN(%rax)
    jb 9f
    /* Still pending: the state is the other one. The pick once more, laid out for the common
     * case of a patching transition (state unpatched, the function in transition): no taken
     * branch but the final jump. */
    movl %ecx, %edx
    xorl $1, %edx
    movq GRAFT_STACK_TOP(%rsi), %rcx
    movq GRAFT_STACK_BODY(%rsi), %r11
    testq %rcx, %rcx
    jz .Lunlock
    cmpb $0, GRAFT_FUNC_TRANSITION(%rcx)
    je 5b
    testl %edx, %edx
    jne 5b
    movq GRAFT_FUNC_BELOW(%rcx), %rcx
    testq %rcx, %rcx
    jz .Lunlock
    cmpb $0, GRAFT_FUNC_NOP(%rcx)
    jne .Lunlock
    movq GRAFT_FUNC_NEW(%rcx), %r11
    fast_leave

.Lapproved:
    /* set_own_state(s, goal): word = (gen << 8) | (goal + 1) */
    movl _ZN5graft6g_viewE+GRAFT_VIEW_GEN(%rip), %r11d
    shlq $8, %r11
    leal 1(%rcx), %edx
    orq %rdx, %r11
    movq %r11, GRAFT_SLOT_WORD(%rax)
    movl %ecx, %edx                         /* switched */
    jmp .Lpick
8:  movl $1, GRAFT_SLOT_SLOW_FORCED(%rax)
9:  movl GRAFT_STACK_STUB(%rsi), %r11d      /* the stub index, for the slow path */
    fast_unlock                             /* then the slow path below */
    fast_restore
    c_frame_save                            /* the slow path's frame, index in %r11 */
    jmp 2f
    .cfi_adjust_cfa_offset -32

.Lto_c:
    fast_restore
    /* The C version: argument registers, %rax and %r10 saved (the stub index last also aligns
     * %rsp to 16 for the call), then graft_select_fast. */
    c_frame_save
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
    leaq 80(%rbx), %rsi     /* the return-address slot: above %rbx and the 72-byte frame */
    movq %rbp, %rdx         /* the caller's %rbp: nothing on the way here changed it */
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
