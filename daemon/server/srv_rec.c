/* srv_rec.c: a record's life — its stages (srv_rec.h), its outcome, and how it is packed.
 * Each stage's wait is a callback on a runtime future; a cancel tears down the stage it
 * finds (a running body is cancelled and the record ends as the body does). Records are
 * reference counted: the table holds one until retention evicts the record, and so does
 * every wait or subscription that will still read it. */
#include "srv_rec.h"
#include "sy_log.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void srv_rec_ref(srv_rec *r)
{
    r->nuse++;
}

/* Let go of what the current stage holds: dependencies, referenced tasks, the delay's
 * timer, the running body (cancelled: a no-op once it has ended), and the parsed args. */
void srv_rec_release_stage(srv_rec *r)
{
    for (size_t i = 0; i < r->ndeps; i++) {
        co_future_remove_cb(&r->deps[i].cb);
        co_future_unref(r->deps[i].fut);
    }
    free(r->deps);
    r->deps = NULL;
    r->ndeps = 0;
    for (size_t i = 0; i < r->nrefs; i++)
        co_future_unref(r->refs[i]);
    free(r->refs);
    r->refs = NULL;
    r->nrefs = 0;
    if (r->delay_task) {
        co_future_remove_cb(&r->delay_cb);
        co_task_cancel(r->delay_task, NULL);
        co_task_unref(r->delay_task);
        r->delay_task = NULL;
    }
    if (r->body) {
        co_future_remove_cb(&r->body_cb);
        co_task_cancel(r->body, NULL);
        co_task_unref(r->body);
        r->body = NULL;
    }
    if (r->args && r->kind->free) {
        r->kind->free(r->args);
        r->args = NULL;
    }
}

void srv_rec_unref(srv_rec *r)
{
    assert(r->nuse > 0);
    if (--r->nuse)
        return;
    assert(!r->in_table);
    srv_rec_release_stage(r);
    co_future_remove_cb(&r->done_cb);
    co_task_unref(r->task);
    r->acct->bytes -= r->bytes;
    if (r->disk)
        ex_disk_use_unref(r->disk);
    srv_acct_unref(r->acct);
    srv_group_unref(r->group);
    free(r->name);
    free(r->command);
    free(r->argv);
    free(r->slurm);
    free(r);
}

uint64_t srv_rec_id(const srv_rec *r) { return r->id; }
uint64_t srv_rec_seq(const srv_rec *r) { return r->seq; }
uint32_t srv_rec_owner(const srv_rec *r) { return r->acct->uid; }
const char *srv_rec_group_name(const srv_rec *r) { return r->group->name; }
const char *srv_rec_kind_name(const srv_rec *r) { return r->kind->name; }
bool srv_rec_has_output(const srv_rec *r) { return r->kind->has_output; }
bool srv_rec_terminal(const srv_rec *r) { return r->stage == ST_DONE; }
co_future *srv_rec_future(srv_rec *r) { return co_task_future(r->task); }

const char *srv_rec_state(const srv_rec *r)
{
    co_state st = co_future_state(co_task_future(r->task));
    if (st != CO_PENDING)
        return co_state_name(st);
    return r->stage == ST_RUNNING ? "running" : "pending";
}

#define SRV_WAITING_IDS 16u /* dependencies a `waiting` names; `left` counts them all */

/* The head of a `waiting` map of n keys more than its reason: its id first when asked
 * for, then the reason. */
static void srv_waiting_map(cp_out *o, const srv_rec *r, bool with_id, uint32_t n, const char *reason)
{
    cp_out_map(o, 1 + n + with_id);
    if (with_id) {
        cp_out_lit(o, "id");
        cp_out_uint(o, r->id);
    }
    cp_out_lit(o, "reason");
    cp_out_str(o, reason);
}

