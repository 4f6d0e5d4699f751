/* srv.c: the listening socket and the connections, each a uv_poll_t on a non-blocking
 * socket whose system calls are srv_sock's. Input is peeked (srv_sock.h says why),
 * read by cp_next (framed and decoded in one walk when a message arrived whole, else
 * framed by cp_frame across reads; bounded by the message limit either way) and
 * dispatched in order, so requests pipeline freely; output is packed into a
 * per-connection buffer and written once per read: the read callback dispatches what it
 * read, runs what that made runnable (co_sched_run_ready), writes, and only then takes
 * the request bytes off the socket, so a burst of pipelined requests costs one write and
 * a reply leaves with the notifications its task produced at once. Output produced
 * elsewhere (timers, child processes, the thread pool) is written from a uv_prepare just
 * before poll blocks; what the socket does not take waits for it to become writable.
 * A connection whose unsent output passes its bound is dropped: nobody else waits on a
 * slow reader. */
#include "srv_internal.h"

#include "cp_decode.h"
#include "srv_group.h"
#include "srv_sock.h"
#include "sy_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SRV_READ_CHUNK (64u * 1024u)
#define SRV_OUT_KEEP (1024u * 1024u) /* an output buffer above this is freed once drained */

static bool srv_process(srv_conn *c);
static void srv_conn_io(uv_poll_t *h, int status, int events);
static void srv_conn_set_backlog(srv_conn *c, bool on);
static void srv_sweep(uv_timer_t *t);

/* ---- messages that never arrive whole ----------------------------------------------
 * A connection holding part of a message costs a buffer until the rest comes; one that
 * never sends the rest would hold it for good (40 of them held 654 MB). The part must be
 * whole within --message-timeout of the last message completed on the connection (or of
 * its first byte): a sweep, armed only while some connection holds a part, drops those
 * past that. Connections between messages may stay idle as long as they like. */

static uint64_t srv_sweep_every(const srv *v)
{
    uint64_t ms = (uint64_t)(v->cfg.message_timeout * 1000.0 / 4);
    return ms < 100 ? 100 : ms > 1000 ? 1000 : ms;
}

static void srv_conn_set_partial(srv_conn *c, bool partial, bool progress)
{
    srv *v = c->srv;
    if (partial && (!c->partial_since || progress)) {
        if (!c->partial_since && v->npartial++ == 0)
            uv_timer_start(&v->sweep, srv_sweep, srv_sweep_every(v), srv_sweep_every(v));
        c->partial_since = uv_now(v->loop) + 1; /* 0 means none */
    } else if (!partial && c->partial_since) {
        c->partial_since = 0;
        if (--v->npartial == 0)
            uv_timer_stop(&v->sweep);
    }
}

static void srv_sweep(uv_timer_t *t)
{
    srv *v = t->data;
    uint64_t now = uv_now(v->loop), limit = (uint64_t)(v->cfg.message_timeout * 1000.0);
    co_queue *q = co_queue_first(&v->conns);
    while (q) {
        srv_conn *c = co_queue_data(q, srv_conn, node);
        q = co_queue_after(&v->conns, q); /* before c may go */
        if (!c->partial_since || now - (c->partial_since - 1) <= limit)
            continue;
        cp_error err;
        cp_fail(&err, CP_BAD_REQUEST, "a message did not arrive whole within %g s", v->cfg.message_timeout);
        sy_log(LOG_WARNING, "dropping a client (uid %u, pid %d): %s", (unsigned)c->uid, (int)c->pid,
                err.message);
        srv_reply_error(c, NULL, &err);
        srv_conn_flush(c);
        srv_conn_close(c);
    }
}

static size_t srv_unsent(const srv_conn *c)
{
    return c->out.size - c->out_sent;
}

/* Watch the socket for what the connection needs now: input unless its buffer filled up
 * while dispatch is paused, and writability while answers wait for room. */
static void srv_conn_poll(srv_conn *c)
{
    bool reading = !c->read_stopped && !co_queue_linked(&c->backlog_node);
    int ev = (reading ? UV_READABLE : 0) | (srv_conn_sendable(c) ? UV_WRITABLE : 0);
    if (ev == c->events || c->closing)
        return;
    c->events = ev;
    if (ev)
        uv_poll_start(&c->poll, ev, srv_conn_io);
    else
        uv_poll_stop(&c->poll);
}

