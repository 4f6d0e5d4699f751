/* srv_methods.c: one handler per method of the protocol. Each validates its params (the
 * error names the field), applies the ownership rule (another uid's task is not_found),
 * and packs exactly one response — except `wait`, answered later by srv_watch.c. */
#include "srv_internal.h"

#include "ex_cgroup.h"
#include "kind.h"
#include "srv_slurm.h"
#include "sy_log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef COROD_VERSION
#define COROD_VERSION "0.0.0"
#endif

static void srv_ok(srv_conn *c, const cp_request *rq)
{
    cp_pack_response_ok(&c->out, rq->msgid);
}

static void srv_fail(srv_conn *c, const cp_request *rq, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void srv_fail(srv_conn *c, const cp_request *rq, const char *code, const char *fmt, ...)
{
    cp_error err;
    va_list ap;
    va_start(ap, fmt);
    cp_vfail(&err, code, fmt, ap);
    va_end(ap);
    srv_reply_error(c, rq, &err);
}

srv_rec *srv_lookup(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    uint64_t id;
    if (cp_get_uint(rq->params, "id", true, 1, CP_MAX_ID, &id, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return NULL;
    }
    srv_rec *r = srv_table_get(c->srv->table, id, c->uid);
    if (!r && !srv_fault(c, rq, &id, 1)) /* in the store only: again once read back */
        srv_fail(c, rq, CP_NOT_FOUND, "task %llu not found", (unsigned long long)id);
    return r;
}

static void m_hello(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    cp_str client;
    if (cp_get_str(rq->params, "client", false, 256, &client, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_ok(c, rq);
    cp_out_map(&c->out, 6);
    cp_out_lit(&c->out, "protocol");
    cp_out_uint(&c->out, 1);
    cp_out_lit(&c->out, "server");
    cp_out_lit(&c->out, "corod");
    cp_out_lit(&c->out, "version");
    cp_out_str(&c->out, COROD_VERSION);
    cp_out_lit(&c->out, "pid");
    cp_out_uint(&c->out, (uint32_t)getpid());
    /* What a job's limits may ask for: the cgroup controllers its jobs have. */
    const srv_limits *l = &c->srv->cfg.limits;
    unsigned ctl = ex_cgroups_controllers(l->cgroups);
    cp_out_lit(&c->out, "cgroups");
    cp_out_map(&c->out, 2);
    cp_out_lit(&c->out, "controllers");
    cp_out_array(&c->out, (uint32_t)(!!(ctl & EX_CG_MEMORY) + !!(ctl & EX_CG_PIDS) + !!(ctl & EX_CG_CPU)));
    if (ctl & EX_CG_MEMORY)
        cp_out_lit(&c->out, "memory");
    if (ctl & EX_CG_PIDS)
        cp_out_lit(&c->out, "pids");
    if (ctl & EX_CG_CPU)
        cp_out_lit(&c->out, "cpu");
    cp_out_lit(&c->out, "unavailable"); /* why jobs have no cgroups; nil: they have */
    if (l->cgroups)
        cp_out_nil(&c->out);
    else
        cp_out_str(&c->out, l->cgroups_why ? l->cgroups_why : "");
    /* Where a group's jobs may run: here, and on a Slurm cluster if srun is at hand. */
    cp_out_lit(&c->out, "executors");
    cp_out_map(&c->out, 2);
    cp_out_lit(&c->out, "local");
    cp_out_map(&c->out, 1);
    cp_out_lit(&c->out, "available");
    cp_out_bool(&c->out, true);
    cp_out_lit(&c->out, "slurm");
    cp_out_map(&c->out, l->slurm ? 1 : 2);
    cp_out_lit(&c->out, "available");
    cp_out_bool(&c->out, l->slurm != NULL);
    if (!l->slurm) {
        cp_out_lit(&c->out, "why");
        cp_out_str(&c->out, l->slurm_why ? l->slurm_why : "not set up");
    }
}

/* A submit naming records in the store only (`after`, a gather's ids): read them back. */
static bool srv_submit_fault(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    uint64_t *after = NULL, *ids = NULL;
    size_t na = 0, ni = 0;
    const msgpack_object *args = cp_get(rq->params, "args");
    bool deferred = false;
    if (cp_get_ids(rq->params, "after", false, CP_MAX_AFTER, &after, &na, &err) == 0 &&
        (!args || args->type != MSGPACK_OBJECT_MAP ||
         cp_get_ids(args, "ids", false, KIND_MAX_GATHER, &ids, &ni, &err) == 0)) {
        uint64_t *all = malloc((na + ni ? na + ni : 1) * sizeof *all);
        if (all) {
            if (na)
                memcpy(all, after, na * sizeof *all);
            if (ni)
                memcpy(all + na, ids, ni * sizeof *all);
            deferred = srv_fault(c, rq, all, na + ni);
            free(all);
        }
    }
    free(after);
    free(ids);
    return deferred;
}

static void m_submit(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    srv_rec *r;
    if (srv_durable_refuse(c, rq))
        return;
    if (srv_table_submit(c->srv->table, c->uid, rq->params, &r, &err) < 0) {
        if (!strcmp(err.code, CP_NOT_FOUND) && srv_submit_fault(c, rq))
            return; /* what it names is in the store only: again once read back */
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_durable_submit(c, rq->msgid, r); /* answered now, sent and started once durable */
}

static void m_cancel(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    cp_str msg = { NULL, 0 };
    if (cp_get_str(rq->params, "message", false, 1024, &msg, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_rec *r = srv_lookup(c, rq);
    if (!r)
        return;
    char buf[1025];
    if (msg.ptr)
        memcpy(buf, msg.ptr, msg.len), buf[msg.len] = '\0';
    bool done = srv_rec_cancel(r, msg.ptr ? buf : "cancelled by request");
    srv_conn_saw(c, srv_rec_seq(r)); /* its end, when the cancel ended it at once */
    srv_ok(c, rq);
    cp_out_map(&c->out, 1);
    cp_out_lit(&c->out, "cancelled");
    cp_out_bool(&c->out, done);
}

/* `signal`: a number from 1 to SIGRTMAX, or a name with or without "SIG" ("HUP",
 * "SIGUSR1"): 0 and *sig, or -EINVAL with err. */
static int srv_signal_param(const cp_request *rq, int *sig, cp_error *err)
{
    const msgpack_object *o = rq->params ? cp_get(rq->params, "signal") : NULL;
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 >= 1 && o->via.u64 <= (uint64_t)SIGRTMAX) {
        *sig = (int)o->via.u64;
        return 0;
    }
    if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size < 16) {
        char name[16];
        memcpy(name, o->via.str.ptr, o->via.str.size);
        name[o->via.str.size] = '\0';
        const char *n = strncmp(name, "SIG", 3) ? name : name + 3;
        for (int s = 1; s < SIGRTMIN; s++) {
            const char *abbrev = sigabbrev_np(s);
            if (abbrev && !strcmp(abbrev, n)) {
                *sig = s;
                return 0;
            }
        }
    }
    return cp_fail(err, CP_BAD_REQUEST, "signal must be a number from 1 to %d or a name such as \"HUP\"",
                   (int)SIGRTMAX);
}

static void m_signal(srv_conn *c, const cp_request *rq)
{
    cp_error err;
    int sig;
    if (srv_signal_param(rq, &sig, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_rec *r = srv_lookup(c, rq);
    if (!r)
        return;
    int rc = srv_rec_signal(r, sig);
    if (rc == -ENOTSUP || rc == -ESRCH) {
        srv_fail(c, rq, CP_INVALID_STATE, rc == -ENOTSUP ? "task %llu is a %s task: it runs no process"
                                                         : "task %llu is not running (it is %s)",
                 (unsigned long long)srv_rec_id(r), rc == -ENOTSUP ? srv_rec_kind_name(r) : srv_rec_state(r));
        return;
    }
    if (rc == -EAGAIN || rc == -EBUSY) { /* a Slurm job (kind_slurm.c) */
        srv_fail(c, rq, CP_INVALID_STATE,
                 rc == -EAGAIN ? "task %llu waits for Slurm to start it: there is nothing to signal yet"
                               : "task %llu: its last signal is still on its way to Slurm; send again after",
                 (unsigned long long)srv_rec_id(r));
        return;
    }
    if (rc < 0) {
        srv_fail(c, rq, CP_INTERNAL, "cannot signal task %llu: %s", (unsigned long long)srv_rec_id(r),
                 strerror(-rc));
        return;
    }
    sy_log(LOG_INFO, "uid %u sent SIG%s to task %llu", (unsigned)c->uid, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
           (unsigned long long)srv_rec_id(r));
    srv_ok(c, rq);
    cp_out_map(&c->out, 0);
}

static void m_edit(srv_conn *c, const cp_request *rq)
{
    srv_rec *r = srv_lookup(c, rq);
    if (!r)
        return;
    cp_error err;
    if (srv_table_edit(c->srv->table, r, c->acct->privileged, rq->params, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_conn_saw(c, srv_rec_seq(r)); /* answered once the edit is stored */
    srv_ok(c, rq);
    srv_conn_pack_rec(c, r, false);
}

static void m_get(srv_conn *c, const cp_request *rq)
{
    srv_rec *r = srv_lookup(c, rq);
    if (!r)
        return;
    srv_ok(c, rq);
    srv_conn_pack_rec(c, r, false);
}

static const char *const srv_states[] = { "pending", "running", "succeeded", "failed", "cancelled" };

/* A page of the caller's records (every record, for root) in id order, from the first
 * after `after`: at most `limit` that match, answer_bytes of them and SRV_LIST_SCAN
 * looked at. `next` is the cursor for the next page, nil when there is none. With a
 * store, the store answers (more filters, newest first); without one, memory does. */
static void m_list(srv_conn *c, const cp_request *rq)
{
    if (c->srv->store) {
        srv_list(c, rq); /* from the store, off the loop (srv_history.c) */
        return;
    }
    cp_error err;
    cp_str state = { NULL, 0 }, group = { NULL, 0 };
    uint64_t limit = SRV_LIST_DEFAULT, after = 0;
    if (cp_get_str(rq->params, "state", false, 16, &state, &err) < 0 ||
        cp_get_str(rq->params, "group", false, CP_MAX_GROUP, &group, &err) < 0 ||
        cp_get_uint(rq->params, "limit", false, 1, SRV_LIST_MAX, &limit, &err) < 0 ||
        cp_get_uint(rq->params, "after", false, 0, CP_MAX_ID, &after, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    if (state.ptr) {
        bool known = false;
        for (size_t i = 0; i < 5; i++)
            known |= cp_str_eq(state, srv_states[i]);
        if (!known) {
            srv_fail(c, rq, CP_BAD_REQUEST,
                     "state must be one of pending, running, succeeded, failed, cancelled");
            return;
        }
    }
    srv_table *t = c->srv->table;
    srv_rec *r = after ? srv_table_after(t, after, c->uid) : srv_table_first(t, c->uid);
    srv_ok(c, rq);
    cp_out_map(&c->out, 2);
    cp_out_lit(&c->out, "tasks");
    size_t at = cp_out_array_begin(&c->out), start = c->out.size, k = 0, seen = 0;
    uint64_t last = 0;
    for (; r && k < limit && seen < SRV_LIST_SCAN && c->out.size - start < c->srv->answer_bytes;
         r = srv_rec_next(t, r, c->uid)) {
        seen++;
        last = srv_rec_id(r);
        if ((state.ptr && !cp_str_eq(state, srv_rec_state(r))) ||
            (group.ptr && !cp_str_eq(group, srv_rec_group_name(r))))
            continue;
        srv_conn_pack_rec(c, r, false);
        k++;
    }
    cp_out_array_end(&c->out, at, (uint32_t)k);
    cp_out_lit(&c->out, "next");
    if (r)
        cp_out_uint(&c->out, last);
    else
        cp_out_nil(&c->out);
}

/* `users`: the uids that may submit to the group, an array of at most SRV_MAX_GROUP_USERS
 * (an empty one, or nil: everyone). 1 when given, 0 when absent, -EINVAL with err. */
static int srv_get_users(const cp_request *rq, uint64_t *uids, size_t *n, cp_error *err)
{
    const msgpack_object *o = cp_get(rq->params, "users");
    *n = 0;
    if (!o)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > SRV_MAX_GROUP_USERS)
        return cp_fail(err, CP_BAD_REQUEST, "users must be an array of at most %u uids", SRV_MAX_GROUP_USERS);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *u = &o->via.array.ptr[i];
        if (u->type != MSGPACK_OBJECT_POSITIVE_INTEGER || u->via.u64 > UINT32_MAX)
            return cp_fail(err, CP_BAD_REQUEST, "users[%u] must be a uid (0 to %u)", i, UINT32_MAX);
        uids[i] = u->via.u64;
    }
    *n = o->via.array.size;
    return 1;
}

/* Groups are root's (and the daemon's uid's) to set up: false after saying so. */
static bool srv_may_change_groups(srv_conn *c, const cp_request *rq)
{
    if (c->uid == 0 || c->uid == c->srv->self_uid)
        return true;
    srv_fail(c, rq, CP_PERMISSION_DENIED, "only root or uid %u may change groups", (unsigned)c->srv->self_uid);
    return false;
}

/* set_group's executor and slurm: 0 when neither is there; 1 with *out the settings of a
 * Slurm group, or NULL for "local"; -EINVAL with err. */
static int srv_get_executor(const srv *v, const msgpack_object *params, ex_slurm **out, cp_error *err)
{
    cp_str ex;
    int he = cp_get_str(params, "executor", false, 16, &ex, err);
    if (he < 0)
        return he;
    const msgpack_object *sm = cp_get(params, "slurm");
    if (sm && sm->type == MSGPACK_OBJECT_NIL)
        sm = NULL;
    bool slurm = he ? ex.len == 5 && !memcmp(ex.ptr, "slurm", 5) : sm != NULL;
    if (he && !slurm && !(ex.len == 5 && !memcmp(ex.ptr, "local", 5)))
        return cp_fail(err, CP_BAD_REQUEST, "executor must be \"local\" or \"slurm\"");
    if (!he && !sm)
        return 0;
    *out = NULL;
    if (!slurm) {
        if (sm)
            return cp_fail(err, CP_BAD_REQUEST, "slurm settings are for a group whose executor is slurm");
        return 1;
    }
    if (!v->cfg.limits.slurm)
        return cp_fail(err, CP_BAD_REQUEST, "this corod has no Slurm to run jobs with: %s",
                       v->cfg.limits.slurm_why ? v->cfg.limits.slurm_why : "not set up");
    static const msgpack_object empty = { .type = MSGPACK_OBJECT_MAP };
    return srv_slurm_parse(sm ? sm : &empty, out, err) < 0 ? -EINVAL : 1;
}

static void m_set_group(srv_conn *c, const cp_request *rq)
{
    if (!srv_may_change_groups(c, rq))
        return;
    cp_error err;
    cp_str name;
    uint64_t parallel, users[SRV_MAX_GROUP_USERS];
    size_t nusers;
    bool paused, create = true;
    int hp, hz, hu;
    if (cp_get_str(rq->params, "name", true, CP_MAX_GROUP, &name, &err) < 0 ||
        (hp = cp_get_uint(rq->params, "parallel", false, 0, 65536, &parallel, &err)) < 0 ||
        (hz = cp_get_bool(rq->params, "paused", false, &paused, &err)) < 0 ||
        cp_get_bool(rq->params, "create", false, &create, &err) < 0 ||
        (hu = srv_get_users(rq, users, &nusers, &err)) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    if (!cp_group_name_ok(name)) {
        srv_fail(c, rq, CP_BAD_REQUEST, "name must be 1 to %u characters of A-Z a-z 0-9 . _ -", CP_MAX_GROUP);
        return;
    }
    ex_slurm *slurm = NULL;
    int hx = srv_get_executor(c->srv, rq->params, &slurm, &err);
    if (hx < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    /* create: false changes a group that exists, and makes none (a typo in a pause must
     * not leave a paused group behind that nothing ever runs in). */
    if (!create && !srv_table_find_group(c->srv->table, name)) {
        ex_slurm_unref(slurm);
        srv_fail(c, rq, CP_NOT_FOUND, "no group \"%.*s\"", (int)name.len, name.ptr);
        return;
    }
    srv_group *g = srv_table_configure_group(c->srv->table, name);
    if (!g || (hu && srv_group_allow(g, users, nusers) < 0) || (hx && srv_group_set_slurm(g, slurm) < 0)) {
        ex_slurm_unref(slurm);
        srv_fail(c, rq, CP_INTERNAL, "out of memory");
        return;
    }
    ex_slurm_unref(slurm);
    uint32_t p32 = (uint32_t)parallel;
    if (srv_table_set_group(c->srv->table, g, hp ? &p32 : NULL, hz ? &paused : NULL) < 0) {
        srv_fail(c, rq, CP_INTERNAL, "out of memory");
        return;
    }
    srv_conn_saw_all(c); /* the group's row */
    srv_ok(c, rq);
    cp_out_map(&c->out, 0);
}

static void m_remove_group(srv_conn *c, const cp_request *rq)
{
    if (!srv_may_change_groups(c, rq))
        return;
    cp_error err;
    cp_str name;
    if (cp_get_str(rq->params, "name", true, CP_MAX_GROUP, &name, &err) < 0 ||
        srv_table_remove_group(c->srv->table, name, &err) < 0) {
        srv_reply_error(c, rq, &err);
        return;
    }
    srv_conn_saw_all(c); /* the group's row, gone */
    srv_ok(c, rq);
    cp_out_map(&c->out, 0);
}

static void m_groups(srv_conn *c, const cp_request *rq)
{
    srv_table *t = c->srv->table;
    size_t n = 0;
    for (srv_group *g = srv_table_groups(t); g; g = srv_group_next(t, g))
        n++;
    srv_conn_saw_all(c); /* settings and counts of records */
    srv_ok(c, rq);
    cp_out_map(&c->out, 1);
    cp_out_lit(&c->out, "groups");
    cp_out_array(&c->out, (uint32_t)n);
    for (srv_group *g = srv_table_groups(t); g; g = srv_group_next(t, g))
        srv_group_pack(&c->out, g);
}

static const struct {
    const char *name;
    void (*fn)(srv_conn *c, const cp_request *rq);
} srv_methods[] = {
    { "hello", m_hello },         { "submit", m_submit },     { "cancel", m_cancel },
    { "get", m_get },             { "list", m_list },         { "wait", srv_wait_start },
    { "subscribe", srv_subscribe }, { "unsubscribe", srv_unsubscribe }, { "output", srv_output },
    { "set_group", m_set_group }, { "groups", m_groups },     { "clean", srv_clean },
    { "restart", srv_restart },   { "signal", m_signal },       { "edit", m_edit },
    { "remove_group", m_remove_group }, { "send", srv_send },
    { "spec", srv_spec },
};

void srv_dispatch(srv_conn *c, const cp_request *rq)
{
    for (size_t i = 0; i < sizeof srv_methods / sizeof *srv_methods; i++) {
        if (cp_str_eq(rq->method, srv_methods[i].name)) {
            srv_methods[i].fn(c, rq);
            srv_conn_mark(c);
            return;
        }
    }
    srv_fail(c, rq, CP_UNKNOWN_METHOD, "unknown method \"%.*s\"", (int)rq->method.len, rq->method.ptr);
}
