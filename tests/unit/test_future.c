/* test_future: outcomes and done-callbacks — once each, in the order added, never inside
 * the call that completed the future; added after completion: scheduled at once. */
#include <errno.h>

#include "co_test.h"

typedef struct trace {
    int order[16];
    int n;
} trace;

typedef struct tcb {
    trace *tr;
    int id;
} tcb;

static void record(co_future *f, void *arg)
{
    tcb *c = arg;
    (void)f;
    c->tr->order[c->tr->n++] = c->id;
}

static void run_loop(co_env *e)
{
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

static void test_callbacks_order_once(void **state)
{
    co_env *e = *state;
    co_future *f;
    assert_int_equal(co_future_new(e->s, &f), 0);
    trace tr = { .n = 0 };
    tcb c1 = { &tr, 1 }, c2 = { &tr, 2 }, c3 = { &tr, 3 }, c4 = { &tr, 4 };
    co_cb r1, r2;
    co_future_add_cb(f, &r1, record, &c1);
    assert_int_equal(co_future_on_done(f, record, &c2), 0);
    co_future_add_cb(f, &r2, record, &c3);
    co_value v = co_test_uint_value(7);
    assert_int_equal(co_future_set_result(f, &v), 0);
    assert_int_equal(tr.n, 0); /* not re-entrantly from set_result */
    assert_int_equal(co_future_state(f), CO_SUCCEEDED);
    /* Added after completion but before the dispatch ran: still after the others. */
    assert_int_equal(co_future_on_done(f, record, &c4), 0);
    run_loop(e);
    assert_int_equal(tr.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tr.order[i], i + 1);
    run_loop(e);
    assert_int_equal(tr.n, 4); /* once each */

    /* Added to a long-done future: scheduled at once, runs on the next turn. */
    tcb c5 = { &tr, 5 };
    co_cb r5;
    co_future_add_cb(f, &r5, record, &c5);
    assert_int_equal(tr.n, 4);
    run_loop(e);
    assert_int_equal(tr.n, 5);
    assert_int_equal(tr.order[4], 5);
    assert_int_equal(co_test_uint_of(co_future_value(f)), 7);
    co_future_unref(f);
}

static void test_remove_callback(void **state)
{
    co_env *e = *state;
    co_future *f;
    assert_int_equal(co_future_new(e->s, &f), 0);
    trace tr = { .n = 0 };
    tcb c1 = { &tr, 1 }, c2 = { &tr, 2 }, c3 = { &tr, 3 };
    co_cb r1, r2, r3;
    co_future_add_cb(f, &r1, record, &c1);
    co_future_add_cb(f, &r2, record, &c2);
    co_future_add_cb(f, &r3, record, &c3);
    co_future_remove_cb(&r2);
    co_value v = CO_VALUE_NIL;
    co_future_set_result(f, &v);
    co_future_remove_cb(&r3); /* removed after completion, before dispatch: never runs */
    run_loop(e);
    assert_int_equal(tr.n, 1);
    assert_int_equal(tr.order[0], 1);
    co_future_remove_cb(&r1); /* after it ran: a no-op */
    co_future_unref(f);
}

static void test_exactly_one_outcome(void **state)
{
    co_env *e = *state;
    co_future *f;
    assert_int_equal(co_future_new(e->s, &f), 0);
    co_value err;
    assert_int_equal(co_value_error(&err, "boom", "it broke"), 0);
    assert_int_equal(co_future_set_error(f, &err), 0);
    assert_null(err.data); /* moved in */
    co_value v = co_test_uint_value(1);
    assert_int_equal(co_future_set_result(f, &v), -EINVAL);
    co_value_free(&v);
    assert_false(co_future_cancel(f, "late"));
    assert_int_equal(co_future_state(f), CO_FAILED);
    co_test_assert_error_code(f, "boom");
    co_future_unref(f);

    assert_int_equal(co_future_new(e->s, &f), 0);
    assert_true(co_future_cancel(f, "no longer needed"));
    assert_int_equal(co_future_state(f), CO_CANCELLED);
    co_test_assert_error_code(f, "cancelled");
    co_test_assert_str_field(co_future_value(f), "message", "no longer needed");
    co_future_unref(f);
}

static void unref_in_cb(co_future *f, void *arg)
{
    (void)arg;
    co_future_unref(f); /* dropping the last user reference inside a callback is safe */
}

static void test_unref_inside_callback(void **state)
{
    co_env *e = *state;
    co_future *f;
    assert_int_equal(co_future_new(e->s, &f), 0);
    assert_int_equal(co_future_on_done(f, unref_in_cb, NULL), 0);
    co_value v = CO_VALUE_NIL;
    co_future_set_result(f, &v);
    run_loop(e);
    assert_int_equal(co_sched_live(e->s), 0);
}

static void test_take_value(void **state)
{
    co_env *e = *state;
    co_future *f;
    assert_int_equal(co_future_new(e->s, &f), 0);
    co_value out = co_test_uint_value(1);
    assert_int_equal(co_future_take_value(f, &out), -EINVAL); /* pending: nothing to take */
    co_value_free(&out);
    co_value v = co_test_uint_value(70000);
    uint8_t *bytes = v.data;
    assert_int_equal(co_future_set_result(f, &v), 0);
    assert_int_equal(co_future_take_value(f, &out), 0);
    assert_ptr_equal(out.data, bytes); /* moved, not copied */
    assert_int_equal(co_test_uint_of(&out), 70000);
    assert_int_equal(co_future_value(f)->len, 0); /* left nil */
    assert_int_equal(co_future_state(f), CO_SUCCEEDED);
    co_value_free(&out);
    co_future_unref(f);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(co_state_name(CO_PENDING), "pending");
    assert_string_equal(co_state_name(CO_SUCCEEDED), "succeeded");
    assert_string_equal(co_state_name(CO_FAILED), "failed");
    assert_string_equal(co_state_name(CO_CANCELLED), "cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_callbacks_order_once, co_env_setup, co_env_teardown),
        cmocka_unit_test_setup_teardown(test_remove_callback, co_env_setup, co_env_teardown),
        cmocka_unit_test_setup_teardown(test_exactly_one_outcome, co_env_setup, co_env_teardown),
        cmocka_unit_test_setup_teardown(test_unref_inside_callback, co_env_setup, co_env_teardown),
        cmocka_unit_test_setup_teardown(test_take_value, co_env_setup, co_env_teardown),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests_name("future", tests, NULL, NULL);
}
