/* kind_exec_outcome.c: what an exec job's end says — the map every outcome carries (its
 * times, bytes and cgroup's figures), and its code: an exit status, a signal, an OOM kill,
 * or for a Slurm job what Slurm recorded. */
#include "kind_exec.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "cp_spec.h"

static double exec_tv(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* The fields every outcome carries, after `extra` more of the caller's. */
static void exec_pack_outcome(msgpack_packer *pk, exec_job *j, int extra, const struct rusage *ru, double dur)
{
    bool trunc = (j->pump[1] && ex_pump_truncated(j->pump[1])) || (j->pump[2] && ex_pump_truncated(j->pump[2]));
    int werr = 0;
    for (int s = 1; s < 3; s++)
        if (j->pump[s] && ex_pump_error(j->pump[s]) && !werr)
            werr = ex_pump_error(j->pump[s]);
    int cg = j->cg_measured ? 1 + (j->cg_stats.has_peak ? 1 : 0) : 0;
    int sl = j->slurm && j->slurm->job ? 2 : 0;
    msgpack_pack_map(pk, (uint32_t)(extra + 7 + (trunc ? 1 : 0) + (werr ? 1 : 0) + cg + sl));
    if (sl) { /* where it ran */
        cp_pack_str(pk, "slurm_job");
        msgpack_pack_uint64(pk, j->slurm->job);
        cp_pack_str(pk, "nodes");
        cp_pack_str(pk, j->slurm->have_end && j->slurm->end.nodes[0] ? j->slurm->end.nodes : j->slurm->nodes);
    }
    cp_pack_str(pk, "pid");
    msgpack_pack_int64(pk, j->sp.pid);
    cp_pack_str(pk, "duration");
    msgpack_pack_double(pk, dur);
    cp_pack_str(pk, "user_time");
    msgpack_pack_double(pk, exec_tv(ru->ru_utime));
    cp_pack_str(pk, "system_time");
    msgpack_pack_double(pk, exec_tv(ru->ru_stime));
    cp_pack_str(pk, "max_rss_kib");
    msgpack_pack_int64(pk, ru->ru_maxrss);
    cp_pack_str(pk, "stdout_bytes");
    msgpack_pack_uint64(pk, j->pump[1] ? ex_pump_bytes(j->pump[1]) : 0);
    cp_pack_str(pk, "stderr_bytes");
    msgpack_pack_uint64(pk, j->pump[2] ? ex_pump_bytes(j->pump[2]) : 0);
    if (j->cg_measured) { /* all its processes', from its cgroup */
        cp_pack_str(pk, "cpu_time");
        msgpack_pack_double(pk, (double)j->cg_stats.cpu_usec / 1e6);
        if (j->cg_stats.has_peak) {
            cp_pack_str(pk, "memory_peak");
            msgpack_pack_uint64(pk, j->cg_stats.memory_peak);
        }
    }
    if (trunc) {
        cp_pack_str(pk, "output_truncated");
        msgpack_pack_true(pk);
    }
    if (werr) {
        char msg[160];
        snprintf(msg, sizeof msg, "output could not be written: %s", strerror(-werr));
        cp_pack_str(pk, "output_error");
        cp_pack_str(pk, msg);
    }
}

int exec_outcome(exec_job *j, const char *code, const char *msg, int exit_code, int sig,
                        const struct rusage *ru, double dur)
{
    char text[64];
    bool ok = !code && exit_code == 0;
    if (!code && !ok) {
        snprintf(text, sizeof text, "exited with status %d", exit_code);
        code = "exit_status";
        msg = text;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    exec_pack_outcome(&pk, j, ok ? 1 : 3, ru, dur);
    if (!ok) {
        cp_pack_str(&pk, "code");
        cp_pack_str(&pk, code);
        cp_pack_str(&pk, "message");
        cp_pack_str(&pk, msg);
    }
    cp_pack_str(&pk, exit_code >= 0 ? "exit_code" : "signal");
    msgpack_pack_int(&pk, exit_code >= 0 ? exit_code : sig);
    co_value v;
    int rc = co_value_copy(&v, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (rc < 0)
        return -ENOMEM;
    co_return(&v);
    return ok ? 0 : CO_EFAILED;
}

int exec_slurm_outcome(exec_job *j, int status, const struct rusage *ru, double dur)
{
    kslurm *k = j->slurm;
    char msg[256];
    if (k->have_end) {
        const ex_slurm_end *e = &k->end;
        const char *code = ex_slurm_end_code(e);
        if (!code && e->signal)
            snprintf(msg, sizeof msg, "killed by signal %d (%s)", e->signal, strsignal(e->signal));
        if (!code)
            return exec_outcome(j, e->signal ? "signal" : NULL, msg, e->signal ? -1 : e->exit_code, e->signal, ru,
                                dur);
        const char *what = !strcmp(code, "timeout")        ? "Slurm stopped it at its time limit"
                         : !strcmp(code, "node_failure")   ? "a node it ran on failed"
                         : !strcmp(code, "preempted")      ? "Slurm preempted it for other work"
                         : !strcmp(code, "oom")            ? "Slurm killed it for using more memory than it asked for"
                         : !strcmp(code, "slurm_cancelled") ? "it was cancelled in Slurm, not through corod"
                                                             : "Slurm ended it";
        snprintf(msg, sizeof msg, "%s (Slurm job %llu: %s, reason %s)", what, (unsigned long long)k->job, e->state,
                 e->reason[0] ? e->reason : "none");
        return exec_outcome(j, code, msg, e->signal ? -1 : e->exit_code, e->signal, ru, dur);
    }
    bool exited = WIFEXITED(status);
    if (!k->job && !(exited && WEXITSTATUS(status) == 0)) {
        snprintf(msg, sizeof msg,
                 "srun %s %d before Slurm ran the job (a user the cluster does not know, a partition or "
                 "account it refuses, ...): its stderr says why",
                 exited ? "exited with status" : "was killed by signal", exited ? WEXITSTATUS(status) : WTERMSIG(status));
        return exec_outcome(j, "spawn_failed", msg, exited ? WEXITSTATUS(status) : -1,
                            exited ? 0 : WTERMSIG(status), ru, dur);
    }
    if (exited)
        return exec_outcome(j, NULL, NULL, WEXITSTATUS(status), 0, ru, dur);
    snprintf(msg, sizeof msg, "srun was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    return exec_outcome(j, "signal", msg, -1, WTERMSIG(status), ru, dur);
}

int exec_local_outcome(exec_job *j, int status, const struct rusage *ru, double dur)
{
    if (WIFEXITED(status))
        return exec_outcome(j, NULL, NULL, WEXITSTATUS(status), 0, ru, dur);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    char msg[160];
    /* Killed for its memory.max: its own outcome, not just a SIGKILL. */
    if (j->cg_measured && j->cg_stats.oom_kills > 0 && sig == SIGKILL) {
        snprintf(msg, sizeof msg, "killed for using more memory than its memory_max (%llu bytes)",
                 (unsigned long long)j->lim.memory_max);
        return exec_outcome(j, "oom", msg, -1, sig, ru, dur);
    }
    snprintf(msg, sizeof msg, "killed by signal %d (%s)%s", sig, strsignal(sig),
             WIFSIGNALED(status) && WCOREDUMP(status) ? ", core dumped" : "");
    return exec_outcome(j, "signal", msg, -1, sig, ru, dur);
}
