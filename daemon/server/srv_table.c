/* srv_table.c: records, their lifecycle and bookkeeping.
 * Stages: ARMING (created, submit not yet durable) → DEPS (waiting for `after`) → DELAY
 * → READY (queued in its group until the group lets it start) → RUNNING (the kind's
 * body) → DONE; a failed attempt with retries left goes back through DELAY (its
 * retry_delay) and READY. Each stage's wait is a callback on a runtime future;
 * a cancel tears down the stage it finds (a running body is cancelled and the record ends
 * as the body does). Records are reference counted: the table holds one until retention
 * evicts the record, and so does every wait or subscription that will still read it. */
#include "srv_table.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "kind.h"
#include "srv_group.h"
#include "srv_index.h"

enum srv_stage { ST_ARMING, ST_DEPS, ST_DELAY, ST_READY, ST_RUNNING, ST_DONE };

typedef struct srv_dep {
    co_cb cb;
    srv_rec *rec;
    co_task *task;
    uint64_t id;
} srv_dep;

struct srv_rec {
    uint64_t id;
    uint32_t owner, nuse, attempts; /* nuse: references to this record */
    uint32_t retries;               /* extra attempts allowed after a failure */
    uint8_t stage;
    bool shield, in_table;
    bool cancelling; /* a cancel reached it: a failing body is not retried */
    srv_ready ready; /* its place in its group's ready queue */
    const kind_ops *kind;
    void *args; /* &args_block once validated, NULL once released */
    kind_args_block args_block;
    char *name;
    char *command; /* exec: its command line, kept after the args are freed */
    srv_group *group;
    int64_t priority;
    double created_at, started_at, finished_at;
    double delay, timeout, retry_delay;
    co_task *task;       /* the record's outward future */
    co_task *body;       /* while running */
    co_task *delay_task; /* while in DELAY */
    co_cb body_cb, delay_cb, done_cb;
    srv_dep *deps;
    size_t ndeps, deps_left;
    co_future **refs; /* the kind's referenced tasks (gather members) */
    size_t nrefs;
    srv_table *table;
    co_queue node;     /* in the table's records, id order */
    co_queue fin_node; /* in the table's finished records, oldest first */
};

typedef struct srv_uid_count {
    uint32_t uid;
    size_t active;
} srv_uid_count;

struct srv_table {
    co_sched *sched;
    srv_limits lim;
    kind_env env;
    uint64_t next_id;
    srv_index index; /* id -> srv_rec */
    co_queue recs; /* srv_rec.node, id order */
    co_queue fin;  /* srv_rec.fin_node: finished, oldest first (retention evicts from here) */
    size_t finished;
    srv_group *groups;
    size_t ngroups;
    srv_uid_count *uids;
    size_t nuids, capuids;
    void (*on_finish)(srv_rec *r, void *arg);
    void *on_finish_arg;
};

double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- per-uid quota ---- */

static srv_uid_count *srv_uid(srv_table *t, uint32_t uid, bool create)
{
    for (size_t i = 0; i < t->nuids; i++)
        if (t->uids[i].uid == uid)
            return &t->uids[i];
    if (!create)
        return NULL;
    if (t->nuids == t->capuids) {
        size_t nc = t->capuids ? t->capuids * 2 : 8;
        srv_uid_count *n = realloc(t->uids, nc * sizeof *n);
        if (!n)
            return NULL;
        t->uids = n;
        t->capuids = nc;
    }
    t->uids[t->nuids] = (srv_uid_count){ uid, 0 };
    return &t->uids[t->nuids++];
}

/* ---- groups ---- */

srv_group *srv_table_group(srv_table *t, cp_str name, bool create)
{
    for (srv_group *g = t->groups; g; g = g->next)
        if (cp_str_eq(name, g->name))
            return g;
    if (!create || t->ngroups >= SRV_MAX_GROUPS || !cp_group_name_ok(name))
        return NULL;
    /* A group named in a submit starts with the default group's settings. */
    srv_group *g = srv_group_new(name, t->groups, t->lim.default_parallel);
    if (!g)
        return NULL;
    /* Keep "default" first; append the rest in creation order. */
    srv_group **pp = &t->groups;
    while (*pp)
        pp = &(*pp)->next;
    *pp = g;
    t->ngroups++;
    return g;
}

