/* ex_spawn.c: the clone and the child's few steps before execve.
 *
 * The child shares the daemon's memory until it execs (CLONE_VM: no page tables copied).
 * It touches only its own stack and the ex_child block, makes only raw system calls
 * (ex_sys.h: glibc's wrappers would write errno into the loop thread, which keeps running
 * meanwhile) and copies with its own loops (ASan's interceptors keep per-thread state),
 * and never returns. A failed step is reported through a close-on-exec pipe, whose end of
 * file says the exec happened: the caller learns of either by polling it, so it never
 * waits for the child — for its PATH search, its chdir, or for a child its owner stopped.
 *
 * Where raw calls are not available, and under valgrind (which runs CLONE_VM children
 * only as threads or, with CLONE_VFORK, as forks), the clone waits for the exec as
 * posix_spawn does. */
#include "ex_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ex_sys.h"

#ifdef CORO_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define EX_CHILD_STACK (64u * 1024u)

enum ex_stage { EX_OK, EX_SETSID, EX_STDIO, EX_CGROUP, EX_RLIMIT, EX_GROUPS, EX_GID, EX_UID, EX_CWD, EX_EXEC };

typedef struct ex_report {
    int stage, err;
    int which; /* EX_RLIMIT: the limit */
} ex_report;

typedef struct ex_child {
    const ex_spawn_req *rq;
    const char *path; /* PATH to search */
    int report_fd;    /* write end of the report pipe */
    int which;        /* the rlimit that could not be set */
    char buf[PATH_MAX];
} ex_child;

struct ex_spawning {
    ex_child *c;
    char *stack;
    int fd;  /* the report pipe's read end */
    pid_t pid;
};

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

EX_NO_ASAN static size_t ex_len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

EX_NO_ASAN static bool ex_has(const char *s, char ch)
{
    for (; *s; s++)
        if (*s == ch)
            return true;
    return false;
}

EX_NO_ASAN static void ex_copy(char *d, const char *s, size_t n)
{
    while (n--)
        *d++ = *s++;
}

EX_NO_ASAN __attribute__((noreturn)) static void ex_child_fail(ex_child *c, int stage, long err)
{
    ex_report r = { stage, (int)-err, c->which };
    while (ex_sys(SYS_write, c->report_fd, &r, sizeof r) == -EINTR) {
    }
    for (;;)
        ex_sys(SYS_exit_group, 127, 0, 0);
}

/* execve, or for a name without '/' execvp's search over the job's own PATH: an empty
 * entry is the current directory; EACCES is remembered while later entries are tried.
 * Returns the error to report. */
EX_NO_ASAN static long ex_child_exec(ex_child *c)
{
    char *const *argv = c->rq->argv;
    char *const *envp = c->rq->envp;
    const char *file = argv[0];
    if (ex_has(file, '/'))
        return ex_sys(SYS_execve, file, argv, envp);
    size_t flen = ex_len(file);
    bool eacces = false;
    for (const char *p = c->path;;) {
        const char *end = p;
        while (*end && *end != ':')
            end++;
        size_t dlen = (size_t)(end - p);
        if (dlen + 1 + flen + 1 <= sizeof c->buf) {
            size_t o = 0;
            if (dlen) {
                ex_copy(c->buf, p, dlen);
                c->buf[dlen] = '/';
                o = dlen + 1;
            }
            ex_copy(c->buf + o, file, flen + 1);
            long rc = ex_sys(SYS_execve, c->buf, argv, envp);
            switch (-rc) {
            case EACCES:
                eacces = true;
                break;
            case ENOENT: case ENOTDIR: case ELOOP: case ENAMETOOLONG: case ESTALE: case ENODEV:
            case ETIMEDOUT:
                break;
            default:
                return rc; /* a real failure of an existing file: report it */
            }
        }
        if (!*end)
            break;
        p = end + 1;
    }
    return eacces ? -EACCES : -ENOENT;
}

