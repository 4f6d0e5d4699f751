/* srv_list.h: the server's intrusive doubly linked lists — connections, a connection's
 * waits, subscriptions and output reads. An element has `prev` and `next`; the list is a
 * head pointer. */
#ifndef SRV_LIST_H
#define SRV_LIST_H

#define SRV_LIST_PUSH(head, it)                                                              \
    do {                                                                                     \
        (it)->prev = NULL;                                                                   \
        (it)->next = (head);                                                                 \
        if (head)                                                                            \
            (head)->prev = (it);                                                             \
        (head) = (it);                                                                       \
    } while (0)

#define SRV_LIST_UNLINK(head, it)                                                            \
    do {                                                                                     \
        if ((it)->prev)                                                                      \
            (it)->prev->next = (it)->next;                                                   \
        else                                                                                 \
            (head) = (it)->next;                                                             \
        if ((it)->next)                                                                      \
            (it)->next->prev = (it)->prev;                                                   \
    } while (0)

#endif
