/* test_slurm: daemon/exec/ex_slurm on its own — a group's settings and their bounds, the
 * srun command line and environment made of them, and the reading of the prolog's line
 * and of `scontrol -o show job` (every way a job can end) — and ex_run, which runs scancel
 * and scontrol: its output bound and its timeout. No cluster needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/wait.h>

#include "co_test.h"
#include "ex_run.h"
#include "ex_slurm.h"

static const ex_slurm_tools tools = { .srun = "/usr/bin/srun", .scancel = "/usr/bin/scancel",
                                      .scontrol = "/usr/bin/scontrol", .prolog = "/x/corod-slurm-prolog" };

static void test_settings_and_bounds(void **state)
{
    (void)state;
    char err[256];
    ex_slurm *s = ex_slurm_new();
    assert_non_null(s);
    assert_int_equal(ex_slurm_set_str(s, "partition", "gpu,cpu", err, sizeof err), 0);
    assert_int_equal(ex_slurm_set_str(s, "partition", "--uid=0", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "slurm.partition"));
    assert_int_equal(ex_slurm_set_str(s, "account", "a b", err, sizeof err), -EINVAL);
    char longname[EX_SLURM_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(ex_slurm_set_str(s, "qos", longname, err, sizeof err), -EINVAL);
    longname[EX_SLURM_NAME_MAX] = '\0';
    assert_int_equal(ex_slurm_set_str(s, "qos", longname, err, sizeof err), 0);
    assert_int_equal(ex_slurm_set_str(s, "conf", "etc/slurm.conf", err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_str(s, "colour", "red", err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_num(s, "cpus", 0, err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_num(s, "cpus", EX_SLURM_CPUS_MAX + 1, err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_num(s, "cpus", 2.5, err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_num(s, "cpus", EX_SLURM_CPUS_MAX, err, sizeof err), 0);
    assert_int_equal(ex_slurm_set_num(s, "memory", EX_SLURM_MEMORY_MIN - 1, err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_num(s, "memory", (double)EX_SLURM_MEMORY_MAX * 2, err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_num(s, "time", 0, err, sizeof err), -EINVAL);
    assert_int_equal(ex_slurm_set_num(s, "time", EX_SLURM_TIME_MAX + 1, err, sizeof err), -EINVAL);
    /* The allow-list: corod's own options, stdio, identity and other allocations are not on it. */
    const char *no[] = { "--uid=0", "--output=/tmp/x", "--job-name=x", "--prolog=/bin/sh", "--jobid=5", "-n2",
                         "--chdir=/", "--export=ALL", "--pty", "--gres", "--exclusive\n" };
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_int_equal(ex_slurm_set_str(s, "args", no[i], err, sizeof err), i == 9 ? 0 : -EINVAL);
    /* An option of EX_SLURM_ARG_LEN - 1 bytes is one; a byte more is not. */
    char arg[EX_SLURM_ARG_LEN + 1] = "--comment=";
    memset(arg + 10, 'x', EX_SLURM_ARG_LEN - 1 - 10);
    arg[EX_SLURM_ARG_LEN - 1] = '\0';
    assert_true(ex_slurm_arg_ok(arg));
    arg[EX_SLURM_ARG_LEN - 1] = 'x';
    arg[EX_SLURM_ARG_LEN] = '\0';
    assert_false(ex_slurm_arg_ok(arg));
    for (unsigned i = 1; i < EX_SLURM_ARGS_MAX; i++)
        assert_int_equal(ex_slurm_set_str(s, "args", "--exclusive", err, sizeof err), 0);
    assert_int_equal(ex_slurm_set_str(s, "args", "--exclusive", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "at most"));
    ex_slurm_unref(s);
}

