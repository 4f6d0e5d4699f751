/* st_store: the durable store — one SQLite database in WAL mode holding every task the
 * daemon knows (its spec as submitted, its stage, its outcome), the configured groups and
 * the next id. It knows rows, not records or sockets.
 *
 * Writes. The loop thread never touches the disk: each write is appended to the open
 * batch (copied, no I/O), and st_kick hands the open batch to the writer thread whenever
 * that thread is idle. The writer applies a batch as one transaction and commits it —
 * group commit: whatever arrived while the last commit ran is the next one — then tells
 * the loop (st_commit_cb) which batch, by sequence number, is durable. The
 * caller holds back what a batch's writes answer until then.
 *
 * A commit that fails (a full disk, an I/O error) is rolled back; the loop is told with
 * the error, and calls st_retry when it is ready to write the rest of it again.
 *
 * Reads at start (st_load) run on the calling thread, before the daemon serves. */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct st_store st_store;

#define ST_SCHEMA_VERSION 3
#define ST_DB_NAME "corod.db"
/* Space kept aside next to the database (corod.reserve): when the disk fills up, the
 * writer gives it back so that what was already done in memory (ends, starts, settings)
 * can still be written, while new tasks are refused; they are taken again once the
 * reserve can be made anew. A batch of ends holds a few results of --max-result each. */
#define ST_RESERVE_NAME "corod.reserve"
#define ST_RESERVE_BYTES (8u << 20)

typedef enum st_sync {
    ST_SYNC_FULL,   /* fsync each commit: survives a power loss */
    ST_SYNC_NORMAL, /* fsync at checkpoints only: survives a daemon crash, not a power loss */
} st_sync;

/* A task's state as stored (the protocol's states, in this order). */
enum { ST_TASK_PENDING, ST_TASK_RUNNING, ST_TASK_SUCCEEDED, ST_TASK_FAILED, ST_TASK_CANCELLED };

/* A row of the tasks table. Strings may be NULL where the column may be (name, command);
 * times are Unix seconds, NAN where there is none. */
typedef struct st_task {
    uint64_t id;
    uint32_t owner;
    int state;
    uint32_t attempts;
    const char *kind, *name, *group, *command;
    const void *spec; /* the submit's params, MessagePack, as validated */
    size_t spec_len;
    double created_at, started_at, finished_at;
    double wake_at;    /* pending: when its delay (or retry_delay) ends */
    int64_t pid;       /* running a process: its leader (0: none) ... */
    double spawned_at; /* ... and when it was started, to tell it from a later one */
    const void *outcome; /* finished: the result or error, MessagePack */
    size_t outcome_len;
    uint64_t restarted_from; /* the task this one runs again (0: none) */
    int64_t slurm_job; /* its attempt's Slurm job: -1 none, 0 handed to srun, else the id */
} st_task;

typedef struct st_group {
    const char *name;
    uint32_t parallel;
    bool paused;
    const uint32_t *users; /* who may submit to it; nusers == 0: everyone */
    size_t nusers;
    const void *slurm;     /* its Slurm settings, MessagePack; NULL: it runs jobs here */
    size_t slurm_len;
} st_group;

/* Retention: ended tasks are deleted from the store once older than keep_for seconds, or
 * beyond the newest `keep`, by the writer in passes of at most ST_RETAIN_CHUNK rows. */
#define ST_KEEP_DEFAULT 1000000u
#define ST_KEEP_FOR_DEFAULT (7 * 86400.0)
#define ST_RETAIN_CHUNK 10000u
#define ST_RETAIN_EVERY 10.0 /* seconds between passes, unless the last one had more to do */

/* What one owner's rows may hold on disk (specs, outcomes and output files): past it, its oldest
 * ended rows go first, so no uid's history can fill the disk everyone's store is on. */
#define ST_OWNER_BYTES_DEFAULT (1ull << 30)
#define ST_ROW_OVERHEAD 128u /* what a row costs besides its spec and outcome (counted) */

typedef struct st_config {
    st_sync sync;
    uint64_t keep;   /* 0: ST_KEEP_DEFAULT */
    double keep_for; /* 0: ST_KEEP_FOR_DEFAULT */
    uint64_t max_owner_bytes; /* 0: ST_OWNER_BYTES_DEFAULT */
    /* A task's output files live as long as its row: called on the writer thread, after
     * the commit that deleted a row with output (st_finished's out_bytes >= 0), to remove
     * them. It must touch nothing of the loop's. NULL: nobody keeps files. */
    void (*drop_output)(uint64_t id, void *arg);
    void *drop_arg;
    /* Merges an edit into a stored spec (st_edit), on the writer thread: 0 with the new
     * spec in *out (malloc'd), or a negative errno (the edit is then left out, logged). */
    int (*spec_edit)(const void *spec, size_t len, const void *edits, size_t elen, void **out, size_t *olen);
} st_config;

/* The batch `seq` is durable (rc 0) or was rolled back (rc < 0: a negative errno, -ENOSPC
 * for a full disk, -EIO otherwise). Runs on the loop thread. */
typedef void st_commit_cb(st_store *st, uint64_t seq, int rc, void *arg);

/* Opens (creating if need be) <dir>/corod.db and brings its schema up to date. A
 * database that is not one, is corrupt, or has a schema newer than this daemon knows is
 * refused with a message in errbuf that says what to do; it is never rewritten. */
int st_open(const char *dir, const st_config *cfg, st_store **out, char *errbuf, size_t errlen);
/* Commits what is still open (waiting for it), stops the writer and closes. */
void st_close(st_store *st);

