/* sy_listen: listening sockets passed by the service manager (socket activation,
 * sd_listen_fds(3)). With a corod.socket unit, systemd binds the socket (its path, mode
 * and owner are the unit's), starts corod at the first connection or at boot, and keeps
 * the socket across restarts of corod: clients that connect meanwhile wait in its queue
 * instead of finding no socket. */
#ifndef SY_LISTEN_H
#define SY_LISTEN_H

#include <stddef.h>

#define SY_LISTEN_MAX 8 /* sockets one daemon takes */

/* The sockets passed ($LISTEN_FDS for this pid; the variables are unset so that jobs do
 * not inherit them), each checked to be a listening Unix stream socket and made
 * non-blocking: their number, 0 when none were passed, or a negative errno with a
 * sentence in errbuf (a socket of another type, too many). */
int sy_listen_fds(int *fds, size_t max, char *errbuf, size_t errlen);

#endif
