/* srv_acct: one uid's share of the daemon — what its tasks and connections hold, counted
 * so that each bound applies per uid. A root corod serves every user of the machine: one
 * of them must be able to exhaust only its own share (tasks, bytes, retained records,
 * connections, groups, output on disk), never lock out root or anyone else.
 *
 * An account exists while something of its uid does (a record or a connection, each
 * holding a reference); the table finds it by uid. */
#ifndef SRV_ACCT_H
#define SRV_ACCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "co_queue.h"
#include "ex_disk.h"
#include "srv_index.h"

typedef struct srv_accts srv_accts;

typedef struct srv_acct {
    uint32_t uid;
    bool privileged; /* root or the daemon's own uid: no connection bounds, priorities > 0 */
    size_t refs;     /* its records and connections */
    srv_accts *home;
    /* Tasks. */
    size_t active;     /* pending or running */
    size_t bytes;      /* memory its records hold (srv_rec.c says what is counted) */
    size_t retained;   /* finished records kept, in `fin` */
    co_queue recs;     /* srv_rec.acct_node: its records, id order */
    co_queue fin;      /* srv_rec.fin_node: its finished records, oldest first */
    co_queue trim_node; /* in the table's accounts over a retention bound */
    size_t groups;     /* groups its submits made that still exist */
    ex_disk *disk;     /* its jobs' output files (ex_disk.h) */
    /* Connections. */
    size_t conns;
    size_t client_bytes; /* their input and output buffers */
} srv_acct;

struct srv_accts {
    srv_index by_uid;
    uint32_t self;        /* the daemon's own uid */
    uint64_t disk_limit;  /* each account's share of output on disk, 0: none */
    void (*reclaim)(ex_disk *d, uint64_t need, void *acct); /* evicts for room on disk */
};

void srv_accts_init(srv_accts *a, uint32_t self_uid, uint64_t disk_limit,
                    void (*reclaim)(ex_disk *d, uint64_t need, void *acct));
/* Every account must have been released. */
void srv_accts_free(srv_accts *a);
/* The account of uid, created if need be, with a reference for the caller. NULL: out of
 * memory. */
srv_acct *srv_acct_get(srv_accts *a, uint32_t uid);
/* The account of uid if it exists (no reference taken), else NULL. */
srv_acct *srv_acct_find(const srv_accts *a, uint32_t uid);
void srv_acct_ref(srv_acct *ac);
/* Drops a reference; the account goes with the last one. */
void srv_acct_unref(srv_acct *ac);

#endif
