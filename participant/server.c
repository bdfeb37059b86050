/*
 * server.c — see server.h.
 *
 * NOTES
 *  What this file owns: every coord_conn (a global doubly-linked list), the
 *  start-up handshake, and the decoding of the first bytes of each request
 *  (type and tag) before branch.c / resolve.c take over, and the peer_ops
 *  table (peer.h) through which those two reach a coord_conn: they sit
 *  below this file and never call into it directly.
 *
 *  Life cycle of a coord_conn (cc_set_state() is the only place that
 *  changes `state`):
 *
 *     HANDSHAKE --TLS up, name allowed--> HELLO --epoch already durable--> READY
 *         |                                 |                               ^
 *         |                                 +--new epoch--> FENCING --------+ recorded
 *         |                                 |                  |            |
 *         +-- TLS error / name refused -----+-- bad frame, EOF, refused ----+--> CLOSED (freed)
 *                                                                           |
 *                shutdown (server_close_all) --> CLOSING -------------------+ EOF, or exit
 *
 *    HANDSHAKE  TLS handshake running; authentication_timeout (from the
 *               accept) bounds it and everything up to READY
 *    HELLO      TLS up, the peer's certificate name is allowed; the first
 *               frame must be HELLO from a coordinator
 *    FENCING    the HELLO's epoch is new: its record in the fence table
 *               runs (resolve_fence_record); nothing may arrive meanwhile
 *               (a frame is a protocol error), and HELLO_OK is sent only
 *               once the record is committed
 *    READY      requests are served; many may be in flight, each answered
 *               under its own tag
 *    CLOSING    shutting down: ERROR 57P01 was sent and everything was
 *               detached; frames are ignored until the peer closes or the
 *               process exits
 *    CLOSED     the conn is closed or closing; all branches and requests
 *               of this connection were detached; the struct is freed at
 *               once (conn.c keeps its own memory until no callback can
 *               reach it, and we clear its arg so none reaches us)
 *
 *  Invariant: a coord_conn on the list is never CLOSED; a branch or
 *  request holding a coord_conn pointer is on that coord_conn's set.
 *
 *  Fencing (fence.h): a HELLO is admitted only when the fence has, durably,
 *  exactly its (epoch, instance) — at once when it had them already (a
 *  reconnect), else after the record.  Whenever a record completes, every
 *  READY connection of that coordinator the fence no longer admits (a
 *  lower epoch) gets ERROR 08004 naming both epochs and is closed, before
 *  the new HELLO_OK goes out: its waiting requests are dropped and its
 *  open branches roll back, so none of them runs after the new epoch was
 *  told it holds the fence.
 *
 *  Admission: until READY a connection is one of conn.c's authenticating
 *  ones (conn.h, "Admission"), whose rules server_init sets from the
 *  configuration: authentication_timeout, counted from the accept (not an
 *  idle time-out: a peer that trickles bytes gains nothing), and
 *  max_authenticating, at which the oldest is dropped.  cc_ready ends it.
 *  Failures before READY are counted and summed up by conn.c; the
 *  allow-list refusal below goes through the same rate limit.
 *
 *  Peer names: conn.c hands us the certificate's subject CN, verified
 *  against tls_ca during the handshake (mutual TLS, a client without a
 *  certificate fails the handshake).  The allow-list is checked here, after
 *  the handshake, so that a refused coordinator gets a readable ERROR frame
 *  (SQLSTATE 28000) instead of a bare TLS alert.
 */
#include "server.h"

#include "branch.h"
#include "conn.h"
#include "fence.h"
#include "log.h"
#include "peer.h"
#include "resolve.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum cc_state {
    CC_HANDSHAKE = 0,
    CC_HELLO,
    CC_FENCING,
    CC_READY,
    CC_CLOSING,
    CC_CLOSED,
} cc_state;

struct coord_conn {
    cc_state state;
    conn *c;
    char addr[64];
    char cert_name[256];
    char name[COORD_NAME_MAX + 1];
    uint64_t epoch;
    uint64_t instance;
    uint16_t minor; /* protocol minor of its HELLO */
    branch_set branches;
    resolve_set resolves;
    coord_conn *next, *prev;
};

