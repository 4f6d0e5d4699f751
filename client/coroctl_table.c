/* coroctl_table.c: `list` and `status` as people read them — one line per task under a
 * header line per group, times relative to now, durations rounded, why a pending task
 * waits, states coloured on a terminal (not with NO_COLOR), the command cut to the
 * terminal's width — and as tab-separated lines, which is what a pipe gets. */

#include "coroctl.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cp_msg.h"

#define TABLE_NAME_MAX 24 /* columns of a name before it is cut */
#define TABLE_COMMAND_MIN 16

/* ---- words for times and durations ---- */

void fmt_duration(char *buf, size_t len, double s)
{
    if (!(s >= 0))
        snprintf(buf, len, "-");
    else if (s < 10)
        snprintf(buf, len, "%.1fs", floor(s * 10) / 10);
    else if (s < 60)
        snprintf(buf, len, "%ds", (int)s);
    else if (s < 3600)
        snprintf(buf, len, "%dm %02ds", (int)s / 60, (int)s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%dh %02dm", (int)s / 3600, (int)s % 3600 / 60);
    else
        snprintf(buf, len, "%dd %02dh", (int)(s / 86400), (int)fmod(s, 86400) / 3600);
}

/* "just now", "42s ago", "3 min ago", "2 h ago"; a day or more: the date. A time to come
 * (a delay's end): "in 3 min". */
void fmt_ago(char *buf, size_t len, double t, double now)
{
    if (isnan(t)) {
        snprintf(buf, len, "-");
        return;
    }
    double d = now - t;
    const char *pre = "", *post = " ago";
    if (d < 0)
        d = -d, pre = "in ", post = "";
    if (d < 1)
        snprintf(buf, len, "%s", pre[0] ? "now" : "just now");
    else if (d < 60)
        snprintf(buf, len, "%s%ds%s", pre, (int)d, post);
    else if (d < 3600)
        snprintf(buf, len, "%s%d min%s", pre, (int)d / 60, post);
    else if (d < 86400)
        snprintf(buf, len, "%s%d h%s", pre, (int)d / 3600, post);
    else
        fmt_local(buf, len, t, "%b %d %H:%M");
}

size_t fmt_local(char *buf, size_t len, double t, const char *fmt)
{
    if (isnan(t))
        return (size_t)snprintf(buf, len, "-");
    time_t s = (time_t)t;
    struct tm tm;
    localtime_r(&s, &tm);
    return strftime(buf, len, fmt, &tm);
}

/* ---- what a record says ---- */

static uint64_t unum(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

/* The EXIT column: a job's exit code or signal; another failure's code. */
void task_exit_text(const corod_task *t, char *buf, size_t len)
{
    buf[0] = '\0';
    const void *p = t->result ? t->result : t->error;
    size_t n = t->result ? t->result_len : t->error_len, off = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (p && msgpack_unpack_next(&u, p, n, &off) == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *code = cp_get(&u.data, "exit_code"), *sig = cp_get(&u.data, "signal");
        if (code && code->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            snprintf(buf, len, "%llu", (unsigned long long)code->via.u64);
        else if (sig && sig->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            const char *abbrev = sig->via.u64 < 65 ? sigabbrev_np((int)sig->via.u64) : NULL;
            if (abbrev)
                snprintf(buf, len, "SIG%s", abbrev);
            else
                snprintf(buf, len, "signal %llu", (unsigned long long)sig->via.u64);
        }
        /* oom and the like say more than the exit code a job killed for them has */
        if (t->error_code && strcmp(t->error_code, "exit_status") && strcmp(t->error_code, "signal"))
            snprintf(buf, len, "%s", t->error_code);
    } else if (t->error_code) {
        snprintf(buf, len, "%s", t->error_code);
    }
    msgpack_unpacked_destroy(&u);
}

/* Why a pending task waits, in words ("after #3, #4", "group full (4/4)", "retry in 4s"). */
void task_waiting_text(const corod_task *t, char *buf, size_t len, double now)
{
    buf[0] = '\0';
    if (!t->waiting)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, t->waiting, t->waiting_len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        return;
    }
    const msgpack_object *m = &u.data, *reason = cp_get(m, "reason");
    char r[32] = "";
    if (reason && reason->type == MSGPACK_OBJECT_STR && reason->via.str.size < sizeof r)
        memcpy(r, reason->via.str.ptr, reason->via.str.size);
    char when[48];
    if (!strcmp(r, "after")) {
        const msgpack_object *ids = cp_get(m, "ids");
        uint64_t left = unum(cp_get(m, "left"));
        size_t n = snprintf(buf, len, "after");
        uint32_t shown = 0;
        for (uint32_t i = 0; ids && ids->type == MSGPACK_OBJECT_ARRAY && i < ids->via.array.size && i < 3; i++)
            if (ids->via.array.ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER && n < len)
                n += snprintf(buf + n, len - n, "%s #%llu", shown++ ? "," : "",
                              (unsigned long long)ids->via.array.ptr[i].via.u64);
        if (left > shown && n < len)
            snprintf(buf + n, len - n, "%s %llu more", shown ? " and" : "", (unsigned long long)(left - shown));
    } else if (!strcmp(r, "delay") || !strcmp(r, "retry")) {
        fmt_ago(when, sizeof when, cp_num(cp_get(m, "until")), now);
        snprintf(buf, len, "%s %s", !strcmp(r, "delay") ? "delayed: starts" : "retry", when);
    } else if (!strcmp(r, "paused")) {
        snprintf(buf, len, "group paused");
    } else if (!strcmp(r, "full")) {
        snprintf(buf, len, "group full (%llu/%llu)", (unsigned long long)unum(cp_get(m, "running")),
                 (unsigned long long)unum(cp_get(m, "parallel")));
    } else if (!strcmp(r, "queued")) {
        snprintf(buf, len, "queued");
    } else if (r[0]) {
        snprintf(buf, len, "%s", r);
    }
    msgpack_unpacked_destroy(&u);
}

/* ---- cells ---- */

/* A cell's text, made safe for one line and one field: control characters as \n, \t,
 * \xNN. */
static char *cell(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char *o = malloc(n * 4 + 2), *p = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n')
            *p++ = '\\', *p++ = 'n';
        else if (ch == '\t')
            *p++ = '\\', *p++ = 't';
        else if (ch < 0x20 || ch == 0x7f)
            p += sprintf(p, "\\x%02x", ch);
        else
            *p++ = (char)ch;
    }
    *p = '\0';
    return o;
}

/* Columns a UTF-8 string takes (a character a column: wide ones are rare in a command). */
static size_t cols(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* Print s in exactly `w` columns (cut with "…", or padded), left or right aligned. */
static void put_cell(const char *s, size_t w, bool right, bool last)
{
    size_t c = cols(s);
    if (c > w) {
        size_t k = 0, i = 0;
        for (; s[i] && k < (w ? w - 1 : 0); i++)
            k += ((unsigned char)s[i] & 0xc0) != 0x80;
        while (((unsigned char)s[i] & 0xc0) == 0x80) /* finish the character */
            i++;
        fwrite(s, 1, i, stdout);
        if (w)
            fputs("…", stdout);
        return;
    }
    if (right)
        printf("%*s%s", (int)(w - c), "", s);
    else if (last)
        fputs(s, stdout);
    else
        printf("%s%*s", s, (int)(w - c), "");
}

static const char *state_colour(const char *state)
{
    if (!strcmp(state, "running"))
        return "\033[36m"; /* cyan */
    if (!strcmp(state, "succeeded"))
        return "\033[32m";
    if (!strcmp(state, "failed"))
        return "\033[31m";
    if (!strcmp(state, "cancelled"))
        return "\033[35m";
    return "\033[33m"; /* pending */
}

bool use_colour(void)
{
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && !(nc && nc[0]) && !(term && !strcmp(term, "dumb"));
}

static size_t term_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    long v = c ? strtol(c, NULL, 10) : 0;
    return v > 0 && v < 10000 ? (size_t)v : 80;
}

/* ---- the table ---- */

enum { C_ID, C_NAME, C_STATE, C_EXIT, C_WHEN, C_TIME, C_COMMAND, C_N };
static const char *const heads[C_N] = { "ID", "NAME", "STATE", "EXIT", "STARTED", "TIME", "COMMAND" };

typedef struct row {
    char *c[C_N];
    const corod_task *t;
} row;

static int group_order(const table_group *gs, size_t ng, const char *name)
{
    for (size_t i = 0; i < ng; i++)
        if (!strcmp(gs[i].name, name))
            return (int)i;
    return (int)ng;
}

static const table_group *sort_groups;
static size_t sort_ngroups;

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    const char *gx = x->t->group ? x->t->group : "", *gy = y->t->group ? y->t->group : "";
    int ox = group_order(sort_groups, sort_ngroups, gx), oy = group_order(sort_groups, sort_ngroups, gy);
    if (ox != oy)
        return ox < oy ? -1 : 1;
    int c = strcmp(gx, gy);
    if (c)
        return c;
    return (x < y) ? -1 : (x > y); /* keeps the order asked for (by id, or newest first) */
}

