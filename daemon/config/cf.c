/* cf.c: the options, from the command line and from the file (cf.h). */
#include "cf.h"
#include "ex_slurm.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co.h"
#include "cp_frame.h"
#include "sy_log.h"

/* The daemon's default nice value. On a CPU it shares with its clients, the Linux
 * scheduler (EEVDF) lets a woken task preempt the running one only while it has not had
 * more than its share of the CPU; at equal weight the daemon, which spends a little more
 * per request than a client that sends one and waits, loses that and every round trip
 * then costs an extra sleep and wake-up on both sides (bench/README.md, "The scheduler's
 * share"). A little more weight keeps its answers prompt; jobs do not inherit it. */
#define CF_NICE_DEFAULT (-5)

/* One row per option: its name (the long option, and the file's key), whether it takes a
 * value on the command line, and whether a reload applies it (else a changed value
 * waits for the next start). The setter is the switch in cf_set. */
enum {
    OPT_SOCKET, OPT_STATE_DIR, OPT_SOCKET_MODE, OPT_SYNC, OPT_KEEP, OPT_KEEP_FOR, OPT_MAX_UID_STORE, OPT_NO_STORE,
    OPT_MAX_CONNECTIONS, OPT_MAX_UID_CONNECTIONS, OPT_MAX_UID_BUFFERS, OPT_MESSAGE_TIMEOUT, OPT_MAX_MESSAGE,
    OPT_MAX_OUTPUT, OPT_RETAIN, OPT_MAX_UID_MEMORY, OPT_MAX_RESULT, OPT_MAX_ACTIVE, OPT_MAX_UID_GROUPS, OPT_PARALLEL,
    OPT_SPAWN_TIMEOUT, OPT_GRACE, OPT_OUTPUT_LIMIT, OPT_MAX_UID_OUTPUT, OPT_NICE, OPT_NO_CGROUPS, OPT_COUNT
};

static const struct cf_opt {
    const char *name;
    bool has_arg, live;
} cf_opts[OPT_COUNT] = {
    [OPT_SOCKET] = { "socket", true, false },
    [OPT_STATE_DIR] = { "state-dir", true, false },
    [OPT_SOCKET_MODE] = { "socket-mode", true, false },
    [OPT_SYNC] = { "sync", true, false },
    [OPT_KEEP] = { "keep", true, false },
    [OPT_KEEP_FOR] = { "keep-for", true, false },
    [OPT_MAX_UID_STORE] = { "max-uid-store", true, false },
    [OPT_NO_STORE] = { "no-store", false, false },
    [OPT_MAX_CONNECTIONS] = { "max-connections", true, true },
    [OPT_MAX_UID_CONNECTIONS] = { "max-uid-connections", true, true },
    [OPT_MAX_UID_BUFFERS] = { "max-uid-buffers", true, true },
    [OPT_MESSAGE_TIMEOUT] = { "message-timeout", true, true },
    [OPT_MAX_MESSAGE] = { "max-message", true, false },
    [OPT_MAX_OUTPUT] = { "max-output", true, false },
    [OPT_RETAIN] = { "retain", true, true },
    [OPT_MAX_UID_MEMORY] = { "max-uid-memory", true, true },
    [OPT_MAX_RESULT] = { "max-result", true, false },
    [OPT_MAX_ACTIVE] = { "max-active", true, true },
    [OPT_MAX_UID_GROUPS] = { "max-uid-groups", true, true },
    [OPT_PARALLEL] = { "parallel", true, false },
    [OPT_SPAWN_TIMEOUT] = { "spawn-timeout", true, true },
    [OPT_GRACE] = { "grace", true, true },
    [OPT_OUTPUT_LIMIT] = { "output-limit", true, true },
    [OPT_MAX_UID_OUTPUT] = { "max-uid-output", true, false },
    [OPT_NICE] = { "nice", true, false },
    [OPT_NO_CGROUPS] = { "no-cgroups", false, false },
};

_Static_assert(OPT_COUNT <= CF_MAX_OPTIONS, "cf_config.given holds every option");

static int cf_fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cf_fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int cf_size(const char *as, const char *s, size_t min, size_t max, size_t *out, char *err, size_t len)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return cf_fail(err, len, "%s must be a whole number from %zu to %zu, not \"%s\"", as, min, max, s);
    *out = (size_t)v;
    return 0;
}

