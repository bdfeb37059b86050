/*
 * pgpool.c — see pgpool.h.
 *
 * NOTES
 *  What this file owns: the participant's PostgreSQL connections (a fixed
 *  array of `pool->size` pgc objects, created once and reused for the life
 *  of the process), the two FIFO queues of waiters, and all libpq calls made
 *  after start-up.  Nothing here blocks: connections are made with
 *  PQconnectStartParams/PQconnectPoll, run non-blocking (PQsetnonblocking)
 *  in pipeline mode, and are driven by libevent events on PQsocket().
 *
 *  Life cycle of one pgc (pgc_set_state() is the only place that changes
 *  `state`; the state also says where the pgc is):
 *
 *      DOWN --timer--> CONNECTING --ok--> SETUP --sync--> IDLE <-----+
 *        ^                 | fail          | error          | lease   | release
 *        |                 v               v                v         |
 *        +--(back-off)<----+----- break <--+------------- LEASED <--> BUSY
 *                                   ^                       |  batch   sync
 *                                   +-- socket error, ------+  sent
 *                                       failed send, COPY
 *
 *    DOWN        not connected; the reconnect timer is armed (back-off from
 *                100 ms doubling to 5 s, reset by a successful set-up)
 *    CONNECTING  PQconnectPoll in progress, bounded by a 10 s timer
 *    SETUP       connected; the set-up batch (statement_timeout) runs
 *    IDLE        free: may be granted to a waiter
 *    LEASED      held by a lessee, nothing in flight (e.g. a branch between
 *                two WORK requests, its transaction open)
 *    BUSY        held by a lessee, a batch in flight (syncs == 1)
 *    CLOSED      the pool is being freed
 *
 *  Any error on the socket, a failed send, or a result libpq cannot give us
 *  in pipeline mode (COPY) "breaks" the pgc: PQfinish, DOWN, reconnect
 *  timer; the lessee, if any, is told through on_broken after the pgc has
 *  already been taken back.  A lessee therefore always ends in exactly one
 *  of: pool_release()/pool_discard() by itself, or on_broken.
 *
 *  Results: within one batch libpq returns, per query, its result(s) and
 *  then NULL; after the last query a PGRES_PIPELINE_SYNC result (with no
 *  NULL after it).  pgc_process() walks that sequence and counts the query
 *  index.  Before each PQgetResult() it asks the lessee whether it is
 *  backlogged (its coordinator reads slowly); if so, it stops reading the
 *  socket and re-checks every 10 ms, so a large result set is throttled
 *  in PostgreSQL rather than buffered here without bound.
 *
 *  Hidden entries: a statement the connection's statement cache takes
 *  (stmtcache.h) may bring a DEALLOCATE of the statement it evicts and its
 *  own Parse into the batch ahead of it.  `entries` records the kind of
 *  every entry queued since the last Sync, so pgc_process() can report
 *  hidden results to the cache, count only the lessee's queries in the
 *  index it passes on (uindex), and pass a hidden entry's error on as the
 *  error of the query behind it.  Queries are only queued on a LEASED
 *  connection, so a batch's entries never mix with the next one's.
 *
 *  Waiters: two FIFO queues (phase two first).  A grant never happens
 *  inside the call that made a connection free: pool_release() only
 *  schedules pool_dispatch() on a zero-timeout event, so callbacks never
 *  nest.  New work may take a connection only while more than `reserve`
 *  (1 when size >= 2) are idle: one connection stays for COMMIT PREPARED.
 *  Interactive new work (POOL_PRIO_WORK) only while more than reserve +
 *  the one-shot reserve are idle.  One-shot and interactive waiters share
 *  queue 0 in arrival order; when its head is interactive and may not take
 *  what is idle, the dispatcher serves the first one-shot waiter behind it
 *  instead (noneshot_waiting says whether there is any).
 *  When no connection is up and a connection attempt has failed, the pool
 *  is "unreachable": queued waiters are failed and new ones are refused
 *  until a connection succeeds again.
 *
 *  Wait time-out (pool_wait_timeout): each new-work waiter gets a deadline
 *  when it is queued.  The timeout is the same for all and the queue is
 *  FIFO, so deadlines are in queue order and one timer (ev_wait), armed for
 *  the head's deadline, is enough: when it fires, every waiter at the head
 *  whose deadline has passed is unlinked and told (on_grant with pc NULL,
 *  timed_out set), and the timer is re-armed for the new head.  A head that
 *  left the queue early only makes the timer fire early; it then re-arms.
 *  Phase-two waiters have no deadline.
 */
#include "pgpool.h"

#include "clock.h"
#include "log.h"
#include "pgcancel.h"
#include "stmtcache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PGC_CONNECT_TIMEOUT_MS 10000
#define PGC_BACKOFF_MIN_MS     100
#define PGC_BACKOFF_MAX_MS     5000
#define PGC_BACKLOG_RECHECK_MS 10

/* What one queued pipeline entry is (pgc.entries). */
typedef enum pgc_entry_kind {
    PGC_E_QUERY = 0, /* a lessee's query, unnamed */
    PGC_E_EXEC,      /* a lessee's query, as a cached statement */
    PGC_E_PREPARE,   /* Parse of a cached statement (hidden) */
    PGC_E_DEALLOC,   /* DEALLOCATE of an evicted statement (hidden) */
} pgc_entry_kind;

typedef struct pgc_entry {
    pgc_entry_kind kind;
    int slot;         /* of the statement cache, for EXEC and PREPARE */
    uint64_t sent_ns; /* when it was queued (statement times) */
} pgc_entry;