srv_group *srv_table_groups(srv_table *t) { return t->groups; }
srv_group *srv_group_next(const srv_group *g) { return g->next; }
const char *srv_group_name(const srv_group *g) { return g->name; }

static void srv_group_pump(srv_group *g);

void srv_table_set_group(srv_table *t, srv_group *g, const uint32_t *parallel, const bool *paused)
{
    if (parallel)
        g->parallel = *parallel;
    if (paused)
        g->paused = *paused;
    (void)t;
    srv_group_pump(g); /* more slots, or resumed: start what may start now */
}

void srv_group_pack(cp_out *o, const srv_group *g)
{
    cp_out_map(o, 6);
    cp_out_lit(o, "name");
    cp_out_str(o, g->name);
    cp_out_lit(o, "parallel");
    cp_out_uint(o, g->parallel);
    cp_out_lit(o, "paused");
    cp_out_bool(o, g->paused);
    cp_out_lit(o, "running");
    cp_out_uint(o, g->running);
    cp_out_lit(o, "pending");
    cp_out_uint(o, g->pending);
    cp_out_lit(o, "slots_used"); /* running tasks that take a slot (exec) */
    cp_out_uint(o, g->busy);
}

/* ---- table ---- */

int srv_table_new(co_sched *s, const srv_limits *l, srv_table **out)
{
    srv_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->sched = s;
    t->lim = l ? *l : (srv_limits){ 0 };
    co_queue_init(&t->recs);
    co_queue_init(&t->fin);
    srv_index_init(&t->index);
    if (!t->lim.retain)
        t->lim.retain = SRV_RETAIN_DEFAULT;
    if (!t->lim.max_active_per_uid)
        t->lim.max_active_per_uid = SRV_MAX_ACTIVE_PER_UID;
    if (!t->lim.max_result)
        t->lim.max_result = CO_VALUE_BYTES_DEFAULT;
    if (!t->lim.max_depth)
        t->lim.max_depth = CO_VALUE_DEPTH_DEFAULT;
    if (!t->lim.default_parallel) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        t->lim.default_parallel = n > 0 ? (uint32_t)n : 1;
    } else if (t->lim.default_parallel == SRV_PARALLEL_UNBOUNDED) {
        t->lim.default_parallel = 0;
    }
    /* Required: a shared directory such as /tmp would let another user plant the files a
     * root daemon then writes jobs' output into. */
    char *outdir = t->lim.output_dir ? strdup(t->lim.output_dir) : NULL;
    if (!outdir) {
        int rc = t->lim.output_dir ? -ENOMEM : -EINVAL;
        free(t);
        return rc;
    }
    t->env = (kind_env){
        .output_dir = outdir,
        .as_root = geteuid() == 0,
        .grace = t->lim.has_grace ? t->lim.grace : KIND_GRACE_DEFAULT,
        .output_limit = t->lim.output_limit,
        .max_result = t->lim.max_result,
        .max_depth = t->lim.max_depth,
        .set_job_nice = t->lim.set_job_nice,
        .job_nice = t->lim.job_nice,
    };
    t->next_id = 1;
    if (!srv_table_group(t, (cp_str){ "default", 7 }, true)) {
        free(outdir);
        free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

void srv_table_on_finish(srv_table *t, void (*fn)(srv_rec *r, void *arg), void *arg)
{
    t->on_finish = fn;
    t->on_finish_arg = arg;
}

/* ---- records ---- */

void srv_rec_ref(srv_rec *r)
{
    r->nuse++;
}

static void srv_rec_release_stage(srv_rec *r)
{
    for (size_t i = 0; i < r->ndeps; i++) {
        co_future_remove_cb(&r->deps[i].cb);
        co_task_unref(r->deps[i].task);
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
        co_task_cancel(r->body, NULL); /* a no-op once it has ended */
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
    if (--r->nuse)
        return;
    srv_rec_release_stage(r);
    co_future_remove_cb(&r->done_cb);
    co_task_unref(r->task);
    free(r->name);
    free(r->command);
    free(r);
}

uint64_t srv_rec_id(const srv_rec *r) { return r->id; }
uint32_t srv_rec_owner(const srv_rec *r) { return r->owner; }
const char *srv_rec_group_name(const srv_rec *r) { return r->group->name; }
const char *srv_rec_kind_name(const srv_rec *r) { return r->kind->name; }
bool srv_rec_has_output(const srv_rec *r) { return r->kind->has_output; }
bool srv_rec_terminal(const srv_rec *r) { return r->stage == ST_DONE; }
const char *srv_table_output_dir(const srv_table *t) { return t->env.output_dir; }
co_future *srv_rec_future(srv_rec *r) { return co_task_future(r->task); }
srv_rec *srv_table_first(srv_table *t)
{
    co_queue *q = co_queue_first(&t->recs);
    return q ? co_queue_data(q, srv_rec, node) : NULL;
}

srv_rec *srv_rec_next(srv_table *t, const srv_rec *r)
{
    co_queue *q = co_queue_after(&t->recs, &r->node);
    return q ? co_queue_data(q, srv_rec, node) : NULL;
}

const char *srv_rec_state(const srv_rec *r)
{
    co_state st = co_future_state(co_task_future(r->task));
    if (st != CO_PENDING)
        return co_state_name(st);
    return r->stage == ST_RUNNING ? "running" : "pending";
}

void srv_rec_pack(cp_out *o, const srv_rec *r)
{
    co_future *f = co_task_future(r->task);
    co_state st = co_future_state(f);
    size_t vlen = 0;
    const uint8_t *v = co_value_bytes(co_future_value(f), &vlen);
    cp_record c = {
        .id = r->id, .kind = r->kind->name, .name = r->name, .group = r->group->name,
        .state = srv_rec_state(r), .owner_uid = r->owner, .created_at = r->created_at,
        .started_at = r->started_at, .finished_at = r->finished_at, .attempts = r->attempts,
        .command = r->command,
    };
    if (st == CO_SUCCEEDED)
        c.result = v, c.result_len = vlen;
    else if (st == CO_FAILED || st == CO_CANCELLED)
        c.error = v, c.error_len = vlen;
    cp_pack_record(o, &c);
}

srv_rec *srv_table_get(srv_table *t, uint64_t id, uint32_t uid)
{
    srv_rec *r = srv_index_get(&t->index, id);
    if (!r || (uid != 0 && r->owner != uid))
        return NULL; /* another uid's task does not exist, as far as this caller knows */
    return r;
}

/* The group's queued records that may start now, started. Re-entry (a start that fails
 * ends its record, which pumps again) is folded into the running loop. */
static void srv_rec_start(srv_rec *r);

static void srv_group_pump(srv_group *g)
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
        g->running--;
        if (r->ready.work)
            g->busy--;
    } else {
        g->pending--;
        if (r->stage == ST_READY)
            srv_group_dequeue(g, &r->ready);
    }
}