static server_env srv_env;
static coord_conn *srv_list;
static bool srv_shutting_down;

static void
cc_set_state(coord_conn *cc, cc_state st)
{
    switch (st) {
    case CC_HELLO:
        if (cc->state != CC_HANDSHAKE)
            abort();
        break;
    case CC_FENCING:
        if (cc->state != CC_HELLO)
            abort();
        break;
    case CC_READY:
        if (cc->state != CC_HELLO && cc->state != CC_FENCING)
            abort();
        break;
    case CC_CLOSING:
        if (cc->state == CC_CLOSED || cc->state == CC_CLOSING)
            abort();
        break;
    case CC_CLOSED:
        if (cc->state == CC_CLOSED)
            abort();
        break;
    case CC_HANDSHAKE:
    default:
        abort();
    }
    cc->state = st;
}

static const peer_ops srv_peer_ops;

void
server_init(const server_env *env)
{
    srv_env = *env;
    SSL_CTX_up_ref(srv_env.ssl_ctx); /* released by server_free */
    peer_set_ops(&srv_peer_ops);
    conn_admission a = {.timeout_ms = env->conf->authentication_timeout_ms,
                        .max_authenticating = env->conf->max_authenticating};
    conn_admission_set(&a);
    branch_init(env->pool, env->slots, env->conf);
    resolve_init(env->pool, env->slots, (size_t)env->conf->max_frame);
}

/* Detach every branch and request of cc: unprepared branches roll back. */
static void
cc_detach(coord_conn *cc)
{
    if (cc->branches.n > 0)
        log_log("coordinator \"%s\" gone: rolling back %d open branch%s", cc->name, cc->branches.n,
                cc->branches.n == 1 ? "" : "es");
    branch_detach_all(&cc->branches);
    resolve_detach_all(&cc->resolves);
}

/* Detach everything of cc and free it.  The conn must already be closed or
 * closing, with its arg cleared. */
static void
cc_destroy(coord_conn *cc)
{
    cc_set_state(cc, CC_CLOSED);
    cc_detach(cc);
    if (cc->prev)
        cc->prev->next = cc->next;
    else
        srv_list = cc->next;
    if (cc->next)
        cc->next->prev = cc->prev;
    free(cc);
}

static void __attribute__((format(printf, 3, 4)))
cc_fail(coord_conn *cc, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    conn *c = cc->c;
    conn_set_arg(c, NULL);
    conn_fail(c, sqlstate, "%s", msg);
    cc_destroy(cc);
}

/* Connection-level protocol error: ERROR frame, close (detaches everything). */
static void __attribute__((format(printf, 2, 3)))
cc_protocol_error(coord_conn *cc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_report(LOG_LVL_WARNING, "08P01", NULL, NULL,
               "protocol violation by coordinator \"%s\" from %s: %s", cc->name, cc->addr, msg);
    cc_fail(cc, "08P01", "%s", msg);
}

/* ------------------------------------------------------------------------
 * conn callbacks
 */

static void
cc_on_open(conn *c, const char *peer_name, void *arg)
{
    coord_conn *cc = arg;
    if (cc == NULL)
        return;
    snprintf(cc->addr, sizeof(cc->addr), "%s", conn_peer_addr(c));
    snprintf(cc->cert_name, sizeof(cc->cert_name), "%s", peer_name ? peer_name : "");
    /* the coordinator's rule: the CN or any DNS subjectAltName on the list */
    char name[256];
    if (!conn_peer_allowed(c, (const char *const *)srv_env.conf->allowed, srv_env.conf->n_allowed,
                           name, sizeof(name))) {
        if (conn_refusal_note(c, CONN_REFUSED_NAME))
            log_report(LOG_LVL_WARNING, "28000", NULL, NULL,
                       "refused coordinator connection from %s: certificate name \"%s\" is not "
                       "allowed",
                       cc->addr, cc->cert_name);
        cc_fail(cc, "28000", "coordinator certificate name \"%s\" is not allowed", cc->cert_name);
        return;
    }
    cc_set_state(cc, CC_HELLO);
}

static bool
valid_coord_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return n > 0 && n <= COORD_NAME_MAX;
}

/* A HELLO this participant can serve: a coordinator of protocol 1 with a
 * valid name; false after refusing it (cc is then gone). */
