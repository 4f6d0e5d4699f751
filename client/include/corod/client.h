/* corod/client.h: the C client of corod (libcorod).
 *
 * Blocking calls: each sends one request and returns when its answer arrives.
 * Event-driven done-callbacks: subscribe, then poll corod_fd() for reading in any event
 * loop and call corod_dispatch(); the callback set with corod_on_done runs for each
 * `task.done` notification (corod_uv_attach does this on a libuv loop).
 *
 * Every function returns 0 (or a count) on success and a negative errno on failure.
 * COROD_EREMOTE means the daemon answered with an error: corod_error_code() and
 * corod_error_message() say which (codes: bad_request, unknown_method, not_found,
 * permission_denied, too_large, quota_exceeded, invalid_state, shutting_down, internal).
 * A client is not thread-safe: use one per thread. */
#ifndef COROD_CLIENT_H
#define COROD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COROD_EREMOTE (-121) /* -EREMOTEIO: the daemon answered with an error */

typedef struct corod_client corod_client;

/* A task record. Times are Unix seconds, NaN when not set. `result` (succeeded) and
 * `error` (failed, cancelled) are the packed MessagePack values, NULL when absent;
 * error_code/error_message are taken from `error`. Free with corod_task_free. */
typedef struct corod_task {
    uint64_t id;
    char *kind, *name, *group, *state;
    uint32_t owner_uid, attempts;
    double created_at, started_at, finished_at;
    void *result;
    size_t result_len;
    void *error;
    size_t error_len;
    char *error_code, *error_message;
    char *command; /* exec: its command line as the daemon shows it, else NULL */
    uint64_t restarted_from; /* the task this one runs again (`restart`), 0: none */
    void *argv;              /* exec: its argv as submitted, a packed MessagePack array; else NULL */
    size_t argv_len;
    void *waiting; /* pending (get, list): why it waits, a packed map ({reason, ...}); else NULL */
    size_t waiting_len;
    uint64_t slurm_job; /* exec in a Slurm group: its attempt's Slurm job id once known, else 0 */
    char *slurm_nodes;  /* ... and the nodes it runs on, else NULL */
} corod_task;

void corod_task_free(corod_task *t);
void corod_tasks_free(corod_task **tasks, size_t n);

/* The socket path the contract defaults to: $CORO_SOCKET, else /run/corod/corod.sock for
 * root, else $XDG_RUNTIME_DIR/corod/corod.sock. Returns 0 or -ENOENT (no XDG_RUNTIME_DIR). */
int corod_default_socket(char *buf, size_t len);
/* Connect (path NULL: the default). */
int corod_connect(const char *path, corod_client **out);
void corod_close(corod_client *c);

const char *corod_error_code(const corod_client *c);
const char *corod_error_message(const corod_client *c);

int corod_hello(corod_client *c, const char *client_name, uint32_t *protocol, uint32_t *pid);

/* A task spec. `args` is a packed MessagePack map (NULL: none). Zero values mean the
 * defaults: group "default", no delay, no timeout... */
typedef struct corod_spec {
    const char *kind;
    const void *args;
    size_t args_len;
    const char *name;
    const char *group;
    int64_t priority;
    const uint64_t *after;
    size_t n_after;
    double delay, timeout, retry_delay;
    uint32_t retries;
    bool shield;
} corod_spec;

int corod_submit(corod_client *c, const corod_spec *spec, uint64_t *id);
/* Convenience: a sleep task (result: packed MessagePack or NULL) and a gather. */
int corod_submit_sleep(corod_client *c, double seconds, const void *result, size_t result_len,
                       const corod_spec *opts, uint64_t *id);
int corod_submit_gather(corod_client *c, const uint64_t *ids, size_t n, bool return_exceptions,
                        const corod_spec *opts, uint64_t *id);
/* An exec task. argv and env are NULL-terminated; env holds "NAME=value" strings (NULL:
 * the daemon gives the owner's minimal environment); cwd NULL: the owner's home; stdin_data
 * NULL: /dev/null. grace and output_limit 0: the daemon's defaults. */
/* One rlimit of a job (PROTOCOL.md, exec): "nofile", "core", "cpu" or "as". */
#define COROD_RLIM_INFINITY UINT64_MAX
typedef struct corod_rlimit {
    const char *name;
    uint64_t soft, hard;
} corod_rlimit;

