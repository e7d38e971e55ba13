/* Functions whose entry graft must refuse to rewrite, each for its own reason
 * (tests/scenarios/ordinary/ordinary_test.cpp). Hand-written: compilers do not reliably emit
 * these shapes. */
        .text

/* 3 bytes: shorter than the 5-byte jump. */
        .globl  tiny_ret
        .type   tiny_ret, @function
tiny_ret:
        xorl    %eax, %eax
        ret
        .size   tiny_ret, .-tiny_ret

/* A loop whose back edge jumps to the function's first instruction: rewritten, each iteration
 * would enter graft as if it were a new call. */
        .p2align 4
        .globl  loop_entry
        .type   loop_entry, @function
loop_entry:
        testl   %edi, %edi
        je      1f
        subl    $1, %edi
        jmp     loop_entry
1:      movl    %edi, %eax
        ret
        .size   loop_entry, .-loop_entry

/* A switch whose jump table sends case 0 to +2, inside the bytes the jump would cover. */
        .p2align 4
        .globl  table_entry
        .type   table_entry, @function
table_entry:
        xorl    %eax, %eax
.Lcase0:
        addl    $1, %eax
        cmpl    $1, %edi
        ja      .Ldone
        movl    %edi, %ecx
        movl    $2, %edi
        leaq    .Ltable(%rip), %rdx
        movslq  (%rdx,%rcx,4), %rcx
        addq    %rdx, %rcx
        jmp     *%rcx
.Ldone:
        ret
        .section .rodata
        .p2align 2
.Ltable:
        .long   .Lcase0-.Ltable
        .long   .Ldone-.Ltable
        .text
        .size   table_entry, .-table_entry

/* A function whose split-off .cold part (as gcc names it) jumps back into the bytes the jump
 * would cover: only a scan of the .cold part sees it. */
        .p2align 4
        .globl  cold_entry
        .type   cold_entry, @function
cold_entry:
        pushq   %rbx
        movl    %edi, %ebx
.Lcold_back:
        testl   %edi, %edi
        js      cold_entry.cold
        leal    1(%rbx), %eax
        popq    %rbx
        ret
        .size   cold_entry, .-cold_entry

        .type   cold_entry.cold, @function
cold_entry.cold:
        xorl    %edi, %edi
        xorl    %ebx, %ebx
        jmp     .Lcold_back
        .size   cold_entry.cold, .-cold_entry.cold

        .section .note.GNU-stack,"",@progbits
