/* co_tg.c: asyncio.TaskGroup semantics. The group listens to each child; the first
 * failure cancels the other children and the parent's current await (the parent learns
 * why from co_tg_join). Cancelling the parent while it joins cancels the children, and the
 * join still waits for every one of them. */
#include "co_tg.h"
#include "co_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct co_tg_kid {
    co_cb cb;
    co_task *t; /* referenced until the group is freed */
    struct co_tg *g;
    struct co_tg_kid *next;
} co_tg_kid;

struct co_tg {
    co_task *parent;
    co_tg_kid *kids;
    size_t pending;
    co_task *failed;
    co_await_op join_op; /* the parent's op while it joins */
    uint8_t joining, joined, join_cancelled;
};

int co_tg_new(co_tg **out)
{
    co_task *self = co__self();
    if (!self)
        return -EPERM;
    co_tg *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->parent = self;
    *out = g;
    return 0;
}

static void co__tg_cancel_kids(co_tg *g, const char *msg)
{
    for (co_tg_kid *k = g->kids; k; k = k->next)
        if (k->cb.fut) /* not yet reported done */
            co_task_cancel(k->t, msg);
}

static void co__tg_kid_done(co_future *f, void *arg)
{
    co_tg_kid *k = arg;
    co_tg *g = k->g;
    g->pending--;
    if (f->state == CO_FAILED && !g->failed) {
        g->failed = k->t;
        co__tg_cancel_kids(g, "a sibling in the task group failed");
        co_task *p = g->parent;
        if (!g->joining && p->fut.state == CO_PENDING) {
            /* Interrupt whatever the parent awaits, so it reaches co_tg_join. If the
             * cancel cannot be delivered now, join knows it came from the group. */
            p->flags |= CO_TF_TG_CANCEL;
            co_task_cancel(p, "a child of its task group failed");
            if (!(p->flags & CO_TF_CANCEL_PENDING))
                p->flags &= ~CO_TF_TG_CANCEL;
        }
    }
    if (g->joining && g->pending == 0)
        co__wake(g->parent, 0);
}

int co_tg_spawn(co_tg *g, co_fn fn, void *arg, const co_task_opts *opts, co_task **out)
{
    if (g->failed || g->joined)
        return -ESHUTDOWN;
    co_tg_kid *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    int rc = co_spawn(g->parent->fut.sched, fn, arg, opts, &k->t);
    if (rc < 0) {
        free(k);
        return rc;
    }
    k->g = g;
    k->next = g->kids;
    g->kids = k;
    g->pending++;
    co_future_add_cb(&k->t->fut, &k->cb, co__tg_kid_done, k);
    if (g->join_cancelled)
        co_task_cancel(k->t, "task group cancelled");
    if (out) {
        co_task_ref(k->t);
        *out = k->t;
    }
    return 0;
}

static void co__tg_join_cancel(co_task *self, co_await_op *op)
{
    co_tg *g = co_container_of(op, co_tg, join_op);
    (void)self;
    if (g->join_cancelled)
        return;
    g->join_cancelled = 1;
    co__tg_cancel_kids(g, "task group cancelled");
}

int co_tg_join(co_tg *g)
{
    co_task *self = co__self();
    if (self != g->parent)
        return -EPERM;
    if (g->joined)
        return -EINVAL;
    /* A cancel the group itself sent but never delivered is not the caller's cancel. */
    if ((self->flags & CO_TF_TG_CANCEL) && (self->flags & CO_TF_CANCEL_PENDING))
        self->flags &= ~(CO_TF_TG_CANCEL | CO_TF_CANCEL_PENDING);
    if (co__await_begin(self) == -ECANCELED)
        co__tg_join_cancel(self, &g->join_op);
    g->joining = 1;
    g->join_op.cancel = co__tg_join_cancel;
    while (g->pending)
        co__suspend(self, &g->join_op);
    g->joined = 1;
    if (g->failed)
        return CO_EFAILED;
    return g->join_cancelled ? -ECANCELED : 0;
}

co_task *co_tg_failed(const co_tg *g)
{
    return g->failed;
}

void co_tg_free(co_tg *g)
{
    if (!g)
        return;
    if (g->pending) {
        /* Children would call back into freed memory: a programming error, not a
         * runtime condition. */
        fprintf(stderr, "corod: co_tg_free with %zu children running (join first)\n", g->pending);
        abort();
    }
    while (g->kids) {
        co_tg_kid *k = g->kids;
        g->kids = k->next;
        co_task_unref(k->t);
        free(k);
    }
    free(g);
}
