/* ex_slurm.c: a Slurm group's settings, its jobs' srun command line, and the reading of
 * what Slurm says about a job. */
#include "ex_slurm.h"
#include "ut_fail.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The srun options a group may add. Left out, and why: what corod sets itself
 * (--job-name, --prolog, --partition, --account, --qos, --cpus-per-task, --mem, --time,
 * --quiet), what would take the job's stdio from corod's pumps (--input, --output,
 * --error, --pty, --open-mode), its identity (--uid, --gid), its directory and
 * environment (args.cwd, args.env: --chdir, --export), attaching to another allocation
 * (--jobid, --het-group, --clusters: a job id would then name another cluster's job). */
static const char *const ex_slurm_allowed[] = {
    "begin", "comment", "constraint", "contiguous", "core-spec", "cores-per-socket", "cpu-bind",
    "cpus-per-gpu", "deadline", "distribution", "exclude", "exclusive", "gpu-bind", "gpus", "gpus-per-node",
    "gpus-per-socket", "gpus-per-task", "gres", "gres-flags", "hint", "kill-on-bad-exit", "label", "licenses",
    "mem-bind", "mem-per-cpu", "mem-per-gpu", "mpi", "network", "nice", "nodelist", "nodes", "ntasks",
    "ntasks-per-core", "ntasks-per-gpu", "ntasks-per-node", "ntasks-per-socket", "overcommit", "oversubscribe",
    "reservation", "sockets-per-node", "spread-job", "switches", "threads-per-core", "tmp", "unbuffered",
    "wckey",
};

ex_slurm *ex_slurm_new(void)
{
    ex_slurm *s = calloc(1, sizeof *s);
    if (s)
        s->refs = 1;
    return s;
}

ex_slurm *ex_slurm_ref(ex_slurm *s)
{
    if (s)
        s->refs++;
    return s;
}

void ex_slurm_unref(ex_slurm *s)
{
    if (!s || --s->refs)
        return;
    free(s->partition);
    free(s->account);
    free(s->qos);
    free(s->conf);
    for (size_t i = 0; i < s->nargs; i++)
        free(s->args[i]);
    free(s->args);
    free(s);
}

bool ex_slurm_arg_ok(const char *arg)
{
    if (strncmp(arg, "--", 2) || strlen(arg) >= EX_SLURM_ARG_LEN)
        return false;
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    for (const char *p = arg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    for (size_t i = 0; i < sizeof ex_slurm_allowed / sizeof *ex_slurm_allowed; i++)
        if (strlen(ex_slurm_allowed[i]) == n && !strncmp(ex_slurm_allowed[i], name, n))
            return true;
    return false;
}

/* Partitions, accounts and qos: Slurm's names, a comma-separated list for a partition. */
static bool ex_slurm_name_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > EX_SLURM_NAME_MAX || v[0] == '-')
        return false;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.-,", *p))
            return false;
    return true;
}

