/* ex_run.c: run a helper program from a coroutine and keep what it says. */
#include "ex_run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "co_await.h"
#include "co_io.h"

/* Awaits fd's readiness; a cancel is noted and the wait goes on (the helper is short and
 * killed at its deadline, so nothing waits forever). -ETIMEDOUT once `until` passes. */
static int ex_run_wait(int fd, double left, ex_run_result *res)
{
    for (;;) {
        if (left <= 0)
            return -ETIMEDOUT;
        int rc = co_wait_fd(fd, UV_READABLE, left);
        if (rc > 0 || rc == -ETIMEDOUT)
            return rc > 0 ? 0 : rc;
        if (rc == -ECANCELED) {
            res->cancelled = true;
            continue;
        }
        co_sleep(0.01); /* the fd could not be watched (out of memory): look again */
        left -= 0.01;
    }
}

static double ex_run_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ex_run(const ex_run_req *rq, ex_run_result *res)
{
    memset(res, 0, sizeof *res);
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        int rc = -errno;
        snprintf(res->out, sizeof res->out, "cannot make a pipe: %s", strerror(-rc));
        return rc;
    }
    const ex_ident *id = rq->as;
    ex_spawn_req sr = {
        .argv = rq->argv, .envp = rq->envp, .cwd = "/", .stdin_fd = -1, .stdout_fd = p[1], .stderr_fd = p[1],
        .set_ids = id && getuid() == 0 && id->uid != 0, .uid = id ? id->uid : 0, .gid = id ? id->gid : 0,
        .groups = id ? id->groups : NULL, .ngroups = id ? id->ngroups : 0,
    };
    double deadline = ex_run_now() + rq->timeout;
    ex_spawning *sg;
    ex_spawned sp = { .pid = -1, .pidfd = -1 };
    int rc = ex_spawn_start(&sr, &sg, res->out, sizeof res->out);
    close(p[1]);
    if (rc < 0) {
        close(p[0]);
        return rc;
    }
    bool killed = false;
    if (ex_run_wait(ex_spawning_fd(sg), deadline - ex_run_now(), res) == -ETIMEDOUT) {
        kill(ex_spawning_pid(sg), SIGKILL);
        killed = true;
        ex_run_wait(ex_spawning_fd(sg), 5.0, res); /* SIGKILL is not refused */
    }
    char why[256];
    rc = ex_spawn_finish(sg, &sp, why, sizeof why);
    /* Read to EOF (every holder of the write end gone) or the deadline. */
    while (!killed) {
        char buf[1024];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n > 0) {
            size_t room = sizeof res->out - 1 - res->len, take = (size_t)n < room ? (size_t)n : room;
            memcpy(res->out + res->len, buf, take);
            res->len += take;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            break;
        if (errno == EAGAIN && ex_run_wait(p[0], deadline - ex_run_now(), res) == -ETIMEDOUT) {
            kill(sp.pid, SIGKILL);
            killed = true;
        }
    }
    close(p[0]);
    res->out[res->len] = '\0';
    /* It has exited, or is killed now: reap it (briefly, by polling: it is ours). */
    if (!killed && sp.pidfd >= 0 && ex_run_wait(sp.pidfd, deadline - ex_run_now(), res) == -ETIMEDOUT) {
        kill(sp.pid, SIGKILL);
        killed = true;
    }
    if (sp.pidfd >= 0)
        close(sp.pidfd);
    int st = 0, r;
    while ((r = ex_reap(sp.pid, &st, NULL)) == -EAGAIN) {
        if (!killed && ex_run_now() > deadline) {
            kill(sp.pid, SIGKILL);
            killed = true;
        }
        co_sleep(0.002);
    }
    if (rc < 0) {
        snprintf(res->out, sizeof res->out, "%s", why);
        res->len = strlen(res->out);
        return rc;
    }
    res->status = st;
    if (killed) {
        snprintf(res->out, sizeof res->out, "%s did not end within %g s, and was killed", rq->argv[0], rq->timeout);
        res->len = strlen(res->out);
        return -ETIMEDOUT;
    }
    return r < 0 ? r : 0;
}