/* Backpressure: requests are dispatched only while the connection's unsent output is
 * under half its bound; dispatch resumes once it has drained to a quarter. Meanwhile
 * input is still read into the connection's buffer until that is full (the message limit
 * plus one read), and only then is reading stopped. A client that pipelines without
 * reading its answers thus costs at most its input buffer and its output bound; one that
 * stops reading while notifications keep coming is dropped. */
static bool srv_backed_up(const srv_conn *c)
{
    return srv_unsent(c) >= c->srv->cfg.max_output / 2 || c->nreads >= SRV_MAX_READS_PER_CONN;
}

/* What it buffered meanwhile is served on its next turn (srv_conn_turn). */
void srv_maybe_resume(srv_conn *c)
{
    if (!c->paused || c->closing || srv_unsent(c) > c->srv->cfg.max_output / 4 ||
        c->nreads >= SRV_MAX_READS_PER_CONN)
        return;
    c->paused = false;
    c->read_stopped = false;
    if (c->in_len)
        srv_conn_set_backlog(c, true);
    srv_conn_poll(c);
}

/* ---- output ------------------------------------------------------------------------- */

void srv_conn_mark(srv_conn *c)
{
    if (co_queue_linked(&c->dirty_node) || c->closing)
        return;
    co_queue_insert_tail(&c->srv->dirty, &c->dirty_node);
}

/* What the connection's buffers hold, counted in its uid's account. */
static void srv_conn_charge(srv_conn *c)
{
    size_t now = c->in_cap + c->out.cap;
    c->acct->client_bytes = c->acct->client_bytes - c->charged + now;
    c->charged = now;
}

/* A uid (not root's) whose connections' buffers pass its share. */
static bool srv_uid_over_buffers(const srv_conn *c)
{
    return !c->acct->privileged && c->acct->client_bytes > c->srv->cfg.max_uid_buffers;
}

/* A client whose unread answers pass the bound, or whose uid's buffers pass its share,
 * is dropped: true if it was. Output still held for a commit (srv_durable.c) is not the
 * client's to read yet, and does not count: it goes within a commit's time. */
static bool srv_conn_over_bound(srv_conn *c)
{
    srv_conn_charge(c);
    if (srv_conn_sendable(c) > c->srv->cfg.max_output) {
        sy_log(LOG_WARNING, "dropping a client (uid %u, pid %d): %zu bytes unread, limit %zu",
                (unsigned)c->uid, (int)c->pid, srv_conn_sendable(c), c->srv->cfg.max_output);
    } else if (srv_uid_over_buffers(c)) {
        sy_log(LOG_WARNING, "dropping a client (uid %u, pid %d): the uid's connections buffer %zu bytes, "
                "limit %zu", (unsigned)c->uid, (int)c->pid, c->acct->client_bytes, c->srv->cfg.max_uid_buffers);
    } else {
        return false;
    }
    srv_conn_close(c);
    return true;
}

/* Write what the socket takes of the output that may go (srv_durable.c); the rest waits
 * for writability. */
static void srv_conn_send(srv_conn *c)
{
    /* An answer was cut short (even the first: the buffer may be empty): the stream cannot
     * go on, and the buffer takes nothing more. */
    if (cp_out_failed(&c->out)) {
        sy_log(LOG_WARNING, "dropping a client (uid %u, pid %d): out of memory for its answers",
                (unsigned)c->uid, (int)c->pid);
        srv_conn_close(c);
        return;
    }
    size_t sendable = srv_conn_sendable(c);
    if (sendable) {
        ssize_t n = srv_sock_send(c->fd, c->out.data + c->out_sent, sendable);
        if (n < 0 && n != -EAGAIN) {
            srv_conn_close(c); /* the client is gone: nothing it was owed matters */
            return;
        }
        if (n > 0)
            c->out_sent += (size_t)n;
    }
    if (c->out_sent == c->out.size) {
        c->out_base += c->out.size;
        c->out_sent = 0;
        if (c->out.cap > SRV_OUT_KEEP) /* a burst's buffer is not kept for good */
            cp_out_free(&c->out);
        else
            cp_out_clear(&c->out);
    } else if (c->out_sent >= SRV_READ_CHUNK && c->out_sent >= c->out.size / 2) {
        /* Behind a slow reader: drop what went, so the buffer holds only what did not. */
        cp_out_consume(&c->out, c->out_sent);
        c->out_base += c->out_sent;
        c->out_sent = 0;
    }
    if (!srv_conn_over_bound(c))
        srv_conn_poll(c);
}

