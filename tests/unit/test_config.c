/* test_config: corod's settings from a file and the command line (daemon/config/cf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf.h"

static char path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads `text`: the return code, and the message in err. */
static int load(cf_config *c, const char *text, char *err, size_t len)
{
    write_file(text);
    cf_init(c);
    err[0] = '\0';
    return cf_load(c, path, err, len);
}

static void test_every_option_has_its_key(void **state)
{
    (void)state;
    cf_config c;
    char err[600];
    assert_int_equal(load(&c,
                          "# a comment\n"
                          "; another\n"
                          "retain = 12\n"
                          "[corod]\n"
                          "max-active = 7\n"
                          "sync = normal\n"
                          "keep-for = 3600\n"
                          "no-store = yes\n"
                          "parallel = 0\n"
                          "max-uid-output = 0\n"
                          "socket-mode = 0660\n"
                          "grace = 1.5\n"
                          "nice = 3\n"
                          "state-dir = /srv/corod ; a value keeps what follows\n",
                          err, sizeof err),
                     0);
    assert_int_equal(c.srv.limits.retain, 12);
    assert_int_equal(c.srv.limits.max_active_per_uid, 7);
    assert_int_equal(c.st.sync, ST_SYNC_NORMAL);
    assert_true(c.st.keep_for == 3600);
    assert_true(c.no_store);
    assert_int_equal(c.srv.limits.default_parallel, SRV_PARALLEL_UNBOUNDED);
    assert_true(c.srv.limits.max_uid_output == SRV_UNBOUNDED);
    assert_int_equal(c.srv.socket_mode, 0660);
    assert_true(c.srv.limits.has_grace && c.srv.limits.grace == 1.5);
    assert_int_equal(c.nice, 3);
    assert_string_equal(c.state, "/srv/corod ; a value keeps what follows");
    cf_free(&c);
}

static void test_groups(void **state)
{
    (void)state;
    cf_config c;
    char err[600];
    assert_int_equal(load(&c,
                          "[group \"builds\"]\n"
                          "parallel = 4\n"
                          "paused = on\n"
                          "priority = -3\n"
                          "users = 0, 65534 root\n"
                          "[group \"nightly\"]\n"
                          "users =\n"
                          "[group \"builds\"]\n" /* the same group again: its keys add up */
                          "parallel = 2\n"
                          "rlimit-nofile = 100:200\n"
                          "rlimit-core = infinity\n"
                          "umask = 027\n"
                          "memory-max = 1048576\n"
                          "cpu-quota = 1.5\n",
                          err, sizeof err),
                     0);
    assert_int_equal(c.ngroups, 2);
    cf_group *b = &c.groups[0];
    assert_string_equal(b->conf.name, "builds");
    assert_true(b->conf.has_parallel && b->conf.parallel == 2);
    assert_true(b->conf.has_paused && b->conf.paused);
    assert_true(b->conf.has_priority && b->conf.priority == -3);
    assert_true(b->conf.has_users);
    assert_int_equal(b->conf.nusers, 3);
    assert_int_equal(b->conf.users[1], 65534);
    assert_int_equal(b->conf.users[2], 0); /* root, by name */
    ex_limits *l = &b->conf.limits;
    assert_true(l->rlim_set[EX_RLIM_NOFILE] && l->rlim[EX_RLIM_NOFILE].rlim_cur == 100 &&
                l->rlim[EX_RLIM_NOFILE].rlim_max == 200);
    assert_true(l->rlim_set[EX_RLIM_CORE] && l->rlim[EX_RLIM_CORE].rlim_max == RLIM_INFINITY);
    assert_false(l->rlim_set[EX_RLIM_CPU]);
    assert_int_equal(l->umask, 027);
    assert_int_equal(l->memory_max, 1048576);
    assert_true(l->cpu_quota == 1.5);
    assert_int_equal(c.groups[1].conf.limits.umask, -1); /* not given: none of its own */
    cf_group *n = &c.groups[1];
    assert_true(n->conf.has_users);
    assert_int_equal(n->conf.nusers, 0); /* everyone */
    assert_false(n->conf.has_parallel || n->conf.has_paused || n->conf.has_priority);
    cf_free(&c);
}