static void fill_row(row *r, const corod_task *t, double now)
{
    char b[256];
    r->t = t;
    snprintf(b, sizeof b, "%llu", (unsigned long long)t->id);
    r->c[C_ID] = strdup(b);
    r->c[C_NAME] = cell(t->name ? t->name : "");
    r->c[C_STATE] = strdup(t->state);
    task_exit_text(t, b, sizeof b);
    r->c[C_EXIT] = cell(b);
    b[0] = '\0';
    if (!strcmp(t->state, "pending"))
        task_waiting_text(t, b, sizeof b, now);
    else
        fmt_ago(b, sizeof b, t->started_at, now);
    r->c[C_WHEN] = strdup(isnan(t->started_at) && strcmp(t->state, "pending") ? "-" : b);
    double d = !isnan(t->finished_at) ? t->finished_at - t->started_at
             : !strcmp(t->state, "running") ? now - t->started_at : NAN;
    fmt_duration(b, sizeof b, isnan(t->started_at) ? NAN : d);
    r->c[C_TIME] = strdup(isnan(d) || isnan(t->started_at) ? "" : b);
    r->c[C_COMMAND] = cell(t->command ? t->command : t->kind);
}

static void print_header(const table_group *g, const char *name, bool colour)
{
    if (!g) {
        printf("%s%s%s\n", colour ? "\033[1m" : "", name, colour ? "\033[0m" : "");
        return;
    }
    printf("%s%s%s  ", colour ? "\033[1m" : "", g->name, colour ? "\033[0m" : "");
    if (g->parallel)
        printf("%u slot%s", g->parallel, g->parallel == 1 ? "" : "s");
    else
        printf("no slot bound");
    printf(", %zu running, %zu pending", g->running, g->pending);
    if (g->paused)
        printf(", %spaused%s", colour ? "\033[33m" : "", colour ? "\033[0m" : "");
    putchar('\n');
}