typedef enum pgc_state {
    PGC_DOWN = 0,
    PGC_CONNECTING,
    PGC_SETUP,
    PGC_IDLE,
    PGC_LEASED,
    PGC_BUSY,
    PGC_CLOSED,
} pgc_state;

struct pgc {
    pgc_state state;
    pg_pool *pool;
    int id;
    PGconn *pg;
    struct event *ev_read;  /* EV_READ|EV_PERSIST on the socket once connected */
    struct event *ev_write; /* one-shot EV_WRITE while PQflush() has more to send */
    struct event *ev_conn;  /* one-shot read/write readiness while connecting */
    struct event *ev_timer; /* reconnect back-off, connect time-out, backlog re-check */
    struct event *ev_defer; /* deferred break after a failed send */
    const pgc_ops *ops;
    void *arg;
    int index;          /* entry of the batch whose results are being read */
    int uindex;         /* the same, counting the lessee's queries only */
    bool cur_got;       /* a result for `index` was delivered */
    int nulls;          /* consecutive NULLs without a result (sanity check) */
    int syncs;          /* syncs in flight: 0 or 1 */
    bool paused;        /* the lessee is backlogged: socket not read */
    bool failed;        /* a send failed; break pending (ev_defer) */
    bool lost_stmt;     /* a statement of ours was gone or taken: close on release */
    stmt_cache *cache;  /* statements prepared on this connection */
    pgc_entry *entries; /* kinds of the batch's entries, in order */
    int nentries, entries_cap;
    bool ever_up; /* set-up completed at least once */
    bool retired; /* the pool shrank (pool_resize): closed once not leased, never reopened */
    int backoff_ms;
    char fail_reason[256];
};

struct pg_pool {
    struct event_base *base;
    char *conninfo;
    int size;
    int reserve;         /* for phase two */
    int oneshot_reserve; /* configured; pool_oneshot_reserve() is what holds */
    int noneshot_waiting;
    int64_t stmt_timeout_ms;
    int64_t wait_timeout_ms;
    pgc **conns;
    pool_waiter *head[2], *tail[2];
    struct event *ev_dispatch;
    struct event *ev_wait; /* deadline of the head of the new-work queue */
    pgcancel *canceller;   /* worker thread for cancel requests */
    char wait_error[256];
    stmt_seen seen; /* admission filter of the connections' statement caches */
    bool started;
    bool unreachable;
    char last_error[256];
    pool_stats stats;
    int stmt_cache_size;
    int nretired; /* connections of conns[] closed for good by pool_resize */
};

static const char *const pgc_state_names[] = {
    "down", "connecting", "setup", "idle", "leased", "busy", "closed",
};

static void pgc_connect_start(pgc *pc);
static void pgc_break(pgc *pc, const char *reason);
static void pgc_process(pgc *pc);
static void pool_schedule_dispatch(pg_pool *p);
static void pool_note_failure(pg_pool *p, const char *reason);

/* ------------------------------------------------------------------------
 * State
 */

static void
pgc_set_state(pgc *pc, pgc_state st)
{
    pgc_state old = pc->state;
    bool ok;
    switch (st) {
    case PGC_DOWN:
        ok = old != PGC_CLOSED;
        break;
    case PGC_CONNECTING:
        ok = old == PGC_DOWN;
        break;
    case PGC_SETUP:
        ok = old == PGC_CONNECTING;
        break;
    case PGC_IDLE:
        ok = old == PGC_SETUP || old == PGC_CONNECTING || old == PGC_LEASED;
        break;
    case PGC_LEASED:
        ok = old == PGC_IDLE || old == PGC_BUSY;
        break;
    case PGC_BUSY:
        ok = old == PGC_LEASED;
        break;
    case PGC_CLOSED:
        ok = true;
        break;
    default:
        abort();
    }
    if (!ok) {
        log_panic("pg#%d: invalid state change %s -> %s", pc->id, pgc_state_names[old],
                  pgc_state_names[st]);
    }
    pc->state = st;
}

int
pgc_id(const pgc *pc)
{
    return pc->id;
}

/* ------------------------------------------------------------------------
 * Sockets and events
 */

static void
pgc_close_pg(pgc *pc)
{
    if (pc->ev_read) {
        event_free(pc->ev_read);
        pc->ev_read = NULL;
    }
    if (pc->ev_write) {
        event_free(pc->ev_write);
        pc->ev_write = NULL;
    }
    if (pc->ev_conn) {
        event_free(pc->ev_conn);
        pc->ev_conn = NULL;
    }
    if (pc->ev_timer)
        event_del(pc->ev_timer);
    if (pc->ev_defer)
        event_del(pc->ev_defer);
    if (pc->pg) {
        PQfinish(pc->pg);
        pc->pg = NULL;
    }
    pc->syncs = 0;
    pc->index = 0;
    pc->cur_got = false;
    pc->nulls = 0;
    pc->paused = false;
    pc->failed = false;
    pc->lost_stmt = false;
    pc->uindex = 0;
    pc->nentries = 0;
    stmt_cache_reset(pc->cache);
}

static void
pgc_notice(void *arg, const char *message)
{
    pgc *pc = arg;
    size_t n = strlen(message);
    while (n > 0 && message[n - 1] == '\n')
        n--;
    log_debug("pg#%d: %.*s", pc->id, (int)n, message);
}

static void
pgc_flush(pgc *pc)
{
    if (pc->pg == NULL)
        return;
    int r = PQflush(pc->pg);
    if (r < 0) {
        pgc_break(pc, PQerrorMessage(pc->pg));
        return;
    }
    if (r == 1 && pc->ev_write)
        event_add(pc->ev_write, NULL);
}

static void
pgc_on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc_flush(arg);
}

