/* test_value: the runtime's own MessagePack encoders, checked by decoding with msgpack-c
 * at every length boundary where the encoding changes form. */
#include <errno.h>

#include "co_test.h"

static void test_nil_costs_nothing(void **state)
{
    (void)state;
    co_value v;
    assert_int_equal(co_value_copy(&v, "\xc0", 1), 0);
    assert_null(v.data);
    size_t len;
    const uint8_t *b = co_value_bytes(&v, &len);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], 0xc0);
    co_value_free(&v);
}

static void check_error(size_t msglen)
{
    char *msg = malloc(msglen + 1);
    memset(msg, 'x', msglen);
    msg[msglen] = 0;
    co_value v;
    assert_int_equal(co_value_error(&v, "timeout", msg), 0);
    co_test_assert_str_field(&v, "code", "timeout");
    co_test_assert_str_field(&v, "message", msg);
    co_value_free(&v);
    free(msg);
}

static void test_error_map(void **state)
{
    (void)state;
    size_t lens[] = { 0, 31, 32, 255, 256, 65535, 65536, 100000 };
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++)
        check_error(lens[i]);
}

static void check_array(size_t n)
{
    co_value *items = calloc(n ? n : 1, sizeof *items);
    const co_value **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    for (size_t i = 0; i < n; i++) {
        items[i] = i % 3 == 2 ? CO_VALUE_NIL : co_test_uint_value(i * 1000);
        ptrs[i] = &items[i];
    }
    co_value arr;
    assert_int_equal(co_value_array(&arr, ptrs, n), 0);
    msgpack_unpacked u;
    co_test_unpack(&arr, &u);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u.data.via.array.size, n);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *o = &u.data.via.array.ptr[i];
        if (i % 3 == 2) {
            assert_int_equal(o->type, MSGPACK_OBJECT_NIL);
        } else {
            assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
            assert_int_equal(o->via.u64, i * 1000);
        }
    }
    msgpack_unpacked_destroy(&u);
    co_value_free(&arr);
    for (size_t i = 0; i < n; i++)
        co_value_free(&items[i]);
    free(items);
    free(ptrs);
}

static void test_array(void **state)
{
    (void)state;
    size_t ns[] = { 0, 1, 15, 16, 65535, 65536 };
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        check_array(ns[i]);
}

static void test_uint_forms(void **state)
{
    (void)state;
    uint64_t xs[] = { 0, 127, 128, 255, 256, 65535, 65536, 0xffffffffu, 0x100000000ull, UINT64_MAX };
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        co_value v = co_test_uint_value(xs[i]);
        assert_true(co_test_uint_of(&v) == xs[i]);
        co_value_free(&v);
    }
}

/* Packs with msgpack-c: the reader must agree with an independent writer. */
typedef struct packed {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} packed;

