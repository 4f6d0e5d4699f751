/* main.c: corod's entry point — options and their defaults, the state directory and its
 * lock, signals, systemd readiness, and the wiring of runtime, table and server. Runs in
 * the foreground; systemd or the caller supervises it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "co.h"
#include "cp_frame.h"
#include "ex_ident.h"
#include "kind.h"
#include "srv.h"
#include "sy_listen.h"
#include "sy_log.h"
#include "sy_notify.h"
#include "st_store.h"

#ifndef COROD_VERSION
#define COROD_VERSION "0.0.0"
#endif

static const char usage[] =
    "usage: corod [options]\n"
    "Run the corod task daemon in the foreground.\n"
    "\n"
    "  --socket PATH         Unix socket to serve (default: $CORO_SOCKET; as root\n"
    "                        /run/corod/corod.sock; else $XDG_RUNTIME_DIR/corod/corod.sock)\n"
    "  --state-dir DIR       state directory (default: as root /var/lib/corod; else\n"
    "                        $XDG_STATE_HOME/corod or ~/.local/state/corod)\n"
    "  --socket-mode MODE    octal mode of the socket (default: 0666 as root, else 0600)\n"
    "  --sync full|normal    when a change is on disk before it is answered: full (the\n"
    "                        default) syncs each commit, so an answered change survives\n"
    "                        a power loss; normal survives a crash of corod or a kill,\n"
    "                        and may lose the last changes to a power loss or kernel crash\n"
    "  --keep N              ended tasks the store keeps, its newest (default 1000000)\n"
    "  --keep-for SECONDS    ... and for how long after they ended (default 604800:\n"
    "                        7 days); older ones go, with their output, in the background\n"
    "  --max-uid-store BYTES what one uid's tasks may hold in the store: specs, results\n"
    "                        and ended jobs' output files (default 1073741824); past it\n"
    "                        its oldest ended tasks go first\n"
    "  --no-store            keep nothing across restarts (no database; each start begins\n"
    "                        empty, with ids from 1): for throwaway daemons and benchmarks\n"
    "  --max-connections N   connections served at once (default 1024; root's and the\n"
    "                        daemon's own uid's are never turned away for it)\n"
    "  --max-uid-connections N\n"
    "                        connections one uid may have open (default 128; not root)\n"
    "  --max-uid-buffers BYTES\n"
    "                        input and output one uid's connections may buffer\n"
    "                        (default 134217728; not root); past it, a connection goes\n"
    "  --message-timeout SECONDS\n"
    "                        time for a message to arrive whole, counted from the last\n"
    "                        one (default 30); idle connections are never dropped\n"
    "  --max-message BYTES   largest message accepted (default 16777216)\n"
    "  --max-output BYTES    unsent output a client may leave unread before it is\n"
    "                        disconnected (default 33554432)\n"
    "  --retain N            finished task records kept in memory per uid, its newest\n"
    "                        (default 10000; older ones are read back from the store)\n"
    "  --max-uid-memory BYTES\n"
    "                        memory one uid's tasks may hold: specs, results, records\n"
    "                        (default 268435456); past it a uid's oldest finished\n"
    "                        records go first, then its submits are refused\n"
    "  --max-result BYTES    largest result a task may have: a sleep's, a gather's\n"
    "                        (default 4194304; at most a quarter of --max-output, and\n"
    "                        that by default if less; results nest at most 16 levels)\n"
    "  --max-active N        pending+running tasks one uid may have (default 100000)\n"
    "  --max-uid-groups N    groups one uid's submits may make (default 64; a group goes\n"
    "                        once empty; root's and those set up with set_group stay)\n"
    "  --parallel N          slots of the default group, and of groups created from it\n"
    "                        (default: the number of online CPUs; 0: no bound)\n"
    "  --spawn-timeout SECONDS\n"
    "                        time a job may take from its start to its exec (default 10):\n"
    "                        past it the job's process is killed and the task fails\n"
    "                        spawn_failed (its owner stopped it, or its PATH search runs on)\n"
    "  --grace SECONDS       from SIGTERM to SIGKILL when a job is cancelled or times out\n"
    "                        (default 5; a task's args.grace overrides it)\n"
    "  --output-limit BYTES  keep at most this much of each job's stdout and stderr; the\n"
    "                        rest is discarded after a marker line (default 67108864;\n"
    "                        0: no cap; a task's args.output_limit overrides it)\n"
    "  --max-uid-output BYTES\n"
    "                        output on disk one uid's jobs in memory (running and\n"
    "                        --retain'ed) may keep (default 1073741824; 0: no bound);\n"
    "                        past it the uid's oldest finished jobs go,\n"
    "                        then the rest of a job's output is discarded after a marker\n"
    "  --nice N              nice value of the daemon itself, from -20 to 19 (default -5;\n"
    "                        lowering it needs root, CAP_SYS_NICE or an RLIMIT_NICE of\n"
    "                        20-N or more, else it is kept).\n"
    "                        Jobs run at the value corod was started with (under an\n"
    "                        unprivileged corod that raised its own: at that one)\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n"
    "\n"
    "SIGTERM or SIGINT stops it in order: no new work, connections closed, exit 0.\n";

/* The daemon's default nice value. On a CPU it shares with its clients, the Linux
 * scheduler (EEVDF) lets a woken task preempt the running one only while it has not had
 * more than its share of the CPU; at equal weight the daemon, which spends a little more
 * per request than a client that sends one and waits, loses that and every round trip
 * then costs an extra sleep and wake-up on both sides (bench/README.md, "The scheduler's
 * share"). A little more weight keeps its answers prompt; jobs do not inherit it. */
