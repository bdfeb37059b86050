/*
 * resolve.c — FINISH, LIST, the recount of prepared transactions, and the
 * record of a HELLO's new epoch in the fence table.
 *
 * NOTES
 *  What this file owns: resolve_req objects, one per request, each leasing a
 *  pool connection with phase-two priority for one or two round trips.
 *  None of them is inside a transaction block: COMMIT PREPARED and ROLLBACK
 *  PREPARED refuse to run in one, and any session of the database may
 *  finish any prepared transaction.
 *
 *  States (rq_set_state() is the only place that changes `state`):
 *
 *    WAIT_CONN --granted--> RUNNING --42704 and xid known--> STATUS
 *        |                     |                                |
 *        +-- cancelled --------+---------- answered ------------+--> FREED
 *
 *    WAIT_CONN  queued for a pool connection (phase-two queue)
 *    RUNNING    COMMIT/ROLLBACK PREPARED, the LIST query, the count, or
 *               the fence record
 *    STATUS     FINISH found nothing: pg_xact_status(xid) tells what
 *               became of the branch
 *
 *  FINISH outcomes:  success → DONE_OK;  42704 "does not exist" → DONE_NOT_FOUND
 *  with xact_status (unknown when no xid was given or the xid is too old);
 *  55000 "is busy" (another session is finishing it) → DONE_BUSY;  anything
 *  else → DONE_ERROR with PostgreSQL's fields;  the connection lost while
 *  COMMIT PREPARED was in flight → DONE_ERROR 08006 (the coordinator asks
 *  again and then learns the outcome from NOT_FOUND + xact_status).
 *
 *  Invariant: rq->cc != NULL <=> rq is on rq->cc's resolve_set.  Requests of
 *  a coordinator that went away finish on PostgreSQL unanswered: a COMMIT
 *  PREPARED that was asked for is carried out.
 *
 *  Fencing: FINISH and LIST passed the fence when they arrived; one that
 *  waited for a connection is checked again when it gets one
 *  (peer_still_admitted), since a higher epoch may have been admitted
 *  meanwhile, and is answered 08004 instead of being sent.
 *
 *  FENCE (the record of a HELLO's epoch, fence.h): one pipeline, one
 *  implicit transaction committed by its Sync, so the row is durable
 *  (synchronous_commit on for that transaction) when on_sync runs:
 *      SELECT set_config('synchronous_commit', 'on', true)
 *      INSERT ... ON CONFLICT DO UPDATE ... RETURNING epoch, instance
 *      Sync
 *  The verdict (fence_recorded) and the HELLO's answer are given only
 *  then, by the server's resolve_fence_fn.  A record whose HELLO went away
 *  while it ran still updates the fence's memory and calls the function
 *  (with cc NULL): the row is durable either way, and older connections of
 *  that coordinator must then be closed all the same.
 *
 *  LIST and xids: pg_prepared_xacts.transaction is a 32-bit xid.  It is
 *  widened to the 64-bit xid8 that pg_current_xact_id_if_assigned()
 *  reported at PREPARE around a 64-bit reference r = the xmax of the
 *  current snapshot (pg_snapshot_xmax(pg_current_snapshot()), which
 *  assigns no xid).  A prepared transaction is still running, so its xid
 *  lies within 2^31 of r (wraparound protection guarantees that much): the
 *  candidate c = epoch(r) * 2^32 + xid is moved one epoch down when it is
 *  more than 2^31 above r, one epoch up when more than 2^31 below.  (r is
 *  not next-xid: a snapshot's xmax stops at the oldest still-running xid's
 *  successors, so the prepared xid may be >= r; hence the symmetric test.)
 *  A prepared transaction without an xid shows transaction 0: xid 0.
 */
#include "resolve.h"

#include "failpoint.h"
#include "fence.h"
#include "log.h"
#include "peer.h"
#include "pgpool.h"
#include "proto.h"
#include "slots.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum rq_kind {
    RQ_FINISH = 0,
    RQ_LIST,
    RQ_COUNT,
    RQ_FENCE,
} rq_kind;

