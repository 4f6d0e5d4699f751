/* co_io.c: awaits on fds, child processes and the thread pool, all through libuv so the
 * loop thread never blocks. Handles that must outlive an await (a poll being closed, a
 * process not yet reaped) are heap-allocated and released from their close callbacks. */
#include "co_io.h"
#include "co_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void co__free_handle(uv_handle_t *h)
{
    free(h);
}

/* ---- fd readiness ---------------------------------------------------------------------- */

typedef struct co_fd_op {
    co_await_op op;
    co_task *self;
    uv_poll_t *poll;
    uint8_t woken, has_timer;
} co_fd_op;

static void co__fd_finish(co_fd_op *o, int st)
{
    if (o->woken)
        return;
    o->woken = 1;
    uv_poll_stop(o->poll);
    if (o->has_timer)
        uv_timer_stop(&o->self->timer);
    co__wake(o->self, st);
}

static void co__fd_ready(uv_poll_t *h, int status, int events)
{
    co__fd_finish(h->data, status < 0 ? status : events);
}

static void co__fd_cancel(co_task *self, co_await_op *op)
{
    (void)self;
    co__fd_finish((co_fd_op *)op, -ECANCELED);
}

static void co__fd_timeout(uv_timer_t *h)
{
    co_task *self = h->data;
    co__fd_finish((co_fd_op *)self->u.coro.op, -ETIMEDOUT);
}

int co_wait_fd(int fd, int events, double timeout)
{
    co_task *self = co__self();
    int rc = co__await_begin(self);
    if (rc)
        return rc;
    if (fd < 0 || !(events & (UV_READABLE | UV_WRITABLE)) ||
        (events & ~(UV_READABLE | UV_WRITABLE)) || (timeout >= 0 && !co__valid_seconds(timeout)))
        return -EINVAL;
    co_fd_op o = { .op.cancel = co__fd_cancel, .self = self };
    if (timeout >= 0) {
        if ((rc = co__timer_init(self)) < 0)
            return rc;
        o.has_timer = 1;
    }
    if (!(o.poll = malloc(sizeof *o.poll)))
        return -ENOMEM;
    /* Note: libuv puts the fd in non-blocking mode. */
    if ((rc = uv_poll_init(self->fut.sched->loop, o.poll, fd)) < 0) {
        free(o.poll); /* init failed before registering the handle */
        return rc;
    }
    o.poll->data = &o;
    if ((rc = uv_poll_start(o.poll, events, co__fd_ready)) < 0) {
        uv_close((uv_handle_t *)o.poll, co__free_handle);
        return rc;
    }
    if (o.has_timer)
        uv_timer_start(&self->timer, co__fd_timeout, co__ms(timeout), 0);
    rc = co__suspend(self, &o.op);
    uv_close((uv_handle_t *)o.poll, co__free_handle);
    return rc;
}

/* ---- child processes ---------------------------------------------------------------- */

struct co_proc {
    uv_process_t proc; /* first: the close callback frees the whole struct */
    co_task *waiter;
    int64_t exit_status;
    int term_signal;
    uint8_t exited, released, has_timer;
};

static void co__proc_exit(uv_process_t *h, int64_t status, int sig)
{
    co_proc *p = (co_proc *)h;
    p->exited = 1;
    p->exit_status = status;
    p->term_signal = sig;
    if (p->waiter) {
        if (p->has_timer)
            uv_timer_stop(&p->waiter->timer);
        co__wake(p->waiter, 0);
        p->waiter = NULL;
    }
    if (p->released)
        uv_close((uv_handle_t *)h, co__free_handle);
}

int co_proc_spawn(co_sched *s, const uv_process_options_t *opts, co_proc **out)
{
    co_proc *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    uv_process_options_t o = *opts;
    o.exit_cb = co__proc_exit;
    int rc = uv_spawn(s->loop, &p->proc, &o);
    if (rc < 0) {
        /* libuv initialises the handle even when the spawn fails. */
        uv_close((uv_handle_t *)&p->proc, co__free_handle);
        return rc;
    }
    *out = p;
    return 0;
}

