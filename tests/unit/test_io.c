/* test_io: fd readiness, child processes (exit codes, signals, no zombies) and to_thread
 * (the loop keeps running; a queued call can be cancelled, a running one cannot). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "co_test.h"

/* ---- fd ---- */

typedef struct pipe_case {
    int fds[2];
    int status;
} pipe_case;

static int reader_body(void *arg)
{
    pipe_case *p = arg;
    p->status = co_wait_fd(p->fds[0], UV_READABLE, 5);
    return 0;
}

static int writer_body(void *arg)
{
    pipe_case *p = arg;
    co_sleep(0.02);
    return write(p->fds[1], "x", 1) == 1 ? 0 : -errno;
}

static void test_wait_fd_readable(void **state)
{
    co_env *e = *state;
    pipe_case p;
    assert_int_equal(pipe(p.fds), 0);
    co_task *r, *w;
    co_spawn(e->s, reader_body, &p, NULL, &r);
    co_spawn(e->s, writer_body, &p, NULL, &w);
    co_sched_run_until(e->s, co_task_future(r));
    assert_int_equal(p.status, UV_READABLE);
    co_task_unref(r);
    co_task_unref(w);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    close(p.fds[0]);
    close(p.fds[1]);
}

typedef struct fd_errs {
    int fds[2];
    int timeout, badev, regular, cancelled, armed;
} fd_errs;

static int fd_errs_body(void *arg)
{
    fd_errs *f = arg;
    f->timeout = co_wait_fd(f->fds[0], UV_READABLE, 0.02);
    f->badev = co_wait_fd(f->fds[0], 0, 1);
    int reg = open("/proc/self/exe", O_RDONLY);
    f->regular = co_wait_fd(reg, UV_READABLE, 1);
    close(reg);
    f->armed = 1;
    f->cancelled = co_wait_fd(f->fds[0], UV_READABLE, -1);
    return 0;
}

static void test_wait_fd_errors(void **state)
{
    co_env *e = *state;
    fd_errs f = { .armed = 0 };
    assert_int_equal(pipe(f.fds), 0);
    co_task *t;
    co_spawn(e->s, fd_errs_body, &f, NULL, &t);
    while (!f.armed) /* it suspends in the last wait in the same turn it sets this */
        uv_run(&e->loop, UV_RUN_ONCE);
    co_task_cancel(t, NULL);
    co_sched_run_until(e->s, co_task_future(t));
    assert_int_equal(f.timeout, -ETIMEDOUT);
    assert_int_equal(f.badev, -EINVAL);
    assert_int_equal(f.regular, -EPERM); /* epoll cannot watch a regular file */
    assert_int_equal(f.cancelled, -ECANCELED);
    co_task_unref(t);
    close(f.fds[0]);
    close(f.fds[1]);
}

/* ---- processes ---- */

typedef struct proc_case {
    co_env *e;
    char *argv[4];
    int spawn, wait, kill_after_timeout;
    int64_t exit_status;
    int term_signal, pid;
} proc_case;

static int proc_body(void *arg)
{
    proc_case *c = arg;
    uv_process_options_t o = { .file = c->argv[0], .args = c->argv };
    co_proc *p;
    c->spawn = co_proc_spawn(c->e->s, &o, &p);
    if (c->spawn < 0)
        return 0;
    c->pid = co_proc_pid(p);
    c->wait = co_proc_wait(p, c->kill_after_timeout ? 0.05 : 10);
    if (c->wait == -ETIMEDOUT) {
        co_proc_kill(p, SIGTERM);
        co_proc_wait(p, 10);
    }
    c->exit_status = co_proc_exit_status(p);
    c->term_signal = co_proc_term_signal(p);
    co_proc_free(p);
    return 0;
}

static void test_process_exit_and_signal(void **state)
{
    co_env *e = *state;
    proc_case c = { .e = e, .argv = { "/bin/sh", "-c", "exit 3", NULL } };
    co_task *t = co_test_run(e, proc_body, &c);
    assert_int_equal(c.spawn, 0);
    assert_int_equal(c.wait, 0);
    assert_int_equal(c.exit_status, 3);
    assert_int_equal(c.term_signal, 0);
    co_task_unref(t);

    proc_case k = { .e = e, .argv = { "/bin/sleep", "10", NULL }, .kill_after_timeout = 1 };
    t = co_test_run(e, proc_body, &k);
    assert_int_equal(k.wait, -ETIMEDOUT);
    assert_int_equal(k.term_signal, SIGTERM);
    co_task_unref(t);

    proc_case n = { .e = e, .argv = { "/nonexistent/program", NULL } };
    t = co_test_run(e, proc_body, &n);
    assert_int_equal(n.spawn, -ENOENT);
    co_task_unref(t);
}

