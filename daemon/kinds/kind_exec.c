/* kind_exec: {argv, env?, cwd?, stdin?, grace?, output_limit?} — run a program.
 *
 * A coroutine per job: it looks up the owner (cached; the thread pool on a miss), makes
 * the pipes and spawns (ex_spawn: a new session, the owner's credentials), pumps
 * stdout/stderr into the files and stdin from the args, awaits the
 * process's pidfd, reaps it and maps the status. A cancel (or the task's timeout) sends
 * SIGTERM (and SIGCONT, for a stopped job) to the job's process group, SIGKILL after the
 * grace period, and the body ends only once the leader is reaped; whatever is left of the
 * group is then killed, so a job leaves no processes behind. In a Slurm group the program
 * is srun (kind_slurm.c); what the end says is kind_exec_outcome.c's. */
#include "kind.h"
#include "kind_exec.h"
#include "kind_limits.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "co_await.h"
#include "co_io.h"
#include "cp_spec.h"
#include "cp_utf8.h"
#include "ex_cgroup.h"
#include "ex_ident.h"
#include "ex_pump.h"
#include "ex_spawn.h"

#define EXEC_MAX_ARG_STRLEN 131072u        /* one argv or env string, with its NUL (MAX_ARG_STRLEN) */
#define EXEC_MAX_ARG_TOTAL (2u * 1024 * 1024) /* argv and env together, as execve takes them */
#define EXEC_DRAIN_TIMEOUT 2.0             /* seconds to read what is left after the leader exits */

/* ---- args ---- */


static void exec_args_unref(exec_args *a)
{
    if (!a || --a->refs)
        return;
    if (a->argv)
        for (char **p = a->argv; *p; p++)
            free(*p);
    free(a->argv);
    if (a->env)
        for (char **p = a->env; *p; p++)
            free(*p);
    free(a->env);
    free(a->cwd);
    free(a->in);
    free(a);
}

/* A C string from a msgpack str: NUL bytes cannot reach execve. */
static int exec_cstr(const msgpack_object *o, const char *what, size_t idx, bool indexed, char **out,
                     cp_error *err)
{
    char field[64];
    if (indexed)
        snprintf(field, sizeof field, "args.%s[%zu]", what, idx);
    else
        snprintf(field, sizeof field, "args.%s", what);
    if (o->type != MSGPACK_OBJECT_STR)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be a string", field);
    uint32_t n = o->via.str.size;
    if (memchr(o->via.str.ptr, 0, n))
        return cp_fail(err, CP_BAD_REQUEST, "%s contains a NUL byte", field);
    if (n + 1 > EXEC_MAX_ARG_STRLEN)
        return cp_fail(err, CP_BAD_REQUEST, "%s is %u bytes, more than the %u a program accepts", field, n,
                       EXEC_MAX_ARG_STRLEN - 1);
    if (!(*out = strndup(o->via.str.ptr, n)))
        return cp_fail(err, CP_INTERNAL, "out of memory");
    return 0;
}

/* The command line for records: argv joined by spaces, as text (an argument may be any
 * bytes: those that are not UTF-8 are shown as \xNN), shortened with "..." where a
 * character ends. */
static void exec_describe(exec_args *a)
{
    size_t o = 0, room = sizeof a->command - 3; /* keeps room for "..." */
    bool whole = true;
    for (char **p = a->argv; *p && whole; p++) {
        if (p != a->argv) {
            if (o + 2 > room) {
                whole = false;
                break;
            }
            a->command[o++] = ' ';
        }
        o += cp_utf8_escape(a->command + o, room - o, *p, strlen(*p), &whole);
    }
    if (!whole)
        memcpy(a->command + o, "...", 4);
}

/* The record's block holds a pointer: a running job keeps the args past the record's
 * stage (they are reference counted). */
