/* test_task: tasks — coroutine outcomes, cancellation before start and mid-await, the
 * stackless sleep and gather, run timeouts, the stack budget, and scale: 100k stackless
 * sleepers and 10k concurrent coroutines. */
#include <errno.h>

#include "co_test.h"

static int return_42(void *arg)
{
    (void)arg;
    co_value v = co_test_uint_value(42);
    return co_return(&v);
}

static void test_coroutine_result(void **state)
{
    co_env *e = *state;
    co_task *t = co_test_run(e, return_42, NULL);
    assert_int_equal(co_future_state(co_task_future(t)), CO_SUCCEEDED);
    assert_int_equal(co_test_uint_of(co_future_value(co_task_future(t))), 42);
    assert_true(co_task_is_coroutine(t));
    co_task_unref(t);
}

static int fail_explicit(void *arg)
{
    (void)arg;
    return co_fail("bad_input", "x=%d is out of range", 3);
}

static int fail_errno(void *arg)
{
    (void)arg;
    return -EIO;
}

static void test_coroutine_failures(void **state)
{
    co_env *e = *state;
    co_task *t = co_test_run(e, fail_explicit, NULL);
    assert_int_equal(co_future_state(co_task_future(t)), CO_FAILED);
    co_test_assert_error_code(co_task_future(t), "bad_input");
    co_test_assert_str_field(co_future_value(co_task_future(t)), "message", "x=3 is out of range");
    co_task_unref(t);

    t = co_test_run(e, fail_errno, NULL);
    assert_int_equal(co_future_state(co_task_future(t)), CO_FAILED);
    co_test_assert_error_code(co_task_future(t), "error");
    co_task_unref(t);
}

static int must_not_run(void *arg)
{
    *(int *)arg = 1;
    return 0;
}

static void test_cancel_before_start_takes_no_stack(void **state)
{
    co_env *e = *state;
    int ran = 0;
    co_task *t;
    assert_int_equal(co_spawn(e->s, must_not_run, &ran, NULL, &t), 0);
    assert_true(co_task_cancel(t, "changed my mind"));
    assert_false(co_task_cancel(t, "again")); /* already done */
    assert_int_equal(co_future_state(co_task_future(t)), CO_CANCELLED);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(ran, 0);
    assert_int_equal(co_stack_pool_cached(co_sched_stacks(e->s)), 0); /* never mapped one */
    co_test_assert_str_field(co_future_value(co_task_future(t)), "message", "changed my mind");
    co_task_unref(t);
}

typedef struct cleanup_state {
    int first, second, cleaned;
} cleanup_state;

static int sleeps_then_cleans_up(void *arg)
{
    cleanup_state *cs = arg;
    cs->first = co_sleep(10);
    if (cs->first == -ECANCELED) {
        /* The cancel was delivered once: cleanup may await normally. */
        cs->second = co_sleep(0.01);
        cs->cleaned = 1;
        return -ECANCELED;
    }
    return 0;
}

static void test_cancel_mid_await_runs_cleanup(void **state)
{
    co_env *e = *state;
    cleanup_state cs = { 1, 1, 0 };
    co_task *t;
    assert_int_equal(co_spawn(e->s, sleeps_then_cleans_up, &cs, NULL, &t), 0);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* starts and suspends in the sleep */
    assert_int_equal(co_sched_coroutines(e->s), 1);
    assert_true(co_task_cancel(t, "stop"));
    assert_int_equal(co_sched_run_until(e->s, co_task_future(t)), 0);
    assert_int_equal(cs.first, -ECANCELED);
    assert_int_equal(cs.second, 0);
    assert_int_equal(cs.cleaned, 1);
    assert_int_equal(co_future_state(co_task_future(t)), CO_CANCELLED);
    co_test_assert_str_field(co_future_value(co_task_future(t)), "message", "stop");
    co_task_unref(t);
}

