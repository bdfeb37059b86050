/*
 * dtx_result.c — dtx_result: construction from reply frames, and the
 * accessors of dtx.h.
 *
 * NOTES
 *  One representation.  A result owns exactly one encoded frame (header and
 *  payload, one allocation) and a decoded view of it (proto.h decoders are
 *  zero-copy, so the view's strings point into that frame; its arrays are
 *  heap-allocated by the decoder and freed with it).  Replies from the
 *  coordinator are copied verbatim, so SQLSTATEs, messages and values reach
 *  the application byte for byte.  What the library makes up itself — the
 *  error for a lost connection, the UNKNOWN outcome that follows it, and the
 *  in-doubt listing turned into a table — is first encoded as a frame with
 *  the protocol's own encoders and then decoded like a received one, so
 *  every accessor has one code path and a copy is just a re-decode.
 *
 *  Kinds by frame type: 'b' BEGIN, 'R' STATEMENT, 'E' ERROR, 'O' OUTCOME,
 *  'T' STATUS, 'k' ADMIN (ADMIN_OK), 'v' REPLICATION (REPLICATION_REPLY,
 *  decoded into dtx.h's dtx_replication_info, whose strings point into the
 *  frame like every view); 'i' INDOUBT_REPLY is re-encoded as a RESULT
 *  frame (columns gid, age_ms, participants, state) and has kind INDOUBT.
 *
 *  Life cycle: made by the I/O layer when a frame arrives, queued on the
 *  connection (next), handed out by dtx_get_result (next = NULL), freed by
 *  the application with dtx_clear.  A result never points into its
 *  connection, so it outlives dtx_finish.
 */
#include "dtx_result.h"

#include "dtx.h"

#include "buf.h"
#include "frame.h"
#include "proto.h"
#include "proto_repl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OID_INT8 20
#define OID_TEXT 25

static void
free_view(dtx_result *r)
{
    if (r->kind == DTX_KIND_STATEMENT || r->kind == DTX_KIND_INDOUBT)
        proto_result_clear(&r->u.stmt);
}

void
dtx_clear(dtx_result *res)
{
    if (res == NULL)
        return;
    free_view(res);
    free(res->frame);
    free(res);
}

/* REPLICATION_REPLY into the public struct.  False when malformed. */
static bool
decode_replication(const frame_view *f, dtx_replication_info *out)
{
    proto_replication m;
    if (!proto_get_replication_reply(f, &m))
        return false;
    *out = (dtx_replication_info){.role = (dtx_coord_role)m.role,
                                  .epoch = m.epoch,
                                  .name = m.name,
                                  .peer = m.peer,
                                  .state = m.state,
                                  .sent_lsn = m.sent,
                                  .flushed_lsn = m.flushed,
                                  .primary_lsn = m.primary_lsn,
                                  .lag_bytes = m.lag_bytes,
                                  .lag_ms = m.lag_ms,
                                  .synchronous = m.synchronous != 0,
                                  .sure = m.sure != 0,
                                  .detail = m.detail,
                                  .ha_leader = m.ha_leader ? m.ha_leader : "",
                                  .ha_lease_ms = m.ha_lease_ms,
                                  .ha_sync = m.ha_sync ? m.ha_sync : "",
                                  .ha_etcd = m.ha_etcd ? m.ha_etcd : ""};
    return true;
}

/*
 * Decode res->frame (of res->type, payload res->len bytes) into res->u and
 * set res->kind.  False when the payload is malformed.
 */
static bool
decode(dtx_result *r, bool indoubt)
{
    frame_view f = {.type = r->type, .len = r->len, .payload = r->frame + FRAME_HEADER_SIZE};
    switch (r->type) {
    case MSG_BEGIN_OK:
        r->kind = DTX_KIND_BEGIN;
        return proto_get_begin_ok(&f, &r->u.gid);
    case MSG_RESULT:
        r->kind = indoubt ? DTX_KIND_INDOUBT : DTX_KIND_STATEMENT;
        return proto_get_result(&f, &r->u.stmt);
    case MSG_ERROR:
        r->kind = DTX_KIND_ERROR;
        return proto_get_error(&f, &r->u.err);
    case MSG_OUTCOME:
        r->kind = DTX_KIND_OUTCOME;
        return proto_get_outcome(&f, &r->u.outcome);
    case MSG_STATUS_REPLY:
        r->kind = DTX_KIND_STATUS;
        return proto_get_status_reply(&f, &r->u.status);
    case MSG_ADMIN_OK:
        r->kind = DTX_KIND_ADMIN;
        return proto_get_admin_ok(&f, &r->u.admin_message);
    case MSG_REPLICATION_REPLY:
        r->kind = DTX_KIND_REPLICATION;
        return decode_replication(&f, &r->u.repl);
    default:
        return false;
    }
}

