/*
 * dtx_io.c — the non-blocking core of libdtx: TLS reads and writes, frame
 * extraction, requests and their replies.
 *
 * NOTES
 *  Buffers.  Output is a wbuf of whole frames; out_pos counts what SSL_write
 *  has accepted.  OpenSSL requires a write that returned WANT_READ/WRITE to
 *  be retried with the same length (write_retry_len); the buffer may move
 *  and grow meanwhile (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), since new
 *  requests are only ever appended.  Input is a flat byte array; frames are
 *  taken off its front (in_off) and the remainder is moved down before the
 *  next read.  Every read is followed by decoding, so the array holds at
 *  most one partial frame plus one read's worth: a frame's size is checked
 *  against max_frame as soon as its 5-byte header is in, and the array only
 *  ever grows to the size of a frame whose header was accepted.  A peer
 *  announcing a larger frame is refused before anything is allocated for it.
 *
 *  Requests.  One request is in flight at a time (dtx_conn.req, .rstate):
 *
 *      IDLE --send--> BUSY --final reply queued--> DONE --get_result()=NULL--> IDLE
 *
 *  Which replies a request accepts, and which of them is final:
 *
 *      request    non-final          final
 *      BEGIN      -                  BEGIN_OK | ERROR
 *      EXEC       -                  RESULT | ERROR
 *      COMMIT     ERROR              OUTCOME
 *      ROLLBACK   ERROR              OUTCOME
 *      ONESHOT    BEGIN_OK, RESULT,  OUTCOME
 *                 ERROR
 *      STATUS     -                  STATUS_REPLY | ERROR
 *      INDOUBT    -                  INDOUBT_REPLY | ERROR
 *      PROMOTE    -                  ADMIN_OK | ERROR
 *      REPLICATION -                 REPLICATION_REPLY | ERROR
 *
 *  PROMOTE and REPLICATION (protocol 1.3, proto_repl.h) are admin requests:
 *  the library sends them on any open connection and leaves a refusal to
 *  the coordinator, whose ERROR is their result (one older than 1.3 answers
 *  08P01, an unexpected message, and closes).
 *
 *  A ONESHOT's BEGIN_OK (protocol 1.1: the coordinator names the
 *  transaction before running it) is not a result: it only sets dtx_gid(),
 *  so that an outcome made UNKNOWN by a lost connection still carries the
 *  gid.  At most one may come, before the OUTCOME.
 *
 *  Reserved gids (protocol 1.2).  A NEXT_GID frame, after HELLO_OK and
 *  before each OUTCOME, names the gid the coordinator has set aside for
 *  this connection's next transaction (next_gid); it is not a result and
 *  may come at any time.  With one held, the blocking dtx_begin() sends
 *  BEGIN_RESERVED naming it, which has no reply: the frame is only queued
 *  — it leaves with the next request — and the BEGIN result is made here,
 *  at once.  (dtx_send_begin() sends a plain BEGIN, so that its result
 *  comes from the socket as the asynchronous API promises.)  A ONESHOT is
 *  sent as ONESHOT_RESERVED naming it, and gets no BEGIN_OK.  A claim
 *  gives the reservation up; the next one arrives before the OUTCOME.  A
 *  plain BEGIN or ONESHOT leaves it alone.  A BEGIN_RESERVED that the
 *  coordinator cannot honour closes the connection with an ERROR, which
 *  the next request reports.
 *
 *  Anything else is a protocol violation.  An ERROR while no request is in
 *  flight is the coordinator's connection-level error (it closes next): the
 *  connection becomes BAD with that message.  The ERROR's tag is not
 *  interpreted on this connection: a client request carries none.
 *
 *  Failure.  dtx_conn_break() is the one exit from READY: it closes the
 *  socket and, when a request is in flight, queues an ERROR result saying
 *  why and — for COMMIT, ROLLBACK and ONESHOT — an OUTCOME.  That outcome is
 *  UNKNOWN whenever a COMMIT (or ONESHOT) of the transaction was handed to
 *  TLS: once that happened the coordinator may have decided either way, and
 *  the library never guesses.  A ROLLBACK of a transaction for which no
 *  COMMIT was ever sent reports ABORTED, since the coordinator commits
 *  nothing it was not asked to.
 */
