/* srv_sock: the server's Unix-socket system calls, on non-blocking descriptors.
 *
 * The server reads a request by peeking at it and consumes its bytes only after the
 * answer is written. Consuming data a client sent frees its send buffer, and Linux then
 * wakes every task sleeping on the client's socket (unix_write_space) — including a
 * client blocked in read() waiting for that very answer, whose wait ignores the
 * "writable" key: it wakes, finds nothing, and sleeps again. On a VM whose idle vCPU
 * halts, that wake-up costs the daemon an IPI just before its answer and the client a
 * second halt and wake. Peeking leaves the bytes where they are until the answer has
 * gone, so a blocked client is woken once, by its answer (bench/README: "One wake-up
 * per answer").
 *
 * Every call returns a byte count or a negative errno; none blocks. */
#ifndef SRV_SOCK_H
#define SRV_SOCK_H

#include <stddef.h>
#include <sys/types.h>

#define SRV_SOCK_BACKLOG 511 /* pending connections the kernel queues for accept */

/* A listening socket bound to path, with the given mode. On failure returns a negative
 * errno and writes a sentence for the operator into errbuf. */
int srv_sock_listen(const char *path, int mode, char *errbuf, size_t errlen);
/* One pending connection (non-blocking, close-on-exec), or -EAGAIN when none. */
int srv_sock_accept(int lfd);
/* Copy up to len queued bytes into buf without consuming them: 0 at end of stream,
 * -EAGAIN when nothing is queued. */
ssize_t srv_sock_peek(int fd, void *buf, size_t len);
/* Consume exactly n bytes already seen by srv_sock_peek, through scratch (scratch_len
 * bytes at a time). -EIO if fewer are queued: the stream changed under the server. */
int srv_sock_discard(int fd, size_t n, void *scratch, size_t scratch_len);
/* Write what the socket takes now (without SIGPIPE): a count, possibly short, or -EAGAIN
 * when it takes nothing. */
ssize_t srv_sock_send(int fd, const void *buf, size_t len);

#endif