static void
pgc_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc *pc = arg;
    if (pc->pg == NULL)
        return;
    if (!PQconsumeInput(pc->pg)) {
        pgc_break(pc, PQerrorMessage(pc->pg));
        return;
    }
    if (PQstatus(pc->pg) == CONNECTION_BAD) {
        pgc_break(pc, PQerrorMessage(pc->pg));
        return;
    }
    /* libpq asks to read input while waiting to flush (the server may be
     * blocked writing to us); retry the flush too */
    if (pc->ev_write && event_pending(pc->ev_write, EV_WRITE, NULL)) {
        event_del(pc->ev_write);
        pgc_flush(pc);
        if (pc->pg == NULL)
            return;
    }
    pgc_process(pc);
}

static void
pgc_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc *pc = arg;
    switch (pc->state) {
    case PGC_DOWN:
        pgc_connect_start(pc);
        break;
    case PGC_CONNECTING:
        pgc_break(pc, "timeout expired while connecting");
        break;
    case PGC_SETUP:
    case PGC_BUSY:
        /* backlog re-check */
        if (pc->paused) {
            if (pc->ops && pc->ops->backlogged && pc->ops->backlogged(pc->arg)) {
                struct timeval tv = {0, PGC_BACKLOG_RECHECK_MS * 1000};
                event_add(pc->ev_timer, &tv);
                return;
            }
            pc->paused = false;
            event_add(pc->ev_read, NULL);
            if (!PQconsumeInput(pc->pg)) {
                pgc_break(pc, PQerrorMessage(pc->pg));
                return;
            }
            pgc_process(pc);
        }
        break;
    case PGC_IDLE:
    case PGC_LEASED:
    case PGC_CLOSED:
        break;
    default:
        abort();
    }
}

static void
pgc_on_defer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc *pc = arg;
    if (pc->failed)
        pgc_break(pc, pc->fail_reason);
}

static void
pgc_schedule_reconnect(pgc *pc)
{
    if (pc->retired) {
        pgc_set_state(pc, PGC_CLOSED);
        return;
    }
    int ms = pc->backoff_ms;
    if (ms < PGC_BACKOFF_MIN_MS)
        ms = PGC_BACKOFF_MIN_MS;
    pc->backoff_ms = ms * 2 > PGC_BACKOFF_MAX_MS ? PGC_BACKOFF_MAX_MS : ms * 2;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(pc->ev_timer, &tv);
}

/* Mark a send failure; the break (and the lessee's on_broken) follows from
 * the event loop, so pgc_query()/pgc_sync() never call back into their
 * caller. */
static void
pgc_fail_later(pgc *pc, const char *reason)
{
    if (pc->failed)
        return;
    pc->failed = true;
    snprintf(pc->fail_reason, sizeof(pc->fail_reason), "%s", reason);
    event_active(pc->ev_defer, 0, 0);
}

static void
pgc_break(pgc *pc, const char *reason)
{
    pgc_state old = pc->state;
    if (old == PGC_CLOSED || old == PGC_DOWN)
        return;
    char why[256];
    snprintf(why, sizeof(why), "%s", reason && *reason ? reason : "connection lost");
    size_t n = strlen(why);
    while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' '))
        why[--n] = '\0';
    for (char *q = why; *q; q++) {
        if (*q == '\n' || *q == '\t')
            *q = ' ';
    }

    const pgc_ops *ops = pc->ops;
    void *arg = pc->arg;
    pc->ops = NULL;
    pc->arg = NULL;
    pgc_close_pg(pc);
    pgc_set_state(pc, PGC_DOWN);
    if (old == PGC_CONNECTING) {
        if (!pc->pool->unreachable)
            log_warn("could not connect to PostgreSQL (pg#%d): %s", pc->id, why);
        else
            log_debug("could not connect to PostgreSQL (pg#%d): %s", pc->id, why);
        pool_note_failure(pc->pool, why);
    } else {
        log_warn("connection pg#%d to PostgreSQL lost (%s): %s", pc->id, pgc_state_names[old], why);
        pc->backoff_ms = 0;
    }
    pgc_schedule_reconnect(pc);
    if ((old == PGC_LEASED || old == PGC_BUSY) && ops && ops->on_broken)
        ops->on_broken(pc, why, arg);
}

/* ------------------------------------------------------------------------
 * Connecting and set-up
 */

static void pgc_connect_step(pgc *pc);

static void
pgc_on_connect_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc_connect_step(arg);
}

static void
pgc_connect_wait(pgc *pc, short what)
{
    if (pc->ev_conn) {
        event_free(pc->ev_conn);
        pc->ev_conn = NULL;
    }
    int fd = PQsocket(pc->pg);
    if (fd < 0) {
        pgc_break(pc, "no socket while connecting");
        return;
    }
    pc->ev_conn = event_new(pc->pool->base, fd, what, pgc_on_connect_io, pc);
    if (pc->ev_conn == NULL) {
        pgc_break(pc, "out of memory");
        return;
    }
    event_add(pc->ev_conn, NULL);
}

static void
setup_on_result(pgc *pc, int index, const PGresult *res, void *arg)
{
    (void)index;
    (void)arg;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return;
    /* PostgreSQL's own error, with its fields (one made up by libpq has
     * none; the break's line shows it) */
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (primary != NULL)
        log_report(LOG_LVL_WARNING, PQresultErrorField(res, PG_DIAG_SQLSTATE),
                   PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
                   PQresultErrorField(res, PG_DIAG_MESSAGE_HINT),
                   "pg#%d: could not set statement_timeout on a new connection: %s", pc->id,
                   primary);
    pgc_fail_later(pc, PQresultErrorMessage(res));
}

