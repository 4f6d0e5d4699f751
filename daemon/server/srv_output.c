/* srv_output.c: the `output` method — bytes of an exec task's stdout or stderr file by
 * offset. The file is read on the thread pool (it may be large, the disk slow), so the
 * answer comes later, like a deferred wait; a connection has at most
 * SRV_MAX_READS_PER_CONN reads in flight (its dispatch pauses at that many), each of at
 * most SRV_OUTPUT_MAX bytes. */
#include "srv_internal.h"

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
    srv_conn *c;   /* NULL once the connection has closed */
    co_queue node; /* in c->reads */
    uint32_t msgid;
    char path[4096];
    uint64_t offset, max;
    bool terminal; /* the task had ended when asked: the file is complete */

    uint64_t seq;  /* the record's last write then: the answer waits for it */
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

static void srv_read_done(uv_work_t *req, int status)
{
    srv_outread *rd = req->data;
    srv_conn *c = rd->c;
    if (c) {
        srv_read_unlink(rd);
        cp_request rq = { .has_msgid = true, .msgid = rd->msgid };
        if (status < 0 || rd->err < 0) {
            cp_error err;
            cp_fail(&err, CP_INTERNAL, "cannot read %s: %s", rd->path,
                    strerror(status < 0 ? -status : -rd->err));
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
    }
    free(rd->data);
    free(rd);
}

void srv_output(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    cp_str stream = { 0 };
    uint64_t off = 0, max = SRV_OUTPUT_DEFAULT;
    if (cp_get_str(rq->params, "stream", false, 16, &stream, &err) < 0 ||
        cp_get_uint(rq->params, "offset", false, 0, (uint64_t)INT64_MAX, &off, &err) < 0 ||
        cp_get_uint(rq->params, "max", false, 0, SRV_OUTPUT_MAX, &max, &err) < 0) {
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
    rd->msgid = rq->msgid;
    rd->offset = off;
    rd->max = max;
    rd->terminal = srv_rec_terminal(r);

    rd->seq = srv_rec_seq(r);
    rd->req.data = rd;
    int rc = uv_queue_work(c->srv->loop, &rd->req, srv_read_work, srv_read_done);
    if (rc < 0) {
        free(rd);
        cp_fail(&err, CP_INTERNAL, "cannot queue the read: %s", uv_strerror(rc));
        srv_reply_error(c, rq, &err);
        return;
    }
    rd->c = c;
    co_queue_insert_tail(&c->reads, &rd->node);
    c->nreads++;
}

void srv_output_conn_closed(srv_conn *c)
{
    /* Reads in flight finish on the thread pool and are freed then, unanswered. */
    co_queue *q;
    while ((q = co_queue_first(&c->reads)))
        srv_read_unlink(co_queue_data(q, srv_outread, node));
}
