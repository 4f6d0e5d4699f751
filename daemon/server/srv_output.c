/* srv_output.c: the `output` method — bytes of an exec task's stdout or stderr file by
 * offset. The file is read on the thread pool (it may be large, the disk slow), so the
 * answer comes later, like a deferred wait; a connection has at most
 * SRV_MAX_READS_PER_CONN reads in flight (its dispatch pauses at that many), each of at
 * most SRV_OUTPUT_MAX bytes.
 *
 * With `wait`, a read that finds nothing new is parked instead of answered empty: it is
 * read again when the job writes (the pump says so as each write lands), or when it ends,
 * and answered empty once `wait` has passed. So a follower costs nothing while the job is
 * quiet, and sees its bytes as soon as they are in the file. A parked read still counts
 * among its connection's reads; the server keeps every long-poll in one list, which each
 * write walks (bounded: SRV_MAX_READS_PER_CONN per connection). */
#include "srv_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kind.h"

struct srv_outread {
    uv_work_t req;
    srv *v;
    srv_conn *c;   /* NULL once the connection has closed */
    co_queue node; /* in c->reads */
    uint32_t msgid;
    uint64_t id;
    char path[4096];
    uint64_t offset, max;
    bool terminal; /* the task had ended when asked: the file is complete */

    uint64_t seq;  /* the record's last write then: the answer waits for it */
    /* A long-poll (`wait`): in v->out_polls until answered, its deadline in uv_now's ms. */
    co_queue poll_node;
    uint64_t until;
    bool polling;
    bool queued;    /* on the thread pool */
    bool dirty;     /* the job wrote (or ended) while it was: read again, do not park */
    bool has_timer; /* `timer` is initialised: closed before the read is freed */
    uv_timer_t timer;
    /* Set on the thread pool. */
    int err;
    uint64_t size;
    char *data;
    size_t len;
};

static void srv_read_work(uv_work_t *req)
{
    srv_outread *rd = req->data;
    int fd = open(rd->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT) /* not created yet: the job has not started */
            rd->err = -errno;
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rd->err = -errno;
        close(fd);
        return;
    }
    rd->size = (uint64_t)st.st_size;
    if (rd->offset < rd->size && rd->max) {
        uint64_t want = rd->size - rd->offset < rd->max ? rd->size - rd->offset : rd->max;
        if (!(rd->data = malloc((size_t)want))) {
            rd->err = -ENOMEM;
            close(fd);
            return;
        }
        while (rd->len < want) {
            ssize_t n = pread(fd, rd->data + rd->len, (size_t)(want - rd->len), (off_t)(rd->offset + rd->len));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rd->err = -errno;
                break;
            }
            if (n == 0)
                break;
            rd->len += (size_t)n;
        }
    }
    close(fd);
}

static void srv_read_unlink(srv_outread *rd)
{
    srv_conn *c = rd->c;
    co_queue_remove(&rd->node);
    c->nreads--;
    rd->c = NULL;
}

static void srv_read_done(uv_work_t *req, int status);

static void srv_read_freed(uv_handle_t *h)
{
    free(h->data);
}

/* The poll is over: out of the list, and its record told (while the server lives: an
 * answer, or its connection closing). */
static void srv_poll_end(srv_outread *rd)
{
    if (!rd->polling)
        return;
    co_queue_remove(&rd->poll_node);
    rd->polling = false;
    srv_rec *r = srv_table_get(rd->v->table, rd->id, 0);
    if (r)
        srv_rec_poll(r, -1);
}

static void srv_read_free(srv_outread *rd)
{
    assert(!rd->polling);
    free(rd->data);
    rd->data = NULL;
    if (rd->has_timer) {
        rd->timer.data = rd;
        uv_close((uv_handle_t *)&rd->timer, srv_read_freed);
    } else {
        free(rd);
    }
}

static void srv_read_answer(srv_outread *rd, int status)
{
    srv_conn *c = rd->c;
    srv_poll_end(rd);
    srv_read_unlink(rd);
    cp_request rq = { .has_msgid = true, .msgid = rd->msgid };
    if (status < 0 || rd->err < 0) {
        cp_error err;
        cp_fail(&err, CP_INTERNAL, "cannot read %s: %s", rd->path, strerror(status < 0 ? -status : -rd->err));
        srv_reply_error(c, &rq, &err);
    } else {
        srv_conn_saw(c, rd->seq);
        cp_pack_response_ok(&c->out, rd->msgid);
        cp_out_map(&c->out, 3);
        cp_out_lit(&c->out, "data");
        cp_out_bin(&c->out, rd->data, rd->len);
        cp_out_lit(&c->out, "next");
        cp_out_uint(&c->out, rd->offset + rd->len);
        cp_out_lit(&c->out, "eof");
        cp_out_bool(&c->out, rd->terminal && rd->offset + rd->len >= rd->size);
        srv_conn_mark(c);
    }
    srv_maybe_resume(c);
    srv_read_free(rd);
}

/* (Again) onto the thread pool, seeing whether the task has ended by now: 0, or a libuv
 * error. */
static int srv_read_queue(srv_outread *rd)
{
    srv_rec *r = srv_table_get(rd->v->table, rd->id, 0);
    rd->terminal = !r || srv_rec_terminal(r); /* gone from memory: it had ended */
    if (r)
        rd->seq = srv_rec_seq(r);
    free(rd->data);
    rd->data = NULL;
    rd->len = rd->size = 0;
    rd->err = 0;
    rd->dirty = false;
    rd->req.data = rd;
    int rc = uv_queue_work(rd->v->loop, &rd->req, srv_read_work, srv_read_done);
    rd->queued = rc == 0;
    return rc;
}

