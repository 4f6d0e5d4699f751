/* test_store: the durable store on its own — the schema made and kept, databases it must
 * refuse (damaged, newer), batches committed by the writer thread and read back at the
 * next open, every kind of write, and a failed commit whose inserts are dropped while the
 * rest is written again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <math.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "st_store.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_store.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static st_store *open_ok(st_sync sync)
{
    st_store *st = NULL;
    char err[512] = "";
    st_config cfg = { .sync = sync };
    int rc = st_open(dir, &cfg, &st, err, sizeof err);
    if (rc < 0)
        fail_msg("st_open: %d %s", rc, err);
    return st;
}

/* ---- what the loop sees of commits ---- */

typedef struct seen {
    uint64_t seq;
    int rc;
    int calls;
} seen;

static void on_commit(st_store *st, uint64_t seq, int rc, void *arg)
{
    seen *s = arg;
    (void)st;
    s->seq = seq;
    s->rc = rc;
    s->calls++;
}

/* Run the loop until a commit has been reported. */
static void wait_commit(uv_loop_t *loop, st_store *st, seen *s)
{
    int calls = s->calls;
    st_kick(st);
    while (s->calls == calls)
        uv_run(loop, UV_RUN_ONCE);
}

/* ---- what a load sees ---- */

typedef struct rows {
    size_t n, groups;
    st_task last;
    char last_name[64], last_kind[16], last_spec[64], outcome[64];
    size_t outcome_len;
    uint64_t ids[4096];      /* in the order loaded: ended ones first, then the active */
    int states[4096];        /* by id; -1: not loaded */
    st_group g;
    char gname[64];
    uint32_t gusers[8];
} rows;

static void load_group(const st_group *g, void *arg)
{
    rows *r = arg;
    r->groups++;
    r->g = *g;
    snprintf(r->gname, sizeof r->gname, "%s", g->name);
    if (g->nusers)
        memcpy(r->gusers, g->users, g->nusers * sizeof(uint32_t));
}

static int load_task(const st_task *t, void *arg)
{
    rows *r = arg;
    if (r->n < 4096)
        r->ids[r->n] = t->id;
    if (t->id < 4096)
        r->states[t->id] = t->state;
    r->n++;
    r->last = *t;
    snprintf(r->last_name, sizeof r->last_name, "%s", t->name ? t->name : "(null)");
    snprintf(r->last_kind, sizeof r->last_kind, "%s", t->kind);
    memcpy(r->last_spec, t->spec, t->spec_len < 64 ? t->spec_len : 64);
    r->outcome_len = t->outcome_len;
    if (t->outcome_len)
        memcpy(r->outcome, t->outcome, t->outcome_len < 64 ? t->outcome_len : 64);
    return 0;
}

static void load_ok(st_store *st, rows *r)
{
    memset(r, 0, sizeof *r);
    memset(r->states, -1, sizeof r->states);
    char err[512] = "";
    st_loader l = { .group = load_group, .task = load_task };
    int rc = st_load(st, &l, r, err, sizeof err);
    if (rc < 0)
        fail_msg("st_load: %s", err);
}

static st_task task(uint64_t id)
{
    return (st_task){ .id = id, .owner = 1000, .kind = "sleep", .name = "nap", .group = "default",
                      .spec = "\x81\xa4kind\xa5sleep", .spec_len = 12, .created_at = 1.5e9, .wake_at = NAN };
}