static void packed_init(packed *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void measure_ok(const packed *b, size_t want_len, unsigned want_depth)
{
    size_t used = 0;
    unsigned depth = 99;
    assert_int_equal(co_value_measure((const uint8_t *)b->sb.data, b->sb.size, CO_VALUE_DEPTH_MAX, &used, &depth),
                     0);
    assert_int_equal(used, want_len);
    assert_int_equal(depth, want_depth);
}

static void test_measure(void **state)
{
    (void)state;
    packed b;
    packed_init(&b);
    /* Every scalar form: depth 0. */
    msgpack_pack_nil(&b.pk);
    measure_ok(&b, 1, 0);
    int64_t ints[] = { 0, -1, -33, 200, -200, 70000, -70000, 1ll << 40, -(1ll << 40) };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        msgpack_sbuffer_clear(&b.sb);
        msgpack_pack_int64(&b.pk, ints[i]);
        measure_ok(&b, b.sb.size, 0);
    }
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_double(&b.pk, 1.5);
    measure_ok(&b, 9, 0);
    size_t lens[] = { 0, 31, 32, 255, 256, 65536 };
    char *big = calloc(1, 65536);
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        msgpack_sbuffer_clear(&b.sb);
        msgpack_pack_str_with_body(&b.pk, big, lens[i]);
        measure_ok(&b, b.sb.size, 0);
        msgpack_sbuffer_clear(&b.sb);
        msgpack_pack_bin_with_body(&b.pk, big, lens[i]);
        measure_ok(&b, b.sb.size, 0);
        msgpack_sbuffer_clear(&b.sb);
        msgpack_pack_ext_with_body(&b.pk, big, lens[i], 5);
        measure_ok(&b, b.sb.size, 0);
    }
    free(big);
    /* Containers: an empty one is a level; maps count keys and values. */
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_array(&b.pk, 0);
    measure_ok(&b, 1, 1);
    msgpack_sbuffer_clear(&b.sb);
    msgpack_pack_array(&b.pk, 3); /* [1, {"k": [[]]}, 2] */
    msgpack_pack_int(&b.pk, 1);
    msgpack_pack_map(&b.pk, 1);
    msgpack_pack_str_with_body(&b.pk, "k", 1);
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_array(&b.pk, 0);
    msgpack_pack_int(&b.pk, 2);
    size_t whole = b.sb.size;
    msgpack_pack_int(&b.pk, 3); /* a second object after it: not measured */
    measure_ok(&b, whole, 4);
    /* 17 levels: fine at 17, -E2BIG at 16. */
    msgpack_sbuffer_clear(&b.sb);
    for (int i = 0; i < 17; i++)
        msgpack_pack_array(&b.pk, i < 16 ? 1 : 0);
    size_t used;
    unsigned depth;
    assert_int_equal(co_value_measure((const uint8_t *)b.sb.data, b.sb.size, 17, &used, &depth), 0);
    assert_int_equal(depth, 17);
    assert_int_equal(co_value_measure((const uint8_t *)b.sb.data, b.sb.size, 16, &used, &depth), -E2BIG);
    /* Cut short, bad bytes, counts the bytes cannot hold. */
    assert_int_equal(co_value_measure((const uint8_t *)b.sb.data, b.sb.size - 1, 64, &used, &depth), -EINVAL);
    const uint8_t bad[][6] = { { 0xc1 }, { 0xd9, 5, 'a' }, { 0xdd, 0xff, 0xff, 0xff, 0xff }, { 0xcd, 1 },
                               { 0x92, 0x01 }, { 0xc7, 9, 1 } };
    const size_t badlen[] = { 1, 3, 5, 2, 2, 3 };
    for (size_t i = 0; i < sizeof badlen / sizeof *badlen; i++)
        assert_int_equal(co_value_measure(bad[i], badlen[i], 64, &used, &depth), -EINVAL);
    assert_int_equal(co_value_measure(bad[0], 0, 64, &used, &depth), -EINVAL);
    msgpack_sbuffer_destroy(&b.sb);
}

static void test_get_str(void **state)
{
    (void)state;
    packed b;
    packed_init(&b);
    /* {"n": [1, {"code": 2}], "code": "x", "message": "hello", "m2": 7} */
    msgpack_pack_map(&b.pk, 4);
    msgpack_pack_str_with_body(&b.pk, "n", 1);
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_int(&b.pk, 1);
    msgpack_pack_map(&b.pk, 1);
    msgpack_pack_str_with_body(&b.pk, "code", 4);
    msgpack_pack_int(&b.pk, 2);
    msgpack_pack_str_with_body(&b.pk, "code", 4);
    msgpack_pack_str_with_body(&b.pk, "x", 1);
    msgpack_pack_str_with_body(&b.pk, "message", 7);
    msgpack_pack_str_with_body(&b.pk, "hello", 5);
    msgpack_pack_str_with_body(&b.pk, "m2", 2);
    msgpack_pack_int(&b.pk, 7);
    co_value v;
    assert_int_equal(co_value_copy(&v, b.sb.data, b.sb.size), 0);
    const char *s;
    size_t n;
    assert_int_equal(co_value_get_str(&v, "code", &s, &n), 0); /* not the nested one */
    assert_int_equal(n, 1);
    assert_memory_equal(s, "x", 1);
    assert_int_equal(co_value_get_str(&v, "message", &s, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(s, "hello", 5);
    assert_int_equal(co_value_get_str(&v, "m2", &s, &n), -ENOENT); /* not a string */
    assert_int_equal(co_value_get_str(&v, "missing", &s, &n), -ENOENT);
    assert_int_equal(co_value_get_str(&v, "mess", &s, &n), -ENOENT);
    co_value_free(&v);
    co_value nil = CO_VALUE_NIL;
    assert_int_equal(co_value_get_str(&nil, "code", &s, &n), -ENOENT);
    v = co_test_uint_value(3);
    assert_int_equal(co_value_get_str(&v, "code", &s, &n), -ENOENT);
    co_value_free(&v);
    /* A map cut short. */
    assert_int_equal(co_value_copy(&v, b.sb.data, b.sb.size - 3), 0);
    assert_int_equal(co_value_get_str(&v, "m2", &s, &n), -ENOENT);
    co_value_free(&v);
    msgpack_sbuffer_destroy(&b.sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nil_costs_nothing),
        cmocka_unit_test(test_error_map),
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_uint_forms),
        cmocka_unit_test(test_measure),
        cmocka_unit_test(test_get_str),
    };
    return cmocka_run_group_tests_name("value", tests, NULL, NULL);
}
