/* test_act: a real corod, driven through libcorod's calls for acting on tasks already
 * submitted — edit, signal, send, output's long-poll, a list page, remove_group — and a
 * blocking call given up through corod_set_cancel_fd. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon_harness.h"


static corod_task *get(corod_client *c, uint64_t id)
{
    corod_task *t;
    assert_int_equal(corod_get(c, id, &t), 0);
    return t;
}

static void wait_running(corod_client *c, uint64_t id);

static uint64_t submit_job(corod_client *c, char **argv, const char *group, bool pipe_in)
{
    uint64_t id;
    corod_exec ex = { .argv = argv, .stdin_pipe = pipe_in };
    assert_int_equal(corod_submit_exec(c, &ex, &(corod_spec){ .group = group }, &id), 0);
    return id;
}

static void wait_running(corod_client *c, uint64_t id)
{
    for (int i = 0; i < 1000; i++) {
        corod_task *t = get(c, id);
        bool running = !strcmp(t->state, "running");
        corod_task_free(t);
        if (running)
            return;
        usleep(10000);
    }
    fail_msg("task %llu did not start", (unsigned long long)id);
}

static void test_edit(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    assert_int_equal(corod_set_group(c, "held", -1, 1), 0);
    char *argv[] = { "true", NULL };
    uint64_t id = submit_job(c, argv, "held", false);
    corod_edit_opts e = COROD_EDIT_OPTS_INIT;
    e.name = "renamed";
    e.set_priority = true;
    e.priority = -7;
    corod_task *t;
    assert_int_equal(corod_edit(c, id, &e, &t), 0);
    assert_string_equal(t->name, "renamed");
    assert_non_null(t->waiting); /* {reason: "paused"} */
    corod_task_free(t);
    /* Into an open group: it starts, and ends. */
    e = (corod_edit_opts)COROD_EDIT_OPTS_INIT;
    e.group = "open";
    assert_int_equal(corod_edit(c, id, &e, NULL), 0);
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    assert_int_equal(corod_wait(c, &id, 1, NULL, 30, &done, &nd, &pending, &np), 0);
    assert_string_equal(done[0]->state, "succeeded");
    assert_string_equal(done[0]->group, "open");
    corod_tasks_free(done, nd);
    free(pending);
    /* Ended: refused. Nothing to change: refused before it is sent. */
    assert_int_equal(corod_edit(c, id, &e, NULL), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "invalid_state");
    e = (corod_edit_opts)COROD_EDIT_OPTS_INIT;
    assert_int_equal(corod_edit(c, id, &e, NULL), -EINVAL);
    /* remove_group: the held group, empty now; then it is not found. */
    assert_int_equal(corod_remove_group(c, "held"), 0);
    assert_int_equal(corod_remove_group(c, "held"), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "not_found");
    assert_int_equal(corod_remove_group(c, "default"), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "invalid_state");
    corod_close(c);
}