int ex_slurm_set_str(ex_slurm *s, const char *key, const char *str, char *err, size_t len)
{
    char **slot = !strcmp(key, "partition") ? &s->partition
                : !strcmp(key, "account")   ? &s->account
                : !strcmp(key, "qos")       ? &s->qos
                : !strcmp(key, "conf")      ? &s->conf
                                            : NULL;
    if (slot == &s->conf) {
        if (str[0] != '/' || strlen(str) >= PATH_MAX)
            return ut_fail(err, len, -EINVAL, "slurm.conf must be an absolute path, not \"%.64s\"", str);
    } else if (slot) {
        if (!ex_slurm_name_ok(str))
            return ut_fail(err, len, -EINVAL,
                                 "slurm.%s must be 1 to %u characters of A-Z a-z 0-9 _ . - , (not \"%.64s\")", key,
                                 EX_SLURM_NAME_MAX, str);
    } else if (!strcmp(key, "args")) {
        if (!ex_slurm_arg_ok(str))
            return ut_fail(err, len, -EINVAL,
                                 "slurm.args: \"%.64s\" is not an srun option a group may add (--name or "
                                 "--name=value, shorter than %u bytes, of the allow-list in corod.conf(5))",
                                 str, EX_SLURM_ARG_LEN);
        if (s->nargs >= EX_SLURM_ARGS_MAX)
            return ut_fail(err, len, -EINVAL, "slurm.args: at most %u", EX_SLURM_ARGS_MAX);
        char **a = realloc(s->args, (s->nargs + 1) * sizeof *a);
        if (!a)
            return -ENOMEM;
        s->args = a;
        if (!(a[s->nargs] = strdup(str)))
            return -ENOMEM;
        s->nargs++;
        return 0;
    } else {
        return ut_fail(err, len, -EINVAL,
                             "unknown Slurm setting \"%.32s\" (partition, account, qos, cpus, memory, time, args, "
                             "conf)", key);
    }
    char *d = strdup(str);
    if (!d)
        return -ENOMEM;
    free(*slot);
    *slot = d;
    return 0;
}

int ex_slurm_job_set(ex_slurm_job *j, const char *key, double num, char *err, size_t len)
{
    if (!strcmp(key, "cpus")) {
        if (!(num >= 1 && num <= EX_SLURM_CPUS_MAX) || num != floor(num))
            return ut_fail(err, len, -EINVAL, "slurm.cpus must be a whole number from 1 to %u", EX_SLURM_CPUS_MAX);
        j->cpus = (uint32_t)num;
        return 0;
    }
    if (!strcmp(key, "memory")) {
        if (!(num >= (double)EX_SLURM_MEMORY_MIN && num <= (double)EX_SLURM_MEMORY_MAX) || num != floor(num))
            return ut_fail(err, len, -EINVAL, "slurm.memory must be a number of bytes from %llu to %llu",
                                 (unsigned long long)EX_SLURM_MEMORY_MIN, (unsigned long long)EX_SLURM_MEMORY_MAX);
        j->memory = (uint64_t)num;
        return 0;
    }
    if (!strcmp(key, "time")) {
        if (!(num >= 1 && num <= EX_SLURM_TIME_MAX))
            return ut_fail(err, len, -EINVAL, "slurm.time must be seconds from 1 to %.0f", EX_SLURM_TIME_MAX);
        j->time = num;
        return 0;
    }
    return ut_fail(err, len, -EINVAL, "unknown per-job Slurm setting \"%.32s\" (cpus, memory, time)", key);
}

int ex_slurm_set_num(ex_slurm *s, const char *key, double num, char *err, size_t len)
{
    return ex_slurm_job_set(&s->job, key, num, err, len);
}

static bool ex_slurm_exe(char *out, size_t cap, const char *path, const char *name)
{
    out[0] = '\0';
    for (const char *p = path; p && *p;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n && n + strlen(name) + 2 <= cap) {
            snprintf(out, cap, "%.*s/%s", (int)n, p, name);
            if (access(out, X_OK) == 0)
                return true;
        }
        p = end ? end + 1 : NULL;
    }
    out[0] = '\0';
    return false;
}

bool ex_slurm_find(ex_slurm_tools *t, const char *path, const char *prolog)
{
    bool ok = ex_slurm_exe(t->srun, sizeof t->srun, path, "srun");
    ok &= ex_slurm_exe(t->scancel, sizeof t->scancel, path, "scancel");
    ok &= ex_slurm_exe(t->scontrol, sizeof t->scontrol, path, "scontrol");
    t->prolog[0] = '\0';
    if (prolog && strlen(prolog) < sizeof t->prolog && access(prolog, X_OK) == 0)
        snprintf(t->prolog, sizeof t->prolog, "%s", prolog);
    return ok && t->prolog[0];
}

/* Slurm keeps time limits in whole minutes: rounded up, so a job gets at least what was asked. */
static void ex_slurm_time(char *buf, size_t len, double seconds)
{
    snprintf(buf, len, "--time=%llu", (unsigned long long)ceil(seconds / 60));
}