void srv_conn_flush(srv_conn *c)
{
    if (c->closing)
        return;
    srv_durable_tag(c);
    /* Straight into the socket, unless it is full and earlier output waits for room. */
    if ((c->events & UV_WRITABLE) && !cp_out_failed(&c->out))
        srv_conn_over_bound(c);
    else
        srv_conn_send(c);
}

static void srv_flush_dirty(srv *v)
{
    srv_durable_kick(v); /* first: what is flushed now waits for this batch at most */
    co_queue *q;
    while ((q = co_queue_first(&v->dirty))) {
        srv_conn *c = co_queue_data(q, srv_conn, dirty_node);
        co_queue_remove(q);
        srv_conn_flush(c);
        srv_maybe_resume(c); /* may dispatch more and mark it dirty again: flushed next */
    }
    srv_table_trim(v->table);
}

static void srv_flush_all(uv_prepare_t *h)
{
    srv_flush_dirty(h->data);
}

void srv_reply_error(srv_conn *c, const cp_request *rq, const cp_error *err)
{
    cp_pack_response_error(&c->out, rq && rq->has_msgid, rq ? rq->msgid : 0, err->code, err->message);
    srv_conn_mark(c);
}

/* ---- connections ---------------------------------------------------------------------- */

static void srv_conn_freed(uv_handle_t *h)
{
    srv_conn *c = h->data;
    free(c->in);
    cp_out_free(&c->out);
    free(c);
}

void srv_conn_close(srv_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    srv *v = c->srv;
    srv_watch_conn_closed(c);
    srv_output_conn_closed(c);
    srv_send_conn_closed(c);
    srv_history_conn_closed(c);
    srv_durable_conn_closed(c);
    co_queue_remove(&c->node);
    v->nconns--;
    co_queue_remove(&c->dirty_node); /* the flush must never meet a freed connection */
    srv_conn_set_backlog(c, false);
    srv_conn_set_partial(c, false, false);
    c->acct->client_bytes -= c->charged;
    c->acct->conns--;
    srv_acct_unref(c->acct);
    uv_close((uv_handle_t *)&c->poll, srv_conn_freed);
    close(c->fd); /* libuv lets go of a descriptor as soon as its poll handle is closing */
}

/* Room at the end of the input buffer, which grows in steps up to the message limit plus
 * one read: 0 when it is full (dispatch is paused) or cannot grow (memory, or its uid's
 * share of buffers, said in *over_share: srv_conn_read then drops it). */
static size_t srv_in_room(srv_conn *c, bool *over_share)
{
    *over_share = false;
    size_t limit = c->srv->cfg.max_message + SRV_READ_CHUNK;
    if (c->in_cap - c->in_len < SRV_READ_CHUNK && c->in_cap < limit) {
        size_t ncap = c->in_cap ? c->in_cap * 2 : SRV_READ_CHUNK;
        if (ncap > limit)
            ncap = limit;
        uint8_t *n = NULL;
        bool share = c->acct->privileged ||
                     c->acct->client_bytes + (ncap - c->in_cap) <= c->srv->cfg.max_uid_buffers;
        *over_share = !share;
        if (share && (n = realloc(c->in, ncap))) {
            c->in = n;
            c->in_cap = ncap;
            srv_conn_charge(c);
        }
    }
    return c->in_cap - c->in_len;
}

/* One decoded request, then the zone is cleared: handlers copy what they keep. */
static void srv_handle_object(srv_conn *c, const msgpack_object *obj)
{
    cp_request rq;
    cp_error err;
    if (cp_request_parse(obj, &rq, &err) < 0)
        srv_reply_error(c, &rq, &err); /* well-formed MessagePack: the stream goes on */
    else if (c->srv->stopping)
        srv_reply_error(c, &rq, &(cp_error){ CP_SHUTTING_DOWN, "corod is shutting down" });
    else
        srv_dispatch(c, &rq);
    msgpack_zone_clear(&c->srv->zone);
}

/* Dispatch the complete messages buffered, in order, until input runs out, the
 * connection's output backs up, or it has had its share of this turn: true in that last
 * case (requests may be left for its next turn). */
