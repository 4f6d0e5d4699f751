/* srv_config.c: what the configuration file sets on a running server — its groups, and
 * the bounds that may change while it runs (at start, and at each reload). */
#include "srv_internal.h"

#include <stdio.h>
#include <string.h>

#include "ex_cgroup.h"
#include "srv_group.h"
#include "srv_slurm.h"

void srv_conn_limits(srv *v, const srv_config *cfg)
{
    v->cfg.max_connections = cfg->max_connections ? cfg->max_connections : SRV_MAX_CONNECTIONS;
    v->cfg.max_uid_connections = cfg->max_uid_connections ? cfg->max_uid_connections : SRV_MAX_UID_CONNECTIONS;
    v->cfg.max_uid_buffers = cfg->max_uid_buffers ? cfg->max_uid_buffers : SRV_UID_BUFFERS;
    v->cfg.message_timeout = cfg->message_timeout > 0 ? cfg->message_timeout : SRV_MESSAGE_TIMEOUT;
}

void srv_reconfigure(srv *v, const srv_config *cfg)
{
    /* Connections already over a smaller bound stay; the bound holds for new ones. */
    srv_conn_limits(v, cfg);
    srv_table_set_limits(v->table, &cfg->limits);
}

int srv_configure_group(srv *v, const srv_group_conf *gc, char *err, size_t errlen)
{
    cp_str name = { gc->name, strlen(gc->name) };
    if (!cp_group_name_ok(name)) {
        snprintf(err, errlen, "group \"%s\": a name is 1 to %u characters of A-Z a-z 0-9 . _ -", gc->name,
                 CP_MAX_GROUP);
        return -EINVAL;
    }
    unsigned need = ex_limits_controllers(&gc->limits), have = ex_cgroups_controllers(v->cfg.limits.cgroups);
    if (need & ~have) {
        snprintf(err, errlen, "group \"%s\": %s needs the %s controller of the jobs' cgroups, which %s", gc->name,
                 (need & ~have & EX_CG_MEMORY) ? "memory-max" : (need & ~have & EX_CG_PIDS) ? "pids-max"
                                                                                        : "cpu-weight/cpu-quota",
                 (need & ~have & EX_CG_MEMORY) ? "memory" : (need & ~have & EX_CG_PIDS) ? "pids" : "cpu",
                 v->cfg.limits.cgroups ? "they do not have" : "this corod has none of");
        return -EINVAL;
    }
    if (gc->has_executor && gc->slurm && !v->cfg.limits.slurm) {
        snprintf(err, errlen, "group \"%s\": executor = slurm, and this corod has no Slurm to run jobs with: %s",
                 gc->name, v->cfg.limits.slurm_why ? v->cfg.limits.slurm_why : "not set up");
        return -EINVAL;
    }
    if (gc->nusers > SRV_MAX_GROUP_USERS) {
        snprintf(err, errlen, "group \"%s\": at most %u users", gc->name, SRV_MAX_GROUP_USERS);
        return -EINVAL;
    }
    srv_group *g = srv_table_configure_group(v->table, name);
    uint64_t users[SRV_MAX_GROUP_USERS];
    for (size_t i = 0; i < gc->nusers; i++)
        users[i] = gc->users[i];
    int rc = -ENOMEM;
    if (g && (!gc->has_users || srv_group_allow(g, users, gc->nusers) == 0) &&
        (!gc->has_executor || srv_group_set_slurm(g, gc->slurm) == 0))
        rc = srv_table_set_group(v->table, g, gc->has_parallel ? &gc->parallel : NULL,
                                 gc->has_paused ? &gc->paused : NULL);
    if (rc < 0) {
        snprintf(err, errlen, "group \"%s\": out of memory", gc->name);
        return rc;
    }
    if (gc->has_priority)
        g->priority = gc->priority;
    ex_limits l = gc->limits; /* what the file says, over what the group has */
    ex_limits_merge(&l, &g->limits);
    g->limits = l;
    return 0;
}
