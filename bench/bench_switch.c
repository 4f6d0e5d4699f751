/* bench_switch: nanoseconds per context switch, median of runs.
 *   gpr_only   — a switch saving only callee-saved GPRs (floor_switch.S): not ABI-complete,
 *                shown so the price of the FPU/SIMD control words is visible
 *   co_ctx     — corod's bare assembly switch, ABI-complete: the floor for the runtime
 *   runtime    — the runtime's own switch path: co__resume into a started coroutine and
 *                co__yield_to_loop back (current-task and guard-stack bookkeeping, ASan
 *                hooks when built with them), without the run queue
 *   yield      — a whole scheduler turn per coroutine: co_sleep(0) with 1000 coroutines
 *                (run queue, resume and suspend; the loop's poll is amortised over them)
 * Usage: bench_switch [--json] [--runs N] [--switches N] */
#include <stdint.h>

#include "bench_util.h"
#include "co.h"
#include "co_ctx.h"
#include "co_internal.h" /* the runtime switch path, measured without the queue */

typedef struct floor_ctx {
    void *sp;
} floor_ctx;
void floor_switch(floor_ctx *from, floor_ctx *to);

static floor_ctx f_main, f_co;
static co_ctx c_main, c_co;

void floor_boot(void);
void floor_entry(void);

void floor_entry(void)
{
    for (;;)
        floor_switch(&f_co, &f_main);
}

/* First frame for floor_switch: the registers it pops, then floor_boot as the return
 * address, laid so the stack is 16-byte aligned at floor_boot's call. */
static void floor_make(floor_ctx *c, void *stack, size_t size)
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    uint64_t *sp = (uint64_t *)(top - 16 - 56);
    memset(sp, 0, 56);
    sp[6] = (uint64_t)(uintptr_t)floor_boot;
#else
    uint64_t *sp = (uint64_t *)(top - 96);
    memset(sp, 0, 96);
    sp[11] = (uint64_t)(uintptr_t)floor_boot; /* x30 */
#endif
    c->sp = sp;
}

static void co_entry(void *arg)
{
    (void)arg;
    for (;;)
        co_ctx_switch(&c_co, &c_main);
}

static double run_floor(long rounds)
{
    double t0 = bench_now();
    for (long i = 0; i < rounds; i++)
        floor_switch(&f_main, &f_co);
    return (bench_now() - t0) * 1e9 / (2.0 * (double)rounds);
}

static double run_co(long rounds)
{
    double t0 = bench_now();
    for (long i = 0; i < rounds; i++)
        co_ctx_switch(&c_main, &c_co);
    return (bench_now() - t0) * 1e9 / (2.0 * (double)rounds);
}

typedef struct raw {
    co_sched *s;
    volatile int stop;
} raw;

static int raw_body(void *arg)
{
    raw *r = arg;
    co_task *self = co_current();
    while (!r->stop)
        co__yield_to_loop(r->s, self, 0);
    return co_sleep(0); /* leave through a normal await so the task ends normally */
}

static double run_runtime(long rounds)
{
    uv_loop_t loop;
    raw r = { 0 };
    uv_loop_init(&loop);
    co_sched_new(&loop, NULL, &r.s);
    co_task *t;
    co_spawn(r.s, raw_body, &r, NULL, &t);
    uv_run(&loop, UV_RUN_NOWAIT); /* first step: stack, context, first yield */
    double t0 = bench_now();
    for (long i = 0; i < rounds; i++)
        co__resume(r.s, t);
    double ns = (bench_now() - t0) * 1e9 / (2.0 * (double)rounds);
    r.stop = 1;
    co__resume(r.s, t);
    uv_run(&loop, UV_RUN_DEFAULT);
    co_task_unref(t);
    co_sched_free(r.s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return ns;
}

typedef struct yielders {
    long per;
} yielders;

static int yield_body(void *arg)
{
    yielders *y = arg;
    for (long i = 0; i < y->per; i++)
        co_sleep(0);
    return 0;
}

static double run_yield(long total)
{
    uv_loop_t loop;
    co_sched *s;
    uv_loop_init(&loop);
    co_sched_new(&loop, NULL, &s);
    const int n = 1000;
    yielders y = { .per = total / n };
    for (int i = 0; i < n; i++)
        co_spawn(s, yield_body, &y, NULL, NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* start them all: stacks mapped outside the timing */
    double t0 = bench_now();
    uv_run(&loop, UV_RUN_DEFAULT);
    double ns = (bench_now() - t0) * 1e9 / ((double)y.per * n);
    co_sched_free(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return ns;
}

int main(int argc, char **argv)
{
    bench_parse_common(argc, argv);
    int runs = 7;
    long rounds = 5000000;
    for (int i = 1; i < argc - 1; i++) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--switches"))
            rounds = atol(argv[i + 1]) / 2;
    }
    if (runs < 1 || runs > 101 || rounds < 1) {
        fprintf(stderr, "bench_switch: --runs 1..101, --switches >= 2\n");
        return 2;
    }
    size_t sz = 64 * 1024;
    void *s1 = malloc(sz), *s2 = malloc(sz);
    floor_make(&f_co, s1, sz);
    co_ctx_make(&c_co, s2, sz, co_entry, NULL);

    double fl[101], co[101], rt[101], yl[101];
    run_floor(rounds / 10), run_co(rounds / 10), run_runtime(rounds / 10); /* warm up */
    for (int r = 0; r < runs; r++) {
        /* interleaved, so drift in a noisy VM hits all three alike */
        fl[r] = run_floor(rounds);
        co[r] = run_co(rounds);
        rt[r] = run_runtime(rounds);
    }
    for (int r = 0; r < runs; r++)
        yl[r] = run_yield(2000000);
    double mf = bench_median(fl, runs), mc = bench_median(co, runs);
    double mr = bench_median(rt, runs), my = bench_median(yl, runs);
    printf("# context switch (%s), median of %d runs of %ld switches\n", co_ctx_impl(), runs, 2 * rounds);
    bench_report("switch.gpr_only_ns", mf, "ns/switch (not ABI-complete)");
    bench_report("switch.co_ctx_ns", mc, "ns/switch (bare asm, ABI-complete)");
    bench_report("switch.runtime_ns", mr, "ns/switch (resume/suspend path)");
    bench_report("switch.runtime_over_co_ctx", mr / mc, "x");
    bench_report("switch.co_ctx_over_gpr_only", mc / mf, "x (price of the FPU/SIMD control words)");
    bench_report("switch.yield_turn_ns", my, "ns/yield (1000 coroutines, co_sleep(0))");
    free(s1);
    free(s2);
    return 0;
}