static int exec_validate(const msgpack_object *args, const kind_env *env, void *parsed, cp_error *err)
{
    if (!args)
        return cp_fail(err, CP_BAD_REQUEST, "args.argv is required for an exec");
    exec_args *a = calloc(1, sizeof *a);
    if (!a)
        return cp_fail(err, CP_INTERNAL, "out of memory");
    a->refs = 1;
    a->grace = -1;
    a->output_limit = UINT64_MAX;
    int rc = -EINVAL;
    size_t total = 0;

    const msgpack_object *av = cp_get(args, "argv");
    if (!av) {
        cp_fail(err, CP_BAD_REQUEST, "args.argv is required for an exec");
        goto fail;
    }
    if (av->type != MSGPACK_OBJECT_ARRAY || av->via.array.size == 0) {
        cp_fail(err, CP_BAD_REQUEST, "args.argv must be a non-empty array of strings");
        goto fail;
    }
    uint32_t argc = av->via.array.size;
    if (!(a->argv = calloc((size_t)argc + 1, sizeof *a->argv))) {
        cp_fail(err, CP_INTERNAL, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < argc; i++) {
        if (exec_cstr(&av->via.array.ptr[i], "argv", i, true, &a->argv[i], err) < 0)
            goto fail;
        total += strlen(a->argv[i]) + 1 + sizeof(char *);
    }
    if (!a->argv[0][0]) {
        cp_fail(err, CP_BAD_REQUEST, "args.argv[0] must name a program");
        goto fail;
    }

    const msgpack_object *ev = cp_get(args, "env");
    if (ev && ev->type != MSGPACK_OBJECT_NIL) {
        if (ev->type != MSGPACK_OBJECT_MAP) {
            cp_fail(err, CP_BAD_REQUEST, "args.env must be a map of strings to strings");
            goto fail;
        }
        uint32_t n = ev->via.map.size;
        if (!(a->env = calloc((size_t)n + 1, sizeof *a->env))) {
            cp_fail(err, CP_INTERNAL, "out of memory");
            goto fail;
        }
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object_kv *kv = &ev->via.map.ptr[i];
            char *k = NULL, *v = NULL;
            if (exec_cstr(&kv->key, "env key", i, true, &k, err) < 0)
                goto fail;
            if (!k[0] || strchr(k, '=')) {
                cp_fail(err, CP_BAD_REQUEST, "args.env: the name \"%.64s\" is empty or contains '='", k);
                free(k);
                goto fail;
            }
            if (exec_cstr(&kv->val, "env value", i, true, &v, err) < 0) {
                free(k);
                goto fail;
            }
            size_t kl = strlen(k), vl = strlen(v);
            char *kvs = malloc(kl + vl + 2);
            if (!kvs || kl + vl + 2 > EXEC_MAX_ARG_STRLEN) {
                if (kvs)
                    cp_fail(err, CP_BAD_REQUEST, "args.env: %s=... is more than %u bytes", k,
                            EXEC_MAX_ARG_STRLEN - 1);
                else
                    cp_fail(err, CP_INTERNAL, "out of memory");
                free(kvs);
                free(k);
                free(v);
                goto fail;
            }
            memcpy(kvs, k, kl);
            kvs[kl] = '=';
            memcpy(kvs + kl + 1, v, vl + 1);
            free(k);
            free(v);
            a->env[i] = kvs;
            total += kl + vl + 2 + sizeof(char *);
        }
    }
    if (total > EXEC_MAX_ARG_TOTAL) {
        cp_fail(err, CP_BAD_REQUEST, "args.argv and args.env take %zu bytes, more than the %u an exec may pass",
                total, EXEC_MAX_ARG_TOTAL);
        goto fail;
    }

    const msgpack_object *cv = cp_get(args, "cwd");
    if (cv && cv->type != MSGPACK_OBJECT_NIL) {
        if (exec_cstr(cv, "cwd", 0, false, &a->cwd, err) < 0)
            goto fail;
        if (a->cwd[0] != '/' || strlen(a->cwd) >= PATH_MAX) {
            cp_fail(err, CP_BAD_REQUEST, "args.cwd must be an absolute path shorter than %d bytes", PATH_MAX);
            goto fail;
        }
    }

    const msgpack_object *iv = cp_get(args, "stdin");
    if (iv && iv->type != MSGPACK_OBJECT_NIL) {
        const char *p;
        uint32_t n;
        if (iv->type == MSGPACK_OBJECT_BIN)
            p = iv->via.bin.ptr, n = iv->via.bin.size;
        else if (iv->type == MSGPACK_OBJECT_STR)
            p = iv->via.str.ptr, n = iv->via.str.size;
        else {
            cp_fail(err, CP_BAD_REQUEST, "args.stdin must be bytes or a string");
            goto fail;
        }
        if (n && !(a->in = malloc(n))) {
            cp_fail(err, CP_INTERNAL, "out of memory");
            goto fail;
        }
        if (n)
            memcpy(a->in, p, n);
        a->in_len = n;
        a->has_in = true;
    }

    if (cp_get_bool(args, "stdin_pipe", false, &a->pipe_in, err) < 0) {
        kind_args_error(err);
        goto fail;
    }
    if (a->pipe_in && a->has_in) {
        cp_fail(err, CP_BAD_REQUEST, "args.stdin and args.stdin_pipe: one or the other");
        goto fail;
    }
    int got = cp_get_seconds(args, "grace", false, 0, CP_MAX_SECONDS, &a->grace, err);
    if (got < 0) {
        kind_args_error(err);
        goto fail;
    }
    if (!got)
        a->grace = -1;
    uint64_t lim;
    if ((got = cp_get_uint(args, "output_limit", false, 0, UINT64_MAX - 1, &lim, err)) < 0) {
        kind_args_error(err);
        goto fail;
    }
    if (got)
        a->output_limit = lim;
    if (kind_limits_parse(args, env, &a->lim, err) < 0)
        goto fail;
    const msgpack_object *sv = cp_get(args, "slurm");
    if (sv && sv->type != MSGPACK_OBJECT_NIL) {
        if (sv->type != MSGPACK_OBJECT_MAP) {
            cp_fail(err, CP_BAD_REQUEST, "args.slurm must be a map: cpus, memory, time");
            goto fail;
        }
        for (uint32_t i = 0; i < sv->via.map.size; i++) {
            const msgpack_object_kv *kv = &sv->via.map.ptr[i];
            char key[16], why[160];
            double num = cp_num(&kv->val); /* NAN for what is not a number */
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof key || isnan(num)) {
                cp_fail(err, CP_BAD_REQUEST, "args.slurm: cpus, memory and time are numbers");
                goto fail;
            }
            memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            if (ex_slurm_job_set(&a->slurm, key, num, why, sizeof why) < 0) {
                cp_fail(err, CP_BAD_REQUEST, "args.%s", why);
                goto fail;
            }
        }
        a->has_slurm = true;
    }
    exec_describe(a);
    a->bytes = sizeof *a + total + (a->cwd ? strlen(a->cwd) + 1 : 0) + a->in_len;
    *(exec_args **)parsed = a;
    return 0;
