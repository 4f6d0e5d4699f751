/* st_read.c: history — rows read by id, and pages of tasks by filter — on a read-only
 * connection of their own, so they never wait for the writer (WAL: readers see the last
 * commit while the next one is written). Callers run these off the loop. */
#include "st_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st_read_open(st_store *st, const char *path, char *errbuf, size_t errlen)
{
    int rc = uv_mutex_init(&st->rmu);
    if (rc < 0)
        return rc;
    rc = sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(errbuf, errlen, "cannot open %s for reading: %s", path,
                 st->rdb ? sqlite3_errmsg(st->rdb) : "out of memory");
        sqlite3_close(st->rdb);
        st->rdb = NULL;
        uv_mutex_destroy(&st->rmu);
        return -EIO;
    }
    sqlite3_busy_timeout(st->rdb, 2000);
    return 0;
}

void st_read_close(st_store *st)
{
    if (!st->rdb)
        return;
    uv_mutex_lock(&st->rmu);
    sqlite3_close(st->rdb);
    st->rdb = NULL;
    uv_mutex_unlock(&st->rmu);
    uv_mutex_destroy(&st->rmu);
}

static int st_errno(int rc)
{
    return rc == SQLITE_NOMEM ? -ENOMEM : rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

/* Each row of s to fn; 0, fn's negative return, or an errno. Finalizes s. */
static int st_rows(sqlite3_stmt *s, st_row_fn *fn, void *arg, uint64_t *last, size_t *n)
{
    int rc, out = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        st_task t;
        if (!st_row(s, &t)) {
            out = -EIO;
            break;
        }
        if (last)
            *last = t.id;
        if (n)
            (*n)++;
        if ((out = fn(&t, arg)) < 0)
            break;
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = st_errno(rc);
    sqlite3_finalize(s);
    return out;
}

st_task *st_task_copy(const st_task *t)
{
    const char *s[4] = { t->kind, t->name, t->group, t->command };
    size_t len[4], bytes = sizeof *t + t->spec_len + t->outcome_len;
    for (int i = 0; i < 4; i++)
        bytes += (len[i] = s[i] ? strlen(s[i]) + 1 : 0);
    st_task *c = malloc(bytes);
    if (!c)
        return NULL;
    *c = *t;
    char *p = (char *)(c + 1);
    const char **d[4] = { &c->kind, &c->name, &c->group, &c->command };
    for (int i = 0; i < 4; i++) {
        *d[i] = s[i] ? memcpy(p, s[i], len[i]) : NULL;
        p += len[i];
    }
    c->spec = t->spec_len ? memcpy(p, t->spec, t->spec_len) : NULL;
    p += t->spec_len;
    c->outcome = t->outcome_len ? memcpy(p, t->outcome, t->outcome_len) : NULL;
    return c;
}

int st_read(st_store *st, const uint64_t *ids, size_t n, st_row_fn *fn, void *arg)
{
    uv_mutex_lock(&st->rmu);
    int out = 0;
    sqlite3_stmt *s = NULL;
    int rc = st->rdb ? sqlite3_prepare_v2(st->rdb, "SELECT " ST_COLUMNS " FROM tasks WHERE id = ?1", -1, &s, NULL)
                     : SQLITE_MISUSE;
    if (rc != SQLITE_OK)
        out = st->rdb ? st_errno(rc) : -ESHUTDOWN;
    for (size_t i = 0; out == 0 && i < n; i++) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)ids[i]);
        rc = sqlite3_step(s);
        st_task t;
        if (rc == SQLITE_ROW)
            out = st_row(s, &t) ? fn(&t, arg) : -EIO;
        else if (rc != SQLITE_DONE)
            out = st_errno(rc);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    uv_mutex_unlock(&st->rmu);
    return out;
}

/* The highest id stored (0: none): where a page newest first starts. */
static uint64_t st_max_id(sqlite3 *db)
{
    sqlite3_stmt *s;
    uint64_t max = 0;
    if (sqlite3_prepare_v2(db, "SELECT max(id) FROM tasks", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            max = (uint64_t)sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    return max;
}

int st_list(st_store *st, const st_query *q, st_row_fn *fn, void *arg, uint64_t *next)
{
    *next = 0;
    uv_mutex_lock(&st->rmu);
    if (!st->rdb) {
        uv_mutex_unlock(&st->rmu);
        return -ESHUTDOWN;
    }
    /* The window of ids this page looks at: [lo, hi]. */
    uint64_t max = st_max_id(st->rdb), lo, hi;
    if (!q->desc) {
        lo = q->after + 1;
        hi = q->window && lo + q->window - 1 < max ? lo + q->window - 1 : max;
    } else {
        hi = q->after ? q->after - 1 : max;
        lo = q->window && hi > q->window ? hi - q->window + 1 : 1;
    }
    if (lo > hi || !max) {
        uv_mutex_unlock(&st->rmu);
        return 0;
    }
    char sql[768];
    int len = snprintf(sql, sizeof sql, "SELECT " ST_COLUMNS " FROM tasks WHERE id BETWEEN ?1 AND ?2%s%s%s%s%s%s%s"
                       " ORDER BY id %s LIMIT ?10",
                       q->all_owners ? "" : " AND owner = ?3", q->state >= 0 ? " AND state = ?4" : "",
                       q->group ? " AND grp = ?5" : "", q->kind ? " AND kind = ?6" : "",
                       q->name ? " AND name = ?7" : "", !isnan(q->since) ? " AND created_at >= ?8" : "",
                       !isnan(q->until) ? " AND created_at < ?9" : "", q->desc ? "DESC" : "ASC");
    sqlite3_stmt *s;
    int rc = len < (int)sizeof sql ? sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) : SQLITE_TOOBIG;
    if (rc != SQLITE_OK) {
        uv_mutex_unlock(&st->rmu);
        return st_errno(rc);
    }
    sqlite3_bind_int64(s, 1, (sqlite3_int64)lo);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)hi);
    sqlite3_bind_int64(s, 3, q->owner);
    sqlite3_bind_int(s, 4, q->state);
    if (q->group)
        sqlite3_bind_text(s, 5, q->group, -1, SQLITE_STATIC);
    if (q->kind)
        sqlite3_bind_text(s, 6, q->kind, -1, SQLITE_STATIC);
    if (q->name)
        sqlite3_bind_text(s, 7, q->name, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 8, q->since);
    sqlite3_bind_double(s, 9, q->until);
    sqlite3_bind_int64(s, 10, (sqlite3_int64)(q->limit ? q->limit : 1));
    uint64_t last = 0;
    size_t n = 0;
    int out = st_rows(s, fn, arg, &last, &n);
    if (out == -ECANCELED) { /* the caller's page is full: the next starts after it */
        *next = last;
        out = 0;
    } else if (out == 0) {
        if (n == q->limit && n)
            *next = last; /* a full page: the next starts after its last row */
        else if (!q->desc && hi < max)
            *next = hi; /* the window ended before the ids did */
        else if (q->desc && lo > 1)
            *next = lo;
    }
    uv_mutex_unlock(&st->rmu);
    return out;
}