EX_NO_ASAN static int ex_child_main(void *arg)
{
    ex_child *c = arg;
    const ex_spawn_req *rq = c->rq;
    long rc;
    /* A report pipe on 0..2 (a daemon started with stdio closed) would be overwritten;
     * on 3 too, when the child is to have a descriptor 3. */
    int first = rq->fd3 > 2 ? 4 : 3;
    if (c->report_fd < first) {
        if ((rc = ex_sys(SYS_fcntl, c->report_fd, F_DUPFD_CLOEXEC, first)) < 0)
            for (;;)
                ex_sys(SYS_exit_group, 127, 0, 0);
        c->report_fd = (int)rc;
    }

    /* The daemon's handlers and mask are not the job's: default dispositions (SIGPIPE
     * is ignored in the daemon, and an ignored signal would stay ignored across exec),
     * nothing blocked (the parent blocked everything around the clone). The kernel's
     * sigaction starts with the handler on every architecture: zeros are SIG_DFL. */
    struct {
        unsigned long words[4];
    } dfl = { { 0, 0, 0, 0 } };
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP)
            ex_sys6(SYS_rt_sigaction, s, (long)&dfl, 0, 8, 0, 0);
    unsigned long none = 0;
    ex_sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8, 0, 0);

    /* Its own session, so it leads a process group that a cancel can signal whole. */
    if ((rc = ex_sys(SYS_setsid, 0, 0, 0)) < 0)
        ex_child_fail(c, EX_SETSID, rc);
    /* Into its own cgroup, first (its descriptor is closed with the others below) and
     * while still root (a root daemon's job cgroups are root's): writing 0 moves the
     * writer, before anything of the owner's runs. */
    if (rq->in_cgroup && (rc = ex_sys(SYS_write, rq->cgroup_procs_fd, (long)"0", 1)) < 0)
        ex_child_fail(c, EX_CGROUP, rc);

    int fds[4] = { rq->stdin_fd, rq->stdout_fd, rq->stderr_fd, rq->fd3 };
    int nfds = rq->fd3 > 2 ? 4 : 3;
    if (fds[0] < 0) {
        if ((rc = ex_sys6(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC, 0, 0, 0)) < 0)
            ex_child_fail(c, EX_STDIO, rc);
        fds[0] = (int)rc;
    }
    /* Move sources that sit on 0..nfds-1 out of the way before any dup lands there. */
    for (int i = 0; i < nfds; i++)
        if (fds[i] < nfds && fds[i] != i) {
            if ((rc = ex_sys(SYS_fcntl, fds[i], F_DUPFD_CLOEXEC, nfds)) < 0)
                ex_child_fail(c, EX_STDIO, rc);
            fds[i] = (int)rc;
        }
    for (int i = 0; i < nfds; i++) {
        rc = fds[i] == i ? ex_sys(SYS_fcntl, i, F_SETFD, 0) : ex_sys(SYS_dup3, fds[i], i, 0);
        if (rc < 0)
            ex_child_fail(c, EX_STDIO, rc);
    }
    /* Everything the daemon opens is close-on-exec; this also covers what a library
     * might have opened without it. The report pipe must survive until exec. */
    if (c->report_fd > nfds)
        ex_sys(SYS_close_range, (unsigned)nfds, (unsigned)c->report_fd - 1, 0);
    ex_sys(SYS_close_range, (unsigned)c->report_fd + 1, ~0u, 0);

    /* The daemon may run at another nice value than it started with (--nice); the job gets
     * back the one it started with. Best effort: an unprivileged daemon that raised its
     * own cannot lower a job's again, and the job then runs at the daemon's. Likewise the
     * soft limit on descriptors, which the daemon raised. */
    const ex_restore *rs = rq->restore;
    if (rs && rs->nice_set)
        ex_sys(SYS_setpriority, PRIO_PROCESS, 0, rs->nice);
    if (rs && rs->nofile_set)
        ex_sys6(SYS_prlimit64, 0, RLIMIT_NOFILE, (long)&rs->nofile, 0, 0, 0);

    /* Its own limits, also before the uid changes: raising a hard limit takes root. */
    const ex_limits *lim = rq->limits;
    for (int i = 0; lim && i < EX_RLIM_COUNT; i++)
        if (lim->rlim_set[i] &&
            (rc = ex_sys6(SYS_prlimit64, 0, ex_rlimit_resource[i], (long)&lim->rlim[i], 0, 0, 0)) < 0) {
            c->which = i;
            ex_child_fail(c, EX_RLIMIT, rc);
        }
    ex_sys(SYS_umask, lim && lim->umask >= 0 ? lim->umask : EX_UMASK_DEFAULT, 0, 0);
    if (rq->set_ids) {
        if ((rc = ex_sys(SYS_setgroups, rq->ngroups, rq->groups, 0)) < 0)
            ex_child_fail(c, EX_GROUPS, rc);
        if ((rc = ex_sys(SYS_setresgid, rq->gid, rq->gid, rq->gid)) < 0)
            ex_child_fail(c, EX_GID, rc);
        if ((rc = ex_sys(SYS_setresuid, rq->uid, rq->uid, rq->uid)) < 0)
            ex_child_fail(c, EX_UID, rc);
    }
    /* If the daemon is killed outright, its jobs go with it rather than run unsupervised.
     * (Set after the uid change, which clears it.) */
    ex_sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);

    if (rq->cwd && (rc = ex_sys(SYS_chdir, rq->cwd, 0, 0)) < 0)
        ex_child_fail(c, EX_CWD, rc);
    ex_child_fail(c, EX_EXEC, ex_child_exec(c));
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
    case EX_CGROUP: snprintf(errbuf, errlen, "cannot join the job's cgroup: %s", why); break;
    case EX_RLIMIT: {
        int w = r->which >= 0 && r->which < EX_RLIM_COUNT && rq->limits ? r->which : -1;
        if (w < 0)
            snprintf(errbuf, errlen, "cannot set a limit: %s", why);
        else
            snprintf(errbuf, errlen, "cannot set its %s limit to %llu:%llu: %s", ex_rlimit_name[w],
                     (unsigned long long)rq->limits->rlim[w].rlim_cur,
                     (unsigned long long)rq->limits->rlim[w].rlim_max, why);
        break;
    }
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

