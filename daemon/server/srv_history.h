/* srv_history.h: reads of the store on the thread pool (srv_history.c), shared with the
 * methods built on them (srv_admin.c: clean, restart). A read is set up on the loop
 * (srv_hist_new), starts once every change made before it was asked for is committed
 * (srv_hist_start), runs `work` on the pool, and `done` answers on the loop
 * (srv_hist_answer, then srv_hist_end). */
#ifndef SRV_HISTORY_H
#define SRV_HISTORY_H

#include "srv_internal.h"
#include "srv_rec.h"
#include "st_store.h"

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
    /* A list (or a clean's, a restart's page): the query, and the page packed on the
     * thread pool. */
    st_query q;
    char group[CP_MAX_GROUP + 1], kind[CP_MAX_KIND + 1], name[CP_MAX_NAME + 1];
    size_t budget; /* bytes of records a page packs, or a read-back reads (then it ends) */
    size_t bytes;
    bool stopped;  /* the read ended at the budget */
    cp_out page;
    cp_out argv; /* a row's argv, packed (reused) */
    uint32_t npage;
    uint64_t next;
    /* A clean: the ids of the ended records the page found; a list: its pending ones. */
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

extern const char *const srv_state_names[]; /* the store's states, by number */

/* NULL after an out-of-memory reply; else msgid and uid are set. */
srv_hist *srv_hist_new(srv_conn *c, const cp_request *rq);
/* Queue it (or reply that it cannot be, and free it). */
void srv_hist_start(srv_conn *c, const cp_request *rq, srv_hist *h, uv_work_cb work, uv_after_work_cb done);
int srv_hist_queue(srv_conn *c, srv_hist *h, uv_work_cb work, uv_after_work_cb done);
/* In `done`: the connection to answer (NULL: it closed); *ok false when the read failed
 * and that was said. */
srv_conn *srv_hist_answer(srv_hist *h, int status, bool *ok);
/* Last in `done`: frees it; the store, and the server after shutdown, may go. */
void srv_hist_end(srv_hist *h, srv_conn *c);
void srv_hist_unlink(srv_hist *h);
void srv_hist_free(srv_hist *h);
/* list's params (filters, order, cursor, limit) into h->q: 0, or -EINVAL with err. */
int srv_list_params(srv_conn *c, const cp_request *rq, srv_hist *h, cp_error *err);
/* Note an id the page found in h->found: 0, or -ENOMEM. */
int srv_hist_found(srv_hist *h, uint64_t id);
/* `next`: the cursor, or nil. */
void srv_pack_cursor(cp_out *o, uint64_t next);

#endif