typedef enum rq_state {
    RQ_WAIT_CONN = 0,
    RQ_RUNNING,
    RQ_STATUS,
    RQ_FREED,
} rq_state;

struct resolve_req {
    rq_state state;
    rq_kind kind;
    coord_conn *cc;
    resolve_set *set;
    resolve_req *set_next, *set_prev;
    resolve_req *all_next, *all_prev;
    pgc *pc;
    pool_waiter pw;

    uint32_t tag;
    uint64_t epoch;             /* FINISH, LIST: the request's; FENCE: to record */
    char name[BRANCH_NAME_MAX]; /* FINISH: the branch; FENCE: the coordinator */
    bool commit;
    uint64_t xid;
    char *prefix;              /* LIST */
    uint64_t instance;         /* FENCE: to record */
    uint64_t row_epoch;        /* FENCE: the row after the record */
    uint64_t row_instance;     /* FENCE */
    resolve_fence_fn on_fence; /* FENCE */

    bool ok;
    bool err;
    char sqlstate[6];
    char *msg, *detail, *hint; /* malloc'd; freed by rq_free() */
    uint8_t xact_status;
    wbuf reply;         /* LIST_REPLY, built from the rows */
    int count, foreign; /* COUNT: prepared in the cluster, of which not dtx's */
    char *notfound_msg; /* FINISH: PostgreSQL's "does not exist", kept for the reply */
};

static resolve_req *rq_all;
static int rq_live;
static bool rq_count_running;

/* set by resolve_init() */
static pg_pool *rq_pool;
static slots *rq_slots;
static size_t rq_max_frame;

static const pgc_ops rq_pg_ops;

/* Every function, operator and type is named with its schema (EXTRACT's
 * special syntax always means pg_catalog's): the pooled session's
 * search_path is whatever the clients' branches left it. */
static const char rq_list_sql[] =
    "SELECT p.gid, "
    "CASE WHEN (p.x OPERATOR(pg_catalog.=) 0) THEN 0 "
    "WHEN (p.c OPERATOR(pg_catalog.>) (n.r OPERATOR(pg_catalog.+) 2147483648)) "
    "THEN (p.c OPERATOR(pg_catalog.-) 4294967296) "
    "WHEN (p.c OPERATOR(pg_catalog.<) (n.r OPERATOR(pg_catalog.-) 2147483648)) "
    "THEN (p.c OPERATOR(pg_catalog.+) 4294967296) "
    "ELSE p.c END, "
    "(extract(epoch FROM p.prepared) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8 "
    "FROM (SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())"
    "::pg_catalog.text::pg_catalog.int8 AS r) n, "
    "LATERAL (SELECT g.gid, g.prepared, g.transaction::pg_catalog.text::pg_catalog.int8 AS x, "
    "(((n.r OPERATOR(pg_catalog.>>) 32) OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.+) "
    "g.transaction::pg_catalog.text::pg_catalog.int8) AS c "
    "FROM pg_catalog.pg_prepared_xacts g "
    "WHERE (g.database OPERATOR(pg_catalog.=) pg_catalog.current_database()) "
    "AND (pg_catalog.left(g.gid, pg_catalog.length($1::pg_catalog.text)) "
    "OPERATOR(pg_catalog.=) $1::pg_catalog.text)) p "
    "ORDER BY p.prepared, p.gid";

/* ------------------------------------------------------------------------
 * State, lists, memory
 */

static void
rq_set_state(resolve_req *rq, rq_state st)
{
    rq_state o = rq->state;
    bool ok;
    switch (st) {
    case RQ_RUNNING:
        ok = o == RQ_WAIT_CONN;
        break;
    case RQ_STATUS:
        ok = o == RQ_RUNNING;
        break;
    case RQ_FREED:
        ok = o != RQ_FREED;
        break;
    case RQ_WAIT_CONN:
    default:
        abort();
    }
    if (!ok)
        log_panic("request: invalid state change %d -> %d", (int)o, (int)st);
    rq->state = st;
}