bool srv_rec_pack_waiting(cp_out *o, const srv_rec *r, bool with_id)
{
    const srv_group *g = r->group;
    switch (r->stage) {
    case ST_DEPS: {
        size_t n = 0;
        for (size_t i = 0; i < r->ndeps && n < SRV_WAITING_IDS; i++)
            n += co_future_state(r->deps[i].fut) == CO_PENDING;
        srv_waiting_map(o, r, with_id, 2, "after");
        cp_out_lit(o, "left");
        cp_out_uint(o, r->deps_left);
        cp_out_lit(o, "ids");
        cp_out_array(o, (uint32_t)n);
        for (size_t i = 0; i < r->ndeps && n; i++)
            if (co_future_state(r->deps[i].fut) == CO_PENDING)
                cp_out_uint(o, r->deps[i].id), n--;
        return true;
    }
    case ST_DELAY: {
        double left = r->delay_task ? co_sleep_due_in(r->delay_task) : -1;
        srv_waiting_map(o, r, with_id, 1, r->attempts ? "retry" : "delay");
        cp_out_lit(o, "until");
        cp_out_double(o, srv_now() + (left > 0 ? left : 0));
        return true;
    }
    case ST_READY:
        if (g->paused) {
            srv_waiting_map(o, r, with_id, 0, "paused");
        } else if (r->ready.work && g->parallel && g->busy >= g->parallel) {
            srv_waiting_map(o, r, with_id, 2, "full");
            cp_out_lit(o, "running");
            cp_out_uint(o, g->busy);
            cp_out_lit(o, "parallel");
            cp_out_uint(o, g->parallel);
        } else { /* behind others of the group: it starts as they do */
            srv_waiting_map(o, r, with_id, 0, "queued");
        }
        return true;
    default:
        return false;
    }
}

void srv_rec_pack(cp_out *o, const srv_rec *r, bool omit_outcome)
{
    co_future *f = co_task_future(r->task);
    co_state st = co_future_state(f);
    size_t vlen = 0;
    const uint8_t *v = co_value_bytes(co_future_value(f), &vlen);
    cp_record c = {
        .id = r->id, .kind = r->kind->name, .name = r->name, .group = r->group->name,
        .state = srv_rec_state(r), .owner_uid = r->acct->uid, .created_at = r->created_at,
        .started_at = r->started_at, .finished_at = r->finished_at, .attempts = r->attempts,
        .command = r->command, .omitted = omit_outcome && st != CO_PENDING, .restarted_from = r->restarted_from,
        .argv = r->argv, .argv_len = r->argv_len, .slurm = r->slurm, .slurm_len = r->slurm_len,
    };
    cp_out w;
    cp_out_init(&w);
    if (st == CO_PENDING && srv_rec_pack_waiting(&w, r, false) && !cp_out_failed(&w))
        c.waiting = w.data, c.waiting_len = w.size;
    if (c.omitted)
        ;
    else if (st == CO_SUCCEEDED)
        c.result = v, c.result_len = vlen;
    else if (st == CO_FAILED || st == CO_CANCELLED)
        c.error = v, c.error_len = vlen;
    cp_pack_record(o, &c);
    cp_out_free(&w);
}

/* ---- stages ----------------------------------------------------------------------------- */

static void srv_rec_start(srv_rec *r);

/* The group's queued records that may start now, started. Re-entry (a start that fails
 * ends its record, which pumps again) is folded into the running loop. */
void srv_group_pump(srv_group *g)
{
    if (g->pumping)
        return;
    g->pumping = true;
    srv_ready *it;
    while ((it = srv_group_pop(g)))
        srv_rec_start(co_container_of(it, srv_rec, ready));
    g->pumping = false;
}

/* Leave the RUNNING stage (the attempt ended) or a waiting one, for the counters. */
static void srv_rec_leave_stage(srv_rec *r)
{
    srv_group *g = r->group;
    if (r->stage == ST_RUNNING) {
        assert(g->running > 0);
        g->running--;
        srv_group_give_slot(g, &r->ready);
    } else {
        assert(g->pending > 0);
        g->pending--;
        if (r->stage == ST_READY)
            srv_group_dequeue(g, &r->ready);
    }
}

