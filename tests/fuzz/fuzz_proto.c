/* fuzz_proto: libFuzzer over everything the daemon does with bytes from a socket before a
 * method runs — framing, decoding, request parsing, task spec and kind args validation.
 * Besides "no crash, no leak, no UB", it checks one invariant: a message the scanner
 * calls complete decodes with msgpack-c in exactly that many bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "cp_frame.h"
#include "cp_msg.h"
#include "cp_spec.h"
#include "kind.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cp_frame f;
    cp_frame_init(&f, 1u << 20);
    size_t off = 0;
    while (off < size) {
        ssize_t n = cp_frame_scan(&f, data + off, size - off);
        if (n <= 0)
            break;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t used = 0;
        if (msgpack_unpack_next(&u, (const char *)data + off, (size_t)n, &used) != MSGPACK_UNPACK_SUCCESS ||
            used != (size_t)n)
            abort(); /* the scanner and msgpack-c disagree about where the message ends */
        cp_request rq;
        cp_error err;
        if (cp_request_parse(&u.data, &rq, &err) == 0 && rq.params) {
            cp_spec sp;
            if (cp_spec_parse(rq.params, &sp, &err) == 0) {
                const kind_ops *k = kind_find(sp.kind);
                void *parsed = NULL;
                if (k && k->available && k->validate(sp.args, &parsed, &err) == 0 && k->free)
                    k->free(parsed);
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
