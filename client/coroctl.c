/* coroctl: corod from the command line. Human output by default, --json for scripts
 * (one JSON object per line). Exit codes: 0 ok; 1 a waited task failed or was cancelled;
 * 2 usage; 3 the daemon refused the request; 4 no connection; 5 a wait timed out. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <poll.h>
#include <unistd.h>

#include <msgpack.h>

#include "coroctl.h"
#include "cp_msg.h"

static const char usage[] =
    "usage: coroctl [--socket PATH] [--json|--jsonl] COMMAND [ARGS]\n"
    "Talk to the corod task daemon. coroctl COMMAND --help: a command's options and examples.\n"
    "\n"
    "jobs:\n"
    "  add [OPTS] [JOB OPTS] [--wait] -- CMD [ARGS...]\n"
    "                                queue a command; print its id. It runs in your current\n"
    "                                directory with your environment. --wait: wait for it and\n"
    "                                exit with its exit code\n"
    "  run [OPTS] [JOB OPTS] -- CMD [ARGS...]\n"
    "                                queue a command, stream its output as it comes, exit\n"
    "                                with its exit code (Ctrl-C cancels it)\n"
    "  logs ID [--stderr|--all] [-f|--follow]\n"
    "                                print a job's stdout (or stderr, or both); --follow\n"
    "                                keeps printing until it ends\n"
    "  group set|add NAME [--parallel N] [--pause|--resume] [--slurm [OPTS]|--local]\n"
    "  group rm NAME...\n"
    "                                change a group (root or the daemon's user); --parallel 0\n"
    "                                means no bound; --slurm: run its jobs on a Slurm cluster\n"
    "                                (coroctl help group)\n"
    "  kill ID... [--signal SIG]     send a signal (default TERM) to running jobs\n"
    "  edit ID [--name S] [--group G] [--priority N] [--delay SECONDS]\n"
    "                                change a task that has not started; priority ID N\n"
    "  send ID TEXT|- [-n] [--eof]   write TEXT and a newline (or standard input) to a job\n"
    "                                added with --stdin-pipe; --eof closes its stdin\n"
    "  pause|resume GROUP... | --all [--running]\n"
    "                                stop / restart starting the groups' queued tasks;\n"
    "                                --running: also stop (SIGSTOP) / continue their jobs\n"
    "  groups                        show the groups: slots, paused, running, pending\n"
    "\n"
    "tasks:\n"
    "  ping                          check the daemon answers; print its version and pid\n"
    "  sleep SECONDS [OPTS]          submit a sleep; print its id\n"
    "  gather ID... [OPTS] [--return-exceptions]\n"
    "                                submit a gather of other tasks; print its id\n"
    "  cancel ID... | --group G [--message TEXT]\n"
    "                                cancel tasks (a job: SIGTERM to its process group,\n"
    "                                SIGKILL after its grace period; a gather: its members)\n"
    "  wait ID... | --group G [--mode all|first_completed|first_exception] [--timeout S]\n"
    "                                wait for tasks; fail if one failed or was cancelled\n"
    "  status ID                     show one task in detail (no id: the table, as list)\n"
    "  list [--state S] [--group G] [--kind K] [--name N] [--owner UID] [--since T]\n"
    "       [--until T] [--newest] [--limit N] [--format table|tsv|json|jsonl]\n"
    "                                show tasks (yours; all of them for root, or one\n"
    "                                uid's with --owner), from the daemon's history:\n"
    "                                T is a Unix time; --newest: newest first. A table\n"
    "                                on a terminal, tab-separated fields when piped\n"
    "  restart ID... | restart --failed [--group G] [--kind K] [--name N] ...\n"
    "                                run ended tasks again, as new tasks from their specs;\n"
    "                                print the new ids\n"
    "  clean [--state S] [--group G] [--kind K] [--name N] [--owner UID] [--since T]\n"
    "        [--until T] [--older-than AGE]\n"
    "                                remove ended tasks from the history, with their\n"
    "                                output (yours; anyone's for root); AGE: 7d, 12h...\n"
    "  watch [ID...]                 print tasks as they end (no ids: every task of yours)\n"
    "An ID may also be a name: the newest task of yours with that name.\n"
    "\n"
    "OPTS (add, run, sleep, gather): --name NAME --group GROUP --after ID[,ID...]\n"
    "  --delay SECONDS --timeout SECONDS (per attempt) --priority N (higher starts first)\n"
    "  --retries N --retry-delay SECONDS --shield --wait (wait for it; exit as it ends)\n"
    "JOB OPTS (add, run): --env NAME=VALUE (repeatable; overrides yours) --default-env (the\n"
    "  daemon's minimal PATH/HOME/USER/LOGNAME/SHELL instead of yours) --cwd DIR\n"
    "  --stdin-file FILE|- --stdin-pipe (kept open: send writes to it) --grace SECONDS\n"
    "  --output-limit BYTES --umask OCTAL\n"
    "  --rlimit NAME=SOFT[:HARD] (nofile, core, cpu, as; a count or infinity; repeatable)\n"
    "  --memory-max BYTES (K, M, G, T) --pids-max N --cpu-weight 1..10000 --cpu-quota CPUS\n"
    "  (these four need the daemon's cgroups: coroctl ping says which it has)\n"
    "  --slurm-cpus N --slurm-mem BYTES --slurm-time 2h (in a Slurm group: over the group's)\n"
    "\n"
    "--socket PATH (or CORO_SOCKET): the daemon's socket; default /run/corod/corod.sock for\n"
    "root, else $XDG_RUNTIME_DIR/corod/corod.sock. --json: answers as JSON (what lists\n"
    "several tasks: one array); --jsonl: one JSON object a line. These and --version may\n"
    "stand anywhere before a job's \"--\".\n"
    "exit codes: 0 ok, 1 task failed or cancelled, 2 usage, 3 daemon refused, 4 no\n"
    "connection, 5 wait timed out (the tasks still pending are listed), 130 run or logs\n"
    "stopped by Ctrl-C. add --wait and run exit with the job's own code (128+N\n"
    "when killed by signal N, 127 when it could not start, 1 for other failures).\n";

int json_out;
corod_client *cli;
static const char *sock_path; /* --socket, else NULL: CORO_SOCKET or the default */

/* Commands check their arguments first and connect only then, so that a mistake is
 * reported as one (exit 2) whether or not the daemon is up. */
