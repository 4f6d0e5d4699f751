/* main.c: corod's entry point — options and their defaults, the state directory and its
 * lock, signals, systemd readiness, and the wiring of runtime, table and server. Runs in
 * the foreground; systemd or the caller supervises it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>

#include "cf.h"
#include "co.h"
#include "cp_frame.h"
#include "cp_spec.h"
#include "ex_cgroup.h"
#include "ex_ident.h"
#include "ex_slurm.h"
#include "kind.h"
#include "srv.h"
#include "sy_listen.h"
#include "sy_log.h"
#include "sy_notify.h"
#include "st_store.h"

#ifndef COROD_VERSION
#define COROD_VERSION "0.0.0"
#endif



static uv_signal_t sig_term, sig_int, sig_hup;
static srv *server;
static sy_service service;
static bool stopping;

/* The settings as started (a reload compares with them), and where they came from. */
static cf_config conf;
static char *conf_path;
static int conf_argc;
static char **conf_argv;

/* Jobs' cgroups (ex_cgroup.h); NULL: none. */
static ex_cgroups *cgroups;

#define FNV1A_OFFSET 1469598103934665603ull

/* FNV-1a of s, continuing from h (FNV1A_OFFSET to start). */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* A name for the state directory among cgroups (FNV-1a of its path): two daemons of
 * different state directories never meet there. */
static const char *state_tag(const char *state)
{
    static char tag[17];
    char real[PATH_MAX];
    snprintf(tag, sizeof tag, "%016llx",
             (unsigned long long)fnv1a(FNV1A_OFFSET, realpath(state, real) ? real : state));
    return tag;
}

/* What a group whose executor is slurm needs: srun, scancel and scontrol in the daemon's
 * PATH or the usual places, and corod-slurm-prolog beside corod (a build tree) or in a
 * libexec directory. Their absence is no error: hello says why there are no Slurm groups.
 * The tag names this daemon's jobs in Slurm — its host and state directory, so two
 * daemons sharing a cluster never cancel each other's jobs by name. */
static void find_slurm(const char *state, srv_limits *l)
{
    static ex_slurm_tools tools;
    static char why[PATH_MAX + 128], tag[17];
    char path[8192], self[PATH_MAX], prolog[PATH_MAX + 64];
    const char *env = getenv("PATH");
    snprintf(path, sizeof path, "%s%s%s", env ? env : "", env ? ":" : "", EX_DEFAULT_ROOT_PATH);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? (self[n] = '\0', strrchr(self, '/')) : NULL;
    if (slash)
        *slash = '\0';
    /* Beside corod (a build tree), in the libexec of the prefix corod is installed in
     * (wherever that went), then in the one it was configured for. */
    snprintf(prolog, sizeof prolog, "%s/corod-slurm-prolog", slash ? self : "/nonexistent");
    if (access(prolog, X_OK) < 0)
        snprintf(prolog, sizeof prolog, "%s/../libexec/corod/corod-slurm-prolog", slash ? self : "/nonexistent");
    if (access(prolog, X_OK) < 0)
        snprintf(prolog, sizeof prolog, "%s/corod/corod-slurm-prolog", COROD_LIBEXECDIR);
    if (!ex_slurm_find(&tools, path, prolog)) {
        snprintf(why, sizeof why, "%s%s%s%s%s", tools.srun[0] ? "" : "no srun in PATH; ",
                 tools.scancel[0] ? "" : "no scancel in PATH; ", tools.scontrol[0] ? "" : "no scontrol in PATH; ",
                 tools.prolog[0] ? "" : "no corod-slurm-prolog at ", tools.prolog[0] ? "" : prolog);
        l->slurm_why = why;
        return;
    }
    char host[256] = "", real[PATH_MAX];
    gethostname(host, sizeof host - 1);
    uint64_t h = fnv1a(fnv1a(fnv1a(FNV1A_OFFSET, host), ":"), realpath(state, real) ? real : state);
    snprintf(tag, sizeof tag, "%012llx", (unsigned long long)(h >> 16));
    l->slurm = &tools;
    l->slurm_tag = tag;
    sy_log(LOG_INFO, "groups may run their jobs on Slurm with %s", tools.srun);
}

