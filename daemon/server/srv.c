/* srv.c: the listening socket and the connections. Input is read by cp_next (framed and
 * decoded in one walk when a message arrived whole, else framed by cp_frame across reads;
 * bounded by the message limit either way) and dispatched in order, so requests pipeline
 * freely; output is packed into a per-connection buffer and written once per read: the
 * read callback dispatches what it read, runs what that made runnable
 * (co_sched_run_ready), then writes, so a burst of pipelined requests costs one write and
 * a reply leaves with the notifications its task produced at once. Output produced
 * elsewhere (timers, child processes, the thread pool) is written from a uv_prepare just
 * before poll blocks.
 * A connection whose unsent output passes its bound is dropped: nobody else waits on a
 * slow reader. */
#include "srv_internal.h"
#include "srv_list.h"

#include "cp_decode.h"

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

static void srv_process(srv_conn *c);
static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void srv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Backpressure: requests are dispatched only while the connection's unsent output is
 * under half its bound; dispatch resumes once it has drained to a quarter. Meanwhile
 * input is still read into the connection's buffer until that is full (the message limit
 * plus one read), and only then is reading stopped. A client that pipelines without
 * reading its answers thus costs at most its input buffer and its output bound; one that
 * stops reading while notifications keep coming is dropped. */
static bool srv_backed_up(const srv_conn *c)
{
    return c->out.size + c->out_pending >= c->srv->cfg.max_output / 2 ||
           c->nreads >= SRV_MAX_READS_PER_CONN;
}

void srv_maybe_resume(srv_conn *c)
{
    if (!c->paused || c->closing || c->out.size + c->out_pending > c->srv->cfg.max_output / 4 ||
        c->nreads >= SRV_MAX_READS_PER_CONN)
        return;
    c->paused = false;
    srv_process(c);
    if (!c->paused && !c->closing && c->read_stopped) {
        c->read_stopped = false;
        uv_read_start((uv_stream_t *)&c->pipe, srv_alloc, srv_read);
    }
}

/* ---- output ------------------------------------------------------------------------- */

typedef struct srv_write {
    uv_write_t req;
    srv_conn *c;
    char *data;
    size_t len;
} srv_write;

void srv_conn_mark(srv_conn *c)
{
    if (c->is_dirty || c->closing)
        return;
    c->is_dirty = true;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

static void srv_written(uv_write_t *req, int status)
{
    srv_write *w = (srv_write *)req;
    srv_conn *c = w->c;
    c->out_pending -= w->len;
    free(w->data);
    free(w);
    (void)status; /* a failed write is followed by a read error or EOF: handled there */
    srv_maybe_resume(c);
}

static void srv_conn_flush(srv_conn *c)
{
    if (c->closing)
        return;
    /* An answer was cut short (even the first: the buffer may be empty): the stream cannot
     * go on, and the buffer takes nothing more. */
    if (cp_out_failed(&c->out)) {
        fprintf(stderr, "corod: dropping a client (uid %u, pid %d): out of memory for its answers\n",
                (unsigned)c->uid, (int)c->pid);
        srv_conn_close(c);
        return;
    }
    if (!c->out.size)
        return;
    /* Straight into the socket when nothing is queued: no request, no callback, and none
     * of the epoll_ctl libuv makes after a completed uv_write. */
    if (c->out_pending == 0) {
        uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.size);
        int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
        if (n == (int)c->out.size) {
            cp_out_clear(&c->out);
            return;
        }
        if (n > 0) { /* the rest waits for uv_write */
            cp_out_consume(&c->out, (size_t)n);
        } else if (n != UV_EAGAIN) {
            srv_conn_close(c);
            return;
        }
    }
    srv_write *w = malloc(sizeof *w);
    if (!w) {
        srv_conn_close(c);
        return;
    }
    w->c = c;
    w->len = c->out.size;
    w->data = (char *)cp_out_release(&c->out);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    c->out_pending += w->len;
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, srv_written) < 0) {
        c->out_pending -= w->len;
        free(w->data);
        free(w);
        srv_conn_close(c);
        return;
    }
    /* libuv writes what the socket takes at once; what is left queues here. */
    if (c->out_pending > c->srv->cfg.max_output) {
        fprintf(stderr, "corod: dropping a client (uid %u, pid %d): %zu bytes unread, limit %zu\n",
                (unsigned)c->uid, (int)c->pid, c->out_pending, c->srv->cfg.max_output);
        srv_conn_close(c);
    }
}

