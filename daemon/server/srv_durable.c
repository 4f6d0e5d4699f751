/* srv_durable.c: nothing leaves the daemon before what it reports is durable.
 *
 * Every change is written to the store's open batch as it is made (srv_table.c,
 * srv_rec.c), and the batch is handed to the writer thread at the end of the loop's
 * turn if the writer is idle, else as soon as it is (st_kick): group commit. Each record
 * remembers the batch of its last write. Answers and notifications are packed at once,
 * as without a store, noting the newest batch what they show was written in (the
 * connection's `need`); when the connection is flushed, what it packed since is tagged
 * with that batch and held until it commits, and everything after it on the connection
 * waits behind it, in order. So a client that sees a task id, a state or a task.done
 * can find it again after a crash, whoever made the change; and an answer that shows
 * only what is durable already (a hello, a get of an old record) goes at once, however
 * busy the writer is with others' submits.
 *
 * A submit's record starts only once its insert is durable (a job must not run for a
 * task nobody will know of after a crash). If a commit fails (a full disk, an I/O
 * error), its submits are refused after all — their answers, still held, are rewritten
 * as `unavailable` errors and their records dropped — and the rest of its writes (ends,
 * starts, settings: changes already made in memory) are tried again a second later;
 * meanwhile new submits are refused at once. Reads that saw nothing unsaved go on being
 * answered. */
#include "srv_internal.h"
#include "srv_rec.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_store.h"
#include "sy_log.h"

#define SRV_STORE_RETRY_MS 1000u

static void srv_on_commit(st_store *st, uint64_t seq, int rc, void *arg);

/* Retention runs with commits; an idle daemon's writer is handed a pass now and then. */
static void srv_store_tick(uv_timer_t *t)
{
    srv *v = t->data;
    st_probe(v->store);
    st_kick(v->store);
}

int srv_durable_init(srv *v, st_store *st)
{
    co_queue_init(&v->held);
    co_queue_init(&v->hist_wait);
    uv_timer_init(v->loop, &v->store_retry);
    v->store_retry.data = v;
    uv_timer_init(v->loop, &v->store_tick);
    v->store_tick.data = v;
    if (!st)
        return 0;
    int rc = st_start(st, v->loop, srv_on_commit, v);
    if (rc < 0)
        return rc;
    v->store = st;
    if ((rc = st_check(st)) < 0) {
        v->store = NULL;
        return rc;
    }
    uint64_t ms = (uint64_t)(ST_RETAIN_EVERY * 1000);
    uv_timer_start(&v->store_tick, srv_store_tick, 0, ms); /* a first pass at once */
    uv_unref((uv_handle_t *)&v->store_tick);
    return 0;
}

/* ---- holding output ------------------------------------------------------------------------ */

size_t srv_conn_sendable(const srv_conn *c)
{
    uint64_t ok = c->out_ok - c->out_base;
    size_t end = ok < c->out.size ? (size_t)ok : c->out.size;
    return end > c->out_sent ? end - c->out_sent : 0;
}

/* What batch `durable` releases of c's held output. */
static void srv_conn_release(srv_conn *c, uint64_t durable)
{
    if (c->mark_seq && c->mark_seq <= durable) {
        c->out_ok = c->mark_at;
        c->mark_seq = 0;
    }
    if (c->tail_seq && c->tail_seq <= durable) {
        c->out_ok = c->tail_at;
        c->tail_seq = 0;
    }
    if (!c->tail_seq && co_queue_linked(&c->held_node))
        co_queue_remove(&c->held_node);
}