static void close_signals(void)
{
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    sy_log(LOG_NOTICE, "%s: shutting down", strsignal(signum));
    stopping = true;
    sy_service_stop(&service); /* STOPPING=1 */
    srv_shutdown(server);
    close_signals();
    (void)h;
}

/* The file's groups, at start and at each reload: each is made or set as it says. */
static int apply_groups(const cf_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->ngroups; i++) {
        char why[300];
        int rc = srv_configure_group(server, &c->groups[i].conf, why, sizeof why);
        if (rc < 0) {
            snprintf(err, errlen, "%s: %s", conf_path ? conf_path : "the configuration", why);
            return rc;
        }
    }
    return 0;
}

/* ---- reload (SIGHUP) ----------------------------------------------------------------------
 * The file is read on the thread pool (a slow disk, and the user names of a group's
 * `users`, which may take a directory service, never hold the loop), into settings of
 * its own; only once all of it is good is anything applied, on the loop. */

static struct {
    uv_work_t req;
    bool busy;
    cf_config next;
    int rc;
    char err[600];
} reload;

static void reload_work(uv_work_t *w)
{
    (void)w;
    cf_init(&reload.next);
    reload.err[0] = '\0';
    reload.rc = conf_path ? cf_load(&reload.next, conf_path, reload.err, sizeof reload.err) : 0;
    if (reload.rc == -ENOENT) /* no file (any more): its settings are the defaults */
        reload.rc = 0;
}

static void said_at_start(const char *name, void *arg)
{
    (void)arg;
    sy_log(LOG_WARNING, "reload: %s changed; it takes effect at the next start", name);
}

static void reload_done(uv_work_t *w, int status)
{
    (void)w;
    reload.busy = false;
    int rc = status < 0 ? status : reload.rc;
    /* The command line wins over the file, as at start (it was good then). */
    if (rc == 0 && cf_parse_args(&reload.next, conf_argc, conf_argv, true, NULL) != 0)
        rc = -EINVAL, snprintf(reload.err, sizeof reload.err, "the command line");
    if (rc == 0)
        rc = cf_finish(&reload.next, reload.err, sizeof reload.err);
    if (stopping) {
        cf_free(&reload.next);
        return;
    }
    if (rc < 0) {
        sy_log(LOG_ERR, "reload refused, the running settings stay: %s",
               reload.err[0] ? reload.err : co_strerror(rc));
    } else {
        cf_changed_at_start(&conf, &reload.next, said_at_start, NULL);
        srv_reconfigure(server, &reload.next.srv);
        char err[700];
        if (apply_groups(&reload.next, err, sizeof err) < 0)
            sy_log(LOG_ERR, "reload: %s", err);
        else
            sy_log(LOG_INFO, "reloaded %s", conf_path ? conf_path : "(no configuration file)");
    }
    cf_free(&reload.next);
    sy_notify("READY=1");
    sy_service_status(&service);
}