fail:
    exec_args_unref(a);
    return rc;
}

static const char *exec_misfit(const void *parsed, bool slurm)
{
    const exec_args *a = *(exec_args *const *)parsed;
    if (!slurm && a->has_slurm)
        return "args.slurm is for a group whose executor is slurm";
    if (slurm && (a->lim.memory_max || a->lim.pids_max || a->lim.cpu_weight || a->lim.cpu_quota > 0))
        return "memory_max, pids_max, cpu_weight and cpu_quota hold jobs run here; in a Slurm group ask "
               "args.slurm for memory and cpus";
    return NULL;
}

static void exec_refs(const void *parsed, const uint64_t **ids, size_t *n)
{
    (void)parsed;
    *ids = NULL;
    *n = 0;
}

static void exec_free(void *parsed)
{
    exec_args **a = parsed;
    exec_args_unref(*a);
    *a = NULL;
}

static const char *exec_command(const void *parsed)
{
    return (*(exec_args *const *)parsed)->command;
}

static size_t exec_bytes(const void *parsed)
{
    return (*(exec_args *const *)parsed)->bytes;
}

/* ---- the job ---- */


static double exec_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void exec_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Thread pool: the user database, when the cache has no fresh entry. */
static void exec_lookup(void *arg)
{
    exec_job *j = arg;
    j->ident_rc = ex_ident_get(j->owner, &j->ident);
}

/* Until the child has exec'd or failed (ex_spawn.h: the loop never waits for it): the
 * outcome of ex_spawn_finish, with a child past the deadline killed — stopped by its
 * owner, or searching a PATH without end — and reported as such. A cancel meanwhile is
 * remembered: a child that did start is stopped at once. */
