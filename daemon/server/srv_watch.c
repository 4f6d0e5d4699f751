/* srv_watch.c: `wait` (answered later, without holding up the requests behind it) and
 * subscriptions (`task.done` exactly once per subscribed task). Both hang callbacks on
 * records' futures and hold a reference on each record they will read; both are torn down
 * with their connection. */
#include "srv_internal.h"
#include "srv_index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

enum { WAIT_ALL, WAIT_FIRST_COMPLETED, WAIT_FIRST_EXCEPTION };

/* One watched record of a wait or a subscription. */
typedef struct srv_item {
    co_cb cb;
    srv_rec *rec;
    void *owner; /* the srv_wait or srv_sub */
} srv_item;

struct srv_wait {
    srv_conn *c;
    uint32_t msgid;
    int mode;
    size_t n, done, failed;
    srv_item *items;
    uv_timer_t *timer;
    co_queue node; /* in c->waits */
};

/* Unhook and release a wait's or subscription's items. */
static void srv_items_release(srv_conn *c, srv_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        co_future_remove_cb(&items[i].cb);
        srv_rec_unref(items[i].rec);
    }
    c->watched -= n;
    free(items);
}

/* Keep the first of each id, in order: a task named twice is still notified exactly once
 * (and a wait's answer lists it once). Returns the count kept; -ENOMEM. */
static int srv_unique_ids(uint64_t *ids, size_t *n)
{
    if (*n < 2)
        return 0;
    srv_index seen;
    srv_index_init(&seen);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (srv_index_get(&seen, ids[i]))
            continue;
        if (srv_index_put(&seen, ids[i], &seen) < 0) {
            srv_index_free(&seen);
            return -ENOMEM;
        }
        ids[k++] = ids[i];
    }
    srv_index_free(&seen);
    *n = k;
    return 0;
}

/* Items for the records `ids` name, each once (each referenced, `owner` still unset), with
 * room reserved in the connection's watch budget; frees ids; *n becomes the count. NULL
 * after an error reply: quota_exceeded, not_found (an unknown or invisible id: nothing is
 * registered) or internal. */
static srv_item *srv_items_new(srv_conn *c, const cp_request *rq, uint64_t *ids, size_t *np)
{
    srv_item *items = NULL;
    if (srv_unique_ids(ids, np) < 0) {
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        goto out;
    }
    size_t n = *np;
    if (srv_fault(c, rq, ids, n)) /* some are in the store only: again once read back */
        goto out;
    if (!srv_conn_watch(c, rq, n))
        goto out;
    if (!(items = calloc(n ? n : 1, sizeof *items))) {
        c->watched -= n;
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        srv_rec *r = srv_table_get(c->srv->table, ids[i], c->uid);
        if (!r) {
            cp_error err;
            cp_fail(&err, CP_NOT_FOUND, "task %llu not found", (unsigned long long)ids[i]);
            srv_items_release(c, items, i); /* gives back i of the n reserved */
            c->watched -= n - i;
            items = NULL;
            srv_reply_error(c, rq, &err);
            goto out;
        }
        srv_rec_ref(r);
        items[i].rec = r;
    }
out:
    free(ids);
    return items;
}

static void srv_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void srv_wait_free(srv_wait *w)
{
    srv_conn *c = w->c;
    co_queue_remove(&w->node);
    c->nwaits--;
    srv_items_release(c, w->items, w->n);
    if (w->timer)
        uv_close((uv_handle_t *)w->timer, srv_timer_closed);
    free(w);
}

static void srv_wait_answer(srv_wait *w)
{
    srv_conn *c = w->c;
    size_t ndone = 0;
    for (size_t i = 0; i < w->n; i++)
        ndone += co_future_done(srv_rec_future(w->items[i].rec));
    cp_pack_response_ok(&c->out, w->msgid);
    cp_out_map(&c->out, 2);
    cp_out_lit(&c->out, "done");
    cp_out_array(&c->out, (uint32_t)ndone);
    size_t start = c->out.size;
    for (size_t i = 0; i < w->n; i++)
        if (co_future_done(srv_rec_future(w->items[i].rec)))
            srv_conn_pack_rec(c, w->items[i].rec, c->out.size - start >= c->srv->answer_bytes);
    cp_out_lit(&c->out, "pending");
    cp_out_array(&c->out, (uint32_t)(w->n - ndone));
    for (size_t i = 0; i < w->n; i++)
        if (!co_future_done(srv_rec_future(w->items[i].rec))) {
            srv_conn_saw(c, srv_rec_seq(w->items[i].rec)); /* it exists */
            cp_out_uint(&c->out, srv_rec_id(w->items[i].rec));
        }
    srv_conn_mark(c);
    srv_wait_free(w);
}

