/*
 * client.c — connections from applications (libdtx, the dtx CLI).
 *
 * A client connection handles one request at a time: while a request is in
 * progress (a statement on a participant, a commit) the connection is paused
 * (conn_pause) and later frames wait in its input buffer; the transaction
 * code calls client_request_done() — directly or through client_txn_over()
 * — when the reply is complete, and the next frame is handled.
 *
 * States:  HELLO_WAIT --HELLO--> READY  (and the conn's own CLOSED)
 *
 * Admission.  A connection is accepted whatever the number of clients:
 * until its HELLO is answered it is one of conn.c's authenticating
 * connections, bounded by authentication_timeout and max_authenticating
 * (client_init sets them; conn.c's notes say why the oldest is the one
 * dropped at that cap).  max_clients counts authenticated connections only
 * (`counted`: clients and admins; a standby's stream is not a client): a
 * HELLO beyond it is answered ERROR 53300 "too many connections", after
 * the TLS handshake, so the client can read why.  So silent or half-open
 * sockets, however many, never use up max_clients.  Refusals before
 * authentication are logged through conn_refusal_note: the first of a kind
 * in full, the rest summed up once per interval.
 *
 * A client has at most one transaction (`cur`).  When the connection ends,
 * the transaction is detached: one not yet decided is rolled back
 * everywhere; one past its decision goes on without a listener.
 *
 * Reserved gids (protocol 1.2, clients whose HELLO said minor >= 2): the
 * gid of the client's next transaction is handed out in advance, in a
 * NEXT_GID frame after HELLO_OK and before every OUTCOME (in the same
 * write).  A client that has read it claims it by name: BEGIN_RESERVED
 * (no reply: the frame travels with its first statement) or
 * ONESHOT_RESERVED (no BEGIN_OK).  Only a claim naming the reservation
 * (`rsv_seq`) takes it; BEGIN and ONESHOT leave it alone and get a fresh
 * seq, so a client that has not read the NEXT_GID yet is served as in 1.1.
 * A claim that names anything else is a protocol violation.  A reserved
 * seq counts as handed out (next_seq) and is answered IN PROGRESS by
 * STATUS while its connection lives; once the connection is gone it was
 * never started: presumed abort.
 */
#include "client.h"

#include "clog.h"
#include "conn.h"
#include "ha.h"
#include "log.h"
#include "proto_repl.h"
#include "txn.h"
#include "walrecv.h"
#include "walsend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum client_state { CL_HELLO_WAIT, CL_READY } client_state;

struct client {
    coord *co;
    conn *c;
    client_state state;
    txn *cur;
    bool busy;
    bool closing;          /* shutting down: answer sent, connection draining */
    uint16_t minor;        /* protocol minor version of the client's HELLO */
    uint64_t rsv_seq;      /* seq reserved for the next transaction; 0 = none */
    char rsv_gid[GID_MAX]; /* its gid, formatted once (valid while rsv_seq != 0) */
    char app[64];
    char cert[260];   /* the certificate's name (CN or DNS subjectAltName) */
    bool may_client;  /* that name is on allowed_clients */
    bool may_standby; /* ... on allowed_standbys */
    bool counted;     /* authenticated, and one of co->nclients (max_clients) */
    uint8_t role;     /* its HELLO's: ROLE_CLIENT, ROLE_ADMIN or ROLE_STANDBY */
    walsend *ws;      /* a standby's stream (ROLE_STANDBY) */
    wbuf out;
    client *next, *prev; /* all clients, for shutdown */
};

static client *all_clients;
static client *promote_waiter; /* the admin client whose PROMOTE is under way */

static void
client_free(client *cl)
{
    if (cl->ws) {
        walsend *ws = cl->ws;
        cl->ws = NULL;
        walsend_gone(ws, "connection closed");
    }
    if (promote_waiter == cl)
        promote_waiter = NULL; /* the promotion goes on; nobody hears of it */
    if (cl->cur) {
        txn *t = cl->cur;
        cl->cur = NULL;
        txn_detach_client(t);
    }
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        all_clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    if (cl->counted)
        cl->co->nclients--;
    wbuf_free(&cl->out);
    free(cl);
}

