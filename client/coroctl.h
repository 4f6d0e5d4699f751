/* coroctl.h: what coroctl's command files share — the connection, output mode, error
 * reporting, task printing and the options every submitting command takes. */
#ifndef COROCTL_H
#define COROCTL_H

#include <getopt.h>
#include <msgpack.h>
#include <stdio.h>

#include "corod/client.h"

enum { EX_OK = 0, EX_TASK = 1, EX_USAGE = 2, EX_DAEMON = 3, EX_CONN = 4, EX_TIMEOUT = 5, EX_INTERRUPTED = 130 };
enum { JSON_NONE = 0, JSON_ARRAY = 1, JSON_LINES = 2 }; /* json_out: --json, --jsonl */
#define COROD_SYSTEM_SOCKET "/run/corod/corod.sock"

extern int json_out;
extern corod_client *cli;

int connect_daemon(void); /* EX_OK, or EX_CONN after saying why; a command calls it once its arguments are checked */
int connect_another(corod_client **out); /* a second connection to the same daemon: 0 or -errno */
int usage_error(const char *fmt, const char *arg);
int bad_option(char **argv);
int daemon_error(int rc); /* EX_DAEMON (it said no) or EX_CONN, after saying why */

void json_str(FILE *f, const char *s, size_t n);
void json_obj(FILE *f, const msgpack_object *o);
void json_packed(FILE *f, const void *p, size_t n);
void print_task(const corod_task *t, int sub);
/* Around what prints several tasks: one JSON array with --json. */
void json_list_begin(void);
void json_list_end(void);
void json_item(void);

int parse_id(const char *s, uint64_t *id);
/* A task named on the command line: its id, or else its name — the newest task of yours
 * with that name (this connects). EX_OK, or an exit code after saying why. */
int resolve_task(const char *s, uint64_t *id);
/* resolve_task for n arguments: *ids is malloc'd (free it whatever the result). */
int parse_ids(char **argv, int n, uint64_t **ids);
int parse_seconds(const char *s, double *out);
/* A count with an optional K, M, G or T suffix (powers of 1024). */
int parse_bytes(const char *arg, uint64_t *out);
/* Seconds, or minutes, hours, days or weeks with m, h, d, w after the number. */
int parse_age(const char *s, double *out);

/* Options every submitting command takes, plus a command's own (`extra`, handled by
 * on_extra: 0, or an exit code). */
typedef struct submit_opts submit_opts;
struct submit_opts {
    corod_spec spec;
    uint64_t after[1024];
    int wait, return_exceptions;
    int stop_at_command; /* options end at the first non-option (a command line follows) */
    const struct option *extra;
    int (*on_extra)(int c, const char *arg, submit_opts *o);
    void *ctx;
};
int parse_submit(int argc, char **argv, submit_opts *o, int *first_positional);
/* Prints the new id (or the error), then waits for it when asked. */
int after_submit(int rc, uint64_t id, int wait);
int do_wait(uint64_t *ids, size_t n, const char *mode, double timeout);
int wait_one(uint64_t id);
/* The ids of a group's running and pending tasks (yours; everyone's for root): EX_OK,
 * or an exit code after saying why. *ids is malloc'd. */
int group_active(const char *group, uint64_t **ids, size_t *n);

/* coroctl_table.c: tasks as a table under a line per group (a terminal), or as
 * tab-separated fields (FORMAT_TSV: id, name, group, state, exit, started, seconds,
 * waiting, command; "-" for none). */
enum { FORMAT_AUTO = 0, FORMAT_TABLE, FORMAT_TSV };
typedef struct table_group {
    char *name;
    uint32_t parallel;
    size_t running, pending;
    bool paused;
} table_group;
int print_table(corod_task **v, size_t n, const table_group *gs, size_t ng, int format);
int table_groups_get(table_group **out, size_t *n);
void table_groups_free(table_group *gs, size_t n);
bool use_colour(void);
void fmt_duration(char *buf, size_t len, double seconds);
void fmt_ago(char *buf, size_t len, double t, double now);
/* t in local time by strftime's fmt ("-" for NAN): the length written. */
size_t fmt_local(char *buf, size_t len, double t, const char *fmt);
void task_exit_text(const corod_task *t, char *buf, size_t len);
void task_waiting_text(const corod_task *t, char *buf, size_t len, double now);

/* coroctl_help.c: COMMAND --help, NULL for none. */
const char *coroctl_help(const char *cmd);

/* coroctl_exec.c */
int cmd_add(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_logs(int argc, char **argv);
/* coroctl_group.c */
int cmd_group(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
/* coroctl_act.c */
int cmd_kill(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_priority(int argc, char **argv);
int cmd_send(int argc, char **argv);

#endif
