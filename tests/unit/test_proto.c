/* test_proto: the wire codec — message framing (every split point, every header form,
 * the size and depth limits, hostile length claims), request parsing, field validation
 * naming the bad field, task specs and records. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cp_frame.h"
#include "cp_msg.h"
#include "cp_spec.h"

/* A stream of messages covering every MessagePack header form. */
static void pack_corpus(msgpack_sbuffer *sb, size_t *ends, int *n)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    char big[70000];
    memset(big, 'x', sizeof big);
    *n = 0;
#define END() (ends[(*n)++] = sb->size)
    msgpack_pack_nil(&pk), END();
    msgpack_pack_true(&pk), END();
    msgpack_pack_int(&pk, -3), END();
    msgpack_pack_uint64(&pk, 1ull << 40), END();
    msgpack_pack_int64(&pk, -(1ll << 40)), END();
    msgpack_pack_uint8(&pk, 200), END();
    msgpack_pack_int16(&pk, -300), END();
    msgpack_pack_float(&pk, 1.5f), END();
    msgpack_pack_double(&pk, 2.5), END();
    cp_pack_strn(&pk, big, 5), END();
    cp_pack_strn(&pk, big, 200), END();
    cp_pack_strn(&pk, big, 1000), END();
    cp_pack_strn(&pk, big, 70000), END();
    msgpack_pack_bin(&pk, 3), msgpack_pack_bin_body(&pk, big, 3), END();
    msgpack_pack_bin(&pk, 300), msgpack_pack_bin_body(&pk, big, 300), END();
    msgpack_pack_ext(&pk, 1, 7), msgpack_pack_ext_body(&pk, big, 1), END();
    msgpack_pack_ext(&pk, 5, 7), msgpack_pack_ext_body(&pk, big, 5), END();
    msgpack_pack_ext(&pk, 16, 7), msgpack_pack_ext_body(&pk, big, 16), END();
    msgpack_pack_ext(&pk, 300, 7), msgpack_pack_ext_body(&pk, big, 300), END();
    msgpack_pack_array(&pk, 0), END();
    msgpack_pack_map(&pk, 0), END();
    /* nested: [1, {"a": [2, 3], "b": {}}, [], 20 small ints] */
    msgpack_pack_array(&pk, 23);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_map(&pk, 2);
    cp_pack_str(&pk, "a");
    msgpack_pack_array(&pk, 2), msgpack_pack_int(&pk, 2), msgpack_pack_int(&pk, 3);
    cp_pack_str(&pk, "b");
    msgpack_pack_map(&pk, 0);
    msgpack_pack_array(&pk, 0);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int(&pk, i);
    END();
    /* a request */
    cp_pack_request(&pk, 7, "get");
    msgpack_pack_map(&pk, 1), cp_pack_str(&pk, "id"), msgpack_pack_uint64(&pk, 3);
    END();
#undef END
}

