/* ex_spawn.c: clone(CLONE_VM | CLONE_VFORK) and the child's few steps before execve.
 * The child shares the caller's memory: it touches only its own stack and the ex_child
 * block, calls only system calls and pure string functions, and never returns. A failed
 * step is reported through a close-on-exec pipe (valgrind runs CLONE_VFORK children as
 * forks, so shared memory would not carry the report there). */
#include "ex_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#define EX_CHILD_STACK (64u * 1024u)

enum ex_stage { EX_OK, EX_SETSID, EX_STDIO, EX_GROUPS, EX_GID, EX_UID, EX_CWD, EX_EXEC };

typedef struct ex_report {
    int stage, err;
} ex_report;

typedef struct ex_child {
    const ex_spawn_req *rq;
    const char *path; /* PATH to search */
    int report_fd;    /* write end of the report pipe */
    char buf[PATH_MAX];
} ex_child;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EX_NO_ASAN __attribute__((no_sanitize("address")))
#endif
#endif
#ifndef EX_NO_ASAN
#if defined(__SANITIZE_ADDRESS__)
#define EX_NO_ASAN __attribute__((no_sanitize_address))
#else
#define EX_NO_ASAN
#endif
#endif

/* Child side. Not instrumented by ASan: its frames live on a borrowed stack whose shadow
 * the parent would later see as poisoned. */
EX_NO_ASAN __attribute__((noreturn)) static void ex_child_fail(ex_child *c, int stage)
{
    ex_report r = { stage, errno };
    ssize_t n;
    do
        n = write(c->report_fd, &r, sizeof r);
    while (n < 0 && errno == EINTR);
    _exit(127);
}

EX_NO_ASAN static void ex_child_exec(ex_child *c)
{
    char *const *argv = c->rq->argv;
    const char *file = argv[0];
    if (strchr(file, '/')) {
        execve(file, argv, c->rq->envp);
        return;
    }
    /* execvp's search, over the job's own PATH: an empty entry is the current directory;
     * EACCES is remembered while later entries are tried. */
    size_t flen = strlen(file);
    bool eacces = false;
    for (const char *p = c->path;; p++) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        if (dlen + 1 + flen + 1 <= sizeof c->buf) {
            size_t o = 0;
            if (dlen) {
                memcpy(c->buf, p, dlen);
                c->buf[dlen] = '/';
                o = dlen + 1;
            }
            memcpy(c->buf + o, file, flen + 1);
            execve(c->buf, argv, c->rq->envp);
            switch (errno) {
            case EACCES:
                eacces = true;
                break;
            case ENOENT: case ENOTDIR: case ELOOP: case ENAMETOOLONG: case ESTALE: case ENODEV:
            case ETIMEDOUT:
                break;
            default:
                return; /* a real failure of an existing file: report it */
            }
        }
        if (!end)
            break;
        p = end;
    }
    errno = eacces ? EACCES : ENOENT;
}

