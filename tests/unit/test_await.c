/* test_await: the awaits inside a coroutine — sleep, await, gather, wait, wait_for,
 * shield — and how cancellation travels through each. */
#include <errno.h>

#include "co_test.h"

/* ---- helpers ---- */

typedef co_test_sleeper sleeper;
#define sleeper_body co_test_sleeper_body

static int failer_body(void *arg)
{
    co_sleep(*(double *)arg);
    return co_fail("boom", "failed on purpose");
}

/* ---- sleep ---- */

typedef struct par {
    co_env *e;
    double took;
} par;

static int three_sleeps(void *arg)
{
    par *p = arg;
    sleeper s[3] = { { .secs = 0.2 }, { .secs = 0.1 }, { .secs = 0.15 } };
    co_task *t[3];
    for (int i = 0; i < 3; i++)
        co_spawn(p->e->s, sleeper_body, &s[i], NULL, &t[i]);
    double t0 = co_now();
    co_future *f[3] = { co_task_future(t[0]), co_task_future(t[1]), co_task_future(t[2]) };
    int rc = co_gather(f, 3, false, NULL);
    p->took = co_now() - t0;
    for (int i = 0; i < 3; i++)
        co_task_unref(t[i]);
    return rc;
}

static void test_three_coroutine_sleeps_in_parallel(void **state)
{
    co_env *e = *state;
    par p = { .e = e };
    co_task *t = co_test_run(e, three_sleeps, &p);
    assert_int_equal(co_future_state(co_task_future(t)), CO_SUCCEEDED);
    assert_true(p.took >= 0.195 && p.took < 0.40);
    co_task_unref(t);
}

static int bad_sleeps(void *arg)
{
    int *rc = arg;
    rc[0] = co_sleep(-1);
    rc[1] = co_sleep(0.0 / 0.0);
    rc[2] = co_sleep(1.0 / 0.0);
    rc[3] = co_sleep(0);
    return 0;
}

static void test_sleep_validation(void **state)
{
    co_env *e = *state;
    int rc[4];
    co_task *t = co_test_run(e, bad_sleeps, rc);
    assert_int_equal(rc[0], -EINVAL);
    assert_int_equal(rc[1], -EINVAL);
    assert_int_equal(rc[2], -EINVAL);
    assert_int_equal(rc[3], 0);
    co_task_unref(t);
    assert_int_equal(co_sleep(1), -EPERM); /* not inside a coroutine */
}

/* ---- await ---- */

typedef struct awaiter {
    co_future *target;
    int status;
    double resumed_at;
} awaiter;

static int awaiter_body(void *arg)
{
    awaiter *a = arg;
    a->status = co_await(a->target);
    a->resumed_at = co_now();
    return a->status == -ECANCELED ? -ECANCELED : 0;
}

static void test_await_outcomes(void **state)
{
    co_env *e = *state;
    co_future *f;
    /* succeeded */
    assert_int_equal(co_future_new(e->s, &f), 0);
    awaiter a = { .target = f };
    co_task *t;
    co_spawn(e->s, awaiter_body, &a, NULL, &t);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    co_value v = co_test_uint_value(3);
    co_future_set_result(f, &v);
    co_sched_run_until(e->s, co_task_future(t));
    assert_int_equal(a.status, 0);
    co_task_unref(t);
    co_future_unref(f);
    /* failed */
    assert_int_equal(co_future_new(e->s, &f), 0);
    a.target = f;
    co_spawn(e->s, awaiter_body, &a, NULL, &t);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    co_value err;
    co_value_error(&err, "x", "y");
    co_future_set_error(f, &err);
    co_sched_run_until(e->s, co_task_future(t));
    assert_int_equal(a.status, CO_EFAILED);
    co_task_unref(t);
    co_future_unref(f);
    /* already cancelled */
    assert_int_equal(co_future_new(e->s, &f), 0);
    co_future_cancel(f, NULL);
    a.target = f;
    t = co_test_run(e, awaiter_body, &a);
    assert_int_equal(a.status, -ECANCELED);
    assert_int_equal(co_future_state(co_task_future(t)), CO_CANCELLED);
    co_task_unref(t);
    co_future_unref(f);
}

