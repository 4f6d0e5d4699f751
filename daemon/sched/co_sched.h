/* co_sched: the coroutine scheduler bound to one libuv loop.
 * libuv owns the loop; the scheduler adds a run queue (drained by a uv_check handle after
 * each poll, with a uv_idle handle keeping poll from blocking while it is not empty) and
 * the switch between the loop's stack and coroutine stacks. One scheduler per loop and
 * per thread; nothing here is thread-safe, by design: no locks on the hot path. */
#ifndef CO_SCHED_H
#define CO_SCHED_H

#include <stddef.h>
#include <uv.h>

#include "co_stack.h"

typedef struct co_sched co_sched;
typedef struct co_future co_future;

/* Status codes beyond errno, returned by awaits (libuv keeps its own below -4000 too). */
#define CO_EFAILED (-5001) /* what was awaited ended `failed`; its error value says why */

/* Snapshot rounds one drain of the run queue may run while work remains. More than one
 * lets short chains (a task ends → its future's callbacks → their futures' callbacks)
 * settle in the same loop turn, so their output leaves in one write; a bound keeps a
 * coroutine that yields forever from starving timers and I/O. */
#define CO_DRAIN_ROUNDS 8u

/* Freed task records kept for reuse: a free list spares malloc and the page faults of a
 * heap trimmed and regrown between bursts. Bounded: at most this many records (~340 B
 * each) stay cached. */
#define CO_TASK_CACHE_DEFAULT 16384u

/* Bounds on the values the runtime builds itself (a gather's result: its members' values
 * side by side), so that no arrangement of tasks makes one without limit. */
#define CO_VALUE_BYTES_DEFAULT (4u * 1024u * 1024u)
#define CO_VALUE_DEPTH_DEFAULT 16u

typedef struct co_sched_config {
    co_stack_config stack;
    size_t task_cache;     /* 0: CO_TASK_CACHE_DEFAULT */
    size_t value_max_bytes; /* 0: CO_VALUE_BYTES_DEFAULT */
    unsigned value_max_depth; /* nesting levels, 0: CO_VALUE_DEPTH_DEFAULT (<= CO_VALUE_DEPTH_MAX) */
} co_sched_config;

/* Binds a scheduler to `loop` and installs the stack overflow report. Returns 0 or a
 * negative errno. */
int co_sched_new(uv_loop_t *loop, const co_sched_config *cfg, co_sched **out);
/* Closes the scheduler's handles. -EBUSY while tasks or futures are alive. The memory is
 * released from close callbacks (after those of any task still closing its timer), so
 * run the loop once more afterwards. */
int co_sched_free(co_sched *s);

uv_loop_t *co_sched_loop(const co_sched *s);
co_stack_pool *co_sched_stacks(const co_sched *s);
/* Futures and tasks not yet freed, and coroutines holding a stack: for tests and stats. */
size_t co_sched_live(const co_sched *s);
size_t co_sched_coroutines(const co_sched *s);
size_t co_sched_task_cached(const co_sched *s); /* task records in the free list */

/* Runs what is queued now, as the check phase after this poll would: for an I/O callback
 * that wants the consequences of what it just did — a task that ends at once, the
 * done-callbacks that follow — before it returns. The server answers a request from the
 * callback that read it this way: a reply that leaves a microsecond sooner finds its
 * client still awake (see bench/README.md). A no-op inside a coroutine or a drain. */
void co_sched_run_ready(co_sched *s);

/* Promises a co_sched_run_ready before control goes back to the loop, so that what gets
 * queued meanwhile need not arm the idle handle (which keeps poll from blocking) only to
 * disarm it at once. */
void co_sched_hold(co_sched *s);

/* Runs the loop until `f` is done. 0, or -EDEADLK when the loop ran out of work first
 * (nothing left that could complete it). Not for use inside a coroutine. */
int co_sched_run_until(co_sched *s, co_future *f);

/* Human-readable text for a status code, including CO_EFAILED and libuv's. */
const char *co_strerror(int status);

#endif
