/* kinds.c: the table of task kinds. `exec` is in the contract and arrives with the next
 * issue; until then it is known but not available, and submit says so. */
#include "kind.h"

#include <errno.h>
#include <string.h>

int kind_args_error(cp_error *err)
{
    char field[sizeof err->message];
    memcpy(field, err->message, sizeof field);
    return cp_fail(err, err->code, "args.%s", field);
}

static const kind_ops kind_exec = { .name = "exec", .available = false };

static const kind_ops *const kind_table[] = { &kind_sleep, &kind_gather, &kind_exec };

const kind_ops *kind_find(cp_str name)
{
    for (size_t i = 0; i < sizeof kind_table / sizeof *kind_table; i++)
        if (cp_str_eq(name, kind_table[i]->name))
            return kind_table[i];
    return NULL;
}
