/* bench_exec: N /bin/true jobs, two at a time, four ways in one command:
 *   - corod: submitted through the socket (libcorod) into a group with parallel 2, then
 *     waited for; jobs/s from the first submit to the last job's end;
 *   - a bare libuv loop: uv_spawn with stdout/stderr pipes read to EOF, two in flight —
 *     the floor for a daemon that spawns and collects output on libuv;
 *   - xargs -P2 (no output capture: a lower bound on process cost);
 *   - task-spooler (tsp -S 2, one `tsp /bin/true` per job, then `tsp -w`), when installed;
 *   - corod through coroctl (one `coroctl add` per job, as a tsp user would queue);
 *   - corod again with --no-cgroups: what each job's own cgroup costs (where the daemon
 *     can make them; else the two are the same daemon's figures twice).
 * Prints medians of --runs runs and the ratios. Nothing passes or fails. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "bench_util.h"
#include "corod/client.h"

extern char **environ;

static void die(const char *what)
{
    fprintf(stderr, "bench_exec: %s\n", what);
    exit(1);
}

/* Run argv, wait, return its exit status; with quiet, stdout and stderr go to /dev/null. */
static int run_cmd(char *const argv[], char *const envp[], int quiet)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (quiet) {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- corod through the socket ---- */

static double run_corod(const char *sock, int n)
{
    corod_client *c;
    if (corod_connect(sock, &c) < 0)
        die("cannot connect to corod");
    if (corod_set_group(c, "bench", 2, 0) < 0)
        die("set_group failed");
    char *argv[] = { "/bin/true", NULL };
    corod_exec ex = { .argv = argv };
    corod_spec spec = { .group = "bench" };
    uint64_t *ids = malloc((size_t)n * sizeof *ids);
    double t0 = bench_now();
    for (int i = 0; i < n; i++)
        if (corod_submit_exec(c, &ex, &spec, &ids[i]) < 0)
            die(corod_error_message(c) ? corod_error_message(c) : "submit failed");
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    if (corod_wait(c, ids, (size_t)n, NULL, -1, &done, &nd, &pending, &np) < 0 || nd != (size_t)n)
        die("wait failed");
    double t = bench_now() - t0;
    for (size_t i = 0; i < nd; i++)
        if (strcmp(done[i]->state, "succeeded"))
            die("a job did not succeed");
    corod_tasks_free(done, nd);
    free(pending);
    free(ids);
    corod_close(c);
    return n / t;
}

static double run_coroctl(const char *coroctl, const char *sock, int n)
{
    char env_sock[4200];
    snprintf(env_sock, sizeof env_sock, "CORO_SOCKET=%s", sock);
    char *envp[] = { env_sock, "PATH=/usr/bin:/bin", NULL };
    char *add[] = { (char *)coroctl, "add", "--group", "bench", "--default-env", "--", "/bin/true", NULL };
    double t0 = bench_now();
    for (int i = 0; i < n; i++)
        if (run_cmd(add, envp, 1) != 0)
            die("coroctl add failed");
    /* Jobs end in id order only roughly: wait for all of them through the socket. */
    corod_client *c;
    if (corod_connect(sock, &c) < 0)
        die("cannot connect to corod");
    corod_task **tasks;
    size_t nt;
    if (corod_list(c, NULL, "bench", 100000, &tasks, &nt) < 0)
        die("list failed");
    uint64_t *ids = malloc((nt ? nt : 1) * sizeof *ids);
    for (size_t i = 0; i < nt; i++)
        ids[i] = tasks[i]->id;
    corod_tasks_free(tasks, nt);
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    if (corod_wait(c, ids, nt, NULL, -1, &done, &nd, &pending, &np) < 0)
        die("wait failed");
    double t = bench_now() - t0;
    corod_tasks_free(done, nd);
    free(pending);
    free(ids);
    corod_close(c);
    return n / t;
}

/* ---- the floor: uv_spawn with pipes, two in flight ---- */

typedef struct floor_job {
    uv_process_t proc;
    uv_pipe_t out, err;
    int open; /* handles not yet closed */
} floor_job;

static int floor_left, floor_running;
static uv_loop_t *floor_loop;
static char floor_buf[65536];

static void floor_start(void);

static void floor_closed(uv_handle_t *h)
{
    floor_job *j = h->data;
    if (--j->open == 0) {
        free(j);
        floor_running--;
        floor_start();
    }
}

static void floor_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h, (void)s;
    b->base = floor_buf;
    b->len = sizeof floor_buf;
}

