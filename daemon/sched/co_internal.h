/* co_internal.h: structures and helpers shared by the runtime's own modules only.
 * Public headers keep these types opaque; nothing outside daemon/sched includes this. */
#ifndef CO_INTERNAL_H
#define CO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "co_ctx.h"
#include "co_future.h"
#include "co_stack.h"
#include "co_task.h"

#if defined(__SANITIZE_ADDRESS__)
#define CO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CO_ASAN 1
#endif
#endif

/* A run queue entry: something to call from the loop's next drain. */
typedef struct co_runnable co_runnable;
struct co_runnable {
    co_runnable *next;
    void (*run)(co_runnable *r);
};

struct co_sched {
    uv_loop_t *loop;
    uv_check_t check; /* drains the run queue after each poll; unref'd */
    uv_idle_t idle;   /* active while the queue is not empty: poll must not block */
    co_runnable *head, **tailp;
    co_stack_pool *stacks;
    co_ctx main_ctx; /* the loop's own stack, while a coroutine runs */
    size_t live;       /* futures and tasks not yet freed */
    size_t coroutines; /* coroutines holding a stack */
    int closing;       /* handles left to close before the memory goes */
    int free_requested; /* co_sched_free waits for task timers still closing */
    int draining;       /* inside co__run: co_sched_run_ready must not nest */
    int held;           /* co_sched_hold: the caller drains before returning to the loop */
    size_t tasks_closing; /* task records whose timer close callback is pending */
    /* Cancels requested while one is being carried out, to carry out next (co_task.c). */
    struct co_task *cancel_head, **cancel_tailp;
    int cancelling;
    void *task_cache;  /* free list of task records (linked through their first word) */
    size_t task_cached, task_cache_max;
    size_t value_max_bytes; /* co_sched_config's bounds on a gather's result */
    unsigned value_max_depth;
#ifdef CO_ASAN
    const void *main_bottom; /* ASan fiber bookkeeping for the loop stack */
    size_t main_size;
#endif
};

enum co_fut_type { CO_FUT_PLAIN = 0, CO_FUT_TASK };

struct co_future {
    co_runnable rq; /* callback dispatch */
    co_sched *sched;
    co_queue cbs; /* co_cb.node, in the order added */
    co_value value;
    uint32_t refs;
    uint8_t state;
    uint8_t type;
    uint8_t queued; /* rq is in the run queue */
};

/* What a suspended coroutine waits in. `cancel` is how co_task_cancel reaches it. */
typedef struct co_await_op co_await_op;
struct co_await_op {
    void (*cancel)(co_task *self, co_await_op *op);
};

enum co_body { CO_BODY_CORO = 1, CO_BODY_SLEEP, CO_BODY_GATHER, CO_BODY_CUSTOM };

enum co_task_flag {
    CO_TF_STARTED = 1u << 0,     /* coroutine: has a stack and has run */
    CO_TF_FINISHED = 1u << 1,    /* coroutine: body returned, waiting for the loop side */
    CO_TF_STEP_QUEUED = 1u << 2, /* step is in the run queue */
    CO_TF_CANCEL_REQ = 1u << 3,  /* a cancel was requested at least once */
    CO_TF_CANCEL_PENDING = 1u << 4, /* requested but not yet delivered to an await */
    CO_TF_SHIELDED = 1u << 5,
    CO_TF_TIMER_INIT = 1u << 6,  /* `timer` is an initialised handle: close before free */
    CO_TF_TIMED_OUT = 1u << 7,   /* the run timeout fired */
    CO_TF_CANCELLING = 1u << 8,  /* gather: cancelling its members */
    CO_TF_TG_CANCEL = 1u << 9,   /* pending cancel came from the task group, not a user */
    CO_TF_CANCEL_QUEUED = 1u << 10, /* in the scheduler's cancel queue */
};

typedef struct co_gather_member {
    co_cb cb;
    co_future *fut; /* referenced until done or detached */
    struct co_task *gather;
} co_gather_member;

struct co_task {
    co_future fut; /* first: a task is a future */
    co_runnable step;
    uint64_t id;
    char *name;
    struct co_task *cancel_next; /* in the scheduler's cancel queue */
    uint16_t flags;
    uint8_t body;
    uv_timer_t *run_timer; /* the task's own `timeout`, when it has one */
    double timeout;
    union {
        struct {
            co_fn fn;
            void *arg;
            co_ctx ctx;
            co_stack *stack;
            co_await_op *op; /* non-NULL while suspended in a cancellable await */
            co_value out;    /* set by co_return / co_fail */
            int wake;        /* status handed to the await being resumed */
            int rc;          /* the body's return value */
#ifdef CO_ASAN
            void *fake_stack;
#endif
        } coro;
        struct {
            co_value result;
        } sleep;
        struct {
            const co_task_body *body;
            void *data;
        } custom;
        struct {
            co_gather_member *m;
            size_t n, remaining;
            uint8_t return_exceptions;
        } gather;
    } u;
    /* Last: sleeps and coroutines' awaits with a timeout use it (initialised lazily);
     * custom and gather tasks never do, and are allocated without it, up to their part
     * of the union (co__task_size) — a record's outward task is one of those, one per
     * task the daemon holds. */
    uv_timer_t timer;
};

/* co_sched.c */
void co__post(co_sched *s, co_runnable *r);
void co__resume(co_sched *s, co_task *t); /* switch into t until it suspends or ends */
void co__yield_to_loop(co_sched *s, co_task *self, int final);

/* co_future.c */
void co__future_init(co_future *f, co_sched *s, uint8_t type);
/* Completes `f`: moves *value in, schedules the callbacks. f must be pending. */
void co__future_finish(co_future *f, co_state st, co_value *value);
void co__future_release(co_future *f); /* frees a plain future's memory at refs == 0 */

/* A failed gather's error sums up its member's: that error's code and the start of its
 * message, at most these many bytes of each. */
#define CO_MEMBER_CODE_MAX 64u
#define CO_MEMBER_MESSAGE_MAX 512u

/* Durations: finite, >= 0 and at most CO_MAX_SECONDS (about 31 years). */
#define CO_MAX_SECONDS 1e9
bool co__valid_seconds(double seconds);
uint64_t co__ms(double seconds); /* rounded up: a sleep never ends early */

/* co_sched.c: task record cache */
void *co__task_mem_get(co_sched *s);
void co__task_mem_put(co_sched *s, void *mem);
void co__sched_task_closed(co_sched *s);

/* co_task.c */
void co__task_free(co_task *t);
int co__timer_init(co_task *t);
/* Suspend the current coroutine in `op`; returns the wake status. */
int co__suspend(co_task *self, co_await_op *op);
/* Resume a suspended coroutine with `status` (from the loop, never inline). */
void co__wake(co_task *t, int status);
/* Entry to every await: -ECANCELED if a cancel is waiting to be delivered, else 0. */
int co__await_begin(co_task *self);
/* -EPERM-style guard: the current coroutine, or NULL when called from outside one. */
co_task *co__self(void);
int co__status_of(const co_future *f);

#endif
