/*
 * walrecv.c — the standby's side of replication: a connection to the
 * primary, the log taken byte for byte, made durable and acknowledged, and
 * applied to the memory a restart would rebuild.
 *
 * States:
 *
 *   DOWN --connect--> CONNECTING --TLS up, HELLO(role standby)--> HELLO_WAIT
 *     ^                                                               | HELLO_OK
 *     |                                                               v
 *     +--- back-off <--- error, EOF, refusal ----- STREAMING <--- START_WAIT
 *                                                  (WAL_DATA, WAL_ACK)   REPL_START sent
 *   any state --walrecv_stop (promotion, exit)--> STOPPED
 *
 * REPL_START says where this log ends and the epochs begun in it; the
 * primary answers where its stream starts, and whether this log must first
 * be cut back (it forked: walsend.c).  Each WAL_DATA's bytes are taken by
 * clog_receive (verified, then appended as they are at the same
 * positions); once durable they are applied (clog_apply_received) and
 * acknowledged (WAL_ACK).  Group commit works here as on the primary: one
 * fdatasync covers every chunk that arrived meanwhile.
 *
 * A standby never talks to participants and never appends a record of its
 * own: only a promotion (main.c) does, after walrecv_stop.
 *
 * Sure or not.  A promotion is safe only if this standby holds every
 * decision its primary acknowledged.  It does while the primary counts it
 * as synchronous (WAL_DATA says so: a record is acknowledged there only
 * after this standby has acknowledged it), and still does after losing the
 * primary, unless the primary may go on alone after a timeout
 * (REPL_MAY_GO_ALONE): it may then have acknowledged decisions never sent
 * here.  A standby that was never synchronous since it started (not caught
 * up) is not sure either.  walrecv_sure says which, and why.
 */
#include "walrecv.h"

#include "clock.h"
#include "clog.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum wr_state {
    WR_DOWN,
    WR_CONNECTING,
    WR_HELLO_WAIT,
    WR_START_WAIT,
    WR_STREAMING,
    WR_STOPPED,
} wr_state;

static const char *const wr_state_names[] = {"down",       "connecting", "hello-wait",
                                             "start-wait", "streaming",  "stopped"};

struct walrecv {
    coord *co;
    conn *c;
    wr_state state;
    char host[256];
    uint16_t port;
    struct event *retry_ev;
    struct event *cut_ev; /* cut_now, once the cut is durable (made when first needed) */
    int backoff_ms;
    uint64_t received;        /* end of what was taken */
    uint64_t acked;           /* what was acknowledged */
    uint64_t primary_durable; /* the primary's, at its last WAL_DATA */
    uint64_t primary_ms;      /* its wall clock then */
    uint8_t flags;            /* REPL_START_OK's */
    bool primary_sync;        /* the primary's last word: it counts on us */
    bool cutting;             /* a fork's cut waits for the log to be durable */
    uint16_t primary_minor;   /* its HELLO_OK's */
    uint64_t cut_to;
    char last_error[300];
    wbuf out;
};

static void wr_connect(struct walrecv *wr);

static void
wr_set_state(struct walrecv *wr, wr_state st)
{
    log_debug("replication: %s -> %s", wr_state_names[wr->state], wr_state_names[st]);
    wr->state = st;
    if (st == WR_DOWN) {
        struct timeval tv = {wr->backoff_ms / 1000, (wr->backoff_ms % 1000) * 1000};
        evtimer_add(wr->retry_ev, &tv);
        wr->backoff_ms = wr->backoff_ms * 2 > 5000 ? 5000 : wr->backoff_ms * 2;
    }
}

static void
wr_lost(struct walrecv *wr, const char *sqlstate, const char *detail, const char *why)
{
    if (wr->state == WR_STOPPED)
        return;
    log_report(LOG_LVL_WARNING, sqlstate, detail, NULL, "replication from %s:%u: %s", wr->host,
               wr->port, why);
    snprintf(wr->last_error, sizeof(wr->last_error), "%s", why);
    if (wr->c)
        conn_close(wr->c);
    wr->c = NULL;
    wr_set_state(wr, WR_DOWN);
}

static void
wr_send(struct walrecv *wr)
{
    if (wr->c && wbuf_ok(&wr->out))
        conn_send(wr->c, &wr->out);
    wbuf_reset(&wr->out);
}

static void
wr_on_open(conn *c, const char *peer, void *arg)
{
    (void)c;
    (void)peer;
    struct walrecv *wr = arg;
    proto_hello h = {.magic = PROTO_MAGIC,
                     .major = PROTO_MAJOR,
                     .minor = PROTO_MINOR,
                     .role = ROLE_STANDBY,
                     .name = wr->co->conf.name,
                     .epoch = clog_last_epoch(wr->co->log)};
    wbuf_reset(&wr->out);
    if (proto_put_hello(&wr->out, &h))
        wr_send(wr);
    wr_set_state(wr, WR_HELLO_WAIT);
    /* the primary sends at least a keep-alive a second: a silent
     * connection (a partition TCP has not noticed) is dropped and retried */
    conn_set_read_timeout(wr->c, REPL_SILENCE_MS);
}