static void test_sleeps_run_in_parallel(void **state)
{
    co_env *e = *state;
    double secs[3] = { 0.2, 0.1, 0.15 };
    co_future *f[3];
    double t0 = co_now();
    for (int i = 0; i < 3; i++) {
        co_value v = co_test_uint_value((uint64_t)(secs[i] * 1000));
        co_task *t;
        assert_int_equal(co_sleep_task(e->s, secs[i], &v, NULL, &t), 0);
        f[i] = co_task_future(t);
    }
    co_task *g;
    assert_int_equal(co_gather_task(e->s, f, 3, false, NULL, &g), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g)), 0);
    double took = co_now() - t0;
    assert_true(took >= 0.195);
    assert_true(took < 0.40); /* in parallel: about 200 ms, nowhere near 450 */
    assert_int_equal(co_future_state(co_task_future(g)), CO_SUCCEEDED);
    msgpack_unpacked u;
    co_test_unpack(co_future_value(co_task_future(g)), &u);
    assert_int_equal(u.data.via.array.size, 3);
    assert_int_equal(u.data.via.array.ptr[0].via.u64, 200); /* in the order of the members */
    assert_int_equal(u.data.via.array.ptr[1].via.u64, 100);
    assert_int_equal(u.data.via.array.ptr[2].via.u64, 150);
    msgpack_unpacked_destroy(&u);
    co_task_unref(g);
    for (int i = 0; i < 3; i++)
        co_future_unref(f[i]);
}

static void test_sleep_task_cancel_and_validation(void **state)
{
    co_env *e = *state;
    co_task *t;
    co_value v = co_test_uint_value(1000);
    assert_int_equal(co_sleep_task(e->s, 10, &v, NULL, &t), 0);
    assert_true(co_task_cancel(t, NULL));
    assert_int_equal(co_future_state(co_task_future(t)), CO_CANCELLED);
    co_test_assert_error_code(co_task_future(t), "cancelled");
    co_task_unref(t);
    assert_int_equal(co_sleep_task(e->s, -1, NULL, NULL, &t), -EINVAL);
    assert_int_equal(co_sleep_task(e->s, 0.0 / 0.0, NULL, NULL, &t), -EINVAL);
    assert_int_equal(co_sleep_task(e->s, 1e300, NULL, NULL, &t), -EINVAL);
    assert_int_equal(co_sleep_task(e->s, 1, NULL, &(co_task_opts){ .timeout = -2 }, &t), -EINVAL);
}

static int fail_after_10ms(void *arg)
{
    (void)arg;
    co_sleep(0.01);
    return co_fail("exit_status", "exited with 2");
}

static void test_gather_member_failed(void **state)
{
    co_env *e = *state;
    co_task *a, *b, *c, *g;
    assert_int_equal(co_sleep_task(e->s, 0.03, NULL, NULL, &a), 0);
    assert_int_equal(co_spawn(e->s, fail_after_10ms, NULL, &(co_task_opts){ .id = 7 }, &b), 0);
    assert_int_equal(co_sleep_task(e->s, 0.1, NULL, NULL, &c), 0);
    co_future *m[3] = { co_task_future(a), co_task_future(b), co_task_future(c) };
    assert_int_equal(co_gather_task(e->s, m, 3, false, NULL, &g), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g)), 0);
    assert_int_equal(co_future_state(co_task_future(g)), CO_FAILED);
    assert_false(co_future_done(co_task_future(c))); /* the others keep running */
    msgpack_unpacked u;
    co_test_unpack(co_future_value(co_task_future(g)), &u);
    assert_int_equal(co_test_field(&u.data, "member")->via.u64, 7);
    assert_int_equal(co_test_field(&u.data, "index")->via.u64, 1);
    const msgpack_object *err = co_test_field(&u.data, "error");
    assert_non_null(err);
    assert_int_equal(err->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(err->via.map.size, 2); /* the member's code and message, no more */
    const msgpack_object *code = co_test_field(err, "code");
    assert_int_equal(code->via.str.size, 11);
    assert_memory_equal(code->via.str.ptr, "exit_status", 11);
    const msgpack_object *why = co_test_field(err, "message");
    assert_int_equal(why->via.str.size, 13);
    assert_memory_equal(why->via.str.ptr, "exited with 2", 13);
    msgpack_unpacked_destroy(&u);
    co_test_assert_error_code(co_task_future(g), "member_failed");
    assert_int_equal(co_sched_run_until(e->s, co_task_future(c)), 0);
    assert_int_equal(co_future_state(co_task_future(c)), CO_SUCCEEDED);
    co_task_unref(a), co_task_unref(b), co_task_unref(c), co_task_unref(g);
}