/* Bookkeeping as the record ends, then the outcome. Consumes *v. */
static void srv_rec_finish(srv_rec *r, co_state st, co_value *v)
{
    srv_table *t = r->table;
    bool freed_slot = r->stage == ST_RUNNING && r->ready.work;
    srv_rec_leave_stage(r);
    srv_uid_count *u = srv_uid(t, r->owner, false);
    if (u && u->active)
        u->active--;
    r->stage = ST_DONE;
    r->finished_at = srv_now();
    srv_rec_ref(r); /* releasing the stage may drop the last task reference elsewhere */
    srv_rec_release_stage(r);
    co_task_finish(r->task, st, v);
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

typedef struct srv_unlink {
    uv_work_t req;
    char path[2][4096];
} srv_unlink;

static void srv_unlink_work(uv_work_t *req)
{
    srv_unlink *u = req->data;
    for (int i = 0; i < 2; i++)
        unlink(u->path[i]); /* ENOENT for a stream the job never wrote */
}

static void srv_unlink_done(uv_work_t *req, int status)
{
    (void)status;
    free(req->data);
}

/* The output files of an evicted record go too: both in one trip to the thread pool,
 * and nobody waits for it. */
static void srv_rec_drop_output(srv_table *t, srv_rec *r)
{
    if (!r->kind->has_output)
        return;
    srv_unlink *u = malloc(sizeof *u);
    if (!u)
        return;
    u->req.data = u;
    if (kind_output_path(t->env.output_dir, r->id, 1, u->path[0], sizeof u->path[0]) < 0 ||
        kind_output_path(t->env.output_dir, r->id, 2, u->path[1], sizeof u->path[1]) < 0 ||
        uv_queue_work(co_sched_loop(t->sched), &u->req, srv_unlink_work, srv_unlink_done) < 0)
        free(u);
}

/* Runs from the loop after the record ended: all-subscriptions, then the retention queue
 * (srv_table_trim evicts from it). */
static void srv_rec_done(co_future *f, void *arg)
{
    (void)f;
    srv_rec *r = arg;
    srv_table *t = r->table;
    if (t->on_finish)
        t->on_finish(r, t->on_finish_arg);
    if (!r->in_table) {
        srv_rec_unref(r);
        return;
    }
    co_queue_insert_tail(&t->fin, &r->fin_node);
    t->finished++;
    srv_rec_unref(r); /* this callback's reference */
}

void srv_table_trim(srv_table *t)
{
    while (t->finished > t->lim.retain) {
        srv_rec *old = co_queue_data(co_queue_first(&t->fin), srv_rec, fin_node);
        co_queue_remove(&old->fin_node);
        t->finished--;
        srv_index_del(&t->index, old->id);
        co_queue_remove(&old->node);
        old->in_table = false;
        srv_rec_drop_output(t, old);
        srv_rec_unref(old);
    }
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
        srv_rec_wait(r, r->retry_delay);
        if (freed_slot)
            srv_group_pump(r->group);
        return;
    }
    /* The body is the record's alone: its value moves into the record, never copied (a
     * copy once held every result twice while the record was kept). */
    co_value v;
    co_future_take_value(f, &v);
    srv_rec_finish(r, st, &v);
}

