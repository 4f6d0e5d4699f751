/* cp_out: a growable output buffer and MessagePack writers that store straight into it.
 *
 * msgpack-c's packer hands every item to a write callback: an indirect call, a bounds
 * check and a memcpy call for one to nine bytes. A task record is some thirty items, and
 * packing one that way was a quarter of the daemon's instructions from a submit to its
 * task.done (callgrind). Here each item reserves its bytes once and stores them with
 * inline code; keys given as literals are copied with a length known at compile time.
 *
 * The same buffer also serves a msgpack_packer (cp_out_write as its callback), so code
 * off the hot path keeps using msgpack-c's packer and both write in order.
 *
 * Out of memory: the buffer stops taking bytes and remembers it (cp_out_failed); what it
 * holds from then on is incomplete, and its user must throw it away. */
#ifndef CP_OUT_H
#define CP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The writers are forced inline: as calls (GCC would outline them), each item cost a call,
 * a memcpy call of variable length and a strlen; inline, a key is two stores. */
#define CP_OUT_INLINE static inline __attribute__((always_inline))

typedef struct cp_out {
    uint8_t *data;
    size_t size, cap;
    bool nomem;
} cp_out;

void cp_out_init(cp_out *o);
void cp_out_free(cp_out *o);
/* Drop the contents (keeps the allocation and clears a memory failure). */
static inline void cp_out_clear(cp_out *o)
{
    o->size = 0;
    o->nomem = false;
}
/* Hand the contents to the caller (free() them) and start empty. */
uint8_t *cp_out_release(cp_out *o);
/* Drop the first n bytes (they were written elsewhere). */
void cp_out_consume(cp_out *o, size_t n);
static inline bool cp_out_failed(const cp_out *o) { return o->nomem; }

/* Room for n more bytes: NULL (and nomem set) when it cannot be had. */
uint8_t *cp_out_grow(cp_out *o, size_t n);
CP_OUT_INLINE uint8_t *cp_out_reserve(cp_out *o, size_t n)
{
    if (__builtin_expect(o->cap - o->size >= n && !o->nomem, 1))
        return o->data + o->size;
    return cp_out_grow(o, n);
}

/* A msgpack_packer_write callback: msgpack_packer_init(&pk, &out, cp_out_write). */
int cp_out_write(void *data, const char *buf, size_t len);

/* ---- items ----------------------------------------------------------------------------
 * Two layers. cp_put_* store one item at a cursor with no checks and return the cursor
 * past it; each says the most bytes it may take. cp_out_* reserve that much, put, and
 * commit. A run of items whose total is bounded in advance (a task record) reserves once
 * and puts them all: one bounds check instead of one per item. */

/* The cursor's bytes become part of the buffer: p is what the last cp_put returned,
 * within the last reservation. */
CP_OUT_INLINE void cp_out_commit(cp_out *o, uint8_t *p)
{
    o->size = (size_t)(p - o->data);
}

CP_OUT_INLINE void cp_out_be16(uint8_t *p, uint16_t v)
{
    v = __builtin_bswap16(v);
    memcpy(p, &v, 2);
}
CP_OUT_INLINE void cp_out_be32(uint8_t *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}
CP_OUT_INLINE void cp_out_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

#define CP_PUT_NUM_MAX 9u /* an integer or a double */
#define CP_PUT_HEAD_MAX 5u /* a container's or a string's header */

CP_OUT_INLINE uint8_t *cp_put_byte(uint8_t *p, uint8_t b)
{
    *p = b;
    return p + 1;
}
CP_OUT_INLINE uint8_t *cp_put_nil(uint8_t *p) { return cp_put_byte(p, 0xc0); }
CP_OUT_INLINE uint8_t *cp_put_bool(uint8_t *p, bool b) { return cp_put_byte(p, b ? 0xc3 : 0xc2); }

