/* ex_cgroup: each job in a cgroup of its own (cgroup v2), where the daemon has a part of
 * the hierarchy it may write: its own cgroup under systemd's Delegate=yes, or, as root, a
 * cgroup it makes beside itself.
 *
 * A job's cgroup is how all of its processes are found — those that called setsid()
 * included, which its process group and session miss — so that a cancel, a timeout or
 * the job's end kills every one of them (cgroup.kill), and a daemon that crashed leaves
 * nothing running that the next start cannot find. It is also where memory, tasks and
 * CPU are limited (memory.max, pids.max, cpu.weight, cpu.max) and measured (cpu.stat,
 * memory.peak, memory.events' oom_kill), as far as the controllers the daemon was given
 * allow; a limit that needs one it has not got is refused at submit.
 *
 * Layout, with B the daemon's cgroup:
 *   delegated (B holds only the daemon):  B/daemon (the daemon moves there), B/jobs/job-ID
 *   otherwise (B is shared, e.g. root's): B/corod-TAG/job-ID, TAG naming the state
 *                                         directory, so daemons never touch each other's
 * Everything here reads and writes cgroupfs, which lives in memory: no call waits on a
 * disk or on another process. */
#ifndef EX_CGROUP_H
#define EX_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ex_limits.h"

enum { EX_CG_MEMORY = 1u, EX_CG_PIDS = 2u, EX_CG_CPU = 4u };

typedef struct ex_cgroups ex_cgroups;

/* Finds the part of the hierarchy jobs may use and prepares it (`tag` names the state
 * directory). 0 with *out; or a negative errno with why cgroups cannot be used in `why`
 * (none mounted, not writable), and *out NULL: jobs then run without. */
int ex_cgroups_open(const char *tag, ex_cgroups **out, char *why, size_t len);
/* Removes the jobs' parent if it is empty (the daemon's own cgroups stay its unit's). */
void ex_cgroups_close(ex_cgroups *cg);
/* EX_CG_* the job cgroups have. */
unsigned ex_cgroups_controllers(const ex_cgroups *cg);
const char *ex_cgroups_path(const ex_cgroups *cg);
/* Kills and removes the job cgroups a previous daemon left (at start, before serving):
 * how many there were, or a negative errno. */
int ex_cgroups_sweep(ex_cgroups *cg);

typedef struct ex_jobcg {
    ex_cgroups *cg;
    int dirfd;    /* the job's cgroup directory */
    int procs_fd; /* its cgroup.procs, for the child to join */
    char name[32];
} ex_jobcg;

typedef struct ex_jobcg_stats {
    uint64_t cpu_usec;    /* CPU time of all its processes (cpu.stat usage_usec) */
    bool has_peak;
    uint64_t memory_peak; /* bytes, with the memory controller (memory.peak) */
    uint64_t oom_kills;   /* processes the kernel killed for memory.max (memory.events) */
} ex_jobcg_stats;

/* A cgroup for job `id`, with its limits written. 0, or a negative errno with a sentence
 * in err. */
int ex_jobcg_make(ex_cgroups *cg, uint64_t id, const ex_limits *l, ex_jobcg *out, char *err, size_t len);
/* SIGKILL to every process in it (cgroup.kill; on kernels without it, to each pid it
 * lists). */
void ex_jobcg_kill(ex_jobcg *j);
bool ex_jobcg_populated(const ex_jobcg *j);
void ex_jobcg_stats_get(const ex_jobcg *j, ex_jobcg_stats *st);
/* Removes it: 0 (its descriptors closed), -EBUSY while a process is still in it (kill it
 * first, then try again), or another negative errno. */
int ex_jobcg_remove(ex_jobcg *j);
/* Lets go of it without removing it (a sweep at the next start will). */
void ex_jobcg_close(ex_jobcg *j);

#endif