static void test_gather_return_exceptions(void **state)
{
    co_env *e = *state;
    co_task *a, *b, *g;
    co_value v = co_test_uint_value(5);
    assert_int_equal(co_sleep_task(e->s, 0.01, &v, NULL, &a), 0);
    assert_int_equal(co_spawn(e->s, fail_after_10ms, NULL, NULL, &b), 0);
    co_future *m[2] = { co_task_future(a), co_task_future(b) };
    assert_int_equal(co_gather_task(e->s, m, 2, true, NULL, &g), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g)), 0);
    assert_int_equal(co_future_state(co_task_future(g)), CO_SUCCEEDED);
    msgpack_unpacked u;
    co_test_unpack(co_future_value(co_task_future(g)), &u);
    assert_int_equal(u.data.via.array.ptr[0].via.u64, 5);
    assert_non_null(co_test_field(&u.data.via.array.ptr[1], "code"));
    msgpack_unpacked_destroy(&u);
    co_task_unref(a), co_task_unref(b), co_task_unref(g);

    /* An empty gather succeeds at once with []. */
    assert_int_equal(co_gather_task(e->s, NULL, 0, false, NULL, &g), 0);
    assert_int_equal(co_future_state(co_task_future(g)), CO_SUCCEEDED);
    co_task_unref(g);
}

/* A chain of gathers each failing because the one below failed: every error has the same
 * fixed shape, however long the chain (each once nested all the errors below it). */
static void test_gather_failure_chain_stays_flat(void **state)
{
    co_env *e = *state;
    enum { CHAIN = 2000 };
    co_task **g = malloc(CHAIN * sizeof *g), *leaf;
    assert_int_equal(co_spawn(e->s, fail_after_10ms, NULL, &(co_task_opts){ .id = 1 }, &leaf), 0);
    co_future *inner = co_task_future(leaf);
    for (int i = 0; i < CHAIN; i++) {
        assert_int_equal(co_gather_task(e->s, &inner, 1, false, &(co_task_opts){ .id = (uint64_t)i + 2 }, &g[i]),
                         0);
        inner = co_task_future(g[i]);
    }
    assert_int_equal(co_sched_run_until(e->s, inner), 0);
    const co_value *top = co_future_value(inner), *first = co_future_value(co_task_future(g[0]));
    size_t used;
    unsigned depth;
    assert_int_equal(co_value_measure(top->data, top->len, 64, &used, &depth), 0);
    assert_int_equal(depth, 2);
    assert_true(top->len < 200);
    co_test_assert_str_field(top, "message", "member 2000 failed");
    /* The first gather above the leaf says why the leaf failed; the top says its member
     * failed because its own member did. */
    msgpack_unpacked u;
    co_test_unpack(first, &u);
    co_test_assert_str_field(first, "code", "member_failed");
    const msgpack_object *why = co_test_field(co_test_field(&u.data, "error"), "message");
    assert_memory_equal(why->via.str.ptr, "exited with 2", 13);
    msgpack_unpacked_destroy(&u);
    for (int i = 0; i < CHAIN; i++)
        co_task_unref(g[i]);
    co_task_unref(leaf);
    free(g);
}

