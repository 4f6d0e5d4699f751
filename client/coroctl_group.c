/* coroctl_group.c: commands for groups — group add/set/rm, pause and resume (of some
 * groups or --all; --running also stops and continues what runs in them). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "coroctl.h"

/* create: `group add` makes the group; the others change one that exists (a typo in
 * `pause` must not leave a paused group behind). */
static int set_group_quiet(const char *name, int64_t parallel, int paused, bool create)
{
    int rc = connect_daemon();
    if (rc != EX_OK)
        return rc;
    rc = create ? corod_set_group(cli, name, parallel, paused) : corod_change_group(cli, name, parallel, paused);
    return rc < 0 ? daemon_error(rc) : EX_OK;
}

static int set_group(const char *name, int64_t parallel, int paused, bool create)
{
    int rc = set_group_quiet(name, parallel, paused, create);
    if (rc == EX_OK && json_out)
        puts("{}");
    return rc;
}

int cmd_group(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "rm") || !strcmp(argv[1], "remove"))) {
        if (argc < 3)
            return usage_error("group rm takes group names%s", "");
        int rc = connect_daemon();
        for (int i = 2; rc == EX_OK && i < argc; i++) {
            int r = corod_remove_group(cli, argv[i]);
            if (r < 0)
                rc = daemon_error(r);
        }
        if (rc == EX_OK && json_out)
            puts("{}");
        return rc;
    }
    static const struct option lo[] = {
        { "parallel", required_argument, 0, 'p' }, { "pause", no_argument, 0, 'P' },
        { "resume", no_argument, 0, 'R' },         { "slurm", no_argument, 0, 'S' },
        { "local", no_argument, 0, 'l' },          { "partition", required_argument, 0, 'a' },
        { "account", required_argument, 0, 'A' },  { "qos", required_argument, 0, 'q' },
        { "cpus", required_argument, 0, 'c' },     { "mem", required_argument, 0, 'm' },
        { "time", required_argument, 0, 't' },     { "srun-arg", required_argument, 0, 'x' },
        { "slurm-conf", required_argument, 0, 'C' }, { 0, 0, 0, 0 },
    };
    bool add = argc >= 2 && !strcmp(argv[1], "add");
    if (argc < 2 || (strcmp(argv[1], "set") && !add))
        return usage_error("usage: coroctl group set|add NAME [--parallel N] [--pause|--resume] [--slurm [SLURM "
                           "OPTIONS] | --local], or group rm NAME...%s", "");
    int64_t parallel = -1;
    int paused = -1, c;
    int executor = -1; /* 1: slurm, 0: local */
    corod_slurm sl = { 0 };
    const char *args[32];
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
        if (strchr("aAqcmtxC", c)) { /* any Slurm setting makes it a Slurm group */
            if (executor == 0)
                return usage_error("--local, and Slurm settings: one or the other%s", "");
            executor = 1;
        }
        if (c == 'S' || c == 'l') {
            if (executor >= 0 && executor != (c == 'S'))
                return usage_error("--slurm and --local: one or the other%s", "");
            executor = c == 'S';
        } else if (c == 'a') {
            sl.partition = optarg;
        } else if (c == 'A') {
            sl.account = optarg;
        } else if (c == 'q') {
            sl.qos = optarg;
        } else if (c == 'C') {
            sl.conf = optarg;
        } else if (c == 'c') {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (end == optarg || *end || optarg[0] == '-' || v < 1 || v > 4096)
                return usage_error("--cpus: a whole number from 1 to 4096, not \"%s\"", optarg);
            sl.cpus = (uint32_t)v;
        } else if (c == 'm') {
            if (parse_bytes(optarg, &sl.memory) < 0 || sl.memory < (1u << 20))
                return usage_error("--mem: a number of bytes, at least 1M (K, M, G or T after it), not \"%s\"",
                                   optarg);
        } else if (c == 't') {
            if (parse_age(optarg, &sl.time) < 0 || sl.time < 1)
                return usage_error("--time: a time limit such as 90s, 30m, 12h or 2d, not \"%s\"", optarg);
        } else if (c == 'x') {
            if (sl.nargs >= sizeof args / sizeof *args)
                return usage_error("--srun-arg: at most 32%s", "");
            args[sl.nargs++] = optarg;
            sl.args = args;
        } else if (c == 'p') {
            uint64_t v;
            if (strcmp(optarg, "0") == 0)
                v = 0;
            else if (parse_id(optarg, &v) < 0 || v > 65536)
                return usage_error("--parallel: not a number from 0 (no bound) to 65536: \"%s\"", optarg);
            parallel = (int64_t)v;
        } else if (c == 'P') {
            paused = 1;
        } else if (c == 'R') {
            paused = 0;
        } else {
            return bad_option(argv + 1);
        }
    }
    if (argc - 1 - optind != 1)
        return usage_error("group %s takes one group name", argv[1]);
    if (parallel < 0 && paused < 0 && executor < 0 && !add)
        return usage_error("group set: say what to change (--parallel N, --pause, --resume, --slurm or --local)%s",
                           "");
    const char *name = argv[1 + optind];
    if (executor < 0)
        return set_group(name, parallel, paused, add);
    /* The executor first: a group that cannot be a Slurm group is not made or changed. */
    if (!add) {
        int rc = set_group_quiet(name, -1, -1, false); /* it exists, or not_found */
        if (rc != EX_OK)
            return rc;
    } else if (connect_daemon() != EX_OK) {
        return EX_CONN;
    }
    int rc = corod_set_executor(cli, name, executor ? &sl : NULL);
    if (rc < 0)
        return daemon_error(rc);
    if (parallel >= 0 || paused >= 0)
        return set_group(name, parallel, paused, true);
    if (json_out)
        puts("{}");
    return EX_OK;
}

