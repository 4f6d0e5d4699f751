/* co_sched.c: the run queue on top of libuv, and the switch between the loop's stack and
 * a coroutine's. The queue is drained in a uv_check callback, right after poll, so that
 * I/O callbacks' wake-ups run in the same loop iteration. Each round runs only the
 * entries present when it starts (as asyncio's _run_once), and a drain runs at most
 * CO_DRAIN_ROUNDS rounds, so a coroutine that keeps yielding cannot starve I/O and timers. */
#include "co_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef CO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CO_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define CO_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define CO_POISON(p, n) ((void)(p), (void)(n))
#define CO_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static __thread co_task *co__running;

static void co__idle_noop(uv_idle_t *h)
{
    (void)h;
}

/* The idle handle keeps poll from blocking while work is queued. Posts made inside a
 * drain or under co_sched_hold leave it alone: the drain's end (here) arms it only for
 * what is still queued then, which saves starting and stopping it for every request. */
static void co__arm_idle(co_sched *s)
{
    bool active = uv_is_active((uv_handle_t *)&s->idle);
    if (s->head && !active)
        uv_idle_start(&s->idle, co__idle_noop);
    else if (!s->head && active)
        uv_idle_stop(&s->idle);
}

static void co__run(co_sched *s)
{
    s->draining = 1;
    for (unsigned round = 0; round < CO_DRAIN_ROUNDS && s->head; round++) {
        co_runnable *r = s->head;
        s->head = NULL;
        s->tailp = &s->head;
        while (r) {
            co_runnable *next = r->next;
            r->next = NULL;
            r->run(r);
            r = next;
        }
    }
    co__arm_idle(s);
    s->draining = 0;
}

static void co__drain(uv_check_t *h)
{
    co__run(h->data);
}

void co_sched_hold(co_sched *s)
{
    s->held = 1;
}

void co_sched_run_ready(co_sched *s)
{
    s->held = 0;
    if (s->draining || co__running)
        return; /* the drain under way runs it, or arms the idle handle for it */
    if (s->head)
        co__run(s);
}

void co__post(co_sched *s, co_runnable *r)
{
    r->next = NULL;
    *s->tailp = r;
    s->tailp = &r->next;
    if (!s->held && !s->draining && !uv_is_active((uv_handle_t *)&s->idle))
        uv_idle_start(&s->idle, co__idle_noop);
}


static const co_stack *co__running_stack(void)
{
    return co__running ? co__running->u.coro.stack : NULL;
}

static void co__describe(void *owner, uint64_t *id, const char **name)
{
    co_task *t = owner;
    *id = t->id;
    *name = t->name;
}

int co_sched_new(uv_loop_t *loop, const co_sched_config *cfg, co_sched **out)
{
    co_sched *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = co_stack_pool_new(&s->stacks, cfg ? &cfg->stack : NULL);
    if (rc < 0)
        goto fail;
    rc = co_stack_overflow_handler_install(co__running_stack, co__describe);
    if (rc < 0)
        goto fail;
    s->loop = loop;
    s->tailp = &s->head;
    s->cancel_tailp = &s->cancel_head;
    s->task_cache_max = cfg && cfg->task_cache ? cfg->task_cache : CO_TASK_CACHE_DEFAULT;
    s->value_max_bytes = cfg && cfg->value_max_bytes ? cfg->value_max_bytes : CO_VALUE_BYTES_DEFAULT;
    s->value_max_depth = cfg && cfg->value_max_depth ? cfg->value_max_depth : CO_VALUE_DEPTH_DEFAULT;
    if (s->value_max_depth > CO_VALUE_DEPTH_MAX)
        s->value_max_depth = CO_VALUE_DEPTH_MAX;
    uv_check_init(loop, &s->check);
    uv_idle_init(loop, &s->idle);
    s->check.data = s;
    s->idle.data = s;
    uv_check_start(&s->check, co__drain);
    /* The check handle alone must not keep the loop alive: only queued work (the idle
     * handle), timers, I/O and processes do. */
    uv_unref((uv_handle_t *)&s->check);
    *out = s;
    return 0;
fail:
    co_stack_pool_free(s->stacks);
    free(s);
    return rc;
}

