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

#include "cp_decode.h"
#include "cp_frame.h"
#include "cp_msg.h"
#include "cp_spec.h"
#include "cp_utf8.h"

/* A stream of messages covering every MessagePack header form, into a new sbuffer; ends[i]
 * is where message i ends. */
static void pack_corpus(msgpack_sbuffer *sb, size_t *ends, int *n)
{
    msgpack_sbuffer_init(sb);
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

/* cp_decode makes the objects msgpack-c makes, of every message in the corpus; refuses
 * every truncation, trailing bytes, 0xc1, nesting past CP_MAX_DEPTH, and a count the
 * message cannot hold (before allocating for it). cp_decode_first, the daemon's one-walk
 * path, on the corpus as one stream: it takes each message at exactly its length with
 * the rest of the stream behind it, the same objects; nothing from any cut of it; and
 * within a window it takes what cp_frame with that limit takes. */
static void test_decode(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    size_t ends[64];
    int n;
    pack_corpus(&sb, ends, &n);
    msgpack_zone z;
    msgpack_zone_init(&z, MSGPACK_ZONE_CHUNK_SIZE);
    size_t start = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *m = (const uint8_t *)sb.data + start;
        size_t len = ends[i] - start;
        msgpack_object mine;
        assert_int_equal(cp_decode(m, len, &z, &mine), 0);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        assert_int_equal(msgpack_unpack_next(&u, (const char *)m, len, NULL), MSGPACK_UNPACK_SUCCESS);
        assert_true(msgpack_object_equal(mine, u.data));
        msgpack_unpacked_destroy(&u);
        msgpack_object first;
        assert_int_equal(cp_decode_first(m, sb.size - start, &z, &first), (ssize_t)len);
        assert_true(msgpack_object_equal(first, mine));
        for (size_t cut = 0; cut < len; cut += len > 300 ? 97 : 1) {
            assert_int_equal(cp_decode(m, cut, &z, &mine), -EPROTO);
            assert_true(cp_decode_first(m, cut, &z, &first) < 0);
            if (!cut)
                continue; /* cp_frame has no limit of 0 */
            cp_frame f;
            cp_frame_init(&f, cut);
            assert_true(cp_frame_scan(&f, m, sb.size - start) < 0);
        }
        msgpack_zone_clear(&z);
        start = ends[i];
    }
    msgpack_object o;
    const uint8_t trailing[] = { 0x01, 0x02 }, unused[] = { 0x91, 0xc1 }, unused2[] = { 0x92, 0x01, 0xc1 };
    assert_int_equal(cp_decode(trailing, sizeof trailing, &z, &o), -EPROTO);
    assert_int_equal(cp_decode(unused, sizeof unused, &z, &o), -EPROTO);
    assert_true(cp_decode_first(unused2, sizeof unused2, &z, &o) < 0);
    /* CP_MAX_DEPTH containers are fine; one more (even empty) is refused, as cp_frame does. */
    uint8_t deep[CP_MAX_DEPTH + 1];
    memset(deep, 0x91, CP_MAX_DEPTH);
    deep[CP_MAX_DEPTH] = 0xc0;
    assert_int_equal(cp_decode(deep, sizeof deep, &z, &o), 0);
    deep[CP_MAX_DEPTH] = 0x90;
    assert_int_equal(cp_decode(deep, sizeof deep, &z, &o), -EPROTO);
    /* array32 and map32 headers claiming 4 billion entries in a 6-byte message. */
    const uint8_t huge_a[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0 }, huge_m[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0 };
    assert_int_equal(cp_decode(huge_a, sizeof huge_a, &z, &o), -EPROTO);
    assert_int_equal(cp_decode(huge_m, sizeof huge_m, &z, &o), -EPROTO);
    /* A signed integer holding a value >= 0 is a positive integer, as in msgpack-c. */
    const uint8_t i8[] = { 0xd0, 0x05 };
    assert_int_equal(cp_decode(i8, sizeof i8, &z, &o), 0);
    assert_int_equal(o.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(o.via.u64, 5);
    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&sb);
}

