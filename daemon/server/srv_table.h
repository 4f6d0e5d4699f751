/* srv_table: the daemon's task records. A record is the outward face of a task: an
 * owner-driven runtime task (co_custom_task) that waits for its `after` dependencies,
 * then its `delay`, then runs the kind's body and ends as the body ends. Records stay
 * after they end so get, wait and subscribe work on finished tasks: each uid keeps its
 * newest finished records, within its own count and memory bounds (srv_acct.h), so no
 * uid's records make another's go. Ids come from a counter that a later store persists. */
#ifndef SRV_TABLE_H
#define SRV_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "co.h"
#include "cp_spec.h"
#include "ex_spawn.h"

#define SRV_RETAIN_DEFAULT 10000u          /* finished records kept per uid */
#define SRV_MAX_ACTIVE_PER_UID 100000u     /* pending + running tasks of one uid */
#define SRV_UID_MEMORY_DEFAULT (256u << 20) /* bytes one uid's records may hold */
#define SRV_UID_OUTPUT_DEFAULT (1ull << 30) /* bytes of output files one uid's jobs may keep */
#define SRV_OUTPUT_LIMIT_DEFAULT (64ull << 20) /* bytes kept of each output stream of a job */
#define SRV_UNBOUNDED UINT64_MAX            /* a limit set to none */

#define SRV_PARALLEL_UNBOUNDED UINT32_MAX

typedef struct srv_table srv_table;
typedef struct srv_rec srv_rec;
typedef struct srv_group srv_group;

typedef struct srv_limits {
    size_t retain;             /* per uid, 0: SRV_RETAIN_DEFAULT */
    size_t max_active_per_uid; /* 0: SRV_MAX_ACTIVE_PER_UID */
    size_t max_uid_memory;     /* 0: SRV_UID_MEMORY_DEFAULT */
    size_t max_uid_groups;     /* groups an unprivileged uid's submits may make, 0: SRV_MAX_GROUPS_PER_UID */
    uint32_t default_parallel; /* 0: the number of online CPUs; SRV_PARALLEL_UNBOUNDED: none */
    const char *output_dir;    /* exec output files (required; copied) */
    bool has_grace;            /* else KIND_GRACE_DEFAULT */
    double grace;              /* seconds from SIGTERM to SIGKILL when a job is stopped */
    uint64_t output_limit;     /* bytes kept per output stream of a job, 0: no cap */
    uint64_t max_uid_output;   /* bytes of output files per uid, 0: SRV_UID_OUTPUT_DEFAULT, SRV_UNBOUNDED */
    /* Bounds on a task's result (give the scheduler the same: it builds gathers'). */
    size_t max_result;         /* bytes, 0: CO_VALUE_BYTES_DEFAULT */
    unsigned max_depth;        /* nesting levels, 0: CO_VALUE_DEPTH_DEFAULT */
    ex_restore restore;        /* what jobs get back of the daemon's start (ex_spawn.h) */
    double spawn_timeout;      /* seconds a job may take to exec, 0: KIND_SPAWN_TIMEOUT */
    struct ex_cgroups *cgroups; /* where jobs' cgroups go (ex_cgroup.h), NULL: none */
    const char *cgroups_why;    /* ... and why there are none */
    const struct ex_slurm_tools *slurm; /* srun and friends (ex_slurm.h); NULL: no Slurm here */
    const char *slurm_why;      /* ... and why there is none */
    const char *slurm_tag;      /* names this daemon's jobs in Slurm (corod-<tag>-<id>) */
} srv_limits;

/* -EINVAL without l->output_dir. */
int srv_table_new(co_sched *s, const srv_limits *l, srv_table **out);
/* What may change while it runs (a reload): retain, max_active_per_uid, max_uid_memory,
 * max_uid_groups, and for jobs started from now on grace, output_limit, spawn_timeout.
 * Smaller bounds on what is kept apply at once. */
void srv_table_set_limits(srv_table *t, const srv_limits *l);
/* Every change from now on is written to st (st_store.h); NULL: none is. 0 or -ENOMEM. */
struct st_store;
int srv_table_set_store(srv_table *t, struct st_store *st);
/* An ended record forgotten (clean): from memory if there, from the store, with its
 * output files. 0; -EBUSY if it has not ended; -ENOMEM. */
int srv_table_forget(srv_table *t, uint64_t id);
/* The store's retention deleted these ended records: they leave memory too, with their
 * output files. */
void srv_table_deleted(srv_table *t, const uint64_t *ids, size_t n);
/* Ids from here on are at least `next` (the store's: above every id ever given). */
void srv_table_bump_id(srv_table *t, uint64_t next);
/* Cancels what is still pending or running and drops every record. */
void srv_table_free(srv_table *t);

/* Validate a submit and create its record, not yet armed. On error returns -EINVAL with
 * err filled (bad_request, not_found, quota_exceeded, internal). */
int srv_table_submit(srv_table *t, uint32_t uid, const msgpack_object *params, srv_rec **out,
                     cp_error *err);
/* The same, for a `restart` of task `from` (its stored spec as params). */
int srv_table_resubmit(srv_table *t, uint32_t uid, const msgpack_object *params, uint64_t from, srv_rec **out,
                       cp_error *err);
/* Start the record's lifecycle, once its submit is durable. */
void srv_table_arm(srv_table *t, srv_rec *r);

