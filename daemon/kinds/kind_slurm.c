/* kind_slurm.c: the Slurm side of an exec job — its srun command line, the prolog's pipe,
 * scancel and scontrol. Every program here runs as the job's owner: Slurm (through munge)
 * then lets it touch only the owner's jobs, whatever id the prolog's line claimed. */
#include "kind_slurm.h"
#include "kind.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "co_await.h"
#include "co_io.h"
#include "ex_run.h"

static void kslurm_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* PATH for the tools (they are named by absolute paths; their own children are not), and
 * the cluster's slurm.conf. One allocation. */
char **kslurm_env(const ex_slurm *s)
{
    const char *path = "PATH=" EX_DEFAULT_ROOT_PATH;
    size_t conf = s->conf ? strlen(s->conf) + sizeof "SLURM_CONF=" : 0;
    char **v = malloc(3 * sizeof *v + strlen(path) + 1 + conf);
    if (!v)
        return NULL;
    char *p = (char *)(v + 3);
    size_t k = 0;
    strcpy(p, path);
    v[k++] = p;
    p += strlen(path) + 1;
    if (s->conf) {
        snprintf(p, conf, "SLURM_CONF=%s", s->conf);
        v[k++] = p;
    }
    v[k] = NULL;
    return v;
}

int kslurm_prepare(kslurm *k, char *const *argv, char *const *envp, char *err, size_t len)
{
    int p[2];
    if (!(k->argv = ex_slurm_argv(k->tools, k->s, &k->over, k->name, argv)) ||
        !(k->envp = ex_slurm_env(k->s, envp)) || !(k->run_env = kslurm_env(k->s))) {
        snprintf(err, len, "out of memory");
        return -ENOMEM;
    }
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        int rc = -errno;
        snprintf(err, len, "cannot make a pipe: %s", strerror(-rc));
        return rc;
    }
    k->rd = p[0];
    k->wr = p[1];
    return 0;
}

/* The prolog's one line: the job id and its nodes. Ends at the line, at EOF (srun has
 * exited), or when cancelled. */
static int kslurm_read(void *arg)
{
    kslurm *k = arg;
    char buf[EX_SLURM_NODES_MAX + 64];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(k->rd, buf + len, sizeof buf - len);
        if (n > 0) {
            len += (size_t)n;
            if (memchr(buf, '\n', len) || len == sizeof buf)
                break;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            return 0;
        if (errno == EAGAIN && co_wait_fd(k->rd, UV_READABLE, -1) == -ECANCELED)
            return 0;
    }
    if (ex_slurm_prolog_parse(buf, len, &k->job, k->nodes, sizeof k->nodes) == 0 && k->hooks && k->hooks->slurm)
        k->hooks->slurm(k->hooks_arg, k->id, k->job, k->nodes);
    return 0;
}

void kslurm_spawned(kslurm *k, co_sched *sched)
{
    kslurm_close(&k->wr);
    co_task_opts o = { .id = k->id, .name = "slurm prolog reader" };
    if (co_spawn(sched, kslurm_read, k, &o, &k->reader) < 0)
        k->reader = NULL; /* out of memory: the job runs, its id unknown (scancel by name) */
}

int kslurm_scancel(const ex_slurm_tools *tools, const ex_ident *as, char *const *env, uint64_t job,
                   const char *name, const char *opt, ex_run_result *res)
{
    char id[24], byname[96], user[32];
    const char *argv[8];
    size_t n = 0;
    argv[n++] = tools->scancel;
    argv[n++] = "--quiet";
    if (opt)
        argv[n++] = opt;
    if (job) {
        snprintf(id, sizeof id, "%llu", (unsigned long long)job);
        argv[n++] = id;
    } else {
        snprintf(byname, sizeof byname, "--name=%s", name);
        snprintf(user, sizeof user, "--user=%u", (unsigned)as->uid);
        argv[n++] = byname;
        argv[n++] = user;
    }
    argv[n] = NULL;
    ex_run_req rq = { .argv = (char *const *)argv, .envp = env, .as = as, .timeout = KSLURM_RUN_TIMEOUT };
    int rc = ex_run(&rq, res);
    if (rc == 0 && !(WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0))
        rc = -EIO;
    return rc;
}



int kslurm_cancel(kslurm *k, int sig, bool full)
{
    ex_run_result *res = malloc(sizeof *res); /* 4 KiB: not on a coroutine's stack */
    if (!res)
        return -ENOMEM;
    char signame[32];
    snprintf(signame, sizeof signame, "--signal=%d", sig);
    /* A job without an id has not started (or its prolog line is on its way): there is
     * nothing to be gentle with, so it is cancelled outright. */
    int rc = kslurm_scancel(k->tools, k->ident, k->run_env, k->job, k->name, full || !k->job ? NULL : signame, res);
    free(res);
    return rc;
}

/* ---- a signal from the loop ---- */

/* The `signal` method answers at once, so its scancel runs in a coroutine of its own. One
 * at a time per job: each is a process and two descriptors of the daemon's, and a uid
 * asking again and again must not spawn them without bound. The flag outlives whichever
 * of the job and the coroutine ends first. */
