/* srv_table.c: the task table — submits becoming records, lookups by id, and retention
 * per uid. The lifecycle of a record once it exists is srv_rec.c's. */
#include "srv_rec.h"
#include "sy_log.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

/* ---- groups ---- */

srv_group *srv_table_groups(srv_table *t)
{
    co_queue *q = co_queue_first(&t->groups.all);
    return q ? co_queue_data(q, srv_group, node) : NULL;
}

srv_group *srv_group_next(srv_table *t, const srv_group *g)
{
    co_queue *q = co_queue_after(&t->groups.all, &g->node);
    return q ? co_queue_data(q, srv_group, node) : NULL;
}

const char *srv_group_name(const srv_group *g) { return g->name; }

srv_group *srv_table_find_group(srv_table *t, cp_str name)
{
    return srv_groups_find(&t->groups, name);
}

srv_group *srv_table_configure_group(srv_table *t, cp_str name)
{
    return srv_groups_configure(&t->groups, name);
}

int srv_table_remove_group(srv_table *t, cp_str name, cp_error *err)
{
    srv_group *g = srv_groups_find(&t->groups, name);
    if (!g || !g->configured)
        return cp_fail(err, CP_NOT_FOUND, "no group \"%.*s\" set up (groups a submit named go by themselves)",
                       (int)name.len, name.ptr);
    if (g == t->groups.deflt)
        return cp_fail(err, CP_INVALID_STATE, "the default group cannot be removed");
    if (g->pending || g->running)
        return cp_fail(err, CP_INVALID_STATE,
                       "group \"%s\" has %zu tasks pending and %zu running: cancel them, or edit them into another "
                       "group, first", g->name, g->pending, g->running);
    int rc;
    if (t->store && (rc = st_drop_group(t->store, g->name)) < 0)
        return cp_fail(err, CP_INTERNAL, "cannot store the change: %s", strerror(-rc));
    srv_groups_unconfigure(&t->groups, g);
    return 0;
}

int srv_table_set_group(srv_table *t, srv_group *g, const uint32_t *parallel, const bool *paused)
{
    if (parallel)
        g->parallel = *parallel;
    if (paused)
        g->paused = *paused;
    if (t->store) {
        st_group row = { .name = g->name, .parallel = g->parallel, .paused = g->paused, .users = g->allowed,
                         .nusers = g->nallowed, .slurm = g->slurm_blob, .slurm_len = g->slurm_len };
        int rc = st_put_group(t->store, &row);
        if (rc < 0)
            return rc;
    }
    srv_group_pump(g); /* more slots, or resumed: start what may start now */
    return 0;
}

static void srv_spawns_ref(void *arg)
{
    ((srv_spawns *)arg)->refs++;
}

static void srv_spawns_unref(void *arg)
{
    srv_spawns *sp = arg;
    if (--sp->refs == 0)
        free(sp);
}

/* Its process group and session: what a restart kills of it, should the daemon die. */
static void srv_spawns_note(void *arg, uint64_t id, int64_t pid, double at)
{
    srv_spawns *sp = arg;
    int rc;
    if (sp->store && (rc = st_spawned(sp->store, id, pid, at)) < 0)
        sy_log(LOG_ERR, "cannot queue the store's write for task %llu: %s", (unsigned long long)id,
                co_strerror(rc));
}

static void srv_spawns_output(void *arg, uint64_t id)
{
    srv_spawns *sp = arg;
    if (sp->on_output)
        sp->on_output(sp->on_output_arg, id);
}

/* A Slurm group's job went to srun (job 0), then Slurm named it: written for a restart to
 * cancel, and shown in its record. */
static void srv_spawns_slurm(void *arg, uint64_t id, uint64_t job, const char *nodes)
{
    srv_spawns *sp = arg;
    int rc;
    if (sp->store && (rc = st_slurm(sp->store, id, job)) < 0)
        sy_log(LOG_ERR, "cannot queue the store's write for task %llu: %s", (unsigned long long)id,
               co_strerror(rc));
    srv_rec *r = sp->table && job ? srv_index_get(&sp->table->index, id) : NULL;
    if (!r)
        return;
    cp_out o;
    cp_out_init(&o);
    cp_out_map(&o, 2);
    cp_out_lit(&o, "job");
    cp_out_uint(&o, job);
    cp_out_lit(&o, "nodes");
    cp_out_str(&o, nodes);
    if (cp_out_failed(&o)) {
        cp_out_free(&o);
        return; /* out of memory: the record does not show it, the store has it */
    }
    uint32_t len = (uint32_t)o.size;
    srv_rec_set_slurm(r, cp_out_release(&o), len);
}