static void
client_close(client *cl)
{
    conn_close(cl->c);
    client_free(cl);
}

/* txn_owner_ops: owner is the client */
static void
client_send_bytes(void *owner, const void *p, size_t n)
{
    client *cl = owner;
    conn_send_bytes(cl->c, p, n);
}

static void client_send_err(void *owner, const proto_error *e);

static void client_send_error(client *cl, const char *sqlstate, const char *participant,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
client_send_error(client *cl, const char *sqlstate, const char *participant, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    proto_error e = {.sqlstate = sqlstate, .message = msg, .participant = participant};
    client_send_err(cl, &e);
}

static void
client_send_err(void *owner, const proto_error *e)
{
    client *cl = owner;
    wbuf_reset(&cl->out);
    if (proto_put_error(&cl->out, e))
        conn_send(cl->c, &cl->out);
}

static void
client_free_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_free(arg);
}

/* A request is in flight: the client waits for us, so its silence is not
 * idleness.  idle_timeout counts only between requests (a statement may run
 * longer than it). */
static void
client_busy(client *cl)
{
    cl->busy = true;
    conn_pause(cl->c);
    if (cl->co->conf.idle_timeout_ms > 0)
        conn_set_read_timeout(cl->c, 0);
}

static void
client_request_done(void *owner)
{
    client *cl = owner;
    cl->busy = false;
    if (cl->co->shutting_down && cl->cur == NULL) {
        /* shutting down: send the answer, then close.  The connection no
         * longer reports to us once closing, so the client goes too — but
         * only after our caller is done with it. */
        if (cl->closing)
            return;
        cl->closing = true;
        conn_close_after_flush(cl->c);
        struct timeval now = {0, 0};
        if (event_base_once(cl->co->base, -1, EV_TIMEOUT, client_free_deferred, cl, &now) != 0)
            log_warn("could not schedule the release of a client");
        return;
    }
    if (cl->co->conf.idle_timeout_ms > 0)
        conn_set_read_timeout(cl->c, (int)cl->co->conf.idle_timeout_ms);
    conn_resume(cl->c);
}

/* Reserve the next transaction's seq (if the client speaks 1.2 and holds
 * none) and append its NEXT_GID to cl->out. */
static bool
put_reservation(client *cl)
{
    if (cl->minor < 2 || cl->co->role != COORD_PRIMARY || cl->role == ROLE_STANDBY)
        return true;
    if (cl->rsv_seq == 0) {
        cl->rsv_seq = ++cl->co->next_seq;
        coord_gid_format(cl->co, cl->rsv_seq, cl->rsv_gid, sizeof(cl->rsv_gid));
    }
    return proto_put_next_gid(&cl->out, cl->rsv_gid);
}

/* Is gid the one reserved for cl? */
static bool
holds_reservation(const client *cl, const char *gid)
{
    return cl->rsv_seq != 0 && strcmp(cl->rsv_gid, gid) == 0;
}

/* A BEGIN_RESERVED or ONESHOT_RESERVED naming gid takes the reservation:
 * its seq, or 0 when gid is not the one reserved. */
static uint64_t
claim_reservation(client *cl, const char *gid)
{
    if (!holds_reservation(cl, gid))
        return 0;
    uint64_t seq = cl->rsv_seq;
    cl->rsv_seq = 0;
    return seq;
}

/* COMMIT, ROLLBACK or ONESHOT that cannot run: ERROR, then the OUTCOME
 * these requests always end with (ABORTED: nothing was committed). */
static void
client_refuse(client *cl, const char *gid, const char *sqlstate, const char *msg)
{
    proto_error e = {.sqlstate = sqlstate, .message = msg};
    proto_outcome_msg m = {.outcome = OUTCOME_ABORTED, .gid = gid};
    wbuf_reset(&cl->out);
    if (proto_put_error(&cl->out, &e) && put_reservation(cl) && proto_put_outcome(&cl->out, &m))
        conn_send(cl->c, &cl->out);
}

static void
client_txn_over(void *owner, txn *t, proto_outcome outcome)
{
    client *cl = owner;
    proto_outcome_msg m = {.outcome = (uint8_t)outcome, .gid = txn_gid(t)};
    wbuf_reset(&cl->out);
    if (put_reservation(cl) && proto_put_outcome(&cl->out, &m))
        conn_send(cl->c, &cl->out);
    if (cl->cur == t)
        cl->cur = NULL;
    client_request_done(cl);
}

