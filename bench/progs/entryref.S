/* Reference entries for comparison with graft's, built only inside bench/ (callcost):
 *   f_jmp5  the entry is one `jmp rel32` straight to the new function: the cheapest possible
 *           redirect (what DESIGN.md means by "one jump"; graft cannot write 5 bytes atomically).
 *   f_g2    graft's own layout reproduced by hand: a 2-byte `jmp` gate back into the 14-byte
 *           prefix, whose `jmp *-14(%rip)` goes through the 8-byte pointer to the new function.
 * Both land in f_ref_new (x + 2); the original body is x + 1 like every callcost function. */
    .text
    .p2align 4
    .globl f_ref_new
    .type f_ref_new, @function
f_ref_new:
    .cfi_startproc
    leaq 2(%rdi), %rax
    ret
    .cfi_endproc
    .size f_ref_new, . - f_ref_new

    .p2align 4
    .globl f_jmp5
    .type f_jmp5, @function
f_jmp5:
    .cfi_startproc
    .byte 0xe9
    .long f_ref_new - (. + 4)
    leaq 1(%rdi), %rax
    ret
    .cfi_endproc
    .size f_jmp5, . - f_jmp5

    .p2align 4
    .globl ref_g2_slot
ref_g2_slot:
    .quad 0                                   /* set at start-up: no text relocation */
    .byte 0xff, 0x25, 0xf2, 0xff, 0xff, 0xff  /* jmp *-14(%rip) */
    .globl f_g2
    .type f_g2, @function
f_g2:
    .cfi_startproc
    .byte 0xeb, 0xf8                          /* jmp f_g2 - 6 */
    leaq 1(%rdi), %rax
    ret
    .cfi_endproc
    .size f_g2, . - f_g2

    .section .note.GNU-stack, "", @progbits