const kind_hooks srv_spawn_hooks = { .spawned = srv_spawns_note, .output = srv_spawns_output, .slurm = srv_spawns_slurm,
                                     .ref = srv_spawns_ref, .unref = srv_spawns_unref };

void srv_table_on_output(srv_table *t, void (*fn)(void *arg, uint64_t id), void *arg)
{
    t->spawns->on_output = fn;
    t->spawns->on_output_arg = arg;
}

void srv_table_bump_id(srv_table *t, uint64_t next)
{
    if (next > t->next_id)
        t->next_id = next;
}

int srv_table_set_store(srv_table *t, st_store *st)
{
    t->store = st;
    t->spawns->store = st;
    return 0;
}

/* ---- the table -------------------------------------------------------------------------- */

static void srv_reclaim_disk(ex_disk *d, uint64_t need, void *arg);

void srv_table_set_limits(srv_table *t, const srv_limits *l)
{
    t->lim.retain = l->retain ? l->retain : SRV_RETAIN_DEFAULT;
    t->lim.max_active_per_uid = l->max_active_per_uid ? l->max_active_per_uid : SRV_MAX_ACTIVE_PER_UID;
    t->lim.max_uid_memory = l->max_uid_memory ? l->max_uid_memory : SRV_UID_MEMORY_DEFAULT;
    t->lim.max_uid_groups = l->max_uid_groups;
    t->groups.max_per_uid = l->max_uid_groups ? l->max_uid_groups : SRV_MAX_GROUPS_PER_UID;
    t->lim.has_grace = l->has_grace;
    t->lim.grace = l->grace;
    t->lim.output_limit = l->output_limit;
    t->lim.spawn_timeout = l->spawn_timeout;
    /* Jobs started from now on read these; running ones keep what they started with. */
    t->env.grace = l->has_grace ? l->grace : KIND_GRACE_DEFAULT;
    t->env.output_limit = l->output_limit;
    t->env.spawn_timeout = l->spawn_timeout > 0 ? l->spawn_timeout : KIND_SPAWN_TIMEOUT;
    /* Smaller bounds on what is kept: every uid is trimmed now, not at its next end. */
    srv_acct *ac;
    for (size_t at = 0; (ac = srv_index_next(&t->accts.by_uid, &at));)
        if ((ac->retained > t->lim.retain || ac->bytes > t->lim.max_uid_memory) && !co_queue_linked(&ac->trim_node))
            co_queue_insert_tail(&t->trim, &ac->trim_node);
    srv_table_trim(t);
}

