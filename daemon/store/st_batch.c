/* st_batch.c: the writes — appended by the loop to the open batch, applied by the writer
 * thread one batch at a time (group commit), and handed back to the loop. */
#include "st_internal.h"
#include "sy_log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void st_batch_init(st_batch *b, uint64_t seq)
{
    *b = (st_batch){ .seq = seq };
}

void st_batch_free(st_batch *b)
{
    free(b->ops);
    free(b->arena);
    free(b->deleted);
    *b = (st_batch){ 0 };
}

/* Empty it for reuse, keeping its buffers (one batch's worth is the next one's size). */
static void st_batch_reset(st_batch *b, uint64_t seq)
{
    b->seq = seq;
    b->n = 0;
    b->used = 0;
    b->next_id = 0;
    b->rc = 0;
}

/* A new op at the end of the open batch, with its strings' room in the arena: NULL when
 * memory runs out (nothing is left half added). */
static st_op *st_op_new(st_batch *b, int type, uint64_t id, size_t strbytes)
{
    st_op *ops = ut_grow(b->ops, &b->cap, b->n, sizeof *ops, 256);
    if (!ops)
        return NULL;
    b->ops = ops;
    if (b->acap - b->used < strbytes) {
        size_t ncap = b->acap ? b->acap : 16384;
        while (ncap - b->used < strbytes)
            ncap *= 2;
        uint8_t *n = realloc(b->arena, ncap);
        if (!n)
            return NULL;
        b->arena = n;
        b->acap = ncap;
    }
    st_op *op = &b->ops[b->n++];
    *op = (st_op){ .type = (uint8_t)type, .id = id };
    for (int i = 0; i < ST_NSTR; i++)
        op->len[i] = ST_NULL;
    return op;
}

static void st_op_put(st_batch *b, st_op *op, int i, const void *p, size_t len)
{
    if (!p)
        return;
    op->off[i] = (uint32_t)b->used;
    op->len[i] = (uint32_t)len;
    if (len)
        memcpy(b->arena + b->used, p, len);
    b->used += len;
}

static size_t st_len(const char *s) { return s ? strlen(s) : 0; }

int st_insert(st_store *st, const st_task *t)
{
    size_t ln[4] = { st_len(t->kind), st_len(t->name), st_len(t->group), st_len(t->command) };
    if (t->spec_len > UINT32_MAX / 2)
        return -E2BIG;
    st_op *op = st_op_new(&st->open, OP_INSERT, t->id, ln[0] + ln[1] + ln[2] + ln[3] + t->spec_len);
    if (!op)
        return -ENOMEM;
    op->owner = t->owner;
    op->t[0] = t->created_at;
    op->t[1] = t->wake_at;
    op->ref = t->restarted_from;
    st_op_put(&st->open, op, 0, t->kind, ln[0]);
    st_op_put(&st->open, op, 1, t->name, ln[1]);
    st_op_put(&st->open, op, 2, t->group, ln[2]);
    st_op_put(&st->open, op, 3, t->command, ln[3]);
    st_op_put(&st->open, op, 4, t->spec ? t->spec : "", t->spec_len);
    return 0;
}

int st_started(st_store *st, uint64_t id, double started_at, uint32_t attempts)
{
    st_op *op = st_op_new(&st->open, OP_STARTED, id, 0);
    if (!op)
        return -ENOMEM;
    op->t[0] = started_at;
    op->attempts = attempts;
    return 0;
}

int st_spawned(st_store *st, uint64_t id, int64_t pid, double spawned_at)
{
    st_op *op = st_op_new(&st->open, OP_SPAWNED, id, 0);
    if (!op)
        return -ENOMEM;
    op->pid = pid;
    op->t[0] = spawned_at;
    return 0;
}

int st_slurm(st_store *st, uint64_t id, uint64_t job)
{
    st_op *op = st_op_new(&st->open, OP_SLURM, id, 0);
    if (!op)
        return -ENOMEM;
    op->pid = (int64_t)(job & INT64_MAX);
    return 0;
}

int st_waiting(st_store *st, uint64_t id, double wake_at, uint32_t attempts)
{
    st_op *op = st_op_new(&st->open, OP_WAITING, id, 0);
    if (!op)
        return -ENOMEM;
    op->t[0] = wake_at;
    op->attempts = attempts;
    return 0;
}

