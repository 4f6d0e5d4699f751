/* co_task.c: tasks — coroutine bodies on pooled stacks and stackless sleep and gather.
 * Reference rule: the runtime holds one reference from creation until the task is done;
 * every queued step holds one more. A coroutine holds its stack only between its first
 * step and the step in which its body returns. */
#include "co_internal.h"
#include "cp_utf8.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

bool co__valid_seconds(double seconds)
{
    return isfinite(seconds) && seconds >= 0 && seconds <= CO_MAX_SECONDS;
}

uint64_t co__ms(double seconds)
{
    return (uint64_t)ceil(seconds * 1000.0);
}

/* ---- creation, completion, release ------------------------------------------------ */

static void co__task_step(co_runnable *r);

/* The bytes a body's record uses: custom and gather tasks never use the timer, nor the
 * coroutine's part of the union, and are allocated up to their own part; the others
 * take a full record, from the cache. */
static size_t co__task_size(uint8_t body)
{
    switch (body) {
    case CO_BODY_CUSTOM:
        return offsetof(co_task, u) + sizeof(((co_task *)0)->u.custom);
    case CO_BODY_GATHER:
        return offsetof(co_task, u) + sizeof(((co_task *)0)->u.gather);
    default:
        return sizeof(co_task);
    }
}

/* Back to the cache (a full record) or to malloc (a short one). */
static void co__task_mem_free(co_sched *s, co_task *t)
{
    if (co__task_size(t->body) < sizeof(co_task))
        free(t);
    else
        co__task_mem_put(s, t);
}

static int co__task_alloc(co_sched *s, uint8_t body, const co_task_opts *o, co_task **tp)
{
    if (o && o->timeout != 0 && (!co__valid_seconds(o->timeout)))
        return -EINVAL;
    size_t size = co__task_size(body);
    co_task *t = size < sizeof *t ? malloc(size) : co__task_mem_get(s);
    if (!t && size == sizeof *t)
        t = malloc(size);
    if (!t)
        return -ENOMEM;
    /* All but the timer, which is initialised only when used. */
    memset(t, 0, size < offsetof(co_task, timer) ? size : offsetof(co_task, timer));
    t->timeout = o ? o->timeout : 0;
    t->body = body;
    if (o && o->name && !(t->name = strdup(o->name))) {
        co__task_mem_free(s, t);
        return -ENOMEM;
    }
    co__future_init(&t->fut, s, CO_FUT_TASK);
    t->step.run = co__task_step;
    t->id = o ? o->id : 0;
    if (o && o->shielded)
        t->flags |= CO_TF_SHIELDED;
    *tp = t;
    return 0;
}

/* Hand the caller its reference, if it wants one. */
static void co__task_give(co_task *t, co_task **out)
{
    if (out) {
        t->fut.refs++;
        *out = t;
    }
}

static void co__run_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void co__run_timeout(uv_timer_t *h)
{
    co_task *t = h->data;
    t->flags |= CO_TF_TIMED_OUT;
    co_task_cancel(t, "timeout");
}

static int co__run_timer_start(co_task *t)
{
    if (t->timeout <= 0)
        return 0;
    t->run_timer = malloc(sizeof *t->run_timer);
    if (!t->run_timer)
        return -ENOMEM;
    uv_timer_init(t->fut.sched->loop, t->run_timer);
    t->run_timer->data = t;
    uv_timer_start(t->run_timer, co__run_timeout, co__ms(t->timeout), 0);
    return 0;
}

/* The one way a task becomes done. Consumes *v (may be NULL) and the runtime's reference. */
static void co__task_complete(co_task *t, co_state st, co_value *v)
{
    assert(t->fut.state == CO_PENDING);
    co_value tmp = CO_VALUE_NIL;
    if (t->run_timer) {
        uv_close((uv_handle_t *)t->run_timer, co__run_timer_closed);
        t->run_timer = NULL;
    }
    if (st == CO_CANCELLED && v && v->len && !t->fut.value.len) {
        /* The error given, when no cancel message came (a record restored from the store
         * keeps the one it had). */
        co_value_free(&t->fut.value);
    } else if (st == CO_CANCELLED) {
        if (v)
            co_value_free(v);
        if (t->flags & CO_TF_TIMED_OUT) {
            char msg[96];
            snprintf(msg, sizeof msg, "timed out after %g s", t->timeout);
            co_value_free(&t->fut.value);
            co_value_error(&tmp, "timeout", msg);
            st = CO_FAILED;
        } else {
            /* The cancel message was stored when the cancel arrived. */
            tmp = t->fut.value;
            t->fut.value = CO_VALUE_NIL;
            if (!tmp.len)
                co_value_error(&tmp, "cancelled", "cancelled");
        }
        v = &tmp;
    }
    co__future_finish(&t->fut, st, v);
    co_task_unref(t);
}