static void srv_flush_dirty(srv *v)
{
    while (v->dirty) {
        srv_conn *c = v->dirty;
        v->dirty = c->dirty_next;
        c->is_dirty = false;
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
    SRV_LIST_UNLINK(v->conns, c);
    v->nconns--;
    if (c->is_dirty) { /* the flush must never meet a freed connection */
        for (srv_conn **pp = &v->dirty; *pp; pp = &(*pp)->dirty_next)
            if (*pp == c) {
                *pp = c->dirty_next;
                break;
            }
        c->is_dirty = false;
    }
    uv_close((uv_handle_t *)&c->pipe, srv_conn_freed);
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    srv_conn *c = h->data;
    size_t limit = c->srv->cfg.max_message + SRV_READ_CHUNK;
    if (c->in_cap - c->in_len < SRV_READ_CHUNK && c->in_cap < limit) {
        size_t ncap = c->in_cap ? c->in_cap * 2 : SRV_READ_CHUNK;
        if (ncap > limit)
            ncap = limit;
        uint8_t *n = realloc(c->in, ncap);
        if (n) {
            c->in = n;
            c->in_cap = ncap;
        }
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
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

/* Dispatch the complete messages buffered, in order, until input runs out or the
 * connection's output backs up. */
static void srv_process(srv_conn *c)
{
    size_t off = 0;
    while (off < c->in_len && !c->closing) {
        if (srv_backed_up(c)) {
            c->paused = true;
            break;
        }
        msgpack_object obj;
        size_t used;
        int rc = cp_next(&c->frame, c->in + off, c->in_len - off, &c->srv->zone, &obj, &used);
        if (rc == 0)
            break;
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
            return;
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
    if (off && !c->closing) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

static void srv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    srv_conn *c = s->data;
    if (nread == UV_ENOBUFS) { /* input buffer full while dispatch is paused */
        uv_read_stop(s);
        c->read_stopped = true;
        return;
    }
    if (nread < 0) {
        srv_conn_close(c); /* EOF or error: whatever was pending is moot */
        return;
    }
    c->in_len += (size_t)nread;
    co_sched_hold(c->srv->sched);
    srv_process(c);
    /* Answer from here rather than from the next turn's flush: run what the requests made
     * runnable (a task that ends at once, its done-callbacks), then write. On a VM whose
     * idle vCPU halts, a reply later than about a microsecond finds the client asleep
     * and costs it ~5 µs to wake (bench_ipc's echo with work shows the step). */
    co_sched_run_ready(c->srv->sched);
    srv_flush_dirty(c->srv);
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

static void srv_reject_closed(uv_handle_t *h)
{
    free(h);
}

static void srv_on_connection(uv_stream_t *server, int status)
{
    srv *v = server->data;
    if (status < 0)
        return;
    if (v->nconns >= v->cfg.max_connections || v->stopping) {
        uv_pipe_t *tmp = malloc(sizeof *tmp);
        if (!tmp)
            return;
        uv_pipe_init(v->loop, tmp, 0);
        uv_accept(server, (uv_stream_t *)tmp);
        uv_close((uv_handle_t *)tmp, srv_reject_closed);
        return;
    }
    srv_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_pipe_init(v->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->srv = v;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
        uv_close((uv_handle_t *)&c->pipe, srv_conn_freed);
        return;
    }
    /* Who is on the other end decides what they may see and touch. */
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        uv_close((uv_handle_t *)&c->pipe, srv_conn_freed);
        return;
    }
    c->uid = cred.uid;
    c->pid = cred.pid;
    cp_frame_init(&c->frame, v->cfg.max_message);
    cp_out_init(&c->out);
    SRV_LIST_PUSH(v->conns, c);
    v->nconns++;
    uv_read_start((uv_stream_t *)&c->pipe, srv_alloc, srv_read);
}

/* ---- listening ------------------------------------------------------------------------ */

static int srv_mkdir_parent(const char *path, mode_t mode, char *errbuf, size_t errlen)
{
    char *dir = strdup(path);
    if (!dir)
        return -ENOMEM;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, mode) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(errbuf, errlen, "cannot create %s: %s", dir, strerror(e));
            free(dir);
            return -e;
        }
    }
    free(dir);
    return 0;
}

/* A socket file left by a daemon that died is removed; one a live daemon answers on is
 * not touched. */
static int srv_clear_stale(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(errbuf, errlen, "%s exists and is not a socket; refusing to replace it", path);
        return -EEXIST;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    int live = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    if (live) {
        snprintf(errbuf, errlen, "another corod is already serving %s", path);
        return -EADDRINUSE;
    }
    unlink(path);
    return 0;
}

static void srv_handle_closed(uv_handle_t *h);

int srv_new(uv_loop_t *loop, co_sched *s, const srv_config *cfg, srv **out, char *errbuf, size_t errlen)
{
    srv *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    v->loop = loop;
    v->sched = s;
    v->cfg = *cfg;
    if (!v->cfg.max_connections)
        v->cfg.max_connections = SRV_MAX_CONNECTIONS;
    if (!v->cfg.max_message)
        v->cfg.max_message = CP_MAX_MESSAGE_DEFAULT;
    if (!v->cfg.max_output)
        v->cfg.max_output = SRV_MAX_OUTPUT;
    v->self_uid = geteuid();
    int mode = v->cfg.socket_mode >= 0 ? v->cfg.socket_mode : (v->self_uid == 0 ? 0666 : 0600);
    int rc;
    if (strlen(cfg->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(errbuf, errlen, "socket path too long (at most 107 bytes): %s", cfg->socket_path);
        free(v);
        return -ENAMETOOLONG;
    }
    rc = -ENOMEM;
    if (!(v->path = strdup(cfg->socket_path)) || (rc = srv_table_new(s, &cfg->limits, &v->table)) < 0) {
        if (rc == -EINVAL)
            snprintf(errbuf, errlen, "no directory for jobs' output");
        free(v->path);
        free(v);
        return rc;
    }
    srv_table_on_finish(v->table, srv_watch_on_finish, v);
    msgpack_zone_init(&v->zone, MSGPACK_ZONE_CHUNK_SIZE);
    if ((rc = srv_mkdir_parent(v->path, v->self_uid == 0 ? 0755 : 0700, errbuf, errlen)) < 0 ||
        (rc = srv_clear_stale(v->path, errbuf, errlen)) < 0)
        goto fail;
    uv_pipe_init(loop, &v->listener, 0);
    v->listener.data = v;
    /* Bind under a umask that leaves the socket no wider than asked, then set the mode. */
    mode_t old = umask(0777 & ~(mode_t)mode);
    rc = uv_pipe_bind(&v->listener, v->path);
    umask(old);
    if (rc == 0 && chmod(v->path, (mode_t)mode) < 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&v->listener, 511, srv_on_connection);
    if (rc < 0) {
        snprintf(errbuf, errlen, "cannot listen on %s: %s", v->path, uv_strerror(rc));
        /* The listener lives inside *v: free it all once libuv lets go of the handle. */
        v->closing = 1;
        uv_close((uv_handle_t *)&v->listener, srv_handle_closed);
        return rc;
    }
    uv_prepare_init(loop, &v->flush);
    v->flush.data = v;
    uv_prepare_start(&v->flush, srv_flush_all);
    uv_unref((uv_handle_t *)&v->flush);
    *out = v;
    return 0;
fail:
    msgpack_zone_destroy(&v->zone);
    srv_table_free(v->table);
    free(v->path);
    free(v);
    return rc;
}

static void srv_handle_closed(uv_handle_t *h)
{
    srv *v = h->data;
    if (--v->closing == 0) {
        msgpack_zone_destroy(&v->zone);
        srv_table_free(v->table);
        free(v->path);
        free(v);
    }
}

void srv_shutdown(srv *v)
{
    if (v->stopping)
        return;
    v->stopping = true;
    unlink(v->path);
    /* Last words first: pending waits are told, and whatever is packed goes out before the
     * connections close. */
    for (srv_conn *c = v->conns; c; c = c->next)
        srv_watch_shutdown(c);
    srv_flush_all(&v->flush);
    while (v->conns)
        srv_conn_close(v->conns);
    v->dirty = NULL;
    /* Both handles live inside *v: it is freed when the last of them has closed. */
    v->closing = 2;
    uv_close((uv_handle_t *)&v->listener, srv_handle_closed);
    uv_close((uv_handle_t *)&v->flush, srv_handle_closed);
}