typedef struct co_proc_op {
    co_await_op op;
    co_proc *p;
} co_proc_op;

static void co__proc_wait_end(co_task *self, co_proc *p, int st)
{
    p->waiter = NULL;
    if (p->has_timer)
        uv_timer_stop(&self->timer);
    co__wake(self, st);
}

static void co__proc_cancel(co_task *self, co_await_op *op)
{
    co__proc_wait_end(self, ((co_proc_op *)op)->p, -ECANCELED);
}

static void co__proc_timeout(uv_timer_t *h)
{
    co_task *self = h->data;
    co__proc_wait_end(self, ((co_proc_op *)self->u.coro.op)->p, -ETIMEDOUT);
}

int co_proc_wait(co_proc *p, double timeout)
{
    co_task *self = co__self();
    int rc = co__await_begin(self);
    if (rc)
        return rc;
    if (p->exited)
        return 0;
    if (p->waiter)
        return -EBUSY;
    if (timeout >= 0 && !co__valid_seconds(timeout))
        return -EINVAL;
    p->has_timer = 0;
    if (timeout >= 0) {
        if ((rc = co__timer_init(self)) < 0)
            return rc;
        p->has_timer = 1;
        uv_timer_start(&self->timer, co__proc_timeout, co__ms(timeout), 0);
    }
    co_proc_op o = { .op.cancel = co__proc_cancel, .p = p };
    p->waiter = self;
    return co__suspend(self, &o.op);
}

int co_proc_kill(co_proc *p, int signum)
{
    if (p->exited)
        return -ESRCH;
    return uv_process_kill(&p->proc, signum);
}

int co_proc_pid(const co_proc *p) { return p->proc.pid; }
bool co_proc_exited(const co_proc *p) { return p->exited; }
int64_t co_proc_exit_status(const co_proc *p) { return p->exit_status; }
int co_proc_term_signal(const co_proc *p) { return p->term_signal; }

void co_proc_free(co_proc *p)
{
    if (!p)
        return;
    if (p->exited) {
        uv_close((uv_handle_t *)&p->proc, co__free_handle);
        return;
    }
    /* Closing the handle now would stop libuv from reaping the child: a zombie. Close it
     * from the exit callback instead. */
    p->released = 1;
}

/* ---- to_thread ----------------------------------------------------------------------- */

typedef struct co_work_op {
    co_await_op op;
    co_task *self;
    uv_work_t req;
    void (*fn)(void *);
    void *arg;
} co_work_op;

static void co__work_run(uv_work_t *req)
{
    co_work_op *o = co_container_of(req, co_work_op, req);
    o->fn(o->arg);
}

static void co__work_done(uv_work_t *req, int status)
{
    co_work_op *o = co_container_of(req, co_work_op, req);
    co__wake(o->self, status == UV_ECANCELED ? -ECANCELED : 0);
}

static void co__work_cancel(co_task *self, co_await_op *op)
{
    co_work_op *o = (co_work_op *)op;
    /* Queued: libuv drops it and calls co__work_done with UV_ECANCELED. Running: it must
     * finish (it may use this stack); the cancel waits for the next await. */
    if (uv_cancel((uv_req_t *)&o->req) != 0)
        self->flags |= CO_TF_CANCEL_PENDING;
}

int co_to_thread(void (*fn)(void *arg), void *arg)
{
    co_task *self = co__self();
    int rc = co__await_begin(self);
    if (rc)
        return rc;
    if (!fn)
        return -EINVAL;
    co_work_op o = { .op.cancel = co__work_cancel, .self = self, .fn = fn, .arg = arg };
    if ((rc = uv_queue_work(self->fut.sched->loop, &o.req, co__work_run, co__work_done)) < 0)
        return rc;
    return co__suspend(self, &o.op);
}
