/* kind_sleep: {seconds, result?} — a stackless timer that succeeds with `result`. */
#include "kind.h"

#include <errno.h>
#include <stdlib.h>

#include "cp_spec.h"

typedef struct sleep_args {
    double seconds;
    co_value result; /* packed copy of args.result; nil when absent */
} sleep_args;

_Static_assert(sizeof(sleep_args) <= KIND_ARGS_MAX, "sleep_args lives in the record");

static int sleep_validate(const msgpack_object *args, const kind_env *env, void *parsed, cp_error *err)
{
    sleep_args *a = parsed;
    if (!args)
        return cp_fail(err, CP_BAD_REQUEST, "args.seconds is required for a sleep");
    if (cp_get_seconds(args, "seconds", true, 0, CP_MAX_SECONDS, &a->seconds, err) < 0) {
        /* The getter names the field as "seconds"; say where it lives. */
        kind_args_error(err);
        return -EINVAL;
    }
    /* The result goes out in records and gathers: text that clients can decode, within
     * the bounds of any value the daemon holds for a task. */
    const msgpack_object *r = cp_get(args, "result");
    if (r) {
        if (cp_val_value(r, "args.result", env->max_depth, err) < 0)
            return -EINVAL;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        /* A failed write leaves the buffer short: the result would be lost, not kept. */
        int rc = msgpack_pack_object(&pk, *r) != 0 ? -ENOMEM
                 : sb.size > env->max_result ? -E2BIG
                                             : co_value_copy(&a->result, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        if (rc == -E2BIG)
            return cp_fail(err, CP_BAD_REQUEST, "args.result takes more than the limit of %zu bytes", env->max_result);
        if (rc < 0)
            return cp_fail(err, CP_INTERNAL, "out of memory");
    }
    return 0;
}

static void sleep_refs(const void *parsed, const uint64_t **ids, size_t *n)
{
    (void)parsed;
    *ids = NULL;
    *n = 0;
}

static int sleep_start(const kind_start *ks, co_task **body)
{
    sleep_args *a = ks->args;
    return co_sleep_task(ks->sched, a->seconds, &a->result, &ks->opts, body);
}

static size_t sleep_bytes(const void *parsed)
{
    const sleep_args *a = parsed;
    return a->result.len;
}

static void sleep_free(void *parsed)
{
    sleep_args *a = parsed;
    co_value_free(&a->result);
}

/* Towards the deadline it had: a sleep past it ends at once. */
static void sleep_resume(void *parsed, double elapsed)
{
    sleep_args *a = parsed;
    a->seconds = elapsed >= a->seconds ? 0 : a->seconds - elapsed;
}

const kind_ops kind_sleep = { .name = "sleep", .available = true, .args_size = sizeof(sleep_args),
                              .validate = sleep_validate, .refs = sleep_refs,
                              .start = sleep_start, .free = sleep_free, .bytes = sleep_bytes,
                              .resume = sleep_resume };