int srv_table_new(co_sched *s, const srv_limits *l, srv_table **out)
{
    srv_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->sched = s;
    if (!(t->spawns = calloc(1, sizeof *t->spawns))) {
        free(t);
        return -ENOMEM;
    }
    t->spawns->refs = 1;
    t->spawns->table = t;
    t->lim = l ? *l : (srv_limits){ 0 };
    co_queue_init(&t->recs);
    co_queue_init(&t->trim);
    srv_index_init(&t->index);
    cp_out_init(&t->spec_buf);
    if (!t->lim.max_uid_output)
        t->lim.max_uid_output = SRV_UID_OUTPUT_DEFAULT;
    srv_accts_init(&t->accts, (uint32_t)geteuid(),
                   t->lim.max_uid_output == SRV_UNBOUNDED ? 0 : t->lim.max_uid_output, srv_reclaim_disk);
    if (!t->lim.retain)
        t->lim.retain = SRV_RETAIN_DEFAULT;
    if (!t->lim.max_active_per_uid)
        t->lim.max_active_per_uid = SRV_MAX_ACTIVE_PER_UID;
    if (!t->lim.max_uid_memory)
        t->lim.max_uid_memory = SRV_UID_MEMORY_DEFAULT;
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
        free(t->spawns);
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
        .restore = t->lim.restore,
        .spawn_timeout = t->lim.spawn_timeout > 0 ? t->lim.spawn_timeout : KIND_SPAWN_TIMEOUT,
        .cgroups = t->lim.cgroups,
        .cgroups_why = t->lim.cgroups_why,
        .slurm = t->lim.slurm,
        .slurm_tag = t->lim.slurm_tag,
    };
    t->next_id = 1;
    if (srv_groups_init(&t->groups, t->lim.default_parallel, t->lim.max_uid_groups) < 0) {
        free(outdir);
        free(t->spawns);
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

const char *srv_table_output_dir(const srv_table *t) { return t->env.output_dir; }

srv_acct *srv_table_acct(srv_table *t, uint32_t uid)
{
    return srv_acct_get(&t->accts, uid);
}

bool srv_table_has(srv_table *t, uint64_t id)
{
    return srv_index_get(&t->index, id) != NULL;
}

bool srv_table_kept_only(srv_table *t, uint64_t id)
{
    return t->store && id > 0 && id < t->next_id && !srv_index_get(&t->index, id);
}

srv_rec *srv_table_get(srv_table *t, uint64_t id, uint32_t uid)
{
    srv_rec *r = srv_index_get(&t->index, id);
    if (!r || (uid != 0 && r->acct->uid != uid))
        return NULL; /* another uid's task does not exist, as far as this caller knows */
    return r;
}

/* Records in id order: every one (root's view), or one uid's. */
srv_rec *srv_table_first(srv_table *t, uint32_t uid)
{
    if (uid == 0) {
        co_queue *q = co_queue_first(&t->recs);
        return q ? co_queue_data(q, srv_rec, node) : NULL;
    }
    srv_acct *ac = srv_acct_find(&t->accts, uid);
    co_queue *q = ac ? co_queue_first(&ac->recs) : NULL;
    return q ? co_queue_data(q, srv_rec, acct_node) : NULL;
}

srv_rec *srv_table_after(srv_table *t, uint64_t after, uint32_t uid)
{
    srv_rec *r = srv_table_get(t, after, uid);
    if (r)
        return srv_rec_next(t, r, uid);
    /* Evicted since (or never the caller's): from the start, past the ids before it —
     * at most the caller's own records (retained plus active), the size of one scan. */
    for (r = srv_table_first(t, uid); r && r->id <= after; r = srv_rec_next(t, r, uid))
        ;
    return r;
}

srv_rec *srv_rec_next(srv_table *t, const srv_rec *r, uint32_t uid)
{
    if (uid == 0) {
        co_queue *q = co_queue_after(&t->recs, &r->node);
        return q ? co_queue_data(q, srv_rec, node) : NULL;
    }
    co_queue *q = co_queue_after(&r->acct->recs, &r->acct_node);
    return q ? co_queue_data(q, srv_rec, acct_node) : NULL;
}

/* ---- retention ---------------------------------------------------------------------------- */

/* A removal on the thread pool, with its own copy of the directory: a burst of evictions
 * (a uid's share of the disk made room at once) queues one of these each. */
typedef struct srv_unlink {
    uv_work_t req;
    uint64_t id;
    char dir[];
} srv_unlink;

static void srv_unlink_work(uv_work_t *req)
{
    srv_unlink *u = req->data;
    kind_output_remove(u->dir, u->id);
}

static void srv_unlink_done(uv_work_t *req, int status)
{
    (void)status;
    free(req->data);
}

/* The output files of an evicted record go too, and nobody waits for it. */
static void srv_rec_drop_output(srv_table *t, srv_rec *r)
{
    if (!r->kind->has_output)
        return;
    size_t len = strlen(t->env.output_dir) + 1;
    srv_unlink *u = malloc(sizeof *u + len);
    if (!u)
        return;
    u->req.data = u;
    u->id = r->id;
    memcpy(u->dir, t->env.output_dir, len);
    if (uv_queue_work(co_sched_loop(t->sched), &u->req, srv_unlink_work, srv_unlink_done) < 0)
        free(u);
}

/* A finished record leaves memory (those who still hold it keep it): the bytes of its
 * output files go back to the owner's share of the disk at once. With a store, its row
 * stays as history (get, wait, list, output read it there), its files with it — they go
 * with the row (the writer removes them), and count in the owner's bytes in the store
 * meanwhile — unless `forget`: the owner's share of the disk needed the room, and the
 * record goes altogether. Without one, the files go now. */
static void srv_evict(srv_table *t, srv_acct *ac, srv_rec *old, bool forget)
{
    assert(old->stage == ST_DONE && old->in_table);
    if (co_queue_linked(&old->fin_node)) { /* else its end is not seen yet (restored) */
        co_queue_remove(&old->fin_node);
        ac->retained--;
    }
    srv_index_del(&t->index, old->id);
    co_queue_remove(&old->node);
    co_queue_remove(&old->acct_node);
    old->in_table = false;
    if (old->disk)
        ex_disk_forget(old->disk);
    if (!t->store)
        srv_rec_drop_output(t, old);
    int rc;
    if (forget && t->store && !old->unstored && (rc = st_forget(t->store, old->id)) < 0)
        sy_log(LOG_ERR, "cannot queue the store's write for task %llu: %s", (unsigned long long)old->id,
                co_strerror(rc));
    srv_rec_unref(old);
}

void srv_table_drop(srv_table *t, srv_rec *r, const char *why)
{
    r->unstored = true;
    if (r->stage != ST_DONE) {
        co_value e;
        co_value_error(&e, CP_UNAVAILABLE, why);
        srv_rec_ref(r);
        srv_rec_finish(r, CO_FAILED, &e);
        srv_rec_unref(r);
    }
    if (!r->in_table)
        return;
    if (co_queue_linked(&r->fin_node)) { /* its end was seen already: it was retained */
        co_queue_remove(&r->fin_node);
        r->acct->retained--;
    }
    srv_index_del(&t->index, r->id);
    co_queue_remove(&r->node);
    co_queue_remove(&r->acct_node);
    r->in_table = false;
    if (r->disk)
        ex_disk_forget(r->disk);
    srv_rec_unref(r);
}

int srv_table_forget(srv_table *t, uint64_t id)
{
    srv_rec *r = srv_index_get(&t->index, id);
    if (r && !(r->stage == ST_DONE && r->in_table && co_queue_linked(&r->fin_node)))
        return -EBUSY; /* not ended (or its end not yet seen): it stays */
    if (r) {
        srv_evict(t, r->acct, r, true);
        return 0;
    }
    int rc = t->store ? st_forget(t->store, id) : -ENOENT;
    if (rc == -ENOMEM)
        sy_log(LOG_ERR, "cannot queue the store's write for task %llu: %s", (unsigned long long)id,
                co_strerror(rc));
    return rc;
}

void srv_table_deleted(srv_table *t, const uint64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        srv_rec *r = srv_index_get(&t->index, ids[i]);
        if (r && r->stage == ST_DONE && r->in_table)
            srv_evict(t, r->acct, r, false);
    }
}

