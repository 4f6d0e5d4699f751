/* ex_cgroup.c: jobs' cgroups (ex_cgroup.h). */
#include "ex_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ex_cgroups {
    int fd;             /* the jobs' parent */
    char leaf[64];      /* the parent's name under the daemon's cgroup */
    char path[PATH_MAX + 64];
    unsigned controllers;
};

/* ---- small file helpers (cgroupfs: short reads and writes, in memory) ----------------------- */

static int ex_write_at(int dirfd, const char *file, const char *text)
{
    int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static ssize_t ex_read_at(int dirfd, const char *file, char *buf, size_t len)
{
    int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return n;
}

/* The value after `key ` in a flat-keyed file (cpu.stat, memory.events). */
static bool ex_keyed(const char *text, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return sscanf(p + kl + 1, "%" SCNu64, v) == 1;
    return false;
}

static unsigned ex_parse_controllers(const char *text)
{
    unsigned c = 0;
    char copy[512], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    for (char *t = strtok_r(copy, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
        c |= !strcmp(t, "memory") ? EX_CG_MEMORY : !strcmp(t, "pids") ? EX_CG_PIDS : !strcmp(t, "cpu") ? EX_CG_CPU : 0;
    return c;
}

/* Turns on in dirfd's subtree_control those of `want` it can: what it could. */
static unsigned ex_enable(int dirfd, unsigned want)
{
    static const struct { unsigned bit; const char *on; } all[] = {
        { EX_CG_MEMORY, "+memory" }, { EX_CG_PIDS, "+pids" }, { EX_CG_CPU, "+cpu" } };
    char buf[512];
    unsigned have = ex_read_at(dirfd, "cgroup.controllers", buf, sizeof buf) >= 0 ? ex_parse_controllers(buf) : 0;
    unsigned got = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if ((want & all[i].bit) && (have & all[i].bit) && ex_write_at(dirfd, "cgroup.subtree_control", all[i].on) == 0)
            got |= all[i].bit;
    return got;
}

/* ---- the jobs' parent --------------------------------------------------------------------- */

/* Where cgroup2 is mounted, from /proc/self/mountinfo. */
static int ex_cgroup2_mount(char *out, size_t len)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char line[4096];
    int rc = -ENOENT;
    while (rc == -ENOENT && fgets(line, sizeof line, f)) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
        char *dash = strstr(line, " - ");
        char root[PATH_MAX], mnt[PATH_MAX], fstype[64];
        if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") ||
            sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2)
            continue;
        if (strcmp(root, "/")) /* a part of it mounted elsewhere (a container's view) */
            continue;
        rc = snprintf(out, len, "%s", mnt) >= (int)len ? -ENAMETOOLONG : 0;
    }
    fclose(f);
    return rc;
}

/* The daemon's own cgroup (the "0::" line of /proc/self/cgroup). */
static int ex_own_cgroup(char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -errno;
    char line[PATH_MAX + 16];
    int rc = -ENOENT;
    while (rc == -ENOENT && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = '\0';
            rc = snprintf(out, len, "%s", line + 3) >= (int)len ? -ENAMETOOLONG : 0;
        }
    fclose(f);
    return rc;
}

/* Only this process in the cgroup at dirfd: it is ours alone (systemd's Delegate=yes). */
static bool ex_alone_in(int dirfd)
{
    char buf[4096];
    if (ex_read_at(dirfd, "cgroup.procs", buf, sizeof buf) < 0)
        return false;
    char self[24];
    snprintf(self, sizeof self, "%d\n", (int)getpid());
    return !strcmp(buf, self);
}

