/*
 * ops.h — the participant's operations endpoint (ops.c): /metrics and the
 * health endpoints on http_listen (docs/operations.md).
 */
#ifndef DTX_PART_OPS_H
#define DTX_PART_OPS_H

#include "pconf.h"
#include "pgpool.h"
#include "slots.h"

#include <event2/event.h>
#include <stdbool.h>

/* Listen on conf->http_listen (nothing when unset); log_fatal on failure.
 * conf, pool and slots must outlive ops_stop. */
void ops_start(struct event_base *base, const part_conf *conf, pg_pool *pool, slots *sl);
/* A reload: new HTTPS handshakes use the (new) certificate. */
void ops_reloaded(void);
/* Shutting down: /ready answers 503 from now on. */
void ops_draining(void);
void ops_stop(void);

#endif