static int exec_await_start(exec_job *j, ex_spawning *sg)
{
    double deadline = j->spawn_timeout;
    bool killed = false;
    for (;;) {
        int rc = co_wait_fd(ex_spawning_fd(sg), UV_READABLE, deadline);
        if (rc > 0)
            break;
        if (rc == -ECANCELED) {
            j->stop_now = true;
        } else if (rc == -ETIMEDOUT && !killed) {
            kill(ex_spawning_pid(sg), SIGKILL);
            killed = true;
            deadline = -1;
        } else if (rc < 0 && rc != -ETIMEDOUT) {
            co_sleep(0.01); /* the fd could not be watched (out of memory): look again */
        }
    }
    int rc = ex_spawn_finish(sg, &j->sp, j->err, sizeof j->err);
    if (killed) {
        snprintf(j->err, sizeof j->err,
                 "the program did not start within %g s, and was killed: it was stopped before it "
                 "could exec, or searched a PATH without end",
                 j->spawn_timeout);
        rc = -ETIMEDOUT;
    }
    return rc;
}

static int exec_wait_leader(exec_job *j, double timeout);

/* Kill and reap a child that will not run (it failed, or was killed before it exec'd):
 * SIGKILL ends even a stopped one, and it is ours until reaped. Its exit is awaited as a
 * job's is; a cancel meanwhile changes nothing. */
static void exec_bury(exec_job *j)
{
    kill(j->sp.pid, SIGKILL);
    while (exec_wait_leader(j, -1) < 0) {
    }
    int status;
    while (ex_reap(j->sp.pid, &status, NULL) == -EAGAIN) /* it has exited: cannot last */
        co_sleep(0.001);
}

/* Pipes on the loop; the child's start is awaited, not waited for. Nothing here touches
 * the disk; output files are created by the pumps, off the loop, on first output. */
static int exec_spawn(exec_job *j)
{
    exec_args *a = j->a;
    ex_ident *id = j->ident;
    char **min_env = NULL;
    int child[3] = { -1, -1, -1 }; /* the child's stdin, stdout, stderr ends */
    int p[2], rc = 0;
    bool set_ids = j->as_root && j->owner != 0;
    if (set_ids && !id->known) {
        snprintf(j->err, sizeof j->err,
                 "uid %u has no entry in the user database: a root corod runs jobs only as known users",
                 (unsigned)j->owner);
        return -ENOENT;
    }
    char **envp = a->env;
    if (!envp && !(envp = min_env = ex_ident_min_env(id))) {
        snprintf(j->err, sizeof j->err, "out of memory");
        return -ENOMEM;
    }
    for (int s = 0; s < 2 && rc == 0; s++) {
        if (pipe2(p, O_CLOEXEC) < 0) {
            rc = -errno;
            break;
        }
        j->rd[s] = p[0];
        child[s + 1] = p[1];
    }
    if (rc == 0 && (a->has_in || a->pipe_in)) {
        if (pipe2(p, O_CLOEXEC) < 0) {
            rc = -errno;
        } else {
            child[0] = p[0];
            j->in_w = p[1];
        }
    }
    char *const *argv = a->argv;
    if (rc < 0) {
        snprintf(j->err, sizeof j->err, "cannot make a pipe: %s", strerror(-rc));
    } else if (j->slurm) {
        j->slurm->ident = id;
        if ((rc = kslurm_prepare(j->slurm, a->argv, envp, j->err, sizeof j->err)) == 0) {
            argv = j->slurm->argv;
            envp = j->slurm->envp;
        }
    }
    if (rc == 0) {
        ex_spawn_req rq = {
            .argv = argv, .envp = envp, .cwd = a->cwd ? a->cwd : id->home,
            .stdin_fd = child[0], .stdout_fd = child[1], .stderr_fd = child[2],
            .set_ids = set_ids, .uid = j->owner, .gid = id->gid, .groups = id->groups, .ngroups = id->ngroups,
            .restore = &j->restore, .limits = &j->lim,
            .in_cgroup = j->has_cg, .cgroup_procs_fd = j->has_cg ? j->cg.procs_fd : -1,
            .fd3 = j->slurm ? j->slurm->wr : -1,
        };
        ex_spawning *sg;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if ((rc = ex_spawn_start(&rq, &sg, j->err, sizeof j->err)) == 0) {
            if (j->hooks && j->hooks->spawned)
                j->hooks->spawned(j->hooks_arg, j->id, ex_spawning_pid(sg),
                                  (double)now.tv_sec + (double)now.tv_nsec / 1e9);
            if (j->slurm && j->hooks && j->hooks->slurm)
                j->hooks->slurm(j->hooks_arg, j->id, 0, "");
            if ((rc = exec_await_start(j, sg)) < 0)
                exec_bury(j);
            else if (j->slurm)
                kslurm_spawned(j->slurm, j->sched);
        }
    }
    for (int i = 0; i < 3; i++)
        exec_close(&child[i]);
    free(min_env);
    return rc;
}