void srv_durable_tag(srv_conn *c)
{
    srv *v = c->srv;
    uint64_t end = c->out_base + c->out.size;
    uint64_t seq = c->need > v->durable ? c->need : 0;
    c->need = 0;
    if (c->tail_seq > seq) /* behind what is held already, in order */
        seq = c->tail_seq;
    if (!seq) { /* everything it reports is durable */
        c->out_ok = end;
        c->mark_seq = c->tail_seq = 0;
        if (co_queue_linked(&c->held_node))
            co_queue_remove(&c->held_node);
        return;
    }
    if (end == (c->tail_seq ? c->tail_at : c->out_ok))
        return; /* nothing new */
    if (seq != c->tail_seq) {
        if (c->tail_seq) {
            /* Two batches at most are unsaved (one committing, one open); should a third
             * tag come (a failed one is retried under a later number), the older two are
             * held as one, until the later commits. */
            c->mark_at = c->tail_at;
            c->mark_seq = c->tail_seq;
        }
        c->tail_seq = seq;
    }
    c->tail_at = end;
    if (!co_queue_linked(&c->held_node))
        co_queue_insert_tail(&v->held, &c->held_node);
}

void srv_conn_saw_all(srv_conn *c)
{
    if (c->srv->store)
        srv_conn_saw(c, st_unsaved(c->srv->store));
}

bool srv_durable_wait(srv_conn *c)
{
    srv *v = c->srv;
    if (!v->store || !st_backed_up(v->store))
        return false;
    c->store_waiting = true;
    return true;
}

void srv_durable_kick(srv *v)
{
    if (v->store && !v->store_closing)
        st_kick(v->store);
}

void srv_durable_reads_done(srv *v)
{
    if (v->store && v->store_closing && !v->store_reads) {
        st_close(v->store);
        v->store = NULL;
    }
}

/* ---- submits waiting for their commit ------------------------------------------------------- */

static srv_pend *srv_pend_at(srv *v, size_t i)
{
    return &v->pend[(v->pend_head + i) % v->pend_cap];
}

