/* st_db.c: the database — opening it, its schema and migrations, the statements a batch
 * runs, and the reads at start. */
#include "st_internal.h"
#include "ut_fail.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version 1. A later version adds a step to st_migrate, never edits this one. */
static const char st_schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE groups(name TEXT PRIMARY KEY, parallel INTEGER NOT NULL, paused INTEGER NOT NULL,"
    " users BLOB) WITHOUT ROWID;"
    "CREATE TABLE tasks(id INTEGER PRIMARY KEY, owner INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT,"
    " grp TEXT NOT NULL, spec BLOB NOT NULL, command TEXT, state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, started_at REAL, finished_at REAL,"
    " wake_at REAL, pid INTEGER, spawned_at REAL, outcome BLOB, restarted_from INTEGER);"
    "CREATE INDEX tasks_owner ON tasks(owner, id);"
    "CREATE INDEX tasks_state ON tasks(state, id);"
    "CREATE INDEX tasks_group ON tasks(grp, id);"
    "CREATE INDEX tasks_ended ON tasks(finished_at) WHERE state >= 2;"
    "PRAGMA user_version = 1;";

/* Version 2: the bytes of a task's output files, written with its end (NULL for a kind
 * without output). The files live as long as the row, and count in its owner's bytes. */
static const char st_schema_v2[] =
    "ALTER TABLE tasks ADD COLUMN out_bytes INTEGER;"
    "PRAGMA user_version = 2;";

/* Version 3: Slurm. A group's settings for its Slurm executor (NULL: it runs jobs here,
 * MessagePack otherwise), and a task's Slurm job: 0 once srun has it, then the job's id;
 * NULL for one that never went to Slurm. A restart cancels the Slurm job of every task it
 * finds running. */
static const char st_schema_v3[] =
    "ALTER TABLE groups ADD COLUMN slurm BLOB;"
    "ALTER TABLE tasks ADD COLUMN slurm_job INTEGER;"
    "PRAGMA user_version = 3;";

/* What a row counts for in its owner's bytes (ST_ROW_OVERHEAD aside). */
#define ST_ROW_BYTES "length(spec) + coalesce(length(outcome), 0) + coalesce(out_bytes, 0)"

static const char *const st_sql[SQ_COUNT] = {
    [SQ_INSERT] = "INSERT INTO tasks(id, owner, kind, name, grp, command, spec, state, attempts, created_at,"
                  " wake_at, restarted_from) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, ?8, ?9, ?10)",
    [SQ_STARTED] = "UPDATE tasks SET state = 1, started_at = ?2, attempts = ?3, pid = NULL, spawned_at = NULL,"
                   " wake_at = NULL, slurm_job = NULL WHERE id = ?1",
    [SQ_SLURM] = "UPDATE tasks SET slurm_job = ?2 WHERE id = ?1",
    [SQ_SPAWNED] = "UPDATE tasks SET pid = ?2, spawned_at = ?3 WHERE id = ?1",
    [SQ_WAITING] = "UPDATE tasks SET state = 0, wake_at = ?2, attempts = ?3, pid = NULL WHERE id = ?1",
    [SQ_FINISHED] = "UPDATE tasks SET state = ?2, finished_at = ?3, outcome = ?4, out_bytes = ?5, pid = NULL,"
                    " wake_at = NULL WHERE id = ?1 RETURNING owner",
    [SQ_FORGET] = "DELETE FROM tasks WHERE id = ?1 RETURNING owner, " ST_ROW_BYTES ", out_bytes IS NOT NULL",
    [SQ_GROUP] = "INSERT OR REPLACE INTO groups(name, parallel, paused, users, slurm) VALUES(?1, ?2, ?3, ?4, ?5)",
    [SQ_UNGROUP] = "DELETE FROM groups WHERE name = ?1",
    [SQ_EDIT_READ] = "SELECT owner, spec FROM tasks WHERE id = ?1",
    [SQ_EDIT] = "UPDATE tasks SET spec = ?2, name = ?3, grp = ?4 WHERE id = ?1",
    [SQ_NEXT_ID] = "INSERT OR REPLACE INTO meta(key, value) VALUES('next_id', ?1)",
    [SQ_BEGIN] = "BEGIN",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
};

/* What to tell an operator whose database cannot be used as it is. */
static int st_refuse(st_store *st, const char *path, int rc, char *errbuf, size_t errlen)
{
    const char *why = sqlite3_errmsg(st->db);
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
        return ut_fail(errbuf, errlen, -EINVAL,
                       "%s is damaged (%s): corod will not replace it. Restore a backup, or move it aside "
                       "to start with an empty store", path, why);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return ut_fail(errbuf, errlen, -EBUSY, "%s is locked by another program: %s", path, why);
    if (rc == SQLITE_CANTOPEN || rc == SQLITE_PERM || rc == SQLITE_READONLY)
        return ut_fail(errbuf, errlen, -EACCES, "cannot open %s for writing: %s", path, why);
    if (rc == SQLITE_FULL)
        return ut_fail(errbuf, errlen, -ENOSPC, "no space left for %s: %s", path, why);
    return ut_fail(errbuf, errlen, -EIO, "cannot use %s: %s", path, why);
}

static int st_user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Bring the schema to ST_SCHEMA_VERSION, in one transaction. */
static int st_migrate(st_store *st, const char *path, char *errbuf, size_t errlen)
{
    int v = 0, rc = st_user_version(st->db, &v);
    if (rc != SQLITE_OK)
        return st_refuse(st, path, rc, errbuf, errlen);
    if (v > ST_SCHEMA_VERSION)
        return ut_fail(errbuf, errlen, -EPROTO,
                       "%s has schema version %d, newer than this corod knows (%d): run the corod that "
                       "wrote it, or a newer one", path, v, ST_SCHEMA_VERSION);
    if (v == ST_SCHEMA_VERSION)
        return 0;
    char *msg = NULL;
    rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK && v < 1)
        rc = sqlite3_exec(st->db, st_schema_v1, NULL, NULL, &msg);
    if (rc == SQLITE_OK && v < 2)
        rc = sqlite3_exec(st->db, st_schema_v2, NULL, NULL, &msg);
    if (rc == SQLITE_OK && v < 3)
        rc = sqlite3_exec(st->db, st_schema_v3, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_free(msg);
        return st_refuse(st, path, rc, errbuf, errlen);
    }
    return 0;
}