/* What the record counts for once it has ended: the parsed args are gone, the outcome is
 * there (outcome: its bytes). */
static size_t srv_rec_final_bytes(const srv_rec *r, size_t outcome)
{
    return SRV_REC_FIXED + (r->name ? strlen(r->name) + 1 : 0) + (r->command ? strlen(r->command) + 1 : 0) +
           r->argv_len + r->slurm_len + outcome;
}

void srv_rec_set_slurm(srv_rec *r, uint8_t *packed, uint32_t len)
{
    ssize_t delta = (ssize_t)len - (ssize_t)r->slurm_len; /* counted in its owner's memory */
    r->bytes = (size_t)((ssize_t)r->bytes + delta);
    r->acct->bytes = (size_t)((ssize_t)r->acct->bytes + delta);
    free(r->slurm);
    r->slurm = packed;
    r->slurm_len = len;
}

/* ---- the store --------------------------------------------------------------------------- */

static bool srv_rec_stored(const srv_rec *r)
{
    return r->table->store && !r->unstored;
}

static void srv_rec_store_failed(const srv_rec *r, int rc)
{
    sy_log(LOG_ERR, "cannot queue the store's write for task %llu: %s", (unsigned long long)r->id,
            co_strerror(rc));
}

void srv_rec_store_started(srv_rec *r)
{
    int rc;
    if (!srv_rec_stored(r))
        return;
    if ((rc = st_started(r->table->store, r->id, r->started_at, r->attempts)) < 0)
        srv_rec_store_failed(r, rc);
    r->seq = st_open_seq(r->table->store);
}

void srv_rec_store_waiting(srv_rec *r, double wake_at)
{
    int rc;
    if (!srv_rec_stored(r))
        return;
    if ((rc = st_waiting(r->table->store, r->id, wake_at, r->attempts)) < 0)
        srv_rec_store_failed(r, rc);
    r->seq = st_open_seq(r->table->store);
}

static void srv_rec_store_finished(srv_rec *r)
{
    static const int states[] = { [CO_SUCCEEDED] = ST_TASK_SUCCEEDED, [CO_FAILED] = ST_TASK_FAILED,
                                  [CO_CANCELLED] = ST_TASK_CANCELLED };
    if (!srv_rec_stored(r))
        return;
    co_future *f = co_task_future(r->task);
    size_t len = 0;
    const uint8_t *v = co_value_bytes(co_future_value(f), &len);
    int64_t out = !r->kind->has_output ? -1 : r->disk ? (int64_t)r->disk->bytes : 0;
    int rc = st_finished(r->table->store, r->id, states[co_future_state(f)], r->finished_at, v, len, out);
    if (rc < 0)
        srv_rec_store_failed(r, rc);
    r->seq = st_open_seq(r->table->store);
}

/* ---- the audit trail ------------------------------------------------------------------ */

/* A job's start and end, at info, with what an administrator filters on (its id, owner,
 * group and, for a failure, its code): a root corod runs programs for every user of the
 * machine, and this is the record of who ran what. Sleeps and gathers run nothing. */
static void srv_rec_audit(const srv_rec *r, bool start)
{
    if (!r->kind->has_output)
        return;
    sy_about a = { .task = r->id, .uid = r->acct->uid, .group = r->group->name };
    const char *cmd = r->command ? r->command : "";
    if (start) {
        sy_log_about(LOG_INFO, &a, "task %llu started (uid %u, group %s, attempt %u): %s", (unsigned long long)r->id,
                     (unsigned)r->acct->uid, r->group->name, r->attempts, cmd);
        return;
    }
    co_future *f = co_task_future(r->task);
    co_state st = co_future_state(f);
    const char *msg = "", *code = NULL;
    size_t msg_len = 0, code_len = 0;
    if (st == CO_FAILED || st == CO_CANCELLED) {
        co_value_get_str(co_future_value(f), "code", &code, &code_len);
        co_value_get_str(co_future_value(f), "message", &msg, &msg_len);
    }
    char codebuf[64] = "";
    if (code)
        snprintf(codebuf, sizeof codebuf, "%.*s", (int)code_len, code);
    a.code = code ? codebuf : NULL;
    sy_log_about(LOG_INFO, &a, "task %llu %s (uid %u, group %s)%s%s%s%.*s: %s", (unsigned long long)r->id,
                 co_state_name(st), (unsigned)r->acct->uid, r->group->name, code ? ", " : "", codebuf,
                 msg_len ? ": " : "", (int)(msg_len > 512 ? 512 : msg_len), msg, cmd);
}

