/* srv_history.c: records kept in the store only — ended ones that left memory (each uid
 * keeps its newest --retain there) — read on the thread pool, never on the loop.
 *
 * `list` is answered from the store: a page of what is committed, filtered and ordered
 * by its indexes, packed on the thread pool; the loop only copies the bytes. A request
 * that names a record no longer in memory (get, cancel, wait, subscribe, output, a
 * submit's `after` or a gather's ids) is set aside while the record is read back into
 * memory, then dispatched again: everything that works on a record works on any record
 * the store keeps. Only the requester's own records are read back (root's: anyone's), so
 * nobody can make another uid's memory fill with old records. */
#include "srv_internal.h"
#include "srv_rec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_decode.h"
#include "st_store.h"

#define SRV_FAULT_IDS 65536u /* ids one request may have read back */

typedef struct srv_hist {
    uv_work_t req;
    srv *v;
    srv_conn *c;   /* NULL once the connection has closed */
    co_queue node; /* in c->hist */
    uint64_t seq;  /* the batch it waits for, in v->hist_wait; 0: queued on the pool */
    co_queue wait_node;
    uv_work_cb work;
    uv_after_work_cb done;
    uint32_t uid, msgid;
    int rc;
    /* A list: the query and the page, packed on the thread pool. */
    bool is_list;
    st_query q;
    char group[CP_MAX_GROUP + 1], kind[CP_MAX_KIND + 1], name[CP_MAX_NAME + 1];
    size_t budget; /* bytes of records a page packs, or a read-back reads (then it ends) */
    size_t bytes;
    cp_out page;
    cp_out argv; /* a row's argv, packed (reused) */
    uint32_t npage;
    uint64_t next;
    /* A clean: the ids of the ended records the page found. */
    uint64_t *found;
    size_t nfound, found_cap;
    /* A read-back: the request to dispatch again, the ids, the rows read. */
    uint8_t *request;
    size_t request_len;
    uint64_t *ids;
    size_t nids;
    st_task **rows;
    size_t nrows;
} srv_hist;

static void srv_hist_unlink(srv_hist *h)
{
    co_queue_remove(&h->node);
    h->c->nreads--;
    h->c = NULL;
}

static void srv_hist_free(srv_hist *h)
{
    cp_out_free(&h->page);
    cp_out_free(&h->argv);
    free(h->found);
    free(h->request);
    free(h->ids);
    for (size_t i = 0; i < h->nrows; i++)
        free(h->rows[i]);
    free(h->rows);
    free(h);
}

void srv_history_conn_closed(srv_conn *c)
{
    co_queue *q;
    while ((q = co_queue_first(&c->hist)))
        srv_hist_unlink(co_queue_data(q, srv_hist, node));
}

/* The store, and the server, go only once no read of the store is in flight. */
static void srv_hist_done_common(srv_hist *h)
{
    srv *v = h->v;
    v->store_reads--;
    srv_durable_reads_done(v);
    srv_maybe_free(v);
}

/* A read sees what is committed: it starts once every change made before it was asked
 * for is (a client that pipelines a submit and a list finds the task in the list). */
static int srv_hist_queue(srv_conn *c, srv_hist *h, uv_work_cb work, uv_after_work_cb done)
{
    srv *v = c->srv;
    h->v = v;
    h->req.data = h;
    h->work = work;
    h->done = done;
    h->seq = st_unsaved(v->store);
    if (h->seq <= v->durable) {
        int rc = uv_queue_work(v->loop, &h->req, work, done);
        if (rc < 0)
            return rc;
        h->seq = 0;
    } else {
        co_queue_insert_tail(&v->hist_wait, &h->wait_node);
    }
    h->c = c;
    co_queue_insert_tail(&c->hist, &h->node);
    c->nreads++;
    v->store_reads++;
    return 0;
}

void srv_history_committed(srv *v, bool all)
{
    co_queue *q = co_queue_first(&v->hist_wait);
    while (q) {
        srv_hist *h = co_queue_data(q, srv_hist, wait_node);
        q = co_queue_after(&v->hist_wait, q);
        if (h->seq > v->durable && !all)
            continue;
        co_queue_remove(&h->wait_node);
        h->seq = 0;
        if (uv_queue_work(v->loop, &h->req, h->work, h->done) < 0) {
            h->rc = -ENOMEM;
            h->done(&h->req, UV_ENOMEM);
        }
    }
}

/* ---- list ----------------------------------------------------------------------------- */

