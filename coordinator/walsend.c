/*
 * walsend.c — the primary's side of replication: the commit log streamed
 * to one standby, its acknowledgements, and synchronous commit.
 *
 * A standby connects to the client port with HELLO role ROLE_STANDBY
 * (client.c checks its certificate name against allowed_standbys and hands
 * its frames here), says where its log ends and which epochs began in it
 * (REPL_START), and is answered where the stream starts (REPL_START_OK) —
 * after cutting its log back first when it forked from ours (below).  Then
 * WAL_DATA frames carry the log byte for byte, in chunks of whole records
 * (wal_reader_next_chunk), as far as it is durable here; the standby
 * answers WAL_ACK with what it has made durable.
 *
 * Synchronous commit.  Once a standby has acknowledged everything durable
 * here (it has caught up), it is synchronous: clog_set_sync(true), and from
 * then on a record counts as durable — its COMMIT PREPAREDs may go out, its
 * client may hear COMMITTED, a gid of a new epoch may be handed out — only
 * when the standby's acknowledgement covers it too.  Group commit covers
 * both: every record made durable by one fdatasync goes out in the next
 * WAL_DATA, and one acknowledgement releases all of them.  If the standby
 * goes away, commits wait for it (logged, and shown by REPLICATION) until
 * it is back and caught up; with sync_standby_timeout set, the primary
 * goes on alone once that long has passed — giving up the guarantee that a
 * promoted standby holds every acknowledged decision (the standby is told,
 * REPL_MAY_GO_ALONE, and then refuses a promotion without --force once it
 * has lost its primary).  A primary that has had no synchronous standby
 * since it became primary serves alone from the start, with a warning.
 *
 * Forks.  A standby's log is a prefix of ours unless it wrote records we
 * never received: an old primary rejoining as a standby may hold a tail it
 * wrote after its standby (now us) last acknowledged — records that, with a
 * synchronous standby, were never durable in the replicated sense, so no
 * action outside the coordinator followed them.  The two epoch histories
 * say where the logs part: after the last epoch start both share, the next
 * epoch start of either (PostgreSQL's timeline history does the same).  A
 * standby whose log goes past that point is told to cut it back there.  A
 * standby with no epoch start in common with us, or whose log starts
 * before what we retain or ends past what we wrote, is refused: it must be
 * cloned afresh (an empty data_dir).
 *
 * One standby streams at a time; a second is refused until the first is
 * gone.
 */
#include "walsend.h"

#include "clock.h"
#include "clog.h"
#include "ha.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MAX    (256u << 10) /* bytes of log per WAL_DATA */
#define OUTPUT_HIGH  (1u << 20)   /* stop reading the log while this much is unsent */
#define TICK_MS      50           /* send what became durable without a waiter */
#define KEEPALIVE_MS 1000         /* an empty WAL_DATA this often (lag in ms) */
#define LAG_SAMPLES  512

typedef struct lag_sample {
    uint64_t lsn;
    int64_t ms; /* monotonic time the chunk ending at lsn was sent */
} lag_sample;

struct walsend {
    coord *co;
    conn *c;
    void (*broken)(void *owner);
    void *owner;
    bool dead; /* broken: no more sends, the owner frees it soon */
    char name[260];
    wal_reader *rd;  /* NULL until REPL_START */
    uint64_t sent;   /* end of what was sent */
    uint64_t acked;  /* what the standby has durable */
    bool sync;       /* it has caught up: commits count on it */
    bool recording;  /* [ha]: etcd is being told it is synchronous */
    char member[64]; /* its [ha] member name ("" without) */
    int64_t last_send_ms;
    lag_sample lag[LAG_SAMPLES];
    unsigned lag_head, lag_n;
    wbuf out;
};