/* Bookkeeping as the record ends, then the outcome. Consumes *v. */
void srv_rec_finish(srv_rec *r, co_state st, co_value *v)
{
    assert(r->stage != ST_DONE);
    bool freed_slot = r->stage == ST_RUNNING && r->ready.work;
    srv_rec_leave_stage(r);
    srv_acct *ac = r->acct;
    assert(ac->active > 0);
    ac->active--;
    r->stage = ST_DONE;
    r->finished_at = srv_now();
    srv_rec_ref(r); /* releasing the stage may drop the last task reference elsewhere */
    srv_rec_release_stage(r);
    srv_group_leave(r->ready.user);
    r->ready.user = NULL;
    size_t now = srv_rec_final_bytes(r, v ? v->len : 0);
    ac->bytes = ac->bytes - r->bytes + now;
    r->bytes = now;
    co_task_finish(r->task, st, v);
    srv_rec_store_finished(r);
    srv_rec_audit(r, false);
    if (freed_slot)
        srv_group_pump(r->group);
    srv_rec_unref(r);
}

static void srv_rec_fail(srv_rec *r, const char *code, const char *msg)
{
    co_value e;
    co_value_error(&e, code, msg);
    srv_rec_finish(r, CO_FAILED, &e);
}

/* Runs from the loop after the record ended: all-subscriptions, then retention (the
 * finished records of its owner, oldest first; srv_table_trim evicts from there). */
void srv_rec_done(co_future *f, void *arg)
{
    (void)f;
    srv_rec *r = arg;
    srv_table *t = r->table;
    if (t->on_finish)
        t->on_finish(r, t->on_finish_arg);
    if (r->in_table) {
        srv_acct *ac = r->acct;
        co_queue_insert_tail(&ac->fin, &r->fin_node);
        ac->retained++;
        if ((ac->retained > t->lim.retain || ac->bytes > t->lim.max_uid_memory) && !co_queue_linked(&ac->trim_node))
            co_queue_insert_tail(&t->trim, &ac->trim_node);
    }
    srv_rec_unref(r); /* this callback's reference */
}

static void srv_rec_wait(srv_rec *r, double seconds);

static void srv_body_done(co_future *f, void *arg)
{
    srv_rec *r = arg;
    co_state st = co_future_state(f);
    if (st == CO_FAILED && !r->cancelling && r->attempts <= r->retries) {
        /* Another attempt (a timeout is a failure too; a cancel is not): free the slot,
         * wait retry_delay, queue again. */
        co_future_remove_cb(&r->body_cb);
        co_task_unref(r->body);
        r->body = NULL;
        srv_rec_leave_stage(r);
        bool freed_slot = r->ready.work;
        r->group->pending++;
        srv_rec_store_waiting(r, srv_now() + (r->retry_delay > 0 ? r->retry_delay : 0));
        srv_rec_wait(r, r->retry_delay);
        if (freed_slot)
            srv_group_pump(r->group);
        return;
    }
    /* The body is the record's alone: its value moves into the record, never copied (a
     * copy once held every result twice while the record was kept). */
    co_value v;
    co_future_take_value(f, &v);
    /* A result counts against its owner's memory like everything else it holds; one that
     * does not fit (after the owner's oldest finished records have made what room they
     * can) is not kept. Errors are small by construction, and always kept. */
    size_t final = srv_rec_final_bytes(r, v.len);
    if (st == CO_SUCCEEDED && final > r->bytes && !srv_table_make_room(r->table, r->acct, final - r->bytes)) {
        char msg[160];
        snprintf(msg, sizeof msg, "the result (%zu bytes) would take uid %u past its memory limit of %zu bytes",
                 v.len, (unsigned)r->acct->uid, r->table->lim.max_uid_memory);
        co_value_free(&v);
        srv_rec_fail(r, CP_QUOTA_EXCEEDED, msg);
        return;
    }
    srv_rec_finish(r, st, &v);
}