#define COROD_NICE_DEFAULT (-5)

static uv_signal_t sig_term, sig_int;
static srv *server;
static sy_service service;

static void on_signal(uv_signal_t *h, int signum)
{
    sy_log(LOG_NOTICE, "%s: shutting down", strsignal(signum));
    sy_service_stop(&service); /* STOPPING=1 */
    srv_shutdown(server);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    (void)h;
}

static int parse_size(const char *opt, const char *s, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        sy_log(LOG_ERR, "%s must be a whole number from %zu to %zu, not \"%s\"", opt, min, max, s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* Seconds from min to max, as a finite decimal number. */
static int parse_seconds(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        sy_log(LOG_ERR, "%s must be seconds from %g to %g, not \"%s\"", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Set the calling thread's nice value (threads created later inherit it) and tell the
 * jobs to get back the one the daemon started with. Failing to lower it is not fatal. */
static void apply_nice(int want, srv_limits *lim)
{
    errno = 0;
    int start = getpriority(PRIO_PROCESS, 0);
    if (start == -1 && errno)
        start = 0;
    if (want == start)
        return;
    if (setpriority(PRIO_PROCESS, 0, want) < 0) {
        /* Without CAP_SYS_NICE a process may go as low as 20 - its RLIMIT_NICE; a per-user
         * daemon is given that limit by its service manager (systemd/user/corod.service). */
        int err = errno;
        char hint[80] = "";
        if (err == EPERM || err == EACCES)
            snprintf(hint, sizeof hint, " (it needs CAP_SYS_NICE or an RLIMIT_NICE of %d or more)", 20 - want);
        sy_log(LOG_WARNING, "keeping nice value %d: cannot set %d: %s%s", start, want, strerror(err), hint);
        return;
    }
    lim->restore.nice_set = true;
    lim->restore.nice = start;
}

/* Descriptors up to the hard limit: each connection and each running job takes some, and
 * the per-uid bounds keep any one user's share, but the soft limit (1,024 under systemd)
 * would be reached by the whole machine's users long before they are. */
static void raise_nofile(srv_limits *lim)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        lim->restore.nofile = rl; /* jobs get this back */
        rl.rlim_cur = rl.rlim_max;
        lim->restore.nofile_set = setrlimit(RLIMIT_NOFILE, &rl) == 0;
    }
}

/* libuv starts its thread pool at its first use, and aborts if it cannot start it (under
 * a tight RLIMIT_AS, say). Started here, before anyone is served, a machine too tight for
 * it stops corod as it starts, rather than in the middle of some user's job later. */
static void pool_nothing(uv_work_t *w)
{
    (void)w;
}

static void pool_started(uv_work_t *w, int status)
{
    (void)w, (void)status;
}

static void start_thread_pool(uv_loop_t *loop)
{
    uv_work_t w;
    if (uv_queue_work(loop, &w, pool_nothing, pool_started) == 0)
        uv_run(loop, UV_RUN_DEFAULT); /* returns once it has run: nothing else is active */
}

/* mkdir -p with `mode` for the directories it creates. */
static int mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Remove the regular files in `dir` (before the loop starts: blocking is fine here). */
static int clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    return 0;
}

static char *default_socket(void)
{
    const char *env = getenv("CORO_SOCKET");
    if (env && *env)
        return strdup(env);
    if (geteuid() == 0)
        return strdup("/run/corod/corod.sock");
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (!rt || !*rt)
        return NULL;
    char *p;
    return asprintf(&p, "%s/corod/corod.sock", rt) < 0 ? NULL : p;
}

static char *default_state_dir(void)
{
    if (geteuid() == 0)
        return strdup("/var/lib/corod");
    const char *st = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *p = NULL;
    if (st && *st) {
        if (asprintf(&p, "%s/corod", st) < 0)
            p = NULL;
    } else if (home && *home) {
        if (asprintf(&p, "%s/.local/state/corod", home) < 0)
            p = NULL;
    }
    return p;
}

/* The store's writer removes a task's output files when it deletes the task's row. */
static void drop_output(uint64_t id, void *output_dir)
{
    kind_output_remove(output_dir, id);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, 0, 's' },    { "state-dir", required_argument, 0, 'd' },
        { "socket-mode", required_argument, 0, 'm' }, { "max-connections", required_argument, 0, 'c' },
        { "max-message", required_argument, 0, 'M' }, { "retain", required_argument, 0, 'r' },
        { "max-output", required_argument, 0, 'o' }, { "max-active", required_argument, 0, 'a' },
        { "parallel", required_argument, 0, 'p' },  { "grace", required_argument, 0, 'g' },
        { "output-limit", required_argument, 0, 'L' }, { "nice", required_argument, 0, 'n' },
        { "max-result", required_argument, 0, 'R' },  { "max-uid-memory", required_argument, 0, 'U' },
        { "max-uid-groups", required_argument, 0, 'G' }, { "max-uid-output", required_argument, 0, 'O' },
        { "max-uid-connections", required_argument, 0, 'C' }, { "max-uid-buffers", required_argument, 0, 'B' },
        { "message-timeout", required_argument, 0, 'T' }, { "spawn-timeout", required_argument, 0, 'S' },
        { "sync", required_argument, 0, 'y' },       { "no-store", no_argument, 0, 'N' },
        { "keep", required_argument, 0, 'k' },       { "keep-for", required_argument, 0, 'K' },
        { "max-uid-store", required_argument, 0, 'D' },
        { "help", no_argument, 0, 'h' },             { "version", no_argument, 0, 'V' },
        { 0, 0, 0, 0 },
    };
    char *sock = NULL, *state = NULL;
    int lockfd = -1;
    srv_config cfg = { .socket_mode = -1, .limits.output_limit = SRV_OUTPUT_LIMIT_DEFAULT };
    int nice_value = COROD_NICE_DEFAULT;
    st_config stcfg = { .sync = ST_SYNC_FULL };
    bool no_store = false;
    size_t v;
    int c;
    sy_log_init(); /* the journal, a terminal, or "<N>" lines */
    int nrc = sy_notify_open();
    if (nrc < 0)
        sy_log(LOG_WARNING, "NOTIFY_SOCKET is not a socket corod can use (%s): systemd will not hear from it",
               strerror(-nrc));
    while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (c) {
        case 's': free(sock), sock = strdup(optarg); break;
        case 'd': free(state), state = strdup(optarg); break;
        case 'N': no_store = true; break;
        case 'k':
            if (parse_size("--keep", optarg, 1, (size_t)1 << 40, &v) < 0)
                goto bad_usage;
            stcfg.keep = v;
            break;
        case 'K':
            if (parse_seconds("--keep-for", optarg, 1, 1e10, &stcfg.keep_for) < 0)
                goto bad_usage;
            break;
        case 'D':
            if (parse_size("--max-uid-store", optarg, 4096, (size_t)1 << 50, &v) < 0)
                goto bad_usage;
            stcfg.max_owner_bytes = v;
            break;
        case 'y':
            if (!strcmp(optarg, "full")) {
                stcfg.sync = ST_SYNC_FULL;
            } else if (!strcmp(optarg, "normal")) {
                stcfg.sync = ST_SYNC_NORMAL;
            } else {
                sy_log(LOG_ERR, "--sync must be full or normal, not \"%s\"", optarg);
                goto bad_usage;
            }
            break;
        case 'm': {
            char *end;
            long m = strtol(optarg, &end, 8);
            if (end == optarg || *end || m < 0 || m > 0777) {
                sy_log(LOG_ERR, "--socket-mode must be an octal mode such as 0660, not \"%s\"", optarg);
                goto bad_usage;
            }
            cfg.socket_mode = (int)m;
            break;
        }
        case 'c':
            if (parse_size("--max-connections", optarg, 1, 1000000, &cfg.max_connections) < 0)
                goto bad_usage;
            break;
        case 'M':
            if (parse_size("--max-message", optarg, 1024, (size_t)1 << 30, &cfg.max_message) < 0)
                goto bad_usage;
            break;
        case 'o':
            if (parse_size("--max-output", optarg, 4096, (size_t)1 << 34, &cfg.max_output) < 0)
                goto bad_usage;
            break;
        case 'a':
            if (parse_size("--max-active", optarg, 1, 100000000, &v) < 0)
                goto bad_usage;
            cfg.limits.max_active_per_uid = v;
            break;
        case 'r':
            if (parse_size("--retain", optarg, 1, 100000000, &v) < 0)
                goto bad_usage;
            cfg.limits.retain = v;
            break;
        case 'O':
            if (parse_size("--max-uid-output", optarg, 0, (size_t)1 << 62, &v) < 0)
                goto bad_usage;
            cfg.limits.max_uid_output = v ? v : SRV_UNBOUNDED;
            break;
        case 'C':
            if (parse_size("--max-uid-connections", optarg, 1, 1000000, &cfg.max_uid_connections) < 0)
                goto bad_usage;
            break;
        case 'B':
            if (parse_size("--max-uid-buffers", optarg, (size_t)1 << 20, (size_t)1 << 40, &cfg.max_uid_buffers) < 0)
                goto bad_usage;
            break;
        case 'T':
            if (parse_seconds("--message-timeout", optarg, 0.1, 86400, &cfg.message_timeout) < 0)
                goto bad_usage;
            break;
        case 'S':
            if (parse_seconds("--spawn-timeout", optarg, 0.1, 3600, &cfg.limits.spawn_timeout) < 0)
                goto bad_usage;
            break;
        case 'G':
            if (parse_size("--max-uid-groups", optarg, 1, 1000000, &v) < 0)
                goto bad_usage;
            cfg.limits.max_uid_groups = v;
            break;
        case 'U':
            if (parse_size("--max-uid-memory", optarg, (size_t)1 << 20, (size_t)1 << 40, &v) < 0)
                goto bad_usage;
            cfg.limits.max_uid_memory = v;
            break;
        case 'R':
            if (parse_size("--max-result", optarg, 1024, (size_t)1 << 30, &v) < 0)
                goto bad_usage;
            cfg.limits.max_result = v;
            break;
        case 'p':
            if (parse_size("--parallel", optarg, 0, 65536, &v) < 0)
                goto bad_usage;
            /* 0 here means "no bound"; the table reads 0 as "the CPU count". */
            cfg.limits.default_parallel = v ? (uint32_t)v : SRV_PARALLEL_UNBOUNDED;
            break;
        case 'g':
            if (parse_seconds("--grace", optarg, 0, 86400, &cfg.limits.grace) < 0)
                goto bad_usage;
            cfg.limits.has_grace = true;
            break;
        case 'L':
            if (parse_size("--output-limit", optarg, 0, (size_t)1 << 62, &v) < 0)
                goto bad_usage;
            cfg.limits.output_limit = v;
            break;
        case 'n': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || n < -20 || n > 19) {
                sy_log(LOG_ERR, "--nice must be a whole number from -20 to 19, not \"%s\"", optarg);
                goto bad_usage;
            }
            nice_value = (int)n;
            break;
        }
        case 'h': fputs(usage, stdout); free(sock); free(state); return 0;
        case 'V': printf("corod %s\n", COROD_VERSION); free(sock); free(state); return 0;
        default: fputs(usage, stderr); goto bad_usage;
        }
    }
    if (optind < argc) {
        sy_log(LOG_ERR, "unexpected argument \"%s\"", argv[optind]);
        fputs(usage, stderr);
        goto bad_usage;
    }
    /* A result travels in a record, in answers a client is only dropped from past
     * --max-output: one must fit in a quarter of it, with the rest of its answer. */
    size_t result_room = (cfg.max_output ? cfg.max_output : SRV_MAX_OUTPUT) / 4;
    if (!cfg.limits.max_result) {
        cfg.limits.max_result = CO_VALUE_BYTES_DEFAULT < result_room ? CO_VALUE_BYTES_DEFAULT : result_room;
    } else if (cfg.limits.max_result > result_room) {
        sy_log(LOG_ERR, "--max-result %zu does not fit a quarter of --max-output (%zu): at most %zu",
                cfg.limits.max_result, result_room * 4, result_room);
        goto bad_usage;
    }
    /* Sockets systemd passed (corod.socket): served instead of binding one. */
    char err[512] = "";
    int lfds[SRV_MAX_LISTENERS];
    int nl = sy_listen_fds(lfds, SRV_MAX_LISTENERS, err, sizeof err);
    if (nl < 0) {
        sy_log(LOG_ERR, "%s", err);
        goto bad_usage;
    }
    cfg.listen_fds = lfds;
    cfg.nlisten = (size_t)nl;
    if (!nl && !sock && !(sock = default_socket())) {
        sy_log(LOG_ERR, "no socket path: pass --socket PATH or set CORO_SOCKET or XDG_RUNTIME_DIR");
        goto bad_usage;
    }
    if (!state && !(state = default_state_dir())) {
        sy_log(LOG_ERR, "no state directory: pass --state-dir DIR or set HOME");
        goto bad_usage;
    }

    apply_nice(nice_value, &cfg.limits); /* before any thread exists: they inherit it */
    raise_nofile(&cfg.limits);

    /* One daemon per state directory: a second one would corrupt what the first keeps. */
    int rc = mkdirs(state, 0700);
    if (rc < 0) {
        sy_log(LOG_ERR, "cannot create state directory %s: %s", state, strerror(-rc));
        goto fail;
    }
    char lockpath[PATH_MAX];
    if (snprintf(lockpath, sizeof lockpath, "%s/lock", state) >= (int)sizeof lockpath) {
        sy_log(LOG_ERR, "state directory path too long: %s", state);
        goto fail;
    }
    lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0) {
        sy_log(LOG_ERR, "cannot open %s: %s", lockpath, strerror(errno));
        goto fail;
    }
    if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        sy_log(LOG_ERR, "state directory %s is in use by another corod", state);
        goto fail;
    }

    /* Jobs' output files: kept with their records in the store. Without one, what an
     * earlier run left there belongs to no task: cleared. */
    char outdir[PATH_MAX];
    if (snprintf(outdir, sizeof outdir, "%s/output", state) >= (int)sizeof outdir ||
        (rc = mkdirs(outdir, 0700)) < 0 || (no_store && (rc = clear_dir(outdir)) < 0)) {
        sy_log(LOG_ERR, "cannot prepare %s/output: %s", state, strerror(rc < 0 ? -rc : ENAMETOOLONG));
        goto fail;
    }
    cfg.limits.output_dir = outdir;
    stcfg.drop_output = drop_output;
    stcfg.drop_arg = outdir;

    /* The store: refused here, before anything serves, if it cannot be used as it is. */
    if (!no_store && (rc = st_open(state, &stcfg, &cfg.store, err, sizeof err)) < 0) {
        sy_log(LOG_ERR, "%s", err[0] ? err : co_strerror(rc));
        goto fail;
    }

    signal(SIGPIPE, SIG_IGN); /* a vanished client is a write error, not a death */
    uv_loop_t *loop = uv_default_loop();
    start_thread_pool(loop);
    co_sched *sched;
    co_sched_config scfg = { .value_max_bytes = cfg.limits.max_result };
    if ((rc = co_sched_new(loop, &scfg, &sched)) < 0) {
        sy_log(LOG_ERR, "cannot start the scheduler: %s", co_strerror(rc));
        goto fail;
    }
    cfg.socket_path = sock;
    /* Before the socket exists: a SIGTERM sent as soon as it appears is taken in order
     * (the loop runs on_signal once the server is there), not by the default action. */
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    if ((rc = srv_new(loop, sched, &cfg, &server, err, sizeof err)) < 0) {
        sy_log(LOG_ERR, "%s", err[0] ? err : co_strerror(rc));
        uv_close((uv_handle_t *)&sig_term, NULL);
        uv_close((uv_handle_t *)&sig_int, NULL);
        uv_run(loop, UV_RUN_NOWAIT); /* let what srv_new opened close */
        goto fail;
    }
    char where[PATH_MAX + 64];
    srv_where(server, where, sizeof where);
    sy_log(LOG_INFO, "serving %s (version %s, state in %s, pid %d)", where, COROD_VERSION, state, (int)getpid());
    sy_notify("READY=1");
    sy_service_start(&service, loop, srv_status, server);

    uv_run(loop, UV_RUN_DEFAULT);

    co_sched_free(sched);
    uv_run(loop, UV_RUN_DEFAULT);
    ex_ident_cache_clear();
    uv_loop_close(loop);
    close(lockfd);
    free(sock);
    free(state);
    return 0;

fail:
    st_close(cfg.store); /* not started: closed at once */
    if (lockfd >= 0)
        close(lockfd);
    free(sock); /* so that the sanitizers' leak check passes on every way out */
    free(state);
    return 1;

bad_usage:
    free(sock);
    free(state);
    return 2;
}
