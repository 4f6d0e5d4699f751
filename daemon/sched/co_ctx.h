/* co_ctx: the bare machine context switch under the coroutine runtime.
 * One implementation is compiled in, chosen at configure time (CORO_CTX): assembly for
 * x86_64 or aarch64, or a portable sigsetjmp/siglongjmp fallback bootstrapped with ucontext.
 * None makes a system call per switch (swapcontext saves the signal mask with one). */
#ifndef CO_CTX_H
#define CO_CTX_H

#include <stddef.h>

#if defined(CO_CTX_PORTABLE)
#include <setjmp.h>
typedef struct co_ctx {
    sigjmp_buf jb;
} co_ctx;
#else
/* The assembly switch pushes the callee-saved registers (and the FPU/SIMD control words)
 * on the stack being left and keeps only the stack pointer here. */
typedef struct co_ctx {
    void *sp;
} co_ctx;
#endif

/* Entry point of a new context. It must never return: a coroutine ends by switching away
 * for the last time. */
typedef void (*co_ctx_entry)(void *arg);

/* Prepare `ctx` so that the first switch to it calls entry(arg) on the stack
 * [stack, stack + size). Returns 0 or a negative errno. */
int co_ctx_make(co_ctx *ctx, void *stack, size_t size, co_ctx_entry entry, void *arg);

/* Save the running context in `from` and resume `to`. Returns when something switches
 * back to `from`. */
void co_ctx_switch(co_ctx *from, co_ctx *to);

/* Name of the compiled-in implementation ("x86_64", "aarch64" or "portable"). */
const char *co_ctx_impl(void);

#endif
