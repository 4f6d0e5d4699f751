/* srv_restore.c: the table as the store left it, before the daemon serves. Groups come
 * back with their settings; ended records stay in the store (but those active ones refer
 * to, read back as they ended); pending ones pending again
 * (waiting for what they waited for, their delay running to the same wall-clock time);
 * a record that was running is started again where its kind can take it up (a sleep
 * towards its deadline, a gather on its members), else queued for its next attempt if
 * it had one left, else failed `interrupted` — after whatever was left of its processes
 * has been killed. Records come back in id order, so what one depends on is there before
 * it. */
#include "srv_internal.h"
#include "srv_rec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ex_leftover.h"
#include "srv_slurm.h"
#include "st_store.h"
#include "sy_log.h"

/* What a record still to be put back needs of its row (the row's strings are gone). */
typedef struct srv_back {
    srv_rec *rec;
    st_task row;
} srv_back;

typedef struct srv_loading {
    srv_table *t;
    srv_back *back;
    size_t nback, cap;
    ex_leftover *jobs;
    size_t njobs, jobs_cap;
    srv_slurm_left *slurm; /* running on Slurm: cancelled there */
    size_t nslurm, slurm_cap;
    size_t skipped;
} srv_loading;

static void srv_restore_group(const st_group *g, void *arg)
{
    srv_loading *rs = arg;
    cp_str name = { g->name, strlen(g->name) };
    srv_group *grp = cp_group_name_ok(name) ? srv_table_configure_group(rs->t, name) : NULL;
    if (!grp) {
        sy_log(LOG_WARNING, "the store's group \"%s\" is not restored (a bad name, or out of memory)",
                g->name);
        return;
    }
    uint64_t users[SRV_MAX_GROUP_USERS];
    size_t n = g->nusers < SRV_MAX_GROUP_USERS ? g->nusers : SRV_MAX_GROUP_USERS;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, (const uint8_t *)g->users + i * sizeof u, sizeof u); /* a blob: no alignment */
        users[i] = u;
    }
    if (n)
        srv_group_allow(grp, users, n);
    if (g->slurm) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        ex_slurm *s = NULL;
        cp_error err;
        if (msgpack_unpack_next(&u, g->slurm, g->slurm_len, NULL) != MSGPACK_UNPACK_SUCCESS ||
            srv_slurm_parse(&u.data, &s, &err) < 0 || srv_group_set_slurm(grp, s) < 0)
            sy_log(LOG_WARNING, "the store's group \"%s\" runs its jobs here: its Slurm settings cannot be read",
                   g->name);
        ex_slurm_unref(s);
        msgpack_unpacked_destroy(&u);
    }
    srv_table_set_group(rs->t, grp, &g->parallel, &g->paused);
}

static int srv_restore_leftover(srv_loading *rs, const st_task *row)
{
    ex_leftover *jobs = ut_grow(rs->jobs, &rs->jobs_cap, rs->njobs, sizeof *jobs, 64);
    if (!jobs)
        return -ENOMEM;
    rs->jobs = jobs;
    rs->jobs[rs->njobs++] = (ex_leftover){ .leader = (pid_t)row->pid, .uid = row->owner,
                                           .spawned_at = row->spawned_at };
    return 0;
}

static int srv_restore_task(const st_task *row, void *arg)
{
    srv_loading *rs = arg;
    srv_rec *r;
    cp_error err;
    int rc = srv_table_restore(rs->t, row, false, &r, &err);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) { /* kept in the store as it is, for whoever looks at it there */
        sy_log(LOG_WARNING, "task %llu in the store is not restored: %s", (unsigned long long)row->id,
                err.message);
        rs->skipped++;
        return 0;
    }
    if (row->state == ST_TASK_RUNNING && row->pid > 0 && srv_restore_leftover(rs, row) < 0)
        return -ENOMEM;
    if (row->state == ST_TASK_RUNNING && row->slurm_job >= 0) {
        srv_slurm_left *e = ut_grow(rs->slurm, &rs->slurm_cap, rs->nslurm, sizeof *e, 16);
        if (!e)
            return -ENOMEM;
        rs->slurm = e;
        srv_group *g = srv_table_find_group(rs->t, (cp_str){ row->group, strlen(row->group) });
        rs->slurm[rs->nslurm++] = (srv_slurm_left){ .id = row->id, .job = (uint64_t)row->slurm_job,
                                                    .uid = row->owner, .attempt = row->attempts, .s = ex_slurm_ref(g ? g->slurm : NULL) };
    }
    srv_back *back = ut_grow(rs->back, &rs->cap, rs->nback, sizeof *back, 1024);
    if (!back)
        return -ENOMEM;
    rs->back = back;
    srv_back *b = &rs->back[rs->nback++];
    b->rec = r;
    b->row = *row;
    b->row.kind = b->row.name = b->row.group = b->row.command = NULL;
    b->row.spec = b->row.outcome = NULL;
    b->row.spec_len = b->row.outcome_len = 0;
    return 0;
}

