/*
 * resolver.h — resolution of in-doubt branches (resolver.c): finishing
 * logged commits and rolling back orphaned branches, after a restart and
 * periodically.
 */
#ifndef DTX_RESOLVER_H
#define DTX_RESOLVER_H

#include "coord.h"

/* Start the sweep timer and take the links' "ready" events; call once the
 * epoch is durable, before the links start. */
void resolver_start(coord *co);
void resolver_stop(coord *co);
/* a COMMIT's branches were not all finished in line: a pass soon */
void resolver_kick(coord *co);

#endif