static void print_tsv(corod_task **v, size_t n, double now)
{
    for (size_t i = 0; i < n; i++) {
        const corod_task *t = v[i];
        char ex[128], st[64], wt[256], du[32] = "-";
        task_exit_text(t, ex, sizeof ex);
        fmt_local(st, sizeof st, t->started_at, "%Y-%m-%dT%H:%M:%S%z");
        task_waiting_text(t, wt, sizeof wt, now);
        double d = !isnan(t->finished_at) ? t->finished_at - t->started_at
                 : !strcmp(t->state, "running") ? now - t->started_at : NAN;
        if (!isnan(d))
            snprintf(du, sizeof du, "%.3f", d);
        char *name = cell(t->name ? t->name : "-"), *cmd = cell(t->command ? t->command : t->kind);
        char *group = cell(t->group ? t->group : "-");
        printf("%llu\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", (unsigned long long)t->id, name && name[0] ? name : "-",
               group ? group : "-", t->state, ex[0] ? ex : "-", st, du, wt[0] ? wt : "-", cmd ? cmd : "-");
        free(name), free(cmd), free(group);
    }
}

int print_table(corod_task **v, size_t n, const table_group *gs, size_t ng, int format)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (format == FORMAT_TSV) {
        print_tsv(v, n, now);
        return fflush(stdout) == 0 ? EX_OK : EX_TASK;
    }
    if (n == 0) {
        printf("no tasks\n");
        return EX_OK;
    }
    row *rows = calloc(n, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "coroctl: out of memory\n");
        return EX_TASK;
    }
    size_t w[C_N];
    for (int k = 0; k < C_N; k++)
        w[k] = cols(heads[k]);
    for (size_t i = 0; i < n; i++) {
        fill_row(&rows[i], v[i], now);
        for (int k = 0; k < C_N; k++) {
            if (!rows[i].c[k]) {
                fprintf(stderr, "coroctl: out of memory\n");
                exit(EX_TASK);
            }
            size_t c = cols(rows[i].c[k]);
            if (c > w[k])
                w[k] = c;
        }
    }
    if (w[C_NAME] > TABLE_NAME_MAX)
        w[C_NAME] = TABLE_NAME_MAX;
    sort_groups = gs, sort_ngroups = ng;
    qsort(rows, n, sizeof *rows, row_cmp);
    bool colour = use_colour();
    bool show_name = false; /* a NAME column only when a task has one */
    for (size_t i = 0; i < n && !show_name; i++)
        show_name = rows[i].c[C_NAME][0] != '\0';
    size_t used = 2; /* the indent */
    for (int k = 0; k < C_COMMAND; k++)
        if (k != C_NAME || show_name)
            used += w[k] + 2;
    size_t tw = term_width();
    /* A narrow terminal: the reason a task waits and the name give way before the
     * command does, down to a few columns each. */
    static const struct { int col; size_t min; } give[] = { { C_WHEN, 10 }, { C_NAME, 8 } };
    for (size_t i = 0; i < 2 && used + TABLE_COMMAND_MIN + 1 > tw; i++) {
        size_t k = (size_t)give[i].col, over = used + TABLE_COMMAND_MIN + 1 - tw;
        size_t cut = w[k] > give[i].min ? w[k] - give[i].min : 0;
        if (k == C_NAME && !show_name)
            continue;
        cut = cut < over ? cut : over;
        w[k] -= cut, used -= cut;
    }
    w[C_COMMAND] = tw > used + TABLE_COMMAND_MIN ? tw - used - 1 : TABLE_COMMAND_MIN;
    const char *group = NULL;
    for (size_t i = 0; i < n; i++) {
        const corod_task *t = rows[i].t;
        const char *g = t->group ? t->group : "-";
        if (!group || strcmp(group, g)) {
            int o = group_order(gs, ng, g);
            if (group)
                putchar('\n');
            print_header(o < (int)ng ? &gs[o] : NULL, g, colour);
            fputs("  ", stdout);
            for (int k = 0; k < C_N; k++) {
                if (k == C_NAME && !show_name)
                    continue;
                if (colour && k == 0)
                    fputs("\033[2m", stdout);
                put_cell(heads[k], w[k], k == C_ID || k == C_TIME, k == C_COMMAND);
                if (k != C_COMMAND)
                    fputs("  ", stdout);
            }
            puts(colour ? "\033[0m" : "");
            group = g;
        }
        fputs("  ", stdout);
        for (int k = 0; k < C_N; k++) {
            if (k == C_NAME && !show_name)
                continue;
            if (k == C_STATE && colour)
                fputs(state_colour(t->state), stdout);
            put_cell(rows[i].c[k], w[k], k == C_ID || k == C_TIME, k == C_COMMAND);
            if (k == C_STATE && colour)
                fputs("\033[0m", stdout);
            if (k != C_COMMAND)
                fputs("  ", stdout);
        }
        putchar('\n');
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < C_N; k++)
            free(rows[i].c[k]);
    free(rows);
    return fflush(stdout) == 0 ? EX_OK : EX_TASK;
}

