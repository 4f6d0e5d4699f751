/* co_io: awaits on the world outside the loop — fd readiness, child processes and
 * blocking calls run on libuv's thread pool. Coroutine-only, cancellable like every await. */
#ifndef CO_IO_H
#define CO_IO_H

#include <stdint.h>
#include <uv.h>

#include "co_task.h"

/* Waits until `fd` is readable and/or writable (UV_READABLE, UV_WRITABLE). Returns the
 * ready events (> 0), -ETIMEDOUT after `timeout` seconds (< 0: none), -ECANCELED, or a
 * negative errno (-EPERM for a regular file, which epoll cannot watch). */
int co_wait_fd(int fd, int events, double timeout);

/* A child process. */
typedef struct co_proc co_proc;

/* Spawns through uv_spawn (`opts->exit_cb` is the runtime's own and is ignored). */
int co_proc_spawn(co_sched *s, const uv_process_options_t *opts, co_proc **out);
/* Suspends until the child exits: 0, -ETIMEDOUT (< 0: no timeout), -ECANCELED. The child
 * keeps running after a timeout or cancel; kill it with co_proc_kill. */
int co_proc_wait(co_proc *p, double timeout);
int co_proc_kill(co_proc *p, int signum);
int co_proc_pid(const co_proc *p);
bool co_proc_exited(const co_proc *p);
int64_t co_proc_exit_status(const co_proc *p);
int co_proc_term_signal(const co_proc *p);
/* Releases the handle. A child still running is reaped when it exits, never left a
 * zombie. */
void co_proc_free(co_proc *p);

/* asyncio.to_thread: runs fn(arg) on libuv's thread pool while the loop keeps running.
 * 0 once fn has run. -ECANCELED only if the coroutine was cancelled before fn started (it
 * then never runs); if fn is already running the cancel is delivered at the next await,
 * since fn may own memory on this stack. fn must not touch the scheduler. */
int co_to_thread(void (*fn)(void *arg), void *arg);

#endif