static const txn_owner_ops client_txn_ops = {
    .send = client_send_bytes,
    .send_err = client_send_err,
    .request_done = client_request_done,
    .over = client_txn_over,
};

/* May this connection take the role its HELLO asks for?  If not, it is
 * told why (and freed). */
static bool
hello_role_ok(client *cl, const proto_hello *h)
{
    const char *state = NULL, *why = NULL;
    if (h->role == ROLE_STANDBY && !cl->may_standby)
        why = "is not on allowed_standbys";
    else if ((h->role == ROLE_CLIENT || h->role == ROLE_ADMIN) && !cl->may_client)
        why = "is not on allowed_clients";
    if (why) {
        if (conn_refusal_note(cl->c, CONN_REFUSED_NAME))
            log_warn("refused a connection from %s: certificate name \"%s\" %s",
                     conn_peer_addr(cl->c), cl->cert, why);
        conn_fail(cl->c, "28000", "certificate name \"%s\" %s", cl->cert, why);
    } else if (h->role != ROLE_CLIENT && h->role != ROLE_ADMIN && h->role != ROLE_STANDBY) {
        conn_fail(cl->c, "08P01", "only clients and standbys may connect to this port");
        why = "role";
    } else if (h->role == ROLE_CLIENT && cl->co->role != COORD_PRIMARY) {
        state = cl->co->role == COORD_STANDBY    ? "a standby"
                : cl->co->role == COORD_STARTING ? "starting (waiting for its standby)"
                                                 : "being promoted";
        conn_fail(cl->c, PROTO_NOT_PRIMARY_SQLSTATE,
                  "coordinator \"%s\" is %s: transactions go to its primary", cl->co->conf.name,
                  state);
        why = state;
    }
    if (why) {
        client_free(cl);
        return false;
    }
    cl->role = h->role;
    return true;
}

/* The HELLO has passed every check: the connection is authenticated, and
 * a client or admin counts against max_clients — unless that many are
 * connected already: then it is told so (and freed). */
static bool
hello_admit(client *cl)
{
    coord *co = cl->co;
    if (cl->role != ROLE_STANDBY && co->nclients >= co->conf.max_clients) {
        if (conn_refusal_note(cl->c, CONN_REFUSED_CAPACITY))
            log_warn("too many connections (max_clients = %d): refused a connection from %s "
                     "(certificate \"%s\")",
                     co->conf.max_clients, conn_peer_addr(cl->c), cl->cert);
        conn_fail(cl->c, "53300", "too many connections (max_clients = %d)", co->conf.max_clients);
        client_free(cl);
        return false;
    }
    if (cl->role != ROLE_STANDBY) {
        cl->counted = true;
        co->nclients++;
    }
    conn_authenticated(cl->c);
    return true;
}

/* walsend: a standby's stream broke (its ERROR is sent); free the client
 * from a fresh loop turn, not from inside the stream's call. */
static void
client_stream_broken(void *owner)
{
    client *cl = owner;
    if (cl->closing)
        return;
    cl->closing = true;
    struct timeval now = {0, 0};
    if (event_base_once(cl->co->base, -1, EV_TIMEOUT, client_free_deferred, cl, &now) != 0)
        log_warn("could not schedule the release of a standby's connection");
}