/* ---- the groups, for the header lines ---- */

void table_groups_free(table_group *gs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(gs[i].name);
    free(gs);
}

/* 0 and the daemon's groups, or a negative errno (the caller says why). */
int table_groups_get(table_group **out, size_t *nout)
{
    void *res;
    size_t len, off = 0;
    *out = NULL, *nout = 0;
    int rc = corod_call(cli, "groups", NULL, 0, &res, &len);
    if (rc < 0)
        return rc;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    const msgpack_object *gs = NULL;
    if (msgpack_unpack_next(&u, res, len, &off) == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP)
        gs = cp_get(&u.data, "groups");
    size_t n = gs && gs->type == MSGPACK_OBJECT_ARRAY ? gs->via.array.size : 0;
    table_group *v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        const msgpack_object *g = &gs->via.array.ptr[i], *name = cp_get(g, "name"), *paused = cp_get(g, "paused");
        v[i].name = name && name->type == MSGPACK_OBJECT_STR ? strndup(name->via.str.ptr, name->via.str.size)
                                                              : strdup("?");
        v[i].parallel = (uint32_t)unum(cp_get(g, "parallel"));
        v[i].running = (size_t)unum(cp_get(g, "running"));
        v[i].pending = (size_t)unum(cp_get(g, "pending"));
        v[i].paused = paused && paused->type == MSGPACK_OBJECT_BOOLEAN && paused->via.boolean;
        if (!v[i].name) {
            table_groups_free(v, i);
            v = NULL;
        }
    }
    msgpack_unpacked_destroy(&u);
    free(res);
    if (!v)
        return -ENOMEM;
    *out = v, *nout = n;
    return 0;
}