struct walsend_state {
    coord *co;
    walsend *cur;
    bool had_sync;         /* a standby was synchronous since we became primary */
    bool alone;            /* gave up waiting for a gone synchronous standby */
    bool alone_recording;  /* [ha]: etcd is being told there is none */
    int64_t gone_since_ms; /* when the synchronous standby went (0: it has not) */
    char last_name[260];
    struct event *tick;
    void (*on_sync)(coord *co); /* once: a standby is synchronous, or the wait gave up */
};

/* Tell the waiter of walsend_init that it may go on (once). */
static void
sync_reached(struct walsend_state *st)
{
    void (*fn)(coord *) = st->on_sync;
    st->on_sync = NULL;
    if (fn)
        fn(st->co);
}

/* ---- lag ----------------------------------------------------------------- */

static void
lag_note(walsend *ws, uint64_t lsn, int64_t now)
{
    if (ws->lag_n == LAG_SAMPLES) { /* full: drop the oldest */
        ws->lag_head = (ws->lag_head + 1) % LAG_SAMPLES;
        ws->lag_n--;
    }
    ws->lag[(ws->lag_head + ws->lag_n) % LAG_SAMPLES] = (lag_sample){lsn, now};
    ws->lag_n++;
}

static void
lag_acked(walsend *ws, uint64_t lsn)
{
    while (ws->lag_n && ws->lag[ws->lag_head].lsn <= lsn) {
        ws->lag_head = (ws->lag_head + 1) % LAG_SAMPLES;
        ws->lag_n--;
    }
}

/* ms since the oldest chunk not yet acknowledged was sent */
static uint64_t
lag_ms(const walsend *ws, int64_t now)
{
    return ws->lag_n ? (uint64_t)(now - ws->lag[ws->lag_head].ms) : 0;
}

static void walsend_gone_detach(walsend *ws, const char *reason);
static void go_alone(struct walsend_state *st);
static void alone_recorded(void *arg, bool ok);

/* ---- sending ------------------------------------------------------------- */

static bool
send_data(walsend *ws, uint64_t pos, const void *bytes, size_t len)
{
    proto_wal_data m = {.pos = pos,
                        .primary_durable = clog_durable_lsn(ws->co->log),
                        .sent_ms = clock_wall_ms(),
                        .synchronous = ws->sync,
                        .bytes = bytes,
                        .len = len};
    wbuf_reset(&ws->out);
    if (!proto_put_wal_data(&ws->out, &m))
        return false;
    conn_send(ws->c, &ws->out);
    ws->last_send_ms = clock_mono_ms();
    return true;
}

/* Send what is durable and not sent yet, while the standby reads. */
/* The stream cannot go on: the standby is told, detached, and its owner
 * asked to close the connection. */
static void
stream_broken(walsend *ws, const char *why)
{
    struct walsend_state *st = ws->co->wss;
    conn_fail(ws->c, "XX000", "the primary cannot stream its log: %s", why);
    ws->dead = true;
    if (st && st->cur == ws)
        walsend_gone_detach(ws, why);
    ws->broken(ws->owner);
}

static void
pump(walsend *ws)
{
    if (ws->rd == NULL || ws->dead)
        return;
    while (conn_pending_output(ws->c) < OUTPUT_HIGH) {
        uint64_t pos;
        const void *bytes;
        size_t len;
        int rc = wal_reader_next_chunk(ws->rd, &pos, &bytes, &len, CHUNK_MAX);
        if (rc == 0)
            break;
        if (rc < 0) {
            log_error("standby \"%s\": could not read the commit log: %s", ws->name,
                      wal_reader_error(ws->rd));
            stream_broken(ws, wal_reader_error(ws->rd));
            return;
        }
        if (!send_data(ws, pos, bytes, len))
            log_fatal("out of memory");
        ws->sent = pos + len;
        lag_note(ws, ws->sent, ws->last_send_ms);
    }
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct walsend_state *st = arg;
    coord *co = st->co;
    int64_t now = clock_mono_ms();
    if (st->cur) {
        pump(st->cur);
        if (st->cur && st->cur->rd && now - st->cur->last_send_ms >= KEEPALIVE_MS)
            (void)send_data(st->cur, st->cur->sent, NULL, 0);
    }
    /* a standby back but not caught up does not stop the clock */
    if (st->cur && st->cur->sync)
        return;
    if (st->gone_since_ms && !st->alone && co->conf.sync_standby_timeout_ms > 0 &&
        now - st->gone_since_ms >= co->conf.sync_standby_timeout_ms) {
        if (ha_enabled(co)) { /* etcd first: a standby it names may still win */
            if (st->cur && st->cur->recording)
                return; /* one catching up is being recorded: it goes first */
            if (!st->alone_recording) {
                st->alone_recording = true;
                ha_record_sync(co, "", clog_durable_lsn(co->log), alone_recorded, st);
            }
            return;
        }
        go_alone(st);
    }
}