static void exec_pump_done(ex_pump *p, void *arg)
{
    exec_job *j = arg;
    (void)p;
    if (--j->live == 0)
        co_future_set_result(j->io_done, NULL);
}

static void exec_wrote(void *arg)
{
    exec_job *j = arg; /* outlives its pumps: the body waits for them */
    if (j->hooks && j->hooks->output)
        j->hooks->output(j->hooks_arg, j->id);
}

static int exec_start_pumps(exec_job *j)
{
    uv_loop_t *loop = co_sched_loop(j->sched);
    int rc;
    for (int s = 0; s < 2; s++) {
        ex_out_opts o = {
            .path = j->path[s], .limit = j->limit, .disk = j->disk,
            .chown = j->as_root && j->owner != 0, .uid = j->owner, .gid = j->ident->gid,
            .wrote = exec_wrote, .wrote_arg = j,
        };
        if ((rc = ex_pump_output(loop, j->rd[s], &o, exec_pump_done, j, &j->pump[s + 1])) < 0)
            return rc;
        j->rd[s] = -1; /* the pump owns it */
        j->live++;
    }
    if (j->in_w >= 0) {
        if ((rc = j->a->pipe_in ? ex_pump_feeder(loop, j->in_w, exec_pump_done, j, &j->pump[0])
                                : ex_pump_input(loop, j->in_w, j->a->in, j->a->in_len, exec_pump_done, j,
                                                &j->pump[0])) < 0)
            return rc;
        j->in_w = -1;
        j->live++;
    }
    if (j->early.cb) { /* what was sent before the job had started */
        ex_feed_cb *cb = j->early.cb;
        j->early.cb = NULL;
        int r = ex_pump_feed(j->pump[0], j->early.data, j->early.len, j->early.eof, cb, j->early.arg);
        free(j->early.data);
        j->early.data = NULL;
        if (r != 0)
            cb(j->early.arg, r == 1 ? 0 : r);
    }
    return 0;
}

/* `send`: bytes for a stdin_pipe job's stdin (see ex_pump_feed); before its program has
 * started they wait for it, one send at a time. */
static int exec_feed(co_task *body, const void *data, size_t len, bool eof, void (*cb)(void *arg, int status),
                     void *arg)
{
    exec_job *j = co_task_data(body);
    if (!j || !j->a->pipe_in)
        return -ENOTSUP;
    if (j->pump[0])
        return j->alive ? ex_pump_feed(j->pump[0], data, len, eof, cb, arg) : -EPIPE;
    if (j->sp.pid > 0 || j->early.cb)
        return j->early.cb ? -EBUSY : -EPIPE; /* started and gone, or one is waiting */
    if (len && !(j->early.data = malloc(len)))
        return -ENOMEM;
    if (len)
        memcpy(j->early.data, data, len);
    j->early.len = len;
    j->early.eof = eof;
    j->early.cb = cb;
    j->early.arg = arg;
    return 0;
}

/* Until the leader exits: 0, -ETIMEDOUT after `timeout` seconds (< 0: none), -ECANCELED.
 * Through its pidfd; where there is none, by polling every few milliseconds. */
static int exec_wait_leader(exec_job *j, double timeout)
{
    if (j->sp.pidfd >= 0) {
        int rc = co_wait_fd(j->sp.pidfd, UV_READABLE, timeout);
        if (rc > 0 || rc == -ETIMEDOUT || rc == -ECANCELED)
            return rc > 0 ? 0 : rc;
        /* The fd could not be watched (out of memory): poll instead of spinning. */
        close(j->sp.pidfd);
        j->sp.pidfd = -1;
    }
    double until = timeout >= 0 ? exec_mono() + timeout : INFINITY, step = 0.001;
    while (!ex_exited(j->sp.pid)) {
        double left = until - exec_mono();
        if (left <= 0)
            return -ETIMEDOUT;
        int rc = co_sleep(step < left ? step : left);
        if (rc < 0)
            return rc;
        if (step < 0.05)
            step *= 2;
    }
    return 0;
}

/* ---- its cgroup ---------------------------------------------------------------------------- */

/* Made before it is spawned, with its limits; it joins it in the child. */
static int exec_cg_make(exec_job *j)
{
    if (!j->cgroups)
        return 0;
    int rc = ex_jobcg_make(j->cgroups, j->id, &j->lim, &j->cg, j->err, sizeof j->err);
    j->has_cg = rc == 0;
    return rc;
}