int st_finished(st_store *st, uint64_t id, int state, double finished_at, const void *outcome, size_t len,
                int64_t out_bytes)
{
    if (len > UINT32_MAX / 2)
        return -E2BIG;
    st_op *op = st_op_new(&st->open, OP_FINISHED, id, len);
    if (!op)
        return -ENOMEM;
    op->state = (uint8_t)state;
    op->t[0] = finished_at;
    op->pid = out_bytes < 0 ? -1 : out_bytes;
    st_op_put(&st->open, op, 0, outcome, len);
    return 0;
}

int st_forget(st_store *st, uint64_t id)
{
    return st_op_new(&st->open, OP_FORGET, id, 0) ? 0 : -ENOMEM;
}

int st_put_group(st_store *st, const st_group *g)
{
    size_t nl = strlen(g->name), ul = g->nusers * sizeof(uint32_t);
    st_op *op = st_op_new(&st->open, OP_GROUP, 0, nl + ul + g->slurm_len);
    if (!op)
        return -ENOMEM;
    op->attempts = g->parallel;
    op->state = g->paused;
    st_op_put(&st->open, op, 0, g->name, nl);
    if (g->nusers)
        st_op_put(&st->open, op, 1, g->users, ul);
    if (g->slurm)
        st_op_put(&st->open, op, 2, g->slurm, g->slurm_len);
    return 0;
}

int st_edit(st_store *st, uint64_t id, const char *name, const char *group, const void *edits, size_t len)
{
    size_t nl = st_len(name), gl = st_len(group);
    if (len > UINT32_MAX / 2)
        return -E2BIG;
    st_op *op = st_op_new(&st->open, OP_EDIT, id, nl + gl + len);
    if (!op)
        return -ENOMEM;
    st_op_put(&st->open, op, 0, name, nl);
    st_op_put(&st->open, op, 1, group, gl);
    st_op_put(&st->open, op, 2, edits, len);
    return 0;
}

int st_drop_group(st_store *st, const char *name)
{
    size_t nl = strlen(name);
    st_op *op = st_op_new(&st->open, OP_UNGROUP, 0, nl);
    if (!op)
        return -ENOMEM;
    st_op_put(&st->open, op, 0, name, nl);
    return 0;
}

void st_set_next_id(st_store *st, uint64_t next)
{
    st->open.next_id = next;
}

/* ---- the writer thread -------------------------------------------------------------------- */

static double st_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool st_has_writes(const st_batch *b)
{
    return b->n || b->next_id;
}

static void st_writer(void *arg)
{
    st_store *st = arg;
    uv_mutex_lock(&st->mu);
    for (;;) {
        while (!st->go && !st->stop)
            uv_cond_wait(&st->cv, &st->mu);
        if (!st->go)
            break;
        bool fail = st->fail_next > 0;
        if (fail)
            st->fail_next--;
        uv_mutex_unlock(&st->mu);
        int rc = st_has_writes(&st->flight) ? st_db_apply(st, &st->flight, fail) : 0;
        st->flight.ndeleted = 0;
        double now = st_mono();
        if (rc == 0 && (st->retain_more || st->ended > st->cfg.keep || st->owner_over ||
                        now - st->retained_at >= ST_RETAIN_EVERY)) {
            st->retained_at = now;
            st_db_retain(st, &st->flight); /* a failure leaves it for the next pass */
        }
        if (rc == -ENOSPC && st->reserve_ok) {
            /* The disk is full: give back the reserve, so the writes the loop tries
             * again (all but the inserts) find room. */
            unlink(st->reserve_path);
            st->reserve_ok = false;
        } else if (rc == 0 && !st->reserve_ok) {
            st->reserve_ok = st_reserve_make(st) == 0;
        }
        /* After a full disk, new tasks come again once the reserve is back and as much
         * again is free: the reserve alone is what giving it back just freed. */
        bool room = rc == 0 && st->reserve_ok && (st->room || st_free_beyond_reserve(st));
        uv_mutex_lock(&st->mu);
        st->room = room;
        st->flight.rc = rc;
        st->stats.commits++;
        st->stats.ops += st->flight.n;
        if (rc < 0)
            st->stats.failures++;
        st->go = false;
        st->done = true;
        uv_cond_broadcast(&st->cv);
        uv_async_send(&st->wake);
    }
    uv_mutex_unlock(&st->mu);
}