static void
handle_hello(client *cl, const frame_view *f)
{
    proto_hello h;
    if (f->type != MSG_HELLO || !proto_get_hello(f, &h)) {
        conn_fail(cl->c, "08P01", "expected a start-up message");
        client_free(cl);
        return;
    }
    if (h.magic != PROTO_MAGIC) {
        conn_fail(cl->c, "08P01", "invalid HELLO: bad protocol magic 0x%08x", h.magic);
        client_free(cl);
        return;
    }
    if (h.major != PROTO_MAJOR) {
        conn_fail(cl->c, "08P01", "unsupported protocol version %u.%u (this server speaks %u.%u)",
                  h.major, h.minor, PROTO_MAJOR, PROTO_MINOR);
        client_free(cl);
        return;
    }
    if (!hello_role_ok(cl, &h))
        return;
    if (cl->co->shutting_down) {
        conn_fail(cl->c, "57P01", "the coordinator is shutting down");
        client_free(cl);
        return;
    }
    if (!hello_admit(cl))
        return;
    snprintf(cl->app, sizeof(cl->app), "%s", h.name);
    cl->minor = h.minor;
    cl->state = CL_READY;
    proto_hello_ok ok = {.major = PROTO_MAJOR,
                         .minor = PROTO_MINOR,
                         .server_name = cl->co->conf.name,
                         .epoch = cl->co->epoch};
    wbuf_reset(&cl->out);
    if (proto_put_hello_ok(&cl->out, &ok) && put_reservation(cl))
        conn_send(cl->c, &cl->out);
    if (h.role != ROLE_STANDBY)
        return;
    /* idle_timeout is not for a standby: one of 1.4 answers every
     * keep-alive (a second apart), so a silence of REPL_SILENCE_MS means it
     * is frozen or cut off — it is then gone, and sync_standby_timeout
     * runs; an older one speaks only when the log moves */
    conn_set_read_timeout(cl->c, h.minor >= 4 ? REPL_SILENCE_MS : 0);
    if ((cl->ws = walsend_start(cl->co, cl->c, cl->cert, client_stream_broken, cl)) == NULL)
        client_free(cl); /* refused: walsend_start sent the ERROR */
}

/* Is gid reserved by a connected client (not started yet)? */
static bool
gid_reserved(const char *gid)
{
    for (const client *cl = all_clients; cl; cl = cl->next)
        if (holds_reservation(cl, gid))
            return true;
    return false;
}

static void
handle_status(client *cl, const frame_view *f)
{
    const char *gid;
    if (!proto_get_status(f, &gid)) {
        conn_fail(cl->c, "08P01", "malformed STATUS message");
        client_free(cl);
        return;
    }
    proto_status_reply r = {.gid = gid};
    txn *t = txn_lookup(cl->co, gid);
    if (t && txn_decided_commit(t)) {
        /* the COMMIT record is durable: it will commit everywhere */
        r.outcome = OUTCOME_COMMITTED;
        r.detail = "committed; phase two still in progress";
    } else if (t && !txn_is_finished(t) && !txn_told_aborted(t)) {
        r.outcome = OUTCOME_IN_PROGRESS;
        r.detail = "the transaction is still running";
    } else if (t == NULL && gid_reserved(gid)) {
        r.outcome = OUTCOME_IN_PROGRESS;
        r.detail = "reserved by a connected client, not started yet";
    } else {
        r.outcome = (uint8_t)clog_outcome_of(cl->co->log, gid, &r.detail);
    }
    wbuf_reset(&cl->out);
    if (proto_put_status_reply(&cl->out, &r))
        conn_send(cl->c, &cl->out);
}

/* INDOUBT reply under construction: entries and the strings they own. */
typedef struct indoubt_list {
    proto_indoubt_entry *e;
    char **strs; /* strs[i] owned, may be NULL */
    uint32_t n, cap;
    uint64_t now;
} indoubt_list;

static bool
indoubt_add(indoubt_list *il, const char *gid, uint64_t since_ms, char *participants,
            const char *state)
{
    if (il->n == il->cap) {
        uint32_t cap = il->cap ? il->cap * 2 : 16;
        proto_indoubt_entry *ne = realloc(il->e, cap * sizeof(*ne));
        if (ne)
            il->e = ne;
        char **ns = realloc(il->strs, cap * sizeof(*ns));
        if (ns)
            il->strs = ns;
        if (ne == NULL || ns == NULL) {
            free(participants);
            return false;
        }
        il->cap = cap;
    }
    il->e[il->n].gid = gid;
    il->e[il->n].age_ms = il->now > since_ms ? il->now - since_ms : 0;
    il->e[il->n].participants = participants ? participants : "";
    il->e[il->n].state = state;
    il->strs[il->n] = participants;
    il->n++;
    return true;
}

