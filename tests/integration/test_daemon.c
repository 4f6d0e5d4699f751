/* test_daemon: a real corod, driven through libcorod — every method, every error code
 * the daemon can be made to send, notifications for tasks already done, cancellation
 * through a gather with a shielded member, `after` chains, delays and timeouts, the
 * ownership rule (a second uid, `nobody`), retention, the connection limit, shutdown
 * answering waiters, and done-callbacks on a libuv loop. */
#include <math.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <uv.h>

#include "corod/uv.h"
#include "daemon_harness.h"


static corod_task *wait1(corod_client *c, uint64_t id)
{
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    assert_int_equal(corod_wait(c, &id, 1, NULL, 30, &done, &nd, &pending, &np), 0);
    assert_int_equal(nd, 1);
    assert_int_equal(np, 0);
    corod_task *t = done[0];
    free(done);
    free(pending);
    return t;
}

static void test_hello_submit_wait_get_list(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    assert_non_null(c);
    uint32_t proto, pid;
    assert_int_equal(corod_hello(c, "test", &proto, &pid), 0);
    assert_int_equal(proto, 1);
    assert_int_equal(pid, (uint32_t)shared.pid);

    const char result[] = "\x92\x01\xa1z"; /* [1, "z"] */
    uint64_t id;
    assert_int_equal(corod_submit_sleep(c, 0.05, result, 4, &(corod_spec){ .name = "nap", .group = "it" }, &id), 0);
    corod_task *t = wait1(c, id);
    assert_string_equal(t->state, "succeeded");
    assert_string_equal(t->kind, "sleep");
    assert_string_equal(t->name, "nap");
    assert_string_equal(t->group, "it");
    assert_int_equal(t->owner_uid, getuid());
    assert_int_equal(t->attempts, 1);
    assert_int_equal(t->result_len, 4);
    assert_memory_equal(t->result, result, 4);
    assert_true(t->finished_at - t->started_at >= 0.045);
    corod_task_free(t);

    assert_int_equal(corod_get(c, id, &t), 0);
    assert_string_equal(t->state, "succeeded");
    corod_task_free(t);

    corod_task **tasks;
    size_t n;
    assert_int_equal(corod_list(c, "succeeded", "it", 0, &tasks, &n), 0);
    assert_true(n >= 1);
    assert_int_equal(tasks[n - 1]->id, id);
    corod_tasks_free(tasks, n);
    /* More than one page may hold: the library asks in pages the daemon takes. */
    assert_int_equal(corod_list(c, "succeeded", "it", UINT32_MAX, &tasks, &n), 0);
    assert_true(n >= 1);
    assert_int_equal(tasks[n - 1]->id, id);
    corod_tasks_free(tasks, n);
    assert_int_equal(corod_list(c, "bogus", NULL, 0, &tasks, &n), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "bad_request");

    /* groups: the default group is sized to the online CPUs; "it" was made on first use. */
    void *res;
    size_t len;
    assert_int_equal(corod_call(c, "groups", NULL, 0, &res, &len), 0);
    assert_true(len > 0);
    free(res);
    assert_int_equal(corod_set_group(c, "it", 3, 1), 0);
    corod_close(c);
}