int connect_daemon(void)
{
    if (cli)
        return EX_OK;
    int rc = corod_connect(sock_path, &cli);
    if (rc == 0)
        return EX_OK;
    char def[256] = "";
    if (!sock_path)
        corod_default_socket(def, sizeof def);
    const char *where = sock_path ? sock_path : def[0] ? def
                                    : "(no default without XDG_RUNTIME_DIR: set CORO_SOCKET or pass "
                                      "--socket; the system-wide daemon is /run/corod/corod.sock)";
    fprintf(stderr, "coroctl: cannot connect to corod at %s: %s\n", where, strerror(-rc));
    /* A user with no corod of their own may mean the machine's. */
    struct stat st;
    if (!sock_path && !getenv("CORO_SOCKET") && strcmp(where, COROD_SYSTEM_SOCKET) &&
        stat(COROD_SYSTEM_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode))
        fprintf(stderr, "coroctl: the machine's corod serves %s: use --socket %s, or export CORO_SOCKET=%s\n",
                COROD_SYSTEM_SOCKET, COROD_SYSTEM_SOCKET, COROD_SYSTEM_SOCKET);
    return EX_CONN;
}

int connect_another(corod_client **out)
{
    return corod_connect(sock_path, out);
}

/* getopt's own complaint names the subcommand as the program: say it our way instead. */
int bad_option(char **argv)
{
    return usage_error("unknown option or missing value: \"%s\"", argv[optind - 1]);
}

int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "coroctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nrun 'coroctl --help' for usage\n");
    return EX_USAGE;
}

int daemon_error(int rc)
{
    if (rc == COROD_EREMOTE) {
        fprintf(stderr, "coroctl: %s: %s\n", corod_error_code(cli), corod_error_message(cli));
        return EX_DAEMON;
    }
    if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN)
        fprintf(stderr, "coroctl: the daemon closed the connection (it stopped, or dropped this client)\n");
    else
        fprintf(stderr, "coroctl: %s\n", strerror(-rc));
    return EX_CONN;
}

/* ---- JSON from MessagePack ---- */

void json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void json_obj(FILE *f, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", f); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", f); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "%llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64))
            fprintf(f, "%.17g", o->via.f64);
        else
            fputs("null", f);
        break;
    case MSGPACK_OBJECT_STR: json_str(f, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: json_str(f, o->via.bin.ptr, o->via.bin.size); break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputs(", ", f);
            json_obj(f, &o->via.array.ptr[i]);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (i)
                fputs(", ", f);
            if (kv->key.type == MSGPACK_OBJECT_STR)
                json_str(f, kv->key.via.str.ptr, kv->key.via.str.size);
            else {
                fputc('"', f);
                json_obj(f, &kv->key);
                fputc('"', f);
            }
            fputs(": ", f);
            json_obj(f, &kv->val);
        }
        fputc('}', f);
        break;
    default: fputs("null", f); break;
    }
}

void json_packed(FILE *f, const void *p, size_t n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (p && msgpack_unpack_next(&u, p, n, &off) == MSGPACK_UNPACK_SUCCESS)
        json_obj(f, &u.data);
    else
        fputs("null", f);
    msgpack_unpacked_destroy(&u);
}

static void json_time(FILE *f, const char *key, double t)
{
    fprintf(f, ", \"%s\": ", key);
    if (isnan(t))
        fputs("null", f);
    else
        fprintf(f, "%.6f", t);
}

/* ---- printing tasks ---- */

static void fmt_time(char *buf, size_t len, double t)
{
    size_t n = fmt_local(buf, len, t, "%Y-%m-%d %H:%M:%S");
    if (!isnan(t))
        snprintf(buf + n, len - n, ".%03d", (int)((t - floor(t)) * 1000));
}

