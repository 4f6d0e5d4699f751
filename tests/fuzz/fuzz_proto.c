/* fuzz_proto: libFuzzer over everything the daemon does with bytes from a socket before a
 * method runs — framing, decoding, request parsing, task spec and kind args validation.
 * Besides "no crash, no leak, no UB", it checks three invariants: a message the scanner
 * calls complete decodes with msgpack-c in exactly that many bytes; cp_decode (the
 * daemon's decoder) makes the very same objects of it; and cp_decode_first (the one-walk
 * path) and cp_next (the reader every reader uses) take a message exactly when the
 * scanner does, of the same length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_decode.h"
#include "cp_frame.h"
#include "cp_msg.h"
#include "cp_spec.h"
#include "kind.h"

static const kind_env fuzz_env = { .output_dir = "/nonexistent", .max_result = 4u << 20, .max_depth = 16 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* msgpack_object_equal, but floats compare by their bits (NaN is NaN); the pointer of
 * an empty string is not compared (msgpack-c leaves it NULL). */
static int same_object(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return 1;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof a->via.f64) == 0;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        return a->via.str.size == b->via.str.size &&
               (!a->via.str.size || !memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size));
    case MSGPACK_OBJECT_EXT:
        return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
               (!a->via.ext.size || !memcmp(a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size));
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return 0;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!same_object(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return 0;
        return 1;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return 0;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!same_object(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !same_object(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return 0;
        return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cp_frame f;
    cp_frame_init(&f, 1u << 20);
    size_t off = 0;
    while (off < size) {
        /* The daemon's one-walk path must take exactly what the scanner takes, no more,
         * no less, within the same limit. */
        size_t window = size - off < f.max ? size - off : f.max;
        msgpack_zone fz;
        msgpack_zone_init(&fz, MSGPACK_ZONE_CHUNK_SIZE);
        msgpack_object first;
        ssize_t fast = cp_decode_first(data + off, window, &fz, &first);
        msgpack_zone_destroy(&fz);
        /* And cp_next, the reader built on both, takes exactly that too. */
        cp_frame g;
        cp_frame_init(&g, f.max);
        msgpack_zone_init(&fz, MSGPACK_ZONE_CHUNK_SIZE);
        size_t next_used;
        int next = cp_next(&g, data + off, size - off, &fz, &first, &next_used);
        msgpack_zone_destroy(&fz);
        ssize_t n = cp_frame_scan(&f, data + off, size - off);
        if ((fast > 0 || n > 0) && fast != n)
            abort(); /* cp_decode_first and the scanner disagree about a whole message */
        if (n > 0 ? next != 1 || next_used != (size_t)n : next > 0 || next_used)
            abort(); /* cp_next and the scanner disagree */
        if (n <= 0)
            break;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t used = 0;
        if (msgpack_unpack_next(&u, (const char *)data + off, (size_t)n, &used) != MSGPACK_UNPACK_SUCCESS ||
            used != (size_t)n)
            abort(); /* the scanner and msgpack-c disagree about where the message ends */
        msgpack_zone z;
        msgpack_zone_init(&z, MSGPACK_ZONE_CHUNK_SIZE);
        msgpack_object mine;
        if (cp_decode(data + off, (size_t)n, &z, &mine) != 0 || !same_object(&mine, &u.data))
            abort(); /* the daemon's decoder and msgpack-c disagree */
        msgpack_zone_destroy(&z);
        cp_request rq;
        cp_error err;
        if (cp_request_parse(&u.data, &rq, &err) == 0 && rq.params) {
            cp_spec sp;
            if (cp_spec_parse(rq.params, &sp, &err) == 0) {
                const kind_ops *k = kind_find(sp.kind);
                kind_args_block parsed = { 0 };
                /* Every kind's validation, exec's too (not available to fuzz_server). */
                if (k && k->validate(sp.args, &fuzz_env, &parsed, &err) == 0 && k->free)
                    k->free(&parsed);
            }
            cp_spec_free(&sp);
            uint64_t *ids;
            size_t nids;
            if (cp_get_ids(rq.params, "ids", false, 65536, &ids, &nids, &err) >= 0)
                free(ids);
            double d;
            cp_get_seconds(rq.params, "timeout", false, 0, 1e9, &d, &err);
        }
        msgpack_unpacked_destroy(&u);
        off += (size_t)n;
        cp_frame_reset(&f);
    }
    return 0;
}