static void
indoubt_add_heuristic(void *arg, const char *gid, uint64_t ended_ms, const char *participants)
{
    indoubt_list *il = arg;
    char *s = strdup(participants);
    if (s)
        (void)indoubt_add(il, gid, ended_ms, s, "heuristic outcome");
}

/* Live transactions past their vote, logged commits still finishing, and
 * finished ones with a heuristic outcome (within outcome_retention). */
static void
handle_indoubt(client *cl)
{
    proto_indoubt_entry *live = NULL;
    uint32_t nlive = 0;
    indoubt_list il = {.now = coord_wall_ms(cl->co)}; /* the log's times */
    txn_collect_indoubt(cl->co, &live, &nlive);
    bool ok = true;
    for (uint32_t i = 0; i < nlive; i++) {
        /* takes live[i].participants (freed with il's strings) */
        if (!ok) {
            free((char *)live[i].participants);
            continue;
        }
        ok = indoubt_add(&il, live[i].gid, 0, (char *)live[i].participants, live[i].state);
        if (ok)
            il.e[il.n - 1].age_ms = live[i].age_ms;
    }
    for (clog_pending *p = clog_pending_first(cl->co->log); ok && p; p = clog_pending_next(p)) {
        const char *gid = clog_pending_gid(p);
        if (txn_lookup(cl->co, gid))
            continue; /* listed as live */
        char *s = clog_pending_participants(p);
        ok = s != NULL && indoubt_add(&il, gid, clog_pending_commit_ms(p), s,
                                      clog_pending_heuristic(p) ? "heuristic outcome, finishing"
                                                                : "committed, finishing");
    }
    if (ok)
        clog_foreach_heuristic(cl->co->log, indoubt_add_heuristic, &il);
    proto_indoubt_reply r = {.n = il.n, .entries = il.e};
    wbuf_reset(&cl->out);
    if (proto_put_indoubt_reply(&cl->out, &r))
        conn_send(cl->c, &cl->out);
    for (uint32_t i = 0; i < il.n; i++)
        free(il.strs[i]);
    free(il.strs);
    free(il.e);
    free(live);
}

/* A request the client got wrong: its connection ends (false, to return). */
static bool
client_malformed(client *cl, const frame_view *f)
{
    conn_fail(cl->c, "08P01", "malformed message of type '%c'", f->type);
    client_free(cl);
    return false;
}

static bool
handle_begin(client *cl, const frame_view *f)
{
    if (f->len != 0)
        return client_malformed(cl, f);
    if (cl->cur) {
        client_send_error(cl, "25001", NULL, "a transaction is already in progress");
        return true;
    }
    cl->cur = txn_begin(cl->co, &client_txn_ops, cl, cl->cert, 0);
    if (cl->cur == NULL) {
        client_send_error(cl, "53200", NULL, "out of memory");
        return true;
    }
    wbuf_reset(&cl->out);
    if (proto_put_begin_ok(&cl->out, txn_gid(cl->cur)))
        conn_send(cl->c, &cl->out);
    return true;
}

/* No reply: whatever fails here ends the connection, and the client's next
 * request reports it. */
static bool
handle_begin_reserved(client *cl, const frame_view *f)
{
    const char *gid;
    if (cl->minor < 2 || !proto_get_begin_reserved(f, &gid))
        return client_malformed(cl, f);
    if (cl->cur) {
        conn_fail(cl->c, "25001", "a transaction is already in progress");
        client_free(cl);
        return false;
    }
    uint64_t seq = claim_reservation(cl, gid);
    if (seq == 0) {
        conn_fail(cl->c, "08P01", "BEGIN_RESERVED names %s, which is not reserved", gid);
        client_free(cl);
        return false;
    }
    cl->cur = txn_begin(cl->co, &client_txn_ops, cl, cl->cert, seq);
    if (cl->cur == NULL) {
        conn_fail(cl->c, "53200", "out of memory");
        client_free(cl);
        return false;
    }
    return true;
}

static bool
handle_exec(client *cl, const frame_view *f)
{
    proto_stmt st;
    if (!proto_get_exec(f, &st))
        return client_malformed(cl, f);
    if (cl->cur == NULL) {
        proto_stmt_clear(&st);
        client_send_error(cl, "25P01", NULL, "no transaction in progress");
        return true;
    }
    client_busy(cl);
    txn_exec(cl->cur, &st);
    proto_stmt_clear(&st);
    return true;
}

