/* co_await: the suspension points of a coroutine — asyncio's awaits, in C.
 * Call these only from a coroutine body. Each is cancellable: when the coroutine is
 * cancelled while suspended in one, it returns -ECANCELED (once per cancel request).
 * Status codes: 0 on success; -ECANCELED; -ETIMEDOUT; CO_EFAILED when what was awaited
 * failed; other negative errnos for errors such as -ENOMEM. */
#ifndef CO_AWAIT_H
#define CO_AWAIT_H

#include <stdbool.h>

#include "co_task.h"

/* asyncio.sleep: suspends for `seconds` (millisecond resolution; 0 yields once to the
 * loop). -EINVAL for a negative or non-finite duration. */
int co_sleep(double seconds);

/* await fut: suspends until `f` is done. 0 when it succeeded, CO_EFAILED when it failed,
 * -ECANCELED when it was cancelled. Cancelling the awaiting coroutine cancels `f` too (as
 * asyncio does; wrap it in co_shield to prevent that) and waits for it to finish. */
int co_await(co_future *f);

/* asyncio.gather: awaits a stackless gather of `futs` (see co_gather_task). 0 when all
 * succeeded, CO_EFAILED when one failed or was cancelled (the others keep running; with
 * return_exceptions it waits for all and returns 0), -ECANCELED when this coroutine was
 * cancelled: the members are cancelled and awaited first. With `out`, the gather task
 * (its value is the array of results) is returned with a reference. */
int co_gather(co_future *const *futs, size_t n, bool return_exceptions, co_task **out);

typedef enum co_wait_mode {
    CO_ALL_COMPLETED = 0,
    CO_FIRST_COMPLETED,
    CO_FIRST_EXCEPTION, /* a member failed (as in asyncio, a cancelled one does not count) */
} co_wait_mode;

/* asyncio.wait: suspends until `mode` is satisfied or `timeout` seconds pass (< 0: none).
 * Never cancels the futures and ignores their outcomes: check them with co_future_done.
 * 0 when the mode was satisfied, -ETIMEDOUT, -ECANCELED, -EINVAL, -ENOMEM. */
int co_wait(co_future *const *futs, size_t n, co_wait_mode mode, double timeout);

/* asyncio.wait_for: awaits `f` for at most `timeout` seconds. On expiry `f` is cancelled
 * and awaited until it has finished cancelling; then -ETIMEDOUT (or its outcome, if it
 * completed anyway). Otherwise as co_await. */
int co_wait_for(co_future *f, double timeout);

/* asyncio.shield: a new future that completes as `f` does, whose cancellation does not
 * reach `f`. The caller owns the returned reference. NULL on allocation failure. */
co_future *co_shield(co_future *f);

#endif
