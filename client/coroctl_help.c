/* coroctl_help.c: `coroctl COMMAND --help` — each command's usage, what it does, and
 * examples. */
#include <string.h>

#include "coroctl.h"

#define TASK_OPTS                                                                                    \
    "options of the task:\n"                                                                         \
    "  --name NAME            a name to find it by (list --name)\n"                                 \
    "  --group GROUP          its group (default: default); a new name makes a group\n"             \
    "  --after ID[,ID...]     start only once these have succeeded\n"                                \
    "  --delay SECONDS        start no sooner than this\n"                                           \
    "  --timeout SECONDS      fail an attempt that runs longer\n"                                    \
    "  --priority N           higher starts first in its group (above 0: root's)\n"                  \
    "  --retries N            attempts after a failure; --retry-delay SECONDS between them\n"        \
    "  --shield               a cancel of a gather it is in leaves it running\n"                     \
    "  --wait                 wait for it, and exit as it ends\n"

#define JOB_OPTS                                                                                     \
    "options of the job:\n"                                                                          \
    "  --env NAME=VALUE       over your environment (repeatable); --default-env: the daemon's\n"    \
    "                         minimal PATH, HOME, USER, LOGNAME and SHELL instead of yours\n"        \
    "  --cwd DIR              its directory (default: yours)\n"                                      \
    "  --stdin-file FILE|-    its standard input (default: none)\n"                                  \
    "  --stdin-pipe           its standard input stays open: coroctl send writes to it\n"           \
    "  --grace SECONDS        from SIGTERM to SIGKILL when it is stopped\n"                          \
    "  --output-limit BYTES   bytes kept of each of its streams\n"                                   \
    "  --umask OCTAL          its umask (default 022)\n"                                             \
    "  --rlimit NAME=SOFT[:HARD]  nofile, core, cpu or as; a count or infinity (repeatable)\n"      \
    "  --memory-max BYTES     (K, M, G, T) --pids-max N --cpu-weight 1..10000 --cpu-quota CPUS:\n"  \
    "                         kept by its cgroup, where the daemon has one for it (ping says)\n"    \
    "  --slurm-cpus N --slurm-mem BYTES --slurm-time 2h: in a Slurm group, its CPUs per task,\n"    \
    "                         memory and time limit on the cluster, over the group's\n"

#define FILTERS                                                                                      \
    "filters:\n"                                                                                     \
    "  --state S              pending, running, succeeded, failed or cancelled\n"                    \
    "  --group G --kind K --name N\n"                                                                \
    "  --owner UID            (root) one user's\n"                                                   \
    "  --since T --until T    created at or after T, before T (Unix seconds)\n"                     \
    "  --older-than AGE       created before AGE ago: 90s, 30m, 12h, 7d, 2w (seconds if bare)\n"

