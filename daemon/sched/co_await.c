/* co_await.c: asyncio's awaits for coroutines. Each await lives in an op struct on the
 * suspended coroutine's own stack (valid exactly as long as the await), registers what
 * will wake it, suspends, and unregisters whatever did not fire. The op's `cancel` says
 * what a cancel does to this await: end it now (sleep, wait) or pass the cancel inwards
 * and keep waiting for the inner future to finish (await, wait_for), as asyncio does. */
#include "co_await.h"
#include "co_internal.h"

#include <errno.h>
#include <stdlib.h>

/* ---- sleep -------------------------------------------------------------------------- */

static void co__sleep_cancel(co_task *self, co_await_op *op)
{
    (void)op;
    if (self->flags & CO_TF_TIMER_INIT)
        uv_timer_stop(&self->timer);
    co__wake(self, -ECANCELED);
}

static void co__sleep_fired(uv_timer_t *h)
{
    co__wake(h->data, 0);
}

int co_sleep(double seconds)
{
    co_task *self = co__self();
    int rc = co__await_begin(self);
    if (rc)
        return rc;
    if (!co__valid_seconds(seconds))
        return -EINVAL;
    co_await_op op = { .cancel = co__sleep_cancel };
    if (seconds == 0) {
        co__wake(self, 0); /* back of the run queue: one turn of the loop */
        return co__suspend(self, &op);
    }
    if ((rc = co__timer_init(self)) < 0)
        return rc;
    uv_timer_start(&self->timer, co__sleep_fired, co__ms(seconds), 0);
    return co__suspend(self, &op);
}

/* ---- await, wait_for ------------------------------------------------------------------ */

typedef struct co_fut_op {
    co_await_op op;
    co_task *self;
    co_future *f;
    co_cb cb;
    uint8_t cancelled; /* this coroutine was cancelled: the cancel went to f */
    uint8_t timed_out; /* wait_for's deadline passed: f was cancelled for it */
    uint8_t has_timer;
} co_fut_op;

static void co__fut_op_done(co_future *f, void *arg)
{
    co_fut_op *o = arg;
    if (o->has_timer)
        uv_timer_stop(&o->self->timer);
    int st = co__status_of(f);
    if (o->cancelled)
        st = -ECANCELED;
    else if (o->timed_out && f->state == CO_CANCELLED)
        st = -ETIMEDOUT;
    co__wake(o->self, st);
}

static void co__fut_op_cancel(co_task *self, co_await_op *op)
{
    co_fut_op *o = (co_fut_op *)op;
    if (o->cancelled)
        return;
    o->cancelled = 1;
    if (o->has_timer)
        uv_timer_stop(&self->timer);
    /* Keep waiting: the coroutine resumes once f has finished cancelling. */
    if (!o->timed_out)
        co_future_cancel(o->f, "cancelled by its awaiter");
}

static void co__fut_op_timeout(uv_timer_t *h)
{
    co_task *self = h->data;
    co_fut_op *o = (co_fut_op *)self->u.coro.op;
    o->timed_out = 1;
    co_future_cancel(o->f, "wait_for timed out");
}

static int co__await_op(co_future *f, double timeout)
{
    co_task *self = co__self();
    int rc = co__await_begin(self);
    if (rc)
        return rc;
    if (&self->fut == f)
        return -EDEADLK; /* a coroutine awaiting itself would never resume */
    if (co_future_done(f))
        return co__status_of(f);

    co_fut_op o = { .op.cancel = co__fut_op_cancel, .self = self, .f = f };
    if (timeout >= 0) {
        if (!co__valid_seconds(timeout))
            return -EINVAL;
        if ((rc = co__timer_init(self)) < 0)
            return rc;
        o.has_timer = 1;
        uv_timer_start(&self->timer, co__fut_op_timeout, co__ms(timeout), 0);
    }
    co_future_ref(f);
    co_future_add_cb(f, &o.cb, co__fut_op_done, &o);
    rc = co__suspend(self, &o.op);
    co_future_remove_cb(&o.cb); /* already run, unless something else woke us */
    co_future_unref(f);
    return rc;
}

int co_await(co_future *f)
{
    return co__await_op(f, -1);
}

int co_wait_for(co_future *f, double timeout)
{
    if (timeout < 0)
        return -EINVAL;
    return co__await_op(f, timeout);
}