static void
setup_on_sync(pgc *pc, void *arg)
{
    (void)arg;
    if (pc->failed)
        return; /* the deferred break takes over */
    pc->ops = NULL;
    pc->arg = NULL;
    pgc_set_state(pc, PGC_IDLE);
    pc->backoff_ms = 0;
    if (pc->pool->unreachable)
        log_log("PostgreSQL is reachable again (pg#%d)", pc->id);
    else
        log_debug("connection pg#%d to PostgreSQL is up", pc->id);
    pc->ever_up = true;
    pc->pool->unreachable = false;
    pool_schedule_dispatch(pc->pool);
}

static const pgc_ops setup_ops = {
    .on_result = setup_on_result,
    .on_sync = setup_on_sync,
};

static void
pgc_connected(pgc *pc)
{
    if (pc->ev_conn) {
        event_free(pc->ev_conn);
        pc->ev_conn = NULL;
    }
    event_del(pc->ev_timer);
    PQsetNoticeProcessor(pc->pg, pgc_notice, pc);
    if (PQsetnonblocking(pc->pg, 1) != 0 || PQenterPipelineMode(pc->pg) != 1) {
        pgc_break(pc, PQerrorMessage(pc->pg));
        return;
    }
    int fd = PQsocket(pc->pg);
    pc->ev_read = event_new(pc->pool->base, fd, EV_READ | EV_PERSIST, pgc_on_read, pc);
    pc->ev_write = event_new(pc->pool->base, fd, EV_WRITE, pgc_on_write, pc);
    if (pc->ev_read == NULL || pc->ev_write == NULL) {
        pgc_break(pc, "out of memory");
        return;
    }
    event_add(pc->ev_read, NULL);
    pgc_set_state(pc, PGC_SETUP);
    pc->ops = &setup_ops;
    pc->arg = pc;
    /* The set-up batch always runs, so a fresh connection proves it can
     * execute a query before it is handed out. */
    char val[32];
    snprintf(val, sizeof(val), "%" PRId64, pc->pool->stmt_timeout_ms);
    const char *params[1] = {val};
    if (!PQsendQueryParams(pc->pg, "SELECT pg_catalog.set_config('statement_timeout', $1, false)",
                           1, NULL, params, NULL, NULL, 0) ||
        !PQpipelineSync(pc->pg)) {
        pgc_break(pc, PQerrorMessage(pc->pg));
        return;
    }
    pc->syncs = 1;
    pgc_flush(pc);
}

