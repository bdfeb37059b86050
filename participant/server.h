/*
 * server.h — the participant's coordinator connections.
 *
 * One coord_conn per accepted TLS connection.  It checks the peer's
 * certificate name against allowed_coordinators, runs the HELLO handshake,
 * then decodes requests and hands them to branch.c (WORK, CANCEL) and
 * resolve.c (FINISH, LIST), which answer through peer.h: server.c installs
 * the peer_ops table that lets them reach a coord_conn without calling
 * into this module.
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
#include "slots.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#define COORD_NAME_MAX 63

typedef struct server_env {
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    const part_conf *conf;
    pg_pool *pool;
    slots *slots;
} server_env;

/* Module set-up; env is copied.  Installs the peer_ops table and hands the
 * pool and the slots to branch.c and resolve.c. */
void server_init(const server_env *env);
/* Wrap an accepted socket (ownership of fd passes). */
void server_accept(int fd);
/* SIGTERM: refuse new work, roll back idle branches; phase two goes on. */
void server_shutdown_begin(void);
bool server_shutting_down(void);
/* No branch and no phase-two request is alive (nothing left to finish). */
bool server_quiescent(void);
/* Close every coordinator connection (their open branches roll back). */
void server_close_all(void);
/* The configuration (env.conf, changed in place) was reloaded: new
 * handshakes use ssl_ctx (a reference is taken), admission limits are
 * taken again, and connections whose certificate name is no longer allowed
 * are told so and closed (their open branches roll back). */
void server_reloaded(SSL_CTX *ssl_ctx);
/* Free what is left (after the event loop ended). */
void server_free(void);

#endif
