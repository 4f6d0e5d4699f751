/* ut_grow: one way to make room in a growing array, for the modules that keep one (the
 * server's, the store's). Header only. */
#ifndef UT_GROW_H
#define UT_GROW_H

#include <stddef.h>
#include <stdlib.h>

/* Room for one more in array v of n items of `size` bytes, doubling from `first`: the
 * array to use from now on, or NULL (out of memory, v unchanged). */
static inline void *ut_grow(void *v, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return v;
    size_t ncap = *cap ? *cap * 2 : first;
    void *g = realloc(v, ncap * size);
    if (g)
        *cap = ncap;
    return g;
}

#endif
