/* ex_disk.c: per-uid output shares (ex_disk.h). */
#include "ex_disk.h"

#include <assert.h>
#include <stdlib.h>

ex_disk *ex_disk_new(uint64_t limit)
{
    ex_disk *d = calloc(1, sizeof *d);
    if (d) {
        d->refs = 1;
        d->limit = limit;
    }
    return d;
}

void ex_disk_unref(ex_disk *d)
{
    assert(d->refs > 0);
    if (--d->refs == 0)
        free(d);
}

ex_disk_use *ex_disk_use_new(ex_disk *d)
{
    ex_disk_use *u = calloc(1, sizeof *u);
    if (u) {
        u->refs = 1;
        u->disk = d;
        d->refs++;
    }
    return u;
}

void ex_disk_use_ref(ex_disk_use *u)
{
    u->refs++;
}

void ex_disk_use_unref(ex_disk_use *u)
{
    assert(u->refs > 0);
    if (--u->refs)
        return;
    ex_disk_unref(u->disk);
    free(u);
}

uint64_t ex_disk_room(ex_disk_use *u, uint64_t n)
{
    ex_disk *d = u->disk;
    if (!d->limit)
        return n;
    if (d->used + n > d->limit && d->reclaim)
        d->reclaim(d, n, d->arg);
    uint64_t left = d->used < d->limit ? d->limit - d->used : 0;
    return n < left ? n : left;
}

void ex_disk_add(ex_disk_use *u, uint64_t n)
{
    u->bytes += n;
    u->disk->used += n;
}

void ex_disk_forget(ex_disk_use *u)
{
    assert(u->disk->used >= u->bytes);
    u->disk->used -= u->bytes;
    u->bytes = 0;
}
