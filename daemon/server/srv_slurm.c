/* srv_slurm.c: a group's Slurm settings in and out of MessagePack. */
#include "srv_slurm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "co_io.h"
#include "kind_slurm.h"
#include "srv_group.h"
#include "srv_rec.h"
#include "sy_log.h"

static int srv_slurm_fail(cp_error *err, const char *why)
{
    return cp_fail(err, CP_BAD_REQUEST, "%s", why);
}

int srv_slurm_parse(const msgpack_object *m, ex_slurm **out, cp_error *err)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return srv_slurm_fail(err, "slurm must be a map: partition, account, qos, cpus, memory, time, args, conf");
    ex_slurm *s = ex_slurm_new();
    if (!s)
        return cp_fail(err, CP_INTERNAL, "out of memory");
    char why[256];
    int rc = 0;
    for (uint32_t i = 0; i < m->via.map.size && rc == 0; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        char key[16], str[4200];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof key) {
            rc = srv_slurm_fail(err, "slurm: a key is one of partition, account, qos, cpus, memory, time, args, conf");
            break;
        }
        memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
        key[kv->key.via.str.size] = '\0';
        const msgpack_object *v = &kv->val;
        if (v->type == MSGPACK_OBJECT_NIL)
            continue;
        if (!strcmp(key, "args")) {
            if (v->type != MSGPACK_OBJECT_ARRAY) {
                rc = srv_slurm_fail(err, "slurm.args must be an array of strings");
                break;
            }
            for (uint32_t k = 0; k < v->via.array.size && rc == 0; k++) {
                const msgpack_object *a = &v->via.array.ptr[k];
                if (a->type != MSGPACK_OBJECT_STR || a->via.str.size >= sizeof str ||
                    memchr(a->via.str.ptr, '\0', a->via.str.size)) {
                    rc = srv_slurm_fail(err, "slurm.args must be an array of strings");
                    break;
                }
                memcpy(str, a->via.str.ptr, a->via.str.size);
                str[a->via.str.size] = '\0';
                if ((rc = ex_slurm_set_str(s, "args", str, why, sizeof why)) < 0)
                    rc = rc == -ENOMEM ? cp_fail(err, CP_INTERNAL, "out of memory") : srv_slurm_fail(err, why);
            }
            continue;
        }
        if (v->type == MSGPACK_OBJECT_STR) {
            if (v->via.str.size >= sizeof str || memchr(v->via.str.ptr, '\0', v->via.str.size)) {
                snprintf(why, sizeof why, "slurm.%s is too long, or holds a NUL", key);
                rc = srv_slurm_fail(err, why);
                break;
            }
            memcpy(str, v->via.str.ptr, v->via.str.size);
            str[v->via.str.size] = '\0';
            rc = ex_slurm_set_str(s, key, str, why, sizeof why);
        } else {
            double num = cp_num(v);
            if (isnan(num)) {
                snprintf(why, sizeof why, "slurm.%s must be a %s", key,
                         !strcmp(key, "cpus") || !strcmp(key, "memory") || !strcmp(key, "time") ? "number" : "string");
                rc = srv_slurm_fail(err, why);
                break;
            }
            rc = ex_slurm_set_num(s, key, num, why, sizeof why);
        }
        if (rc < 0)
            rc = rc == -ENOMEM ? cp_fail(err, CP_INTERNAL, "out of memory") : srv_slurm_fail(err, why);
    }
    if (rc < 0) {
        ex_slurm_unref(s);
        return rc;
    }
    *out = s;
    return 0;
}

int srv_slurm_pack(const ex_slurm *s, uint8_t **blob, size_t *len)
{
    cp_out o;
    cp_out_init(&o);
    const char *strs[] = { "partition", "account", "qos", "conf" };
    const char *vals[] = { s->partition, s->account, s->qos, s->conf };
    uint32_t n = (s->nargs ? 1 : 0) + (s->job.cpus ? 1 : 0) + (s->job.memory ? 1 : 0) + (s->job.time > 0 ? 1 : 0);
    for (int i = 0; i < 4; i++)
        n += vals[i] ? 1 : 0;
    cp_out_map(&o, n);
    for (int i = 0; i < 4; i++)
        if (vals[i]) {
            cp_out_str(&o, strs[i]);
            cp_out_str(&o, vals[i]);
        }
    if (s->job.cpus) {
        cp_out_lit(&o, "cpus");
        cp_out_uint(&o, s->job.cpus);
    }
    if (s->job.memory) {
        cp_out_lit(&o, "memory");
        cp_out_uint(&o, s->job.memory);
    }
    if (s->job.time > 0) {
        cp_out_lit(&o, "time");
        cp_out_double(&o, s->job.time);
    }
    if (s->nargs) {
        cp_out_lit(&o, "args");
        cp_out_array(&o, (uint32_t)s->nargs);
        for (size_t i = 0; i < s->nargs; i++)
            cp_out_str(&o, s->args[i]);
    }
    if (cp_out_failed(&o)) {
        cp_out_free(&o);
        return -ENOMEM;
    }
    *len = o.size;
    *blob = cp_out_release(&o);
    return *blob ? 0 : -ENOMEM;
}

