/*
 * dtx_sync.c — the blocking API: each call sends one request with the
 * non-blocking functions of dtx_io.c and drains its results with
 * dtx_get_result(), which waits in poll() while the request is busy.
 *
 * NOTES
 *  Errors.  A blocking call keeps a copy of the last ERROR result it saw on
 *  the connection (dtx_error_field) and puts its message in
 *  dtx_error_message, so an application that only looks at a return value
 *  (a gid, an outcome) still learns the SQLSTATE behind it.  Calls that
 *  return a result (dtx_exec, dtx_indoubt, dtx_replication, dtx_promote)
 *  return the error itself instead (and keep it too);
 *  when a request could not even be sent they make one up from the
 *  connection's message: SQLSTATE 08003 (no connection), 55000 (a request
 *  is still in progress) or 22023 (bad arguments).
 *
 *  Outcomes when nothing could be sent.  dtx_commit/dtx_rollback on a
 *  connection that is already broken answer DTX_ABORTED if no COMMIT of the
 *  transaction ever left the client (the coordinator rolls back what its
 *  client abandons, and never commits unasked), DTX_UNKNOWN otherwise.  A
 *  oneshot that could not be sent never started, so it is DTX_ABORTED.
 */
#include "dtx.h"
#include "dtx_conn.h"
#include "dtx_io.h"
#include "dtx_result.h"

#include <stdlib.h>
#include <string.h>

/* Start of every blocking call: forget the previous call's error. */
static void
sync_start(dtx_conn *c)
{
    dtx_clear(c->last_error);
    c->last_error = NULL;
}

/* Remember an error result (copied) as the call's error. */
static void
keep_error(dtx_conn *c, const dtx_result *r)
{
    dtx_clear(c->last_error);
    c->last_error = dtx_result_copy(r);
    dtx_conn_error_reset(c);
    dtx_conn_error_append(c, "%s\n", r->u.err.message);
}

/* An error result carrying the connection's current message. */
static dtx_result *
error_from_conn(dtx_conn *c)
{
    const char *state = "22023";
    if (c->state != DTX_CS_READY)
        state = "08003";
    else if (c->rstate != DTX_RS_IDLE)
        state = "55000";
    size_t len = c->errmsg_len;
    char *msg = strndup(c->errmsg ? c->errmsg : "", len);
    if (msg == NULL)
        return NULL;
    while (len > 0 && msg[len - 1] == '\n')
        msg[--len] = '\0';
    dtx_result *r = dtx_result_local_error(state, msg);
    free(msg);
    return r;
}

/* Drain the request's results and return the one that answers it: its
 * first error, else its last result. */
static dtx_result *
single_result(dtx_conn *c)
{
    dtx_result *keep = NULL, *r;
    while ((r = dtx_get_result(c)) != NULL) {
        if (keep == NULL || (r->kind == DTX_KIND_ERROR && keep->kind != DTX_KIND_ERROR)) {
            dtx_clear(keep);
            keep = r;
        } else {
            dtx_clear(r);
        }
    }
    if (keep && keep->kind == DTX_KIND_ERROR)
        keep_error(c, keep);
    return keep;
}

const char *
dtx_begin(dtx_conn *conn)
{
    if (conn == NULL)
        return NULL;
    sync_start(conn);
    if (!dtx_begin_request(conn, true))
        return NULL;
    bool ok = false;
    dtx_result *r;
    while ((r = dtx_get_result(conn)) != NULL) {
        if (r->kind == DTX_KIND_BEGIN)
            ok = true;
        else if (r->kind == DTX_KIND_ERROR)
            keep_error(conn, r);
        dtx_clear(r);
    }
    return ok ? conn->gid : NULL;
}

dtx_result *
dtx_exec_params(dtx_conn *conn, const char *participant, const char *sql, int nparams,
                const char *const *values)
{
    if (conn == NULL)
        return NULL;
    sync_start(conn);
    if (!dtx_send_exec_params(conn, participant, sql, nparams, values))
        return error_from_conn(conn);
    dtx_result *r = single_result(conn);
    return r ? r : error_from_conn(conn);
}

dtx_result *
dtx_exec(dtx_conn *conn, const char *participant, const char *sql)
{
    return dtx_exec_params(conn, participant, sql, 0, NULL);
}

/* Drain a commit/rollback/oneshot: errors kept, statement results handed to
 * `out` (when not NULL) or freed.  The outcome, or DTX_UNKNOWN when none
 * came (which dtx_conn_break never lets happen). */
