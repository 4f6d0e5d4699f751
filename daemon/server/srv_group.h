/* srv_group: a group's settings, counters and ready queues. A record whose dependencies
 * and delay are behind it is queued here until its group lets it start: a paused group
 * starts nothing; tasks that only wait (sleep, gather) then start at once; tasks that do
 * work (exec) start while fewer than `parallel` of them run (0: no bound). Among queued
 * tasks, higher priority first, then lower id — a binary heap per queue. */
#ifndef SRV_GROUP_H
#define SRV_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_spec.h"

/* Embedded in a record: its place in a ready queue. */
typedef struct srv_ready {
    int64_t priority;
    uint64_t id;
    size_t idx; /* position in its heap; SRV_NOT_QUEUED when not queued */
    bool work;  /* takes a slot */
} srv_ready;

#define SRV_NOT_QUEUED ((size_t)-1)

typedef struct srv_heap {
    srv_ready **v;
    size_t n, cap;
} srv_heap;

typedef struct srv_group {
    char name[CP_MAX_GROUP + 1];
    uint32_t parallel;
    bool paused;
    bool pumping; /* starting queued records (see srv_group_pump) */
    size_t running, pending; /* records in the group, by outward state */
    size_t busy;             /* running records that take a slot */
    srv_heap ready_wait, ready_work;
    struct srv_group *next;
} srv_group;

/* A new group named `name`, with `like`'s settings (NULL: parallel, not paused). */
srv_group *srv_group_new(cp_str name, const srv_group *like, uint32_t parallel);
void srv_group_free(srv_group *g);

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

#endif
