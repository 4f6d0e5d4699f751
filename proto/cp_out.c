/* cp_out.c: the buffer's slow paths — growth, release, and the msgpack_packer adapter. */
#include "cp_out.h"

#include <stdlib.h>

#define CP_OUT_MIN 8192u

void cp_out_init(cp_out *o)
{
    *o = (cp_out){ 0 };
}

void cp_out_free(cp_out *o)
{
    free(o->data);
    cp_out_init(o);
}

uint8_t *cp_out_release(cp_out *o)
{
    uint8_t *d = o->data;
    cp_out_init(o);
    return d;
}

void cp_out_consume(cp_out *o, size_t n)
{
    size_t rest = n < o->size ? o->size - n : 0;
    if (rest)
        memmove(o->data, o->data + (o->size - rest), rest);
    o->size = rest;
}

uint8_t *cp_out_grow(cp_out *o, size_t n)
{
    if (o->nomem)
        return NULL;
    if (o->cap - o->size >= n)
        return o->data + o->size;
    if (n > SIZE_MAX / 2 - o->size) {
        o->nomem = true;
        return NULL;
    }
    size_t cap = o->cap ? o->cap : CP_OUT_MIN;
    while (cap - o->size < n)
        cap *= 2;
    uint8_t *d = realloc(o->data, cap);
    if (!d) {
        o->nomem = true;
        return NULL;
    }
    o->data = d;
    o->cap = cap;
    return d + o->size;
}

size_t cp_out_array_begin(cp_out *o)
{
    size_t at = o->size;
    uint8_t *p = cp_out_reserve(o, 5);
    if (p) {
        p[0] = 0xdd;
        cp_out_commit(o, p + 5);
    }
    return at;
}

void cp_out_array_end(cp_out *o, size_t at, uint32_t n)
{
    if (!o->nomem)
        cp_out_be32(o->data + at + 1, n);
}

int cp_out_write(void *data, const char *buf, size_t len)
{
    cp_out *o = data;
    uint8_t *p = cp_out_reserve(o, len);
    if (!p)
        return -1;
    memcpy(p, buf, len);
    o->size += len;
    return 0;
}