static void srv_rec_start(srv_rec *r)
{
    srv_table *t = r->table;
    kind_start ks = {
        .sched = t->sched,
        .opts = { .id = r->id, .name = r->name, .timeout = r->timeout },
        .args = r->args,
        .refs = r->refs,
        .nrefs = r->nrefs,
        .owner = r->owner,
        .env = &t->env,
    };
    co_task *body;
    int rc = r->kind->start(&ks, &body);
    if (rc < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot start the %s body: %s", r->kind->name, co_strerror(rc));
        srv_rec_fail(r, "internal", msg);
        return;
    }
    r->stage = ST_RUNNING;
    r->group->pending--;
    r->group->running++;
    if (r->ready.work)
        r->group->busy++;
    r->started_at = srv_now();
    r->attempts++;
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
        srv_rec_fail(r, "internal", "out of memory queueing the task");
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
        srv_rec_fail(r, "internal", "out of memory arming the delay");
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
    if (--r->deps_left == 0)
        srv_rec_wait(r, r->delay);
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

static const co_task_body srv_rec_body = { .cancel = srv_rec_cancel_hook };

bool srv_rec_cancel(srv_rec *r, const char *msg)
{
    return co_task_cancel(r->task, msg);
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
            co_future_add_cb(co_task_future(r->deps[i].task), &r->deps[i].cb, srv_dep_done, &r->deps[i]);
        return;
    }
    srv_rec_wait(r, r->delay);
}

