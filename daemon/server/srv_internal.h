/* srv_internal.h: what the server's own modules share. */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <msgpack.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cp_frame.h"
#include "cp_msg.h"
#include "srv.h"
#include "ut_grow.h"
#include "srv_acct.h"

typedef struct srv_conn srv_conn;
typedef struct srv_wait srv_wait;
typedef struct srv_sub srv_sub;
typedef struct srv_outread srv_outread;
typedef struct srv_sendreq srv_sendreq;

/* A submit answered into a connection's held output, waiting for its batch's commit
 * (srv_durable.c): then its record is armed; if the commit fails, its answer becomes an
 * `unavailable` error and the record goes. */
typedef struct srv_pend {
    srv_rec *rec;   /* referenced */
    srv_conn *conn; /* NULL once the connection has closed */
    uint64_t seq;   /* the batch holding its insert */
    uint64_t at;    /* where its answer starts in the connection's output (absolute) */
    uint32_t len, msgid;
} srv_pend;

typedef struct srv_listener {
    uv_poll_t poll; /* data: the server */
    int fd;
} srv_listener;

struct srv {
    uv_loop_t *loop;
    co_sched *sched;
    srv_table *table;
    srv_config cfg;
    size_t answer_bytes; /* SRV_ANSWER_BYTES, or a quarter of max_output when less */
    char *path;         /* the socket's, for messages (and removed at exit when bound) */
    srv_listener listen[SRV_MAX_LISTENERS]; /* readable while connections wait */
    size_t nlisten;
    bool bound;         /* corod bound the socket (else systemd passed it, and keeps it) */
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
    co_queue out_polls; /* srv_outread.poll_node: `output` reads with a `wait` */
    size_t nconns;
    uid_t self_uid;
    /* The store (srv_durable.c). Output is held until what it could have seen is durable. */
    struct st_store *store; /* NULL: none, nothing is held */
    uint64_t durable;       /* every batch up to this one is committed */
    bool degraded;          /* the last commit failed: submits are refused until one succeeds */
    uv_timer_t store_retry; /* ... and the failed writes are tried again */
    uv_timer_t store_tick;  /* an idle writer's retention pass */
    co_queue held;          /* srv_conn.held_node: connections with output held */
    co_queue store_wait;    /* srv_conn.backlog_node: requests waiting for the batch to go */
    srv_pend *pend;         /* a ring of submits waiting for their commit, oldest first */
    size_t pend_head, pend_n, pend_cap;
    size_t store_reads;     /* srv_history.c's reads in flight: the store and *v wait for them */
    co_queue hist_wait;     /* srv_hist.wait_node: reads waiting for a commit to start */
    bool store_closing;     /* ... to close */
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
    /* Positions in the output counted from its first byte ever (out_base: what has been
     * dropped from the front of `out`). Up to out_ok may be written; what follows waits
     * for batch mark_seq (up to mark_at), then tail_seq (up to tail_at) to commit. */
    uint64_t out_base, out_ok, mark_at, mark_seq, tail_at, tail_seq;
    uint64_t need;      /* the newest batch what it packed since its last flush reported */
    co_queue held_node; /* in srv.held while some of its output is held */
    size_t npend;       /* entries of srv.pend naming it */
    co_queue waits; /* srv_wait.node */
    size_t nwaits;
    co_queue subs;  /* srv_sub.node */
    size_t nsubs;
    size_t watched; /* ids registered by its waits and subscriptions */
    size_t nall;    /* of its subscriptions, those with all: true */
    co_queue reads; /* srv_outread.node: `output` reads on the thread pool */
    co_queue hist;  /* srv_hist.node: reads of the store on the thread pool */
    co_queue sends; /* srv_sendreq.node: `send` writes into jobs' stdin */
    size_t nreads;  /* of the three */
    bool no_fault;  /* dispatching a request again after its records were read back */
    uint32_t next_sub;
    co_queue node;       /* in srv.conns */
    co_queue dirty_node; /* in srv.dirty while it has output to flush */
    co_queue backlog_node; /* in srv.backlog while requests wait for its next turn */
    bool closing;
    bool paused;       /* backpressure: not dispatching while its output is backed up */
    bool turn_pending; /* has a share coming in this turn's backlog run */
    bool store_waiting; /* in srv.store_wait: its requests wait for the store's batch */
    bool read_stopped; /* ... and its input buffer filled up meanwhile */
};

/* srv.c */
void srv_conn_mark(srv_conn *c); /* output was packed: flush it this turn */
void srv_conn_flush(srv_conn *c); /* write what may be written now */
void srv_store_resume(srv *v);    /* the commit went: the connections waiting for it go on */
void srv_maybe_free(srv *v);      /* after shutdown: once its handles and reads are done */
void srv_conn_open(srv *v, int fd); /* a connection accepted (srv_listen.c) */

/* srv_config.c: the connections' bounds from cfg, zeros as their defaults. */
void srv_conn_limits(srv *v, const srv_config *cfg);