static void
rq_forget(resolve_req *rq)
{
    if (rq->cc == NULL)
        return;
    resolve_set *set = rq->set;
    if (rq->set_prev)
        rq->set_prev->set_next = rq->set_next;
    else
        set->head = rq->set_next;
    if (rq->set_next)
        rq->set_next->set_prev = rq->set_prev;
    rq->set_next = rq->set_prev = NULL;
    rq->set = NULL;
    rq->cc = NULL;
}

/* A new request in state WAIT_CONN, on the global list and, when cc is
 * given, on cc's set; NULL on out-of-memory.  Free with rq_free() — by the
 * caller only if it never starts it: a started request (rq_start) frees
 * itself with rq_free() or rq_release_and_free() when it is done, and
 * resolve_free_all() frees what is left at exit. */
static resolve_req *
rq_create(coord_conn *cc, resolve_set *set, rq_kind kind, uint32_t tag)
{
    resolve_req *rq = calloc(1, sizeof(*rq));
    if (rq == NULL)
        return NULL;
    rq->state = RQ_WAIT_CONN;
    rq->kind = kind;
    rq->tag = tag;
    wbuf_init(&rq->reply);
    if (cc) {
        rq->cc = cc;
        rq->set = set;
        rq->set_next = set->head;
        if (set->head)
            set->head->set_prev = rq;
        set->head = rq;
    }
    rq->all_next = rq_all;
    if (rq_all)
        rq_all->all_prev = rq;
    rq_all = rq;
    rq_live++;
    return rq;
}

static void
rq_free(resolve_req *rq)
{
    rq_forget(rq);
    pool_cancel(rq_pool, &rq->pw);
    rq_set_state(rq, RQ_FREED);
    if (rq->all_prev)
        rq->all_prev->all_next = rq->all_next;
    else
        rq_all = rq->all_next;
    if (rq->all_next)
        rq->all_next->all_prev = rq->all_prev;
    rq_live--;
    if (rq->kind == RQ_COUNT)
        rq_count_running = false;
    free(rq->prefix);
    free(rq->notfound_msg);
    free(rq->msg);
    free(rq->detail);
    free(rq->hint);
    wbuf_free(&rq->reply);
    free(rq);
}

static void
rq_release_and_free(resolve_req *rq)
{
    if (rq->pc) {
        pool_release(rq->pc);
        rq->pc = NULL;
    }
    rq_free(rq);
}

/* ------------------------------------------------------------------------
 * Errors and replies
 */

static void __attribute__((format(printf, 3, 4)))
rq_set_error(resolve_req *rq, const char *sqlstate, const char *fmt, ...)
{
    if (rq->err)
        return;
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    rq->err = true;
    snprintf(rq->sqlstate, sizeof(rq->sqlstate), "%s", sqlstate);
    rq->msg = strdup(m);
}

static void
rq_set_pg_error(resolve_req *rq, const PGresult *res)
{
    if (rq->err)
        return;
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    rq->err = true;
    snprintf(rq->sqlstate, sizeof(rq->sqlstate), "%s", st ? st : "XX000");
    if (primary) {
        rq->msg = strdup(primary);
    } else {
        char m[512];
        snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            m[--n] = '\0';
        rq->msg = strdup(n ? m : "unknown error");
    }
    rq->detail = detail ? strdup(detail) : NULL;
    rq->hint = hint ? strdup(hint) : NULL;
}

static void
rq_reply(resolve_req *rq, done_status st)
{
    if (rq->cc == NULL)
        return;
    proto_done d = {.tag = rq->tag, .status = (uint8_t)st, .xact_status = rq->xact_status};
    if (rq->err) {
        d.sqlstate = rq->sqlstate;
        d.message = rq->msg;
        d.detail = rq->detail;
        d.hint = rq->hint;
    }
    peer_reply_done(rq->cc, &d);
}

