/* co_tg: task groups, as asyncio.TaskGroup.
 * Children are coroutines spawned into the group by its parent coroutine. The first child
 * to fail cancels its siblings, and the parent too if it is suspended in another await;
 * co_tg_join waits until every child is done, so the parent never ends before them. */
#ifndef CO_TG_H
#define CO_TG_H

#include "co_task.h"

typedef struct co_tg co_tg;

/* Inside a coroutine: a group whose parent is the calling coroutine. */
int co_tg_new(co_tg **out);
/* -ESHUTDOWN once the group has failed or been joined. */
int co_tg_spawn(co_tg *g, co_fn fn, void *arg, const co_task_opts *opts, co_task **out);
/* Waits for all children. 0 when all succeeded; CO_EFAILED when one failed (co_tg_failed
 * names it); -ECANCELED when the parent was cancelled (the children were cancelled and
 * waited for). Must be called once before co_tg_free. */
int co_tg_join(co_tg *g);
/* The first child that failed, or NULL. Owned by the group. */
co_task *co_tg_failed(const co_tg *g);
void co_tg_free(co_tg *g);

#endif
