/* co_stack: coroutine stacks — mmap'd with a guard page, pooled and reused.
 * A fresh mmap+mprotect costs microseconds; a pooled stack costs a pointer pop. Each
 * guarded stack is two kernel memory maps (guard + stack), and Linux caps maps per process
 * (vm.max_map_count), so the pool enforces a stack budget derived from that cap and says
 * so plainly when it is reached. A guard-page hit is reported as a stack overflow naming
 * the coroutine, not a bare segfault. */
#ifndef CO_STACK_H
#define CO_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CO_STACK_DEFAULT_SIZE (256u * 1024u) /* usable bytes; virtual, touched lazily */
#define CO_STACK_MIN_SIZE (16u * 1024u)
#define CO_STACK_MAX_SIZE (64u * 1024u * 1024u)
#define CO_STACK_DEFAULT_CACHED 128u /* free stacks kept mapped for reuse */
#define CO_STACK_MAPS_PER_STACK 2u
/* Maps left for everything else in the process (libraries, heap arenas, thread stacks). */
#define CO_STACK_MAP_RESERVE 4096u
#define CO_STACK_MAX_MAP_COUNT_DEFAULT 65530u /* the kernel's default, if /proc is unreadable */

typedef struct co_stack co_stack;
typedef struct co_stack_pool co_stack_pool;

typedef struct co_stack_config {
    size_t stack_size; /* 0: CO_STACK_DEFAULT_SIZE; rounded up to whole pages */
    size_t max_cached; /* 0: CO_STACK_DEFAULT_CACHED */
    size_t max_stacks; /* 0: derived from vm.max_map_count; otherwise the lower of the two */
} co_stack_config;

/* Returns 0 or -EINVAL (size out of range) / -ENOMEM. */
int co_stack_pool_new(co_stack_pool **out, const co_stack_config *cfg);
/* Unmaps the cached stacks. Returns -EBUSY (and frees nothing) while stacks are in use. */
int co_stack_pool_free(co_stack_pool *p);

/* Hands out a stack. -EAGAIN: the budget is spent (co_stack_pool_limit_message says why);
 * -ENOMEM: the kernel refused the mapping. `owner` is what an overflow report names. */
int co_stack_acquire(co_stack_pool *p, void *owner, co_stack **out);
void co_stack_release(co_stack_pool *p, co_stack *s);

/* The usable region, for co_ctx_make. */
void *co_stack_base(const co_stack *s);
size_t co_stack_size(const co_stack *s);
bool co_stack_in_guard(const co_stack *s, const void *addr);

size_t co_stack_pool_in_use(const co_stack_pool *p);
size_t co_stack_pool_cached(const co_stack_pool *p);
size_t co_stack_pool_limit(const co_stack_pool *p);
size_t co_stack_pool_stack_size(const co_stack_pool *p);
/* One sentence naming the limit and where it comes from, for an error reply. */
void co_stack_pool_limit_message(const co_stack_pool *p, char *buf, size_t len);

/* vm.max_map_count as read at pool creation (or the kernel default if unreadable). */
size_t co_stack_max_map_count(void);

/* Overflow reporting. `running` returns the stack the calling thread runs on (NULL on
 * its own) and `describe` the task id (0: none) and name (NULL: none) of a stack's owner;
 * both run inside a SIGSEGV handler, so they must only read memory. Installs the handler
 * on an alternate signal stack for the calling thread. Returns 0 or a negative errno. */
typedef const co_stack *(*co_stack_running_fn)(void);
typedef void (*co_stack_describe_fn)(void *owner, uint64_t *id, const char **name);
int co_stack_overflow_handler_install(co_stack_running_fn running, co_stack_describe_fn describe);

#endif