/* ---- recovery (before serving) ---------------------------------------------------------- */

typedef struct st_loader {
    void (*group)(const st_group *g, void *arg);
    /* Every pending and running task, in id order; the pointers live until the callback
     * returns. A negative return stops the load with that error. Ended tasks stay in the
     * store (st_read, st_list). */
    int (*task)(const st_task *t, void *arg);
} st_loader;

/* The next id to give: above every id ever given. */
uint64_t st_next_id(const st_store *st);
int st_load(st_store *st, const st_loader *l, void *arg, char *errbuf, size_t errlen);

/* ---- history (any thread but the loop's: these wait on the disk) ---------------------------
 * Reads see what is committed. One runs at a time on the store's reading connection. */

/* A negative return stops the read; -ECANCELED from st_list's ends the page there (the
 * next page starts after that row). */
typedef int st_row_fn(const st_task *t, void *arg);

/* A row's copy in one allocation (free() it), to keep past the callback. NULL: no memory. */
st_task *st_task_copy(const st_task *t);
/* The rows of the ids that exist, in the order given. 0 or a negative errno. */
int st_read(st_store *st, const uint64_t *ids, size_t n, st_row_fn *fn, void *arg);

typedef struct st_query {
    bool all_owners;   /* else only `owner`'s */
    uint32_t owner;
    int state;         /* ST_TASK_*, or -1: any */
    const char *group, *kind, *name; /* NULL: any */
    double since, until; /* created at or after / before, NAN: no bound */
    bool desc;         /* newest first */
    uint64_t after;    /* the cursor: ids after it (desc: before it); 0: from the start */
    size_t limit;      /* rows at most */
    uint64_t window;   /* ids looked at, at most: one page's cost is bounded however rare
                          the matches (the next page starts where it stopped) */
} st_query;

/* A page of tasks matching q, in id order (or newest first); *next is the cursor for the
 * next page, 0 when there is none. 0 or a negative errno. */
int st_list(st_store *st, const st_query *q, st_row_fn *fn, void *arg, uint64_t *next);

/* ---- writes (loop thread): 0, or -ENOMEM ------------------------------------------------ */

int st_insert(st_store *st, const st_task *t);
int st_started(st_store *st, uint64_t id, double started_at, uint32_t attempts);
int st_spawned(st_store *st, uint64_t id, int64_t pid, double spawned_at);
/* Its attempt went to Slurm: job 0 as srun starts, then the id Slurm gave it. */
int st_slurm(st_store *st, uint64_t id, uint64_t job);
/* Pending again (after its dependencies, or a failed attempt), until wake_at. */
int st_waiting(st_store *st, uint64_t id, double wake_at, uint32_t attempts);
/* out_bytes: what its output files hold, or -1 for a kind without output files. */
int st_finished(st_store *st, uint64_t id, int state, double finished_at, const void *outcome, size_t len,
                int64_t out_bytes);
int st_forget(st_store *st, uint64_t id);
/* A pending task changed: its name (NULL: none) and group as they now are, and `edits`, a
 * packed map of the spec's fields to replace (cfg.spec_edit merges them, on the writer). */
int st_edit(st_store *st, uint64_t id, const char *name, const char *group, const void *edits, size_t len);
int st_put_group(st_store *st, const st_group *g);
/* A group set up with st_put_group is no longer: its row goes. */
int st_drop_group(st_store *st, const char *name);
/* The id counter: written with the batch, once. */
void st_set_next_id(st_store *st, uint64_t next);

/* ---- batches ------------------------------------------------------------------------------ */

/* Start the writer thread; on_commit is called from `loop`. */
int st_start(st_store *st, uv_loop_t *loop, st_commit_cb *on_commit, void *arg);
/* The batch the next write joins. */
uint64_t st_open_seq(const st_store *st);
/* The newest batch holding writes not yet durable; 0 when every write is. */
uint64_t st_unsaved(const st_store *st);
/* The open batch is full while the writer is busy: callers stop making changes until
 * the next commit (bounding a batch bounds how long any answer waits for one). */
#define ST_BATCH_OPS 16384u
bool st_backed_up(const st_store *st);
/* Hands the open batch over if it holds writes and the writer is idle. */
void st_kick(st_store *st);
/* After a failed commit: the failed batch's writes go again, ahead of the open batch's,
 * all but its inserts (the caller refuses those submits instead). The retry is handed
 * over by the next st_kick; until st_retry, nothing is. */
void st_retry(st_store *st);
/* During st_commit_cb: the ids retention deleted with that batch (their records go from
 * memory, and their output files). */
const uint64_t *st_deleted(const st_store *st, size_t *n);

/* Whether the reserve is in place: false from a full disk until it could be made again.
 * st_probe asks the writer for a pass (it tries to make it) even with nothing to write. */
bool st_has_room(const st_store *st);
void st_probe(st_store *st);
/* A first commit, waited for: 0, or the error that stops the store from writing (say,
 * out of memory under a tight address space) — better known at start than at the
 * first answer. */
int st_check(st_store *st);
/* Wait until every write so far is committed or has failed (shutdown). */
void st_drain(st_store *st);

/* What the writer did, for `bench` and tests. */
typedef struct st_stats {
    uint64_t commits, ops, failures;
} st_stats;
void st_get_stats(const st_store *st, st_stats *out);

/* For tests: make the next n commits fail as if the disk were full. */
void st_fail_next(st_store *st, unsigned n);

#endif