/* A job's exit code or signal and how long it ran, from its result or error map. */
static void print_job_outcome(const corod_task *t)
{
    const void *p = t->result ? t->result : t->error;
    size_t n = t->result ? t->result_len : t->error_len;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (p && msgpack_unpack_next(&u, p, n, &off) == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *code = cp_get(&u.data, "exit_code"), *sig = cp_get(&u.data, "signal"),
                             *dur = cp_get(&u.data, "duration");
        if (code && code->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            printf("  exit code %llu", (unsigned long long)code->via.u64);
        else if (sig && sig->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            printf("  killed by signal %llu", (unsigned long long)sig->via.u64);
        if (dur && (dur->type == MSGPACK_OBJECT_FLOAT64 || dur->type == MSGPACK_OBJECT_FLOAT32))
            printf("%s%.3f s", (code || sig) ? ", ran " : "  ran ", dur->via.f64);
        if (code || sig || dur)
            putchar('\n');
    }
    msgpack_unpacked_destroy(&u);
}

/* --json: what a command prints of several tasks is one JSON array; --jsonl: an object a
 * line (watch, a stream, always prints lines). */
static int json_array;
static size_t json_items;

void json_list_begin(void)
{
    if (json_out == JSON_ARRAY) {
        fputc('[', stdout);
        json_array = 1;
        json_items = 0;
    }
}

void json_list_end(void)
{
    if (json_array) {
        fputs(json_items ? "\n]\n" : "]\n", stdout);
        json_array = 0;
    }
}

/* The separator before an item of an array (nothing between lines). */
void json_item(void)
{
    if (json_array)
        fputs(json_items++ ? ",\n" : "\n", stdout);
}

static const void *json_spec; /* status ID --json: the spec's answer, added to the record */
static size_t json_spec_len;

void print_task(const corod_task *t, int sub)
{
    if (json_out) {
        json_item();
        fputc('{', stdout);
        if (sub >= 0)
            fprintf(stdout, "\"sub\": %d, ", sub);
        fprintf(stdout, "\"id\": %llu, \"kind\": ", (unsigned long long)t->id);
        json_str(stdout, t->kind, strlen(t->kind));
        fputs(", \"name\": ", stdout);
        if (t->name)
            json_str(stdout, t->name, strlen(t->name));
        else
            fputs("null", stdout);
        fputs(", \"group\": ", stdout);
        json_str(stdout, t->group ? t->group : "", t->group ? strlen(t->group) : 0);
        fprintf(stdout, ", \"state\": \"%s\", \"owner_uid\": %u, \"attempts\": %u", t->state, t->owner_uid,
                t->attempts);
        json_time(stdout, "created_at", t->created_at);
        json_time(stdout, "started_at", t->started_at);
        json_time(stdout, "finished_at", t->finished_at);
        if (t->command)
            fputs(", \"command\": ", stdout), json_str(stdout, t->command, strlen(t->command));
        if (t->restarted_from)
            fprintf(stdout, ", \"restarted_from\": %llu", (unsigned long long)t->restarted_from);
        if (t->argv)
            fputs(", \"argv\": ", stdout), json_packed(stdout, t->argv, t->argv_len);
        if (t->waiting)
            fputs(", \"waiting\": ", stdout), json_packed(stdout, t->waiting, t->waiting_len);
        if (t->slurm_job) {
            fprintf(stdout, ", \"slurm\": {\"job\": %llu, \"nodes\": ", (unsigned long long)t->slurm_job);
            json_str(stdout, t->slurm_nodes ? t->slurm_nodes : "", t->slurm_nodes ? strlen(t->slurm_nodes) : 0);
            fputc('}', stdout);
        }
        if (json_spec) { /* status ID: how it was submitted */
            msgpack_unpacked u;
            size_t off = 0;
            msgpack_unpacked_init(&u);
            const msgpack_object *sp = NULL;
            if (msgpack_unpack_next(&u, json_spec, json_spec_len, &off) == MSGPACK_UNPACK_SUCCESS &&
                (sp = cp_get(&u.data, "spec")))
                fputs(", \"spec\": ", stdout), json_obj(stdout, sp);
            msgpack_unpacked_destroy(&u);
        }
        if (t->result)
            fputs(", \"result\": ", stdout), json_packed(stdout, t->result, t->result_len);
        if (t->error)
            fputs(", \"error\": ", stdout), json_packed(stdout, t->error, t->error_len);
        fputs(json_array ? "}" : "}\n", stdout);
        fflush(stdout);
        return;
    }
    char c[40], s[40], f[40];
    fmt_time(c, sizeof c, t->created_at);
    fmt_time(s, sizeof s, t->started_at);
    fmt_time(f, sizeof f, t->finished_at);
    printf("task %llu%s%s%s  %s  %s  group %s  uid %u\n", (unsigned long long)t->id, t->name ? " (" : "",
           t->name ? t->name : "", t->name ? ")" : "", t->kind, t->state, t->group ? t->group : "-", t->owner_uid);
    if (t->command) {
        printf("  command: %s\n", t->command);
        print_job_outcome(t);
    }
    if (t->argv) {
        fputs("  argv: ", stdout);
        json_packed(stdout, t->argv, t->argv_len);
        putchar('\n');
    }
    if (t->restarted_from)
        printf("  restarted from task %llu\n", (unsigned long long)t->restarted_from);
    if (t->slurm_job)
        printf("  slurm: job %llu on %s\n", (unsigned long long)t->slurm_job, t->slurm_nodes ? t->slurm_nodes : "?");
    printf("  attempts: %u\n", t->attempts);
    if (t->waiting) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char w[256];
        task_waiting_text(t, w, sizeof w, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
        printf("  waiting: %s\n", w);
    }
    printf("  created %s  started %s  finished %s", c, s, f);
    if (!isnan(t->started_at) && !isnan(t->finished_at))
        printf("  (ran %.3f s)", t->finished_at - t->started_at);
    putchar('\n');
    if (t->result) {
        fputs("  result: ", stdout);
        json_packed(stdout, t->result, t->result_len);
        putchar('\n');
    }
    if (t->error)
        printf("  error: %s: %s\n", t->error_code ? t->error_code : "?", t->error_message ? t->error_message : "");
    fflush(stdout);
}

static int task_exit(const corod_task *t)
{
    return strcmp(t->state, "succeeded") == 0 ? EX_OK : EX_TASK;
}

/* ---- argument helpers ---- */

int parse_id(const char *s, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > (uint64_t)INT64_MAX)
        return -1;
    *id = v;
    return 0;
}

int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

/* A count with an optional K, M, G or T suffix (powers of 1024). */
int parse_bytes(const char *arg, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || end == arg || arg[0] == '-')
        return -1;
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, *end) : NULL;
    if (*end && (!u || end[1]))
        return -1;
    for (int i = u ? (int)(u - units) + 1 : 0; i > 0; i--) {
        if (v > UINT64_MAX / 1024)
            return -1;
        v *= 1024;
    }
    *out = v;
    return 0;
}

/* An age: a number of seconds, or of minutes, hours, days or weeks with m, h, d, w. */
int parse_age(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end), unit = 1;
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    if (*end && end[1])
        return -1;
    switch (*end) {
    case '\0': case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    if (v * unit > 1e10)
        return -1;
    *out = v * unit;
    return 0;
}

int resolve_task(const char *s, uint64_t *id)
{
    if (parse_id(s, id) == 0)
        return EX_OK;
    if (!s[0] || strspn(s, "0123456789-+") == strlen(s) || strlen(s) > 256)
        return usage_error("not a task id or name: \"%s\"", s);
    int rc = connect_daemon();
    if (rc != EX_OK)
        return rc;
    corod_list_opts o = COROD_LIST_OPTS_INIT;
    o.name = s;
    o.newest_first = true;
    o.limit = 1;
    if (getuid() == 0)
        o.owner = 0; /* root sees everyone's: its own are meant */
    corod_task **v;
    size_t n;
    if ((rc = corod_list_opts_do(cli, &o, &v, &n)) < 0)
        return daemon_error(rc);
    if (n)
        *id = v[0]->id;
    corod_tasks_free(v, n);
    if (!n) {
        fprintf(stderr, "coroctl: no task of yours is named \"%s\" (coroctl list shows them)\n", s);
        return EX_DAEMON;
    }
    return EX_OK;
}

int parse_ids(char **argv, int n, uint64_t **ids)
{
    *ids = calloc(n ? (size_t)n : 1, sizeof **ids);
    int rc;
    for (int i = 0; i < n; i++)
        if ((rc = resolve_task(argv[i], &(*ids)[i])) != EX_OK)
            return rc;
    return 0;
}

