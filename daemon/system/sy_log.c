/* sy_log.c: priorities, fields, and where they go (sy_log.h). */
#include "sy_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SY_JOURNAL_SOCKET "/run/systemd/journal/socket"

static struct {
    sy_sink sink;
    int fd;  /* the journal's socket (SY_SINK_JOURNAL) */
    int out; /* where lines go: stderr, or stderr's pipe opened anew without blocking */
    struct sockaddr_un addr;
    socklen_t addr_len;
    uint64_t dropped; /* entries or lines that could not go, not yet said */
} sy = { .fd = -1, .out = STDERR_FILENO };

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected our stderr to: only if
 * stderr is still that stream is journald the reader (a program that redirected it has
 * another reader, and gets lines). */
static bool sy_stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static bool sy_journal_open(void)
{
    const char *path = getenv("COROD_JOURNAL_SOCKET");
    if (!path || !*path)
        path = SY_JOURNAL_SOCKET;
    if (strlen(path) >= sizeof sy.addr.sun_path)
        return false;
    sy.addr.sun_family = AF_UNIX;
    memcpy(sy.addr.sun_path, path, strlen(path) + 1);
    sy.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    sy.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return sy.fd >= 0;
}

/* A pipe that nobody reads (a supervisor that stopped, a test that reads at the end)
 * would stop the loop in write(2) once full. The same pipe opened again through /proc is
 * a file description of our own, made non-blocking without touching the one we share
 * with whoever started us: a line that does not fit is dropped, and counted. */
static int sy_stderr_nonblocking(void)
{
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0 || !S_ISFIFO(st.st_mode))
        return STDERR_FILENO;
    int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    return fd >= 0 ? fd : STDERR_FILENO;
}

void sy_log_init(void)
{
    sy_log_close();
    if (sy_stderr_is_journal() && sy_journal_open()) {
        sy.sink = SY_SINK_JOURNAL;
    } else if (isatty(STDERR_FILENO)) {
        sy.sink = SY_SINK_TERMINAL;
    } else {
        sy.sink = SY_SINK_PREFIXED;
        sy.out = sy_stderr_nonblocking();
    }
}

void sy_log_close(void)
{
    if (sy.fd >= 0)
        close(sy.fd);
    if (sy.out != STDERR_FILENO)
        close(sy.out);
    sy.fd = -1;
    sy.out = STDERR_FILENO;
    sy.sink = SY_SINK_PREFIXED;
}

sy_sink sy_log_sink(void) { return sy.sink; }

/* ---- the journal's native protocol ------------------------------------------------------
 * One datagram per entry: "KEY=value\n" for a value without a newline, else "KEY\n", its
 * length as 64-bit little endian, the value, "\n" (systemd.io, JOURNAL_NATIVE_PROTOCOL). */

typedef struct sy_buf {
    char b[SY_LOG_MESSAGE_MAX + 512];
    size_t n;
    bool full;
} sy_buf;

static void sy_put(sy_buf *o, const void *p, size_t n)
{
    if (o->full || o->n + n > sizeof o->b) {
        o->full = true;
        return;
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void sy_field(sy_buf *o, const char *key, const char *v, size_t len)
{
    sy_put(o, key, strlen(key));
    if (!memchr(v, '\n', len)) {
        sy_put(o, "=", 1);
    } else {
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)((uint64_t)len >> (8 * i));
        sy_put(o, "\n", 1);
        sy_put(o, le, sizeof le);
    }
    sy_put(o, v, len);
    sy_put(o, "\n", 1);
}

static void sy_field_u(sy_buf *o, const char *key, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, v);
    sy_field(o, key, num, (size_t)n);
}

static void sy_journal(int prio, const sy_about *a, const char *msg, size_t len)
{
    sy_buf o = { .n = 0 };
    char note[96];
    if (sy.dropped) { /* said first, in an entry of its own */
        sy_buf d = { .n = 0 };
        int n = snprintf(note, sizeof note, "%" PRIu64 " log entries were dropped: journald did not keep up",
                         sy.dropped);
        sy_field(&d, "MESSAGE", note, (size_t)n);
        sy_field_u(&d, "PRIORITY", LOG_WARNING);
        sy_field(&d, "SYSLOG_IDENTIFIER", "corod", 5);
        if (sendto(sy.fd, d.b, d.n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sy.addr, sy.addr_len) >= 0)
            sy.dropped = 0;
    }
    sy_field(&o, "MESSAGE", msg, len);
    sy_field_u(&o, "PRIORITY", (uint64_t)prio);
    sy_field(&o, "SYSLOG_IDENTIFIER", "corod", 5);
    if (a->task)
        sy_field_u(&o, "COROD_TASK", a->task);
    if (a->uid >= 0)
        sy_field_u(&o, "COROD_UID", (uint64_t)a->uid);
    if (a->group)
        sy_field(&o, "COROD_GROUP", a->group, strlen(a->group));
    if (a->code)
        sy_field(&o, "COROD_CODE", a->code, strlen(a->code));
    if (sendto(sy.fd, o.b, o.n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sy.addr, sy.addr_len) < 0)
        sy.dropped++;
}

/* ---- lines ---------------------------------------------------------------------------- */

static bool sy_write(const char *line, int n)
{
    return n > 0 && write(sy.out, line, (size_t)n) == n;
}

static void sy_line(int prio, const char *msg, size_t len)
{
    char line[SY_LOG_MESSAGE_MAX + 96];
    int n;
    if (sy.dropped) {
        n = snprintf(line, sizeof line, "<%d>corod: %" PRIu64 " log lines were dropped: nobody read them\n",
                     LOG_WARNING, sy.dropped);
        if (sy_write(line, n))
            sy.dropped = 0;
    }
    n = sy.sink == SY_SINK_TERMINAL ? snprintf(line, sizeof line, "corod: ")
                                    : snprintf(line, sizeof line, "<%d>corod: ", prio);
    /* One entry, one line: a control character in what a user chose (a command, a group
     * name) is shown escaped, so it cannot start a line of its own with a priority of
     * its choosing, nor move a terminal's cursor. */
    for (size_t i = 0; i < len && (size_t)n + 5 < sizeof line; i++) {
        unsigned char ch = (unsigned char)msg[i];
        if (ch < 0x20 || ch == 0x7f)
            n += snprintf(line + n, sizeof line - (size_t)n, "\\x%02x", ch);
        else
            line[n++] = (char)ch;
    }
    line[n++] = '\n';
    if (!sy_write(line, n))
        sy.dropped++; /* nowhere left to say it did not go but the next line */
}

static void sy_vlog(int prio, const sy_about *a, const char *fmt, va_list ap)
{
    char msg[SY_LOG_MESSAGE_MAX];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    int saved = errno;
    if (sy.sink == SY_SINK_JOURNAL)
        sy_journal(prio & LOG_PRIMASK, a, msg, len);
    else
        sy_line(prio & LOG_PRIMASK, msg, len);
    errno = saved;
}

void sy_log(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy_about none = SY_ABOUT_NONE;
    sy_vlog(prio, &none, fmt, ap);
    va_end(ap);
}

void sy_log_about(int prio, const sy_about *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy_vlog(prio, a, fmt, ap);
    va_end(ap);
}
