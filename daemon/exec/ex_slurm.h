/* ex_slurm: what a Slurm group's jobs are run with — its settings (partition, account,
 * qos, cpus, memory, time limit, extra srun arguments from an allow-list, the cluster's
 * slurm.conf), the srun command line made of them, and the reading of what Slurm says:
 * the line corod's srun prolog writes (the job id and its nodes) and `scontrol -o show
 * job` (how the job ended). Pure: no loop, no processes (kind_slurm.c runs them). */
#ifndef EX_SLURM_H
#define EX_SLURM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EX_SLURM_NAME_MAX 64u     /* a partition, account or qos name */
#define EX_SLURM_ARGS_MAX 32u     /* extra srun arguments of a group */
#define EX_SLURM_ARG_LEN 256u     /* ... each, in bytes */
#define EX_SLURM_CPUS_MAX 4096u
#define EX_SLURM_MEMORY_MIN (1ull << 20)
#define EX_SLURM_MEMORY_MAX (1ull << 50)
#define EX_SLURM_TIME_MAX (365.0 * 86400) /* seconds */
#define EX_SLURM_NODES_MAX 255u   /* bytes of a node list kept for a record */

/* Per job, over the group's (0: the group's). */
typedef struct ex_slurm_job {
    uint32_t cpus;
    uint64_t memory; /* bytes */
    double time;     /* seconds */
} ex_slurm_job;

/* A group's settings: shared by the group and every job started from it. */
typedef struct ex_slurm {
    unsigned refs;
    char *partition, *account, *qos; /* NULL: the cluster's default */
    ex_slurm_job job;                /* cpus per task, memory, time limit (0: Slurm's default) */
    char **args;                     /* extra srun arguments, allow-listed */
    size_t nargs;
    char *conf;                      /* SLURM_CONF for srun and friends; NULL: Slurm's own default */
} ex_slurm;

/* Where the programs are (ex_slurm_find); empty strings where they are not. */
typedef struct ex_slurm_tools {
    char srun[256], scancel[256], scontrol[256];
    char prolog[4096]; /* corod-slurm-prolog */
} ex_slurm_tools;

ex_slurm *ex_slurm_new(void); /* NULL: out of memory */
ex_slurm *ex_slurm_ref(ex_slurm *s);
void ex_slurm_unref(ex_slurm *s);

/* One setting by its name (partition, account, qos, conf, arg — which appends — cpus,
 * memory, time): 0, or -EINVAL with a sentence in err naming `key`, or -ENOMEM. Numbers
 * come in `num`, strings in `str`. */
int ex_slurm_set_str(ex_slurm *s, const char *key, const char *str, char *err, size_t len);
int ex_slurm_set_num(ex_slurm *s, const char *key, double num, char *err, size_t len);
/* Checks a per-job value as ex_slurm_set_num does. */
int ex_slurm_job_set(ex_slurm_job *j, const char *key, double num, char *err, size_t len);
/* True for an srun option a group may add ("--name" or "--name=value", name allowed). */
bool ex_slurm_arg_ok(const char *arg);

/* Finds srun, scancel and scontrol in `path` (a PATH) and the prolog at `prolog` (tried
 * only if it is executable). True when all are there. Blocks on the disk: at start. */
bool ex_slurm_find(ex_slurm_tools *t, const char *path, const char *prolog);

/* The command line of a job: srun, its options, "--", then argv. `name` is its Slurm job
 * name. A NULL-terminated array in one allocation (free() it); NULL: out of memory. */
char **ex_slurm_argv(const ex_slurm_tools *t, const ex_slurm *s, const ex_slurm_job *over, const char *name,
                     char *const *argv);
/* The environment srun gets: envp without what srun would read as options (SLURM_*,
 * SRUN_*, SALLOC_*, SBATCH_*), with SLURM_CONF when the group names one. One allocation,
 * whose strings point into envp or s; NULL: out of memory. */
char **ex_slurm_env(const ex_slurm *s, char *const *envp);

/* The prolog's line, "JOBID NODELIST\n" (the prolog is run as the job's owner, who could
 * write anything there): 0 with the id and the node list (cut to `nlen` - 1), or -EINVAL. */
int ex_slurm_prolog_parse(const char *line, size_t len, uint64_t *job, char *nodes, size_t nlen);

/* How a job ended, from `scontrol -o show job ID`. */
typedef struct ex_slurm_end {
    char state[32];   /* JobState: COMPLETED, FAILED, TIMEOUT, NODE_FAIL, PREEMPTED, ... */
    char reason[64];
    int exit_code, signal; /* ExitCode=CODE:SIGNAL */
    char nodes[EX_SLURM_NODES_MAX + 1];
} ex_slurm_end;

/* 0, or -EINVAL when the text is not a job's. */
int ex_slurm_end_parse(const char *text, ex_slurm_end *e);
/* True while the job has not ended in Slurm's eyes (RUNNING, COMPLETING, ...). */
bool ex_slurm_end_pending(const ex_slurm_end *e);
/* The outcome's code for a job that did not exit on its own terms: "timeout",
 * "node_failure", "preempted", "oom", "slurm_cancelled", "slurm_failed"; NULL for one
 * that exited or was killed by a signal (its exit code and signal then say it). */
const char *ex_slurm_end_code(const ex_slurm_end *e);

#endif