char **ex_slurm_argv(const ex_slurm_tools *t, const ex_slurm *s, const ex_slurm_job *over, const char *name,
                     char *const *argv)
{
    enum { OPTLEN = sizeof t->prolog + 16, NOPT = 9 }; /* corod's own options, at most */
    char (*opt)[OPTLEN] = malloc(NOPT * sizeof *opt); /* a coroutine's stack is small */
    if (!opt)
        return NULL;
    size_t nopt = 0;
    snprintf(opt[nopt++], sizeof opt[0], "--job-name=%s", name);
    snprintf(opt[nopt++], sizeof opt[0], "--prolog=%s", t->prolog);
    if (s->partition)
        snprintf(opt[nopt++], sizeof opt[0], "--partition=%s", s->partition);
    if (s->account)
        snprintf(opt[nopt++], sizeof opt[0], "--account=%s", s->account);
    if (s->qos)
        snprintf(opt[nopt++], sizeof opt[0], "--qos=%s", s->qos);
    uint32_t cpus = over && over->cpus ? over->cpus : s->job.cpus;
    uint64_t mem = over && over->memory ? over->memory : s->job.memory;
    double time = over && over->time > 0 ? over->time : s->job.time;
    if (cpus)
        snprintf(opt[nopt++], sizeof opt[0], "--cpus-per-task=%u", cpus);
    if (mem) /* Slurm counts in MiB: rounded up */
        snprintf(opt[nopt++], sizeof opt[0], "--mem=%lluM", (unsigned long long)((mem + (1u << 20) - 1) >> 20));
    if (time > 0)
        ex_slurm_time(opt[nopt++], sizeof opt[0], time);
    /* One task — the command once — unless the group says how many: srun would otherwise
     * start one per CPU of an --exclusive allocation (16 copies of the job, seen here). */
    bool counted = false;
    for (size_t i = 0; i < s->nargs; i++)
        counted |= !strncmp(s->args[i], "--ntasks", 8) || !strncmp(s->args[i], "--nodes", 7);
    if (!counted)
        snprintf(opt[nopt++], sizeof opt[0], "--ntasks=1");

    size_t argc = 0, bytes = 0;
    for (; argv[argc]; argc++)
        ;
    const char *fixed[] = { t->srun, "--quiet" };
    size_t n = 2 + nopt + s->nargs + 1 + argc;
    for (size_t i = 0; i < 2; i++)
        bytes += strlen(fixed[i]) + 1;
    for (size_t i = 0; i < nopt; i++)
        bytes += strlen(opt[i]) + 1;
    for (size_t i = 0; i < s->nargs; i++)
        bytes += strlen(s->args[i]) + 1;
    bytes += 3;
    char **v = malloc((n + 1) * sizeof *v + bytes);
    if (!v) {
        free(opt);
        return NULL;
    }
    char *p = (char *)(v + n + 1);
    size_t k = 0;
#define EX_PUT(str)                                                                                        \
    do {                                                                                                   \
        size_t l_ = strlen(str) + 1;                                                                       \
        memcpy(p, (str), l_);                                                                              \
        v[k++] = p;                                                                                        \
        p += l_;                                                                                           \
    } while (0)
    for (size_t i = 0; i < 2; i++)
        EX_PUT(fixed[i]);
    for (size_t i = 0; i < nopt; i++)
        EX_PUT(opt[i]);
    for (size_t i = 0; i < s->nargs; i++)
        EX_PUT(s->args[i]);
    EX_PUT("--");
#undef EX_PUT
    for (size_t i = 0; i < argc; i++)
        v[k++] = argv[i]; /* the job's own strings: not copied */
    v[k] = NULL;
    free(opt);
    return v;
}