static const struct {
    const char *cmd, *text;
} helps[] = {
    { "add", "usage: coroctl add [OPTIONS] [--wait] -- CMD [ARGS...]\n"
             "Queue a command, and print its id. It runs as you, in your current directory, with your\n"
             "environment, when its group has a free slot.\n\n" TASK_OPTS JOB_OPTS
             "\nexamples:\n"
             "  coroctl add -- make -j4\n"
             "  id=$(coroctl add --group render --priority -5 -- blender -b scene.blend -a)\n"
             "  coroctl add --retries 2 --timeout 600 --wait -- ./backup.sh  # exits as it does\n" },
    { "run", "usage: coroctl run [OPTIONS] -- CMD [ARGS...]\n"
             "Queue a command, stream its stdout and stderr as they come, and exit with its exit code\n"
             "(128+N when killed by signal N). Ctrl-C cancels it, and exits 130.\n\n" TASK_OPTS JOB_OPTS
             "\nexamples:\n"
             "  coroctl run -- make test\n"
             "  coroctl run --memory-max 2G --rlimit nofile=4096 -- ./import.py\n" },
    { "logs", "usage: coroctl logs ID|NAME [--stderr|--all] [-f|--follow]\n"
              "Print a job's stdout (--stderr: its stderr; --all: both), from the start. --follow keeps\n"
              "printing until it ends. A job that never started says so, and exits 1.\n\n"
              "examples:\n"
              "  coroctl logs 42\n"
              "  coroctl logs nightly-backup   # the newest task of yours with that name\n"
              "  coroctl logs --follow --all 42\n" },
    { "group", "usage: coroctl group set|add NAME [--parallel N] [--pause|--resume]\n"
               "                             [--slurm [SLURM OPTIONS] | --local] | group rm NAME...\n"
               "Change a group (root or the daemon's own user): how many of its jobs run at once\n"
               "(0: no bound), and whether it starts anything new. `set` changes a group that\n"
               "exists (an unknown name is refused); `add` makes one if need be. `rm` removes\n"
               "groups set up this way once nothing is pending or running in them (the default\n"
               "group stays; one from the daemon's configuration file comes back at its next\n"
               "reload unless taken out of the file).\n\n"
               "--slurm: its jobs run on a Slurm cluster through srun, each as its owner, with\n"
               "the same output, cancel, retries and callbacks (ping says whether this daemon can);\n"
               "--local: here again. SLURM OPTIONS (any of them implies --slurm):\n"
               "  --partition P --account A --qos Q\n"
               "  --cpus N --mem BYTES (K, M, G, T) --time 2h   per job, unless it asks for its own\n"
               "  --srun-arg OPTION      one more srun option, --name or --name=value from the\n"
               "                         allow-list in PROTOCOL.md (repeatable, at most 32)\n"
               "  --slurm-conf PATH      the cluster's slurm.conf (SLURM_CONF)\n\n"
               "examples:\n"
               "  coroctl group add render --parallel 2\n"
               "  coroctl group add hpc --parallel 0 --partition batch --cpus 4 --time 2h \\\n"
               "      --srun-arg=--exclusive\n"
               "  coroctl group set nightly --pause\n"
               "  coroctl group rm render\n" },
    { "pause", "usage: coroctl pause GROUP... | --all [--running]\n"
               "Stop starting the groups' queued tasks (--all: every group's); what runs goes on,\n"
               "or with --running is stopped too (SIGSTOP to each running job's process group:\n"
               "its timeout still counts). An unknown group is refused (not made).\n\n"
               "examples:\n  coroctl pause render\n  coroctl pause --all --running\n" },
    { "resume", "usage: coroctl resume GROUP... | --all [--running]\n"
                "Start the groups' queued tasks again; --running also continues their stopped\n"
                "jobs (SIGCONT).\n\n"
                "examples:\n  coroctl resume render\n  coroctl resume --all --running\n" },
    { "groups", "usage: coroctl groups\n"
                "Show the groups: their slots, whether paused, what runs and waits in each.\n" },
    { "ping", "usage: coroctl ping\n"
              "Check the daemon answers; print its pid and protocol, whether its jobs run in\n"
              "cgroups (and with which controllers), and whether its groups can run jobs on Slurm.\n" },
    { "sleep", "usage: coroctl sleep SECONDS [OPTIONS]\n"
               "Submit a task that only waits; print its id. Handy as a timer for --after.\n\n" TASK_OPTS
               "\nexample:\n  a=$(coroctl sleep 60 --name grace-period); coroctl add --after $a -- ./next.sh\n" },
    { "gather", "usage: coroctl gather ID... [OPTIONS] [--return-exceptions]\n"
                "Submit a task that ends when all of these have: it succeeds with their results, or\n"
                "fails with the first error (--return-exceptions: the errors among the results).\n\n" TASK_OPTS
                "\nexample:\n  coroctl gather 12 13 14 --wait\n" },
    { "cancel", "usage: coroctl cancel ID... | --group GROUP [--message TEXT]\n"
                "Cancel tasks: a job gets SIGTERM to its process group, SIGKILL after its grace (in a\n"
                "cgroup: every process of it); a gather cancels its members. --group: every task\n"
                "pending or running in it (yours; everyone's for root). A task may be named by its\n"
                "name: the newest of yours with it.\n\n"
                "examples:\n  coroctl cancel 42 --message \"superseded\"\n  coroctl cancel --group render\n" },
    { "edit", "usage: coroctl edit ID [--name NAME] [--group GROUP] [--priority N] [--delay SECONDS]\n"
              "Change a task that has not started yet (pending: waiting for its after, its delay,\n"
              "or its group): its name (\"\" for none), its group (as a submit would name it),\n"
              "its priority (above 0: root's) or its delay, counted from now. Prints the task as\n"
              "it now is. A task that has started is refused (exit 3).\n\n"
              "examples:\n  coroctl edit 42 --priority 5 --group fast\n"
              "  coroctl edit nightly --delay 3600   # an hour from now\n" },
    { "priority", "usage: coroctl priority ID N\n"
                  "Give a task that has not started priority N (-1000000 to 1000000; above 0:\n"
                  "root's): edit --priority, shorter.\n\n"
                  "example:\n  coroctl priority 42 10\n" },
    { "send", "usage: coroctl send ID TEXT|- [-n|--no-newline] [--eof] | coroctl send ID --eof\n"
              "Write TEXT and a newline (-n: without), or all of standard input (-), into the stdin of\n"
              "a running job added with --stdin-pipe; --eof then closes it (alone: just closes it).\n"
              "Returns once the bytes are in the job's pipe: a job that does not read holds it.\n\n"
              "examples:\n  id=$(coroctl add --stdin-pipe -- ./installer.sh); coroctl send $id y\n"
              "  tail -f in.log | coroctl send $id -\n"
              "  coroctl send $id --eof\n" },
    { "kill", "usage: coroctl kill ID... [-s|--signal SIG]\n"
              "Send a signal (default TERM; a name such as HUP, USR1, STOP, CONT, or a number) to\n"
              "running jobs' process groups. The task goes on; it ends only if the job dies of\n"
              "the signal (then failed, with that signal). A job not running is refused.\n\n"
              "examples:\n  coroctl kill 42 --signal HUP    # reload\n"
              "  coroctl kill -s STOP 42; coroctl kill -s CONT 42\n" },
    { "wait", "usage: coroctl wait ID... | --group GROUP [--mode all|first_completed|first_exception]\n"
              "       [--timeout S]\n"
              "Wait for tasks and print them. Exits 1 if one failed or was cancelled, and 5 at the\n"
              "timeout, listing the ones still pending. --group: every task pending or running in\n"
              "it now.\n\n"
              "examples:\n"
              "  coroctl wait 12 13\n"
              "  coroctl wait --group render --timeout 3600\n"
              "  coroctl --json wait 12 13 --timeout 60\n" },
    { "status", "usage: coroctl status ID | coroctl status [FILTERS] [--format F]\n"
                "With an id: one task in detail: state, times, attempts, why it waits, and for a\n"
                "job its command, argv and outcome; then how it was submitted (options, cwd,\n"
                "limits, environment names; with --json the whole spec). Without: the table of\n"
                "tasks, as list.\n" },
    { "list", "usage: coroctl list [FILTERS] [--newest] [--limit N] [--format table|tsv|json|jsonl]\n"
              "Show tasks from the daemon's history (yours; anyone's for root), oldest first\n"
              "(--newest: newest first). On a terminal: the newest N (--limit, default 1000) as\n"
              "a table under a line per group (its slots, running, pending, paused), a line per\n"
              "task: id, name, state (coloured; not with NO_COLOR), exit code or signal, when it\n"
              "started, how long it ran (so far, for a running one), and its command cut to the\n"
              "terminal's width; a pending task says why it waits instead of when it started\n"
              "(after #N, delayed, group paused, group full, retry in N s). Piped (or --format\n"
              "tsv): a line per task, tab-separated: id, name, group, state, exit, started (ISO\n"
              "8601), seconds run, why it waits, command; \"-\" for none.\n\n" FILTERS
              "\nexamples:\n"
              "  coroctl list --state failed --group render\n"
              "  coroctl list --newest --limit 20\n"
              "  coroctl list --state failed | cut -f1 | xargs coroctl restart\n"
              "  coroctl list --json | jq '.[].id'\n" },
    { "restart", "usage: coroctl restart ID... | coroctl restart --failed [FILTERS]\n"
                 "Run ended tasks again, as new tasks from their stored specs; print the new ids.\n\n" FILTERS
                 "\nexample:\n  coroctl restart --failed --group render\n" },
    { "clean", "usage: coroctl clean [FILTERS]\n"
               "Forget ended tasks (yours; anyone's for root), with their output.\n\n" FILTERS
               "\nexamples:\n  coroctl clean --state succeeded --older-than 7d\n"
               "  coroctl clean --group render --until $(date -d 'yesterday' +%s)\n" },
    { "watch", "usage: coroctl watch [ID...]\n"
               "Print tasks as they end: these, or every one of yours. Ctrl-C stops.\n\n"
               "example:\n  coroctl --jsonl watch | while read -r t; do ...; done\n" },
};

const char *coroctl_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof helps / sizeof *helps; i++)
        if (!strcmp(helps[i].cmd, cmd))
            return helps[i].text;
    return NULL;
}