static void floor_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0)
        uv_close((uv_handle_t *)s, floor_closed);
}

static void floor_exit(uv_process_t *p, int64_t st, int sig)
{
    (void)st, (void)sig;
    uv_close((uv_handle_t *)p, floor_closed);
}

static void floor_start(void)
{
    while (floor_left > 0 && floor_running < 2) {
        floor_job *j = calloc(1, sizeof *j);
        uv_pipe_init(floor_loop, &j->out, 0);
        uv_pipe_init(floor_loop, &j->err, 0);
        j->proc.data = j->out.data = j->err.data = j;
        uv_stdio_container_t io[3] = {
            { .flags = UV_IGNORE },
            { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->out },
            { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->err },
        };
        char *argv[] = { "/bin/true", NULL };
        uv_process_options_t o = { .exit_cb = floor_exit, .file = argv[0], .args = argv, .stdio = io,
                                   .stdio_count = 3, .flags = UV_PROCESS_DETACHED };
        if (uv_spawn(floor_loop, &j->proc, &o) < 0)
            die("uv_spawn failed");
        j->open = 3;
        uv_read_start((uv_stream_t *)&j->out, floor_alloc, floor_read);
        uv_read_start((uv_stream_t *)&j->err, floor_alloc, floor_read);
        floor_left--;
        floor_running++;
    }
}

static double run_floor(int n)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    floor_loop = &loop;
    floor_left = n;
    floor_running = 0;
    double t0 = bench_now();
    floor_start();
    uv_run(&loop, UV_RUN_DEFAULT);
    double t = bench_now() - t0;
    uv_loop_close(&loop);
    return n / t;
}

/* ---- xargs and task-spooler ---- */

static double run_xargs(int n)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "seq %d | xargs -P2 -n1 /bin/true", n);
    char *argv[] = { "sh", "-c", cmd, NULL };
    double t0 = bench_now();
    if (run_cmd(argv, NULL, 1) != 0)
        die("xargs failed");
    return n / (bench_now() - t0);
}

static double run_tsp(const char *dir, int n)
{
    char env_sock[4200], env_tmp[4200];
    snprintf(env_sock, sizeof env_sock, "TS_SOCKET=%s/tsp.sock", dir);
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", dir);
    char *envp[] = { env_sock, env_tmp, "TS_MAXFINISHED=100000", "PATH=/usr/bin:/bin", NULL };
    char *kill_srv[] = { "tsp", "-K", NULL }, *slots[] = { "tsp", "-S", "2", NULL };
    char *add[] = { "tsp", "/bin/true", NULL }, *wait_all[] = { "tsp", "-w", NULL };
    run_cmd(kill_srv, envp, 1);
    if (run_cmd(slots, envp, 1) != 0)
        die("tsp -S 2 failed");
    double t0 = bench_now();
    for (int i = 0; i < n; i++)
        if (run_cmd(add, envp, 1) != 0)
            die("tsp failed");
    /* -w waits for the last job added; with 2 slots the one before may still run. */
    run_cmd(wait_all, envp, 1);
    char *wait_prev[] = { "tsp", "-w", NULL, NULL };
    char prev[32];
    snprintf(prev, sizeof prev, "%d", n - 2);
    wait_prev[2] = prev;
    run_cmd(wait_prev, envp, 1);
    double t = bench_now() - t0;
    run_cmd(kill_srv, envp, 1);
    return n / t;
}

static int have(const char *prog)
{
    char *argv[] = { "sh", "-c", NULL, NULL };
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null", prog);
    argv[2] = cmd;
    return run_cmd(argv, NULL, 1) == 0;
}