/* Each bad file: the line said, and the reason. */
static void test_a_bad_file_says_its_line_and_why(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        { "retain = 5\nbogus = 1\n", ":2: unknown setting \"bogus\"" },
        { "\n\nretain = x\n", ":3: retain must be a whole number from 1 to 100000000, not \"x\"" },
        { "sync = sometimes\n", ":1: sync must be full or normal, not \"sometimes\"" },
        { "no-store = maybe\n", ":1: no-store must be yes or no, not \"maybe\"" },
        { "[jobs]\nretain = 1\n", ":2: unknown section [jobs]" },
        { "[group \"a b\"]\nparallel = 1\n", ":2: group \"a b\": a name is characters of A-Z a-z 0-9 . _ -" },
        { "[group \"g\"]\nparallel = -1\n", ":2: [group \"g\"] parallel must be a whole number from 0 to 65536" },
        { "[group \"g\"]\npriority = 1.5\n", ":2: [group \"g\"] priority must be a whole number" },
        { "[group \"g\"]\nusers = no-such-user-here\n", ":2: [group \"g\"] users: no user \"no-such-user-here\"" },
        { "[group \"g\"]\nslots = 1\n", ":2: unknown setting \"slots\" in a group" },
        { "[group \"g\"]\nrlimit-nofile = 9:3\n", ":2: [group \"g\"] rlimit-nofile: the soft limit is above" },
        { "[group \"g\"]\nrlimit-as = lots\n", ":2: [group \"g\"] rlimit-as must be SOFT[:HARD]" },
        { "[group \"g\"]\numask = 8\n", ":2: [group \"g\"] umask must be an octal mask" },
        { "[group \"g\"]\nmemory-max = 10\n", ":2: [group \"g\"] memory-max must be a whole number" },
        { "retain\n", ":1: not a setting" },
        { "state-dir =\n", ":1: state-dir must not be empty" },
        { "[group \"g\"\nparallel = 1\n", ":1: not a setting" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cf_config c;
        char err[600];
        assert_int_equal(load(&c, bad[i].text, err, sizeof err), -EINVAL);
        if (!strstr(err, bad[i].want))
            fail_msg("file %zu: \"%s\" does not say \"%s\"", i, err, bad[i].want);
        assert_int_equal(strncmp(err, path, strlen(path)), 0);
        cf_free(&c);
    }
}

/* CF_MAX_GROUPS groups, and SRV_MAX_GROUP_USERS users in one: the next is refused. */
static void test_the_bounds_on_groups_and_users(void **state)
{
    (void)state;
    size_t cap = (CF_MAX_GROUPS + 1) * 32 + 16 + (SRV_MAX_GROUP_USERS + 1) * 8;
    char *text = malloc(cap), err[600];
    assert_non_null(text);
    size_t o = 0;
    for (unsigned i = 0; i < CF_MAX_GROUPS; i++)
        o += (size_t)snprintf(text + o, cap - o, "[group \"g%u\"]\nparallel = 1\n", i);
    cf_config c;
    assert_int_equal(load(&c, text, err, sizeof err), 0);
    assert_int_equal(c.ngroups, CF_MAX_GROUPS);
    cf_free(&c);
    snprintf(text + o, cap - o, "[group \"one-more\"]\nparallel = 1\n");
    assert_int_equal(load(&c, text, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "more than 1024 groups"));
    cf_free(&c);
    o = (size_t)snprintf(text, cap, "[group \"many\"]\nusers =");
    for (unsigned i = 0; i <= SRV_MAX_GROUP_USERS; i++)
        o += (size_t)snprintf(text + o, cap - o, " %u", 1000 + i);
    snprintf(text + o, cap - o, "\n");
    assert_int_equal(load(&c, text, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":2: [group \"many\"] users: at most 1024 users"));
    cf_free(&c);
    /* One fewer fits, on one line of some 5 KB. */
    char *last = strrchr(text, ' ');
    strcpy(last, "\n");
    assert_int_equal(load(&c, text, err, sizeof err), 0);
    assert_int_equal(c.groups[0].conf.nusers, SRV_MAX_GROUP_USERS);
    cf_free(&c);
    free(text);

    /* CF_MAX_LINE: a line just within it is read whole; one past it is an error, not a
     * value cut short. */
    size_t big = CF_MAX_LINE + 16;
    text = malloc(big + 64);
    assert_non_null(text);
    for (size_t fit = 0; fit < 2; fit++) {
        size_t vlen = fit ? CF_MAX_LINE - 32 : CF_MAX_LINE + 8;
        o = (size_t)snprintf(text, big + 64, "state-dir = /");
        memset(text + o, 'd', vlen);
        snprintf(text + o + vlen, big + 64 - o - vlen, "\nretain = 3\n");
        int rc = load(&c, text, err, sizeof err);
        if (fit) {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(c.state), vlen + 1);
            assert_int_equal(c.srv.limits.retain, 3);
        } else {
            assert_int_equal(rc, -EINVAL);
        }
        cf_free(&c);
    }
    free(text);
}