int parse_submit(int argc, char **argv, submit_opts *o, int *first_positional)
{
    static const struct option common[] = {
        { "name", required_argument, 0, 'n' },     { "group", required_argument, 0, 'g' },
        { "after", required_argument, 0, 'a' },    { "delay", required_argument, 0, 'd' },
        { "timeout", required_argument, 0, 't' },  { "priority", required_argument, 0, 'p' },
        { "shield", no_argument, 0, 's' },         { "wait", no_argument, 0, 'w' },
        { "retries", required_argument, 0, 'R' },  { "retry-delay", required_argument, 0, 'D' },
    };
    enum { NCOMMON = sizeof common / sizeof *common };
    struct option lo[NCOMMON + 32];
    size_t n = 0;
    memcpy(lo, common, sizeof common);
    n = NCOMMON;
    for (const struct option *e = o->extra; e && e->name && n < NCOMMON + 31; e++)
        lo[n++] = *e;
    memset(&lo[n], 0, sizeof lo[n]);
    optind = 0; /* 0, not 1: glibc re-reads the optstring (main stopped at the command with "+") */
    int c;
    /* A command line to run ends the options at its first word ("+"). */
    while ((c = getopt_long(argc, argv, o->stop_at_command ? "+" : "", lo, NULL)) != -1) {
        switch (c) {
        case 'n': o->spec.name = optarg; break;
        case 'g': o->spec.group = optarg; break;
        case 'a': {
            char *save, *tok;
            for (tok = strtok_r(optarg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o->spec.n_after >= 1024)
                    return usage_error("--after takes at most 1024 ids%s", "");
                if (parse_id(tok, &o->after[o->spec.n_after]) < 0)
                    return usage_error("--after: not a task id: \"%s\"", tok);
                o->spec.n_after++;
            }
            o->spec.after = o->after;
            break;
        }
        case 'd':
            if (parse_seconds(optarg, &o->spec.delay) < 0)
                return usage_error("--delay: not a number of seconds: \"%s\"", optarg);
            break;
        case 't':
            if (parse_seconds(optarg, &o->spec.timeout) < 0 || o->spec.timeout == 0)
                return usage_error("--timeout: not a positive number of seconds: \"%s\"", optarg);
            break;
        case 'p': {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || v < -1000000 || v > 1000000)
                return usage_error("--priority: not an integer from -1000000 to 1000000: \"%s\"", optarg);
            o->spec.priority = v;
            break;
        }
        case 's': o->spec.shield = true; break;
        case 'w': o->wait = 1; break;
        case 'R': {
            uint64_t r;
            if (strcmp(optarg, "0") == 0)
                r = 0;
            else if (parse_id(optarg, &r) < 0 || r > 1000)
                return usage_error("--retries: not a number from 0 to 1000: \"%s\"", optarg);
            o->spec.retries = (uint32_t)r;
            break;
        }
        case 'D':
            if (parse_seconds(optarg, &o->spec.retry_delay) < 0)
                return usage_error("--retry-delay: not a number of seconds: \"%s\"", optarg);
            break;
        default:
            if (c != '?' && o->on_extra) {
                int rc = o->on_extra(c, optarg, o);
                if (rc)
                    return rc;
                break;
            }
            return bad_option(argv);
        }
    }
    *first_positional = optind;
    return 0;
}

int after_submit(int rc, uint64_t id, int wait)
{
    if (rc < 0)
        return daemon_error(rc);
    if (json_out)
        printf("{\"id\": %llu}\n", (unsigned long long)id);
    else
        printf("%llu\n", (unsigned long long)id);
    fflush(stdout);
    return wait ? wait_one(id) : EX_OK;
}

/* ---- commands ---- */

/* What hello says of jobs' cgroups: the controllers they have, or why there are none. */
static void print_cgroups(const void *res, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, res, len, NULL) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *cg = cp_get(&u.data, "cgroups");
        const msgpack_object *ctl = cg ? cp_get(cg, "controllers") : NULL;
        const msgpack_object *why = cg ? cp_get(cg, "unavailable") : NULL;
        if (why && why->type == MSGPACK_OBJECT_STR) {
            printf("jobs run without cgroups: %.*s\n", (int)why->via.str.size, why->via.str.ptr);
        } else if (ctl && ctl->type == MSGPACK_OBJECT_ARRAY) {
            printf("jobs run in cgroups of their own; controllers:");
            for (uint32_t i = 0; i < ctl->via.array.size; i++)
                if (ctl->via.array.ptr[i].type == MSGPACK_OBJECT_STR)
                    printf(" %.*s", (int)ctl->via.array.ptr[i].via.str.size, ctl->via.array.ptr[i].via.str.ptr);
            printf("%s\n", ctl->via.array.size ? "" : " none (no memory, pids or cpu limits)");
        }
        const msgpack_object *ex = cp_get(&u.data, "executors"), *sl = ex ? cp_get(ex, "slurm") : NULL;
        const msgpack_object *ok = sl ? cp_get(sl, "available") : NULL, *swhy = sl ? cp_get(sl, "why") : NULL;
        if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean)
            printf("groups may run their jobs on Slurm (coroctl group add NAME --slurm)\n");
        else if (swhy && swhy->type == MSGPACK_OBJECT_STR)
            printf("no Slurm groups: %.*s\n", (int)swhy->via.str.size, swhy->via.str.ptr);
    }
    msgpack_unpacked_destroy(&u);
}

static int cmd_ping(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return usage_error("ping takes no arguments%s", "");
    uint32_t proto, pid;
    void *res;
    size_t len;
    int rc = connect_daemon();
    if (rc != EX_OK)
        return rc;
    rc = corod_hello(cli, "coroctl", &proto, &pid);
    if (rc < 0)
        return daemon_error(rc);
    rc = corod_call(cli, "hello", NULL, 0, &res, &len);
    if (rc < 0)
        return daemon_error(rc);
    if (json_out) {
        json_packed(stdout, res, len);
        putchar('\n');
    } else {
        printf("corod is up: pid %u, protocol %u\n", pid, proto);
        print_cgroups(res, len);
    }
    free(res);
    return EX_OK;
}

static int cmd_sleep(int argc, char **argv)
{
    submit_opts o = { 0 };
    int first, rc;
    if ((rc = parse_submit(argc, argv, &o, &first)) != 0)
        return rc;
    double secs;
    if (argc - first != 1 || parse_seconds(argv[first], &secs) < 0)
        return usage_error("sleep takes one number of seconds (0 to 1e9)%s", "");
    if ((rc = connect_daemon()) != EX_OK)
        return rc;
    uint64_t id;
    rc = corod_submit_sleep(cli, secs, NULL, 0, &o.spec, &id);
    return after_submit(rc, id, o.wait);
}