static void
pgc_connect_step(pgc *pc)
{
    if (pc->state != PGC_CONNECTING || pc->pg == NULL)
        return;
    switch (PQconnectPoll(pc->pg)) {
    case PGRES_POLLING_READING:
        pgc_connect_wait(pc, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        pgc_connect_wait(pc, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        pgc_connected(pc);
        break;
    case PGRES_POLLING_FAILED:
    default:
        pgc_break(pc, PQerrorMessage(pc->pg));
        break;
    }
}

static void
pgc_connect_start(pgc *pc)
{
    const char *const keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
    const char *const vals[] = {"10", pc->pool->conninfo, "dtx-participant", NULL};
    pgc_set_state(pc, PGC_CONNECTING);
    pc->pg = PQconnectStartParams(keys, vals, 1);
    if (pc->pg == NULL) {
        pgc_break(pc, "out of memory");
        return;
    }
    if (PQstatus(pc->pg) == CONNECTION_BAD) {
        pgc_break(pc, PQerrorMessage(pc->pg));
        return;
    }
    struct timeval tv = {PGC_CONNECT_TIMEOUT_MS / 1000, 0};
    event_add(pc->ev_timer, &tv);
    /* as if PQconnectPoll had returned PGRES_POLLING_WRITING */
    pgc_connect_wait(pc, EV_WRITE);
}

/* ------------------------------------------------------------------------
 * Batches
 */

/* The kind of entry i of the batch; entries not recorded (the set-up
 * batch) are plain queries. */
static pgc_entry
pgc_entry_at(const pgc *pc, int i)
{
    if (i < pc->nentries)
        return pc->entries[i];
    return (pgc_entry){.kind = PGC_E_QUERY, .slot = -1};
}

static bool
pgc_entry_push(pgc *pc, pgc_entry_kind kind, int slot)
{
    if (pc->nentries == pc->entries_cap) {
        int cap = pc->entries_cap ? pc->entries_cap * 2 : 16;
        pgc_entry *e = realloc(pc->entries, (size_t)cap * sizeof(*e));
        if (e == NULL)
            return false;
        pc->entries = e;
        pc->entries_cap = cap;
    }
    pc->entries[pc->nentries++] =
        (pgc_entry){.kind = kind, .slot = slot, .sent_ns = clock_mono_ns()};
    return true;
}

/* Bookkeeping of the statement cache for one result; true when the lessee
 * must see it (its own queries' results, and the error of a hidden entry,
 * which stands for the query behind it). */
/* A statement's time and, if it failed, its SQLSTATE class */
static void
pool_note_result(pg_pool *p, pgc_entry e, const char *state)
{
    /* (the connection's own set-up query is no entry: sent_ns 0) */
    if ((e.kind != PGC_E_QUERY && e.kind != PGC_E_EXEC) || e.sent_ns == 0)
        return;
    pool_stats *st = &p->stats;
    metrics_hist_observe(&st->stmt, (clock_mono_ns() - e.sent_ns) / 1000);
    if (state == NULL || strlen(state) < 2)
        return;
    for (int i = 0; i < st->nerrors; i++) {
        if (memcmp(st->errors[i].cls, state, 2) == 0) {
            st->errors[i].n++;
            return;
        }
    }
    if (st->nerrors < POOL_ERROR_CLASSES) {
        memcpy(st->errors[st->nerrors].cls, state, 2);
        st->errors[st->nerrors].cls[2] = '\0';
        st->errors[st->nerrors++].n = 1;
    }
}

static bool
pgc_entry_result(pgc *pc, pgc_entry e, const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    bool error = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
    const char *state = error ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    pool_note_result(pc->pool, e, state);
    /* one of our statements was gone (a function ran DEALLOCATE: 26000),
     * or a client had planted one under our next name (42P05) */
    if (state != NULL && e.kind != PGC_E_QUERY &&
        (strcmp(state, "26000") == 0 || strcmp(state, "42P05") == 0))
        pc->lost_stmt = true;
    switch (e.kind) {
    case PGC_E_QUERY:
        return true;
    case PGC_E_EXEC:
        if (error)
            stmt_cache_exec_failed(pc->cache, e.slot, state);
        return true;
    case PGC_E_PREPARE:
        stmt_cache_prepared(pc->cache, e.slot, st == PGRES_COMMAND_OK);
        if (st == PGRES_COMMAND_OK)
            log_debug("pg#%d: prepared a statement of the cache (slot %d)", pc->id, e.slot);
        return error;
    case PGC_E_DEALLOC:
        if (st != PGRES_COMMAND_OK)
            stmt_cache_dealloc_failed(pc->cache);
        return error;
    default:
        abort();
    }
}

static void
pgc_process(pgc *pc)
{
    while ((pc->state == PGC_BUSY || pc->state == PGC_SETUP) && pc->syncs > 0 && !pc->failed) {
        if (pc->ops && pc->ops->backlogged && pc->ops->backlogged(pc->arg)) {
            if (!pc->paused) {
                log_debug("pg#%d: holding results back: the peer reads slowly", pc->id);
                pc->paused = true;
                event_del(pc->ev_read);
                struct timeval tv = {0, PGC_BACKLOG_RECHECK_MS * 1000};
                event_add(pc->ev_timer, &tv);
            }
            return;
        }
        if (PQisBusy(pc->pg))
            return;
        PGresult *r = PQgetResult(pc->pg);
        pgc_entry e = pgc_entry_at(pc, pc->index);
        if (r == NULL) {
            if (pc->cur_got) {
                if (e.kind == PGC_E_QUERY || e.kind == PGC_E_EXEC)
                    pc->uindex++;
                pc->index++;
                pc->cur_got = false;
                pc->nulls = 0;
                continue;
            }
            if (++pc->nulls > 2) {
                pgc_break(pc, "lost track of the pipeline");
                return;
            }
            continue;
        }
        pc->nulls = 0;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            pc->syncs--;
            pc->index = 0;
            pc->uindex = 0;
            pc->nentries = 0;
            pc->cur_got = false;
            stmt_cache_batch_end(pc->cache);
            if (pc->state == PGC_BUSY)
                pgc_set_state(pc, PGC_LEASED);
            if (pc->ops && pc->ops->on_sync)
                pc->ops->on_sync(pc, pc->arg);
            continue;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(r);
            pgc_break(pc, "COPY to or from the client is not supported");
            return;
        }
        pc->cur_got = true;
        if (pgc_entry_result(pc, e, r) && pc->ops && pc->ops->on_result)
            pc->ops->on_result(pc, pc->uindex, r, pc->arg);
        PQclear(r);
    }
}

/* May a query be queued on pc now?  False once a send has failed (the
 * break follows from the loop). */
static bool
pgc_may_queue(pgc *pc)
{
    if (pc->state != PGC_LEASED)
        log_panic("pg#%d: query on a connection that is %s", pc->id, pgc_state_names[pc->state]);
    return !pc->failed;
}

/* Queue sql as the statement cache says: unnamed, or as a named statement,
 * after the DEALLOCATE of the one it evicts and its own Parse. */
static bool
pgc_queue(pgc *pc, const char *sql, int nparams, const char *const *params)
{
    stmt_plan plan;
    stmt_cache_plan(pc->cache, &pc->pool->seen, sql, nparams, &plan);
    if (plan.slot < 0)
        return pgc_entry_push(pc, PGC_E_QUERY, -1) &&
               PQsendQueryParams(pc->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (plan.dealloc) {
        char dsql[STMT_NAME_MAX + 16];
        snprintf(dsql, sizeof(dsql), "DEALLOCATE %s", plan.old_name);
        log_debug("pg#%d: deallocating %s", pc->id, plan.old_name);
        if (!pgc_entry_push(pc, PGC_E_DEALLOC, -1) ||
            !PQsendQueryParams(pc->pg, dsql, 0, NULL, NULL, NULL, NULL, 0))
            return false;
    }
    if (plan.prepare) {
        log_debug("pg#%d: preparing %s: %s", pc->id, plan.name, sql);
        if (!pgc_entry_push(pc, PGC_E_PREPARE, plan.slot) ||
            !PQsendPrepare(pc->pg, plan.name, sql, nparams, NULL))
            return false;
    }
    return pgc_entry_push(pc, PGC_E_EXEC, plan.slot) &&
           PQsendQueryPrepared(pc->pg, plan.name, nparams, params, NULL, NULL, 0);
}

void
pgc_query(pgc *pc, const char *sql, int nparams, const char *const *params)
{
    if (pgc_may_queue(pc) && !pgc_queue(pc, sql, nparams, params))
        pgc_fail_later(pc, PQerrorMessage(pc->pg));
}

void
pgc_sync(pgc *pc)
{
    if (pc->state != PGC_LEASED)
        log_panic("pg#%d: sync on a connection that is %s", pc->id, pgc_state_names[pc->state]);
    pgc_set_state(pc, PGC_BUSY);
    pc->syncs++;
    pc->index = 0;
    pc->uindex = 0;
    pc->cur_got = false;
    if (pc->failed)
        return;
    if (!PQpipelineSync(pc->pg)) {
        pgc_fail_later(pc, PQerrorMessage(pc->pg));
        return;
    }
    int r = PQflush(pc->pg);
    if (r < 0)
        pgc_fail_later(pc, PQerrorMessage(pc->pg));
    else if (r == 1)
        event_add(pc->ev_write, NULL);
}

bool
pgc_cancel(pgc *pc)
{
    if (pc->state != PGC_BUSY || pc->pg == NULL || pc->failed)
        return false;
    PGcancel *cn = PQgetCancel(pc->pg);
    if (cn == NULL)
        return false;
    char what[32];
    snprintf(what, sizeof(what), "pg#%d (backend %d)", pc->id, PQbackendPID(pc->pg));
    pgcancel_request(pc->pool->canceller, cn, what);
    return true;
}

void
pgc_set_owner(pgc *pc, const pgc_ops *ops, void *arg)
{
    pc->ops = ops;
    pc->arg = arg;
}

PGTransactionStatusType
pgc_txn_status(const pgc *pc)
{
    return pc->pg ? PQtransactionStatus(pc->pg) : PQTRANS_UNKNOWN;
}

/* ------------------------------------------------------------------------
 * Pool
 */

static void pool_wait_cb(evutil_socket_t fd, short what, void *arg);

/* Close pc for good and free it (NULL: nothing). */
static void
pgc_free(pgc *pc)
{
    if (pc == NULL)
        return;
    pgc_close_pg(pc);
    pgc_set_state(pc, PGC_CLOSED);
    if (pc->ev_timer)
        event_free(pc->ev_timer);
    if (pc->ev_defer)
        event_free(pc->ev_defer);
    stmt_cache_free(pc->cache);
    free(pc->entries);
    free(pc);
}

/* A connection of p, down; NULL when out of memory (then pool_free frees
 * what was made of it when it is stored in p->conns). */
static pgc *
pgc_new(pg_pool *p, int id)
{
    pgc *pc = calloc(1, sizeof(*pc));
    if (pc == NULL)
        return NULL;
    pc->pool = p;
    pc->id = id;
    pc->state = PGC_DOWN;
    pc->ev_timer = evtimer_new(p->base, pgc_on_timer, pc);
    pc->ev_defer = event_new(p->base, -1, 0, pgc_on_defer, pc);
    pc->cache = stmt_cache_new(p->stmt_cache_size);
    if (pc->ev_timer == NULL || pc->ev_defer == NULL || pc->cache == NULL) {
        if (pc->ev_timer)
            event_free(pc->ev_timer);
        if (pc->ev_defer)
            event_free(pc->ev_defer);
        stmt_cache_free(pc->cache);
        free(pc);
        return NULL;
    }
    return pc;
}

pg_pool *
pool_create(struct event_base *base, const char *conninfo, int size, int64_t statement_timeout_ms,
            int64_t wait_timeout_ms, int stmt_cache_size)
{
    pg_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    static const metrics_hist seconds = METRICS_HIST_SECONDS;
    p->stats.stmt = seconds;
    p->base = base;
    p->size = size;
    p->reserve = size >= 2 ? 1 : 0;
    p->stmt_timeout_ms = statement_timeout_ms;
    p->wait_timeout_ms = wait_timeout_ms;
    p->conninfo = strdup(conninfo);
    p->conns = calloc((size_t)size, sizeof(pgc *));
    p->ev_dispatch = event_new(base, -1, 0, NULL, NULL);
    p->ev_wait = evtimer_new(base, pool_wait_cb, p);
    p->canceller = pgcancel_create();
    if (p->conninfo == NULL || p->conns == NULL || p->ev_dispatch == NULL || p->ev_wait == NULL ||
        p->canceller == NULL)
        goto fail;
    p->stmt_cache_size = stmt_cache_size;
    for (int i = 0; i < size; i++)
        if ((p->conns[i] = pgc_new(p, i + 1)) == NULL)
            goto fail;
    return p;
fail:
    pool_free(p);
    return NULL;
}

static void pool_dispatch_cb(evutil_socket_t fd, short what, void *arg);

void
pool_start(pg_pool *p)
{
    event_assign(p->ev_dispatch, p->base, -1, 0, pool_dispatch_cb, p);
    p->started = true;
    for (int i = 0; i < p->size; i++)
        pgc_connect_start(p->conns[i]);
}

void
pool_free(pg_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; p->conns && i < p->size; i++)
        pgc_free(p->conns[i]);
    free(p->conns);
    if (p->ev_dispatch)
        event_free(p->ev_dispatch);
    if (p->ev_wait)
        event_free(p->ev_wait);
    pgcancel_free(p->canceller);
    free(p->conninfo);
    free(p);
}

/* An idle connection of p, or NULL; it stays the pool's until leased. */
static pgc *
pool_find_idle(pg_pool *p)
{
    for (int i = 0; i < p->size; i++) {
        if (p->conns[i]->state == PGC_IDLE)
            return p->conns[i];
    }
    return NULL;
}

static int
pool_count(const pg_pool *p, pgc_state a, pgc_state b, pgc_state c)
{
    int n = 0;
    for (int i = 0; i < p->size; i++) {
        pgc_state s = p->conns[i]->state;
        if (s == a || s == b || s == c)
            n++;
    }
    return n;
}

int
pool_size(const pg_pool *p)
{
    return p->size - p->nretired;
}

bool
pool_resize(pg_pool *p, int n)
{
    int live = p->size - p->nretired;
    if (n == live || n < 1)
        return true;
    if (n > live) {
        /* the places of connections closed by an earlier shrink first */
        for (int i = 0; i < p->size && live < n; i++) {
            pgc *old = p->conns[i];
            if (!old->retired || old->state != PGC_CLOSED)
                continue;
            pgc *pc = pgc_new(p, old->id);
            if (pc == NULL)
                break;
            pgc_free(old);
            p->conns[i] = pc;
            p->nretired--;
            live++;
            if (p->started)
                pgc_connect_start(pc);
        }
        pgc **nc =
            realloc(p->conns, (size_t)(p->size + (n > live ? n - live : 0) + 1) * sizeof(pgc *));
        if (nc == NULL)
            goto out;
        p->conns = nc;
        while (live < n) {
            pgc *pc = pgc_new(p, p->size + 1);
            if (pc == NULL)
                goto out;
            p->conns[p->size++] = pc;
            live++;
            if (p->started)
                pgc_connect_start(pc);
        }
    } else {
        /* the newest go first: closed now unless leased, else at release */
        for (int i = p->size - 1; i >= 0 && live > n; i--) {
            pgc *pc = p->conns[i];
            if (pc->retired)
                continue;
            pc->retired = true;
            p->nretired++;
            live--;
            if (pc->state != PGC_LEASED && pc->state != PGC_BUSY) {
                pgc_close_pg(pc);
                pgc_set_state(pc, PGC_CLOSED);
            }
        }
    }
out:
    p->reserve = live >= 2 ? 1 : 0;
    log_log("pool_size is %d now", live);
    pool_schedule_dispatch(p);
    return live == n;
}

int
pool_idle_count(const pg_pool *p)
{
    return pool_count(p, PGC_IDLE, PGC_IDLE, PGC_IDLE);
}

int
pool_busy_count(const pg_pool *p)
{
    return pool_count(p, PGC_BUSY, PGC_BUSY, PGC_BUSY);
}

int
pool_up_count(const pg_pool *p)
{
    return pool_count(p, PGC_IDLE, PGC_LEASED, PGC_BUSY);
}

static void
pool_lease(pgc *pc, const pgc_ops *ops, void *arg)
{
    pgc_set_state(pc, PGC_LEASED);
    pc->ops = ops;
    pc->arg = arg;
}

static void
waiter_unlink(pg_pool *p, pool_waiter *w)
{
    int q = w->prio == POOL_PRIO_PHASE2 ? 1 : 0;
    if (w->prio == POOL_PRIO_ONESHOT)
        p->noneshot_waiting--;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->head[q] = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->tail[q] = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
}

/* Arm ev_wait for the deadline of the head of the new-work queue. */
static void
pool_arm_wait(pg_pool *p)
{
    pool_waiter *w = p->head[0];
    if (w == NULL || w->deadline_ms == 0)
        return;
    int64_t left = w->deadline_ms - clock_mono_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000)};
    evtimer_add(p->ev_wait, &tv);
}

