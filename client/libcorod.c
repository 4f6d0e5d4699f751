/* libcorod.c: the client library. One blocking socket; a call packs its request, writes
 * it, and reads until its response arrives, queueing any `task.done` notifications met on
 * the way for the next corod_dispatch. Messages are read as the daemon reads them
 * (cp_next: bounded by COROD_MAX_MESSAGE), into a zone the client keeps and clears for
 * each message. */
#include "corod/client.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "corod_internal.h"
#include "cp_decode.h"
#include "cp_msg.h"

#define COROD_READ_CHUNK (64u * 1024u)
/* What a client accepts from the daemon: a reply over this (or not MessagePack) is a
 * stream error, -EPROTO, not an allocation on the daemon's say-so. */
#define COROD_MAX_MESSAGE (64u * 1024u * 1024u)

typedef struct corod_note {
    uint32_t sub;
    corod_task *task;
    struct corod_note *next;
} corod_note;

struct corod_client {
    int fd;
    uint32_t next_msgid;
    uint8_t *in;
    size_t in_len, in_cap, in_off;
    cp_frame frame;
    msgpack_zone zone;  /* the current message's objects */
    msgpack_object msg; /* the current message: valid until the next one is read */
    char code[64];
    char message[512];
    corod_done_fn on_done;
    void *on_done_arg;
    corod_note *nhead, *ntail;
    void *uv; /* corod_uv's attachment */
    void (*uv_kick)(corod_client *c);
    int cancel_fd; /* readable: a blocking call gives up with -EINTR (-1: none) */
};

void **corod__uv_slot(corod_client *c) { return &c->uv; }
void corod__uv_set_kick(corod_client *c, void (*kick)(corod_client *c)) { c->uv_kick = kick; }

int corod_pending(const corod_client *c)
{
    int n = 0;
    for (const corod_note *note = c->nhead; note; note = note->next)
        n++;
    /* Bytes read but not yet parsed may hold more: say so, dispatch will tell. */
    return n ? n : c->in_off < c->in_len;
}

/* ---- records ---- */

static char *corod_strdup_obj(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return NULL;
    return strndup(o->via.str.ptr, o->via.str.size);
}

static int corod_repack(const msgpack_object *o, void **out, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
    *len = sb.size;
    *out = msgpack_sbuffer_release(&sb);
    return *out ? 0 : -ENOMEM;
}

