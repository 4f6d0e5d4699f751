/* coroctl_exec.c: commands for jobs — add, run, logs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coroctl.h"
#include "cp_msg.h"

extern char **environ;

#define STDIN_MAX (15u * 1024u * 1024u) /* fits the daemon's 16 MiB message limit */
#define ENV_MAX 4096u                   /* --env options */

#define RLIMITS_MAX 4u /* nofile, core, cpu, as */

typedef struct exec_opts {
    corod_exec ex;
    corod_rlimit rlim[RLIMITS_MAX];
    char *env_extra[ENV_MAX + 1];
    size_t n_extra;
    int default_env;
    const char *stdin_file;
    char cwd[PATH_MAX];
} exec_opts;

enum { OPT_SLURM_CPUS = 0x100, OPT_SLURM_MEM, OPT_SLURM_TIME }; /* long options only */

static int parse_rlim_value(const char *s, uint64_t *out)
{
    if (!strcmp(s, "infinity") || !strcmp(s, "unlimited"))
        return *out = COROD_RLIM_INFINITY, 0;
    return parse_bytes(s, out);
}

/* NAME=SOFT[:HARD], each a count (K/M/G/T) or "infinity". */
static int parse_rlimit(const char *arg, exec_opts *x)
{
    static const char *const names[RLIMITS_MAX] = { "nofile", "core", "cpu", "as" };
    const char *eq = strchr(arg, '=');
    if (!eq)
        return -1;
    size_t nl = (size_t)(eq - arg);
    int which = -1;
    for (int i = 0; i < (int)RLIMITS_MAX; i++)
        if (strlen(names[i]) == nl && !strncmp(arg, names[i], nl))
            which = i;
    char soft[64], *colon;
    if (which < 0 || snprintf(soft, sizeof soft, "%s", eq + 1) >= (int)sizeof soft)
        return -1;
    corod_rlimit r = { .name = names[which] };
    if ((colon = strchr(soft, ':')))
        *colon = '\0';
    if (parse_rlim_value(soft, &r.soft) < 0 || parse_rlim_value(colon ? colon + 1 : soft, &r.hard) < 0)
        return -1;
    for (size_t i = 0; i < x->ex.nrlimits; i++)
        if (x->rlim[i].name == r.name)
            return x->rlim[i] = r, 0;
    x->rlim[x->ex.nrlimits++] = r;
    x->ex.rlimits = x->rlim;
    return 0;
}