/* cp_next, the one reader every reader uses: the corpus fed growing one byte at a time
 * (so most messages go through the scanner), then all at once (the one-walk path), gives
 * every message at exactly its end and the objects cp_decode makes; a message over the
 * frame's limit, or bad bytes, stop the stream without consuming anything, and one at
 * exactly the limit is taken. */
static void test_next(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    size_t ends[64];
    int n;
    pack_corpus(&sb, ends, &n);
    const uint8_t *all = (const uint8_t *)sb.data;
    msgpack_zone z, zd;
    msgpack_zone_init(&z, MSGPACK_ZONE_CHUNK_SIZE);
    msgpack_zone_init(&zd, MSGPACK_ZONE_CHUNK_SIZE);
    cp_frame f;
    msgpack_object o, want;
    size_t used;
    for (int whole = 0; whole <= 1; whole++) {
        cp_frame_init(&f, 0);
        size_t start = 0;
        int found = 0;
        for (size_t avail = whole ? sb.size : 1; avail <= sb.size && found < n;) {
            msgpack_zone_clear(&z);
            int rc = cp_next(&f, all + start, avail - start, &z, &o, &used);
            assert_true(rc >= 0);
            if (rc == 0) {
                assert_int_equal(used, 0);
                assert_false(whole);
                avail++;
                continue;
            }
            assert_int_equal(start + used, ends[found]);
            msgpack_zone_clear(&zd);
            assert_int_equal(cp_decode(all + start, used, &zd, &want), 0);
            assert_true(msgpack_object_equal(o, want));
            assert_true(cp_frame_at_start(&f));
            start += used;
            found++;
        }
        assert_int_equal(found, n);
    }
    /* The limit: the 200-byte string (5th str of the corpus) is 202 bytes on the wire. */
    size_t s200 = ends[9], e200 = ends[10], len = e200 - s200;
    assert_int_equal(len, 202);
    cp_frame_init(&f, len - 1);
    assert_int_equal(cp_next(&f, all + s200, sb.size - s200, &z, &o, &used), -E2BIG);
    assert_int_equal(used, 0);
    cp_frame_init(&f, len);
    assert_int_equal(cp_next(&f, all + s200, sb.size - s200, &z, &o, &used), 1);
    assert_int_equal(used, len);
    /* and when it arrives in pieces */
    cp_frame_init(&f, len - 1);
    assert_int_equal(cp_next(&f, all + s200, 1, &z, &o, &used), 0);
    assert_int_equal(cp_next(&f, all + s200, 3, &z, &o, &used), -E2BIG);
    assert_int_equal(used, 0);
    /* Bad bytes. */
    const uint8_t bad[] = { 0x92, 0x01, 0xc1, 0x01 };
    cp_frame_init(&f, 0);
    assert_int_equal(cp_next(&f, bad, sizeof bad, &z, &o, &used), -EPROTO);
    assert_int_equal(used, 0);
    msgpack_zone_destroy(&z);
    msgpack_zone_destroy(&zd);
    msgpack_sbuffer_destroy(&sb);
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

/* One pass finds several fields: the first of a repeated key counts (as with cp_get),
 * nil is absent, keys that are not strings and names not asked for are passed over. */
static void test_get_fields(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    cp_pack_str(&pk, "kind"), msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 5), cp_pack_str(&pk, "x");
    cp_pack_str(&pk, "kind"), msgpack_pack_int(&pk, 2);
    cp_pack_str(&pk, "args"), msgpack_pack_nil(&pk);
    cp_pack_str(&pk, ""), msgpack_pack_int(&pk, 3);
    cp_pack_str(&pk, "group"), msgpack_pack_int(&pk, 4);
    msgpack_unpacked u;
    msgpack_object m = unpack(&u, &sb);
    static const char *const keys[] = { "kind", "args", "gro", "group", "absent" };
    const msgpack_object *f[5];
    cp_get_fields(&m, keys, 5, f);
    assert_non_null(f[0]);
    assert_int_equal(f[0]->via.u64, 1);
    assert_null(f[1]);
    assert_null(f[2]);
    assert_non_null(f[3]);
    assert_int_equal(f[3]->via.u64, 4);
    assert_null(f[4]);
    cp_get_fields(NULL, keys, 5, f);
    assert_null(f[0]);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
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
    cp_out out;
    cp_out_init(&out);
    uint8_t result[] = { 0x92, 0x01, 0xa1, 'z' }; /* [1, "z"] */
    cp_record r = { .id = 42, .kind = "sleep", .name = NULL, .group = "default", .state = "succeeded",
                    .owner_uid = 1000, .created_at = 1.5, .started_at = 2.5, .finished_at = NAN,
                    .attempts = 1, .result = result, .result_len = sizeof result };
    cp_pack_record(&out, &r);
    msgpack_sbuffer sb = { .size = out.size, .data = (char *)out.data, .alloc = out.cap };
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
    cp_out_free(&out);
}