static int st_next_id_load(st_store *st)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'next_id'), 1),"
                                " coalesce((SELECT max(id) FROM tasks), 0) + 1)", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        st->next_id = (uint64_t)sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

static int st_owners_load(st_store *st);

static int st_count_ended(st_store *st)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "SELECT count(*) FROM tasks WHERE state >= 2", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        st->ended = (uint64_t)sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

int st_db_open(st_store *st, const char *path, char *errbuf, size_t errlen)
{
    /* No allocation statistics: they take a global mutex on every malloc of SQLite's,
     * which the writer thread's inserts do a few of each (6 % of a submit burst's
     * profile went to that lock). Only before SQLite is first used; later, refused. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        int e = st->db ? st_refuse(st, path, rc, errbuf, errlen)
                       : ut_fail(errbuf, errlen, -ENOMEM, "out of memory opening %s", path);
        return e;
    }
    sqlite3_extended_result_codes(st->db, 0);
    /* Another program holding the database (sqlite3's .backup, a reader) gets a moment,
     * never the loop: only the writer thread and the load at start wait here. */
    sqlite3_busy_timeout(st->db, 2000);
    sqlite3_stmt *s;
    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        bool wal = rc == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(s, 0), "wal");
        sqlite3_finalize(s);
        if (rc == SQLITE_ROW && !wal)
            return ut_fail(errbuf, errlen, -EIO, "%s cannot be put in WAL mode", path);
        rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK)
        return st_refuse(st, path, rc, errbuf, errlen);
    /* A page cache of 1 MiB (SQLite's default is 2): the writer's batches touch the
     * newest pages of a few indexes, and the daemon may live in a tight address space. */
    sqlite3_exec(st->db, "PRAGMA cache_size = -1024", NULL, NULL, NULL);
    const char *sync = st->cfg.sync == ST_SYNC_NORMAL ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL";
    if ((rc = sqlite3_exec(st->db, sync, NULL, NULL, NULL)) != SQLITE_OK)
        return st_refuse(st, path, rc, errbuf, errlen);
    int e = st_migrate(st, path, errbuf, errlen);
    if (e < 0)
        return e;
    for (int i = 0; i < SQ_COUNT; i++)
        if ((rc = sqlite3_prepare_v3(st->db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->sq[i], NULL)) !=
            SQLITE_OK)
            return st_refuse(st, path, rc, errbuf, errlen);
    if ((rc = st_next_id_load(st)) != SQLITE_OK || (rc = st_count_ended(st)) != SQLITE_OK ||
        (rc = st_owners_load(st)) != SQLITE_OK)
        return st_refuse(st, path, rc, errbuf, errlen);
    return 0;
}