/* srv_listen.c. The listening sockets: cfg.listen_fds when given, else one bound at
 * cfg.socket_path with `mode`. 0, or a negative errno with a sentence in errbuf. */
int srv_listen_open(srv *v, int mode, char *errbuf, size_t errlen);
/* Stops listening: the socket file goes if corod bound it. Returns how many handles will
 * call `done`. */
size_t srv_listen_close(srv *v, uv_close_cb done);
/* Reserve room to watch n more ids; false (after a quota_exceeded reply) past the cap. */
bool srv_conn_watch(srv_conn *c, const cp_request *rq, size_t n);
void srv_conn_close(srv_conn *c);
/* Dispatch again if it was paused and is no longer backed up. */
void srv_maybe_resume(srv_conn *c);
void srv_reply_error(srv_conn *c, const cp_request *rq, const cp_error *err);

/* srv_durable.c */
int srv_durable_init(srv *v, struct st_store *st);
void srv_durable_close(srv *v); /* shutdown: waits for what is being committed */
/* The store closes once the reads of it in flight are done (srv_history.c). */
void srv_durable_reads_done(srv *v);
/* Submits are refused while the store cannot save them: true after such an answer. */
bool srv_durable_refuse(srv_conn *c, const cp_request *rq);
/* Answer a submit whose record was made; it starts once its insert is durable. */
void srv_durable_submit(srv_conn *c, uint32_t msgid, srv_rec *r);
/* A record made for c's request, whose answer (packed from `at` on, absolute, or
 * SRV_NO_ANSWER for a record another one's pend carries) waits for its insert; if that
 * fails the answer becomes `unavailable` and the record goes. */
#define SRV_NO_ANSWER UINT64_MAX
void srv_durable_created(srv_conn *c, srv_rec *r, uint64_t at, uint32_t msgid);
/* Hand the batch over, then hold what c packed since until what it reports is durable. */
void srv_durable_kick(srv *v);
void srv_durable_tag(srv_conn *c);
/* What c is packing reports a change in batch seq: it goes once that is durable. */
static inline void srv_conn_saw(srv_conn *c, uint64_t seq)
{
    if (seq > c->need)
        c->need = seq;
}
/* ... every change made so far (an answer that sums up many records). */
void srv_conn_saw_all(srv_conn *c);
/* A record into c's output, held until what it shows is durable. */
static inline void srv_conn_pack_rec(srv_conn *c, const srv_rec *r, bool omit_outcome)
{
    srv_conn_saw(c, srv_rec_seq(r));
    srv_rec_pack(&c->out, r, omit_outcome);
}
/* The open batch is full: c's requests wait for the commit under way (true: c was
 * queued for it; srv_on_commit gives it its turn back). */
bool srv_durable_wait(srv_conn *c);
/* Bytes of c's output that may be written now (from out_sent on). */
size_t srv_conn_sendable(const srv_conn *c);
void srv_durable_conn_closed(srv_conn *c);

/* srv_history.c */
void srv_list(srv_conn *c, const cp_request *rq);
void srv_spec(srv_conn *c, const cp_request *rq);
void srv_clean(srv_conn *c, const cp_request *rq);
void srv_restart(srv_conn *c, const cp_request *rq);
/* Some of ids are of records in the store only: read back, then rq is dispatched again
 * (true: deferred, nothing answered yet). False: none is, or it cannot be done now. */
bool srv_fault(srv_conn *c, const cp_request *rq, const uint64_t *ids, size_t n);
void srv_history_conn_closed(srv_conn *c);
/* Reads waiting for a commit go on (all: shutdown, whatever they waited for). */
void srv_history_committed(srv *v, bool all);

/* srv_restore.c: the table as the store left it (before serving). 0, or an error for
 * the operator in errbuf. */
int srv_restore(srv *v, struct st_store *st, char *errbuf, size_t errlen);

/* srv_methods.c */
/* The record named by params.id as the connection may see it, or an error reply and NULL. */
srv_rec *srv_lookup(srv_conn *c, const cp_request *rq);
void srv_dispatch(srv_conn *c, const cp_request *rq);

/* srv_output.c */
void srv_output(srv_conn *c, const cp_request *rq);
void srv_output_conn_closed(srv_conn *c);
/* srv_send.c */
void srv_send(srv_conn *c, const cp_request *rq);
void srv_send_conn_closed(srv_conn *c);
/* Task `id` wrote output, or ended: its parked long-polls read again. */
void srv_output_wake(srv *v, uint64_t id);

/* srv_watch.c */
void srv_wait_start(srv_conn *c, const cp_request *rq);
void srv_subscribe(srv_conn *c, const cp_request *rq);
void srv_unsubscribe(srv_conn *c, const cp_request *rq);
void srv_watch_conn_closed(srv_conn *c);
void srv_watch_shutdown(srv_conn *c); /* answer pending waits with shutting_down */
void srv_watch_on_finish(srv_rec *r, void *arg);

#endif