static bool
handle_end(client *cl, const frame_view *f)
{
    if (f->len != 0)
        return client_malformed(cl, f);
    if (cl->cur == NULL) {
        client_refuse(cl, "", "25P01", "no transaction in progress");
        return true;
    }
    client_busy(cl);
    if (f->type == MSG_COMMIT)
        txn_commit(cl->cur);
    else
        txn_rollback(cl->cur);
    return true;
}

static bool
handle_oneshot(client *cl, const frame_view *f)
{
    proto_stmts body;
    const char *gid = NULL;
    bool reserved = f->type == MSG_ONESHOT_RESERVED;
    if (reserved ? cl->minor < 2 || !proto_get_oneshot_reserved(f, &gid, &body)
                 : !proto_get_oneshot(f, &body))
        return client_malformed(cl, f);
    uint64_t seq = reserved ? claim_reservation(cl, gid) : 0;
    const char *sqlstate = NULL, *msg = NULL;
    if (reserved && seq == 0) {
        proto_stmts_clear(&body);
        conn_fail(cl->c, "08P01", "ONESHOT_RESERVED names %s, which is not reserved", gid);
        client_free(cl);
        return false;
    }
    if (cl->cur)
        sqlstate = "25001", msg = "a transaction is already in progress";
    else if ((cl->cur = txn_begin(cl->co, &client_txn_ops, cl, cl->cert, seq)) == NULL)
        sqlstate = "53200", msg = "out of memory";
    if (sqlstate) {
        proto_stmts_clear(&body);
        client_refuse(cl, gid ? gid : "", sqlstate, msg);
        return true;
    }
    client_busy(cl);
    if (cl->minor >= 1 && !reserved) {
        /* name the transaction before anything runs: a client whose
         * connection drops later can still ask for its outcome */
        wbuf_reset(&cl->out);
        if (proto_put_begin_ok(&cl->out, txn_gid(cl->cur)))
            conn_send(cl->c, &cl->out);
    }
    txn_oneshot(cl->cur, &body);
    proto_stmts_clear(&body);
    return true;
}

static bool
handle_replication(client *cl, const frame_view *f)
{
    if (f->len != 0)
        return client_malformed(cl, f);
    proto_replication r = {0};
    if (cl->co->role == COORD_PRIMARY || cl->co->role == COORD_STARTING)
        walsend_describe(cl->co, &r);
    else
        walrecv_describe(cl->co, &r);
    if (cl->minor >= 4) /* a 1.3 client refuses fields it does not know */
        ha_describe(cl->co, &r);
    wbuf_reset(&cl->out);
    if (proto_put_replication_reply(&cl->out, &r))
        conn_send(cl->c, &cl->out);
    return true;
}

static bool
handle_promote(client *cl, const frame_view *f)
{
    bool force;
    char err[400];
    if (!proto_get_promote(f, &force))
        return client_malformed(cl, f);
    coord *co = cl->co;
    if (co->nadmins == 0 ||
        !conn_peer_allowed(cl->c, (const char *const *)co->admins, co->nadmins, err, sizeof(err))) {
        log_warn("refused PROMOTE from %s: certificate name \"%s\" is not on admin_clients",
                 conn_peer_addr(cl->c), cl->cert);
        client_send_error(cl, "42501", NULL,
                          "permission denied: certificate name \"%s\" is not on admin_clients",
                          cl->cert);
        return true;
    }
    if (co->role != COORD_STANDBY) {
        client_send_error(cl, "55000", NULL, "coordinator \"%s\" is %s, not a standby",
                          co->conf.name,
                          co->role == COORD_PRIMARY ? "a primary" : "being promoted");
        return true;
    }
    if (!co->client_ev->promote(co, force, err, sizeof(err))) {
        proto_error e = {.sqlstate = "55000",
                         .message = err,
                         .hint = "Promote with --force to accept that risk."};
        client_send_err(cl, &e);
        return true;
    }
    client_busy(cl);
    promote_waiter = cl; /* answered by client_promote_done */
    return true;
}

