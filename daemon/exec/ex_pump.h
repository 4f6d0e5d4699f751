/* ex_pump: a job's standard streams on the loop. An output pump copies one pipe into
 * its output file through one bounded buffer — reading stops while a write is on the
 * thread pool, so a job that writes faster than the disk simply blocks on its pipe and
 * the daemon's memory stays flat. Past an optional cap the rest is read and discarded
 * (the job keeps running) after a marker line. An input pump writes a job's stdin bytes
 * and closes the pipe.
 *
 * Each pump calls `done` exactly once, when it has nothing in flight and its handle is
 * closed — after EOF, an error, or ex_pump_stop — and is then freed with ex_pump_free. */
#ifndef EX_PUMP_H
#define EX_PUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ex_disk.h"

#define EX_PUMP_BUF (64u * 1024u) /* bytes in flight per output stream */

typedef struct ex_pump ex_pump;
typedef void (*ex_pump_done)(ex_pump *p, void *arg);

typedef struct ex_out_opts {
    const char *path;  /* copied */
    uint64_t limit;    /* caps the file's size, 0: none */
    ex_disk_use *disk; /* the owner's share of the disk (referenced while the pump lives), or NULL */
    bool chown;        /* give the file to uid:gid, so that their disk quota counts it */
    uid_t uid;
    gid_t gid;
    void (*wrote)(void *arg); /* optional: bytes reached the file (they can be read now) */
    void *wrote_arg;
} ex_out_opts;

/* Copy pipe_fd (read end, taken over) to the end of the file o->path, which is created —
 * on the thread pool — only when the job first writes, so a silent job costs no file and
 * no thread-pool trip. What passes o->limit or the owner's share is discarded after a
 * marker line. */
int ex_pump_output(uv_loop_t *loop, int pipe_fd, const ex_out_opts *o, ex_pump_done done, void *arg,
                   ex_pump **out);
/* Write data (borrowed: keep it alive until done) into pipe_fd (write end, taken over),
 * then close it. */
int ex_pump_input(uv_loop_t *loop, int pipe_fd, const void *data, size_t len, ex_pump_done done,
                  void *arg, ex_pump **out);

/* An input that stays open to be fed, a write at a time, until a feed says eof (a job's
 * stdin that clients write to). */
typedef void ex_feed_cb(void *arg, int status);
int ex_pump_feeder(uv_loop_t *loop, int pipe_fd, ex_pump_done done, void *arg, ex_pump **out);
/* Write data (copied) into the pipe, then close it if eof. 0: cb(arg, status) runs once
 * the bytes are in the pipe (0), or could not be (UV_EPIPE: the job closed its end;
 * UV_ECANCELED: stopped); 1: nothing to write, done at once (no callback); -EBUSY while
 * a feed is in flight; -EPIPE once closed; -ENOMEM. */
int ex_pump_feed(ex_pump *p, const void *data, size_t len, bool eof, ex_feed_cb *cb, void *arg);
bool ex_pump_feed_open(const ex_pump *p); /* a feeder still taking bytes */

/* Stop early: no more reads (what is being written still lands), the pipe is closed. */
void ex_pump_stop(ex_pump *p);
void ex_pump_free(ex_pump *p);

uint64_t ex_pump_bytes(const ex_pump *p);   /* bytes read from the job (output) or written to it (input) */
bool ex_pump_truncated(const ex_pump *p);   /* the cap or the owner's share was reached */
int ex_pump_error(const ex_pump *p);        /* the first write error (negative errno), 0 */

/* The lines appended when an output's cap, or its owner's share of the disk, is reached. */
#define EX_PUMP_MARKER "\n[corod: output limit of %llu bytes reached; the rest was discarded]\n"
#define EX_PUMP_SHARE_MARKER "\n[corod: uid %u's share of output (%llu bytes) is used up; the rest was discarded]\n"

#endif
