/* co.h: the coroutine runtime in one include — scheduler, futures, tasks, awaits, task
 * groups and I/O awaits. See each header for the contract of its part. */
#ifndef CO_H
#define CO_H

#include "co_await.h"
#include "co_future.h"
#include "co_io.h"
#include "co_sched.h"
#include "co_stack.h"
#include "co_task.h"
#include "co_tg.h"
#include "co_value.h"

#endif