uint64_t st_open_seq(const st_store *st) { return st->open.seq; }

bool st_backed_up(const st_store *st)
{
    return (st->busy || st->has_failed) && st->open.n >= ST_BATCH_OPS;
}

uint64_t st_unsaved(const st_store *st)
{
    if (st_has_writes(&st->open))
        return st->open.seq;
    if (st->busy)
        return st->flight.seq;
    return st->has_failed ? st->failed.seq : 0;
}

void st_kick(st_store *st)
{
    if (!st->started || st->busy || st->has_failed || (!st_has_writes(&st->open) && !st->probe))
        return;
    st->probe = false;
    st_batch t = st->flight;
    st->flight = st->open;
    st->open = t;
    st_batch_reset(&st->open, st->flight.seq + 1);
    st->busy = true;
    uv_ref((uv_handle_t *)&st->wake); /* a commit under way keeps the loop running */
    uv_mutex_lock(&st->mu);
    st->go = true;
    st->done = false;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
}

/* The writer is done with `flight`: tell the loop's side, then hand over what gathered
 * meanwhile. */
static void st_on_wake(uv_async_t *h)
{
    st_store *st = h->data;
    uv_mutex_lock(&st->mu);
    bool done = st->done;
    st->done = false;
    uv_mutex_unlock(&st->mu);
    if (!done || !st->busy)
        return;
    st->busy = false;
    uv_unref((uv_handle_t *)&st->wake);
    int rc = st->flight.rc;
    uint64_t seq = st->flight.seq;
    if (rc < 0) { /* kept for st_retry */
        st_batch t = st->failed;
        st->failed = st->flight;
        st->flight = t;
        st->has_failed = true;
    }
    if (st->on_commit)
        st->on_commit(st, seq, rc, st->on_commit_arg);
    if (rc >= 0)
        st->flight.ndeleted = 0;
    st_kick(st);
}

void st_retry(st_store *st)
{
    if (!st->has_failed)
        return;
    /* The failed batch's writes, inserts left out, then the open batch's: one batch, in
     * the order they were made, under the open batch's number. */
    st_batch merged;
    st_batch_init(&merged, st->open.seq);
    const st_batch *src[2] = { &st->failed, &st->open };
    bool ok = true;
    for (int k = 0; k < 2 && ok; k++) {
        const st_batch *b = src[k];
        for (size_t i = 0; i < b->n && ok; i++) {
            const st_op *op = &b->ops[i];
            if (k == 0 && op->type == OP_INSERT)
                continue;
            size_t bytes = 0;
            for (int j = 0; j < ST_NSTR; j++)
                bytes += op->len[j] == ST_NULL ? 0 : op->len[j];
            st_op *n = st_op_new(&merged, op->type, op->id, bytes);
            if (!(ok = n != NULL))
                break;
            *n = *op;
            for (int j = 0; j < ST_NSTR; j++) {
                n->len[j] = ST_NULL;
                st_op_put(&merged, n, j, st_op_str(b, op, j), op->len[j]);
            }
        }
    }
    if (!ok) { /* out of memory: try again on the next call */
        st_batch_free(&merged);
        return;
    }
    merged.next_id = st->open.next_id ? st->open.next_id : st->failed.next_id;
    st_batch_free(&st->open);
    st->open = merged;
    st_batch_reset(&st->failed, 0);
    st->has_failed = false;
}

int st_check(st_store *st)
{
    st_set_next_id(st, st->next_id);
    st_drain(st);
    if (!st->has_failed)
        return 0;
    int rc = st->failed.rc;
    st_retry(st); /* nothing of it is kept: the caller stops */
    return rc < 0 ? rc : -EIO;
}

void st_drain(st_store *st)
{
    while (st->started && (st->busy || st_has_writes(&st->open))) {
        if (st->has_failed)
            return; /* what failed stays failed: the caller knows */
        st_kick(st);
        uv_mutex_lock(&st->mu);
        while (!st->done)
            uv_cond_wait(&st->cv, &st->mu);
        uv_mutex_unlock(&st->mu);
        st_on_wake(&st->wake);
    }
}

/* ---- life ------------------------------------------------------------------------------- */

