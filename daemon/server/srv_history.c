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
#include "srv_history.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_decode.h"

#define SRV_FAULT_IDS 65536u /* ids one request may have read back */
/* Pending tasks of a `list` page that `waiting` explains: each is a lookup and some
 * packing on the loop, which a page of 100,000 must not hold for long. */
#define SRV_WAITING_PER_PAGE 1024u



void srv_hist_unlink(srv_hist *h)
{
    co_queue_remove(&h->node);
    h->c->nreads--;
    h->c = NULL;
}

void srv_hist_free(srv_hist *h)
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

srv_conn *srv_hist_answer(srv_hist *h, int status, bool *ok)
{
    srv_conn *c = h->c;
    *ok = false;
    if (!c)
        return NULL;
    srv_hist_unlink(h);
    if (status < 0 || h->rc < 0) {
        cp_error err;
        cp_fail(&err, h->rc == -ENOMEM ? CP_INTERNAL : CP_UNAVAILABLE, "cannot read the store: %s",
                status < 0 ? uv_strerror(status) : strerror(-h->rc));
        srv_reply_error(c, &(cp_request){ .has_msgid = true, .msgid = h->msgid }, &err);
    } else {
        *ok = true;
    }
    return c;
}

/* The store, and the server, go only once no read of the store is in flight. */
void srv_hist_end(srv_hist *h, srv_conn *c)
{
    srv *v = h->v;
    if (c)
        srv_maybe_resume(c);
    v->store_reads--;
    srv_hist_free(h);
    srv_durable_reads_done(v);
    srv_maybe_free(v);
}

int srv_hist_found(srv_hist *h, uint64_t id)
{
    uint64_t *found = ut_grow(h->found, &h->found_cap, h->nfound, sizeof *found, 256);
    if (!found)
        return -ENOMEM;
    h->found = found;
    h->found[h->nfound++] = id;
    return 0;
}

void srv_pack_cursor(cp_out *o, uint64_t next)
{
    cp_out_lit(o, "next");
    if (next)
        cp_out_uint(o, next);
    else
        cp_out_nil(o);
}

srv_hist *srv_hist_new(srv_conn *c, const cp_request *rq)
{
    srv_hist *h = calloc(1, sizeof *h);
    if (!h)
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
    else
        h->msgid = rq->msgid, h->uid = c->uid;
    return h;
}

void srv_hist_start(srv_conn *c, const cp_request *rq, srv_hist *h, uv_work_cb work, uv_after_work_cb done)
{
    int rc = srv_hist_queue(c, h, work, done);
    if (rc < 0) {
        cp_error err;
        cp_fail(&err, CP_INTERNAL, "cannot queue the read: %s", uv_strerror(rc));
        srv_reply_error(c, rq, &err);
        srv_hist_free(h);
    }
}

/* A read sees what is committed: it starts once every change made before it was asked
 * for is (a client that pipelines a submit and a list finds the task in the list). */