static void co__task_closed(uv_handle_t *h)
{
    co_task *t = co_container_of(h, co_task, timer);
    co_sched *s = t->fut.sched;
    co__task_mem_put(s, t);
    co__sched_task_closed(s);
}

void co__task_free(co_task *t)
{
    switch (t->body) {
    case CO_BODY_CORO:
        co_value_free(&t->u.coro.out);
        break;
    case CO_BODY_SLEEP:
        co_value_free(&t->u.sleep.result);
        break;
    case CO_BODY_GATHER:
        for (size_t i = 0; i < t->u.gather.n; i++) {
            co_future_remove_cb(&t->u.gather.m[i].cb);
            co_future_unref(t->u.gather.m[i].fut);
        }
        free(t->u.gather.m);
        break;
    }
    free(t->name);
    co_value_free(&t->fut.value);
    co_sched *s = t->fut.sched;
    s->live--;
    if (t->flags & CO_TF_TIMER_INIT) {
        s->tasks_closing++;
        uv_close((uv_handle_t *)&t->timer, co__task_closed);
    } else {
        co__task_mem_free(s, t);
    }
}

void co_task_ref(co_task *t) { co_future_ref(&t->fut); }
void co_task_unref(co_task *t) { co_future_unref(&t->fut); }

int co__timer_init(co_task *t)
{
    assert(co__task_size(t->body) == sizeof *t);
    if (!(t->flags & CO_TF_TIMER_INIT)) {
        int rc = uv_timer_init(t->fut.sched->loop, &t->timer);
        if (rc < 0)
            return rc;
        t->timer.data = t;
        t->flags |= CO_TF_TIMER_INIT;
    }
    return 0;
}

/* ---- coroutines --------------------------------------------------------------------- */

static void co__coro_entry(void *arg)
{
    co_task *t = arg;
#ifdef CO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &t->fut.sched->main_bottom, &t->fut.sched->main_size);
#endif
    t->u.coro.rc = t->u.coro.fn(t->u.coro.arg);
    t->flags |= CO_TF_FINISHED;
    co__yield_to_loop(t->fut.sched, t, 1);
    abort(); /* a finished coroutine is never resumed */
}

/* Loop side, after the body returned: give back the stack, map rc to an outcome. */
static void co__coro_finish(co_task *t)
{
    co_sched *s = t->fut.sched;
    co_stack_release(s->stacks, t->u.coro.stack);
    t->u.coro.stack = NULL;
    s->coroutines--;

    int rc = t->u.coro.rc;
    co_value out = t->u.coro.out;
    t->u.coro.out = CO_VALUE_NIL;
    if (rc == 0) {
        co__task_complete(t, CO_SUCCEEDED, &out);
    } else if (rc == -ECANCELED) {
        co_value_free(&out);
        co__task_complete(t, CO_CANCELLED, NULL);
    } else {
        if (rc != CO_EFAILED || !out.len) {
            co_value_free(&out);
            co_value_error(&out, "error", co_strerror(rc));
        }
        co__task_complete(t, CO_FAILED, &out);
    }
}

static int co__coro_start(co_task *t)
{
    co_sched *s = t->fut.sched;
    co_value err;
    /* The run limit first: a task that cannot be bounded must not run at all. */
    int rc = co__run_timer_start(t);
    if (rc < 0) {
        co_value_error(&err, "error", "out of memory arming the task's timeout");
        co__task_complete(t, CO_FAILED, &err);
        return rc;
    }
    rc = co_stack_acquire(s->stacks, t, &t->u.coro.stack);
    if (rc < 0) {
        char msg[256];
        if (rc == -EAGAIN)
            co_stack_pool_limit_message(s->stacks, msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "cannot map a coroutine stack: %s", strerror(-rc));
        co_value_error(&err, "stack_limit", msg);
        co__task_complete(t, CO_FAILED, &err); /* also disarms the run timer */
        return rc;
    }
    co_stack *st = t->u.coro.stack;
    co_ctx_make(&t->u.coro.ctx, co_stack_base(st), co_stack_size(st), co__coro_entry, t);
    t->flags |= CO_TF_STARTED;
    s->coroutines++;
    return 0;
}