EX_NO_ASAN static int ex_child_main(void *arg)
{
    ex_child *c = arg;
    const ex_spawn_req *rq = c->rq;
    /* A report pipe on 0..2 (a daemon started with stdio closed) would be overwritten. */
    if (c->report_fd < 3 && (c->report_fd = fcntl(c->report_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        _exit(127);

    /* The daemon's handlers and mask are not the job's: default dispositions (SIGPIPE
     * is ignored in the daemon, and an ignored signal would stay ignored across exec),
     * nothing blocked (thread-pool threads block every signal). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL); /* glibc's reserved signals answer EINVAL: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Its own session, so it leads a process group that a cancel can signal whole. */
    if (setsid() < 0)
        ex_child_fail(c, EX_SETSID);

    int fds[3] = { rq->stdin_fd, rq->stdout_fd, rq->stderr_fd };
    if (fds[0] < 0 && (fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        ex_child_fail(c, EX_STDIO);
    /* Move sources that sit on 0..2 out of the way before any dup2 lands there. */
    for (int i = 0; i < 3; i++)
        if (fds[i] < 3 && fds[i] != i && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
            ex_child_fail(c, EX_STDIO);
    for (int i = 0; i < 3; i++) {
        if (fds[i] == i) {
            if (fcntl(i, F_SETFD, 0) < 0)
                ex_child_fail(c, EX_STDIO);
        } else if (dup2(fds[i], i) < 0) {
            ex_child_fail(c, EX_STDIO);
        }
    }
    /* Everything the daemon opens is close-on-exec; this also covers what a library
     * might have opened without it. The report pipe must survive until exec. */
    if (c->report_fd > 3)
        syscall(SYS_close_range, 3, (unsigned)c->report_fd - 1, 0);
    syscall(SYS_close_range, (unsigned)c->report_fd + 1, ~0u, 0);

    /* The daemon may run at another nice value than it started with (--nice); the job gets
     * back the one it started with. Best effort: an unprivileged daemon that raised its
     * own cannot lower a job's again, and the job then runs at the daemon's. Likewise the
     * soft limit on descriptors, which the daemon raised. */
    const ex_restore *rs = rq->restore;
    if (rs && rs->nice_set)
        syscall(SYS_setpriority, PRIO_PROCESS, 0, rs->nice);
    if (rs && rs->nofile_set)
        syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &rs->nofile, NULL);
    if (rq->set_ids) {
        /* Raw system calls: glibc's wrappers would broadcast to the daemon's threads,
         * whose memory this child shares. */
        if (syscall(SYS_setgroups, rq->ngroups, rq->groups) < 0)
            ex_child_fail(c, EX_GROUPS);
        if (syscall(SYS_setresgid, rq->gid, rq->gid, rq->gid) < 0)
            ex_child_fail(c, EX_GID);
        if (syscall(SYS_setresuid, rq->uid, rq->uid, rq->uid) < 0)
            ex_child_fail(c, EX_UID);
    }
    /* If the daemon is killed outright, its jobs go with it rather than run unsupervised.
     * (Set after the uid change, which clears it.) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);

    if (rq->cwd && chdir(rq->cwd) < 0)
        ex_child_fail(c, EX_CWD);
    ex_child_exec(c);
    ex_child_fail(c, EX_EXEC);
}

/* ---- parent side ---- */

static const char *ex_envp_path(char *const *envp)
{
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            return *e + 5;
    return EX_DEFAULT_PATH;
}

static void ex_describe(const ex_spawn_req *rq, const ex_report *r, char *errbuf, size_t errlen)
{
    const char *why = strerror(r->err);
    switch (r->stage) {
    case EX_SETSID: snprintf(errbuf, errlen, "cannot start a new session: %s", why); break;
    case EX_STDIO: snprintf(errbuf, errlen, "cannot set up standard input and output: %s", why); break;
    case EX_GROUPS: snprintf(errbuf, errlen, "cannot set the supplementary groups: %s", why); break;
    case EX_GID: snprintf(errbuf, errlen, "cannot change to gid %u: %s", (unsigned)rq->gid, why); break;
    case EX_UID: snprintf(errbuf, errlen, "cannot change to uid %u: %s", (unsigned)rq->uid, why); break;
    case EX_CWD: snprintf(errbuf, errlen, "cannot change to directory %s: %s", rq->cwd, why); break;
    default:
        if (r->err == ENOENT && !strchr(rq->argv[0], '/'))
            snprintf(errbuf, errlen, "cannot execute \"%s\": not found in PATH", rq->argv[0]);
        else
            snprintf(errbuf, errlen, "cannot execute \"%s\": %s", rq->argv[0], why);
    }
}

static void ex_wait_gone(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

int ex_spawn(const ex_spawn_req *rq, ex_spawned *out, char *errbuf, size_t errlen)
{
    if (!rq->argv || !rq->argv[0] || (rq->set_ids && rq->ngroups > EX_MAX_GROUPS)) {
        snprintf(errbuf, errlen, "invalid spawn request");
        return -EINVAL;
    }
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(errbuf, errlen, "cannot start a process: %s", strerror(e));
        return -e;
    }
    ex_child *c = malloc(sizeof *c);
    char *stack = malloc(EX_CHILD_STACK);
    if (!c || !stack) {
        free(c);
        free(stack);
        close(rp[0]);
        close(rp[1]);
        snprintf(errbuf, errlen, "cannot start a process: out of memory");
        return -ENOMEM;
    }
    c->rq = rq;
    c->path = ex_envp_path(rq->envp);
    c->report_fd = rp[1];

    /* No signal handler may run in the child while it shares our memory. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(ex_child_main, stack + EX_CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    int cerr = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(rp[1]);
    free(stack);
    free(c);
    if (pid < 0) {
        close(rp[0]);
        snprintf(errbuf, errlen, "cannot start a process: %s", strerror(cerr));
        return -cerr;
    }
    /* EOF: it exec'd. A report: it failed and has exited. */
    ex_report r = { EX_OK, 0 };
    ssize_t n;
    do
        n = read(rp[0], &r, sizeof r);
    while (n < 0 && errno == EINTR);
    close(rp[0]);
    if (n == (ssize_t)sizeof r) {
        ex_wait_gone(pid);
        ex_describe(rq, &r, errbuf, errlen);
        return r.err ? -r.err : -EIO;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0 && errno == ENOSYS) {
        /* Before Linux 5.3 (and under valgrind, which does not know the call): the caller
         * polls with ex_exited instead. */
        out->pid = pid;
        out->pidfd = -1;
        return 0;
    }
    if (pidfd < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        ex_wait_gone(pid);
        snprintf(errbuf, errlen, "cannot watch the started process: %s", strerror(e));
        return -e;
    }
    out->pid = pid;
    out->pidfd = pidfd;
    return 0;
}

int ex_reap(pid_t pid, int *status, struct rusage *ru)
{
    pid_t r;
    do
        r = wait4(pid, status, WNOHANG, ru);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == 0 ? -EAGAIN : 0;
}

bool ex_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    /* WNOWAIT: look, do not reap (ex_reap does, with the resource usage). */
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}