static bool
cc_hello_valid(coord_conn *cc, const frame_view *f, proto_hello *h)
{
    if (f->type != MSG_HELLO || !proto_get_hello(f, h)) {
        cc_fail(cc, "08P01", "expected a HELLO message");
        return false;
    }
    if (h->magic != PROTO_MAGIC) {
        cc_fail(cc, "08P01", "invalid HELLO: bad protocol magic 0x%08x", h->magic);
        return false;
    }
    if (h->major != PROTO_MAJOR) {
        cc_fail(cc, "08P01", "unsupported protocol version %u.%u (this participant speaks %d.%d)",
                h->major, h->minor, PROTO_MAJOR, PROTO_MINOR);
        return false;
    }
    if (h->role != ROLE_COORDINATOR) {
        cc_fail(cc, "28000", "only coordinators may connect to a participant");
        return false;
    }
    if (!valid_coord_name(h->name)) {
        cc_fail(cc, "08P01",
                "invalid coordinator name \"%.64s\": use 1 to %d letters, digits and '-'", h->name,
                COORD_NAME_MAX);
        return false;
    }
    return true;
}

/* Refuse the HELLO of cc (frees cc). */
static void
cc_refuse(coord_conn *cc, const char *sqlstate, const char *msg)
{
    log_report(LOG_LVL_WARNING, sqlstate, NULL, NULL, "refused coordinator from %s: %s", cc->addr,
               msg);
    cc_fail(cc, sqlstate, "%s", msg);
}

/* The HELLO is admitted: READY, HELLO_OK. */
static void
cc_ready(coord_conn *cc)
{
    cc_set_state(cc, CC_READY);
    conn_authenticated(cc->c);
    wbuf w;
    wbuf_init(&w);
    /* 1.6: the budget against which the coordinator admits PREPAREs
     * (slots.h), which an older one could not decode */
    proto_hello_ok ok = {.major = PROTO_MAJOR,
                         .minor = PROTO_MINOR,
                         .server_name = srv_env.conf->name,
                         .epoch = cc->epoch,
                         .slots = cc->minor >= 6 ? (uint32_t)slots_budget(srv_env.slots) : 0};
    if (proto_put_hello_ok(&w, &ok) && wbuf_ok(&w))
        conn_send(cc->c, &w);
    wbuf_free(&w);
    log_log("coordinator \"%s\" (epoch %" PRIu64 ", instance %" PRIu64
            ", certificate \"%s\") connected from %s",
            cc->name, cc->epoch, cc->instance, cc->cert_name, cc->addr);
}

/* Close every READY connection of coordinator name whose epoch the fence
 * no longer admits, with ERROR 08004 naming both epochs. */
static void
srv_close_fenced(const char *name)
{
    coord_conn *next;
    for (coord_conn *cc = srv_list; cc; cc = next) {
        next = cc->next;
        char err[256];
        if (cc->state != CC_READY || strcmp(cc->name, name) != 0 ||
            fence_check(cc->name, cc->epoch, err, sizeof(err)))
            continue;
        log_report(LOG_LVL_LOG, FENCE_SQLSTATE, NULL, NULL,
                   "closing the connection of coordinator \"%s\" from %s: %s", cc->name, cc->addr,
                   err);
        cc_fail(cc, FENCE_SQLSTATE, "%s", err);
    }
}

/* resolve_fence_fn: the record of a HELLO's epoch is over. */
static void
srv_fence_recorded(coord_conn *cc, const char *name, bool admitted, const char *sqlstate,
                   const char *message)
{
    srv_close_fenced(name);
    if (cc == NULL)
        return;
    if (!admitted) {
        cc_refuse(cc, sqlstate, message);
        return;
    }
    log_log("coordinator \"%s\": epoch %" PRIu64 " of instance %" PRIu64 " recorded in %s",
            cc->name, cc->epoch, cc->instance, fence_table());
    cc_ready(cc);
}