static void test_no_file_and_an_unreadable_one(void **state)
{
    (void)state;
    cf_config c;
    char err[600];
    cf_init(&c);
    assert_int_equal(cf_load(&c, "/nonexistent/corod.conf", err, sizeof err), -ENOENT);
    assert_int_equal(cf_load(&c, "/dev/null/corod.conf", err, sizeof err), -ENOENT);
    /* A directory is there, and cannot be read as a file. */
    assert_int_equal(cf_load(&c, "/tmp", err, sizeof err), -EINVAL);
    cf_free(&c);
}

/* The command line goes over the file; --config is found before anything is set. */
static void test_the_command_line_wins(void **state)
{
    (void)state;
    cf_config c;
    char err[600];
    assert_int_equal(load(&c, "retain = 5\nmax-active = 9\n", err, sizeof err), 0);
    char *argv[] = { "corod", "--config", path, "--retain", "6", NULL };
    const char *found = NULL;
    cf_config probe;
    cf_init(&probe);
    assert_int_equal(cf_parse_args(&probe, 5, argv, false, &found), 0);
    assert_string_equal(found, path);
    assert_int_equal(probe.srv.limits.retain, 0); /* nothing set by the first pass */
    cf_free(&probe);
    assert_int_equal(cf_parse_args(&c, 5, argv, true, NULL), 0);
    assert_int_equal(c.srv.limits.retain, 6);
    assert_int_equal(c.srv.limits.max_active_per_uid, 9);
    cf_free(&c);
}

static void note(const char *name, void *arg)
{
    char *seen = arg;
    strcat(seen, name);
    strcat(seen, " ");
}

static void test_what_waits_for_a_start(void **state)
{
    (void)state;
    cf_config a, b;
    char err[600], seen[256] = "";
    assert_int_equal(load(&a, "retain = 5\nsync = full\nmax-message = 2048\n", err, sizeof err), 0);
    assert_int_equal(load(&b, "retain = 7\nsync = normal\n", err, sizeof err), 0);
    cf_changed_at_start(&a, &b, note, seen);
    assert_string_equal(seen, "sync max-message "); /* retain is applied by a reload */
    cf_free(&a);
    cf_free(&b);
}

static void test_max_result_must_fit_the_output_bound(void **state)
{
    (void)state;
    cf_config c;
    char err[600];
    assert_int_equal(load(&c, "max-output = 65536\nmax-result = 65536\n", err, sizeof err), 0);
    assert_int_equal(cf_finish(&c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "does not fit a quarter of --max-output (65536): at most 16384"));
    cf_free(&c);
    assert_int_equal(load(&c, "max-output = 65536\n", err, sizeof err), 0);
    assert_int_equal(cf_finish(&c, err, sizeof err), 0);
    assert_int_equal(c.srv.limits.max_result, 16384);
    cf_free(&c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/test_config.%d.conf", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_option_has_its_key),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_a_bad_file_says_its_line_and_why),
        cmocka_unit_test(test_the_bounds_on_groups_and_users),
        cmocka_unit_test(test_no_file_and_an_unreadable_one),
        cmocka_unit_test(test_the_command_line_wins),
        cmocka_unit_test(test_what_waits_for_a_start),
        cmocka_unit_test(test_max_result_must_fit_the_output_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
