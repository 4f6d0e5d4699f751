/* cp_head: one MessagePack header — how long it is, how many payload bytes follow it, and
 * how many elements a container holds — after the specification's format table. Header
 * only, and nothing but the bytes: the stream scanner (cp_frame) and the scheduler's
 * stored values (co_value) read the same table. */
#ifndef CP_HEAD_H
#define CP_HEAD_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The big-endian unsigned integer in the n bytes (1, 2, 4 or 8) at p: MessagePack's
 * lengths and numbers. */
static inline uint64_t cp_be_read(const uint8_t *p, unsigned n)
{
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    switch (n) {
    case 1:
        return p[0];
    case 2:
        memcpy(&v16, p, 2);
        return __builtin_bswap16(v16);
    case 4:
        memcpy(&v32, p, 4);
        return __builtin_bswap32(v32);
    default:
        memcpy(&v64, p, 8);
        return __builtin_bswap64(v64);
    }
}

typedef struct cp_head {
    unsigned size;    /* the header's bytes: type byte, length or count, an ext's type */
    uint64_t payload; /* bytes after the header: a string's, a number's, an ext's data */
    uint64_t count;   /* a container's elements (a map's keys and values both) */
    bool container;   /* an array or a map */
    bool map;
    bool str;
} cp_head;

/* The header at p, of which n bytes are there: 1 with *h; 0 when it needs more than n
 * bytes (n == 0 included); -EPROTO for 0xc1, which MessagePack never uses. */
static inline int cp_head_read(const uint8_t *p, size_t n, cp_head *h)
{
    if (!n)
        return 0;
    uint8_t b = p[0];
    unsigned width = 0; /* of a big-endian length or count after the type byte */
    *h = (cp_head){ .size = 1 };
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        /* fixint, nil, bool: the header is the value */
    } else if (b <= 0x8f) {
        h->container = h->map = true, h->count = 2u * (b & 0x0f);
    } else if (b <= 0x9f) {
        h->container = true, h->count = b & 0x0f;
    } else if (b <= 0xbf) {
        h->str = true, h->payload = b & 0x1f;
    } else {
        switch (b) {
        case 0xc4: width = 1; break;                          /* bin8 */
        case 0xc5: width = 2; break;                          /* bin16 */
        case 0xc6: width = 4; break;                          /* bin32 */
        case 0xd9: width = 1, h->str = true; break;           /* str8 */
        case 0xda: width = 2, h->str = true; break;           /* str16 */
        case 0xdb: width = 4, h->str = true; break;           /* str32 */
        case 0xc7: width = 1, h->size = 2; break;             /* ext8: length, type */
        case 0xc8: width = 2, h->size = 2; break;             /* ext16 */
        case 0xc9: width = 4, h->size = 2; break;             /* ext32 */
        case 0xca: h->payload = 4; break;                     /* float32 */
        case 0xcb: h->payload = 8; break;                     /* float64 */
        case 0xcc: case 0xd0: h->payload = 1; break;          /* (u)int8 */
        case 0xcd: case 0xd1: h->payload = 2; break;
        case 0xce: case 0xd2: h->payload = 4; break;
        case 0xcf: case 0xd3: h->payload = 8; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext 1..16: type, data */
            h->payload = 1u + (1u << (b - 0xd4));
            break;
        case 0xdc: width = 2, h->container = true; break;     /* array16 */
        case 0xdd: width = 4, h->container = true; break;     /* array32 */
        case 0xde: width = 2, h->container = h->map = true; break; /* map16 */
        case 0xdf: width = 4, h->container = h->map = true; break; /* map32 */
        default: return -EPROTO;                              /* 0xc1 */
        }
    }
    h->size += width;
    if (n < h->size)
        return 0;
    if (width) {
        uint64_t v = cp_be_read(p + 1, width);
        if (h->container)
            h->count = h->map ? 2 * v : v;
        else
            h->payload = v;
    }
    return 1;
}

#endif