/* The synchronous standby is given up: commits no longer wait for it. */
static void
go_alone(struct walsend_state *st)
{
    coord *co = st->co;
    st->alone = true;
    clog_set_sync(co->log, false);
    clog_note_sync(co->log, false, NULL);
    log_warn("no synchronous standby for %lld ms (sync_standby_timeout): the primary goes on "
             "alone; %s",
             (long long)co->conf.sync_standby_timeout_ms,
             ha_enabled(co)
                 ? "etcd records it, so the standby no longer takes over"
                 : "a promoted standby may now lack decisions acknowledged from here on");
    sync_reached(st);
}

/* [ha]: etcd has been told (ok) that there is no synchronous standby */
static void
alone_recorded(void *arg, bool ok)
{
    struct walsend_state *st = arg;
    st->alone_recording = false;
    if (ok && !st->alone && !(st->cur && st->cur->sync))
        go_alone(st);
}

/* clog_events: records up to lsn are durable here */
static void
durable_here(void *arg, uint64_t lsn)
{
    (void)lsn;
    struct walsend_state *st = arg;
    if (st->cur)
        pump(st->cur);
}

static const clog_events walsend_clog_events = {.durable = durable_here};

void
walsend_init(coord *co, void (*wait_for_standby)(coord *co))
{
    if (co->wss || co->nstandbys == 0)
        return; /* no standby may connect: no timer, nothing on the commit path */
    struct walsend_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        log_fatal("out of memory");
    st->co = co;
    co->wss = st;
    clog_set_events(co->log, &walsend_clog_events, st);
    st->tick = event_new(co->base, -1, EV_PERSIST, tick_cb, st);
    struct timeval tv = {0, TICK_MS * 1000};
    if (st->tick == NULL || event_add(st->tick, &tv) != 0)
        log_fatal("could not start the replication timer");
    if (wait_for_standby) {
        /* the log says a standby was synchronous: it may hold decisions
         * and be promoted; nothing new is acknowledged without it */
        st->on_sync = wait_for_standby;
        st->had_sync = true;
        st->gone_since_ms = clock_mono_ms();
        clog_set_sync(co->log, true);
        log_log("the commit log says a standby was synchronous: records wait for its "
                "acknowledgement%s",
                co->conf.sync_standby_timeout_ms > 0 ? " (up to sync_standby_timeout)" : "");
    } else {
        log_warn("no synchronous standby yet: commits are made durable on this machine alone "
                 "until one has caught up");
    }
}

void
walsend_shutdown(coord *co)
{
    struct walsend_state *st = co->wss;
    if (st == NULL)
        return;
    if (st->cur) /* its client frees it (client_close_all) */
        walsend_gone_detach(st->cur, "shutting down");
    ha_record_cancel(co);
    clog_set_events(co->log, NULL, NULL); /* the log's last callbacks must not find us */
    event_free(st->tick);
    free(st);
    co->wss = NULL;
}

/* ---- the start: where the standby's log and ours part -------------------- */

/* Index in h (n entries) of the same epoch start (epoch, where, who), or
 * -1.  Two instances may claim one epoch at one position (a deposed primary
 * restarted while its standby was promoted): the instance tells them apart. */
