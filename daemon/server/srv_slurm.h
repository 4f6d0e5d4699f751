/* srv_slurm: a group's executor as the protocol, the configuration file and the store
 * carry it. A Slurm group's settings are a map — partition, account, qos (strings), cpus,
 * memory (bytes), time (seconds), args (extra srun options), conf (the cluster's
 * slurm.conf) — validated by ex_slurm, kept packed beside the parsed form so `groups`
 * and the store take them as they are. */
#ifndef SRV_SLURM_H
#define SRV_SLURM_H

#include <stddef.h>

#include "cp_msg.h"
#include "cp_out.h"
#include "ex_slurm.h"

struct srv_group;

/* A map of settings: 0 with *out (referenced for the caller), or -EINVAL with err. */
int srv_slurm_parse(const msgpack_object *map, ex_slurm **out, cp_error *err);
/* Packed bytes of settings (srv_slurm_parse reads them back): 0 or -ENOMEM. */
int srv_slurm_pack(const ex_slurm *s, uint8_t **blob, size_t *len);
/* The group runs its jobs on Slurm with `s` (a reference it takes), or here (NULL).
 * 0 or -ENOMEM (nothing changed). */
int srv_group_set_slurm(struct srv_group *g, ex_slurm *s);
/* "executor" and, for a Slurm group, "slurm" as `groups` answers them: 1 or 2 fields. */
int srv_group_executor_fields(const struct srv_group *g);
void srv_group_pack_executor(cp_out *o, const struct srv_group *g);

/* A task the store says was running on Slurm when the daemon stopped: its job there is
 * cancelled at start, by id, or (job 0: srun had not heard back) by name. */
typedef struct srv_slurm_left {
    uint64_t id, job;
    uint32_t uid, attempt;
    ex_slurm *s; /* its group's settings, for slurm.conf (referenced); NULL: Slurm's default */
} srv_slurm_left;

struct srv_table;
/* Cancels them, each as its owner, in a coroutine of their own; takes `left` (malloc'd).
 * Logs what could not be. */
void srv_slurm_cancel_left(struct srv_table *t, srv_slurm_left *left, size_t n);

#endif