/* ------------------------------------------------------------------------
 * Running
 */

static void
rq_send(resolve_req *rq)
{
    char sql[BRANCH_NAME_MAX + 64];
    switch (rq->kind) {
    case RQ_FINISH:
        snprintf(sql, sizeof(sql), "%s PREPARED '%s'", rq->commit ? "COMMIT" : "ROLLBACK",
                 rq->name);
        pgc_query(rq->pc, sql, 0, NULL);
        break;
    case RQ_LIST: {
        const char *params[1] = {rq->prefix};
        pgc_query(rq->pc, rq_list_sql, 1, params);
        break;
    }
    case RQ_COUNT:
        pgc_query(rq->pc, SLOTS_COUNT_SQL, 0, NULL);
        break;
    case RQ_FENCE: {
        char e[24], in[24];
        snprintf(e, sizeof(e), "%" PRIu64, rq->epoch);
        snprintf(in, sizeof(in), "%" PRIu64, rq->instance);
        const char *params[3] = {rq->name, e, in};
        pgc_query(rq->pc, FENCE_SYNC_COMMIT_SQL, 0, NULL);
        pgc_query(rq->pc, fence_record_sql(), 3, params);
        break;
    }
    default:
        abort();
    }
    pgc_sync(rq->pc);
    rq_set_state(rq, RQ_RUNNING);
}

static void rq_fence_done(resolve_req *rq);

/* The request failed with the error recorded: answer, give the connection
 * back (if any), free. */
static void
rq_fail(resolve_req *rq)
{
    if (rq->kind == RQ_FENCE) {
        rq_fence_done(rq);
        return;
    }
    rq_reply(rq, DONE_ERROR);
    rq_release_and_free(rq);
}

static void
rq_granted(pgc *pc, const char *error, void *arg)
{
    resolve_req *rq = arg;
    if (pc == NULL) {
        rq_set_error(rq, "08006", "could not connect to PostgreSQL: %s",
                     error ? error : "unknown error");
        rq_fail(rq);
        return;
    }
    rq->pc = pc;
    if (rq->kind == RQ_FINISH || rq->kind == RQ_LIST) {
        /* it may have waited: is its epoch still admitted? */
        const char *st = NULL;
        char err[512];
        if (!peer_still_admitted(rq->cc, rq->epoch, &st, err, sizeof(err))) {
            log_report(LOG_LVL_LOG, st, NULL, NULL, "%s request tag %u not sent: %s",
                       rq->kind == RQ_FINISH ? "FINISH" : "LIST", rq->tag, err);
            rq_set_error(rq, st, "%s", err);
            rq_fail(rq);
            return;
        }
    }
    rq_send(rq);
}

static void
rq_start(resolve_req *rq)
{
    pgc *pc = NULL;
    const char *error = NULL;
    rq->pw.prio = POOL_PRIO_PHASE2;
    rq->pw.on_grant = rq_granted;
    rq->pw.arg = rq;
    switch (pool_acquire(rq_pool, &rq->pw, &rq_pg_ops, rq, &pc, &error)) {
    case POOL_GRANTED:
        rq_granted(pc, NULL, rq);
        break;
    case POOL_QUEUED:
        break;
    case POOL_FAILED:
    default:
        rq_granted(NULL, error ? error : "unknown error", rq);
        break;
    }
}