static void test_signal_send_and_long_poll(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    char *argv[] = { "sh", "-c", "while read l; do echo \"[$l]\"; done; echo bye", NULL };
    uint64_t id = submit_job(c, argv, NULL, true);
    assert_int_equal(corod_send(c, id, "one\n", 4, false), 0);
    void *data;
    size_t len;
    uint64_t next;
    bool eof;
    /* The long-poll answers as the line lands, not when its wait is over. */
    double t0 = h_now();
    assert_int_equal(corod_output_wait(c, id, 1, 0, 0, 30, &data, &len, &next, &eof), 0);
    assert_true(h_now() - t0 < 20);
    assert_int_equal(len, 6);
    assert_memory_equal(data, "[one]\n", 6);
    free(data);
    assert_int_equal(corod_signal(c, id, SIGCONT), 0); /* harmless: the task goes on */
    assert_int_equal(corod_send(c, id, "two\n", 4, true), 0); /* and its stdin ends */
    corod_task **done;
    size_t nd, np;
    uint64_t *pending;
    assert_int_equal(corod_wait(c, &id, 1, NULL, 30, &done, &nd, &pending, &np), 0);
    assert_string_equal(done[0]->state, "succeeded");
    corod_tasks_free(done, nd);
    free(pending);
    assert_int_equal(corod_output_wait(c, id, 1, next, 0, 30, &data, &len, &next, &eof), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(data, "[two]\nbye\n", 10);
    assert_true(eof);
    free(data);
    /* Ended: refused, by the daemon or before it is asked. */
    assert_int_equal(corod_send(c, id, "x", 1, false), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "invalid_state");
    assert_int_equal(corod_signal(c, id, SIGTERM), COROD_EREMOTE);
    assert_string_equal(corod_error_code(c), "invalid_state");
    assert_int_equal(corod_signal(c, id, 0), -EINVAL);
    assert_int_equal(corod_send(c, id, "", 0, false), -EINVAL);
    assert_int_equal(corod_output_wait(c, id, 1, 0, 0, 61, &data, &len, &next, &eof), -EINVAL);
    /* A signal that ends the job ends the task, failed with it. */
    char *nap[] = { "sleep", "30", NULL };
    id = submit_job(c, nap, NULL, false);
    wait_running(c, id);
    assert_int_equal(corod_signal(c, id, SIGTERM), 0);
    assert_int_equal(corod_wait(c, &id, 1, NULL, 30, &done, &nd, &pending, &np), 0);
    assert_string_equal(done[0]->error_code, "signal");
    corod_tasks_free(done, nd);
    free(pending);
    corod_close(c);
}

static int cancel_pipe[2];

static void *cancel_soon(void *arg)
{
    (void)arg;
    usleep(200000);
    assert_int_equal(write(cancel_pipe[1], "", 1), 1);
    return NULL;
}

static void test_cancel_fd_gives_up_a_waiting_call(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    char *argv[] = { "sleep", "30", NULL };
    uint64_t id = submit_job(c, argv, NULL, false);
    wait_running(c, id);
    assert_int_equal(pipe2(cancel_pipe, O_CLOEXEC), 0);
    corod_set_cancel_fd(c, cancel_pipe[0]);
    pthread_t th;
    pthread_create(&th, NULL, cancel_soon, NULL);
    void *data;
    size_t len;
    uint64_t next;
    bool eof;
    double t0 = h_now();
    assert_int_equal(corod_output_wait(c, id, 1, 0, 0, 30, &data, &len, &next, &eof), -EINTR);
    assert_true(h_now() - t0 < 10);
    pthread_join(th, NULL);
    /* Without the fd the client goes on: the late answer is passed over. */
    corod_set_cancel_fd(c, -1);
    bool cancelled;
    assert_int_equal(corod_cancel(c, id, NULL, &cancelled), 0);
    assert_true(cancelled);
    corod_task *t = get(c, id);
    corod_task_free(t);
    close(cancel_pipe[0]);
    close(cancel_pipe[1]);
    corod_close(c);
}

static void test_list_page(void **state)
{
    (void)state;
    corod_client *c = h_connect(&shared);
    for (int i = 0; i < 5; i++) {
        uint64_t id;
        assert_int_equal(corod_submit_sleep(c, 0, NULL, 0, &(corod_spec){ .group = "paged" }, &id), 0);
    }
    corod_list_opts o = COROD_LIST_OPTS_INIT;
    o.group = "paged";
    o.limit = 2;
    uint64_t after = 0, last = 0;
    size_t total = 0, pages = 0;
    do {
        corod_task **v;
        size_t n;
        assert_int_equal(corod_list_page(c, &o, after, &v, &n, &after), 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(v[i]->id > last);
            last = v[i]->id;
        }
        total += n;
        pages++;
        corod_tasks_free(v, n);
    } while (after);
    assert_int_equal(total, 5);
    assert_int_equal(pages, 3);
    corod_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit),
        cmocka_unit_test(test_signal_send_and_long_poll),
        cmocka_unit_test(test_cancel_fd_gives_up_a_waiting_call),
        cmocka_unit_test(test_list_page),
    };
    return cmocka_run_group_tests(tests, shared_up, shared_down);
}
