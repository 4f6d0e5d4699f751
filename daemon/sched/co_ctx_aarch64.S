/* co_ctx_aarch64.S: context switch for AAPCS64.
 * Callee-saved state is x19-x28, fp (x29), lr (x30), sp and the low 64 bits of v8-v15
 * (d8-d15). FPCR holds the rounding mode and flush-to-zero controls that a caller
 * expects to find unchanged, so it travels with the context too; FPSR holds only
 * cumulative status flags and does not.
 * Frame pushed on the stack being left (176 bytes, 16-byte aligned):
 *   [sp+0]   x19 x20   [sp+16]  x21 x22   [sp+32]  x23 x24   [sp+48] x25 x26
 *   [sp+64]  x27 x28   [sp+80]  fp  lr    [sp+96]  d8  d9    [sp+112] d10 d11
 *   [sp+128] d12 d13   [sp+144] d14 d15   [sp+160] fpcr pad
 */
    .text
    .globl  co_ctx_switch
    .type   co_ctx_switch, %function
    .p2align 4
co_ctx_switch:
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
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
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    add     sp, sp, #176
    ret
    .size   co_ctx_switch, .-co_ctx_switch

/* First code run on a new stack: co_ctx_make left entry in x19 and its argument in x20;
 * lr points here, fp is zero so unwinders stop. */
    .globl  co_ctx_boot
    .hidden co_ctx_boot
    .type   co_ctx_boot, %function
    .p2align 4
co_ctx_boot:
    mov     x0, x20
    blr     x19
    brk     #0                  /* entry must never return */
    .size   co_ctx_boot, .-co_ctx_boot

    .section .note.GNU-stack,"",%progbits