/* cp_pack_record reserves once for the whole record: byte for byte what msgpack-c's packer
 * writes item by item, with every optional field and strings past the fixstr and str8
 * forms; and a buffer that cannot grow is marked failed, not cut. */
static void test_record_matches_msgpack(void **state)
{
    (void)state;
    char name[41], command[301];
    memset(name, 'n', 40), name[40] = 0;
    memset(command, 'c', 300), command[300] = 0;
    uint8_t error[] = { 0x81, 0xa4, 'c', 'o', 'd', 'e', 0xa1, 'x' };
    cp_record r = { .id = (uint64_t)UINT32_MAX + 7, .kind = "exec", .name = name, .group = "a-group",
                    .state = "failed", .owner_uid = 65534, .created_at = 1.25, .started_at = NAN,
                    .finished_at = 3.5, .attempts = 300, .command = command,
                    .error = error, .error_len = sizeof error };
    cp_out out;
    cp_out_init(&out);
    cp_out_uint(&out, 7); /* something before it: the record appends */
    cp_pack_record(&out, &r);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, 7);
    msgpack_pack_map(&pk, 12);
    cp_pack_str(&pk, "id"), msgpack_pack_uint64(&pk, r.id);
    cp_pack_str(&pk, "kind"), cp_pack_str(&pk, "exec");
    cp_pack_str(&pk, "name"), cp_pack_str(&pk, name);
    cp_pack_str(&pk, "group"), cp_pack_str(&pk, "a-group");
    cp_pack_str(&pk, "state"), cp_pack_str(&pk, "failed");
    cp_pack_str(&pk, "owner_uid"), msgpack_pack_uint64(&pk, 65534);
    cp_pack_str(&pk, "created_at"), msgpack_pack_double(&pk, 1.25);
    cp_pack_str(&pk, "started_at"), msgpack_pack_nil(&pk);
    cp_pack_str(&pk, "finished_at"), msgpack_pack_double(&pk, 3.5);
    cp_pack_str(&pk, "attempts"), msgpack_pack_uint64(&pk, 300);
    cp_pack_str(&pk, "command"), cp_pack_str(&pk, command);
    cp_pack_str(&pk, "error"), cp_pack_raw(&pk, error, sizeof error);
    assert_false(cp_out_failed(&out));
    assert_int_equal(out.size, sb.size);
    assert_memory_equal(out.data, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

    /* A buffer that already failed takes nothing more. */
    out.nomem = true;
    size_t before = out.size;
    cp_pack_record(&out, &r);
    assert_int_equal(out.size, before);
    assert_true(cp_out_failed(&out));
    cp_out_free(&out);
}

/* ---- cp_out: every item, at every boundary between its encodings, must come out byte
 * for byte as msgpack-c's packer writes it (both choose the shortest form). ---- */

static const uint64_t out_uints[] = { 0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                                      UINT64_MAX };
static const int64_t out_ints[] = { -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769,
                                    INT32_MIN + 1, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN, 0, 5, INT64_MAX };
static const uint32_t out_lens[] = { 0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000 };

static void out_expect_same(const cp_out *o, const msgpack_sbuffer *sb)
{
    assert_false(cp_out_failed(o));
    assert_int_equal(o->size, sb->size);
    assert_memory_equal(o->data, sb->data, sb->size);
}

