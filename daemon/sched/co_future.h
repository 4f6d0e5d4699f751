/* co_future: a one-shot outcome — pending, then exactly one of succeeded (a result value),
 * failed (an error value) or cancelled — with done-callbacks.
 * Callbacks run once each, in the order added, from the loop's run queue: never inside the
 * call that completed the future. One added to a done future is scheduled at once.
 * Futures are reference counted; the creator holds the first reference. */
#ifndef CO_FUTURE_H
#define CO_FUTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "co_queue.h"
#include "co_sched.h"
#include "co_value.h"

typedef enum co_state {
    CO_PENDING = 0,
    CO_SUCCEEDED,
    CO_FAILED,
    CO_CANCELLED,
} co_state;

typedef void (*co_cb_fn)(co_future *f, void *arg);

/* A callback registration. Caller-owned memory (intrusive): it must stay valid until the
 * callback has run or was removed. */
typedef struct co_cb {
    co_queue node;  /* in its future's callbacks */
    co_future *fut; /* non-NULL while registered */
    co_cb_fn fn;
    void *arg;
    uint8_t owned; /* allocated by co_future_on_done: freed after it runs */
} co_cb;

int co_future_new(co_sched *s, co_future **out);
void co_future_ref(co_future *f);
void co_future_unref(co_future *f);

/* Complete a plain future; the value is moved in (left NIL). -EINVAL if it is already done,
 * -EPERM on a task (a task completes through its body). */
int co_future_set_result(co_future *f, co_value *result);
int co_future_set_error(co_future *f, co_value *error);
/* Cancel: a plain future becomes cancelled at once; a task is asked to cancel (see
 * co_task_cancel). `msg` may be NULL. False when already done. */
bool co_future_cancel(co_future *f, const char *msg);

co_state co_future_state(const co_future *f);
bool co_future_done(const co_future *f);
/* The result (succeeded) or the error map (failed, cancelled). Owned by the future. */
const co_value *co_future_value(const co_future *f);
co_sched *co_future_sched(const co_future *f);
/* Moves a done future's value out (it is left nil): for the one reader of a future only
 * it holds, which keeps the value without a second copy. -EINVAL while pending. */
int co_future_take_value(co_future *f, co_value *out);

void co_future_add_cb(co_future *f, co_cb *cb, co_cb_fn fn, void *arg);
/* Unregister a callback (added with co_future_add_cb) that has not run yet; a no-op if
 * it ran or was removed. */
void co_future_remove_cb(co_cb *cb);
/* Convenience: the registration is allocated here. Returns 0 or -ENOMEM. */
int co_future_on_done(co_future *f, co_cb_fn fn, void *arg);

const char *co_state_name(co_state st);

#endif
