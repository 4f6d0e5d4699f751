/* test_group: groups — a uid's queue in priority then id order, removal from the middle,
 * pause, the parallel bound, waits never held behind work, slots shared across uids,
 * priorities across uids, and a group's lifetime: made by a submit and counted against
 * its maker, gone when empty; configured by root and kept, with who may submit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srv_group.h"

typedef struct fixture {
    srv_accts accts;
    srv_groups gs;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    srv_accts_init(&f->accts, 4242, 0, NULL);
    if (srv_groups_init(&f->gs, 4, 3) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    srv_groups_free(&f->gs);
    srv_accts_free(&f->accts);
    free(f);
    return 0;
}

static srv_group *group(fixture *f, const char *name, uint32_t parallel)
{
    srv_group *g = srv_groups_configure(&f->gs, (cp_str){ name, (uint32_t)strlen(name) });
    assert_non_null(g);
    g->parallel = parallel;
    return g;
}

/* A ready item of uid's, joined to the group as a record's would be. */
static void item(srv_group *g, srv_ready *it, uint32_t uid, int64_t prio, uint64_t id, bool work)
{
    *it = (srv_ready){ .priority = prio, .id = id, .idx = SRV_NOT_QUEUED, .work = work };
    it->user = srv_group_join(g, uid);
    assert_non_null(it->user);
}

static void leave_all(srv_ready *its, size_t n)
{
    for (size_t i = 0; i < n; i++)
        srv_group_leave(its[i].user);
}