static void srv_evict_oldest(srv_table *t, srv_acct *ac)
{
    srv_evict(t, ac, co_queue_data(co_queue_first(&ac->fin), srv_rec, fin_node), false);
}

/* A job of ac's would write past its share of the disk: its oldest finished records with
 * output go until `need` more bytes fit, or none is left. */
static void srv_reclaim_disk(ex_disk *d, uint64_t need, void *arg)
{
    srv_acct *ac = arg;
    srv_table *t = co_container_of(ac->home, srv_table, accts);
    co_queue *q = co_queue_first(&ac->fin);
    while (q && d->used + need > d->limit) {
        srv_rec *r = co_queue_data(q, srv_rec, fin_node);
        q = co_queue_after(&ac->fin, q);
        if (r->disk && r->disk->bytes)
            srv_evict(t, ac, r, true);
    }
}

bool srv_table_make_room(srv_table *t, srv_acct *ac, size_t need)
{
    size_t max = t->lim.max_uid_memory;
    while (ac->bytes + need > max && ac->retained)
        srv_evict_oldest(t, ac);
    return ac->bytes + need <= max;
}

void srv_table_trim(srv_table *t)
{
    co_queue *q;
    while ((q = co_queue_first(&t->trim))) {
        srv_acct *ac = co_queue_data(q, srv_acct, trim_node);
        co_queue_remove(q);
        srv_acct_ref(ac); /* evicting its last record must not free it under us */
        while (ac->retained && (ac->retained > t->lim.retain || ac->bytes > t->lim.max_uid_memory))
            srv_evict_oldest(t, ac);
        srv_acct_unref(ac);
    }
}

/* ---- submit ------------------------------------------------------------------------------ */

/* A submit on its way to becoming a record: each phase checks what it can and takes the
 * references the record will hold, so that only memory can fail the insert, and one
 * srv_submit_free gives back whatever a failed submit had taken. */