/* Results past the scheduler's bounds fail the gather instead of being built. */
static void test_gather_result_bounds(void **state)
{
    (void)state;
    co_env *e;
    co_sched_config cfg = { .value_max_bytes = 1000, .value_max_depth = 3 };
    assert_int_equal(co_env_setup_with((void **)&e, &cfg), 0);
    /* Bytes: 20 members of 75 bytes pass 1000. */
    char s[58];
    memset(s, 'x', 57);
    s[57] = 0;
    co_value v;
    assert_int_equal(co_value_error(&v, "c", s), 0); /* a map of 75 bytes */
    co_task *t[20], *g;
    co_future *m[20];
    for (int i = 0; i < 20; i++) {
        co_value c;
        assert_int_equal(co_value_copy(&c, v.data, v.len), 0);
        assert_int_equal(co_sleep_task(e->s, 0, &c, NULL, &t[i]), 0);
        m[i] = co_task_future(t[i]);
    }
    assert_int_equal(co_gather_task(e->s, m, 20, false, NULL, &g), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g)), 0);
    assert_int_equal(co_future_state(co_task_future(g)), CO_FAILED);
    co_test_assert_error_code(co_task_future(g), "result_too_large");
    co_task_unref(g);
    /* 13 of them fit. */
    assert_int_equal(co_gather_task(e->s, m, 13, false, NULL, &g), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g)), 0);
    assert_int_equal(co_future_state(co_task_future(g)), CO_SUCCEEDED);
    /* Depth: a gather of that gather (maps in arrays in an array) is 3 levels; one more is
     * too deep. */
    co_task *g2, *g3;
    co_future *f = co_task_future(g);
    assert_int_equal(co_gather_task(e->s, &f, 1, false, NULL, &g2), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g2)), 0);
    assert_int_equal(co_future_state(co_task_future(g2)), CO_SUCCEEDED);
    f = co_task_future(g2);
    assert_int_equal(co_gather_task(e->s, &f, 1, false, NULL, &g3), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g3)), 0);
    assert_int_equal(co_future_state(co_task_future(g3)), CO_FAILED);
    co_test_assert_error_code(co_task_future(g3), "result_too_large");
    co_test_assert_str_field(co_future_value(co_task_future(g3)), "message",
                             "the gather's result would nest more than the limit of 3 levels");
    co_task_unref(g3), co_task_unref(g2), co_task_unref(g);
    for (int i = 0; i < 20; i++)
        co_task_unref(t[i]);
    co_value_free(&v);
    assert_int_equal(co_env_teardown((void **)&e), 0);
}

static void test_gather_cancel_spares_shielded(void **state)
{
    co_env *e = *state;
    co_task *plain, *shielded, *g;
    assert_int_equal(co_sleep_task(e->s, 5, NULL, NULL, &plain), 0);
    assert_int_equal(co_sleep_task(e->s, 0.05, NULL, &(co_task_opts){ .shielded = true }, &shielded), 0);
    co_future *m[2] = { co_task_future(plain), co_task_future(shielded) };
    assert_int_equal(co_gather_task(e->s, m, 2, false, NULL, &g), 0);
    double t0 = co_now();
    assert_true(co_task_cancel(g, "user cancel"));
    assert_int_equal(co_sched_run_until(e->s, co_task_future(g)), 0);
    assert_true(co_now() - t0 < 0.04); /* did not wait for the shielded member */
    assert_int_equal(co_future_state(co_task_future(g)), CO_CANCELLED);
    assert_int_equal(co_future_state(co_task_future(plain)), CO_CANCELLED);
    assert_false(co_future_done(co_task_future(shielded)));
    assert_false(co_task_cancel_from_parent(shielded, "x"));
    assert_int_equal(co_sched_run_until(e->s, co_task_future(shielded)), 0);
    assert_int_equal(co_future_state(co_task_future(shielded)), CO_SUCCEEDED);
    co_task_unref(plain), co_task_unref(shielded), co_task_unref(g);
}

