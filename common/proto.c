/*
 * proto.c — encoders and decoders for the messages listed in proto.h.
 *
 * NOTES
 *  Encoders write one complete frame each (frame_begin ... frame_end) into a
 *  wbuf; the caller hands the bytes to its transport.  Decoders read a frame
 *  payload with a sticky-error rbuf and accept a message only if every byte
 *  was consumed (rbuf_done), so trailing garbage is an error too.
 *
 *  Counts read off the wire (parameters, statements, columns, rows) are
 *  checked against the bytes that remain before anything is allocated: every
 *  element needs at least 4 bytes, so a count larger than remaining/4 cannot
 *  be honest.  An attacker thus cannot make a decoder allocate more than a
 *  small multiple of the frame size, which the frame reader already bounds.
 */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

#define ENC_MAX UINT32_MAX /* frame size limits are enforced by the reader */

static bool
count_plausible(rbuf *r, uint64_t n, size_t min_elem)
{
    if (!rbuf_ok(r))
        return false;
    if (n > rbuf_remaining(r) / min_elem) {
        r->err = true;
        return false;
    }
    return true;
}

/* ---- encoders ------------------------------------------------------------ */

bool
proto_put_hello(wbuf *w, const proto_hello *m)
{
    size_t s = frame_begin(w, MSG_HELLO);
    wbuf_put_u32(w, m->magic);
    wbuf_put_u16(w, m->major);
    wbuf_put_u16(w, m->minor);
    wbuf_put_u8(w, m->role);
    wbuf_put_str(w, m->name ? m->name : "");
    wbuf_put_u64(w, m->epoch);
    if (m->instance != 0)
        wbuf_put_u64(w, m->instance);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_hello_ok(wbuf *w, const proto_hello_ok *m)
{
    size_t s = frame_begin(w, MSG_HELLO_OK);
    wbuf_put_u16(w, m->major);
    wbuf_put_u16(w, m->minor);
    wbuf_put_str(w, m->server_name ? m->server_name : "");
    wbuf_put_u64(w, m->epoch);
    if (m->slots != 0)
        wbuf_put_u32(w, m->slots);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_error(wbuf *w, const proto_error *m)
{
    size_t s = frame_begin(w, MSG_ERROR);
    wbuf_put_u32(w, m->tag);
    wbuf_put_str(w, m->sqlstate ? m->sqlstate : "XX000");
    wbuf_put_str(w, m->message ? m->message : "");
    wbuf_put_nstr(w, m->detail);
    wbuf_put_nstr(w, m->hint);
    wbuf_put_nstr(w, m->participant);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_empty(wbuf *w, uint8_t type)
{
    size_t s = frame_begin(w, type);
    return frame_end(w, s, ENC_MAX);
}

/* BEGIN_OK and NEXT_GID: one str, the gid */
static bool
put_gid_msg(wbuf *w, uint8_t type, const char *gid)
{
    size_t s = frame_begin(w, type);
    wbuf_put_str(w, gid);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_begin_ok(wbuf *w, const char *gid)
{
    return put_gid_msg(w, MSG_BEGIN_OK, gid);
}

bool
proto_put_next_gid(wbuf *w, const char *gid)
{
    return put_gid_msg(w, MSG_NEXT_GID, gid);
}

bool
proto_put_begin_reserved(wbuf *w, const char *gid)
{
    return put_gid_msg(w, MSG_BEGIN_RESERVED, gid);
}

static void
put_stmt(wbuf *w, const proto_stmt *st)
{
    wbuf_put_str(w, st->participant ? st->participant : "");
    wbuf_put_str(w, st->sql ? st->sql : "");
    wbuf_put_u16(w, st->nparams);
    for (uint16_t i = 0; i < st->nparams; i++)
        wbuf_put_nstr(w, st->params[i]);
}

bool
proto_put_exec(wbuf *w, const proto_stmt *st)
{
    size_t s = frame_begin(w, MSG_EXEC);
    put_stmt(w, st);
    return frame_end(w, s, ENC_MAX);
}

static void
put_stmts(wbuf *w, const proto_stmts *b)
{
    wbuf_put_u16(w, b->n);
    for (uint16_t i = 0; i < b->n; i++)
        put_stmt(w, &b->stmts[i]);
}

bool
proto_put_oneshot(wbuf *w, const proto_stmts *b)
{
    size_t s = frame_begin(w, MSG_ONESHOT);
    put_stmts(w, b);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_oneshot_reserved(wbuf *w, const char *gid, const proto_stmts *b)
{
    size_t s = frame_begin(w, MSG_ONESHOT_RESERVED);
    wbuf_put_str(w, gid);
    put_stmts(w, b);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_work(wbuf *w, const proto_work *m)
{
    size_t s = frame_begin(w, MSG_WORK);
    wbuf_put_u32(w, m->tag);
    wbuf_put_u64(w, m->epoch);
    wbuf_put_str(w, m->branch);
    wbuf_put_u8(w, m->flags);
    put_stmts(w, &m->body);
    if (m->client)
        wbuf_put_str(w, m->client);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_finish(wbuf *w, const proto_finish *m)
{
    size_t s = frame_begin(w, MSG_FINISH);
    wbuf_put_u32(w, m->tag);
    wbuf_put_u64(w, m->epoch);
    wbuf_put_str(w, m->branch);
    wbuf_put_u8(w, m->commit ? 1 : 0);
    wbuf_put_u64(w, m->xid);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_list(wbuf *w, const proto_list *m)
{
    size_t s = frame_begin(w, MSG_LIST);
    wbuf_put_u32(w, m->tag);
    wbuf_put_u64(w, m->epoch);
    wbuf_put_str(w, m->prefix);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_cancel(wbuf *w, const proto_cancel *m)
{
    size_t s = frame_begin(w, MSG_CANCEL);
    wbuf_put_u32(w, m->tag);
    wbuf_put_u64(w, m->epoch);
    wbuf_put_str(w, m->branch);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_list_reply(wbuf *w, const proto_list_reply *m)
{
    size_t s = frame_begin(w, MSG_LIST_REPLY);
    wbuf_put_u32(w, m->tag);
    wbuf_put_u32(w, m->n);
    for (uint32_t i = 0; i < m->n; i++) {
        wbuf_put_str(w, m->entries[i].gid);
        wbuf_put_u64(w, m->entries[i].xid);
        wbuf_put_u64(w, m->entries[i].prepared_ms);
    }
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_done(wbuf *w, const proto_done *m)
{
    size_t s = frame_begin(w, MSG_DONE);
    wbuf_put_u32(w, m->tag);
    wbuf_put_u8(w, m->status);
    wbuf_put_u64(w, m->xid);
    wbuf_put_u8(w, m->xact_status);
    wbuf_put_nstr(w, m->sqlstate);
    wbuf_put_nstr(w, m->message);
    wbuf_put_nstr(w, m->detail);
    wbuf_put_nstr(w, m->hint);
    return frame_end(w, s, ENC_MAX);
}

size_t
proto_result_begin(wbuf *w, uint32_t tag, const char *participant, const char *cmdtag,
                   uint64_t affected, uint16_t ncols)
{
    size_t s = frame_begin(w, MSG_RESULT);
    wbuf_put_u32(w, tag);
    wbuf_put_str(w, participant ? participant : "");
    wbuf_put_str(w, cmdtag ? cmdtag : "");
    wbuf_put_u64(w, affected);
    wbuf_put_u16(w, ncols);
    return s;
}

void
proto_result_column(wbuf *w, const char *name, uint32_t type_oid)
{
    wbuf_put_str(w, name ? name : "");
    wbuf_put_u32(w, type_oid);
}

void
proto_result_rows(wbuf *w, uint32_t nrows)
{
    wbuf_put_u32(w, nrows);
}

void
proto_result_value(wbuf *w, const char *value, size_t len, bool is_null)
{
    if (is_null)
        wbuf_put_u32(w, BUF_NULL_LEN);
    else
        wbuf_put_strn(w, value, len);
}

bool
proto_result_end(wbuf *w, size_t start)
{
    return frame_end(w, start, ENC_MAX);
}

bool
proto_put_result(wbuf *w, const proto_result *m)
{
    size_t s = proto_result_begin(w, m->tag, m->participant, m->command_tag, m->affected, m->ncols);
    for (uint16_t c = 0; c < m->ncols; c++)
        proto_result_column(w, m->col_names[c], m->col_types[c]);
    proto_result_rows(w, m->nrows);
    size_t nv = (size_t)m->nrows * m->ncols;
    for (size_t i = 0; i < nv; i++) {
        const char *v = m->values[i];
        proto_result_value(w, v, v ? (m->lengths ? m->lengths[i] : strlen(v)) : 0, v == NULL);
    }
    return proto_result_end(w, s);
}

bool
proto_put_outcome(wbuf *w, const proto_outcome_msg *m)
{
    size_t s = frame_begin(w, MSG_OUTCOME);
    wbuf_put_u8(w, m->outcome);
    wbuf_put_str(w, m->gid ? m->gid : "");
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_status(wbuf *w, const char *gid)
{
    size_t s = frame_begin(w, MSG_STATUS);
    wbuf_put_str(w, gid);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_status_reply(wbuf *w, const proto_status_reply *m)
{
    size_t s = frame_begin(w, MSG_STATUS_REPLY);
    wbuf_put_u8(w, m->outcome);
    wbuf_put_str(w, m->gid ? m->gid : "");
    wbuf_put_str(w, m->detail ? m->detail : "");
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_indoubt_reply(wbuf *w, const proto_indoubt_reply *m)
{
    size_t s = frame_begin(w, MSG_INDOUBT_REPLY);
    wbuf_put_u32(w, m->n);
    for (uint32_t i = 0; i < m->n; i++) {
        wbuf_put_str(w, m->entries[i].gid);
        wbuf_put_u64(w, m->entries[i].age_ms);
        wbuf_put_str(w, m->entries[i].participants);
        wbuf_put_str(w, m->entries[i].state);
    }
    return frame_end(w, s, ENC_MAX);
}

/* ---- decoders ------------------------------------------------------------ */

bool
proto_get_hello(const frame_view *f, proto_hello *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->magic = rbuf_get_u32(&r);
    m->major = rbuf_get_u16(&r);
    m->minor = rbuf_get_u16(&r);
    m->role = rbuf_get_u8(&r);
    m->name = rbuf_get_str(&r, NULL);
    m->epoch = rbuf_get_u64(&r);
    /* the instance is optional: absent (older peers, clients) means 0 */
    m->instance = rbuf_ok(&r) && rbuf_remaining(&r) > 0 ? rbuf_get_u64(&r) : 0;
    return rbuf_done(&r);
}

bool
proto_get_hello_ok(const frame_view *f, proto_hello_ok *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->major = rbuf_get_u16(&r);
    m->minor = rbuf_get_u16(&r);
    m->server_name = rbuf_get_str(&r, NULL);
    m->epoch = rbuf_get_u64(&r);
    /* the participant's slot budget is optional: absent means 0 (not known) */
    m->slots = rbuf_ok(&r) && rbuf_remaining(&r) > 0 ? rbuf_get_u32(&r) : 0;
    return rbuf_done(&r);
}

bool
proto_get_error(const frame_view *f, proto_error *m)
{
    rbuf r;
    bool isnull;
    rbuf_init(&r, f->payload, f->len);
    m->tag = rbuf_get_u32(&r);
    m->sqlstate = rbuf_get_str(&r, NULL);
    m->message = rbuf_get_str(&r, NULL);
    m->detail = rbuf_get_nstr(&r, NULL, &isnull);
    m->hint = rbuf_get_nstr(&r, NULL, &isnull);
    m->participant = rbuf_get_nstr(&r, NULL, &isnull);
    return rbuf_done(&r);
}

bool
proto_get_begin_ok(const frame_view *f, const char **gid)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    *gid = rbuf_get_str(&r, NULL);
    return rbuf_done(&r);
}

bool
proto_get_next_gid(const frame_view *f, const char **gid)
{
    return proto_get_begin_ok(f, gid) && (*gid)[0] != '\0';
}

bool
proto_get_begin_reserved(const frame_view *f, const char **gid)
{
    return proto_get_next_gid(f, gid);
}

static bool
get_stmt(rbuf *r, proto_stmt *st)
{
    bool isnull;
    memset(st, 0, sizeof(*st));
    st->participant = rbuf_get_str(r, NULL);
    st->sql = rbuf_get_str(r, NULL);
    st->nparams = rbuf_get_u16(r);
    if (!count_plausible(r, st->nparams, 4))
        return false;
    if (st->nparams) {
        st->params = calloc(st->nparams, sizeof(char *));
        if (st->params == NULL) {
            r->err = true;
            return false;
        }
        for (uint16_t i = 0; i < st->nparams; i++)
            st->params[i] = rbuf_get_nstr(r, NULL, &isnull);
    }
    return rbuf_ok(r);
}

void
proto_stmt_clear(proto_stmt *s)
{
    free(s->params);
    s->params = NULL;
    s->nparams = 0;
}

bool
proto_get_exec(const frame_view *f, proto_stmt *st)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    if (!get_stmt(&r, st) || !rbuf_done(&r)) {
        proto_stmt_clear(st);
        return false;
    }
    return true;
}

static bool
get_stmts(rbuf *r, proto_stmts *b)
{
    memset(b, 0, sizeof(*b));
    uint16_t n = rbuf_get_u16(r);
    /* a statement is at least 2 strings (5 bytes each) and a u16 */
    if (!count_plausible(r, n, 12))
        return false;
    if (n) {
        b->stmts = calloc(n, sizeof(proto_stmt));
        if (b->stmts == NULL) {
            r->err = true;
            return false;
        }
    }
    for (uint16_t i = 0; i < n; i++) {
        b->n = (uint16_t)(i + 1); /* so that clear frees what was decoded */
        if (!get_stmt(r, &b->stmts[i]))
            return false;
    }
    b->n = n;
    return true;
}

void
proto_stmts_clear(proto_stmts *b)
{
    for (uint16_t i = 0; i < b->n; i++)
        proto_stmt_clear(&b->stmts[i]);
    free(b->stmts);
    b->stmts = NULL;
    b->n = 0;
}

bool
proto_get_oneshot(const frame_view *f, proto_stmts *b)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    if (!get_stmts(&r, b) || !rbuf_done(&r)) {
        proto_stmts_clear(b);
        return false;
    }
    return true;
}

bool
proto_get_oneshot_reserved(const frame_view *f, const char **gid, proto_stmts *b)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    memset(b, 0, sizeof(*b));
    *gid = rbuf_get_str(&r, NULL);
    if (!rbuf_ok(&r) || (*gid)[0] == '\0' || !get_stmts(&r, b) || !rbuf_done(&r)) {
        proto_stmts_clear(b);
        return false;
    }
    return true;
}

bool
proto_get_work(const frame_view *f, proto_work *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    memset(m, 0, sizeof(*m));
    m->tag = rbuf_get_u32(&r);
    m->epoch = rbuf_get_u64(&r);
    m->branch = rbuf_get_str(&r, NULL);
    m->flags = rbuf_get_u8(&r);
    if (!rbuf_ok(&r) || !get_stmts(&r, &m->body)) {
        proto_work_clear(m);
        return false;
    }
    if (rbuf_remaining(&r) > 0)
        m->client = rbuf_get_str(&r, NULL); /* minor >= 5 */
    if (!rbuf_done(&r)) {
        proto_work_clear(m);
        return false;
    }
    return true;
}

void
proto_work_clear(proto_work *m)
{
    proto_stmts_clear(&m->body);
}

bool
proto_get_finish(const frame_view *f, proto_finish *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->tag = rbuf_get_u32(&r);
    m->epoch = rbuf_get_u64(&r);
    m->branch = rbuf_get_str(&r, NULL);
    uint8_t c = rbuf_get_u8(&r);
    m->commit = c == 1;
    m->xid = rbuf_get_u64(&r);
    return rbuf_done(&r) && c <= 1;
}

bool
proto_get_list(const frame_view *f, proto_list *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->tag = rbuf_get_u32(&r);
    m->epoch = rbuf_get_u64(&r);
    m->prefix = rbuf_get_str(&r, NULL);
    return rbuf_done(&r);
}

bool
proto_get_cancel(const frame_view *f, proto_cancel *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->tag = rbuf_get_u32(&r);
    m->epoch = rbuf_get_u64(&r);
    m->branch = rbuf_get_str(&r, NULL);
    return rbuf_done(&r);
}

bool
proto_get_list_reply(const frame_view *f, proto_list_reply *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    memset(m, 0, sizeof(*m));
    m->tag = rbuf_get_u32(&r);
    uint32_t n = rbuf_get_u32(&r);
    if (!count_plausible(&r, n, 21))
        return false;
    if (n) {
        m->entries = calloc(n, sizeof(proto_list_entry));
        if (m->entries == NULL)
            return false;
    }
    m->n = n;
    for (uint32_t i = 0; i < n; i++) {
        m->entries[i].gid = rbuf_get_str(&r, NULL);
        m->entries[i].xid = rbuf_get_u64(&r);
        m->entries[i].prepared_ms = rbuf_get_u64(&r);
    }
    if (!rbuf_done(&r)) {
        proto_list_reply_clear(m);
        return false;
    }
    return true;
}

void
proto_list_reply_clear(proto_list_reply *m)
{
    free(m->entries);
    m->entries = NULL;
    m->n = 0;
}

bool
proto_get_done(const frame_view *f, proto_done *m)
{
    rbuf r;
    bool isnull;
    rbuf_init(&r, f->payload, f->len);
    m->tag = rbuf_get_u32(&r);
    m->status = rbuf_get_u8(&r);
    m->xid = rbuf_get_u64(&r);
    m->xact_status = rbuf_get_u8(&r);
    m->sqlstate = rbuf_get_nstr(&r, NULL, &isnull);
    m->message = rbuf_get_nstr(&r, NULL, &isnull);
    m->detail = rbuf_get_nstr(&r, NULL, &isnull);
    m->hint = rbuf_get_nstr(&r, NULL, &isnull);
    return rbuf_done(&r) && m->status <= DONE_UNKNOWN && m->xact_status <= XACT_IN_PROGRESS;
}

bool
proto_get_result(const frame_view *f, proto_result *m)
{
    rbuf r;
    bool isnull;
    rbuf_init(&r, f->payload, f->len);
    memset(m, 0, sizeof(*m));
    m->tag = rbuf_get_u32(&r);
    m->participant = rbuf_get_str(&r, NULL);
    m->command_tag = rbuf_get_str(&r, NULL);
    m->affected = rbuf_get_u64(&r);
    uint16_t ncols = rbuf_get_u16(&r);
    if (!count_plausible(&r, ncols, 9))
        return false;
    m->ncols = ncols;
    if (ncols) {
        m->col_names = calloc(ncols, sizeof(char *));
        m->col_types = calloc(ncols, sizeof(uint32_t));
        if (!m->col_names || !m->col_types)
            goto fail;
    }
    for (uint16_t c = 0; c < ncols; c++) {
        m->col_names[c] = rbuf_get_str(&r, NULL);
        m->col_types[c] = rbuf_get_u32(&r);
    }
    uint32_t nrows = rbuf_get_u32(&r);
    uint64_t nv = (uint64_t)nrows * ncols;
    if (!count_plausible(&r, nv, 4))
        goto fail;
    if (nrows > 0 && ncols == 0)
        goto fail; /* rows without columns make no sense */
    m->nrows = nrows;
    if (nv) {
        m->values = calloc((size_t)nv, sizeof(char *));
        m->lengths = calloc((size_t)nv, sizeof(uint32_t));
        if (!m->values || !m->lengths)
            goto fail;
    }
    for (uint64_t i = 0; i < nv; i++)
        m->values[i] = rbuf_get_nstr(&r, &m->lengths[i], &isnull);
    if (!rbuf_done(&r))
        goto fail;
    return true;
fail:
    proto_result_clear(m);
    return false;
}

void
proto_result_clear(proto_result *m)
{
    free(m->col_names);
    free(m->col_types);
    free(m->values);
    free(m->lengths);
    m->col_names = NULL;
    m->col_types = NULL;
    m->values = NULL;
    m->lengths = NULL;
    m->ncols = 0;
    m->nrows = 0;
}

bool
proto_get_outcome(const frame_view *f, proto_outcome_msg *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->outcome = rbuf_get_u8(&r);
    m->gid = rbuf_get_str(&r, NULL);
    return rbuf_done(&r) && m->outcome <= OUTCOME_HEURISTIC;
}

bool
proto_get_status(const frame_view *f, const char **gid)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    *gid = rbuf_get_str(&r, NULL);
    return rbuf_done(&r);
}

bool
proto_get_status_reply(const frame_view *f, proto_status_reply *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->outcome = rbuf_get_u8(&r);
    m->gid = rbuf_get_str(&r, NULL);
    m->detail = rbuf_get_str(&r, NULL);
    return rbuf_done(&r) && m->outcome <= OUTCOME_HEURISTIC;
}

bool
proto_get_indoubt_reply(const frame_view *f, proto_indoubt_reply *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    memset(m, 0, sizeof(*m));
    uint32_t n = rbuf_get_u32(&r);
    if (!count_plausible(&r, n, 23))
        return false;
    if (n) {
        m->entries = calloc(n, sizeof(proto_indoubt_entry));
        if (m->entries == NULL)
            return false;
    }
    m->n = n;
    for (uint32_t i = 0; i < n; i++) {
        m->entries[i].gid = rbuf_get_str(&r, NULL);
        m->entries[i].age_ms = rbuf_get_u64(&r);
        m->entries[i].participants = rbuf_get_str(&r, NULL);
        m->entries[i].state = rbuf_get_str(&r, NULL);
    }
    if (!rbuf_done(&r)) {
        proto_indoubt_reply_clear(m);
        return false;
    }
    return true;
}

void
proto_indoubt_reply_clear(proto_indoubt_reply *m)
{
    free(m->entries);
    m->entries = NULL;
    m->n = 0;
}

bool
proto_peek_tag(const frame_view *f, uint32_t *tag)
{
    if (f->len < 4)
        return false;
    *tag = buf_load_u32(f->payload);
    return true;
}

void
proto_patch_tag(uint8_t *frame, uint32_t tag)
{
    buf_store_u32(frame + FRAME_HEADER_SIZE, tag);
}

const char *
proto_outcome_name(proto_outcome o)
{
    switch (o) {
    case OUTCOME_COMMITTED:
        return "COMMITTED";
    case OUTCOME_ABORTED:
        return "ABORTED";
    case OUTCOME_UNKNOWN:
        return "UNKNOWN";
    case OUTCOME_IN_PROGRESS:
        return "IN PROGRESS";
    case OUTCOME_NOT_KNOWN:
        return "NO LONGER KNOWN";
    case OUTCOME_HEURISTIC:
        return "HEURISTIC OUTCOME";
    }
    return "?";
}

const char *
proto_done_status_name(done_status s)
{
    switch (s) {
    case DONE_OK:
        return "ok";
    case DONE_PREPARED:
        return "prepared";
    case DONE_READONLY:
        return "read-only";
    case DONE_ERROR:
        return "error";
    case DONE_NOT_FOUND:
        return "not found";
    case DONE_BUSY:
        return "busy";
    case DONE_UNKNOWN:
        return "unknown";
    }
    return "?";
}
