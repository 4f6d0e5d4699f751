/* cp_frame.c: the incremental MessagePack boundary scanner, one header (cp_head.h) at a
 * time. */
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
        cp_head h;
        int rc = cp_head_read(msg + f->pos, avail - f->pos, &h);
        if (rc < 0)
            return -EPROTO;
        if (rc == 0)
            return 0; /* the header itself is not all here yet */
        f->pos += h.size;
        if (f->pos > f->max)
            return -E2BIG;
        /* An empty container nests too: msgpack-c's decoder counts every level. */
        if (h.container && f->depth >= CP_MAX_DEPTH)
            return -EPROTO;
        if (h.count) {
            /* Every element takes at least one byte: a claim the limit cannot hold is
             * refused before anything is allocated for it. */
            if (h.count > f->max - f->pos)
                return -E2BIG;
            f->left[f->depth++] = h.count;
            continue;
        }
        if (h.payload) {
            if (h.payload > f->max - f->pos)
                return -E2BIG;
            f->skip = (size_t)h.payload;
            continue;
        }
        if (cp_value_done(f))
            return (ssize_t)f->pos;
    }
}