bool srv_table_has(srv_table *t, uint64_t id); /* in memory */
/* Given once, not in memory: in the store, if anywhere (srv_history.c reads it back). */
bool srv_table_kept_only(srv_table *t, uint64_t id);
/* The record `id` as `uid` may see it: NULL when unknown, evicted or another's. */
srv_rec *srv_table_get(srv_table *t, uint64_t id, uint32_t uid);
bool srv_rec_cancel(srv_rec *r, const char *msg);
/* `edit` of a record not yet started: its name, group, priority (above 0: privileged
 * callers only) and delay (from now; in DEPS, from when they are behind it), from a
 * request's params; the store is told. 0, or -EINVAL with err. */
int srv_table_edit(srv_table *t, srv_rec *r, bool privileged, const msgpack_object *params, cp_error *err);
/* A signal to what a running task runs (a job's process group), which it does not end
 * by itself: 0, -ENOTSUP for a kind that runs nothing, -ESRCH when it is not running. */
int srv_rec_signal(srv_rec *r, int sig);
/* The long-polls waiting on a record (srv_output.c): a write or an end of a task nobody
 * polls wakes nothing. srv_rec_poll: false when 65,535 wait on it already. */
bool srv_rec_poll(srv_rec *r, int delta);
bool srv_rec_polled(const srv_rec *r);
/* `send`: bytes for a running stdin_pipe job's stdin (kind_ops.feed says the rest);
 * -ESRCH when it is not running. */
int srv_rec_feed(srv_rec *r, const void *data, size_t len, bool eof, void (*cb)(void *arg, int status), void *arg);

void srv_rec_ref(srv_rec *r);
void srv_rec_unref(srv_rec *r);
uint64_t srv_rec_id(const srv_rec *r);
/* The store's batch holding the record's last write: what an answer about it waits for. */
uint64_t srv_rec_seq(const srv_rec *r);
uint32_t srv_rec_owner(const srv_rec *r);
const char *srv_rec_state(const srv_rec *r);
const char *srv_rec_group_name(const srv_rec *r);
const char *srv_rec_kind_name(const srv_rec *r);
bool srv_rec_has_output(const srv_rec *r);
bool srv_rec_terminal(const srv_rec *r);
/* Read back from the store: its output files went when it left memory. */
/* Where exec output files live. */
const char *srv_table_output_dir(const srv_table *t);
co_future *srv_rec_future(srv_rec *r);
/* omit_outcome: a finished record without its result or error, marked `omitted: true` (an
 * answer holding many records packs whole ones only up to SRV_ANSWER_BYTES). */
void srv_rec_pack(cp_out *o, const srv_rec *r, bool omit_outcome);
/* A pending record: why it waits, packed as a map into o ({reason: "after", left, ids},
 * "delay" or "retry" with `until`, "paused", "full" with running and parallel, "queued"),
 * with_id: its `id` too; false, packing nothing, for any other. */
bool srv_rec_pack_waiting(cp_out *o, const srv_rec *r, bool with_id);

/* Records in id order, for `list`: every one for uid 0, else only uid's; the first, or
 * the first after id `after`. */
srv_rec *srv_table_first(srv_table *t, uint32_t uid);
srv_rec *srv_table_after(srv_table *t, uint64_t after, uint32_t uid);
srv_rec *srv_rec_next(srv_table *t, const srv_rec *r, uint32_t uid);

/* Evicts finished records past the retention bounds, each uid's oldest first. Records end
 * at any time; the server trims after it has written, so evicting (cold memory, frees)
 * never delays an answer. Between trims the table holds what ended since the last one. */
void srv_table_trim(srv_table *t);
/* The account of uid (srv_acct.h), referenced for the caller; NULL: out of memory. */
struct srv_acct *srv_table_acct(srv_table *t, uint32_t uid);

/* Called for every record that reaches a terminal state (subscriptions with all: true). */
void srv_table_on_finish(srv_table *t, void (*fn)(srv_rec *r, void *arg), void *arg);
/* Told of each write of a job's output that landed in its file (by task id). */
void srv_table_on_output(srv_table *t, void (*fn)(void *arg, uint64_t id), void *arg);

/* Groups, in creation order ("default" first). */
srv_group *srv_table_groups(srv_table *t);
srv_group *srv_group_next(srv_table *t, const srv_group *g);
const char *srv_group_name(const srv_group *g);
/* The group `name` if it exists, else NULL. */
srv_group *srv_table_find_group(srv_table *t, cp_str name);
/* The group `name`, configured (made if need be): it stays. NULL: out of memory. */
srv_group *srv_table_configure_group(srv_table *t, cp_str name);
/* Change a group's settings (the store is told: 0, or -ENOMEM and nothing written). */
/* `remove_group`: a configured group with nothing pending or running in it, not the
 * default one. 0, or -EINVAL with err. */
int srv_table_remove_group(srv_table *t, cp_str name, cp_error *err);
int srv_table_set_group(srv_table *t, srv_group *g, const uint32_t *parallel, const bool *paused);
/* Who may submit to a configured group: uids (n == 0: everyone). 0 or -ENOMEM. */
int srv_group_allow(srv_group *g, const uint64_t *uids, size_t n);
void srv_group_pack(cp_out *o, const srv_group *g);

/* Unix time now, in seconds. */
double srv_now(void);

#endif