/* Which of the ids (sorted, unique) have a row: st_read hands them back in that order. */
typedef struct srv_outfind {
    const uint64_t *ids;
    bool *found;
    size_t n, at;
} srv_outfind;

static int srv_outfind_row(const st_task *row, void *arg)
{
    srv_outfind *f = arg;
    while (f->at < f->n && f->ids[f->at] != row->id)
        f->at++;
    if (f->at < f->n)
        f->found[f->at++] = true;
    return 0;
}

static int srv_id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool srv_outfile_id(const char *name, uint64_t *id)
{
    char *end;
    unsigned long long v = strtoull(name, &end, 10);
    *id = v;
    return end != name && (!strcmp(end, ".out") || !strcmp(end, ".err"));
}

/* Output files live as long as their tasks' rows. Those of the records in memory (the
 * active ones) count in their owners' shares of the disk again; those of rows in the
 * store only stay (they count in the owner's bytes there); the rest belong to no task —
 * a row deleted just before a crash, before the writer removed its files — and go. At
 * start, before serving: the reads here wait on the disk. */
static void srv_restore_outputs(srv_table *t, st_store *st)
{
    DIR *d = opendir(t->env.output_dir);
    if (!d)
        return;
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0, removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t id;
        if (!srv_outfile_id(e->d_name, &id))
            continue;
        srv_rec *r = srv_index_get(&t->index, id);
        struct stat sb;
        if (r) {
            if (r->disk && fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
                ex_disk_add(r->disk, (uint64_t)sb.st_size);
            continue;
        }
        uint64_t *grown = ut_grow(ids, &cap, n, sizeof *ids, 1024);
        if (!grown)
            break; /* out of memory: what is not looked at stays */
        ids = grown;
        ids[n++] = id;
    }
    if (n)
        qsort(ids, n, sizeof *ids, srv_id_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || ids[u - 1] != ids[i])
            ids[u++] = ids[i];
    srv_outfind f = { .ids = ids, .n = u, .found = calloc(u ? u : 1, sizeof(bool)) };
    if (f.found && (!u || st_read(st, ids, u, srv_outfind_row, &f) == 0)) {
        rewinddir(d);
        while ((e = readdir(d))) {
            uint64_t id;
            if (!srv_outfile_id(e->d_name, &id) || srv_index_get(&t->index, id))
                continue;
            uint64_t *at = u ? bsearch(&id, ids, u, sizeof *ids, srv_id_cmp) : NULL;
            if (at && !f.found[at - ids] && unlinkat(dirfd(d), e->d_name, 0) == 0)
                removed++;
        }
    }
    closedir(d);
    free(f.found);
    free(ids);
    if (removed)
        sy_log(LOG_NOTICE, "removed %zu output files of tasks no longer in the store", removed);
}

int srv_restore(srv *v, st_store *st, char *errbuf, size_t errlen)
{
    srv_loading rs = { .t = v->table };
    st_loader l = { .group = srv_restore_group, .task = srv_restore_task };
    v->table->loading = st; /* what active records refer to is read back as they need it */
    int rc = st_load(st, &l, &rs, errbuf, errlen);
    v->table->loading = NULL;
    if (rc == 0) {
        /* Changes from here on (ends, retries) are the store's too. */
        rc = srv_table_set_store(v->table, st);
        if (rc < 0)
            snprintf(errbuf, errlen, "out of memory restoring the store");
    }
    if (rc == 0) {
        int killed = ex_kill_leftovers(rs.jobs, rs.njobs);
        if (killed < 0)
            sy_log(LOG_WARNING, "cannot look for what is left of interrupted jobs: %s", strerror(-killed));
        size_t running = 0;
        srv_restore_outputs(v->table, st); /* before ends are written: they say their bytes */
        /* The loop's clock was read before the load: timers armed now would end early by
         * as long as the load took (a delay ran 0.17 s short under valgrind). */
        uv_update_time(v->loop);
        double now = srv_now();
        for (size_t i = 0; i < rs.nback; i++) {
            running += rs.back[i].row.state == ST_TASK_RUNNING;
            srv_rec_resume(rs.back[i].rec, &rs.back[i].row, now);
        }
        srv_table_bump_id(v->table, st_next_id(st));
        srv_slurm_cancel_left(v->table, rs.slurm, rs.nslurm);
        rs.slurm = NULL;
        if (killed > 0)
            sy_log(LOG_WARNING, "restored %zu tasks (%zu pending, %zu were running); killed %d processes left "
                   "of interrupted jobs", rs.nback, rs.nback - running, running, killed);
        else
            sy_log(LOG_INFO, "restored %zu tasks (%zu pending, %zu were running)", rs.nback, rs.nback - running,
                   running);
        if (rs.skipped)
            sy_log(LOG_WARNING, "%zu tasks in the store could not be restored (said above)", rs.skipped);
    }
    free(rs.back);
    free(rs.jobs);
    for (size_t i = 0; rs.slurm && i < rs.nslurm; i++)
        ex_slurm_unref(rs.slurm[i].s);
    free(rs.slurm);
    return rc;
}
