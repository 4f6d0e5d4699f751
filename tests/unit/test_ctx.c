/* test_ctx: the bare context switch (built twice: the configured implementation and the
 * portable fallback). Switches must resume exactly where they left off, keep callee-saved
 * state — including the floating-point rounding mode, which lives in MXCSR/x87 CW on
 * x86_64 and FPCR on aarch64 — and start new contexts on an aligned stack. */
#include <fenv.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "co_ctx.h"

static co_ctx main_ctx, co_ctx_a;

static void pingpong_entry(void *arg)
{
    int *counter = arg;
    for (;;) {
        (*counter)++;
        co_ctx_switch(&co_ctx_a, &main_ctx);
    }
}

static void test_pingpong(void **state)
{
    (void)state;
    size_t sz = 64 * 1024;
    void *stack = malloc(sz);
    int counter = 0;
    assert_int_equal(co_ctx_make(&co_ctx_a, stack, sz, pingpong_entry, &counter), 0);
    for (int i = 1; i <= 100000; i++) {
        co_ctx_switch(&main_ctx, &co_ctx_a);
        assert_int_equal(counter, i);
    }
    free(stack);
}

/* Overwrite every callee-saved register the compiler lets us name, so that main's
 * values survive only if the switch saved and restored them. */
static inline void clobber_callee_saved(void)
{
#if defined(__x86_64__) && !defined(CO_CTX_PORTABLE)
    __asm__ volatile("xorl %%ebx, %%ebx\n\txorl %%r12d, %%r12d\n\txorl %%r13d, %%r13d\n\t"
                     "xorl %%r14d, %%r14d\n\txorl %%r15d, %%r15d"
                     ::: "rbx", "r12", "r13", "r14", "r15");
#elif defined(__aarch64__) && !defined(CO_CTX_PORTABLE)
    __asm__ volatile("mov x19, xzr\n\tmov x20, xzr\n\tmov x21, xzr\n\tmov x22, xzr\n\t"
                     "mov x23, xzr\n\tmov x24, xzr\n\tmov x25, xzr\n\tmov x26, xzr\n\t"
                     "mov x27, xzr\n\tmov x28, xzr\n\tfmov d8, xzr\n\tfmov d9, xzr\n\t"
                     "fmov d10, xzr\n\tfmov d11, xzr\n\tfmov d12, xzr\n\tfmov d13, xzr\n\t"
                     "fmov d14, xzr\n\tfmov d15, xzr"
                     ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
                       "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15");
#endif
}

/* Locals live in callee-saved registers across the switch when optimised; a corrupted
 * register shows up as a wrong sum. */
static void regs_entry(void *arg)
{
    volatile uint64_t *out = arg;
    uint64_t a = 0x1111, b = 0x2222, c = 0x3333, d = 0x4444, e = 0x5555, f = 0x6666;
    for (int i = 0;; i++) {
        a += 1, b += 2, c += 3, d += 4, e += 5, f += 6;
        *out = a ^ (b << 1) ^ (c << 2) ^ (d << 3) ^ (e << 4) ^ (f << 5);
        clobber_callee_saved();
        co_ctx_switch(&co_ctx_a, &main_ctx);
    }
}

static void test_callee_saved(void **state)
{
    (void)state;
    size_t sz = 64 * 1024;
    void *stack = malloc(sz);
    volatile uint64_t out = 0;
    uint64_t a = 0x1111, b = 0x2222, c = 0x3333, d = 0x4444, e = 0x5555, f = 0x6666;
    double x = 1.5, y = 2.25;
    assert_int_equal(co_ctx_make(&co_ctx_a, stack, sz, regs_entry, (void *)&out), 0);
    for (int i = 0; i < 1000; i++) {
        a += 1, b += 2, c += 3, d += 4, e += 5, f += 6;
        x *= 1.0001, y += x;
        co_ctx_switch(&main_ctx, &co_ctx_a);
        assert_true(out == (a ^ (b << 1) ^ (c << 2) ^ (d << 3) ^ (e << 4) ^ (f << 5)));
    }
    assert_true(x > 1.5 && y > 2.25);
    free(stack);
}

static void fenv_entry(void *arg)
{
    int *seen = arg;
    *seen = fegetround();
    fesetround(FE_UPWARD); /* the coroutine changes its rounding mode... */
    co_ctx_switch(&co_ctx_a, &main_ctx);
    *seen = fegetround(); /* ...and finds it again when resumed */
    co_ctx_switch(&co_ctx_a, &main_ctx);
    abort();
}

static void test_fpu_control_preserved(void **state)
{
    (void)state;
    size_t sz = 64 * 1024;
    void *stack = malloc(sz);
    int seen = -1;
    fesetround(FE_TONEAREST);
    assert_int_equal(co_ctx_make(&co_ctx_a, stack, sz, fenv_entry, &seen), 0);
    co_ctx_switch(&main_ctx, &co_ctx_a);
    assert_int_equal(seen, FE_TONEAREST);   /* starts with its creator's settings */
    assert_int_equal(fegetround(), FE_TONEAREST); /* main's mode was restored */
    co_ctx_switch(&main_ctx, &co_ctx_a);
    assert_int_equal(seen, FE_UPWARD);
    assert_int_equal(fegetround(), FE_TONEAREST);
    free(stack);
}

static void align_entry(void *arg)
{
    uintptr_t *out = arg;
    /* A 16-byte aligned local proves the ABI's stack alignment at entry. */
    _Alignas(16) volatile char probe[16];
    probe[0] = 1;
    *out = (uintptr_t)&probe[0];
    co_ctx_switch(&co_ctx_a, &main_ctx);
    abort();
}

static void test_alignment_and_bounds(void **state)
{
    (void)state;
    size_t sz = 64 * 1024 + 8; /* a misaligned top must still give an aligned frame */
    char *stack = malloc(sz);
    uintptr_t where = 0;
    assert_int_equal(co_ctx_make(&co_ctx_a, stack, sz, align_entry, &where), 0);
    co_ctx_switch(&main_ctx, &co_ctx_a);
    assert_int_equal(where % 16, 0);
    assert_true(where > (uintptr_t)stack && where < (uintptr_t)stack + sz);
    free(stack);
}

static void test_make_rejects_bad_args(void **state)
{
    (void)state;
    char small[64];
    co_ctx c;
    assert_int_equal(co_ctx_make(&c, small, sizeof small, align_entry, NULL), -22);
    assert_int_equal(co_ctx_make(&c, NULL, 65536, align_entry, NULL), -22);
    assert_int_equal(co_ctx_make(NULL, small, sizeof small, align_entry, NULL), -22);
    assert_non_null(co_ctx_impl());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pingpong),
        cmocka_unit_test(test_callee_saved),
        cmocka_unit_test(test_fpu_control_preserved),
        cmocka_unit_test(test_alignment_and_bounds),
        cmocka_unit_test(test_make_rejects_bad_args),
    };
    return cmocka_run_group_tests_name(co_ctx_impl(), tests, NULL, NULL);
}