static void test_out_matches_msgpack(void **state)
{
    (void)state;
    cp_out o;
    cp_out_init(&o);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char *bytes = malloc(70000);
    assert_non_null(bytes);
    memset(bytes, 'q', 70000);

    for (size_t i = 0; i < sizeof out_uints / sizeof *out_uints; i++)
        cp_out_uint(&o, out_uints[i]), msgpack_pack_uint64(&pk, out_uints[i]);
    for (size_t i = 0; i < sizeof out_ints / sizeof *out_ints; i++)
        cp_out_int(&o, out_ints[i]), msgpack_pack_int64(&pk, out_ints[i]);
    const double ds[] = { 0.0, -0.0, 1.5, -1e300, NAN, INFINITY };
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++)
        cp_out_double(&o, ds[i]), msgpack_pack_double(&pk, ds[i]);
    cp_out_nil(&o), msgpack_pack_nil(&pk);
    cp_out_bool(&o, true), msgpack_pack_true(&pk);
    cp_out_bool(&o, false), msgpack_pack_false(&pk);
    for (size_t i = 0; i < sizeof out_lens / sizeof *out_lens; i++) {
        uint32_t n = out_lens[i];
        cp_out_map(&o, n), msgpack_pack_map(&pk, n);
        cp_out_array(&o, n), msgpack_pack_array(&pk, n);
        cp_out_strn(&o, bytes, n), msgpack_pack_str_with_body(&pk, bytes, n);
        cp_out_bin(&o, bytes, n), msgpack_pack_bin_with_body(&pk, bytes, n);
    }
    cp_out_lit(&o, "state");
    msgpack_pack_str_with_body(&pk, "state", 5);
    cp_out_str(&o, "key"), msgpack_pack_str_with_body(&pk, "key", 3);
    cp_out_bin(&o, NULL, 0), msgpack_pack_bin(&pk, 0); /* no bytes, no pointer: an empty read */
    cp_out_strn(&o, NULL, 0), msgpack_pack_str(&pk, 0);
    cp_out_raw(&o, NULL, 0);
    cp_out_raw(&o, "\x92\x01\x02", 3), msgpack_pack_array(&pk, 2), msgpack_pack_int(&pk, 1), msgpack_pack_int(&pk, 2);
    out_expect_same(&o, &sb);

    /* msgpack-c's packer writing into the same buffer, interleaved with cp_out. */
    cp_out_clear(&o);
    msgpack_sbuffer_clear(&sb);
    msgpack_packer opk;
    msgpack_packer_init(&opk, &o, cp_out_write);
    cp_out_array(&o, 2), msgpack_pack_array(&pk, 2);
    msgpack_pack_str_with_body(&opk, bytes, 40000), msgpack_pack_str_with_body(&pk, bytes, 40000);
    cp_out_uint(&o, 300), msgpack_pack_uint64(&pk, 300);
    out_expect_same(&o, &sb);

    /* Consumed from the front (a partial write), then released to the caller. */
    size_t before = o.size;
    cp_out_consume(&o, 10);
    assert_int_equal(o.size, before - 10);
    assert_memory_equal(o.data, sb.data + 10, o.size);
    cp_out_consume(&o, (size_t)1 << 40); /* more than it holds: empty */
    assert_int_equal(o.size, 0);
    cp_out_uint(&o, 7);
    uint8_t *rel = cp_out_release(&o);
    assert_int_equal(rel[0], 7);
    free(rel);
    assert_null(o.data);
    assert_int_equal(o.size, 0);

    free(bytes);
    msgpack_sbuffer_destroy(&sb);
    cp_out_free(&o);
}

/* A reservation that cannot be had marks the buffer failed: it takes nothing more (its
 * contents are incomplete) until cleared, and the packer adapter reports the failure. */
static void test_out_nomem(void **state)
{
    (void)state;
    cp_out o;
    cp_out_init(&o);
    cp_out_uint(&o, 1);
    assert_null(cp_out_reserve(&o, SIZE_MAX / 2));
    assert_true(cp_out_failed(&o));
    cp_out_lit(&o, "lost");
    cp_out_uint(&o, 2);
    assert_int_equal(o.size, 1);
    assert_int_equal(cp_out_write(&o, "x", 1), -1);
    cp_out_clear(&o);
    assert_false(cp_out_failed(&o));
    cp_out_uint(&o, 3);
    assert_int_equal(o.size, 1);
    assert_int_equal(o.data[0], 3);
    cp_out_free(&o);
}