static bool srv_wait_satisfied(const srv_wait *w)
{
    switch (w->mode) {
    case WAIT_FIRST_COMPLETED: return w->done > 0;
    case WAIT_FIRST_EXCEPTION: return w->failed > 0 || w->done == w->n;
    default: return w->done == w->n;
    }
}

static void srv_wait_item_done(co_future *f, void *arg)
{
    srv_item *it = arg;
    srv_wait *w = it->owner;
    w->done++;
    if (co_future_state(f) == CO_FAILED)
        w->failed++;
    if (srv_wait_satisfied(w))
        srv_wait_answer(w);
}

static void srv_wait_timeout(uv_timer_t *h)
{
    srv_wait_answer(h->data);
}

void srv_wait_start(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    uint64_t *ids = NULL;
    size_t n = 0;
    cp_str mode = { NULL, 0 };
    double timeout = -1;
    int ht;
    if (cp_get_ids(rq->params, "ids", true, SRV_MAX_WAIT_IDS, &ids, &n, &err) < 0 ||
        cp_get_str(rq->params, "mode", false, 32, &mode, &err) < 0 ||
        (ht = cp_get_seconds(rq->params, "timeout", false, 0, CP_MAX_SECONDS, &timeout, &err)) < 0) {
        free(ids);
        srv_reply_error(c, rq, &err);
        return;
    }
    int m = WAIT_ALL;
    if (mode.ptr && cp_str_eq(mode, "first_completed"))
        m = WAIT_FIRST_COMPLETED;
    else if (mode.ptr && cp_str_eq(mode, "first_exception"))
        m = WAIT_FIRST_EXCEPTION;
    else if (mode.ptr && !cp_str_eq(mode, "all")) {
        free(ids);
        srv_reply_error(c, rq, &(cp_error){ CP_BAD_REQUEST, "mode must be all, first_completed or first_exception" });
        return;
    }
    if (n == 0) {
        free(ids);
        srv_reply_error(c, rq, &(cp_error){ CP_BAD_REQUEST, "ids must name at least one task" });
        return;
    }
    if (c->nwaits >= SRV_MAX_WAITS_PER_CONN) {
        free(ids);
        cp_fail(&err, CP_QUOTA_EXCEEDED, "%u waits already in flight on this connection", SRV_MAX_WAITS_PER_CONN);
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_item *items = srv_items_new(c, rq, ids, &n);
    if (!items)
        return;
    srv_wait *w = calloc(1, sizeof *w);
    if (!w) {
        srv_items_release(c, items, n);
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    for (size_t i = 0; i < n; i++)
        items[i].owner = w;
    w->c = c;
    w->msgid = rq->msgid;
    w->mode = m;
    w->n = n;
    w->items = items;
    co_queue_insert_tail(&c->waits, &w->node);
    c->nwaits++;
    /* Count what is already done, then listen to the rest. */
    for (size_t i = 0; i < n; i++) {
        co_future *f = srv_rec_future(items[i].rec);
        if (co_future_done(f)) {
            w->done++;
            w->failed += co_future_state(f) == CO_FAILED;
        }
    }
    if (srv_wait_satisfied(w) || (ht == 1 && timeout == 0)) {
        srv_wait_answer(w);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        co_future *f = srv_rec_future(items[i].rec);
        if (!co_future_done(f))
            co_future_add_cb(f, &items[i].cb, srv_wait_item_done, &items[i]);
    }
    if (ht == 1 && (w->timer = malloc(sizeof *w->timer))) {
        uv_timer_init(c->srv->loop, w->timer);
        w->timer->data = w;
        uv_timer_start(w->timer, srv_wait_timeout, (uint64_t)(timeout * 1000.0 + 0.999), 0);
    }
}

/* ---- subscriptions ------------------------------------------------------------------- */

struct srv_sub {
    uint32_t id;
    bool all;
    srv_conn *c;
    srv_item *items;
    size_t n;
    co_queue node;     /* in c->subs */
    co_queue all_node; /* in srv.all_subs when all: true */
};

static void srv_notify(srv_sub *s, srv_rec *r)
{
    srv_conn *c = s->c;
    cp_pack_notification(&c->out, "task.done");
    cp_out_map(&c->out, 2);
    cp_out_lit(&c->out, "sub");
    cp_out_uint(&c->out, s->id);
    cp_out_lit(&c->out, "task");
    srv_conn_pack_rec(c, r, false);
    srv_conn_mark(c);
}

static void srv_sub_item_done(co_future *f, void *arg)
{
    (void)f;
    srv_item *it = arg;
    srv_notify(it->owner, it->rec);
}

void srv_watch_on_finish(srv_rec *r, void *arg)
{
    srv *v = arg;
    co_queue *q;
    co_queue_foreach(q, &v->all_subs) {
        srv_sub *s = co_queue_data(q, srv_sub, all_node);
        if (s->c->uid == 0 || s->c->uid == srv_rec_owner(r))
            srv_notify(s, r);
    }
}

static void srv_sub_free(srv_sub *s)
{
    srv_conn *c = s->c;
    co_queue_remove(&s->node);
    c->nsubs--;
    if (s->all) {
        c->nall--;
        co_queue_remove(&s->all_node);
    }
    srv_items_release(c, s->items, s->n);
    free(s);
}

void srv_subscribe(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    uint64_t *ids = NULL;
    size_t n = 0;
    bool all = false;
    if (cp_get_ids(rq->params, "ids", false, SRV_MAX_WAIT_IDS, &ids, &n, &err) < 0 ||
        cp_get_bool(rq->params, "all", false, &all, &err) < 0) {
        free(ids);
        srv_reply_error(c, rq, &err);
        return;
    }
    if (!all && n == 0) {
        free(ids);
        srv_reply_error(c, rq, &(cp_error){ CP_BAD_REQUEST, "subscribe needs ids or all: true" });
        return;
    }
    if (c->nsubs >= SRV_MAX_SUBS_PER_CONN) {
        free(ids);
        cp_fail(&err, CP_QUOTA_EXCEEDED, "this connection already has %u subscriptions", SRV_MAX_SUBS_PER_CONN);
        srv_reply_error(c, rq, &err);
        return;
    }
    if (all && c->nall >= SRV_MAX_ALL_SUBS_PER_CONN) {
        /* Every task that ends walks every all: true subscription: keep that walk short. */
        free(ids);
        cp_fail(&err, CP_QUOTA_EXCEEDED, "this connection already has %u subscriptions with all: true",
                SRV_MAX_ALL_SUBS_PER_CONN);
        srv_reply_error(c, rq, &err);
        return;
    }
    if (all)
        n = 0; /* every task of the owner from now on; naming some as well adds nothing */
    srv_item *items = srv_items_new(c, rq, ids, &n);
    if (!items)
        return;
    srv_sub *s = calloc(1, sizeof *s);
    if (!s) {
        srv_items_release(c, items, n);
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    for (size_t i = 0; i < n; i++)
        items[i].owner = s;
    s->id = ++c->next_sub;
    s->all = all;
    s->c = c;
    s->items = items;
    s->n = n;
    co_queue_insert_tail(&c->subs, &s->node);
    c->nsubs++;
    if (all) {
        c->nall++;
        co_queue_insert_tail(&c->srv->all_subs, &s->all_node);
    }
    cp_pack_response_ok(&c->out, rq->msgid);
    cp_out_map(&c->out, 1);
    cp_out_lit(&c->out, "sub");
    cp_out_uint(&c->out, s->id);
    /* Registered after the response is packed: a task already done is notified by its
     * callback on the next turn of the loop, so after the response. */
    for (size_t i = 0; i < n; i++)
        co_future_add_cb(srv_rec_future(items[i].rec), &items[i].cb, srv_sub_item_done, &items[i]);
}

void srv_unsubscribe(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    uint64_t id;
    if (cp_get_uint(rq->params, "sub", true, 1, UINT32_MAX, &id, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    co_queue *q;
    co_queue_foreach(q, &c->subs) {
        srv_sub *s = co_queue_data(q, srv_sub, node);
        if (s->id == id) {
            srv_sub_free(s);
            cp_pack_response_ok(&c->out, rq->msgid);
            cp_out_map(&c->out, 0);
            return;
        }
    }
    cp_fail(&err, CP_NOT_FOUND, "subscription %llu not found on this connection", (unsigned long long)id);
    srv_reply_error(c, rq, &err);
}

void srv_watch_shutdown(srv_conn *c)
{
    /* Whoever waits learns why the answer will never come. */
    co_queue *q;
    while ((q = co_queue_first(&c->waits))) {
        srv_wait *w = co_queue_data(q, srv_wait, node);
        cp_request rq = { .has_msgid = true, .msgid = w->msgid };
        srv_reply_error(c, &rq, &(cp_error){ CP_SHUTTING_DOWN, "corod is shutting down" });
        srv_wait_free(w);
    }
}

void srv_watch_conn_closed(srv_conn *c)
{
    co_queue *q;
    while ((q = co_queue_first(&c->waits)))
        srv_wait_free(co_queue_data(q, srv_wait, node));
    while ((q = co_queue_first(&c->subs)))
        srv_sub_free(co_queue_data(q, srv_sub, node));
}
