/* srv_group.c: the group registry, each group's users, and their ready heaps. */
#include "srv_group.h"
#include "srv_slurm.h"

#include "ut_grow.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- heaps: higher priority, then lower id ---- */

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
    srv_ready **nv = ut_grow(h->v, &h->cap, h->n, sizeof *nv, 16);
    if (!nv)
        return -ENOMEM;
    h->v = nv;
    srv_heap_set(h, h->n++, it);
    srv_heap_up(h, it->idx);
    return 0;
}

static void srv_heap_remove(srv_heap *h, srv_ready *it)
{
    size_t i = it->idx;
    assert(i < h->n && h->v[i] == it);
    it->idx = SRV_NOT_QUEUED;
    srv_ready *last = h->v[--h->n];
    if (i == h->n)
        return;
    srv_heap_set(h, i, last);
    srv_heap_up(h, i);
    srv_heap_down(h, last->idx);
}

/* ---- the registry ---- */

static void srv_group_user_free(srv_group_user *u);

static uint64_t srv_group_hash(cp_str name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (uint32_t i = 0; i < name.len; i++)
        h = (h ^ (uint8_t)name.ptr[i]) * 0x100000001b3ull;
    return h;
}

srv_group *srv_groups_find(const srv_groups *gs, cp_str name)
{
    for (srv_group *g = srv_index_get(&gs->by_hash, srv_group_hash(name)); g; g = g->hash_next)
        if (cp_str_eq(name, g->name))
            return g;
    return NULL;
}

/* A new group named `name` (valid), with the default group's settings. */
static srv_group *srv_group_new(srv_groups *gs, cp_str name, uint32_t parallel)
{
    srv_group *g = calloc(1, sizeof *g);
    if (g)
        g->limits.umask = -1; /* no umask of its own: the jobs' default */
    if (!g)
        return NULL;
    memcpy(g->name, name.ptr, name.len);
    g->parallel = gs->deflt ? gs->deflt->parallel : parallel;
    g->paused = gs->deflt ? gs->deflt->paused : false;
    g->hash = srv_group_hash(name);
    g->home = gs;
    co_queue_init(&g->users);
    co_queue_init(&g->waiting);
    srv_group *chain = srv_index_get(&gs->by_hash, g->hash);
    if (chain) {
        g->hash_next = chain->hash_next; /* behind the chain's head, which the index keeps */
        chain->hash_next = g;
    } else if (srv_index_put(&gs->by_hash, g->hash, g) < 0) {
        free(g);
        return NULL;
    }
    co_queue_insert_tail(&gs->all, &g->node);
    gs->n++;
    return g;
}

static void srv_group_free(srv_group *g)
{
    srv_groups *gs = g->home;
    srv_group *head = srv_index_get(&gs->by_hash, g->hash);
    if (head == g) {
        srv_index_del(&gs->by_hash, g->hash);
        if (g->hash_next && srv_index_put(&gs->by_hash, g->hash, g->hash_next) < 0)
            abort(); /* the slot just freed is there for it: cannot fail */
    } else {
        while (head->hash_next != g)
            head = head->hash_next;
        head->hash_next = g->hash_next;
    }
    co_queue_remove(&g->node);
    gs->n--;
    if (g->creator) {
        g->creator->groups--;
        srv_acct_unref(g->creator);
    }
    co_queue *q;
    while ((q = co_queue_first(&g->users)))
        srv_group_user_free(co_queue_data(q, srv_group_user, node));
    free(g->ready_wait.v);
    free(g->allowed);
    srv_group_set_slurm(g, NULL);
    free(g);
}

int srv_groups_init(srv_groups *gs, uint32_t parallel, size_t max_per_uid)
{
    srv_index_init(&gs->by_hash);
    co_queue_init(&gs->all);
    gs->n = 0;
    gs->max_per_uid = max_per_uid ? max_per_uid : SRV_MAX_GROUPS_PER_UID;
    gs->deflt = NULL;
    if (!(gs->deflt = srv_group_new(gs, (cp_str){ "default", 7 }, parallel))) {
        srv_index_free(&gs->by_hash);
        return -ENOMEM;
    }
    gs->deflt->configured = true;
    return 0;
}

void srv_groups_free(srv_groups *gs)
{
    co_queue *q;
    while ((q = co_queue_first(&gs->all)))
        srv_group_free(co_queue_data(q, srv_group, node));
    srv_index_free(&gs->by_hash);
}

