/* kind_exec.h: what kind_exec.c and kind_exec_outcome.c share — an exec task's parsed
 * args and its running job. Internal to daemon/kinds. */
#ifndef KIND_EXEC_H
#define KIND_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

#include "co.h"
#include "ex_cgroup.h"
#include "ex_disk.h"
#include "ex_ident.h"
#include "ex_limits.h"
#include "ex_pump.h"
#include "ex_slurm.h"
#include "ex_spawn.h"
#include "kind.h"
#include "kind_slurm.h"

typedef struct exec_args {
    unsigned refs; /* the record and each running attempt */
    char **argv;   /* NULL-terminated */
    char **env;    /* "K=V", NULL-terminated; NULL: the owner's minimal environment */
    char *cwd;     /* NULL: the owner's home */
    uint8_t *in;   /* stdin bytes */
    size_t in_len;
    bool has_in;
    bool pipe_in;  /* stdin_pipe: its stdin stays open for `send` */
    double grace;          /* < 0: the daemon's */
    uint64_t output_limit; /* UINT64_MAX: the daemon's; 0: none */
    ex_limits lim;         /* its rlimits, umask and cgroup limits */
    ex_slurm_job slurm;    /* in a Slurm group: its cpus, memory and time over the group's */
    bool has_slurm;
    size_t bytes;          /* what all of this takes */
    char command[KIND_COMMAND_MAX];
} exec_args;

typedef struct exec_job {
    exec_args *a;
    co_sched *sched;
    uid_t owner;
    bool as_root;
    ex_restore restore; /* what the job gets back of the daemon's start */
    double grace;
    uint64_t limit;
    ex_disk_use *disk;      /* the record's share of its owner's disk (referenced) */
    ex_limits lim;          /* its own limits over its group's defaults */
    ex_cgroups *cgroups;    /* where its cgroup goes; NULL: it has none */
    ex_jobcg cg;            /* its cgroup, while has_cg */
    bool has_cg, cg_measured;
    ex_jobcg_stats cg_stats; /* read as it ended */
    char path[2][PATH_MAX]; /* stdout, stderr files */

    ex_ident *ident;
    int ident_rc;      /* of a lookup on the thread pool */
    char err[512];
    double spawn_timeout; /* seconds from clone to exec */
    bool stop_now;     /* cancelled while it started: stopped as soon as it runs */
    ex_spawned sp;
    int rd[2];         /* read ends of the stdout/stderr pipes */
    int in_w;          /* write end of the stdin pipe, or -1 */
    bool alive;        /* from its exec until it is reaped: its pid names it (exec_signal) */
    bool reaped;       /* ... and after */
    uint64_t early_sigs; /* signals sent while it started (bit N-1: signal N), sent at its exec */
    struct {           /* a `send` that came before its stdin pump was there */
        uint8_t *data;
        size_t len;
        bool eof;
        ex_feed_cb *cb;
        void *arg;
    } early;

    ex_pump *pump[3];  /* stdin, stdout, stderr */
    int live;          /* pumps not yet done */
    co_future *io_done; /* completed when `live` reaches 0 */
    double t0;
    uint64_t id;
    const kind_hooks *hooks; /* told of the process; hooks_arg released with the job */
    void *hooks_arg;
    kslurm *slurm;     /* its group runs jobs on a Slurm cluster: srun runs it */
    bool no_slurm;     /* ... but this corod has no srun to run it with */
} exec_job;

/* The task's result (exit 0) or error: `code` NULL for an exit status (its message made
 * here), else with `msg`; exit_code >= 0 for an exit, else `sig`. Returns what the body
 * returns: 0, CO_EFAILED, or -ENOMEM. */
int exec_outcome(exec_job *j, const char *code, const char *msg, int exit_code, int sig, const struct rusage *ru,
                 double dur);
/* A local job's, from its wait status (an exit, a signal, or its cgroup's OOM kill). */
int exec_local_outcome(exec_job *j, int status, const struct rusage *ru, double dur);
/* A Slurm job's: what Slurm recorded of its end, where srun's status cannot say it. */
int exec_slurm_outcome(exec_job *j, int status, const struct rusage *ru, double dur);

#endif
