/* co_value.c: owned packed MessagePack values and the runtime's own few encoders.
 * Encodings follow the MessagePack spec's smallest-form rules (fixmap/fixarray/fixstr,
 * then 16- and 32-bit forms, big-endian lengths). */
#include "co_value.h"
#include "cp_head.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t co_value_nil_byte = 0xc0;

int co_value_copy(co_value *out, const void *packed, size_t len)
{
    *out = CO_VALUE_NIL;
    if (len == 0 || (len == 1 && *(const uint8_t *)packed == 0xc0))
        return 0;
    out->data = malloc(len);
    if (!out->data)
        return -ENOMEM;
    memcpy(out->data, packed, len);
    out->len = len;
    return 0;
}

const uint8_t *co_value_bytes(const co_value *v, size_t *len)
{
    if (!v->len) {
        *len = 1;
        return &co_value_nil_byte;
    }
    *len = v->len;
    return v->data;
}

static size_t co_put_be(uint8_t *buf, uint8_t tag, uint64_t v, unsigned bytes)
{
    buf[0] = tag;
    for (unsigned i = 0; i < bytes; i++)
        buf[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    return 1 + bytes;
}

size_t co_value_put_map_header(uint8_t *buf, uint32_t n)
{
    if (n < 16) {
        buf[0] = (uint8_t)(0x80 | n);
        return 1;
    }
    return n <= 0xffff ? co_put_be(buf, 0xde, n, 2) : co_put_be(buf, 0xdf, n, 4);
}

size_t co_value_put_array_header(uint8_t *buf, uint32_t n)
{
    if (n < 16) {
        buf[0] = (uint8_t)(0x90 | n);
        return 1;
    }
    return n <= 0xffff ? co_put_be(buf, 0xdc, n, 2) : co_put_be(buf, 0xdd, n, 4);
}

size_t co_value_put_str_header(uint8_t *buf, uint32_t len)
{
    if (len < 32) {
        buf[0] = (uint8_t)(0xa0 | len);
        return 1;
    }
    if (len <= 0xff)
        return co_put_be(buf, 0xd9, len, 1);
    return len <= 0xffff ? co_put_be(buf, 0xda, len, 2) : co_put_be(buf, 0xdb, len, 4);
}

size_t co_value_put_uint(uint8_t *buf, uint64_t v)
{
    if (v < 128) {
        buf[0] = (uint8_t)v;
        return 1;
    }
    if (v <= 0xff)
        return co_put_be(buf, 0xcc, v, 1);
    if (v <= 0xffff)
        return co_put_be(buf, 0xcd, v, 2);
    if (v <= 0xffffffffu)
        return co_put_be(buf, 0xce, v, 4);
    return co_put_be(buf, 0xcf, v, 8);
}

static uint8_t *co_put_str(uint8_t *p, const char *s, size_t len)
{
    p += co_value_put_str_header(p, (uint32_t)len);
    memcpy(p, s, len);
    return p + len;
}

int co_value_error(co_value *out, const char *code, const char *message)
{
    *out = CO_VALUE_NIL;
    if (!message)
        message = "";
    size_t cl = strlen(code), ml = strlen(message);
    if (cl > UINT32_MAX || ml > UINT32_MAX)
        return -EINVAL;
    size_t cap = 1 + (5 + 4) + (5 + cl) + (5 + 7) + (5 + ml);
    uint8_t *buf = malloc(cap), *p = buf;
    if (!buf)
        return -ENOMEM;
    p += co_value_put_map_header(p, 2);
    p = co_put_str(p, "code", 4);
    p = co_put_str(p, code, cl);
    p = co_put_str(p, "message", 7);
    p = co_put_str(p, message, ml);
    out->data = buf;
    out->len = (size_t)(p - buf);
    return 0;
}

int co_value_array(co_value *out, const co_value *const *items, size_t n)
{
    *out = CO_VALUE_NIL;
    if (n > UINT32_MAX)
        return -EINVAL;
    size_t total = 5;
    for (size_t i = 0; i < n; i++)
        total += items[i]->len ? items[i]->len : 1;
    uint8_t *buf = malloc(total), *p = buf;
    if (!buf)
        return -ENOMEM;
    p += co_value_put_array_header(p, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *b = co_value_bytes(items[i], &len);
        memcpy(p, b, len);
        p += len;
    }
    out->data = buf;
    out->len = (size_t)(p - buf);
    return 0;
}

/* ---- reading ------------------------------------------------------------------------ */

int co_value_measure(const uint8_t *p, size_t len, unsigned max_depth, size_t *used, unsigned *depth)
{
    uint64_t left[CO_VALUE_DEPTH_MAX]; /* elements still to read in each open container */
    unsigned open = 0, deepest = 0;
    size_t off = 0;
    if (max_depth > CO_VALUE_DEPTH_MAX)
        max_depth = CO_VALUE_DEPTH_MAX;
    do {
        cp_head h;
        if (cp_head_read(p + off, len - off, &h) <= 0 || h.payload > len - off - h.size)
            return -EINVAL;
        off += h.size + (size_t)h.payload;
        if (open)
            left[open - 1]--;
        if (h.container) {
            if (open == max_depth)
                return -E2BIG;
            if (open + 1 > deepest)
                deepest = open + 1;
            if (h.count > len - off) /* each element takes a byte at least */
                return -EINVAL;
            if (h.count)
                left[open++] = h.count;
        }
        while (open && left[open - 1] == 0)
            open--;
    } while (open);
    *used = off;
    *depth = deepest;
    return 0;
}

int co_value_get_str(const co_value *v, const char *key, const char **s, size_t *n)
{
    size_t len, used, klen = strlen(key);
    const uint8_t *p = co_value_bytes(v, &len);
    unsigned depth;
    cp_head m, h;
    if (cp_head_read(p, len, &m) <= 0 || !m.map)
        return -ENOENT;
    size_t off = m.size;
    for (uint64_t i = 0; i < m.count; i += 2) {
        /* The key: a string equal to `key`, else skipped, and its value with it. */
        if (co_value_measure(p + off, len - off, CO_VALUE_DEPTH_MAX, &used, &depth) < 0 ||
            cp_head_read(p + off, len - off, &h) <= 0)
            return -ENOENT;
        bool match = h.str && h.payload == klen && memcmp(p + off + h.size, key, klen) == 0;
        off += used;
        if (off >= len || co_value_measure(p + off, len - off, CO_VALUE_DEPTH_MAX, &used, &depth) < 0)
            return -ENOENT;
        if (match) {
            if (cp_head_read(p + off, len - off, &h) <= 0 || !h.str)
                return -ENOENT;
            *s = (const char *)p + off + h.size;
            *n = (size_t)h.payload;
            return 0;
        }
        off += used;
    }
    return -ENOENT;
}