typedef struct srv_submit {
    const msgpack_object *params;
    const st_task *row; /* restoring this row of the store: admitted when it was submitted */
    uint64_t restarted_from; /* a `restart` of this task */
    bool room;          /* ... yet it must fit its owner's memory share (read back) */
    cp_spec sp;
    const kind_ops *kind;
    kind_args_block args;
    bool has_args;
    srv_acct *acct;     /* referenced */
    srv_group *group;   /* referenced */
    co_future **after;  /* sp.n_after, referenced */
    co_future **refs;   /* the kind's, nrefs, referenced */
    size_t nrefs;
    size_t bytes;       /* what the record will count for */
} srv_submit;

static void srv_futures_free(co_future **f, size_t n)
{
    if (!f)
        return;
    for (size_t i = 0; i < n; i++)
        if (f[i])
            co_future_unref(f[i]);
    free(f);
}

static void srv_submit_free(srv_submit *s)
{
    srv_futures_free(s->after, s->sp.n_after);
    srv_futures_free(s->refs, s->nrefs);
    if (s->has_args && s->kind->free)
        s->kind->free(&s->args);
    if (s->group)
        srv_group_unref(s->group);
    if (s->acct)
        srv_acct_unref(s->acct);
    cp_spec_free(&s->sp);
}

/* The spec's common fields, the kind, and the kind's args. */
static int srv_submit_parse(srv_table *t, const msgpack_object *params, srv_submit *s, cp_error *err)
{
    int rc = cp_spec_parse(params, &s->sp, err);
    if (rc < 0)
        return rc;
    if (!(s->kind = kind_find(s->sp.kind)))
        return cp_fail(err, CP_BAD_REQUEST, "unknown kind \"%.*s\" (known: sleep, gather, exec)",
                       (int)s->sp.kind.len, s->sp.kind.ptr);
    if (!s->kind->available)
        return cp_fail(err, CP_BAD_REQUEST, "kind \"%s\" is not available in this version of corod", s->kind->name);
    assert(s->kind->args_size <= sizeof s->args);
    if ((rc = s->kind->validate(s->sp.args, &t->env, &s->args, err)) < 0)
        return rc;
    s->has_args = true;
    return 0;
}

/* The group, and with it the default priority for a task that gives none. */
static int srv_submit_group(srv_table *t, srv_acct *ac, srv_submit *s, cp_error *err)
{
    int rc = 0;
    if (s->sp.has_group) {
        rc = srv_groups_for_submit(&t->groups, s->sp.group, ac, &s->group, err);
    } else { /* most tasks name no group: the default one, no lookup needed */
        s->group = t->groups.deflt;
        srv_group_ref(s->group);
    }
    if (rc == 0 && !s->sp.has_priority)
        s->sp.priority = s->group->priority;
    const char *why;
    if (rc == 0 && !s->row && s->has_args && s->kind->misfit &&
        (why = s->kind->misfit(&s->args, s->group->slurm != NULL)))
        rc = cp_fail(err, CP_BAD_REQUEST, "%s (group \"%s\" runs its jobs %s)", why, s->group->name,
                     s->group->slurm ? "on Slurm" : "here");
    return rc;
}

/* The owner's share of tasks, its right to the priority, and the group. */
static int srv_submit_admit(srv_table *t, uint32_t uid, srv_submit *s, cp_error *err)
{
    if (!(s->acct = srv_acct_get(&t->accts, uid)))
        return cp_fail(err, CP_INTERNAL, "out of memory");
    srv_acct *ac = s->acct;
    if (s->row) {
        /* Admitted once already: the limits of today do not take back what was accepted,
         * nor does a group's list of users (it is restored as it was, too). */
        bool priv = ac->privileged;
        ac->privileged = true;
        int rc = srv_submit_group(t, ac, s, err);
        ac->privileged = priv;
        return rc;
    }
    if (ac->active >= t->lim.max_active_per_uid)
        return cp_fail(err, CP_QUOTA_EXCEEDED, "uid %u already has %zu tasks pending or running (limit %zu)",
                       uid, ac->active, t->lim.max_active_per_uid);
    /* Priorities order a group's queue across its users: above 0 is root's, as with nice
     * (a group's default priority is root's choice: the configuration's). */
    if (s->sp.priority > 0 && !ac->privileged)
        return cp_fail(err, CP_PERMISSION_DENIED, "priority %lld: only root may give a priority above 0",
                       (long long)s->sp.priority);
    return srv_submit_group(t, ac, s, err);
}