static int srv_pend_push(srv *v, const srv_pend *p)
{
    if (v->pend_n == v->pend_cap) {
        size_t ncap = v->pend_cap ? v->pend_cap * 2 : 1024;
        srv_pend *n = malloc(ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        for (size_t i = 0; i < v->pend_n; i++)
            n[i] = *srv_pend_at(v, i);
        free(v->pend);
        v->pend = n;
        v->pend_cap = ncap;
        v->pend_head = 0;
    }
    *srv_pend_at(v, v->pend_n++) = *p;
    return 0;
}

bool srv_durable_refuse(srv_conn *c, const cp_request *rq)
{
    if (!c->srv->degraded)
        return false;
    cp_error err;
    cp_fail(&err, CP_UNAVAILABLE, "the store cannot save new tasks now (see corod's log); try again later");
    srv_reply_error(c, rq, &err);
    return true;
}

static void srv_pack_submitted(cp_out *o, uint32_t msgid, uint64_t id)
{
    cp_pack_response_ok(o, msgid);
    cp_out_map(o, 1);
    cp_out_lit(o, "id");
    cp_out_uint(o, id);
}

void srv_durable_created(srv_conn *c, srv_rec *r, uint64_t at, uint32_t msgid)
{
    srv *v = c->srv;
    if (!v->store) {
        srv_table_arm(v->table, r);
        return;
    }
    srv_conn_saw(c, srv_rec_seq(r));
    srv_pend p = { .rec = r, .seq = srv_rec_seq(r) };
    if (at != SRV_NO_ANSWER)
        p = (srv_pend){ .rec = r, .conn = c, .seq = srv_rec_seq(r), .at = at,
                        .len = (uint32_t)(c->out_base + c->out.size - at), .msgid = msgid };
    if (srv_pend_push(v, &p) < 0) {
        /* Cannot wait for it: armed now, answered as the others (it is in the batch). */
        srv_table_arm(v->table, r);
        return;
    }
    srv_rec_ref(r);
    if (p.conn)
        c->npend++;
}

void srv_durable_submit(srv_conn *c, uint32_t msgid, srv_rec *r)
{
    uint64_t at = c->out_base + c->out.size;
    srv_pack_submitted(&c->out, msgid, srv_rec_id(r));
    srv_durable_created(c, r, at, msgid);
}

void srv_durable_conn_closed(srv_conn *c)
{
    if (co_queue_linked(&c->held_node))
        co_queue_remove(&c->held_node);
    srv *v = c->srv;
    for (size_t i = 0; c->npend && i < v->pend_n; i++) {
        srv_pend *p = srv_pend_at(v, i);
        if (p->conn == c) {
            p->conn = NULL;
            c->npend--;
        }
    }
}

/* ---- a failed commit -------------------------------------------------------------------------- */

/* The submit answers of c in pend entries [from, to) of batch `seq`, rewritten in its
 * held output as `unavailable` errors (positions after each move by the difference). */
static void srv_conn_refuse_held(srv_conn *c, size_t from, size_t to, uint64_t seq, const char *why)
{
    srv *v = c->srv;
    cp_out n;
    cp_out_init(&n);
    uint64_t copied = c->out_base; /* absolute position copied up to */
    int64_t shift_mark = 0, shift_tail = 0, shift_ok = 0;
    uint64_t refused = 0; /* bytes of refusals in the held output */
    for (size_t i = from; i < to; i++) {
        srv_pend *p = srv_pend_at(v, i);
        if (p->conn != c || p->seq > seq)
            continue;
        size_t off = (size_t)(copied - c->out_base), len = (size_t)(p->at - copied);
        uint8_t *d = cp_out_reserve(&n, len);
        if (d) {
            memcpy(d, c->out.data + off, len);
            n.size += len;
        }
        size_t before = n.size;
        cp_pack_response_error(&n, true, p->msgid, CP_UNAVAILABLE, why);
        int64_t delta = (int64_t)(n.size - before) - (int64_t)p->len;
        if (p->at >= c->out_ok)
            refused += n.size - before;
        if (p->at < c->mark_at)
            shift_mark += delta;
        if (p->at < c->tail_at)
            shift_tail += delta;
        if (p->at < c->out_ok)
            shift_ok += delta;
        copied = p->at + p->len;
        p->conn = NULL;
        c->npend--;
    }
    size_t off = (size_t)(copied - c->out_base), rest = c->out.size - off;
    uint8_t *d = cp_out_reserve(&n, rest);
    if (d) {
        memcpy(d, c->out.data + off, rest);
        n.size += rest;
    }
    if (cp_out_failed(&n)) { /* no memory to say it: the client loses its connection */
        cp_out_free(&n);
        srv_conn_close(c);
        return;
    }
    cp_out_free(&c->out);
    c->out = n;
    c->mark_at += (uint64_t)shift_mark;
    c->tail_at += (uint64_t)shift_tail;
    c->out_ok += (uint64_t)shift_ok;
    /* Held output that is all refusals now shows nothing unsaved: it goes, rather than
     * wait for a commit that may not come soon (a full disk, memory short). */
    if (c->tail_seq && c->tail_at - c->out_ok == refused) {
        c->out_ok = c->tail_at;
        c->mark_seq = c->tail_seq = 0;
        if (co_queue_linked(&c->held_node))
            co_queue_remove(&c->held_node);
        srv_conn_mark(c);
    }
}

/* While degraded: what failed goes again (at once the first time: the writer gave back
 * the reserve for it), and the writer looks for room every second. */
static void srv_store_retry(uv_timer_t *t)
{
    srv *v = t->data;
    st_retry(v->store);
    st_probe(v->store);
    st_kick(v->store);
}

/* Batch `seq` was rolled back: its submits are refused, the rest is tried again. */
static void srv_commit_failed(srv *v, uint64_t seq, int rc)
{
    const char *why = rc == -ENOSPC   ? "the store's disk is full: the task was not saved"
                      : rc == -ENOMEM ? "the store is out of memory: the task was not saved"
                                      : "the store could not save the task (an I/O error)";
    bool first = !v->degraded;
    if (first)
        sy_log(LOG_ERR, "the store cannot commit: %s; refusing new tasks until it can, trying again "
                "every %u ms", rc == -ENOSPC ? "the disk is full" : rc == -ENOMEM ? "out of memory" : "an I/O error",
                SRV_STORE_RETRY_MS);
    v->degraded = true;
    size_t n = 0;
    while (n < v->pend_n && srv_pend_at(v, n)->seq <= seq)
        n++;
    for (size_t i = 0; i < n; i++) {
        srv_pend *p = srv_pend_at(v, i);
        if (p->conn)
            srv_conn_refuse_held(p->conn, i, n, seq, why);
    }
    for (size_t i = 0; i < n; i++) {
        srv_pend *p = srv_pend_at(v, 0);
        v->pend_head = (v->pend_head + 1) % v->pend_cap;
        v->pend_n--;
        srv_table_drop(v->table, p->rec, why);
        srv_rec_unref(p->rec);
    }
    uv_timer_start(&v->store_retry, srv_store_retry, first ? 0 : SRV_STORE_RETRY_MS, 0);
}

/* ---- commits ------------------------------------------------------------------------------------ */

static void srv_on_commit(st_store *st, uint64_t seq, int rc, void *arg)
{
    srv *v = arg;
    (void)st;
    if (rc < 0) {
        srv_commit_failed(v, seq, rc);
    } else {
        if (v->degraded && st_has_room(v->store)) {
            sy_log(LOG_NOTICE, "the store has room again; taking new tasks");
            v->degraded = false;
        } else if (v->degraded && !uv_is_active((uv_handle_t *)&v->store_retry)) {
            uv_timer_start(&v->store_retry, srv_store_retry, SRV_STORE_RETRY_MS, 0);
        }
        v->durable = seq;
        size_t ndel;
        const uint64_t *del = st_deleted(st, &ndel);
        srv_table_deleted(v->table, del, ndel);
        /* Durable now: the submits' records start. */
        while (v->pend_n && srv_pend_at(v, 0)->seq <= seq) {
            srv_pend *p = srv_pend_at(v, 0);
            v->pend_head = (v->pend_head + 1) % v->pend_cap;
            v->pend_n--;
            if (p->conn)
                p->conn->npend--;
            srv_table_arm(v->table, p->rec);
            srv_rec_unref(p->rec);
        }
        co_sched_run_ready(v->sched);
        srv_history_committed(v, false);
    }
    srv_store_resume(v);
    /* What the commit released goes out; what it made (starts, ends) joins the open
     * batch, handed over by the flush. */
    co_queue *q = co_queue_first(&v->held);
    while (q) {
        srv_conn *c = co_queue_data(q, srv_conn, held_node);
        q = co_queue_after(&v->held, q);
        srv_conn_release(c, v->durable);
        srv_conn_mark(c);
    }
}

void srv_durable_close(srv *v)
{
    if (!v->store || v->store_closing)
        return;
    st_drain(v->store);
    uv_timer_stop(&v->store_retry);
    uv_timer_stop(&v->store_tick);
    bool unsaved = st_unsaved(v->store) != 0;
    srv_history_committed(v, true);
    /* What is still undecided (a failed batch's retry) is not written: on the next start
     * those records are where the store last saw them. Tasks ended by the shutdown
     * itself are not written either: they come back as they were. */
    srv_table_set_store(v->table, NULL);
    while (v->pend_n) {
        srv_pend *p = srv_pend_at(v, 0);
        v->pend_head = (v->pend_head + 1) % v->pend_cap;
        v->pend_n--;
        srv_rec_unref(p->rec);
    }
    free(v->pend);
    v->pend = NULL;
    v->store_closing = true;
    srv_durable_reads_done(v);
    /* Held output goes now if what it reports was saved; else it never goes. */
    co_queue *q;
    while ((q = co_queue_first(&v->held))) {
        srv_conn *c = co_queue_data(q, srv_conn, held_node);
        co_queue_remove(q);
        if (unsaved)
            srv_conn_release(c, v->durable);
        if (unsaved && c->out_ok - c->out_base < c->out.size)
            c->out.size = (size_t)(c->out_ok - c->out_base);
        c->mark_seq = c->tail_seq = 0;
        srv_conn_mark(c);
    }
}
