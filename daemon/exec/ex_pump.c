/* ex_pump.c: pipe → file copying with one buffer per stream, and the stdin writer. */
#include "ex_pump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ex_pump {
    uv_pipe_t pipe;
    uv_fs_t fs;
    uv_work_t open_req;
    uv_write_t wr;
    char *path;
    size_t chunk; /* bytes read, waiting for the file to open */
    uv_loop_t *loop;
    bool output;
    bool writing;   /* a write (file or pipe) is in flight */
    bool eof;       /* no more reading */
    bool closed;    /* the pipe handle's close callback ran */
    bool truncated;
    bool done_called;
    int file_fd, error;
    uint64_t offset, limit, bytes;
    ex_disk_use *disk;
    bool chown;
    uid_t uid;
    gid_t gid;
    char *buf;
    size_t pending, sent; /* of buf: bytes to write, bytes written so far */
    void (*wrote)(void *arg);
    void *wrote_arg;
    bool feeder;    /* an input fed by ex_pump_feed, open until told */
    bool feed_eof;  /* ... close once this write is in */
    ex_feed_cb *feed_cb;
    void *feed_arg;
    ex_pump_done done;
    void *arg;
};

static void ex_fs_closed(uv_fs_t *req)
{
    uv_fs_req_cleanup(req);
    free(req);
}

static void ex_pump_maybe_done(ex_pump *p)
{
    if (p->closed && !p->writing && !p->done_called) {
        p->done_called = true;
        if (p->file_fd >= 0) { /* closing may flush (NFS): off the loop, nobody waits */
            uv_fs_t *req = malloc(sizeof *req);
            if (!req || uv_fs_close(p->loop, req, p->file_fd, ex_fs_closed) < 0) {
                free(req);
                close(p->file_fd);
            }
            p->file_fd = -1;
        }
        p->done(p, p->arg);
    }
}

static void ex_pump_closed(uv_handle_t *h)
{
    ex_pump *p = h->data;
    p->closed = true;
    ex_pump_maybe_done(p);
}

static void ex_pump_close(ex_pump *p)
{
    p->eof = true;
    if (!uv_is_closing((uv_handle_t *)&p->pipe))
        uv_close((uv_handle_t *)&p->pipe, ex_pump_closed);
}

/* ---- output ---- */

static void ex_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    ex_pump *p = h->data;
    (void)suggested;
    b->base = p->buf;
    b->len = EX_PUMP_BUF;
}

static void ex_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void ex_out_resume(ex_pump *p)
{
    if (p->eof) {
        ex_pump_maybe_done(p);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&p->pipe, ex_out_alloc, ex_out_read);
    if (rc < 0)
        ex_pump_close(p);
}

static void ex_out_write_next(ex_pump *p);

static void ex_out_written(uv_fs_t *req)
{
    ex_pump *p = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    p->writing = false;
    if (r < 0) {
        /* A full disk or an I/O error: keep draining the job, stop writing. */
        if (!p->error)
            p->error = (int)r;
        p->pending = p->sent = 0;
    } else {
        p->offset += (uint64_t)r;
        p->sent += (size_t)r;
        if (p->disk)
            ex_disk_add(p->disk, (uint64_t)r);
        if (p->sent < p->pending) { /* a short write: the rest */
            ex_out_write_next(p);
            return;
        }
        p->pending = p->sent = 0;
        if (p->wrote)
            p->wrote(p->wrote_arg);
    }
    ex_out_resume(p);
}

static void ex_out_write_next(ex_pump *p)
{
    uv_buf_t b = uv_buf_init(p->buf + p->sent, (unsigned)(p->pending - p->sent));
    p->fs.data = p;
    int rc = uv_fs_write(p->loop, &p->fs, p->file_fd, &b, 1, (int64_t)p->offset, ex_out_written);
    if (rc < 0) {
        if (!p->error)
            p->error = rc;
        p->pending = p->sent = 0;
        ex_out_resume(p);
        return;
    }
    p->writing = true;
}

