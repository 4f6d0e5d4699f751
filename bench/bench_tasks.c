/* bench_tasks: task throughput and memory of the runtime.
 *   tasks.floor_per_s       — the bare floor: pooled stack + context make + switch in/out,
 *                             no task record, no scheduler
 *   tasks.coroutine_per_s   — spawn + run + complete of trivial coroutine tasks
 *   tasks.sleep0_per_s      — stackless co_sleep_task(0) tasks, spawn to completion
 *   Both spawn in batches (--batch, default 10000) and run each batch to completion, as
 *   bench/peers/asyncio_tasks.py does; one batch of 1M mostly measures page faults.
 *   mem.stackless_B@N       — resident bytes per pending stackless sleep task
 *   mem.coroutine_B@N       — resident bytes per coroutine suspended in co_sleep
 * Each guarded stack is 2 memory maps: N coroutines need vm.max_map_count > 2N + reserve.
 * With --raise-map-count (root) it is raised for the run and restored afterwards;
 * without, sizes that do not fit are reported as skipped.
 * Each memory figure is taken in a forked child, on a heap nothing else has used.
 * Usage: bench_tasks [--json] [--runs N] [--n N] [--batch N] [--mem N,N,...]
 *                    [--raise-map-count] */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>

#include "bench_util.h"
#include "co.h"
#include "co_ctx.h"

static long map_count_orig;

static long read_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 0;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

static int write_map_count(long v)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "w");
    if (!f)
        return -errno;
    int rc = fprintf(f, "%ld\n", v) > 0 ? 0 : -EIO;
    if (fclose(f) != 0)
        rc = -errno;
    return rc;
}

static void restore_map_count(void)
{
    if (map_count_orig)
        write_map_count(map_count_orig);
}

/* ---- floor ---- */

static co_ctx f_main, f_co;

static void floor_body(void *arg)
{
    (void)arg;
    co_ctx_switch(&f_co, &f_main);
}

static double run_floor(long n)
{
    co_stack_pool *p;
    co_stack_pool_new(&p, NULL);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        co_stack *s;
        co_stack_acquire(p, NULL, &s);
        co_ctx_make(&f_co, co_stack_base(s), co_stack_size(s), floor_body, NULL);
        co_ctx_switch(&f_main, &f_co);
        co_stack_release(p, s);
    }
    double rate = (double)n / (bench_now() - t0);
    co_stack_pool_free(p);
    return rate;
}

/* ---- throughput ---- */

typedef struct env {
    uv_loop_t loop;
    co_sched *s;
} env;

static void env_open(env *e)
{
    uv_loop_init(&e->loop);
    if (co_sched_new(&e->loop, NULL, &e->s) < 0) {
        fprintf(stderr, "bench_tasks: cannot create a scheduler\n");
        exit(1);
    }
}

static void env_close(env *e)
{
    if (co_sched_free(e->s) < 0)
        fprintf(stderr, "bench_tasks: scheduler still busy at close\n");
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
}

static int trivial(void *arg)
{
    (void)arg;
    return 0;
}

static long batch = 10000;

static int spawn_trivial(co_sched *s)
{
    return co_spawn(s, trivial, NULL, NULL, NULL);
}

static int spawn_sleep0(co_sched *s)
{
    return co_sleep_task(s, 0, NULL, NULL, NULL);
}

/* Tasks per second: n tasks from `spawn`, in batches each run to completion. */
static double run_batched(long n, int (*spawn)(co_sched *s))
{
    env e;
    env_open(&e);
    double t0 = bench_now();
    for (long done = 0; done < n; done += batch) {
        for (long i = 0; i < batch && done + i < n; i++)
            spawn(e.s);
        uv_run(&e.loop, UV_RUN_DEFAULT);
    }
    double rate = (double)n / (bench_now() - t0);
    env_close(&e);
    return rate;
}

/* ---- memory ---- */

static int sleep_long(void *arg)
{
    (void)arg;
    co_sleep(100000);
    return 0;
}