static void test_error_codes(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    uint64_t id;
    /* bad_request, naming the field */
    assert_int_equal(corod_submit_sleep(c, NAN, NULL, 0, NULL, &id), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "bad_request");
    assert_non_null(strstr(corod_error_message(c), "args.seconds"));
    assert_int_equal(corod_submit_sleep(c, -1, NULL, 0, NULL, &id), COROD_EREMOTE);
    assert_non_null(strstr(corod_error_message(c), "args.seconds"));
    assert_int_equal(corod_submit_sleep(c, 1, NULL, 0, &(corod_spec){ .group = "no spaces" }, &id), COROD_EREMOTE);
    assert_non_null(strstr(corod_error_message(c), "group"));
    assert_int_equal(corod_submit(c, &(corod_spec){ .kind = "teleport" }, &id), COROD_EREMOTE);
    assert_non_null(strstr(corod_error_message(c), "unknown kind"));
    assert_int_equal(corod_submit(c, &(corod_spec){ .kind = "exec" }, &id), COROD_EREMOTE);
    assert_non_null(strstr(corod_error_message(c), "exec"));
    /* unknown_method */
    assert_int_equal(corod_call(c, "frobnicate", NULL, 0, NULL, NULL), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "unknown_method");
    /* not_found, also through gather members and dependencies */
    corod_task *t;
    assert_int_equal(corod_get(c, 987654, &t), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "not_found");
    uint64_t missing = 987654;
    assert_int_equal(corod_submit_gather(c, &missing, 1, false, NULL, &id), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "not_found");
    assert_int_equal(corod_submit_sleep(c, 0, NULL, 0, &(corod_spec){ .after = &missing, .n_after = 1 }, &id),
                     COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "not_found");
    assert_int_equal(corod_unsubscribe(c, 77), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "not_found");
    /* invalid_state: only exec tasks have output */
    assert_int_equal(corod_submit_sleep(c, 0, NULL, 0, NULL, &id), 0);
    const char op[] = "\x81\xa2id"; /* {"id": <id>} */
    char params[16];
    memcpy(params, op, 4);
    params[4] = (char)0xcf;
    for (int i = 0; i < 8; i++)
        params[5 + i] = (char)(id >> (56 - 8 * i));
    assert_int_equal(corod_call(c, "output", params, 13, NULL, NULL), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "invalid_state");
    /* quota_exceeded: subscriptions per connection */
    uint32_t sub;
    int rc = 0;
    for (unsigned i = 0; i <= 1024 && rc == 0; i++)
        rc = corod_subscribe(c, &id, 1, false, &sub);
    assert_int_equal(rc, COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "quota_exceeded");
    corod_close(c);

    /* too_large: the connection is told, then closed; the daemon serves the next one. */
    c = h_connect(&shared);
    size_t big = 17u * 1024 * 1024;
    char *blob = malloc(big);
    blob[0] = (char)0x81, blob[1] = (char)0xa1, blob[2] = 'x', blob[3] = (char)0xc6;
    uint32_t bl = (uint32_t)(big - 8);
    blob[4] = (char)(bl >> 24), blob[5] = (char)(bl >> 16), blob[6] = (char)(bl >> 8), blob[7] = (char)bl;
    memset(blob + 8, 'a', big - 8);
    rc = corod_call(c, "hello", blob, big, NULL, NULL);
    free(blob);
    assert_true(rc == COROD_EREMOTE || rc == -ECONNRESET || rc == -EPIPE);
    if (rc == COROD_EREMOTE)
        assert_string_equal(corod_error_code(c), "too_large");
    corod_close(c);
    c = h_connect(&shared);
    assert_int_equal(corod_hello(c, NULL, NULL, NULL), 0);
    corod_close(c);
}

typedef struct seen {
    uint64_t ids[16];
    uint32_t subs[16];
    int n;
} seen;

static void record_done(corod_client *c, uint32_t sub, const corod_task *t, void *arg)
{
    (void)c;
    seen *s = arg;
    s->subs[s->n] = sub;
    s->ids[s->n++] = t->id;
}

static void dispatch_until(corod_client *c, seen *s, int n, double secs)
{
    double end = h_now() + secs;
    while (s->n < n && h_now() < end) {
        usleep(5000);
        assert_true(corod_dispatch(c) >= 0);
    }
}

static void test_subscribe_exactly_once(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    seen s = { .n = 0 };
    corod_on_done(c, record_done, &s);
    uint64_t done_id, later;
    assert_int_equal(corod_submit_sleep(c, 0, NULL, 0, NULL, &done_id), 0);
    corod_task_free(wait1(c, done_id));
    assert_int_equal(corod_submit_sleep(c, 0.05, NULL, 0, NULL, &later), 0);
    uint32_t sub1, sub2;
    /* Already done at subscribe time: notified right after the response. */
    assert_int_equal(corod_subscribe(c, &done_id, 1, false, &sub1), 0);
    assert_int_equal(corod_subscribe(c, &later, 1, false, &sub2), 0);
    dispatch_until(c, &s, 2, 5);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ids[0], done_id);
    assert_int_equal(s.subs[0], sub1);
    assert_int_equal(s.ids[1], later);
    assert_int_equal(s.subs[1], sub2);
    usleep(100000);
    assert_int_equal(corod_dispatch(c), 0); /* exactly once: nothing more */
    assert_int_equal(corod_unsubscribe(c, sub1), 0);
    corod_close(c);
}