static int slow_cleanup(void *arg)
{
    (void)arg;
    if (co_sleep(5) == -ECANCELED) {
        co_sleep(0.02);
        return -ECANCELED;
    }
    return 0;
}

static void test_run_timeout(void **state)
{
    co_env *e = *state;
    co_task *t;
    double t0 = co_now();
    assert_int_equal(co_spawn(e->s, slow_cleanup, NULL, &(co_task_opts){ .timeout = 0.05, .name = "slow" }, &t), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(t)), 0);
    double took = co_now() - t0;
    assert_true(took >= 0.069 && took < 1.0); /* the timeout, then its cleanup */
    assert_int_equal(co_future_state(co_task_future(t)), CO_FAILED);
    co_test_assert_error_code(co_task_future(t), "timeout");
    assert_string_equal(co_task_name(t), "slow");
    co_task_unref(t);

    /* A stackless task's timeout too. */
    assert_int_equal(co_sleep_task(e->s, 5, NULL, &(co_task_opts){ .timeout = 0.02 }, &t), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(t)), 0);
    co_test_assert_error_code(co_task_future(t), "timeout");
    co_task_unref(t);
}

static int sleep_50ms(void *arg)
{
    (void)arg;
    return co_sleep(0.05);
}

static void test_stack_budget_reported(void **state)
{
    (void)state;
    void *st = NULL;
    co_sched_config cfg = { .stack.max_stacks = 2 };
    assert_int_equal(co_env_setup_with(&st, &cfg), 0);
    co_env *e = st;
    co_task *t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(co_spawn(e->s, sleep_50ms, NULL, NULL, &t[i]), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(t[0])), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(t[1])), 0);
    assert_int_equal(co_future_state(co_task_future(t[0])), CO_SUCCEEDED);
    assert_int_equal(co_future_state(co_task_future(t[1])), CO_SUCCEEDED);
    assert_int_equal(co_future_state(co_task_future(t[2])), CO_FAILED);
    co_test_assert_error_code(co_task_future(t[2]), "stack_limit");
    co_test_assert_str_field(co_future_value(co_task_future(t[2])), "message",
                             "coroutine stack limit reached: 2 stacks in use, configured limit 2");
    /* With the budget free again, the next coroutine runs. */
    co_task *again = co_test_run(e, sleep_50ms, NULL);
    assert_int_equal(co_future_state(co_task_future(again)), CO_SUCCEEDED);
    co_task_unref(again);
    for (int i = 0; i < 3; i++)
        co_task_unref(t[i]);
    co_env_teardown(&st);
}