/* Whether a clone may go on without waiting for the child's exec (see the top). */
static bool ex_async(void)
{
    return EX_SYS_RAW && !RUNNING_ON_VALGRIND;
}

static void ex_spawning_free(ex_spawning *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->stack);
    free(s->c);
    free(s);
}

int ex_spawn_start(const ex_spawn_req *rq, ex_spawning **out, char *errbuf, size_t errlen)
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
    ex_spawning *s = calloc(1, sizeof *s);
    if (s) {
        s->fd = rp[0];
        s->c = malloc(sizeof *s->c);
        s->stack = malloc(EX_CHILD_STACK);
    }
    if (!s || !s->c || !s->stack) {
        if (s)
            ex_spawning_free(s);
        else
            close(rp[0]);
        close(rp[1]);
        snprintf(errbuf, errlen, "cannot start a process: out of memory");
        return -ENOMEM;
    }
    s->c->rq = rq;
    s->c->path = ex_envp_path(rq->envp);
    s->c->report_fd = rp[1];
    s->c->which = -1;

    /* No signal handler may run in the child while it shares our memory. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int flags = CLONE_VM | SIGCHLD | (ex_async() ? 0 : CLONE_VFORK);
    s->pid = clone(ex_child_main, s->stack + EX_CHILD_STACK, flags, s->c);
    int cerr = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(rp[1]); /* the child's copy is the last: end of file once it exec'd or died */
    if (s->pid < 0) {
        ex_spawning_free(s);
        snprintf(errbuf, errlen, "cannot start a process: %s", strerror(cerr));
        return -cerr;
    }
    *out = s;
    return 0;
}

int ex_spawning_fd(const ex_spawning *s) { return s->fd; }
pid_t ex_spawning_pid(const ex_spawning *s) { return s->pid; }

int ex_spawn_finish(ex_spawning *s, ex_spawned *out, char *errbuf, size_t errlen)
{
    /* End of file: it exec'd (or died without a word: killed). A report: it failed. */
    ex_report r = { EX_OK, 0, -1 };
    ssize_t n;
    do
        n = read(s->fd, &r, sizeof r);
    while (n < 0 && errno == EINTR);
    const ex_spawn_req *rq = s->c->rq;
    out->pid = s->pid;
    out->pidfd = -1;
    int rc = 0;
    if (n == (ssize_t)sizeof r) {
        ex_describe(rq, &r, errbuf, errlen);
        rc = r.err ? -r.err : -EIO;
    } else {
        int pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
        if (pidfd >= 0) {
            out->pidfd = pidfd;
        } else if (errno != ENOSYS) {
            /* Before Linux 5.3 (and under valgrind, which does not know the call) the
             * caller polls with ex_exited instead; any other failure is one. */
            rc = -errno;
            snprintf(errbuf, errlen, "cannot watch the started process: %s", strerror(-rc));
        }
    }
    ex_spawning_free(s);
    return rc;
}

int ex_spawn(const ex_spawn_req *rq, ex_spawned *out, char *errbuf, size_t errlen)
{
    ex_spawning *s;
    int rc = ex_spawn_start(rq, &s, errbuf, errlen);
    if (rc < 0)
        return rc;
    pid_t pid = s->pid;
    if ((rc = ex_spawn_finish(s, out, errbuf, errlen)) < 0) {
        kill(pid, SIGKILL); /* it failed and is on its way out: make sure, then reap */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    return rc;
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
