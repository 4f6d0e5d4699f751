/* srv_group.c: groups and their ready heaps. */
#include "srv_group.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* a before b: higher priority, then lower id. */
static bool srv_before(const srv_ready *a, const srv_ready *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->id < b->id;
}

static void srv_heap_set(srv_heap *h, size_t i, srv_ready *it)
{
    h->v[i] = it;
    it->idx = i;
}

static void srv_heap_up(srv_heap *h, size_t i)
{
    srv_ready *it = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!srv_before(it, h->v[p]))
            break;
        srv_heap_set(h, i, h->v[p]);
        i = p;
    }
    srv_heap_set(h, i, it);
}

static void srv_heap_down(srv_heap *h, size_t i)
{
    srv_ready *it = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && srv_before(h->v[c + 1], h->v[c]))
            c++;
        if (!srv_before(h->v[c], it))
            break;
        srv_heap_set(h, i, h->v[c]);
        i = c;
    }
    srv_heap_set(h, i, it);
}

static int srv_heap_push(srv_heap *h, srv_ready *it)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 16;
        srv_ready **nv = realloc(h->v, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        h->v = nv;
        h->cap = nc;
    }
    srv_heap_set(h, h->n++, it);
    srv_heap_up(h, it->idx);
    return 0;
}

static void srv_heap_remove(srv_heap *h, srv_ready *it)
{
    size_t i = it->idx;
    it->idx = SRV_NOT_QUEUED;
    srv_ready *last = h->v[--h->n];
    if (i == h->n)
        return;
    srv_heap_set(h, i, last);
    srv_heap_up(h, i);
    srv_heap_down(h, last->idx);
}

srv_group *srv_group_new(cp_str name, const srv_group *like, uint32_t parallel)
{
    srv_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    memcpy(g->name, name.ptr, name.len);
    g->parallel = like ? like->parallel : parallel;
    g->paused = like ? like->paused : false;
    return g;
}

void srv_group_free(srv_group *g)
{
    if (!g)
        return;
    free(g->ready_wait.v);
    free(g->ready_work.v);
    free(g);
}

int srv_group_queue(srv_group *g, srv_ready *it)
{
    return srv_heap_push(it->work ? &g->ready_work : &g->ready_wait, it);
}

void srv_group_dequeue(srv_group *g, srv_ready *it)
{
    if (it->idx != SRV_NOT_QUEUED)
        srv_heap_remove(it->work ? &g->ready_work : &g->ready_wait, it);
}

srv_ready *srv_group_pop(srv_group *g)
{
    if (g->paused)
        return NULL;
    srv_heap *h = &g->ready_wait; /* waits never take a slot: never held behind work */
    if (!h->n) {
        h = &g->ready_work;
        if (!h->n || (g->parallel && g->busy >= g->parallel))
            return NULL;
    }
    srv_ready *it = h->v[0];
    srv_heap_remove(h, it);
    return it;
}

size_t srv_group_queued(const srv_group *g)
{
    return g->ready_wait.n + g->ready_work.n;
}

bool srv_group_admits(const srv_group *g, const srv_ready *it)
{
    if (g->paused || g->ready_wait.n)
        return false;
    return !it->work || (!g->ready_work.n && (!g->parallel || g->busy < g->parallel));
}
