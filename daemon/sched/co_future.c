/* co_future.c: futures and their done-callbacks.
 * Completing a future queues it (one run-queue entry, holding a reference) and the
 * dispatch pops callbacks one at a time, so a callback added before the dispatch ran —
 * even after completion — still runs in it, in order, and one removed meanwhile never
 * runs. A callback added after the dispatch queues the future again. */
#include "co_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

static void co__future_dispatch(co_runnable *r);

void co__future_init(co_future *f, co_sched *s, uint8_t type)
{
    f->rq.next = NULL;
    f->rq.run = co__future_dispatch;
    f->sched = s;
    co_queue_init(&f->cbs);
    f->value = CO_VALUE_NIL;
    f->refs = 1;
    f->state = CO_PENDING;
    f->type = type;
    f->queued = 0;
    s->live++;
}

int co_future_new(co_sched *s, co_future **out)
{
    co_future *f = malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    co__future_init(f, s, CO_FUT_PLAIN);
    *out = f;
    return 0;
}

void co_future_ref(co_future *f)
{
    f->refs++;
}

void co__future_release(co_future *f)
{
    co_value_free(&f->value);
    f->sched->live--;
    free(f);
}

void co_future_unref(co_future *f)
{
    assert(f->refs > 0);
    if (--f->refs)
        return;
    if (f->type == CO_FUT_TASK)
        co__task_free((co_task *)f);
    else
        co__future_release(f);
}

static void co__future_queue(co_future *f)
{
    if (f->queued || co_queue_empty(&f->cbs))
        return;
    f->queued = 1;
    f->refs++;
    co__post(f->sched, &f->rq);
}

static void co__cb_unlink(co_cb *cb)
{
    co_queue_remove(&cb->node);
    cb->fut = NULL;
}

static void co__future_dispatch(co_runnable *r)
{
    co_future *f = co_container_of(r, co_future, rq);
    f->queued = 0;
    co_queue *q;
    while ((q = co_queue_first(&f->cbs))) {
        co_cb *cb = co_queue_data(q, co_cb, node);
        co__cb_unlink(cb);
        co_cb_fn fn = cb->fn;
        void *arg = cb->arg;
        if (cb->owned)
            free(cb);
        fn(f, arg);
    }
    co_future_unref(f);
}

void co__future_finish(co_future *f, co_state st, co_value *value)
{
    assert(f->state == CO_PENDING && st != CO_PENDING); /* one outcome, once */
    co_value_free(&f->value);
    if (value) {
        f->value = *value;
        *value = CO_VALUE_NIL;
    }
    f->state = (uint8_t)st;
    co__future_queue(f);
}

static int co__future_set(co_future *f, co_state st, co_value *v)
{
    if (f->type != CO_FUT_PLAIN)
        return -EPERM;
    if (f->state != CO_PENDING)
        return -EINVAL;
    co__future_finish(f, st, v);
    return 0;
}

int co_future_set_result(co_future *f, co_value *result)
{
    return co__future_set(f, CO_SUCCEEDED, result);
}

int co_future_set_error(co_future *f, co_value *error)
{
    return co__future_set(f, CO_FAILED, error);
}

bool co_future_cancel(co_future *f, const char *msg)
{
    if (f->type == CO_FUT_TASK)
        return co_task_cancel((co_task *)f, msg);
    if (f->state != CO_PENDING)
        return false;
    co_value err;
    /* Without memory for the message the future still ends cancelled, with nil. */
    if (co_value_error(&err, "cancelled", msg ? msg : "cancelled") < 0)
        err = CO_VALUE_NIL;
    co__future_finish(f, CO_CANCELLED, &err);
    return true;
}

co_state co_future_state(const co_future *f) { return (co_state)f->state; }
bool co_future_done(const co_future *f) { return f->state != CO_PENDING; }
const co_value *co_future_value(const co_future *f) { return &f->value; }
co_sched *co_future_sched(const co_future *f) { return f->sched; }

int co_future_take_value(co_future *f, co_value *out)
{
    if (f->state == CO_PENDING)
        return -EINVAL;
    *out = f->value;
    f->value = CO_VALUE_NIL;
    return 0;
}

void co_future_add_cb(co_future *f, co_cb *cb, co_cb_fn fn, void *arg)
{
    assert(f->refs > 0);
    cb->fn = fn;
    cb->arg = arg;
    cb->owned = 0;
    cb->fut = f;
    co_queue_insert_tail(&f->cbs, &cb->node);
    if (f->state != CO_PENDING)
        co__future_queue(f);
}

void co_future_remove_cb(co_cb *cb)
{
    /* Only caller-owned registrations reach here: co_future_on_done hands out none. */
    if (cb->fut)
        co__cb_unlink(cb);
}

int co_future_on_done(co_future *f, co_cb_fn fn, void *arg)
{
    co_cb *cb = malloc(sizeof *cb);
    if (!cb)
        return -ENOMEM;
    co_future_add_cb(f, cb, fn, arg);
    cb->owned = 1; /* set after add_cb, which resets it; the dispatch runs later */
    return 0;
}

const char *co_state_name(co_state st)
{
    switch (st) {
    case CO_PENDING: return "pending";
    case CO_SUCCEEDED: return "succeeded";
    case CO_FAILED: return "failed";
    case CO_CANCELLED: return "cancelled";
    }
    return "?";
}