static void test_batches_are_committed_and_read_back(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    st_store *st = open_ok(ST_SYNC_FULL);
    seen s = { 0 };
    assert_int_equal(st_start(st, &loop, on_commit, &s), 0);
    assert_int_equal(st_unsaved(st), 0);
    for (uint64_t id = 1; id <= 1000; id++) {
        st_task t = task(id);
        assert_int_equal(st_insert(st, &t), 0);
    }
    st_set_next_id(st, 1001);
    uint64_t first = st_open_seq(st);
    assert_int_equal(st_unsaved(st), first);
    wait_commit(&loop, st, &s);
    assert_int_equal(s.rc, 0);
    assert_int_equal(s.seq, first);
    assert_int_equal(st_unsaved(st), 0);
    /* Each kind of write, in the next batch. */
    assert_int_equal(st_started(st, 1, 1.6e9, 1), 0);
    assert_int_equal(st_finished(st, 1, ST_TASK_SUCCEEDED, 1.7e9, "\xa2ok", 3, -1), 0);
    assert_int_equal(st_started(st, 2, 1.6e9, 1), 0);
    assert_int_equal(st_spawned(st, 2, 4242, 1.6e9), 0);
    assert_int_equal(st_waiting(st, 3, 1.8e9, 2), 0);
    assert_int_equal(st_forget(st, 4), 0);
    uint32_t users[2] = { 1000, 1001 };
    st_group g = { .name = "builds", .parallel = 3, .paused = true, .users = users, .nusers = 2 };
    assert_int_equal(st_put_group(st, &g), 0);
    wait_commit(&loop, st, &s);
    assert_int_equal(s.rc, 0);
    assert_int_equal(s.seq, first + 1);
    st_stats stats;
    st_get_stats(st, &stats);
    assert_int_equal(stats.commits, 2);
    assert_int_equal(stats.ops, 1007);
    st_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    /* A new open finds it all. */
    st = open_ok(ST_SYNC_NORMAL);
    assert_int_equal(st_next_id(st), 1001);
    rows r;
    load_ok(st, &r);
    assert_int_equal(r.n, 998); /* the active ones: 1 ended, 4 was forgotten */
    assert_int_equal(r.states[1], -1); /* ended: in the store only */
    assert_int_equal(r.states[2], ST_TASK_RUNNING);
    assert_int_equal(r.states[3], ST_TASK_PENDING);
    assert_int_equal(r.states[4], -1);
    assert_int_equal(r.ids[0], 2); /* in id order */
    assert_int_equal(r.ids[2], 5);
    rows ended;
    memset(&ended, 0, sizeof ended);
    memset(ended.states, -1, sizeof ended.states);
    uint64_t ids[2] = { 1, 4 };
    assert_int_equal(st_read(st, ids, 2, load_task, &ended), 0);
    assert_int_equal(ended.n, 1);
    assert_int_equal(ended.states[1], ST_TASK_SUCCEEDED);
    assert_int_equal(r.last.id, 1000);
    assert_int_equal(r.last.owner, 1000);
    assert_string_equal(r.last_kind, "sleep");
    assert_string_equal(r.last_name, "nap");
    assert_int_equal(r.last.spec_len, 12);
    assert_memory_equal(r.last_spec, "\x81\xa4kind\xa5sleep", 12);
    assert_true(isnan(r.last.wake_at));
    assert_int_equal(r.groups, 1);
    assert_string_equal(r.gname, "builds");
    assert_int_equal(r.g.parallel, 3);
    assert_true(r.g.paused);
    assert_int_equal(r.g.nusers, 2);
    assert_int_equal(r.gusers[1], 1001);
    st_close(st);
}

/* The finished row's outcome, the running row's process and the pending row's wake-up. */
static int load_check(const st_task *t, void *arg)
{
    (void)arg;
    if (t->id == 1) {
        assert_int_equal(t->outcome_len, 3);
        assert_memory_equal(t->outcome, "\xa2ok", 3);
        assert_true(t->finished_at == 1.7e9);
        assert_int_equal(t->pid, 0);
    } else if (t->id == 2) {
        assert_int_equal(t->pid, 4242);
        assert_true(t->spawned_at == 1.6e9);
        assert_int_equal(t->attempts, 1);
    } else if (t->id == 3) {
        assert_true(t->wake_at == 1.8e9);
        assert_int_equal(t->attempts, 2);
    }
    return 0;
}

static void test_each_write_lands_in_its_column(void **state)
{
    (void)state;
    st_store *st = open_ok(ST_SYNC_FULL);
    uint64_t ids[3] = { 1, 2, 3 };
    assert_int_equal(st_read(st, ids, 3, load_check, NULL), 0);
    st_close(st);
}

