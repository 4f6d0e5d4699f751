/* ex_ident: who a job runs as — a uid's name, primary gid, supplementary groups, home
 * and shell from the user database — and the minimal environment built from it.
 * Lookups read /etc/passwd and /etc/group (or NSS): they block, so call them off the
 * loop. Results are cached for EX_IDENT_TTL seconds; entries are shared, thread-safe,
 * reference counted. */
#ifndef EX_IDENT_H
#define EX_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define EX_IDENT_TTL 30.0    /* seconds a lookup is reused */
#define EX_IDENT_CACHE 64u   /* uids cached at once */

typedef struct ex_ident {
    uid_t uid;
    gid_t gid;
    bool known; /* false: no entry in the user database */
    char *name, *home, *shell;
    gid_t *groups; /* supplementary groups, primary gid included (as initgroups does) */
    size_t ngroups;
    /* private */
    unsigned refs;
    double looked_up;
} ex_ident;

/* 0 with a reference in *out, or a negative errno (-ENOMEM). An unknown uid is not an
 * error: the entry says known = false and carries placeholders (name = the number,
 * home "/", shell /bin/sh). */
int ex_ident_get(uid_t uid, ex_ident **out);
/* The cached entry for uid if it is fresh, else NULL: never blocks (the loop calls it and
 * goes to the thread pool only on a miss). */
ex_ident *ex_ident_cached(uid_t uid);
ex_ident *ex_ident_ref(ex_ident *id); /* another reference */
void ex_ident_put(ex_ident *id);
/* Drops every cached entry (tests; and at exit, for leak checkers). */
void ex_ident_cache_clear(void);

/* The environment a job gets when its submit named none: PATH, HOME, USER, LOGNAME and
 * SHELL of the owner. A NULL-terminated array in one allocation; free() it. */
char **ex_ident_min_env(const ex_ident *id);

#endif