void
client_promote_done(coord *co, const char *sqlstate, const char *message)
{
    (void)co;
    client *cl = promote_waiter;
    promote_waiter = NULL;
    if (cl == NULL)
        return;
    wbuf_reset(&cl->out);
    if (sqlstate) {
        client_send_error(cl, sqlstate, NULL, "%s", message);
    } else if (proto_put_admin_ok(&cl->out, message)) {
        conn_send(cl->c, &cl->out);
    }
    client_request_done(cl);
}

/* On a standby only STATUS, INDOUBT, REPLICATION and PROMOTE are served;
 * false when f was answered with a refusal instead. */
static bool
standby_serves(client *cl, const frame_view *f)
{
    static const char msg[] = "this coordinator is a standby: transactions go to its primary";
    switch (f->type) {
    case MSG_STATUS:
    case MSG_INDOUBT:
    case MSG_REPLICATION:
    case MSG_PROMOTE:
        return true;
    case MSG_COMMIT:
    case MSG_ROLLBACK:
    case MSG_ONESHOT:
    case MSG_ONESHOT_RESERVED:
        client_refuse(cl, "", PROTO_NOT_PRIMARY_SQLSTATE, msg);
        return false;
    default:
        client_send_error(cl, PROTO_NOT_PRIMARY_SQLSTATE, NULL, "%s", msg);
        return false;
    }
}

/* A primary whose leader lease ran out ([ha]) starts no transaction; false
 * when f was answered with a refusal instead.  (The lease is asked about
 * only for a frame that starts one.) */
static bool
lease_lost_serves(client *cl, const frame_view *f)
{
    static const char msg[] = "this coordinator has lost its leader lease: transactions go to "
                              "whichever instance holds it";
    switch (f->type) {
    case MSG_BEGIN:
    case MSG_BEGIN_RESERVED:
        if (ha_may_serve(cl->co))
            return true;
        client_send_error(cl, PROTO_NOT_PRIMARY_SQLSTATE, NULL, "%s", msg);
        return false;
    case MSG_ONESHOT:
    case MSG_ONESHOT_RESERVED:
        if (ha_may_serve(cl->co))
            return true;
        client_refuse(cl, "", PROTO_NOT_PRIMARY_SQLSTATE, msg);
        return false;
    default:
        return true;
    }
}

static void
client_on_frame(conn *c, const frame_view *f, void *arg)
{
    client *cl = arg;
    (void)c;
    if (cl->state == CL_HELLO_WAIT) {
        handle_hello(cl, f);
        return;
    }
    if (cl->ws) {
        if (!walsend_on_frame(cl->ws, f))
            client_free(cl);
        return;
    }
    if (cl->co->role != COORD_PRIMARY && !standby_serves(cl, f))
        return;
    if (!lease_lost_serves(cl, f))
        return;
    switch (f->type) {
    case MSG_BEGIN:
        (void)handle_begin(cl, f);
        return;
    case MSG_BEGIN_RESERVED:
        (void)handle_begin_reserved(cl, f);
        return;
    case MSG_EXEC:
        (void)handle_exec(cl, f);
        return;
    case MSG_COMMIT:
    case MSG_ROLLBACK:
        (void)handle_end(cl, f);
        return;
    case MSG_ONESHOT:
    case MSG_ONESHOT_RESERVED:
        (void)handle_oneshot(cl, f);
        return;
    case MSG_STATUS:
        handle_status(cl, f);
        return;
    case MSG_INDOUBT:
        handle_indoubt(cl);
        return;
    case MSG_REPLICATION:
        (void)handle_replication(cl, f);
        return;
    case MSG_PROMOTE:
        (void)handle_promote(cl, f);
        return;
    default:
        conn_fail(cl->c, "08P01", "unexpected message type 0x%02x", f->type);
        client_free(cl);
        return;
    }
}

