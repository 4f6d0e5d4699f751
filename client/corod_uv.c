/* corod_uv.c: libcorod's done-callbacks driven by a libuv loop: a uv_poll on the client's
 * fd calls corod_dispatch whenever it is readable. */
#include "corod/uv.h"

#include <errno.h>
#include <stdlib.h>

void *corod__uv_slot(corod_client *c); /* libcorod.c: where the attachment lives */

typedef struct corod_uv {
    uv_poll_t poll;
    corod_client *c;
} corod_uv;

static void corod_uv_closed(uv_handle_t *h)
{
    free(h);
}

static void corod_uv_ready(uv_poll_t *h, int status, int events)
{
    (void)events;
    corod_uv *u = h->data;
    if (status < 0 || corod_dispatch(u->c) == -ECONNRESET)
        uv_poll_stop(h); /* the daemon went away: nothing more will come */
}

int corod_uv_attach(corod_client *c, uv_loop_t *loop)
{
    corod_uv **slot = corod__uv_slot(c);
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
    if ((rc = uv_poll_start(&u->poll, UV_READABLE, corod_uv_ready)) < 0) {
        uv_close((uv_handle_t *)&u->poll, corod_uv_closed);
        return rc;
    }
    *slot = u;
    /* Notifications queued by blocking calls before attaching are delivered too. */
    corod_dispatch(c);
    return 0;
}

void corod_uv_detach(corod_client *c)
{
    corod_uv **slot = corod__uv_slot(c);
    if (!*slot)
        return;
    uv_poll_stop(&(*slot)->poll);
    uv_close((uv_handle_t *)&(*slot)->poll, corod_uv_closed);
    *slot = NULL;
}