int srv_group_set_slurm(srv_group *g, ex_slurm *s)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    if (s && srv_slurm_pack(s, &blob, &len) < 0)
        return -ENOMEM;
    ex_slurm_unref(g->slurm);
    free(g->slurm_blob);
    g->slurm = ex_slurm_ref(s);
    g->slurm_blob = blob;
    g->slurm_len = len;
    return 0;
}

int srv_group_executor_fields(const srv_group *g)
{
    return g->slurm ? 2 : 1;
}

void srv_group_pack_executor(cp_out *o, const srv_group *g)
{
    cp_out_lit(o, "executor");
    cp_out_str(o, g->slurm ? "slurm" : "local");
    if (g->slurm) {
        cp_out_lit(o, "slurm");
        cp_out_raw(o, g->slurm_blob, g->slurm_len);
    }
}

/* ---- Slurm jobs of tasks a stopped daemon left running ---- */

typedef struct srv_slurm_sweep {
    const ex_slurm_tools *tools;
    const char *tag;
    srv_slurm_left *left;
    size_t n;
} srv_slurm_sweep;

typedef struct srv_slurm_lookup {
    uint32_t uid;
    ex_ident *id;
    int rc;
} srv_slurm_lookup;

static void srv_slurm_lookup_fn(void *arg)
{
    srv_slurm_lookup *l = arg;
    l->rc = ex_ident_get(l->uid, &l->id);
}

static int srv_slurm_sweep_run(void *arg)
{
    srv_slurm_sweep *sw = arg;
    ex_run_result *res = malloc(sizeof *res);
    size_t done = 0;
    for (size_t i = 0; i < sw->n && res; i++) {
        srv_slurm_left *e = &sw->left[i];
        srv_slurm_lookup l = { .uid = e->uid };
        static const ex_slurm none = { 0 };
        char name[96], **env = kslurm_env(e->s ? e->s : &none);
        snprintf(name, sizeof name, KSLURM_NAME_FMT, sw->tag, (unsigned long long)e->id, (unsigned)e->attempt);
        int rc = env ? co_to_thread(srv_slurm_lookup_fn, &l) : -ENOMEM;
        if (rc == 0 && (rc = l.rc) == 0)
            rc = kslurm_scancel(sw->tools, l.id, env, e->job, name, NULL, res);
        if (rc == 0)
            done++;
        else if (e->job)
            sy_log(LOG_WARNING, "cannot cancel Slurm job %llu of interrupted task %llu: %s",
                   (unsigned long long)e->job, (unsigned long long)e->id, rc == -EIO ? res->out : strerror(-rc));
        else
            sy_log(LOG_WARNING, "cannot cancel the Slurm job named %s of interrupted task %llu: %s", name,
                   (unsigned long long)e->id, rc == -EIO ? res->out : strerror(-rc));
        ex_ident_put(l.id);
        free(env);
    }
    if (done)
        sy_log(LOG_NOTICE, "cancelled the Slurm jobs of %zu interrupted tasks", done);
    free(res);
    for (size_t i = 0; i < sw->n; i++)
        ex_slurm_unref(sw->left[i].s);
    free(sw->left);
    free(sw);
    return 0;
}

void srv_slurm_cancel_left(srv_table *t, srv_slurm_left *left, size_t n)
{
    srv_slurm_sweep *sw = NULL;
    if (!n) {
        free(left);
        return;
    }
    if (!t->env.slurm) {
        sy_log(LOG_WARNING, "%zu interrupted tasks had jobs on Slurm, and this corod has no Slurm to cancel them "
               "with (%s): they may still run there", n, t->lim.slurm_why ? t->lim.slurm_why : "not set up");
    } else if ((sw = malloc(sizeof *sw))) {
        *sw = (srv_slurm_sweep){ .tools = t->env.slurm, .tag = t->env.slurm_tag, .left = left, .n = n };
        co_task_opts o = { .name = "cancel interrupted Slurm jobs" };
        if (co_spawn(t->sched, srv_slurm_sweep_run, sw, &o, NULL) == 0)
            return;
        free(sw);
        sy_log(LOG_WARNING, "out of memory: the Slurm jobs of %zu interrupted tasks are not cancelled", n);
    }
    for (size_t i = 0; i < n; i++)
        ex_slurm_unref(left[i].s);
    free(left);
}
