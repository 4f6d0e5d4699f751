/* cp_spec.c: task spec validation and record encoding. */
#include "cp_spec.h"
#include "cp_utf8.h"

#include <assert.h>
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
    s->has_group = rc == 1;
    if (s->has_group && !cp_group_name_ok(s->group))
        return cp_fail(err, CP_BAD_REQUEST, "group must be 1 to %u characters of A-Z a-z 0-9 . _ -",
                       CP_MAX_GROUP);
    s->has_priority = f[CP_F_PRIORITY] != NULL && f[CP_F_PRIORITY]->type != MSGPACK_OBJECT_NIL;
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

static uint8_t *cp_put_time(uint8_t *p, double t)
{
    return isnan(t) ? cp_put_nil(p) : cp_put_double(p, t);
}

static uint8_t *cp_put_opt_str(uint8_t *p, const char *s, size_t len)
{
    return s ? cp_put_strn(p, s, len) : cp_put_nil(p);
}

int cp_spec_argv(const msgpack_object *params, cp_out *o)
{
    const msgpack_object *args = cp_get(params, "args");
    const msgpack_object *argv = args && args->type == MSGPACK_OBJECT_MAP ? cp_get(args, "argv") : NULL;
    if (!argv || argv->type != MSGPACK_OBJECT_ARRAY)
        return -ENOENT;
    /* Every string the daemon sends is UTF-8: an argument that is not goes back as bin,
     * its bytes unchanged. */
    msgpack_packer pk;
    msgpack_packer_init(&pk, o, cp_out_write);
    msgpack_pack_array(&pk, argv->via.array.size);
    for (uint32_t i = 0; i < argv->via.array.size; i++) {
        const msgpack_object *a = &argv->via.array.ptr[i];
        const char *p = a->type == MSGPACK_OBJECT_STR ? a->via.str.ptr : a->via.bin.ptr;
        uint32_t n = a->type == MSGPACK_OBJECT_STR ? a->via.str.size : a->via.bin.size;
        if (a->type == MSGPACK_OBJECT_STR && cp_utf8_valid(p, n))
            msgpack_pack_str_with_body(&pk, p, n);
        else if (a->type == MSGPACK_OBJECT_STR || a->type == MSGPACK_OBJECT_BIN)
            msgpack_pack_bin_with_body(&pk, p, n);
        else
            msgpack_pack_nil(&pk); /* not reached: exec validated it */
    }
    return cp_out_failed(o) ? -ENOMEM : 0;
}

static bool cp_key_in(const msgpack_object *map, const msgpack_object *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && key->type == MSGPACK_OBJECT_STR && k->via.str.size == key->via.str.size &&
            !memcmp(k->via.str.ptr, key->via.str.ptr, k->via.str.size))
            return true;
    }
    return false;
}

int cp_spec_edit(const void *spec, size_t len, const void *edits, size_t elen, cp_out *o)
{
    msgpack_zone z;
    msgpack_object s, e;
    size_t off = 0, eoff = 0;
    int rc = -EINVAL;
    if (!msgpack_zone_init(&z, 2048))
        return -ENOMEM;
    if (msgpack_unpack(spec, len, &off, &z, &s) == MSGPACK_UNPACK_SUCCESS && s.type == MSGPACK_OBJECT_MAP &&
        msgpack_unpack(edits, elen, &eoff, &z, &e) == MSGPACK_UNPACK_SUCCESS && e.type == MSGPACK_OBJECT_MAP) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, o, cp_out_write);
        uint32_t kept = 0;
        for (uint32_t i = 0; i < s.via.map.size; i++)
            kept += !cp_key_in(&e, &s.via.map.ptr[i].key);
        msgpack_pack_map(&pk, kept + e.via.map.size);
        for (uint32_t i = 0; i < s.via.map.size; i++)
            if (!cp_key_in(&e, &s.via.map.ptr[i].key)) {
                msgpack_pack_object(&pk, s.via.map.ptr[i].key);
                msgpack_pack_object(&pk, s.via.map.ptr[i].val);
            }
        for (uint32_t i = 0; i < e.via.map.size; i++) {
            msgpack_pack_object(&pk, e.via.map.ptr[i].key);
            msgpack_pack_object(&pk, e.via.map.ptr[i].val);
        }
        rc = cp_out_failed(o) ? -ENOMEM : 0;
    }
    msgpack_zone_destroy(&z);
    return rc;
}