static int gather_extra(int c, const char *arg, submit_opts *o)
{
    (void)arg;
    if (c != 'r')
        return EX_USAGE;
    o->return_exceptions = 1;
    return 0;
}

static int cmd_gather(int argc, char **argv)
{
    static const struct option extra[] = { { "return-exceptions", no_argument, 0, 'r' }, { 0, 0, 0, 0 } };
    submit_opts o = { .extra = extra, .on_extra = gather_extra };
    int first, rc;
    if ((rc = parse_submit(argc, argv, &o, &first)) != 0)
        return rc;
    if (argc - first < 1)
        return usage_error("gather takes one or more task ids%s", "");
    uint64_t *ids, id;
    if ((rc = parse_ids(argv + first, argc - first, &ids)) != 0 || (rc = connect_daemon()) != EX_OK)
        return free(ids), rc;
    rc = corod_submit_gather(cli, ids, (size_t)(argc - first), o.return_exceptions, &o.spec, &id);
    free(ids);
    return after_submit(rc, id, o.wait);
}

int group_active(const char *group, uint64_t **ids, size_t *n)
{
    static const char *const states[] = { "running", "pending" };
    *ids = NULL, *n = 0;
    for (int s = 0; s < 2; s++) {
        corod_list_opts o = COROD_LIST_OPTS_INIT;
        o.state = states[s];
        o.group = group;
        o.limit = UINT32_MAX; /* every one: pages until the end */
        corod_task **v;
        size_t nv;
        int rc = corod_list_opts_do(cli, &o, &v, &nv);
        uint64_t *grown = rc < 0 ? NULL : realloc(*ids, (*n + nv + 1) * sizeof **ids);
        for (size_t i = 0; grown && i < nv; i++)
            grown[(*n)++] = v[i]->id;
        if (rc == 0)
            corod_tasks_free(v, nv);
        if (!grown) {
            free(*ids);
            *ids = NULL, *n = 0;
            return daemon_error(rc < 0 ? rc : -ENOMEM);
        }
        *ids = grown;
    }
    return EX_OK;
}

static int cmd_cancel(int argc, char **argv)
{
    static const struct option lo[] = { { "message", required_argument, 0, 'm' },
                                        { "group", required_argument, 0, 'g' }, { 0, 0, 0, 0 } };
    const char *msg = NULL, *group = NULL;
    int c;
    optind = 0; /* 0, not 1: glibc re-reads the optstring (main stopped at the command with "+") */
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'm')
            msg = optarg;
        else if (c == 'g')
            group = optarg;
        else
            return bad_option(argv);
    }
    if (group ? argc != optind : argc == optind)
        return usage_error("cancel takes task ids or names, or --group GROUP%s", "");
    uint64_t *ids = NULL;
    size_t n = (size_t)(argc - optind);
    int rc = group ? connect_daemon() : parse_ids(argv + optind, argc - optind, &ids);
    if (rc == EX_OK && group)
        rc = group_active(group, &ids, &n);
    if (rc != EX_OK || (rc = connect_daemon()) != EX_OK) {
        free(ids);
        return rc;
    }
    bool array = group || n > 1; /* several: one JSON array */
    if (array)
        json_list_begin();
    for (size_t i = 0; i < n; i++) {
        bool done;
        if ((rc = corod_cancel(cli, ids[i], msg, &done)) < 0) {
            if (rc == COROD_EREMOTE && group && !strcmp(corod_error_code(cli), "not_found"))
                continue; /* ended and forgotten since it was listed */
            free(ids);
            return daemon_error(rc);
        }
        if (json_out) {
            json_item();
            printf("{\"id\": %llu, \"cancelled\": %s}%s", (unsigned long long)ids[i], done ? "true" : "false",
                   array && json_out == JSON_ARRAY ? "" : "\n");
        } else {
            printf(done ? "task %llu: cancel requested\n" : "task %llu had already ended\n",
                   (unsigned long long)ids[i]);
        }
    }
    if (array)
        json_list_end();
    if (group && !n && !json_out)
        printf("nothing pending or running in group %s\n", group);
    free(ids);
    return EX_OK;
}

int do_wait(uint64_t *ids, size_t n, const char *mode, double timeout)
{
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    int rc = corod_wait(cli, ids, n, mode, timeout, &done, &nd, &pending, &np);
    if (rc < 0)
        return daemon_error(rc);
    int ex = EX_OK;
    json_list_begin();
    for (size_t i = 0; i < nd; i++) {
        print_task(done[i], -1);
        if (task_exit(done[i]) != EX_OK)
            ex = EX_TASK;
    }
    /* The timeout is said whatever the others did: the caller must not take a task still
     * pending for one that failed. */
    for (size_t i = 0; i < np; i++) {
        if (json_out) {
            json_item();
            printf("{\"id\": %llu, \"state\": \"pending\"}%s", (unsigned long long)pending[i],
                   json_array ? "" : "\n");
        } else {
            printf("task %llu: still pending\n", (unsigned long long)pending[i]);
        }
    }
    json_list_end();
    if (np)
        ex = EX_TIMEOUT;
    corod_tasks_free(done, nd);
    free(pending);
    return ex;
}

int wait_one(uint64_t id)
{
    return do_wait(&id, 1, NULL, -1);
}

static int cmd_wait(int argc, char **argv)
{
    static const struct option lo[] = { { "mode", required_argument, 0, 'm' },
                                        { "timeout", required_argument, 0, 't' },
                                        { "group", required_argument, 0, 'g' }, { 0, 0, 0, 0 } };
    const char *mode = NULL, *group = NULL;
    double timeout = -1;
    int c;
    optind = 0; /* 0, not 1: glibc re-reads the optstring (main stopped at the command with "+") */
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'm')
            mode = optarg;
        else if (c == 'g')
            group = optarg;
        else if (c == 't') {
            if (parse_seconds(optarg, &timeout) < 0)
                return usage_error("--timeout: not a number of seconds: \"%s\"", optarg);
        } else
            return bad_option(argv);
    }
    if (group ? argc != optind : argc == optind)
        return usage_error("wait takes one or more task ids or names, or --group GROUP%s", "");
    uint64_t *ids = NULL;
    size_t n = (size_t)(argc - optind);
    int rc = group ? connect_daemon() : parse_ids(argv + optind, argc - optind, &ids);
    if (rc == EX_OK && group && (rc = group_active(group, &ids, &n)) == EX_OK && n > 65536) {
        fprintf(stderr, "coroctl: group %s has %zu tasks pending or running; a wait takes at most 65536\n",
                group, n);
        rc = EX_USAGE;
    }
    if (rc == EX_OK && group && !n) {
        if (json_out == JSON_ARRAY)
            puts("[]");
        else if (!json_out)
            printf("nothing pending or running in group %s\n", group);
    } else if (rc == EX_OK && (rc = connect_daemon()) == EX_OK) {
        rc = do_wait(ids, n, mode, timeout);
    }
    free(ids);
    return rc;
}