static bool srv_process(srv_conn *c)
{
    size_t off = 0;
    unsigned served = 0;
    bool more = false, share = false; /* stopped inside a message; at the turn's share */
    while (off < c->in_len && !c->closing) {
        if (srv_backed_up(c)) {
            c->paused = true;
            break;
        }
        if (served == SRV_TURN_MESSAGES) {
            share = true;
            break;
        }
        if (srv_durable_wait(c))
            break; /* the store's batch is full: the rest after the commit under way */
        served++;
        msgpack_object obj;
        size_t used;
        int rc = cp_next(&c->frame, c->in + off, c->in_len - off, &c->srv->zone, &obj, &used);
        if (rc == 0) {
            more = true;
            break;
        }
        if (rc < 0 && !used) {
            /* The stream cannot be parsed past this point: say why, then hang up. */
            cp_error err;
            if (rc == -E2BIG)
                cp_fail(&err, CP_TOO_LARGE, "message larger than the limit of %zu bytes",
                        c->srv->cfg.max_message);
            else
                cp_fail(&err, CP_BAD_REQUEST, "the byte stream is not MessagePack (or nests deeper than %u)",
                        CP_MAX_DEPTH);
            srv_reply_error(c, NULL, &err);
            srv_conn_flush(c);
            srv_conn_close(c);
            return false;
        }
        off += used;
        if (rc < 0) {
            /* A whole message that could not be decoded: say so, go on with the next. */
            cp_error err;
            if (rc == -ENOMEM)
                cp_fail(&err, CP_INTERNAL, "out of memory decoding the message");
            else
                cp_fail(&err, CP_BAD_REQUEST, "the message could not be decoded");
            srv_reply_error(c, NULL, &err);
            msgpack_zone_clear(&c->srv->zone);
            continue;
        }
        srv_handle_object(c, &obj);
    }
    if (c->closing)
        return false;
    srv_conn_set_partial(c, more, off > 0);
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return share;
}

/* ---- turns ---------------------------------------------------------------------------
 * A connection gets a share of each loop turn — SRV_TURN_MESSAGES requests — and is then
 * answered; what it pipelined beyond waits for its next turn, after poll has served
 * everyone else's input. One client pipelining at full speed once held every other
 * client's round trip to several milliseconds (a read peeked ~1,600 submits and served
 * them all first). While a connection has requests waiting it is not read from: what it
 * sends meanwhile waits in the socket, as with any slow reader. */

static void srv_backlog_run(uv_check_t *h);

static void srv_backlog_idle(uv_idle_t *h)
{
    (void)h; /* its being active keeps poll from blocking while requests wait */
}

static void srv_conn_set_backlog(srv_conn *c, bool on)
{
    srv *v = c->srv;
    if (on == co_queue_linked(&c->backlog_node))
        return;
    if (on) {
        if (co_queue_empty(&v->backlog)) {
            uv_check_start(&v->backlog_check, srv_backlog_run);
            uv_idle_start(&v->backlog_idle, srv_backlog_idle);
        }
        co_queue_insert_tail(&v->backlog, &c->backlog_node);
    } else {
        co_queue_remove(&c->backlog_node);
        if (co_queue_empty(&v->backlog)) {
            uv_check_stop(&v->backlog_check);
            uv_idle_stop(&v->backlog_idle);
        }
    }
    if (!c->closing)
        srv_conn_poll(c);
}

/* A share of what the connection has buffered, answered at once. */
static void srv_conn_turn(srv_conn *c)
{
    srv *v = c->srv;
    co_sched_hold(v->sched);
    bool more = srv_process(c);
    /* Answer from here rather than from the next turn's flush: run what the requests made
     * runnable (a task that ends at once, its done-callbacks), then write. On a VM whose
     * idle vCPU halts, a reply later than about a microsecond finds the client asleep
     * and costs it ~5 µs to wake (bench_ipc's echo with work shows the step). */
    co_sched_run_ready(v->sched);
    srv_flush_dirty(v);
    /* The flush may have resumed it (its output drained): whole requests still buffered
     * then wait for its next turn, whatever this one stopped for — or for the store's
     * commit, when the batch was full. */
    if (c->closing)
        return;
    if (c->store_waiting) {
        srv_conn_set_backlog(c, false);
        co_queue_insert_tail(&v->store_wait, &c->backlog_node); /* not read from meanwhile */
        srv_conn_poll(c);
        return;
    }
    srv_conn_set_backlog(c, more || (!c->paused && c->in_len && !c->partial_since));
}