/* Seconds from min to max, as a finite decimal number. */
static int cf_seconds(const char *as, const char *s, double min, double max, double *out, char *err, size_t len)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return cf_fail(err, len, "%s must be seconds from %g to %g, not \"%s\"", as, min, max, s);
    *out = v;
    return 0;
}

static int cf_bool(const char *as, const char *s, bool *out, char *err, size_t len)
{
    static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]))
            return *out = true, 0;
        if (!strcasecmp(s, no[i]))
            return *out = false, 0;
    }
    return cf_fail(err, len, "%s must be yes or no, not \"%s\"", as, s);
}

static int cf_text(char **field, const char *s, const char *as, char *err, size_t len)
{
    if (!*s)
        return cf_fail(err, len, "%s must not be empty", as);
    char *d = strdup(s);
    if (!d)
        return cf_fail(err, len, "out of memory");
    free(*field);
    *field = d;
    return 0;
}

void cf_init(cf_config *c)
{
    memset(c, 0, sizeof *c);
    c->srv.socket_mode = -1;
    c->srv.limits.output_limit = SRV_OUTPUT_LIMIT_DEFAULT;
    c->st.sync = ST_SYNC_FULL;
    c->nice = CF_NICE_DEFAULT;
}

void cf_free(cf_config *c)
{
    free(c->socket);
    free(c->state);
    for (size_t i = 0; i < c->ngroups; i++) {
        free(c->groups[i].name);
        free(c->groups[i].users);
        ex_slurm_unref(c->groups[i].conf.slurm);
    }
    free(c->groups);
    for (size_t i = 0; i < CF_MAX_OPTIONS; i++)
        free(c->given[i]);
    memset(c, 0, sizeof *c);
}

/* Option `id` from text v (NULL for a flag on the command line); `as` names it in
 * messages ("--keep" or "keep"). */
