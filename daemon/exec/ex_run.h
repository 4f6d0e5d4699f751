/* ex_run: a short helper program (Slurm's scancel and scontrol) run from a coroutine, as a
 * job's owner or as the daemon, with its output — stdout and stderr together — kept up
 * to a bound and the rest read and dropped. Spawned as jobs are (ex_spawn: no fork of
 * the daemon, no wait for the exec on the loop), and killed past its timeout. */
#ifndef EX_RUN_H
#define EX_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "ex_ident.h"
#include "ex_spawn.h"

#define EX_RUN_OUTPUT 4096u /* bytes of a helper's output kept (with a NUL) */

typedef struct ex_run_req {
    char *const *argv; /* argv[0] an absolute path */
    char *const *envp;
    const ex_ident *as; /* its owner's identity (a root daemon changes to it); NULL: the daemon's */
    double timeout;     /* seconds before it is killed */
} ex_run_req;

typedef struct ex_run_result {
    int status;      /* its wait status */
    bool cancelled;  /* the coroutine was cancelled meanwhile (the run went on: it is short) */
    size_t len;
    char out[EX_RUN_OUTPUT]; /* NUL-terminated, len bytes */
} ex_run_result;

/* Coroutine-only. 0 once it has run and been reaped (res->status says how it ended), or a
 * negative errno with a sentence in res->out: -ETIMEDOUT (killed), -ENOENT/-EACCES and
 * the like (it could not start), -ENOMEM. */
int ex_run(const ex_run_req *rq, ex_run_result *res);

#endif