static const char *const srv_state_names[] = { "pending", "running", "succeeded", "failed", "cancelled" };

/* An exec row's argv, from its spec, into h->argv (reused): NULL when it has none. */
static const uint8_t *srv_row_argv(srv_hist *h, const st_task *t, size_t *len)
{
    msgpack_zone z;
    msgpack_object params;
    size_t off = 0;
    const uint8_t *out = NULL;
    if (strcmp(t->kind, "exec"))
        return NULL;
    msgpack_zone_init(&z, 1024);
    cp_out_clear(&h->argv);
    if (msgpack_unpack(t->spec, t->spec_len, &off, &z, &params) == MSGPACK_UNPACK_SUCCESS &&
        cp_spec_argv(&params, &h->argv) == 0)
        out = h->argv.data, *len = h->argv.size;
    msgpack_zone_destroy(&z);
    return out;
}

static int srv_list_row(const st_task *t, void *arg)
{
    srv_hist *h = arg;
    bool ok = t->state == ST_TASK_SUCCEEDED;
    size_t argv_len = 0;
    const uint8_t *argv = srv_row_argv(h, t, &argv_len);
    cp_record c = {
        .id = t->id, .kind = t->kind, .name = t->name, .group = t->group, .state = srv_state_names[t->state],
        .owner_uid = t->owner, .created_at = t->created_at, .started_at = t->started_at,
        .finished_at = t->finished_at, .attempts = t->attempts, .command = t->command,
        .result = ok ? t->outcome : NULL, .result_len = ok ? t->outcome_len : 0,
        .error = !ok ? t->outcome : NULL, .error_len = !ok ? t->outcome_len : 0,
        .restarted_from = t->restarted_from, .argv = argv, .argv_len = argv_len,
    };
    cp_pack_record(&h->page, &c);
    h->npage++;
    if (cp_out_failed(&h->page))
        return -ENOMEM;
    return h->page.size >= h->budget ? -ECANCELED : 0; /* a full answer: the page ends here */
}

static void srv_list_work(uv_work_t *req)
{
    srv_hist *h = req->data;
    h->rc = st_list(h->v->store, &h->q, srv_list_row, h, &h->next);
    if (h->rc == -ECANCELED)
        h->rc = 0;
}

static void srv_list_done(uv_work_t *req, int status)
{
    srv_hist *h = req->data;
    srv_conn *c = h->c;
    if (c) {
        srv_hist_unlink(h);
        cp_request rq = { .has_msgid = true, .msgid = h->msgid };
        if (status < 0 || h->rc < 0) {
            cp_error err;
            cp_fail(&err, h->rc == -ENOMEM ? CP_INTERNAL : CP_UNAVAILABLE, "cannot read the store: %s",
                    status < 0 ? uv_strerror(status) : strerror(-h->rc));
            srv_reply_error(c, &rq, &err);
        } else {
            cp_pack_response_ok(&c->out, h->msgid);
            cp_out_map(&c->out, 2);
            cp_out_lit(&c->out, "tasks");
            cp_out_array(&c->out, h->npage);
            uint8_t *d = h->page.size ? cp_out_reserve(&c->out, h->page.size) : NULL;
            if (d) {
                memcpy(d, h->page.data, h->page.size);
                c->out.size += h->page.size;
            }
            cp_out_lit(&c->out, "next");
            if (h->next)
                cp_out_uint(&c->out, h->next);
            else
                cp_out_nil(&c->out);
            srv_conn_mark(c);
        }
        srv_maybe_resume(c);
    }
    srv_hist_done_common(h);
    srv_hist_free(h);
}

/* Copy an optional string param into buf: 1 when given, 0 when absent, -EINVAL. */
static int srv_str_param(const cp_request *rq, const char *key, size_t max, char *buf, cp_error *err)
{
    cp_str s = { NULL, 0 };
    int rc = cp_get_str(rq->params, key, false, max, &s, err);
    if (rc <= 0 || !s.ptr)
        return rc < 0 ? rc : 0;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    return 1;
}

