/* cp_spec: the task spec (params of `submit`) with its common fields validated, and the
 * task record as it goes on the wire. Kind-specific args are validated by the kind. */
#ifndef CP_SPEC_H
#define CP_SPEC_H

#include "cp_msg.h"

#define CP_MAX_KIND 32u
#define CP_MAX_NAME 256u
#define CP_MAX_GROUP 64u        /* [A-Za-z0-9._-], not empty */
#define CP_MAX_AFTER 1024u      /* dependencies of one task */
#define CP_MAX_SECONDS 1e9      /* any duration: about 31 years */
#define CP_MAX_RETRIES 1000u
#define CP_MAX_PRIORITY 1000000 /* priority lies in [-CP_MAX_PRIORITY, CP_MAX_PRIORITY] */

typedef struct cp_spec {
    cp_str kind;
    const msgpack_object *args; /* a map, or NULL when absent */
    cp_str name;
    bool has_name;
    cp_str group; /* "default" when absent */
    bool has_group;
    int64_t priority;
    bool has_priority; /* else its group's default priority applies */
    uint64_t *after; /* malloc'd; cp_spec_free */
    size_t n_after;
    double delay, timeout, retry_delay;
    uint64_t retries;
    bool shield;
} cp_spec;

int cp_spec_parse(const msgpack_object *params, cp_spec *spec, cp_error *err);
void cp_spec_free(cp_spec *spec);
/* True for a valid group name (also used by set_group). */
bool cp_group_name_ok(cp_str s);

/* A task record to send. Times are Unix seconds, NAN for nil. `result` and `error` are
 * packed MessagePack (NULL for absent). */
typedef struct cp_record {
    uint64_t id;
    const char *kind, *name, *group, *state;
    uint32_t owner_uid;
    double created_at, started_at, finished_at;
    uint32_t attempts;
    const char *command; /* exec: its command line (an extension field), NULL: absent */
    const uint8_t *result;
    size_t result_len;
    const uint8_t *error;
    size_t error_len;
    bool omitted; /* result and error left out of an answer that holds enough: `omitted: true` */
    uint64_t restarted_from; /* the task this one runs again (`restart`), 0: none (absent) */
    const uint8_t *argv;     /* exec: its argv as submitted, a packed array; NULL: absent */
    size_t argv_len;
    const uint8_t *waiting;  /* pending: why it waits, a packed map; NULL: absent */
    size_t waiting_len;
    const uint8_t *slurm;    /* its attempt's Slurm job, a packed map {job, nodes}; NULL: absent */
    size_t slurm_len;
} cp_record;

void cp_pack_record(cp_out *o, const cp_record *r);

/* A spec (packed params of a submit) with the fields of `edits` (a packed map: name,
 * group, priority, delay...) put in place of its own, packed into o: 0, -EINVAL when
 * either is not a map, -ENOMEM. */
int cp_spec_edit(const void *spec, size_t len, const void *edits, size_t elen, cp_out *o);

/* An exec spec's args.argv (params as submitted), packed into o: 0, or -ENOENT when the
 * spec has none (another kind), -ENOMEM. */
int cp_spec_argv(const msgpack_object *params, cp_out *o);

#endif