void st_db_close(st_store *st)
{
    for (int i = 0; i < SQ_COUNT; i++)
        sqlite3_finalize(st->sq[i]);
    sqlite3_close(st->db);
    free(st->owners);
    st->owners = NULL;
    free(st->drops);
    st->drops = NULL;
}

/* ---- applying a batch ----------------------------------------------------------------- */

static void st_bind_time(sqlite3_stmt *s, int i, double t)
{
    if (isnan(t))
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_double(s, i, t);
}

static void st_bind_text(sqlite3_stmt *s, int i, const st_batch *b, const st_op *op, int k)
{
    const void *p = st_op_str(b, op, k);
    if (p)
        sqlite3_bind_text(s, i, p, (int)op->len[k], SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static void st_bind_blob(sqlite3_stmt *s, int i, const st_batch *b, const st_op *op, int k)
{
    const void *p = st_op_str(b, op, k);
    if (p)
        sqlite3_bind_blob(s, i, p, (int)op->len[k], SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static sqlite3_stmt *st_bind_op(st_store *st, const st_batch *b, const st_op *op)
{
    sqlite3_stmt *s;
    switch (op->type) {
    case OP_INSERT:
        s = st->sq[SQ_INSERT];
        sqlite3_bind_int64(s, 2, op->owner);
        st_bind_text(s, 3, b, op, 0);
        st_bind_text(s, 4, b, op, 1);
        st_bind_text(s, 5, b, op, 2);
        st_bind_text(s, 6, b, op, 3);
        st_bind_blob(s, 7, b, op, 4);
        sqlite3_bind_double(s, 8, op->t[0]);
        st_bind_time(s, 9, op->t[1]);
        if (op->ref)
            sqlite3_bind_int64(s, 10, (sqlite3_int64)op->ref);
        else
            sqlite3_bind_null(s, 10);
        break;
    case OP_STARTED:
        s = st->sq[SQ_STARTED];
        sqlite3_bind_double(s, 2, op->t[0]);
        sqlite3_bind_int64(s, 3, op->attempts);
        break;
    case OP_SPAWNED:
        s = st->sq[SQ_SPAWNED];
        sqlite3_bind_int64(s, 2, op->pid);
        sqlite3_bind_double(s, 3, op->t[0]);
        break;
    case OP_SLURM:
        s = st->sq[SQ_SLURM];
        sqlite3_bind_int64(s, 2, op->pid);
        break;
    case OP_WAITING:
        s = st->sq[SQ_WAITING];
        st_bind_time(s, 2, op->t[0]);
        sqlite3_bind_int64(s, 3, op->attempts);
        break;
    case OP_FINISHED:
        s = st->sq[SQ_FINISHED];
        sqlite3_bind_int(s, 2, op->state);
        sqlite3_bind_double(s, 3, op->t[0]);
        st_bind_blob(s, 4, b, op, 0);
        if (op->pid >= 0)
            sqlite3_bind_int64(s, 5, op->pid);
        else
            sqlite3_bind_null(s, 5);
        break;
    case OP_FORGET:
        s = st->sq[SQ_FORGET];
        break;
    case OP_UNGROUP:
        s = st->sq[SQ_UNGROUP];
        st_bind_text(s, 1, b, op, 0);
        return s;
    default: /* OP_GROUP */
        s = st->sq[SQ_GROUP];
        st_bind_text(s, 1, b, op, 0);
        sqlite3_bind_int64(s, 2, op->attempts);
        sqlite3_bind_int(s, 3, op->state);
        st_bind_blob(s, 4, b, op, 1);
        st_bind_blob(s, 5, b, op, 2);
        return s;
    }
    sqlite3_bind_int64(s, 1, (sqlite3_int64)op->id);
    return s;
}

/* One step; a RETURNING row's owner, byte count and whether it had output files into
 * *owner, *bytes and *files (else left). */
static int st_step_row(sqlite3_stmt *s, int64_t *owner, int64_t *bytes, bool *files)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && owner) {
        *owner = sqlite3_column_int64(s, 0);
        if (bytes && sqlite3_column_count(s) > 2) {
            *bytes = sqlite3_column_int64(s, 1);
            *files = sqlite3_column_int(s, 2) != 0;
        }
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int st_step(sqlite3_stmt *s)
{
    return st_step_row(s, NULL, NULL, NULL);
}

/* ---- what each owner's rows hold ----------------------------------------------------- */

static st_owner *st_owner_find(st_store *st, uint32_t uid, bool make)
{
    for (size_t i = 0; i < st->nowners; i++)
        if (st->owners[i].uid == uid)
            return &st->owners[i];
    if (!make)
        return NULL;
    st_owner *o = ut_grow(st->owners, &st->owners_cap, st->nowners, sizeof *o, 16);
    if (!o)
        return NULL; /* not counted: a bound not kept for it, nothing worse */
    st->owners = o;
    st->owners[st->nowners] = (st_owner){ .uid = uid };
    return &st->owners[st->nowners++];
}

static void st_owner_add(st_store *st, int64_t uid, int64_t delta)
{
    st_owner *o = uid >= 0 ? st_owner_find(st, (uint32_t)uid, delta > 0) : NULL;
    if (!o)
        return;
    o->bytes = (int64_t)o->bytes + delta > 0 ? (uint64_t)((int64_t)o->bytes + delta) : 0;
    if (o->bytes > st->cfg.max_owner_bytes)
        st->owner_over = true;
}

static int st_owners_load(st_store *st)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "SELECT owner, sum(" ST_ROW_BYTES "), count(*)"
                                " FROM tasks GROUP BY owner", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        st_owner_add(st, sqlite3_column_int64(s, 0),
                     sqlite3_column_int64(s, 1) + sqlite3_column_int64(s, 2) * ST_ROW_OVERHEAD);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- output files, which go with their rows -------------------------------------------- */

static int st_drop_add(st_store *st, uint64_t id)
{
    if (!st->cfg.drop_output)
        return 0;
    uint64_t *d = ut_grow(st->drops, &st->drops_cap, st->ndrops, sizeof *d, 256);
    if (!d)
        return SQLITE_NOMEM;
    st->drops = d;
    st->drops[st->ndrops++] = id;
    return SQLITE_OK;
}

/* After the commit: a crash before this leaves files without a row, which the next start
 * removes; the other order could leave a row whose files are gone. */
static void st_drops_run(st_store *st, bool committed)
{
    for (size_t i = 0; committed && i < st->ndrops; i++)
        st->cfg.drop_output(st->drops[i], st->cfg.drop_arg);
    st->ndrops = 0;
}

/* An edit: the spec read, merged (cfg.spec_edit) and written back with the name and
 * group; *uid and *delta say what the owner's bytes change by. A row gone meanwhile, or an
 * edit that cannot be merged, changes nothing (the task runs as edited all the same). */
static int st_edit_apply(st_store *st, const st_batch *b, const st_op *op, int64_t *uid, int64_t *delta)
{
    sqlite3_stmt *r = st->sq[SQ_EDIT_READ];
    sqlite3_bind_int64(r, 1, (sqlite3_int64)op->id);
    int rc = sqlite3_step(r);
    void *spec = NULL;
    size_t len = 0;
    if (rc == SQLITE_ROW && st->cfg.spec_edit &&
        st->cfg.spec_edit(sqlite3_column_blob(r, 1), (size_t)sqlite3_column_bytes(r, 1), st_op_str(b, op, 2),
                          op->len[2], &spec, &len) == 0) {
        *uid = sqlite3_column_int64(r, 0);
        *delta = (int64_t)len - sqlite3_column_bytes(r, 1);
    }
    sqlite3_reset(r);
    sqlite3_clear_bindings(r);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (!spec)
        return SQLITE_OK;
    sqlite3_stmt *s = st->sq[SQ_EDIT];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)op->id);
    sqlite3_bind_blob(s, 2, spec, (int)len, free);
    st_bind_text(s, 3, b, op, 0);
    st_bind_text(s, 4, b, op, 1);
    return st_step(s);
}

int st_db_apply(st_store *st, const st_batch *b, bool fail)
{
    int rc = st_step(st->sq[SQ_BEGIN]);
    int64_t ended = 0;
    /* Each op's change to its owner's bytes, applied once the batch is committed. */
    struct { int64_t uid, delta; } *d = b->n ? malloc(b->n * sizeof *d) : NULL;
    for (size_t i = 0; rc == SQLITE_OK && i < b->n; i++) {
        const st_op *op = &b->ops[i];
        int64_t uid = -1, bytes = 0;
        bool files = false;
        if (op->type == OP_EDIT) {
            rc = st_edit_apply(st, b, op, &uid, &bytes);
            if (d)
                d[i].uid = uid, d[i].delta = bytes;
            continue;
        }
        rc = st_step_row(st_bind_op(st, b, op), &uid, &bytes, &files);
        if (rc == SQLITE_OK && files)
            rc = st_drop_add(st, op->id);
        ended += op->type == OP_FINISHED ? 1 : op->type == OP_FORGET ? -1 : 0;
        if (d) {
            d[i].uid = op->type == OP_INSERT ? (int64_t)op->owner : uid;
            d[i].delta = op->type == OP_INSERT ? (int64_t)op->len[4] + ST_ROW_OVERHEAD
                         : op->type == OP_FINISHED ? (op->len[0] == ST_NULL ? 0 : (int64_t)op->len[0]) +
                                                         (op->pid > 0 ? op->pid : 0)
                         : op->type == OP_FORGET ? -(bytes + ST_ROW_OVERHEAD) : 0;
        }
    }
    if (rc == SQLITE_OK && b->next_id) {
        sqlite3_bind_int64(st->sq[SQ_NEXT_ID], 1, (sqlite3_int64)b->next_id);
        rc = st_step(st->sq[SQ_NEXT_ID]);
    }
    if (rc == SQLITE_OK && fail)
        rc = SQLITE_FULL;
    if (rc == SQLITE_OK)
        rc = st_step(st->sq[SQ_COMMIT]);
    st_drops_run(st, rc == SQLITE_OK);
    if (rc == SQLITE_OK) {
        st->ended = (uint64_t)((int64_t)st->ended + ended > 0 ? (int64_t)st->ended + ended : 0);
        for (size_t i = 0; d && i < b->n; i++)
            st_owner_add(st, d[i].uid, d[i].delta);
        free(d);
        return 0;
    }
    free(d);
    if (!sqlite3_get_autocommit(st->db))
        st_step(st->sq[SQ_ROLLBACK]);
    return rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

int st_reserve_make(st_store *st)
{
    int fd = open(st->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int rc = posix_fallocate(fd, 0, ST_RESERVE_BYTES);
    if (rc == 0 && fsync(fd) < 0)
        rc = errno;
    close(fd);
    if (rc) {
        unlink(st->reserve_path); /* a part is worth nothing, and takes what others need */
        return -rc;
    }
    return 0;
}

bool st_free_beyond_reserve(const st_store *st)
{
    struct statvfs vfs;
    if (statvfs(st->reserve_path, &vfs) < 0)
        return true; /* cannot tell: the next commit will */
    return (uint64_t)vfs.f_bavail * vfs.f_frsize >= ST_RESERVE_BYTES;
}

/* ---- retention ------------------------------------------------------------------------ */

static int st_collect(st_store *st, st_batch *b, sqlite3_stmt *s)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        st_owner_add(st, sqlite3_column_int64(s, 1), -(sqlite3_column_int64(s, 2) + ST_ROW_OVERHEAD));
        uint64_t *d = ut_grow(b->deleted, &b->deleted_cap, b->ndeleted, sizeof *d, 1024);
        if (!d)
            return SQLITE_NOMEM;
        b->deleted = d;
        b->deleted[b->ndeleted++] = (uint64_t)sqlite3_column_int64(s, 0);
        if (sqlite3_column_int(s, 3) && st_drop_add(st, (uint64_t)sqlite3_column_int64(s, 0)) != SQLITE_OK)
            return SQLITE_NOMEM;
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int st_db_retain(st_store *st, st_batch *b)
{
    /* By age (the index on ended rows' finished_at), then by count: the oldest ended
     * rows past the newest `keep` — counted as the writer goes (st->ended), so that the
     * rows are walked only when some must go. One transaction, ST_RETAIN_CHUNK rows at
     * most: the writer goes back to commits soon. */
#define ST_GONE " RETURNING id, owner, " ST_ROW_BYTES ", out_bytes IS NOT NULL"
    static const char *const sql[3] = {
        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state >= 2 AND finished_at < ?1"
        " LIMIT ?2)" ST_GONE,
        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state >= 2 ORDER BY id LIMIT ?3)" ST_GONE,
        /* An owner past its bytes: its oldest ended rows. */
        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE owner = ?4 AND state >= 2 ORDER BY id"
        " LIMIT 64)" ST_GONE,
    };
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    size_t before = b->ndeleted;
    int rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
        size_t room = ST_RETAIN_CHUNK - (b->ndeleted - before), over = 0;
        if (i == 1) {
            uint64_t ended = st->ended - (b->ndeleted - before);
            over = ended > st->cfg.keep ? (size_t)(ended - st->cfg.keep) : 0;
            if (!(over = over < room ? over : room))
                break;
        }
        sqlite3_stmt *s;
        if ((rc = sqlite3_prepare_v2(st->db, sql[i], -1, &s, NULL)) != SQLITE_OK)
            break;
        sqlite3_bind_double(s, 1, (double)now.tv_sec + (double)now.tv_nsec / 1e9 - st->cfg.keep_for);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)room);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)over);
        rc = st_collect(st, b, s);
        sqlite3_finalize(s);
    }
    /* Owners past their bytes, 64 rows at a time while they are (and rows are left). */
    bool over = false;
    for (size_t k = 0; rc == SQLITE_OK && st->owner_over && k < st->nowners; k++) {
        while (rc == SQLITE_OK && st->owners[k].bytes > st->cfg.max_owner_bytes &&
               b->ndeleted - before < ST_RETAIN_CHUNK) {
            sqlite3_stmt *s;
            size_t was = b->ndeleted;
            if ((rc = sqlite3_prepare_v2(st->db, sql[2], -1, &s, NULL)) != SQLITE_OK)
                break;
            sqlite3_bind_int64(s, 4, st->owners[k].uid);
            rc = st_collect(st, b, s);
            sqlite3_finalize(s);
            if (b->ndeleted == was)
                break; /* only active rows left: those are its memory share's to bound */
        }
        over |= st->owners[k].bytes > st->cfg.max_owner_bytes;
    }
    if (rc == SQLITE_OK)
        st->owner_over = over;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    st_drops_run(st, rc == SQLITE_OK);
    if (rc != SQLITE_OK) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        b->ndeleted = before;
        return -EIO;
    }
    size_t gone = b->ndeleted - before;
    st->ended = st->ended > gone ? st->ended - gone : 0;
    st->retain_more = gone >= ST_RETAIN_CHUNK;
    return 0;
}

