/* cp_spec.c: task spec validation and record encoding. */
#include "cp_spec.h"

#include <errno.h>
#include <math.h>
#include <string.h>

bool cp_group_name_ok(cp_str s)
{
    if (s.len == 0 || s.len > CP_MAX_GROUP)
        return false;
    for (uint32_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int cp_spec_parse(const msgpack_object *params, cp_spec *s, cp_error *err)
{
    memset(s, 0, sizeof *s);
    s->group = (cp_str){ "default", 7 };
    if (!params)
        return cp_fail(err, CP_BAD_REQUEST, "submit needs a task spec: [{kind: ..., ...}]");
    int rc;
    if ((rc = cp_get_str(params, "kind", true, CP_MAX_KIND, &s->kind, err)) < 0)
        return rc;
    const msgpack_object *args = cp_get(params, "args");
    if (args && args->type != MSGPACK_OBJECT_MAP)
        return cp_fail(err, CP_BAD_REQUEST, "args must be a map");
    s->args = args;
    if ((rc = cp_get_str(params, "name", false, CP_MAX_NAME, &s->name, err)) < 0)
        return rc;
    s->has_name = rc == 1;
    if ((rc = cp_get_str(params, "group", false, CP_MAX_GROUP, &s->group, err)) < 0)
        return rc;
    if (!cp_group_name_ok(s->group))
        return cp_fail(err, CP_BAD_REQUEST, "group must be 1 to %u characters of A-Z a-z 0-9 . _ -",
                       CP_MAX_GROUP);
    if ((rc = cp_get_int(params, "priority", false, -CP_MAX_PRIORITY, CP_MAX_PRIORITY, &s->priority, err)) < 0 ||
        (rc = cp_get_seconds(params, "delay", false, 0, CP_MAX_SECONDS, &s->delay, err)) < 0 ||
        (rc = cp_get_seconds(params, "timeout", false, 0, CP_MAX_SECONDS, &s->timeout, err)) < 0 ||
        (rc = cp_get_seconds(params, "retry_delay", false, 0, CP_MAX_SECONDS, &s->retry_delay, err)) < 0 ||
        (rc = cp_get_uint(params, "retries", false, 0, CP_MAX_RETRIES, &s->retries, err)) < 0 ||
        (rc = cp_get_bool(params, "shield", false, &s->shield, err)) < 0)
        return rc;
    if (cp_get(params, "timeout") && s->timeout == 0)
        return cp_fail(err, CP_BAD_REQUEST, "timeout must be more than 0 seconds");
    if ((rc = cp_get_ids(params, "after", false, CP_MAX_AFTER, &s->after, &s->n_after, err)) < 0)
        return rc;
    return 0;
}

void cp_spec_free(cp_spec *s)
{
    free(s->after);
    s->after = NULL;
    s->n_after = 0;
}

static void cp_pack_time(msgpack_packer *pk, const char *key, double t)
{
    cp_pack_str(pk, key);
    if (isnan(t))
        msgpack_pack_nil(pk);
    else
        msgpack_pack_double(pk, t);
}

void cp_pack_record(msgpack_packer *pk, const cp_record *r)
{
    msgpack_pack_map(pk, 10 + (r->result != NULL) + (r->error != NULL) + (r->command != NULL));
    cp_pack_str(pk, "id");
    msgpack_pack_uint64(pk, r->id);
    cp_pack_str(pk, "kind");
    cp_pack_str(pk, r->kind);
    cp_pack_str(pk, "name");
    if (r->name)
        cp_pack_str(pk, r->name);
    else
        msgpack_pack_nil(pk);
    cp_pack_str(pk, "group");
    cp_pack_str(pk, r->group);
    cp_pack_str(pk, "state");
    cp_pack_str(pk, r->state);
    cp_pack_str(pk, "owner_uid");
    msgpack_pack_uint32(pk, r->owner_uid);
    cp_pack_time(pk, "created_at", r->created_at);
    cp_pack_time(pk, "started_at", r->started_at);
    cp_pack_time(pk, "finished_at", r->finished_at);
    cp_pack_str(pk, "attempts");
    msgpack_pack_uint32(pk, r->attempts);
    if (r->command) {
        cp_pack_str(pk, "command");
        cp_pack_str(pk, r->command);
    }
    if (r->result) {
        cp_pack_str(pk, "result");
        cp_pack_raw(pk, r->result, r->result_len);
    }
    if (r->error) {
        cp_pack_str(pk, "error");
        cp_pack_raw(pk, r->error, r->error_len);
    }
}