typedef struct corod_exec {
    char *const *argv;
    char *const *env;
    const char *cwd;
    const void *stdin_data;
    size_t stdin_len;
    double grace;
    uint64_t output_limit;
    /* Its limits; zeros for none. The cgroup ones need the daemon's cgroups (hello). */
    uint64_t memory_max, pids_max;
    uint32_t cpu_weight;
    double cpu_quota; /* CPUs */
    bool set_umask;
    unsigned umask;
    const corod_rlimit *rlimits;
    size_t nrlimits;
    bool stdin_pipe; /* its stdin stays open for corod_send (not with stdin_data) */
    /* In a Slurm group: its CPUs per task, memory (bytes) and time limit (seconds) over
     * the group's; zeros for the group's. */
    uint32_t slurm_cpus;
    uint64_t slurm_memory;
    double slurm_time;
} corod_exec;
int corod_submit_exec(corod_client *c, const corod_exec *ex, const corod_spec *opts, uint64_t *id);
/* Bytes of an exec task's output (stream 1 stdout, 2 stderr) from `offset`, at most `max`
 * (0: the daemon's default). *data is malloc'd (the caller frees); *next is the offset to
 * ask for next; *eof once the task has ended and everything was read. */
int corod_output(corod_client *c, uint64_t id, int stream, uint64_t offset, uint32_t max, void **data,
                 size_t *len, uint64_t *next, bool *eof);
/* The same, waiting up to `wait` seconds (at most 60) for bytes past `offset` when there
 * are none yet: answered as soon as the job writes or ends (then empty, with *eof), or
 * empty once `wait` has passed. */
int corod_output_wait(corod_client *c, uint64_t id, int stream, uint64_t offset, uint32_t max, double wait,
                      void **data, size_t *len, uint64_t *next, bool *eof);
/* While fd (a pipe a signal handler writes to, say) is readable, a blocking call returns
 * -EINTR instead of waiting for its answer; the answer, when it comes, is passed over.
 * -1: none (the default). */
void corod_set_cancel_fd(corod_client *c, int fd);
int corod_cancel(corod_client *c, uint64_t id, const char *message, bool *cancelled);
/* Change a task that has not started (COROD_EREMOTE, invalid_state, once it has): NULL
 * strings and a negative delay leave a field as it is; name "" takes its name away; delay
 * counts from now. *out (may be NULL) gets the record as edited. */
typedef struct corod_edit_opts {
    const char *name, *group;
    bool set_priority;
    int64_t priority;
    double delay;
} corod_edit_opts;
#define COROD_EDIT_OPTS_INIT { .delay = -1 }
int corod_edit(corod_client *c, uint64_t id, const corod_edit_opts *e, corod_task **out);
/* Write len bytes (at most COROD_SEND_MAX) into a running stdin_pipe job's stdin, then
 * close it if eof; returns once they are in the pipe (a job that does not read holds the
 * call). Another send to the same job still in flight: COROD_EREMOTE, invalid_state. */
#define COROD_SEND_MAX 65536u
int corod_send(corod_client *c, uint64_t id, const void *data, size_t len, bool eof);
/* Send signal `sig` to a running job's process group (it ends the task only if the job
 * dies of it). A task not running: COROD_EREMOTE, invalid_state. */
int corod_signal(corod_client *c, uint64_t id, int sig);
int corod_get(corod_client *c, uint64_t id, corod_task **out);
/* state, group: NULL for any; limit 0: COROD_LIST_DEFAULT, else any count. The daemon
 * answers in pages (bounded in records and bytes); this asks for as many as it takes. */
#define COROD_LIST_DEFAULT 1000u
int corod_list(corod_client *c, const char *state, const char *group, uint32_t limit, corod_task ***tasks,
               size_t *n);
/* Every filter of `list` (PROTOCOL.md): NULL strings and negative numbers for none. */
typedef struct corod_list_opts {
    const char *state, *group, *kind, *name;
    int64_t owner;       /* root only: one uid's tasks; < 0: the caller's (root: everyone's) */
    double since, until; /* created at or after / before, Unix seconds; < 0: no bound */
    bool newest_first;
    uint32_t limit;      /* 0: COROD_LIST_DEFAULT */
} corod_list_opts;
#define COROD_LIST_OPTS_INIT { .owner = -1, .since = -1, .until = -1 }
int corod_list_opts_do(corod_client *c, const corod_list_opts *o, corod_task ***tasks, size_t *n);
/* One page of it, from the cursor `after` (0: the start): at most o->limit records (and
 * what the daemon puts in one answer); *next is the `after` of the next page, 0 at the
 * end. For a caller that shows records as they come. */
