/* cp_msg.c: MessagePack-RPC framing of requests, responses and notifications, and the
 * validated field getters every method handler uses. */
#include "cp_msg.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_utf8.h"

int cp_fail(cp_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cp_vfail(err, code, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int cp_vfail(cp_error *err, const char *code, const char *fmt, va_list ap)
{
    /* Messages quote what clients sent, which may be any bytes, and vsnprintf would cut
     * one inside a character: it goes out as UTF-8 whatever it quotes. */
    char text[1024];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    err->code = code;
    cp_utf8_escape(err->message, sizeof err->message, text, len, NULL);
    return -EINVAL;
}

bool cp_str_eq(cp_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static bool cp_is_uint(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

int cp_request_parse(const msgpack_object *o, cp_request *r, cp_error *err)
{
    memset(r, 0, sizeof *r);
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return cp_fail(err, CP_BAD_REQUEST, "a message must be an array [0, msgid, method, params]");
    const msgpack_object *a = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    if (n >= 2 && cp_is_uint(&a[1]) && a[1].via.u64 <= UINT32_MAX) {
        r->has_msgid = true;
        r->msgid = (uint32_t)a[1].via.u64;
    }
    if (n != 4)
        return cp_fail(err, CP_BAD_REQUEST, "a request has 4 elements, this message has %u", n);
    if (!cp_is_uint(&a[0]) || a[0].via.u64 != CP_REQUEST)
        return cp_fail(err, CP_BAD_REQUEST, "element 0 must be 0 (a request)");
    if (!r->has_msgid)
        return cp_fail(err, CP_BAD_REQUEST, "msgid must be an unsigned 32-bit integer");
    if (a[2].type != MSGPACK_OBJECT_STR || a[2].via.str.size == 0 || a[2].via.str.size > 64)
        return cp_fail(err, CP_BAD_REQUEST, "method must be a non-empty string of at most 64 bytes");
    r->method = (cp_str){ a[2].via.str.ptr, a[2].via.str.size };
    if (a[3].type != MSGPACK_OBJECT_ARRAY || a[3].via.array.size > 1)
        return cp_fail(err, CP_BAD_REQUEST, "params must be [] or [map]");
    if (a[3].via.array.size == 1) {
        if (a[3].via.array.ptr[0].type != MSGPACK_OBJECT_MAP)
            return cp_fail(err, CP_BAD_REQUEST, "params must be [] or [map]");
        r->params = &a[3].via.array.ptr[0];
    }
    return 0;
}

int cp_incoming_parse(const msgpack_object *o, cp_incoming *in, cp_error *err)
{
    memset(in, 0, sizeof *in);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3 || !cp_is_uint(&o->via.array.ptr[0]))
        return cp_fail(err, CP_BAD_REQUEST, "not a MessagePack-RPC message");
    const msgpack_object *a = o->via.array.ptr;
    if (a[0].via.u64 == CP_RESPONSE && o->via.array.size == 4) {
        if (!cp_is_uint(&a[1]) || a[1].via.u64 > UINT32_MAX)
            return cp_fail(err, CP_BAD_REQUEST, "response msgid is not a uint32");
        in->type = CP_RESPONSE;
        in->msgid = (uint32_t)a[1].via.u64;
        in->error = &a[2];
        in->result = &a[3];
        return 0;
    }
    if (a[0].via.u64 == CP_NOTIFICATION && o->via.array.size == 3 && a[1].type == MSGPACK_OBJECT_STR &&
        a[2].type == MSGPACK_OBJECT_ARRAY && a[2].via.array.size == 1 &&
        a[2].via.array.ptr[0].type == MSGPACK_OBJECT_MAP) {
        in->type = CP_NOTIFICATION;
        in->method = (cp_str){ a[1].via.str.ptr, a[1].via.str.size };
        in->params = &a[2].via.array.ptr[0];
        return 0;
    }
    return cp_fail(err, CP_BAD_REQUEST, "not a response or notification");
}

double cp_num(const msgpack_object *o)
{
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
        return o->via.f64;
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (double)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return (double)o->via.i64;
    return NAN;
}

const msgpack_object *cp_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == kl &&
            memcmp(kv->key.via.str.ptr, key, kl) == 0)
            return kv->val.type == MSGPACK_OBJECT_NIL ? NULL : &kv->val;
    }
    return NULL;
}

