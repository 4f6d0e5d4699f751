/* sy_notify: what the service manager is told (sd_notify(3)'s protocol): READY=1 once
 * serving, STATUS= kept current, WATCHDOG=1 while the loop turns, RELOADING=1 and
 * STOPPING=1. libsystemd's sd_notify opens a blocking socket per call; a service manager
 * that stops reading would then stop the loop it is meant to watch. Here one socket is
 * opened at start and every datagram is sent without waiting: one that cannot go now is
 * dropped (the next status or ping says the same again). */
#ifndef SY_NOTIFY_H
#define SY_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Opens $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace) and unsets it, so
 * that jobs do not inherit it. 0 (also when there is none), or a negative errno. */
int sy_notify_open(void);
void sy_notify_close(void);
/* Sends `state` ("READY=1", "STATUS=...\n..."): true if it went. */
bool sy_notify(const char *state);
bool sy_notify_enabled(void);

/* The service's watchdog interval in µs ($WATCHDOG_USEC, for this pid), 0: none. */
uint64_t sy_watchdog_usec(void);

/* The service's heartbeat on the loop: WATCHDOG=1 every half watchdog interval, and
 * STATUS= from `status` once a second when it changed. The timers do not keep the loop
 * alive; sy_service_stop closes them (and says STOPPING=1). */
typedef void sy_status_fn(char *buf, size_t len, void *arg);
typedef struct sy_service {
    uv_timer_t watchdog, status;
    sy_status_fn *status_fn;
    void *status_arg;
    char last[256];
    bool started;
} sy_service;

int sy_service_start(sy_service *s, uv_loop_t *loop, sy_status_fn *fn, void *arg);
/* Now: STATUS= at once (around a reload), whatever the timer says. */
void sy_service_status(sy_service *s);
void sy_service_stop(sy_service *s);

#define SY_STATUS_EVERY_MS 1000u

#endif