static void test_frame_every_split(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t ends[64];
    int n;
    pack_corpus(&sb, ends, &n);
    const uint8_t *all = (const uint8_t *)sb.data;
    /* Feed the stream growing one byte at a time: every message must end exactly where
     * it does, never earlier, whatever the split. */
    cp_frame f;
    cp_frame_init(&f, 0);
    size_t start = 0;
    int found = 0;
    for (size_t avail = 1; avail <= sb.size; avail++) {
        ssize_t r = cp_frame_scan(&f, all + start, avail - start);
        assert_true(r >= 0);
        if (r > 0) {
            assert_int_equal(start + (size_t)r, ends[found]);
            found++;
            start += (size_t)r;
            cp_frame_reset(&f);
        }
    }
    assert_int_equal(found, n);
    /* And all at once. */
    start = 0;
    for (int i = 0; i < n; i++) {
        cp_frame_reset(&f);
        ssize_t r = cp_frame_scan(&f, all + start, sb.size - start);
        assert_int_equal(start + (size_t)r, ends[i]);
        start += (size_t)r;
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_frame_limits(void **state)
{
    (void)state;
    cp_frame f;
    /* Over the size limit. */
    cp_frame_init(&f, 100);
    uint8_t str[200] = { 0xd9, 150 };
    assert_int_equal(cp_frame_scan(&f, str, 2), -E2BIG);
    /* A five-byte array32 header claiming 2^32-1 elements: refused before anything is
     * allocated for it. */
    cp_frame_init(&f, 0);
    uint8_t claim[5] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    assert_int_equal(cp_frame_scan(&f, claim, 5), -E2BIG);
    cp_frame_init(&f, 0);
    uint8_t mclaim[5] = { 0xdf, 0x01, 0x00, 0x00, 0x00 }; /* 2^24 pairs: 2^25 values */
    assert_int_equal(cp_frame_scan(&f, mclaim, 5), -E2BIG);
    /* Nesting deeper than CP_MAX_DEPTH. */
    cp_frame_init(&f, 0);
    uint8_t deep[CP_MAX_DEPTH + 2];
    memset(deep, 0x91, sizeof deep); /* [[[[...]]]] */
    assert_int_equal(cp_frame_scan(&f, deep, sizeof deep), -EPROTO);
    /* Exactly CP_MAX_DEPTH levels are fine. */
    cp_frame_init(&f, 0);
    uint8_t ok[CP_MAX_DEPTH + 1];
    memset(ok, 0x91, CP_MAX_DEPTH);
    ok[CP_MAX_DEPTH] = 0xc0;
    assert_int_equal(cp_frame_scan(&f, ok, sizeof ok), (ssize_t)sizeof ok);
    /* An empty container nests too (found by fuzz_proto): 32 levels ending in [] are 33. */
    cp_frame_init(&f, 0);
    uint8_t deep_empty[CP_MAX_DEPTH + 1];
    memset(deep_empty, 0x91, CP_MAX_DEPTH);
    deep_empty[CP_MAX_DEPTH] = 0x90;
    assert_int_equal(cp_frame_scan(&f, deep_empty, sizeof deep_empty), -EPROTO);
    /* What the scanner accepts, msgpack-c decodes in exactly as many bytes. */
    msgpack_unpacked mu;
    msgpack_unpacked_init(&mu);
    size_t used = 0;
    assert_int_equal(msgpack_unpack_next(&mu, (const char *)ok, sizeof ok, &used), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(used, sizeof ok);
    msgpack_unpacked_destroy(&mu);
    /* The never-used byte. */
    cp_frame_init(&f, 0);
    uint8_t bad = 0xc1;
    assert_int_equal(cp_frame_scan(&f, &bad, 1), -EPROTO);
}

static msgpack_object unpack(msgpack_unpacked *u, msgpack_sbuffer *sb)
{
    size_t off = 0;
    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    return u->data;
}

static void expect_request_error(void (*build)(msgpack_packer *), const char *needle, bool has_msgid)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    build(&pk);
    msgpack_unpacked u;
    msgpack_object o = unpack(&u, &sb);
    cp_request r;
    cp_error err;
    assert_int_equal(cp_request_parse(&o, &r, &err), -EINVAL);
    assert_string_equal(err.code, CP_BAD_REQUEST);
    assert_non_null(strstr(err.message, needle));
    assert_int_equal(r.has_msgid, has_msgid);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

static void b_not_array(msgpack_packer *pk) { msgpack_pack_int(pk, 5); }
static void b_short(msgpack_packer *pk) { msgpack_pack_array(pk, 2), msgpack_pack_int(pk, 0), msgpack_pack_int(pk, 9); }
static void b_bad_msgid(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4), msgpack_pack_int(pk, 0), msgpack_pack_int(pk, -1);
    cp_pack_str(pk, "get"), msgpack_pack_array(pk, 0);
}
static void b_bad_method(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4), msgpack_pack_int(pk, 0), msgpack_pack_int(pk, 4);
    msgpack_pack_int(pk, 3), msgpack_pack_array(pk, 0);
}
static void b_bad_params(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4), msgpack_pack_int(pk, 0), msgpack_pack_int(pk, 4);
    cp_pack_str(pk, "get"), msgpack_pack_array(pk, 1), msgpack_pack_int(pk, 1);
}

static void test_request_parse(void **state)
{
    (void)state;
    expect_request_error(b_not_array, "must be an array", false);
    expect_request_error(b_short, "4 elements", true);
    expect_request_error(b_bad_msgid, "msgid", false);
    expect_request_error(b_bad_method, "method", true);
    expect_request_error(b_bad_params, "params", true);
}

/* Build {key: value} with `packval`, then run a getter on it. */
typedef void (*packval_fn)(msgpack_packer *);
static msgpack_sbuffer g_sb;
static msgpack_unpacked g_u;

static const msgpack_object *one_field(const char *key, packval_fn pv)
{
    msgpack_sbuffer_init(&g_sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &g_sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    cp_pack_str(&pk, key);
    pv(&pk);
    static msgpack_object o;
    o = unpack(&g_u, &g_sb);
    return &o;
}

static void one_field_done(void)
{
    msgpack_unpacked_destroy(&g_u);
    msgpack_sbuffer_destroy(&g_sb);
}

static void v_nan(msgpack_packer *pk) { msgpack_pack_double(pk, NAN); }
static void v_neg(msgpack_packer *pk) { msgpack_pack_double(pk, -1); }
static void v_absurd(msgpack_packer *pk) { msgpack_pack_double(pk, 1e12); }
static void v_str(msgpack_packer *pk) { cp_pack_str(pk, "x"); }
static void v_int(msgpack_packer *pk) { msgpack_pack_int(pk, 3); }
static void v_negint(msgpack_packer *pk) { msgpack_pack_int(pk, -3); }
static void v_ids_bad(msgpack_packer *pk) { msgpack_pack_array(pk, 2), msgpack_pack_int(pk, 1), msgpack_pack_int(pk, 0); }
static void v_ids_str(msgpack_packer *pk) { msgpack_pack_array(pk, 1), cp_pack_str(pk, "7"); }
static void v_nul(msgpack_packer *pk) { cp_pack_strn(pk, "a\0b", 3); }

static void expect_getter(int rc, cp_error *err, const char *needle)
{
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err->message, needle));
    one_field_done();
}