static void srv_rec_start(srv_rec *r)
{
    srv_table *t = r->table;
    assert(r->stage == ST_READY);
    kind_start ks = {
        .sched = t->sched,
        .opts = { .id = r->id, .name = r->name, .timeout = r->timeout },
        .args = r->args,
        .refs = r->refs,
        .nrefs = r->nrefs,
        .owner = r->acct->uid,
        .env = &t->env,
        .disk = r->disk,
        .hooks = &srv_spawn_hooks,
        .hooks_arg = t->spawns,
        .group_limits = &r->group->limits,
        .slurm = r->group->slurm,
        .attempt = r->resumed ? r->attempts : r->attempts + 1,
    };
    co_task *body;
    int rc = r->kind->start(&ks, &body);
    if (rc < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot start the %s body: %s", r->kind->name, co_strerror(rc));
        srv_rec_fail(r, CP_INTERNAL, msg);
        return;
    }
    r->stage = ST_RUNNING;
    r->group->pending--;
    r->group->running++;
    srv_group_take_slot(r->group, &r->ready);
    if (r->resumed) /* the attempt a restart interrupted, taken up: as it began */
        r->resumed = false;
    else
        r->started_at = srv_now(), r->attempts++;
    srv_rec_set_slurm(r, NULL, 0); /* an earlier attempt's */
    srv_rec_store_started(r);
    srv_rec_audit(r, true);
    r->body = body;
    co_future_add_cb(co_task_future(body), &r->body_cb, srv_body_done, r);
}

/* Dependencies and delay are behind it: queue it in its group. */
static void srv_rec_ready(srv_rec *r)
{
    r->stage = ST_READY;
    r->ready.priority = r->priority;
    r->ready.id = r->id;
    if (!r->group->pumping && srv_group_admits(r->group, &r->ready)) {
        srv_rec_start(r); /* nothing ahead of it: no trip through the queue */
        return;
    }
    if (srv_group_queue(r->group, &r->ready) < 0) {
        srv_rec_fail(r, CP_INTERNAL, "out of memory queueing the task");
        return;
    }
    srv_group_pump(r->group);
}

static void srv_delay_done(co_future *f, void *arg)
{
    srv_rec *r = arg;
    (void)f;
    co_task_unref(r->delay_task);
    r->delay_task = NULL;
    srv_rec_ready(r);
}

/* DELAY for `seconds` (the first start's delay, or a retry's), then READY. */
static void srv_rec_wait(srv_rec *r, double seconds)
{
    if (seconds <= 0) {
        srv_rec_ready(r);
        return;
    }
    r->stage = ST_DELAY;
    if (co_sleep_task(r->table->sched, seconds, NULL, NULL, &r->delay_task) < 0) {
        srv_rec_fail(r, CP_INTERNAL, "out of memory arming the delay");
        return;
    }
    co_future_add_cb(co_task_future(r->delay_task), &r->delay_cb, srv_delay_done, r);
}

