/* kind_gather: {ids, return_exceptions?} — a stackless wait on other tasks. The members
 * are resolved (and their visibility checked) by the server at submit time. */
#include "kind.h"

#include <errno.h>
#include <stdlib.h>

typedef struct gather_args {
    uint64_t *ids;
    size_t n;
    bool return_exceptions;
} gather_args;

_Static_assert(sizeof(gather_args) <= KIND_ARGS_MAX, "gather_args lives in the record");

static int gather_validate(const msgpack_object *args, const kind_env *env, void *parsed, cp_error *err)
{
    (void)env;
    gather_args *a = parsed;
    if (!args)
        return cp_fail(err, CP_BAD_REQUEST, "args.ids is required for a gather");
    if (cp_get_ids(args, "ids", true, KIND_MAX_GATHER, &a->ids, &a->n, err) < 0 ||
        cp_get_bool(args, "return_exceptions", false, &a->return_exceptions, err) < 0) {
        kind_args_error(err);
        free(a->ids);
        a->ids = NULL;
        return -EINVAL;
    }
    return 0;
}

static void gather_refs(const void *parsed, const uint64_t **ids, size_t *n)
{
    const gather_args *a = parsed;
    *ids = a->ids;
    *n = a->n;
}

static int gather_start(const kind_start *ks, co_task **body)
{
    gather_args *a = ks->args;
    return co_gather_task(ks->sched, ks->refs, ks->nrefs, a->return_exceptions, &ks->opts, body);
}

static size_t gather_bytes(const void *parsed)
{
    const gather_args *a = parsed;
    return a->n * sizeof *a->ids;
}

static void gather_free(void *parsed)
{
    gather_args *a = parsed;
    free(a->ids);
    a->ids = NULL;
}

/* A gather is its members: started again, it takes up their outcomes as they come. */
static void gather_resume(void *parsed, double elapsed)
{
    (void)parsed;
    (void)elapsed;
}

const kind_ops kind_gather = { .name = "gather", .available = true, .args_size = sizeof(gather_args),
                               .validate = gather_validate, .refs = gather_refs,
                               .start = gather_start, .free = gather_free, .bytes = gather_bytes,
                               .resume = gather_resume };
