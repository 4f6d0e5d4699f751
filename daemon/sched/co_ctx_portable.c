/* co_ctx_portable.c: the fallback context switch for architectures without assembly here.
 * ucontext is used once per context, to get onto the new stack and record a sigsetjmp
 * point there; every later switch is sigsetjmp/siglongjmp with savemask = 0, which, unlike
 * swapcontext, does not make a sigprocmask system call. */
#undef _FORTIFY_SOURCE /* __longjmp_chk rejects jumps between stacks */
#include "co_ctx.h"

#include <errno.h>
#include <fenv.h>
#include <stdlib.h>
#include <ucontext.h>

struct co_ctx_bootinfo {
    co_ctx *ctx;
    co_ctx_entry entry;
    void *arg;
    ucontext_t caller;
};

/* makecontext passes only ints; the boot record travels through this instead. */
static __thread struct co_ctx_bootinfo *co_ctx_booting;

static void co_ctx_trampoline(void)
{
    struct co_ctx_bootinfo *b = co_ctx_booting;
    /* Copied to this stack: the boot record dies when co_ctx_make returns. */
    co_ctx_entry entry = b->entry;
    void *arg = b->arg;

    if (sigsetjmp(b->ctx->jb, 0) == 0) {
        ucontext_t self;
        swapcontext(&self, &b->caller);
        abort(); /* never resumed through `self` */
    }
    entry(arg);
    abort(); /* entry must never return */
}

int co_ctx_make(co_ctx *ctx, void *stack, size_t size, co_ctx_entry entry, void *arg)
{
    if (!ctx || !stack || !entry || size < 4096)
        return -EINVAL;

    ucontext_t uc;
    if (getcontext(&uc) < 0)
        return -errno;
    uc.uc_stack.ss_sp = stack;
    uc.uc_stack.ss_size = size;
    uc.uc_link = NULL;
    makecontext(&uc, co_ctx_trampoline, 0);

    struct co_ctx_bootinfo b = { .ctx = ctx, .entry = entry, .arg = arg };
    co_ctx_booting = &b;
    if (swapcontext(&b.caller, &uc) < 0)
        return -errno;
    co_ctx_booting = NULL;
    return 0;
}

void co_ctx_switch(co_ctx *from, co_ctx *to)
{
    /* sigsetjmp keeps no floating-point control state, which a callee must preserve
     * (rounding mode, exception masks): it stays in this frame until we come back. */
    fenv_t env;
    fegetenv(&env);
    if (sigsetjmp(from->jb, 0) == 0)
        siglongjmp(to->jb, 1);
    fesetenv(&env);
}

const char *co_ctx_impl(void)
{
    return "portable";
}
