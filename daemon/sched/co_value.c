/* co_value.c: owned packed MessagePack values and the runtime's own few encoders.
 * Encodings follow the MessagePack spec's smallest-form rules (fixmap/fixarray/fixstr,
 * then 16- and 32-bit forms, big-endian lengths). */
#include "co_value.h"

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

static uint64_t co_get_be(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* One item's header at p (n > 0 bytes left): its size before any payload (*head), the
 * bytes of payload that follow (*body), and for a container the elements it holds (*kids:
 * an array's count, twice a map's; -1 for anything else). -EINVAL when the header does
 * not fit or the byte is not MessagePack (0xc1). */
static int co_value_item(const uint8_t *p, size_t n, size_t *head, uint64_t *body, int64_t *kids)
{
    uint8_t b = p[0];
    unsigned w; /* width of the length or count that follows */
    *body = 0;
    *kids = -1;
    *head = 1;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if ((b & 0xf0) == 0x80) {
        *kids = (b & 0x0f) * 2;
        return 0;
    }
    if ((b & 0xf0) == 0x90) {
        *kids = b & 0x0f;
        return 0;
    }
    if ((b & 0xe0) == 0xa0) {
        *body = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xcc: case 0xd0: *head = 2; break;
    case 0xcd: case 0xd1: *head = 3; break;
    case 0xca: case 0xce: case 0xd2: *head = 5; break;
    case 0xcb: case 0xcf: case 0xd3: *head = 9; break;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext 1..16: a type, data */
        *head = 2;
        *body = 1u << (b - 0xd4);
        break;
    case 0xc4: case 0xc5: case 0xc6: case 0xd9: case 0xda: case 0xdb: /* bin, str */
        w = (b == 0xc4 || b == 0xd9) ? 1 : (b == 0xc5 || b == 0xda) ? 2 : 4;
        *head = 1 + w;
        if (n < *head)
            return -EINVAL;
        *body = co_get_be(p + 1, w);
        return 0;
    case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: a length, a type, data */
        w = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
        *head = 2 + w;
        if (n < *head)
            return -EINVAL;
        *body = co_get_be(p + 1, w);
        return 0;
    case 0xdc: case 0xdd: case 0xde: case 0xdf: /* array16/32, map16/32 */
        w = (b == 0xdc || b == 0xde) ? 2 : 4;
        *head = 1 + w;
        if (n < *head)
            return -EINVAL;
        *kids = (int64_t)co_get_be(p + 1, w) * (b >= 0xde ? 2 : 1);
        return 0;
    default:
        return -EINVAL;
    }
    return n < *head ? -EINVAL : 0;
}

int co_value_measure(const uint8_t *p, size_t len, unsigned max_depth, size_t *used, unsigned *depth)
{
    uint64_t left[CO_VALUE_DEPTH_MAX]; /* elements still to read in each open container */
    unsigned open = 0, deepest = 0;
    size_t off = 0;
    if (max_depth > CO_VALUE_DEPTH_MAX)
        max_depth = CO_VALUE_DEPTH_MAX;
    do {
        size_t head;
        uint64_t body;
        int64_t kids;
        if (off >= len || co_value_item(p + off, len - off, &head, &body, &kids) < 0 ||
            body > len - off - head)
            return -EINVAL;
        off += head + (size_t)body;
        if (open)
            left[open - 1]--;
        if (kids >= 0) {
            if (open == max_depth)
                return -E2BIG;
            if (open + 1 > deepest)
                deepest = open + 1;
            if ((uint64_t)kids > len - off) /* each element takes a byte at least */
                return -EINVAL;
            if (kids)
                left[open++] = (uint64_t)kids;
        }
        while (open && left[open - 1] == 0)
            open--;
    } while (open);
    *used = off;
    *depth = deepest;
    return 0;
}

static bool co_is_str(uint8_t b)
{
    return (b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb;
}

int co_value_get_str(const co_value *v, const char *key, const char **s, size_t *n)
{
    size_t len, head, used, klen = strlen(key);
    const uint8_t *p = co_value_bytes(v, &len);
    uint64_t body;
    int64_t kids, items;
    unsigned depth;
    bool is_map = (p[0] & 0xf0) == 0x80 || p[0] == 0xde || p[0] == 0xdf;
    if (!is_map || co_value_item(p, len, &head, &body, &items) < 0)
        return -ENOENT;
    size_t off = head;
    for (int64_t i = 0; i < items; i += 2) {
        /* The key: a string equal to `key`, else skipped, and its value with it. */
        if (co_value_measure(p + off, len - off, CO_VALUE_DEPTH_MAX, &used, &depth) < 0 ||
            co_value_item(p + off, len - off, &head, &body, &kids) < 0)
            return -ENOENT;
        bool match = co_is_str(p[off]) && body == klen && memcmp(p + off + head, key, klen) == 0;
        off += used;
        if (off >= len || co_value_measure(p + off, len - off, CO_VALUE_DEPTH_MAX, &used, &depth) < 0)
            return -ENOENT;
        if (match) {
            if (!co_is_str(p[off]) || co_value_item(p + off, len - off, &head, &body, &kids) < 0)
                return -ENOENT;
            *s = (const char *)p + off + head;
            *n = (size_t)body;
            return 0;
        }
        off += used;
    }
    return -ENOENT;
}
