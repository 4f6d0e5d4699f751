/* ex_limits: what a job may use. The classic rlimits and the umask are set in the child
 * before it execs (ex_spawn); memory, tasks and CPU are its cgroup's (ex_cgroup), where
 * the daemon has cgroups it can use. A zero or unset field: no limit of the job's own.
 *
 * Jobs do not inherit the daemon's own settings by accident: without a limit of their
 * own they get RLIMIT_NOFILE back as the daemon started with it (at most EX_NOFILE_SOFT
 * soft: programs that select() break above 1,024; systemd's LimitNOFILE= is the
 * daemon's, not theirs), and the umask EX_UMASK_DEFAULT. */
#ifndef EX_LIMITS_H
#define EX_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

enum { EX_RLIM_NOFILE, EX_RLIM_CORE, EX_RLIM_CPU, EX_RLIM_AS, EX_RLIM_COUNT };

#define EX_UMASK_DEFAULT 022
#define EX_NOFILE_SOFT 1024u
#define EX_CPU_WEIGHT_MAX 10000u
#define EX_CPU_PERIOD_US 100000u /* cpu.max's period: a quota of q CPUs is q * this */

typedef struct ex_limits {
    bool rlim_set[EX_RLIM_COUNT];
    struct rlimit rlim[EX_RLIM_COUNT];
    int umask;           /* -1: EX_UMASK_DEFAULT */
    uint64_t memory_max; /* bytes (memory.max) */
    uint64_t pids_max;   /* processes and threads (pids.max) */
    uint32_t cpu_weight; /* 1..EX_CPU_WEIGHT_MAX (cpu.weight; 100 is everyone's) */
    double cpu_quota;    /* CPUs, 0.5 is half of one (cpu.max) */
} ex_limits;

/* The resource and the name (as the protocol says it) of each rlimit. */
extern const int ex_rlimit_resource[EX_RLIM_COUNT];
extern const char *const ex_rlimit_name[EX_RLIM_COUNT];

/* Controllers a job's limits need (EX_CG_* of ex_cgroup.h); 0: none. */
unsigned ex_limits_controllers(const ex_limits *l);
/* A job's own limits over its group's defaults: each unset field of `own` from `deflt`. */
void ex_limits_merge(ex_limits *own, const ex_limits *deflt);

#endif
