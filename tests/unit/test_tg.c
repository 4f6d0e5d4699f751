/* test_tg: task groups — the parent ends after its children; the first failure cancels
 * the siblings and the parent's current await; a cancelled parent cancels the children. */
#include <errno.h>

#include "co_test.h"

typedef co_test_sleeper kid;
#define kid_body co_test_sleeper_body

typedef struct parent {
    kid k[3];
    int n, join, between, spawn_after;
    double parent_sleep, joined_at;
    co_task *failed;
} parent;

static int parent_body(void *arg)
{
    parent *p = arg;
    co_tg *g;
    if (co_tg_new(&g) < 0)
        return -ENOMEM;
    for (int i = 0; i < p->n; i++)
        co_tg_spawn(g, kid_body, &p->k[i], NULL, NULL);
    p->between = p->parent_sleep > 0 ? co_sleep(p->parent_sleep) : 0;
    p->join = co_tg_join(g);
    p->joined_at = co_now();
    p->spawn_after = co_tg_spawn(g, kid_body, &p->k[0], NULL, NULL);
    p->failed = co_tg_failed(g);
    if (p->failed)
        co_task_ref(p->failed);
    co_tg_free(g);
    return p->join;
}

static void test_all_succeed_parent_ends_last(void **state)
{
    co_env *e = *state;
    parent p = { .n = 3, .k = { { .secs = 0.03 }, { .secs = 0.01 }, { .secs = 0.02 } } };
    co_task *t = co_test_run(e, parent_body, &p);
    assert_int_equal(p.join, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(p.k[i].status, 0);
        assert_true(p.joined_at >= p.k[i].ended_at);
    }
    assert_int_equal(p.spawn_after, -ESHUTDOWN);
    assert_int_equal(co_future_state(co_task_future(t)), CO_SUCCEEDED);
    co_task_unref(t);
}

static void test_child_failure_cancels_siblings_and_parent(void **state)
{
    co_env *e = *state;
    parent p = { .n = 3, .parent_sleep = 10,
                 .k = { { .secs = 10, .cleanup = 0.02 }, { .secs = 0.01, .fail = 1 }, { .secs = 10 } } };
    double t0 = co_now();
    co_task *t = co_test_run(e, parent_body, &p);
    assert_true(co_now() - t0 < 1.0);
    assert_int_equal(p.between, -ECANCELED); /* the parent's own sleep was interrupted */
    assert_int_equal(p.join, CO_EFAILED);
    assert_int_equal(p.k[0].status, -ECANCELED);
    assert_int_equal(p.k[2].status, -ECANCELED);
    assert_int_equal(p.k[0].cleaned, 1);
    assert_true(p.joined_at >= p.k[0].ended_at); /* still waited for the cleanup */
    assert_non_null(p.failed);
    co_test_assert_error_code(co_task_future(p.failed), "kid_failed");
    assert_int_equal(p.spawn_after, -ESHUTDOWN);
    assert_int_equal(co_future_state(co_task_future(t)), CO_FAILED);
    co_task_unref(p.failed);
    co_task_unref(t);
}

static void test_cancelled_parent_cancels_children(void **state)
{
    co_env *e = *state;
    parent p = { .n = 2, .k = { { .secs = 10, .cleanup = 0.03 }, { .secs = 10 } } };
    co_task *t;
    co_spawn(e->s, parent_body, &p, NULL, &t);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    co_task_cancel(t, "shutdown");
    co_sched_run_until(e->s, co_task_future(t));
    assert_int_equal(p.join, -ECANCELED);
    assert_int_equal(p.k[0].status, -ECANCELED);
    assert_int_equal(p.k[1].status, -ECANCELED);
    assert_true(p.joined_at >= p.k[0].ended_at);
    assert_int_equal(co_future_state(co_task_future(t)), CO_CANCELLED);
    co_task_unref(t);
}

static void test_outside_a_coroutine(void **state)
{
    (void)state;
    co_tg *g;
    assert_int_equal(co_tg_new(&g), -EPERM);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, co_env_setup, co_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_all_succeed_parent_ends_last),
        T(test_child_failure_cancels_siblings_and_parent),
        T(test_cancelled_parent_cancels_children),
        cmocka_unit_test(test_outside_a_coroutine),
    };
    return cmocka_run_group_tests_name("tg", tests, NULL, NULL);
}
