/*
 * resolver.h — resolution of in-doubt branches (resolver.c): finishing
 * logged commits and rolling back orphaned branches, after a restart and
 * periodically.
 */
#ifndef DTX_RESOLVER_H
#define DTX_RESOLVER_H

#include "coord.h"

/* Start the sweep timer; call once the epoch is durable, before the links
 * start. */
void resolver_start(coord *co);
/* A link has become ready: both jobs for it now (roles.c forwards the
 * links' "ready" events here). */
void resolver_link_ready(coord *co, plink *l);
void resolver_stop(coord *co);
/* a COMMIT's branches were not all finished in line: a pass soon */
void resolver_kick(coord *co);
/* sweep_interval changed (reload): the timer takes it from now on */
void resolver_set_interval(coord *co);
/* Branches of ours without a decision that the last listing of link i found
 * (being rolled back), and the oldest one's prepared_ms; false before any
 * listing. */
bool resolver_orphans(const coord *co, int i, uint32_t *n, uint64_t *oldest_ms);

#endif
