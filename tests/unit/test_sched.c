/* test_sched: the scheduler itself — run-queue order, a drain that runs only what was
 * queued when it started (so a coroutine that keeps yielding cannot starve timers), the
 * deadlock report of co_sched_run_until, refusing to close with live work, and running
 * the queue from an I/O callback (co_sched_run_ready). */
#include <errno.h>

#include "co_test.h"

typedef struct order {
    int seq[8];
    int n;
} order;

typedef struct step_arg {
    order *o;
    int id;
} step_arg;

static int record_twice(void *arg)
{
    step_arg *a = arg;
    a->o->seq[a->o->n++] = a->id;
    co_sleep(0); /* back of the queue */
    a->o->seq[a->o->n++] = a->id + 10;
    return 0;
}

static void test_fifo_order(void **state)
{
    co_env *e = *state;
    order o = { .n = 0 };
    step_arg a[3] = { { &o, 1 }, { &o, 2 }, { &o, 3 } };
    for (int i = 0; i < 3; i++)
        assert_int_equal(co_spawn(e->s, record_twice, &a[i], NULL, NULL), 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    int want[6] = { 1, 2, 3, 11, 12, 13 };
    assert_int_equal(o.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(o.seq[i], want[i]);
}

/* From outside the loop (as from an I/O callback): what is queued runs now, in order,
 * with the follow-up rounds a drain would run. */
static void test_run_ready_runs_the_queue(void **state)
{
    co_env *e = *state;
    order o = { .n = 0 };
    step_arg a[3] = { { &o, 1 }, { &o, 2 }, { &o, 3 } };
    for (int i = 0; i < 3; i++)
        assert_int_equal(co_spawn(e->s, record_twice, &a[i], NULL, NULL), 0);
    co_sched_run_ready(e->s);
    int want[6] = { 1, 2, 3, 11, 12, 13 };
    assert_int_equal(o.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(o.seq[i], want[i]);
    co_sched_run_ready(e->s); /* nothing queued: nothing happens */
    uv_run(&e->loop, UV_RUN_DEFAULT);
}

/* Inside a coroutine it does nothing: the queue must not run on a coroutine's stack, so
 * what the caller queued just before has not run when the call returns. */
typedef struct nested_arg {
    co_sched *s;
    step_arg step, spawned;
} nested_arg;

static int call_run_ready(void *arg)
{
    nested_arg *a = arg;
    if (co_spawn(a->s, record_twice, &a->spawned, NULL, NULL) < 0)
        return -1;
    co_sched_run_ready(a->s); /* would run the spawned one here, on this stack */
    a->step.o->seq[a->step.o->n++] = a->step.id;
    return 0;
}

static void test_run_ready_is_a_noop_inside_a_coroutine(void **state)
{
    co_env *e = *state;
    order o = { .n = 0 };
    nested_arg first = { e->s, { &o, 1 }, { &o, 3 } };
    step_arg second = { &o, 2 };
    assert_int_equal(co_spawn(e->s, call_run_ready, &first, NULL, NULL), 0);
    assert_int_equal(co_spawn(e->s, record_twice, &second, NULL, NULL), 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    int want[5] = { 1, 2, 3, 12, 13 };
    assert_int_equal(o.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(o.seq[i], want[i]);
}

typedef struct spin {
    volatile int stop;
    long yields;
} spin;

static int spinner(void *arg)
{
    spin *s = arg;
    while (!s->stop && co_sleep(0) == 0)
        s->yields++;
    return 0;
}

static void stop_spinner(uv_timer_t *h)
{
    ((spin *)h->data)->stop = 1;
}

static void test_yielding_coroutine_cannot_starve_timers(void **state)
{
    co_env *e = *state;
    spin s = { 0, 0 };
    uv_timer_t timer;
    uv_timer_init(&e->loop, &timer);
    timer.data = &s;
    uv_timer_start(&timer, stop_spinner, 20, 0);
    co_task *t;
    assert_int_equal(co_spawn(e->s, spinner, &s, NULL, &t), 0);
    double t0 = co_now();
    assert_int_equal(co_sched_run_until(e->s, co_task_future(t)), 0);
    /* The timer fired while the spinner yielded without end: each turn of the loop ran
     * timers between drains. */
    assert_true(co_now() - t0 < 2.0);
    assert_true(s.yields > 0);
    co_task_unref(t);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
}

static void test_run_until_reports_deadlock(void **state)
{
    co_env *e = *state;
    co_future *f;
    assert_int_equal(co_future_new(e->s, &f), 0);
    /* Nothing can ever complete f: the loop runs out of work. */
    assert_int_equal(co_sched_run_until(e->s, f), -EDEADLK);
    co_future_unref(f);
}

static void test_free_refuses_live_work(void **state)
{
    co_env *e = *state;
    co_task *t;
    assert_int_equal(co_sleep_task(e->s, 10, NULL, NULL, &t), 0);
    assert_int_equal(co_sched_free(e->s), -EBUSY);
    co_task_cancel(t, NULL);
    co_task_unref(t);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(co_sched_live(e->s), 0);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(co_strerror(CO_EFAILED), "the awaited future failed");
    assert_non_null(strstr(co_strerror(-ETIMEDOUT), "timed out"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, co_env_setup, co_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_fifo_order),
        T(test_yielding_coroutine_cannot_starve_timers),
        T(test_run_until_reports_deadlock),
        T(test_free_refuses_live_work),
        cmocka_unit_test(test_strerror),
        T(test_run_ready_runs_the_queue),
        T(test_run_ready_is_a_noop_inside_a_coroutine),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