static void test_cancel_through_gather_spares_shielded(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    uint64_t a, b, g;
    assert_int_equal(corod_submit_sleep(c, 30, NULL, 0, NULL, &a), 0);
    assert_int_equal(corod_submit_sleep(c, 0.3, NULL, 0, &(corod_spec){ .shield = true }, &b), 0);
    uint64_t m[2] = { a, b };
    assert_int_equal(corod_submit_gather(c, m, 2, false, NULL, &g), 0);
    bool cancelled;
    assert_int_equal(corod_cancel(c, g, "stop the batch", &cancelled), 0);
    assert_true(cancelled);
    corod_task *t = wait1(c, g);
    assert_string_equal(t->state, "cancelled");
    assert_string_equal(t->error_code, "cancelled");
    corod_task_free(t);
    assert_int_equal(corod_get(c, a, &t), 0);
    assert_string_equal(t->state, "cancelled");
    corod_task_free(t);
    assert_int_equal(corod_get(c, b, &t), 0);
    assert_string_equal(t->state, "running"); /* shielded: untouched */
    corod_task_free(t);
    t = wait1(c, b);
    assert_string_equal(t->state, "succeeded");
    corod_task_free(t);
    /* A direct cancel still reaches a shielded task. */
    assert_int_equal(corod_submit_sleep(c, 30, NULL, 0, &(corod_spec){ .shield = true }, &b), 0);
    assert_int_equal(corod_cancel(c, b, NULL, &cancelled), 0);
    assert_true(cancelled);
    assert_int_equal(corod_cancel(c, b, NULL, &cancelled), 0);
    assert_false(cancelled); /* already terminal */
    corod_close(c);
}

static void test_after_chains_delay_timeout(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    uint64_t a, b, d;
    assert_int_equal(corod_submit_sleep(c, 0.05, NULL, 0, NULL, &a), 0);
    assert_int_equal(corod_submit_sleep(c, 0.05, NULL, 0, &(corod_spec){ .after = &a, .n_after = 1 }, &b), 0);
    assert_int_equal(corod_submit_sleep(c, 0.05, NULL, 0, &(corod_spec){ .after = &b, .n_after = 1 }, &d), 0);
    corod_task *ta = wait1(c, a), *tb = wait1(c, b), *td = wait1(c, d);
    assert_string_equal(td->state, "succeeded");
    assert_true(tb->started_at >= ta->finished_at);
    assert_true(td->started_at >= tb->finished_at);
    corod_task_free(ta), corod_task_free(tb), corod_task_free(td);

    /* A dependency that fails ends the dependant failed, dependency_failed. */
    uint64_t x, y;
    assert_int_equal(corod_submit_sleep(c, 10, NULL, 0, &(corod_spec){ .timeout = 0.05 }, &x), 0);
    assert_int_equal(corod_submit_sleep(c, 0, NULL, 0, &(corod_spec){ .after = &x, .n_after = 1 }, &y), 0);
    corod_task *tx = wait1(c, x), *ty = wait1(c, y);
    assert_string_equal(tx->state, "failed");
    assert_string_equal(tx->error_code, "timeout");
    assert_string_equal(ty->state, "failed");
    assert_string_equal(ty->error_code, "dependency_failed");
    assert_true(isnan(ty->started_at)); /* never ran */
    corod_task_free(tx), corod_task_free(ty);

    /* delay: started no earlier than asked */
    uint64_t z;
    assert_int_equal(corod_submit_sleep(c, 0, NULL, 0, &(corod_spec){ .delay = 0.2 }, &z), 0);
    corod_task *tz = wait1(c, z);
    assert_true(tz->started_at - tz->created_at >= 0.19);
    corod_task_free(tz);

    /* wait modes and timeout */
    uint64_t slow, fast;
    assert_int_equal(corod_submit_sleep(c, 5, NULL, 0, NULL, &slow), 0);
    assert_int_equal(corod_submit_sleep(c, 0.02, NULL, 0, NULL, &fast), 0);
    uint64_t both[2] = { slow, fast };
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    assert_int_equal(corod_wait(c, both, 2, "first_completed", 10, &done, &nd, &pending, &np), 0);
    assert_int_equal(nd, 1);
    assert_int_equal(done[0]->id, fast);
    assert_int_equal(np, 1);
    assert_int_equal(pending[0], slow);
    corod_tasks_free(done, nd);
    free(pending);
    double t0 = h_now();
    assert_int_equal(corod_wait(c, both, 2, NULL, 0.1, &done, &nd, &pending, &np), 0);
    assert_true(h_now() - t0 >= 0.09);
    assert_int_equal(np, 1);
    corod_tasks_free(done, nd);
    free(pending);
    corod_cancel(c, slow, NULL, NULL);
    corod_close(c);
}

