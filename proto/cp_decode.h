/* cp_decode: one whole MessagePack message into msgpack_objects allocated from a zone.
 *
 * msgpack-c's unpacker is a general, resumable state machine with a callback per item;
 * the daemon only decodes messages that are all there, so this decoder walks the bytes
 * once, in one loop with a small stack of open containers and no state kept between
 * calls: for a submit, ~530 instructions where msgpack-c's unpack took ~950 (callgrind),
 * on the path from a request to its answer. The objects are msgpack-c's own types, so everything that
 * reads them (cp_get and friends) is unchanged; the fuzz target checks that both
 * decoders agree on every message cp_frame accepts.
 *
 * Strings, binaries and ext payloads point into `msg`, which must outlive the objects.
 * Every length is still checked against the end: bytes nobody vouched for get -EPROTO,
 * never a read past them. */
#ifndef CP_DECODE_H
#define CP_DECODE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cp_frame.h"

/* Decodes exactly `len` bytes holding one message into *out. 0; -EPROTO for bytes that
 * are not one MessagePack value (truncated, trailing bytes, 0xc1, nesting deeper than
 * CP_MAX_DEPTH containers); -ENOMEM when the zone cannot grow. */
int cp_decode(const uint8_t *msg, size_t len, msgpack_zone *z, msgpack_object *out);

/* The first message of `buf`, when all of it lies within its first `avail` bytes: its
 * length, with *out decoded. Any negative errno (-EPROTO for bytes that end too soon or
 * are not MessagePack, -ENOMEM) means "not decoded here": the caller learns which from
 * cp_frame, and clears the zone of whatever a failed attempt allocated.
 *
 * This is the daemon's common case made one walk instead of two: a request that arrived
 * whole is framed and decoded together. What it accepts within `avail` bytes is exactly
 * what cp_frame accepts with a limit of `avail` (same nesting bound; counts checked
 * against the bytes left) — the fuzz target checks both ways. */
ssize_t cp_decode_first(const uint8_t *buf, size_t avail, msgpack_zone *z, msgpack_object *out);

/* The next message of a byte stream, as every reader of corod's protocol reads one (the
 * daemon, libcorod, the benches): all there, it is framed and decoded in one walk
 * (cp_decode_first, within f's size limit); otherwise f scans what has arrived, resuming
 * across calls, and the message is decoded once it is whole. Objects go into z, which
 * the caller clears between messages.
 *   1        *out is the message, *used its length;
 *   0        more bytes are needed;
 *   < 0, *used == 0   -E2BIG or -EPROTO from the scanner: the stream cannot go on;
 *   < 0, *used > 0    a whole message that could not be decoded (-ENOMEM; -EPROTO
 *                     would mean the scanner and the decoder disagree, which fuzz_proto
 *                     checks cannot happen): skip its *used bytes. */
int cp_next(cp_frame *f, const uint8_t *buf, size_t avail, msgpack_zone *z, msgpack_object *out, size_t *used);

#endif
