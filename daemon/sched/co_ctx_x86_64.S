/* co_ctx_x86_64.S: context switch for the x86_64 System V ABI.
 * Callee-saved state is rbx, rbp, r12-r15, rsp, the MXCSR control bits and the x87
 * control word (SysV ABI 3.2.1); everything else a caller already assumes clobbered.
 * The switch pushes that state on the stack it leaves, stores rsp in *from, loads
 * rsp from *to and pops the other context's state. Frame after the pushes:
 *   [sp+0]  mxcsr (4 bytes) | x87 cw (2 bytes) | pad
 *   [sp+8]  r15  [sp+16] r14  [sp+24] r13  [sp+32] r12  [sp+40] rbx  [sp+48] rbp
 *   [sp+56] return address
 */
    .text
    .globl  co_ctx_switch
    .type   co_ctx_switch, @function
    .p2align 4
co_ctx_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   co_ctx_switch, .-co_ctx_switch

/* First code run on a new stack: co_ctx_make left entry in rbx and its argument in r12.
 * rbp is cleared and rip marked undefined so debuggers stop unwinding here. */
    .globl  co_ctx_boot
    .hidden co_ctx_boot
    .type   co_ctx_boot, @function
    .p2align 4
co_ctx_boot:
    .cfi_startproc
    .cfi_undefined rip
    xorl    %ebp, %ebp
    movq    %r12, %rdi
    callq   *%rbx
    ud2                     /* entry must never return */
    .cfi_endproc
    .size   co_ctx_boot, .-co_ctx_boot

    .section .note.GNU-stack,"",@progbits