static corod_task *corod_task_decode(const msgpack_object *m)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    corod_task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    const msgpack_object *o;
    if ((o = cp_get(m, "id")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        t->id = o->via.u64;
    if ((o = cp_get(m, "owner_uid")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        t->owner_uid = (uint32_t)o->via.u64;
    if ((o = cp_get(m, "attempts")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        t->attempts = (uint32_t)o->via.u64;
    if ((o = cp_get(m, "restarted_from")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        t->restarted_from = o->via.u64;
    t->kind = corod_strdup_obj(cp_get(m, "kind"));
    t->name = corod_strdup_obj(cp_get(m, "name"));
    t->group = corod_strdup_obj(cp_get(m, "group"));
    t->state = corod_strdup_obj(cp_get(m, "state"));
    t->command = corod_strdup_obj(cp_get(m, "command"));
    if ((o = cp_get(m, "argv")) && o->type == MSGPACK_OBJECT_ARRAY && corod_repack(o, &t->argv, &t->argv_len) < 0) {
        corod_task_free(t);
        return NULL;
    }
    if ((o = cp_get(m, "waiting")) && o->type == MSGPACK_OBJECT_MAP &&
        corod_repack(o, &t->waiting, &t->waiting_len) < 0) {
        corod_task_free(t);
        return NULL;
    }
    if ((o = cp_get(m, "slurm")) && o->type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *j = cp_get(o, "job");
        if (j && j->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            t->slurm_job = j->via.u64;
        t->slurm_nodes = corod_strdup_obj(cp_get(o, "nodes"));
    }
    t->created_at = cp_num(cp_get(m, "created_at"));
    t->started_at = cp_num(cp_get(m, "started_at"));
    t->finished_at = cp_num(cp_get(m, "finished_at"));
    /* result may legitimately be nil: look at the key, not at cp_get's nil-as-absent. */
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 6 &&
            !memcmp(kv->key.via.str.ptr, "result", 6))
            corod_repack(&kv->val, &t->result, &t->result_len);
    }
    if ((o = cp_get(m, "error"))) {
        corod_repack(o, &t->error, &t->error_len);
        t->error_code = corod_strdup_obj(cp_get(o, "code"));
        t->error_message = corod_strdup_obj(cp_get(o, "message"));
    }
    if (!t->kind || !t->state) {
        corod_task_free(t);
        return NULL;
    }
    return t;
}

void corod_task_free(corod_task *t)
{
    if (!t)
        return;
    free(t->kind), free(t->name), free(t->group), free(t->state);
    free(t->result), free(t->error), free(t->error_code), free(t->error_message);
    free(t->command);
    free(t->argv), free(t->waiting), free(t->slurm_nodes);
    free(t);
}

void corod_tasks_free(corod_task **tasks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        corod_task_free(tasks[i]);
    free(tasks);
}

/* ---- connection ---- */

int corod_default_socket(char *buf, size_t len)
{
    const char *env = getenv("CORO_SOCKET");
    int n;
    if (env && *env)
        n = snprintf(buf, len, "%s", env);
    else if (geteuid() == 0)
        n = snprintf(buf, len, "/run/corod/corod.sock");
    else {
        const char *rt = getenv("XDG_RUNTIME_DIR");
        if (!rt || !*rt)
            return -ENOENT;
        n = snprintf(buf, len, "%s/corod/corod.sock", rt);
    }
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int corod_connect(const char *path, corod_client **out)
{
    char def[256];
    if (!path) {
        int rc = corod_default_socket(def, sizeof def);
        if (rc < 0)
            return rc;
        path = def;
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    corod_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    if (!msgpack_zone_init(&c->zone, MSGPACK_ZONE_CHUNK_SIZE)) {
        free(c);
        close(fd);
        return -ENOMEM;
    }
    c->fd = fd;
    c->cancel_fd = -1;
    c->next_msgid = 1;
    cp_frame_init(&c->frame, COROD_MAX_MESSAGE);
    *out = c;
    return 0;
}

void corod_close(corod_client *c)
{
    if (!c)
        return;
    while (c->nhead) {
        corod_note *n = c->nhead;
        c->nhead = n->next;
        corod_task_free(n->task);
        free(n);
    }
    close(c->fd);
    free(c->in);
    msgpack_zone_destroy(&c->zone);
    free(c);
}

const char *corod_error_code(const corod_client *c) { return c->code; }
const char *corod_error_message(const corod_client *c) { return c->message; }
int corod_fd(const corod_client *c) { return c->fd; }

void corod_on_done(corod_client *c, corod_done_fn fn, void *arg)
{
    c->on_done = fn;
    c->on_done_arg = arg;
}

static int corod_write_all(corod_client *c, const char *p, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* non-blocking since a libuv poll took the fd */
                struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
                poll(&pf, 1, -1);
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read more bytes: blocking, or not (then -EAGAIN when there are none). */
static int corod_fill(corod_client *c, bool block)
{
    if (c->in_off) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_cap - c->in_len < COROD_READ_CHUNK) {
        size_t ncap = c->in_cap ? c->in_cap * 2 : COROD_READ_CHUNK * 2;
        uint8_t *n = realloc(c->in, ncap);
        if (!n)
            return -ENOMEM;
        c->in = n;
        c->in_cap = ncap;
    }
    for (;;) {
        if (block && c->cancel_fd >= 0) { /* wait for the daemon or for the caller's fd */
            struct pollfd pf[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = c->cancel_fd, .events = POLLIN } };
            if (poll(pf, 2, -1) < 0 && errno != EINTR)
                return -errno;
            if (pf[1].revents)
                return -EINTR;
            if (!pf[0].revents)
                continue;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, block ? 0 : MSG_DONTWAIT);
        if (n > 0) {
            c->in_len += (size_t)n;
            return 0;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN && block) {
            struct pollfd pf = { .fd = c->fd, .events = POLLIN };
            poll(&pf, 1, -1);
            continue;
        }
        return errno == EAGAIN ? -EAGAIN : -errno;
    }
}

/* The next complete message into *m (valid until the next call); 0 when none is
 * buffered; < 0 on a stream error. */
static int corod_next(corod_client *c, const msgpack_object **m)
{
    msgpack_zone_clear(&c->zone);
    if (c->in_off == c->in_len)
        return 0;
    size_t used;
    int rc = cp_next(&c->frame, c->in + c->in_off, c->in_len - c->in_off, &c->zone, &c->msg, &used);
    c->in_off += used;
    if (rc < 0)
        return rc == -ENOMEM ? -ENOMEM : -EPROTO;
    if (rc == 1)
        *m = &c->msg;
    return rc;
}

static void corod_queue_note(corod_client *c, const cp_incoming *in)
{
    if (!cp_str_eq(in->method, "task.done"))
        return;
    const msgpack_object *sub = cp_get(in->params, "sub");
    corod_note *n = calloc(1, sizeof *n);
    if (!n)
        return;
    n->sub = sub && sub->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (uint32_t)sub->via.u64 : 0;
    n->task = corod_task_decode(cp_get(in->params, "task"));
    if (!n->task) {
        free(n);
        return;
    }
    if (c->ntail)
        c->ntail->next = n;
    else
        c->nhead = n;
    c->ntail = n;
}

/* Send a request and wait for its response. On success *result points at its result,
 * valid until the client reads its next message. */
static int corod_rpc_once(corod_client *c, const char *method, const void *params, size_t plen,
                     const msgpack_object **result)
{
    c->code[0] = c->message[0] = '\0';
    uint32_t msgid = c->next_msgid++;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, msgid);
    cp_pack_str(&pk, method);
    if (params) {
        msgpack_pack_array(&pk, 1);
        cp_pack_raw(&pk, params, plen);
    } else {
        msgpack_pack_array(&pk, 0);
    }
    int rc = corod_write_all(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (rc < 0)
        return rc;
    for (;;) {
        const msgpack_object *msg;
        while ((rc = corod_next(c, &msg)) == 1) {
            cp_incoming in;
            cp_error err;
            if (cp_incoming_parse(msg, &in, &err) < 0)
                continue;
            if (in.type == CP_NOTIFICATION) {
                corod_queue_note(c, &in);
                continue;
            }
            if (in.msgid != msgid)
                continue;
            if (in.error->type != MSGPACK_OBJECT_NIL) {
                const msgpack_object *code = cp_get(in.error, "code"), *m = cp_get(in.error, "message");
                snprintf(c->code, sizeof c->code, "%.*s", code && code->type == MSGPACK_OBJECT_STR ? (int)code->via.str.size : 8,
                         code && code->type == MSGPACK_OBJECT_STR ? code->via.str.ptr : "internal");
                snprintf(c->message, sizeof c->message, "%.*s", m && m->type == MSGPACK_OBJECT_STR ? (int)m->via.str.size : 0,
                         m && m->type == MSGPACK_OBJECT_STR ? m->via.str.ptr : "");
                return COROD_EREMOTE;
            }
            *result = in.result;
            return 0;
        }
        if (rc < 0 || (rc = corod_fill(c, true)) < 0)
            return rc;
    }
}

/* One call; notifications it read past on its way to the answer wait for corod_dispatch,
 * and a client on a libuv loop is told to dispatch them (its fd will not say so). */
static int corod_rpc(corod_client *c, const char *method, const void *params, size_t plen,
                     const msgpack_object **result)
{
    int rc = corod_rpc_once(c, method, params, plen, result);
    if (c->uv && c->uv_kick && corod_pending(c))
        c->uv_kick(c);
    return rc;
}

int corod_call(corod_client *c, const char *method, const void *params, size_t params_len, void **result,
               size_t *result_len)
{
    const msgpack_object *res;
    int rc = corod_rpc(c, method, params, params_len, &res);
    if (rc < 0)
        return rc;
    return result ? corod_repack(res, result, result_len) : 0;
}

int corod_dispatch(corod_client *c)
{
    int ran = 0, rc;
    for (;;) {
        const msgpack_object *m;
        while ((rc = corod_next(c, &m)) == 1) {
            cp_incoming in;
            cp_error err;
            if (cp_incoming_parse(m, &in, &err) == 0 && in.type == CP_NOTIFICATION)
                corod_queue_note(c, &in);
        }
        if (rc < 0)
            break;
        rc = corod_fill(c, false);
        if (rc == -EAGAIN) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
    }
    while (c->nhead) {
        corod_note *n = c->nhead;
        c->nhead = n->next;
        if (!c->nhead)
            c->ntail = NULL;
        if (c->on_done)
            c->on_done(c, n->sub, n->task, c->on_done_arg);
        corod_task_free(n->task);
        free(n);
        ran++;
    }
    return rc < 0 ? rc : ran;
}

/* ---- typed calls ---- */

typedef struct corod_params {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} corod_params;

static void corod_params_begin(corod_params *p, uint32_t nfields)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&p->pk, nfields);
}

static void corod_pack_ids(msgpack_packer *pk, const char *key, const uint64_t *ids, size_t n)
{
    cp_pack_str(pk, key);
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(pk, ids[i]);
}

/* Call with the packed params, then let `take` read the result. */
static int corod_do(corod_client *c, const char *method, corod_params *p,
                    int (*take)(const msgpack_object *res, void *ctx), void *ctx)
{
    const msgpack_object *res;
    int rc = corod_rpc(c, method, p ? p->sb.data : NULL, p ? p->sb.size : 0, &res);
    if (p)
        msgpack_sbuffer_destroy(&p->sb);
    if (rc < 0)
        return rc;
    return take ? take(res, ctx) : 0;
}

static int take_uint(const msgpack_object *res, const char *key, uint64_t *out)
{
    const msgpack_object *o = cp_get(res, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -EPROTO;
    *out = o->via.u64;
    return 0;
}

typedef struct hello_ctx {
    uint32_t *protocol, *pid;
} hello_ctx;

static int take_hello(const msgpack_object *res, void *ctx)
{
    hello_ctx *h = ctx;
    uint64_t proto, pid;
    if (take_uint(res, "protocol", &proto) < 0 || take_uint(res, "pid", &pid) < 0)
        return -EPROTO;
    if (h->protocol)
        *h->protocol = (uint32_t)proto;
    if (h->pid)
        *h->pid = (uint32_t)pid;
    return 0;
}

int corod_hello(corod_client *c, const char *client_name, uint32_t *protocol, uint32_t *pid)
{
    corod_params p;
    corod_params_begin(&p, client_name ? 1 : 0);
    if (client_name)
        cp_pack_str(&p.pk, "client"), cp_pack_str(&p.pk, client_name);
    hello_ctx h = { protocol, pid };
    return corod_do(c, "hello", &p, take_hello, &h);
}

static int take_id(const msgpack_object *res, void *ctx)
{
    return take_uint(res, "id", ctx);
}

int corod_submit(corod_client *c, const corod_spec *s, uint64_t *id)
{
    if (!s || !s->kind)
        return -EINVAL;
    uint32_t n = 1 + (s->args != NULL) + (s->name != NULL) + (s->group != NULL) + (s->priority != 0) +
                 (s->n_after > 0) + (s->delay > 0) + (s->timeout > 0) + (s->retries > 0) +
                 (s->retry_delay > 0) + s->shield;
    corod_params p;
    corod_params_begin(&p, n);
    msgpack_packer *pk = &p.pk;
    cp_pack_str(pk, "kind"), cp_pack_str(pk, s->kind);
    if (s->args)
        cp_pack_str(pk, "args"), cp_pack_raw(pk, s->args, s->args_len);
    if (s->name)
        cp_pack_str(pk, "name"), cp_pack_str(pk, s->name);
    if (s->group)
        cp_pack_str(pk, "group"), cp_pack_str(pk, s->group);
    if (s->priority)
        cp_pack_str(pk, "priority"), msgpack_pack_int64(pk, s->priority);
    if (s->n_after)
        corod_pack_ids(pk, "after", s->after, s->n_after);
    if (s->delay > 0)
        cp_pack_str(pk, "delay"), msgpack_pack_double(pk, s->delay);
    if (s->timeout > 0)
        cp_pack_str(pk, "timeout"), msgpack_pack_double(pk, s->timeout);
    if (s->retries)
        cp_pack_str(pk, "retries"), msgpack_pack_uint32(pk, s->retries);
    if (s->retry_delay > 0)
        cp_pack_str(pk, "retry_delay"), msgpack_pack_double(pk, s->retry_delay);
    if (s->shield)
        cp_pack_str(pk, "shield"), msgpack_pack_true(pk);
    return corod_do(c, "submit", &p, take_id, id);
}

static int corod_submit_args(corod_client *c, const char *kind, msgpack_sbuffer *args, const corod_spec *opts,
                             uint64_t *id)
{
    corod_spec s = opts ? *opts : (corod_spec){ 0 };
    s.kind = kind;
    s.args = args->data;
    s.args_len = args->size;
    int rc = corod_submit(c, &s, id);
    msgpack_sbuffer_destroy(args);
    return rc;
}

int corod_submit_sleep(corod_client *c, double seconds, const void *result, size_t result_len,
                       const corod_spec *opts, uint64_t *id)
{
    corod_params a;
    corod_params_begin(&a, result ? 2 : 1);
    cp_pack_str(&a.pk, "seconds"), msgpack_pack_double(&a.pk, seconds);
    if (result)
        cp_pack_str(&a.pk, "result"), cp_pack_raw(&a.pk, result, result_len);
    return corod_submit_args(c, "sleep", &a.sb, opts, id);
}

int corod_submit_gather(corod_client *c, const uint64_t *ids, size_t n, bool return_exceptions,
                        const corod_spec *opts, uint64_t *id)
{
    corod_params a;
    corod_params_begin(&a, return_exceptions ? 2 : 1);
    corod_pack_ids(&a.pk, "ids", ids, n);
    if (return_exceptions)
        cp_pack_str(&a.pk, "return_exceptions"), msgpack_pack_true(&a.pk);
    return corod_submit_args(c, "gather", &a.sb, opts, id);
}

int corod_submit_exec(corod_client *c, const corod_exec *ex, const corod_spec *opts, uint64_t *id)
{
    if (!ex || !ex->argv || !ex->argv[0])
        return -EINVAL;
    size_t argc = 0;
    while (ex->argv[argc])
        argc++;
    corod_params a;
    corod_params_begin(&a, 1 + (ex->env != NULL) + (ex->cwd != NULL) + (ex->stdin_data != NULL) + ex->stdin_pipe +
                               (ex->grace > 0) + (ex->output_limit > 0) + (ex->memory_max > 0) +
                               (ex->pids_max > 0) + (ex->cpu_weight > 0) + (ex->cpu_quota > 0) +
                               ex->set_umask + (ex->nrlimits > 0) +
                               (ex->slurm_cpus > 0 || ex->slurm_memory > 0 || ex->slurm_time > 0));
    cp_pack_str(&a.pk, "argv");
    msgpack_pack_array(&a.pk, (uint32_t)argc);
    for (size_t i = 0; i < argc; i++)
        cp_pack_str(&a.pk, ex->argv[i]);
    if (ex->env) {
        size_t n = 0;
        for (char *const *e = ex->env; *e; e++)
            n += strchr(*e, '=') != NULL;
        cp_pack_str(&a.pk, "env");
        msgpack_pack_map(&a.pk, (uint32_t)n);
        for (char *const *e = ex->env; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (!eq)
                continue;
            cp_pack_strn(&a.pk, *e, (size_t)(eq - *e));
            cp_pack_str(&a.pk, eq + 1);
        }
    }
    if (ex->cwd)
        cp_pack_str(&a.pk, "cwd"), cp_pack_str(&a.pk, ex->cwd);
    if (ex->stdin_data) {
        cp_pack_str(&a.pk, "stdin");
        msgpack_pack_bin(&a.pk, ex->stdin_len);
        msgpack_pack_bin_body(&a.pk, ex->stdin_data, ex->stdin_len);
    }
    if (ex->stdin_pipe)
        cp_pack_str(&a.pk, "stdin_pipe"), msgpack_pack_true(&a.pk);
    if (ex->grace > 0)
        cp_pack_str(&a.pk, "grace"), msgpack_pack_double(&a.pk, ex->grace);
    if (ex->output_limit > 0)
        cp_pack_str(&a.pk, "output_limit"), msgpack_pack_uint64(&a.pk, ex->output_limit);
    if (ex->memory_max > 0)
        cp_pack_str(&a.pk, "memory_max"), msgpack_pack_uint64(&a.pk, ex->memory_max);
    if (ex->pids_max > 0)
        cp_pack_str(&a.pk, "pids_max"), msgpack_pack_uint64(&a.pk, ex->pids_max);
    if (ex->cpu_weight > 0)
        cp_pack_str(&a.pk, "cpu_weight"), msgpack_pack_uint32(&a.pk, ex->cpu_weight);
    if (ex->cpu_quota > 0)
        cp_pack_str(&a.pk, "cpu_quota"), msgpack_pack_double(&a.pk, ex->cpu_quota);
    if (ex->set_umask)
        cp_pack_str(&a.pk, "umask"), msgpack_pack_uint32(&a.pk, ex->umask);
    if (ex->nrlimits > 0) {
        cp_pack_str(&a.pk, "rlimits");
        msgpack_pack_map(&a.pk, (uint32_t)ex->nrlimits);
        for (size_t i = 0; i < ex->nrlimits; i++) {
            const corod_rlimit *r = &ex->rlimits[i];
            cp_pack_str(&a.pk, r->name);
            msgpack_pack_array(&a.pk, 2);
            for (int k = 0; k < 2; k++) {
                uint64_t v = k ? r->hard : r->soft;
                if (v == COROD_RLIM_INFINITY)
                    cp_pack_str(&a.pk, "infinity");
                else
                    msgpack_pack_uint64(&a.pk, v);
            }
        }
    }
    if (ex->slurm_cpus > 0 || ex->slurm_memory > 0 || ex->slurm_time > 0) {
        cp_pack_str(&a.pk, "slurm");
        msgpack_pack_map(&a.pk, (ex->slurm_cpus > 0) + (ex->slurm_memory > 0) + (ex->slurm_time > 0));
        if (ex->slurm_cpus > 0)
            cp_pack_str(&a.pk, "cpus"), msgpack_pack_uint32(&a.pk, ex->slurm_cpus);
        if (ex->slurm_memory > 0)
            cp_pack_str(&a.pk, "memory"), msgpack_pack_uint64(&a.pk, ex->slurm_memory);
        if (ex->slurm_time > 0)
            cp_pack_str(&a.pk, "time"), msgpack_pack_double(&a.pk, ex->slurm_time);
    }
    return corod_submit_args(c, "exec", &a.sb, opts, id);
}

typedef struct output_ctx {
    void **data;
    size_t *len;
    uint64_t *next;
    bool *eof;
} output_ctx;

static int take_output(const msgpack_object *res, void *ctx)
{
    output_ctx *o = ctx;
    const msgpack_object *d = cp_get(res, "data"), *e = cp_get(res, "eof");
    uint64_t next;
    if (!d || d->type != MSGPACK_OBJECT_BIN || !e || e->type != MSGPACK_OBJECT_BOOLEAN ||
        take_uint(res, "next", &next) < 0)
        return -EPROTO;
    void *copy = malloc(d->via.bin.size ? d->via.bin.size : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, d->via.bin.ptr, d->via.bin.size);
    *o->data = copy;
    *o->len = d->via.bin.size;
    *o->next = next;
    *o->eof = e->via.boolean;
    return 0;
}

void corod_set_cancel_fd(corod_client *c, int fd)
{
    c->cancel_fd = fd;
}

int corod_output(corod_client *c, uint64_t id, int stream, uint64_t offset, uint32_t max, void **data,
                 size_t *len, uint64_t *next, bool *eof)
{
    return corod_output_wait(c, id, stream, offset, max, 0, data, len, next, eof);
}

int corod_output_wait(corod_client *c, uint64_t id, int stream, uint64_t offset, uint32_t max, double wait,
                      void **data, size_t *len, uint64_t *next, bool *eof)
{
    if (!(wait >= 0 && wait <= 60))
        return -EINVAL;
    corod_params p;
    corod_params_begin(&p, 3 + (max > 0) + (wait > 0));
    if (wait > 0)
        cp_pack_str(&p.pk, "wait"), msgpack_pack_double(&p.pk, wait);
    cp_pack_str(&p.pk, "id"), msgpack_pack_uint64(&p.pk, id);
    cp_pack_str(&p.pk, "stream"), cp_pack_str(&p.pk, stream == 2 ? "stderr" : "stdout");
    cp_pack_str(&p.pk, "offset"), msgpack_pack_uint64(&p.pk, offset);
    if (max)
        cp_pack_str(&p.pk, "max"), msgpack_pack_uint32(&p.pk, max);
    output_ctx o = { data, len, next, eof };
    return corod_do(c, "output", &p, take_output, &o);
}

static int take_cancelled(const msgpack_object *res, void *ctx)
{
    const msgpack_object *o = cp_get(res, "cancelled");
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return -EPROTO;
    if (ctx)
        *(bool *)ctx = o->via.boolean;
    return 0;
}

int corod_cancel(corod_client *c, uint64_t id, const char *message, bool *cancelled)
{
    corod_params p;
    corod_params_begin(&p, message ? 2 : 1);
    cp_pack_str(&p.pk, "id"), msgpack_pack_uint64(&p.pk, id);
    if (message)
        cp_pack_str(&p.pk, "message"), cp_pack_str(&p.pk, message);
    return corod_do(c, "cancel", &p, take_cancelled, cancelled);
}

static int take_task(const msgpack_object *res, void *ctx)
{
    corod_task *t = corod_task_decode(res);
    if (!t)
        return -EPROTO;
    *(corod_task **)ctx = t;
    return 0;
}

int corod_get(corod_client *c, uint64_t id, corod_task **out)
{
    corod_params p;
    corod_params_begin(&p, 1);
    cp_pack_str(&p.pk, "id"), msgpack_pack_uint64(&p.pk, id);
    return corod_do(c, "get", &p, take_task, out);
}

typedef struct list_ctx {
    corod_task ***tasks;
    size_t *n;
    const char *key;
    uint64_t next; /* list: the cursor of the next page, 0 for none */
} list_ctx;

static int take_tasks(const msgpack_object *arr, corod_task ***tasks, size_t *n)
{
    *tasks = NULL;
    *n = 0;
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
        return -EPROTO;
    corod_task **v = calloc(arr->via.array.size ? arr->via.array.size : 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        if (!(v[i] = corod_task_decode(&arr->via.array.ptr[i]))) {
            corod_tasks_free(v, i);
            return -EPROTO;
        }
    }
    *tasks = v;
    *n = arr->via.array.size;
    return 0;
}

/* A page's task by id: a page is in id order, ascending or descending. */
static corod_task *find_task(corod_task **v, size_t n, uint64_t id)
{
    bool desc = n > 1 && v[0]->id > v[n - 1]->id;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid]->id == id)
            return v[mid];
        if ((v[mid]->id < id) != desc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int take_list(const msgpack_object *res, void *ctx)
{
    list_ctx *l = ctx;
    const msgpack_object *next = cp_get(res, "next");
    l->next = next && next->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? next->via.u64 : 0;
    int rc = take_tasks(cp_get(res, l->key), l->tasks, l->n);
    const msgpack_object *w = cp_get(res, "waiting");
    if (rc < 0 || !w || w->type != MSGPACK_OBJECT_ARRAY)
        return rc;
    for (uint32_t i = 0; i < w->via.array.size; i++) { /* why each pending task waits */
        const msgpack_object *m = &w->via.array.ptr[i], *id = cp_get(m, "id");
        corod_task *t = id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? find_task(*l->tasks, *l->n, id->via.u64)
                                                                          : NULL;
        if (t && !t->waiting && corod_repack(m, &t->waiting, &t->waiting_len) < 0) {
            corod_tasks_free(*l->tasks, *l->n);
            return -ENOMEM;
        }
    }
    return 0;
}

/* The most records one `list` request may ask for (PROTOCOL.md). */
#define COROD_LIST_PAGE_MAX 100000u

/* Pages (the daemon bounds each answer in bytes and in records looked at) until `limit`
 * records, or the daemon's default count, or the end. */
int corod_list(corod_client *c, const char *state, const char *group, uint32_t limit, corod_task ***tasks,
               size_t *n)
{
    corod_list_opts o = COROD_LIST_OPTS_INIT;
    o.state = state;
    o.group = group;
    o.limit = limit;
    return corod_list_opts_do(c, &o, tasks, n);
}

static void pack_opt_str(corod_params *p, const char *key, const char *v)
{
    if (v)
        cp_pack_str(&p->pk, key), cp_pack_str(&p->pk, v);
}

/* list's and clean's filters, `extra` more fields to come (the caller packs them). */
static void pack_filters(corod_params *p, const corod_list_opts *o, size_t extra)
{
    corod_params_begin(p, (o->state != NULL) + (o->group != NULL) + (o->kind != NULL) + (o->name != NULL) +
                              (o->owner >= 0) + (o->since >= 0) + (o->until >= 0) + o->newest_first + extra);
    pack_opt_str(p, "state", o->state);
    pack_opt_str(p, "group", o->group);
    pack_opt_str(p, "kind", o->kind);
    pack_opt_str(p, "name", o->name);
    if (o->owner >= 0)
        cp_pack_str(&p->pk, "owner"), msgpack_pack_uint64(&p->pk, (uint64_t)o->owner);
    if (o->since >= 0)
        cp_pack_str(&p->pk, "since"), msgpack_pack_double(&p->pk, o->since);
    if (o->until >= 0)
        cp_pack_str(&p->pk, "until"), msgpack_pack_double(&p->pk, o->until);
    if (o->newest_first)
        cp_pack_str(&p->pk, "order"), cp_pack_str(&p->pk, "desc");
}

typedef struct clean_ctx {
    uint64_t removed, next;
} clean_ctx;

static int take_clean(const msgpack_object *res, void *ctx)
{
    clean_ctx *k = ctx;
    const msgpack_object *r = cp_get(res, "removed"), *next = cp_get(res, "next");
    if (!r || r->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -EPROTO;
    k->removed += r->via.u64;
    k->next = next && next->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? next->via.u64 : 0;
    return 0;
}

int corod_clean(corod_client *c, const corod_list_opts *o, uint64_t *removed)
{
    clean_ctx k = { 0, 0 };
    uint64_t after = 0;
    int rc;
    do {
        corod_params p;
        pack_filters(&p, o, after > 0);
        if (after)
            cp_pack_str(&p.pk, "after"), msgpack_pack_uint64(&p.pk, after);
        if ((rc = corod_do(c, "clean", &p, take_clean, &k)) < 0)
            return rc;
        after = k.next;
    } while (after);
    *removed = k.removed;
    return 0;
}

typedef struct restart_ctx {
    uint64_t *ids;
    size_t n, failed, cap;
    uint64_t next;
} restart_ctx;

static int take_restart(const msgpack_object *res, void *ctx)
{
    restart_ctx *k = ctx;
    const msgpack_object *ids = cp_get(res, "ids"), *errs = cp_get(res, "errors"), *next = cp_get(res, "next");
    if (!ids || ids->type != MSGPACK_OBJECT_ARRAY || !errs || errs->type != MSGPACK_OBJECT_ARRAY)
        return -EPROTO;
    k->failed += errs->via.array.size;
    k->next = next && next->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? next->via.u64 : 0;
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        const msgpack_object *v = &ids->via.array.ptr[i];
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return -EPROTO;
        if (k->n == k->cap) {
            size_t ncap = k->cap ? k->cap * 2 : 64;
            uint64_t *grown = realloc(k->ids, ncap * sizeof *grown);
            if (!grown)
                return -ENOMEM;
            k->ids = grown;
            k->cap = ncap;
        }
        k->ids[k->n++] = v->via.u64;
    }
    return 0;
}

int corod_restart(corod_client *c, const uint64_t *ids, size_t n, const corod_list_opts *o, uint64_t **made,
                  size_t *nmade, size_t *failed)
{
    restart_ctx k = { 0 };
    uint64_t after = 0;
    int rc;
    do {
        corod_params p;
        if (n) {
            corod_params_begin(&p, 1);
            cp_pack_str(&p.pk, "ids");
            msgpack_pack_array(&p.pk, (uint32_t)n);
            for (size_t i = 0; i < n; i++)
                msgpack_pack_uint64(&p.pk, ids[i]);
        } else {
            pack_filters(&p, o, after > 0);
            if (after)
                cp_pack_str(&p.pk, "after"), msgpack_pack_uint64(&p.pk, after);
        }
        if ((rc = corod_do(c, "restart", &p, take_restart, &k)) < 0) {
            free(k.ids);
            return rc;
        }
        after = n ? 0 : k.next;
    } while (after);
    *made = k.ids ? k.ids : calloc(1, sizeof **made);
    *nmade = k.n;
    *failed = k.failed;
    return *made ? 0 : -ENOMEM;
}

int corod_list_page(corod_client *c, const corod_list_opts *o, uint64_t after, corod_task ***tasks, size_t *n,
                    uint64_t *next)
{
    uint64_t want = o->limit ? o->limit : COROD_LIST_DEFAULT;
    corod_params p;
    pack_filters(&p, o, 1 + (after > 0));
    cp_pack_str(&p.pk, "limit"), msgpack_pack_uint64(&p.pk, want < COROD_LIST_PAGE_MAX ? want : COROD_LIST_PAGE_MAX);
    if (after)
        cp_pack_str(&p.pk, "after"), msgpack_pack_uint64(&p.pk, after);
    list_ctx l = { tasks, n, "tasks", 0 };
    int rc = corod_do(c, "list", &p, take_list, &l);
    *next = rc < 0 ? 0 : l.next;
    return rc;
}

int corod_list_opts_do(corod_client *c, const corod_list_opts *o, corod_task ***tasks, size_t *n)
{
    corod_task **all = NULL;
    size_t nall = 0, want = o->limit ? o->limit : COROD_LIST_DEFAULT;
    uint64_t after = 0;
    int rc = 0;
    do {
        corod_task **page;
        size_t npage;
        corod_list_opts left = *o;
        left.limit = (uint32_t)(want - nall);
        if ((rc = corod_list_page(c, &left, after, &page, &npage, &after)) < 0)
            break;
        corod_task **grown = npage ? realloc(all, (nall + npage) * sizeof *all) : all;
        if (npage && !grown) {
            corod_tasks_free(page, npage);
            rc = -ENOMEM;
            break;
        }
        all = grown;
        if (npage) /* an empty page may be NULL: no memcpy from it (UBSan) */
            memcpy(all + nall, page, npage * sizeof *page);
        nall += npage;
        free(page);
    } while (after && nall < want);
    if (rc < 0) {
        corod_tasks_free(all, nall);
        return rc;
    }
    *tasks = all ? all : calloc(1, sizeof *all);
    *n = nall;
    return *tasks ? 0 : -ENOMEM;
}

typedef struct wait_ctx {
    corod_task ***done;
    size_t *ndone;
    uint64_t **pending;
    size_t *npending;
} wait_ctx;

static int take_wait(const msgpack_object *res, void *ctx)
{
    wait_ctx *w = ctx;
    int rc = take_tasks(cp_get(res, "done"), w->done, w->ndone);
    if (rc < 0)
        return rc;
    const msgpack_object *p = cp_get(res, "pending");
    *w->pending = NULL;
    *w->npending = 0;
    if (!p || p->type != MSGPACK_OBJECT_ARRAY)
        return 0;
    uint64_t *ids = calloc(p->via.array.size ? p->via.array.size : 1, sizeof *ids);
    if (!ids)
        return -ENOMEM;
    for (uint32_t i = 0; i < p->via.array.size; i++)
        ids[i] = p->via.array.ptr[i].via.u64;
    *w->pending = ids;
    *w->npending = p->via.array.size;
    return 0;
}

int corod_wait(corod_client *c, const uint64_t *ids, size_t n, const char *mode, double timeout,
               corod_task ***done, size_t *ndone, uint64_t **pending, size_t *npending)
{
    corod_params p;
    corod_params_begin(&p, 1 + (mode != NULL) + (timeout >= 0));
    corod_pack_ids(&p.pk, "ids", ids, n);
    if (mode)
        cp_pack_str(&p.pk, "mode"), cp_pack_str(&p.pk, mode);
    if (timeout >= 0)
        cp_pack_str(&p.pk, "timeout"), msgpack_pack_double(&p.pk, timeout);
    wait_ctx w = { done, ndone, pending, npending };
    return corod_do(c, "wait", &p, take_wait, &w);
}

static int take_sub(const msgpack_object *res, void *ctx)
{
    uint64_t v;
    int rc = take_uint(res, "sub", &v);
    if (rc == 0)
        *(uint32_t *)ctx = (uint32_t)v;
    return rc;
}

int corod_subscribe(corod_client *c, const uint64_t *ids, size_t n, bool all, uint32_t *sub)
{
    corod_params p;
    corod_params_begin(&p, (n > 0) + all);
    if (n)
        corod_pack_ids(&p.pk, "ids", ids, n);
    if (all)
        cp_pack_str(&p.pk, "all"), msgpack_pack_true(&p.pk);
    return corod_do(c, "subscribe", &p, take_sub, sub);
}

int corod_unsubscribe(corod_client *c, uint32_t sub)
{
    corod_params p;
    corod_params_begin(&p, 1);
    cp_pack_str(&p.pk, "sub"), msgpack_pack_uint32(&p.pk, sub);
    return corod_do(c, "unsubscribe", &p, NULL, NULL);
}

int corod_edit(corod_client *c, uint64_t id, const corod_edit_opts *e, corod_task **out)
{
    if (!e->name && !e->group && !e->set_priority && e->delay < 0)
        return -EINVAL;
    corod_params p;
    corod_params_begin(&p, 1 + (e->name != NULL) + (e->group != NULL) + e->set_priority + (e->delay >= 0));
    cp_pack_str(&p.pk, "id"), msgpack_pack_uint64(&p.pk, id);
    pack_opt_str(&p, "name", e->name);
    pack_opt_str(&p, "group", e->group);
    if (e->set_priority)
        cp_pack_str(&p.pk, "priority"), msgpack_pack_int64(&p.pk, e->priority);
    if (e->delay >= 0)
        cp_pack_str(&p.pk, "delay"), msgpack_pack_double(&p.pk, e->delay);
    corod_task *t = NULL;
    int rc = corod_do(c, "edit", &p, take_task, &t);
    if (out)
        *out = t;
    else
        corod_task_free(t);
    return rc;
}

static int take_written(const msgpack_object *res, void *ctx)
{
    const msgpack_object *w = cp_get(res, "written");
    if (!w || w->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -EPROTO;
    *(size_t *)ctx = (size_t)w->via.u64;
    return 0;
}

int corod_send(corod_client *c, uint64_t id, const void *data, size_t len, bool eof)
{
    if (len > COROD_SEND_MAX || (!len && !eof))
        return -EINVAL;
    corod_params p;
    corod_params_begin(&p, 1 + (len > 0) + eof);
    cp_pack_str(&p.pk, "id"), msgpack_pack_uint64(&p.pk, id);
    if (len) {
        cp_pack_str(&p.pk, "data");
        msgpack_pack_bin(&p.pk, len);
        msgpack_pack_bin_body(&p.pk, data, len);
    }
    if (eof)
        cp_pack_str(&p.pk, "eof"), msgpack_pack_true(&p.pk);
    size_t written = 0;
    return corod_do(c, "send", &p, take_written, &written);
}

int corod_signal(corod_client *c, uint64_t id, int sig)
{
    if (sig <= 0)
        return -EINVAL;
    corod_params p;
    corod_params_begin(&p, 2);
    cp_pack_str(&p.pk, "id"), msgpack_pack_uint64(&p.pk, id);
    cp_pack_str(&p.pk, "signal"), msgpack_pack_int(&p.pk, sig);
    return corod_do(c, "signal", &p, NULL, NULL);
}

static int corod_group_call(corod_client *c, const char *name, int64_t parallel, int paused, bool create)
{
    corod_params p;
    corod_params_begin(&p, 1 + (parallel >= 0) + (paused >= 0) + !create);
    cp_pack_str(&p.pk, "name"), cp_pack_str(&p.pk, name);
    if (parallel >= 0)
        cp_pack_str(&p.pk, "parallel"), msgpack_pack_int64(&p.pk, parallel);
    if (paused >= 0)
        cp_pack_str(&p.pk, "paused"), paused ? msgpack_pack_true(&p.pk) : msgpack_pack_false(&p.pk);
    if (!create)
        cp_pack_str(&p.pk, "create"), msgpack_pack_false(&p.pk);
    return corod_do(c, "set_group", &p, NULL, NULL);
}

int corod_set_group(corod_client *c, const char *name, int64_t parallel, int paused)
{
    return corod_group_call(c, name, parallel, paused, true);
}

int corod_change_group(corod_client *c, const char *name, int64_t parallel, int paused)
{
    return corod_group_call(c, name, parallel, paused, false);
}

int corod_set_executor(corod_client *c, const char *name, const corod_slurm *s)
{
    corod_params p;
    corod_params_begin(&p, 2 + (s != NULL));
    cp_pack_str(&p.pk, "name"), cp_pack_str(&p.pk, name);
    cp_pack_str(&p.pk, "executor"), cp_pack_str(&p.pk, s ? "slurm" : "local");
    if (!s)
        return corod_do(c, "set_group", &p, NULL, NULL);
    const char *keys[] = { "partition", "account", "qos", "conf" };
    const char *vals[] = { s->partition, s->account, s->qos, s->conf };
    uint32_t n = (s->cpus > 0) + (s->memory > 0) + (s->time > 0) + (s->nargs > 0);
    for (int i = 0; i < 4; i++)
        n += vals[i] != NULL;
    cp_pack_str(&p.pk, "slurm");
    msgpack_pack_map(&p.pk, n);
    for (int i = 0; i < 4; i++)
        if (vals[i])
            cp_pack_str(&p.pk, keys[i]), cp_pack_str(&p.pk, vals[i]);
    if (s->cpus > 0)
        cp_pack_str(&p.pk, "cpus"), msgpack_pack_uint32(&p.pk, s->cpus);
    if (s->memory > 0)
        cp_pack_str(&p.pk, "memory"), msgpack_pack_uint64(&p.pk, s->memory);
    if (s->time > 0)
        cp_pack_str(&p.pk, "time"), msgpack_pack_double(&p.pk, s->time);
    if (s->nargs > 0) {
        cp_pack_str(&p.pk, "args");
        msgpack_pack_array(&p.pk, (uint32_t)s->nargs);
        for (size_t i = 0; i < s->nargs; i++)
            cp_pack_str(&p.pk, s->args[i]);
    }
    return corod_do(c, "set_group", &p, NULL, NULL);
}

typedef struct executors_ctx {
    bool *slurm;
    char **why;
} executors_ctx;

static int take_executors(const msgpack_object *res, void *ctx)
{
    executors_ctx *x = ctx;
    const msgpack_object *e = cp_get(res, "executors"), *s = e ? cp_get(e, "slurm") : NULL,
                         *a = s ? cp_get(s, "available") : NULL;
    *x->slurm = a && a->type == MSGPACK_OBJECT_BOOLEAN && a->via.boolean;
    if (x->why)
        *x->why = *x->slurm || !s ? NULL : corod_strdup_obj(cp_get(s, "why"));
    return 0; /* a daemon before Slurm groups: none */
}

int corod_executors(corod_client *c, bool *slurm, char **why)
{
    corod_params p;
    corod_params_begin(&p, 0);
    executors_ctx x = { slurm, why };
    return corod_do(c, "hello", &p, take_executors, &x);
}

int corod_remove_group(corod_client *c, const char *name)
{
    corod_params p;
    corod_params_begin(&p, 1);
    cp_pack_str(&p.pk, "name"), cp_pack_str(&p.pk, name);
    return corod_do(c, "remove_group", &p, NULL, NULL);
}