static void test_command_line(void **state)
{
    (void)state;
    char err[256];
    ex_slurm *s = ex_slurm_new();
    ex_slurm_set_str(s, "partition", "batch", err, sizeof err);
    ex_slurm_set_str(s, "args", "--gres=gpu:1", err, sizeof err);
    ex_slurm_set_num(s, "cpus", 4, err, sizeof err);
    ex_slurm_set_num(s, "time", 61, err, sizeof err);
    char *argv[] = { "echo", "--uid=0", NULL };
    ex_slurm_job over = { .memory = (1ull << 20) + 1 };
    char **v = ex_slurm_argv(&tools, s, &over, "corod-t-7-1", argv);
    assert_non_null(v);
    const char *want[] = { "/usr/bin/srun", "--quiet", "--job-name=corod-t-7-1", "--prolog=/x/corod-slurm-prolog",
                           "--partition=batch", "--cpus-per-task=4", "--mem=2M", "--time=2", "--ntasks=1", "--gres=gpu:1", "--",
                           "echo", "--uid=0", NULL };
    for (size_t i = 0; want[i] || v[i]; i++) {
        assert_non_null(v[i]);
        assert_non_null(want[i]);
        assert_string_equal(v[i], want[i]);
    }
    free(v);
    over = (ex_slurm_job){ .cpus = 1 };
    v = ex_slurm_argv(&tools, s, &over, "n", argv);
    assert_string_equal(v[4], "--partition=batch");
    assert_string_equal(v[5], "--cpus-per-task=1");
    free(v);
    /* A group that says how many tasks, or nodes, is not given --ntasks=1. */
    ex_slurm_set_str(s, "args", "--ntasks-per-node=2", err, sizeof err);
    v = ex_slurm_argv(&tools, s, NULL, "n", argv);
    for (size_t i = 0; v[i]; i++)
        assert_string_not_equal(v[i], "--ntasks=1");
    free(v);
    /* srun's own input variables go; the rest stays, and slurm.conf is the group's. */
    char *env[] = { "PATH=/bin", "SLURM_JOB_ID=5", "SRUN_DEBUG=3", "SBATCH_X=1", "SALLOC_Y=2", "HOME=/h", NULL };
    ex_slurm_set_str(s, "conf", "/etc/slurm/other.conf", err, sizeof err);
    char **e = ex_slurm_env(s, env);
    assert_string_equal(e[0], "PATH=/bin");
    assert_string_equal(e[1], "HOME=/h");
    assert_string_equal(e[2], "SLURM_CONF=/etc/slurm/other.conf");
    assert_null(e[3]);
    free(e);
    ex_slurm_unref(s);
}

static void test_prolog_line(void **state)
{
    (void)state;
    uint64_t job = 0;
    char nodes[8];
    const char *ok = "1234 node[01-04]\n";
    assert_int_equal(ex_slurm_prolog_parse(ok, strlen(ok), &job, nodes, sizeof nodes), 0);
    assert_int_equal(job, 1234);
    assert_string_equal(nodes, "node[01"); /* cut to fit */
    const char *bad[] = { "", "\n", "x 1\n", "0 n\n", "12 \n", "12 n", "12 a b\n", "123456789012345678901 n\n",
                          "-1 n\n", "12\tn\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(ex_slurm_prolog_parse(bad[i], strlen(bad[i]), &job, nodes, sizeof nodes), -EINVAL);
}

static const char *show(const char *state, const char *exit)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "JobId=7 JobName=corod-t-7-1 UserId=u(1000) Account=(null) JobState=%s Reason=None "
             "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=0 Reboot=0 ExitCode=%s RunTime=00:00:01 "
             "NodeList=n[1-2] BatchHost=n1 Command=sh JobState=COMPLETED ExitCode=0:0\n",
             state, exit);
    return buf;
}

