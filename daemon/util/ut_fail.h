/* ut_fail: a failure said in a caller's buffer — the sentence formatted into buf, the
 * negative errno returned — for the modules that report errors as text beside the code
 * (the store's opening, a Slurm group's settings). */
#ifndef UT_FAIL_H
#define UT_FAIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline int ut_fail(char *buf, size_t len, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline int ut_fail(char *buf, size_t len, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return rc;
}

#endif
