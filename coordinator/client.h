/*
 * client.h — connections from applications (client.c).
 */
#ifndef DTX_CLIENT_H
#define DTX_CLIENT_H

#include "coord.h"

/* What the client module asks of the module above it (main.c), set by
 * client_init. */
typedef struct client_events {
    /* An admin asked this standby to become primary: false (with the reason
     * in err) when it may not; true when the promotion has begun, answered
     * later through client_promote_done. */
    bool (*promote)(coord *co, bool force, char *err, size_t errlen);
} client_events;

void client_init(coord *co, const client_events *ev);
/* The promotion has ended: the admin that asked (if still connected) gets
 * ADMIN_OK with message, or an ERROR with sqlstate when sqlstate is set. */
void client_promote_done(coord *co, const char *sqlstate, const char *message);

/* A new connection on fd (accepted by main.c); the client owns fd. */
void client_accept(coord *co, int fd);
/* Shutdown: close every client not in the middle of a request (all of
 * them on a fast shutdown). */
void client_close_all(coord *co);
/* The configuration was reloaded: admission limits from it; clients whose
 * certificate name is no longer allowed are told so and closed (a
 * transaction of theirs goes on to its decision without them). */
void client_reloaded(coord *co);

#endif