static void
rq_list_rows(resolve_req *rq, const PGresult *res)
{
    size_t limit = rq_max_frame;
    int n = PQntuples(res);
    size_t start = frame_begin(&rq->reply, MSG_LIST_REPLY);
    wbuf_put_u32(&rq->reply, rq->tag);
    wbuf_put_u32(&rq->reply, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        wbuf_put_str(&rq->reply, PQgetvalue(res, i, 0));
        wbuf_put_u64(&rq->reply, strtoull(PQgetvalue(res, i, 1), NULL, 10));
        wbuf_put_u64(&rq->reply, strtoull(PQgetvalue(res, i, 2), NULL, 10));
    }
    if (!wbuf_ok(&rq->reply) || rq->reply.len - start > limit + FRAME_HEADER_SIZE ||
        !frame_end(&rq->reply, start, (uint32_t)limit)) {
        rq_set_error(rq, "54000", "the list of %d prepared branches is too large to send", n);
        wbuf_reset(&rq->reply);
        return;
    }
    rq->ok = true;
}

static void
rq_on_result(pgc *pc, int index, const PGresult *res, void *arg)
{
    (void)pc;
    (void)index;
    resolve_req *rq = arg;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_ABORTED)
        return;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rq_set_pg_error(rq, res);
        return;
    }
    if (rq->state == RQ_STATUS) {
        if (st == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
            const char *v = PQgetvalue(res, 0, 0);
            if (strcmp(v, "committed") == 0)
                rq->xact_status = XACT_COMMITTED;
            else if (strcmp(v, "aborted") == 0)
                rq->xact_status = XACT_ABORTED;
            else if (strcmp(v, "in progress") == 0)
                rq->xact_status = XACT_IN_PROGRESS;
        }
        return;
    }
    switch (rq->kind) {
    case RQ_FINISH:
        rq->ok = true;
        break;
    case RQ_LIST:
        if (st == PGRES_TUPLES_OK && PQnfields(res) == 3)
            rq_list_rows(rq, res);
        break;
    case RQ_COUNT:
        if (st == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2) {
            rq->count = atoi(PQgetvalue(res, 0, 0));
            rq->foreign = atoi(PQgetvalue(res, 0, 1));
            rq->ok = true;
        }
        break;
    case RQ_FENCE:
        if (index == 1)
            rq->ok = fence_record_row(res, &rq->row_epoch, &rq->row_instance);
        break;
    default:
        abort();
    }
}

static void
rq_finish_done(resolve_req *rq)
{
    if (rq->ok && !rq->err) {
        slots_finished(rq_slots);
        log_debug("branch %s: %s PREPARED done", rq->name, rq->commit ? "COMMIT" : "ROLLBACK");
        if (rq->commit) {
            if (FAILPOINT("participant-before-commit-prepared-reply") == FP_ERROR)
                peer_drop(rq->cc, "failpoint participant-before-commit-prepared-reply");
        }
        rq_reply(rq, DONE_OK);
        rq_release_and_free(rq);
        return;
    }
    if (strcmp(rq->sqlstate, "42704") == 0) {
        if (rq->xid != 0) {
            /* keep the "does not exist" message for the reply; the status
             * query records its own error, if any */
            char x[32];
            snprintf(x, sizeof(x), "%" PRIu64, rq->xid);
            const char *params[1] = {x};
            rq->notfound_msg = rq->msg;
            rq->msg = NULL;
            free(rq->detail);
            free(rq->hint);
            rq->detail = rq->hint = NULL;
            rq->err = false;
            rq_set_state(rq, RQ_STATUS);
            pgc_query(rq->pc,
                      "SELECT pg_catalog.pg_xact_status($1::pg_catalog.xid8)::pg_catalog.text", 1,
                      params);
            pgc_sync(rq->pc);
            return;
        }
        rq->xact_status = XACT_UNKNOWN;
        rq_reply(rq, DONE_NOT_FOUND);
        rq_release_and_free(rq);
        return;
    }
    if (strcmp(rq->sqlstate, "55000") == 0) {
        rq_reply(rq, DONE_BUSY);
        rq_release_and_free(rq);
        return;
    }
    if (!rq->err)
        rq_set_error(rq, "XX000", "unexpected result from %s PREPARED",
                     rq->commit ? "COMMIT" : "ROLLBACK");
    rq_reply(rq, DONE_ERROR);
    rq_release_and_free(rq);
}