/* Every process left in it is killed — a grandchild that called setsid() too, which its
 * process group misses — then awaited (briefly: SIGKILL is not refused), measured, and
 * the cgroup removed. What cannot be removed now is left to the next start's sweep. */
static void exec_cg_end(exec_job *j)
{
    if (!j->has_cg)
        return;
    ex_jobcg_kill(&j->cg);
    /* Most jobs leave nothing: measured and removed at once. Else what was killed is
     * awaited (SIGKILL is not refused: briefly), then the cgroup removed. */
    ex_jobcg_stats_get(&j->cg, &j->cg_stats);
    if (ex_jobcg_remove(&j->cg) == -EBUSY) {
        for (int i = 0; i < 1000 && ex_jobcg_populated(&j->cg); i++)
            co_sleep(0.002);
        ex_jobcg_stats_get(&j->cg, &j->cg_stats); /* with what the killed ones used */
        for (int i = 0; i < 50 && ex_jobcg_remove(&j->cg) == -EBUSY; i++)
            co_sleep(0.01);
    }
    j->cg_measured = true;
    ex_jobcg_close(&j->cg);
    j->has_cg = false;
}

/* Wait for the leader's exit; a cancel turns into SIGTERM, the grace period, SIGKILL.
 * Returns true when the job was told to stop. */
static bool exec_await_exit(exec_job *j)
{
    pid_t pg = j->sp.pid; /* it leads its own session and group */
    int rc;
    if (!j->stop_now && (rc = exec_wait_leader(j, -1)) != -ECANCELED)
        return false;
    if (j->slurm) {
        /* The Slurm way: a SIGTERM to srun would have it kill the step with SIGKILL. So
         * the steps get SIGTERM, then after the grace period the job is cancelled whole
         * (Slurm's own SIGTERM, KillWait, SIGKILL), and srun is killed only if it still
         * does not end. */
        bool told = kslurm_cancel(j->slurm, SIGTERM, false) == 0;
        rc = told ? exec_wait_leader(j, j->grace) : -ETIMEDOUT;
        if (rc == -ETIMEDOUT || rc == -ECANCELED) {
            told = kslurm_cancel(j->slurm, SIGTERM, true) == 0;
            rc = told ? exec_wait_leader(j, KSLURM_KILL_WAIT) : -ETIMEDOUT;
        }
        if (rc == 0)
            return true;
    }
    kill(-pg, SIGTERM);
    kill(-pg, SIGCONT);
    rc = exec_wait_leader(j, j->grace);
    while (rc == -ETIMEDOUT || rc == -ECANCELED) {
        /* Out of patience (or cancelled again): nothing outlives SIGKILL. */
        kill(-pg, SIGKILL);
        if (j->has_cg)
            ex_jobcg_kill(&j->cg);
        rc = exec_wait_leader(j, -1);
    }
    return true;
}

/* Give the pumps EXEC_DRAIN_TIMEOUT to reach EOF (an escaped grandchild may hold a pipe
 * open), then stop them; either way wait until nothing is in flight. */
static void exec_drain(exec_job *j)
{
    if (!j->live)
        return;
    double until = exec_mono() + EXEC_DRAIN_TIMEOUT;
    while (!co_future_done(j->io_done)) {
        double left = until - exec_mono();
        if (left <= 0 || co_wait(&j->io_done, 1, CO_ALL_COMPLETED, left) == -ECANCELED) {
            for (int i = 0; i < 3; i++)
                if (j->pump[i])
                    ex_pump_stop(j->pump[i]);
            while (!co_future_done(j->io_done))
                co_wait(&j->io_done, 1, CO_ALL_COMPLETED, -1);
        }
    }
}

