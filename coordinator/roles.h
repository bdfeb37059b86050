/*
 * roles.h — how a coordinator becomes primary (at start-up, or by
 * promotion) or runs as a standby (roles.c), and its listener.
 */
#ifndef DTX_ROLES_H
#define DTX_ROLES_H

#include "coord.h"

/* Start as the configuration says: a standby when [standby] names a
 * primary, else a primary (after asking its standby, when one is
 * configured, whether it has been promoted).  The log must be open. */
void roles_start(coord *co);
/* Stop accepting connections (shutdown). */
void roles_stop_listening(coord *co);
/* Teardown: stop listening, drop a promotion still fencing. */
void roles_shutdown(coord *co);

#endif
