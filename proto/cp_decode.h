/* cp_decode: one whole MessagePack message into msgpack_objects allocated from a zone.
 *
 * msgpack-c's unpacker is a general, resumable state machine with a callback per item;
 * the daemon only ever decodes messages cp_frame has already found complete, so this
 * decoder walks the bytes once, recursively, with no state to save: about a third of
 * msgpack-c's instructions for a typical request (callgrind), on the path from a
 * request to its answer. The objects are msgpack-c's own types, so everything that
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

/* Decodes exactly `len` bytes holding one message into *out. 0; -EPROTO for bytes that
 * are not one MessagePack value (truncated, trailing bytes, 0xc1, nesting deeper than
 * CP_MAX_DEPTH containers); -ENOMEM when the zone cannot grow. */
int cp_decode(const uint8_t *msg, size_t len, msgpack_zone *z, msgpack_object *out);

#endif
