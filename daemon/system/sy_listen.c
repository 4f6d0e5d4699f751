/* sy_listen.c: socket activation (sy_listen.h). */
#include "sy_listen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

int sy_listen_fds(int *fds, size_t max, char *errbuf, size_t errlen)
{
    int n = sd_listen_fds(1);
    if (n < 0) {
        snprintf(errbuf, errlen, "cannot take the sockets systemd passed: %s", strerror(-n));
        return n;
    }
    if ((size_t)n > max) {
        snprintf(errbuf, errlen, "systemd passed %d sockets; corod takes at most %zu", n, max);
        return -EMFILE;
    }
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        int rc = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
        if (rc <= 0) {
            snprintf(errbuf, errlen,
                     "socket %d systemd passed is not a listening Unix stream socket%s%s: use ListenStream= "
                     "with a path in corod.socket", i + 1, rc < 0 ? ": " : "", rc < 0 ? strerror(-rc) : "");
            return rc < 0 ? rc : -EINVAL;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            int e = errno;
            snprintf(errbuf, errlen, "cannot make socket %d non-blocking: %s", i + 1, strerror(e));
            return -e;
        }
        fds[i] = fd;
    }
    return n;
}
