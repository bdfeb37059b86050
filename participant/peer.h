/*
 * peer.h — the coordinator connection a request came on, as the request
 * handlers (branch.c, resolve.c) see it: how they answer, the checks every
 * request passes, and the few things they ask about the connection.
 *
 * server.c owns the connections (coord_conn, opaque here) and sits above
 * the handlers: it decodes each request and calls them.  They reach back
 * only through the peer_ops table server.c installs with peer_set_ops() at
 * start-up — as a conn reaches its owner through conn.h's conn_ops — so the
 * handlers never include server.h and the modules' dependencies run one
 * way (docs/architecture.md, "Layers").
 *
 * A coord_conn pointer is valid only while the connection lives: server.c
 * detaches every branch and request (their pointer set to NULL) before it
 * frees one.  The replies, peer_send(), peer_drop(), peer_name() and
 * peer_backlogged() take NULL (a detached object) and then do nothing.
 */
#ifndef DTX_PART_PEER_H
#define DTX_PART_PEER_H

#include "buf.h"
#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PostgreSQL's limit for a prepared transaction's name is 200 bytes. */
#define BRANCH_NAME_MAX 200

typedef struct coord_conn coord_conn;

/* What server.c does for the handlers; cc is never NULL here. */
typedef struct peer_ops {
    /* Name of the coordinator (from its HELLO), in cc's memory. */
    const char *(*name)(const coord_conn *cc);
    /* The epoch its HELLO was admitted with. */
    uint64_t (*epoch)(const coord_conn *cc);
    /* Is the connection's output over the high-water mark? */
    bool (*backlogged)(const coord_conn *cc);
    /* Queue encoded frames. */
    void (*send)(coord_conn *cc, const wbuf *w);
    /* Connection-level protocol error: ERROR frame with msg, close (every
     * branch and request of cc is detached before this returns). */
    void (*protocol_error)(coord_conn *cc, const char *msg);
    /* Close without a reply (failpoints: a lost reply); detaches too. */
    void (*drop)(coord_conn *cc, const char *why);
    /* Has the participant begun to shut down (no new work)? */
    bool (*shutting_down)(void);
} peer_ops;

/* Install the table (server.c, before the first request).  ops is kept, not
 * copied. */
void peer_set_ops(const peer_ops *ops);

/* The coordinator's HELLO name; "" for NULL.  The connection's memory:
 * valid while it lives, never freed by the caller. */
const char *peer_name(const coord_conn *cc);
bool peer_backlogged(const coord_conn *cc);
void peer_send(coord_conn *cc, const wbuf *w);
void peer_reply_done(coord_conn *cc, const proto_done *d);
/* DONE with a status and nothing else. */
void peer_reply_plain(coord_conn *cc, uint32_t tag, done_status st, uint64_t xid);
/* DONE with a status and error fields (sqlstate NULL: none). */
void peer_reply_status(coord_conn *cc, uint32_t tag, done_status st, uint64_t xid,
                       const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Connection-level protocol error: ERROR frame, close (detaches everything). */
void peer_protocol_error(coord_conn *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Close without a reply (used by failpoints to simulate a lost reply). */
void peer_drop(coord_conn *cc, const char *why);
bool peer_shutting_down(void);

/* Fencing for every request; on refusal a DONE_ERROR was sent: 08004 for
 * an epoch lower than the fence's (naming both), or other than the one
 * this connection's HELLO was admitted with. */
bool peer_check_request(coord_conn *cc, uint32_t tag, uint64_t epoch)
    __attribute__((warn_unused_result));
/* For a request that waited (for a connection, a slot) before anything of
 * it is sent: is epoch still admitted for cc's coordinator?  false, with
 * the SQLSTATE (a string constant) in *sqlstate and a message in err, when
 * a higher epoch has been admitted meanwhile or cc is NULL (detached: its
 * coordinator is gone). */
bool peer_still_admitted(const coord_conn *cc, uint64_t epoch, const char **sqlstate, char *err,
                         size_t errlen) __attribute__((warn_unused_result));
/* A branch name this coordinator may use: "dtx:<its name>:" + letters,
 * digits, ':', '-', '_', '.'; shorter than BRANCH_NAME_MAX.  Never contains
 * a quote, so it can be put into SQL as a literal. */
bool peer_check_branch_name(const coord_conn *cc, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Both checks for a request naming a branch (WORK, FINISH, CANCEL); on
 * refusal a DONE_ERROR was sent (the fence's SQLSTATE, or 22023). */
bool peer_check_branch_request(coord_conn *cc, uint32_t tag, uint64_t epoch, const char *name)
    __attribute__((warn_unused_result));

#endif
