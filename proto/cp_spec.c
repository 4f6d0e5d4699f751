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

enum {
    CP_F_KIND, CP_F_ARGS, CP_F_NAME, CP_F_GROUP, CP_F_PRIORITY, CP_F_DELAY, CP_F_TIMEOUT,
    CP_F_RETRY_DELAY, CP_F_RETRIES, CP_F_SHIELD, CP_F_AFTER, CP_F_COUNT
};
static const char *const cp_spec_keys[CP_F_COUNT] = {
    "kind", "args", "name", "group", "priority", "delay", "timeout", "retry_delay", "retries", "shield", "after",
};

int cp_spec_parse(const msgpack_object *params, cp_spec *s, cp_error *err)
{
    memset(s, 0, sizeof *s);
    s->group = (cp_str){ "default", 7 };
    if (!params)
        return cp_fail(err, CP_BAD_REQUEST, "submit needs a task spec: [{kind: ..., ...}]");
    const msgpack_object *f[CP_F_COUNT];
    cp_get_fields(params, cp_spec_keys, CP_F_COUNT, f);
    int rc;
    if ((rc = cp_val_str(f[CP_F_KIND], "kind", true, CP_MAX_KIND, &s->kind, err)) < 0)
        return rc;
    const msgpack_object *args = f[CP_F_ARGS];
    if (args && args->type != MSGPACK_OBJECT_MAP)
        return cp_fail(err, CP_BAD_REQUEST, "args must be a map");
    s->args = args;
    if ((rc = cp_val_str(f[CP_F_NAME], "name", false, CP_MAX_NAME, &s->name, err)) < 0)
        return rc;
    s->has_name = rc == 1;
    if ((rc = cp_val_str(f[CP_F_GROUP], "group", false, CP_MAX_GROUP, &s->group, err)) < 0)
        return rc;
    if (!cp_group_name_ok(s->group))
        return cp_fail(err, CP_BAD_REQUEST, "group must be 1 to %u characters of A-Z a-z 0-9 . _ -",
                       CP_MAX_GROUP);
    if ((rc = cp_val_int(f[CP_F_PRIORITY], "priority", false, -CP_MAX_PRIORITY, CP_MAX_PRIORITY, &s->priority,
                         err)) < 0 ||
        (rc = cp_val_seconds(f[CP_F_DELAY], "delay", false, 0, CP_MAX_SECONDS, &s->delay, err)) < 0 ||
        (rc = cp_val_seconds(f[CP_F_TIMEOUT], "timeout", false, 0, CP_MAX_SECONDS, &s->timeout, err)) < 0 ||
        (rc = cp_val_seconds(f[CP_F_RETRY_DELAY], "retry_delay", false, 0, CP_MAX_SECONDS, &s->retry_delay,
                             err)) < 0 ||
        (rc = cp_val_uint(f[CP_F_RETRIES], "retries", false, 0, CP_MAX_RETRIES, &s->retries, err)) < 0 ||
        (rc = cp_val_bool(f[CP_F_SHIELD], "shield", false, &s->shield, err)) < 0)
        return rc;
    if (f[CP_F_TIMEOUT] && s->timeout == 0)
        return cp_fail(err, CP_BAD_REQUEST, "timeout must be more than 0 seconds");
    if ((rc = cp_val_ids(f[CP_F_AFTER], "after", false, CP_MAX_AFTER, &s->after, &s->n_after, err)) < 0)
        return rc;
    return 0;
}

void cp_spec_free(cp_spec *s)
{
    free(s->after);
    s->after = NULL;
    s->n_after = 0;
}

static void cp_pack_time(cp_out *o, double t)
{
    if (isnan(t))
        cp_out_nil(o);
    else
        cp_out_double(o, t);
}

void cp_pack_record(cp_out *o, const cp_record *r)
{
    cp_out_map(o, 10 + (r->result != NULL) + (r->error != NULL) + (r->command != NULL));
    cp_out_lit(o, "id");
    cp_out_uint(o, r->id);
    cp_out_lit(o, "kind");
    cp_out_str(o, r->kind);
    cp_out_lit(o, "name");
    if (r->name)
        cp_out_str(o, r->name);
    else
        cp_out_nil(o);
    cp_out_lit(o, "group");
    cp_out_str(o, r->group);
    cp_out_lit(o, "state");
    cp_out_str(o, r->state);
    cp_out_lit(o, "owner_uid");
    cp_out_uint(o, r->owner_uid);
    cp_out_lit(o, "created_at");
    cp_pack_time(o, r->created_at);
    cp_out_lit(o, "started_at");
    cp_pack_time(o, r->started_at);
    cp_out_lit(o, "finished_at");
    cp_pack_time(o, r->finished_at);
    cp_out_lit(o, "attempts");
    cp_out_uint(o, r->attempts);
    if (r->command) {
        cp_out_lit(o, "command");
        cp_out_str(o, r->command);
    }
    if (r->result) {
        cp_out_lit(o, "result");
        cp_out_raw(o, r->result, r->result_len);
    }
    if (r->error) {
        cp_out_lit(o, "error");
        cp_out_raw(o, r->error, r->error_len);
    }
}
