/* srv: the daemon's socket server — listener, connections, method dispatch, waits and
 * subscriptions — on top of the task table. */
#ifndef SRV_H
#define SRV_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "co.h"
#include "ex_limits.h"
#include "srv_table.h"

#define SRV_MAX_CONNECTIONS 1024u          /* open connections at once (root's aside) */
#define SRV_MAX_UID_CONNECTIONS 128u       /* open connections of one uid (root's aside) */
#define SRV_UID_BUFFERS (128u * 1024u * 1024u) /* input and output buffered for one uid */
#define SRV_MESSAGE_TIMEOUT 30.0           /* seconds a message may take to arrive whole */
#define SRV_TURN_MESSAGES 256u             /* requests of one connection served per loop turn */
#define SRV_MAX_OUTPUT (32u * 1024u * 1024u) /* unsent bytes before a client is dropped */
#define SRV_MAX_WAITS_PER_CONN 1024u       /* deferred `wait`s in flight on a connection */
#define SRV_MAX_SUBS_PER_CONN 1024u        /* subscriptions of a connection */
#define SRV_MAX_ALL_SUBS_PER_CONN 8u       /* of them, with all: true (walked at every task end) */
#define SRV_MAX_WAIT_IDS 65536u            /* ids in one wait or subscribe */
#define SRV_MAX_WATCHED_PER_CONN 262144u   /* ids watched at once by a connection's waits and subscriptions */
#define SRV_MAX_READS_PER_CONN 4u          /* `output` reads in flight on a connection */
#define SRV_OUTPUT_DEFAULT 65536u          /* bytes `output` returns without a max */
#define SRV_OUTPUT_MAX (4u * 1024u * 1024u) /* bytes one `output` call returns at most */
#define SRV_OUTPUT_WAIT_MAX 60.0           /* seconds an `output` may wait for bytes */
#define SRV_SEND_MAX (64u * 1024u)          /* bytes one `send` writes into a job's stdin (a pipe's worth) */
#define SRV_MAX_GROUP_USERS 1024u         /* uids a configured group may name in `users` */
#define SRV_LIST_DEFAULT 1000u             /* records `list` returns without a limit */
#define SRV_LIST_MAX 100000u
#define SRV_LIST_SCAN 100000u              /* records one `list` looks at, matching or not */
/* Bytes of records an answer holds before it stops (`list`: a page ends) or packs the rest
 * without results and errors (`wait`); a quarter of max_output when that is less. A record
 * may hold a result of --max-result bytes (at most a quarter of max_output), so an answer
 * stays under this plus one such record. */
#define SRV_ANSWER_BYTES (8u * 1024u * 1024u)

#define SRV_MAX_LISTENERS 8u /* listening sockets one daemon serves */

typedef struct srv_config {
    const char *socket_path;
    /* Listening sockets systemd passed (socket activation): served instead of binding
     * socket_path, and left in place at exit (the unit owns them). */
    const int *listen_fds;
    size_t nlisten;
    int socket_mode;        /* -1: 0666 for a root daemon, 0600 otherwise */
    size_t max_connections; /* 0: SRV_MAX_CONNECTIONS */
    size_t max_uid_connections; /* 0: SRV_MAX_UID_CONNECTIONS */
    size_t max_uid_buffers; /* 0: SRV_UID_BUFFERS */
    double message_timeout; /* 0: SRV_MESSAGE_TIMEOUT */
    size_t max_message;     /* 0: CP_MAX_MESSAGE_DEFAULT */
    size_t max_output;      /* 0: SRV_MAX_OUTPUT */
    srv_limits limits;
    /* The store (st_store.h), opened: the server restores the table from it, writes every
     * change to it, and closes it at shutdown. NULL: nothing outlives the daemon. */
    struct st_store *store;
} srv_config;

typedef struct srv srv;

/* Binds the socket and starts serving. On failure returns a negative errno and writes a
 * sentence for the operator into errbuf. */
int srv_new(uv_loop_t *loop, co_sched *s, const srv_config *cfg, srv **out, char *errbuf, size_t errlen);
/* A group as the configuration file sets it; what is not given stays as it is. */
typedef struct srv_group_conf {
    const char *name;
    bool has_parallel, has_paused, has_priority, has_users;
    uint32_t parallel; /* 0: no bound */
    bool paused;
    int64_t priority;  /* of its tasks that give none */
    const uint32_t *users; /* who may submit to it; nusers == 0 with has_users: everyone */
    size_t nusers;
    ex_limits limits;  /* its jobs' limits where a job gives none; unset fields stay as they are */
    bool has_executor;
    struct ex_slurm *slurm; /* has_executor: its Slurm settings, or NULL to run jobs here */
} srv_group_conf;

/* Makes or changes a group (it stays, as one made by set_group). 0, or -EINVAL / -ENOMEM
 * with a sentence in err. */
int srv_configure_group(srv *v, const srv_group_conf *gc, char *err, size_t errlen);
/* A reload: the bounds that may change while it runs are taken from cfg — the
 * connections' (max_connections, max_uid_connections, max_uid_buffers, message_timeout)
 * and the table's (srv_table_set_limits); the rest is kept. */
void srv_reconfigure(srv *v, const srv_config *cfg);

/* Where it listens, for messages. */
void srv_where(const srv *v, char *buf, size_t len);
/* One line for the service manager's STATUS=: what runs, waits and is paused, and who is
 * connected (sy_status_fn). */
void srv_status(char *buf, size_t len, void *v);
/* Stops accepting (the socket file goes), answers requests with shutting_down, closes
 * every connection after its pending output, ends every task, and frees the server once
 * its handles are closed. */
void srv_shutdown(srv *v);

#endif