static bool srv_group_allows(const srv_group *g, const srv_acct *ac)
{
    if (!g->nallowed || ac->privileged)
        return true;
    for (size_t i = 0; i < g->nallowed; i++)
        if (g->allowed[i] == ac->uid)
            return true;
    return false;
}

int srv_groups_for_submit(srv_groups *gs, cp_str name, srv_acct *ac, srv_group **out, cp_error *err)
{
    srv_group *g = srv_groups_find(gs, name);
    if (g) {
        if (!srv_group_allows(g, ac))
            return cp_fail(err, CP_PERMISSION_DENIED, "group \"%s\" does not take tasks from uid %u", g->name,
                           (unsigned)ac->uid);
        srv_group_ref(g);
        *out = g;
        return 0;
    }
    /* Every uid may name groups into being, within its own share: one user's many names
     * must not use up the names everyone else needs. */
    if (!ac->privileged && ac->groups >= gs->max_per_uid)
        return cp_fail(err, CP_QUOTA_EXCEEDED,
                       "cannot create group \"%.*s\": uid %u already has %zu groups of its own (limit %zu)",
                       (int)name.len, name.ptr, (unsigned)ac->uid, ac->groups, gs->max_per_uid);
    if (!(g = srv_group_new(gs, name, 0)))
        return cp_fail(err, CP_INTERNAL, "out of memory");
    g->creator = ac;
    srv_acct_ref(ac);
    ac->groups++;
    g->refs = 1;
    *out = g;
    return 0;
}

srv_group *srv_groups_configure(srv_groups *gs, cp_str name)
{
    srv_group *g = srv_groups_find(gs, name);
    if (!g && !(g = srv_group_new(gs, name, 0)))
        return NULL;
    g->configured = true;
    if (g->creator) { /* root's now: no longer any user's share */
        g->creator->groups--;
        srv_acct_unref(g->creator);
        g->creator = NULL;
    }
    return g;
}

void srv_groups_unconfigure(srv_groups *gs, srv_group *g)
{
    assert(g != gs->deflt && g->configured);
    /* Whatever names it next makes it anew, with the default group's settings. */
    g->configured = false;
    g->parallel = gs->deflt->parallel;
    g->paused = gs->deflt->paused;
    g->priority = 0;
    memset(&g->limits, 0, sizeof g->limits);
    g->limits.umask = -1;
    free(g->allowed);
    g->allowed = NULL;
    g->nallowed = 0;
    srv_group_set_slurm(g, NULL);
    if (!g->refs)
        srv_group_free(g);
}