static int exec_body(void *arg)
{
    exec_job *j = arg;
    j->t0 = exec_mono();
    int rc;
    if (!(j->ident = ex_ident_cached(j->owner))) {
        if ((rc = co_to_thread(exec_lookup, j)) < 0)
            return rc; /* cancelled before the lookup ran */
        if (j->ident_rc < 0)
            return co_fail("spawn_failed", "cannot look up uid %u: %s", (unsigned)j->owner, strerror(-j->ident_rc));
    }
    if (co_cancel_requested())
        return -ECANCELED; /* cancelled during the lookup: do not start it */
    if (j->no_slurm)
        return co_fail("spawn_failed", "its group's executor is slurm, and this corod found no Slurm to run it "
                                       "with (srun, scancel, scontrol and corod-slurm-prolog; see hello's executors)");
    if (exec_cg_make(j) < 0)
        return co_fail("spawn_failed", "%s", j->err);
    if (exec_spawn(j) < 0) {
        if (j->stop_now)
            return -ECANCELED; /* cancelled while it failed to start */
        /* The message quotes argv[0] or the cwd: any bytes, made text here. */
        char text[sizeof j->err];
        cp_utf8_escape(text, sizeof text, j->err, strlen(j->err), NULL);
        return co_fail("spawn_failed", "%s", text);
    }
    j->alive = true;
    for (int sig = 1; j->early_sigs && sig <= 64; sig++) /* sent while it started */
        if (j->early_sigs & (1ull << (sig - 1)))
            kill(-j->sp.pid, sig);
    j->early_sigs = 0;
    if ((rc = co_future_new(j->sched, &j->io_done)) < 0 || (rc = exec_start_pumps(j)) < 0) {
        /* Without its pumps the job would block on a full pipe: stop it now. */
        kill(-j->sp.pid, SIGKILL);
        snprintf(j->err, sizeof j->err, "cannot watch the job's output: %s", co_strerror(rc));
    }
    bool stopped = exec_await_exit(j);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while ((rc = ex_reap(j->sp.pid, &status, &ru)) == -EAGAIN) /* it has exited: cannot last */
        co_sleep(0.001);
    j->alive = false; /* its pid may be another process's from now on */
    j->reaped = true;
    if (rc < 0 && !j->err[0]) /* its status is lost: do not report a success */
        snprintf(j->err, sizeof j->err, "cannot collect the exit status of pid %d: %s", (int)j->sp.pid,
                 strerror(-rc));
    double dur = exec_mono() - j->t0;
    if (j->a->pipe_in && j->pump[0])
        ex_pump_stop(j->pump[0]); /* nobody reads it now: a send waiting on it ends */
    /* The rest of its group goes with it, and of its cgroup (setsid() escapes the group). */
    kill(-j->sp.pid, SIGKILL);
    exec_cg_end(j);
    exec_drain(j);
    if (j->slurm)
        kslurm_finish(j->slurm, status, j->pump[2] && ex_pump_bytes(j->pump[2]) > 0, stopped);

    if (stopped)
        return -ECANCELED; /* the task ends cancelled (or failed "timeout") */
    if (j->slurm && !j->err[0])
        return exec_slurm_outcome(j, status, &ru, dur);
    if (j->err[0])
        return co_fail("error", "%s", j->err);
    return exec_local_outcome(j, status, &ru, dur);
}

/* Runs once the body is done, whether or not it ever ran. */
static void exec_job_free(co_future *f, void *arg)
{
    exec_job *j = arg;
    (void)f;
    if (j->early.cb) /* sent before a start that never came */
        j->early.cb(j->early.arg, UV_ECANCELED);
    free(j->early.data);
    for (int i = 0; i < 3; i++)
        ex_pump_free(j->pump[i]);
    for (int s = 0; s < 2; s++)
        exec_close(&j->rd[s]);
    exec_close(&j->in_w);
    ex_ident_put(j->ident);
    if (j->sp.pidfd >= 0)
        close(j->sp.pidfd);
    if (j->has_cg) { /* it did not run to its end: one try, else the next start's sweep */
        ex_jobcg_kill(&j->cg);
        ex_jobcg_remove(&j->cg);
        ex_jobcg_close(&j->cg);
    }
    if (j->io_done)
        co_future_unref(j->io_done);
    if (j->disk)
        ex_disk_use_unref(j->disk);
    if (j->hooks)
        j->hooks->unref(j->hooks_arg);
    if (j->slurm)
        kslurm_free(j->slurm);
    exec_args_unref(j->a);
    free(j);
}

