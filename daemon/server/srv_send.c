/* srv_send.c: the `send` method — bytes for a running job's stdin (a job submitted with
 * `stdin_pipe`), then its end if asked. The answer comes once the bytes are in the pipe,
 * so a job that does not read holds its sender back, not the daemon's memory: one send
 * in flight per job, at most SRV_SEND_MAX bytes, and each counts among its connection's
 * reads in flight (SRV_MAX_READS_PER_CONN). */
#include "srv_internal.h"

#include <stdlib.h>
#include <string.h>

struct srv_sendreq {
    srv_conn *c;   /* NULL once the connection has closed */
    co_queue node; /* in c->sends */
    uint32_t msgid;
    uint64_t id;
    size_t len;
};

static void srv_send_unlink(srv_sendreq *s)
{
    co_queue_remove(&s->node);
    s->c->nreads--;
    s->c = NULL;
}

static void srv_send_answer(srv_conn *c, uint32_t msgid, uint64_t id, size_t len, int status)
{
    cp_request rq = { .has_msgid = true, .msgid = msgid };
    cp_error err;
    if (status == UV_EPIPE || status == UV_ECANCELED || status == -EPIPE) {
        cp_fail(&err, CP_INVALID_STATE, "task %llu's program %s: its stdin takes nothing more",
                (unsigned long long)id, status == UV_ECANCELED ? "has ended" : "has closed its stdin");
        srv_reply_error(c, &rq, &err);
    } else if (status < 0) {
        cp_fail(&err, CP_INTERNAL, "cannot write to task %llu's stdin: %s", (unsigned long long)id,
                uv_strerror(status));
        srv_reply_error(c, &rq, &err);
    } else {
        cp_pack_response_ok(&c->out, msgid);
        cp_out_map(&c->out, 1);
        cp_out_lit(&c->out, "written");
        cp_out_uint(&c->out, len);
        srv_conn_mark(c);
    }
}

static void srv_send_done(void *arg, int status)
{
    srv_sendreq *s = arg;
    srv_conn *c = s->c;
    if (c) {
        srv_send_unlink(s);
        srv_send_answer(c, s->msgid, s->id, s->len, status);
        srv_maybe_resume(c);
    }
    free(s);
}

void srv_send(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    bool eof = false;
    const msgpack_object *d = rq->params ? cp_get(rq->params, "data") : NULL;
    if (cp_get_bool(rq->params, "eof", false, &eof, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    const char *data = NULL;
    size_t len = 0;
    if (d && d->type == MSGPACK_OBJECT_BIN)
        data = d->via.bin.ptr, len = d->via.bin.size;
    else if (d && d->type == MSGPACK_OBJECT_STR)
        data = d->via.str.ptr, len = d->via.str.size;
    else if (d || !eof) {
        srv_reply_error(c, rq, &(cp_error){ CP_BAD_REQUEST, "data must be bytes or a string (or absent with eof)" });
        return;
    }
    if (len > SRV_SEND_MAX) {
        cp_fail(&err, CP_TOO_LARGE, "data: %zu bytes; a send takes at most %u (send the rest after)", len,
                SRV_SEND_MAX);
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_rec *r = srv_lookup(c, rq);
    if (!r)
        return;
    srv_sendreq *s = calloc(1, sizeof *s);
    if (!s) {
        srv_reply_error(c, rq, &(cp_error){ CP_INTERNAL, "out of memory" });
        return;
    }
    s->msgid = rq->msgid;
    s->id = srv_rec_id(r);
    s->len = len;
    int rc = srv_rec_feed(r, data, len, eof, srv_send_done, s);
    if (rc != 0) {
        free(s);
        if (rc == 1) /* nothing to write: the end, at once */
            srv_send_answer(c, rq->msgid, srv_rec_id(r), 0, 0);
        else if (rc == -ENOTSUP)
            srv_reply_error(c, rq, &(cp_error){ CP_INVALID_STATE,
                                                "only an exec task submitted with args.stdin_pipe takes a send" });
        else if (rc == -ESRCH)
            srv_reply_error(c, rq, &(cp_error){ CP_INVALID_STATE, "the task is not running" });
        else if (rc == -EBUSY)
            srv_reply_error(c, rq, &(cp_error){ CP_INVALID_STATE,
                                                "a send to this task is in flight: send again once it is answered" });
        else
            srv_send_answer(c, rq->msgid, srv_rec_id(r), 0, rc);
        return;
    }
    s->c = c;
    co_queue_insert_tail(&c->sends, &s->node);
    c->nreads++;
}

void srv_send_conn_closed(srv_conn *c)
{
    /* A send in flight is freed when its write ends, unanswered. */
    co_queue *q;
    while ((q = co_queue_first(&c->sends)))
        srv_send_unlink(co_queue_data(q, srv_sendreq, node));
}