static void co__task_step(co_runnable *r)
{
    co_task *t = co_container_of(r, co_task, step);
    t->flags &= ~CO_TF_STEP_QUEUED;
    if (t->fut.state == CO_PENDING &&
        ((t->flags & CO_TF_STARTED) || co__coro_start(t) == 0)) {
        co__resume(t->fut.sched, t);
        if (t->flags & CO_TF_FINISHED)
            co__coro_finish(t);
    }
    co_task_unref(t); /* the queued step's reference */
}

static void co__step_queue(co_task *t)
{
    if (t->flags & CO_TF_STEP_QUEUED)
        return;
    t->flags |= CO_TF_STEP_QUEUED;
    t->fut.refs++;
    co__post(t->fut.sched, &t->step);
}

int co_spawn(co_sched *s, co_fn fn, void *arg, const co_task_opts *opts, co_task **out)
{
    if (!fn)
        return -EINVAL;
    co_task *t;
    int rc = co__task_alloc(s, CO_BODY_CORO, opts, &t);
    if (rc < 0)
        return rc;
    t->u.coro.fn = fn;
    t->u.coro.arg = arg;
    co__task_give(t, out);
    co__step_queue(t);
    return 0;
}

int co__suspend(co_task *self, co_await_op *op)
{
    self->u.coro.op = op;
    self->u.coro.wake = 0;
    co__yield_to_loop(self->fut.sched, self, 0);
    self->u.coro.op = NULL;
    return self->u.coro.wake;
}

void co__wake(co_task *t, int status)
{
    t->u.coro.wake = status;
    /* The await is over: a cancel from now on waits for the next one. */
    t->u.coro.op = NULL;
    co__step_queue(t);
}

int co__await_begin(co_task *self)
{
    if (!self)
        return -EPERM;
    if (self->flags & CO_TF_CANCEL_PENDING) {
        self->flags &= ~(CO_TF_CANCEL_PENDING | CO_TF_TG_CANCEL);
        return -ECANCELED;
    }
    return 0;
}

co_task *co_current(void)
{
    return co__self();
}

int co_return(co_value *result)
{
    co_task *self = co__self();
    if (!self)
        return -EPERM;
    co_value_free(&self->u.coro.out);
    self->u.coro.out = *result;
    *result = CO_VALUE_NIL;
    return 0;
}

int co_fail(const char *code, const char *fmt, ...)
{
    co_task *self = co__self();
    if (!self)
        return -EPERM;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    co_value_free(&self->u.coro.out);
    if (co_value_error(&self->u.coro.out, code, msg) < 0)
        return -ENOMEM;
    return CO_EFAILED;
}

bool co_cancel_requested(void)
{
    co_task *self = co__self();
    return self && (self->flags & CO_TF_CANCEL_REQ);
}

int co__status_of(const co_future *f)
{
    switch (f->state) {
    case CO_SUCCEEDED: return 0;
    case CO_FAILED: return CO_EFAILED;
    case CO_CANCELLED: return -ECANCELED;
    default: return -EINPROGRESS;
    }
}

/* ---- stackless sleep ------------------------------------------------------------------ */

static void co__sleep_end(co_task *t)
{
    co_value v = t->u.sleep.result;
    t->u.sleep.result = CO_VALUE_NIL;
    co__task_complete(t, CO_SUCCEEDED, &v);
}

static void co__sleep_fired(uv_timer_t *h)
{
    co__sleep_end(h->data);
}

/* A zero sleep ends on the run queue: no timer, and no waiting for the next loop turn. */
static void co__sleep_zero(co_runnable *r)
{
    co_task *t = co_container_of(r, co_task, step);
    t->flags &= ~CO_TF_STEP_QUEUED;
    if (t->fut.state == CO_PENDING)
        co__sleep_end(t);
    co_task_unref(t); /* the queued step's reference */
}