static int exec_extra(int c, const char *arg, submit_opts *o)
{
    exec_opts *x = o->ctx;
    switch (c) {
    case 'e':
        if (!strchr(arg, '=') || arg[0] == '=')
            return usage_error("--env takes NAME=VALUE, not \"%s\"", arg);
        if (x->n_extra >= ENV_MAX)
            return usage_error("at most 4096 --env options%s", "");
        x->env_extra[x->n_extra++] = (char *)arg;
        return 0;
    case 'E': x->default_env = 1; return 0;
    case 'c':
        if (arg[0] != '/')
            return usage_error("--cwd takes an absolute path, not \"%s\"", arg);
        snprintf(x->cwd, sizeof x->cwd, "%s", arg);
        return 0;
    case 'i': x->stdin_file = arg; return 0;
    case 'I': x->ex.stdin_pipe = true; return 0;
    case 'G':
        if (parse_seconds(arg, &x->ex.grace) < 0)
            return usage_error("--grace: not a number of seconds: \"%s\"", arg);
        return 0;
    case 'L': {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || end == arg || *end || arg[0] == '-' || v == 0)
            return usage_error("--output-limit: not a positive number of bytes: \"%s\"", arg);
        x->ex.output_limit = v;
        return 0;
    }
    case 'M':
        if (parse_bytes(arg, &x->ex.memory_max) < 0 || !x->ex.memory_max)
            return usage_error("--memory-max: not a number of bytes (K, M, G or T after it): \"%s\"", arg);
        return 0;
    case 'P':
        if (parse_bytes(arg, &x->ex.pids_max) < 0 || !x->ex.pids_max || strpbrk(arg, "KMGT"))
            return usage_error("--pids-max: not a positive count: \"%s\"", arg);
        return 0;
    case 'W': {
        char *end;
        unsigned long v = strtoul(arg, &end, 10);
        if (end == arg || *end || arg[0] == '-' || v < 1 || v > 10000)
            return usage_error("--cpu-weight: a whole number from 1 to 10000, not \"%s\"", arg);
        x->ex.cpu_weight = (uint32_t)v;
        return 0;
    }
    case 'Q': {
        char *end;
        double v = strtod(arg, &end);
        if (end == arg || *end || !(v >= 0.01 && v <= 4096))
            return usage_error("--cpu-quota: a number of CPUs from 0.01 to 4096, not \"%s\"", arg);
        x->ex.cpu_quota = v;
        return 0;
    }
    case 'U': {
        char *end;
        unsigned long v = strtoul(arg, &end, 8);
        if (end == arg || *end || v > 0777)
            return usage_error("--umask: an octal mask such as 022, not \"%s\"", arg);
        x->ex.set_umask = true;
        x->ex.umask = (unsigned)v;
        return 0;
    }
    case OPT_SLURM_CPUS: {
        char *end;
        unsigned long v = strtoul(arg, &end, 10);
        if (end == arg || *end || arg[0] == '-' || v < 1 || v > 4096)
            return usage_error("--slurm-cpus: a whole number from 1 to 4096, not \"%s\"", arg);
        x->ex.slurm_cpus = (uint32_t)v;
        return 0;
    }
    case OPT_SLURM_MEM:
        if (parse_bytes(arg, &x->ex.slurm_memory) < 0 || x->ex.slurm_memory < (1u << 20))
            return usage_error("--slurm-mem: a number of bytes, at least 1M (K, M, G or T after it), not \"%s\"",
                               arg);
        return 0;
    case OPT_SLURM_TIME:
        if (parse_age(arg, &x->ex.slurm_time) < 0 || x->ex.slurm_time < 1)
            return usage_error("--slurm-time: a time limit such as 90s, 30m, 12h or 2d, not \"%s\"", arg);
        return 0;
    case 'X':
        if (parse_rlimit(arg, x) < 0)
            return usage_error("--rlimit takes NAME=SOFT[:HARD] (nofile, core, cpu, as; a count or infinity), "
                               "not \"%s\"", arg);
        return 0;
    }
    return EX_USAGE;
}

static const struct option exec_long[] = {
    { "env", required_argument, 0, 'e' },        { "default-env", no_argument, 0, 'E' },
    { "cwd", required_argument, 0, 'c' },        { "stdin-file", required_argument, 0, 'i' },
    { "grace", required_argument, 0, 'G' },      { "output-limit", required_argument, 0, 'L' },
    { "memory-max", required_argument, 0, 'M' }, { "pids-max", required_argument, 0, 'P' },
    { "cpu-weight", required_argument, 0, 'W' }, { "cpu-quota", required_argument, 0, 'Q' },
    { "umask", required_argument, 0, 'U' },      { "rlimit", required_argument, 0, 'X' },
    { "stdin-pipe", no_argument, 0, 'I' },       { "slurm-cpus", required_argument, 0, OPT_SLURM_CPUS },
    { "slurm-mem", required_argument, 0, OPT_SLURM_MEM }, { "slurm-time", required_argument, 0, OPT_SLURM_TIME },
    { 0, 0, 0, 0 },
};

static int read_stdin_file(const char *path, void **data, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "coroctl: cannot open %s: %s\n", path, strerror(errno));
        return EX_USAGE;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n == cap) {
            if (cap > STDIN_MAX)
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "coroctl: cannot read %s: %s\n", path, strerror(errno));
            free(buf);
            if (fd)
                close(fd);
            return EX_USAGE;
        }
        if (r == 0) {
            if (fd)
                close(fd);
            *data = buf;
            *len = n;
            return EX_OK;
        }
        n += (size_t)r;
    }
    free(buf);
    if (fd)
        close(fd);
    fprintf(stderr, "coroctl: %s: a job's stdin may be at most %u bytes\n", path, STDIN_MAX);
    return EX_USAGE;
}

