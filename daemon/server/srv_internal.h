/* srv_internal.h: what the server's own modules share. */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <msgpack.h>
#include <stdbool.h>

#include "cp_frame.h"
#include "cp_msg.h"
#include "srv.h"
#include "srv_acct.h"

typedef struct srv_conn srv_conn;
typedef struct srv_wait srv_wait;
typedef struct srv_sub srv_sub;
typedef struct srv_outread srv_outread;

struct srv {
    uv_loop_t *loop;
    co_sched *sched;
    srv_table *table;
    srv_config cfg;
    size_t answer_bytes; /* SRV_ANSWER_BYTES, or a quarter of max_output when less */
    char *path;
    uv_poll_t listener; /* the listening socket: readable while connections wait */
    int listen_fd;
    uv_timer_t accept_retry; /* accepting failed (out of descriptors): try again later */
    bool accept_failing;     /* ... and the operator has been told */
    uv_prepare_t flush; /* writes what the loop produced, just before poll would block */
    uv_timer_t sweep;   /* while a message is arriving: drops those past their deadline */
    size_t npartial;    /* connections holding part of a message */
    co_queue backlog;   /* srv_conn.backlog_node: requests buffered past a turn's share */
    uv_check_t backlog_check; /* serves them, a share each, after every poll */
    uv_idle_t backlog_idle;   /* ... and keeps poll from blocking meanwhile */
    uint8_t *scratch;   /* where consumed request bytes go (their copy is already read) */
    msgpack_zone zone;  /* decoded messages live here, cleared after each (no malloc each) */
    co_queue conns;    /* srv_conn.node */
    co_queue dirty;    /* srv_conn.dirty_node: connections with unflushed output */
    co_queue all_subs; /* srv_sub.all_node: subscriptions with all: true */
    size_t nconns;
    uid_t self_uid;
    bool stopping;
    int closing; /* server handles still closing */
};

struct srv_conn {
    uv_poll_t poll; /* the connection's socket (srv_sock.h says why not a uv_pipe_t) */
    int fd;
    int events; /* what poll watches: input unless stopped, writability while output waits */
    srv *srv;
    uid_t uid;
    pid_t pid;
    srv_acct *acct;    /* its uid's (referenced): connections and buffers are counted there */
    size_t charged;    /* what its buffers count for in acct->client_bytes */
    uint64_t partial_since; /* uv_now when the message it holds part of began; 0: none */
    uint8_t *in;
    size_t in_len, in_cap;
    cp_frame frame;
    cp_out out;      /* packed answers; those from out_sent on are not yet written */
    size_t out_sent;
    co_queue waits; /* srv_wait.node */
    size_t nwaits;
    co_queue subs;  /* srv_sub.node */
    size_t nsubs;
    size_t watched; /* ids registered by its waits and subscriptions */
    size_t nall;    /* of its subscriptions, those with all: true */
    co_queue reads; /* srv_outread.node: `output` reads on the thread pool */
    size_t nreads;
    uint32_t next_sub;
    co_queue node;       /* in srv.conns */
    co_queue dirty_node; /* in srv.dirty while it has output to flush */
    co_queue backlog_node; /* in srv.backlog while requests wait for its next turn */
    bool closing;
    bool paused;       /* backpressure: not dispatching while its output is backed up */
    bool turn_pending; /* has a share coming in this turn's backlog run */
    bool read_stopped; /* ... and its input buffer filled up meanwhile */
};

/* srv.c */
void srv_conn_mark(srv_conn *c); /* output was packed: flush it this turn */
/* Reserve room to watch n more ids; false (after a quota_exceeded reply) past the cap. */
bool srv_conn_watch(srv_conn *c, const cp_request *rq, size_t n);
void srv_conn_close(srv_conn *c);
/* Dispatch again if it was paused and is no longer backed up. */
void srv_maybe_resume(srv_conn *c);
void srv_reply_error(srv_conn *c, const cp_request *rq, const cp_error *err);

/* srv_methods.c */
/* The record named by params.id as the connection may see it, or an error reply and NULL. */
srv_rec *srv_lookup(srv_conn *c, const cp_request *rq);
void srv_dispatch(srv_conn *c, const cp_request *rq);

/* srv_output.c */
void srv_output(srv_conn *c, const cp_request *rq);
void srv_output_conn_closed(srv_conn *c);

/* srv_watch.c */
void srv_wait_start(srv_conn *c, const cp_request *rq);
void srv_subscribe(srv_conn *c, const cp_request *rq);
void srv_unsubscribe(srv_conn *c, const cp_request *rq);
void srv_watch_conn_closed(srv_conn *c);
void srv_watch_shutdown(srv_conn *c); /* answer pending waits with shutting_down */
void srv_watch_on_finish(srv_rec *r, void *arg);

#endif