/* A chunk of n bytes in buf, with the file open: apply the cap, write what is kept. */
static void ex_out_chunk(ex_pump *p, size_t n)
{
    if (p->truncated || p->error) { /* discard: the job must not block on a full pipe */
        ex_out_resume(p);
        return;
    }
    size_t keep = n;
    char marker[160];
    int m = 0;
    if (p->limit && p->offset + keep > p->limit) {
        keep = p->offset < p->limit ? (size_t)(p->limit - p->offset) : 0;
        m = snprintf(marker, sizeof marker, EX_PUMP_MARKER, (unsigned long long)p->limit);
    }
    if (p->disk) { /* the owner's share; the marker may pass it by its own few bytes */
        size_t room = (size_t)ex_disk_room(p->disk, keep);
        if (room < keep) {
            keep = room;
            m = snprintf(marker, sizeof marker, EX_PUMP_SHARE_MARKER, (unsigned)p->uid,
                         (unsigned long long)p->disk->disk->limit);
        }
    }
    if (m > 0) { /* the marker goes after the kept bytes, in the same write */
        if (keep + (size_t)m > EX_PUMP_BUF)
            keep = EX_PUMP_BUF - (size_t)m;
        memcpy(p->buf + keep, marker, (size_t)m);
        keep += (size_t)m;
        p->truncated = true;
    }
    p->pending = keep;
    p->sent = 0;
    ex_out_write_next(p);
}

/* Thread pool: create the file, find its end (earlier attempts' output stays). */
static void ex_out_open_work(uv_work_t *req)
{
    ex_pump *p = req->data;
    int fd = open(p->path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st;
    /* The job's owner's file: filesystem quotas count it against them, not the daemon
     * (best effort: a filesystem that refuses leaves it the daemon's). */
    int owned = fd >= 0 && p->chown ? fchown(fd, p->uid, p->gid) : 0;
    (void)owned;
    if (fd < 0 || fstat(fd, &st) < 0) {
        p->error = -errno;
        if (fd >= 0)
            close(fd);
        return;
    }
    p->file_fd = fd;
    p->offset = (uint64_t)st.st_size;
}

static void ex_out_opened(uv_work_t *req, int status)
{
    ex_pump *p = req->data;
    p->writing = false;
    if (status < 0 && !p->error)
        p->error = status;
    if (p->limit && p->offset >= p->limit && p->file_fd >= 0)
        p->truncated = true; /* an earlier attempt filled it */
    ex_out_chunk(p, p->chunk);
}

static void ex_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    ex_pump *p = s->data;
    (void)b;
    if (n == 0)
        return;
    if (n < 0) { /* EOF, or the pipe broke */
        ex_pump_close(p);
        return;
    }
    p->bytes += (uint64_t)n;
    if (p->truncated || p->error)
        return; /* discard without stopping */
    uv_read_stop(s);
    if (p->file_fd < 0) {
        p->chunk = (size_t)n;
        p->open_req.data = p;
        int rc = uv_queue_work(p->loop, &p->open_req, ex_out_open_work, ex_out_opened);
        if (rc < 0) {
            p->error = rc;
            ex_out_resume(p);
            return;
        }
        p->writing = true;
        return;
    }
    ex_out_chunk(p, (size_t)n);
}

static int ex_pump_new(uv_loop_t *loop, int pipe_fd, ex_pump_done done, void *arg, ex_pump **out)
{
    ex_pump *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->done = done;
    p->arg = arg;
    p->file_fd = -1;
    int rc = uv_pipe_init(loop, &p->pipe, 0);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->pipe.data = p;
    if ((rc = uv_pipe_open(&p->pipe, pipe_fd)) < 0) {
        /* The handle exists: close it; the fd stays the caller's to close. */
        p->done = NULL;
        uv_close((uv_handle_t *)&p->pipe, (uv_close_cb)free);
        return rc;
    }
    *out = p;
    return 0;
}