static int cmd_list(int argc, char **argv);

/* A key of a map, printed as "  label: value" (JSON for anything but a string). */
static void print_field(const msgpack_object *m, const char *key, const char *label)
{
    const msgpack_object *v = m && m->type == MSGPACK_OBJECT_MAP ? cp_get(m, key) : NULL;
    if (!v)
        return;
    printf("  %s: ", label);
    if (!strcmp(key, "umask") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        printf("%03llo", (unsigned long long)v->via.u64);
    else if (v->type == MSGPACK_OBJECT_STR)
        fwrite(v->via.str.ptr, 1, v->via.str.size, stdout);
    else
        json_obj(stdout, v);
    putchar('\n');
}

/* The answer to `spec` for task id ({spec: map}, packed, malloc'd), or NULL (the daemon
 * keeps no store, or no longer has it). */
static void *fetch_spec(uint64_t id, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint64(&pk, id);
    void *res = NULL;
    int rc = corod_call(cli, "spec", sb.data, sb.size, &res, len);
    msgpack_sbuffer_destroy(&sb);
    return rc < 0 ? NULL : res;
}

/* status ID: what the task was submitted with — its options, and for a job its directory,
 * environment and limits (the store's `spec`; nothing when the daemon keeps none). */
static void print_spec(uint64_t id)
{
    size_t len = 0, off = 0;
    void *res = fetch_spec(id, &len);
    if (!res)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, res, len, &off) == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *s = cp_get(&u.data, "spec"), *args = s ? cp_get(s, "args") : NULL;
        static const char *const opts[][2] = { { "priority", "priority" }, { "after", "after" },
                                               { "delay", "delay (s)" }, { "timeout", "timeout (s)" },
                                               { "retries", "retries" }, { "retry_delay", "retry delay (s)" },
                                               { "shield", "shield" } };
        for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
            print_field(s, opts[i][0], opts[i][1]);
        static const char *const job[][2] = {
            { "cwd", "cwd" }, { "stdin_pipe", "stdin pipe" }, { "grace", "grace (s)" },
            { "output_limit", "output limit (bytes)" }, { "umask", "umask" }, { "rlimits", "rlimits" },
            { "memory_max", "memory max (bytes)" }, { "pids_max", "pids max" }, { "cpu_weight", "cpu weight" },
            { "cpu_quota", "cpu quota (CPUs)" } };
        for (size_t i = 0; i < sizeof job / sizeof *job; i++)
            print_field(args, job[i][0], job[i][1]);
        const msgpack_object *env = args && args->type == MSGPACK_OBJECT_MAP ? cp_get(args, "env") : NULL;
        if (env && env->type == MSGPACK_OBJECT_MAP) { /* its names: the values may be long, or secret */
            printf("  env: %u variables:", env->via.map.size);
            for (uint32_t i = 0; i < env->via.map.size; i++) {
                const msgpack_object *k = &env->via.map.ptr[i].key;
                if (k->type == MSGPACK_OBJECT_STR)
                    printf("%s %.*s", i ? "," : "", (int)k->via.str.size, k->via.str.ptr);
            }
            putchar('\n');
        } else if (args && args->type == MSGPACK_OBJECT_MAP && cp_get(args, "argv")) {
            printf("  env: the daemon's minimal PATH, HOME, USER, LOGNAME, SHELL\n");
        }
    }
    msgpack_unpacked_destroy(&u);
    free(res);
}

static int cmd_status(int argc, char **argv)
{
    uint64_t id;
    if (argc == 1 || argv[1][0] == '-')
        return cmd_list(argc, argv); /* no id: the table */
    if (argc != 2)
        return usage_error("status takes one task id or name (none: the table of tasks, as list)%s", "");
    corod_task *t;
    int rc = resolve_task(argv[1], &id);
    if (rc != EX_OK || (rc = connect_daemon()) != EX_OK)
        return rc;
    rc = corod_get(cli, id, &t);
    if (rc < 0)
        return daemon_error(rc);
    if (json_out) {
        void *spec = fetch_spec(id, &json_spec_len);
        json_spec = spec;
        print_task(t, -1);
        json_spec = NULL;
        free(spec);
    } else {
        print_task(t, -1);
        print_spec(id);
    }
    corod_task_free(t);
    return EX_OK;
}