static void srv_dep_done(co_future *f, void *arg)
{
    srv_dep *d = arg;
    srv_rec *r = d->rec;
    co_state st = co_future_state(f);
    if (st != CO_SUCCEEDED) {
        /* {code, message, dependency}: which dependency, and why it stopped us. */
        char msg[128];
        snprintf(msg, sizeof msg, "dependency %llu %s", (unsigned long long)d->id,
                 st == CO_CANCELLED ? "was cancelled" : "failed");
        cp_out o;
        cp_out_init(&o);
        cp_out_map(&o, 3);
        cp_out_lit(&o, "code");
        cp_out_lit(&o, "dependency_failed");
        cp_out_lit(&o, "message");
        cp_out_str(&o, msg);
        cp_out_lit(&o, "dependency");
        cp_out_uint(&o, d->id);
        co_value e;
        int rc = cp_out_failed(&o) ? -ENOMEM : co_value_copy(&e, o.data, o.size);
        cp_out_free(&o);
        if (rc < 0)
            co_value_error(&e, "dependency_failed", msg);
        srv_rec_finish(r, CO_FAILED, &e);
        return;
    }
    assert(r->deps_left > 0);
    if (--r->deps_left == 0) {
        if (r->delay > 0) /* the delay runs from now: a restart waits out what is left */
            srv_rec_store_waiting(r, srv_now() + r->delay);
        srv_rec_wait(r, r->delay);
    }
}

static void srv_rec_cancel_hook(co_task *t, void *data)
{
    srv_rec *r = data;
    (void)t;
    r->cancelling = true;
    if (r->stage == ST_RUNNING)
        co_task_cancel(r->body, "cancelled"); /* the record ends when the body has */
    else if (r->stage != ST_DONE)
        srv_rec_finish(r, CO_CANCELLED, NULL);
}

const co_task_body srv_rec_body = { .cancel = srv_rec_cancel_hook };

/* ---- edit -------------------------------------------------------------------------------- */

/* Into group g (the caller then gives the record a reference of its own); the caller has
 * taken it out of its old group's ready queue, and queues it again. */
static int srv_rec_move(srv_rec *r, srv_group *g)
{
    srv_group_user *u = srv_group_join(g, r->acct->uid);
    if (!u)
        return -ENOMEM;
    srv_group *old = r->group;
    srv_group_leave(r->ready.user);
    r->ready.user = u;
    old->pending--;
    g->pending++;
    r->group = g;
    srv_group_pump(old); /* what it held back (a wait at the head) may go now */
    srv_group_unref(old);
    return 0;
}

int srv_rec_edit(srv_rec *r, const srv_edit *e)
{
    if (r->stage != ST_DEPS && r->stage != ST_DELAY && r->stage != ST_READY)
        return -EBUSY;
    char *name = NULL;
    if (e->name.ptr && e->name.len && !(name = strndup(e->name.ptr, e->name.len)))
        return -ENOMEM;
    bool ready = r->stage == ST_READY;
    if (ready) /* out of the queue while its place in it changes */
        srv_group_dequeue(r->group, &r->ready);
    if (e->group && e->group != r->group) {
        if (srv_rec_move(r, e->group) < 0) {
            free(name);
            if (ready)
                srv_rec_ready(r);
            return -ENOMEM;
        }
        srv_group_ref(e->group); /* the caller's reference stays the caller's */
    }
    if (e->name.ptr) {
        ssize_t delta = (name ? (ssize_t)strlen(name) + 1 : 0) - (r->name ? (ssize_t)strlen(r->name) + 1 : 0);
        r->bytes = (size_t)((ssize_t)r->bytes + delta);
        r->acct->bytes = (size_t)((ssize_t)r->acct->bytes + delta);
        free(r->name);
        r->name = name;
    }
    if (e->has_priority)
        r->priority = e->priority;
    if (e->has_delay) {
        r->delay = e->delay; /* in DEPS: from when they are behind it */
        if (r->stage == ST_DELAY) {
            co_future_remove_cb(&r->delay_cb);
            co_task_cancel(r->delay_task, NULL);
            co_task_unref(r->delay_task);
            r->delay_task = NULL;
        }
    }
    if (r->table->store && !r->unstored) {
        int rc = st_edit(r->table->store, r->id, r->name, r->group->name, e->spec, e->spec_len);
        if (rc < 0)
            srv_rec_store_failed(r, rc);
        r->seq = st_open_seq(r->table->store);
    }
    if (e->has_delay && r->stage != ST_DEPS) {
        if (e->delay > 0) /* a restart waits out what is left of it */
            srv_rec_store_waiting(r, srv_now() + e->delay);
        srv_rec_wait(r, e->delay);
    } else if (ready) {
        srv_rec_ready(r);
    }
    return 0;
}