CP_OUT_INLINE uint8_t *cp_put_uint(uint8_t *p, uint64_t v)
{
    if (v < 128) {
        p[0] = (uint8_t)v;
        return p + 1;
    }
    if (v < 256) {
        p[0] = 0xcc, p[1] = (uint8_t)v;
        return p + 2;
    }
    if (v < 65536) {
        p[0] = 0xcd, cp_out_be16(p + 1, (uint16_t)v);
        return p + 3;
    }
    if (v <= UINT32_MAX) {
        p[0] = 0xce, cp_out_be32(p + 1, (uint32_t)v);
        return p + 5;
    }
    p[0] = 0xcf, cp_out_be64(p + 1, v);
    return p + 9;
}

CP_OUT_INLINE uint8_t *cp_put_int(uint8_t *p, int64_t v)
{
    if (v >= 0)
        return cp_put_uint(p, (uint64_t)v);
    if (v >= -32) {
        p[0] = (uint8_t)(int8_t)v;
        return p + 1;
    }
    if (v >= INT8_MIN) {
        p[0] = 0xd0, p[1] = (uint8_t)(int8_t)v;
        return p + 2;
    }
    if (v >= INT16_MIN) {
        p[0] = 0xd1, cp_out_be16(p + 1, (uint16_t)(int16_t)v);
        return p + 3;
    }
    if (v >= INT32_MIN) {
        p[0] = 0xd2, cp_out_be32(p + 1, (uint32_t)(int32_t)v);
        return p + 5;
    }
    p[0] = 0xd3, cp_out_be64(p + 1, (uint64_t)v);
    return p + 9;
}

CP_OUT_INLINE uint8_t *cp_put_double(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    p[0] = 0xcb, cp_out_be64(p + 1, bits);
    return p + 9;
}

/* A header of a container or a string: fix form, then 8/16/32-bit lengths where the
 * format has them (fix_max: its largest fix length; fix_tag, tag8 (0: none), tag16). */
CP_OUT_INLINE uint8_t *cp_put_head(uint8_t *p, uint32_t n, uint32_t fix_max, uint8_t fix_tag, uint8_t tag8,
                                   uint8_t tag16)
{
    if (n <= fix_max) {
        p[0] = (uint8_t)(fix_tag | n);
        return p + 1;
    }
    if (tag8 && n < 256) {
        p[0] = tag8, p[1] = (uint8_t)n;
        return p + 2;
    }
    if (n < 65536) {
        p[0] = tag16, cp_out_be16(p + 1, (uint16_t)n);
        return p + 3;
    }
    p[0] = (uint8_t)(tag16 + 1), cp_out_be32(p + 1, n);
    return p + 5;
}

CP_OUT_INLINE uint8_t *cp_put_map(uint8_t *p, uint32_t n) { return cp_put_head(p, n, 15, 0x80, 0, 0xde); }
CP_OUT_INLINE uint8_t *cp_put_array(uint8_t *p, uint32_t n) { return cp_put_head(p, n, 15, 0x90, 0, 0xdc); }

/* Takes at most CP_PUT_HEAD_MAX + len bytes. */
CP_OUT_INLINE uint8_t *cp_put_strn(uint8_t *p, const char *s, size_t len)
{
    p = cp_put_head(p, (uint32_t)len, 31, 0xa0, 0xd9, 0xda);
    if (len) /* s may be NULL when there is nothing */
        memcpy(p, s, len);
    return p + len;
}

CP_OUT_INLINE uint8_t *cp_put_bin(uint8_t *p, const void *bytes, size_t len)
{
    if (len < 256) { /* bin has no fix form */
        p[0] = 0xc4, p[1] = (uint8_t)len;
        p += 2;
    } else {
        p = cp_put_head(p, (uint32_t)len, 0, 0, 0, 0xc5);
    }
    if (len)
        memcpy(p, bytes, len);
    return p + len;
}

