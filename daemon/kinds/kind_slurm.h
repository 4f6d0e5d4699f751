/* kind_slurm: an exec job of a Slurm group — run as `srun` by its owner, as a local job
 * is run, with what only such a job needs: the prolog's pipe that tells corod its Slurm
 * job id and nodes, stopping it the Slurm way (scancel), and asking Slurm how it ended.
 * Used by kind_exec.c, whose job holds one of these while its group's executor is slurm. */
#ifndef KIND_SLURM_H
#define KIND_SLURM_H

#include <stdbool.h>
#include <stdint.h>

#include "co.h"
#include "ex_ident.h"
#include "ex_run.h"
#include "ex_slurm.h"

#define KSLURM_END_PATIENCE 5.0 /* seconds to wait for Slurm to record a job's end */
#define KSLURM_RUN_TIMEOUT 30.0 /* seconds a scancel or scontrol may take */
#define KSLURM_KILL_WAIT 60.0   /* seconds after a full scancel before srun itself is killed */

typedef struct kind_hooks kind_hooks;
typedef struct kslurm_busy kslurm_busy;

typedef struct kslurm {
    ex_slurm *s;                 /* the group's settings (referenced) */
    const ex_slurm_tools *tools;
    ex_slurm_job over;           /* the job's own cpus, memory and time */
    uint64_t id;                 /* corod's task id */
    uid_t owner;
    char name[64];               /* its Slurm job name: corod-<tag>-<id> */
    char **argv, **envp;         /* srun's command line and environment */
    char **run_env;              /* scancel's and scontrol's environment */
    int rd, wr;                  /* the prolog's pipe (wr: the child's descriptor 3) */
    co_task *reader;             /* reads the prolog's line */
    uint64_t job;                /* its Slurm job id; 0: not known (yet) */
    char nodes[EX_SLURM_NODES_MAX + 1];
    const ex_ident *ident;       /* its owner (the job's reference) */
    const kind_hooks *hooks;     /* told of the job id; may be NULL */
    void *hooks_arg;
    kslurm_busy *busy;           /* a `signal`'s scancel in flight (shared with it) */
    bool have_end;               /* what Slurm said of its end */
    ex_slurm_end end;
} kslurm;

/* Before the spawn: srun's argv and environment around the job's own, and the pipe.
 * 0, or a negative errno with a sentence in err. */
int kslurm_prepare(kslurm *k, char *const *argv, char *const *envp, char *err, size_t len);
/* srun runs: the child's end of the pipe goes, and a reader waits for the prolog. */
void kslurm_spawned(kslurm *k, co_sched *sched);
/* Cancel: SIGTERM to the job's steps (a job not yet allocated is cancelled outright);
 * then, with full, the whole job as scancel does it (SIGTERM, Slurm's KillWait,
 * SIGKILL). Coroutine-only; failures are logged in the outcome's place (the caller
 * falls back to killing srun). 0 or a negative errno. */
int kslurm_cancel(kslurm *k, int sig, bool full);
/* A signal to the job's steps (the `signal` method), from the loop: sent by a coroutine
 * of its own. 0, -EAGAIN before Slurm has given it an id, -EBUSY while the job's last
 * signal is still being sent, -ENOMEM. */
int kslurm_signal(kslurm *k, co_sched *sched, int sig);
/* After srun exited with `status`: the reader ends (it has the line by now, or never will),
 * and unless corod `stopped` the job, when srun's status or a word on stderr says Slurm
 * may have ended the job itself, Slurm is asked how (have_end, end). A job whose srun was
 * killed, or that Slurm still runs KSLURM_END_PATIENCE after srun exited, is cancelled:
 * nobody would see it again. Coroutine-only. */
void kslurm_finish(kslurm *k, int status, bool said_something, bool stopped);
void kslurm_free(kslurm *k);

/* Its Slurm job name, from the daemon's tag, the task id and the attempt (a restart that
 * cancels an interrupted attempt by name must not touch the next one). */
#define KSLURM_NAME_FMT "corod-%s-%llu-%u"
/* scancel as `as`, of the job `job`, or (job 0) of as's jobs named `name`, with one
 * option (NULL: none). Coroutine-only. 0 once scancel succeeded, -EIO when it did not
 * (res->out says why), or ex_run's error. */
int kslurm_scancel(const ex_slurm_tools *tools, const ex_ident *as, char *const *env, uint64_t job,
                   const char *name, const char *opt, ex_run_result *res);
/* The environment scancel and scontrol run with for a group of settings s (one
 * allocation: free() it). NULL: out of memory. */
char **kslurm_env(const ex_slurm *s);

#endif