int srv_table_edit(srv_table *t, srv_rec *r, bool privileged, const msgpack_object *params, cp_error *err)
{
    srv_edit e = { 0 };
    cp_str group = { NULL, 0 };
    int rc;
    if ((rc = cp_get_str(params, "name", false, CP_MAX_NAME, &e.name, err)) < 0 ||
        (rc = cp_get_str(params, "group", false, CP_MAX_GROUP, &group, err)) < 0 ||
        (rc = cp_get_int(params, "priority", false, -CP_MAX_PRIORITY, CP_MAX_PRIORITY, &e.priority, err)) < 0 ||
        (rc = cp_get_seconds(params, "delay", false, 0, CP_MAX_SECONDS, &e.delay, err)) < 0)
        return rc;
    e.has_priority = cp_get(params, "priority") != NULL;
    e.has_delay = cp_get(params, "delay") != NULL;
    if (!e.name.ptr && !group.ptr && !e.has_priority && !e.has_delay)
        return cp_fail(err, CP_BAD_REQUEST, "edit changes name, group, priority or delay: none was given");
    if (group.ptr && !cp_group_name_ok(group))
        return cp_fail(err, CP_BAD_REQUEST, "group must be 1 to %u characters of A-Z a-z 0-9 . _ -", CP_MAX_GROUP);
    if (e.has_priority && e.priority > 0 && !privileged)
        return cp_fail(err, CP_PERMISSION_DENIED, "priority %lld: only root may give a priority above 0",
                       (long long)e.priority);
    if (r->stage != ST_DEPS && r->stage != ST_DELAY && r->stage != ST_READY)
        return cp_fail(err, CP_INVALID_STATE, "task %llu has %s: only a pending task can be edited",
                       (unsigned long long)r->id, r->stage == ST_ARMING ? "not been stored yet"
                                                  : r->stage == ST_RUNNING ? "started" : "ended");
    /* The group as a submit of its owner's would have it: allowed there, within its share. */
    if (group.ptr && (rc = srv_groups_for_submit(&t->groups, group, r->acct, &e.group, err)) < 0)
        return rc;
    cp_out o; /* the edits, for the stored spec */
    cp_out_init(&o);
    cp_out_map(&o, (e.name.ptr != NULL) + (group.ptr != NULL) + e.has_priority + e.has_delay);
    if (e.name.ptr) {
        cp_out_lit(&o, "name");
        if (e.name.len)
            cp_out_strn(&o, e.name.ptr, e.name.len);
        else
            cp_out_nil(&o);
    }
    if (group.ptr) {
        cp_out_lit(&o, "group");
        cp_out_strn(&o, group.ptr, group.len);
    }
    if (e.has_priority) {
        cp_out_lit(&o, "priority");
        cp_out_int(&o, e.priority);
    }
    if (e.has_delay) {
        cp_out_lit(&o, "delay");
        cp_out_double(&o, e.delay);
    }
    e.spec = o.data;
    e.spec_len = o.size;
    rc = cp_out_failed(&o) ? -ENOMEM : srv_rec_edit(r, &e);
    cp_out_free(&o);
    if (e.group)
        srv_group_unref(e.group);
    return rc < 0 ? cp_fail(err, CP_INTERNAL, "out of memory") : 0;
}