/* A result that takes ownership of frame (header included). */
static dtx_result *
result_adopt(uint8_t *frame, bool indoubt, const char **why)
{
    dtx_result *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        free(frame);
        *why = "out of memory";
        return NULL;
    }
    r->frame = frame;
    r->type = frame[0];
    r->len = buf_load_u32(frame + 1);
    if (!decode(r, indoubt)) {
        *why = "malformed message";
        r->kind = DTX_KIND_BEGIN; /* nothing decoded that needs freeing */
        dtx_clear(r);
        return NULL;
    }
    return r;
}

/* Move w's bytes (one whole frame) into a result. */
static dtx_result *
result_from_wbuf(wbuf *w, bool indoubt, const char **why)
{
    uint8_t *frame = w->data;
    w->data = NULL;
    w->len = w->cap = 0;
    return result_adopt(frame, indoubt, why);
}

/* The in-doubt listing as a RESULT frame with four columns. */
static dtx_result *
indoubt_table(const frame_view *f, const char **why)
{
    proto_indoubt_reply rep;
    if (!proto_get_indoubt_reply(f, &rep)) {
        *why = "malformed message";
        return NULL;
    }
    wbuf w;
    wbuf_init(&w);
    char tag[32];
    snprintf(tag, sizeof(tag), "INDOUBT %" PRIu32, rep.n);
    size_t start = proto_result_begin(&w, 0, "", tag, rep.n, 4);
    proto_result_column(&w, "gid", OID_TEXT);
    proto_result_column(&w, "age_ms", OID_INT8);
    proto_result_column(&w, "participants", OID_TEXT);
    proto_result_column(&w, "state", OID_TEXT);
    proto_result_rows(&w, rep.n);
    for (uint32_t i = 0; i < rep.n; i++) {
        const proto_indoubt_entry *e = &rep.entries[i];
        char age[32];
        snprintf(age, sizeof(age), "%" PRIu64, e->age_ms);
        proto_result_value(&w, e->gid, strlen(e->gid), false);
        proto_result_value(&w, age, strlen(age), false);
        proto_result_value(&w, e->participants, strlen(e->participants), false);
        proto_result_value(&w, e->state, strlen(e->state), false);
    }
    proto_indoubt_reply_clear(&rep);
    if (!proto_result_end(&w, start)) {
        wbuf_free(&w);
        *why = "out of memory";
        return NULL;
    }
    return result_from_wbuf(&w, true, why);
}

dtx_result *
dtx_result_from_frame(const frame_view *f, const char **why)
{
    if (f->type == MSG_INDOUBT_REPLY)
        return indoubt_table(f, why);
    uint8_t *frame = malloc(FRAME_HEADER_SIZE + (size_t)f->len);
    if (frame == NULL) {
        *why = "out of memory";
        return NULL;
    }
    frame[0] = f->type;
    buf_store_u32(frame + 1, f->len);
    if (f->len)
        memcpy(frame + FRAME_HEADER_SIZE, f->payload, f->len);
    return result_adopt(frame, false, why);
}

dtx_result *
dtx_result_local_error(const char *sqlstate, const char *message)
{
    wbuf w;
    wbuf_init(&w);
    proto_error e = {.tag = 0, .sqlstate = sqlstate, .message = message};
    if (!proto_put_error(&w, &e)) {
        wbuf_free(&w);
        return NULL;
    }
    const char *why;
    return result_from_wbuf(&w, false, &why);
}

dtx_result *
dtx_result_local_begin(const char *gid)
{
    wbuf w;
    wbuf_init(&w);
    if (!proto_put_begin_ok(&w, gid)) {
        wbuf_free(&w);
        return NULL;
    }
    const char *why;
    return result_from_wbuf(&w, false, &why);
}