static long
history_find(const clog_epoch_start *h, size_t n, uint64_t epoch, uint64_t lsn, uint64_t instance)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].epoch == epoch && h[i].lsn == lsn && h[i].instance == instance)
            return (long)i;
    return -1;
}

/* Where the standby's stream starts (*start) and where its log must be cut
 * back to first (*cut, 0: nowhere); false with the reason in why. */
static bool
stream_start(walsend *ws, const proto_repl_start *m, uint64_t *start, uint64_t *cut, char *why,
             size_t whylen)
{
    size_t np;
    const clog_epoch_start *hp = clog_epoch_history(ws->co->log, &np);
    uint64_t durable = clog_flushed_lsn(ws->co->log), oldest = clog_oldest_lsn(ws->co->log);
    *cut = 0;
    *start = m->end;
    if (m->end == 0)
        return true; /* empty: from the oldest segment we keep */
    long js = -1, jp = -1;
    for (long i = (long)m->n - 1; i >= 0 && jp < 0; i--)
        if ((jp = history_find(hp, np, m->epoch[i], m->lsn[i], m->instance[i])) >= 0)
            js = i;
    if (jp < 0) {
        snprintf(why, whylen,
                 m->n ? "its log shares no epoch with this primary's"
                      : "its log carries no epoch history");
        return false;
    }
    uint64_t part = UINT64_MAX; /* where the two logs part */
    if (jp >= 0 && (size_t)jp + 1 < np)
        part = hp[jp + 1].lsn;
    if (js >= 0 && (size_t)js + 1 < m->n && m->lsn[js + 1] < part)
        part = m->lsn[js + 1];
    if (m->end > part) {
        *cut = *start = part;
    }
    if (*start > durable) {
        snprintf(why, whylen, "its log ends at %" PRIu64 ", past this primary's (%" PRIu64 ")",
                 *start, durable);
        return false;
    }
    if (*start < oldest) {
        snprintf(why, whylen,
                 "it needs the log from %" PRIu64 ", which a checkpoint here has removed", *start);
        return false;
    }
    return true;
}

static bool
handle_start(walsend *ws, const frame_view *f)
{
    proto_repl_start m;
    if (ws->rd || !proto_get_repl_start(f, &m)) {
        conn_fail(ws->c, "08P01", "unexpected or malformed REPL_START");
        return false;
    }
    uint64_t start, cut;
    char why[300], err[300];
    bool ok = stream_start(ws, &m, &start, &cut, why, sizeof(why));
    uint64_t end = m.end;
    snprintf(ws->member, sizeof(ws->member), "%s", m.member ? m.member : "");
    proto_repl_start_clear(&m);
    if (ok && ha_enabled(ws->co) && ws->member[0] == '\0')
        snprintf(why, sizeof(why),
                 "this primary fails over by itself ([ha]): its standby needs "
                 "[ha] too"),
            ok = false;
    if (ok && ha_enabled(ws->co) && strcmp(ws->member, ws->co->conf.ha_member) == 0)
        snprintf(why, sizeof(why), "it has this primary's own [ha] member name \"%s\"", ws->member),
            ok = false;
    if (ok && (ws->rd = clog_stream_open(ws->co->log, start, err, sizeof(err))) == NULL)
        snprintf(why, sizeof(why), "%s", err), ok = false;
    if (!ok) {
        log_warn("standby \"%s\" refused: %s%s", ws->name, why,
                 ws->rd ? "" : "; clone it afresh (stop it, empty its data_dir, start it)");
        conn_fail(ws->c, "55000",
                  "this standby cannot follow: %s; empty its data_dir and "
                  "start it again to clone the primary afresh",
                  why);
        return false;
    }
    if (cut)
        log_warn("standby \"%s\": its log forked from ours at %" PRIu64 " (it ends at %" PRIu64
                 "): it cuts it back there",
                 ws->name, cut, end);
    proto_repl_start_ok ok_msg = {
        .start = start,
        .cut_to = cut,
        .flags = ws->co->conf.sync_standby_timeout_ms > 0 ? REPL_MAY_GO_ALONE : 0,
        .epoch = ws->co->epoch};
    wbuf_reset(&ws->out);
    if (!proto_put_repl_start_ok(&ws->out, &ok_msg))
        log_fatal("out of memory");
    conn_send(ws->c, &ws->out);
    ws->sent = ws->acked = start;
    log_log("standby \"%s\" connected: streaming from %" PRIu64 " (this primary is durable to "
            "%" PRIu64 ")",
            ws->name, start, clog_flushed_lsn(ws->co->log));
    pump(ws);
    return true;
}