int srv_group_allow(srv_group *g, const uint64_t *uids, size_t n)
{
    uint32_t *a = NULL;
    if (n && !(a = malloc(n * sizeof *a)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        a[i] = (uint32_t)uids[i];
    free(g->allowed);
    g->allowed = a;
    g->nallowed = n;
    return 0;
}

void srv_group_ref(srv_group *g)
{
    g->refs++;
}

void srv_group_unref(srv_group *g)
{
    assert(g->refs > 0);
    if (--g->refs == 0 && !g->configured)
        srv_group_free(g);
}

/* ---- users ---- */

srv_group_user *srv_group_join(srv_group *g, uint32_t uid)
{
    co_queue *q;
    co_queue_foreach(q, &g->users) {
        srv_group_user *u = co_queue_data(q, srv_group_user, node);
        if (u->uid == uid) {
            u->refs++;
            if (q != co_queue_first(&g->users)) { /* the most recent first: bursts find it at once */
                co_queue_remove(q);
                co_queue_insert_head(&g->users, q);
            }
            return u;
        }
    }
    srv_group_user *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->uid = uid;
    u->refs = 1;
    u->group = g;
    co_queue_init(&u->waiting_node);
    /* Most recent first: a burst of submits finds its uid at the head. */
    co_queue_insert_head(&g->users, &u->node);
    return u;
}

/* A uid's share stays while the group does (it is made again at once by the next
 * submit of a uid that has one task at a time): at most one per uid that ever used the
 * group, and implicit groups go when empty. */
void srv_group_leave(srv_group_user *u)
{
    assert(u->refs > 0);
    u->refs--;
}

static void srv_group_user_free(srv_group_user *u)
{
    assert(!u->refs && !u->busy && !u->work.n);
    co_queue_remove(&u->node);
    co_queue_remove(&u->waiting_node);
    free(u->work.v);
    free(u);
}

/* ---- queues ---- */

int srv_group_queue(srv_group *g, srv_ready *it)
{
    if (!it->work)
        return srv_heap_push(&g->ready_wait, it);
    srv_group_user *u = it->user;
    int rc = srv_heap_push(&u->work, it);
    if (rc < 0)
        return rc;
    g->nwork++;
    if (!co_queue_linked(&u->waiting_node))
        co_queue_insert_tail(&g->waiting, &u->waiting_node);
    return 0;
}

static void srv_group_unqueue_work(srv_group *g, srv_ready *it)
{
    srv_group_user *u = it->user;
    srv_heap_remove(&u->work, it);
    assert(g->nwork > 0);
    g->nwork--;
    if (!u->work.n)
        co_queue_remove(&u->waiting_node);
}

void srv_group_dequeue(srv_group *g, srv_ready *it)
{
    if (it->idx == SRV_NOT_QUEUED)
        return;
    if (it->work)
        srv_group_unqueue_work(g, it);
    else
        srv_heap_remove(&g->ready_wait, it);
}

/* Whose queued work goes next: the best head by priority, then the uid holding fewer of
 * the group's slots, then the one that started a task least recently (with one slot both
 * hold none when it frees: without this the lower id, a queue filled early, always won). */
static bool srv_user_before(const srv_group_user *a, const srv_group_user *b)
{
    const srv_ready *x = a->work.v[0], *y = b->work.v[0];
    if (x->priority != y->priority)
        return x->priority > y->priority;
    if (a->busy != b->busy)
        return a->busy < b->busy;
    if (a->last_start != b->last_start)
        return a->last_start < b->last_start;
    return x->id < y->id;
}

srv_ready *srv_group_pop(srv_group *g)
{
    if (g->paused)
        return NULL;
    if (g->ready_wait.n) { /* waits never take a slot: never held behind work */
        srv_ready *it = g->ready_wait.v[0];
        srv_heap_remove(&g->ready_wait, it);
        return it;
    }
    if (!g->nwork || (g->parallel && g->busy >= g->parallel))
        return NULL;
    srv_group_user *best = NULL;
    co_queue *q;
    co_queue_foreach(q, &g->waiting) {
        srv_group_user *u = co_queue_data(q, srv_group_user, waiting_node);
        if (!best || srv_user_before(u, best))
            best = u;
    }
    srv_ready *it = best->work.v[0];
    srv_group_unqueue_work(g, it);
    return it;
}

size_t srv_group_queued(const srv_group *g)
{
    return g->ready_wait.n + g->nwork;
}

bool srv_group_admits(const srv_group *g, const srv_ready *it)
{
    if (g->paused || g->ready_wait.n)
        return false;
    return !it->work || (!g->nwork && (!g->parallel || g->busy < g->parallel));
}

void srv_group_take_slot(srv_group *g, srv_ready *it)
{
    if (!it->work)
        return;
    g->busy++;
    it->user->busy++;
    it->user->last_start = ++g->starts;
}

void srv_group_give_slot(srv_group *g, srv_ready *it)
{
    if (!it->work)
        return;
    assert(g->busy > 0 && it->user->busy > 0);
    g->busy--;
    it->user->busy--;
}

void srv_group_pack(cp_out *o, const srv_group *g)
{
    cp_out_map(o, (uint32_t)(9 + srv_group_executor_fields(g)));
    srv_group_pack_executor(o, g);
    cp_out_lit(o, "name");
    cp_out_str(o, g->name);
    cp_out_lit(o, "parallel");
    cp_out_uint(o, g->parallel);
    cp_out_lit(o, "paused");
    cp_out_bool(o, g->paused);
    cp_out_lit(o, "priority"); /* of its tasks that give none */
    cp_out_int(o, g->priority);
    cp_out_lit(o, "running");
    cp_out_uint(o, g->running);
    cp_out_lit(o, "pending");
    cp_out_uint(o, g->pending);
    cp_out_lit(o, "slots_used"); /* running tasks that take a slot (exec) */
    cp_out_uint(o, g->busy);
    cp_out_lit(o, "configured"); /* false: made by a submit, and gone once empty */
    cp_out_bool(o, g->configured);
    cp_out_lit(o, "users"); /* who may submit: nil for everyone */
    if (!g->nallowed) {
        cp_out_nil(o);
        return;
    }
    cp_out_array(o, (uint32_t)g->nallowed);
    for (size_t i = 0; i < g->nallowed; i++)
        cp_out_uint(o, g->allowed[i]);
}
