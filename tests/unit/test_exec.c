/* test_exec: daemon/exec on its own — ex_spawn (session, stdio, environment, PATH search,
 * directory, credentials, failures reported), ex_pump (pipe to file, exact bytes, the cap
 * and its marker, appending, stdin) and ex_ident (lookups, cache, minimal environment). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "ex_ident.h"
#include "ex_pump.h"
#include "ex_spawn.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test-exec-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ex_ident_cache_clear();
    return system(cmd) == 0 ? 0 : -1;
}

/* Spawn argv with stdout into a pipe; return its exit status and what it printed. */
static int spawn_capture(ex_spawn_req *rq, char *out, size_t outlen, char *err, size_t errlen)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    rq->stdout_fd = p[1];
    if (!rq->stderr_fd)
        rq->stderr_fd = p[1];
    ex_spawned sp;
    int rc = ex_spawn(rq, &sp, err, errlen);
    close(p[1]);
    if (rc < 0) {
        close(p[0]);
        return rc;
    }
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(p[0]);
    int status;
    struct rusage ru;
    while ((rc = ex_reap(sp.pid, &status, &ru)) == -EAGAIN)
        usleep(1000);
    assert_int_equal(rc, 0);
    if (sp.pidfd >= 0)
        close(sp.pidfd);
    return status;
}

static void test_spawn_session_env_cwd(void **state)
{
    (void)state;
    char *argv[] = { "sh", "-c", "echo $FOO; pwd; cut -d' ' -f5,6 /proc/$$/stat; echo $$", NULL };
    char *envp[] = { "FOO=bar", "PATH=/usr/bin:/bin", NULL };
    ex_spawn_req rq = { .argv = argv, .envp = envp, .cwd = tmpdir, .stdin_fd = -1 };
    char out[4096], err[256];
    int st = spawn_capture(&rq, out, sizeof out, err, sizeof err);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char foo[64], cwd[PATH_MAX];
    long sid, pgid, pid;
    assert_int_equal(sscanf(out, "%63s %4095s %ld %ld %ld", foo, cwd, &sid, &pgid, &pid), 5);
    assert_string_equal(foo, "bar");
    assert_string_equal(cwd, tmpdir);
    /* Its own session and process group, led by itself. */
    assert_int_equal(sid, pid);
    assert_int_equal(pgid, pid);
}

