/* st_internal.h: what the store's files share — the batch of writes the loop fills and
 * the writer applies (st_batch.c), and the database and its statements (st_db.c). */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include <sqlite3.h>

#include "st_store.h"
#include "ut_grow.h"

#define ST_WRITER_STACK (512u * 1024u)

enum st_op_type { OP_INSERT, OP_STARTED, OP_SPAWNED, OP_WAITING, OP_FINISHED, OP_FORGET, OP_GROUP, OP_EDIT, OP_UNGROUP, OP_SLURM };

#define ST_NSTR 5            /* strings and blobs an op may carry */
#define ST_NULL UINT32_MAX   /* ... a NULL one's length */

/* One write, its variable parts copied into the batch's arena (offsets: the arena moves
 * as it grows). An insert's strings are kind, name, group, command, spec; a finish's
 * blob is its outcome; a group's are its name and its users (uint32_t each); an edit's
 * are the task's name and group as they now are, and the edits to its spec. */
typedef struct st_op {
    uint8_t type;
    uint8_t state;
    uint32_t owner, attempts;
    uint64_t id;
    uint64_t ref; /* an insert's restarted_from */
    int64_t pid; /* a spawn's; a finish's out_bytes (-1: no output files); a Slurm job id */
    double t[3];
    uint32_t off[ST_NSTR], len[ST_NSTR];
} st_op;

typedef struct st_batch {
    uint64_t seq;
    st_op *ops;
    size_t n, cap;
    uint8_t *arena;
    size_t used, acap;
    uint64_t next_id; /* 0: unchanged */
    int rc;           /* the writer's result */
    uint64_t *deleted; /* ids retention deleted after it (the writer's, then the loop's) */
    size_t ndeleted, deleted_cap;
} st_batch;

enum { SQ_INSERT, SQ_STARTED, SQ_SPAWNED, SQ_WAITING, SQ_FINISHED, SQ_FORGET, SQ_GROUP, SQ_UNGROUP, SQ_EDIT_READ, SQ_EDIT, SQ_NEXT_ID, SQ_SLURM,
       SQ_BEGIN, SQ_COMMIT, SQ_ROLLBACK, SQ_COUNT };

struct st_store {
    sqlite3 *db;
    st_config cfg;
    sqlite3 *rdb;     /* history reads (st_read.c), one at a time under rmu, any thread */
    uv_mutex_t rmu;
    sqlite3_stmt *sq[SQ_COUNT];
    uint64_t next_id; /* as loaded */
    /* The loop's side. */
    uv_loop_t *loop;
    st_batch open;    /* where writes go */
    st_batch flight;  /* handed to the writer (busy) */
    st_batch failed;  /* rolled back, until st_retry */
    bool busy, has_failed;
    uv_async_t wake;  /* the writer is done with `flight` */
    st_commit_cb *on_commit;
    void *on_commit_arg;
    /* Shared with the writer, under mu. */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    bool started, go, done, stop;
    bool probe;       /* hand the writer a pass even with nothing to write */
    bool room;        /* the reserve is in place (the writer's word, under mu) */
    unsigned fail_next;
    /* The writer's own. */
    bool reserve_ok;
    double retained_at;  /* monotonic seconds of the last retention pass */
    uint64_t ended;      /* ended rows in the store, counted as they come and go */
    struct st_owner *owners; /* bytes each owner's rows hold, counted the same way */
    size_t nowners, owners_cap;
    bool owner_over;     /* one of them is past cfg.max_owner_bytes */
    bool retain_more;    /* it stopped at ST_RETAIN_CHUNK: another pass at once */
    uint64_t *drops;     /* deleted rows whose output files go once that is committed */
    size_t ndrops, drops_cap;
    char reserve_path[4096];
    st_stats stats;
};

/* st_db.c */
int st_db_open(st_store *st, const char *path, char *errbuf, size_t errlen);
void st_db_close(st_store *st);
/* Apply a batch as one transaction: 0, -ENOSPC or -EIO (rolled back). */
int st_db_apply(st_store *st, const st_batch *b, bool fail);
/* A retention pass: deletes what is past keep_for and keep, into b->deleted. */
int st_db_retain(st_store *st, st_batch *b);
/* The reserve file, made to ST_RESERVE_BYTES: 0 or a negative errno. */
int st_reserve_make(st_store *st);
/* As much again is free beside it: room for new tasks. */
bool st_free_beyond_reserve(const st_store *st);

/* A task's columns, in the order st_row reads them. */
#define ST_COLUMNS                                                                               \
    "id, owner, state, attempts, kind, name, grp, command, spec, created_at, started_at, finished_at," \
    " wake_at, pid, spawned_at, outcome, restarted_from, slurm_job"
typedef struct st_owner {
    uint32_t uid;
    uint64_t bytes;
} st_owner;

/* A row read with ST_COLUMNS (st_db.c); false if corod did not write it. */
bool st_row(sqlite3_stmt *s, st_task *t);
double st_col_time(sqlite3_stmt *s, int i);
/* st_read.c: the reading connection, opened after the schema is current. */
int st_read_open(st_store *st, const char *path, char *errbuf, size_t errlen);
void st_read_close(st_store *st);

/* st_batch.c */
void st_batch_init(st_batch *b, uint64_t seq);
void st_batch_free(st_batch *b);
static inline const void *st_op_str(const st_batch *b, const st_op *op, int i)
{
    return op->len[i] == ST_NULL ? NULL : b->arena + op->off[i];
}

#endif