/* ---- ownership: a second uid, as nobody ---- */

static void test_ownership(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    corod_client *root = h_connect(&shared);
    uint64_t mine;
    assert_int_equal(corod_submit_sleep(root, 30, NULL, 0, NULL, &mine), 0);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        corod_close(root); /* the parent's: this process neither uses nor leaks it */
        if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(10);
        corod_client *c;
        uint64_t theirs = 0;
        corod_task *t;
        bool cancelled;
        int fails = 0;
        if (corod_connect(shared.sock, &c) < 0)
            _exit(11);
        fails += corod_get(c, mine, &t) != COROD_EREMOTE || strcmp(corod_error_code(c), "not_found");
        fails += corod_cancel(c, mine, NULL, &cancelled) != COROD_EREMOTE;
        fails += corod_subscribe(c, &mine, 1, false, &(uint32_t){ 0 }) != COROD_EREMOTE;
        fails += corod_submit_gather(c, &mine, 1, false, NULL, &theirs) != COROD_EREMOTE;
        fails += corod_set_group(c, "default", 1, -1) != COROD_EREMOTE ||
                 strcmp(corod_error_code(c), "permission_denied");
        fails += corod_submit_sleep(c, 30, NULL, 0, NULL, &theirs) != 0;
        corod_task **tasks;
        size_t n;
        fails += corod_list(c, NULL, NULL, 0, &tasks, &n) != 0;
        for (size_t i = 0; i < n; i++)
            fails += tasks[i]->owner_uid != pw->pw_uid; /* sees only its own */
        corod_tasks_free(tasks, n);
        if (write(pfd[1], &theirs, sizeof theirs) != sizeof theirs)
            _exit(12);
        corod_close(c);
        _exit(fails ? 20 + fails : 0);
    }
    close(pfd[1]);
    uint64_t theirs = 0;
    assert_int_equal(read(pfd[0], &theirs, sizeof theirs), sizeof theirs);
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* Root sees everything, and the task is nobody's. */
    corod_task *t;
    assert_int_equal(corod_get(root, theirs, &t), 0);
    assert_int_equal(t->owner_uid, pw->pw_uid);
    corod_task_free(t);
    assert_int_equal(corod_cancel(root, theirs, NULL, NULL), 0);
    assert_int_equal(corod_cancel(root, mine, NULL, NULL), 0);
    corod_close(root);
}

/* ---- daemons of their own ---- */

static void test_retention_and_connection_limit(void **state)
{
    (void)state;
    daemon_h d;
    const char *extra[] = { "--retain", "2", "--max-connections", "2", NULL };
    assert_int_equal(daemon_start(&d, extra), 0);
    corod_client *c = h_connect(&d);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(corod_submit_sleep(c, 0, NULL, 0, NULL, &ids[i]), 0);
        corod_task_free(wait1(c, ids[i]));
    }
    corod_task *t;
    /* Only 2 are kept in memory; the first is read back from the store, as it ended. */
    assert_int_equal(corod_get(c, ids[0], &t), 0);
    assert_int_equal(t->id, ids[0]);
    assert_string_equal(t->state, "succeeded");
    corod_task_free(t);
    assert_int_equal(corod_get(c, ids[2], &t), 0);
    corod_task_free(t);
    assert_int_equal(corod_get(c, ids[2] + 1000, &t), COROD_EREMOTE); /* never given */
    assert_string_equal(corod_error_code(c), "not_found");
    /* Past --max-connections the daemon's own uid (this test's, or root) is still served:
     * nobody else's connections may lock it out (test_hostile.py crosses the bound as
     * another user). */
    corod_client *c2 = h_connect(&d), *c3 = h_connect(&d);
    assert_int_equal(corod_hello(c2, NULL, NULL, NULL), 0);
    assert_non_null(c3);
    assert_int_equal(corod_hello(c3, NULL, NULL, NULL), 0);
    corod_close(c3);
    corod_close(c2);
    corod_close(c);
    assert_int_equal(daemon_stop(&d), 0);
}