static void
pool_wait_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pg_pool *p = arg;
    int64_t now = clock_mono_ms();
    int n = 0;
    while (p->head[0] && p->head[0]->deadline_ms != 0 && p->head[0]->deadline_ms <= now) {
        pool_waiter *w = p->head[0];
        waiter_unlink(p, w);
        w->timed_out = true;
        if (n++ == 0) {
            char osr[48] = "";
            if (pool_oneshot_reserve(p) > 0)
                snprintf(osr, sizeof(osr), ", %d for one-shot work", pool_oneshot_reserve(p));
            snprintf(p->wait_error, sizeof(p->wait_error),
                     "no PostgreSQL connection became free within pool_wait_timeout (%" PRId64
                     " ms): the pool's connections (pool_size = %d%s%s) are held by open "
                     "transactions",
                     p->wait_timeout_ms, pool_size(p), p->reserve ? ", one kept for phase two" : "",
                     osr);
        }
        w->on_grant(NULL, p->wait_error, w->arg);
    }
    if (n > 0)
        log_warn("%d waiter%s for a PostgreSQL connection gave up after pool_wait_timeout "
                 "(%" PRId64 " ms; pool_size = %d, %d in use)",
                 n, n == 1 ? "" : "s", p->wait_timeout_ms, pool_size(p),
                 pool_count(p, PGC_LEASED, PGC_BUSY, PGC_BUSY));
    pool_arm_wait(p);
}