int ex_pump_output(uv_loop_t *loop, int pipe_fd, const ex_out_opts *o, ex_pump_done done, void *arg,
                   ex_pump **out)
{
    char *buf = malloc(EX_PUMP_BUF);
    char *pathc = strdup(o->path);
    if (!buf || !pathc) {
        free(buf);
        free(pathc);
        return -ENOMEM;
    }
    ex_pump *p;
    int rc = ex_pump_new(loop, pipe_fd, done, arg, &p);
    if (rc < 0) {
        free(buf);
        free(pathc);
        return rc;
    }
    p->output = true;
    p->buf = buf;
    p->path = pathc;
    p->limit = o->limit;
    if ((p->disk = o->disk))
        ex_disk_use_ref(p->disk);
    p->chown = o->chown;
    p->wrote = o->wrote;
    p->wrote_arg = o->wrote_arg;
    p->uid = o->uid;
    p->gid = o->gid;
    *out = p;
    ex_out_resume(p);
    return 0;
}

/* ---- input ---- */

static void ex_in_written(uv_write_t *req, int status)
{
    ex_pump *p = req->data;
    p->writing = false;
    if (status == 0)
        p->bytes += p->pending;
    else if (status != UV_ECANCELED && status != UV_EPIPE && !p->error)
        p->error = status;
    if (p->feeder) {
        free(p->buf);
        p->buf = NULL;
        ex_feed_cb *cb = p->feed_cb;
        p->feed_cb = NULL;
        if (status < 0 || p->feed_eof)
            ex_pump_close(p);
        if (cb)
            cb(p->feed_arg, status);
        ex_pump_maybe_done(p);
        return;
    }
    ex_pump_close(p);
    ex_pump_maybe_done(p);
}

int ex_pump_feeder(uv_loop_t *loop, int pipe_fd, ex_pump_done done, void *arg, ex_pump **out)
{
    int rc = ex_pump_new(loop, pipe_fd, done, arg, out);
    if (rc == 0)
        (*out)->feeder = true;
    return rc;
}

int ex_pump_feed(ex_pump *p, const void *data, size_t len, bool eof, ex_feed_cb *cb, void *arg)
{
    if (!p->feeder || p->eof)
        return -EPIPE;
    if (p->writing)
        return -EBUSY;
    if (!len) {
        if (eof)
            ex_pump_close(p);
        return 1;
    }
    if (!(p->buf = malloc(len)))
        return -ENOMEM;
    memcpy(p->buf, data, len);
    p->pending = len;
    p->feed_eof = eof;
    p->wr.data = p;
    uv_buf_t b = uv_buf_init(p->buf, (unsigned)len);
    int rc = uv_write(&p->wr, (uv_stream_t *)&p->pipe, &b, 1, ex_in_written);
    if (rc < 0) {
        free(p->buf);
        p->buf = NULL;
        return rc;
    }
    p->feed_cb = cb;
    p->feed_arg = arg;
    p->writing = true;
    return 0;
}

bool ex_pump_feed_open(const ex_pump *p)
{
    return p->feeder && !p->eof;
}

int ex_pump_input(uv_loop_t *loop, int pipe_fd, const void *data, size_t len, ex_pump_done done,
                  void *arg, ex_pump **out)
{
    ex_pump *p;
    int rc = ex_pump_new(loop, pipe_fd, done, arg, &p);
    if (rc < 0)
        return rc;
    *out = p;
    if (!len) {
        ex_pump_close(p);
        return 0;
    }
    p->pending = len;
    p->wr.data = p;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if ((rc = uv_write(&p->wr, (uv_stream_t *)&p->pipe, &b, 1, ex_in_written)) < 0) {
        p->error = rc;
        ex_pump_close(p);
        return 0;
    }
    p->writing = true;
    return 0;
}

/* ---- both ---- */

void ex_pump_stop(ex_pump *p)
{
    if (p->output)
        uv_read_stop((uv_stream_t *)&p->pipe);
    ex_pump_close(p); /* an input's pending write is cancelled by the close */
}

void ex_pump_free(ex_pump *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p->path);
    if (p->disk)
        ex_disk_use_unref(p->disk);
    free(p);
}

uint64_t ex_pump_bytes(const ex_pump *p) { return p->bytes; }
bool ex_pump_truncated(const ex_pump *p) { return p->truncated; }
int ex_pump_error(const ex_pump *p) { return p->error; }