/* ---- the load at start ------------------------------------------------------------------ */

double st_col_time(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

static int st_load_groups(st_store *st, const st_loader *l, void *arg)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "SELECT name, parallel, paused, users, slurm FROM groups", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        st_group g = {
            .name = (const char *)sqlite3_column_text(s, 0),
            .parallel = (uint32_t)sqlite3_column_int64(s, 1),
            .paused = sqlite3_column_int(s, 2) != 0,
            .users = sqlite3_column_blob(s, 3),
            .nusers = (size_t)sqlite3_column_bytes(s, 3) / sizeof(uint32_t),
            .slurm = sqlite3_column_blob(s, 4),
            .slurm_len = (size_t)sqlite3_column_bytes(s, 4),
        };
        if (g.name && l->group)
            l->group(&g, arg);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A row read with ST_COLUMNS; false if it is not one corod wrote (a damaged database). */
bool st_row(sqlite3_stmt *s, st_task *t)
{
    *t = (st_task){
        .id = (uint64_t)sqlite3_column_int64(s, 0),
        .owner = (uint32_t)sqlite3_column_int64(s, 1),
        .state = sqlite3_column_int(s, 2),
        .attempts = (uint32_t)sqlite3_column_int64(s, 3),
        .kind = (const char *)sqlite3_column_text(s, 4),
        .name = (const char *)sqlite3_column_text(s, 5),
        .group = (const char *)sqlite3_column_text(s, 6),
        .command = (const char *)sqlite3_column_text(s, 7),
        .spec = sqlite3_column_blob(s, 8),
        .spec_len = (size_t)sqlite3_column_bytes(s, 8),
        .created_at = st_col_time(s, 9),
        .started_at = st_col_time(s, 10),
        .finished_at = st_col_time(s, 11),
        .wake_at = st_col_time(s, 12),
        .pid = sqlite3_column_int64(s, 13),
        .spawned_at = st_col_time(s, 14),
        .outcome = sqlite3_column_blob(s, 15),
        .outcome_len = (size_t)sqlite3_column_bytes(s, 15),
        .restarted_from = (uint64_t)sqlite3_column_int64(s, 16),
        .slurm_job = sqlite3_column_type(s, 17) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 17),
    };
    return t->kind && t->group && t->state >= ST_TASK_PENDING && t->state <= ST_TASK_CANCELLED;
}