int co_sleep_task(co_sched *s, double seconds, co_value *result, const co_task_opts *opts,
                  co_task **out)
{
    if (!co__valid_seconds(seconds))
        return -EINVAL;
    co_task *t;
    int rc = co__task_alloc(s, CO_BODY_SLEEP, opts, &t);
    if (rc < 0)
        return rc;
    if ((seconds > 0 && (rc = co__timer_init(t)) < 0) || (rc = co__run_timer_start(t)) < 0) {
        co_task_unref(t);
        return rc;
    }
    if (result) {
        t->u.sleep.result = *result;
        *result = CO_VALUE_NIL;
    }
    co__task_give(t, out);
    if (seconds > 0) {
        uv_timer_start(&t->timer, co__sleep_fired, co__ms(seconds), 0);
    } else {
        t->step.run = co__sleep_zero;
        co__step_queue(t);
    }
    return 0;
}

double co_sleep_due_in(const co_task *t)
{
    if (t->body != CO_BODY_SLEEP || co_future_state(&t->fut) != CO_PENDING)
        return -1;
    if (!(t->flags & CO_TF_TIMER_INIT) || !uv_is_active((const uv_handle_t *)&t->timer))
        return 0; /* a zero sleep: its step is queued */
    return (double)uv_timer_get_due_in(&t->timer) / 1000.0;
}

/* ---- stackless gather ----------------------------------------------------------------- */

/* Stop listening to the members still running: the gather's outcome is decided. */
static void co__gather_detach(co_task *g)
{
    for (size_t i = 0; i < g->u.gather.n; i++)
        co_future_remove_cb(&g->u.gather.m[i].cb);
}

/* The gather's result would pass the scheduler's bounds: it fails instead, before any
 * of it is built. */
static bool co__gather_too_large(co_task *g, co_value *err)
{
    co_sched *s = g->fut.sched;
    size_t total = 5; /* the array's header, at most */
    unsigned deepest = 0;
    for (size_t i = 0; i < g->u.gather.n; i++) {
        size_t len, used;
        unsigned depth = 0;
        const uint8_t *b = co_value_bytes(&g->u.gather.m[i].fut->value, &len);
        total += len;
        if (total > s->value_max_bytes)
            break;
        int rc = co_value_measure(b, len, s->value_max_depth - 1, &used, &depth);
        if (rc == -E2BIG || depth + 1 > s->value_max_depth) {
            deepest = s->value_max_depth + 1;
            break;
        }
        deepest = depth + 1 > deepest ? depth + 1 : deepest;
    }
    char msg[160];
    if (total > s->value_max_bytes)
        snprintf(msg, sizeof msg, "the gather's result would take more than the limit of %zu bytes",
                 s->value_max_bytes);
    else if (deepest > s->value_max_depth)
        snprintf(msg, sizeof msg, "the gather's result would nest more than the limit of %u levels",
                 s->value_max_depth);
    else
        return false;
    co_value_error(err, "result_too_large", msg);
    return true;
}

static void co__gather_succeed(co_task *g)
{
    size_t n = g->u.gather.n;
    co_value arr = CO_VALUE_NIL;
    if (co__gather_too_large(g, &arr)) {
        co__task_complete(g, CO_FAILED, &arr);
        return;
    }
    const co_value **vals = malloc((n ? n : 1) * sizeof *vals);
    int rc = -ENOMEM;
    if (vals) {
        for (size_t i = 0; i < n; i++)
            vals[i] = &g->u.gather.m[i].fut->value;
        rc = co_value_array(&arr, vals, n);
        free(vals);
    }
    if (rc < 0) {
        co_value_error(&arr, "error", "out of memory building the gather result");
        co__task_complete(g, CO_FAILED, &arr);
        return;
    }
    co__task_complete(g, CO_SUCCEEDED, &arr);
}

static uint8_t *co__put_str(uint8_t *p, const char *s, size_t n)
{
    p += co_value_put_str_header(p, (uint32_t)n);
    memcpy(p, s, n);
    return p + n;
}

/* {code: member_failed, message, member, index, error: {code, message}}. The member's
 * error is summed up, not copied: a chain of failed gathers once nested a copy of every
 * error below it in each one (records deeper than clients decode, and memory quadratic in
 * the chain's length: 4.4 GB at 8,000 levels). `member` names the task to ask for more. */
