/* cp_frame: where one MessagePack message ends in a byte stream, decided without
 * allocating. msgpack-c's streaming unpacker reserves memory for a container's claimed
 * element count before the elements arrive, so a five-byte header could ask for gigabytes;
 * this scanner walks headers incrementally (resumable across reads, O(n) in all), enforces
 * the message size limit and a nesting limit, and rejects a container that claims more
 * elements than the remaining size limit could hold. Only complete messages reach the decoder (cp_decode). */
#ifndef CP_FRAME_H
#define CP_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cp_head.h" /* cp_be_read, for the decoder too */

#define CP_MAX_MESSAGE_DEFAULT (16u * 1024u * 1024u) /* the contract's default limit */
#define CP_MAX_DEPTH 32u /* nested arrays/maps in one message (msgpack-c decodes no deeper) */

typedef struct cp_frame {
    size_t max;   /* largest message accepted, in bytes */
    size_t pos;   /* bytes of the current message scanned */
    size_t skip;  /* payload bytes still to pass over */
    uint32_t depth;
    uint64_t left[CP_MAX_DEPTH]; /* values still expected at each open level */
} cp_frame;

void cp_frame_init(cp_frame *f, size_t max);
/* `msg` holds the current message from its first byte, `avail` bytes of it so far.
 * Returns the message length once it is complete (then call cp_frame_reset before the
 * next), 0 when more bytes are needed, -E2BIG past the size limit, -EPROTO for bytes
 * that are not MessagePack (0xc1) or nesting deeper than CP_MAX_DEPTH. */
ssize_t cp_frame_scan(cp_frame *f, const uint8_t *msg, size_t avail);
void cp_frame_reset(cp_frame *f);
/* True while no byte of the current message has been scanned: the moment a caller may
 * try cp_decode_first before falling back to scanning. */
static inline int cp_frame_at_start(const cp_frame *f)
{
    return f->pos == 0;
}

#endif
