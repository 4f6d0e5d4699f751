/* test_table: the task table's failure paths, by failing allocations one at a time, as
 * libuv's test-loop-oom.c does — the Nth allocation of a submit fails, for N = 1, 2, …
 * until the submit succeeds; each failure must answer `internal` and leave nothing
 * changed (no record, no count, no group, no account), and the ASan and valgrind passes
 * see that each exit freed what it took. Then the same for a job's start: each failure
 * ends that one task, and the daemon goes on.
 *
 * The project's libraries call malloc and friends through -Wl,--wrap (tests/
 * CMakeLists.txt); what libuv and msgpack-c allocate is theirs and is not failed. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "co.h"
#include "srv_table.h"

/* ---- the allocator, failing on demand ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t k);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t k);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long fail_at = -1; /* the allocation (counted from 0) that fails; -1: none */
static long allocs;

static bool fail_now(void)
{
    return fail_at >= 0 && allocs++ == fail_at;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t k) { return fail_now() ? NULL : __real_calloc(n, k); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now() ? NULL : __real_strndup(s, n); }

static void arm(long n)
{
    allocs = 0;
    fail_at = n;
}

static void disarm(void)
{
    fail_at = -1;
}

/* ---- fixture ---- */

typedef struct fixture {
    uv_loop_t loop;
    co_sched *s;
    srv_table *t;
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/corod-table-XXXXXX");
    if (!mkdtemp(f->dir) || uv_loop_init(&f->loop) < 0 || co_sched_new(&f->loop, NULL, &f->s) < 0)
        return -1;
    srv_limits l = { .output_dir = f->dir };
    if (srv_table_new(f->s, &l, &f->t) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    srv_table_free(f->t);
    while (uv_run(&f->loop, UV_RUN_NOWAIT)) {
    }
    assert_int_equal(co_sched_live(f->s), 0);
    assert_int_equal(co_sched_free(f->s), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The params map of a submit, decoded as the server decodes it. */
typedef struct params {
    msgpack_sbuffer sb;
    msgpack_unpacked u;
} params;

static void params_init(params *p, void (*pack)(msgpack_packer *pk))
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p->sb, msgpack_sbuffer_write);
    pack(&pk);
    msgpack_unpacked_init(&p->u);
    assert_int_equal(msgpack_unpack_next(&p->u, p->sb.data, p->sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
}

static void params_free(params *p)
{
    msgpack_unpacked_destroy(&p->u);
    msgpack_sbuffer_destroy(&p->sb);
}

static void str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* {kind: sleep, args: {seconds: 0, result: "r"}, name, group: "fresh", after: [1]} */
static void pack_sleep(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    str(pk, "kind"), str(pk, "sleep");
    str(pk, "args");
    msgpack_pack_map(pk, 2);
    str(pk, "seconds"), msgpack_pack_int(pk, 0);
    str(pk, "result"), str(pk, "r");
    str(pk, "name"), str(pk, "a name");
    str(pk, "group"), str(pk, "fresh");
    str(pk, "after");
    msgpack_pack_array(pk, 1);
    msgpack_pack_uint64(pk, 1);
}

/* {kind: gather, args: {ids: [1, 1]}} */
static void pack_gather(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    str(pk, "kind"), str(pk, "gather");
    str(pk, "args");
    msgpack_pack_map(pk, 1);
    str(pk, "ids");
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_uint64(pk, 1);
}

/* {kind: exec, args: {argv: [true, x], env: {A: b}, cwd: /, stdin: "in"}} */
static void pack_exec(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    str(pk, "kind"), str(pk, "exec");
    str(pk, "args");
    msgpack_pack_map(pk, 4);
    str(pk, "argv");
    msgpack_pack_array(pk, 2);
    str(pk, "true"), str(pk, "x");
    str(pk, "env");
    msgpack_pack_map(pk, 1);
    str(pk, "PATH"), str(pk, "/usr/bin:/bin");
    str(pk, "cwd"), str(pk, "/");
    str(pk, "stdin"), str(pk, "in");
}

static size_t count_records(srv_table *t)
{
    size_t n = 0;
    for (srv_rec *r = srv_table_first(t, 0); r; r = srv_rec_next(t, r, 0))
        n++;
    return n;
}

static size_t count_groups(srv_table *t)
{
    size_t n = 0;
    for (srv_group *g = srv_table_groups(t); g; g = srv_group_next(t, g))
        n++;
    return n;
}

/* Submit with the Nth allocation failing, N = 0, 1, …, until it succeeds: every failure
 * says `internal` and changes nothing. Returns the record, armed. */
static srv_rec *sweep_submit(fixture *f, void (*pack)(msgpack_packer *pk), long *tries)
{
    params p;
    params_init(&p, pack);
    size_t recs = count_records(f->t), groups = count_groups(f->t);
    srv_rec *r = NULL;
    cp_error err;
    long n;
    for (n = 0;; n++) {
        arm(n);
        int rc = srv_table_submit(f->t, 1000, &p.u.data, &r, &err);
        disarm();

        if (rc == 0)
            break;
        assert_int_equal(rc, -EINVAL);
        assert_string_equal(err.code, CP_INTERNAL);
        assert_int_equal(count_records(f->t), recs);
        assert_int_equal(count_groups(f->t), groups);
        assert_true(n < 1000);
    }
    assert_true(n > 2); /* a sweep that failed nothing tested nothing */
    assert_int_equal(count_records(f->t), recs + 1);
    *tries = n;
    params_free(&p);
    srv_table_arm(f->t, r);
    return r;
}

static void run_until_done(fixture *f, srv_rec *r)
{
    srv_rec_ref(r);
    while (!srv_rec_terminal(r))
        uv_run(&f->loop, UV_RUN_ONCE);
    srv_rec_unref(r);
}

/* {kind: sleep, args: {seconds: 0}}: task 1, which the others name. */
static void pack_plain(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    str(pk, "kind"), str(pk, "sleep");
    str(pk, "args");
    msgpack_pack_map(pk, 1);
    str(pk, "seconds"), msgpack_pack_int(pk, 0);
}

static void test_submit_sweep(void **state)
{
    fixture *f = *state;
    params p;
    params_init(&p, pack_plain);
    srv_rec *one;
    cp_error err;
    assert_int_equal(srv_table_submit(f->t, 1000, &p.u.data, &one, &err), 0);
    params_free(&p);
    srv_table_arm(f->t, one);
    run_until_done(f, one);
    long tries;
    srv_rec *first = sweep_submit(f, pack_sleep, &tries);
    print_message("sleep: %ld allocations failed in turn\n", tries);
    run_until_done(f, first);
    assert_string_equal(srv_rec_state(first), "succeeded");
    srv_rec *g = sweep_submit(f, pack_gather, &tries);
    print_message("gather: %ld\n", tries);
    run_until_done(f, g);
    assert_string_equal(srv_rec_state(g), "succeeded");
    srv_rec *x = sweep_submit(f, pack_exec, &tries);
    print_message("exec: %ld\n", tries);
    run_until_done(f, x);
    assert_string_equal(srv_rec_state(x), "succeeded");
}

/* A job's start, from its record's arming to the program's end, with the Nth allocation
 * failing: the task ends (succeeded, or failed with a reason), nothing leaks, and the next
 * submit is served. */
static void test_exec_start_sweep(void **state)
{
    fixture *f = *state;
    params p;
    params_init(&p, pack_exec);
    long n;
    int failed = 0;
    for (n = 0; n < 1000; n++) {
        srv_rec *r;
        cp_error err;
        assert_int_equal(srv_table_submit(f->t, 1000, &p.u.data, &r, &err), 0);
        srv_rec_ref(r);
        arm(n);

        srv_table_arm(f->t, r);
        while (!srv_rec_terminal(r))
            uv_run(&f->loop, UV_RUN_ONCE);
        bool reached = allocs > n; /* the Nth allocation happened: it failed */
        disarm();
        const char *st = srv_rec_state(r);

        assert_true(!strcmp(st, "succeeded") || !strcmp(st, "failed"));
        failed += !strcmp(st, "failed");
        srv_rec_unref(r);
        srv_table_trim(f->t);
        if (!reached)
            break; /* every allocation of a start has failed once */
    }
    print_message("exec start: %ld allocations failed in turn, %d tasks failed for it\n", n, failed);
    assert_true(n > 3 && n < 1000);
    assert_true(failed > 0);
    params_free(&p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as corod: a job gone before its stdin is written */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_start_sweep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