static int cf_set(cf_config *c, int id, const char *v, const char *as, char *err, size_t len)
{
    size_t n;
    int rc = 0;
    srv_limits *l = &c->srv.limits;
    switch (id) {
    case OPT_SOCKET: rc = cf_text(&c->socket, v, as, err, len); break;
    case OPT_STATE_DIR: rc = cf_text(&c->state, v, as, err, len); break;
    case OPT_NO_STORE: rc = v ? cf_bool(as, v, &c->no_store, err, len) : (c->no_store = true, 0); break;
    case OPT_NO_CGROUPS: rc = v ? cf_bool(as, v, &c->no_cgroups, err, len) : (c->no_cgroups = true, 0); break;
    case OPT_KEEP:
        if ((rc = cf_size(as, v, 1, (size_t)1 << 40, &n, err, len)) == 0)
            c->st.keep = n;
        break;
    case OPT_KEEP_FOR: rc = cf_seconds(as, v, 1, 1e10, &c->st.keep_for, err, len); break;
    case OPT_MAX_UID_STORE:
        if ((rc = cf_size(as, v, 4096, (size_t)1 << 50, &n, err, len)) == 0)
            c->st.max_owner_bytes = n;
        break;
    case OPT_SYNC:
        if (!strcmp(v, "full"))
            c->st.sync = ST_SYNC_FULL;
        else if (!strcmp(v, "normal"))
            c->st.sync = ST_SYNC_NORMAL;
        else
            rc = cf_fail(err, len, "%s must be full or normal, not \"%s\"", as, v);
        break;
    case OPT_SOCKET_MODE: {
        char *end;
        long m = strtol(v, &end, 8);
        if (end == v || *end || m < 0 || m > 0777)
            rc = cf_fail(err, len, "%s must be an octal mode such as 0660, not \"%s\"", as, v);
        else
            c->srv.socket_mode = (int)m;
        break;
    }
    case OPT_MAX_CONNECTIONS: rc = cf_size(as, v, 1, 1000000, &c->srv.max_connections, err, len); break;
    case OPT_MAX_MESSAGE: rc = cf_size(as, v, 1024, (size_t)1 << 30, &c->srv.max_message, err, len); break;
    case OPT_MAX_OUTPUT: rc = cf_size(as, v, 4096, (size_t)1 << 34, &c->srv.max_output, err, len); break;
    case OPT_MAX_ACTIVE: rc = cf_size(as, v, 1, 100000000, &l->max_active_per_uid, err, len); break;
    case OPT_RETAIN: rc = cf_size(as, v, 1, 100000000, &l->retain, err, len); break;
    case OPT_MAX_UID_OUTPUT:
        if ((rc = cf_size(as, v, 0, (size_t)1 << 62, &n, err, len)) == 0)
            l->max_uid_output = n ? n : SRV_UNBOUNDED;
        break;
    case OPT_MAX_UID_CONNECTIONS: rc = cf_size(as, v, 1, 1000000, &c->srv.max_uid_connections, err, len); break;
    case OPT_MAX_UID_BUFFERS:
        rc = cf_size(as, v, (size_t)1 << 20, (size_t)1 << 40, &c->srv.max_uid_buffers, err, len);
        break;
    case OPT_MESSAGE_TIMEOUT: rc = cf_seconds(as, v, 0.1, 86400, &c->srv.message_timeout, err, len); break;
    case OPT_SPAWN_TIMEOUT: rc = cf_seconds(as, v, 0.1, 3600, &l->spawn_timeout, err, len); break;
    case OPT_MAX_UID_GROUPS: rc = cf_size(as, v, 1, 1000000, &l->max_uid_groups, err, len); break;
    case OPT_MAX_UID_MEMORY: rc = cf_size(as, v, (size_t)1 << 20, (size_t)1 << 40, &l->max_uid_memory, err, len); break;
    case OPT_MAX_RESULT: rc = cf_size(as, v, 1024, (size_t)1 << 30, &l->max_result, err, len); break;
    case OPT_PARALLEL:
        /* 0 here means "no bound"; the table reads 0 as "the CPU count". */
        if ((rc = cf_size(as, v, 0, 65536, &n, err, len)) == 0)
            l->default_parallel = n ? (uint32_t)n : SRV_PARALLEL_UNBOUNDED;
        break;
    case OPT_GRACE:
        if ((rc = cf_seconds(as, v, 0, 86400, &l->grace, err, len)) == 0)
            l->has_grace = true;
        break;
    case OPT_OUTPUT_LIMIT:
        if ((rc = cf_size(as, v, 0, (size_t)1 << 62, &n, err, len)) == 0)
            l->output_limit = n;
        break;
    case OPT_NICE: {
        char *end;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < -20 || x > 19)
            rc = cf_fail(err, len, "%s must be a whole number from -20 to 19, not \"%s\"", as, v);
        else
            c->nice = (int)x;
        break;
    }
    }
    if (rc == 0) {
        char *g = strdup(v ? v : "yes");
        if (!g)
            return cf_fail(err, len, "out of memory");
        free(c->given[id]);
        c->given[id] = g;
    }
    return rc;
}

const char cf_usage[] =
    "usage: corod [options]\n"
    "Run the corod task daemon in the foreground.\n"
    "\n"
    "  --config PATH         the configuration file (default: as root\n"
    "                        /etc/corod/corod.conf; else $XDG_CONFIG_HOME/corod/corod.conf\n"
    "                        or ~/.config/corod/corod.conf; a missing default is no\n"
    "                        error). Its settings are these options without \"--\",\n"
    "                        and groups (corod.conf(5)); options given here win\n"
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
    "  --no-cgroups          run jobs without cgroups of their own, even where cgroup2 can\n"
    "                        be written (by default each job gets one: all its processes\n"
    "                        are killed with it, setsid() or not, and memory_max,\n"
    "                        pids_max, cpu_weight and cpu_quota can be kept)\n"
    "  --nice N              nice value of the daemon itself, from -20 to 19 (default -5;\n"
    "                        lowering it needs root, CAP_SYS_NICE or an RLIMIT_NICE of\n"
    "                        20-N or more, else it is kept).\n"
    "                        Jobs run at the value corod was started with (under an\n"
    "                        unprivileged corod that raised its own: at that one)\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n"
    "\n"
    "SIGTERM or SIGINT stops it in order: no new work, connections closed, exit 0.\n"
    "SIGHUP reads the configuration file again: its groups, and the bounds that may\n"
    "change while it runs (retain, max-active, max-uid-memory, max-uid-groups, grace,\n"
    "output-limit, spawn-timeout, max-connections, max-uid-connections,\n"
    "max-uid-buffers, message-timeout); a bad file changes nothing.\n";

/* ---- the command line ----------------------------------------------------------------- */