static double mem_per_task(long n, int coroutines)
{
    env e;
    env_open(&e);
    co_task **t = malloc((size_t)n * sizeof *t);
    memset(t, 0, (size_t)n * sizeof *t); /* touched before the baseline */
    long rss0 = bench_rss();
    for (long i = 0; i < n; i++) {
        int rc = coroutines ? co_spawn(e.s, sleep_long, NULL, NULL, &t[i])
                            : co_sleep_task(e.s, 100000, NULL, NULL, &t[i]);
        if (rc < 0) {
            fprintf(stderr, "bench_tasks: spawn %ld failed: %s\n", i, co_strerror(rc));
            exit(1);
        }
    }
    if (coroutines)
        uv_run(&e.loop, UV_RUN_NOWAIT); /* each one starts, takes its stack and suspends */
    long rss1 = bench_rss();
    if (coroutines && co_sched_coroutines(e.s) != (size_t)n)
        fprintf(stderr, "bench_tasks: only %zu of %ld coroutines started\n", co_sched_coroutines(e.s), n);
    for (long i = 0; i < n; i++)
        co_task_cancel(t[i], NULL);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    for (long i = 0; i < n; i++)
        co_task_unref(t[i]);
    free(t);
    env_close(&e);
    return (double)(rss1 - rss0) / (double)n;
}

/* mem_per_task in a fresh child process: a heap that earlier runs grew and freed would
 * hide the allocation from RSS. */
static double mem_in_child(long n, int coroutines)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        double v = mem_per_task(n, coroutines);
        ssize_t w = write(pfd[1], &v, sizeof v);
        _exit(w == sizeof v ? 0 : 1);
    }
    close(pfd[1]);
    double v = -1;
    if (pid < 0 || read(pfd[0], &v, sizeof v) != sizeof v)
        v = -1;
    close(pfd[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return v;
}

int main(int argc, char **argv)
{
    bench_parse_common(argc, argv);
    int runs = 5, raise = 0;
    long n = 1000000;
    long mem[8] = { 100000, 1000000 };
    int nmem = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atol(argv[++i]);
        else if (!strcmp(argv[i], "--raise-map-count"))
            raise = 1;
        else if (!strcmp(argv[i], "--mem") && i + 1 < argc) {
            nmem = 0;
            for (char *tok = strtok(argv[++i], ","); tok && nmem < 8; tok = strtok(NULL, ","))
                mem[nmem++] = atol(tok);
        } else if (strcmp(argv[i], "--json")) {
            fprintf(stderr, "usage: bench_tasks [--json] [--runs N] [--n N] [--batch N] [--mem N,N,...] [--raise-map-count]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 101 || n < 1 || batch < 1) {
        fprintf(stderr, "bench_tasks: --runs 1..101, --n >= 1, --batch >= 1\n");
        return 2;
    }
    long maxmem = 0;
    for (int i = 0; i < nmem; i++)
        maxmem = mem[i] > maxmem ? mem[i] : maxmem;
    if (raise) {
        long cur = read_map_count(), need = 2 * maxmem + CO_STACK_MAP_RESERVE + 1024;
        if (cur < need) {
            int rc = write_map_count(need);
            if (rc < 0) {
                fprintf(stderr, "bench_tasks: cannot raise vm.max_map_count: %s\n", strerror(-rc));
                return 1;
            }
            map_count_orig = cur;
            atexit(restore_map_count);
        }
    }

    double v[101];
    printf("# tasks: median of %d runs of %ld tasks each, in batches of %ld\n", runs, n, batch);
    for (int r = 0; r < runs; r++)
        v[r] = run_floor(n);
    bench_report("tasks.floor_per_s", bench_median(v, runs), "tasks/s");
    for (int r = 0; r < runs; r++)
        v[r] = run_batched(n, spawn_trivial);
    bench_report("tasks.coroutine_per_s", bench_median(v, runs), "tasks/s");
    for (int r = 0; r < runs; r++)
        v[r] = run_batched(n, spawn_sleep0);
    bench_report("tasks.sleep0_per_s", bench_median(v, runs), "tasks/s");

    long maps = read_map_count();
    for (int i = 0; i < nmem; i++) {
        char name[64];
        snprintf(name, sizeof name, "mem.stackless_B@%ld", mem[i]);
        bench_report(name, mem_in_child(mem[i], 0), "bytes/task");
        snprintf(name, sizeof name, "mem.coroutine_B@%ld", mem[i]);
        if (2 * mem[i] + CO_STACK_MAP_RESERVE > maps) {
            printf("# %s skipped: needs vm.max_map_count > %ld (it is %ld); run with --raise-map-count as root\n",
                   name, 2 * mem[i] + CO_STACK_MAP_RESERVE, maps);
            continue;
        }
        bench_report(name, mem_in_child(mem[i], 1), "bytes/coroutine");
    }
    return 0;
}
