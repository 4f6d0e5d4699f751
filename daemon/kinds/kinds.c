/* kinds.c: the table of task kinds. `exec` is in the contract and arrives with the next
 * issue; until then it is known, and refused with a message that says so. */
#include "kind.h"

#include <errno.h>
#include <string.h>

int kind_args_error(cp_error *err)
{
    char field[sizeof err->message];
    memcpy(field, err->message, sizeof field);
    return cp_fail(err, err->code, "args.%s", field);
}

static int kind_unavailable(const msgpack_object *args, void **parsed, cp_error *err)
{
    (void)args;
    (void)parsed;
    return cp_fail(err, CP_BAD_REQUEST, "kind \"exec\" is not available in this version of corod");
}

static const kind_ops kind_exec = { .name = "exec", .available = false, .takes_slot = true,
                                    .validate = kind_unavailable };

static const kind_ops *const kind_table[] = { &kind_sleep, &kind_gather, &kind_exec };

const kind_ops *kind_find(cp_str name)
{
    for (size_t i = 0; i < sizeof kind_table / sizeof *kind_table; i++)
        if (cp_str_eq(name, kind_table[i]->name))
            return kind_table[i];
    return NULL;
}
