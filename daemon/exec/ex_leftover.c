/* ex_leftover.c: finding a dead daemon's jobs' processes in /proc, and killing them. */
#include "ex_leftover.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* When the machine booted, in Unix seconds: a process's start is counted from it. */
static long ex_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char line[256];
    long bt = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %ld", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* A process's group, session and start (clock ticks after boot), from /proc/<pid>/stat:
 * fields 5, 6 and 22, counted after the command name (which may hold spaces and ')'). */
static int ex_proc_stat(int dirfd, const char *pid, pid_t *pgrp, pid_t *sid, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "%s/stat", pid);
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    int pg, se;
    /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
     * cutime cstime priority nice num_threads itrealvalue starttime */
    if (sscanf(p + 2, "%*c %*d %d %d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &pg, &se, start) != 3)
        return -EIO;
    *pgrp = pg;
    *sid = se;
    return 0;
}

int ex_kill_leftovers(const ex_leftover *jobs, size_t n)
{
    if (!n)
        return 0;
    long boot = ex_boot_time(), hz = sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc");
    if (!d || boot < 0 || hz <= 0) {
        int e = d ? EIO : errno;
        if (d)
            closedir(d);
        return -e;
    }
    int killed = 0;
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atol(e->d_name), pgrp, sid;
        unsigned long long start;
        struct stat st;
        if (pid == self || fstatat(dirfd(d), e->d_name, &st, 0) < 0 ||
            ex_proc_stat(dirfd(d), e->d_name, &pgrp, &sid, &start) < 0)
            continue; /* gone meanwhile */
        double began = (double)boot + (double)start / (double)hz;
        for (size_t i = 0; i < n; i++) {
            const ex_leftover *j = &jobs[i];
            /* A second of slack: boot time is in whole seconds. */
            if ((sid == j->leader || pgrp == j->leader) && st.st_uid == j->uid && began >= j->spawned_at - 1.0) {
                if (kill(pid, SIGKILL) == 0)
                    killed++;
                break;
            }
        }
    }
    closedir(d);
    return killed;
}
