/* kind_limits.c: an exec's limits from its args (kind_limits.h): memory_max, pids_max,
 * cpu_weight, cpu_quota (its cgroup's), rlimits and umask (set before it execs). */
#include "kind_limits.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ex_cgroup.h"

/* One rlimit: a count for both, [soft, hard], or "infinity" (either place). */
static int kind_rlim_one(const msgpack_object *o, rlim_t *out, const char *field, cp_error *err)
{
    if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 8 && !memcmp(o->via.str.ptr, "infinity", 8)) {
        *out = RLIM_INFINITY;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 >= (uint64_t)RLIM_INFINITY)
        return cp_fail(err, CP_BAD_REQUEST, "%s must be a count, [soft, hard] or \"infinity\"", field);
    *out = (rlim_t)o->via.u64;
    return 0;
}

static int kind_rlimits(const msgpack_object *m, ex_limits *l, cp_error *err)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return cp_fail(err, CP_BAD_REQUEST, "args.rlimits must be a map: nofile, core, cpu, as");
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        int which = -1;
        for (int r = 0; r < EX_RLIM_COUNT && k->type == MSGPACK_OBJECT_STR; r++)
            if (k->via.str.size == strlen(ex_rlimit_name[r]) &&
                !memcmp(k->via.str.ptr, ex_rlimit_name[r], k->via.str.size))
                which = r;
        if (which < 0)
            return cp_fail(err, CP_BAD_REQUEST, "args.rlimits: the limits are nofile, core, cpu (seconds) and "
                                                "as (bytes)");
        char field[40];
        snprintf(field, sizeof field, "args.rlimits.%s", ex_rlimit_name[which]);
        struct rlimit *rl = &l->rlim[which];
        int rc;
        if (v->type == MSGPACK_OBJECT_ARRAY) {
            if (v->via.array.size != 2)
                return cp_fail(err, CP_BAD_REQUEST, "%s must be [soft, hard]", field);
            if ((rc = kind_rlim_one(&v->via.array.ptr[0], &rl->rlim_cur, field, err)) < 0 ||
                (rc = kind_rlim_one(&v->via.array.ptr[1], &rl->rlim_max, field, err)) < 0)
                return rc;
            if (rl->rlim_cur > rl->rlim_max)
                return cp_fail(err, CP_BAD_REQUEST, "%s: the soft limit is above the hard one", field);
        } else {
            if ((rc = kind_rlim_one(v, &rl->rlim_cur, field, err)) < 0)
                return rc;
            rl->rlim_max = rl->rlim_cur;
        }
        l->rlim_set[which] = true;
    }
    return 0;
}

int kind_limits_parse(const msgpack_object *args, const kind_env *env, ex_limits *l, cp_error *err)
{
    memset(l, 0, sizeof *l);
    l->umask = -1;
    uint64_t u;
    int got;
    if ((got = cp_get_uint(args, "umask", false, 0, 0777, &u, err)) < 0)
        return kind_args_error(err);
    if (got)
        l->umask = (int)u;
    const msgpack_object *rl = cp_get(args, "rlimits");
    if (rl && kind_rlimits(rl, l, err) < 0)
        return -EINVAL;
    if (cp_get_uint(args, "memory_max", false, 1u << 20, 1ull << 50, &l->memory_max, err) < 0 ||
        cp_get_uint(args, "pids_max", false, 1, 4194304, &l->pids_max, err) < 0)
        return kind_args_error(err);
    if ((got = cp_get_uint(args, "cpu_weight", false, 1, EX_CPU_WEIGHT_MAX, &u, err)) < 0)
        return kind_args_error(err);
    if (got)
        l->cpu_weight = (uint32_t)u;
    double q = 0;
    const msgpack_object *qo = cp_get(args, "cpu_quota");
    if (qo) {
        if (qo->type == MSGPACK_OBJECT_FLOAT32 || qo->type == MSGPACK_OBJECT_FLOAT64)
            q = qo->via.f64;
        else if (qo->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            q = (double)qo->via.u64;
        else
            q = NAN;
        if (!(q >= 0.01 && q <= 4096))
            return cp_fail(err, CP_BAD_REQUEST, "args.cpu_quota must be a number of CPUs from 0.01 to 4096");
        l->cpu_quota = q;
    }
    /* A limit that cannot be kept is refused, not ignored. */
    unsigned need = ex_limits_controllers(l), have = ex_cgroups_controllers(env->cgroups);
    if (need & ~have) {
        const char *which = (need & ~have & EX_CG_MEMORY) ? "memory_max needs the memory"
                            : (need & ~have & EX_CG_PIDS) ? "pids_max needs the pids"
                                                          : "cpu_weight and cpu_quota need the cpu";
        if (!env->cgroups)
            return cp_fail(err, CP_BAD_REQUEST, "args.%s controller of a cgroup, and this corod has no cgroups: %s",
                           which, env->cgroups_why ? env->cgroups_why : "none");
        return cp_fail(err, CP_BAD_REQUEST, "args.%s controller, which %s does not have (hello says which it has)",
                       which, ex_cgroups_path(env->cgroups));
    }
    return 0;
}
