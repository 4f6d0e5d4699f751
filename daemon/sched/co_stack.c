/* co_stack.c: guarded, pooled coroutine stacks and the overflow report.
 * Layout of one mapping (low to high): [guard page, PROT_NONE][usable stack][co_stack].
 * The bookkeeping record sits at the very top, where the coroutine's first frames touch
 * memory anyway, so a pooled stack costs no malloc and no extra resident page. */
#include "co_stack.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef CORO_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

struct co_stack {
    co_stack *next; /* free list link while cached */
    char *map;      /* start of the mapping: the guard page */
    size_t map_len;
    size_t usable;  /* bytes between the guard and this record */
    void *owner;
    unsigned vg_id; /* valgrind's stack id */
};

struct co_stack_pool {
    co_stack *free;
    size_t cached, max_cached;
    size_t in_use, limit;
    size_t stack_size, page;
    int limit_from_maps; /* the limit came from vm.max_map_count, not the config */
};

#define CO_STACK_HDR ((sizeof(co_stack) + 63u) & ~(size_t)63u)

static size_t co_stack_map_count_cache;

size_t co_stack_max_map_count(void)
{
    if (co_stack_map_count_cache)
        return co_stack_map_count_cache;
    size_t v = CO_STACK_MAX_MAP_COUNT_DEFAULT;
    /* Read once, at pool creation, before the loop runs: procfs does not block. */
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = '\0';
            unsigned long long x = strtoull(buf, NULL, 10);
            if (x > 0)
                v = (size_t)x;
        }
        close(fd);
    }
    co_stack_map_count_cache = v;
    return v;
}

int co_stack_pool_new(co_stack_pool **out, const co_stack_config *cfg)
{
    co_stack_config c = cfg ? *cfg : (co_stack_config){ 0 };
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (c.stack_size == 0)
        c.stack_size = CO_STACK_DEFAULT_SIZE;
    if (c.stack_size < CO_STACK_MIN_SIZE || c.stack_size > CO_STACK_MAX_SIZE)
        return -EINVAL;
    if (c.max_cached == 0)
        c.max_cached = CO_STACK_DEFAULT_CACHED;

    co_stack_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->page = page;
    p->stack_size = (c.stack_size + page - 1) & ~(page - 1);
    p->max_cached = c.max_cached;

    size_t maps = co_stack_max_map_count();
    size_t by_maps = maps > CO_STACK_MAP_RESERVE + CO_STACK_MAPS_PER_STACK
                         ? (maps - CO_STACK_MAP_RESERVE) / CO_STACK_MAPS_PER_STACK
                         : 1;
    p->limit = by_maps;
    p->limit_from_maps = 1;
    if (c.max_stacks && c.max_stacks < by_maps) {
        p->limit = c.max_stacks;
        p->limit_from_maps = 0;
    }
    *out = p;
    return 0;
}

static void co_stack_unmap(co_stack *s)
{
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    munmap(s->map, s->map_len);
}

int co_stack_pool_free(co_stack_pool *p)
{
    if (!p)
        return 0;
    if (p->in_use)
        return -EBUSY;
    while (p->free) {
        co_stack *s = p->free;
        p->free = s->next;
        co_stack_unmap(s);
    }
    free(p);
    return 0;
}

static int co_stack_map(co_stack_pool *p, co_stack **out)
{
    size_t len = p->page + p->stack_size;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -ENOMEM;
    if (mprotect(map, p->page, PROT_NONE) < 0) {
        /* ENOMEM here means the split would pass vm.max_map_count. */
        munmap(map, len);
        return -ENOMEM;
    }
    co_stack *s = (co_stack *)(map + len - CO_STACK_HDR);
    s->next = NULL;
    s->map = map;
    s->map_len = len;
    s->usable = p->stack_size - CO_STACK_HDR;
    s->owner = NULL;
    s->vg_id = VALGRIND_STACK_REGISTER(map + p->page, map + p->page + s->usable);
    *out = s;
    return 0;
}

int co_stack_acquire(co_stack_pool *p, void *owner, co_stack **out)
{
    co_stack *s = p->free;
    if (s) {
        p->free = s->next;
        p->cached--;
    } else {
        if (p->in_use >= p->limit)
            return -EAGAIN;
        int rc = co_stack_map(p, &s);
        if (rc < 0)
            return rc;
    }
    s->next = NULL;
    s->owner = owner;
    p->in_use++;
    *out = s;
    return 0;
}

void co_stack_release(co_stack_pool *p, co_stack *s)
{
    p->in_use--;
    s->owner = NULL;
    if (p->cached < p->max_cached) {
        s->next = p->free;
        p->free = s;
        p->cached++;
        return;
    }
    co_stack_unmap(s);
}

void *co_stack_base(const co_stack *s)
{
    return s->map + (s->map_len - s->usable - CO_STACK_HDR);
}

size_t co_stack_size(const co_stack *s)
{
    return s->usable;
}

bool co_stack_in_guard(const co_stack *s, const void *addr)
{
    const char *a = addr;
    return a >= s->map && a < (const char *)co_stack_base(s);
}