static int srv_copy_row(const st_task *row, void *arg)
{
    *(st_task **)arg = st_task_copy(row);
    return *(st_task **)arg ? 0 : -ENOMEM;
}

/* At start only ended records that active ones refer to (an `after`, a gather's member)
 * come back into memory, read from the store as they are needed: records come back in
 * id order, so what they refer to is older and has been restored if it was active. */
static srv_rec *srv_restore_ref(srv_table *t, uint64_t id, uint32_t uid)
{
    st_task *row = NULL;
    srv_rec *r = NULL;
    cp_error err;
    if (!t->loading || st_read(t->loading, &id, 1, srv_copy_row, &row) < 0 || !row)
        return NULL;
    if (row->state >= ST_TASK_SUCCEEDED && srv_table_restore(t, row, false, &r, &err) == 0)
        srv_rec_resume(r, row, srv_now());
    free(row);
    return r ? srv_table_get(t, id, uid) : NULL;
}

/* ids to the futures of records `uid` may see, each referenced. With `restoring`, an id
 * not in memory is read back from the store; an `after` no longer kept at all is left
 * NULL (it ended before the restart, and a dependency that failed would have failed its
 * dependents then). */
static int srv_resolve(srv_table *t, uint32_t uid, const uint64_t *ids, size_t n, const char *field,
                       bool restoring, bool gone_ok, co_future ***out, cp_error *err)
{
    co_future **f = calloc(n, sizeof *f);
    if (!f)
        return cp_fail(err, CP_INTERNAL, "out of memory");
    *out = f;
    for (size_t i = 0; i < n; i++) {
        srv_rec *d = srv_table_get(t, ids[i], uid);
        if (!d && restoring)
            d = srv_restore_ref(t, ids[i], uid);
        if (!d && gone_ok)
            continue;
        if (!d)
            return cp_fail(err, CP_NOT_FOUND, "%s: task %llu not found", field, (unsigned long long)ids[i]);
        f[i] = co_task_future(d->task);
        co_future_ref(f[i]);
    }
    return 0;
}

/* Dependencies and the kind's references must exist and be visible now. */
static int srv_submit_resolve(srv_table *t, uint32_t uid, srv_submit *s, cp_error *err)
{
    const uint64_t *ids;
    int rc = 0;
    s->kind->refs(&s->args, &ids, &s->nrefs);
    if (s->sp.n_after)
        rc = srv_resolve(t, uid, s->sp.after, s->sp.n_after, "after", s->row != NULL, s->row != NULL, &s->after,
                         err);
    if (rc == 0 && s->nrefs)
        rc = srv_resolve(t, uid, ids, s->nrefs, "args.ids", s->row != NULL, false, &s->refs, err);
    return rc;
}

/* Last, once nothing else can refuse it: the owner's share of memory, made by letting its
 * oldest finished records go (the ones it depends on are held by now). */
static int srv_submit_room(srv_table *t, srv_submit *s, cp_error *err)
{
    srv_acct *ac = s->acct;
    s->bytes = SRV_REC_FIXED + s->sp.name.len + 1 + KIND_COMMAND_MAX + s->sp.n_after * sizeof(srv_dep) +
               s->nrefs * sizeof(co_future *) + (s->has_args && s->kind->bytes ? s->kind->bytes(&s->args) : 0) +
               (s->row && s->row->state >= ST_TASK_SUCCEEDED ? s->row->outcome_len : 0);
    if (s->row && !s->room)
        return 0; /* what was kept is kept */
    if (!srv_table_make_room(t, ac, s->bytes))
        return cp_fail(err, CP_QUOTA_EXCEEDED,
                       "uid %u's tasks hold %zu bytes; this one needs %zu more, past the limit of %zu",
                       (unsigned)ac->uid, ac->bytes, s->bytes, t->lim.max_uid_memory);
    return 0;
}

/* An exec record keeps its argv as submitted, for `get` (the command line is cut). */
static int srv_submit_argv(const srv_submit *s, srv_rec *r)
{
    cp_out o;
    cp_out_init(&o);
    int rc = cp_spec_argv(s->params, &o);
    if (rc == 0 && o.size <= UINT32_MAX) {
        r->argv_len = (uint32_t)o.size;
        r->argv = cp_out_release(&o);
    }
    cp_out_free(&o);
    return rc == -ENOENT ? 0 : rc;
}