dtx_result *
dtx_result_local_outcome(proto_outcome outcome, const char *gid)
{
    wbuf w;
    wbuf_init(&w);
    proto_outcome_msg m = {.outcome = (uint8_t)outcome, .gid = gid ? gid : ""};
    if (!proto_put_outcome(&w, &m)) {
        wbuf_free(&w);
        return NULL;
    }
    const char *why;
    return result_from_wbuf(&w, false, &why);
}

dtx_result *
dtx_result_copy(const dtx_result *res)
{
    size_t n = FRAME_HEADER_SIZE + (size_t)res->len;
    uint8_t *frame = malloc(n);
    if (frame == NULL)
        return NULL;
    memcpy(frame, res->frame, n);
    const char *why;
    return result_adopt(frame, res->kind == DTX_KIND_INDOUBT, &why);
}

/* ---- accessors ----------------------------------------------------------- */

static bool
has_table(const dtx_result *res)
{
    return res && (res->kind == DTX_KIND_STATEMENT || res->kind == DTX_KIND_INDOUBT);
}

static bool
cell_ok(const dtx_result *res, int row, int col)
{
    return has_table(res) && row >= 0 && col >= 0 && (uint32_t)row < res->u.stmt.nrows &&
           col < res->u.stmt.ncols;
}

static size_t
cell_index(const dtx_result *res, int row, int col)
{
    return (size_t)row * res->u.stmt.ncols + (size_t)col;
}

dtx_res_status
dtx_result_status(const dtx_result *res)
{
    return res == NULL || res->kind == DTX_KIND_ERROR ? DTX_RES_ERROR : DTX_RES_OK;
}

dtx_res_kind
dtx_result_kind(const dtx_result *res)
{
    return res ? res->kind : DTX_KIND_ERROR;
}

const char *
dtx_result_error_field(const dtx_result *res, int fieldcode)
{
    if (res == NULL || res->kind != DTX_KIND_ERROR)
        return NULL;
    switch (fieldcode) {
    case DTX_DIAG_SQLSTATE:
        return res->u.err.sqlstate;
    case DTX_DIAG_MESSAGE:
        return res->u.err.message;
    case DTX_DIAG_DETAIL:
        return res->u.err.detail;
    case DTX_DIAG_HINT:
        return res->u.err.hint;
    case DTX_DIAG_PARTICIPANT:
        return res->u.err.participant;
    default:
        return NULL;
    }
}

const char *
dtx_result_participant(const dtx_result *res)
{
    if (res == NULL)
        return NULL;
    if (res->kind == DTX_KIND_ERROR)
        return res->u.err.participant;
    if (res->kind == DTX_KIND_STATEMENT && res->u.stmt.participant[0])
        return res->u.stmt.participant;
    return NULL;
}

int
dtx_result_outcome(const dtx_result *res)
{
    if (res == NULL || res->kind != DTX_KIND_OUTCOME)
        return -1;
    switch (res->u.outcome.outcome) {
    case OUTCOME_COMMITTED:
        return DTX_COMMITTED;
    case OUTCOME_ABORTED:
        return DTX_ABORTED;
    default:
        /* UNKNOWN, and the STATUS-only values should a coordinator send
         * them here: none of them is a decision. */
        return DTX_UNKNOWN;
    }
}

dtx_gid_status
dtx_result_gid_status(const dtx_result *res)
{
    if (res == NULL || res->kind != DTX_KIND_STATUS)
        return DTX_GID_ERROR;
    switch (res->u.status.outcome) {
    case OUTCOME_COMMITTED:
        return DTX_GID_COMMITTED;
    case OUTCOME_ABORTED:
        return DTX_GID_ABORTED;
    case OUTCOME_UNKNOWN:
        return DTX_GID_UNKNOWN;
    case OUTCOME_IN_PROGRESS:
        return DTX_GID_IN_PROGRESS;
    case OUTCOME_NOT_KNOWN:
        return DTX_GID_NO_LONGER_KNOWN;
    case OUTCOME_HEURISTIC:
        return DTX_GID_HEURISTIC;
    default:
        return DTX_GID_ERROR; /* the decoder refuses other values */
    }
}

