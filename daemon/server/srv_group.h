/* srv_group: groups — their settings and counters, who may use them, how long they live,
 * and their ready queues.
 *
 * Scheduling. A record whose dependencies and delay are behind it is queued in its group
 * until the group lets it start: a paused group starts nothing; tasks that only wait
 * (sleep, gather) then start at once; tasks that do work (exec) start while fewer than
 * `parallel` of them run (0: no bound). The slots are shared across the uids that have
 * work queued: the next to start is the head of the uid queue whose head has the highest
 * priority, then whose uid holds the fewest of the group's slots, then whose uid started
 * one least recently (round robin), then the lowest id. So one uid cannot keep every slot
 * while another waits (priorities above 0 are root's), and within a uid higher priority
 * goes first, then the lower id — a binary heap each.
 *
 * Lifetime. The default group and those root (or the daemon's uid) sets up with set_group
 * are configured: they stay, and may say which uids may submit to them. A group a submit
 * names into being is its submitter's: it counts against that uid's share of groups and
 * goes when no record is left in it. */
#ifndef SRV_GROUP_H
#define SRV_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "co_queue.h"
#include "ex_limits.h"
#include "cp_spec.h"
#include "srv_acct.h"
#include "srv_index.h"

typedef struct srv_group srv_group;
typedef struct srv_group_user srv_group_user;

/* Embedded in a record: its place in a ready queue. */
typedef struct srv_ready {
    int64_t priority;
    uint64_t id;
    size_t idx;           /* position in its heap; SRV_NOT_QUEUED when not queued */
    bool work;            /* takes a slot */
    srv_group_user *user; /* its uid's share of the group (srv_group_join) */
} srv_ready;

#define SRV_NOT_QUEUED ((size_t)-1)

typedef struct srv_heap {
    srv_ready **v;
    size_t n, cap;
} srv_heap;

/* One uid's part in a group: its queued work, and the slots it holds. */
struct srv_group_user {
    uint32_t uid;
    size_t refs;     /* its records in the group that are pending or running */
    size_t busy;     /* of them, running and taking a slot */
    uint64_t last_start; /* when it last took a slot, in the group's count of starts */
    srv_heap work;   /* its ready work */
    co_queue node;   /* in the group's users */
    co_queue waiting_node; /* in the group's users with work queued */
    srv_group *group;
};

typedef struct srv_groups srv_groups;

struct srv_group {
    char name[CP_MAX_GROUP + 1];
    uint32_t parallel;
    bool paused;
    int64_t priority; /* of its tasks that give none (the configuration file's) */
    ex_limits limits; /* its jobs' limits, where a job gives none (the configuration file's) */
    struct ex_slurm *slurm; /* its jobs run on a Slurm cluster with these (srv_slurm.h); NULL: here */
    uint8_t *slurm_blob;    /* ... packed, as `groups` and the store carry them */
    size_t slurm_len;
    bool pumping;    /* starting queued records (see srv_group_pump) */
    bool configured; /* default, or set up by root: stays */
    size_t running, pending; /* records in the group, by outward state */
    size_t busy;             /* running records that take a slot */
    uint64_t starts;         /* slots taken so far: the clock of last_start */
    srv_heap ready_wait;     /* ready waits (no slot, no share) */
    size_t nwork;            /* ready work, all uids */
    co_queue users;          /* srv_group_user.node */
    co_queue waiting;        /* srv_group_user.waiting_node */
    uint32_t *allowed;       /* configured: the uids that may submit to it; NULL: all */
    size_t nallowed;
    size_t refs;             /* records in it, finished ones included */
    srv_acct *creator;       /* not configured: whose share it counts against (referenced) */
    uint64_t hash;
    srv_group *hash_next;    /* another group whose name hashes alike */
    co_queue node;           /* in srv_groups.all, creation order */
    srv_groups *home;
};

struct srv_groups {
    srv_index by_hash; /* name hash -> a chain of groups */
    co_queue all;      /* srv_group.node: "default" first, then in creation order */
    size_t n;
    size_t max_per_uid;   /* groups one unprivileged uid's submits may make */
    srv_group *deflt;
};

#define SRV_MAX_GROUPS_PER_UID 64u

/* The registry, with a configured "default" group of `parallel` slots. 0 or -ENOMEM. */
int srv_groups_init(srv_groups *gs, uint32_t parallel, size_t max_per_uid);
/* Frees every group left (each record must have let go of its group already). */
void srv_groups_free(srv_groups *gs);
srv_group *srv_groups_find(const srv_groups *gs, cp_str name);
/* The group `name` for a submit by ac, made (with the default group's settings, counted
 * against ac) when there is none. -EINVAL with err: not allowed to submit there, or ac's
 * share of groups is used up; -ENOMEM. The group is referenced for the caller. */
int srv_groups_for_submit(srv_groups *gs, cp_str name, srv_acct *ac, srv_group **out, cp_error *err);
/* The group `name` made configured (set_group): made if need be. NULL: out of memory. */
srv_group *srv_groups_configure(srv_groups *gs, cp_str name);
/* A configured group (not the default) is no longer: it goes now, or once no record is
 * left in it, as a group a submit named; until then it has the default group's settings. */
void srv_groups_unconfigure(srv_groups *gs, srv_group *g);
/* Who may submit to a configured group (uids copied; n == 0: everyone). 0 or -ENOMEM. */
int srv_group_allow(srv_group *g, const uint64_t *uids, size_t n);
void srv_group_ref(srv_group *g);
/* A group no longer configured and without records goes. */
void srv_group_unref(srv_group *g);

/* A uid's share of the group, counted while it has a record there that is pending or
 * running: taken when the record is made (NULL: out of memory), given back as it ends.
 * The share itself stays until the group goes. */
srv_group_user *srv_group_join(srv_group *g, uint32_t uid);
void srv_group_leave(srv_group_user *u);

int srv_group_queue(srv_group *g, srv_ready *it); /* 0 or -ENOMEM */
void srv_group_dequeue(srv_group *g, srv_ready *it);
/* The next queued task the group lets start now, taken off its queue; NULL if none. */
srv_ready *srv_group_pop(srv_group *g);
size_t srv_group_queued(const srv_group *g);
/* True only when `it`, were it queued now, would be the next to start and could start at
 * once: the group is not paused, nothing is queued that might go first, and work finds a
 * free slot. (Conservative: a queued task of lower priority also says no; the queue then
 * decides, as it always did.) */
bool srv_group_admits(const srv_group *g, const srv_ready *it);
/* A started task takes its slot (work only), and gives it back as it stops running. */
void srv_group_take_slot(srv_group *g, srv_ready *it);
void srv_group_give_slot(srv_group *g, srv_ready *it);

void srv_group_pack(cp_out *o, const srv_group *g);

#endif
