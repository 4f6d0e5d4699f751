/* co_ctx.c: building the first frame of a new context for the assembly switches.
 * The frame mirrors what co_ctx_switch pops (see the .S files): the first switch to the
 * context "returns" into co_ctx_boot, which calls entry(arg). The FPU/SIMD control words
 * are copied from the creator so a coroutine starts with the loop thread's settings. */
#include "co_ctx.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

void co_ctx_boot(void); /* in the .S file; never called from C */

#if defined(__x86_64__)
#define CO_CTX_FRAME 64 /* fpu words, six registers, return address */
#elif defined(__aarch64__)
#define CO_CTX_FRAME 176
#else
#error "no assembly context switch for this architecture; configure with -DCORO_CTX=portable"
#endif

int co_ctx_make(co_ctx *ctx, void *stack, size_t size, co_ctx_entry entry, void *arg)
{
    if (!ctx || !stack || !entry || size < 2 * CO_CTX_FRAME)
        return -EINVAL;

    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* After the pops and `ret`, rsp == top - 16, 16-byte aligned as a call site needs. */
    uint64_t *sp = (uint64_t *)(top - 16 - CO_CTX_FRAME);
    memset(sp, 0, CO_CTX_FRAME);
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    memcpy((char *)sp, &mxcsr, sizeof mxcsr);
    memcpy((char *)sp + 4, &fpucw, sizeof fpucw);
    sp[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
    sp[5] = (uint64_t)(uintptr_t)entry; /* rbx */
    sp[6] = 0;                          /* rbp */
    sp[7] = (uint64_t)(uintptr_t)co_ctx_boot;
    ctx->sp = sp;
#else
    uint64_t *sp = (uint64_t *)(top - CO_CTX_FRAME);
    memset(sp, 0, CO_CTX_FRAME);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp[0] = (uint64_t)(uintptr_t)entry; /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;   /* x20 */
    sp[10] = 0;                         /* fp */
    sp[11] = (uint64_t)(uintptr_t)co_ctx_boot; /* lr */
    sp[20] = fpcr;
    ctx->sp = sp;
#endif
    return 0;
}

const char *co_ctx_impl(void)
{
#if defined(__x86_64__)
    return "x86_64";
#else
    return "aarch64";
#endif
}