static int abandon_body(void *arg)
{
    proc_case *c = arg;
    uv_process_options_t o = { .file = c->argv[0], .args = c->argv };
    co_proc *p;
    if ((c->spawn = co_proc_spawn(c->e->s, &o, &p)) < 0)
        return 0;
    c->pid = co_proc_pid(p);
    co_proc_free(p); /* let go while it still runs */
    return 0;
}

static void test_abandoned_process_is_reaped(void **state)
{
    co_env *e = *state;
    proc_case c = { .e = e, .argv = { "/bin/sleep", "0.05", NULL } };
    co_task *t = co_test_run(e, abandon_body, &c);
    assert_int_equal(c.spawn, 0);
    uv_run(&e->loop, UV_RUN_DEFAULT); /* runs until the child exits and is closed */
    errno = 0;
    assert_int_equal(kill(c.pid, 0), -1); /* gone, not a zombie */
    assert_int_equal(errno, ESRCH);
    co_task_unref(t);
}

/* ---- to_thread ---- */

static void block_300ms(void *arg)
{
    usleep(300000);
    *(int *)arg = 1;
}

typedef struct ticker {
    int ticks, stop;
} ticker;

static int ticker_body(void *arg)
{
    ticker *k = arg;
    while (!k->stop && co_sleep(0.01) == 0)
        k->ticks++;
    return 0;
}

typedef struct thread_case {
    ticker *k;
    int ran, status, ticks_during;
} thread_case;

static int thread_body(void *arg)
{
    thread_case *c = arg;
    int before = c->k->ticks;
    c->status = co_to_thread(block_300ms, &c->ran);
    c->ticks_during = c->k->ticks - before;
    c->k->stop = 1;
    return 0;
}

static void test_to_thread_keeps_loop_running(void **state)
{
    co_env *e = *state;
    ticker k = { 0, 0 };
    thread_case c = { .k = &k };
    co_task *tk, *tt;
    co_spawn(e->s, ticker_body, &k, NULL, &tk);
    co_spawn(e->s, thread_body, &c, NULL, &tt);
    co_sched_run_until(e->s, co_task_future(tt));
    co_sched_run_until(e->s, co_task_future(tk));
    assert_int_equal(c.status, 0);
    assert_int_equal(c.ran, 1);
    /* 300 ms blocked in the pool; timers ticked every 10 ms meanwhile (generous bound). */
    assert_true(c.ticks_during >= 10);
    co_task_unref(tk);
    co_task_unref(tt);
}

typedef struct queued_case {
    int ran, status, next;
} queued_case;

static int queued_body(void *arg)
{
    queued_case *q = arg;
    q->status = co_to_thread(block_300ms, &q->ran);
    q->next = co_sleep(0);
    return 0;
}

static void test_to_thread_cancel(void **state)
{
    co_env *e = *state;
    /* libuv's pool has 4 threads: 4 blockers occupy it, so a 5th call stays queued. */
    queued_case q[5];
    memset(q, 0, sizeof q);
    co_task *t[5];
    for (int i = 0; i < 5; i++)
        co_spawn(e->s, queued_body, &q[i], NULL, &t[i]);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    usleep(50000); /* let the pool pick up the first four */
    co_task_cancel(t[4], NULL); /* queued: dropped, never runs */
    co_task_cancel(t[0], NULL); /* running: finishes; the cancel lands at the next await */
    for (int i = 0; i < 5; i++)
        co_sched_run_until(e->s, co_task_future(t[i]));
    assert_int_equal(q[4].status, -ECANCELED);
    assert_int_equal(q[4].ran, 0);
    assert_int_equal(q[0].status, 0);
    assert_int_equal(q[0].ran, 1);
    assert_int_equal(q[0].next, -ECANCELED);
    assert_int_equal(q[1].next, 0);
    for (int i = 0; i < 5; i++)
        co_task_unref(t[i]);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, co_env_setup, co_env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_wait_fd_readable),
        T(test_wait_fd_errors),
        T(test_process_exit_and_signal),
        T(test_abandoned_process_is_reaped),
        T(test_to_thread_keeps_loop_running),
        T(test_to_thread_cancel),
    };
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