static void on_reload(uv_signal_t *h, int signum)
{
    (void)signum;
    if (stopping)
        return;
    if (reload.busy) {
        sy_log(LOG_NOTICE, "SIGHUP: a reload is already under way");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[64];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    sy_notify(msg);
    reload.busy = true;
    if (uv_queue_work(h->loop, &reload.req, reload_work, reload_done) < 0) {
        reload.busy = false;
        sy_log(LOG_ERR, "reload: cannot queue the read of the file");
        sy_notify("READY=1");
    }
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
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    /* Jobs get the hard limit the daemon started with, and a soft one of at most
     * EX_NOFILE_SOFT: a unit's LimitNOFILE= is the daemon's, not its jobs'. */
    lim->restore.nofile = rl;
    if (lim->restore.nofile.rlim_cur > EX_NOFILE_SOFT)
        lim->restore.nofile.rlim_cur = EX_NOFILE_SOFT;
    lim->restore.nofile_set = true;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
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

/* ... and merges an `edit` of a pending task into the spec it keeps (on its thread). */
static int spec_edit(const void *spec, size_t len, const void *edits, size_t elen, void **out, size_t *olen)
{
    cp_out o;
    cp_out_init(&o);
    int rc = cp_spec_edit(spec, len, edits, elen, &o);
    if (rc < 0) {
        cp_out_free(&o);
        return rc;
    }
    *olen = o.size;
    *out = cp_out_release(&o);
    return *out ? 0 : -ENOMEM;
}

int main(int argc, char **argv)
{
    int lockfd = -1;
    sy_log_init(); /* the journal, a terminal, or "<N>" lines */
    int nrc = sy_notify_open();
    if (nrc < 0)
        sy_log(LOG_WARNING, "NOTIFY_SOCKET is not a socket corod can use (%s): systemd will not hear from it",
               strerror(-nrc));

    /* The file first, then the command line over it. */
    cf_init(&conf);
    conf_argc = argc, conf_argv = argv;
    const char *given_path;
    char err[600] = "";
    cf_parse_args(&conf, argc, argv, false, &given_path);
    conf_path = given_path ? strdup(given_path) : cf_default_path();
    int rc = conf_path ? cf_load(&conf, conf_path, err, sizeof err) : -ENOENT;
    if (rc == -ENOENT && given_path) {
        sy_log(LOG_ERR, "cannot read %s: %s", given_path, strerror(ENOENT));
        goto bad_usage;
    }
    if (rc < 0 && rc != -ENOENT) {
        sy_log(LOG_ERR, "%s", err);
        goto bad_usage;
    }
    if ((rc = cf_parse_args(&conf, argc, argv, true, NULL)) != 0) {
        cf_free(&conf);
        free(conf_path);
        return rc > 0 ? 0 : 2;
    }
    if (cf_finish(&conf, err, sizeof err) < 0) {
        sy_log(LOG_ERR, "%s", err);
        goto bad_usage;
    }
    srv_config *cfg = &conf.srv;

    /* Sockets systemd passed (corod.socket): served instead of binding one. */
    int lfds[SRV_MAX_LISTENERS];
    int nl = sy_listen_fds(lfds, SRV_MAX_LISTENERS, err, sizeof err);
    if (nl < 0) {
        sy_log(LOG_ERR, "%s", err);
        goto bad_usage;
    }
    cfg->listen_fds = lfds;
    cfg->nlisten = (size_t)nl;
    if (!nl && !conf.socket && !(conf.socket = default_socket())) {
        sy_log(LOG_ERR, "no socket path: pass --socket PATH or set CORO_SOCKET or XDG_RUNTIME_DIR");
        goto bad_usage;
    }
    if (!conf.state && !(conf.state = default_state_dir())) {
        sy_log(LOG_ERR, "no state directory: pass --state-dir DIR or set HOME");
        goto bad_usage;
    }
    const char *state = conf.state;

    apply_nice(conf.nice, &cfg->limits); /* before any thread exists: they inherit it */
    raise_nofile(&cfg->limits);

    /* One daemon per state directory: a second one would corrupt what the first keeps. */
    rc = mkdirs(state, 0700);
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
        (rc = mkdirs(outdir, 0700)) < 0 || (conf.no_store && (rc = clear_dir(outdir)) < 0)) {
        sy_log(LOG_ERR, "cannot prepare %s/output: %s", state, strerror(rc < 0 ? -rc : ENAMETOOLONG));
        goto fail;
    }
    cfg->limits.output_dir = outdir;

    /* Jobs' cgroups, where there is a part of cgroup2 we may write; and what a daemon of
     * this state directory left running there, killed before anything is restored. */
    char why[512] = "--no-cgroups";
    if (conf.no_cgroups) {
        cfg->limits.cgroups_why = why;
    } else if (ex_cgroups_open(state_tag(state), &cgroups, why, sizeof why) == 0) {
        int swept = ex_cgroups_sweep(cgroups);
        unsigned ctl = ex_cgroups_controllers(cgroups);
        sy_log(LOG_INFO, "jobs run in cgroups of their own under %s (controllers:%s%s%s%s)%s",
               ex_cgroups_path(cgroups), ctl & EX_CG_MEMORY ? " memory" : "", ctl & EX_CG_PIDS ? " pids" : "",
               ctl & EX_CG_CPU ? " cpu" : "", ctl ? "" : " none: memory, tasks and CPU cannot be limited",
               swept > 0 ? "; killed what was left in the cgroups of earlier jobs" : "");
    } else {
        sy_log(LOG_NOTICE, "jobs run without cgroups: %s", why);
        cfg->limits.cgroups_why = why;
    }
    cfg->limits.cgroups = cgroups;
    find_slurm(state, &cfg->limits);
    conf.st.drop_output = drop_output;
    conf.st.drop_arg = outdir;
    conf.st.spec_edit = spec_edit;

    /* The store: refused here, before anything serves, if it cannot be used as it is. */
    if (!conf.no_store && (rc = st_open(state, &conf.st, &cfg->store, err, sizeof err)) < 0) {
        sy_log(LOG_ERR, "%s", err[0] ? err : co_strerror(rc));
        goto fail;
    }

    signal(SIGPIPE, SIG_IGN); /* a vanished client is a write error, not a death */
    uv_loop_t *loop = uv_default_loop();
    start_thread_pool(loop);
    co_sched *sched;
    co_sched_config scfg = { .value_max_bytes = cfg->limits.max_result };
    if ((rc = co_sched_new(loop, &scfg, &sched)) < 0) {
        sy_log(LOG_ERR, "cannot start the scheduler: %s", co_strerror(rc));
        goto fail;
    }
    cfg->socket_path = conf.socket;
    /* Before the socket exists: a SIGTERM sent as soon as it appears is taken in order
     * (the loop runs on_signal once the server is there), not by the default action. */
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_hup, on_reload, SIGHUP);
    if ((rc = srv_new(loop, sched, cfg, &server, err, sizeof err)) < 0) {
        sy_log(LOG_ERR, "%s", err[0] ? err : co_strerror(rc));
        close_signals();
        uv_run(loop, UV_RUN_NOWAIT); /* let what srv_new opened close */
        goto fail;
    }
    if ((rc = apply_groups(&conf, err, sizeof err)) < 0) {
        sy_log(LOG_ERR, "%s", err);
        stopping = true;
        srv_shutdown(server);
        close_signals();
    } else {
        char where[PATH_MAX + 64];
        srv_where(server, where, sizeof where);
        sy_log(LOG_INFO, "serving %s (version %s, state in %s, pid %d)", where, COROD_VERSION, state,
               (int)getpid());
        sy_notify("READY=1");
        sy_service_start(&service, loop, srv_status, server);
    }

    uv_run(loop, UV_RUN_DEFAULT);
    co_sched_free(sched);
    uv_run(loop, UV_RUN_DEFAULT);
    ex_ident_cache_clear();
    uv_loop_close(loop);
    ex_cgroups_close(cgroups);
    close(lockfd);
    cf_free(&conf);
    free(conf_path);
    return rc == 0 ? 0 : 1;

fail:
    st_close(cfg->store); /* not started: closed at once */
    ex_cgroups_close(cgroups);
    if (lockfd >= 0)
        close(lockfd);
    cf_free(&conf); /* so that the sanitizers' leak check passes on every way out */
    free(conf_path);
    return 1;

bad_usage:
    cf_free(&conf);
    free(conf_path);
    return 2;
}