static void co__gather_member_failed(co_task *g, size_t i)
{
    co_future *f = g->u.gather.m[i].fut;
    uint64_t member = i;
    if (f->type == CO_FUT_TASK && ((co_task *)f)->id)
        member = ((co_task *)f)->id;
    char msg[128];
    snprintf(msg, sizeof msg, "member %llu %s", (unsigned long long)member,
             f->state == CO_CANCELLED ? "was cancelled" : "failed");
    const char *code = "error", *why = "";
    size_t clen = 5, wlen = 0;
    if (co_value_get_str(&f->value, "code", &code, &clen) < 0 || clen > CO_MEMBER_CODE_MAX)
        code = "error", clen = 5;
    if (co_value_get_str(&f->value, "message", &why, &wlen) < 0)
        why = "", wlen = 0;
    wlen = cp_utf8_cut(why, wlen, CO_MEMBER_MESSAGE_MAX); /* the text is UTF-8 */
    size_t mlen = strlen(msg);
    co_value err = CO_VALUE_NIL;
    uint8_t *buf = malloc(96 + mlen + clen + wlen), *p = buf;
    if (buf) {
        p += co_value_put_map_header(p, 5);
        p = co__put_str(p, "code", 4);
        p = co__put_str(p, "member_failed", 13);
        p = co__put_str(p, "message", 7);
        p = co__put_str(p, msg, mlen);
        p = co__put_str(p, "member", 6);
        p += co_value_put_uint(p, member);
        p = co__put_str(p, "index", 5);
        p += co_value_put_uint(p, i);
        p = co__put_str(p, "error", 5);
        p += co_value_put_map_header(p, 2);
        p = co__put_str(p, "code", 4);
        p = co__put_str(p, code, clen);
        p = co__put_str(p, "message", 7);
        p = co__put_str(p, why, wlen);
        err.data = buf;
        err.len = (size_t)(p - buf);
    }
    co__gather_detach(g);
    co__task_complete(g, CO_FAILED, &err);
}

static void co__gather_member_done(co_future *f, void *arg)
{
    co_gather_member *m = arg;
    co_task *g = m->gather;
    g->u.gather.remaining--;
    if (g->flags & CO_TF_CANCELLING) {
        if (g->u.gather.remaining == 0)
            co__task_complete(g, CO_CANCELLED, NULL);
        return;
    }
    if (!g->u.gather.return_exceptions && f->state != CO_SUCCEEDED) {
        co__gather_member_failed(g, (size_t)(m - g->u.gather.m));
        return;
    }
    if (g->u.gather.remaining == 0)
        co__gather_succeed(g);
}

static void co__gather_cancel(co_task *g)
{
    if (g->flags & CO_TF_CANCELLING)
        return;
    g->flags |= CO_TF_CANCELLING;
    co_task_ref(g); /* a member's synchronous completion must not free us mid-loop */
    for (size_t i = 0; i < g->u.gather.n; i++) {
        co_gather_member *m = &g->u.gather.m[i];
        if (!m->cb.fut)
            continue; /* already reported */
        co_future *f = m->fut;
        if (f->type == CO_FUT_TASK && (((co_task *)f)->flags & CO_TF_SHIELDED)) {
            /* As asyncio.shield: the gather stops waiting for it; it keeps running. */
            co_future_remove_cb(&m->cb);
            g->u.gather.remaining--;
        } else if (f->state == CO_PENDING) {
            co_future_cancel(f, "cancelled through a gather");
        }
        /* A member already done but not yet dispatched reports through its callback. */
    }
    if (g->u.gather.remaining == 0 && g->fut.state == CO_PENDING)
        co__task_complete(g, CO_CANCELLED, NULL);
    co_task_unref(g);
}

int co_gather_task(co_sched *s, co_future *const *members, size_t n, bool return_exceptions,
                   const co_task_opts *opts, co_task **out)
{
    if (n && !members)
        return -EINVAL;
    co_task *g;
    int rc = co__task_alloc(s, CO_BODY_GATHER, opts, &g);
    if (rc < 0)
        return rc;
    if (n && !(g->u.gather.m = calloc(n, sizeof *g->u.gather.m))) {
        co_task_unref(g);
        return -ENOMEM;
    }
    if ((rc = co__run_timer_start(g)) < 0) {
        co_task_unref(g);
        return rc;
    }
    g->u.gather.n = n;
    g->u.gather.remaining = n;
    g->u.gather.return_exceptions = return_exceptions;
    co__task_give(g, out);
    for (size_t i = 0; i < n; i++) {
        co_gather_member *m = &g->u.gather.m[i];
        m->fut = members[i];
        m->gather = g;
        co_future_ref(m->fut);
        co_future_add_cb(m->fut, &m->cb, co__gather_member_done, m);
    }
    if (n == 0)
        co__gather_succeed(g);
    return 0;
}

/* ---- custom (owner-driven) ------------------------------------------------------------ */

