/* ex_limits.c: the names behind a job's limits (ex_limits.h). */
#include "ex_limits.h"

#include "ex_cgroup.h"

const int ex_rlimit_resource[EX_RLIM_COUNT] = {
    [EX_RLIM_NOFILE] = RLIMIT_NOFILE, [EX_RLIM_CORE] = RLIMIT_CORE,
    [EX_RLIM_CPU] = RLIMIT_CPU,       [EX_RLIM_AS] = RLIMIT_AS,
};

const char *const ex_rlimit_name[EX_RLIM_COUNT] = {
    [EX_RLIM_NOFILE] = "nofile", [EX_RLIM_CORE] = "core", [EX_RLIM_CPU] = "cpu", [EX_RLIM_AS] = "as",
};

unsigned ex_limits_controllers(const ex_limits *l)
{
    return (l->memory_max ? EX_CG_MEMORY : 0u) | (l->pids_max ? EX_CG_PIDS : 0u) |
           (l->cpu_weight || l->cpu_quota > 0 ? EX_CG_CPU : 0u);
}

void ex_limits_merge(ex_limits *own, const ex_limits *d)
{
    for (int i = 0; i < EX_RLIM_COUNT; i++)
        if (!own->rlim_set[i] && d->rlim_set[i]) {
            own->rlim_set[i] = true;
            own->rlim[i] = d->rlim[i];
        }
    if (own->umask < 0)
        own->umask = d->umask;
    if (!own->memory_max)
        own->memory_max = d->memory_max;
    if (!own->pids_max)
        own->pids_max = d->pids_max;
    if (!own->cpu_weight)
        own->cpu_weight = d->cpu_weight;
    if (!(own->cpu_quota > 0))
        own->cpu_quota = d->cpu_quota;
}
