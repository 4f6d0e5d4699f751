/* cp_frame.c: the incremental MessagePack boundary scanner. Header sizes and payload
 * lengths follow the MessagePack specification's format table. */
#include "cp_frame.h"

#include <errno.h>
#include <string.h>

void cp_frame_init(cp_frame *f, size_t max)
{
    memset(f, 0, sizeof *f);
    f->max = max ? max : CP_MAX_MESSAGE_DEFAULT;
}

void cp_frame_reset(cp_frame *f)
{
    f->pos = f->skip = 0;
    f->depth = 0;
}

/* One value finished: count it off the open containers. True when the message is done. */
static int cp_value_done(cp_frame *f)
{
    while (f->depth) {
        if (--f->left[f->depth - 1])
            return 0;
        f->depth--;
    }
    return 1;
}

ssize_t cp_frame_scan(cp_frame *f, const uint8_t *msg, size_t avail)
{
    for (;;) {
        if (f->skip) {
            size_t take = avail - f->pos < f->skip ? avail - f->pos : f->skip;
            f->pos += take;
            f->skip -= take;
            if (f->skip)
                return 0;
            if (cp_value_done(f))
                return (ssize_t)f->pos;
            continue;
        }
        if (f->pos >= avail)
            return 0;
        const uint8_t *p = msg + f->pos;
        uint8_t b = p[0];
        unsigned hdr = 1, lenbytes = 0; /* header size; bytes of a big-endian length field */
        uint64_t payload = 0, count = 0;
        int container = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool: the header is the value */
        } else if (b <= 0x8f) {
            container = 1, count = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            container = 1, count = b & 0x0f;
        } else if (b <= 0xbf) {
            payload = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;           /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;           /* bin16, str16 */
            case 0xc6: case 0xdb: lenbytes = 4; break;           /* bin32, str32 */
            case 0xc7: lenbytes = 1, hdr = 1; break;             /* ext8 (+type) */
            case 0xc8: lenbytes = 2, hdr = 1; break;             /* ext16 */
            case 0xc9: lenbytes = 4, hdr = 1; break;             /* ext32 */
            case 0xca: payload = 4; break;                       /* float32 */
            case 0xcb: payload = 8; break;                       /* float64 */
            case 0xcc: case 0xd0: payload = 1; break;
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xce: case 0xd2: payload = 4; break;
            case 0xcf: case 0xd3: payload = 8; break;
            case 0xd4: payload = 2; break;                       /* fixext: type + data */
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xdc: container = 1, lenbytes = 2; break;       /* array16 */
            case 0xdd: container = 1, lenbytes = 4; break;       /* array32 */
            case 0xde: container = 2, lenbytes = 2; break;       /* map16 */
            case 0xdf: container = 2, lenbytes = 4; break;       /* map32 */
            default: return -EPROTO;                             /* 0xc1: never used */
            }
        }
        unsigned ext_type = (b == 0xc7 || b == 0xc8 || b == 0xc9);
        unsigned need = hdr + lenbytes + ext_type;
        if (avail - f->pos < need)
            return 0; /* the header itself is not all here yet */
        if (lenbytes) {
            uint64_t n = cp_be_read(p + 1, lenbytes);
            if (container)
                count = container == 2 ? 2 * n : n;
            else
                payload = n;
        }
        f->pos += need;
        if (f->pos > f->max)
            return -E2BIG;
        /* An empty container nests too: msgpack-c's decoder counts every level. */
        if (container && f->depth >= CP_MAX_DEPTH)
            return -EPROTO;
        if (container && count) {
            /* Every element takes at least one byte: a claim the limit cannot hold is
             * refused before anything is allocated for it. */
            if (count > f->max - f->pos)
                return -E2BIG;
            f->left[f->depth++] = count;
            continue;
        }
        if (payload) {
            if (payload > f->max - f->pos)
                return -E2BIG;
            f->skip = (size_t)payload;
            continue;
        }
        if (cp_value_done(f))
            return (ssize_t)f->pos;
    }
}
