/* corod_uv.c: libcorod's done-callbacks driven by a libuv loop: a uv_poll on the client's
 * fd calls corod_dispatch whenever it is readable. */
#include "corod/uv.h"

#include <errno.h>
#include <stdlib.h>

#include "corod_internal.h"

typedef struct corod_uv {
    uv_poll_t poll;
    uv_idle_t kick; /* active while notifications wait in the client, not in the fd */
    corod_client *c;
    int closing;
} corod_uv;

static void corod_uv_closed(uv_handle_t *h)
{
    corod_uv *u = h->data;
    if (--u->closing == 0)
        free(u);
}

static void corod_uv_dispatch(corod_uv *u)
{
    if (corod_dispatch(u->c) == -ECONNRESET)
        uv_poll_stop(&u->poll); /* the daemon went away: nothing more will come */
}

static void corod_uv_ready(uv_poll_t *h, int status, int events)
{
    (void)events;
    corod_uv *u = h->data;
    if (status < 0)
        uv_poll_stop(h);
    else
        corod_uv_dispatch(u);
}

static void corod_uv_kicked(uv_idle_t *h)
{
    corod_uv *u = h->data;
    uv_idle_stop(h);
    corod_uv_dispatch(u);
}

static void corod_uv_kick(corod_client *c)
{
    corod_uv *u = *corod__uv_slot(c);
    if (u)
        uv_idle_start(&u->kick, corod_uv_kicked);
}

int corod_uv_attach(corod_client *c, uv_loop_t *loop)
{
    void **slot = corod__uv_slot(c);
    if (*slot)
        return -EALREADY;
    corod_uv *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = uv_poll_init(loop, &u->poll, corod_fd(c));
    if (rc < 0) {
        free(u);
        return rc;
    }
    u->c = c;
    u->poll.data = u;
    uv_idle_init(loop, &u->kick);
    u->kick.data = u;
    if ((rc = uv_poll_start(&u->poll, UV_READABLE, corod_uv_ready)) < 0) {
        u->closing = 2;
        uv_close((uv_handle_t *)&u->poll, corod_uv_closed);
        uv_close((uv_handle_t *)&u->kick, corod_uv_closed);
        return rc;
    }
    *slot = u;
    corod__uv_set_kick(c, corod_uv_kick);
    /* Notifications queued by blocking calls before attaching are delivered too. */
    corod_dispatch(c);
    return 0;
}

void corod_uv_detach(corod_client *c)
{
    void **slot = corod__uv_slot(c);
    if (!*slot)
        return;
    corod_uv *u = *slot;
    uv_poll_stop(&u->poll);
    u->closing = 2;
    uv_close((uv_handle_t *)&u->poll, corod_uv_closed);
    uv_close((uv_handle_t *)&u->kick, corod_uv_closed);
    *slot = NULL;
}