static bool ex_slurm_env_drop(const char *e)
{
    return !strncmp(e, "SLURM_", 6) || !strncmp(e, "SRUN_", 5) || !strncmp(e, "SALLOC_", 7) ||
           !strncmp(e, "SBATCH_", 7);
}

char **ex_slurm_env(const ex_slurm *s, char *const *envp)
{
    size_t n = 0;
    for (; envp && envp[n]; n++)
        ;
    size_t extra = s->conf ? strlen(s->conf) + sizeof "SLURM_CONF=" : 0;
    char **v = malloc((n + 2) * sizeof *v + extra);
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!ex_slurm_env_drop(envp[i]))
            v[k++] = envp[i];
    if (s->conf) {
        char *p = (char *)(v + n + 2);
        snprintf(p, extra, "SLURM_CONF=%s", s->conf);
        v[k++] = p;
    }
    v[k] = NULL;
    return v;
}

int ex_slurm_prolog_parse(const char *line, size_t len, uint64_t *job, char *nodes, size_t nlen)
{
    size_t i = 0;
    uint64_t id = 0;
    for (; i < len && isdigit((unsigned char)line[i]); i++) {
        if (i >= 19)
            return -EINVAL;
        id = id * 10 + (uint64_t)(line[i] - '0');
    }
    if (i == 0 || id == 0 || i >= len || line[i] != ' ')
        return -EINVAL;
    size_t start = ++i;
    for (; i < len && line[i] != '\n'; i++)
        if (!isgraph((unsigned char)line[i]))
            return -EINVAL;
    if (i >= len || i == start) /* the whole line, newline included */
        return -EINVAL;
    size_t n = i - start < nlen - 1 ? i - start : nlen - 1;
    memcpy(nodes, line + start, n);
    nodes[n] = '\0';
    *job = id;
    return 0;
}

/* The value of the first " KEY=" (or a KEY= at the start), to the next space. */
static bool ex_slurm_field(const char *text, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = text;
    for (;;) {
        p = strstr(p, key);
        if (!p)
            return false;
        if ((p == text || p[-1] == ' ') && p[kl] == '=')
            break;
        p += kl;
    }
    p += kl + 1;
    size_t n = strcspn(p, " \n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

int ex_slurm_end_parse(const char *text, ex_slurm_end *e)
{
    memset(e, 0, sizeof *e);
    char code[32];
    if (strncmp(text, "JobId=", 6) || !ex_slurm_field(text, "JobState", e->state, sizeof e->state) ||
        !ex_slurm_field(text, "ExitCode", code, sizeof code))
        return -EINVAL;
    if (sscanf(code, "%d:%d", &e->exit_code, &e->signal) != 2)
        return -EINVAL;
    ex_slurm_field(text, "Reason", e->reason, sizeof e->reason);
    if (!ex_slurm_field(text, "NodeList", e->nodes, sizeof e->nodes) || !strcmp(e->nodes, "(null)"))
        e->nodes[0] = '\0';
    return 0;
}

bool ex_slurm_end_pending(const ex_slurm_end *e)
{
    static const char *const pending[] = { "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED",
                                           "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED" };
    for (size_t i = 0; i < sizeof pending / sizeof *pending; i++)
        if (!strcmp(e->state, pending[i]))
            return true;
    return false;
}

const char *ex_slurm_end_code(const ex_slurm_end *e)
{
    if (!strcmp(e->state, "COMPLETED") || !strcmp(e->state, "FAILED"))
        return NULL;
    if (!strcmp(e->state, "TIMEOUT") || !strcmp(e->state, "DEADLINE"))
        return "timeout";
    if (!strcmp(e->state, "NODE_FAIL") || !strcmp(e->state, "BOOT_FAIL"))
        return "node_failure";
    if (!strcmp(e->state, "PREEMPTED"))
        return "preempted";
    if (!strcmp(e->state, "OUT_OF_MEMORY"))
        return "oom";
    if (!strcmp(e->state, "CANCELLED"))
        return "slurm_cancelled";
    return "slurm_failed";
}
