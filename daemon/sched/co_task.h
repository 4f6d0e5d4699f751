/* co_task: a future driven by a body.
 * Bodies are either a coroutine (a C function on its own pooled stack, which suspends at
 * awaits; see co_await.h) or a stackless wait: a timer (sleep) or a set of other futures
 * (gather). A stackless task costs a few hundred bytes; a coroutine takes a stack only
 * from its first step to its last, so one cancelled before it starts never takes one.
 * Cancellation is cooperative, as in asyncio: see co_task_cancel. */
#ifndef CO_TASK_H
#define CO_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "co_future.h"

typedef struct co_task co_task;

/* A coroutine body. Return 0 to succeed (with the value set by co_return, nil otherwise),
 * -ECANCELED to end cancelled, co_fail(...) to fail with an error map, or any other
 * negative errno to fail with code "error" and that errno's text. */
typedef int (*co_fn)(void *arg);

typedef struct co_task_opts {
    uint64_t id;       /* a label for messages (the daemon's task id); 0 for none */
    const char *name;  /* copied; NULL for none */
    double timeout;    /* seconds of running time; 0 for none. On expiry the body is
                          cancelled and the task ends failed with code "timeout". */
    bool shielded;     /* a cancel arriving through a parent gather does not reach it */
} co_task_opts;

/* Each constructor returns 0 or a negative errno; on success *out (if out is non-NULL)
 * holds a reference the caller must drop with co_task_unref. The runtime keeps the task
 * alive until it is done either way. */
int co_spawn(co_sched *s, co_fn fn, void *arg, const co_task_opts *opts, co_task **out);
/* Stackless sleep: succeeds with `result` (moved in; may be NULL for nil) after `seconds`. */
int co_sleep_task(co_sched *s, double seconds, co_value *result, const co_task_opts *opts,
                  co_task **out);
/* Seconds until a stackless sleep's timer fires (0 when it is due), -1 for any other
 * task or a sleep that has ended. */
double co_sleep_due_in(const co_task *t);
/* Stackless gather of `members` (each referenced until it is done). Succeeds once all are
 * done with an array of their results in order — or, with return_exceptions, of results
 * and error maps — unless that array would pass the scheduler's value bounds
 * (co_sched_config): it then fails with code "result_too_large" instead. Without
 * return_exceptions, the first member to end failed or cancelled ends the gather failed
 * with code "member_failed", `member` (task id, or index when it has none), `index` and
 * `error`: that member's code and message (the first CO_MEMBER_MESSAGE_MAX bytes), never
 * its whole error; the others keep running. Cancelling the gather cancels every member
 * not yet done except shielded tasks, and it ends cancelled once they are done. */
int co_gather_task(co_sched *s, co_future *const *members, size_t n, bool return_exceptions,
                   const co_task_opts *opts, co_task **out);

/* A stackless task driven by its owner: the owner completes it with co_task_finish, and
 * `cancel` is how a cancel reaches the owner (from co_task_cancel or a parent gather).
 * The daemon's task records are these: they wait for dependencies and a delay, then run
 * a kind's body, and must be cancellable at every stage. */
typedef struct co_task_body {
    void (*cancel)(co_task *t, void *data);
} co_task_body;

int co_custom_task(co_sched *s, const co_task_body *body, void *data, const co_task_opts *opts,
                   co_task **out);
/* Completes a custom task (value moved in; NULL for nil). -EINVAL if it is done already,
 * -EPERM if it is not a custom task. A cancelled outcome keeps the cancel message, unless
 * a value is given: that is its error (a record restored as it ended). */
int co_task_finish(co_task *t, co_state st, co_value *value);
/* A custom task's data, or the arg a coroutine was spawned with; else NULL. */
void *co_task_data(const co_task *t);

void co_task_ref(co_task *t);
void co_task_unref(co_task *t);
static inline co_future *co_task_future(co_task *t) { return (co_future *)t; }

/* Ask the task to cancel. A coroutine suspended in an await gets -ECANCELED from it (or
 * from its next await if it is not suspended), once per request; it may clean up,
 * awaiting as it likes, and then return. A coroutine not yet started ends cancelled
 * without running. A stackless task ends cancelled (a gather after its members). False
 * when the task is already done. */
bool co_task_cancel(co_task *t, const char *msg);
/* Cancellation that arrives through a parent (gather): skipped for shielded tasks. */
bool co_task_cancel_from_parent(co_task *t, const char *msg);

uint64_t co_task_id(const co_task *t);
const char *co_task_name(const co_task *t);
bool co_task_shielded(const co_task *t);
bool co_task_is_coroutine(const co_task *t);

/* Inside a coroutine body. */
co_task *co_current(void);              /* NULL outside a coroutine */
int co_return(co_value *result);        /* moves the result in; returns 0 */
int co_fail(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool co_cancel_requested(void);         /* a cancel arrived for the current task */

#endif
