/*
 * walsend.h — the primary's side of replication (walsend.c): the log
 * streamed to a standby, its acknowledgements, and whether commits wait
 * for it.
 */
#ifndef DTX_WALSEND_H
#define DTX_WALSEND_H

#include "coord.h"

#include "conn.h"
#include "proto_repl.h"

typedef struct walsend walsend;

/* Take part in the primary's durability (clog events) and start the
 * stream's timer; call once the log is open, before clients connect.  With
 * wait_for_standby set (the log says a standby was synchronous), every
 * record from now on waits for a standby's acknowledgement, as if the
 * synchronous standby had just gone away, and wait_for_standby(co) is
 * called once a standby is synchronous again (or sync_standby_timeout gave
 * up on it). */
void walsend_init(coord *co, void (*wait_for_standby)(coord *co));
void walsend_shutdown(coord *co);
/* A standby's connection (HELLO role ROLE_STANDBY, its certificate name
 * allowed): the client module hands its frames over from now on.  NULL
 * (and an ERROR sent) when another standby is streaming already.  When the
 * stream breaks outside a frame (the log cannot be read), an ERROR is sent
 * and broken(owner) is called: the owner then frees its connection later,
 * never from inside that call.  The walsend is freed by walsend_gone. */
walsend *walsend_start(coord *co, conn *c, const char *name, void (*broken)(void *owner),
                       void *owner);
/* A frame from that standby: false when the connection must be closed
 * (an ERROR was sent). */
bool walsend_on_frame(walsend *ws, const frame_view *f);
/* Its connection ended (the walsend is freed). */
void walsend_gone(walsend *ws, const char *reason);
/* The primary's view for REPLICATION; strings are valid until the loop
 * runs again. */
void walsend_describe(coord *co, proto_replication *out);

#endif
