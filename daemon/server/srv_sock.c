/* srv_sock.c: the Unix-socket system calls under the server's connections. */
#include "srv_sock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* recv and send through syscall(), which is not a cancellation point: glibc's wrappers
 * are, and in a process with threads (libuv's pool) each call then enables and disables
 * asynchronous cancellation around the system call, ~45 instructions a call (callgrind,
 * 2026-11-30). No thread is ever cancelled here. */
static ssize_t srv_recv(int fd, void *buf, size_t len, int flags)
{
    return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static ssize_t srv_send(int fd, const void *buf, size_t len, int flags)
{
    return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

int srv_sock_listen(const char *path, int mode, char *errbuf, size_t errlen)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path) {
        snprintf(errbuf, errlen, "socket path too long (at most %zu bytes): %s", sizeof a.sun_path - 1, path);
        return -ENAMETOOLONG;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(errbuf, errlen, "cannot create a socket: %s", strerror(e));
        return -e;
    }
    /* Bind under a umask that leaves the socket no wider than asked, then set the mode. */
    mode_t old = umask(0777 & ~(mode_t)mode);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (rc == 0 && chmod(path, (mode_t)mode) < 0)
        rc = -1;
    if (rc == 0)
        rc = listen(fd, SRV_SOCK_BACKLOG);
    if (rc < 0) {
        int e = errno;
        snprintf(errbuf, errlen, "cannot listen on %s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

int srv_sock_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == EINTR || errno == ECONNABORTED)
            continue; /* a client that gave up while queued: try the next */
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

ssize_t srv_sock_peek(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = srv_recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int srv_sock_discard(int fd, size_t n, void *scratch, size_t scratch_len)
{
    while (n) {
        ssize_t r = srv_recv(fd, scratch, n < scratch_len ? n : scratch_len, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EWOULDBLOCK ? -EIO : -errno;
        if (r == 0)
            return -EIO;
        n -= (size_t)r;
    }
    return 0;
}

ssize_t srv_sock_send(int fd, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = srv_send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}