/* Each row of a statement to the loader's callback: SQLITE_OK, or the error (a callback's
 * in *cbrc). */
static int st_load_rows(sqlite3_stmt *s, const st_loader *l, void *arg, int *cbrc)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        st_task t;
        if (!st_row(s, &t)) {
            rc = SQLITE_CORRUPT;
            break;
        }
        if ((*cbrc = l->task(&t, arg)) < 0)
            break;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || *cbrc < 0 ? SQLITE_OK : rc;
}

/* What a restart takes into memory: every pending and running task, in id order (what
 * they depend on is older: loaded by then, or kept in the store only). Ended ones stay
 * in the store. */
static int st_load_tasks(st_store *st, const st_loader *l, void *arg, int *cbrc)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "SELECT " ST_COLUMNS " FROM tasks WHERE state < 2 ORDER BY id", -1, &s, NULL);
    return rc == SQLITE_OK ? st_load_rows(s, l, arg, cbrc) : rc;
}

uint64_t st_next_id(const st_store *st) { return st->next_id; }

int st_load(st_store *st, const st_loader *l, void *arg, char *errbuf, size_t errlen)
{
    int cbrc = 0;
    int rc = st_load_groups(st, l, arg);
    if (rc == SQLITE_OK)
        rc = st_load_tasks(st, l, arg, &cbrc);
    if (rc != SQLITE_OK)
        return st_refuse(st, sqlite3_db_filename(st->db, "main"), rc, errbuf, errlen);
    if (cbrc < 0)
        return ut_fail(errbuf, errlen, cbrc, "cannot restore the tasks in %s: %s",
                       sqlite3_db_filename(st->db, "main"), strerror(-cbrc));
    return 0;
}