int ex_cgroups_open(const char *tag, ex_cgroups **out, char *why, size_t len)
{
    *out = NULL;
    char mnt[PATH_MAX], own[PATH_MAX], base[PATH_MAX];
    int rc = ex_cgroup2_mount(mnt, sizeof mnt);
    if (rc < 0) {
        snprintf(why, len, "no cgroup2 hierarchy is mounted");
        return rc;
    }
    if ((rc = ex_own_cgroup(own, sizeof own)) < 0) {
        snprintf(why, len, "this process is in no cgroup2 cgroup");
        return rc;
    }
    if (snprintf(base, sizeof base, "%s%s", mnt, strcmp(own, "/") ? own : "") >= (int)sizeof base) {
        snprintf(why, len, "the daemon's cgroup path is too long");
        return -ENAMETOOLONG;
    }
    int bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0) {
        rc = -errno;
        snprintf(why, len, "cannot open the cgroup %s: %s", base, strerror(-rc));
        return rc;
    }
    ex_cgroups *cg = calloc(1, sizeof *cg);
    if (!cg) {
        close(bfd);
        snprintf(why, len, "out of memory");
        return -ENOMEM;
    }
    cg->fd = -1;
    bool root = !strcmp(own, "/");
    if (!root && ex_alone_in(bfd)) {
        /* Delegated: the daemon moves to a leaf of its own, as a cgroup whose children
         * get controllers may hold no process. */
        if ((mkdirat(bfd, "daemon", 0755) < 0 && errno != EEXIST) ||
            (rc = ex_write_at(bfd, "daemon/cgroup.procs", "0")) < 0) {
            rc = rc < 0 ? rc : -errno;
            snprintf(why, len, "cannot move into %s/daemon: %s (is the service Delegate=yes?)", base, strerror(-rc));
            goto fail;
        }
        snprintf(cg->leaf, sizeof cg->leaf, "jobs");
        ex_enable(bfd, EX_CG_MEMORY | EX_CG_PIDS | EX_CG_CPU);
    } else {
        snprintf(cg->leaf, sizeof cg->leaf, "corod-%s", tag);
        if (root)
            ex_enable(bfd, EX_CG_MEMORY | EX_CG_PIDS | EX_CG_CPU);
    }
    if (mkdirat(bfd, cg->leaf, 0755) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(why, len, "cannot make the cgroup %s/%s: %s", base, cg->leaf, strerror(-rc));
        goto fail;
    }
    if ((cg->fd = openat(bfd, cg->leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(why, len, "cannot open the cgroup %s/%s: %s", base, cg->leaf, strerror(-rc));
        goto fail;
    }
    cg->controllers = ex_enable(cg->fd, EX_CG_MEMORY | EX_CG_PIDS | EX_CG_CPU);
    snprintf(cg->path, sizeof cg->path, "%s/%s", base, cg->leaf);
    close(bfd);
    *out = cg;
    return 0;
fail:
    close(bfd);
    free(cg);
    return rc;
}

void ex_cgroups_close(ex_cgroups *cg)
{
    if (!cg)
        return;
    close(cg->fd);
    if (strncmp(cg->leaf, "corod-", 6) == 0) /* a parent of our making beside others */
        rmdir(cg->path);
    free(cg);
}

unsigned ex_cgroups_controllers(const ex_cgroups *cg) { return cg ? cg->controllers : 0; }
const char *ex_cgroups_path(const ex_cgroups *cg) { return cg ? cg->path : NULL; }

static void ex_kill_in(int dirfd)
{
    if (ex_write_at(dirfd, "cgroup.kill", "1") == 0)
        return;
    /* Before 5.14: each pid it lists, until none is left (a fork meanwhile adds one). */
    char buf[65536];
    for (int round = 0; round < 100 && ex_read_at(dirfd, "cgroup.procs", buf, sizeof buf) > 0; round++)
        for (char *p = buf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
            kill((pid_t)strtol(p, NULL, 10), SIGKILL);
}

static bool ex_populated_at(int dirfd)
{
    char buf[256];
    uint64_t v = 0;
    return ex_read_at(dirfd, "cgroup.events", buf, sizeof buf) > 0 && ex_keyed(buf, "populated", &v) && v;
}

int ex_cgroups_sweep(ex_cgroups *cg)
{
    int dfd = dup(cg->fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        return -e;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "job-", 4))
            continue;
        int fd = openat(cg->fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ex_kill_in(fd);
        /* SIGKILL is delivered at once, but exits take a moment: wait a little. */
        for (int i = 0; i < 200 && ex_populated_at(fd); i++)
            usleep(5000);
        close(fd);
        if (unlinkat(cg->fd, e->d_name, AT_REMOVEDIR) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ---- a job's cgroup ------------------------------------------------------------------------ */

int ex_jobcg_make(ex_cgroups *cg, uint64_t id, const ex_limits *l, ex_jobcg *out, char *err, size_t len)
{
    memset(out, 0, sizeof *out);
    out->cg = cg;
    out->dirfd = out->procs_fd = -1;
    snprintf(out->name, sizeof out->name, "job-%" PRIu64, id);
    if (mkdirat(cg->fd, out->name, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, len, "cannot make the job's cgroup %s/%s: %s", cg->path, out->name, strerror(e));
        return -e;
    }
    int rc = 0;
    const char *file = NULL;
    char v[64];
    if ((out->dirfd = openat(cg->fd, out->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = -errno, file = ".";
    if (rc == 0 && l && l->memory_max) {
        snprintf(v, sizeof v, "%" PRIu64, l->memory_max);
        if ((rc = ex_write_at(out->dirfd, file = "memory.max", v)) == 0)
            /* No swap beyond it either: a limit that swapping gets around is none. */
            ex_write_at(out->dirfd, "memory.swap.max", "0");
    }
    if (rc == 0 && l && l->pids_max) {
        snprintf(v, sizeof v, "%" PRIu64, l->pids_max);
        rc = ex_write_at(out->dirfd, file = "pids.max", v);
    }
    if (rc == 0 && l && l->cpu_weight) {
        snprintf(v, sizeof v, "%u", l->cpu_weight);
        rc = ex_write_at(out->dirfd, file = "cpu.weight", v);
    }
    if (rc == 0 && l && l->cpu_quota > 0) {
        uint64_t q = (uint64_t)(l->cpu_quota * EX_CPU_PERIOD_US);
        snprintf(v, sizeof v, "%" PRIu64 " %u", q ? q : 1000, EX_CPU_PERIOD_US);
        rc = ex_write_at(out->dirfd, file = "cpu.max", v);
    }
    if (rc == 0 && (out->procs_fd = openat(out->dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC)) < 0)
        rc = -errno, file = "cgroup.procs";
    if (rc < 0) {
        snprintf(err, len, "cannot set up the job's cgroup %s/%s (%s): %s", cg->path, out->name, file,
                 strerror(-rc));
        if (out->procs_fd >= 0)
            close(out->procs_fd);
        if (out->dirfd >= 0)
            close(out->dirfd);
        unlinkat(cg->fd, out->name, AT_REMOVEDIR);
        out->dirfd = out->procs_fd = -1;
    }
    return rc;
}

void ex_jobcg_kill(ex_jobcg *j)
{
    if (j->dirfd >= 0)
        ex_kill_in(j->dirfd);
}

bool ex_jobcg_populated(const ex_jobcg *j)
{
    return j->dirfd >= 0 && ex_populated_at(j->dirfd);
}

void ex_jobcg_stats_get(const ex_jobcg *j, ex_jobcg_stats *st)
{
    memset(st, 0, sizeof *st);
    char buf[2048];
    if (j->dirfd < 0)
        return;
    if (ex_read_at(j->dirfd, "cpu.stat", buf, sizeof buf) > 0)
        ex_keyed(buf, "usage_usec", &st->cpu_usec);
    if (!(j->cg->controllers & EX_CG_MEMORY)) /* no memory files to read */
        return;
    if (ex_read_at(j->dirfd, "memory.peak", buf, sizeof buf) > 0)
        st->has_peak = sscanf(buf, "%" SCNu64, &st->memory_peak) == 1;
    if (ex_read_at(j->dirfd, "memory.events", buf, sizeof buf) > 0)
        ex_keyed(buf, "oom_kill", &st->oom_kills);
}

void ex_jobcg_close(ex_jobcg *j)
{
    if (j->dirfd >= 0)
        close(j->dirfd);
    if (j->procs_fd >= 0)
        close(j->procs_fd);
    j->dirfd = j->procs_fd = -1;
}

int ex_jobcg_remove(ex_jobcg *j)
{
    if (j->dirfd < 0)
        return 0;
    if (unlinkat(j->cg->fd, j->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return -errno;
    ex_jobcg_close(j);
    return 0;
}