/* SIGSTOP or SIGCONT to the group's running jobs (root: everyone's; else yours). A job
 * that ended meanwhile is passed over. */
static int signal_running(const char *group, int sig)
{
    corod_list_opts o = COROD_LIST_OPTS_INIT;
    o.state = "running";
    o.group = group;
    o.kind = "exec";
    o.limit = UINT32_MAX;
    corod_task **v;
    size_t n;
    int rc = corod_list_opts_do(cli, &o, &v, &n);
    if (rc < 0)
        return daemon_error(rc);
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((rc = corod_signal(cli, v[i]->id, sig)) == COROD_EREMOTE && strcmp(corod_error_code(cli), "internal"))
            rc = 0; /* not running any more, or gone */
    corod_tasks_free(v, n);
    return rc < 0 ? daemon_error(rc) : EX_OK;
}

/* pause|resume GROUP... | --all, [--running]: resume continues stopped jobs as well,
 * whichever way they were stopped. */
static int pause_resume(int argc, char **argv, bool pause)
{
    static const struct option lo[] = { { "all", no_argument, 0, 'a' }, { "running", no_argument, 0, 'r' },
                                        { 0, 0, 0, 0 } };
    bool all = false, running = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'a')
            all = true;
        else if (c == 'r')
            running = true;
        else
            return bad_option(argv);
    }
    if (all ? argc != optind : argc == optind)
        return usage_error(pause ? "pause takes group names, or --all%s" : "resume takes group names, or --all%s", "");
    int rc = connect_daemon();
    if (rc != EX_OK)
        return rc;
    table_group *gs = NULL;
    size_t n = (size_t)(argc - optind);
    if (all && (rc = table_groups_get(&gs, &n)) < 0)
        return daemon_error(rc);
    for (size_t i = 0; i < n && rc == EX_OK; i++) {
        const char *g = all ? gs[i].name : argv[optind + (int)i];
        if (pause) {
            if ((rc = set_group_quiet(g, -1, 1, false)) == EX_OK && running)
                rc = signal_running(g, SIGSTOP);
        } else {
            if ((!running || (rc = signal_running(g, SIGCONT)) == EX_OK))
                rc = set_group_quiet(g, -1, 0, false);
        }
    }
    table_groups_free(gs, all ? n : 0);
    if (rc == EX_OK && json_out)
        puts("{}");
    return rc;
}

int cmd_pause(int argc, char **argv)
{
    return pause_resume(argc, argv, true);
}

int cmd_resume(int argc, char **argv)
{
    return pause_resume(argc, argv, false);
}
