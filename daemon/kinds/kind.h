/* kind: the task kinds and their table. A kind validates its `args` at submit time into
 * a parsed form it owns, names the other tasks it refers to (gather's members), and
 * starts a body — a runtime task — once the record is ready to run. A new kind is a new
 * file and a row in kinds.c. */
#ifndef KIND_H
#define KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "co.h"
#include "cp_msg.h"

typedef struct kind_start {
    co_sched *sched;
    co_task_opts opts;         /* id, name, timeout of the record */
    void *args;                /* what validate produced */
    co_future *const *refs;    /* the futures of the ids `refs` named, in order */
    size_t nrefs;
} kind_start;

typedef struct kind_ops {
    const char *name;
    bool available; /* false: defined by the contract, arrives in a later version */
    /* Parse and check args (may be NULL when absent). Returns 0 or -EINVAL with err. */
    int (*validate)(const msgpack_object *args, void **parsed, cp_error *err);
    /* Task ids the parsed args refer to (may be none). */
    void (*refs)(const void *parsed, const uint64_t **ids, size_t *n);
    int (*start)(const kind_start *ks, co_task **body);
    void (*free)(void *parsed);
} kind_ops;

/* Prefix an error from a field getter with "args." so it says where the field lives. */
int kind_args_error(cp_error *err);

/* The kind named `name`, or NULL. */
const kind_ops *kind_find(cp_str name);

extern const kind_ops kind_sleep;
extern const kind_ops kind_gather;

#define KIND_MAX_GATHER 65536u /* members of one gather */

#endif