static void test_a_failed_commit_drops_its_inserts_and_retries_the_rest(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    st_store *st = open_ok(ST_SYNC_FULL);
    seen s = { 0 };
    assert_int_equal(st_start(st, &loop, on_commit, &s), 0);
    st_task t = task(2000);
    assert_int_equal(st_insert(st, &t), 0);
    assert_int_equal(st_finished(st, 5, ST_TASK_CANCELLED, 1.9e9, NULL, 0, -1), 0);
    st_fail_next(st, 1);
    uint64_t seq = st_open_seq(st);
    wait_commit(&loop, st, &s);
    assert_int_equal(s.rc, -ENOSPC);
    assert_int_equal(s.seq, seq);
    /* Nothing goes until the caller says so; writes made meanwhile join the retry. */
    assert_int_not_equal(st_unsaved(st), 0);
    st_kick(st);
    assert_int_equal(s.calls, 1);
    assert_int_equal(st_started(st, 6, 1.9e9, 1), 0);
    st_retry(st);
    wait_commit(&loop, st, &s);
    assert_int_equal(s.rc, 0);
    assert_true(s.seq > seq);
    assert_int_equal(st_unsaved(st), 0);
    st_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    st = open_ok(ST_SYNC_FULL);
    rows r;
    load_ok(st, &r);
    assert_int_equal(r.last.id, 1000); /* the insert of 2000 was dropped */
    assert_int_equal(r.states[5], -1); /* ended: read below */
    assert_int_equal(r.states[6], ST_TASK_RUNNING);
    assert_int_equal(r.states[2000], -1);
    uint64_t five = 5;
    assert_int_equal(st_read(st, &five, 1, load_task, &r), 0);
    assert_int_equal(r.states[5], ST_TASK_CANCELLED);
    st_close(st);
}

