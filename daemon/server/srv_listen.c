/* srv_listen.c: the listening sockets — bound by corod at its path, or passed by systemd
 * (socket activation: the unit owns the socket, its path and its mode) — and accepting on
 * them. */
#include "srv_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "srv_sock.h"
#include "sy_log.h"

#define SRV_ACCEPT_BATCH 64u     /* connections accepted per wake-up of a listener */
#define SRV_ACCEPT_RETRY_MS 100u /* after a failed accept (e.g. EMFILE), try again then */

static int srv_mkdir_parent(const char *path, mode_t mode, char *errbuf, size_t errlen)
{
    char *dir = strdup(path);
    if (!dir)
        return -ENOMEM;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, mode) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(errbuf, errlen, "cannot create %s: %s", dir, strerror(e));
            free(dir);
            return -e;
        }
    }
    free(dir);
    return 0;
}

/* A socket file left by a daemon that died is removed; one a live daemon answers on is
 * not touched. */
static int srv_clear_stale(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(errbuf, errlen, "%s exists and is not a socket; refusing to replace it", path);
        return -EEXIST;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    int live = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    if (live) {
        snprintf(errbuf, errlen, "another corod is already serving %s", path);
        return -EADDRINUSE;
    }
    unlink(path);
    return 0;
}

/* ---- accepting ---------------------------------------------------------------------------- */

static void srv_on_listen(uv_poll_t *h, int status, int events);

static void srv_accept_retry(uv_timer_t *t)
{
    srv *v = t->data;
    for (size_t i = 0; i < v->nlisten; i++)
        uv_poll_start(&v->listen[i].poll, UV_READABLE, srv_on_listen);
}

static void srv_on_listen(uv_poll_t *h, int status, int events)
{
    srv_listener *l = co_container_of(h, srv_listener, poll);
    srv *v = h->data;
    (void)events;
    for (unsigned i = 0; status == 0 && i < SRV_ACCEPT_BATCH; i++) {
        int fd = srv_sock_accept(l->fd);
        if (fd == -EAGAIN) {
            if (v->accept_failing) /* caught up with everyone who waited */
                sy_log(LOG_NOTICE, "accepting connections again");
            v->accept_failing = false;
            return;
        }
        if (fd < 0) {
            status = fd;
            break;
        }
        srv_conn_open(v, fd);
    }
    if (status == 0)
        return; /* a full batch: the rest on the next turn, after the others' input */
    /* Out of descriptors or memory: the connection stays queued and the socket readable,
     * so polling on would spin. Pause and try again shortly; say so once, until the queue
     * has been caught up with. */
    if (!v->accept_failing)
        sy_log(LOG_WARNING, "cannot accept connections: %s; trying again every %u ms", strerror(-status),
               SRV_ACCEPT_RETRY_MS);
    v->accept_failing = true;
    for (size_t k = 0; k < v->nlisten; k++)
        uv_poll_stop(&v->listen[k].poll);
    uv_timer_start(&v->accept_retry, srv_accept_retry, SRV_ACCEPT_RETRY_MS, 0);
}

/* ---- opening and closing ------------------------------------------------------------------ */

/* What to call a passed socket in messages: its path, when it has one. */
static char *srv_listen_name(int fd, const char *fallback)
{
    struct sockaddr_un a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    if (getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.sun_family == AF_UNIX && a.sun_path[0])
        return strndup(a.sun_path, sizeof a.sun_path);
    return strdup(fallback ? fallback : "(a socket systemd passed)");
}

int srv_listen_open(srv *v, int mode, char *errbuf, size_t errlen)
{
    const srv_config *cfg = &v->cfg;
    int fds[SRV_MAX_LISTENERS];
    size_t n = cfg->nlisten;
    int rc;
    if (n > SRV_MAX_LISTENERS) {
        snprintf(errbuf, errlen, "%zu listening sockets: corod takes at most %u", n, SRV_MAX_LISTENERS);
        return -EINVAL;
    }
    if (n) {
        memcpy(fds, cfg->listen_fds, n * sizeof *fds);
        if (!(v->path = srv_listen_name(fds[0], cfg->socket_path)))
            return -ENOMEM;
    } else {
        if (strlen(cfg->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            snprintf(errbuf, errlen, "socket path too long (at most 107 bytes): %s", cfg->socket_path);
            return -ENAMETOOLONG;
        }
        if (!(v->path = strdup(cfg->socket_path)))
            return -ENOMEM;
        if ((rc = srv_mkdir_parent(v->path, v->self_uid == 0 ? 0755 : 0700, errbuf, errlen)) < 0 ||
            (rc = srv_clear_stale(v->path, errbuf, errlen)) < 0 ||
            (rc = fds[0] = srv_sock_listen(v->path, mode, errbuf, errlen)) < 0)
            return rc;
        n = 1;
        v->bound = true;
    }
    for (size_t i = 0; i < n; i++) {
        srv_listener *l = &v->listen[i];
        l->fd = fds[i];
        if ((rc = uv_poll_init(v->loop, &l->poll, l->fd)) < 0) {
            snprintf(errbuf, errlen, "cannot watch %s: %s", v->path, uv_strerror(rc));
            for (size_t k = 0; k < i; k++)
                uv_close((uv_handle_t *)&v->listen[k].poll, NULL);
            if (v->bound) {
                close(fds[0]);
                unlink(v->path);
            }
            v->bound = false;
            return rc;
        }
        l->poll.data = v; /* as every handle of the server's */
        uv_poll_start(&l->poll, UV_READABLE, srv_on_listen);
    }
    v->nlisten = n;
    uv_timer_init(v->loop, &v->accept_retry);
    v->accept_retry.data = v;
    return 0;
}

size_t srv_listen_close(srv *v, uv_close_cb done)
{
    /* The socket file goes first, so nobody new finds it; a socket systemd passed is
     * the unit's: it stays, and connections queue there for the next start. */
    if (v->bound)
        unlink(v->path);
    for (size_t i = 0; i < v->nlisten; i++) {
        uv_close((uv_handle_t *)&v->listen[i].poll, done);
        close(v->listen[i].fd);
    }
    uv_close((uv_handle_t *)&v->accept_retry, done);
    return v->nlisten + 1;
}