int
pool_oneshot_reserve(const pg_pool *p)
{
    int most = pool_size(p) - p->reserve - 1;
    int r = p->oneshot_reserve < most ? p->oneshot_reserve : most;
    return r > 0 ? r : 0;
}

void
pool_set_oneshot_reserve(pg_pool *p, int n)
{
    p->oneshot_reserve = n;
    pool_schedule_dispatch(p);
}

static bool
pool_may_grant(const pg_pool *p, pool_prio prio)
{
    int idle = pool_idle_count(p);
    switch (prio) {
    case POOL_PRIO_PHASE2:
        return idle > 0;
    case POOL_PRIO_ONESHOT:
        return idle > p->reserve;
    case POOL_PRIO_WORK:
    default:
        return idle > p->reserve + pool_oneshot_reserve(p);
    }
}

/* The first one-shot waiter of queue 0, or NULL. */
static pool_waiter *
pool_first_oneshot(const pg_pool *p)
{
    if (p->noneshot_waiting == 0)
        return NULL;
    for (pool_waiter *w = p->head[0]; w; w = w->next)
        if (w->prio == POOL_PRIO_ONESHOT)
            return w;
    return NULL;
}

pool_acquire_result
pool_acquire(pg_pool *p, pool_waiter *w, const pgc_ops *ops, void *arg, pgc **out,
             const char **error)
{
    int q = w->prio == POOL_PRIO_PHASE2 ? 1 : 0;
    *out = NULL;
    *error = NULL;
    if (p->unreachable && pool_up_count(p) == 0) {
        *error = p->last_error;
        return POOL_FAILED;
    }
    /* FIFO: only bypass the queue when nobody of this or a higher priority
     * is waiting; a one-shot branch also passes interactive waiters that
     * may not take what is idle (the one-shot reserve) */
    bool ahead = p->head[1] != NULL || (q == 0 && p->head[0] != NULL);
    if (w->prio == POOL_PRIO_ONESHOT && p->head[1] == NULL && p->noneshot_waiting == 0 &&
        !pool_may_grant(p, POOL_PRIO_WORK))
        ahead = false;
    if (!ahead && pool_may_grant(p, w->prio)) {
        pgc *pc = pool_find_idle(p);
        if (pc) {
            pool_lease(pc, ops, arg);
            *out = pc;
            return POOL_GRANTED;
        }
    }
    w->lessee_ops = ops;
    w->arg = arg;
    w->timed_out = false;
    w->deadline_ms = 0;
    w->next = NULL;
    w->prev = p->tail[q];
    if (p->tail[q])
        p->tail[q]->next = w;
    else
        p->head[q] = w;
    p->tail[q] = w;
    w->queued = true;
    if (w->prio == POOL_PRIO_ONESHOT)
        p->noneshot_waiting++;
    if (q == 0 && p->wait_timeout_ms > 0) {
        w->deadline_ms = clock_mono_ms() + p->wait_timeout_ms;
        if (!evtimer_pending(p->ev_wait, NULL))
            pool_arm_wait(p);
    }
    return POOL_QUEUED;
}