static int exec_start(const kind_start *ks, co_task **body)
{
    exec_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    exec_args *a = *(exec_args **)ks->args;
    j->a = a;
    a->refs++;
    j->sched = ks->sched;
    j->owner = ks->owner;
    j->as_root = ks->env->as_root;
    j->restore = ks->env->restore;
    j->spawn_timeout = ks->env->spawn_timeout;
    /* A Slurm job's processes are on the cluster, its limits Slurm's: srun needs no cgroup
     * of its own (one cost 8 ms a job here, a fifth of a `srun true`). */
    j->cgroups = ks->slurm ? NULL : ks->env->cgroups;
    j->lim = a->lim;
    if (ks->group_limits)
        ex_limits_merge(&j->lim, ks->group_limits);
    if (!j->cgroups) { /* a group's defaults that need cgroups are the configuration's to check */
        j->lim.memory_max = j->lim.pids_max = 0;
        j->lim.cpu_weight = 0;
        j->lim.cpu_quota = 0;
    }
    if ((j->disk = ks->disk))
        ex_disk_use_ref(j->disk);
    j->grace = a->grace >= 0 ? a->grace : ks->env->grace;
    j->limit = a->output_limit != UINT64_MAX ? a->output_limit : ks->env->output_limit;
    j->rd[0] = j->rd[1] = j->in_w = -1;
    j->sp.pidfd = -1;
    j->id = ks->opts.id;
    int rc = 0;
    if (ks->slurm && !ks->env->slurm) {
        j->no_slurm = true;
    } else if (ks->slurm) {
        kslurm *k = calloc(1, sizeof *k);
        if (!k) {
            exec_args_unref(a);
            free(j);
            return -ENOMEM;
        }
        k->s = ex_slurm_ref(ks->slurm);
        k->tools = ks->env->slurm;
        k->over = a->slurm;
        k->id = j->id;
        k->owner = j->owner;
        k->rd = k->wr = -1;
        snprintf(k->name, sizeof k->name, KSLURM_NAME_FMT, ks->env->slurm_tag ? ks->env->slurm_tag : "x",
                 (unsigned long long)j->id, (unsigned)ks->attempt);
        k->hooks = ks->hooks;
        k->hooks_arg = ks->hooks_arg;
        j->slurm = k;
    }
    for (int s = 0; s < 2 && rc == 0; s++)
        rc = kind_output_path(ks->env->output_dir, ks->opts.id, s + 1, j->path[s], sizeof j->path[s]);
    co_task *t = NULL;
    if (rc == 0)
        rc = co_spawn(ks->sched, exec_body, j, &ks->opts, &t);
    if (rc == 0)
        rc = co_future_on_done(co_task_future(t), exec_job_free, j);
    if (rc == 0 && ks->hooks) { /* from here on exec_job_free runs, and lets go of it */
        j->hooks = ks->hooks;
        j->hooks_arg = ks->hooks_arg;
        j->hooks->ref(j->hooks_arg);
    }
    if (rc < 0) {
        if (t) { /* spawned, but its cleanup could not be registered: it must not run */
            co_task_cancel(t, NULL);
            co_task_unref(t);
        }
        if (j->disk)
            ex_disk_use_unref(j->disk);
        if (j->slurm)
            kslurm_free(j->slurm);
        exec_args_unref(a);
        free(j);
        return rc;
    }
    *body = t;
    return 0;
}

/* A signal to the job's process group, which its leader keeps while it lives — and, a
 * zombie, until it is reaped: no other process can have taken its pid meanwhile. One that
 * comes while the job is starting (its record says running) is sent as it execs. */
static int exec_signal(co_task *body, int sig)
{
    exec_job *j = co_task_data(body);
    if (!j || j->reaped || sig < 1 || sig > 64)
        return -ESRCH;
    if (j->slurm) /* its processes are on the cluster: Slurm signals them */
        return j->alive ? kslurm_signal(j->slurm, j->sched, sig) : -ESRCH;
    if (!j->alive) {
        j->early_sigs |= 1ull << (sig - 1);
        return 0;
    }
    return kill(-j->sp.pid, sig) < 0 ? -errno : 0;
}

/* A fuzzer driving the server (tests/fuzz/fuzz_server.c) must not run the programs it
 * makes up. */
#ifdef CORO_FUZZ
#define EXEC_AVAILABLE false
#else
#define EXEC_AVAILABLE true
#endif

const kind_ops kind_exec = { .name = "exec", .available = EXEC_AVAILABLE, .takes_slot = true, .has_output = true,
                             .args_size = sizeof(exec_args *), .validate = exec_validate, .refs = exec_refs, .start = exec_start,
                             .free = exec_free, .command = exec_command, .bytes = exec_bytes,
                             .signal = exec_signal, .feed = exec_feed, .misfit = exec_misfit };