static void test_cancel_propagates_into_awaited_task(void **state)
{
    co_env *e = *state;
    sleeper inner = { .secs = 10, .cleanup = 0.05 };
    co_task *it, *ot;
    co_spawn(e->s, sleeper_body, &inner, NULL, &it);
    awaiter a = { .target = co_task_future(it) };
    co_spawn(e->s, awaiter_body, &a, NULL, &ot);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    double t0 = co_now();
    co_task_cancel(ot, NULL);
    co_sched_run_until(e->s, co_task_future(ot));
    /* The outer resumed only once the inner had finished its 50 ms of cleanup. */
    assert_int_equal(a.status, -ECANCELED);
    assert_true(co_future_done(co_task_future(it)));
    assert_int_equal(inner.cleaned, 1);
    assert_true(a.resumed_at - t0 >= 0.045);
    co_task_unref(it);
    co_task_unref(ot);
}

static int await_self(void *arg)
{
    *(int *)arg = co_await(co_task_future(co_current()));
    return 0;
}

static void test_await_self_is_refused(void **state)
{
    co_env *e = *state;
    int rc = 0;
    co_task *t = co_test_run(e, await_self, &rc);
    assert_int_equal(rc, -EDEADLK);
    co_task_unref(t);
}

/* ---- gather ---- */

typedef struct gatherer {
    co_env *e;
    sleeper s[2];
    double fail_after;
    int with_failer, status;
    co_task *result;
} gatherer;

static int gatherer_body(void *arg)
{
    gatherer *g = arg;
    co_task *t[2];
    co_spawn(g->e->s, sleeper_body, &g->s[0], NULL, &t[0]);
    if (g->with_failer)
        co_spawn(g->e->s, failer_body, &g->fail_after, NULL, &t[1]);
    else
        co_spawn(g->e->s, sleeper_body, &g->s[1], NULL, &t[1]);
    co_future *f[2] = { co_task_future(t[0]), co_task_future(t[1]) };
    g->status = co_gather(f, 2, false, &g->result);
    co_task_unref(t[0]);
    co_task_unref(t[1]);
    return g->status == -ECANCELED ? -ECANCELED : 0;
}

static void test_gather_results_and_failure(void **state)
{
    co_env *e = *state;
    gatherer g = { .e = e, .s = { { .secs = 0.02 }, { .secs = 0.01 } } };
    co_task *t = co_test_run(e, gatherer_body, &g);
    assert_int_equal(g.status, 0);
    msgpack_unpacked u;
    co_test_unpack(co_future_value(co_task_future(g.result)), &u);
    assert_int_equal(u.data.via.array.ptr[0].via.u64, 20);
    assert_int_equal(u.data.via.array.ptr[1].via.u64, 10);
    msgpack_unpacked_destroy(&u);
    co_task_unref(g.result);
    co_task_unref(t);

    gatherer h = { .e = e, .s = { { .secs = 0.05 } }, .with_failer = 1, .fail_after = 0.01 };
    t = co_test_run(e, gatherer_body, &h);
    assert_int_equal(h.status, CO_EFAILED);
    co_test_assert_error_code(co_task_future(h.result), "member_failed");
    co_task_unref(h.result);
    co_task_unref(t);
    uv_run(&e->loop, UV_RUN_DEFAULT); /* the other member keeps running to its end */
    assert_int_equal(h.s[0].status, 0);
}

static void test_cancel_during_gather_cancels_children(void **state)
{
    co_env *e = *state;
    gatherer g = { .e = e, .s = { { .secs = 10, .cleanup = 0.02 }, { .secs = 10 } } };
    co_task *t;
    co_spawn(e->s, gatherer_body, &g, NULL, &t);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    co_task_cancel(t, "enough");
    co_sched_run_until(e->s, co_task_future(t));
    assert_int_equal(g.status, -ECANCELED);
    assert_int_equal(g.s[0].status, -ECANCELED);
    assert_int_equal(g.s[1].status, -ECANCELED);
    assert_int_equal(g.s[0].cleaned, 1); /* children finished before the parent resumed */
    assert_int_equal(co_future_state(co_task_future(g.result)), CO_CANCELLED);
    assert_int_equal(co_future_state(co_task_future(t)), CO_CANCELLED);
    co_task_unref(g.result);
    co_task_unref(t);
}

/* ---- shield ---- */