/* HELLO_OK: say where this log ends and which epochs began in it. */
static void
send_start(struct walrecv *wr)
{
    size_t n;
    const clog_epoch_start *h = clog_epoch_history(wr->co->log, &n);
    size_t first = n > REPL_MAX_EPOCHS ? n - REPL_MAX_EPOCHS : 0;
    /* the member name only to a primary of 1.4 (a 1.3 one refuses it) */
    proto_repl_start m = {.n = (uint16_t)(n - first),
                          .member = wr->primary_minor >= 4 ? wr->co->conf.ha_member : NULL};
    m.epoch = calloc(n + 1, sizeof(uint64_t));
    m.lsn = calloc(n + 1, sizeof(uint64_t));
    m.instance = calloc(n + 1, sizeof(uint64_t));
    if (m.epoch == NULL || m.lsn == NULL || m.instance == NULL)
        log_fatal("out of memory");
    for (size_t i = first; i < n; i++) {
        m.epoch[i - first] = h[i].epoch;
        m.lsn[i - first] = h[i].lsn;
        m.instance[i - first] = h[i].instance;
    }
    wr->received = wr->acked = clog_end_lsn(wr->co->log);
    /* an empty log starts wherever the primary's oldest segment does */
    m.end = clog_is_empty(wr->co->log) ? 0 : wr->received;
    wbuf_reset(&wr->out);
    if (proto_put_repl_start(&wr->out, &m))
        wr_send(wr);
    proto_repl_start_clear(&m);
    wr_set_state(wr, WR_START_WAIT);
}

/* The durable end of what was received: apply it and acknowledge it. */
static void
received_durable(void *arg)
{
    struct walrecv *wr = arg;
    coord *co = wr->co;
    if (co->tearing_down)
        return;
    clog_apply_received(co->log);
    if (co->role != COORD_STANDBY)
        return; /* promoting: the promotion applies and goes on */
    co->epoch = clog_last_epoch(co->log);
    uint64_t durable = clog_durable_lsn(co->log);
    if (wr->state != WR_STREAMING || durable <= wr->acked || durable > wr->received)
        return;
    wr->acked = durable;
    wbuf_reset(&wr->out);
    if (proto_put_wal_ack(&wr->out, durable))
        wr_send(wr);
}

/* A fork: everything received is durable now, the log is cut back — from
 * a fresh loop turn: the clog is closed and opened again, which a WAL
 * callback must not do. */
static void
cut_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct walrecv *wr = arg;
    coord *co = wr->co;
    char err[300];
    wr->cutting = false;
    if (wr->state == WR_STOPPED || co->tearing_down)
        return; /* promotion refuses while cutting; exit: the next start cuts */
    clog *before = co->log;
    err[0] = '\0';
    co->log = clog_cut(co->log, wr->cut_to, err, sizeof(err));
    if (co->log == NULL) /* the old log is closed: nothing to go on with */
        log_fatal("could not cut the commit log back to %" PRIu64 ": %s", wr->cut_to, err);
    if (co->log == before && err[0]) {
        wr_lost(wr, NULL, NULL, err); /* refused: nothing was cut */
        return;
    }
    wr->received = wr->acked = clog_end_lsn(co->log);
    co->epoch = clog_last_epoch(co->log);
    if (wr->c && wr->state == WR_STREAMING)
        conn_resume(wr->c);
}

static void
cut_when_durable(void *arg)
{
    struct walrecv *wr = arg;
    struct timeval now = {0, 0};
    if (wr->co->tearing_down)
        return;
    /* its own event, freed with wr: a cut still pending at exit never runs */
    if (wr->cut_ev == NULL && (wr->cut_ev = evtimer_new(wr->co->base, cut_now, wr)) == NULL)
        log_fatal("could not schedule the cut of the commit log");
    evtimer_add(wr->cut_ev, &now);
}