/* A record is packed on the path of every task.done: its size is bounded first, so the
 * whole of it takes one reservation and its thirty-odd items no bounds check each. */
void cp_pack_record(cp_out *o, const cp_record *r)
{
    size_t kind = strlen(r->kind), name = r->name ? strlen(r->name) : 0, group = strlen(r->group),
           state = strlen(r->state), command = r->command ? strlen(r->command) : 0;
    /* 16 keys of at most 16 bytes each, a map header, seven numbers (id, owner_uid, three
     * times, attempts, restarted_from) and five strings' headers, then the variable
     * parts. */
    size_t bound = 16 * 16 + CP_PUT_HEAD_MAX + 7 * CP_PUT_NUM_MAX + 5 * CP_PUT_HEAD_MAX + kind + name + group +
                   state + command + r->result_len + r->error_len + r->argv_len + r->waiting_len + r->slurm_len;
    uint8_t *p = cp_out_reserve(o, bound);
    if (!p)
        return;
    uint8_t *start __attribute__((unused)) = p; /* for the assert below */
    p = cp_put_map(p, 10 + (r->result != NULL) + (r->error != NULL) + (r->command != NULL) + r->omitted +
                          (r->restarted_from != 0) + (r->argv != NULL) + (r->waiting != NULL) + (r->slurm != NULL));
    p = cp_put_lit(p, "id");
    p = cp_put_uint(p, r->id);
    p = cp_put_lit(p, "kind");
    p = cp_put_strn(p, r->kind, kind);
    p = cp_put_lit(p, "name");
    p = cp_put_opt_str(p, r->name, name);
    p = cp_put_lit(p, "group");
    p = cp_put_strn(p, r->group, group);
    p = cp_put_lit(p, "state");
    p = cp_put_strn(p, r->state, state);
    p = cp_put_lit(p, "owner_uid");
    p = cp_put_uint(p, r->owner_uid);
    p = cp_put_lit(p, "created_at");
    p = cp_put_time(p, r->created_at);
    p = cp_put_lit(p, "started_at");
    p = cp_put_time(p, r->started_at);
    p = cp_put_lit(p, "finished_at");
    p = cp_put_time(p, r->finished_at);
    p = cp_put_lit(p, "attempts");
    p = cp_put_uint(p, r->attempts);
    if (r->command) {
        p = cp_put_lit(p, "command");
        p = cp_put_strn(p, r->command, command);
    }
    if (r->argv) {
        p = cp_put_lit(p, "argv");
        p = cp_put_raw(p, r->argv, r->argv_len);
    }
    if (r->waiting) {
        p = cp_put_lit(p, "waiting");
        p = cp_put_raw(p, r->waiting, r->waiting_len);
    }
    if (r->slurm) {
        p = cp_put_lit(p, "slurm");
        p = cp_put_raw(p, r->slurm, r->slurm_len);
    }
    if (r->restarted_from) {
        p = cp_put_lit(p, "restarted_from");
        p = cp_put_uint(p, r->restarted_from);
    }
    if (r->result) {
        p = cp_put_lit(p, "result");
        p = cp_put_raw(p, r->result, r->result_len);
    }
    if (r->error) {
        p = cp_put_lit(p, "error");
        p = cp_put_raw(p, r->error, r->error_len);
    }
    if (r->omitted) {
        p = cp_put_lit(p, "omitted");
        p = cp_put_bool(p, true);
    }
    assert((size_t)(p - start) <= bound);
    cp_out_commit(o, p);
}
