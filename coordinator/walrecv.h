/*
 * walrecv.h — the standby's side of replication (walrecv.c): the
 * connection to the primary, the log received and made durable, and
 * whether this standby may be promoted.
 */
#ifndef DTX_WALRECV_H
#define DTX_WALRECV_H

#include "coord.h"

#include "proto_repl.h"

/* Start streaming from [standby] primary = host:port (reconnecting with
 * back-off); call once the log is open. */
void walrecv_start(coord *co);
/* Stream from addr instead ([ha]: the leader key names it), from now on;
 * starts the state when there is none yet.  false (nothing changed) when
 * addr is not host:port, or a fork's cut is under way: ask again later. */
bool walrecv_follow(coord *co, const char *addr);
/* Is the primary streaming to this standby right now? */
bool walrecv_streaming(const coord *co);
/* Stop for good (promotion, shutdown): the connection is closed.  The
 * state stays (durability callbacks of what was received refer to it)
 * until walrecv_free, once the log is closed. */
void walrecv_stop(coord *co);
void walrecv_free(coord *co);
/* The log is being cut back (a fork): no promotion meanwhile. */
bool walrecv_cutting(const coord *co);
/* May this standby be promoted without --force?  false with the reason in
 * why: it may lack a decision the primary acknowledged. */
bool walrecv_sure(coord *co, char *why, size_t whylen);
/* The standby's view for REPLICATION; strings valid until the loop runs
 * again. */
void walrecv_describe(coord *co, proto_replication *out);

#endif