static void test_a_newer_schema_is_refused(void **state)
{
    (void)state;
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", dir, ST_DB_NAME);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    st_store *st = NULL;
    st_config cfg = { .sync = ST_SYNC_FULL };
    assert_int_equal(st_open(dir, &cfg, &st, err, sizeof err), -EPROTO);
    char want[80];
    snprintf(want, sizeof want, "schema version 99, newer than this corod knows (%d)", ST_SCHEMA_VERSION);
    assert_non_null(strstr(err, want));
    /* ... and left as it was. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 99);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_a_damaged_file_is_refused_and_kept(void **state)
{
    (void)state;
    char path[128], err[512] = "", junk[8192];
    snprintf(path, sizeof path, "%s/%s", dir, ST_DB_NAME);
    unlink(path);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    memset(junk, 'x', sizeof junk);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    st_store *st = NULL;
    st_config cfg = { .sync = ST_SYNC_FULL };
    assert_int_equal(st_open(dir, &cfg, &st, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "is damaged"));
    assert_non_null(strstr(err, "corod will not replace it"));
    f = fopen(path, "r");
    assert_int_equal(fread(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    assert_int_equal(junk[0], 'x');
}

/* Output files go with their rows: the writer says which, once the delete is committed. */
static struct {
    uint64_t ids[8];
    size_t n;
} dropped;

static void on_drop(uint64_t id, void *arg)
{
    assert_ptr_equal(arg, &dropped);
    if (dropped.n < 8)
        dropped.ids[dropped.n++] = id;
}

static int64_t column_int(const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, ST_DB_NAME);
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? (sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 0))
                                             : -2;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void test_output_files_go_with_their_rows(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    st_store *st = NULL;
    char err[512] = "";
    st_config cfg = { .sync = ST_SYNC_NORMAL, .drop_output = on_drop, .drop_arg = &dropped };
    assert_int_equal(st_open(dir, &cfg, &st, err, sizeof err), 0);
    seen s = { 0 };
    assert_int_equal(st_start(st, &loop, on_commit, &s), 0);
    for (uint64_t id = 3001; id <= 3004; id++) {
        st_task t = task(id);
        assert_int_equal(st_insert(st, &t), 0);
    }
    wait_commit(&loop, st, &s);
    /* 3001 and 3002 had output (none written, then 4096 bytes), 3003 none at all. */
    assert_int_equal(st_finished(st, 3001, ST_TASK_SUCCEEDED, 2e9, NULL, 0, 0), 0);
    assert_int_equal(st_finished(st, 3002, ST_TASK_FAILED, 2e9, NULL, 0, 4096), 0);
    assert_int_equal(st_finished(st, 3003, ST_TASK_SUCCEEDED, 2e9, NULL, 0, -1), 0);
    wait_commit(&loop, st, &s);
    assert_int_equal(s.rc, 0);
    assert_int_equal(column_int("SELECT out_bytes FROM tasks WHERE id = 3002"), 4096);
    assert_int_equal(column_int("SELECT out_bytes FROM tasks WHERE id = 3003"), -1);
    /* A forget. */
    dropped.n = 0;
    assert_int_equal(st_forget(st, 3001), 0);
    assert_int_equal(st_forget(st, 3003), 0); /* no output files: none to remove */
    wait_commit(&loop, st, &s);
    assert_int_equal(s.rc, 0);
    assert_int_equal(dropped.n, 1);
    assert_int_equal(dropped.ids[0], 3001);
    st_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* Retention: with --keep 1, the next end takes 3002 (the older ended row) away. */
    cfg.keep = 1;
    assert_int_equal(st_open(dir, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(st_start(st, &loop, on_commit, &s), 0);
    dropped.n = 0;
    assert_int_equal(st_finished(st, 3004, ST_TASK_SUCCEEDED, 2e9, NULL, 0, -1), 0);
    wait_commit(&loop, st, &s);
    assert_int_equal(s.rc, 0);
    assert_int_equal(dropped.n, 1);
    assert_int_equal(dropped.ids[0], 3002);
    assert_int_equal(column_int("SELECT count(*) FROM tasks WHERE id = 3002"), 0);
    st_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

/* A database of schema version 1 (as the first corod with a store wrote it) is brought
 * to the current one, its rows kept. */
static void test_a_version_1_database_is_migrated(void **state)
{
    (void)state;
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", dir, ST_DB_NAME);
    unlink(path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
                     "CREATE TABLE groups(name TEXT PRIMARY KEY, parallel INTEGER NOT NULL, paused INTEGER NOT NULL,"
                     " users BLOB) WITHOUT ROWID;"
                     "CREATE TABLE tasks(id INTEGER PRIMARY KEY, owner INTEGER NOT NULL, kind TEXT NOT NULL,"
                     " name TEXT, grp TEXT NOT NULL, spec BLOB NOT NULL, command TEXT, state INTEGER NOT NULL,"
                     " attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, started_at REAL,"
                     " finished_at REAL, wake_at REAL, pid INTEGER, spawned_at REAL, outcome BLOB,"
                     " restarted_from INTEGER);"
                     "CREATE INDEX tasks_owner ON tasks(owner, id);"
                     "CREATE INDEX tasks_state ON tasks(state, id);"
                     "CREATE INDEX tasks_group ON tasks(grp, id);"
                     "CREATE INDEX tasks_ended ON tasks(finished_at) WHERE state >= 2;"
                     "INSERT INTO tasks(id, owner, kind, grp, spec, state, created_at)"
                     " VALUES(77, 1000, 'sleep', 'default', x'81a46b696e64a5736c656570', 0, 1.5e9);"
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st_store *st = NULL;
    st_config cfg = { .sync = ST_SYNC_FULL };
    assert_int_equal(st_open(dir, &cfg, &st, err, sizeof err), 0);
    rows r;
    load_ok(st, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.last.id, 77);
    assert_int_equal(st_next_id(st), 78);
    st_close(st);
    assert_int_equal(column_int("PRAGMA user_version"), ST_SCHEMA_VERSION);
    assert_int_equal(column_int("SELECT out_bytes FROM tasks WHERE id = 77"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_are_committed_and_read_back),
        cmocka_unit_test(test_each_write_lands_in_its_column),
        cmocka_unit_test(test_a_failed_commit_drops_its_inserts_and_retries_the_rest),
        cmocka_unit_test(test_output_files_go_with_their_rows),
        cmocka_unit_test(test_a_version_1_database_is_migrated),
        cmocka_unit_test(test_a_newer_schema_is_refused),
        cmocka_unit_test(test_a_damaged_file_is_refused_and_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