static void co__sched_closed(uv_handle_t *h)
{
    co_sched *s = h->data;
    if (--s->closing == 0) {
        while (s->task_cache) {
            void *m = s->task_cache;
            s->task_cache = *(void **)m;
            free(m);
        }
        co_stack_pool_free(s->stacks);
        free(s);
    }
}

static void co__sched_close_handles(co_sched *s)
{
    s->closing = 2;
    uv_close((uv_handle_t *)&s->check, co__sched_closed);
    uv_close((uv_handle_t *)&s->idle, co__sched_closed);
}

int co_sched_free(co_sched *s)
{
    if (!s)
        return 0;
    if (s->live || s->coroutines || s->head)
        return -EBUSY;
    /* libuv runs close callbacks newest first: closing our handles now would free the
     * scheduler before tasks still closing their timers hand back their records. */
    if (s->tasks_closing)
        s->free_requested = 1;
    else
        co__sched_close_handles(s);
    return 0;
}

void *co__task_mem_get(co_sched *s)
{
    void *m = s->task_cache;
    if (m) {
        s->task_cache = *(void **)m;
        s->task_cached--;
        CO_UNPOISON(m, sizeof(co_task));
    }
    return m;
}

void co__task_mem_put(co_sched *s, void *mem)
{
    if (s->task_cached >= s->task_cache_max) {
        free(mem);
        return;
    }
    *(void **)mem = s->task_cache;
    s->task_cache = mem;
    s->task_cached++;
    /* A cached record is freed memory as far as ASan is concerned, but for its link. */
    CO_POISON((char *)mem + sizeof(void *), sizeof(co_task) - sizeof(void *));
}

void co__sched_task_closed(co_sched *s)
{
    if (--s->tasks_closing == 0 && s->free_requested)
        co__sched_close_handles(s);
}

uv_loop_t *co_sched_loop(const co_sched *s) { return s->loop; }
co_stack_pool *co_sched_stacks(const co_sched *s) { return s->stacks; }
size_t co_sched_live(const co_sched *s) { return s->live; }
size_t co_sched_coroutines(const co_sched *s) { return s->coroutines; }
size_t co_sched_task_cached(const co_sched *s) { return s->task_cached; }

int co_sched_run_until(co_sched *s, co_future *f)
{
    co_future_ref(f);
    int rc = 0;
    while (!co_future_done(f)) {
        if (uv_run(s->loop, UV_RUN_ONCE) == 0 && !co_future_done(f) && !s->head) {
            rc = -EDEADLK;
            break;
        }
    }
    co_future_unref(f);
    return rc;
}

const char *co_strerror(int status)
{
    if (status == CO_EFAILED)
        return "the awaited future failed";
    return uv_strerror(status);
}

/* ---- switching ------------------------------------------------------------------- */

co_task *co__self(void)
{
    return co__running;
}

void co__resume(co_sched *s, co_task *t)
{
    co__running = t;
#ifdef CO_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, co_stack_base(t->u.coro.stack),
                                   co_stack_size(t->u.coro.stack));
#endif
    co_ctx_switch(&s->main_ctx, &t->u.coro.ctx);
#ifdef CO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    co__running = NULL;
}

void co__yield_to_loop(co_sched *s, co_task *self, int final)
{
#ifdef CO_ASAN
    /* On the last switch the fake stack is given up: ASan frees it. */
    __sanitizer_start_switch_fiber(final ? NULL : &self->u.coro.fake_stack, s->main_bottom,
                                   s->main_size);
#else
    (void)final;
#endif
    co_ctx_switch(&self->u.coro.ctx, &s->main_ctx);
#ifdef CO_ASAN
    __sanitizer_finish_switch_fiber(self->u.coro.fake_stack, &s->main_bottom, &s->main_size);
#endif
}