int srv_hist_queue(srv_conn *c, srv_hist *h, uv_work_cb work, uv_after_work_cb done)
{
    srv *v = c->srv;
    h->v = v;
    h->req.data = h;
    h->work = work;
    h->done = done;
    h->seq = st_unsaved(v->store);
    /* While the store cannot commit, what is committed is all there is to read: a read
     * does not wait for writes that may not go for a while. */
    if (h->seq <= v->durable || v->degraded) {
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

const char *const srv_state_names[] = { "pending", "running", "succeeded", "failed", "cancelled" };

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
    /* Why pending tasks wait is looked up on the loop: for so many of a page only. */
    if (t->state == ST_TASK_PENDING && h->nfound < SRV_WAITING_PER_PAGE && srv_hist_found(h, t->id) < 0)
        return -ENOMEM;
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
    bool ok;
    srv_conn *c = srv_hist_answer(h, status, &ok);
    if (ok) {
        /* Why the page's pending tasks wait is known only here, on the loop: an array
         * beside the records, packed from memory, a lookup per pending task. */
        cp_out w;
        uint32_t nw = 0;
        cp_out_init(&w);
        for (size_t i = 0; i < h->nfound; i++) {
            srv_rec *r = srv_table_get(c->srv->table, h->found[i], 0);
            if (r && !srv_rec_terminal(r) && srv_rec_pack_waiting(&w, r, true))
                nw++;
        }
        cp_pack_response_ok(&c->out, h->msgid);
        cp_out_map(&c->out, 3);
        cp_out_lit(&c->out, "waiting");
        cp_out_array(&c->out, cp_out_failed(&w) ? 0 : nw);
        if (!cp_out_failed(&w) && nw)
            cp_out_raw(&c->out, w.data, w.size);
        cp_out_free(&w);
        cp_out_lit(&c->out, "tasks");
        cp_out_array(&c->out, h->npage);
        uint8_t *d = h->page.size ? cp_out_reserve(&c->out, h->page.size) : NULL;
        if (d) {
            memcpy(d, h->page.data, h->page.size);
            c->out.size += h->page.size;
        }
        srv_pack_cursor(&c->out, h->next);
        srv_conn_mark(c);
    }
    srv_hist_end(h, c);
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

int srv_list_params(srv_conn *c, const cp_request *rq, srv_hist *h, cp_error *err)
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
    srv_hist *h = srv_hist_new(c, rq);
    if (!h)
        return;
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
    h->budget = c->srv->answer_bytes;
    srv_hist_start(c, rq, h, srv_list_work, srv_list_done);
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
        if (srv_table_restore(t, h->rows[i], true, &r, &err) == 0)
            srv_rec_resume(r, h->rows[i], srv_now());
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
    }
    srv_hist_end(h, c);
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

/* ---- a task's spec ------------------------------------------------------------------------ */

/* `spec`: what a task was submitted with (its edits merged), as the store keeps it — for
 * a detailed view (environment, directory, limits) and to submit it again changed. */
static int srv_spec_row(const st_task *t, void *arg)
{
    srv_hist *h = arg;
    if (h->uid != 0 && t->owner != h->uid)
        return 0; /* another's: not found */
    cp_out_raw(&h->page, t->spec, t->spec_len);
    h->npage = 1;
    return cp_out_failed(&h->page) ? -ENOMEM : 0;
}

static void srv_spec_work(uv_work_t *req)
{
    srv_hist *h = req->data;
    h->rc = st_read(h->v->store, h->ids, 1, srv_spec_row, h);
}

static void srv_spec_done(uv_work_t *req, int status)
{
    srv_hist *h = req->data;
    bool ok;
    srv_conn *c = srv_hist_answer(h, status, &ok);
    if (ok && !h->npage) {
        cp_error err;
        cp_fail(&err, CP_NOT_FOUND, "task %llu not found", (unsigned long long)h->ids[0]);
        srv_reply_error(c, &(cp_request){ .has_msgid = true, .msgid = h->msgid }, &err);
    } else if (ok) {
        cp_pack_response_ok(&c->out, h->msgid);
        cp_out_map(&c->out, 1);
        cp_out_lit(&c->out, "spec");
        cp_out_raw(&c->out, h->page.data, h->page.size);
        srv_conn_mark(c);
    }
    srv_hist_end(h, c);
}

void srv_spec(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    uint64_t id;
    if (cp_get_uint(rq->params, "id", true, 1, CP_MAX_ID, &id, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    if (!c->srv->store) {
        srv_reply_error(c, rq, &(cp_error){ CP_UNAVAILABLE, "this corod keeps no store (--no-store): no specs" });
        return;
    }
    srv_hist *h = srv_hist_new(c, rq);
    if (!h)
        return;
    if (!(h->ids = malloc(sizeof *h->ids))) {
        srv_hist_free(h);
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    h->ids[0] = id;
    h->nids = 1;
    srv_hist_start(c, rq, h, srv_spec_work, srv_spec_done);
}