static void test_job_end(void **state)
{
    (void)state;
    ex_slurm_end e;
    const struct {
        const char *state, *exit, *code;
        int exit_code, sig;
    } cases[] = {
        { "COMPLETED", "0:0", NULL, 0, 0 },      { "FAILED", "3:0", NULL, 3, 0 },
        { "FAILED", "0:9", NULL, 0, 9 },         { "TIMEOUT", "0:15", "timeout", 0, 15 },
        { "DEADLINE", "0:0", "timeout", 0, 0 },  { "NODE_FAIL", "0:0", "node_failure", 0, 0 },
        { "BOOT_FAIL", "0:0", "node_failure", 0, 0 }, { "PREEMPTED", "0:15", "preempted", 0, 15 },
        { "OUT_OF_MEMORY", "0:125", "oom", 0, 125 }, { "CANCELLED", "0:15", "slurm_cancelled", 0, 15 },
        { "REVOKED", "0:0", "slurm_failed", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* The first JobState and ExitCode count: the command line, later, is the user's. */
        assert_int_equal(ex_slurm_end_parse(show(cases[i].state, cases[i].exit), &e), 0);
        assert_string_equal(e.state, cases[i].state);
        assert_int_equal(e.exit_code, cases[i].exit_code);
        assert_int_equal(e.signal, cases[i].sig);
        assert_string_equal(e.nodes, "n[1-2]");
        assert_false(ex_slurm_end_pending(&e));
        const char *code = ex_slurm_end_code(&e);
        if (cases[i].code)
            assert_string_equal(code, cases[i].code);
        else
            assert_null(code);
    }
    assert_int_equal(ex_slurm_end_parse(show("COMPLETING", "0:0"), &e), 0);
    assert_true(ex_slurm_end_pending(&e));
    assert_int_equal(ex_slurm_end_parse("slurm_load_jobs error: Invalid job id specified\n", &e), -EINVAL);
    assert_int_equal(ex_slurm_end_parse("JobId=7 JobState=FAILED ExitCode=x\n", &e), -EINVAL);
}

/* ---- ex_run ---- */

typedef struct run_case {
    char *const *argv;
    double timeout;
    int rc;
    ex_run_result res;
    double took;
} run_case;

static int run_body(void *arg)
{
    run_case *c = arg;
    static char *const env[] = { "PATH=/usr/bin:/bin", NULL };
    ex_run_req rq = { .argv = c->argv, .envp = env, .as = NULL, .timeout = c->timeout };
    double t0 = co_now();
    c->rc = ex_run(&rq, &c->res);
    c->took = co_now() - t0;
    return 0;
}

static void run(co_env *e, run_case *c)
{
    co_task *t = co_test_run(e, run_body, c);
    co_task_unref(t);
}

static void test_run_output_and_status(void **state)
{
    /* Past EX_RUN_OUTPUT bytes the output is read and dropped: the helper is not held up. */
    static char *const big[] = { "/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo err >&2; exit 3",
                                 NULL };
    run_case c = { .argv = big, .timeout = 10 };
    run(*state, &c);
    assert_int_equal(c.rc, 0);
    assert_true(WIFEXITED(c.res.status) && WEXITSTATUS(c.res.status) == 3);
    assert_int_equal(c.res.len, EX_RUN_OUTPUT - 1);
    assert_int_equal(strlen(c.res.out), EX_RUN_OUTPUT - 1);
    static char *const small[] = { "/bin/sh", "-c", "echo out; echo err >&2", NULL };
    run_case d = { .argv = small, .timeout = 10 };
    run(*state, &d);
    assert_int_equal(d.rc, 0);
    assert_string_equal(d.res.out, "out\nerr\n");
    static char *const missing[] = { "/nonexistent/scancel", NULL };
    run_case m = { .argv = missing, .timeout = 10 };
    run(*state, &m);
    assert_int_equal(m.rc, -ENOENT);
    assert_non_null(strstr(m.res.out, "/nonexistent/scancel"));
}

static void test_run_timeout(void **state)
{
    /* A helper past its timeout is killed, and said to be. */
    static char *const slow[] = { "/bin/sh", "-c", "sleep 30", NULL };
    run_case c = { .argv = slow, .timeout = 0.3 };
    run(*state, &c);
    assert_int_equal(c.rc, -ETIMEDOUT);
    assert_non_null(strstr(c.res.out, "was killed"));
    assert_true(c.took < 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_and_bounds),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_prolog_line),
        cmocka_unit_test(test_job_end),
        cmocka_unit_test_setup_teardown(test_run_output_and_status, co_env_setup, co_env_teardown),
        cmocka_unit_test_setup_teardown(test_run_timeout, co_env_setup, co_env_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
