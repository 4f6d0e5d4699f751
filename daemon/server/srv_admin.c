/* srv_admin.c: the history's upkeep by its owners — `clean` (ended tasks go from the
 * store and memory, with their output) and `restart` (ended tasks run again from their
 * stored specs). Both read the store on the thread pool first (srv_history.h). */
#include "srv_history.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- clean -------------------------------------------------------------------------------- */

static int srv_clean_row(const st_task *t, void *arg)
{
    srv_hist *h = arg;
    if (t->state < ST_TASK_SUCCEEDED)
        return 0; /* pending and running tasks are not history: cancel them first */
    return srv_hist_found(h, t->id);
}

static void srv_clean_work(uv_work_t *req)
{
    srv_hist *h = req->data;
    h->rc = st_list(h->v->store, &h->q, srv_clean_row, h, &h->next);
}

static void srv_clean_done(uv_work_t *req, int status)
{
    srv_hist *h = req->data;
    srv *v = h->v;
    size_t removed = 0;
    if (status == 0 && h->rc == 0 && !v->stopping && !v->store_closing)
        for (size_t i = 0; i < h->nfound; i++)
            removed += srv_table_forget(v->table, h->found[i]) == 0;
    bool ok;
    srv_conn *c = srv_hist_answer(h, status, &ok);
    if (ok) {
        if (removed)
            srv_conn_saw(c, st_open_seq(v->store)); /* answered once the deletes are durable */
        cp_pack_response_ok(&c->out, h->msgid);
        cp_out_map(&c->out, 2);
        cp_out_lit(&c->out, "removed");
        cp_out_uint(&c->out, removed);
        srv_pack_cursor(&c->out, h->next);
        srv_conn_mark(c);
    }
    srv_hist_end(h, c);
}

/* `clean`: the caller's ended tasks (root: anyone's) that match list's filters go from
 * the store and from memory, with their output files; a page's worth at a time (`next`,
 * as list's). Pending and running tasks are never cleaned. */
void srv_clean(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    srv_hist *h = srv_hist_new(c, rq);
    if (!h)
        return;
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
    srv_hist_start(c, rq, h, srv_clean_work, srv_clean_done);
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
    /* Specs may be large (a job's stdin): one restart reads an answer's worth of them, so
     * a user cannot make the daemon hold a thousand 16 MiB specs at once. */
    h->bytes += sizeof *t + t->spec_len;
    return h->bytes >= h->budget ? -ECANCELED : 0;
}

static void srv_restart_work(uv_work_t *req)
{
    srv_hist *h = req->data;
    h->rc = h->ids ? st_read(h->v->store, h->ids, h->nids, srv_restart_row, h)
                   : st_list(h->v->store, &h->q, srv_restart_row, h, &h->next);
    if (h->rc == -ECANCELED) /* a list's page ends there (next); the ids left are said */
        h->rc = 0, h->stopped = true;
}

/* Each row submitted again, as its owner: a new task from the same spec. */
static void srv_restart_submit(srv_conn *c, srv_hist *h)
{
    srv *v = c->srv;
    srv_rec **made = calloc(h->nrows ? h->nrows : 1, sizeof *made);
    cp_error *errs = calloc(h->nrows + h->nids + 1, sizeof *errs);
    size_t nmade = 0, nerr = 0;
    uint64_t *failed_ids = calloc(h->nrows + h->nids + 1, sizeof *failed_ids);
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
    /* ids past the last one read, when the read stopped at its budget: asked again. */
    for (size_t i = 0, past = !h->nrows; h->stopped && h->ids && i < h->nids; i++) {
        if (past) {
            failed_ids[nerr] = h->ids[i];
            cp_fail(&errs[nerr++], CP_TOO_LARGE, "not read: one restart reads %zu bytes of specs at most; "
                    "restart it again", h->budget);
        }
        past |= h->nrows && h->ids[i] == h->rows[h->nrows - 1]->id;
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
    if (!h->ids)
        srv_pack_cursor(&c->out, h->next);
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
    cp_request rq = { .has_msgid = true, .msgid = h->msgid };
    bool ok;
    srv_conn *c = srv_hist_answer(h, status, &ok);
    if (ok && h->v->stopping)
        srv_reply_error(c, &rq, &(cp_error){ CP_SHUTTING_DOWN, "corod is shutting down" });
    else if (ok && !srv_durable_refuse(c, &rq))
        srv_restart_submit(c, h);
    srv_hist_end(h, c);
}

/* `restart`: ended tasks — `ids`, or those matching list's filters (say, state failed in a
 * group) — submitted again from their stored specs, as their owners, each new task
 * recording `restarted_from`. The caller's own (root: anyone's); at most 1,000 a call. */
void srv_restart(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    srv_hist *h = srv_hist_new(c, rq);
    uint64_t *ids = NULL;
    size_t nids = 0;
    if (!h)
        return;
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
    h->budget = c->srv->answer_bytes;
    srv_hist_start(c, rq, h, srv_restart_work, srv_restart_done);
}

