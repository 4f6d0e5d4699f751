/* ex_disk: what a uid's jobs' output files take on disk, and the bound on it. Output
 * files live in the daemon's state directory: without a share per uid, one user could
 * fill that disk for everyone (a 500 MB root-owned file, around their own disk quota).
 *
 * A uid's ex_disk counts the bytes its jobs wrote that are still on disk; each record
 * with output has an ex_disk_use counting its own files, so forgetting a record gives its
 * bytes back at once (the files go later, on the thread pool). A pump writing past the
 * share first asks for room (`reclaim`: the server evicts the uid's oldest finished
 * records), then keeps only what fits. Both are reference counted: a job still draining
 * at shutdown may outlive its record and its uid's account. */
#ifndef EX_DISK_H
#define EX_DISK_H

#include <stddef.h>
#include <stdint.h>

typedef struct ex_disk ex_disk;

struct ex_disk {
    size_t refs;
    uint64_t used, limit; /* limit 0: none */
    /* Evict what can go until `need` more bytes fit (used + need <= limit); NULL once
     * nobody can. */
    void (*reclaim)(ex_disk *d, uint64_t need, void *arg);
    void *arg;
};

typedef struct ex_disk_use {
    size_t refs;
    uint64_t bytes; /* this record's files, counted in disk->used */
    ex_disk *disk;  /* referenced */
} ex_disk_use;

ex_disk *ex_disk_new(uint64_t limit); /* NULL: out of memory */
void ex_disk_unref(ex_disk *d);
ex_disk_use *ex_disk_use_new(ex_disk *d); /* NULL: out of memory */
void ex_disk_use_ref(ex_disk_use *u);
void ex_disk_use_unref(ex_disk_use *u);
/* Of n bytes about to be written, how many fit in the share (asking for room first). */
uint64_t ex_disk_room(ex_disk_use *u, uint64_t n);
/* n bytes were written. */
void ex_disk_add(ex_disk_use *u, uint64_t n);
/* The record's files are forgotten (they are being removed): their bytes go back. */
void ex_disk_forget(ex_disk_use *u);

#endif