int srv_rec_feed(srv_rec *r, const void *data, size_t len, bool eof, void (*cb)(void *arg, int status), void *arg)
{
    if (!r->kind->feed)
        return -ENOTSUP;
    if (r->stage != ST_RUNNING || !r->body)
        return -ESRCH;
    return r->kind->feed(r->body, data, len, eof, cb, arg);
}

bool srv_rec_poll(srv_rec *r, int delta)
{
    if (delta > 0 && r->polls == UINT16_MAX)
        return false;
    r->polls = (uint16_t)(r->polls + delta);
    return true;
}

bool srv_rec_polled(const srv_rec *r)
{
    return r->polls != 0;
}

int srv_rec_signal(srv_rec *r, int sig)
{
    if (!r->kind->signal)
        return -ENOTSUP;
    if (r->stage != ST_RUNNING || !r->body)
        return -ESRCH;
    return r->kind->signal(r->body, sig);
}

bool srv_rec_cancel(srv_rec *r, const char *msg)
{
    return co_task_cancel(r->task, msg);
}

/* ---- after a restart ---------------------------------------------------------------------- */

/* Its dependencies are behind it (it went on to its delay, or ran): no waiting for them. */
static void srv_rec_drop_deps(srv_rec *r)
{
    for (size_t i = 0; i < r->ndeps; i++)
        co_future_unref(r->deps[i].fut);
    free(r->deps);
    r->deps = NULL;
    r->ndeps = 0;
}

static void srv_rec_restore_end(srv_rec *r, const st_task *row)
{
    static const co_state states[] = { [ST_TASK_SUCCEEDED] = CO_SUCCEEDED, [ST_TASK_FAILED] = CO_FAILED,
                                       [ST_TASK_CANCELLED] = CO_CANCELLED };
    co_value v = CO_VALUE_NIL;
    if (row->outcome_len && co_value_copy(&v, row->outcome, row->outcome_len) < 0)
        co_value_error(&v, CP_INTERNAL, "out of memory restoring the outcome");
    r->unstored = true; /* it is in the store as it is */
    srv_rec_finish(r, states[row->state], &v);
    r->unstored = false;
    r->finished_at = row->finished_at;
}

void srv_rec_resume(srv_rec *r, const st_task *row, double now)
{
    r->attempts = row->attempts;
    r->started_at = row->started_at;
    if (row->state >= ST_TASK_SUCCEEDED) {
        srv_rec_restore_end(r, row);
        return;
    }
    if (row->state == ST_TASK_RUNNING) {
        srv_rec_drop_deps(r);
        if (r->kind->resume) { /* the same attempt, taken up where it was */
            double elapsed = now - row->started_at;
            r->kind->resume(r->args, elapsed > 0 ? elapsed : 0);
            r->resumed = true;
            srv_rec_ready(r);
            return;
        }
        if (r->attempts <= r->retries) {
            srv_rec_store_waiting(r, now + (r->retry_delay > 0 ? r->retry_delay : 0));
            srv_rec_wait(r, r->retry_delay);
            return;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "corod stopped while it ran (attempt %u%s)", r->attempts,
                 row->pid ? "; what was left of its processes was killed at the restart" : "");
        srv_rec_fail(r, "interrupted", msg);
        return;
    }
    if (!isnan(row->wake_at)) { /* past its dependencies, in its delay or a retry's */
        srv_rec_drop_deps(r);
        srv_rec_wait(r, row->wake_at - now);
        return;
    }
    srv_table_arm(r->table, r);
}

void srv_table_arm(srv_table *t, srv_rec *r)
{
    (void)t;
    if (r->stage != ST_ARMING)
        return; /* cancelled before its submit was durable */
    if (r->ndeps) {
        r->stage = ST_DEPS;
        r->deps_left = r->ndeps;
        for (size_t i = 0; i < r->ndeps; i++)
            co_future_add_cb(r->deps[i].fut, &r->deps[i].cb, srv_dep_done, &r->deps[i]);
        return;
    }
    srv_rec_wait(r, r->delay);
}