int co_custom_task(co_sched *s, const co_task_body *body, void *data, const co_task_opts *opts,
                   co_task **out)
{
    if (!body || !body->cancel)
        return -EINVAL;
    co_task *t;
    int rc = co__task_alloc(s, CO_BODY_CUSTOM, opts, &t);
    if (rc < 0)
        return rc;
    t->u.custom.body = body;
    t->u.custom.data = data;
    co__task_give(t, out);
    return 0;
}

int co_task_finish(co_task *t, co_state st, co_value *value)
{
    if (t->body != CO_BODY_CUSTOM)
        return -EPERM;
    if (t->fut.state != CO_PENDING || st == CO_PENDING)
        return -EINVAL;
    co__task_complete(t, st, value);
    return 0;
}

void *co_task_data(const co_task *t)
{
    if (t->body == CO_BODY_CORO)
        return t->u.coro.arg;
    return t->body == CO_BODY_CUSTOM ? t->u.custom.data : NULL;
}

/* ---- cancellation ------------------------------------------------------------------- */

/* What a cancel does to each kind of body. A gather's passes the cancel on to its
 * members, a custom body's may cancel the task it runs, a coroutine's await may cancel
 * what it awaits: co_task_cancel queues those (see below). */
static void co__cancel_act(co_task *t)
{
    switch (t->body) {
    case CO_BODY_CORO:
        if (!(t->flags & CO_TF_STARTED)) {
            /* Never ran: ends now, without ever taking a stack. */
            co__task_complete(t, CO_CANCELLED, NULL);
        } else if (t->u.coro.op) {
            co_await_op *op = t->u.coro.op;
            op->cancel(t, op);
        } else {
            t->flags |= CO_TF_CANCEL_PENDING;
        }
        break;
    case CO_BODY_SLEEP:
        if (t->flags & CO_TF_TIMER_INIT)
            uv_timer_stop(&t->timer);
        co__task_complete(t, CO_CANCELLED, NULL); /* a queued zero-sleep step then skips */
        break;
    case CO_BODY_GATHER:
        co__gather_cancel(t);
        break;
    case CO_BODY_CUSTOM:
        t->u.custom.body->cancel(t, t->u.custom.data);
        break;
    }
}

/* A cancel that reaches other tasks (a gather's members, a record's body, an awaited
 * task) must not recurse: gathers nested 60,000 deep once overflowed the loop's stack
 * (four frames a level). Requests made while one is being carried out are queued, and
 * the outermost call carries them out in order, breadth first: the depth of the cascade
 * costs queue entries (one link in each task), never stack. Everything a cancel does
 * still happens before the outermost co_task_cancel returns. */
bool co_task_cancel(co_task *t, const char *msg)
{
    if (t->fut.state != CO_PENDING)
        return false;
    if (!t->fut.value.len) /* the first message is the one reported */
        co_value_error(&t->fut.value, "cancelled", msg ? msg : "cancelled");
    t->flags |= CO_TF_CANCEL_REQ;
    co_sched *s = t->fut.sched;
    if (s->cancelling) {
        if (!(t->flags & CO_TF_CANCEL_QUEUED)) {
            t->flags |= CO_TF_CANCEL_QUEUED;
            t->fut.refs++; /* the queue's */
            t->cancel_next = NULL;
            *s->cancel_tailp = t;
            s->cancel_tailp = &t->cancel_next;
        }
        return true;
    }
    s->cancelling = 1;
    co__cancel_act(t);
    while ((t = s->cancel_head)) {
        if (!(s->cancel_head = t->cancel_next))
            s->cancel_tailp = &s->cancel_head;
        t->flags &= ~CO_TF_CANCEL_QUEUED;
        if (t->fut.state == CO_PENDING) /* it may have ended since it was queued */
            co__cancel_act(t);
        co_task_unref(t);
    }
    s->cancelling = 0;
    return true;
}

bool co_task_cancel_from_parent(co_task *t, const char *msg)
{
    if (t->flags & CO_TF_SHIELDED)
        return false;
    return co_task_cancel(t, msg);
}

uint64_t co_task_id(const co_task *t) { return t->id; }
const char *co_task_name(const co_task *t) { return t->name; }
bool co_task_shielded(const co_task *t) { return t->flags & CO_TF_SHIELDED; }
bool co_task_is_coroutine(const co_task *t) { return t->body == CO_BODY_CORO; }