/* RFC 3629's boundaries: each valid form, and each way a sequence goes wrong. */
static void test_utf8_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "", "plain ascii", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "caf\xc3\xa9 \xe2\x82\xac",
    };
    static const char *const bad[] = {
        "\x80", "\xbf", "\xc0\x80", "\xc1\xbf",  /* a lone continuation; overlong 2-byte */
        "\xe0\x80\x80", "\xe0\x9f\xbf",          /* overlong 3-byte */
        "\xed\xa0\x80", "\xed\xbf\xbf",          /* surrogates */
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",  /* overlong 4-byte */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", /* above U+10FFFF */
        "\xff", "\xfe", "\xc3", "\xe2\x82", "\xf0\x90\x80", "ok\xc3(", "\xe2\x28\xa1",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(cp_utf8_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(cp_utf8_valid(bad[i], strlen(bad[i])));
    assert_true(cp_utf8_valid("a\0b", 3)); /* NUL is a character; callers refuse it where it matters */
}

static void test_utf8_cut_and_escape(void **state)
{
    (void)state;
    const char *s = "ab\xc3\xa9\xe2\x82\xac!"; /* a b é € ! */
    size_t n = strlen(s);
    assert_int_equal(cp_utf8_cut(s, n, 100), n);
    assert_int_equal(cp_utf8_cut(s, n, 3), 2); /* not inside é */
    assert_int_equal(cp_utf8_cut(s, n, 4), 4);
    assert_int_equal(cp_utf8_cut(s, n, 6), 4); /* not inside € */
    assert_int_equal(cp_utf8_cut(s, n, 0), 0);

    char out[64];
    bool whole;
    assert_int_equal(cp_utf8_escape(out, sizeof out, s, n, &whole), n);
    assert_string_equal(out, s);
    assert_true(whole);
    const char *raw = "a\xff\xfe" "b\xc3"; /* invalid bytes, and a sequence cut short */
    cp_utf8_escape(out, sizeof out, raw, strlen(raw), &whole);
    assert_string_equal(out, "a\\xff\\xfeb\\xc3");
    assert_true(whole);
    assert_true(cp_utf8_valid(out, strlen(out)));
    /* Room runs out: stops at a character's end, never inside one or inside an escape. */
    assert_int_equal(cp_utf8_escape(out, 4, s, n, &whole), 2);
    assert_string_equal(out, "ab");
    assert_false(whole);
    assert_int_equal(cp_utf8_escape(out, 5, raw, strlen(raw), &whole), 1);
    assert_string_equal(out, "a");
    assert_int_equal(cp_utf8_escape(out, 1, s, n, &whole), 0);
    assert_string_equal(out, "");
}

/* Error messages quote what was sent: they go out as UTF-8 whatever it was. */
static void test_fail_messages_are_text(void **state)
{
    (void)state;
    cp_error err;
    char quoted[600];
    memset(quoted, 'x', sizeof quoted);
    memcpy(quoted + 250, "\xe2\x82\xac\xff", 4); /* a € across the message's end, a bad byte */
    quoted[sizeof quoted - 1] = '\0';
    cp_fail(&err, CP_BAD_REQUEST, "%s", quoted);
    assert_true(cp_utf8_valid(err.message, strlen(err.message)));
    assert_true(strlen(err.message) < sizeof err.message);
    cp_fail(&err, CP_BAD_REQUEST, "unknown method \"%s\"", "x\xc3");
    assert_string_equal(err.message, "unknown method \"x\\xc3\"");

    msgpack_object o = { .type = MSGPACK_OBJECT_STR, .via.str = { .size = 3, .ptr = "a\xff" "b" } };
    cp_str out;
    assert_int_equal(cp_val_str(&o, "name", false, 100, &out, &err), -EINVAL);
    assert_string_equal(err.message, "name is not valid UTF-8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_every_split),
        cmocka_unit_test(test_frame_limits),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_request_parse),
        cmocka_unit_test(test_get_fields),
        cmocka_unit_test(test_field_validation),
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_record_matches_msgpack),
        cmocka_unit_test(test_out_matches_msgpack),
        cmocka_unit_test(test_out_nomem),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_cut_and_escape),
        cmocka_unit_test(test_fail_messages_are_text),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