/* Resolve ids to the tasks of records `uid` may see, taking a reference on each. */
static int srv_resolve(srv_table *t, uint32_t uid, const uint64_t *ids, size_t n, const char *field,
                       co_task **out, cp_error *err)
{
    for (size_t i = 0; i < n; i++) {
        srv_rec *d = srv_table_get(t, ids[i], uid);
        if (!d) {
            for (size_t j = 0; j < i; j++)
                co_task_unref(out[j]);
            return cp_fail(err, CP_NOT_FOUND, "%s: task %llu not found", field, (unsigned long long)ids[i]);
        }
        co_task_ref(d->task);
        out[i] = d->task;
    }
    return 0;
}

int srv_table_submit(srv_table *t, uint32_t uid, const msgpack_object *params, srv_rec **out,
                     cp_error *err)
{
    cp_spec sp;
    int rc = cp_spec_parse(params, &sp, err);
    if (rc < 0) {
        cp_spec_free(&sp);
        return rc;
    }
    const kind_ops *kind = kind_find(sp.kind);
    if (!kind || !kind->available) {
        rc = kind ? cp_fail(err, CP_BAD_REQUEST, "kind \"%s\" is not available in this version of corod", kind->name)
                  : cp_fail(err, CP_BAD_REQUEST, "unknown kind \"%.*s\" (known: sleep, gather, exec)",
                            (int)sp.kind.len, sp.kind.ptr);
        cp_spec_free(&sp);
        return rc;
    }
    /* malloc, not calloc: glibc's calloc never takes a chunk from the thread cache, where
     * the record retention just evicted waits (~200 instructions on every submit). */
    srv_rec *r = malloc(sizeof *r);
    co_task **deps = NULL;
    if (!r) {
        cp_spec_free(&sp);
        return cp_fail(err, CP_INTERNAL, "out of memory");
    }
    *r = (srv_rec){ .kind = kind, .nuse = 1, .table = t, .started_at = NAN, .finished_at = NAN };
    assert(kind->args_size <= sizeof r->args_block);
    if ((rc = kind->validate(sp.args, &t->env, &r->args_block, err)) < 0)
        goto fail;
    r->args = &r->args_block;

    srv_uid_count *u = srv_uid(t, uid, true);
    if (!u) {
        rc = cp_fail(err, CP_INTERNAL, "out of memory");
        goto fail;
    }
    if (u->active >= t->lim.max_active_per_uid) {
        rc = cp_fail(err, CP_QUOTA_EXCEEDED, "uid %u already has %zu tasks pending or running (limit %zu)",
                     uid, u->active, t->lim.max_active_per_uid);
        goto fail;
    }
    /* Most tasks name no group: the default one is first, no lookup needed. */
    if (!(r->group = sp.has_group ? srv_table_group(t, sp.group, true) : t->groups)) {
        rc = cp_fail(err, CP_QUOTA_EXCEEDED, "cannot create group \"%.*s\": at most %u groups",
                     (int)sp.group.len, sp.group.ptr, SRV_MAX_GROUPS);
        goto fail;
    }
    /* Dependencies and the kind's references must exist and be visible now. */
    if (sp.n_after) {
        deps = calloc(sp.n_after, sizeof *deps);
        r->deps = calloc(sp.n_after, sizeof *r->deps);
        if (!deps || !r->deps) {
            rc = cp_fail(err, CP_INTERNAL, "out of memory");
            goto fail;
        }
        if ((rc = srv_resolve(t, uid, sp.after, sp.n_after, "after", deps, err)) < 0)
            goto fail;
        for (size_t i = 0; i < sp.n_after; i++)
            r->deps[i] = (srv_dep){ .rec = r, .task = deps[i], .id = sp.after[i] };
        r->ndeps = sp.n_after;
        free(deps);
        deps = NULL;
    }
    const uint64_t *ids;
    size_t nids;
    kind->refs(r->args, &ids, &nids);
    if (nids) {
        co_task **tasks = calloc(nids, sizeof *tasks);
        if (!tasks) {
            rc = cp_fail(err, CP_INTERNAL, "out of memory");
            goto fail;
        }
        if ((rc = srv_resolve(t, uid, ids, nids, "args.ids", tasks, err)) < 0) {
            free(tasks);
            goto fail;
        }
        /* The same references, as the futures the kind waits on. */
        r->refs = (co_future **)calloc(nids, sizeof *r->refs);
        if (!r->refs) {
            for (size_t i = 0; i < nids; i++)
                co_task_unref(tasks[i]);
            free(tasks);
            rc = cp_fail(err, CP_INTERNAL, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < nids; i++)
            r->refs[i] = co_task_future(tasks[i]);
        free(tasks);
        r->nrefs = nids;
    }
    if (kind->command && !(r->command = strdup(kind->command(r->args)))) {
        rc = cp_fail(err, CP_INTERNAL, "out of memory");
        goto fail;
    }
    if (sp.has_name && !(r->name = strndup(sp.name.ptr, sp.name.len))) {
        rc = cp_fail(err, CP_INTERNAL, "out of memory");
        goto fail;
    }
    r->id = t->next_id;
    co_task_opts o = { .id = r->id, .name = r->name, .shielded = sp.shield };
    if ((rc = co_custom_task(t->sched, &srv_rec_body, r, &o, &r->task)) < 0) {
        rc = cp_fail(err, CP_INTERNAL, "out of memory");
        goto fail;
    }
    if (srv_index_put(&t->index, r->id, r) < 0) {
        co_task_unref(r->task);
        r->task = NULL;
        rc = cp_fail(err, CP_INTERNAL, "out of memory");
        goto fail;
    }
    t->next_id++;
    r->owner = uid;
    r->priority = sp.priority;
    r->delay = sp.delay;
    r->timeout = sp.timeout;
    r->retries = (uint32_t)sp.retries;
    r->retry_delay = sp.retry_delay;
    r->ready.idx = SRV_NOT_QUEUED;
    r->ready.work = kind->takes_slot;
    r->shield = sp.shield;
    r->created_at = srv_now();
    r->stage = ST_ARMING;
    r->in_table = true;
    r->group->pending++;
    u->active++;
    co_queue_insert_tail(&t->recs, &r->node);
    co_queue_init(&r->fin_node);
    srv_rec_ref(r); /* the done callback's */
    co_future_add_cb(co_task_future(r->task), &r->done_cb, srv_rec_done, r);
    cp_spec_free(&sp);
    *out = r;
    return 0;
fail:
    free(deps);
    cp_spec_free(&sp);
    srv_rec_release_stage(r);
    free(r->name);
    free(r->command);
    free(r);
    return rc;
}

void srv_table_free(srv_table *t)
{
    if (!t)
        return;
    /* End what still runs, so nothing calls back into freed records. */
    co_queue *q;
    co_queue_foreach(q, &t->recs) {
        srv_rec *r = co_queue_data(q, srv_rec, node);
        if (r->stage != ST_DONE) {
            srv_rec_ref(r);
            srv_rec_finish(r, CO_CANCELLED, NULL);
            srv_rec_unref(r);
        }
    }
    while ((q = co_queue_first(&t->recs))) {
        srv_rec *r = co_queue_data(q, srv_rec, node);
        co_queue_remove(q);
        co_queue_remove(&r->fin_node);
        r->in_table = false;
        if (r->done_cb.fut) { /* its done callback will not run now: drop its reference */
            co_future_remove_cb(&r->done_cb);
            srv_rec_unref(r);
        }
        srv_rec_unref(r);
    }
    while (t->groups) {
        srv_group *g = t->groups;
        t->groups = g->next;
        srv_group_free(g);
    }
    srv_index_free(&t->index);
    free(t->uids);
    free((char *)t->env.output_dir);
    free(t);
}