void srv_store_resume(srv *v)
{
    co_queue *q;
    while ((q = co_queue_first(&v->store_wait))) {
        srv_conn *c = co_queue_data(q, srv_conn, backlog_node);
        co_queue_remove(q);
        c->store_waiting = false;
        srv_conn_set_backlog(c, true);
    }
}

/* After poll: each connection with requests waiting gets its next share, in turn. */
static void srv_backlog_run(uv_check_t *h)
{
    srv *v = h->data;
    co_queue *q;
    co_queue_foreach(q, &v->backlog)
        co_queue_data(q, srv_conn, backlog_node)->turn_pending = true;
    while ((q = co_queue_first(&v->backlog))) {
        srv_conn *c = co_queue_data(q, srv_conn, backlog_node);
        if (!c->turn_pending)
            break; /* came back for another share: that waits for the next turn */
        c->turn_pending = false;
        co_queue_remove(q);
        co_queue_insert_tail(&v->backlog, q);
        srv_conn_turn(c);
    }
}

static void srv_conn_read(srv_conn *c)
{
    srv *v = c->srv;
    bool over_share;
    size_t room = srv_in_room(c, &over_share);
    if (!room) {
        if (!c->paused) { /* not full: it could not grow */
            cp_error err;
            if (over_share)
                cp_fail(&err, CP_QUOTA_EXCEEDED, "uid %u's connections already buffer %zu bytes (limit %zu)",
                        (unsigned)c->uid, c->acct->client_bytes, v->cfg.max_uid_buffers);
            else
                cp_fail(&err, CP_INTERNAL, "out of memory for its requests");
            sy_log(LOG_WARNING, "dropping a client (uid %u, pid %d): %s", (unsigned)c->uid, (int)c->pid,
                    err.message);
            srv_reply_error(c, NULL, &err);
            srv_conn_flush(c);
            srv_conn_close(c);
            return;
        }
        c->read_stopped = true; /* srv_maybe_resume starts it again */
        srv_conn_poll(c);
        return;
    }
    /* A turn's worth: what a connection sends beyond waits in its socket. */
    ssize_t n = srv_sock_peek(c->fd, c->in + c->in_len, room < SRV_READ_CHUNK ? room : SRV_READ_CHUNK);
    if (n == -EAGAIN)
        return;
    if (n <= 0) {
        srv_conn_close(c); /* EOF or error: whatever was pending is moot */
        return;
    }
    c->in_len += (size_t)n;
    srv_conn_turn(c);
    /* Only now are the request's bytes taken off the socket (srv_sock.h says why). */
    if (!c->closing && srv_sock_discard(c->fd, (size_t)n, v->scratch, SRV_READ_CHUNK) < 0)
        srv_conn_close(c);
}

static void srv_conn_io(uv_poll_t *h, int status, int events)
{
    srv_conn *c = h->data;
    if (status < 0) {
        srv_conn_close(c);
        return;
    }
    if (events & UV_WRITABLE) {
        srv_conn_send(c);
        srv_maybe_resume(c);
    }
    if ((events & UV_READABLE) && !c->closing && !c->read_stopped)
        srv_conn_read(c);
}

bool srv_conn_watch(srv_conn *c, const cp_request *rq, size_t n)
{
    if (c->watched + n > SRV_MAX_WATCHED_PER_CONN) {
        cp_error err;
        cp_fail(&err, CP_QUOTA_EXCEEDED, "this connection already watches %zu ids; at most %u at once",
                c->watched, SRV_MAX_WATCHED_PER_CONN);
        srv_reply_error(c, rq, &err);
        return false;
    }
    c->watched += n;
    return true;
}

/* A client turned away is told why, in one message it may read before the hang-up (the
 * socket is new: its buffer takes it, or the client is gone and nothing is lost). */
static void srv_refuse(int fd, const char *code, const char *why)
{
    cp_out o;
    cp_out_init(&o);
    cp_pack_response_error(&o, false, 0, code, why);
    if (!cp_out_failed(&o))
        srv_sock_send(fd, o.data, o.size);
    cp_out_free(&o);
    close(fd);
}