/* Bytes already packed as MessagePack. */
CP_OUT_INLINE uint8_t *cp_put_raw(uint8_t *p, const void *bytes, size_t len)
{
    if (len)
        memcpy(p, bytes, len);
    return p + len;
}

/* A short string known at compile time (a map key, mostly): a constant header byte and a
 * copy of constant length. Takes 1 + len bytes. */
CP_OUT_INLINE uint8_t *cp_put_fixstr(uint8_t *p, const char *s, size_t len)
{
    p[0] = (uint8_t)(0xa0 | len);
    memcpy(p + 1, s, len);
    return p + 1 + len;
}
/* The literal's bound is checked at compile time (a fixstr holds at most 31 bytes). */
#define CP_LIT_LEN(lit)                                                                             \
    (sizeof(lit) - 1 +                                                                              \
     0 * sizeof(struct { _Static_assert(sizeof(lit) - 1 < 32, "a fixstr holds at most 31 bytes"); int ok; }))
#define cp_put_lit(p, lit) cp_put_fixstr((p), "" lit, CP_LIT_LEN(lit))

/* ---- single items, each reserving its bytes ---- */

#define CP_OUT_ONE(o, max, put)                \
    do {                                       \
        uint8_t *cp_p_ = cp_out_reserve((o), (max)); \
        if (cp_p_)                             \
            cp_out_commit((o), put);           \
    } while (0)

CP_OUT_INLINE void cp_out_nil(cp_out *o) { CP_OUT_ONE(o, 1, cp_put_nil(cp_p_)); }
CP_OUT_INLINE void cp_out_bool(cp_out *o, bool b) { CP_OUT_ONE(o, 1, cp_put_bool(cp_p_, b)); }
CP_OUT_INLINE void cp_out_uint(cp_out *o, uint64_t v) { CP_OUT_ONE(o, CP_PUT_NUM_MAX, cp_put_uint(cp_p_, v)); }
CP_OUT_INLINE void cp_out_int(cp_out *o, int64_t v) { CP_OUT_ONE(o, CP_PUT_NUM_MAX, cp_put_int(cp_p_, v)); }
CP_OUT_INLINE void cp_out_double(cp_out *o, double d) { CP_OUT_ONE(o, CP_PUT_NUM_MAX, cp_put_double(cp_p_, d)); }
CP_OUT_INLINE void cp_out_map(cp_out *o, uint32_t n) { CP_OUT_ONE(o, CP_PUT_HEAD_MAX, cp_put_map(cp_p_, n)); }
/* An array whose length is known only once its items are packed: a 32-bit header now,
 * its count filled in by cp_out_array_end (given what cp_out_array_begin returned). */
size_t cp_out_array_begin(cp_out *o);
void cp_out_array_end(cp_out *o, size_t at, uint32_t n);
CP_OUT_INLINE void cp_out_array(cp_out *o, uint32_t n) { CP_OUT_ONE(o, CP_PUT_HEAD_MAX, cp_put_array(cp_p_, n)); }
CP_OUT_INLINE void cp_out_raw(cp_out *o, const void *bytes, size_t len)
{
    CP_OUT_ONE(o, len, cp_put_raw(cp_p_, bytes, len));
}
CP_OUT_INLINE void cp_out_bin(cp_out *o, const void *bytes, size_t len)
{
    CP_OUT_ONE(o, len + CP_PUT_HEAD_MAX, cp_put_bin(cp_p_, bytes, len));
}
CP_OUT_INLINE void cp_out_strn(cp_out *o, const char *s, size_t len)
{
    CP_OUT_ONE(o, len + CP_PUT_HEAD_MAX, cp_put_strn(cp_p_, s, len));
}
CP_OUT_INLINE void cp_out_str(cp_out *o, const char *s) { cp_out_strn(o, s, strlen(s)); }
#define cp_out_lit(o, lit) CP_OUT_ONE(o, CP_LIT_LEN(lit) + 1, cp_put_lit(cp_p_, lit))

#endif