/* The record's row, as the submit made it: its params as they came (validated), packed
 * again, so a restart (and a later `restart`) parses exactly what was accepted. */
static int srv_submit_store(srv_table *t, const srv_submit *s, srv_rec *r)
{
    if (!t->store || s->row)
        return 0;
    cp_out *o = &t->spec_buf;
    cp_out_clear(o);
    msgpack_packer pk;
    msgpack_packer_init(&pk, o, cp_out_write);
    if (msgpack_pack_object(&pk, *s->params) != 0 || cp_out_failed(o))
        return -ENOMEM;
    st_task row = {
        .id = r->id, .owner = s->acct->uid, .kind = s->kind->name, .name = r->name, .group = s->group->name,
        .command = r->command, .spec = o->data, .spec_len = o->size, .created_at = r->created_at,
        .wake_at = !s->sp.n_after && s->sp.delay > 0 ? r->created_at + s->sp.delay : NAN,
        .restarted_from = s->restarted_from,
    };
    int rc = st_insert(t->store, &row);
    if (rc == 0) {
        st_set_next_id(t->store, r->id + 1);
        r->seq = st_open_seq(t->store);
    }
    if (o->cap > (64u << 10)) /* a large spec's buffer is not kept */
        cp_out_free(o);
    return rc;
}

/* The record, owning everything the submit took. Fails only for memory. */
static int srv_submit_insert(srv_table *t, srv_submit *s, srv_rec **out)
{
    /* malloc, not calloc: glibc's calloc never takes a chunk from the thread cache, where
     * the record retention just evicted waits (~200 instructions on every submit). */
    srv_rec *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = (srv_rec){ .kind = s->kind, .nuse = 1, .table = t, .id = s->row ? s->row->id : t->next_id, .started_at = NAN,
                    .finished_at = NAN, .stage = ST_ARMING, .group = s->group };
    if (!(r->ready.user = srv_group_join(s->group, s->acct->uid)) ||
        (s->kind->has_output && !(r->disk = ex_disk_use_new(s->acct->disk))) ||
        (s->sp.n_after && !(r->deps = calloc(s->sp.n_after, sizeof *r->deps))) ||
        (s->has_args && s->kind->command && !(r->command = strdup(s->kind->command(&s->args)))) ||
        (!s->has_args && s->row->command && !(r->command = strdup(s->row->command))) ||
        (s->sp.has_name && !(r->name = strndup(s->sp.name.ptr, s->sp.name.len))) ||
        (s->kind->has_output && srv_submit_argv(s, r) < 0))
        goto nomem;
    co_task_opts o = { .id = r->id, .name = r->name, .shielded = s->sp.shield };
    if (co_custom_task(t->sched, &srv_rec_body, r, &o, &r->task) < 0)
        goto nomem;
    if (srv_index_put(&t->index, r->id, r) < 0) {
        co_task_unref(r->task);
        goto nomem;
    }
    r->created_at = s->row ? s->row->created_at : srv_now();
    if (srv_submit_store(t, s, r) < 0) {
        srv_index_del(&t->index, r->id);
        co_task_unref(r->task);
        goto nomem;
    }
    /* From here on nothing fails: the record takes over what the submit held. */
    if (r->id >= t->next_id)
        t->next_id = r->id + 1;
    r->args_block = s->args;
    r->args = s->has_args ? &r->args_block : NULL;
    s->has_args = false;
    for (size_t i = 0; i < s->sp.n_after; i++)
        if (s->after[i]) /* else ended and let go before a restart: it succeeded */
            r->deps[r->ndeps++] = (srv_dep){ .rec = r, .fut = s->after[i], .id = s->sp.after[i] };
    free(s->after);
    s->after = NULL;
    r->refs = s->refs;
    r->nrefs = s->nrefs;
    s->refs = NULL;
    r->acct = s->acct;
    s->acct = NULL;
    s->group = NULL; /* the record's reference now */
    r->bytes = s->bytes + r->argv_len;
    r->acct->bytes += r->bytes;
    r->acct->active++;
    r->priority = s->sp.priority;
    r->delay = s->sp.delay;
    r->timeout = s->sp.timeout;
    r->retries = (uint32_t)s->sp.retries;
    r->retry_delay = s->sp.retry_delay;
    r->ready.idx = SRV_NOT_QUEUED;
    r->ready.work = s->kind->takes_slot;
    r->shield = s->sp.shield;
    r->restarted_from = s->row ? s->row->restarted_from : s->restarted_from;
    r->in_table = true;
    r->group->pending++;
    co_queue_insert_tail(&t->recs, &r->node);
    co_queue_insert_tail(&r->acct->recs, &r->acct_node);
    co_queue_init(&r->fin_node);
    srv_rec_ref(r); /* the done callback's */
    co_future_add_cb(co_task_future(r->task), &r->done_cb, srv_rec_done, r);
    *out = r;
    return 0;
nomem:
    if (r->ready.user)
        srv_group_leave(r->ready.user);
    if (r->disk)
        ex_disk_use_unref(r->disk);
    free(r->deps);
    free(r->command);
    free(r->argv);
    free(r->name);
    free(r);
    return -ENOMEM;
}