typedef struct shielder {
    co_future *inner;
    int status;
} shielder;

static int shielder_body(void *arg)
{
    shielder *s = arg;
    co_future *sh = co_shield(s->inner);
    s->status = co_await(sh);
    co_future_unref(sh);
    return s->status == -ECANCELED ? -ECANCELED : 0;
}

static void test_shield(void **state)
{
    co_env *e = *state;
    sleeper inner = { .secs = 0.05 };
    co_task *it, *ot;
    co_spawn(e->s, sleeper_body, &inner, NULL, &it);
    shielder s = { .inner = co_task_future(it) };
    co_spawn(e->s, shielder_body, &s, NULL, &ot);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    co_task_cancel(ot, NULL);
    co_sched_run_until(e->s, co_task_future(ot));
    assert_int_equal(s.status, -ECANCELED);
    assert_false(co_future_done(co_task_future(it))); /* the cancel stopped at the shield */
    co_sched_run_until(e->s, co_task_future(it));
    assert_int_equal(co_future_state(co_task_future(it)), CO_SUCCEEDED);
    co_task_unref(it);
    co_task_unref(ot);

    /* Uncancelled, a shield passes the outcome through. */
    sleeper in2 = { .secs = 0.01 };
    co_spawn(e->s, sleeper_body, &in2, NULL, &it);
    shielder s2 = { .inner = co_task_future(it) };
    ot = co_test_run(e, shielder_body, &s2);
    assert_int_equal(s2.status, 0);
    co_task_unref(it);
    co_task_unref(ot);
}

/* ---- wait ---- */

typedef struct waiter {
    co_env *e;
    co_wait_mode mode;
    double timeout, took;
    int status, done[3];
    double secs[3];
    int fail_idx; /* -1: none */
} waiter;

static int waiter_body(void *arg)
{
    waiter *w = arg;
    co_task *t[3];
    sleeper s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = (sleeper){ .secs = w->secs[i] };
        if (i == w->fail_idx)
            co_spawn(w->e->s, failer_body, &w->secs[i], NULL, &t[i]);
        else
            co_spawn(w->e->s, sleeper_body, &s[i], NULL, &t[i]);
    }
    co_future *f[3] = { co_task_future(t[0]), co_task_future(t[1]), co_task_future(t[2]) };
    double t0 = co_now();
    w->status = co_wait(f, 3, w->mode, w->timeout);
    w->took = co_now() - t0;
    for (int i = 0; i < 3; i++) {
        w->done[i] = co_future_done(f[i]);
        co_task_cancel(t[i], NULL); /* wait never cancels: tidy up ourselves */
    }
    co_wait(f, 3, CO_ALL_COMPLETED, -1);
    for (int i = 0; i < 3; i++)
        co_task_unref(t[i]);
    return 0;
}

static void test_wait_modes(void **state)
{
    co_env *e = *state;
    waiter w = { .e = e, .mode = CO_FIRST_COMPLETED, .timeout = -1, .secs = { 0.3, 0.02, 0.3 }, .fail_idx = -1 };
    co_task *t = co_test_run(e, waiter_body, &w);
    assert_int_equal(w.status, 0);
    assert_int_equal(w.done[0] + w.done[1] + w.done[2], 1);
    assert_true(w.done[1]);
    assert_true(w.took < 0.2);
    co_task_unref(t);

    waiter all = { .e = e, .mode = CO_ALL_COMPLETED, .timeout = -1, .secs = { 0.03, 0.01, 0.02 }, .fail_idx = -1 };
    t = co_test_run(e, waiter_body, &all);
    assert_int_equal(all.status, 0);
    assert_true(all.done[0] && all.done[1] && all.done[2]);
    co_task_unref(t);

    waiter fe = { .e = e, .mode = CO_FIRST_EXCEPTION, .timeout = -1, .secs = { 0.3, 0.3, 0.02 }, .fail_idx = 2 };
    t = co_test_run(e, waiter_body, &fe);
    assert_int_equal(fe.status, 0);
    assert_true(fe.done[2] && !fe.done[0] && !fe.done[1]);
    co_task_unref(t);

    waiter to = { .e = e, .mode = CO_ALL_COMPLETED, .timeout = 0.03, .secs = { 0.3, 0.01, 0.3 }, .fail_idx = -1 };
    t = co_test_run(e, waiter_body, &to);
    assert_int_equal(to.status, -ETIMEDOUT);
    assert_true(to.done[1] && !to.done[0] && !to.done[2]); /* nothing cancelled by the timeout */
    assert_true(to.took >= 0.029 && to.took < 0.25);
    co_task_unref(t);
}