/* Parse `add`/`run` and submit the job. */
static int submit_exec(int argc, char **argv, const char *cmd, submit_opts *o, uint64_t *id, int *rc_out)
{
    exec_opts *x = calloc(1, sizeof *x);
    void *in = NULL;
    char **env = NULL;
    int first, rc;
    *rc_out = EX_OK;
    o->stop_at_command = 1;
    o->extra = exec_long;
    o->on_extra = exec_extra;
    o->ctx = x;
    if (!x)
        return *rc_out = EX_USAGE, -ENOMEM;
    if ((rc = parse_submit(argc, argv, o, &first)) != 0) {
        free(x);
        *rc_out = rc;
        return -EINVAL;
    }
    if (first >= argc) {
        free(x);
        *rc_out = usage_error("%s needs a command: coroctl add [OPTIONS] -- CMD [ARGS...]", cmd);
        return -EINVAL;
    }
    x->ex.argv = argv + first; /* argv is NULL-terminated, as main's is */
    /* The caller's cwd and environment, as pueue does: the job runs where and as you would. */
    if (!x->cwd[0] && !getcwd(x->cwd, sizeof x->cwd)) {
        free(x);
        *rc_out = EX_USAGE;
        fprintf(stderr, "coroctl: cannot read the current directory: %s (pass --cwd)\n", strerror(errno));
        return -EINVAL;
    }
    x->ex.cwd = x->cwd;
    if (!x->default_env || x->n_extra) {
        size_t n = 0;
        if (!x->default_env)
            for (char **e = environ; *e; e++)
                n++;
        env = calloc(n + x->n_extra + 1, sizeof *env);
        size_t k = 0;
        if (!env) {
            free(x);
            return *rc_out = EX_USAGE, -ENOMEM;
        }
        if (!x->default_env)
            for (char **e = environ; *e; e++) {
                /* --env overrides what is inherited. */
                size_t kl = strcspn(*e, "=");
                int overridden = 0;
                for (size_t i = 0; i < x->n_extra; i++)
                    if (strncmp(x->env_extra[i], *e, kl + 1) == 0)
                        overridden = 1;
                if (!overridden && (*e)[kl] == '=')
                    env[k++] = *e;
            }
        for (size_t i = 0; i < x->n_extra; i++)
            env[k++] = x->env_extra[i];
        x->ex.env = env;
    }
    if (x->stdin_file && x->ex.stdin_pipe) {
        free(env);
        free(x);
        *rc_out = usage_error("--stdin-file and --stdin-pipe: one or the other%s", "");
        return -EINVAL;
    }
    if (x->stdin_file) {
        if ((rc = read_stdin_file(x->stdin_file, &in, &x->ex.stdin_len)) != EX_OK) {
            free(env);
            free(x);
            *rc_out = rc;
            return -EINVAL;
        }
        x->ex.stdin_data = in;
    }
    if ((*rc_out = connect_daemon()) != EX_OK)
        rc = -ENOTCONN;
    else
        rc = corod_submit_exec(cli, &x->ex, &o->spec, id);
    free(in);
    free(env);
    free(x);
    return rc;
}

/* A job's outcome as an exit code: its own; 128 + the signal that killed it; 127 when it
 * could not start; 1 for any other failure or a cancel. */
