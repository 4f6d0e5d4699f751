/* cp_decode.c: a MessagePack decoder over a complete message, in one loop. */
#include "cp_decode.h"

#include <errno.h>
#include <string.h>

#include "cp_frame.h"

typedef struct cp_dec {
    const uint8_t *p, *end;
    msgpack_zone *z;
} cp_dec;

static inline int cp_dec_need(const cp_dec *d, size_t n)
{
    return (size_t)(d->end - d->p) >= n ? 0 : -EPROTO;
}

/* A big-endian number of `width` bytes (1, 2, 4 or 8) at the cursor. */
static inline int cp_dec_be(cp_dec *d, unsigned width, uint64_t *v)
{
    if (cp_dec_need(d, width) < 0)
        return -EPROTO;
    *v = cp_be_read(d->p, width);
    d->p += width;
    return 0;
}

/* A length of `width` bytes (1, 2 or 4) at the cursor. */
static int cp_dec_len(cp_dec *d, unsigned width, uint32_t *n)
{
    uint64_t v;
    if (cp_dec_be(d, width, &v) < 0)
        return -EPROTO;
    *n = (uint32_t)v;
    return 0;
}

/* str, bin: `n` payload bytes at the cursor. */
static int cp_dec_bytes(cp_dec *d, msgpack_object *o, msgpack_object_type type, uint32_t n)
{
    if (cp_dec_need(d, n) < 0)
        return -EPROTO;
    o->type = type;
    if (type == MSGPACK_OBJECT_STR)
        o->via.str = (msgpack_object_str){ .size = n, .ptr = (const char *)d->p };
    else
        o->via.bin = (msgpack_object_bin){ .size = n, .ptr = (const char *)d->p };
    d->p += n;
    return 0;
}

/* ext: a type byte, then `n` payload bytes. */
static int cp_dec_ext(cp_dec *d, msgpack_object *o, uint32_t n)
{
    if (cp_dec_need(d, (size_t)n + 1) < 0)
        return -EPROTO;
    o->type = MSGPACK_OBJECT_EXT;
    o->via.ext = (msgpack_object_ext){ .type = (int8_t)d->p[0], .size = n, .ptr = (const char *)d->p + 1 };
    d->p += (size_t)n + 1;
    return 0;
}

/* The walk is a loop, not a recursion: a value is decoded into the next free slot of the
 * innermost open container; a container with elements becomes the innermost, its parent's
 * place kept on a stack of at most CP_MAX_DEPTH. A map's pairs are laid out as
 * msgpack_object_kv, i.e. key and value alternate: a map of n pairs is 2n slots.
 * One switch on the first byte (case ranges: a single jump table) classifies each value.
 * Each element takes at least one byte (a pair two): a count the rest of the bytes cannot
 * hold is refused before anything is allocated for it. Integers of a signed type that
 * hold a value >= 0 are positive integers, as msgpack-c has them. */