/* ---- acknowledgements ---------------------------------------------------- */

/* The highest acknowledgement the standby may send: the end of what was
 * sent, or — when that is a segment's switch record — the switch record's
 * LSN, which lies past the next segment's header (docs/wal-format.md). */
static uint64_t
ack_bound(const walsend *ws)
{
    uint64_t seg = clog_segment_size(ws->co->log);
    uint64_t next = (ws->sent / seg + 1) * seg + 64;
    return ws->sent % seg > seg - 128 ? next : ws->sent;
}

/* ws has caught up (and, with [ha], etcd records it): commits count on it */
static void
become_sync(walsend *ws)
{
    struct walsend_state *st = ws->co->wss;
    ws->sync = true;
    st->had_sync = true;
    st->alone = false;
    st->gone_since_ms = 0;
    clog_sync_acked(ws->co->log, ws->acked);
    clog_set_sync(ws->co->log, true);
    log_log("standby \"%s\" has caught up at %" PRIu64 ": it is synchronous", ws->name, ws->acked);
    clog_note_sync(ws->co->log, true, ws->name);
    ha_note_standby(ws->co, true);
    sync_reached(st);
    (void)send_data(ws, ws->sent, NULL, 0); /* it may count itself sure from now on */
}

/* [ha]: etcd has been told (ok) that the streaming standby is synchronous */
static void
sync_recorded(void *arg, bool ok)
{
    struct walsend_state *st = arg;
    walsend *ws = st->cur;
    if (ws == NULL || !ws->recording)
        return;
    ws->recording = false;
    if (ok && !ws->sync && !ws->dead)
        become_sync(ws);
}

static void
handle_ack(walsend *ws, uint64_t lsn)
{
    struct walsend_state *st = ws->co->wss;
    if (lsn > ws->acked)
        ws->acked = lsn;
    lag_acked(ws, ws->acked);
    /* close behind: count on it from now on, so that the target stops
     * moving (commits wait for its acknowledgements) and it catches up */
    if (!ws->sync && ws->acked + CHUNK_MAX >= clog_durable_lsn(ws->co->log)) {
        clog_sync_acked(ws->co->log, ws->acked);
        clog_set_sync(ws->co->log, true);
    }
    if (!ws->sync && ws->acked >= clog_durable_lsn(ws->co->log)) {
        if (ha_enabled(ws->co)) { /* etcd first: only a recorded standby may win */
            if (!ws->recording) {
                ws->recording = true;
                ha_record_sync(ws->co, ws->member, ws->acked, sync_recorded, st);
            }
            return;
        }
        become_sync(ws);
        return;
    }
    if (ws->sync)
        clog_sync_acked(ws->co->log, ws->acked);
}

/* ---- the connection ------------------------------------------------------ */

