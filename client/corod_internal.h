/* corod_internal.h: what libcorod.c and corod_uv.c share, and no one else. */
#ifndef COROD_INTERNAL_H
#define COROD_INTERNAL_H

#include "corod/client.h"

/* Where corod_uv keeps its attachment (NULL when not attached). */
void **corod__uv_slot(corod_client *c);
/* What libcorod calls, after a blocking call left notifications buffered, on a client
 * attached to a loop: corod_uv dispatches them on its loop's next turn (the fd will not
 * say they are there). A pointer set by corod_uv_attach, so that a program that never
 * attaches links (and loads) no libuv. */
void corod__uv_set_kick(corod_client *c, void (*kick)(corod_client *c));

#endif