static void test_shutdown_answers_waiters(void **state)
{
    (void)state;
    daemon_h d;
    assert_int_equal(daemon_start(&d, NULL), 0);
    corod_client *c = h_connect(&d);
    uint64_t id;
    assert_int_equal(corod_submit_sleep(c, 60, NULL, 0, NULL, &id), 0);
    pid_t killer = fork();
    if (killer == 0) {
        corod_close(c); /* the parent's connection stays open: only this copy goes */
        usleep(200000);
        kill(d.pid, SIGTERM);
        _exit(0);
    }
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    int rc = corod_wait(c, &id, 1, NULL, -1, &done, &nd, &pending, &np);
    assert_int_equal(rc, COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "shutting_down");
    waitpid(killer, NULL, 0);
    corod_close(c);
    int st;
    assert_int_equal(waitpid(d.pid, &st, 0), d.pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(access(d.sock, F_OK), -1); /* the socket file is gone */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d.dir);
    assert_int_equal(system(cmd), 0);
}

static int socket_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void test_socket_modes(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    /* A root daemon: every local user may connect (access is decided per request). */
    assert_int_equal(socket_mode(shared.sock), 0666);
    daemon_h d;
    const char *extra[] = { "--socket-mode", "0660", NULL };
    assert_int_equal(daemon_start(&d, extra), 0);
    assert_int_equal(socket_mode(d.sock), 0660);
    assert_int_equal(daemon_stop(&d), 0);

    /* A daemon run as another user serves that uid: 0600. */
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    char dir[] = "/tmp/corod-nobody-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chown(dir, pw->pw_uid, pw->pw_gid), 0);
    char sock[96], st[96];
    snprintf(sock, sizeof sock, "%s/corod.sock", dir);
    snprintf(st, sizeof st, "%s/state", dir);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(10);
        execl(COROD_BIN, COROD_BIN, "--socket", sock, "--state-dir", st, (char *)NULL);
        _exit(127);
    }
    int mode = -1;
    for (int i = 0; i < 500 && mode < 0; i++) {
        usleep(10000);
        mode = socket_mode(sock);
    }
    assert_int_equal(mode, 0600);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A "daemon" that answers any request with a header claiming 65 MiB: the client must
 * refuse it as a stream error, not try to buffer it. */