/* A fresh daemon with retention for every job of the run; its pid once it answers. */
static pid_t corod_start(const char *corod, const char *sock, const char *state, int keep, bool no_cgroups)
{
    char retain[32];
    snprintf(retain, sizeof retain, "%d", keep);
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 2);
        execl(corod, corod, "--socket", sock, "--state-dir", state, "--retain", retain,
              no_cgroups ? "--no-cgroups" : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    corod_client *probe = NULL;
    for (int i = 0; i < 500 && corod_connect(sock, &probe) < 0; i++)
        usleep(10000);
    if (!probe)
        die("corod did not start");
    corod_close(probe);
    return pid;
}

static void corod_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    const char *corod = NULL, *coroctl = NULL;
    int n = 2000, runs = 3, ctl_n = 300;
    bench_parse_common(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--corod") && i + 1 < argc)
            corod = argv[++i];
        else if (!strcmp(argv[i], "--coroctl") && i + 1 < argc)
            coroctl = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cli-n") && i + 1 < argc)
            ctl_n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json")) {
            fprintf(stderr, "usage: bench_exec --corod PATH [--coroctl PATH] [--n N] [--cli-n N] [--runs R] [--json]\n");
            return 2;
        }
    }
    if (!corod || n < 2 || runs < 1 || runs > 50 || ctl_n < 2)
        die("usage: bench_exec --corod PATH [--coroctl PATH] [--n N (>= 2)] [--cli-n N] [--runs R] [--json]");
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/bench-exec-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp failed");
    char sock[4200], state[4200];
    snprintf(sock, sizeof sock, "%s/corod.sock", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    int tsp = have("tsp");
    printf("# exec: %d /bin/true jobs, 2 at a time, median of %d runs (coroctl and tsp: %d jobs, one CLI call each)\n",
           n, runs, ctl_n);

    char sock2[4200], state2[4200];
    snprintf(sock2, sizeof sock2, "%s/corod2.sock", dir);
    snprintf(state2, sizeof state2, "%s/state2", dir);
    double c[50], f[50], x[50], t[50], cl[50], nc[50];
    for (int r = 0; r < runs; r++) {
        pid_t pid = corod_start(corod, sock, state, n + ctl_n + 16, false);
        /* Interleaved, so a drift of the shared host moves all of them alike. */
        c[r] = run_corod(sock, n);
        f[r] = run_floor(n);
        x[r] = run_xargs(n);
        cl[r] = coroctl ? run_coroctl(coroctl, sock, ctl_n) : 0;
        t[r] = tsp ? run_tsp(dir, ctl_n) : 0;
        corod_stop(pid);
        pid = corod_start(corod, sock2, state2, n + 16, true);
        nc[r] = run_corod(sock2, n);
        corod_stop(pid);
    }
    double mc = bench_median(c, runs), mf = bench_median(f, runs), mx = bench_median(x, runs);
    bench_report("exec.corod_socket_jobs_per_s", mc, "jobs/s (2-slot group, output captured to files)");
    bench_report("exec.uv_spawn_floor_jobs_per_s", mf, "jobs/s (uv_spawn + stdout/stderr pipes, 2 in flight)");
    bench_report("exec.xargs_P2_jobs_per_s", mx, "jobs/s (no output capture)");
    bench_report("exec.corod_over_floor", mc / mf, "x (target >= 0.9)");
    double mnc = bench_median(nc, runs);
    bench_report("exec.corod_no_cgroups_jobs_per_s", mnc, "jobs/s (the same, --no-cgroups)");
    bench_report("exec.cgroups_cost", 1 - mc / mnc, "of the throughput, a cgroup per job (target <= 0.15)");
    if (coroctl)
        bench_report("exec.corod_coroctl_add_jobs_per_s", bench_median(cl, runs), "jobs/s (one coroctl add per job)");
    if (tsp) {
        double mt = bench_median(t, runs);
        bench_report("exec.tsp_jobs_per_s", mt, "jobs/s (one tsp call per job)");
        bench_report("exec.corod_over_tsp", mc / mt, "x (target >= 2.5)");
        if (coroctl)
            bench_report("exec.coroctl_over_tsp", bench_median(cl, runs) / mt, "x (CLI against CLI)");
    } else {
        printf("# tsp not installed (Debian package task-spooler): no task-spooler figures\n");
    }
    char rm[4300];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    char *rmv[] = { "sh", "-c", rm, NULL };
    run_cmd(rmv, NULL, 1);
    return 0;
}
