/* srv_index: the table's map from task id to record — open addressing with Robin Hood
 * ordering over a multiplicative (Fibonacci) hash of the id.
 *
 * Ids come from a counter, so the identity hash (id mod capacity) once put consecutive
 * records in consecutive slots. It also let the history of ids decide the cost of an
 * insert: a block of old ids that stays live (a queue of long jobs) sits where new ids
 * land once they pass the capacity, and every insert then shifted the whole block (with
 * 90,000 live tasks, submits fell from ~1M/s to 4-15k/s). Multiplying by 2^64/phi and
 * keeping the top bits spreads any set of ids evenly, so probe lengths stay those of a
 * random table at half load (a handful) whatever ids are live.
 *
 * Robin Hood ordering keeps probe lengths even, lets a lookup stop early, and lets a
 * deletion shift back only up to the first entry already at home. */
#ifndef SRV_INDEX_H
#define SRV_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_index_slot {
    uint64_t id; /* kept beside the value: probing never touches a record */
    void *val;   /* NULL: empty */
} srv_index_slot;

typedef struct srv_index {
    srv_index_slot *slots;
    size_t cap, count; /* cap: 0 or a power of two, at least twice count */
    unsigned shift;    /* 64 - log2(cap) */
    uint64_t moves;    /* slots written by inserts and deletions: their cost, for tests */
} srv_index;

void srv_index_init(srv_index *ix);
void srv_index_free(srv_index *ix);
/* Map id (not yet present) to val (not NULL). 0, or -ENOMEM with nothing changed. */
int srv_index_put(srv_index *ix, uint64_t id, void *val);
/* The value for id, or NULL. */
void *srv_index_get(const srv_index *ix, uint64_t id);
/* Each value in turn, in no order: start with *at = 0; NULL once past the last. The
 * index must not change meanwhile. */
void *srv_index_next(const srv_index *ix, size_t *at);
/* Forget id (a no-op when absent). */
void srv_index_del(srv_index *ix, uint64_t id);
/* The longest distance from an entry to its home slot: a lookup's worst case (tests).
 * It says nothing of an insert's cost: Robin Hood ordering keeps every entry near home
 * even while each insert shifts a long run by one slot (`moves` counts that). */
size_t srv_index_max_probe(const srv_index *ix);

#endif
