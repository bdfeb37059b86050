/*
 * ops.h — the coordinator's operations endpoint (ops.c): /metrics and the
 * health endpoints on http_listen (docs/operations.md).
 */
#ifndef DTX_OPS_H
#define DTX_OPS_H

#include "coord.h"

#include <event2/buffer.h>

/* Listen on conf.http_listen (nothing when unset); log_fatal on failure. */
void ops_start(coord *co);
/* A reload's new TLS context for new HTTPS connections (http_tls). */
void ops_reloaded(coord *co);
void ops_stop(coord *co);
/* Every metric, in Prometheus' text format (exported for the tests). */
void ops_write_metrics(coord *co, struct evbuffer *out);

#endif