static void
cc_on_hello(coord_conn *cc, const frame_view *f)
{
    proto_hello h;
    if (!cc_hello_valid(cc, f, &h))
        return;
    snprintf(cc->name, sizeof(cc->name), "%s", h.name);
    cc->epoch = h.epoch;
    cc->instance = h.instance;
    cc->minor = h.minor;
    char err[256];
    switch (fence_admit(h.name, h.epoch, h.instance, err, sizeof(err))) {
    case FENCE_ADMIT:
        cc_ready(cc);
        return;
    case FENCE_RECORD:
        /* HELLO_OK only from the record's completion (cc may be gone when
         * this returns: nothing may touch it after) */
        cc_set_state(cc, CC_FENCING);
        resolve_fence_record(cc, &cc->resolves, cc->name, cc->epoch, cc->instance,
                             srv_fence_recorded);
        return;
    case FENCE_REFUSE:
        cc_refuse(cc, FENCE_SQLSTATE, err);
        return;
    default:
        abort();
    }
}

static void
cc_on_frame(conn *c, const frame_view *f, void *arg)
{
    (void)c;
    coord_conn *cc = arg;
    if (cc == NULL)
        return;
    switch (cc->state) {
    case CC_HELLO:
        cc_on_hello(cc, f);
        return;
    case CC_FENCING:
        cc_protocol_error(cc, "unexpected message before HELLO_OK");
        return;
    case CC_READY:
        break;
    case CC_HANDSHAKE:
    case CC_CLOSING:
    case CC_CLOSED:
        return;
    default:
        abort();
    }
    switch (f->type) {
    case MSG_WORK:
        branch_on_work(cc, &cc->branches, f);
        break;
    case MSG_FINISH:
        resolve_on_finish(cc, &cc->resolves, f);
        break;
    case MSG_LIST:
        resolve_on_list(cc, &cc->resolves, f);
        break;
    case MSG_CANCEL:
        branch_on_cancel(cc, &cc->branches, f);
        break;
    case MSG_HELLO:
        cc_protocol_error(cc, "unexpected second HELLO");
        break;
    default:
        cc_protocol_error(cc, "unexpected message type '%c' (0x%02x)",
                          f->type >= 0x20 && f->type < 0x7f ? f->type : '?', f->type);
        break;
    }
}

static void
cc_on_close(conn *c, const char *reason, void *arg)
{
    (void)c;
    coord_conn *cc = arg;
    if (cc == NULL)
        return;
    switch (cc->state) {
    case CC_HANDSHAKE: /* counted, and logged if need be, by conn.c */
        log_debug("could not accept coordinator connection from %s: %s", conn_peer_addr(c), reason);
        break;
    case CC_HELLO:
        log_debug("coordinator connection from %s closed before HELLO: %s", cc->addr, reason);
        break;
    case CC_FENCING:
        log_log("coordinator \"%s\" from %s closed its connection while its epoch %" PRIu64
                " was being recorded: %s",
                cc->name, cc->addr, cc->epoch, reason);
        break;
    case CC_READY:
        log_log("connection of coordinator \"%s\" from %s closed: %s", cc->name, cc->addr, reason);
        break;
    case CC_CLOSING:
        /* shutting down: the coordinator hung up after our 57P01 */
        log_debug("connection of coordinator \"%s\" from %s closed during shutdown: %s", cc->name,
                  cc->addr, reason);
        break;
    case CC_CLOSED:
    default:
        abort();
    }
    cc_destroy(cc);
}

static const conn_ops cc_ops = {
    .on_open = cc_on_open,
    .on_frame = cc_on_frame,
    .on_close = cc_on_close,
};

void
server_accept(int fd)
{
    if (srv_shutting_down) {
        close(fd);
        return;
    }
    coord_conn *cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        log_error("out of memory accepting a connection");
        close(fd);
        return;
    }
    cc->state = CC_HANDSHAKE;
    cc->c = conn_accept(srv_env.base, srv_env.ssl_ctx, fd, (uint32_t)srv_env.conf->max_frame,
                        &cc_ops, cc);
    if (cc->c == NULL) {
        log_error("could not set up a TLS connection");
        free(cc);
        return;
    }
    cc->next = srv_list;
    if (srv_list)
        srv_list->prev = cc;
    srv_list = cc;
}

/* ------------------------------------------------------------------------
 * peer_ops: what branch.c and resolve.c may do with a coord_conn (peer.h;
 * peer.c has already turned away a NULL cc)
 */

