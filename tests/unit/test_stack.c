/* test_stack: the stack pool — reuse, guard pages, the stack budget crossed, and a stack
 * overflow reported (in a child process) as an overflow naming the task. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "co_test.h"

#ifdef CORO_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

static void test_reuse_and_guard(void **state)
{
    (void)state;
    co_stack_pool *p;
    assert_int_equal(co_stack_pool_new(&p, &(co_stack_config){ .stack_size = 64 * 1024 }), 0);
    co_stack *a, *b;
    assert_int_equal(co_stack_acquire(p, NULL, &a), 0);
    char *base = co_stack_base(a);
    assert_true(co_stack_size(a) >= 60 * 1024);
    base[0] = 1; /* the lowest usable byte is writable */
    base[co_stack_size(a) - 1] = 1;
    assert_true(co_stack_in_guard(a, base - 1));
    assert_false(co_stack_in_guard(a, base));
    assert_int_equal(co_stack_pool_in_use(p), 1);
    co_stack_release(p, a);
    assert_int_equal(co_stack_pool_cached(p), 1);
    assert_int_equal(co_stack_acquire(p, NULL, &b), 0);
    assert_ptr_equal(a, b); /* pooled: the same stack comes back, no new mapping */
    assert_int_equal(co_stack_pool_free(p), -EBUSY);
    co_stack_release(p, b);
    assert_int_equal(co_stack_pool_free(p), 0);
}

static void test_config_validated(void **state)
{
    (void)state;
    co_stack_pool *p;
    assert_int_equal(co_stack_pool_new(&p, &(co_stack_config){ .stack_size = 1024 }), -EINVAL);
    assert_int_equal(co_stack_pool_new(&p, &(co_stack_config){ .stack_size = (size_t)1 << 40 }),
                     -EINVAL);
    assert_int_equal(co_stack_pool_new(&p, NULL), 0);
    assert_int_equal(co_stack_pool_stack_size(p), CO_STACK_DEFAULT_SIZE);
    /* The default budget comes from vm.max_map_count: two maps a stack, a reserve kept. */
    size_t maps = co_stack_max_map_count();
    assert_int_equal(co_stack_pool_limit(p), (maps - CO_STACK_MAP_RESERVE) / CO_STACK_MAPS_PER_STACK);
    assert_int_equal(co_stack_pool_free(p), 0);
}

static void test_cache_bound(void **state)
{
    (void)state;
    co_stack_pool *p;
    co_stack_config c = { .stack_size = 32 * 1024, .max_cached = 2 };
    assert_int_equal(co_stack_pool_new(&p, &c), 0);
    co_stack *s[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(co_stack_acquire(p, NULL, &s[i]), 0);
    for (int i = 0; i < 5; i++)
        co_stack_release(p, s[i]);
    assert_int_equal(co_stack_pool_cached(p), 2); /* the rest were unmapped */
    assert_int_equal(co_stack_pool_free(p), 0);
}

static void test_budget_crossed(void **state)
{
    (void)state;
    co_stack_pool *p;
    assert_int_equal(co_stack_pool_new(&p, &(co_stack_config){ .max_stacks = 3 }), 0);
    co_stack *s[4];
    for (int i = 0; i < 3; i++)
        assert_int_equal(co_stack_acquire(p, NULL, &s[i]), 0);
    assert_int_equal(co_stack_acquire(p, NULL, &s[3]), -EAGAIN);
    char msg[256];
    co_stack_pool_limit_message(p, msg, sizeof msg);
    assert_non_null(strstr(msg, "3 stacks in use"));
    assert_non_null(strstr(msg, "limit 3"));
    co_stack_release(p, s[0]);
    assert_int_equal(co_stack_acquire(p, NULL, &s[3]), 0); /* room again after a release */
    for (int i = 1; i < 4; i++)
        co_stack_release(p, s[i]);
    assert_int_equal(co_stack_pool_free(p), 0);
}

/* ---- overflow, in a child process ---- */

static int recurse(int depth)
{
    volatile char pad[512];
    pad[0] = (char)depth;
    return depth > 1000000000 ? pad[0] : recurse(depth + 1) + pad[0];
}

static int overflow_body(void *arg)
{
    (void)arg;
    return recurse(0);
}

static void test_overflow_reported(void **state)
{
    (void)state;
    if (RUNNING_ON_VALGRIND)
        skip(); /* valgrind reports the overflow itself, before our handler */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        uv_loop_t loop;
        co_sched *s;
        uv_loop_init(&loop);
        co_sched_new(&loop, &(co_sched_config){ .stack.stack_size = 64 * 1024 }, &s);
        co_task *t;
        co_spawn(s, overflow_body, NULL, &(co_task_opts){ .id = 42, .name = "deep" }, &t);
        co_sched_run_until(s, co_task_future(t));
        _exit(0); /* not reached: the overflow kills us */
    }
    close(pfd[1]);
    char buf[2048] = { 0 };
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(pfd[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(pfd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSEGV);
    assert_non_null(strstr(buf, "corod: stack overflow in coroutine task 42 \"deep\""));
    assert_non_null(strstr(buf, "-byte stack is exhausted"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_and_guard),
        cmocka_unit_test(test_config_validated),
        cmocka_unit_test(test_cache_bound),
        cmocka_unit_test(test_budget_crossed),
        cmocka_unit_test(test_overflow_reported),
    };
    return cmocka_run_group_tests_name("stack", tests, NULL, NULL);
}