/* A connection accepted: who is on the other end decides what they may see and touch,
 * and whose share it counts against. Root's and the daemon's own uid's are never turned
 * away for the others' (or their own) number: another user's connections must not lock
 * out the administrator. */
void srv_conn_open(srv *v, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    srv_conn *c = NULL;
    srv_acct *ac = NULL;
    const char *code = CP_QUOTA_EXCEEDED;
    char why[160];
    if (v->stopping || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        close(fd);
        return;
    }
    if (!(ac = srv_table_acct(v->table, cred.uid)))
        goto out_of_memory;
    if (!ac->privileged && ac->conns >= v->cfg.max_uid_connections) {
        snprintf(why, sizeof why, "uid %u already has %zu connections open (limit %zu)", (unsigned)cred.uid,
                 ac->conns, v->cfg.max_uid_connections);
        goto refuse;
    }
    if (!ac->privileged && v->nconns >= v->cfg.max_connections) {
        snprintf(why, sizeof why, "corod has %zu connections open (limit %zu)", v->nconns, v->cfg.max_connections);
        goto refuse;
    }
    if (!(c = calloc(1, sizeof *c)) || uv_poll_init(v->loop, &c->poll, fd) < 0) {
        free(c);
        goto out_of_memory;
    }
    c->acct = ac;
    ac->conns++;
    c->poll.data = c;
    c->fd = fd;
    c->srv = v;
    c->uid = cred.uid;
    c->pid = cred.pid;
    cp_frame_init(&c->frame, v->cfg.max_message);
    cp_out_init(&c->out);
    co_queue_init(&c->dirty_node);
    co_queue_init(&c->backlog_node);
    co_queue_init(&c->waits);
    co_queue_init(&c->subs);
    co_queue_init(&c->reads);
    co_queue_init(&c->sends);
    co_queue_init(&c->hist);
    co_queue_init(&c->held_node);
    co_queue_insert_tail(&v->conns, &c->node);
    v->nconns++;
    srv_conn_poll(c);
    return;

out_of_memory:
    code = CP_INTERNAL;
    snprintf(why, sizeof why, "out of memory");
refuse:
    if (ac)
        srv_acct_unref(ac);
    srv_refuse(fd, code, why);
}

/* ---- listening ------------------------------------------------------------------------ */

static void srv_handle_closed(uv_handle_t *h);

static void srv_on_finish(srv_rec *r, void *arg)
{
    srv_watch_on_finish(r, arg);
    srv_output_wake(arg, srv_rec_id(r)); /* a follower sees the end at once */
}

static void srv_on_output(void *arg, uint64_t id)
{
    srv_output_wake(arg, id);
}

void srv_where(const srv *v, char *buf, size_t len)
{
    if (v->bound)
        snprintf(buf, len, "%s", v->path);
    else
        snprintf(buf, len, "%s (socket activation: %zu socket%s from systemd)", v->path, v->nlisten,
                 v->nlisten == 1 ? "" : "s");
}

void srv_status(char *buf, size_t len, void *arg)
{
    srv *v = arg;
    size_t running = 0, pending = 0, paused = 0;
    for (srv_group *g = srv_table_groups(v->table); g; g = srv_group_next(v->table, g)) {
        running += g->running;
        pending += g->pending;
        paused += g->paused;
    }
    snprintf(buf, len, "%zu running, %zu pending, %zu group%s paused, %zu client%s%s", running, pending, paused,
             paused == 1 ? "" : "s", v->nconns, v->nconns == 1 ? "" : "s",
             v->degraded ? "; the store cannot commit: new tasks are refused" : "");
}