size_t co_stack_pool_in_use(const co_stack_pool *p) { return p->in_use; }
size_t co_stack_pool_cached(const co_stack_pool *p) { return p->cached; }
size_t co_stack_pool_limit(const co_stack_pool *p) { return p->limit; }
size_t co_stack_pool_stack_size(const co_stack_pool *p) { return p->stack_size; }

void co_stack_pool_limit_message(const co_stack_pool *p, char *buf, size_t len)
{
    if (p->limit_from_maps)
        snprintf(buf, len,
                 "coroutine stack limit reached: %zu stacks in use; each takes %u memory maps "
                 "and vm.max_map_count is %zu (raise it with sysctl to run more coroutines)",
                 p->in_use, CO_STACK_MAPS_PER_STACK, co_stack_max_map_count());
    else
        snprintf(buf, len, "coroutine stack limit reached: %zu stacks in use, configured limit %zu",
                 p->in_use, p->limit);
}

/* ---- overflow report ------------------------------------------------------------ */

static co_stack_running_fn co_stack_running;
static co_stack_describe_fn co_stack_describe;
static struct sigaction co_stack_prev_segv;
static __thread void *co_stack_altstack;

/* Async-signal-safe formatting helpers: no stdio in a signal handler. */
static size_t co_fmt_str(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s && pos + 1 < cap)
        buf[pos++] = *s++;
    return pos;
}

static size_t co_fmt_num(char *buf, size_t pos, size_t cap, uintptr_t v, unsigned base)
{
    char tmp[32];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && n < sizeof tmp);
    while (n && pos + 1 < cap)
        buf[pos++] = tmp[--n];
    return pos;
}

static void co_stack_on_segv(int sig, siginfo_t *si, void *uctx)
{
    const co_stack *s = co_stack_running ? co_stack_running() : NULL;
    if (s && co_stack_in_guard(s, si->si_addr)) {
        char msg[512];
        uint64_t id = 0;
        const char *name = NULL;
        if (co_stack_describe && s->owner)
            co_stack_describe(s->owner, &id, &name);
        size_t n = co_fmt_str(msg, 0, sizeof msg, "corod: stack overflow in coroutine");
        if (id) {
            n = co_fmt_str(msg, n, sizeof msg, " task ");
            n = co_fmt_num(msg, n, sizeof msg, (uintptr_t)id, 10);
        }
        if (name) {
            n = co_fmt_str(msg, n, sizeof msg, " \"");
            n = co_fmt_str(msg, n, 200, name); /* a long name must not crowd out the rest */
            n = co_fmt_str(msg, n, sizeof msg, "\"");
        }
        if (!id && !name)
            n = co_fmt_str(msg, n, sizeof msg, " (unnamed)");
        n = co_fmt_str(msg, n, sizeof msg, ": its ");
        n = co_fmt_num(msg, n, sizeof msg, s->usable, 10);
        n = co_fmt_str(msg, n, sizeof msg, "-byte stack is exhausted (guard page hit at 0x");
        n = co_fmt_num(msg, n, sizeof msg, (uintptr_t)si->si_addr, 16);
        n = co_fmt_str(msg, n, sizeof msg, "); use a larger coroutine stack or recurse less\n");
        ssize_t w = write(STDERR_FILENO, msg, n);
        (void)w;
        /* Fall through to the default action: returning re-executes the faulting access,
         * which now kills the process with SIGSEGV (and a core dump where enabled). */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigaction(sig, &dfl, NULL);
        return;
    }
    /* Not a guard page of ours: let whoever was there before handle it (ASan, or the
     * default action). */
    if ((co_stack_prev_segv.sa_flags & SA_SIGINFO) && co_stack_prev_segv.sa_sigaction) {
        co_stack_prev_segv.sa_sigaction(sig, si, uctx);
    } else if (co_stack_prev_segv.sa_handler != SIG_DFL &&
               co_stack_prev_segv.sa_handler != SIG_IGN) {
        co_stack_prev_segv.sa_handler(sig);
    } else {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigaction(sig, &dfl, NULL);
    }
}

int co_stack_overflow_handler_install(co_stack_running_fn running, co_stack_describe_fn describe)
{
    co_stack_running = running;
    co_stack_describe = describe;

    /* The handler must run on a stack of its own: the faulting one is exhausted. */
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE) && !co_stack_altstack) {
        size_t sz = 64 * 1024;
        void *mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return -ENOMEM;
        stack_t ss = { .ss_sp = mem, .ss_size = sz, .ss_flags = 0 };
        if (sigaltstack(&ss, NULL) < 0) {
            int e = errno;
            munmap(mem, sz);
            return -e;
        }
        co_stack_altstack = mem;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = co_stack_on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    struct sigaction prev;
    if (sigaction(SIGSEGV, &sa, &prev) < 0)
        return -errno;
    /* Installing twice must not make us our own predecessor. */
    if (prev.sa_sigaction != co_stack_on_segv)
        co_stack_prev_segv = prev;
    return 0;
}