struct kslurm_busy {
    unsigned refs;
    bool busy;
};

static void kslurm_busy_put(kslurm_busy *b)
{
    if (b && --b->refs == 0)
        free(b);
}

typedef struct kslurm_sig {
    char *argv[5];
    char **env;
    ex_ident *ident;
    kslurm_busy *busy;
    char buf[2][32];
} kslurm_sig;

static void kslurm_sig_free(kslurm_sig *ks)
{
    ks->busy->busy = false;
    kslurm_busy_put(ks->busy);
    ex_ident_put(ks->ident);
    free(ks->env);
    free(ks);
}

static int kslurm_sig_run(void *arg)
{
    kslurm_sig *ks = arg;
    ex_run_result *res = malloc(sizeof *res);
    if (res) {
        ex_run_req rq = { .argv = ks->argv, .envp = ks->env, .as = ks->ident, .timeout = KSLURM_RUN_TIMEOUT };
        ex_run(&rq, res);
        free(res);
    }
    kslurm_sig_free(ks);
    return 0;
}

int kslurm_signal(kslurm *k, co_sched *sched, int sig)
{
    if (!k->job)
        return -EAGAIN;
    if (!k->busy && (k->busy = calloc(1, sizeof *k->busy)))
        k->busy->refs = 1;
    if (!k->busy)
        return -ENOMEM;
    if (k->busy->busy)
        return -EBUSY;
    kslurm_sig *ks = calloc(1, sizeof *ks);
    if (!ks || !(ks->env = kslurm_env(k->s))) {
        free(ks);
        return -ENOMEM;
    }
    snprintf(ks->buf[0], sizeof ks->buf[0], "--signal=%d", sig);
    snprintf(ks->buf[1], sizeof ks->buf[1], "%llu", (unsigned long long)k->job);
    ks->argv[0] = (char *)k->tools->scancel; /* the daemon's, for its whole life */
    ks->argv[1] = "--quiet";
    ks->argv[2] = ks->buf[0];
    ks->argv[3] = ks->buf[1];
    ks->argv[4] = NULL;
    ks->ident = ex_ident_ref((ex_ident *)k->ident);
    ks->busy = k->busy;
    ks->busy->refs++;
    ks->busy->busy = true;
    co_task_opts o = { .id = k->id, .name = "scancel --signal" };
    int rc = co_spawn(sched, kslurm_sig_run, ks, &o, NULL);
    if (rc < 0)
        kslurm_sig_free(ks);
    return rc;
}

/* ---- its end ---- */

void kslurm_finish(kslurm *k, int status, bool said_something, bool stopped)
{
    if (k->reader) {
        co_future *f = co_task_future(k->reader);
        if (co_wait(&f, 1, CO_ALL_COMPLETED, 1.0) != 0 || !co_future_done(f)) {
            co_task_cancel(k->reader, NULL);
            while (!co_future_done(f))
                co_wait(&f, 1, CO_ALL_COMPLETED, -1);
        }
        co_task_unref(k->reader);
        k->reader = NULL;
    }
    kslurm_close(&k->rd);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !said_something;
    if (WIFSIGNALED(status)) {
        /* srun was killed (by its owner, the OOM killer): its job would run on unseen. The
         * outcome is srun's death; what Slurm then records is the cancel. */
        kslurm_cancel(k, SIGKILL, true);
        return;
    }
    if (clean || stopped || !k->job) /* a job corod stopped ends cancelled, however Slurm saw it */
        return;
    /* srun's own status cannot tell a node failure (it exits 0), a preemption or Slurm's
     * time limit (128+SIGTERM) from the program's doing: Slurm's record of the job can. */
    ex_run_result *res = malloc(sizeof *res);
    if (!res)
        return;
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)k->job);
    char *argv[] = { (char *)k->tools->scontrol, "-o", "show", "job", id, NULL };
    ex_run_req rq = { .argv = argv, .envp = k->run_env, .as = k->ident, .timeout = KSLURM_RUN_TIMEOUT };
    double waited = 0, step = 0.02;
    while (ex_run(&rq, res) == 0 && WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0 &&
           ex_slurm_end_parse(res->out, &k->end) == 0) {
        if (!ex_slurm_end_pending(&k->end)) {
            k->have_end = true;
            break;
        }
        if (waited >= KSLURM_END_PATIENCE) {
            /* srun is gone (killed, or lost its connection) and the job runs on: nobody
             * would see it again, so it goes. */
            kslurm_cancel(k, SIGKILL, true);
            break;
        }
        co_sleep(step);
        waited += step;
        step = step < 0.5 ? step * 2 : step;
    }
    free(res);
}

void kslurm_free(kslurm *k)
{
    assert(!k->reader); /* kslurm_finish follows every spawn: the reader has ended */
    kslurm_close(&k->rd);
    kslurm_close(&k->wr);
    free(k->argv);
    free(k->envp);
    free(k->run_env);
    kslurm_busy_put(k->busy);
    ex_slurm_unref(k->s);
    free(k);
}