/* list's and clean's filters: EX_OK, or a usage error (said). */
static int parse_filters(int argc, char **argv, corod_list_opts *out, bool with_limit, int *format)
{
    static const struct option lo[] = { { "state", required_argument, 0, 's' },
                                        { "group", required_argument, 0, 'g' },
                                        { "kind", required_argument, 0, 'k' },
                                        { "name", required_argument, 0, 'n' },
                                        { "owner", required_argument, 0, 'o' },
                                        { "since", required_argument, 0, 'S' },
                                        { "until", required_argument, 0, 'U' },
                                        { "newest", no_argument, 0, 'N' },
                                        { "limit", required_argument, 0, 'l' },
                                        { "format", required_argument, 0, 'F' },
                                        { "older-than", required_argument, 0, 'O' }, { 0, 0, 0, 0 } };
    corod_list_opts o = COROD_LIST_OPTS_INIT;
    uint64_t v = 0;
    int c;
    optind = 0; /* 0, not 1: glibc re-reads the optstring (main stopped at the command with "+") */
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 's')
            o.state = optarg;
        else if (c == 'g')
            o.group = optarg;
        else if (c == 'k')
            o.kind = optarg;
        else if (c == 'n')
            o.name = optarg;
        else if (c == 'N')
            o.newest_first = true;
        else if (c == 'o') {
            char *end;
            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || v > UINT32_MAX)
                return usage_error("--owner: not a uid: \"%s\"", optarg);
            o.owner = (int64_t)v;
        } else if (c == 'O') {
            double age;
            if (parse_age(optarg, &age) < 0)
                return usage_error("--older-than: not an age (90s, 30m, 12h, 7d, 2w; seconds if bare): \"%s\"",
                                   optarg);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            o.until = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - age;
            if (o.until < 0)
                o.until = 0;
        } else if (c == 'S' || c == 'U') {
            char *end;
            double t = strtod(optarg, &end);
            if (end == optarg || *end || !(t >= 0) || t > 1e11)
                return usage_error(c == 'S' ? "--since: not a Unix time in seconds: \"%s\""
                                            : "--until: not a Unix time in seconds: \"%s\"", optarg);
            *(c == 'S' ? &o.since : &o.until) = t;
        } else if (c == 'F' && format) {
            if (!strcmp(optarg, "table"))
                *format = FORMAT_TABLE;
            else if (!strcmp(optarg, "tsv"))
                *format = FORMAT_TSV;
            else if (!strcmp(optarg, "json"))
                json_out = JSON_ARRAY;
            else if (!strcmp(optarg, "jsonl"))
                json_out = JSON_LINES;
            else
                return usage_error("--format: \"%s\" is not table, tsv, json or jsonl", optarg);
        } else if (c == 'l' && with_limit) {
            if (parse_id(optarg, &v) < 0 || v > 100000)
                return usage_error("--limit: not a number from 1 to 100000: \"%s\"", optarg);
            o.limit = (uint32_t)v;
        } else
            return bad_option(argv);
    }
    if (optind != argc)
        return usage_error("takes no positional arguments (got \"%s\")", argv[optind]);
    *out = o;
    return EX_OK;
}

/* JSON and tab-separated lines need no widths: each page is printed as it comes, so the
 * first line shows after the first page, not after the last — and the first page is a
 * small one (LIST_FIRST_PAGE records), so it shows at once. */
#define LIST_FIRST_PAGE 1000u
static int list_stream(const corod_list_opts *o, int format)
{
    uint64_t want = o->limit ? o->limit : COROD_LIST_DEFAULT, got = 0, after = 0;
    json_list_begin();
    do {
        corod_list_opts left = *o;
        left.limit = (uint32_t)(want - got);
        if (!got && left.limit > LIST_FIRST_PAGE)
            left.limit = LIST_FIRST_PAGE;
        corod_task **v;
        size_t n;
        int rc = corod_list_page(cli, &left, after, &v, &n, &after);
        if (rc < 0) {
            json_list_end();
            return daemon_error(rc);
        }
        if (json_out)
            for (size_t i = 0; i < n; i++)
                print_task(v[i], -1);
        else
            print_table(v, n, NULL, 0, format);
        got += n;
        corod_tasks_free(v, n);
    } while (after && got < want);
    json_list_end();
    return fflush(stdout) == 0 ? EX_OK : EX_TASK;
}

static int cmd_list(int argc, char **argv)
{
    corod_list_opts o;
    int format = FORMAT_AUTO;
    int rc = parse_filters(argc, argv, &o, true, &format);
    if (rc != EX_OK)
        return rc;
    if (format == FORMAT_AUTO)
        format = isatty(STDOUT_FILENO) ? FORMAT_TABLE : FORMAT_TSV;
    corod_task **tasks;
    size_t n;
    rc = connect_daemon();
    if (rc != EX_OK)
        return rc;
    if (json_out || format == FORMAT_TSV)
        return list_stream(&o, format);
    table_group *gs = NULL;
    size_t ng = 0;
    /* the groups first: a task the list shows as pending is then not shown as started
     * in a header that came later */
    if ((rc = table_groups_get(&gs, &ng)) < 0)
        return daemon_error(rc);
    /* The table is for what is going on: the newest tasks (the whole history may be long),
     * shown oldest first unless --newest says otherwise. */
    bool newest = o.newest_first;
    uint32_t want = o.limit ? o.limit : COROD_LIST_DEFAULT;
    o.newest_first = true;
    o.limit = want;
    rc = corod_list_opts_do(cli, &o, &tasks, &n);
    if (rc < 0) {
        table_groups_free(gs, ng);
        return daemon_error(rc);
    }
    for (size_t i = 0; !newest && i < n / 2; i++) {
        corod_task *x = tasks[i];
        tasks[i] = tasks[n - 1 - i];
        tasks[n - 1 - i] = x;
    }
    rc = print_table(tasks, n, gs, ng, format);
    if (rc == EX_OK && n == want)
        printf("\n(the newest %zu; older ones: --limit N, or filters such as --state and --group)\n", n);
    table_groups_free(gs, ng);
    corod_tasks_free(tasks, n);
    return rc;
}

static int cmd_clean(int argc, char **argv)
{
    corod_list_opts o;
    int rc = parse_filters(argc, argv, &o, false, NULL);
    if (rc != EX_OK)
        return rc;
    if ((rc = connect_daemon()) != EX_OK)
        return rc;
    uint64_t removed = 0;
    if ((rc = corod_clean(cli, &o, &removed)) < 0)
        return daemon_error(rc);
    if (json_out)
        printf("{\"removed\": %llu}\n", (unsigned long long)removed);
    else
        printf("removed %llu ended task%s\n", (unsigned long long)removed, removed == 1 ? "" : "s");
    return EX_OK;
}

static int cmd_restart(int argc, char **argv)
{
    /* ID... or --failed with list's filters: split the ids off first. */
    int nids = 0;
    while (nids + 1 < argc && argv[nids + 1][0] != '-')
        nids++;
    uint64_t *ids = NULL;
    corod_list_opts o = COROD_LIST_OPTS_INIT;
    int rc;
    bool failed = nids + 1 < argc && !strcmp(argv[nids + 1], "--failed");
    if (nids && nids + 1 < argc)
        return usage_error("restart takes task ids, or --failed with filters, not both (\"%s\")", argv[nids + 1]);
    if (nids) {
        if ((rc = parse_ids(argv + 1, nids, &ids)) != EX_OK)
            return rc;
    } else if (!failed) {
        return usage_error("restart takes task ids, or --failed [--group G ...]%s", "");
    } else {
        argv[nids + 1] = argv[0]; /* --failed taken: the filters follow */
        if ((rc = parse_filters(argc - 1, argv + 1, &o, false, NULL)) != EX_OK)
            return rc;
        o.state = "failed";
    }
    if ((rc = connect_daemon()) != EX_OK) {
        free(ids);
        return rc;
    }
    uint64_t *made;
    size_t nmade, nfailed;
    rc = corod_restart(cli, ids, (size_t)nids, &o, &made, &nmade, &nfailed);
    free(ids);
    if (rc < 0)
        return daemon_error(rc);
    for (size_t i = 0; i < nmade; i++)
        printf(json_out ? "{\"id\": %llu}\n" : "%llu\n", (unsigned long long)made[i]);
    free(made);
    if (nfailed)
        fprintf(stderr, "coroctl: %zu task%s could not be restarted\n", nfailed, nfailed == 1 ? "" : "s");
    return nfailed ? EX_DAEMON : EX_OK;
}