static void
rq_on_sync(pgc *pc, void *arg)
{
    (void)pc;
    resolve_req *rq = arg;
    if (rq->state == RQ_STATUS) {
        if (rq->err) {
            /* the branch is gone and its xid says nothing (e.g. an xid from
             * the future): report not-found, status unknown, with the reason */
            log_report_with(&(log_fields){.gid = rq->name}, LOG_LVL_LOG, rq->sqlstate, rq->detail,
                            rq->hint, "branch %s: pg_xact_status(%" PRIu64 ") failed: %s", rq->name,
                            rq->xid, rq->msg ? rq->msg : "");
            rq->xact_status = XACT_UNKNOWN;
        } else {
            rq->err = true; /* send 42704 and its message along */
            snprintf(rq->sqlstate, sizeof(rq->sqlstate), "42704");
            rq->msg = rq->notfound_msg;
            rq->notfound_msg = NULL;
        }
        rq_reply(rq, DONE_NOT_FOUND);
        rq_release_and_free(rq);
        return;
    }
    switch (rq->kind) {
    case RQ_FINISH:
        rq_finish_done(rq);
        return;
    case RQ_LIST:
        if (rq->ok && !rq->err) {
            if (rq->cc)
                peer_send(rq->cc, &rq->reply);
        } else {
            if (!rq->err)
                rq_set_error(rq, "XX000", "unexpected result listing prepared transactions");
            rq_reply(rq, DONE_ERROR);
        }
        rq_release_and_free(rq);
        return;
    case RQ_COUNT:
        if (rq->ok && !rq->err)
            slots_resync(rq_slots, rq->count, rq->foreign);
        else
            log_report(LOG_LVL_WARNING, rq->sqlstate, rq->detail, rq->hint,
                       "could not count prepared transactions: %s", rq->msg ? rq->msg : "");
        rq_release_and_free(rq);
        return;
    case RQ_FENCE:
        rq_fence_done(rq);
        return;
    default:
        abort();
    }
}

static void
rq_on_broken(pgc *pc, const char *reason, void *arg)
{
    (void)pc;
    resolve_req *rq = arg;
    rq->pc = NULL;
    free(rq->msg);
    free(rq->detail);
    free(rq->hint);
    rq->msg = rq->detail = rq->hint = NULL;
    rq->err = false;
    rq_set_error(rq, "08006", "connection to PostgreSQL lost: %s", reason);
    rq->xact_status = XACT_UNKNOWN;
    rq_fail(rq);
}

static bool
rq_backlogged(void *arg)
{
    resolve_req *rq = arg;
    return peer_backlogged(rq->cc);
}

static const pgc_ops rq_pg_ops = {
    .on_result = rq_on_result,
    .on_sync = rq_on_sync,
    .on_broken = rq_on_broken,
    .backlogged = rq_backlogged,
};

/* ------------------------------------------------------------------------
 * Requests
 */

void
resolve_init(pg_pool *pool, slots *sl, size_t max_frame)
{
    rq_pool = pool;
    rq_slots = sl;
    rq_max_frame = max_frame;
}

void
resolve_on_finish(coord_conn *cc, resolve_set *set, const frame_view *f)
{
    proto_finish m;
    if (!proto_get_finish(f, &m)) {
        peer_protocol_error(cc, "malformed FINISH message");
        return;
    }
    if (!peer_check_branch_request(cc, m.tag, m.epoch, m.branch))
        return;
    resolve_req *rq = rq_create(cc, set, RQ_FINISH, m.tag);
    if (rq == NULL) {
        peer_reply_status(cc, m.tag, DONE_ERROR, 0, "53200", "out of memory");
        return;
    }
    snprintf(rq->name, sizeof(rq->name), "%s", m.branch);
    rq->epoch = m.epoch;
    rq->commit = m.commit;
    rq->xid = m.xid;
    rq_start(rq);
}

