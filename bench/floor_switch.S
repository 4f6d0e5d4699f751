/* floor_switch.S: the reference floor for bench_switch — a switch that saves only the
 * callee-saved general-purpose registers and nothing else (no FPU/SIMD control words, no
 * d8-d15). It is not ABI-complete; it only tells how fast a bare switch can be here. */
#if defined(__x86_64__)
    .text
    .globl  floor_switch
    .type   floor_switch, @function
    .p2align 4
floor_switch:
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .size   floor_switch, .-floor_switch

    .globl  floor_boot
    .type   floor_boot, @function
floor_boot:
    call    floor_entry
    ud2
    .size   floor_boot, .-floor_boot
    .section .note.GNU-stack,"",@progbits
#elif defined(__aarch64__)
    .text
    .globl  floor_switch
    .type   floor_switch, %function
    .p2align 4
floor_switch:
    sub     sp, sp, #96
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    add     sp, sp, #96
    ret
    .size   floor_switch, .-floor_switch

    .globl  floor_boot
    .type   floor_boot, %function
floor_boot:
    bl      floor_entry
    brk     #0
    .size   floor_boot, .-floor_boot
    .section .note.GNU-stack,"",%progbits
#endif