void cp_get_fields(const msgpack_object *map, const char *const *keys, size_t n, const msgpack_object **out)
{
    uint32_t seen = 0; /* one bit per key */
    assert(n <= 32);
    for (size_t j = 0; j < n; j++)
        out[j] = NULL;
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || !kv->key.via.str.size)
            continue;
        const char *k = kv->key.via.str.ptr;
        uint32_t kl = kv->key.via.str.size;
        for (size_t j = 0; j < n; j++) {
            if (keys[j][0] != k[0] || (seen & (1u << j)) || strlen(keys[j]) != kl || memcmp(keys[j], k, kl))
                continue;
            seen |= 1u << j; /* the first of a repeated key counts, as with cp_get */
            out[j] = kv->val.type == MSGPACK_OBJECT_NIL ? NULL : &kv->val;
            break;
        }
    }
}

static int cp_absent(const char *key, bool required, cp_error *err)
{
    return required ? cp_fail(err, CP_BAD_REQUEST, "%s is required", key) : 0;
}

int cp_val_uint(const msgpack_object *o, const char *key, bool required, uint64_t min, uint64_t max,
                uint64_t *out, cp_error *err)
{
    if (!o)
        return cp_absent(key, required, err);
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be at least %llu, not %lld", key,
                       (unsigned long long)min, (long long)o->via.i64);
    if (!cp_is_uint(o))
        return cp_fail(err, CP_BAD_REQUEST, "%s must be an unsigned integer", key);
    if (o->via.u64 < min || o->via.u64 > max)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be between %llu and %llu, not %llu", key,
                       (unsigned long long)min, (unsigned long long)max, (unsigned long long)o->via.u64);
    *out = o->via.u64;
    return 1;
}

int cp_val_int(const msgpack_object *o, const char *key, bool required, int64_t min, int64_t max,
               int64_t *out, cp_error *err)
{
    if (!o)
        return cp_absent(key, required, err);
    int64_t v;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = o->via.i64;
    else if (cp_is_uint(o) && o->via.u64 <= (uint64_t)INT64_MAX)
        v = (int64_t)o->via.u64;
    else
        return cp_fail(err, CP_BAD_REQUEST, "%s must be an integer", key);
    if (v < min || v > max)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be between %lld and %lld, not %lld", key,
                       (long long)min, (long long)max, (long long)v);
    *out = v;
    return 1;
}

int cp_val_seconds(const msgpack_object *o, const char *key, bool required, double min, double max,
                   double *out, cp_error *err)
{
    if (!o)
        return cp_absent(key, required, err);
    double v;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        v = o->via.f64;
    else if (cp_is_uint(o))
        v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = (double)o->via.i64;
    else
        return cp_fail(err, CP_BAD_REQUEST, "%s must be a number of seconds", key);
    if (!isfinite(v))
        return cp_fail(err, CP_BAD_REQUEST, "%s must be a finite number of seconds", key);
    if (v < min || v > max)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be between %g and %g seconds, not %g", key, min, max, v);
    *out = v;
    return 1;
}

int cp_val_str(const msgpack_object *o, const char *key, bool required, uint32_t maxlen, cp_str *out,
               cp_error *err)
{
    if (!o)
        return cp_absent(key, required, err);
    if (o->type != MSGPACK_OBJECT_STR)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be a string", key);
    if (o->via.str.size > maxlen)
        return cp_fail(err, CP_BAD_REQUEST, "%s is %u bytes long; at most %u are allowed", key,
                       o->via.str.size, maxlen);
    if (memchr(o->via.str.ptr, '\0', o->via.str.size))
        return cp_fail(err, CP_BAD_REQUEST, "%s must not contain NUL bytes", key);
    if (!cp_utf8_valid(o->via.str.ptr, o->via.str.size))
        return cp_fail(err, CP_BAD_REQUEST, "%s is not valid UTF-8", key);
    *out = (cp_str){ o->via.str.ptr, o->via.str.size };
    return 1;
}

/* 0, or -E2BIG (too deep) or -EILSEQ (a string that is not UTF-8). Recursion is bounded:
 * a decoded message nests at most CP_MAX_DEPTH levels. */