static void test_spawn_signals_reset(void **state)
{
    (void)state;
    /* The daemon ignores SIGPIPE and its pool threads block everything: the job must not. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    char *argv[] = { "sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status", NULL };
    char *envp[] = { "PATH=/usr/bin:/bin", NULL };
    ex_spawn_req rq = { .argv = argv, .envp = envp, .stdin_fd = -1 };
    char out[4096], err[256];
    int st = spawn_capture(&rq, out, sizeof out, err, sizeof err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_DFL);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(out, "SigBlk:\t0000000000000000"));
    assert_non_null(strstr(out, "SigIgn:\t0000000000000000"));
}

static void test_spawn_path_search_and_failures(void **state)
{
    (void)state;
    char out[4096], err[256];
    /* The job's PATH, not ours: a directory of our own with a script in it. */
    char dir[128], script[160];
    snprintf(dir, sizeof dir, "%s/bin", tmpdir);
    mkdir(dir, 0755);
    snprintf(script, sizeof script, "%s/hello-corod", dir);
    FILE *f = fopen(script, "w");
    fputs("#!/bin/sh\necho found\n", f);
    fclose(f);
    chmod(script, 0755);
    char path[200];
    snprintf(path, sizeof path, "PATH=/nonexistent:%s", dir);
    char *envp[] = { path, NULL };
    char *argv[] = { "hello-corod", NULL };
    ex_spawn_req rq = { .argv = argv, .envp = envp, .stdin_fd = -1 };
    int st = spawn_capture(&rq, out, sizeof out, err, sizeof err);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_string_equal(out, "found\n");

    char *missing[] = { "no-such-program-corod", NULL };
    ex_spawn_req r2 = { .argv = missing, .envp = envp, .stdin_fd = -1 };
    assert_int_equal(spawn_capture(&r2, out, sizeof out, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "not found in PATH"));

    /* Found but not executable: EACCES, as execvp says. */
    chmod(script, 0644);
    ex_spawn_req r3 = { .argv = argv, .envp = envp, .stdin_fd = -1 };
    assert_int_equal(spawn_capture(&r3, out, sizeof out, err, sizeof err), -EACCES);

    char *t[] = { "/bin/true", NULL };
    ex_spawn_req r4 = { .argv = t, .envp = envp, .cwd = "/nonexistent-corod", .stdin_fd = -1 };
    assert_int_equal(spawn_capture(&r4, out, sizeof out, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-corod"));
    /* Nothing is left behind: no child to reap. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_spawn_as_nobody(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    ex_ident *id;
    assert_int_equal(ex_ident_get(pw->pw_uid, &id), 0);
    assert_true(id->known);
    assert_int_equal(id->gid, pw->pw_gid);
    char **env = ex_ident_min_env(id);
    char *argv[] = { "sh", "-c", "id -u; id -g; id -G; echo $USER $HOME", NULL };
    ex_spawn_req rq = { .argv = argv, .envp = env, .cwd = "/", .stdin_fd = -1, .set_ids = true,
                        .uid = id->uid, .gid = id->gid, .groups = id->groups, .ngroups = id->ngroups };
    char out[4096], err[256], want[512];
    int st = spawn_capture(&rq, out, sizeof out, err, sizeof err);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int o = snprintf(want, sizeof want, "%u\n%u\n", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
    assert_memory_equal(out, want, (size_t)o);
    snprintf(want, sizeof want, "nobody %s\n", pw->pw_dir);
    assert_non_null(strstr(out, want));
    free(env);
    ex_ident_put(id);
}

static void test_ident_unknown_and_cache(void **state)
{
    (void)state;
    ex_ident *a, *b;
    assert_int_equal(ex_ident_get(4000000000u, &a), 0);
    assert_false(a->known);
    assert_string_equal(a->name, "4000000000");
    assert_string_equal(a->home, "/");
    assert_ptr_equal(ex_ident_cached(4000000000u), a); /* the same entry, from the cache */
    ex_ident_put(a);
    assert_int_equal(ex_ident_get(0, &b), 0);
    char **env = ex_ident_min_env(b);
    assert_string_equal(env[0], "PATH=" EX_DEFAULT_ROOT_PATH);
    assert_string_equal(env[2], "USER=root");
    assert_null(env[5]);
    free(env);
    ex_ident_put(b);
    ex_ident_put(a);
    ex_ident_cache_clear();
    assert_null(ex_ident_cached(0));
    /* EX_IDENT_CACHE entries at most: one more evicts the oldest. */
    for (unsigned i = 0; i <= EX_IDENT_CACHE; i++) {
        assert_int_equal(ex_ident_get(3000000000u + i, &a), 0);
        ex_ident_put(a);
    }
    assert_null(ex_ident_cached(3000000000u));
    assert_non_null(a = ex_ident_cached(3000000000u + EX_IDENT_CACHE));
    ex_ident_put(a);
    ex_ident_cache_clear();
}

/* ---- pumps ---- */

typedef struct pump_case {
    int done;
} pump_case;

static void pump_done(ex_pump *p, void *arg)
{
    (void)p;
    ((pump_case *)arg)->done++;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* Write `n` patterned bytes into a pipe from a child while a pump copies them. */
static void pump_run_opts(const ex_out_opts *o, size_t n, ex_pump **out_pump, pump_case *pc)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char buf[4096];
        for (size_t off = 0; off < n;) {
            size_t k = n - off < sizeof buf ? n - off : sizeof buf;
            for (size_t i = 0; i < k; i++)
                buf[i] = (char)((off + i) * 7);
            if (write(p[1], buf, k) != (ssize_t)k)
                _exit(1);
            off += k;
        }
        _exit(0);
    }
    close(p[1]);
    assert_int_equal(ex_pump_output(&loop, p[0], o, pump_done, pc, out_pump), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(pc->done, 1);
    waitpid(pid, NULL, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void pump_run(const char *path, size_t n, uint64_t limit, ex_pump **out_pump, pump_case *pc)
{
    pump_run_opts(&(ex_out_opts){ .path = path, .limit = limit }, n, out_pump, pc);
}

static void test_pump_copies_exactly_and_appends(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/out", tmpdir);
    size_t n = 3 * 1024 * 1024 + 123; /* many buffers' worth, not a multiple of one */
    pump_case pc = { 0 };
    ex_pump *p;
    pump_run(path, n, 0, &p, &pc);
    assert_int_equal(ex_pump_bytes(p), n);
    assert_false(ex_pump_truncated(p));
    assert_int_equal(ex_pump_error(p), 0);
    ex_pump_free(p);
    size_t len;
    char *b = slurp(path, &len);
    assert_int_equal(len, n);
    for (size_t i = 0; i < n; i++)
        if (b[i] != (char)(i * 7))
            fail_msg("byte %zu differs", i);
    free(b);
    /* A second attempt appends. */
    pc.done = 0;
    pump_run(path, 10, 0, &p, &pc);
    ex_pump_free(p);
    b = slurp(path, &len);
    assert_int_equal(len, n + 10);
    free(b);
}

static void test_pump_cap_and_marker(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/capped", tmpdir);
    pump_case pc = { 0 };
    ex_pump *p;
    pump_run(path, 1000000, 5000, &p, &pc);
    assert_int_equal(ex_pump_bytes(p), 1000000); /* all read: the writer never blocked */
    assert_true(ex_pump_truncated(p));
    ex_pump_free(p);
    size_t len;
    char *b = slurp(path, &len);
    char marker[128];
    int m = snprintf(marker, sizeof marker, EX_PUMP_MARKER, 5000ull);
    assert_int_equal(len, 5000 + (size_t)m);
    assert_memory_equal(b + 5000, marker, (size_t)m);
    free(b);
    /* Full already: a later attempt adds nothing. */
    pc.done = 0;
    pump_run(path, 100, 5000, &p, &pc);
    assert_true(ex_pump_truncated(p));
    ex_pump_free(p);
    b = slurp(path, &len);
    assert_int_equal(len, 5000 + (size_t)m);
    free(b);
}

/* Frees the first record's bytes when asked for room, as the server's eviction does. */
static void reclaim_first(ex_disk *d, uint64_t need, void *arg)
{
    (void)d, (void)need;
    ex_disk_forget(arg);
}

/* The owner's share of the disk: what passes it is discarded after a marker; asking for
 * room (the server evicting old records) makes room. */
static void test_pump_disk_share(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/shared1", tmpdir);
    ex_disk *d = ex_disk_new(10000);
    ex_disk_use *u1 = ex_disk_use_new(d), *u2 = ex_disk_use_new(d);
    pump_case pc = { 0 };
    ex_pump *p;
    pump_run_opts(&(ex_out_opts){ .path = path, .disk = u1, .uid = 77 }, 200000, &p, &pc);
    assert_true(ex_pump_truncated(p));
    assert_int_equal(ex_pump_bytes(p), 200000);
    ex_pump_free(p);
    size_t len;
    char *b = slurp(path, &len);
    char marker[160];
    int m = snprintf(marker, sizeof marker, EX_PUMP_SHARE_MARKER, 77u, 10000ull);
    assert_int_equal(len, 10000 + (size_t)m);
    assert_memory_equal(b + 10000, marker, (size_t)m);
    free(b);
    assert_int_equal(d->used, len);
    assert_int_equal(u1->bytes, len);
    /* The share is used up; a second record's job gets room once the first is forgotten. */
    d->reclaim = reclaim_first;
    d->arg = u1;
    snprintf(path, sizeof path, "%s/shared2", tmpdir);
    pc.done = 0;
    pump_run_opts(&(ex_out_opts){ .path = path, .disk = u2 }, 6000, &p, &pc);
    assert_false(ex_pump_truncated(p));
    ex_pump_free(p);
    assert_int_equal(d->used, 6000);
    assert_int_equal(u1->bytes, 0);
    ex_disk_use_unref(u1);
    ex_disk_use_unref(u2);
    ex_disk_unref(d);
}

/* A root daemon gives each output file to the job's owner: their disk quota counts it. */
static void test_pump_gives_the_file_to_the_owner(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char path[128];
    snprintf(path, sizeof path, "%s/owned", tmpdir);
    pump_case pc = { 0 };
    ex_pump *p;
    pump_run_opts(&(ex_out_opts){ .path = path, .chown = true, .uid = 65534, .gid = 65534 }, 100, &p, &pc);
    ex_pump_free(p);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_gid, 65534);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_pump_silent_job_makes_no_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/silent", tmpdir);
    pump_case pc = { 0 };
    ex_pump *p;
    pump_run(path, 0, 0, &p, &pc);
    ex_pump_free(p);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_pump_input(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    size_t n = 1 << 20;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 13);
    char *argv[] = { "cat", NULL };
    char *envp[] = { "PATH=/usr/bin:/bin", NULL };
    ex_spawn_req rq = { .argv = argv, .envp = envp, .stdin_fd = in[0], .stdout_fd = out[1], .stderr_fd = 2 };
    ex_spawned sp;
    char err[256];
    assert_int_equal(ex_spawn(&rq, &sp, err, sizeof err), 0);
    close(in[0]);
    close(out[1]);
    char path[128];
    snprintf(path, sizeof path, "%s/echoed", tmpdir);
    pump_case pi = { 0 }, po = { 0 };
    ex_pump *pin, *pout;
    assert_int_equal(ex_pump_input(&loop, in[1], data, n, pump_done, &pi, &pin), 0);
    assert_int_equal(ex_pump_output(&loop, out[0], &(ex_out_opts){ .path = path }, pump_done, &po, &pout), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(pi.done + po.done, 2);
    assert_int_equal(ex_pump_bytes(pin), n);
    int st;
    struct rusage ru;
    while (ex_reap(sp.pid, &st, &ru) == -EAGAIN)
        usleep(1000);
    if (sp.pidfd >= 0)
        close(sp.pidfd);
    size_t len;
    char *b = slurp(path, &len);
    assert_int_equal(len, n);
    assert_memory_equal(b, data, n);
    free(b);
    free(data);
    ex_pump_free(pin);
    ex_pump_free(pout);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_session_env_cwd),
        cmocka_unit_test(test_spawn_signals_reset),
        cmocka_unit_test(test_spawn_path_search_and_failures),
        cmocka_unit_test(test_spawn_as_nobody),
        cmocka_unit_test(test_ident_unknown_and_cache),
        cmocka_unit_test(test_pump_copies_exactly_and_appends),
        cmocka_unit_test(test_pump_cap_and_marker),
        cmocka_unit_test(test_pump_disk_share),
        cmocka_unit_test(test_pump_gives_the_file_to_the_owner),
        cmocka_unit_test(test_pump_silent_job_makes_no_file),
        cmocka_unit_test(test_pump_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