/* ---- gather ------------------------------------------------------------------------- */

int co_gather(co_future *const *futs, size_t n, bool return_exceptions, co_task **out)
{
    co_task *self = co__self();
    int rc = co__await_begin(self);
    if (rc)
        return rc;
    co_task *g;
    if ((rc = co_gather_task(self->fut.sched, futs, n, return_exceptions, NULL, &g)) < 0)
        return rc;
    rc = co_await(&g->fut);
    if (out)
        *out = g;
    else
        co_task_unref(g);
    return rc;
}

/* ---- wait ----------------------------------------------------------------------------- */

typedef struct co_wait_op {
    co_await_op op;
    co_task *self;
    co_cb *cbs;
    size_t n, done, failed;
    co_wait_mode mode;
    uint8_t woken;
} co_wait_op;

static bool co__wait_satisfied(const co_wait_op *o)
{
    switch (o->mode) {
    case CO_FIRST_COMPLETED: return o->done > 0;
    case CO_FIRST_EXCEPTION: return o->failed > 0 || o->done == o->n;
    default: return o->done == o->n;
    }
}

static void co__wait_wake(co_wait_op *o, int st)
{
    if (o->woken)
        return;
    o->woken = 1;
    if (o->self->flags & CO_TF_TIMER_INIT)
        uv_timer_stop(&o->self->timer);
    co__wake(o->self, st);
}

static void co__wait_member_done(co_future *f, void *arg)
{
    co_wait_op *o = arg;
    o->done++;
    if (f->state == CO_FAILED)
        o->failed++;
    if (co__wait_satisfied(o))
        co__wait_wake(o, 0);
}

static void co__wait_cancel(co_task *self, co_await_op *op)
{
    (void)self;
    co__wait_wake((co_wait_op *)op, -ECANCELED);
}

static void co__wait_timeout(uv_timer_t *h)
{
    co_task *self = h->data;
    co__wait_wake((co_wait_op *)self->u.coro.op, -ETIMEDOUT);
}

int co_wait(co_future *const *futs, size_t n, co_wait_mode mode, double timeout)
{
    co_task *self = co__self();
    int rc = co__await_begin(self);
    if (rc)
        return rc;
    if (n == 0 || !futs || mode > CO_FIRST_EXCEPTION || (timeout >= 0 && !co__valid_seconds(timeout)))
        return -EINVAL;

    co_wait_op o = { .op.cancel = co__wait_cancel, .self = self, .n = n, .mode = mode };
    for (size_t i = 0; i < n; i++) {
        if (co_future_done(futs[i])) {
            o.done++;
            o.failed += futs[i]->state == CO_FAILED;
        }
    }
    if (co__wait_satisfied(&o))
        return 0;
    if (timeout == 0)
        return -ETIMEDOUT;
    if (timeout > 0 && (rc = co__timer_init(self)) < 0)
        return rc;
    if (!(o.cbs = calloc(n, sizeof *o.cbs)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!co_future_done(futs[i]))
            co_future_add_cb(futs[i], &o.cbs[i], co__wait_member_done, &o);
    if (timeout > 0)
        uv_timer_start(&self->timer, co__wait_timeout, co__ms(timeout), 0);
    rc = co__suspend(self, &o.op);
    for (size_t i = 0; i < n; i++)
        co_future_remove_cb(&o.cbs[i]);
    free(o.cbs);
    return rc;
}

/* ---- shield --------------------------------------------------------------------------- */

static void co__shield_done(co_future *inner, void *arg)
{
    co_future *outer = arg;
    if (outer->state == CO_PENDING) {
        co_value v;
        if (co_value_copy(&v, inner->value.data, inner->value.len) < 0) {
            co_value_error(&v, "error", "out of memory copying a shielded result");
            co__future_finish(outer, CO_FAILED, &v);
        } else {
            co__future_finish(outer, (co_state)inner->state, &v);
        }
    }
    co_future_unref(outer);
    co_future_unref(inner);
}

co_future *co_shield(co_future *f)
{
    co_future *outer;
    if (co_future_new(f->sched, &outer) < 0)
        return NULL;
    outer->refs++; /* one for the caller, one for the callback */
    co_future_ref(f);
    if (co_future_on_done(f, co__shield_done, outer) < 0) {
        co_future_unref(f);
        outer->refs = 1;
        co_future_unref(outer);
        return NULL;
    }
    return outer;
}