int srv_table_submit(srv_table *t, uint32_t uid, const msgpack_object *params, srv_rec **out,
                     cp_error *err)
{
    return srv_table_resubmit(t, uid, params, 0, out, err);
}

int srv_table_resubmit(srv_table *t, uint32_t uid, const msgpack_object *params, uint64_t from, srv_rec **out,
                       cp_error *err)
{
    srv_submit s = { .params = params, .restarted_from = from };
    int rc;
    if ((rc = srv_submit_parse(t, params, &s, err)) < 0 || (rc = srv_submit_admit(t, uid, &s, err)) < 0 ||
        (rc = srv_submit_resolve(t, uid, &s, err)) < 0 || (rc = srv_submit_room(t, &s, err)) < 0)
        goto out;
    if ((rc = srv_submit_insert(t, &s, out)) < 0)
        rc = cp_fail(err, CP_INTERNAL, "out of memory");
out:
    srv_submit_free(&s);
    return rc;
}

int srv_table_restore(srv_table *t, const st_task *row, bool room, srv_rec **out, cp_error *err)
{
    msgpack_zone z;
    msgpack_object params;
    size_t off = 0;
    msgpack_zone_init(&z, 2048);
    srv_submit s = { .params = &params, .row = row, .room = room };
    bool finished = row->state >= ST_TASK_SUCCEEDED;
    int rc = -EINVAL;
    *out = NULL;
    if (msgpack_unpack(row->spec, row->spec_len, &off, &z, &params) != MSGPACK_UNPACK_SUCCESS) {
        cp_fail(err, CP_BAD_REQUEST, "its spec cannot be decoded");
        goto out;
    }
    /* An ended record needs its common fields only: its args are not kept after it ends,
     * and what they were is in the store, not re-checked against today's limits. */
    if (finished) {
        if ((rc = cp_spec_parse(&params, &s.sp, err)) < 0)
            goto out;
        if (!(s.kind = kind_find(s.sp.kind))) {
            rc = cp_fail(err, CP_BAD_REQUEST, "unknown kind \"%s\"", row->kind);
            goto out;
        }
    } else if ((rc = srv_submit_parse(t, &params, &s, err)) < 0) {
        goto out;
    }
    if ((rc = srv_submit_admit(t, row->owner, &s, err)) < 0 ||
        (!finished && (rc = srv_submit_resolve(t, row->owner, &s, err)) < 0) ||
        (rc = srv_submit_room(t, &s, err)) < 0)
        goto out;
    if ((rc = srv_submit_insert(t, &s, out)) < 0)
        cp_fail(err, CP_INTERNAL, "out of memory");
out:
    srv_submit_free(&s);
    msgpack_zone_destroy(&z);
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
        co_queue_remove(&r->acct_node);
        if (co_queue_linked(&r->fin_node)) {
            co_queue_remove(&r->fin_node);
            r->acct->retained--;
        }
        r->in_table = false;
        if (r->done_cb.fut) { /* its done callback will not run now: drop its reference */
            co_future_remove_cb(&r->done_cb);
            srv_rec_unref(r);
        }
        srv_rec_unref(r);
    }
    srv_groups_free(&t->groups);
    srv_index_free(&t->index);
    cp_out_free(&t->spec_buf);
    t->spawns->store = NULL;
    t->spawns->on_output = NULL;
    t->spawns->table = NULL;
    srv_spawns_unref(t->spawns);
    srv_accts_free(&t->accts);
    free((char *)t->env.output_dir);
    free(t);
}
