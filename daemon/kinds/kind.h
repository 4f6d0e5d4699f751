/* kind: the task kinds and their table. A kind validates its `args` at submit time into
 * a parsed form, names the other tasks it refers to (gather's members), and starts a
 * body — a runtime task — once the record is ready to run. A new kind is a new file and
 * a row in kinds.c.
 *
 * The parsed form lives in a block of the record itself (args_size bytes, at most
 * KIND_ARGS_MAX, zeroed before validate): no allocation of its own on the path of every
 * submit. A kind whose parsed form is larger, or must outlive the record's stage (exec's,
 * which a running job still reads), keeps a pointer to it there. */
#ifndef KIND_H
#define KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "co.h"
#include "cp_msg.h"
#include "ex_disk.h"
#include "ex_spawn.h"

/* Daemon-wide settings the kinds read. Copied by a body that needs them: a job may
 * still be ending after the table that started it is gone (shutdown). */
typedef struct kind_env {
    const char *output_dir; /* exec output files: <output_dir>/<id>.out and .err */
    bool as_root;           /* the daemon runs as root: jobs run as their owners */
    double grace;           /* seconds between SIGTERM and SIGKILL (KIND_GRACE_DEFAULT) */
    uint64_t output_limit;  /* bytes kept per output stream, 0: no cap */
    size_t max_result;      /* bytes of a value a client hands over (a sleep's result) */
    unsigned max_depth;     /* ... and its nesting levels */
    ex_restore restore;     /* what jobs get back of the daemon's start */
    double spawn_timeout;   /* seconds a job may take from clone to exec (KIND_SPAWN_TIMEOUT) */
    struct ex_cgroups *cgroups; /* where jobs' cgroups go (ex_cgroup.h); NULL: none */
    const char *cgroups_why;    /* ... and why there are none */
    const struct ex_slurm_tools *slurm; /* srun and friends; NULL: no Slurm groups */
    const char *slurm_tag;      /* in its jobs' Slurm names: corod-<tag>-<id> */
} kind_env;

#define KIND_GRACE_DEFAULT 5.0
#define KIND_SPAWN_TIMEOUT 10.0

/* Told of a body's process as soon as it exists (before it has exec'd): its pid, which
 * leads the job's session and process group, and the wall-clock time just before it was
 * made; and of each write of its output that landed. A body that keeps the hooks takes a reference to their arg (ref) and lets it go
 * (unref) when it is freed: it may outlive whoever started it. */
typedef struct kind_hooks {
    void (*spawned)(void *arg, uint64_t id, int64_t pid, double at);
    void (*output)(void *arg, uint64_t id); /* optional: new bytes in its output files */
    /* optional: a job of a Slurm group was handed to srun (job 0), then Slurm gave it
     * the id `job` on `nodes` (its prolog's word: the owner's to make up) */
    void (*slurm)(void *arg, uint64_t id, uint64_t job, const char *nodes);
    void (*ref)(void *arg);
    void (*unref)(void *arg);
} kind_hooks;

typedef struct kind_start {
    co_sched *sched;
    co_task_opts opts;         /* id, name, timeout of the record */
    void *args;                /* the parsed form validate filled */
    co_future *const *refs;    /* the futures of the ids `refs` named, in order */
    size_t nrefs;
    uint32_t owner;            /* the record's owner uid */
    const kind_env *env;
    ex_disk_use *disk;         /* has_output: the record's share of its owner's disk */
    const kind_hooks *hooks;   /* may be NULL */
    void *hooks_arg;
    const ex_limits *group_limits; /* its group's defaults for a job's limits; NULL: none */
    struct ex_slurm *slurm;    /* its group's Slurm settings; NULL: it runs here */
    uint32_t attempt;          /* which attempt this start is, from 1 */
} kind_start;

typedef struct kind_ops {
    const char *name;
    bool available;  /* false: defined by the contract, arrives in a later version */
    bool takes_slot; /* does work (runs a program): counts against its group's `parallel` */
    bool has_output; /* has stdout/stderr files the `output` method reads */
    size_t args_size; /* bytes of the parsed form, <= KIND_ARGS_MAX */
    /* Parse and check args (may be NULL when absent) into `parsed`, within env's limits.
     * Returns 0, or -EINVAL with err and nothing left to free. */
    int (*validate)(const msgpack_object *args, const kind_env *env, void *parsed, cp_error *err);
    /* Task ids the parsed args refer to (may be none). */
    void (*refs)(const void *parsed, const uint64_t **ids, size_t *n);
    int (*start)(const kind_start *ks, co_task **body);
    /* Release what the parsed form owns (not the block itself). */
    void (*free)(void *parsed);
    /* Optional: the command line for records (exec), shortened to fit KIND_COMMAND_MAX. */
    const char *(*command)(const void *parsed);
    /* Bytes the parsed form holds outside the record (counted against its owner). */
    size_t (*bytes)(const void *parsed);
    /* Optional: the body was running `elapsed` seconds when the daemon stopped; make the
     * parsed form what is left of it (a sleep's remaining time), to start it again. NULL:
     * it is not started again (a program's run cannot be taken up where it was). */
    void (*resume)(void *parsed, double elapsed);
    /* Optional: send `sig` to what a running body runs (a job's process group): 0,
     * -ESRCH when it runs nothing yet or any more, or a negative errno of kill(2); a Slurm
     * job's also -EAGAIN (Slurm has not started it) and -EBUSY (its last one is on its way). */
    int (*signal)(co_task *body, int sig);
    /* Optional: bytes for what a running body reads (a stdin_pipe job's stdin), then its
     * end if eof. 0: cb(arg, status) once they are there (0) or cannot be (a libuv
     * error: UV_EPIPE, UV_ECANCELED); 1: done at once (no callback); -ENOTSUP (not such
     * a body), -EBUSY (one is in flight), -EPIPE (closed, or the program has ended). */
    int (*feed)(co_task *body, const void *data, size_t len, bool eof, void (*cb)(void *arg, int status),
                void *arg);
    /* Optional: NULL when the parsed form fits a group that runs its jobs here (slurm
     * false) or on Slurm (true), else why not (args.slurm here; cgroup limits on Slurm). */
    const char *(*misfit)(const void *parsed, bool slurm);
} kind_ops;

#define KIND_COMMAND_MAX 256u
#define KIND_ARGS_MAX 32u /* bytes of a parsed form inside a record */

/* A block for a parsed form, aligned for anything a kind keeps there. */
typedef union kind_args_block {
    max_align_t align;
    unsigned char bytes[KIND_ARGS_MAX];
} kind_args_block;

/* Prefix an error from a field getter with "args." so it says where the field lives. */
int kind_args_error(cp_error *err);

/* The kind named `name`, or NULL. */
const kind_ops *kind_find(cp_str name);

extern const kind_ops kind_sleep;
extern const kind_ops kind_gather;
extern const kind_ops kind_exec;

/* The path of task `id`'s output file for `stream` (1 stdout, 2 stderr). 0, or
 * -ENAMETOOLONG. */
int kind_output_path(const char *output_dir, uint64_t id, int stream, char *buf, size_t len);
/* Removes task `id`'s output files, if there are any. Blocks on the disk: any thread
 * but the loop's. */
void kind_output_remove(const char *output_dir, uint64_t id);

#define KIND_MAX_GATHER 65536u /* members of one gather */

#endif