static void srv_read_timeout(uv_timer_t *t)
{
    srv_outread *rd = t->data;
    srv_read_answer(rd, 0); /* empty: nothing came within `wait` */
}

static void srv_read_done(uv_work_t *req, int status)
{
    srv_outread *rd = req->data;
    rd->queued = false;
    if (!rd->c) {
        srv_read_free(rd);
        return;
    }
    bool nothing = status == 0 && rd->err == 0 && rd->len == 0 && !rd->terminal;
    if (nothing && rd->polling && uv_now(rd->v->loop) < rd->until) {
        int rc = 0;
        if (rd->dirty) /* it wrote while this read ran: what it wrote may be missing */
            rc = srv_read_queue(rd);
        else if ((rd->has_timer || (rc = uv_timer_init(rd->v->loop, &rd->timer)) == 0) &&
                 (rd->has_timer = true, rd->timer.data = rd,
                  rc = uv_timer_start(&rd->timer, srv_read_timeout, rd->until - uv_now(rd->v->loop), 0)) == 0)
            return; /* parked until it writes, ends, or the wait is over */
        if (rc == 0)
            return;
        status = rc;
    }
    srv_read_answer(rd, status);
}

void srv_output_wake(srv *v, uint64_t id)
{
    srv_rec *r = srv_table_get(v->table, id, 0);
    if (!r || !srv_rec_polled(r))
        return; /* nobody waits on it: no walk for every write of every job */
    co_queue *q = co_queue_first(&v->out_polls);
    while (q) {
        srv_outread *rd = co_queue_data(q, srv_outread, poll_node);
        q = co_queue_after(&v->out_polls, q);
        if (rd->id != id || !rd->c)
            continue;
        if (rd->queued) {
            rd->dirty = true;
            continue;
        }
        if (rd->has_timer)
            uv_timer_stop(&rd->timer);
        int rc = srv_read_queue(rd);
        if (rc < 0) {
            /* Answered now, the connection may go on to its next requests — and close,
             * freeing other polls of this list: start again from its head (those queued
             * meanwhile are only marked dirty again). */
            srv_read_answer(rd, rc);
            q = co_queue_first(&v->out_polls);
        }
    }
}

void srv_output(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    cp_str stream = { 0 };
    uint64_t off = 0, max = SRV_OUTPUT_DEFAULT;
    double wait = 0;
    if (cp_get_str(rq->params, "stream", false, 16, &stream, &err) < 0 ||
        cp_get_uint(rq->params, "offset", false, 0, (uint64_t)INT64_MAX, &off, &err) < 0 ||
        cp_get_uint(rq->params, "max", false, 0, SRV_OUTPUT_MAX, &max, &err) < 0 ||
        cp_get_seconds(rq->params, "wait", false, 0, SRV_OUTPUT_WAIT_MAX, &wait, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    int s = 1;
    if (stream.ptr && !cp_str_eq(stream, "stdout")) {
        if (!cp_str_eq(stream, "stderr")) {
            cp_fail(&err, CP_BAD_REQUEST, "stream must be \"stdout\" or \"stderr\"");
            srv_reply_error(c, rq, &err);
            return;
        }
        s = 2;
    }
    srv_rec *r = srv_lookup(c, rq);
    if (!r)
        return;
    if (!srv_rec_has_output(r)) {
        cp_fail(&err, CP_INVALID_STATE, "task %llu is a %s task: only exec tasks have output",
                (unsigned long long)srv_rec_id(r), srv_rec_kind_name(r));
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_outread *rd = calloc(1, sizeof *rd);
    if (!rd || kind_output_path(srv_table_output_dir(c->srv->table), srv_rec_id(r), s, rd->path,
                                sizeof rd->path) < 0) {
        free(rd);
        cp_fail(&err, CP_INTERNAL, "out of memory");
        srv_reply_error(c, rq, &err);
        return;
    }
    rd->v = c->srv;
    rd->msgid = rq->msgid;
    rd->id = srv_rec_id(r);
    rd->offset = off;
    rd->max = max;
    int rc = srv_read_queue(rd);
    if (rc < 0) {
        free(rd);
        cp_fail(&err, CP_INTERNAL, "cannot queue the read: %s", uv_strerror(rc));
        srv_reply_error(c, rq, &err);
        return;
    }
    if (wait > 0 && srv_rec_poll(r, 1)) { /* (past 65,535 on one task: an ordinary read) */
        rd->until = uv_now(c->srv->loop) + (uint64_t)(wait * 1000);
        rd->polling = true;
        co_queue_insert_tail(&c->srv->out_polls, &rd->poll_node);
    }
    rd->c = c;
    co_queue_insert_tail(&c->reads, &rd->node);
    c->nreads++;
}

void srv_output_conn_closed(srv_conn *c)
{
    /* Reads on the thread pool are freed when they come back, unanswered; parked ones
     * now. */
    co_queue *q;
    while ((q = co_queue_first(&c->reads))) {
        srv_outread *rd = co_queue_data(q, srv_outread, node);
        srv_poll_end(rd);
        srv_read_unlink(rd);
        if (!rd->queued)
            srv_read_free(rd);
    }
}