static int job_exit(const corod_task *t)
{
    if (strcmp(t->state, "succeeded") == 0)
        return EX_OK;
    int code = 1;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (t->error && msgpack_unpack_next(&u, t->error, t->error_len, &off) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *e = cp_get(&u.data, "exit_code"), *s = cp_get(&u.data, "signal");
        if (t->error_code && !strcmp(t->error_code, "exit_status") && e && e->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            code = (int)e->via.u64;
        else if (t->error_code && !strcmp(t->error_code, "signal") && s && s->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            code = 128 + (int)s->via.u64;
        else if (t->error_code && !strcmp(t->error_code, "spawn_failed"))
            code = 127;
    }
    msgpack_unpacked_destroy(&u);
    return code;
}

static int finish_job(uint64_t id, int quiet)
{
    corod_task *t;
    int rc = corod_get(cli, id, &t);
    if (rc < 0)
        return daemon_error(rc);
    if (json_out || !quiet)
        print_task(t, -1);
    else if (strcmp(t->state, "succeeded") && (!t->error_code || strcmp(t->error_code, "exit_status")))
        fprintf(stderr, "coroctl: task %llu %s: %s: %s\n", (unsigned long long)id, t->state,
                t->error_code ? t->error_code : "?", t->error_message ? t->error_message : "");
    rc = job_exit(t);
    corod_task_free(t);
    return rc;
}

int cmd_add(int argc, char **argv)
{
    submit_opts o = { 0 };
    uint64_t id;
    int ex;
    int rc = submit_exec(argc, argv, "add", &o, &id, &ex);
    if (ex != EX_OK)
        return ex;
    if ((rc = after_submit(rc, id, 0)) != EX_OK || !o.wait)
        return rc;
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    if ((rc = corod_wait(cli, &id, 1, NULL, -1, &done, &nd, &pending, &np)) < 0)
        return daemon_error(rc);
    corod_tasks_free(done, nd);
    free(pending);
    return finish_job(id, 0);
}

/* ---- streaming output ---- */

static volatile sig_atomic_t interrupted;
static int wake[2] = { -1, -1 }; /* a signal writes here: blocking calls give up (corod_set_cancel_fd) */

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
    if (wake[1] >= 0) {
        int e = errno;
        (void)!write(wake[1], "", 1);
        errno = e;
    }
}

/* Ctrl-C and SIGTERM set `interrupted` and make cli's blocking calls return -EINTR. */
static void catch_interrupts(void)
{
    if (wake[0] < 0 && pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0)
        wake[0] = wake[1] = -1;
    struct sigaction sa = { .sa_handler = on_interrupt };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    corod_set_cancel_fd(cli, wake[0]);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int split_streams; /* run: the job's stderr to ours; logs: everything to stdout */
static pthread_mutex_t emit_lock = PTHREAD_MUTEX_INITIALIZER; /* two streams, two threads */

static void emit(int stream, uint64_t offset, const char *data, size_t len)
{
    pthread_mutex_lock(&emit_lock);
    if (json_out) {
        printf("{\"stream\": \"%s\", \"offset\": %llu, \"data\": ", stream == 2 ? "stderr" : "stdout",
               (unsigned long long)offset);
        json_str(stdout, data, len);
        fputs("}\n", stdout);
        fflush(stdout);
    } else {
        write_all(stream == 2 && split_streams ? 2 : 1, data, len);
    }
    pthread_mutex_unlock(&emit_lock);
}

/* One stream followed to its end on its own connection: each read waits in the daemon
 * (a long-poll, answered as the job writes or ends), so a quiet job costs nothing. On an
 * interrupt, `run` (cancel_id) cancels the job once and goes on to show how it ended;
 * `logs` stops. */
typedef struct follower {
    corod_client *c;
    uint64_t id, cancel_id;
    int stream, rc;
    pthread_t thread;
} follower;

#define FOLLOW_WAIT 30.0 /* seconds each read may wait in the daemon */
static bool cancel_sent; /* under emit_lock */

static void *follow_stream(void *arg)
{
    follower *f = arg;
    uint64_t off = 0;
    bool eof = false;
    f->rc = EX_OK;
    while (!eof) {
        void *data;
        size_t len;
        uint64_t next;
        int rc = corod_output_wait(f->c, f->id, f->stream, off, 1u << 20, FOLLOW_WAIT, &data, &len, &next, &eof);
        if (rc == -EINTR && f->cancel_id) {
            /* `run`: the first to see it cancels the job; both go on to its end, deaf to
             * further interrupts (the job ends within its grace period). */
            corod_set_cancel_fd(f->c, -1);
            pthread_mutex_lock(&emit_lock);
            bool first = !cancel_sent;
            cancel_sent = true;
            pthread_mutex_unlock(&emit_lock);
            if (first)
                corod_cancel(f->c, f->cancel_id, "interrupted from coroctl", NULL);
            continue;
        }
        if (rc == -EINTR || (interrupted && !f->cancel_id))
            break;
        if (rc < 0) {
            f->rc = rc;
            break;
        }
        if (len)
            emit(f->stream, off, data, len);
        free(data);
        off = next;
    }
    return NULL;
}

/* Copy the streams (mask: 1 stdout, 2 stderr, 3 both) from the start until the task ends
 * (follow; each stream its own connection and thread) or until nothing more is there now.
 * On SIGINT/SIGTERM, cancel `cancel_id` once (0: just stop). */
static int stream_output(uint64_t id, int mask, int follow, uint64_t cancel_id)
{
    if (!follow) {
        for (int s = 1; s <= 2; s++) {
            uint64_t off = 0;
            for (bool eof = !(mask & s); !eof && !interrupted;) {
                void *data;
                size_t len;
                uint64_t next;
                int rc = corod_output(cli, id, s, off, 1u << 20, &data, &len, &next, &eof);
                if (rc == -EINTR)
                    break;
                if (rc < 0)
                    return daemon_error(rc);
                if (len)
                    emit(s, off, data, len);
                free(data);
                off = next;
                eof = eof || !len;
            }
        }
        return EX_OK;
    }
    follower f[2] = { { .c = cli, .id = id, .cancel_id = cancel_id, .stream = 1 },
                      { .c = NULL, .id = id, .cancel_id = cancel_id, .stream = 2 } };
    int rc = 0;
    if (mask == 3) {
        if ((rc = connect_another(&f[1].c)) < 0)
            return daemon_error(rc);
        corod_set_cancel_fd(f[1].c, wake[0]);
    } else if (mask == 2) {
        f[0].stream = 2;
    }
    bool threaded = mask == 3 && pthread_create(&f[1].thread, NULL, follow_stream, &f[1]) == 0;
    if (mask == 3 && !threaded) {
        corod_close(f[1].c);
        return daemon_error(-EAGAIN);
    }
    follow_stream(&f[0]);
    if (threaded) {
        pthread_join(f[1].thread, NULL);
        corod_close(f[1].c);
    }
    rc = f[0].rc < 0 ? f[0].rc : f[1].rc;
    return rc < 0 ? daemon_error(rc) : EX_OK;
}

int cmd_run(int argc, char **argv)
{
    submit_opts o = { 0 };
    uint64_t id;
    int ex;
    int rc = submit_exec(argc, argv, "run", &o, &id, &ex);
    if (ex != EX_OK)
        return ex;
    if (rc < 0)
        return daemon_error(rc);
    if (json_out)
        printf("{\"id\": %llu}\n", (unsigned long long)id), fflush(stdout);
    /* Ctrl-C stops the job (SIGTERM to its group, as a cancel does) and shows how it ended. */
    catch_interrupts();
    split_streams = 1;
    if ((rc = stream_output(id, 3, 1, id)) != EX_OK)
        return rc;
    corod_set_cancel_fd(cli, -1); /* how it ended is shown, Ctrl-C or not */
    rc = finish_job(id, 1);
    return interrupted ? EX_INTERRUPTED : rc; /* as a shell says of a command Ctrl-C stopped */
}

int cmd_logs(int argc, char **argv)
{
    static const struct option lo[] = { { "stderr", no_argument, 0, 'e' }, { "follow", no_argument, 0, 'f' },
                                        { "all", no_argument, 0, 'a' }, { 0, 0, 0, 0 } };
    int mask = 1, follow = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "f", lo, NULL)) != -1) {
        if (c == 'e')
            mask = 2;
        else if (c == 'a')
            mask = 3;
        else if (c == 'f')
            follow = 1;
        else
            return bad_option(argv);
    }
    uint64_t id;
    if (argc - optind != 1)
        return usage_error("logs takes one task id or name%s", "");
    int rc = resolve_task(argv[optind], &id);
    if (rc != EX_OK || (rc = connect_daemon()) != EX_OK)
        return rc;
    catch_interrupts();
    if ((rc = stream_output(id, mask, follow, 0)) != EX_OK || interrupted)
        return interrupted ? EX_INTERRUPTED : rc;
    /* Nothing to show because nothing ran: say so, rather than print nothing and exit 0. */
    corod_task *t;
    if ((rc = corod_get(cli, id, &t)) < 0)
        return daemon_error(rc);
    rc = EX_OK;
    if (isnan(t->started_at) && strcmp(t->state, "pending") && strcmp(t->state, "running")) {
        fprintf(stderr, "coroctl: task %llu never started: it %s%s%s\n", (unsigned long long)id, t->state,
                t->error_message ? ": " : "", t->error_message ? t->error_message : "");
        rc = EX_TASK;
    }
    corod_task_free(t);
    return rc;
}
