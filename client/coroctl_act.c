/* coroctl_act.c: commands that act on tasks already submitted — kill (a signal to a
 * running job), send (text to a job's stdin), edit and priority (a task that has not
 * started). */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coroctl.h"

/* A signal by number or name, "SIG" optional, any case: its number, or 0. */
static int parse_signal(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end != s && !*end)
        return v >= 1 && v <= SIGRTMAX ? (int)v : 0;
    char up[16];
    size_t n = strlen(s);
    if (n >= sizeof up)
        return 0;
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    const char *name = strncmp(up, "SIG", 3) ? up : up + 3;
    for (int sig = 1; sig < SIGRTMIN; sig++) {
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev && !strcmp(abbrev, name))
            return sig;
    }
    return 0;
}

int cmd_kill(int argc, char **argv)
{
    static const struct option lo[] = { { "signal", required_argument, 0, 's' }, { 0, 0, 0, 0 } };
    int sig = SIGTERM, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "s:", lo, NULL)) != -1) {
        if (c != 's')
            return bad_option(argv);
        if (!(sig = parse_signal(optarg)))
            return usage_error("--signal: not a signal (a name such as HUP or USR1, or a number): \"%s\"", optarg);
    }
    if (argc == optind)
        return usage_error("kill takes one or more task ids or names%s", "");
    uint64_t *ids = NULL;
    int rc = parse_ids(argv + optind, argc - optind, &ids);
    if (rc == EX_OK)
        rc = connect_daemon();
    for (int i = 0; rc == EX_OK && i < argc - optind; i++) {
        int r = corod_signal(cli, ids[i], sig);
        if (r < 0)
            rc = daemon_error(r);
        else if (!json_out)
            printf("task %llu: sent SIG%s\n", (unsigned long long)ids[i], sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    }
    if (rc == EX_OK && json_out)
        puts("{}");
    free(ids);
    return rc;
}

/* edit ID [--name S] [--group G] [--priority N] [--delay S]: a task not yet started. */
int cmd_edit(int argc, char **argv)
{
    static const struct option lo[] = { { "name", required_argument, 0, 'n' }, { "group", required_argument, 0, 'g' },
                                        { "priority", required_argument, 0, 'p' },
                                        { "delay", required_argument, 0, 'd' }, { 0, 0, 0, 0 } };
    corod_edit_opts e = COROD_EDIT_OPTS_INIT;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end;
        if (c == 'n') {
            e.name = optarg;
        } else if (c == 'g') {
            e.group = optarg;
        } else if (c == 'p') {
            e.priority = strtoll(optarg, &end, 10);
            if (end == optarg || *end || e.priority < -1000000 || e.priority > 1000000)
                return usage_error("--priority: not a number from -1000000 to 1000000: \"%s\"", optarg);
            e.set_priority = true;
        } else if (c == 'd') {
            if (parse_seconds(optarg, &e.delay) < 0)
                return usage_error("--delay: not a number of seconds: \"%s\"", optarg);
        } else {
            return bad_option(argv);
        }
    }
    if (argc - optind != 1)
        return usage_error("edit takes one task id or name%s", "");
    if (!e.name && !e.group && !e.set_priority && e.delay < 0)
        return usage_error("edit: say what to change (--name, --group, --priority, --delay)%s", "");
    uint64_t id;
    int rc = resolve_task(argv[optind], &id);
    if (rc != EX_OK || (rc = connect_daemon()) != EX_OK)
        return rc;
    corod_task *t;
    if ((rc = corod_edit(cli, id, &e, &t)) < 0)
        return daemon_error(rc);
    print_task(t, -1);
    corod_task_free(t);
    return EX_OK;
}

/* priority ID N: edit's --priority, as a verb of its own. */
int cmd_priority(int argc, char **argv)
{
    if (argc != 3)
        return usage_error("priority takes a task id or name and a number%s", "");
    char *args[] = { "edit", argv[1], "--priority", argv[2], NULL };
    return cmd_edit(4, args);
}

/* send ID TEXT|- [-n] [--eof]: TEXT and a newline (-n: without), or all of standard input
 * in pieces of COROD_SEND_MAX, into a stdin_pipe job's stdin; --eof closes it after. */
int cmd_send(int argc, char **argv)
{
    static const struct option lo[] = { { "eof", no_argument, 0, 'e' }, { "no-newline", no_argument, 0, 'n' },
                                        { 0, 0, 0, 0 } };
    bool eof = false, newline = true;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "n", lo, NULL)) != -1) {
        if (c == 'e')
            eof = true;
        else if (c == 'n')
            newline = false;
        else
            return bad_option(argv);
    }
    int n = argc - optind;
    if (n != 2 && !(n == 1 && eof))
        return usage_error("send takes a task id or name and TEXT (or - for standard input; --eof alone closes it)%s",
                           "");
    uint64_t id;
    int rc = resolve_task(argv[optind], &id);
    if (rc != EX_OK || (rc = connect_daemon()) != EX_OK)
        return rc;
    const char *text = n == 2 ? argv[optind + 1] : NULL;
    size_t tlen = text ? strlen(text) : 0;
    char *buf = malloc(tlen + 1 > COROD_SEND_MAX ? tlen + 1 : COROD_SEND_MAX);
    if (!buf)
        return daemon_error(-ENOMEM);
    uint64_t total = 0;
    if (!text) { /* --eof alone */
        rc = corod_send(cli, id, NULL, 0, true);
    } else if (strcmp(text, "-")) { /* TEXT and its newline, in pieces if long */
        memcpy(buf, text, tlen);
        if (newline)
            buf[tlen++] = '\n';
        for (size_t off = 0; rc == 0 && off < tlen; off += COROD_SEND_MAX) {
            size_t k = tlen - off < COROD_SEND_MAX ? tlen - off : COROD_SEND_MAX;
            rc = corod_send(cli, id, buf + off, k, eof && off + k == tlen);
            total += k;
        }
        if (rc == 0 && !tlen && eof)
            rc = corod_send(cli, id, NULL, 0, true);
    } else { /* standard input, to its end */
        for (;;) {
            size_t k = 0;
            while (k < COROD_SEND_MAX) {
                ssize_t r = read(0, buf + k, COROD_SEND_MAX - k);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                k += (size_t)r;
            }
            bool end = k < COROD_SEND_MAX;
            if (k || (end && eof))
                rc = corod_send(cli, id, buf, k, end && eof);
            total += k;
            if (rc < 0 || end)
                break;
        }
    }
    free(buf);
    if (rc < 0)
        return daemon_error(rc);
    if (json_out)
        printf("{\"id\": %llu, \"written\": %llu}\n", (unsigned long long)id, (unsigned long long)total);
    return EX_OK;
}
