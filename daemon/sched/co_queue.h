/* co_queue.h: the daemon's one intrusive list, for the runtime and the server alike — a
 * circular doubly linked list through a sentinel head, as libuv's src/queue.h. An element
 * embeds one node per list it can be in; inserting and removing are O(1) and need no
 * pointer to the head. A removed node points at itself, so "is it in a list" is one
 * comparison (co_queue_linked), and removing it again is harmless. */
#ifndef CO_QUEUE_H
#define CO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct co_queue {
    struct co_queue *next, *prev;
} co_queue;

#define co_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define co_queue_data(q, type, member) co_container_of(q, type, member)

/* A head, or a node that is in no list. */
static inline void co_queue_init(co_queue *q)
{
    q->next = q->prev = q;
}

static inline bool co_queue_empty(const co_queue *h)
{
    return h->next == h;
}

/* A node: whether it is in a list (it was initialised or removed otherwise). */
static inline bool co_queue_linked(const co_queue *q)
{
    return q->next != q;
}

/* The first element, or NULL when the list is empty. */
static inline co_queue *co_queue_first(const co_queue *h)
{
    return h->next == h ? NULL : h->next;
}

/* The element after q in the list headed by h, or NULL at the end. */
static inline co_queue *co_queue_after(const co_queue *h, const co_queue *q)
{
    return q->next == h ? NULL : q->next;
}

static inline void co_queue_insert_tail(co_queue *h, co_queue *q)
{
    q->next = h;
    q->prev = h->prev;
    q->prev->next = q;
    h->prev = q;
}

static inline void co_queue_insert_head(co_queue *h, co_queue *q)
{
    q->next = h->next;
    q->prev = h;
    q->next->prev = q;
    h->next = q;
}

static inline void co_queue_remove(co_queue *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
    q->next = q->prev = q;
}

/* Every node of the list headed by h. The walk must not remove the node it stands on (a
 * removed node points at itself): drain a list with co_queue_first in a loop instead. */
#define co_queue_foreach(q, h) for ((q) = (h)->next; (q) != (h); (q) = (q)->next)

#endif