const char *
dtx_result_gid(const dtx_result *res)
{
    if (res == NULL)
        return NULL;
    switch (res->kind) {
    case DTX_KIND_BEGIN:
        return res->u.gid;
    case DTX_KIND_OUTCOME:
        return res->u.outcome.gid[0] ? res->u.outcome.gid : NULL;
    case DTX_KIND_STATUS:
        return res->u.status.gid;
    default:
        return NULL;
    }
}

const char *
dtx_result_detail(const dtx_result *res)
{
    if (res != NULL && res->kind == DTX_KIND_STATUS)
        return res->u.status.detail;
    if (res != NULL && res->kind == DTX_KIND_ADMIN)
        return res->u.admin_message;
    return NULL;
}

const dtx_replication_info *
dtx_result_replication(const dtx_result *res)
{
    return res && res->kind == DTX_KIND_REPLICATION ? &res->u.repl : NULL;
}

int
dtx_ntuples(const dtx_result *res)
{
    return has_table(res) ? (int)(res->u.stmt.nrows > INT32_MAX ? INT32_MAX : res->u.stmt.nrows)
                          : 0;
}

int
dtx_nfields(const dtx_result *res)
{
    return has_table(res) ? res->u.stmt.ncols : 0;
}

const char *
dtx_fname(const dtx_result *res, int col)
{
    if (!has_table(res) || col < 0 || col >= res->u.stmt.ncols)
        return NULL;
    return res->u.stmt.col_names[col];
}

unsigned int
dtx_ftype(const dtx_result *res, int col)
{
    if (!has_table(res) || col < 0 || col >= res->u.stmt.ncols)
        return 0;
    return res->u.stmt.col_types[col];
}

const char *
dtx_getvalue(const dtx_result *res, int row, int col)
{
    if (!cell_ok(res, row, col))
        return NULL;
    const char *v = res->u.stmt.values[cell_index(res, row, col)];
    return v ? v : "";
}

int
dtx_getlength(const dtx_result *res, int row, int col)
{
    if (!cell_ok(res, row, col))
        return 0;
    size_t i = cell_index(res, row, col);
    if (res->u.stmt.values[i] == NULL)
        return 0;
    uint32_t len = res->u.stmt.lengths[i];
    return len > INT32_MAX ? INT32_MAX : (int)len;
}

int
dtx_getisnull(const dtx_result *res, int row, int col)
{
    if (!cell_ok(res, row, col))
        return 1;
    return res->u.stmt.values[cell_index(res, row, col)] == NULL;
}

const char *
dtx_cmd_status(const dtx_result *res)
{
    if (res == NULL || res->kind != DTX_KIND_STATEMENT)
        return "";
    return res->u.stmt.command_tag;
}

uint64_t
dtx_cmd_tuples(const dtx_result *res)
{
    if (res == NULL || res->kind != DTX_KIND_STATEMENT)
        return 0;
    return res->u.stmt.affected;
}

void
dtx_results_free(dtx_result **results)
{
    if (results == NULL)
        return;
    for (dtx_result **p = results; *p; p++)
        dtx_clear(*p);
    free(results);
}

void
dtx_freemem(void *p)
{
    free(p);
}

const char *
dtx_outcome_name(dtx_outcome o)
{
    switch (o) {
    case DTX_COMMITTED:
        return "COMMITTED";
    case DTX_ABORTED:
        return "ABORTED";
    case DTX_UNKNOWN:
        return "UNKNOWN";
    }
    return "UNKNOWN";
}

const char *
dtx_gid_status_name(dtx_gid_status st)
{
    switch (st) {
    case DTX_GID_COMMITTED:
        return "COMMITTED";
    case DTX_GID_ABORTED:
        return "ABORTED";
    case DTX_GID_UNKNOWN:
        return "UNKNOWN";
    case DTX_GID_IN_PROGRESS:
        return "IN PROGRESS";
    case DTX_GID_NO_LONGER_KNOWN:
        return "NO LONGER KNOWN";
    case DTX_GID_HEURISTIC:
        return "HEURISTIC OUTCOME";
    case DTX_GID_ERROR:
        return "ERROR";
    }
    return "ERROR";
}
