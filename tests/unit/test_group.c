/* test_group: a group's ready queues — priority then id order, removal from the middle,
 * pause, the parallel bound, and waits never held behind work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "srv_group.h"

static srv_group *group(uint32_t parallel)
{
    srv_group *g = srv_group_new((cp_str){ "g", 1 }, NULL, parallel);
    assert_non_null(g);
    return g;
}

static void item(srv_ready *it, int64_t prio, uint64_t id, bool work)
{
    *it = (srv_ready){ .priority = prio, .id = id, .idx = SRV_NOT_QUEUED, .work = work };
}

static void test_order_priority_then_id(void **state)
{
    (void)state;
    srv_group *g = group(0);
    enum { N = 2000 };
    srv_ready *its = calloc(N, sizeof *its);
    srand(7);
    for (int i = 0; i < N; i++) {
        item(&its[i], rand() % 11 - 5, (uint64_t)i + 1, true);
        assert_int_equal(srv_group_queue(g, &its[i]), 0);
    }
    /* Take out a third from the middle of the heap. */
    for (int i = 0; i < N; i += 3)
        srv_group_dequeue(g, &its[i]);
    assert_int_equal(srv_group_queued(g), N - (N + 2) / 3);
    srv_ready *prev = NULL, *it;
    size_t n = 0;
    while ((it = srv_group_pop(g))) {
        assert_int_equal(it->idx, SRV_NOT_QUEUED);
        assert_true((it->id - 1) % 3 != 0);
        if (prev)
            assert_true(prev->priority > it->priority || (prev->priority == it->priority && prev->id < it->id));
        prev = it;
        n++;
    }
    assert_int_equal(n, N - (N + 2) / 3);
    free(its);
    srv_group_free(g);
}

static void test_pause_parallel_and_waits(void **state)
{
    (void)state;
    srv_group *g = group(2);
    srv_ready w1, w2, w3, nap;
    item(&w1, 0, 1, true);
    item(&w2, 0, 2, true);
    item(&w3, 9, 3, true);
    item(&nap, -9, 4, false);
    srv_group_queue(g, &w1);
    srv_group_queue(g, &w2);
    srv_group_queue(g, &w3);
    g->paused = true;
    assert_null(srv_group_pop(g));
    g->paused = false;
    assert_ptr_equal(srv_group_pop(g), &w3);
    g->busy++;
    assert_ptr_equal(srv_group_pop(g), &w1);
    g->busy++;
    assert_null(srv_group_pop(g)); /* both slots taken */
    srv_group_queue(g, &nap);
    assert_ptr_equal(srv_group_pop(g), &nap); /* a wait is not held behind work */
    g->busy--;
    assert_ptr_equal(srv_group_pop(g), &w2);
    g->parallel = 0; /* no bound */
    g->busy = 100;
    srv_group_queue(g, &w1);
    assert_ptr_equal(srv_group_pop(g), &w1);
    /* A new group copies another's settings. */
    g->paused = true;
    srv_group *h = srv_group_new((cp_str){ "h", 1 }, g, 5);
    assert_true(h->paused);
    assert_int_equal(h->parallel, 0);
    srv_group_free(h);
    srv_group_free(g);
}

/* srv_group_admits says "start it now" only when queueing the item and popping would hand
 * back that same item; in each case below, exactly then: paused, a wait ahead, work ahead,
 * no free slot all say no. */
static bool admits_matches_pop(srv_group *g, srv_ready *it)
{
    bool admits = srv_group_admits(g, it);
    srv_group_queue(g, it);
    srv_ready *got = srv_group_pop(g);
    bool popped = got == it;
    if (got && got != it)
        srv_group_queue(g, got); /* put back what was ahead */
    if (!popped)
        srv_group_dequeue(g, it);
    assert_int_equal(admits, popped);
    return admits;
}

static void test_admits(void **state)
{
    (void)state;
    srv_group *g = group(1);
    srv_ready job, nap, ahead_job, ahead_nap;
    item(&job, 0, 10, true);
    item(&nap, 0, 11, false);
    item(&ahead_job, 0, 1, true);
    item(&ahead_nap, 0, 2, false);
    assert_true(admits_matches_pop(g, &job));
    assert_true(admits_matches_pop(g, &nap));
    g->paused = true;
    assert_false(admits_matches_pop(g, &job));
    assert_false(admits_matches_pop(g, &nap));
    g->paused = false;
    g->busy = 1; /* the one slot is taken */
    assert_false(admits_matches_pop(g, &job));
    assert_true(admits_matches_pop(g, &nap)); /* a wait takes no slot */
    g->busy = 0;
    srv_group_queue(g, &ahead_job);
    assert_false(admits_matches_pop(g, &job)); /* work queued before it */
    assert_true(admits_matches_pop(g, &nap));
    srv_group_dequeue(g, &ahead_job);
    srv_group_queue(g, &ahead_nap);
    assert_false(admits_matches_pop(g, &job)); /* a wait queued before it */
    assert_false(admits_matches_pop(g, &nap));
    srv_group_dequeue(g, &ahead_nap);
    g->parallel = 0; /* no bound */
    g->busy = 100;
    assert_true(admits_matches_pop(g, &job));
    assert_int_equal(srv_group_queued(g), 0);
    srv_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_priority_then_id),
        cmocka_unit_test(test_pause_parallel_and_waits),
        cmocka_unit_test(test_admits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