static int srv_list_params(srv_conn *c, const cp_request *rq, srv_hist *h, cp_error *err)
{
    st_query *q = &h->q;
    char state[16] = "", order[8] = "";
    uint64_t limit = SRV_LIST_DEFAULT, after = 0, owner = 0;
    int rc, has_owner;
    double since = NAN, until = NAN;
    if ((rc = srv_str_param(rq, "state", 15, state, err)) < 0 ||
        (rc = srv_str_param(rq, "group", CP_MAX_GROUP, h->group, err)) < 0 ||
        (rc = srv_str_param(rq, "kind", CP_MAX_KIND, h->kind, err)) < 0 ||
        (rc = srv_str_param(rq, "name", CP_MAX_NAME, h->name, err)) < 0 ||
        (rc = srv_str_param(rq, "order", 7, order, err)) < 0 ||
        (rc = cp_get_uint(rq->params, "limit", false, 1, SRV_LIST_MAX, &limit, err)) < 0 ||
        (rc = cp_get_uint(rq->params, "after", false, 0, CP_MAX_ID, &after, err)) < 0 ||
        (has_owner = rc = cp_get_uint(rq->params, "owner", false, 0, UINT32_MAX, &owner, err)) < 0 ||
        (rc = cp_get_seconds(rq->params, "since", false, 0, 1e11, &since, err)) < 0 ||
        (rc = cp_get_seconds(rq->params, "until", false, 0, 1e11, &until, err)) < 0)
        return rc;
    q->state = -1;
    for (int i = 0; state[0] && i < 5; i++)
        if (!strcmp(state, srv_state_names[i]))
            q->state = i;
    if (state[0] && q->state < 0)
        return cp_fail(err, CP_BAD_REQUEST, "state must be one of pending, running, succeeded, failed, cancelled");
    if (order[0] && strcmp(order, "asc") && strcmp(order, "desc"))
        return cp_fail(err, CP_BAD_REQUEST, "order must be \"asc\" (oldest first, the default) or \"desc\"");
    if (has_owner && c->uid != 0 && owner != c->uid)
        return cp_fail(err, CP_PERMISSION_DENIED, "only root may list another uid's tasks");
    q->all_owners = c->uid == 0 && !has_owner;
    q->owner = has_owner ? (uint32_t)owner : c->uid;
    q->group = h->group[0] ? h->group : NULL;
    q->kind = h->kind[0] ? h->kind : NULL;
    q->name = h->name[0] ? h->name : NULL;
    q->since = since;
    q->until = until;
    q->desc = !strcmp(order, "desc");
    q->after = after;
    q->limit = limit;
    q->window = SRV_LIST_SCAN;
    return 0;
}

/* `list`: a page of the caller's tasks (root: anyone's) from the store, in id order or
 * newest first, filtered; `next` is the cursor for the next page, nil at the end. A page
 * looks at SRV_LIST_SCAN ids at most, so one that finds few matches ends early with a
 * cursor: its cost is bounded however rare the matches. */