static void test_task_cache_bound(void **state)
{
    (void)state;
    void *st = NULL;
    co_sched_config cfg = { .task_cache = 3 };
    assert_int_equal(co_env_setup_with(&st, &cfg), 0);
    co_env *e = st;
    for (int i = 0; i < 8; i++)
        assert_int_equal(co_spawn(e->s, return_42, NULL, NULL, NULL), 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(co_sched_task_cached(e->s), 3); /* the other five were freed */
    /* Reused records come back clean: a new task from the cache behaves as new. */
    co_task *t = co_test_run(e, return_42, NULL);
    assert_int_equal(co_test_uint_of(co_future_value(co_task_future(t))), 42);
    assert_null(co_task_name(t));
    assert_false(co_task_shielded(t));
    co_task_unref(t);
    co_env_teardown(&st);
}

static void custom_cancel(co_task *t, void *data)
{
    (*(int *)data)++;
    co_task_finish(t, CO_CANCELLED, NULL); /* this owner ends at once when asked */
}

static const co_task_body custom_body = { .cancel = custom_cancel };

static void test_custom_task(void **state)
{
    co_env *e = *state;
    int cancels = 0;
    co_task *t, *u;
    assert_int_equal(co_custom_task(e->s, &custom_body, &cancels, NULL, &t), 0);
    assert_ptr_equal(co_task_data(t), &cancels);
    co_value v = co_test_uint_value(9);
    assert_int_equal(co_task_finish(t, CO_SUCCEEDED, &v), 0);
    assert_int_equal(co_task_finish(t, CO_FAILED, NULL), -EINVAL); /* exactly one outcome */
    assert_false(co_task_cancel(t, NULL));
    assert_int_equal(cancels, 0);
    assert_int_equal(co_test_uint_of(co_future_value(co_task_future(t))), 9);

    /* A cancel reaches the owner's hook, with its message kept. A shielded custom task
     * is skipped by a parent gather's cancel. */
    assert_int_equal(co_custom_task(e->s, &custom_body, &cancels, NULL, &u), 0);
    assert_true(co_task_cancel(u, "bye"));
    assert_int_equal(cancels, 1);
    assert_int_equal(co_future_state(co_task_future(u)), CO_CANCELLED);
    co_test_assert_str_field(co_future_value(co_task_future(u)), "message", "bye");
    co_task_unref(u);
    assert_int_equal(co_custom_task(e->s, &custom_body, &cancels, &(co_task_opts){ .shielded = true }, &u), 0);
    co_future *m[1] = { co_task_future(u) };
    co_task *g;
    assert_int_equal(co_gather_task(e->s, m, 1, false, NULL, &g), 0);
    co_task_cancel(g, NULL);
    assert_int_equal(cancels, 1);
    co_task_finish(u, CO_SUCCEEDED, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(co_future_state(co_task_future(g)), CO_CANCELLED);
    assert_int_equal(co_task_finish(g, CO_SUCCEEDED, NULL), -EPERM); /* not a custom task */
    co_task_unref(g);
    co_task_unref(u);
    co_task_unref(t);
}

#define SLEEPERS 100000

static void count_done(co_future *f, void *arg)
{
    (void)f;
    (*(int *)arg)++;
}

static void test_100k_stackless_sleepers(void **state)
{
    co_env *e = *state;
    co_task **t = malloc(SLEEPERS * sizeof *t);
    co_cb *cbs = malloc(SLEEPERS * sizeof *cbs);
    int done = 0;
    double t0 = co_now();
    for (int i = 0; i < SLEEPERS; i++) {
        assert_int_equal(co_sleep_task(e->s, 0.2, NULL, NULL, &t[i]), 0);
        co_future_add_cb(co_task_future(t[i]), &cbs[i], count_done, &done);
    }
    assert_int_equal(co_sched_live(e->s), SLEEPERS);
    assert_int_equal(co_sched_coroutines(e->s), 0); /* not one stack */
    uv_run(&e->loop, UV_RUN_DEFAULT);
    double took = co_now() - t0;
    assert_int_equal(done, SLEEPERS);
    assert_true(took < 20.0);
    for (int i = 0; i < SLEEPERS; i++) {
        assert_int_equal(co_future_state(co_task_future(t[i])), CO_SUCCEEDED);
        co_task_unref(t[i]);
    }
    assert_int_equal(co_stack_pool_cached(co_sched_stacks(e->s)), 0);
    free(t);
    free(cbs);
}

/* A custom task whose cancel reaches the gather it "runs", and which ends as that gather
 * does: a daemon record and its body, in miniature. */
static void cancel_inner(co_task *t, void *data)
{
    (void)t;
    co_task_cancel(data, "cancelled from outside");
}

static const co_task_body record_like = { .cancel = cancel_inner };

static void end_as_inner(co_future *f, void *arg)
{
    assert_int_equal(co_task_finish(arg, co_future_state(f), NULL), 0);
}

/* 200,000 levels of record-like task → gather → record-like task → ..., around one sleep:
 * a cancel of the top reaches the sleep, and every level then ends cancelled. The cascade
 * once recursed, four frames a level, and overflowed the stack at ~60,000 levels. */
#define LEVELS 200000

static void test_cancel_cascade_200k_levels(void **state)
{
    co_env *e = *state;
    co_task **g = malloc(LEVELS * sizeof *g), **r = malloc(LEVELS * sizeof *r);
    co_cb *cbs = malloc(LEVELS * sizeof *cbs);
    co_task *leaf;
    assert_int_equal(co_sleep_task(e->s, 60, NULL, NULL, &leaf), 0);
    co_future *inner = co_task_future(leaf);
    for (int i = 0; i < LEVELS; i++) {
        assert_int_equal(co_gather_task(e->s, &inner, 1, false, NULL, &g[i]), 0);
        assert_int_equal(co_custom_task(e->s, &record_like, g[i], NULL, &r[i]), 0);
        co_future_add_cb(co_task_future(g[i]), &cbs[i], end_as_inner, r[i]);
        inner = co_task_future(r[i]);
    }
    assert_true(co_task_cancel(r[LEVELS - 1], "stop"));
    assert_int_equal(co_future_state(co_task_future(leaf)), CO_CANCELLED); /* at once */
    assert_int_equal(co_sched_run_until(e->s, co_task_future(r[LEVELS - 1])), 0);
    for (int i = 0; i < LEVELS; i++) {
        assert_int_equal(co_future_state(co_task_future(g[i])), CO_CANCELLED);
        assert_int_equal(co_future_state(co_task_future(r[i])), CO_CANCELLED);
    }
    co_test_assert_str_field(co_future_value(co_task_future(r[LEVELS - 1])), "message", "stop");
    for (int i = LEVELS - 1; i >= 0; i--) {
        co_task_unref(r[i]);
        co_task_unref(g[i]);
    }
    co_task_unref(leaf);
    free(g), free(r), free(cbs);
}

#define COROS 10000

static int sleep_200ms(void *arg)
{
    (void)arg;
    return co_sleep(0.2);
}

static void test_10k_concurrent_coroutines(void **state)
{
    co_env *e = *state;
    co_task **t = malloc(COROS * sizeof *t);
    for (int i = 0; i < COROS; i++)
        assert_int_equal(co_spawn(e->s, sleep_200ms, NULL, NULL, &t[i]), 0);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* all start and suspend */
    assert_int_equal(co_sched_coroutines(e->s), COROS);
    assert_int_equal(co_stack_pool_in_use(co_sched_stacks(e->s)), COROS);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < COROS; i++) {
        assert_int_equal(co_future_state(co_task_future(t[i])), CO_SUCCEEDED);
        co_task_unref(t[i]);
    }
    co_stack_pool *p = co_sched_stacks(e->s);
    assert_int_equal(co_stack_pool_in_use(p), 0); /* every stack went back */
    assert_int_equal(co_stack_pool_cached(p), CO_STACK_DEFAULT_CACHED);
    free(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, co_env_setup, co_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_coroutine_result),
        T(test_coroutine_failures),
        T(test_cancel_before_start_takes_no_stack),
        T(test_cancel_mid_await_runs_cleanup),
        T(test_sleeps_run_in_parallel),
        T(test_sleep_task_cancel_and_validation),
        T(test_gather_member_failed),
        T(test_gather_return_exceptions),
        T(test_gather_failure_chain_stays_flat),
        cmocka_unit_test(test_gather_result_bounds),
        T(test_gather_cancel_spares_shielded),
        T(test_run_timeout),
        cmocka_unit_test(test_stack_budget_reported),
        cmocka_unit_test(test_task_cache_bound),
        T(test_custom_task),
        T(test_cancel_cascade_200k_levels),
        T(test_100k_stackless_sleepers),
        T(test_10k_concurrent_coroutines),
    };
    return cmocka_run_group_tests_name("task", tests, NULL, NULL);
}
