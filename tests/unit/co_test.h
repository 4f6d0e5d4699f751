/* co_test.h: shared fixture for the runtime's unit tests — a private libuv loop with a
 * scheduler on it, and a teardown that fails the test if anything leaked: a live future
 * or task, a coroutine holding a stack, or a libuv handle left open (uv_loop_close). */
#ifndef CO_TEST_H
#define CO_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>

#include <cmocka.h>
#include <msgpack.h>

#include "co.h"

typedef struct co_env {
    uv_loop_t loop;
    co_sched *s;
} co_env;

static inline int co_env_setup_with(void **state, const co_sched_config *cfg)
{
    co_env *e = calloc(1, sizeof *e);
    if (!e || uv_loop_init(&e->loop) != 0 || co_sched_new(&e->loop, cfg, &e->s) != 0)
        return -1;
    *state = e;
    return 0;
}

static inline int co_env_setup(void **state)
{
    return co_env_setup_with(state, NULL);
}

static inline int co_env_teardown(void **state)
{
    co_env *e = *state;
    assert_int_equal(co_sched_live(e->s), 0);
    assert_int_equal(co_sched_coroutines(e->s), 0);
    assert_int_equal(co_sched_free(e->s), 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    free(e);
    return 0;
}

static inline double co_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Spawn fn(arg) as a coroutine, run the loop until it is done, return it (a reference). */
static inline co_task *co_test_run(co_env *e, co_fn fn, void *arg)
{
    co_task *t = NULL;
    assert_int_equal(co_spawn(e->s, fn, arg, NULL, &t), 0);
    assert_int_equal(co_sched_run_until(e->s, co_task_future(t)), 0);
    return t;
}

/* Unpack a value (asserting it is one well-formed object). */
static inline void co_test_unpack(const co_value *v, msgpack_unpacked *u)
{
    size_t len, off = 0;
    const uint8_t *b = co_value_bytes(v, &len);
    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, (const char *)b, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
}

/* The field `key` of a map object, or NULL. */
static inline const msgpack_object *co_test_field(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0)
            return &kv->val;
    }
    return NULL;
}

/* Assert that a string field of the value's map equals `want`. */
static inline void co_test_assert_str_field(const co_value *v, const char *key, const char *want)
{
    msgpack_unpacked u;
    co_test_unpack(v, &u);
    const msgpack_object *o = co_test_field(&u.data, key);
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
    msgpack_unpacked_destroy(&u);
}

static inline void co_test_assert_error_code(co_future *f, const char *code)
{
    co_test_assert_str_field(co_future_value(f), "code", code);
}

/* A packed positive integer value. */
static inline co_value co_test_uint_value(uint64_t x)
{
    uint8_t buf[9];
    size_t n = co_value_put_uint(buf, x);
    co_value v;
    assert_int_equal(co_value_copy(&v, buf, n), 0);
    return v;
}

static inline uint64_t co_test_uint_of(const co_value *v)
{
    msgpack_unpacked u;
    co_test_unpack(v, &u);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    uint64_t x = u.data.via.u64;
    msgpack_unpacked_destroy(&u);
    return x;
}

/* A coroutine that sleeps `secs`, then succeeds with secs*1000 (or fails with code
 * "kid_failed" when `fail`). Cancelled, it spends `cleanup` seconds cleaning up first. */
typedef struct co_test_sleeper {
    double secs, cleanup;
    int fail;
    int status, cleaned; /* what its sleep returned; whether cleanup ran */
    double ended_at;
} co_test_sleeper;

static inline int co_test_sleeper_body(void *arg)
{
    co_test_sleeper *s = arg;
    s->status = co_sleep(s->secs);
    if (s->status == -ECANCELED) {
        if (s->cleanup > 0)
            co_sleep(s->cleanup);
        s->cleaned = 1;
        s->ended_at = co_now();
        return -ECANCELED;
    }
    s->ended_at = co_now();
    if (s->fail)
        return co_fail("kid_failed", "on purpose");
    co_value v = co_test_uint_value((uint64_t)(s->secs * 1000));
    return co_return(&v);
}

#endif