static volatile sig_atomic_t stop_watch;
static size_t watch_left;

static void on_stop(int sig)
{
    (void)sig;
    stop_watch = 1;
}

static void on_done(corod_client *c, uint32_t sub, const corod_task *t, void *arg)
{
    (void)c, (void)arg;
    print_task(t, (int)sub);
    if (watch_left && --watch_left == 0)
        stop_watch = 1;
}

static int cmd_watch(int argc, char **argv)
{
    uint64_t *ids = NULL;
    size_t n = (size_t)(argc - 1);
    int rc;
    if ((rc = parse_ids(argv + 1, argc - 1, &ids)) != 0 || (rc = connect_daemon()) != EX_OK)
        return free(ids), rc;
    uint32_t sub;
    rc = corod_subscribe(cli, ids, n, n == 0, &sub);
    free(ids);
    if (rc < 0)
        return daemon_error(rc);
    watch_left = n; /* with ids: stop once each has ended; without: until interrupted */
    corod_on_done(cli, on_done, NULL);
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    while (!stop_watch) {
        /* Tasks that ended before the subscribe are notified right after its answer, and
         * the client may hold them already: the fd would not say so. */
        struct pollfd pf = { .fd = corod_fd(cli), .events = POLLIN };
        if (!corod_pending(cli) && poll(&pf, 1, -1) < 0 && errno != EINTR)
            break;
        if (stop_watch)
            break;
        if ((rc = corod_dispatch(cli)) < 0) {
            fprintf(stderr, "coroctl: the daemon closed the connection\n");
            return EX_CONN;
        }
    }
    return EX_OK;
}

static int cmd_groups(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return usage_error("groups takes no arguments%s", "");
    void *res;
    size_t len;
    int rc = connect_daemon();
    if (rc != EX_OK)
        return rc;
    rc = corod_call(cli, "groups", NULL, 0, &res, &len);
    if (rc < 0)
        return daemon_error(rc);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_next(&u, res, len, &off);
    const msgpack_object *gs = NULL;
    if (u.data.type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < u.data.via.map.size; i++)
            if (u.data.via.map.ptr[i].val.type == MSGPACK_OBJECT_ARRAY)
                gs = &u.data.via.map.ptr[i].val;
    for (uint32_t i = 0; gs && i < gs->via.array.size; i++) {
        if (json_out) {
            json_obj(stdout, &gs->via.array.ptr[i]);
            putchar('\n');
            continue;
        }
        const msgpack_object *g = &gs->via.array.ptr[i];
        for (uint32_t k = 0; k < g->via.map.size; k++) {
            const msgpack_object_kv *kv = &g->via.map.ptr[k];
            printf("%s%.*s ", k ? " " : "", (int)kv->key.via.str.size, kv->key.via.str.ptr);
            json_obj(stdout, &kv->val);
        }
        putchar('\n');
    }
    msgpack_unpacked_destroy(&u);
    free(res);
    return EX_OK;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    { "ping", cmd_ping },     { "sleep", cmd_sleep },   { "gather", cmd_gather }, { "cancel", cmd_cancel },
    { "wait", cmd_wait },     { "status", cmd_status }, { "list", cmd_list },     { "clean", cmd_clean },   { "restart", cmd_restart },     { "watch", cmd_watch },
    { "groups", cmd_groups }, { "add", cmd_add },       { "run", cmd_run },       { "logs", cmd_logs },
    { "group", cmd_group },   { "pause", cmd_pause },   { "resume", cmd_resume }, { "kill", cmd_kill },
    { "edit", cmd_edit },     { "priority", cmd_priority }, { "send", cmd_send },
};

/* --json, --jsonl, --socket PATH (or --socket=PATH) and --version are taken wherever they
 * stand before a job's "--", and removed from what the command sees. */
static int take_global(int *argc, char **argv)
{
    int o = 1;
    bool rest = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!rest && !strcmp(a, "--")) {
            rest = true;
        } else if (!rest && !strcmp(a, "--json")) {
            json_out = JSON_ARRAY;
            continue;
        } else if (!rest && !strcmp(a, "--jsonl")) {
            json_out = JSON_LINES;
            continue;
        } else if (!rest && !strcmp(a, "--version")) {
            printf("coroctl %s\n", COROD_VERSION);
            return 1;
        } else if (!rest && !strncmp(a, "--socket=", 9)) {
            sock_path = a + 9;
            continue;
        } else if (!rest && !strcmp(a, "--socket")) {
            if (i + 1 >= *argc) {
                usage_error("--socket needs a path%s", "");
                return -1;
            }
            sock_path = argv[++i];
            continue;
        }
        argv[o++] = argv[i];
    }
    argv[o] = NULL;
    *argc = o;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = { { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c, g = take_global(&argc, argv);
    if (g != 0)
        return g > 0 ? EX_OK : EX_USAGE;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return EX_OK;
        default: return bad_option(argv);
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return EX_USAGE;
    }
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(name, commands[i].name))
            continue;
        for (int k = optind + 1; k < argc && strcmp(argv[k], "--"); k++)
            if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
                const char *h = coroctl_help(name);
                fputs(h ? h : usage, stdout);
                if (h)
                    fputs("\nglobal options (--socket, --json, --jsonl) and exit codes: coroctl --help\n", stdout);
                return EX_OK;
            }
        int rc = commands[i].fn(argc - optind, argv + optind);
        if (cli)
            corod_close(cli);
        return rc;
    }
    return usage_error("unknown command \"%s\"", name);
}