#include "dtx_io.h"

#include "dtx.h"
#include "dtx_conn.h"
#include "dtx_result.h"
#include "dtx_tls.h"

#include "buf.h"
#include "clock.h"
#include "frame.h"
#include "proto.h"
#include "proto_repl.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#define DTX_READ_CHUNK 16384 /* at least this much room before each read */

/* ---- raw I/O ------------------------------------------------------------- */

int
dtx_io_flush(dtx_conn *c, char *err, size_t errlen)
{
    if (c->ssl == NULL) {
        snprintf(err, errlen, "connection is not open");
        return -1;
    }
    while (c->out_pos < c->out.len) {
        size_t left = c->out.len - c->out_pos;
        int n = left > (size_t)INT32_MAX ? INT32_MAX : (int)left;
        if (c->write_retry_len > 0)
            n = c->write_retry_len;
        ERR_clear_error();
        errno = 0;
        int r = SSL_write(c->ssl, c->out.data + c->out_pos, n);
        if (r > 0) {
            c->out_pos += (size_t)r;
            c->write_retry_len = 0;
            c->write_wants_read = false;
            continue;
        }
        int saved = errno;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            c->write_retry_len = n;
            c->write_wants_read = e == SSL_ERROR_WANT_READ;
            return 1;
        }
        dtx_tls_error_text(c->ssl, e, saved, err, errlen);
        return -1;
    }
    wbuf_reset(&c->out);
    c->out_pos = 0;
    return 0;
}

/* Make room for at least `need` more bytes after in_len, moving unread
 * bytes to the front first.  False when out of memory. */
static bool
in_reserve(dtx_conn *c, size_t need)
{
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_cap - c->in_len >= need)
        return true;
    size_t cap = c->in_len + need;
    uint8_t *p = realloc(c->in, cap);
    if (p == NULL)
        return false;
    c->in = p;
    c->in_cap = cap;
    return true;
}

int
dtx_io_read(dtx_conn *c, char *err, size_t errlen)
{
    if (c->ssl == NULL) {
        snprintf(err, errlen, "connection is not open");
        return -1;
    }
    /* Room for one chunk, or for the rest of a frame whose header (already
     * checked against max_frame) says it is longer. */
    size_t need = DTX_READ_CHUNK;
    size_t avail = c->in_len - c->in_off;
    if (avail >= FRAME_HEADER_SIZE) {
        size_t total = FRAME_HEADER_SIZE + (size_t)buf_load_u32(c->in + c->in_off + 1);
        if (total > avail && total - avail > need)
            need = total - avail;
    }
    if (!in_reserve(c, need)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t room = c->in_cap - c->in_len;
    int n = room > (size_t)INT32_MAX ? INT32_MAX : (int)room;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->ssl, c->in + c->in_len, n);
    if (r > 0) {
        c->in_len += (size_t)r;
        c->read_wants_write = false;
        return 1;
    }
    int saved = errno;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->read_wants_write = e == SSL_ERROR_WANT_WRITE;
        return 0;
    }
    dtx_tls_error_text(c->ssl, e, saved, err, errlen);
    return -1;
}

int
dtx_io_next_frame(dtx_conn *c, frame_view *f, char *err, size_t errlen)
{
    size_t used;
    if (c->in == NULL)
        return 0;
    switch (frame_decode(c->in + c->in_off, c->in_len - c->in_off, c->max_frame, f, &used)) {
    case FRAME_OK:
        c->in_off += used;
        return 1;
    case FRAME_NEED_MORE:
        return 0;
    case FRAME_TOO_LARGE:
        snprintf(err, errlen,
                 "protocol violation: the coordinator sent a frame of %u bytes, more than the "
                 "limit of %u bytes",
                 buf_load_u32(c->in + c->in_off + 1), c->max_frame);
        return -1;
    }
    snprintf(err, errlen, "invalid frame");
    return -1;
}