static int cp_dec_walk(cp_dec *dp, msgpack_object *out)
{
    /* A local copy of the cursor: stores into the objects cannot alias it, so it stays in
     * a register instead of being reloaded after each one. */
    cp_dec ds = *dp, *d = &ds;
    struct {
        msgpack_object *slot;
        uint32_t left;
    } stack[CP_MAX_DEPTH];
    unsigned depth = 0;
    msgpack_object *o = out;
    uint32_t left = 1; /* slots still to fill in the innermost container */
    for (;;) {
        if (d->p >= d->end)
            return -EPROTO;
        uint8_t b = *d->p++;
        uint32_t n;
        int container; /* 1 array, 2 map */
        switch (b) {
        case 0x00 ... 0x7f:
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = b;
            goto next;
        case 0xe0 ... 0xff:
            o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
            o->via.i64 = (int8_t)b;
            goto next;
        case 0x80 ... 0x8f:
            container = 2, n = b & 0x0f;
            goto open;
        case 0x90 ... 0x9f:
            container = 1, n = b & 0x0f;
            goto open;
        case 0xa0 ... 0xbf:
            n = b & 0x1f;
            goto str;
        case 0xc0:
            o->type = MSGPACK_OBJECT_NIL;
            goto next;
        case 0xc1:
            return -EPROTO; /* never used */
        case 0xc2:
        case 0xc3:
            o->type = MSGPACK_OBJECT_BOOLEAN;
            o->via.boolean = b == 0xc3;
            goto next;
        case 0xc4 ... 0xc6: /* bin 8/16/32 */
            if (cp_dec_len(d, 1u << (b - 0xc4), &n) < 0 || cp_dec_bytes(d, o, MSGPACK_OBJECT_BIN, n) < 0)
                return -EPROTO;
            goto next;
        case 0xc7 ... 0xc9: /* ext 8/16/32 */
            if (cp_dec_len(d, 1u << (b - 0xc7), &n) < 0 || cp_dec_ext(d, o, n) < 0)
                return -EPROTO;
            goto next;
        case 0xca: { /* float 32 */
            uint64_t bits;
            if (cp_dec_be(d, 4, &bits) < 0)
                return -EPROTO;
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            o->type = MSGPACK_OBJECT_FLOAT32;
            o->via.f64 = f;
            goto next;
        }
        case 0xcb: { /* float 64 */
            uint64_t bits;
            if (cp_dec_be(d, 8, &bits) < 0)
                return -EPROTO;
            o->type = MSGPACK_OBJECT_FLOAT64;
            memcpy(&o->via.f64, &bits, 8);
            goto next;
        }
        case 0xcc ... 0xcf: { /* uint 8/16/32/64 */
            uint64_t u;
            if (cp_dec_be(d, 1u << (b - 0xcc), &u) < 0)
                return -EPROTO;
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = u;
            goto next;
        }
        case 0xd0 ... 0xd3: { /* int 8/16/32/64: sign-extended from its width */
            unsigned w = 1u << (b - 0xd0);
            uint64_t u;
            if (cp_dec_be(d, w, &u) < 0)
                return -EPROTO;
            int64_t v = w == 1 ? (int8_t)u : w == 2 ? (int16_t)u : w == 4 ? (int32_t)u : (int64_t)u;
            o->type = v < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.i64 = v; /* u64 for the positive ones: the same bits */
            goto next;
        }
        case 0xd4 ... 0xd8: /* fixext 1, 2, 4, 8, 16 */
            if (cp_dec_ext(d, o, 1u << (b - 0xd4)) < 0)
                return -EPROTO;
            goto next;
        case 0xd9 ... 0xdb: /* str 8/16/32 */
            if (cp_dec_len(d, 1u << (b - 0xd9), &n) < 0)
                return -EPROTO;
            goto str;
        case 0xdc:
        case 0xdd: /* array 16/32 */
            if (cp_dec_len(d, b == 0xdc ? 2u : 4u, &n) < 0)
                return -EPROTO;
            container = 1;
            goto open;
        default: /* 0xde, 0xdf: map 16/32 */
            if (cp_dec_len(d, b == 0xde ? 2u : 4u, &n) < 0)
                return -EPROTO;
            container = 2;
            goto open;
        }
    str:
        if (cp_dec_bytes(d, o, MSGPACK_OBJECT_STR, n) < 0)
            return -EPROTO;
        goto next;
    open:
        if (depth >= CP_MAX_DEPTH || (size_t)n * (unsigned)container > (size_t)(d->end - d->p))
            return -EPROTO;
        o->type = container == 1 ? MSGPACK_OBJECT_ARRAY : MSGPACK_OBJECT_MAP;
        o->via.array.size = n; /* array and map share the layout of size and ptr */
        o->via.array.ptr = NULL;
        if (n) {
            size_t slots = (size_t)n * (unsigned)container;
            msgpack_object *items = msgpack_zone_malloc(d->z, slots * sizeof *items);
            if (!items)
                return -ENOMEM;
            if (container == 1)
                o->via.array.ptr = items;
            else
                o->via.map.ptr = (msgpack_object_kv *)items;
            stack[depth].slot = o + 1;
            stack[depth].left = left - 1;
            depth++;
            o = items;
            left = (uint32_t)slots;
            continue;
        }
    next:
        o++;
        left--;
        while (!left) {
            if (!depth) {
                dp->p = ds.p;
                return 0;
            }
            depth--;
            o = stack[depth].slot;
            left = stack[depth].left;
        }
    }
}

int cp_decode(const uint8_t *msg, size_t len, msgpack_zone *z, msgpack_object *out)
{
    cp_dec d = { .p = msg, .end = msg + len, .z = z };
    int rc = cp_dec_walk(&d, out);
    if (rc < 0)
        return rc;
    return d.p == d.end ? 0 : -EPROTO;
}

ssize_t cp_decode_first(const uint8_t *buf, size_t avail, msgpack_zone *z, msgpack_object *out)
{
    cp_dec d = { .p = buf, .end = buf + avail, .z = z };
    int rc = cp_dec_walk(&d, out);
    return rc < 0 ? rc : (ssize_t)(d.p - buf);
}

int cp_next(cp_frame *f, const uint8_t *buf, size_t avail, msgpack_zone *z, msgpack_object *out, size_t *used)
{
    *used = 0;
    if (cp_frame_at_start(f)) {
        ssize_t n = cp_decode_first(buf, avail < f->max ? avail : f->max, z, out);
        if (n > 0) {
            *used = (size_t)n;
            return 1;
        }
        msgpack_zone_clear(z); /* partial, bad or over the limit: the scanner says which */
    }
    ssize_t r = cp_frame_scan(f, buf, avail);
    if (r <= 0)
        return (int)r;
    cp_frame_reset(f);
    *used = (size_t)r;
    int rc = cp_decode(buf, (size_t)r, z, out);
    return rc < 0 ? rc : 1;
}