walsend *
walsend_start(coord *co, conn *c, const char *name, void (*broken)(void *owner), void *owner)
{
    struct walsend_state *st = co->wss;
    if (st == NULL || (co->role != COORD_PRIMARY && co->role != COORD_STARTING)) {
        conn_fail(c, PROTO_NOT_PRIMARY_SQLSTATE, "this coordinator is not a primary");
        return NULL;
    }
    if (st->cur) {
        log_warn("standby \"%s\" refused: standby \"%s\" is streaming already", name,
                 st->cur->name);
        conn_fail(c, "53300", "another standby (\"%s\") is streaming already", st->cur->name);
        return NULL;
    }
    walsend *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        conn_fail(c, "53200", "out of memory");
        return NULL;
    }
    ws->co = co;
    ws->c = c;
    ws->broken = broken;
    ws->owner = owner;
    snprintf(ws->name, sizeof(ws->name), "%s", name);
    snprintf(st->last_name, sizeof(st->last_name), "%s", name);
    wbuf_init(&ws->out);
    ws->last_send_ms = clock_mono_ms();
    st->cur = ws;
    return ws;
}

bool
walsend_on_frame(walsend *ws, const frame_view *f)
{
    uint64_t lsn;
    switch (f->type) {
    case MSG_REPL_START:
        return handle_start(ws, f);
    case MSG_WAL_ACK:
        if (ws->rd == NULL || !proto_get_wal_ack(f, &lsn) || lsn > ack_bound(ws)) {
            conn_fail(ws->c, "08P01", "malformed or unexpected WAL_ACK");
            return false;
        }
        handle_ack(ws, lsn);
        return true;
    default:
        conn_fail(ws->c, "08P01", "unexpected message type 0x%02x from a standby", f->type);
        return false;
    }
}

/* ws is no longer the standby streaming: what that means for commits */
static void
walsend_gone_detach(walsend *ws, const char *reason)
{
    struct walsend_state *st = ws->co->wss;
    st->cur = NULL;
    if (ws->sync) {
        ha_note_standby(ws->co, false);
        st->gone_since_ms = clock_mono_ms();
        log_warn("synchronous standby \"%s\" is gone (%s): commits wait for it%s", ws->name, reason,
                 ws->co->conf.sync_standby_timeout_ms > 0
                     ? " until sync_standby_timeout has passed"
                     : " until it is back (sync_standby_timeout is 0)");
    } else {
        log_log("standby \"%s\" disconnected: %s", ws->name, reason);
        /* close behind, it was counted on before it was synchronous: with
         * none synchronous since we became primary, back to alone */
        if (!st->had_sync)
            clog_set_sync(ws->co->log, false);
    }
}

void
walsend_gone(walsend *ws, const char *reason)
{
    struct walsend_state *st = ws->co->wss;
    if (st && st->cur == ws)
        walsend_gone_detach(ws, reason);
    if (ws->rd)
        wal_reader_close(ws->rd);
    wbuf_free(&ws->out);
    free(ws);
}

/* ---- REPLICATION --------------------------------------------------------- */

void
walsend_describe(coord *co, proto_replication *out)
{
    static char detail[200];
    struct walsend_state *st = co->wss;
    walsend *ws = st ? st->cur : NULL;
    uint64_t durable = clog_durable_lsn(co->log);
    out->role = 1;
    out->epoch = co->epoch;
    out->name = co->conf.name;
    out->peer = ws ? ws->name : st ? st->last_name : "";
    out->primary_lsn = durable;
    out->sure = 1;
    out->sent = ws ? ws->sent : 0;
    out->flushed = ws ? ws->acked : 0;
    out->lag_bytes = ws && durable > ws->acked ? durable - ws->acked : 0;
    out->lag_ms = ws ? lag_ms(ws, clock_mono_ms()) : 0;
    out->synchronous = ws && ws->sync;
    if (ws)
        out->state = ws->sync ? "streaming, synchronous" : "catching up";
    else if (st && st->alone)
        out->state = "alone: gave up waiting for the synchronous standby";
    else if (st && st->had_sync)
        out->state = "waiting for the synchronous standby";
    else
        out->state = "alone: no standby since becoming primary";
    snprintf(detail, sizeof(detail), "%zu commit(s) waiting for the standby",
             clog_sync_waiting(co->log));
    out->detail = detail;
}
