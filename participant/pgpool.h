/*
 * pgpool.h — the participant's bounded pool of asynchronous libpq
 * connections, and pipelined execution on one of them.
 *
 * A `pgc` is one PostgreSQL connection, always in non-blocking libpq
 * pipeline mode.  Its user leases it from the pool, queues queries with
 * pgc_query() and ends the batch with pgc_sync(): everything queued goes to
 * the server in one round trip.  Results come back through the lessee's
 * pgc_ops: on_result once per query (in order, index 0 = first query queued
 * since the previous sync), then on_sync when the batch's Sync arrived.  If
 * the connection breaks, on_broken is called instead and the pgc goes back
 * to the pool by itself (the lessee must not touch it afterwards).
 *
 * Waiting: pool_acquire() either grants a connection at once, queues the
 * waiter (FIFO per priority; its on_grant runs later from the event loop),
 * or fails when PostgreSQL is known to be unreachable.  Phase-two work
 * (POOL_PRIO_PHASE2) is always served before new work, and new work may not
 * take the last free connection of a pool of two or more, so COMMIT
 * PREPARED can never be starved by open branches.
 *
 * One-shot reserve: interactive branches (POOL_PRIO_WORK) may not take the
 * last `oneshot_reserve` connections left for new work either; only
 * self-contained branches (POOL_PRIO_ONESHOT) may, and they may pass
 * interactive waiters to do so.  An interactive branch holds its
 * connection while its transaction waits elsewhere (for a statement on
 * another participant, for the coordinator's admission of its PREPARE); a
 * self-contained branch holds it only while it runs.  Without the reserve,
 * one-shot transactions admitted by the coordinator could wait for
 * connections held by interactive transactions that wait for their slots
 * (coordinator/slotq.h): a cycle.  The reserve is cut so that interactive
 * work keeps at least one connection.
 *
 * Waiting is bounded for new work only: a POOL_PRIO_WORK waiter still queued
 * after pool_wait_timeout is taken off the queue and its on_grant runs with
 * pc == NULL and w->timed_out set.  An open branch holds its connection until
 * its transaction ends, so transactions that each hold a connection and wait
 * for another's (on this or another participant) would otherwise wait
 * forever; the one that has waited longest gives up first.  Phase-two
 * waiters never time out (they are served by the reserved connection).
 */
#ifndef DTX_PART_PGPOOL_H
#define DTX_PART_PGPOOL_H

#include "metrics.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct pg_pool pg_pool;
typedef struct pgc pgc;

typedef enum pool_prio {
    POOL_PRIO_WORK = 0,    /* new branches (WORK OPEN) of interactive transactions */
    POOL_PRIO_PHASE2 = 1,  /* FINISH, LIST, internal bookkeeping */
    POOL_PRIO_ONESHOT = 2, /* self-contained new branches: WORK OPEN that ends the branch
                              (PREPARE or one-phase COMMIT) in the same request */
} pool_prio;

typedef struct pgc_ops {
    /* The final result of query `index` of the current batch.  res belongs
     * to the pool and is cleared when the call returns.  The lessee may not
     * release the pgc from here. */
    void (*on_result)(pgc *pc, int index, const PGresult *res, void *arg);
    /* The batch is complete.  The lessee may queue a new batch or release. */
    void (*on_sync)(pgc *pc, void *arg);
    /* The connection was lost (or is unusable); the pgc is no longer the
     * lessee's.  reason is readable text, valid during the call. */
    void (*on_broken)(pgc *pc, const char *reason, void *arg);
    /* Optional: true while the lessee cannot take more results (its peer is
     * slow); results are then left unread, so PostgreSQL is throttled. */
    bool (*backlogged)(void *arg);
} pgc_ops;

/* Called when a queued waiter got a connection (pc != NULL, error NULL), or
 * when the pool gave up on it (pc NULL, error says why: the pool's text,
 * valid during the call). */
typedef void (*pool_grant_fn)(pgc *pc, const char *error, void *arg);

typedef struct pool_waiter {
    pool_prio prio;
    pool_grant_fn on_grant;
    void *arg;
    /* set by the pool when on_grant reports pool_wait_timeout */
    bool timed_out;
    /* private to the pool */
    const pgc_ops *lessee_ops;
    struct pool_waiter *next, *prev;
    int64_t deadline_ms; /* monotonic; 0 = none */
    bool queued;
} pool_waiter;