int st_open(const char *dir, const st_config *cfg, st_store **out, char *errbuf, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, ST_DB_NAME) >= (int)sizeof path) {
        snprintf(errbuf, errlen, "state directory path too long: %s", dir);
        return -ENAMETOOLONG;
    }
    st_store *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->cfg = *cfg;
    if (!st->cfg.keep)
        st->cfg.keep = ST_KEEP_DEFAULT;
    if (!(st->cfg.keep_for > 0))
        st->cfg.keep_for = ST_KEEP_FOR_DEFAULT;
    if (!st->cfg.max_owner_bytes)
        st->cfg.max_owner_bytes = ST_OWNER_BYTES_DEFAULT;
    st->retained_at = -ST_RETAIN_EVERY; /* a pass with the first commit */
    int rc = st_db_open(st, path, errbuf, errlen);
    if (rc == 0)
        rc = st_read_open(st, path, errbuf, errlen);
    if (rc < 0) {
        st_read_close(st);
        st_db_close(st);
        free(st);
        return rc;
    }
    st_batch_init(&st->open, 1);
    snprintf(st->reserve_path, sizeof st->reserve_path, "%s/%s", dir, ST_RESERVE_NAME);
    if ((rc = st_reserve_make(st)) < 0)
        sy_log(LOG_WARNING, "cannot set aside %u bytes in %s (%s): a full disk will stop the store until "
                "there is room", ST_RESERVE_BYTES, st->reserve_path, strerror(-rc));
    st->room = st->reserve_ok = rc == 0;
    *out = st;
    return 0;
}

int st_start(st_store *st, uv_loop_t *loop, st_commit_cb *on_commit, void *arg)
{
    int rc;
    st->loop = loop;
    st->on_commit = on_commit;
    st->on_commit_arg = arg;
    if ((rc = uv_mutex_init(&st->mu)) < 0)
        return rc;
    if ((rc = uv_cond_init(&st->cv)) < 0) {
        uv_mutex_destroy(&st->mu);
        return rc;
    }
    /* A stack of its own size: the default (RLIMIT_STACK, 8 MiB) is address space a daemon
     * under a tight RLIMIT_AS cannot spare, and SQLite needs far less. */
    uv_thread_options_t to = { .flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = ST_WRITER_STACK };
    if ((rc = uv_async_init(loop, &st->wake, st_on_wake)) < 0 ||
        (rc = uv_thread_create_ex(&st->thread, &to, st_writer, st)) < 0) {
        if (rc != 0 && st->wake.loop)
            uv_close((uv_handle_t *)&st->wake, NULL);
        uv_cond_destroy(&st->cv);
        uv_mutex_destroy(&st->mu);
        return rc;
    }
    st->wake.data = st;
    uv_unref((uv_handle_t *)&st->wake); /* only pending commits keep the loop alive */
    st->started = true;
    return 0;
}

static void st_freed(uv_handle_t *h)
{
    st_store *st = h->data;
    st_batch_free(&st->open);
    st_batch_free(&st->flight);
    st_batch_free(&st->failed);
    free(st);
}

void st_close(st_store *st)
{
    if (!st)
        return;
    st_read_close(st);
    if (!st->started) {
        st_db_close(st);
        st_batch_free(&st->open);
        free(st);
        return;
    }
    st_drain(st);
    uv_mutex_lock(&st->mu);
    st->stop = true;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
    uv_thread_join(&st->thread);
    uv_cond_destroy(&st->cv);
    uv_mutex_destroy(&st->mu);
    st_db_close(st);
    uv_close((uv_handle_t *)&st->wake, st_freed);
}

const uint64_t *st_deleted(const st_store *st, size_t *n)
{
    *n = st->flight.ndeleted;
    return st->flight.deleted;
}

bool st_has_room(const st_store *st)
{
    uv_mutex_lock((uv_mutex_t *)&st->mu);
    bool room = st->room;
    uv_mutex_unlock((uv_mutex_t *)&st->mu);
    return room;
}

void st_probe(st_store *st)
{
    st->probe = true;
}

void st_get_stats(const st_store *st, st_stats *out)
{
    uv_mutex_lock((uv_mutex_t *)&st->mu);
    *out = st->stats;
    uv_mutex_unlock((uv_mutex_t *)&st->mu);
}

void st_fail_next(st_store *st, unsigned n)
{
    uv_mutex_lock(&st->mu);
    st->fail_next = n;
    uv_mutex_unlock(&st->mu);
}
