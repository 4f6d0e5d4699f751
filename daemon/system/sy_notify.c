/* sy_notify.c: the service manager's notifications and the watchdog (sy_notify.h). */
#include "sy_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static struct {
    int fd;
    struct sockaddr_un addr;
    socklen_t addr_len;
} sn = { .fd = -1 };

int sy_notify_open(void)
{
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e || !*e)
        return 0;
    size_t len = strlen(e);
    if ((e[0] != '/' && e[0] != '@') || len >= sizeof sn.addr.sun_path)
        return -EINVAL;
    memset(&sn.addr, 0, sizeof sn.addr);
    sn.addr.sun_family = AF_UNIX;
    memcpy(sn.addr.sun_path, e, len);
    if (e[0] == '@')
        sn.addr.sun_path[0] = '\0'; /* the abstract namespace: no terminating NUL counted */
    sn.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (e[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    sn.fd = fd;
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

void sy_notify_close(void)
{
    if (sn.fd >= 0)
        close(sn.fd);
    sn.fd = -1;
}

bool sy_notify_enabled(void) { return sn.fd >= 0; }

bool sy_notify(const char *state)
{
    if (sn.fd < 0)
        return false;
    return sendto(sn.fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sn.addr,
                  sn.addr_len) >= 0;
}

uint64_t sy_watchdog_usec(void)
{
    uint64_t usec = 0;
    /* Checks WATCHDOG_PID is ours; unsets both, so that jobs do not inherit them. */
    return sd_watchdog_enabled(1, &usec) > 0 ? usec : 0;
}

/* ---- the heartbeat ---------------------------------------------------------------------- */

static void sy_ping(uv_timer_t *t)
{
    (void)t;
    sy_notify("WATCHDOG=1");
}

void sy_service_status(sy_service *s)
{
    char now[sizeof s->last - 8];
    s->status_fn(now, sizeof now, s->status_arg);
    if (!strcmp(now, s->last))
        return;
    char msg[sizeof s->last + 8];
    snprintf(msg, sizeof msg, "STATUS=%s", now);
    if (sy_notify(msg))
        snprintf(s->last, sizeof s->last, "%s", now);
}

static void sy_status_tick(uv_timer_t *t)
{
    sy_service_status(t->data);
}

int sy_service_start(sy_service *s, uv_loop_t *loop, sy_status_fn *fn, void *arg)
{
    memset(s, 0, sizeof *s);
    s->status_fn = fn;
    s->status_arg = arg;
    uv_timer_init(loop, &s->watchdog);
    uv_timer_init(loop, &s->status);
    s->status.data = s;
    uv_unref((uv_handle_t *)&s->watchdog);
    uv_unref((uv_handle_t *)&s->status);
    s->started = true;
    uint64_t usec = sy_watchdog_usec();
    if (usec) {
        /* Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms. */
        uint64_t ms = usec / 2000 ? usec / 2000 : 1;
        uv_timer_start(&s->watchdog, sy_ping, ms, ms);
    }
    if (sy_notify_enabled()) {
        sy_service_status(s);
        uv_timer_start(&s->status, sy_status_tick, SY_STATUS_EVERY_MS, SY_STATUS_EVERY_MS);
    }
    return 0;
}

void sy_service_stop(sy_service *s)
{
    if (!s->started)
        return;
    s->started = false;
    sy_notify("STOPPING=1");
    uv_close((uv_handle_t *)&s->watchdog, NULL);
    uv_close((uv_handle_t *)&s->status, NULL);
}