static int cp_value_check(const msgpack_object *o, unsigned depth_left)
{
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        return cp_utf8_valid(o->via.str.ptr, o->via.str.size) ? 0 : -EILSEQ;
    case MSGPACK_OBJECT_ARRAY:
        if (!depth_left)
            return -E2BIG;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int rc = cp_value_check(&o->via.array.ptr[i], depth_left - 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    case MSGPACK_OBJECT_MAP:
        if (!depth_left)
            return -E2BIG;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            int rc = cp_value_check(&o->via.map.ptr[i].key, depth_left - 1);
            if (rc == 0)
                rc = cp_value_check(&o->via.map.ptr[i].val, depth_left - 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    default:
        return 0;
    }
}

int cp_val_value(const msgpack_object *o, const char *key, unsigned max_depth, cp_error *err)
{
    int rc = o ? cp_value_check(o, max_depth) : 0;
    if (rc == -E2BIG)
        return cp_fail(err, CP_BAD_REQUEST, "%s nests more than %u levels deep", key, max_depth);
    if (rc == -EILSEQ)
        return cp_fail(err, CP_BAD_REQUEST, "%s holds a string that is not valid UTF-8", key);
    return 0;
}

int cp_val_bool(const msgpack_object *o, const char *key, bool required, bool *out, cp_error *err)
{
    if (!o)
        return cp_absent(key, required, err);
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be true or false", key);
    *out = o->via.boolean;
    return 1;
}

int cp_val_ids(const msgpack_object *o, const char *key, bool required, size_t max, uint64_t **out,
               size_t *n, cp_error *err)
{
    *out = NULL;
    *n = 0;
    if (!o)
        return cp_absent(key, required, err);
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be an array of task ids", key);
    uint32_t cnt = o->via.array.size;
    if (cnt > max)
        return cp_fail(err, CP_BAD_REQUEST, "%s has %u ids; at most %zu are allowed", key, cnt, max);
    uint64_t *ids = malloc((cnt ? cnt : 1) * sizeof *ids);
    if (!ids)
        return cp_fail(err, CP_INTERNAL, "out of memory");
    for (uint32_t i = 0; i < cnt; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (!cp_is_uint(e) || e->via.u64 < 1 || e->via.u64 > CP_MAX_ID) {
            free(ids);
            return cp_fail(err, CP_BAD_REQUEST, "%s[%u] must be a task id (an integer from 1 to %llu)",
                           key, i, (unsigned long long)CP_MAX_ID);
        }
        ids[i] = e->via.u64;
    }
    *out = ids;
    *n = cnt;
    return 1;
}

void cp_pack_raw(msgpack_packer *pk, const void *bytes, size_t len)
{
    pk->callback(pk->data, bytes, len);
}

void cp_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void cp_pack_str(msgpack_packer *pk, const char *s)
{
    cp_pack_strn(pk, s, strlen(s));
}

void cp_pack_response_ok(cp_out *o, uint32_t msgid)
{
    cp_out_array(o, 4);
    cp_out_uint(o, CP_RESPONSE);
    cp_out_uint(o, msgid);
    cp_out_nil(o);
}

void cp_pack_response_error(cp_out *o, bool has_msgid, uint32_t msgid, const char *code, const char *message)
{
    cp_out_array(o, 4);
    cp_out_uint(o, CP_RESPONSE);
    if (has_msgid)
        cp_out_uint(o, msgid);
    else
        cp_out_nil(o);
    cp_out_map(o, 2);
    cp_out_lit(o, "code");
    cp_out_str(o, code);
    cp_out_lit(o, "message");
    cp_out_str(o, message);
    cp_out_nil(o);
}

void cp_pack_request(msgpack_packer *pk, uint32_t msgid, const char *method)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint8(pk, CP_REQUEST);
    msgpack_pack_uint32(pk, msgid);
    cp_pack_str(pk, method);
    msgpack_pack_array(pk, 1);
}

void cp_pack_notification(cp_out *o, const char *method)
{
    cp_out_array(o, 3);
    cp_out_uint(o, CP_NOTIFICATION);
    cp_out_str(o, method);
    cp_out_array(o, 1);
}
