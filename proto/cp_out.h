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

/* ---- items ---- */

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

CP_OUT_INLINE void cp_out_byte(cp_out *o, uint8_t b)
{
    uint8_t *p = cp_out_reserve(o, 1);
    if (p)
        *p = b, o->size++;
}

CP_OUT_INLINE void cp_out_nil(cp_out *o) { cp_out_byte(o, 0xc0); }
CP_OUT_INLINE void cp_out_bool(cp_out *o, bool b) { cp_out_byte(o, b ? 0xc3 : 0xc2); }

CP_OUT_INLINE void cp_out_uint(cp_out *o, uint64_t v)
{
    uint8_t *p = cp_out_reserve(o, 9);
    if (!p)
        return;
    if (v < 128) {
        p[0] = (uint8_t)v, o->size += 1;
    } else if (v < 256) {
        p[0] = 0xcc, p[1] = (uint8_t)v, o->size += 2;
    } else if (v < 65536) {
        p[0] = 0xcd, cp_out_be16(p + 1, (uint16_t)v), o->size += 3;
    } else if (v <= UINT32_MAX) {
        p[0] = 0xce, cp_out_be32(p + 1, (uint32_t)v), o->size += 5;
    } else {
        p[0] = 0xcf, cp_out_be64(p + 1, v), o->size += 9;
    }
}

CP_OUT_INLINE void cp_out_int(cp_out *o, int64_t v)
{
    if (v >= 0) {
        cp_out_uint(o, (uint64_t)v);
        return;
    }
    uint8_t *p = cp_out_reserve(o, 9);
    if (!p)
        return;
    if (v >= -32) {
        p[0] = (uint8_t)(int8_t)v, o->size += 1;
    } else if (v >= INT8_MIN) {
        p[0] = 0xd0, p[1] = (uint8_t)(int8_t)v, o->size += 2;
    } else if (v >= INT16_MIN) {
        p[0] = 0xd1, cp_out_be16(p + 1, (uint16_t)(int16_t)v), o->size += 3;
    } else if (v >= INT32_MIN) {
        p[0] = 0xd2, cp_out_be32(p + 1, (uint32_t)(int32_t)v), o->size += 5;
    } else {
        p[0] = 0xd3, cp_out_be64(p + 1, (uint64_t)v), o->size += 9;
    }
}

CP_OUT_INLINE void cp_out_double(cp_out *o, double d)
{
    uint8_t *p = cp_out_reserve(o, 9);
    if (!p)
        return;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    p[0] = 0xcb, cp_out_be64(p + 1, bits), o->size += 9;
}

/* A header of a container or a string: fix form, then 8/16/32-bit lengths where the
 * format has them (fix_max: its largest fix length; fix_tag, tag8 (0: none), tag16). */
CP_OUT_INLINE void cp_out_head(cp_out *o, uint32_t n, uint32_t fix_max, uint8_t fix_tag, uint8_t tag8,
                               uint8_t tag16)
{
    uint8_t *p = cp_out_reserve(o, 5);
    if (!p)
        return;
    if (n <= fix_max) {
        p[0] = (uint8_t)(fix_tag | n), o->size += 1;
    } else if (tag8 && n < 256) {
        p[0] = tag8, p[1] = (uint8_t)n, o->size += 2;
    } else if (n < 65536) {
        p[0] = tag16, cp_out_be16(p + 1, (uint16_t)n), o->size += 3;
    } else {
        p[0] = (uint8_t)(tag16 + 1), cp_out_be32(p + 1, n), o->size += 5;
    }
}

CP_OUT_INLINE void cp_out_map(cp_out *o, uint32_t n) { cp_out_head(o, n, 15, 0x80, 0, 0xde); }
CP_OUT_INLINE void cp_out_array(cp_out *o, uint32_t n) { cp_out_head(o, n, 15, 0x90, 0, 0xdc); }

/* Bytes already packed as MessagePack. */
CP_OUT_INLINE void cp_out_raw(cp_out *o, const void *bytes, size_t len)
{
    uint8_t *p = cp_out_reserve(o, len);
    if (p) {
        if (len)
            memcpy(p, bytes, len);
        o->size += len;
    }
}

/* Binary data: bin 8/16/32 and the bytes. */
CP_OUT_INLINE void cp_out_bin(cp_out *o, const void *bytes, size_t len)
{
    uint8_t *p = cp_out_reserve(o, len + 5);
    if (!p)
        return;
    if (len < 256) {
        p[0] = 0xc4, p[1] = (uint8_t)len, o->size += 2;
    } else if (len < 65536) {
        p[0] = 0xc5, cp_out_be16(p + 1, (uint16_t)len), o->size += 3;
    } else {
        p[0] = 0xc6, cp_out_be32(p + 1, (uint32_t)len), o->size += 5;
    }
    if (len) /* bytes may be NULL when there are none */
        memcpy(o->data + o->size, bytes, len);
    o->size += len;
}

CP_OUT_INLINE void cp_out_strn(cp_out *o, const char *s, size_t len)
{
    uint8_t *p = cp_out_reserve(o, len + 5);
    if (!p)
        return;
    if (len < 32) {
        p[0] = (uint8_t)(0xa0 | len), o->size += 1;
    } else if (len < 256) {
        p[0] = 0xd9, p[1] = (uint8_t)len, o->size += 2;
    } else if (len < 65536) {
        p[0] = 0xda, cp_out_be16(p + 1, (uint16_t)len), o->size += 3;
    } else {
        p[0] = 0xdb, cp_out_be32(p + 1, (uint32_t)len), o->size += 5;
    }
    if (len)
        memcpy(o->data + o->size, s, len);
    o->size += len;
}

CP_OUT_INLINE void cp_out_str(cp_out *o, const char *s) { cp_out_strn(o, s, strlen(s)); }

/* A short string known at compile time (a map key, mostly): one reservation, a constant
 * header byte and a copy of constant length, all inline. */
CP_OUT_INLINE void cp_out_fixstr(cp_out *o, const char *s, size_t len)
{
    uint8_t *p = cp_out_reserve(o, len + 1);
    if (!p)
        return;
    p[0] = (uint8_t)(0xa0 | len);
    memcpy(p + 1, s, len);
    o->size += len + 1;
}
#define cp_out_lit(o, lit)                                                                    \
    do {                                                                                      \
        _Static_assert(sizeof(lit) - 1 < 32, "cp_out_lit: a fixstr holds at most 31 bytes"); \
        cp_out_fixstr((o), "" lit, sizeof(lit) - 1);                                           \
    } while (0)

#endif
