/* ex_leftover: what is left of jobs whose daemon died. A job's leader leads its own
 * session and process group, and the kernel kills only the leader when the daemon dies
 * (PR_SET_PDEATHSIG); its children live on, reparented. At the next start, every process
 * still in such a job's session or group — of the job's owner, and started no earlier
 * than the job — is killed. (A job that made itself a new session escapes this; cgroups
 * will make it exact.) */
#ifndef EX_LEFTOVER_H
#define EX_LEFTOVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ex_leftover {
    pid_t leader;      /* the job's leader: its session and process group id */
    uid_t uid;         /* the job's owner */
    double spawned_at; /* wall-clock seconds just before the leader was made */
} ex_leftover;

/* One pass over /proc for all the jobs: SIGKILL to each match. Returns how many
 * processes were killed, or a negative errno when /proc cannot be read. */
int ex_kill_leftovers(const ex_leftover *jobs, size_t n);

#endif