static void *liar(void *arg)
{
    int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
    char buf[256];
    if (fd >= 0 && read(fd, buf, sizeof buf) > 0) {
        const unsigned char huge[] = { 0x94, 0x01, 0x01, 0xc0, 0xdb, 0x04, 0x10, 0x00, 0x00 };
        if (write(fd, huge, sizeof huge) != (ssize_t)sizeof huge)
            perror("liar");
        usleep(200000);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_client_refuses_oversize_replies(void **state)
{
    (void)state;
    char path[] = "/tmp/corod-liar-XXXXXX";
    assert_non_null(mkdtemp(path));
    char sock[64];
    snprintf(sock, sizeof sock, "%s/s", path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, sock);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    pthread_t t;
    pthread_create(&t, NULL, liar, &lfd);
    corod_client *c;
    assert_int_equal(corod_connect(sock, &c), 0);
    assert_int_equal(corod_hello(c, NULL, NULL, NULL), -EPROTO);
    corod_close(c);
    pthread_join(t, NULL);
    close(lfd);
    unlink(sock);
    rmdir(path);
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_uv_done(corod_client *c, uint32_t sub, const corod_task *t, void *arg)
{
    (void)c, (void)sub;
    *(uint64_t *)arg = t->id;
    uv_stop(uv_default_loop());
}

/* exec through libcorod: env, cwd, stdin, output read back by offset, exit codes. */
static void test_exec_through_libcorod(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    char *argv[] = { "sh", "-c", "read x; echo \"$x $GREETING $(pwd)\"; echo oops >&2; exit 5", NULL };
    char *env[] = { "GREETING=hello", "PATH=/usr/bin:/bin", NULL };
    corod_exec ex = { .argv = argv, .env = env, .cwd = "/tmp", .stdin_data = "fed\n", .stdin_len = 4, .grace = 1 };
    uint64_t id;
    assert_int_equal(corod_submit_exec(c, &ex, &(corod_spec){ .name = "job", .retries = 1 }, &id), 0);
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    assert_int_equal(corod_wait(c, &id, 1, NULL, 30, &done, &nd, &pending, &np), 0);
    assert_int_equal(nd, 1);
    assert_string_equal(done[0]->state, "failed");
    assert_string_equal(done[0]->error_code, "exit_status");
    assert_int_equal(done[0]->attempts, 2);
    assert_non_null(done[0]->command);
    assert_int_equal(strncmp(done[0]->command, "sh -c read x;", 13), 0);
    corod_tasks_free(done, nd);
    free(pending);
    /* Two attempts, so the output is there twice; read it three bytes at a time. */
    char got[256];
    size_t n = 0;
    uint64_t off = 0, next;
    bool eof = false;
    while (!eof) {
        void *data;
        size_t len;
        assert_int_equal(corod_output(c, id, 1, off, 3, &data, &len, &next, &eof), 0);
        assert_true(len <= 3 && n + len < sizeof got);
        memcpy(got + n, data, len);
        n += len;
        off = next;
        free(data);
    }
    got[n] = 0;
    assert_string_equal(got, "fed hello /tmp\nfed hello /tmp\n");
    void *data;
    size_t len;
    assert_int_equal(corod_output(c, id, 2, 0, 0, &data, &len, &next, &eof), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(data, "oops\noops\n", 10);
    assert_true(eof);
    free(data);
    /* Refused before it reaches the daemon, and by it. */
    assert_int_equal(corod_submit_exec(c, &(corod_exec){ 0 }, NULL, &id), -EINVAL);
    char *relative[] = { "true", NULL };
    assert_int_equal(corod_submit_exec(c, &(corod_exec){ .argv = relative, .cwd = "tmp" }, NULL, &id), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "bad_request");
    assert_non_null(strstr(corod_error_message(c), "args.cwd"));
    corod_close(c);
}

static void test_libuv_helper(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    uint64_t id, got = 0;
    assert_int_equal(corod_submit_sleep(c, 0.05, NULL, 0, NULL, &id), 0);
    uint32_t sub;
    assert_int_equal(corod_subscribe(c, &id, 1, false, &sub), 0);
    corod_on_done(c, on_uv_done, &got);
    uv_loop_t *loop = uv_default_loop();
    assert_int_equal(corod_uv_attach(c, loop), 0);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(got, id);
    /* Blocking calls still work while attached, and a subscribe to a task that has ended
     * is dispatched from the loop though its notification came in with the answer. */
    assert_int_equal(corod_hello(c, NULL, NULL, NULL), 0);
    got = 0;
    assert_int_equal(corod_subscribe(c, &id, 1, false, &sub), 0);
    uv_timer_t guard; /* without the dispatch the loop would wait on the fd for good */
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, stop_loop, 5000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(got, id);
    uv_close((uv_handle_t *)&guard, NULL);
    corod_uv_detach(c);
    uv_run(loop, UV_RUN_NOWAIT);
    corod_close(c);
}

int main(void)
{
    const struct CMUnitTest shared_tests[] = {
        cmocka_unit_test(test_hello_submit_wait_get_list),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_subscribe_exactly_once),
        cmocka_unit_test(test_cancel_through_gather_spares_shielded),
        cmocka_unit_test(test_after_chains_delay_timeout),
        cmocka_unit_test(test_ownership),
        cmocka_unit_test(test_socket_modes),
        cmocka_unit_test(test_libuv_helper),
        cmocka_unit_test(test_exec_through_libcorod),
    };
    const struct CMUnitTest own_tests[] = {
        cmocka_unit_test(test_retention_and_connection_limit),
        cmocka_unit_test(test_shutdown_answers_waiters),
        cmocka_unit_test(test_client_refuses_oversize_replies),
    };
    int fails = cmocka_run_group_tests_name("daemon", shared_tests, shared_up, shared_down);
    fails += cmocka_run_group_tests_name("daemon-own", own_tests, NULL, NULL);
    return fails;
}