void
pool_cancel(pg_pool *p, pool_waiter *w)
{
    if (w->queued)
        waiter_unlink(p, w);
}

static void
pool_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pg_pool *p = arg;
    for (;;) {
        pool_waiter *w = p->head[1];
        if (w == NULL) {
            w = p->head[0];
            if (w == NULL)
                return;
            /* the one-shot reserve: a one-shot waiter passes an
             * interactive head that may not take what is idle */
            if (!pool_may_grant(p, w->prio) && w->prio == POOL_PRIO_WORK) {
                pool_waiter *o = pool_first_oneshot(p);
                if (o != NULL)
                    w = o;
            }
        }
        if (!pool_may_grant(p, w->prio))
            return;
        pgc *pc = pool_find_idle(p);
        if (pc == NULL)
            return;
        waiter_unlink(p, w);
        pool_lease(pc, w->lessee_ops, w->arg);
        w->on_grant(pc, NULL, w->arg);
    }
}

static void
pool_schedule_dispatch(pg_pool *p)
{
    if (p->started && (p->head[0] || p->head[1]))
        event_active(p->ev_dispatch, 0, 0);
}

static void
pool_note_failure(pg_pool *p, const char *reason)
{
    snprintf(p->last_error, sizeof(p->last_error), "%s", reason);
    if (pool_up_count(p) > 0)
        return;
    p->unreachable = true;
    /* nothing is up and connecting fails: fail the waiters rather than keep
     * them hanging for as long as PostgreSQL is away */
    for (int q = 1; q >= 0; q--) {
        while (p->head[q]) {
            pool_waiter *w = p->head[q];
            waiter_unlink(p, w);
            w->on_grant(NULL, p->last_error, w->arg);
        }
    }
}

void
pool_release(pgc *pc)
{
    if (pc->state != PGC_LEASED)
        log_panic("pg#%d: release of a connection that is %s", pc->id, pgc_state_names[pc->state]);
    pc->ops = NULL;
    pc->arg = NULL;
    if (pc->failed) {
        pgc_break(pc, pc->fail_reason);
        return;
    }
    if (pc->retired) {
        pool_discard(pc, "the pool is smaller now (pool_size)");
        return;
    }
    if (PQtransactionStatus(pc->pg) != PQTRANS_IDLE) {
        pool_discard(pc, "released inside a transaction");
        return;
    }
    if (pc->lost_stmt) {
        /* a function ran DEALLOCATE or PREPARE: start afresh */
        pool_discard(pc, "a prepared statement of the participant was deallocated or replaced");
        return;
    }
    if (stmt_cache_needs_reset(pc->cache)) {
        pool_discard(pc, "too many prepared statements left over after failed batches");
        return;
    }
    pgc_set_state(pc, PGC_IDLE);
    pool_schedule_dispatch(pc->pool);
}

void
pool_discard(pgc *pc, const char *why)
{
    pc->ops = NULL;
    pc->arg = NULL;
    log_log("closing connection pg#%d: %s", pc->id, why);
    pgc_close_pg(pc);
    pgc_set_state(pc, PGC_DOWN);
    pc->backoff_ms = 0;
    pgc_schedule_reconnect(pc);
}

int
pool_waiting_count(const pg_pool *p)
{
    int n = 0;
    for (int q = 0; q < 2; q++)
        for (const pool_waiter *w = p->head[q]; w; w = w->next)
            n++;
    return n;
}

void
pool_set_wait_timeout(pg_pool *p, int64_t ms)
{
    p->wait_timeout_ms = ms;
}

const pool_stats *
pool_get_stats(const pg_pool *p)
{
    return &p->stats;
}
