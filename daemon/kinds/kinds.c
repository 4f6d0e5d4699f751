/* kinds.c: the table of task kinds, and helpers they share. */
#include "kind.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

int kind_args_error(cp_error *err)
{
    char field[sizeof err->message];
    memcpy(field, err->message, sizeof field);
    return cp_fail(err, err->code, "args.%s", field);
}

static const kind_ops *const kind_table[] = { &kind_sleep, &kind_gather, &kind_exec };

const kind_ops *kind_find(cp_str name)
{
    for (size_t i = 0; i < sizeof kind_table / sizeof *kind_table; i++)
        if (cp_str_eq(name, kind_table[i]->name))
            return kind_table[i];
    return NULL;
}

int kind_output_path(const char *output_dir, uint64_t id, int stream, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%llu.%s", output_dir, (unsigned long long)id, stream == 2 ? "err" : "out");
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void kind_output_remove(const char *output_dir, uint64_t id)
{
    char path[PATH_MAX];
    for (int s = 1; s <= 2; s++)
        if (kind_output_path(output_dir, id, s, path, sizeof path) == 0)
            unlink(path); /* ENOENT for a stream the job never wrote */
}
