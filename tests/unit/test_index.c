/* test_index: the id index — consecutive ids, deletion in id order, growth, a random
 * model check, and probe lengths that no history of ids can stretch (a block of old ids
 * kept live while new ids pass the capacity: the case that once made submits 100x
 * slower). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "srv_index.h"

/* A value for id: any non-NULL pointer that encodes it. */
static void *val(uint64_t id)
{
    return (void *)(uintptr_t)(id * 2 + 1);
}

static void test_consecutive_ids(void **state)
{
    (void)state;
    srv_index ix;
    srv_index_init(&ix);
    assert_null(srv_index_get(&ix, 1));
    enum { N = 50000 };
    for (uint64_t id = 1; id <= N; id++)
        assert_int_equal(srv_index_put(&ix, id, val(id)), 0);
    assert_int_equal(ix.count, N);
    assert_true(ix.cap >= 2 * N);
    for (uint64_t id = 1; id <= N; id++)
        assert_ptr_equal(srv_index_get(&ix, id), val(id));
    assert_null(srv_index_get(&ix, 0));
    assert_null(srv_index_get(&ix, N + 1));
    srv_index_del(&ix, N + 7); /* absent: nothing happens */
    for (uint64_t id = 1; id <= N; id++) {
        srv_index_del(&ix, id);
        assert_null(srv_index_get(&ix, id));
        if (id < N)
            assert_ptr_equal(srv_index_get(&ix, id + 1), val(id + 1));
    }
    assert_int_equal(ix.count, 0);
    srv_index_free(&ix);
}

/* 90,000 old ids stay live (long jobs) while new ids run past the capacity and old ones
 * are evicted behind them (retention): inserts and deletions stay cheap throughout. With
 * the identity hash the new ids landed on the live block and each insert shifted all of
 * it by one slot (~90,000 moves an insert; the test then ran for 40 s). */
static void test_live_block_across_wrap(void **state)
{
    (void)state;
    srv_index ix;
    srv_index_init(&ix);
    enum { BLOCK = 90000, WINDOW = 10000 };
    for (uint64_t id = 1; id <= BLOCK; id++)
        assert_int_equal(srv_index_put(&ix, id, val(id)), 0);
    size_t cap = ix.cap;
    uint64_t first = (uint64_t)cap + 1; /* past the capacity: wraps onto the block */
    size_t worst = 0;
    for (uint64_t id = first; id < first + 4 * cap; id++) {
        uint64_t before = ix.moves;
        assert_int_equal(srv_index_put(&ix, id, val(id)), 0);
        if (id >= first + WINDOW)
            srv_index_del(&ix, id - WINDOW);
        size_t cost = (size_t)(ix.moves - before);
        worst = cost > worst ? cost : worst;
        if (worst >= 64)
            break; /* already failed: do not spend a minute on the rest */
    }
    print_message("capacity %zu, most slots written by one insert and deletion: %zu, longest probe %zu\n",
                  ix.cap, worst, srv_index_max_probe(&ix));
    assert_true(worst < 64);
    assert_true(srv_index_max_probe(&ix) < 64);
    for (uint64_t id = 1; id <= BLOCK; id += 997)
        assert_ptr_equal(srv_index_get(&ix, id), val(id));
    srv_index_free(&ix);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random puts, gets and deletes over a small id range, against a plain array. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { RANGE = 20000, OPS = 400000 };
    unsigned char *in = calloc(RANGE, 1);
    assert_non_null(in);
    srv_index ix;
    srv_index_init(&ix);
    size_t n = 0;
    for (int i = 0; i < OPS; i++) {
        uint64_t id = rng() % RANGE + 1;
        switch (rng() % 3) {
        case 0:
            if (!in[id - 1]) {
                assert_int_equal(srv_index_put(&ix, id, val(id)), 0);
                in[id - 1] = 1;
                n++;
            }
            break;
        case 1:
            if (in[id - 1])
                n--;
            srv_index_del(&ix, id);
            in[id - 1] = 0;
            break;
        default:
            if (in[id - 1])
                assert_ptr_equal(srv_index_get(&ix, id), val(id));
            else
                assert_null(srv_index_get(&ix, id));
        }
        assert_int_equal(ix.count, n);
    }
    for (uint64_t id = 1; id <= RANGE; id++)
        assert_true((srv_index_get(&ix, id) != NULL) == in[id - 1]);
    srv_index_free(&ix);
    free(in);
}

/* Ids near the top of their range hash like any other. */
static void test_large_ids(void **state)
{
    (void)state;
    srv_index ix;
    srv_index_init(&ix);
    uint64_t top = (uint64_t)INT64_MAX;
    for (uint64_t i = 0; i < 5000; i++)
        assert_int_equal(srv_index_put(&ix, top - i, val(i)), 0);
    for (uint64_t i = 0; i < 5000; i++)
        assert_ptr_equal(srv_index_get(&ix, top - i), val(i));
    assert_true(srv_index_max_probe(&ix) < 64);
    srv_index_free(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consecutive_ids),
        cmocka_unit_test(test_live_block_across_wrap),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_large_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
