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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nil_costs_nothing),
        cmocka_unit_test(test_error_map),
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_uint_forms),
    };
    return cmocka_run_group_tests_name("value", tests, NULL, NULL);
}
