/* srv_rec.h: the task table's insides, shared by the table (srv_table.c: submit, lookup,
 * retention) and the record lifecycle (srv_rec.c: stages, outcome, packing). Nothing
 * outside those two files includes this.
 *
 * Stages: ARMING (created, submit not yet durable) → DEPS (waiting for `after`) → DELAY
 * → READY (queued in its group until the group lets it start) → RUNNING (the kind's
 * body) → DONE; a failed attempt with retries left goes back through DELAY (its
 * retry_delay) and READY. */
#ifndef SRV_REC_H
#define SRV_REC_H

#include "kind.h"
#include "srv_acct.h"
#include "srv_group.h"
#include "srv_index.h"
#include "srv_table.h"
#include "st_store.h"

enum srv_stage { ST_ARMING, ST_DEPS, ST_DELAY, ST_READY, ST_RUNNING, ST_DONE };

typedef struct srv_dep {
    co_cb cb;
    srv_rec *rec;
    co_future *fut; /* the dependency's task (referenced) */
    uint64_t id;
} srv_dep;

struct srv_rec {
    uint64_t id;
    uint64_t seq;            /* the store's batch holding its last write (0: none) */
    uint64_t restarted_from; /* the task it runs again (`restart`), 0: none */
    uint32_t nuse, attempts; /* nuse: references to this record */
    uint32_t retries;        /* extra attempts allowed after a failure */
    uint8_t stage;
    bool shield, in_table;
    bool unstored;   /* its insert was rolled back: nothing of it is written */
    bool resumed;    /* restored running: its next start takes up the same attempt */
    bool cancelling; /* a cancel reached it: a failing body is not retried */
    uint16_t polls;  /* `output` long-polls waiting on it (in what was padding) */
    srv_ready ready; /* its place in its group's ready queue */
    const kind_ops *kind;
    void *args; /* &args_block once validated, NULL once released */
    kind_args_block args_block;
    char *name;
    char *command; /* exec: its command line, kept after the args are freed */
    uint8_t *argv; /* exec: its argv as submitted, packed (`get` shows it) */
    uint8_t *slurm; /* its attempt's Slurm job, packed {job, nodes}; NULL: none (yet) */
    uint32_t slurm_len;
    uint32_t argv_len;
    srv_group *group; /* referenced; ready.user is its owner's share of it while active */
    srv_acct *acct;   /* its owner's (referenced) */
    ex_disk_use *disk; /* has_output: its share of the owner's disk (referenced) */
    size_t bytes;   /* what it counts for in acct->bytes */
    int64_t priority;
    double created_at, started_at, finished_at;
    double delay, timeout, retry_delay;
    co_task *task;       /* the record's outward future */
    co_task *body;       /* while running */
    co_task *delay_task; /* while in DELAY */
    co_cb body_cb, delay_cb, done_cb;
    srv_dep *deps;
    size_t ndeps, deps_left;
    co_future **refs; /* the kind's referenced tasks (gather members) */
    size_t nrefs;
    srv_table *table;
    co_queue node;      /* in the table's records, id order */
    co_queue acct_node; /* in its account's records, id order */
    co_queue fin_node;  /* in its account's finished records, oldest first */
};

/* Where jobs' bodies say which process they started and that they wrote output
 * (kind_hooks): they may outlive the table, so they hold this rather than it; `store`
 * goes NULL when the store does. */
typedef struct srv_spawns {
    size_t refs;
    st_store *store;
    void (*on_output)(void *arg, uint64_t id); /* NULL once the table is gone */
    void *on_output_arg;
    srv_table *table; /* NULL once it is gone */
} srv_spawns;

extern const kind_hooks srv_spawn_hooks;

struct srv_table {
    co_sched *sched;
    st_store *store;   /* NULL: nothing is kept across restarts */
    st_store *loading; /* while the store is restored into it (srv_restore) */
    srv_spawns *spawns; /* with a store */
    cp_out spec_buf;   /* a submit's params, packed for the store (reused) */
    srv_limits lim;
    kind_env env;
    uint64_t next_id;
    srv_index index; /* id -> srv_rec */
    co_queue recs;   /* srv_rec.node, id order */
    srv_accts accts;
    co_queue trim;   /* srv_acct.trim_node: accounts past a retention bound */
    srv_groups groups;
    void (*on_finish)(srv_rec *r, void *arg);
    void *on_finish_arg;
};

/* What a record counts for in its owner's memory: itself and its runtime task, and what
 * it holds besides (name, command, the kind's parsed args or its outcome). */
#define SRV_REC_FIXED (sizeof(srv_rec) + 512u)

/* What an `edit` changes (srv_table_edit parses it, srv_rec_edit applies it). */
typedef struct srv_edit {
    cp_str name;      /* ptr NULL: unchanged; len 0: no name */
    srv_group *group; /* NULL: unchanged (referenced by the caller) */
    bool has_priority, has_delay;
    int64_t priority;
    double delay;
    const void *spec; /* the edits as a packed map, merged into the stored spec */
    size_t spec_len;
} srv_edit;

/* srv_rec.c */
int srv_rec_edit(srv_rec *r, const srv_edit *e); /* 0, -EBUSY (started or ended), -ENOMEM */
extern const co_task_body srv_rec_body;
void srv_rec_done(co_future *f, void *arg); /* the record's own done callback */
void srv_rec_finish(srv_rec *r, co_state st, co_value *v);
/* Its attempt's Slurm job, packed {job, nodes} (taken; NULL: none), counted in its owner's
 * memory. */
void srv_rec_set_slurm(srv_rec *r, uint8_t *packed, uint32_t len);
void srv_rec_release_stage(srv_rec *r);
void srv_group_pump(srv_group *g);

/* What the store is told as the record moves (srv_rec.c). A write that cannot be made
 * (out of memory) is logged: the record goes on, and a restart finds it where it was. */
void srv_rec_store_started(srv_rec *r);
void srv_rec_store_waiting(srv_rec *r, double wake_at);

/* Put a record restore made (srv_table_restore, ARMING) where `row` says it was: ended
 * as it ended; pending again; a body that was running started again where its kind can
 * take it up (srv_rec_resume), else retried if it had attempts left, else failed
 * `interrupted`. */
void srv_rec_resume(srv_rec *r, const st_task *row, double now);

/* srv_table.c */
/* A record made from a row of the store, not yet armed: -EINVAL with err when the row
 * cannot be taken back (its spec no longer parses, or with `room` its owner's memory
 * share cannot make room for it), -ENOMEM. At start nothing is refused for room: what
 * was kept is kept. */
int srv_table_restore(srv_table *t, const st_task *row, bool room, srv_rec **out, cp_error *err);
/* A record whose insert was rolled back leaves at once: ended (if it had not) with an
 * `unavailable` error saying `why`, nothing of it written. */
void srv_table_drop(srv_table *t, srv_rec *r, const char *why);
/* Evicts the oldest finished records of ac until it holds `need` more bytes within its
 * memory bound; true when that much room is there (or there is no bound to meet). */
bool srv_table_make_room(srv_table *t, srv_acct *ac, size_t need);

#endif
