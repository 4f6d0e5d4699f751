/* ex_spawn: start a job's process — in a new session (so it leads its own process group),
 * with the given stdio, environment, directory and credentials — and hand back its pid
 * and a pidfd to wait on.
 *
 * Why not uv_spawn: its setuid path calls setgroups(0, NULL), so a job would lose its
 * owner's supplementary groups; and it fork()s, copying the daemon's page tables (many
 * coroutine stacks) for every job, and waits for the exec. This clones with CLONE_VM, as
 * posix_spawn does (the child shares memory until it execs and runs only system calls),
 * but without waiting: between the clone and the exec the child does what its owner
 * chose — searches their PATH, changes to their directory — and may be stopped by them,
 * so the caller polls a pipe for the outcome instead (ex_spawn.c says when it must wait).
 *
 * Children are not reaped by libuv (it waits only for its own pids): the caller waits on
 * the pidfd and reaps with ex_reap. */
#ifndef EX_SPAWN_H
#define EX_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ex_limits.h"

#define EX_MAX_GROUPS 65536u /* supplementary groups (NGROUPS_MAX on Linux) */

/* What the daemon changed of itself at start that its jobs must not inherit, given back
 * to each job in the child before it execs: its nice value (--nice) and the soft limit on
 * descriptors (raised to the hard one; programs that select() break above 1,024). */
typedef struct ex_restore {
    bool nice_set;
    int nice;
    bool nofile_set;
    struct rlimit nofile;
} ex_restore;

typedef struct ex_spawn_req {
    char *const *argv;  /* argv[0] is looked up in envp's PATH unless it has a '/' */
    char *const *envp;  /* the whole environment */
    const char *cwd;    /* NULL: stay in the caller's directory */
    int stdin_fd;       /* -1: /dev/null */
    int stdout_fd, stderr_fd;
    int fd3;            /* > 2: given to the child as its descriptor 3 (a Slurm job's
                           srun hands it to its prolog: kind_slurm.c); else none */
    bool set_ids;       /* change to uid/gid/groups (the caller must be root) */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    const ex_restore *restore; /* NULL: nothing to give back */
    const ex_limits *limits;   /* NULL: none of its own (the umask is still reset) */
    bool in_cgroup;            /* join the cgroup whose cgroup.procs is cgroup_procs_fd */
    int cgroup_procs_fd;
} ex_spawn_req;

typedef struct ex_spawned {
    pid_t pid;
    int pidfd; /* readable once the process has exited; the caller closes it. -1 where
                  the kernel has no pidfd_open (before 5.3; valgrind): poll ex_exited */
} ex_spawned;

typedef struct ex_spawning ex_spawning;

/* Starts the child: 0 with *out, or a negative errno with a sentence in errbuf (nothing
 * left behind). rq and all it points to must stay valid until ex_spawn_finish. */
int ex_spawn_start(const ex_spawn_req *rq, ex_spawning **out, char *errbuf, size_t errlen);
/* Readable once the child has exec'd or failed (at once when the clone waited). */
int ex_spawning_fd(const ex_spawning *s);
/* The child's pid, for a caller whose patience ran out (SIGKILL ends a stopped child). */
pid_t ex_spawning_pid(const ex_spawning *s);
/* Once ex_spawning_fd is readable: 0 with out's pid and pidfd; or a negative errno with
 * a sentence in errbuf ("cannot execute \"foo\": No such file or directory") and out->pid
 * still set: that child failed and exits, and the caller must reap it. Frees s. A child
 * killed before it exec'd reads as one that exec'd: its killer knows better. */
int ex_spawn_finish(ex_spawning *s, ex_spawned *out, char *errbuf, size_t errlen);
/* Both, waiting for the outcome (tests, tools). On failure no process is left behind. */
int ex_spawn(const ex_spawn_req *rq, ex_spawned *out, char *errbuf, size_t errlen);

/* Reaps an exited child without blocking: 0 with its wait status and resource usage,
 * -EAGAIN if it has not exited yet, or a negative errno. */
int ex_reap(pid_t pid, int *status, struct rusage *ru);

/* True once the child has exited (it is not reaped). */
bool ex_exited(pid_t pid);

/* The PATH to use when an environment has none. */
#define EX_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define EX_DEFAULT_ROOT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#endif
