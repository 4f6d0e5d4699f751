/* daemon_harness.h: start a real corod on a private socket and state directory (in a
 * fresh temporary directory, traversable by other uids so the ownership tests can reach
 * the socket), connect to it, and stop it with SIGTERM, checking it exits 0. */
#ifndef DAEMON_HARNESS_H
#define DAEMON_HARNESS_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "corod/client.h"

typedef struct daemon_h {
    pid_t pid;
    char dir[64];
    char sock[128];
    char state[128];
} daemon_h;

static inline double h_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* extra: NULL-terminated extra arguments for corod. Returns 0 or -1. */
static inline int daemon_start(daemon_h *d, const char *const *extra)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/corod-it-XXXXXX");
    if (!mkdtemp(d->dir))
        return -1;
    chmod(d->dir, 0755);
    snprintf(d->sock, sizeof d->sock, "%s/corod.sock", d->dir);
    snprintf(d->state, sizeof d->state, "%s/state", d->dir);
    const char *argv[32] = { COROD_BIN, "--socket", d->sock, "--state-dir", d->state };
    int n = 5;
    for (; extra && *extra && n < 30; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        execv(COROD_BIN, (char *const *)argv);
        _exit(127);
    }
    /* Ready when hello answers. */
    for (int i = 0; i < 500; i++) {
        corod_client *c;
        if (corod_connect(d->sock, &c) == 0) {
            int rc = corod_hello(c, "harness", NULL, NULL);
            corod_close(c);
            if (rc == 0)
                return 0;
        }
        usleep(10000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    return -1;
}

/* SIGTERM; returns the exit status (or -1 if it did not exit within 10 s). */
static inline int daemon_stop(daemon_h *d)
{
    kill(d->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid) {
            char cmd[160];
            snprintf(cmd, sizeof cmd, "rm -rf %s", d->dir);
            if (system(cmd) != 0)
                fprintf(stderr, "harness: could not remove %s\n", d->dir);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    return -1;
}

static inline corod_client *h_connect(daemon_h *d)
{
    corod_client *c = NULL;
    if (corod_connect(d->sock, &c) < 0)
        return NULL;
    return c;
}

/* A group of cmocka tests sharing one daemon, started before and stopped after them. */
static daemon_h shared __attribute__((unused));

static inline int shared_up(void **state)
{
    (void)state;
    return daemon_start(&shared, NULL);
}

static inline int shared_down(void **state)
{
    (void)state;
    return daemon_stop(&shared) == 0 ? 0 : -1;
}

#endif