static void
handle_start_ok(struct walrecv *wr, const frame_view *f)
{
    proto_repl_start_ok m;
    if (!proto_get_repl_start_ok(f, &m)) {
        wr_lost(wr, NULL, NULL, "malformed REPL_START_OK");
        return;
    }
    wr->flags = m.flags;
    wr->backoff_ms = 100;
    wr_set_state(wr, WR_STREAMING);
    log_log("replication from %s:%u: streaming from %" PRIu64 " (primary epoch %" PRIu64 ")",
            wr->host, wr->port, m.start, m.epoch);
    if (m.cut_to) {
        wr->cutting = true;
        wr->cut_to = m.cut_to;
        conn_pause(wr->c); /* the stream waits until the cut is done */
        clog_when_durable(wr->co->log, clog_end_lsn(wr->co->log), cut_when_durable, wr);
        return;
    }
    /* say at once what is durable here: a standby that holds everything
     * already may be synchronous before anything new is sent */
    uint64_t durable = clog_flushed_lsn(wr->co->log);
    if (m.start && durable >= m.start) {
        wr->acked = m.start;
        wbuf_reset(&wr->out);
        if (proto_put_wal_ack(&wr->out, m.start))
            wr_send(wr);
    }
}

static void
handle_data(struct walrecv *wr, const frame_view *f)
{
    proto_wal_data m;
    char err[300];
    if (!proto_get_wal_data(f, &m)) {
        wr_lost(wr, NULL, NULL, "malformed WAL_DATA");
        return;
    }
    wr->primary_durable = m.primary_durable;
    wr->primary_ms = m.sent_ms;
    if (m.synchronous && !wr->primary_sync)
        log_log("replication: this standby is synchronous (caught up at %" PRIu64 ")", wr->acked);
    wr->primary_sync = m.synchronous;
    if (m.len == 0) { /* keep-alive: answered, so that the primary hears from us */
        wbuf_reset(&wr->out);
        if (proto_put_wal_ack(&wr->out, wr->acked))
            wr_send(wr);
        return;
    }
    uint64_t lsn = clog_receive(wr->co->log, m.pos, m.bytes, m.len, err, sizeof(err));
    if (lsn == 0) {
        log_error("replication: refused what the primary sent: %s", err);
        if (wr->c)
            conn_fail(wr->c, "XX001", "the standby refused the log: %s", err);
        wr->c = NULL;
        wr_set_state(wr, WR_DOWN);
        return;
    }
    wr->received = lsn;
    clog_when_durable(wr->co->log, lsn, received_durable, wr);
}

static void
wr_on_frame(conn *c, const frame_view *f, void *arg)
{
    (void)c;
    struct walrecv *wr = arg;
    proto_error e;
    if (f->type == MSG_ERROR && proto_get_error(f, &e)) {
        char why[600];
        snprintf(why, sizeof(why), "the primary refused: %s", e.message);
        wr_lost(wr, e.sqlstate, e.detail, why);
        return;
    }
    proto_hello_ok ok;
    if (wr->state == WR_HELLO_WAIT && f->type == MSG_HELLO_OK && proto_get_hello_ok(f, &ok)) {
        wr->primary_minor = ok.minor;
        send_start(wr);
    } else if (wr->state == WR_START_WAIT && f->type == MSG_REPL_START_OK)
        handle_start_ok(wr, f);
    else if (wr->state == WR_STREAMING && f->type == MSG_WAL_DATA)
        handle_data(wr, f);
    else
        wr_lost(wr, NULL, NULL, "unexpected message from the primary");
}

static void
wr_on_close(conn *c, const char *reason, void *arg)
{
    (void)c;
    struct walrecv *wr = arg;
    wr->c = NULL; /* the conn frees itself */
    wr_lost(wr, NULL, NULL, reason);
}

static const conn_ops wr_ops = {
    .on_open = wr_on_open,
    .on_frame = wr_on_frame,
    .on_close = wr_on_close,
};

static void
wr_connect(struct walrecv *wr)
{
    wr_set_state(wr, WR_CONNECTING);
    wr->c = conn_connect(wr->co->base, wr->co->client_ctx, wr->host, wr->port, wr->host,
                         (uint32_t)wr->co->conf.max_frame, &wr_ops, wr);
    if (wr->c == NULL)
        wr_lost(wr, NULL, NULL, "could not create a connection");
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct walrecv *wr = arg;
    if (wr->state == WR_DOWN)
        wr_connect(wr);
}

/* The state, without a connection yet. */
static struct walrecv *
wr_create(coord *co)
{
    struct walrecv *wr = calloc(1, sizeof(*wr));
    if (wr == NULL)
        log_fatal("out of memory");
    wr->co = co;
    wr->backoff_ms = 100;
    wbuf_init(&wr->out);
    wr->retry_ev = evtimer_new(co->base, retry_cb, wr);
    co->wr = wr;
    co->epoch = clog_last_epoch(co->log);
    return wr;
}

/* Stream from addr ("host:port"); false with the reason when it is not
 * one. */