enum { CF_HELP = 'h', CF_VERSION = 'V', CF_CONFIG = 1000 };

int cf_parse_args(cf_config *c, int argc, char **argv, bool apply, const char **config_path)
{
    struct option longs[OPT_COUNT + 4];
    for (int i = 0; i < OPT_COUNT; i++)
        longs[i] = (struct option){ cf_opts[i].name, cf_opts[i].has_arg ? required_argument : no_argument, 0,
                                    2000 + i };
    longs[OPT_COUNT] = (struct option){ "config", required_argument, 0, CF_CONFIG };
    longs[OPT_COUNT + 1] = (struct option){ "help", no_argument, 0, CF_HELP };
    longs[OPT_COUNT + 2] = (struct option){ "version", no_argument, 0, CF_VERSION };
    longs[OPT_COUNT + 3] = (struct option){ 0, 0, 0, 0 };
    if (config_path)
        *config_path = NULL;
    optind = 0; /* a full rescan: this runs twice */
    opterr = apply;
    int ch;
    while ((ch = getopt_long(argc, argv, "hV", longs, NULL)) != -1) {
        if (ch == CF_CONFIG) {
            if (config_path)
                *config_path = optarg;
            continue;
        }
        if (!apply)
            continue;
        if (ch == CF_HELP) {
            fputs(cf_usage, stdout);
            return 1;
        }
        if (ch == CF_VERSION) {
            printf("corod %s\n", COROD_VERSION);
            return 1;
        }
        if (ch < 2000 || ch >= 2000 + OPT_COUNT) {
            fputs(cf_usage, stderr);
            return -EINVAL;
        }
        char as[64], err[512];
        snprintf(as, sizeof as, "--%s", cf_opts[ch - 2000].name);
        if (cf_set(c, ch - 2000, optarg, as, err, sizeof err) < 0) {
            sy_log(LOG_ERR, "%s", err);
            return -EINVAL;
        }
    }
    if (apply && optind < argc) {
        sy_log(LOG_ERR, "unexpected argument \"%s\"", argv[optind]);
        fputs(cf_usage, stderr);
        return -EINVAL;
    }
    return 0;
}

int cf_finish(cf_config *c, char *err, size_t len)
{
    /* A result travels in a record, in answers a client is only dropped from past
     * --max-output: one must fit in a quarter of it, with the rest of its answer. */
    srv_limits *l = &c->srv.limits;
    size_t room = (c->srv.max_output ? c->srv.max_output : SRV_MAX_OUTPUT) / 4;
    if (!l->max_result)
        l->max_result = CO_VALUE_BYTES_DEFAULT < room ? CO_VALUE_BYTES_DEFAULT : room;
    else if (l->max_result > room)
        return cf_fail(err, len, "--max-result %zu does not fit a quarter of --max-output (%zu): at most %zu",
                       l->max_result, room * 4, room);
    return 0;
}

void cf_changed_at_start(const cf_config *a, const cf_config *b, void (*fn)(const char *name, void *arg),
                         void *arg)
{
    for (int i = 0; i < OPT_COUNT; i++) {
        const char *x = a->given[i], *y = b->given[i];
        if (!cf_opts[i].live && (!x != !y || (x && strcmp(x, y))))
            fn(cf_opts[i].name, arg);
    }
}

/* ---- the file ------------------------------------------------------------------------- */

typedef struct cf_loading {
    cf_config *c;
    cf_group *group; /* the section being read, NULL: [corod] */
    bool in_corod;   /* else an unknown section: its keys are refused */
    char section[128];
    char err[400];   /* the first error's reason */
    int line;        /* lines read so far, to place a section's start */
} cf_loading;

static cf_group *cf_group_get(cf_config *c, const char *name, char *err, size_t len)
{
    for (size_t i = 0; i < c->ngroups; i++)
        if (!strcmp(c->groups[i].name, name))
            return &c->groups[i];
    if (c->ngroups >= CF_MAX_GROUPS) {
        cf_fail(err, len, "more than %u groups", CF_MAX_GROUPS);
        return NULL;
    }
    cf_group *n = realloc(c->groups, (c->ngroups + 1) * sizeof *n);
    if (!n) {
        cf_fail(err, len, "out of memory");
        return NULL;
    }
    c->groups = n;
    cf_group *g = &c->groups[c->ngroups];
    memset(g, 0, sizeof *g);
    g->conf.limits.umask = -1;
    if (!(g->name = strdup(name))) {
        cf_fail(err, len, "out of memory");
        return NULL;
    }
    c->ngroups++;
    /* conf.name and conf.users are pointed at once the file is read: the array moves. */
    return g;
}