typedef enum pool_acquire_result {
    POOL_GRANTED = 0, /* *out is yours */
    POOL_QUEUED = 1,  /* on_grant will be called, or cancel with pool_cancel */
    POOL_FAILED = 2,  /* PostgreSQL is unreachable; *error says why */
} pool_acquire_result;

/* Create a pool of `size` connections to conninfo; nothing connects before
 * pool_start().  statement_timeout_ms > 0 is set on every connection;
 * wait_timeout_ms > 0 bounds how long new work waits in the queue (0 = no
 * bound); each connection keeps up to stmt_cache_size statements prepared
 * (0 = none).  Returns NULL on out-of-memory.  Free with pool_free(). */
pg_pool *pool_create(struct event_base *base, const char *conninfo, int size,
                     int64_t statement_timeout_ms, int64_t wait_timeout_ms, int stmt_cache_size)
    __attribute__((warn_unused_result));
void pool_start(pg_pool *p);
/* Close every connection (PostgreSQL rolls back what is open on them). */
void pool_free(pg_pool *p);

/* Lease a connection for w->prio with ops/arg as its lessee (see above).
 * A granted *out is the caller's until it gives it back with pool_release()
 * or pool_discard(), or on_broken takes it back; on POOL_FAILED *error is
 * the pool's text, valid until the next call into the pool.  w stays the
 * caller's, and must outlive its time on the queue. */
pool_acquire_result pool_acquire(pg_pool *p, pool_waiter *w, const pgc_ops *ops, void *arg,
                                 pgc **out, const char **error) __attribute__((warn_unused_result));
/* Withdraw a queued waiter (no-op when it is not queued). */
void pool_cancel(pg_pool *p, pool_waiter *w);
/* Give a leased connection back.  It must have no batch in flight and no
 * open transaction (the lessee ended it). */
void pool_release(pgc *pc);
/* Give a leased connection back whose session state is unknown: it is
 * closed and replaced. */
void pool_discard(pgc *pc, const char *why);

int pool_size(const pg_pool *p);
/* pool_size changed (reload): new connections start connecting; extra ones
 * close now when idle, or when released; false when out of memory (the
 * pool keeps what it could make). */
bool pool_resize(pg_pool *p, int n);
/* work queued for a connection */
int pool_waiting_count(const pg_pool *p);
/* pool_wait_timeout changed (reload): waits queued from now on use it */
void pool_set_wait_timeout(pg_pool *p, int64_t ms);
/* oneshot_reserve (start or reload): connections only self-contained
 * branches may take; the pool uses at most pool_size - 2 of them (phase
 * two's and at least one for interactive work) */
void pool_set_oneshot_reserve(pg_pool *p, int n);
/* the reserve in effect now */
int pool_oneshot_reserve(const pg_pool *p);
/* Statement times and errors, for /metrics */
#define POOL_ERROR_CLASSES 48
typedef struct pool_stats {
    metrics_hist stmt; /* a statement sent -> its result (µs) */
    struct {
        char cls[3]; /* SQLSTATE class: "23", "40", ... */
        uint64_t n;
    } errors[POOL_ERROR_CLASSES];
    int nerrors;
} pool_stats;
const pool_stats *pool_get_stats(const pg_pool *p);
int pool_idle_count(const pg_pool *p);
/* Connections with a batch in flight. */
int pool_busy_count(const pg_pool *p);
/* Connections that are up (idle, leased or busy). */
int pool_up_count(const pg_pool *p);

/* Queue one query of the current batch; params are text, NULL entries are
 * SQL NULLs.  Data is copied.  Never fails synchronously: if the connection
 * is unusable, on_broken follows from the event loop.  A statement the
 * connection's cache takes (stmtcache.h) runs as a named prepared
 * statement; the lessee sees the same results either way (index counts its
 * own queries only). */
void pgc_query(pgc *pc, const char *sql, int nparams, const char *const *params);
/* End the batch: sync and send everything queued. */
void pgc_sync(pgc *pc);
/* Ask PostgreSQL to cancel the batch in flight on pc (a BUSY connection),
 * through the pool's cancel worker (pgcancel.h): never blocks.  The batch's
 * query then fails with 57014 as usual, unless it completed first.  False
 * when nothing is in flight or the request could not be made. */
bool pgc_cancel(pgc *pc);
/* Change the lessee's callbacks (e.g. hand a connection to another object). */
void pgc_set_owner(pgc *pc, const pgc_ops *ops, void *arg);
/* Transaction status after the last sync (PQtransactionStatus). */
PGTransactionStatusType pgc_txn_status(const pgc *pc);
/* Short id for log lines ("pg#3"). */
int pgc_id(const pgc *pc);

#endif