static bool
wr_target(struct walrecv *wr, const char *addr, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (!config_parse_hostport(addr, 0, host, sizeof(host), &port, err, errlen))
        return false;
    snprintf(wr->host, sizeof(wr->host), "%s", host);
    wr->port = port;
    log_log("standby of %s:%u: log ends at %" PRIu64 ", epoch %" PRIu64, wr->host, wr->port,
            clog_end_lsn(wr->co->log), clog_last_epoch(wr->co->log));
    return true;
}

void
walrecv_start(coord *co)
{
    char err[300];
    struct walrecv *wr = wr_create(co);
    if (!wr_target(wr, co->conf.primary_addr, err, sizeof(err)))
        log_fatal("[standby] primary: %s", err);
    wr_connect(wr);
}

bool
walrecv_follow(coord *co, const char *addr)
{
    char err[300];
    struct walrecv *wr = co->wr ? co->wr : wr_create(co);
    if (wr->state == WR_STOPPED || wr->cutting)
        return false; /* (a fork's cut finishes against the primary that asked for it) */
    if (!wr_target(wr, addr, err, sizeof(err))) { /* the stream, if any, goes on */
        log_warn("replication: the leader's address \"%s\": %s", addr, err);
        return false;
    }
    if (wr->c) {
        conn_close(wr->c);
        wr->c = NULL;
    }
    evtimer_del(wr->retry_ev);
    wr->backoff_ms = 100;
    wr->primary_sync = false;
    wr_connect(wr);
    return true;
}

bool
walrecv_streaming(const coord *co)
{
    return co->wr && co->wr->state == WR_STREAMING;
}

void
walrecv_stop(coord *co)
{
    struct walrecv *wr = co->wr;
    if (wr == NULL || wr->state == WR_STOPPED)
        return;
    if (wr->c)
        conn_close(wr->c);
    wr->c = NULL;
    wr->state = WR_STOPPED;
    evtimer_del(wr->retry_ev);
    /* still referenced by durability callbacks of what was received: freed
     * by walrecv_free once the log is closed */
}

bool
walrecv_cutting(const coord *co)
{
    return co->wr && co->wr->cutting;
}

void
walrecv_free(coord *co)
{
    struct walrecv *wr = co->wr;
    if (wr == NULL)
        return;
    walrecv_stop(co);
    event_free(wr->retry_ev);
    if (wr->cut_ev)
        event_free(wr->cut_ev);
    wbuf_free(&wr->out);
    free(wr);
    co->wr = NULL;
}

bool
walrecv_sure(coord *co, char *why, size_t whylen)
{
    struct walrecv *wr = co->wr;
    if (wr == NULL || wr->state == WR_STOPPED) {
        snprintf(why, whylen, "it is not streaming");
        return false;
    }
    if (!wr->primary_sync) {
        snprintf(why, whylen,
                 "it has not caught up with its primary since it started (never synchronous)");
        return false;
    }
    if (wr->state != WR_STREAMING && (wr->flags & REPL_MAY_GO_ALONE)) {
        snprintf(why, whylen,
                 "it lost its primary, which may go on alone after sync_standby_timeout: "
                 "decisions acknowledged since may be missing here");
        return false;
    }
    return true;
}

void
walrecv_describe(coord *co, proto_replication *out)
{
    static char peer[300], detail[400];
    struct walrecv *wr = co->wr;
    /* a standby being promoted answers as the primary it is becoming: a
     * restarting old primary must not take the epoch it is taking */
    out->role = co->role == COORD_PROMOTING ? 1 : 2;
    out->epoch = clog_last_epoch(co->log) + (co->role == COORD_PROMOTING ? 1 : 0);
    out->name = co->conf.name;
    out->peer = "";
    out->state = co->role == COORD_PROMOTING ? "promoting" : "not streaming";
    out->detail = "";
    if (wr == NULL)
        return;
    snprintf(peer, sizeof(peer), "%s:%u", wr->host, wr->port);
    out->peer = peer;
    out->state = wr->state == WR_STREAMING
                     ? (wr->primary_sync ? "streaming, synchronous" : "streaming, catching up")
                     : wr_state_names[wr->state];
    out->sent = wr->received;
    out->flushed = wr->acked;
    out->primary_lsn = wr->primary_durable;
    out->lag_bytes = wr->primary_durable > wr->acked ? wr->primary_durable - wr->acked : 0;
    uint64_t now = clock_wall_ms();
    out->lag_ms = out->lag_bytes && now > wr->primary_ms ? now - wr->primary_ms : 0;
    out->synchronous = wr->state == WR_STREAMING && wr->primary_sync;
    char why[300];
    out->sure = walrecv_sure(co, why, sizeof(why));
    snprintf(detail, sizeof(detail), "not sure: %s", why);
    if (!out->sure)
        out->detail = detail;
    else if (wr->state != WR_STREAMING && wr->last_error[0])
        out->detail = wr->last_error;
}