/* "uid uid name, name": numbers are uids, names are looked up (at start, or on the
 * thread pool for a reload: never on the loop). */
static int cf_users(cf_group *g, const char *v, const char *as, char *err, size_t len)
{
    uint32_t *u = NULL;
    size_t n = 0;
    char *copy = strdup(v), *save = NULL;
    if (!copy)
        return cf_fail(err, len, "out of memory");
    int rc = 0;
    for (char *tok = strtok_r(copy, ", \t", &save); tok && rc == 0; tok = strtok_r(NULL, ", \t", &save)) {
        if (n >= SRV_MAX_GROUP_USERS) {
            rc = cf_fail(err, len, "%s: at most %u users", as, SRV_MAX_GROUP_USERS);
            break;
        }
        char *end;
        errno = 0;
        unsigned long id = strtoul(tok, &end, 10);
        if (*tok >= '0' && *tok <= '9' && !*end && !errno && id < UINT32_MAX) {
        } else {
            struct passwd pw, *res = NULL;
            char buf[4096];
            if (getpwnam_r(tok, &pw, buf, sizeof buf, &res) != 0 || !res) {
                rc = cf_fail(err, len, "%s: no user \"%s\"", as, tok);
                break;
            }
            id = pw.pw_uid;
        }
        uint32_t *grown = realloc(u, (n + 1) * sizeof *u);
        if (!grown) {
            rc = cf_fail(err, len, "out of memory");
            break;
        }
        u = grown;
        u[n++] = (uint32_t)id;
    }
    free(copy);
    if (rc < 0) {
        free(u);
        return rc;
    }
    free(g->users);
    g->users = u;
    g->conf.nusers = n;
    g->conf.has_users = true;
    return 0;
}

/* executor = local | slurm, and the slurm-* settings of a Slurm group (any of which makes
 * it one, unless executor says local). */
static int cf_slurm_key(cf_group *g, const char *name, const char *v, const char *as, char *err, size_t len)
{
    srv_group_conf *c = &g->conf;
    bool local = c->has_executor && !c->slurm;
    if (!strcmp(name, "executor")) {
        if (strcmp(v, "local") && strcmp(v, "slurm"))
            return cf_fail(err, len, "%s must be local or slurm, not \"%s\"", as, v);
        if (!strcmp(v, "local") && c->slurm)
            return cf_fail(err, len, "%s = local, and slurm-* settings are given: one or the other", as);
        c->has_executor = true;
        if (!strcmp(v, "slurm") && !c->slurm && !(c->slurm = ex_slurm_new()))
            return cf_fail(err, len, "out of memory");
        return 0;
    }
    if (local)
        return cf_fail(err, len, "%s is for a group whose executor is slurm", as);
    if (!c->slurm && !(c->slurm = ex_slurm_new()))
        return cf_fail(err, len, "out of memory");
    c->has_executor = true;
    const char *key = name + 6;
    char why[256];
    int rc;
    if (!strcmp(key, "cpus") || !strcmp(key, "memory") || !strcmp(key, "time")) {
        double d;
        if (cf_seconds(as, v, 0, 1e18, &d, err, len) < 0)
            return -EINVAL;
        rc = ex_slurm_set_num(c->slurm, key, d, why, sizeof why);
    } else if (!strcmp(key, "args")) { /* options separated by spaces */
        char *buf = strdup(v), *save = NULL;
        rc = buf ? 0 : -ENOMEM;
        for (char *t = buf ? strtok_r(buf, " \t", &save) : NULL; t && rc == 0; t = strtok_r(NULL, " \t", &save))
            rc = ex_slurm_set_str(c->slurm, "args", t, why, sizeof why);
        free(buf);
    } else {
        rc = ex_slurm_set_str(c->slurm, key, v, why, sizeof why);
    }
    if (rc == -ENOMEM)
        return cf_fail(err, len, "out of memory");
    return rc < 0 ? cf_fail(err, len, "%s: %s", as, why) : 0;
}

