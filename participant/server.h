/*
 * server.h — the participant's coordinator connections.
 *
 * One coord_conn per accepted TLS connection.  It checks the peer's
 * certificate name against allowed_coordinators, runs the HELLO handshake,
 * then decodes requests and hands them to branch.c (WORK) and resolve.c
 * (FINISH, LIST), which answer through the server_reply_* calls below.
 *
 * Objects that outlive a request (branches, phase-two requests) keep a
 * coord_conn pointer only while the connection lives: when it ends, every
 * one of them is detached (pointer set to NULL) before the coord_conn is
 * freed, and replies to a detached object are dropped.
 */
#ifndef DTX_PART_SERVER_H
#define DTX_PART_SERVER_H

#include "pconf.h"
#include "pgpool.h"
#include "proto.h"
#include "slots.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

/* PostgreSQL's limit for a prepared transaction's name is 200 bytes. */
#define BRANCH_NAME_MAX 200
#define COORD_NAME_MAX  63

typedef struct coord_conn coord_conn;

typedef struct server_env {
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    const part_conf *conf;
    pg_pool *pool;
    slots *slots;
} server_env;

/* Module set-up; env is copied. */
void server_init(const server_env *env);
const server_env *server_env_get(void);
/* Wrap an accepted socket (ownership of fd passes). */
void server_accept(int fd);
/* SIGTERM: refuse new work, roll back idle branches; phase two goes on. */
void server_shutdown_begin(void);
bool server_shutting_down(void);
/* No branch and no phase-two request is alive (nothing left to finish). */
bool server_quiescent(void);
/* Close every coordinator connection (their open branches roll back). */
void server_close_all(void);
/* Free what is left (after the event loop ended). */
void server_free(void);

/* --- for branch.c and resolve.c ------------------------------------------ */

/* Name of the coordinator (from its HELLO). */
const char *server_coord_name(const coord_conn *cc);
/* Is the connection's output over the high-water mark? */
bool server_backlogged(const coord_conn *cc);
void server_send(coord_conn *cc, const wbuf *w);
void server_reply_done(coord_conn *cc, const proto_done *d);
/* DONE with a status and nothing else. */
void server_reply_plain(coord_conn *cc, uint32_t tag, done_status st, uint64_t xid);
/* Convenience: DONE with a status and error fields (sqlstate NULL: none). */
void server_reply_status(coord_conn *cc, uint32_t tag, done_status st, uint64_t xid,
                         const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Connection-level protocol error: ERROR frame, close (detaches everything). */
void server_protocol_error(coord_conn *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Close without a reply (used by failpoints to simulate a lost reply). */
void server_drop(coord_conn *cc, const char *why);
/* Fencing hook for every request; on refusal a DONE_ERROR was sent. */
bool server_check_request(coord_conn *cc, uint32_t tag, uint64_t epoch)
    __attribute__((warn_unused_result));
/* A branch name this coordinator may use: "dtx:<its name>:" + letters,
 * digits, ':', '-', '_', '.'; shorter than BRANCH_NAME_MAX.  Never contains
 * a quote, so it can be put into SQL as a literal. */
bool server_check_branch_name(const coord_conn *cc, const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Both checks for a request naming a branch (WORK, FINISH, CANCEL); on
 * refusal a DONE_ERROR was sent (the fence's SQLSTATE, or 22023). */
bool server_check_branch_request(coord_conn *cc, uint32_t tag, uint64_t epoch, const char *name)
    __attribute__((warn_unused_result));

#endif