int srv_new(uv_loop_t *loop, co_sched *s, const srv_config *cfg, srv **out, char *errbuf, size_t errlen)
{
    srv *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    v->loop = loop;
    v->sched = s;
    v->cfg = *cfg;
    co_queue_init(&v->conns);
    co_queue_init(&v->dirty);
    co_queue_init(&v->all_subs);
    co_queue_init(&v->out_polls);
    co_queue_init(&v->backlog);
    co_queue_init(&v->store_wait);
    srv_conn_limits(v, cfg);
    if (!v->cfg.max_message)
        v->cfg.max_message = CP_MAX_MESSAGE_DEFAULT;
    if (!v->cfg.max_output)
        v->cfg.max_output = SRV_MAX_OUTPUT;
    /* A reader that takes its answers is never dropped for one: with one record past the
     * bound, an answer stays under half of max_output (srv_config.limits.max_result). */
    v->answer_bytes = v->cfg.max_output / 4 < SRV_ANSWER_BYTES ? v->cfg.max_output / 4 : SRV_ANSWER_BYTES;
    v->self_uid = geteuid();
    int mode = v->cfg.socket_mode >= 0 ? v->cfg.socket_mode : (v->self_uid == 0 ? 0666 : 0600);
    int rc = -ENOMEM;
    if ((rc = srv_table_new(s, &cfg->limits, &v->table)) < 0) {
        if (rc == -EINVAL)
            snprintf(errbuf, errlen, "no directory for jobs' output");
        free(v);
        return rc;
    }
    srv_table_on_finish(v->table, srv_on_finish, v);
    srv_table_on_output(v->table, srv_on_output, v);
    msgpack_zone_init(&v->zone, MSGPACK_ZONE_CHUNK_SIZE);
    if (cfg->store && (rc = srv_restore(v, cfg->store, errbuf, errlen)) < 0)
        goto fail;
    rc = -ENOMEM;
    if (!(v->scratch = malloc(SRV_READ_CHUNK)))
        goto fail;
    if ((rc = srv_listen_open(v, mode, errbuf, errlen)) < 0)
        goto fail;
    uv_timer_init(loop, &v->sweep);
    v->sweep.data = v;
    uv_check_init(loop, &v->backlog_check);
    v->backlog_check.data = v;
    uv_idle_init(loop, &v->backlog_idle);
    v->backlog_idle.data = v;
    uv_prepare_init(loop, &v->flush);
    v->flush.data = v;
    uv_prepare_start(&v->flush, srv_flush_all);
    uv_unref((uv_handle_t *)&v->flush);
    if ((rc = srv_durable_init(v, cfg->store)) < 0) {
        /* Nothing can be answered durably: refuse to serve (the handles close as at
         * shutdown, and the caller still owns the store). */
        snprintf(errbuf, errlen, "the store cannot write: %s", rc == -ENOMEM ? "out of memory" : uv_strerror(rc));
        srv_table_set_store(v->table, NULL);
        v->store = NULL;
        srv_shutdown(v);
        return rc;
    }
    *out = v;
    return 0;
fail:
    msgpack_zone_destroy(&v->zone);
    srv_table_free(v->table);
    free(v->scratch);
    free(v->path);
    free(v);
    return rc;
}

static void srv_handle_closed(uv_handle_t *h)
{
    srv *v = h->data;
    if (--v->closing == 0)
        srv_maybe_free(v);
}

void srv_maybe_free(srv *v)
{
    if (v->stopping && v->closing == 0 && !v->store_reads) { /* the store's reads in flight hold it */
        msgpack_zone_destroy(&v->zone);
        srv_table_free(v->table);
        free(v->scratch);
        free(v->path);
        free(v);
    }
}

void srv_shutdown(srv *v)
{
    if (v->stopping)
        return;
    v->stopping = true;
    size_t listening = srv_listen_close(v, srv_handle_closed); /* nobody new comes in */
    /* Last words first: pending waits are told, and whatever is packed goes out before the
     * connections close. */
    co_queue *q;
    co_queue_foreach(q, &v->conns)
        srv_watch_shutdown(co_queue_data(q, srv_conn, node));
    srv_durable_close(v); /* what is being committed is, and the output it held goes */
    srv_flush_all(&v->flush);
    while ((q = co_queue_first(&v->conns)))
        srv_conn_close(co_queue_data(q, srv_conn, node));
    /* The handles live inside *v: it is freed when the last of them has closed. */
    v->closing = 6 + listening;
    uv_close((uv_handle_t *)&v->store_retry, srv_handle_closed);
    uv_close((uv_handle_t *)&v->store_tick, srv_handle_closed);
    uv_close((uv_handle_t *)&v->backlog_check, srv_handle_closed);
    uv_close((uv_handle_t *)&v->backlog_idle, srv_handle_closed);
    uv_close((uv_handle_t *)&v->sweep, srv_handle_closed);
    uv_close((uv_handle_t *)&v->flush, srv_handle_closed);
}
