/* corod/uv.h: libcorod on a libuv loop — polls the client's fd and dispatches
 * done-callbacks from the loop. */
#ifndef COROD_UV_H
#define COROD_UV_H

#include <uv.h>

#include "corod/client.h"

/* Start dispatching `c` on `loop`. Returns 0 or a negative errno. */
int corod_uv_attach(corod_client *c, uv_loop_t *loop);
/* Stop; the poll handle is closed on the loop's next turn. */
void corod_uv_detach(corod_client *c);

#endif