int
dtx_io_wait(dtx_conn *c, bool want_write, int timeout_ms)
{
    if (c->fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (c->ssl && SSL_pending(c->ssl) > 0)
        return 1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (want_write)
        p.events |= POLLOUT;
    int64_t deadline = timeout_ms >= 0 ? clock_mono_ms() + timeout_ms : 0;
    for (;;) {
        int t = timeout_ms;
        if (timeout_ms >= 0) {
            int64_t left = deadline - clock_mono_ms();
            t = left < 0 ? 0 : (int)left;
        }
        int r = poll(&p, 1, t);
        if (r >= 0)
            return r > 0 ? 1 : 0;
        if (errno != EINTR)
            return -1;
    }
}

/* ---- results queue ------------------------------------------------------- */

static void
enqueue(dtx_conn *c, dtx_result *r)
{
    if (r == NULL)
        return;
    r->next = NULL;
    if (c->q_tail)
        c->q_tail->next = r;
    else
        c->q_head = r;
    c->q_tail = r;
}

static dtx_result *
dequeue(dtx_conn *c)
{
    dtx_result *r = c->q_head;
    if (r) {
        c->q_head = r->next;
        if (c->q_head == NULL)
            c->q_tail = NULL;
        r->next = NULL;
    }
    return r;
}

static const char *
req_name(dtx_req_kind k)
{
    switch (k) {
    case DTX_REQ_NONE:
        return "no request";
    case DTX_REQ_BEGIN:
        return "BEGIN";
    case DTX_REQ_EXEC:
        return "EXEC";
    case DTX_REQ_COMMIT:
        return "COMMIT";
    case DTX_REQ_ROLLBACK:
        return "ROLLBACK";
    case DTX_REQ_ONESHOT:
        return "ONESHOT";
    case DTX_REQ_STATUS:
        return "STATUS";
    case DTX_REQ_INDOUBT:
        return "INDOUBT";
    case DTX_REQ_PROMOTE:
        return "PROMOTE";
    case DTX_REQ_REPLICATION:
        return "REPLICATION";
    }
    abort();
}

/* ---- failure ------------------------------------------------------------- */

static void dtx_conn_break(dtx_conn *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The connection is lost or broken (a READY connection): close the socket,
 * remember why, and end the request in flight with an ERROR result (and an
 * OUTCOME for commit/rollback/oneshot). */
static void
dtx_conn_break(dtx_conn *c, const char *sqlstate, const char *fmt, ...)
{
    char msg[DTX_ERRBUF], state[8];
    /* the arguments may point into the input buffer, which closing frees */
    snprintf(state, sizeof(state), "%s", sqlstate);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (c->state == DTX_CS_BAD)
        return;
    dtx_conn_error_append(c, "%s\n", msg);
    free(c->break_reason);
    c->break_reason = strdup(msg);
    dtx_conn_close_socket(c);
    dtx_conn_set_state(c, DTX_CS_BAD);

    if (c->rstate != DTX_RS_BUSY)
        return;
    enqueue(c, dtx_result_local_error(state, msg));
    switch (c->req) {
    case DTX_REQ_COMMIT:
    case DTX_REQ_ONESHOT:
        enqueue(c, dtx_result_local_outcome(OUTCOME_UNKNOWN, c->gid));
        break;
    case DTX_REQ_ROLLBACK:
        enqueue(c, dtx_result_local_outcome(c->txn_commit_sent ? OUTCOME_UNKNOWN : OUTCOME_ABORTED,
                                            c->gid));
        break;
    default:
        break;
    }
    c->rstate = DTX_RS_DONE;
}

static void
protocol_violation(dtx_conn *c, const char *what, uint8_t type)
{
    char shown[8];
    if (type >= 0x21 && type < 0x7f)
        snprintf(shown, sizeof(shown), "'%c'", type);
    else
        snprintf(shown, sizeof(shown), "0x%02x", type);
    dtx_conn_break(c, "08P01", "protocol violation: %s message %s %s %s", what, shown,
                   c->rstate == DTX_RS_BUSY ? "in reply to" : "while",
                   c->rstate == DTX_RS_BUSY ? req_name(c->req) : "no request was in progress");
}

/* ---- replies ------------------------------------------------------------- */

/* Is a frame of this type acceptable now, and is it the final reply? */
static bool
reply_allowed(dtx_req_kind k, uint8_t type, bool *final)
{
    *final = true;
    switch (k) {
    case DTX_REQ_BEGIN:
        return type == MSG_BEGIN_OK || type == MSG_ERROR;
    case DTX_REQ_EXEC:
        return type == MSG_RESULT || type == MSG_ERROR;
    case DTX_REQ_COMMIT:
    case DTX_REQ_ROLLBACK:
        *final = type == MSG_OUTCOME;
        return type == MSG_OUTCOME || type == MSG_ERROR;
    case DTX_REQ_ONESHOT:
        *final = type == MSG_OUTCOME;
        return type == MSG_OUTCOME || type == MSG_ERROR || type == MSG_RESULT ||
               type == MSG_BEGIN_OK;
    case DTX_REQ_STATUS:
        return type == MSG_STATUS_REPLY || type == MSG_ERROR;
    case DTX_REQ_INDOUBT:
        return type == MSG_INDOUBT_REPLY || type == MSG_ERROR;
    case DTX_REQ_PROMOTE:
        return type == MSG_ADMIN_OK || type == MSG_ERROR;
    case DTX_REQ_REPLICATION:
        return type == MSG_REPLICATION_REPLY || type == MSG_ERROR;
    case DTX_REQ_NONE:
        return false;
    }
    abort();
}

static bool
set_gid(dtx_conn *c, const char *gid)
{
    char *copy = gid ? strdup(gid) : NULL;
    if (gid && copy == NULL)
        return false;
    free(c->gid);
    c->gid = copy;
    return true;
}

/* A connection-level ERROR: the coordinator is about to close. */
static void
idle_error(dtx_conn *c, const frame_view *f)
{
    proto_error e;
    if (!proto_get_error(f, &e)) {
        protocol_violation(c, "malformed", f->type);
        return;
    }
    dtx_conn_break(c, e.sqlstate, "the coordinator closed the connection: %s (SQLSTATE %s)",
                   e.message, e.sqlstate);
}

/* NEXT_GID: remember the reservation. */
static void
next_gid(dtx_conn *c, const frame_view *f)
{
    const char *gid;
    if (c->server_minor < 2 || !proto_get_next_gid(f, &gid)) {
        protocol_violation(c, c->server_minor < 2 ? "unexpected" : "malformed", f->type);
        return;
    }
    char *copy = strdup(gid);
    if (copy == NULL) {
        dtx_conn_break(c, "53200", "out of memory while reading a reply");
        return;
    }
    free(c->next_gid);
    c->next_gid = copy;
}

static void
dispatch(dtx_conn *c, const frame_view *f)
{
    bool final;
    if (f->type == MSG_NEXT_GID) {
        next_gid(c, f);
        return;
    }
    if (c->rstate != DTX_RS_BUSY) {
        if (f->type == MSG_ERROR)
            idle_error(c, f);
        else
            protocol_violation(c, "unexpected", f->type);
        return;
    }
    if (!reply_allowed(c->req, f->type, &final)) {
        protocol_violation(c, "unexpected", f->type);
        return;
    }
    if (c->req == DTX_REQ_ONESHOT && f->type == MSG_BEGIN_OK) {
        const char *gid;
        if (c->gid != NULL || !proto_get_begin_ok(f, &gid) || gid[0] == '\0') {
            protocol_violation(c, c->gid ? "second" : "malformed", f->type);
            return;
        }
        if (!set_gid(c, gid))
            dtx_conn_break(c, "53200", "out of memory while reading a reply");
        return;
    }
    const char *why = NULL;
    dtx_result *r = dtx_result_from_frame(f, &why);
    if (r == NULL) {
        if (strcmp(why, "out of memory") == 0)
            dtx_conn_break(c, "53200", "out of memory while reading a reply");
        else
            protocol_violation(c, "malformed", f->type);
        return;
    }
    if (r->kind == DTX_KIND_BEGIN) {
        c->txn_commit_sent = false;
        if (!set_gid(c, r->u.gid)) {
            dtx_clear(r);
            dtx_conn_break(c, "53200", "out of memory while reading a reply");
            return;
        }
    } else if (r->kind == DTX_KIND_OUTCOME && r->u.outcome.gid[0]) {
        if (!set_gid(c, r->u.outcome.gid)) {
            dtx_clear(r);
            dtx_conn_break(c, "53200", "out of memory while reading a reply");
            return;
        }
    }
    if (r->kind == DTX_KIND_BEGIN)
        c->in_txn = true;
    else if (r->kind == DTX_KIND_OUTCOME)
        c->in_txn = false;
    enqueue(c, r);
    if (final)
        c->rstate = DTX_RS_DONE;
}

/* ---- public non-blocking API ---------------------------------------------- */

int
dtx_flush(dtx_conn *conn)
{
    if (conn == NULL || conn->state == DTX_CS_BAD)
        return -1;
    if (conn->state != DTX_CS_READY)
        return 0; /* during start-up dtx_connect_poll writes */
    char err[DTX_ERRBUF];
    int r = dtx_io_flush(conn, err, sizeof(err));
    if (r < 0)
        dtx_conn_break(conn, "08006", "could not send data to the coordinator: %s", err);
    return r;
}

/* Dispatch the whole frames already in the input buffer, without reading
 * the socket (after a read, or for a NEXT_GID that came in the same read as
 * the last reply).  False when the connection is no longer READY. */
static bool
dispatch_buffered(dtx_conn *c)
{
    char err[DTX_ERRBUF];
    frame_view f;
    int fr;
    while (c->state == DTX_CS_READY && (fr = dtx_io_next_frame(c, &f, err, sizeof(err))) != 0) {
        if (fr < 0) {
            dtx_conn_break(c, "08P01", "%s", err);
            return false;
        }
        dispatch(c, &f);
    }
    return c->state == DTX_CS_READY;
}

int
dtx_consume_input(dtx_conn *conn)
{
    if (conn == NULL)
        return 0;
    if (conn->state != DTX_CS_READY) {
        if (conn->state != DTX_CS_BAD)
            return 1;
        dtx_conn_error_reset(conn);
        dtx_conn_error_append(conn, "connection to the coordinator is not open\n");
        return 0;
    }
    char err[DTX_ERRBUF];
    for (;;) {
        int r = dtx_io_read(conn, err, sizeof(err));
        if (r < 0) {
            dtx_conn_break(conn, "08006", "lost the connection to the coordinator: %s", err);
            return 0;
        }
        if (!dispatch_buffered(conn))
            return 0;
        if (r == 0)
            break;
    }
    /* a write that waited for input may go on now */
    if (conn->write_wants_read && dtx_flush(conn) < 0)
        return 0;
    return 1;
}

int
dtx_is_busy(const dtx_conn *conn)
{
    return conn && conn->rstate == DTX_RS_BUSY && conn->q_head == NULL;
}

dtx_result *
dtx_get_result(dtx_conn *conn)
{
    if (conn == NULL)
        return NULL;
    while (conn->q_head == NULL && conn->rstate == DTX_RS_BUSY) {
        bool pending = conn->out_pos < conn->out.len;
        if (pending && dtx_flush(conn) < 0)
            break;
        pending = conn->out_pos < conn->out.len;
        int w = dtx_io_wait(conn, pending || conn->read_wants_write, -1);
        if (w < 0) {
            dtx_conn_break(conn, "08006", "could not wait for the coordinator: %s",
                           dtx_strerror(errno));
            break;
        }
        if (!dtx_consume_input(conn))
            break;
    }
    dtx_result *r = dequeue(conn);
    if (r == NULL && conn->rstate == DTX_RS_DONE) {
        conn->rstate = DTX_RS_IDLE;
        conn->req = DTX_REQ_NONE;
    }
    return r;
}

/* Hand the reservation over to the transaction being started. */
static void
claim_next_gid(dtx_conn *c)
{
    free(c->gid);
    c->gid = c->next_gid;
    c->next_gid = NULL;
}

/* Can a request be sent now?  Sets the error otherwise. */
static bool
send_ready(dtx_conn *c)
{
    if (c == NULL)
        return false;
    dtx_conn_error_reset(c);
    if (c->state != DTX_CS_READY) {
        if (c->state == DTX_CS_BAD && c->break_reason)
            dtx_conn_error_append(c, "connection to the coordinator is not open (%s)\n",
                                  c->break_reason);
        else
            dtx_conn_error_append(c, "connection to the coordinator is not open\n");
        return false;
    }
    if (c->rstate != DTX_RS_IDLE) {
        dtx_conn_error_append(c,
                              "another request is already in progress (%s): read its "
                              "results with dtx_get_result first\n",
                              req_name(c->req));
        return false;
    }
    return true;
}

/* The frame(s) appended since `start` form request k: check the size, mark
 * the request in flight and try to send it.  Returns 1, or 0 when the
 * encoding failed (the bytes are removed again). */
static int
send_request(dtx_conn *c, dtx_req_kind k, size_t start, bool enc_ok, bool claim)
{
    if (!enc_ok || !wbuf_ok(&c->out)) {
        c->out.len = start;
        c->out.oom = false;
        dtx_conn_error_append(c, "out of memory while encoding the %s request\n", req_name(k));
        return 0;
    }
    size_t payload = c->out.len - start - FRAME_HEADER_SIZE;
    if (payload > c->max_frame) {
        c->out.len = start;
        dtx_conn_error_append(c, "%s request too large: %zu bytes, at most %u\n", req_name(k),
                              payload, c->max_frame);
        return 0;
    }
    c->req = k;
    c->rstate = DTX_RS_BUSY;
    if (k == DTX_REQ_COMMIT || k == DTX_REQ_ONESHOT)
        c->txn_commit_sent = true;
    if (claim) {
        claim_next_gid(c); /* ONESHOT_RESERVED: the gid is known */
    } else if (k == DTX_REQ_ONESHOT) {
        /* the coordinator names the transaction in a BEGIN_OK before the
         * results (protocol 1.1), and again in its OUTCOME */
        free(c->gid);
        c->gid = NULL;
    }
    int sent = dtx_flush(c); /* a failure is reported through dtx_get_result */
    (void)sent;
    return 1;
}

/* BEGIN_RESERVED: queued, not flushed (it leaves with the next request);
 * the BEGIN result is made here. */
static int
send_begin_reserved(dtx_conn *c)
{
    dtx_result *r = dtx_result_local_begin(c->next_gid);
    size_t start = c->out.len;
    if (r == NULL || !proto_put_begin_reserved(&c->out, c->next_gid) || !wbuf_ok(&c->out)) {
        dtx_clear(r);
        c->out.len = start;
        c->out.oom = false;
        dtx_conn_error_append(c, "out of memory while encoding the BEGIN request\n");
        return 0;
    }
    claim_next_gid(c);
    c->txn_commit_sent = false;
    c->in_txn = true;
    c->req = DTX_REQ_BEGIN;
    c->rstate = DTX_RS_DONE;
    enqueue(c, r);
    return 1;
}

int
dtx_begin_request(dtx_conn *conn, bool may_reserve)
{
    if (!send_ready(conn))
        return 0;
    /* inside a transaction, a plain BEGIN: the coordinator refuses it
     * (25001) and the open transaction goes on */
    if (may_reserve && !conn->in_txn) {
        if (!dispatch_buffered(conn))
            return send_ready(conn);
        if (conn->next_gid != NULL)
            return send_begin_reserved(conn);
    }
    size_t start = conn->out.len;
    bool ok = proto_put_empty(&conn->out, MSG_BEGIN);
    return send_request(conn, DTX_REQ_BEGIN, start, ok, false);
}

int
dtx_send_begin(dtx_conn *conn)
{
    return dtx_begin_request(conn, false);
}

/* Check one statement's arguments; sets the error otherwise. */
static bool
stmt_args_ok(dtx_conn *c, const char *participant, const char *sql, int nparams,
             const char *const *values)
{
    if (participant == NULL || participant[0] == '\0') {
        dtx_conn_error_append(c, "a participant name is required\n");
        return false;
    }
    if (sql == NULL) {
        dtx_conn_error_append(c, "SQL text is required\n");
        return false;
    }
    if (nparams < 0 || nparams > PROTO_MAX_PARAMS || (nparams > 0 && values == NULL)) {
        dtx_conn_error_append(c, "invalid number of parameters: %d (0 to %d)\n", nparams,
                              PROTO_MAX_PARAMS);
        return false;
    }
    return true;
}

int
dtx_send_exec_params(dtx_conn *conn, const char *participant, const char *sql, int nparams,
                     const char *const *values)
{
    if (!send_ready(conn) || !stmt_args_ok(conn, participant, sql, nparams, values))
        return 0;
    proto_stmt st = {.participant = participant,
                     .sql = sql,
                     .nparams = (uint16_t)nparams,
                     .params = (const char **)values};
    size_t start = conn->out.len;
    bool ok = proto_put_exec(&conn->out, &st);
    return send_request(conn, DTX_REQ_EXEC, start, ok, false);
}

int
dtx_send_exec(dtx_conn *conn, const char *participant, const char *sql)
{
    return dtx_send_exec_params(conn, participant, sql, 0, NULL);
}

int
dtx_send_commit(dtx_conn *conn)
{
    if (!send_ready(conn))
        return 0;
    size_t start = conn->out.len;
    bool ok = proto_put_empty(&conn->out, MSG_COMMIT);
    return send_request(conn, DTX_REQ_COMMIT, start, ok, false);
}

int
dtx_send_rollback(dtx_conn *conn)
{
    if (!send_ready(conn))
        return 0;
    size_t start = conn->out.len;
    bool ok = proto_put_empty(&conn->out, MSG_ROLLBACK);
    return send_request(conn, DTX_REQ_ROLLBACK, start, ok, false);
}

int
dtx_send_oneshot(dtx_conn *conn, const dtx_stmt *stmts, int nstmts)
{
    if (!send_ready(conn))
        return 0;
    if (conn->in_txn) {
        /* refused here, so that the open transaction keeps its gid */
        dtx_conn_error_append(conn,
                              "a transaction is already in progress (%s): end it with dtx_commit "
                              "or dtx_rollback first\n",
                              conn->gid ? conn->gid : "");
        return 0;
    }
    if (nstmts < 1 || nstmts > PROTO_MAX_STMTS || stmts == NULL) {
        dtx_conn_error_append(conn, "invalid number of statements: %d (1 to %d)\n", nstmts,
                              PROTO_MAX_STMTS);
        return 0;
    }
    for (int i = 0; i < nstmts; i++)
        if (!stmt_args_ok(conn, stmts[i].participant, stmts[i].sql, stmts[i].nparams,
                          stmts[i].params))
            return 0;
    proto_stmt *ps = calloc((size_t)nstmts, sizeof(*ps));
    if (ps == NULL) {
        dtx_conn_error_append(conn, "out of memory\n");
        return 0;
    }
    for (int i = 0; i < nstmts; i++) {
        ps[i].participant = stmts[i].participant;
        ps[i].sql = stmts[i].sql;
        ps[i].nparams = (uint16_t)stmts[i].nparams;
        ps[i].params = (const char **)stmts[i].params;
    }
    proto_stmts body = {.n = (uint16_t)nstmts, .stmts = ps};
    if (!dispatch_buffered(conn)) {
        free(ps);
        return send_ready(conn);
    }
    size_t start = conn->out.len;
    bool claim = conn->next_gid != NULL;
    bool ok = claim ? proto_put_oneshot_reserved(&conn->out, conn->next_gid, &body)
                    : proto_put_oneshot(&conn->out, &body);
    free(ps);
    return send_request(conn, DTX_REQ_ONESHOT, start, ok, claim);
}

int
dtx_send_status(dtx_conn *conn, const char *gid)
{
    if (!send_ready(conn))
        return 0;
    if (gid == NULL || gid[0] == '\0') {
        dtx_conn_error_append(conn, "a transaction id is required\n");
        return 0;
    }
    size_t start = conn->out.len;
    bool ok = proto_put_status(&conn->out, gid);
    return send_request(conn, DTX_REQ_STATUS, start, ok, false);
}

int
dtx_send_indoubt(dtx_conn *conn)
{
    if (!send_ready(conn))
        return 0;
    size_t start = conn->out.len;
    bool ok = proto_put_empty(&conn->out, MSG_INDOUBT);
    return send_request(conn, DTX_REQ_INDOUBT, start, ok, false);
}

int
dtx_send_promote(dtx_conn *conn, int force)
{
    if (!send_ready(conn))
        return 0;
    size_t start = conn->out.len;
    bool ok = proto_put_promote(&conn->out, force != 0);
    return send_request(conn, DTX_REQ_PROMOTE, start, ok, false);
}

int
dtx_send_replication(dtx_conn *conn)
{
    if (!send_ready(conn))
        return 0;
    size_t start = conn->out.len;
    bool ok = proto_put_replication(&conn->out);
    return send_request(conn, DTX_REQ_REPLICATION, start, ok, false);
}
