/* sy_log: the daemon's one way to say something, with a priority (syslog's LOG_ERR ...
 * LOG_DEBUG) and, for what concerns a task, fields an administrator can filter on.
 *
 * Where it goes is decided once, at sy_log_init:
 * - under journald (JOURNAL_STREAM names our stderr), a structured entry on journald's
 *   native socket: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and COROD_TASK, COROD_UID,
 *   COROD_GROUP, COROD_CODE when given (`journalctl -p warning`, `COROD_UID=1000`);
 * - on a terminal, a plain line "corod: ...";
 * - anywhere else (a pipe, a file, systemd without journald), the line with a "<N>"
 *   prefix, as sd-daemon(3) describes, so that whoever reads it can tell priorities.
 *
 * The journal's socket is written without blocking: when journald cannot keep up, an
 * entry is dropped rather than the loop held, and the next one that goes through says how
 * many were. */
#ifndef SY_LOG_H
#define SY_LOG_H

#include <stdint.h>
#include <syslog.h>

/* What an entry is about; zero fields are left out. */
typedef struct sy_about {
    uint64_t task;     /* 0: none */
    int64_t uid;       /* -1: none (set it: 0 is root) */
    const char *group; /* NULL: none */
    const char *code;  /* an error code of the protocol, NULL: none */
} sy_about;

#define SY_ABOUT_NONE ((sy_about){ .uid = -1 })

/* Where entries go, from the environment (JOURNAL_STREAM, stderr). The journal's socket
 * is $COROD_JOURNAL_SOCKET if set (tests), else /run/systemd/journal/socket. */
void sy_log_init(void);
void sy_log_close(void);

void sy_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sy_log_about(int prio, const sy_about *a, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The sink sy_log_init chose, for tests and --help. */
typedef enum sy_sink { SY_SINK_PREFIXED, SY_SINK_TERMINAL, SY_SINK_JOURNAL } sy_sink;
sy_sink sy_log_sink(void);

#define SY_LOG_MESSAGE_MAX 2048u /* bytes of one message; longer ones are cut */

#endif