static int cf_group_key(cf_group *g, const char *name, const char *v, char *err, size_t len)
{
    char as[200];
    snprintf(as, sizeof as, "[group \"%s\"] %s", g->name, name);
    size_t n;
    double d;
    int rc;
    if (!strcmp(name, "parallel")) {
        if ((rc = cf_size(as, v, 0, 65536, &n, err, len)) == 0)
            g->conf.parallel = (uint32_t)n, g->conf.has_parallel = true;
        return rc;
    }
    if (!strcmp(name, "paused")) {
        if ((rc = cf_bool(as, v, &g->conf.paused, err, len)) == 0)
            g->conf.has_paused = true;
        return rc;
    }
    if (!strcmp(name, "priority")) {
        if ((rc = cf_seconds(as, v, -CP_MAX_PRIORITY, CP_MAX_PRIORITY, &d, err, len)) < 0 || d != (double)(int64_t)d)
            return cf_fail(err, len, "%s must be a whole number from %d to %d, not \"%s\"", as, -CP_MAX_PRIORITY,
                           CP_MAX_PRIORITY, v);
        g->conf.priority = (int64_t)d, g->conf.has_priority = true;
        return 0;
    }
    if (!strcmp(name, "users"))
        return cf_users(g, v, as, err, len);
    if (!strcmp(name, "executor") || !strncmp(name, "slurm-", 6))
        return cf_slurm_key(g, name, v, as, err, len);
    ex_limits *l = &g->conf.limits;
    if (!strcmp(name, "memory-max")) {
        if ((rc = cf_size(as, v, (size_t)1 << 20, (size_t)1 << 50, &n, err, len)) == 0)
            l->memory_max = n;
        return rc;
    }
    if (!strcmp(name, "pids-max")) {
        if ((rc = cf_size(as, v, 1, 4194304, &n, err, len)) == 0)
            l->pids_max = n;
        return rc;
    }
    if (!strcmp(name, "cpu-weight")) {
        if ((rc = cf_size(as, v, 1, EX_CPU_WEIGHT_MAX, &n, err, len)) == 0)
            l->cpu_weight = (uint32_t)n;
        return rc;
    }
    if (!strcmp(name, "cpu-quota")) {
        if ((rc = cf_seconds(as, v, 0.01, 4096, &d, err, len)) < 0)
            return cf_fail(err, len, "%s must be a number of CPUs from 0.01 to 4096, not \"%s\"", as, v);
        l->cpu_quota = d;
        return 0;
    }
    if (!strcmp(name, "umask")) {
        char *end;
        long m = strtol(v, &end, 8);
        if (end == v || *end || m < 0 || m > 0777)
            return cf_fail(err, len, "%s must be an octal mask such as 022, not \"%s\"", as, v);
        l->umask = (int)m;
        return 0;
    }
    for (int r = 0; r < EX_RLIM_COUNT; r++) {
        char key[32];
        snprintf(key, sizeof key, "rlimit-%s", ex_rlimit_name[r]);
        if (strcmp(name, key))
            continue;
        /* SOFT[:HARD], each a count or "infinity". */
        char soft[64], *colon;
        unsigned long long x[2];
        snprintf(soft, sizeof soft, "%s", v);
        if ((colon = strchr(soft, ':')))
            *colon = '\0';
        const char *part[2] = { soft, colon ? colon + 1 : soft };
        for (int k = 0; k < 2; k++) {
            char *end;
            errno = 0;
            x[k] = !strcmp(part[k], "infinity") ? (unsigned long long)RLIM_INFINITY : strtoull(part[k], &end, 10);
            if (strcmp(part[k], "infinity") && (errno || end == part[k] || *end || part[k][0] == '-'))
                return cf_fail(err, len, "%s must be SOFT[:HARD], each a count or infinity, not \"%s\"", as, v);
        }
        if (x[0] > x[1])
            return cf_fail(err, len, "%s: the soft limit is above the hard one", as);
        l->rlim_set[r] = true;
        l->rlim[r] = (struct rlimit){ .rlim_cur = (rlim_t)x[0], .rlim_max = (rlim_t)x[1] };
        return 0;
    }
    return cf_fail(err, len, "unknown setting \"%s\" in a group (parallel, paused, priority, users, memory-max, "
                             "pids-max, cpu-weight, cpu-quota, umask, rlimit-nofile, rlimit-core, rlimit-cpu, "
                             "rlimit-as, executor, slurm-partition, slurm-account, slurm-qos, slurm-cpus, "
                             "slurm-memory, slurm-time, slurm-args, slurm-conf)", name);
}

