/* srv_index.c: Robin Hood open addressing over a Fibonacci hash (srv_index.h says why). */
#include "srv_index.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#define SRV_INDEX_MIN_CAP 1024u
#define SRV_INDEX_GOLDEN 0x9e3779b97f4a7c15ull /* 2^64 / phi, odd */

static size_t srv_index_home(const srv_index *ix, uint64_t id)
{
    return (size_t)((id * SRV_INDEX_GOLDEN) >> ix->shift);
}

/* How far slot j is from the home of the id in it. */
static size_t srv_index_dist(const srv_index *ix, size_t j, uint64_t id)
{
    return (j - srv_index_home(ix, id)) & (ix->cap - 1);
}

void srv_index_init(srv_index *ix)
{
    *ix = (srv_index){ .slots = NULL, .cap = 0, .count = 0, .shift = 64 };
}

void srv_index_free(srv_index *ix)
{
    free(ix->slots);
    srv_index_init(ix);
}

static void srv_index_insert(srv_index *ix, srv_index_slot e)
{
    size_t j = srv_index_home(ix, e.id);
    for (size_t d = 0;; j = (j + 1) & (ix->cap - 1), d++) {
        srv_index_slot *s = &ix->slots[j];
        ix->moves++;
        if (!s->val) {
            *s = e;
            return;
        }
        size_t sd = srv_index_dist(ix, j, s->id);
        if (sd < d) { /* the richer entry moves on; this one takes its place */
            srv_index_slot tmp = *s;
            *s = e;
            e = tmp;
            d = sd;
        }
    }
}

static int srv_index_grow(srv_index *ix)
{
    size_t ncap = ix->cap ? ix->cap * 2 : SRV_INDEX_MIN_CAP;
    srv_index_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    srv_index old = *ix;
    ix->moves = 0; /* growth is amortised; what the counter is for is the steady state */
    ix->slots = ns;
    ix->cap = ncap;
    ix->shift = 64u - (unsigned)__builtin_ctzll(ncap);
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].val)
            srv_index_insert(ix, old.slots[i]);
    free(old.slots);
    return 0;
}

int srv_index_put(srv_index *ix, uint64_t id, void *val)
{
    assert(val && !srv_index_get(ix, id));
    if ((ix->count + 1) * 2 > ix->cap && srv_index_grow(ix) < 0)
        return -ENOMEM;
    srv_index_insert(ix, (srv_index_slot){ id, val });
    ix->count++;
    return 0;
}

/* The slot holding id, or (size_t)-1. Stops at an empty slot or at an entry nearer its
 * home than id would be: Robin Hood ordering puts id before it. */
static size_t srv_index_find(const srv_index *ix, uint64_t id)
{
    if (!ix->cap)
        return (size_t)-1;
    size_t j = srv_index_home(ix, id);
    for (size_t d = 0;; j = (j + 1) & (ix->cap - 1), d++) {
        const srv_index_slot *s = &ix->slots[j];
        if (!s->val || srv_index_dist(ix, j, s->id) < d)
            return (size_t)-1;
        if (s->id == id)
            return j;
    }
}

void *srv_index_get(const srv_index *ix, uint64_t id)
{
    size_t j = srv_index_find(ix, id);
    return j == (size_t)-1 ? NULL : ix->slots[j].val;
}

void srv_index_del(srv_index *ix, uint64_t id)
{
    size_t j = srv_index_find(ix, id);
    if (j == (size_t)-1)
        return;
    for (;;) { /* shift the entries behind it back by one, up to one at home or a hole */
        size_t k = (j + 1) & (ix->cap - 1);
        srv_index_slot *next = &ix->slots[k];
        if (!next->val || srv_index_dist(ix, k, next->id) == 0)
            break;
        ix->slots[j] = *next;
        ix->moves++;
        j = k;
    }
    ix->slots[j] = (srv_index_slot){ 0, NULL };
    ix->count--;
}

size_t srv_index_max_probe(const srv_index *ix)
{
    size_t worst = 0;
    for (size_t j = 0; j < ix->cap; j++)
        if (ix->slots[j].val) {
            size_t d = srv_index_dist(ix, j, ix->slots[j].id);
            worst = d > worst ? d : worst;
        }
    return worst;
}

void *srv_index_next(const srv_index *ix, size_t *at)
{
    while (*at < ix->cap) {
        void *v = ix->slots[(*at)++].val;
        if (v)
            return v;
    }
    return NULL;
}