static int wait_bad_args(void *arg)
{
    int *rc = arg;
    co_future *none[1] = { NULL };
    rc[0] = co_wait(none, 0, CO_ALL_COMPLETED, -1);
    rc[1] = co_wait(NULL, 1, CO_ALL_COMPLETED, -1);
    return 0;
}

static void test_wait_validation(void **state)
{
    co_env *e = *state;
    int rc[2];
    co_task *t = co_test_run(e, wait_bad_args, rc);
    assert_int_equal(rc[0], -EINVAL);
    assert_int_equal(rc[1], -EINVAL);
    co_task_unref(t);
}

/* ---- wait_for ---- */

typedef struct wf {
    co_env *e;
    sleeper inner;
    double timeout, took;
    int status, inner_done_at_return;
} wf;

static int wf_body(void *arg)
{
    wf *w = arg;
    co_task *it;
    co_spawn(w->e->s, sleeper_body, &w->inner, NULL, &it);
    double t0 = co_now();
    w->status = co_wait_for(co_task_future(it), w->timeout);
    w->took = co_now() - t0;
    w->inner_done_at_return = co_future_done(co_task_future(it));
    co_task_unref(it);
    return 0;
}

static void test_wait_for(void **state)
{
    co_env *e = *state;
    wf ok = { .e = e, .inner = { .secs = 0.01 }, .timeout = 1 };
    co_task *t = co_test_run(e, wf_body, &ok);
    assert_int_equal(ok.status, 0);
    co_task_unref(t);

    /* The timeout cancels the inner task and waits for its 100 ms of cleanup. */
    wf slow = { .e = e, .inner = { .secs = 10, .cleanup = 0.1 }, .timeout = 0.05 };
    t = co_test_run(e, wf_body, &slow);
    assert_int_equal(slow.status, -ETIMEDOUT);
    assert_int_equal(slow.inner_done_at_return, 1);
    assert_int_equal(slow.inner.cleaned, 1);
    assert_true(slow.took >= 0.145 && slow.took < 1.0);
    co_task_unref(t);
}

/* ---- cancel delivery ---- */

#define SPINS 100 /* more yields than one loop turn's drain rounds can run */

typedef struct spinner {
    int statuses[SPINS];
} spinner;

static int spinner_body(void *arg)
{
    spinner *s = arg;
    for (int i = 0; i < SPINS; i++)
        s->statuses[i] = co_sleep(0);
    return 0;
}

static void test_cancel_while_queued_is_delivered_once(void **state)
{
    co_env *e = *state;
    spinner s;
    co_task *t;
    co_spawn(e->s, spinner_body, &s, NULL, &t);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* some yields: the task is queued to resume */
    co_task_cancel(t, NULL);
    co_sched_run_until(e->s, co_task_future(t));
    /* The yield it was queued from reports the cancel; later ones run normally. */
    int cancels = 0;
    for (int i = 0; i < SPINS; i++)
        cancels += s.statuses[i] == -ECANCELED;
    assert_int_equal(cancels, 1);
    assert_true(co_cancel_requested() == false); /* outside a coroutine */
    /* The body returned 0 after handling the cancel: it swallowed it, as asyncio allows. */
    assert_int_equal(co_future_state(co_task_future(t)), CO_SUCCEEDED);
    co_task_unref(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, co_env_setup, co_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_three_coroutine_sleeps_in_parallel),
        T(test_sleep_validation),
        T(test_await_outcomes),
        T(test_cancel_propagates_into_awaited_task),
        T(test_await_self_is_refused),
        T(test_gather_results_and_failure),
        T(test_cancel_during_gather_cancels_children),
        T(test_shield),
        T(test_wait_modes),
        T(test_wait_validation),
        T(test_wait_for),
        T(test_cancel_while_queued_is_delivered_once),
    };
    return cmocka_run_group_tests_name("await", tests, NULL, NULL);
}