static void test_field_validation(void **state)
{
    (void)state;
    cp_error err;
    double d;
    uint64_t u;
    cp_str s;
    uint64_t *ids;
    size_t n;
    expect_getter(cp_get_seconds(one_field("delay", v_nan), "delay", true, 0, 1e9, &d, &err), &err, "delay must be a finite");
    expect_getter(cp_get_seconds(one_field("delay", v_neg), "delay", true, 0, 1e9, &d, &err), &err, "delay must be between");
    expect_getter(cp_get_seconds(one_field("delay", v_absurd), "delay", true, 0, 1e9, &d, &err), &err, "not 1e+12");
    expect_getter(cp_get_seconds(one_field("delay", v_str), "delay", true, 0, 1e9, &d, &err), &err, "delay must be a number");
    expect_getter(cp_get_uint(one_field("id", v_negint), "id", true, 1, 10, &u, &err), &err, "id must be at least 1");
    expect_getter(cp_get_str(one_field("name", v_int), "name", true, 10, &s, &err), &err, "name must be a string");
    expect_getter(cp_get_str(one_field("name", v_nul), "name", true, 10, &s, &err), &err, "NUL");
    expect_getter(cp_get_ids(one_field("ids", v_ids_bad), "ids", true, 10, &ids, &n, &err), &err, "ids[1] must be a task id");
    expect_getter(cp_get_ids(one_field("ids", v_ids_str), "ids", true, 10, &ids, &n, &err), &err, "ids[0]");
    expect_getter(cp_get_uint(one_field("other", v_int), "id", true, 1, 10, &u, &err), &err, "id is required");
    /* An int where seconds are expected is fine. */
    assert_int_equal(cp_get_seconds(one_field("delay", v_int), "delay", true, 0, 10, &d, &err), 1);
    assert_true(d == 3.0);
    one_field_done();
}

static void v_spec_ok(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    cp_pack_str(pk, "kind"), cp_pack_str(pk, "sleep");
    cp_pack_str(pk, "args"), msgpack_pack_map(pk, 1), cp_pack_str(pk, "seconds"), msgpack_pack_double(pk, 0.5);
    cp_pack_str(pk, "group"), cp_pack_str(pk, "batch-1");
    cp_pack_str(pk, "after"), msgpack_pack_array(pk, 2), msgpack_pack_int(pk, 4), msgpack_pack_int(pk, 9);
    cp_pack_str(pk, "priority"), msgpack_pack_int(pk, -5);
    cp_pack_str(pk, "shield"), msgpack_pack_true(pk);
}

static void v_spec_badgroup(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    cp_pack_str(pk, "kind"), cp_pack_str(pk, "sleep");
    cp_pack_str(pk, "group"), cp_pack_str(pk, "a b");
}

static void test_spec(void **state)
{
    (void)state;
    cp_spec sp;
    cp_error err;
    const msgpack_object *m = one_field("x", v_spec_ok);
    assert_int_equal(cp_spec_parse(&m->via.map.ptr[0].val, &sp, &err), 0);
    assert_true(cp_str_eq(sp.kind, "sleep"));
    assert_true(cp_str_eq(sp.group, "batch-1"));
    assert_int_equal(sp.n_after, 2);
    assert_int_equal(sp.after[1], 9);
    assert_int_equal(sp.priority, -5);
    assert_true(sp.shield);
    assert_non_null(cp_get(sp.args, "seconds"));
    cp_spec_free(&sp);
    one_field_done();

    m = one_field("x", v_spec_badgroup);
    assert_int_equal(cp_spec_parse(&m->via.map.ptr[0].val, &sp, &err), -EINVAL);
    assert_non_null(strstr(err.message, "group must be"));
    cp_spec_free(&sp);
    one_field_done();
}

static void test_record_roundtrip(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint8_t result[] = { 0x92, 0x01, 0xa1, 'z' }; /* [1, "z"] */
    cp_record r = { .id = 42, .kind = "sleep", .name = NULL, .group = "default", .state = "succeeded",
                    .owner_uid = 1000, .created_at = 1.5, .started_at = 2.5, .finished_at = NAN,
                    .attempts = 1, .result = result, .result_len = sizeof result };
    cp_pack_record(&pk, &r);
    msgpack_unpacked u;
    msgpack_object o = unpack(&u, &sb);
    assert_int_equal(cp_get(&o, "id")->via.u64, 42);
    assert_null(cp_get(&o, "name"));        /* nil */
    assert_null(cp_get(&o, "finished_at")); /* nil */
    assert_true(cp_get(&o, "started_at")->via.f64 == 2.5);
    const msgpack_object *res = cp_get(&o, "result");
    assert_int_equal(res->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(res->via.array.size, 2);
    assert_null(cp_get(&o, "error"));
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_every_split),
        cmocka_unit_test(test_frame_limits),
        cmocka_unit_test(test_request_parse),
        cmocka_unit_test(test_field_validation),
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_record_roundtrip),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
