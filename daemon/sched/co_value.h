/* co_value: a future's outcome, held as one packed MessagePack object.
 * Results and errors are stored exactly as they will be persisted and sent on the socket,
 * so nothing re-encodes them on the way out. The runtime itself only builds the few shapes
 * it produces (nil, an error map, an array of other values); everything else arrives
 * packed from the caller. An empty value (len 0) means nil and costs no allocation. */
#ifndef CO_VALUE_H
#define CO_VALUE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct co_value {
    uint8_t *data; /* owned, malloc'd; NULL when nil */
    size_t len;
} co_value;

#define CO_VALUE_NIL ((co_value){ NULL, 0 })

/* Copies `len` bytes of one packed object. The bytes are not parsed here: whoever
 * accepts input from outside validates it first. Returns 0 or -ENOMEM. */
int co_value_copy(co_value *out, const void *packed, size_t len);
/* Inline: every task completion frees a value or two, most of them nil. */
static inline void co_value_free(co_value *v)
{
    if (v->data) {
        free(v->data);
        v->data = NULL;
    }
    v->len = 0;
}
/* The packed bytes, "\xc0" (nil) for an empty value. */
const uint8_t *co_value_bytes(const co_value *v, size_t *len);

/* {"code": code, "message": message}. Returns 0 or -ENOMEM. */
int co_value_error(co_value *out, const char *code, const char *message);
/* An array of the given values, packed back to back. Returns 0 or -ENOMEM. */
int co_value_array(co_value *out, const co_value *const *items, size_t n);

/* The packed object at p: its length (within len) and nesting depth (a scalar 0, an array
 * or a map one more than its deepest element). 0; -EINVAL when p does not start with one
 * whole object; -E2BIG when it nests deeper than max_depth (measuring stops there: the
 * walk keeps a stack of at most max_depth open containers, and max_depth is at most
 * CO_VALUE_DEPTH_MAX). */
#define CO_VALUE_DEPTH_MAX 64u
int co_value_measure(const uint8_t *p, size_t len, unsigned max_depth, size_t *used, unsigned *depth);
/* The string stored under `key` in the map v holds: 0 with *s and *n pointing into v;
 * -ENOENT when v is not a map, has no such key, or its value there is not a string. */
int co_value_get_str(const co_value *v, const char *key, const char **s, size_t *n);

/* Low-level writers, for modules that pack their own small maps. Each returns the number
 * of bytes written (at most 9; at most 5 for headers) into buf. */
size_t co_value_put_map_header(uint8_t *buf, uint32_t n);
size_t co_value_put_array_header(uint8_t *buf, uint32_t n);
size_t co_value_put_str_header(uint8_t *buf, uint32_t len);
size_t co_value_put_uint(uint8_t *buf, uint64_t v);

#endif