/* cc's own buffer: valid while cc lives, never freed by the caller. */
static const char *
srv_peer_name(const coord_conn *cc)
{
    return cc->name;
}

static uint64_t
srv_peer_epoch(const coord_conn *cc)
{
    return cc->epoch;
}

static bool
srv_peer_backlogged(const coord_conn *cc)
{
    return conn_pending_output(cc->c) > CONN_OUT_HIGH;
}

static void
srv_peer_send(coord_conn *cc, const wbuf *w)
{
    conn_send(cc->c, w);
}

static void
srv_peer_protocol_error(coord_conn *cc, const char *msg)
{
    cc_protocol_error(cc, "%s", msg);
}

static void
srv_peer_drop(coord_conn *cc, const char *why)
{
    log_log("dropping the connection of coordinator \"%s\": %s", cc->name, why);
    conn *c = cc->c;
    conn_set_arg(c, NULL);
    conn_close(c);
    cc_destroy(cc);
}

static const peer_ops srv_peer_ops = {
    .name = srv_peer_name,
    .epoch = srv_peer_epoch,
    .backlogged = srv_peer_backlogged,
    .send = srv_peer_send,
    .protocol_error = srv_peer_protocol_error,
    .drop = srv_peer_drop,
    .shutting_down = server_shutting_down,
};

/* ------------------------------------------------------------------------
 * Shutdown
 */

void
server_shutdown_begin(void)
{
    srv_shutting_down = true;
    branch_shutdown_all();
}

bool
server_shutting_down(void)
{
    return srv_shutting_down;
}

bool
server_quiescent(void)
{
    return branch_live_count() == 0 && resolve_live_count() == 0;
}

void
server_reloaded(SSL_CTX *ssl_ctx)
{
    SSL_CTX_up_ref(ssl_ctx);
    SSL_CTX_free(srv_env.ssl_ctx);
    srv_env.ssl_ctx = ssl_ctx;
    conn_admission a = {.timeout_ms = srv_env.conf->authentication_timeout_ms,
                        .max_authenticating = srv_env.conf->max_authenticating};
    conn_admission_set(&a);
    coord_conn *next;
    for (coord_conn *cc = srv_list; cc; cc = next) {
        next = cc->next;
        char name[256];
        if (cc->state == CC_HANDSHAKE || cc->state == CC_CLOSING || cc->state == CC_CLOSED ||
            conn_peer_allowed(cc->c, (const char *const *)srv_env.conf->allowed,
                              srv_env.conf->n_allowed, name, sizeof(name)))
            continue;
        log_report(LOG_LVL_LOG, "28000", NULL, NULL,
                   "closing the connection of coordinator \"%s\" from %s: certificate name "
                   "\"%s\" is no longer allowed",
                   cc->name, cc->addr, cc->cert_name);
        cc_fail(cc, "28000",
                "coordinator certificate name \"%s\" is no longer allowed (the configuration "
                "was reloaded)",
                cc->cert_name);
    }
}

void
server_close_all(void)
{
    /* Send the reason and detach everything, but leave the TLS connection
     * open until the peer closes it or the process exits (server_free):
     * conn.c gives no notice when a closing connection is finally done, so
     * this is the only way to be sure every connection is freed at exit. */
    for (coord_conn *cc = srv_list; cc; cc = cc->next) {
        if (cc->state == CC_CLOSING)
            continue;
        wbuf w;
        wbuf_init(&w);
        proto_error e = {.tag = 0,
                         .sqlstate = "57P01",
                         .message = "terminating connection: the participant is shutting down"};
        if (cc->state != CC_HANDSHAKE && proto_put_error(&w, &e) && wbuf_ok(&w))
            conn_send(cc->c, &w);
        wbuf_free(&w);
        cc_set_state(cc, CC_CLOSING);
        cc_detach(cc);
    }
}

void
server_free(void)
{
    while (srv_list) {
        coord_conn *cc = srv_list;
        conn *c = cc->c;
        conn_set_arg(c, NULL);
        conn_close(c);
        cc_destroy(cc);
    }
    conn_admission_end(); /* the last summary of refusals */
    SSL_CTX_free(srv_env.ssl_ctx);
    srv_env.ssl_ctx = NULL;
}