static dtx_outcome
drain_outcome(dtx_conn *c, dtx_result ***out, int *nout)
{
    int outcome = -1;
    size_t n = 0, cap = 0;
    dtx_result **arr = NULL, *r;
    while ((r = dtx_get_result(c)) != NULL) {
        if (r->kind == DTX_KIND_ERROR)
            keep_error(c, r);
        if (r->kind == DTX_KIND_OUTCOME) {
            outcome = dtx_result_outcome(r);
            dtx_clear(r);
            continue;
        }
        if (out == NULL || (r->kind != DTX_KIND_STATEMENT && r->kind != DTX_KIND_ERROR)) {
            dtx_clear(r);
            continue;
        }
        if (n + 2 > cap) {
            size_t ncap = cap ? cap * 2 : 8;
            dtx_result **p = realloc(arr, ncap * sizeof(*p));
            if (p == NULL) {
                dtx_clear(r); /* keep draining; the outcome matters more */
                continue;
            }
            arr = p;
            cap = ncap;
        }
        arr[n++] = r;
        arr[n] = NULL;
    }
    if (out) {
        if (arr == NULL)
            arr = calloc(1, sizeof(*arr));
        *out = arr;
        if (nout)
            *nout = (int)n;
    }
    return outcome < 0 ? DTX_UNKNOWN : (dtx_outcome)outcome;
}

static dtx_outcome
end_transaction(dtx_conn *c, bool commit)
{
    sync_start(c);
    if (!(commit ? dtx_send_commit(c) : dtx_send_rollback(c))) {
        if (c->state == DTX_CS_BAD && !c->txn_commit_sent) {
            if (commit)
                dtx_conn_error_append(c, "COMMIT was not sent, so the transaction did not "
                                         "commit\n");
            return DTX_ABORTED;
        }
        return DTX_UNKNOWN;
    }
    return drain_outcome(c, NULL, NULL);
}

dtx_outcome
dtx_commit(dtx_conn *conn)
{
    return conn ? end_transaction(conn, true) : DTX_UNKNOWN;
}

dtx_outcome
dtx_rollback(dtx_conn *conn)
{
    return conn ? end_transaction(conn, false) : DTX_UNKNOWN;
}

dtx_outcome
dtx_oneshot(dtx_conn *conn, const dtx_stmt *stmts, int nstmts, dtx_result ***results, int *nresults)
{
    if (results)
        *results = NULL;
    if (nresults)
        *nresults = 0;
    if (conn == NULL)
        return DTX_ABORTED;
    sync_start(conn);
    if (!dtx_send_oneshot(conn, stmts, nstmts))
        return DTX_ABORTED; /* nothing was sent: no transaction began */
    return drain_outcome(conn, results, nresults);
}

dtx_gid_status
dtx_outcome_of(dtx_conn *conn, const char *gid, char **detail)
{
    if (detail)
        *detail = NULL;
    if (conn == NULL)
        return DTX_GID_ERROR;
    sync_start(conn);
    if (!dtx_send_status(conn, gid))
        return DTX_GID_ERROR;
    dtx_gid_status st = DTX_GID_ERROR;
    dtx_result *r;
    while ((r = dtx_get_result(conn)) != NULL) {
        if (r->kind == DTX_KIND_STATUS) {
            st = dtx_result_gid_status(r);
            if (detail) {
                free(*detail);
                *detail = strdup(r->u.status.detail);
            }
        } else if (r->kind == DTX_KIND_ERROR) {
            keep_error(conn, r);
        }
        dtx_clear(r);
    }
    return st;
}

/* The rest of a blocking call answered by one result (indoubt,
 * replication, promote): `sent` is what its dtx_send_* returned. */
static dtx_result *
request_result(dtx_conn *c, int sent)
{
    if (!sent)
        return error_from_conn(c);
    dtx_result *r = single_result(c);
    return r ? r : error_from_conn(c);
}

dtx_result *
dtx_indoubt(dtx_conn *conn)
{
    if (conn == NULL)
        return NULL;
    sync_start(conn);
    return request_result(conn, dtx_send_indoubt(conn));
}

dtx_result *
dtx_replication(dtx_conn *conn)
{
    if (conn == NULL)
        return NULL;
    sync_start(conn);
    return request_result(conn, dtx_send_replication(conn));
}

dtx_result *
dtx_promote(dtx_conn *conn, int force)
{
    if (conn == NULL)
        return NULL;
    sync_start(conn);
    return request_result(conn, dtx_send_promote(conn, force));
}