void
resolve_on_list(coord_conn *cc, resolve_set *set, const frame_view *f)
{
    proto_list m;
    if (!proto_get_list(f, &m)) {
        peer_protocol_error(cc, "malformed LIST message");
        return;
    }
    if (!peer_check_request(cc, m.tag, m.epoch))
        return;
    if (strlen(m.prefix) >= BRANCH_NAME_MAX) {
        peer_reply_status(cc, m.tag, DONE_ERROR, 0, "22023", "LIST prefix is too long");
        return;
    }
    resolve_req *rq = rq_create(cc, set, RQ_LIST, m.tag);
    if (rq == NULL || (rq->prefix = strdup(m.prefix)) == NULL) {
        if (rq)
            rq_free(rq);
        peer_reply_status(cc, m.tag, DONE_ERROR, 0, "53200", "out of memory");
        return;
    }
    rq->epoch = m.epoch;
    rq_start(rq);
}

void
resolve_count_prepared(void *arg)
{
    (void)arg;
    if (rq_count_running || peer_shutting_down())
        return;
    resolve_req *rq = rq_create(NULL, NULL, RQ_COUNT, 0);
    if (rq == NULL)
        return;
    rq_count_running = true;
    rq_start(rq);
}

/* The fence record is over (committed, failed, or never sent): judge it,
 * tell the server, free.  rq is taken off its connection first, so that
 * the server may close that connection from the callback. */
static void
rq_fence_done(resolve_req *rq)
{
    coord_conn *cc = rq->cc;
    const char *sqlstate = FENCE_SQLSTATE;
    char msg[1024];
    bool admitted = false;
    if (rq->err) {
        log_report(LOG_LVL_WARNING, rq->sqlstate, rq->detail, rq->hint,
                   "could not record epoch %" PRIu64 " of coordinator \"%s\" in the fence "
                   "table %s: %s",
                   rq->epoch, rq->name, fence_table(), rq->msg ? rq->msg : "");
        sqlstate = rq->sqlstate;
        snprintf(msg, sizeof(msg),
                 "could not record epoch %" PRIu64 " of coordinator \"%s\" in the fence table: "
                 "%s",
                 rq->epoch, rq->name, rq->msg ? rq->msg : "unknown error");
    } else if (!rq->ok) {
        sqlstate = "XX000";
        snprintf(msg, sizeof(msg),
                 "unexpected result recording epoch %" PRIu64 " in the fence table", rq->epoch);
    } else {
        admitted = fence_recorded(rq->name, rq->epoch, rq->instance, rq->row_epoch,
                                  rq->row_instance, msg, sizeof(msg), &sqlstate);
    }
    rq_forget(rq);
    rq->on_fence(cc, rq->name, admitted, admitted ? NULL : sqlstate, admitted ? NULL : msg);
    rq_release_and_free(rq);
}

void
resolve_fence_record(coord_conn *cc, resolve_set *set, const char *name, uint64_t epoch,
                     uint64_t instance, resolve_fence_fn done)
{
    resolve_req *rq = rq_create(cc, set, RQ_FENCE, 0);
    if (rq == NULL) {
        done(cc, name, false, "53200", "out of memory recording the coordinator's epoch");
        return;
    }
    snprintf(rq->name, sizeof(rq->name), "%s", name);
    rq->epoch = epoch;
    rq->instance = instance;
    rq->on_fence = done;
    rq_start(rq);
}

void
resolve_detach_all(resolve_set *set)
{
    while (set->head) {
        resolve_req *rq = set->head;
        rq_forget(rq);
        if (rq->state == RQ_WAIT_CONN)
            rq_free(rq);
    }
}

int
resolve_live_count(void)
{
    return rq_live;
}

void
resolve_free_all(void)
{
    while (rq_all) {
        resolve_req *rq = rq_all;
        rq->pc = NULL;
        rq_free(rq);
    }
}