/* [corod], or [group "NAME"]. */
static int cf_section(cf_loading *ld, const char *section)
{
    snprintf(ld->section, sizeof ld->section, "%s", section);
    ld->group = NULL;
    ld->in_corod = !strcmp(section, "corod") || !*section;
    if (ld->in_corod)
        return 1;
    size_t n = strlen(section);
    if (n > 8 && !strncmp(section, "group \"", 7) && section[n - 1] == '"') {
        char name[CP_MAX_GROUP + 2];
        if (n - 8 > CP_MAX_GROUP || n - 8 == 0) {
            cf_fail(ld->err, sizeof ld->err, "a group name is 1 to %u characters", CP_MAX_GROUP);
            return 0;
        }
        memcpy(name, section + 7, n - 8);
        name[n - 8] = '\0';
        if (!cp_group_name_ok((cp_str){ name, n - 8 })) {
            cf_fail(ld->err, sizeof ld->err, "group \"%s\": a name is characters of A-Z a-z 0-9 . _ -", name);
            return 0;
        }
        ld->group = cf_group_get(ld->c, name, ld->err, sizeof ld->err);
        return ld->group != NULL;
    }
    cf_fail(ld->err, sizeof ld->err, "unknown section [%s]: [corod] or [group \"NAME\"]", section);
    return 0;
}

static int cf_handler(void *user, const char *section, const char *name, const char *value)
{
    cf_loading *ld = user;
    if (ld->err[0])
        return 0; /* the first error is the one said */
    if (strcmp(section, ld->section) && !cf_section(ld, section))
        return 0;
    if (!name) /* a section with no keys yet (inih's ini_allow_no_value callbacks) */
        return 1;
    if (!value) {
        cf_fail(ld->err, sizeof ld->err, "%s has no value (name = value)", name);
        return 0;
    }
    if (ld->group)
        return cf_group_key(ld->group, name, value, ld->err, sizeof ld->err) == 0;
    if (!ld->in_corod) {
        cf_fail(ld->err, sizeof ld->err, "unknown section [%s]", ld->section);
        return 0;
    }
    for (int i = 0; i < OPT_COUNT; i++)
        if (!strcmp(name, cf_opts[i].name))
            return cf_set(ld->c, i, value, name, ld->err, sizeof ld->err) == 0;
    cf_fail(ld->err, sizeof ld->err, "unknown setting \"%s\" (the settings are corod's long options, without --)",
            name);
    return 0;
}

int cf_load(cf_config *c, const char *path, char *err, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        struct stat st;
        /* A file in a directory we may not look into (a per-user corod started with
         * root's HOME) is not there for us; one we see but may not read is an error. */
        if (e == ENOENT || e == ENOTDIR || (e == EACCES && stat(path, &st) < 0))
            return -ENOENT;
        return cf_fail(err, len, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return cf_fail(err, len, "%s: is a directory, not a file", path);
    }
    /* One key per line, comments on lines of their own: a value keeps any ';' or '#'. */
    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_max_line = CF_MAX_LINE; /* a group's `users` may name many */
    cf_loading ld = { .c = c, .in_corod = true };
    int line = ini_parse_file(f, cf_handler, &ld);
    fclose(f);
    if (line == -2)
        return cf_fail(err, len, "%s: out of memory", path);
    if (line > 0)
        return cf_fail(err, len, "%s:%d: %s", path, line,
                       ld.err[0] ? ld.err : "not a setting: name = value, [corod] or [group \"NAME\"]");
    for (size_t i = 0; i < c->ngroups; i++) {
        c->groups[i].conf.name = c->groups[i].name;
        c->groups[i].conf.users = c->groups[i].users;
    }
    return 0;
}

char *cf_default_path(void)
{
    if (geteuid() == 0)
        return strdup(CF_SYSTEM_PATH);
    const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char *p = NULL;
    if (x && *x && asprintf(&p, "%s/corod/corod.conf", x) < 0)
        p = NULL;
    else if (!(x && *x) && home && *home && asprintf(&p, "%s/.config/corod/corod.conf", home) < 0)
        p = NULL;
    return p;
}