static void
client_on_open(conn *c, const char *peer, void *arg)
{
    client *cl = arg;
    char name[260]; /* a certificate name: at most 256 bytes (tls.c) */
    coord *co = cl->co;
    snprintf(cl->cert, sizeof(cl->cert), "%s", peer);
    cl->may_standby = co->nstandbys > 0 && conn_peer_allowed(c, (const char *const *)co->standbys,
                                                             co->nstandbys, name, sizeof(name));
    cl->may_client =
        conn_peer_allowed(c, (const char *const *)co->allowed, co->nallowed, name, sizeof(name));
    if (!cl->may_client && !cl->may_standby) {
        if (conn_refusal_note(c, CONN_REFUSED_NAME))
            log_with(&(log_fields){.client = name, .sqlstate = "28000"}, LOG_LVL_WARNING,
                     "refused client connection from %s: certificate name \"%s\" is not allowed",
                     conn_peer_addr(c), name);
        conn_fail(c, "28000", "client certificate name \"%s\" is not allowed", name);
        client_free(cl);
        return;
    }
    log_debug("client %s connected (certificate \"%s\")", conn_peer_addr(c), peer);
}

static void
client_on_close(conn *c, const char *reason, void *arg)
{
    client *cl = arg;
    (void)c;
    if (cl->state == CL_HELLO_WAIT) /* counted, and logged if need be, by conn.c */
        log_debug("connection from %s closed before HELLO: %s", conn_peer_addr(cl->c), reason);
    else
        log_debug("client %s disconnected: %s", conn_peer_addr(cl->c), reason);
    client_free(cl);
}

static const conn_ops client_ops = {
    .on_open = client_on_open,
    .on_frame = client_on_frame,
    .on_close = client_on_close,
};

void
client_init(coord *co, const client_events *ev)
{
    co->client_ev = ev;
    conn_admission a = {.timeout_ms = co->conf.authentication_timeout_ms,
                        .max_authenticating = co->conf.max_authenticating};
    conn_admission_set(&a);
}

void
client_accept(coord *co, int fd)
{
    client *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        close(fd);
        return;
    }
    cl->co = co;
    wbuf_init(&cl->out);
    cl->c =
        conn_accept(co->base, co->server_ctx, fd, (uint32_t)co->conf.max_frame, &client_ops, cl);
    if (cl->c == NULL) {
        wbuf_free(&cl->out);
        free(cl);
        return;
    }
    if (co->conf.idle_timeout_ms > 0)
        conn_set_read_timeout(cl->c, (int)co->conf.idle_timeout_ms);
    cl->next = all_clients;
    if (all_clients)
        all_clients->prev = cl;
    all_clients = cl;
}

void
client_reloaded(coord *co)
{
    conn_admission a = {.timeout_ms = co->conf.authentication_timeout_ms,
                        .max_authenticating = co->conf.max_authenticating};
    conn_admission_set(&a);
    client *cl = all_clients;
    while (cl) {
        client *next = cl->next;
        char name[260];
        if (cl->cert[0] == '\0') { /* TLS not up yet: judged when it is (client_on_open) */
            cl = next;
            continue;
        }
        cl->may_standby =
            co->nstandbys > 0 && conn_peer_allowed(cl->c, (const char *const *)co->standbys,
                                                   co->nstandbys, name, sizeof(name));
        cl->may_client = conn_peer_allowed(cl->c, (const char *const *)co->allowed, co->nallowed,
                                           name, sizeof(name));
        bool keep = cl->state == CL_HELLO_WAIT ? cl->may_client || cl->may_standby
                    : cl->role == ROLE_STANDBY ? cl->may_standby
                                               : cl->may_client;
        if (!keep && !cl->closing) {
            log_with(&(log_fields){.client = cl->cert, .sqlstate = "28000"}, LOG_LVL_LOG,
                     "closing the connection of %s: certificate name \"%s\" is no longer allowed",
                     conn_peer_addr(cl->c), cl->cert);
            conn_fail(cl->c, "28000",
                      "certificate name \"%s\" is no longer allowed (the configuration was "
                      "reloaded)",
                      cl->cert);
            client_free(cl);
        }
        cl = next;
    }
}

/* Shutdown: close every client that is not in the middle of a request; one
 * with a transaction in progress gets it rolled back (client_free). */
void
client_close_all(coord *co)
{
    client *cl = all_clients;
    while (cl) {
        client *next = cl->next;
        if (!cl->closing && (!cl->busy || co->fast_shutdown))
            client_close(cl);
        cl = next;
    }
    if (co->tearing_down)
        conn_admission_end(); /* the last summary of refusals */
}
