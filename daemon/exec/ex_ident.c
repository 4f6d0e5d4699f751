/* ex_ident.c: the user database lookups behind a job's credentials and default
 * environment, with a small cache (a busy daemon runs many jobs of few users). */
#include "ex_ident.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ex_spawn.h"

static pthread_mutex_t ex_ident_lock = PTHREAD_MUTEX_INITIALIZER;
static ex_ident *ex_ident_cache[EX_IDENT_CACHE];

static double ex_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ex_ident_free(ex_ident *id)
{
    free(id->name);
    free(id->home);
    free(id->shell);
    free(id->groups);
    free(id);
}

/* The lookup itself, outside the lock. */
static int ex_ident_lookup(uid_t uid, ex_ident **out)
{
    ex_ident *id = calloc(1, sizeof *id);
    if (!id)
        return -ENOMEM;
    id->uid = uid;
    id->refs = 1;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t blen = sz > 0 ? (size_t)sz : 16384;
    char *buf = NULL;
    struct passwd pw, *res = NULL;
    int rc;
    for (;;) {
        char *nb = realloc(buf, blen);
        if (!nb) {
            free(buf);
            ex_ident_free(id);
            return -ENOMEM;
        }
        buf = nb;
        rc = getpwuid_r(uid, &pw, buf, blen, &res);
        if (rc != ERANGE || blen >= (1u << 20))
            break;
        blen *= 2;
    }
    char num[16];
    snprintf(num, sizeof num, "%u", (unsigned)uid);
    if (rc == 0 && res) {
        id->known = true;
        id->gid = pw.pw_gid;
        id->name = strdup(pw.pw_name);
        id->home = strdup(pw.pw_dir && pw.pw_dir[0] ? pw.pw_dir : "/");
        id->shell = strdup(pw.pw_shell && pw.pw_shell[0] ? pw.pw_shell : "/bin/sh");
    } else {
        id->gid = (gid_t)-1;
        id->name = strdup(num);
        id->home = strdup("/");
        id->shell = strdup("/bin/sh");
    }
    if (!id->name || !id->home || !id->shell) {
        free(buf);
        ex_ident_free(id);
        return -ENOMEM;
    }
    if (id->known) {
        int n = 64;
        for (;;) {
            gid_t *g = realloc(id->groups, (size_t)n * sizeof *g);
            if (!g) {
                free(buf);
                ex_ident_free(id);
                return -ENOMEM;
            }
            id->groups = g;
            int want = n;
            if (getgrouplist(id->name, id->gid, g, &want) >= 0) {
                id->ngroups = (size_t)want;
                break;
            }
            if (want <= n || want > (int)EX_MAX_GROUPS) { /* cannot grow: keep the primary only */
                g[0] = id->gid;
                id->ngroups = 1;
                break;
            }
            n = want;
        }
    }
    free(buf);
    id->looked_up = ex_mono();
    *out = id;
    return 0;
}

ex_ident *ex_ident_cached(uid_t uid)
{
    double now = ex_mono();
    pthread_mutex_lock(&ex_ident_lock);
    for (size_t i = 0; i < EX_IDENT_CACHE; i++) {
        ex_ident *c = ex_ident_cache[i];
        if (c && c->uid == uid && now - c->looked_up < EX_IDENT_TTL) {
            c->refs++;
            pthread_mutex_unlock(&ex_ident_lock);
            return c;
        }
    }
    pthread_mutex_unlock(&ex_ident_lock);
    return NULL;
}

int ex_ident_get(uid_t uid, ex_ident **out)
{
    if ((*out = ex_ident_cached(uid)))
        return 0;

    ex_ident *id;
    int rc = ex_ident_lookup(uid, &id);
    if (rc < 0)
        return rc;
    /* Cache it: replace this uid's stale entry, else an empty slot, else the oldest. */
    pthread_mutex_lock(&ex_ident_lock);
    size_t victim = 0;
    for (size_t i = 0; i < EX_IDENT_CACHE; i++) {
        ex_ident *c = ex_ident_cache[i];
        if (!c || c->uid == uid) {
            victim = i;
            break;
        }
        if (c->looked_up < ex_ident_cache[victim]->looked_up)
            victim = i;
    }
    ex_ident *old = ex_ident_cache[victim];
    ex_ident_cache[victim] = id;
    id->refs++; /* the cache's */
    if (old && --old->refs == 0)
        ex_ident_free(old);
    pthread_mutex_unlock(&ex_ident_lock);
    *out = id;
    return 0;
}

ex_ident *ex_ident_ref(ex_ident *id)
{
    pthread_mutex_lock(&ex_ident_lock);
    id->refs++;
    pthread_mutex_unlock(&ex_ident_lock);
    return id;
}

void ex_ident_put(ex_ident *id)
{
    if (!id)
        return;
    pthread_mutex_lock(&ex_ident_lock);
    bool last = --id->refs == 0;
    pthread_mutex_unlock(&ex_ident_lock);
    if (last)
        ex_ident_free(id);
}

void ex_ident_cache_clear(void)
{
    pthread_mutex_lock(&ex_ident_lock);
    for (size_t i = 0; i < EX_IDENT_CACHE; i++) {
        ex_ident *c = ex_ident_cache[i];
        ex_ident_cache[i] = NULL;
        if (c && --c->refs == 0)
            ex_ident_free(c);
    }
    pthread_mutex_unlock(&ex_ident_lock);
}

char **ex_ident_min_env(const ex_ident *id)
{
    const char *path = id->uid == 0 ? EX_DEFAULT_ROOT_PATH : EX_DEFAULT_PATH;
    const char *keys[5] = { "PATH=", "HOME=", "USER=", "LOGNAME=", "SHELL=" };
    const char *vals[5] = { path, id->home, id->name, id->name, id->shell };
    size_t bytes = 6 * sizeof(char *);
    for (int i = 0; i < 5; i++)
        bytes += strlen(keys[i]) + strlen(vals[i]) + 1;
    char **env = malloc(bytes);
    if (!env)
        return NULL;
    char *p = (char *)(env + 6);
    for (int i = 0; i < 5; i++) {
        env[i] = p;
        p += sprintf(p, "%s%s", keys[i], vals[i]) + 1;
    }
    env[5] = NULL;
    return env;
}