static void test_order_priority_then_id(void **state)
{
    srv_group *g = group(*state, "g", 0);
    enum { N = 2000 };
    srv_ready *its = calloc(N, sizeof *its);
    srand(7);
    for (int i = 0; i < N; i++) {
        item(g, &its[i], 1000, rand() % 11 - 5, (uint64_t)i + 1, true);
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
    leave_all(its, N);
    free(its);
}

static void test_pause_parallel_and_waits(void **state)
{
    srv_group *g = group(*state, "g", 2);
    srv_ready w1, w2, w3, nap;
    item(g, &w1, 7, 0, 1, true);
    item(g, &w2, 7, 0, 2, true);
    item(g, &w3, 7, 9, 3, true);
    item(g, &nap, 7, -9, 4, false);
    srv_group_queue(g, &w1);
    srv_group_queue(g, &w2);
    srv_group_queue(g, &w3);
    g->paused = true;
    assert_null(srv_group_pop(g));
    g->paused = false;
    assert_ptr_equal(srv_group_pop(g), &w3);
    srv_group_take_slot(g, &w3);
    assert_ptr_equal(srv_group_pop(g), &w1);
    srv_group_take_slot(g, &w1);
    assert_null(srv_group_pop(g)); /* both slots taken */
    srv_group_queue(g, &nap);
    assert_ptr_equal(srv_group_pop(g), &nap); /* a wait is not held behind work */
    srv_group_give_slot(g, &w3);
    assert_ptr_equal(srv_group_pop(g), &w2);
    srv_group_take_slot(g, &w2);
    g->parallel = 0; /* no bound */
    srv_group_queue(g, &w3);
    assert_ptr_equal(srv_group_pop(g), &w3);
    srv_group_give_slot(g, &w1);
    srv_group_give_slot(g, &w2);
    assert_int_equal(g->busy, 0);
    srv_ready all[] = { w1, w2, w3, nap };
    leave_all(all, 4);
}

/* srv_group_admits says "start it now" only when queueing the item and popping would hand
 * back that same item; in each case below but one, exactly then: paused, a wait ahead,
 * work ahead, no free slot all say no. With another uid's work queued it says no although
 * the queue might pick this one (conservative: the queue then decides). */
static bool admits_implies_pop(srv_group *g, srv_ready *it, bool exactly)
{
    bool admits = srv_group_admits(g, it);
    srv_group_queue(g, it);
    srv_ready *got = srv_group_pop(g);
    bool popped = got == it;
    if (got && got != it)
        srv_group_queue(g, got); /* put back what was ahead */
    if (!popped)
        srv_group_dequeue(g, it);
    if (exactly)
        assert_int_equal(admits, popped);
    else
        assert_true(!admits || popped);
    return admits;
}

static bool admits_matches_pop(srv_group *g, srv_ready *it)
{
    return admits_implies_pop(g, it, true);
}

static void test_admits(void **state)
{
    srv_group *g = group(*state, "g", 1);
    srv_ready job, nap, ahead_job, ahead_nap, other;
    item(g, &job, 5, 0, 10, true);
    item(g, &nap, 5, 0, 11, false);
    item(g, &ahead_job, 5, 0, 1, true);
    item(g, &ahead_nap, 5, 0, 2, false);
    item(g, &other, 6, 0, 3, true);
    assert_true(admits_matches_pop(g, &job));
    assert_true(admits_matches_pop(g, &nap));
    g->paused = true;
    assert_false(admits_matches_pop(g, &job));
    assert_false(admits_matches_pop(g, &nap));
    g->paused = false;
    srv_group_take_slot(g, &other); /* the one slot is taken */
    assert_false(admits_matches_pop(g, &job));
    assert_true(admits_matches_pop(g, &nap)); /* a wait takes no slot */
    srv_group_give_slot(g, &other);
    srv_group_queue(g, &ahead_job);
    assert_false(admits_matches_pop(g, &job)); /* work queued before it */
    assert_true(admits_matches_pop(g, &nap));
    srv_group_dequeue(g, &ahead_job);
    srv_group_queue(g, &other);
    assert_false(admits_implies_pop(g, &job, false)); /* another uid's work queued */
    srv_group_dequeue(g, &other);
    srv_group_queue(g, &ahead_nap);
    assert_false(admits_matches_pop(g, &job)); /* a wait queued before it */
    assert_false(admits_matches_pop(g, &nap));
    srv_group_dequeue(g, &ahead_nap);
    g->parallel = 0; /* no bound */
    assert_true(admits_matches_pop(g, &job));
    assert_int_equal(srv_group_queued(g), 0);
    srv_ready all[] = { job, nap, ahead_job, ahead_nap, other };
    leave_all(all, 5);
}

/* One uid queued 50 long jobs before another queued 10, in a group of 4 slots: as slots
 * free, the one holding fewer gets the next, so the second uid runs 2 of 4 at once from
 * its second start on, instead of waiting behind all 50. */
static void test_slots_shared_across_uids(void **state)
{
    srv_group *g = group(*state, "render", 4);
    srv_ready a[50], b[10];
    for (int i = 0; i < 50; i++) {
        item(g, &a[i], 1000, 0, (uint64_t)i + 1, true);
        srv_group_queue(g, &a[i]);
    }
    srv_ready *running[4];
    for (int i = 0; i < 4; i++) { /* the first uid had the group to itself: all 4 slots */
        running[i] = srv_group_pop(g);
        assert_int_equal(running[i]->user->uid, 1000);
        srv_group_take_slot(g, running[i]);
    }
    for (int i = 0; i < 10; i++) {
        item(g, &b[i], 2000, 0, (uint64_t)i + 100, true);
        srv_group_queue(g, &b[i]);
    }
    assert_null(srv_group_pop(g)); /* no slot free: no preemption */
    int b_started = 0;
    for (int round = 0; round < 8; round++) {
        srv_ready *done = running[round % 4];
        srv_group_give_slot(g, done);
        srv_ready *next = srv_group_pop(g);
        assert_non_null(next);
        srv_group_take_slot(g, next);
        running[round % 4] = next;
        b_started += next->user->uid == 2000;
        size_t b_busy = b[0].user->busy, a_busy = a[0].user->busy;
        assert_true(b_busy <= 2 && a_busy >= 2); /* never more than its half, once it has it */
    }
    assert_int_equal(b_started, 4); /* of 8 slots freed, half went to the second uid */
    for (int i = 0; i < 4; i++)
        srv_group_give_slot(g, running[i]);
    while (srv_group_pop(g))
        ;
    leave_all(a, 50);
    leave_all(b, 10);
}

/* One slot: as it frees, the uids that have work take turns (each holds none at that
 * moment, so holding fewer cannot decide). */
static void test_one_slot_takes_turns(void **state)
{
    srv_group *g = group(*state, "g", 1);
    srv_ready a[4], b[2];
    for (int i = 0; i < 4; i++) {
        item(g, &a[i], 1000, 0, (uint64_t)i + 1, true);
        srv_group_queue(g, &a[i]);
    }
    srv_ready *run = srv_group_pop(g);
    srv_group_take_slot(g, run);
    for (int i = 0; i < 2; i++) {
        item(g, &b[i], 0, 0, (uint64_t)i + 10, true);
        srv_group_queue(g, &b[i]);
    }
    uint32_t order[5];
    for (int i = 0; i < 5; i++) {
        srv_group_give_slot(g, run);
        run = srv_group_pop(g);
        srv_group_take_slot(g, run);
        order[i] = run->user->uid;
    }
    srv_group_give_slot(g, run);
    uint32_t want[5] = { 0, 1000, 0, 1000, 1000 };
    assert_memory_equal(order, want, sizeof want);
    leave_all(a, 4);
    leave_all(b, 2);
}

/* Priority still comes first across uids: root's task above 0 goes ahead of another
 * uid's, even while root holds more slots. */
static void test_priority_across_uids(void **state)
{
    srv_group *g = group(*state, "g", 2);
    srv_ready r1, r2, u1;
    item(g, &r1, 0, 0, 1, true);
    item(g, &r2, 0, 5, 3, true);
    item(g, &u1, 1000, 0, 2, true);
    srv_group_queue(g, &r1);
    assert_ptr_equal(srv_group_pop(g), &r1);
    srv_group_take_slot(g, &r1);
    srv_group_queue(g, &u1);
    srv_group_queue(g, &r2);
    assert_ptr_equal(srv_group_pop(g), &r2); /* priority 5 over 0, though root holds a slot */
    srv_group_take_slot(g, &r2);
    srv_group_give_slot(g, &r1);
    assert_ptr_equal(srv_group_pop(g), &u1);
    srv_group_take_slot(g, &u1);
    srv_group_give_slot(g, &r2);
    srv_group_give_slot(g, &u1);
    srv_ready all[] = { r1, r2, u1 };
    leave_all(all, 3);
}

static void test_lifetime_and_shares(void **state)
{
    fixture *f = *state;
    cp_error err;
    srv_acct *nobody = srv_acct_get(&f->accts, 65534), *root = srv_acct_get(&f->accts, 0);
    srv_group *g[4];
    /* A submit names a group into being: it is its maker's, up to 3 here. */
    for (int i = 0; i < 3; i++) {
        char name[8] = "mine0";
        name[4] = (char)('0' + i);
        assert_int_equal(srv_groups_for_submit(&f->gs, (cp_str){ name, 5 }, nobody, &g[i], &err), 0);
        assert_false(g[i]->configured);
    }
    assert_int_equal(nobody->groups, 3);
    assert_int_equal(srv_groups_for_submit(&f->gs, (cp_str){ "mine3", 5 }, nobody, &g[3], &err), -EINVAL);
    assert_string_equal(err.code, CP_QUOTA_EXCEEDED);
    /* Root's share is not nobody's, and root has no bound; an existing group is shared. */
    assert_int_equal(srv_groups_for_submit(&f->gs, (cp_str){ "mine0", 5 }, root, &g[3], &err), 0);
    assert_ptr_equal(g[3], g[0]);
    srv_group_unref(g[3]);
    /* Empty, it goes, and nobody's share with it. */
    size_t before = f->gs.n;
    srv_group_unref(g[2]);
    assert_int_equal(f->gs.n, before - 1);
    assert_null(srv_groups_find(&f->gs, (cp_str){ "mine2", 5 }));
    assert_int_equal(nobody->groups, 2);
    /* Root configures one of nobody's: root's now, it stays, and may name its users. */
    assert_ptr_equal(srv_groups_configure(&f->gs, (cp_str){ "mine1", 5 }), g[1]);
    assert_int_equal(nobody->groups, 1);
    srv_group_unref(g[1]);
    assert_ptr_equal(srv_groups_find(&f->gs, (cp_str){ "mine1", 5 }), g[1]);
    uint64_t only[] = { 1000 };
    assert_int_equal(srv_group_allow(g[1], only, 1), 0);
    srv_group *got;
    assert_int_equal(srv_groups_for_submit(&f->gs, (cp_str){ "mine1", 5 }, nobody, &got, &err), -EINVAL);
    assert_string_equal(err.code, CP_PERMISSION_DENIED);
    assert_int_equal(srv_groups_for_submit(&f->gs, (cp_str){ "mine1", 5 }, root, &got, &err), 0);
    srv_group_unref(got);
    assert_int_equal(srv_group_allow(g[1], NULL, 0), 0); /* everyone again */
    assert_int_equal(srv_groups_for_submit(&f->gs, (cp_str){ "mine1", 5 }, nobody, &got, &err), 0);
    srv_group_unref(got);
    srv_group_unref(g[0]);
    assert_int_equal(nobody->groups, 0);
    srv_acct_unref(nobody);
    srv_acct_unref(root);
}

/* Many groups, names that share a hash chain or not: each is found, each goes. */
static void test_many_names(void **state)
{
    fixture *f = *state;
    enum { N = 3000 };
    srv_group **gs = calloc(N, sizeof *gs);
    char name[16];
    for (int i = 0; i < N; i++) {
        int n = snprintf(name, sizeof name, "g%d", i);
        gs[i] = srv_groups_configure(&f->gs, (cp_str){ name, (uint32_t)n });
        assert_non_null(gs[i]);
    }
    for (int i = 0; i < N; i++) {
        int n = snprintf(name, sizeof name, "g%d", i);
        assert_ptr_equal(srv_groups_find(&f->gs, (cp_str){ name, (uint32_t)n }), gs[i]);
    }
    assert_null(srv_groups_find(&f->gs, (cp_str){ "g3000", 5 }));
    free(gs);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_order_priority_then_id), T(test_pause_parallel_and_waits), T(test_admits),
        T(test_slots_shared_across_uids), T(test_one_slot_takes_turns), T(test_priority_across_uids), T(test_lifetime_and_shares),
        T(test_many_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