int corod_list_page(corod_client *c, const corod_list_opts *o, uint64_t after, corod_task ***tasks, size_t *n,
                    uint64_t *next);
/* Remove the ended tasks matching o's filters (limit and order aside) from the daemon's
 * history, with their output: yours; root: anyone's. Pages until done; *removed counts. */
int corod_clean(corod_client *c, const corod_list_opts *o, uint64_t *removed);
/* Run ended tasks again, each as a new task from its stored spec (its record says
 * restarted_from): `ids` (n > 0), or those matching o's filters (say state "failed" and a
 * group). *made: the new ids (free() it); *failed: how many could not be (their `after`
 * no longer kept, a quota). */
int corod_restart(corod_client *c, const uint64_t *ids, size_t n, const corod_list_opts *o, uint64_t **made,
                  size_t *nmade, size_t *failed);
/* mode: "all" (NULL), "first_completed" or "first_exception"; timeout < 0: none. */
int corod_wait(corod_client *c, const uint64_t *ids, size_t n, const char *mode, double timeout,
               corod_task ***done, size_t *ndone, uint64_t **pending, size_t *npending);
int corod_subscribe(corod_client *c, const uint64_t *ids, size_t n, bool all, uint32_t *sub);
int corod_unsubscribe(corod_client *c, uint32_t sub);
/* parallel < 0, paused < 0: leave unchanged. */
int corod_set_group(corod_client *c, const char *name, int64_t parallel, int paused);
/* The same for a group that exists: COROD_EREMOTE with not_found rather than made. */
int corod_change_group(corod_client *c, const char *name, int64_t parallel, int paused);
/* A Slurm group's settings (PROTOCOL.md, "Slurm groups"): NULL and zeros for the
 * cluster's defaults. */
typedef struct corod_slurm {
    const char *partition, *account, *qos;
    uint32_t cpus;          /* per task */
    uint64_t memory;        /* bytes */
    double time;            /* seconds */
    const char *const *args; /* more srun options, from the allow-list */
    size_t nargs;
    const char *conf;       /* the cluster's slurm.conf */
} corod_slurm;
/* Where group `name` (made if need be) runs its exec jobs: on Slurm with s, or here (s
 * NULL). Root or the daemon's uid; COROD_EREMOTE bad_request when this corod has no
 * Slurm (corod_executors says why). */
int corod_set_executor(corod_client *c, const char *name, const corod_slurm *s);
/* Whether this corod can run a group's jobs on Slurm; if not, *why (malloc'd, may be
 * NULL) says what it lacks. */
int corod_executors(corod_client *c, bool *slurm, char **why);
/* Remove a group set up with corod_set_group (root or the daemon's uid), with nothing
 * pending or running in it. */
int corod_remove_group(corod_client *c, const char *name);

/* Any method: params is a packed map (NULL: []); *result gets the packed result
 * (malloc'd, the caller frees). */
int corod_call(corod_client *c, const char *method, const void *params, size_t params_len, void **result,
               size_t *result_len);

/* ---- event-driven done-callbacks ---- */
typedef void (*corod_done_fn)(corod_client *c, uint32_t sub, const corod_task *task, void *arg);
void corod_on_done(corod_client *c, corod_done_fn fn, void *arg);
int corod_fd(const corod_client *c);
/* Reads what the socket has without blocking and runs the callback for every
 * notification received (including those that arrived during blocking calls). Returns
 * how many ran, or -ECONNRESET once the daemon has gone. */
int corod_dispatch(corod_client *c);
/* Notifications the client holds already: a blocking call reads past them on its way to
 * its answer (a task that ended before its subscribe is notified right after the answer,
 * often in the same read). corod_fd will not signal them: poll it only once this is 0,
 * and corod_dispatch while it is not. (corod_uv_attach sees to it on its loop.) */
int corod_pending(const corod_client *c);

#ifdef __cplusplus
}
#endif
#endif