void srv_list(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    srv_hist *h = calloc(1, sizeof *h);
    if (!h) {
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    if (srv_list_params(c, rq, h, &err) < 0) {
        srv_reply_error(c, rq, &err);
        free(h);
        return;
    }
    if (!c->srv->store) {
        srv_reply_error(c, rq, &(cp_error){ CP_UNAVAILABLE, "this corod keeps no store (--no-store): no list" });
        free(h);
        return;
    }
    h->is_list = true;
    h->msgid = rq->msgid;
    h->uid = c->uid;
    h->budget = c->srv->answer_bytes;
    cp_out_init(&h->page);
    int rc = srv_hist_queue(c, h, srv_list_work, srv_list_done);
    if (rc < 0) {
        cp_fail(&err, CP_INTERNAL, "cannot queue the read: %s", uv_strerror(rc));
        srv_reply_error(c, rq, &err);
        srv_hist_free(h);
    }
}

/* ---- clean -------------------------------------------------------------------------------- */

static int srv_clean_row(const st_task *t, void *arg)
{
    srv_hist *h = arg;
    if (t->state < ST_TASK_SUCCEEDED)
        return 0; /* pending and running tasks are not history: cancel them first */
    if (h->nfound == h->found_cap) {
        size_t ncap = h->found_cap ? h->found_cap * 2 : 256;
        uint64_t *n = realloc(h->found, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        h->found = n;
        h->found_cap = ncap;
    }
    h->found[h->nfound++] = t->id;
    return 0;
}

static void srv_clean_work(uv_work_t *req)
{
    srv_hist *h = req->data;
    h->rc = st_list(h->v->store, &h->q, srv_clean_row, h, &h->next);
}

static void srv_clean_done(uv_work_t *req, int status)
{
    srv_hist *h = req->data;
    srv_conn *c = h->c;
    srv *v = h->v;
    size_t removed = 0;
    if (status == 0 && h->rc == 0 && !v->stopping && !v->store_closing)
        for (size_t i = 0; i < h->nfound; i++)
            removed += srv_table_forget(v->table, h->found[i]) == 0;
    if (c) {
        srv_hist_unlink(h);
        cp_request rq = { .has_msgid = true, .msgid = h->msgid };
        if (status < 0 || h->rc < 0) {
            cp_error err;
            cp_fail(&err, h->rc == -ENOMEM ? CP_INTERNAL : CP_UNAVAILABLE, "cannot read the store: %s",
                    status < 0 ? uv_strerror(status) : strerror(-h->rc));
            srv_reply_error(c, &rq, &err);
        } else {
            if (removed)
                srv_conn_saw(c, st_open_seq(v->store)); /* answered once the deletes are durable */
            cp_pack_response_ok(&c->out, h->msgid);
            cp_out_map(&c->out, 2);
            cp_out_lit(&c->out, "removed");
            cp_out_uint(&c->out, removed);
            cp_out_lit(&c->out, "next");
            if (h->next)
                cp_out_uint(&c->out, h->next);
            else
                cp_out_nil(&c->out);
            srv_conn_mark(c);
        }
        srv_maybe_resume(c);
    }
    srv_hist_done_common(h);
    srv_hist_free(h);
}

/* `clean`: the caller's ended tasks (root: anyone's) that match list's filters go from
 * the store and from memory, with their output files; a page's worth at a time (`next`,
 * as list's). Pending and running tasks are never cleaned. */
void srv_clean(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    srv_hist *h = calloc(1, sizeof *h);
    if (!h) {
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    int rc = srv_list_params(c, rq, h, &err);
    if (rc == 0 && h->q.state >= 0 && h->q.state < ST_TASK_SUCCEEDED)
        rc = cp_fail(&err, CP_BAD_REQUEST, "state: only ended tasks (succeeded, failed, cancelled) are cleaned");
    if (rc == 0 && !c->srv->store)
        rc = cp_fail(&err, CP_UNAVAILABLE, "this corod keeps no store (--no-store): nothing to clean");
    if (rc < 0) {
        srv_reply_error(c, rq, &err);
        free(h);
        return;
    }
    h->msgid = rq->msgid;
    h->uid = c->uid;
    cp_out_init(&h->page);
    if ((rc = srv_hist_queue(c, h, srv_clean_work, srv_clean_done)) < 0) {
        cp_fail(&err, CP_INTERNAL, "cannot queue the read: %s", uv_strerror(rc));
        srv_reply_error(c, rq, &err);
        srv_hist_free(h);
    }
}

/* ---- restart ------------------------------------------------------------------------------ */

#define SRV_RESTART_MAX 1000u /* tasks one restart runs again */

static int srv_restart_row(const st_task *t, void *arg)
{
    srv_hist *h = arg;
    if (t->state < ST_TASK_SUCCEEDED || (h->uid != 0 && t->owner != h->uid) || h->nrows == SRV_RESTART_MAX)
        return 0; /* only ended ones, the caller's own (root: anyone's) */
    st_task *copy = st_task_copy(t);
    if (!copy)
        return -ENOMEM;
    h->rows[h->nrows++] = copy;
    return 0;
}

static void srv_restart_work(uv_work_t *req)
{
    srv_hist *h = req->data;
    h->rc = h->ids ? st_read(h->v->store, h->ids, h->nids, srv_restart_row, h)
                   : st_list(h->v->store, &h->q, srv_restart_row, h, &h->next);
}

/* Each row submitted again, as its owner: a new task from the same spec. */
static void srv_restart_submit(srv_conn *c, srv_hist *h)
{
    srv *v = c->srv;
    srv_rec **made = calloc(h->nrows ? h->nrows : 1, sizeof *made);
    cp_error *errs = calloc(h->nrows ? h->nrows : 1, sizeof *errs);
    size_t nmade = 0, nerr = 0;
    uint64_t *failed_ids = calloc(h->nrows ? h->nrows : 1, sizeof *failed_ids);
    if (!made || !errs || !failed_ids) {
        free(made), free(errs), free(failed_ids);
        srv_reply_error(c, &(cp_request){ .has_msgid = true, .msgid = h->msgid },
                        &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    for (size_t i = 0; i < h->nrows; i++) {
        msgpack_zone *z = &v->zone;
        msgpack_object params;
        size_t off = 0;
        srv_rec *r;
        int rc = msgpack_unpack(h->rows[i]->spec, h->rows[i]->spec_len, &off, z, &params) != MSGPACK_UNPACK_SUCCESS
                     ? cp_fail(&errs[nerr], CP_INTERNAL, "its stored spec cannot be decoded")
                     : srv_table_resubmit(v->table, h->rows[i]->owner, &params, h->rows[i]->id, &r, &errs[nerr]);
        if (rc == 0)
            made[nmade++] = r;
        else
            failed_ids[nerr++] = h->rows[i]->id; /* e.g. its `after` no longer kept, a quota */
        msgpack_zone_clear(z);
    }
    uint64_t at = c->out_base + c->out.size;
    cp_pack_response_ok(&c->out, h->msgid);
    cp_out_map(&c->out, h->ids ? 2 : 3);
    cp_out_lit(&c->out, "ids");
    cp_out_array(&c->out, (uint32_t)nmade);
    for (size_t i = 0; i < nmade; i++)
        cp_out_uint(&c->out, srv_rec_id(made[i]));
    cp_out_lit(&c->out, "errors");
    cp_out_array(&c->out, (uint32_t)nerr);
    for (size_t i = 0; i < nerr; i++) {
        cp_out_map(&c->out, 3);
        cp_out_lit(&c->out, "id");
        cp_out_uint(&c->out, failed_ids[i]);
        cp_out_lit(&c->out, "code");
        cp_out_str(&c->out, errs[i].code);
        cp_out_lit(&c->out, "message");
        cp_out_str(&c->out, errs[i].message);
    }
    if (!h->ids) {
        cp_out_lit(&c->out, "next");
        if (h->next)
            cp_out_uint(&c->out, h->next);
        else
            cp_out_nil(&c->out);
    }
    /* Held until the new tasks are durable; the first carries the answer, should their
     * insert fail. */
    for (size_t i = 0; i < nmade; i++)
        srv_durable_created(c, made[i], i == 0 ? at : SRV_NO_ANSWER, h->msgid);
    srv_conn_mark(c);
    free(made), free(errs), free(failed_ids);
}

static void srv_restart_done(uv_work_t *req, int status)
{
    srv_hist *h = req->data;
    srv_conn *c = h->c;
    srv *v = h->v;
    if (c) {
        srv_hist_unlink(h);
        cp_request rq = { .has_msgid = true, .msgid = h->msgid };
        if (status < 0 || h->rc < 0) {
            cp_error err;
            cp_fail(&err, h->rc == -ENOMEM ? CP_INTERNAL : CP_UNAVAILABLE, "cannot read the store: %s",
                    status < 0 ? uv_strerror(status) : strerror(-h->rc));
            srv_reply_error(c, &rq, &err);
        } else if (v->stopping) {
            srv_reply_error(c, &rq, &(cp_error){ CP_SHUTTING_DOWN, "corod is shutting down" });
        } else if (!srv_durable_refuse(c, &rq)) {
            srv_restart_submit(c, h);
        }
        srv_maybe_resume(c);
    }
    srv_hist_done_common(h);
    srv_hist_free(h);
}

/* `restart`: ended tasks — `ids`, or those matching list's filters (say, state failed in a
 * group) — submitted again from their stored specs, as their owners, each new task
 * recording `restarted_from`. The caller's own (root: anyone's); at most 1,000 a call. */
void srv_restart(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    srv_hist *h = calloc(1, sizeof *h);
    uint64_t *ids = NULL;
    size_t nids = 0;
    if (!h) {
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    int rc = cp_get_ids(rq->params, "ids", false, SRV_RESTART_MAX, &ids, &nids, &err);
    if (rc > 0)
        rc = 0; /* given */
    if (rc == 0 && !ids)
        rc = srv_list_params(c, rq, h, &err);
    if (rc == 0 && !ids && h->q.state >= 0 && h->q.state < ST_TASK_SUCCEEDED)
        rc = cp_fail(&err, CP_BAD_REQUEST, "state: only ended tasks (succeeded, failed, cancelled) are restarted");
    if (rc == 0 && !c->srv->store)
        rc = cp_fail(&err, CP_UNAVAILABLE, "this corod keeps no store (--no-store): nothing to restart");
    if (rc == 0 && !(h->rows = calloc(ids ? nids + 1 : SRV_RESTART_MAX, sizeof *h->rows)))
        rc = cp_fail(&err, CP_INTERNAL, "out of memory");
    if (rc < 0 || srv_durable_refuse(c, rq)) {
        if (rc < 0)
            srv_reply_error(c, rq, &err);
        free(ids);
        srv_hist_free(h);
        return;
    }
    if (!ids && h->q.limit > SRV_RESTART_MAX)
        h->q.limit = SRV_RESTART_MAX;
    h->ids = ids;
    h->nids = nids;
    h->msgid = rq->msgid;
    h->uid = c->uid;
    cp_out_init(&h->page);
    if ((rc = srv_hist_queue(c, h, srv_restart_work, srv_restart_done)) < 0) {
        cp_fail(&err, CP_INTERNAL, "cannot queue the read: %s", uv_strerror(rc));
        srv_reply_error(c, rq, &err);
        srv_hist_free(h);
    }
}

/* ---- reading records back ----------------------------------------------------------------- */

static int srv_fault_row(const st_task *t, void *arg)
{
    srv_hist *h = arg;
    if (t->state < ST_TASK_SUCCEEDED || (h->uid != 0 && t->owner != h->uid))
        return 0; /* an active one is in memory already; another's is not read back */
    /* A request reads back at most an answer's worth: the rest is not found. */
    h->bytes += t->spec_len + t->outcome_len + sizeof *t;
    if (h->nrows && h->bytes > h->budget)
        return -ECANCELED;
    st_task *copy = st_task_copy(t);
    if (!copy)
        return -ENOMEM;
    h->rows[h->nrows++] = copy;
    return 0;
}

static void srv_fault_work(uv_work_t *req)
{
    srv_hist *h = req->data;
    h->rc = st_read(h->v->store, h->ids, h->nids, srv_fault_row, h);
    if (h->rc == -ECANCELED)
        h->rc = 0;
}

static void srv_fault_done(uv_work_t *req, int status)
{
    srv_hist *h = req->data;
    srv_conn *c = h->c;
    srv_table *t = h->v->table;
    /* Back into memory (unless one came back meanwhile), as ended records. */
    for (size_t i = 0; status == 0 && !h->v->stopping && i < h->nrows; i++) {
        srv_rec *r;
        cp_error err;
        if (srv_table_has(t, h->rows[i]->id))
            continue;
        if (srv_table_restore(t, h->rows[i], true, &r, &err) == 0) {
            srv_rec_resume(r, h->rows[i], srv_now());
            r->output_gone = r->kind->has_output;
        }
    }
    if (c) {
        srv_hist_unlink(h);
        cp_request rq;
        cp_error err;
        msgpack_object obj;
        size_t off = 0;
        msgpack_zone *z = &c->srv->zone;
        if (msgpack_unpack((const char *)h->request, h->request_len, &off, z, &obj) == MSGPACK_UNPACK_SUCCESS &&
            cp_request_parse(&obj, &rq, &err) == 0) {
            c->no_fault = true; /* what is still missing now is not found */
            srv_dispatch(c, &rq);
            c->no_fault = false;
        }
        msgpack_zone_clear(z);
        srv_maybe_resume(c);
    }
    srv_hist_done_common(h);
    srv_hist_free(h);
}

bool srv_fault(srv_conn *c, const cp_request *rq, const uint64_t *ids, size_t n)
{
    srv *v = c->srv;
    if (!v->store || c->no_fault || !rq->has_msgid)
        return false;
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        missing += srv_table_kept_only(v->table, ids[i]);
    if (!missing)
        return false;
    srv_hist *h = calloc(1, sizeof *h);
    cp_out o;
    cp_out_init(&o);
    if (!h || missing > SRV_FAULT_IDS || !(h->ids = malloc(missing * sizeof *h->ids)) ||
        !(h->rows = calloc(missing, sizeof *h->rows)))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (srv_table_kept_only(v->table, ids[i]) && h->nids < missing)
            h->ids[h->nids++] = ids[i];
    /* The request as it came, to dispatch again. */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o, cp_out_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, rq->msgid);
    cp_pack_strn(&pk, rq->method.ptr, rq->method.len);
    msgpack_pack_array(&pk, rq->params ? 1 : 0);
    if ((rq->params && msgpack_pack_object(&pk, *rq->params) != 0) || cp_out_failed(&o))
        goto fail;
    h->request_len = o.size;
    h->request = cp_out_release(&o);
    h->uid = c->uid;
    h->msgid = rq->msgid;
    h->budget = v->answer_bytes;
    if (srv_hist_queue(c, h, srv_fault_work, srv_fault_done) < 0)
        goto fail;
    return true;
fail:
    cp_out_free(&o);
    if (h)
        srv_hist_free(h);
    return false; /* answered as if not kept: not found */
}
