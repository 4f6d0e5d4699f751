/* srv_acct.c: accounts by uid, in an srv_index (uids are keys like task ids). */
#include "srv_acct.h"

#include <assert.h>
#include <stdlib.h>

void srv_accts_init(srv_accts *a, uint32_t self_uid, uint64_t disk_limit,
                    void (*reclaim)(ex_disk *d, uint64_t need, void *acct))
{
    srv_index_init(&a->by_uid);
    a->self = self_uid;
    a->disk_limit = disk_limit;
    a->reclaim = reclaim;
}

void srv_accts_free(srv_accts *a)
{
    assert(a->by_uid.count == 0);
    srv_index_free(&a->by_uid);
}

srv_acct *srv_acct_find(const srv_accts *a, uint32_t uid)
{
    return srv_index_get(&a->by_uid, uid);
}

srv_acct *srv_acct_get(srv_accts *a, uint32_t uid)
{
    srv_acct *ac = srv_acct_find(a, uid);
    if (ac) {
        ac->refs++;
        return ac;
    }
    if (!(ac = calloc(1, sizeof *ac)))
        return NULL;
    ac->uid = uid;
    ac->privileged = uid == 0 || uid == a->self;
    ac->refs = 1;
    ac->home = a;
    co_queue_init(&ac->recs);
    co_queue_init(&ac->fin);
    co_queue_init(&ac->trim_node);
    if (!(ac->disk = ex_disk_new(a->disk_limit)) || srv_index_put(&a->by_uid, uid, ac) < 0) {
        if (ac->disk)
            ex_disk_unref(ac->disk);
        free(ac);
        return NULL;
    }
    ac->disk->reclaim = a->reclaim;
    ac->disk->arg = ac;
    return ac;
}

void srv_acct_ref(srv_acct *ac)
{
    ac->refs++;
}

void srv_acct_unref(srv_acct *ac)
{
    assert(ac->refs > 0);
    if (--ac->refs)
        return;
    assert(!ac->active && !ac->retained && !ac->conns && co_queue_empty(&ac->recs));
    co_queue_remove(&ac->trim_node);
    srv_index_del(&ac->home->by_uid, ac->uid);
    ac->disk->reclaim = NULL; /* a job still draining (shutdown) may outlive the account */
    ex_disk_unref(ac->disk);
    free(ac);
}
