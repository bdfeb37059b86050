/*
 * client.h — connections from applications (client.c).
 */
#ifndef DTX_CLIENT_H
#define DTX_CLIENT_H

#include "coord.h"

/* A new connection on fd (accepted by main.c); the client owns fd. */
void client_accept(coord *co, int fd);
/* Shutdown: close every client not in the middle of a request (all of
 * them on a fast shutdown). */
void client_close_all(coord *co);

#endif
