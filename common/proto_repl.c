/*
 * proto_repl.c — see proto_repl.h.
 */
#include "proto_repl.h"

#include <stdlib.h>

#define ENC_MAX UINT32_MAX /* frame size limits are enforced by the reader */

bool
proto_put_repl_start(wbuf *w, const proto_repl_start *m)
{
    size_t s = frame_begin(w, MSG_REPL_START);
    wbuf_put_u64(w, m->end);
    wbuf_put_u16(w, m->n);
    for (uint16_t i = 0; i < m->n; i++) {
        wbuf_put_u64(w, m->epoch[i]);
        wbuf_put_u64(w, m->lsn[i]);
        wbuf_put_u64(w, m->instance[i]);
    }
    if (m->member) /* 1.4 */
        wbuf_put_str(w, m->member);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_get_repl_start(const frame_view *f, proto_repl_start *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->end = rbuf_get_u64(&r);
    m->n = rbuf_get_u16(&r);
    m->epoch = m->lsn = m->instance = NULL;
    m->member = NULL;
    if (!rbuf_ok(&r) || m->n > REPL_MAX_EPOCHS || rbuf_remaining(&r) < (size_t)m->n * 24)
        return false;
    m->epoch = calloc(m->n + 1u, sizeof(uint64_t));
    m->lsn = calloc(m->n + 1u, sizeof(uint64_t));
    m->instance = calloc(m->n + 1u, sizeof(uint64_t));
    if (m->epoch == NULL || m->lsn == NULL || m->instance == NULL) {
        proto_repl_start_clear(m);
        return false;
    }
    for (uint16_t i = 0; i < m->n; i++) {
        m->epoch[i] = rbuf_get_u64(&r);
        m->lsn[i] = rbuf_get_u64(&r);
        m->instance[i] = rbuf_get_u64(&r);
    }
    if (rbuf_remaining(&r)) /* 1.4: the standby's member name ([ha]) */
        m->member = rbuf_get_str(&r, NULL);
    if (!rbuf_done(&r)) {
        proto_repl_start_clear(m);
        return false;
    }
    return true;
}

void
proto_repl_start_clear(proto_repl_start *m)
{
    free(m->epoch);
    free(m->lsn);
    free(m->instance);
    m->epoch = m->lsn = m->instance = NULL;
    m->n = 0;
}

bool
proto_put_repl_start_ok(wbuf *w, const proto_repl_start_ok *m)
{
    size_t s = frame_begin(w, MSG_REPL_START_OK);
    wbuf_put_u64(w, m->start);
    wbuf_put_u64(w, m->cut_to);
    wbuf_put_u8(w, m->flags);
    wbuf_put_u64(w, m->epoch);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_get_repl_start_ok(const frame_view *f, proto_repl_start_ok *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->start = rbuf_get_u64(&r);
    m->cut_to = rbuf_get_u64(&r);
    m->flags = rbuf_get_u8(&r);
    m->epoch = rbuf_get_u64(&r);
    return rbuf_done(&r);
}

bool
proto_put_wal_data(wbuf *w, const proto_wal_data *m)
{
    size_t s = frame_begin(w, MSG_WAL_DATA);
    wbuf_put_u64(w, m->pos);
    wbuf_put_u64(w, m->primary_durable);
    wbuf_put_u64(w, m->sent_ms);
    wbuf_put_u8(w, m->synchronous);
    if (m->len)
        wbuf_put_bytes(w, m->bytes, m->len);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_get_wal_data(const frame_view *f, proto_wal_data *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->pos = rbuf_get_u64(&r);
    m->primary_durable = rbuf_get_u64(&r);
    m->sent_ms = rbuf_get_u64(&r);
    m->synchronous = rbuf_get_u8(&r);
    if (!rbuf_ok(&r))
        return false;
    m->len = rbuf_remaining(&r);
    m->bytes = f->payload + r.pos;
    return m->synchronous <= 1;
}

bool
proto_put_wal_ack(wbuf *w, uint64_t durable)
{
    size_t s = frame_begin(w, MSG_WAL_ACK);
    wbuf_put_u64(w, durable);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_get_wal_ack(const frame_view *f, uint64_t *durable)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    *durable = rbuf_get_u64(&r);
    return rbuf_done(&r);
}

bool
proto_put_promote(wbuf *w, bool force)
{
    size_t s = frame_begin(w, MSG_PROMOTE);
    wbuf_put_u8(w, force ? 1 : 0);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_get_promote(const frame_view *f, bool *force)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    uint8_t v = rbuf_get_u8(&r);
    *force = v == 1;
    return rbuf_done(&r) && v <= 1;
}

bool
proto_put_admin_ok(wbuf *w, const char *message)
{
    size_t s = frame_begin(w, MSG_ADMIN_OK);
    wbuf_put_str(w, message);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_get_admin_ok(const frame_view *f, const char **message)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    *message = rbuf_get_str(&r, NULL);
    return rbuf_done(&r);
}

bool
proto_put_replication(wbuf *w)
{
    size_t s = frame_begin(w, MSG_REPLICATION);
    return frame_end(w, s, ENC_MAX);
}

bool
proto_put_replication_reply(wbuf *w, const proto_replication *m)
{
    size_t s = frame_begin(w, MSG_REPLICATION_REPLY);
    wbuf_put_u8(w, m->role);
    wbuf_put_u64(w, m->epoch);
    wbuf_put_str(w, m->name);
    wbuf_put_str(w, m->peer);
    wbuf_put_str(w, m->state);
    wbuf_put_u64(w, m->sent);
    wbuf_put_u64(w, m->flushed);
    wbuf_put_u64(w, m->primary_lsn);
    wbuf_put_u64(w, m->lag_bytes);
    wbuf_put_u64(w, m->lag_ms);
    wbuf_put_u8(w, m->synchronous);
    wbuf_put_u8(w, m->sure);
    wbuf_put_str(w, m->detail);
    if (m->ha_leader) { /* 1.4, [ha] */
        wbuf_put_str(w, m->ha_leader);
        wbuf_put_u64(w, (uint64_t)m->ha_lease_ms);
        wbuf_put_str(w, m->ha_sync ? m->ha_sync : "");
        wbuf_put_str(w, m->ha_etcd ? m->ha_etcd : "");
    }
    return frame_end(w, s, ENC_MAX);
}

bool
proto_get_replication_reply(const frame_view *f, proto_replication *m)
{
    rbuf r;
    rbuf_init(&r, f->payload, f->len);
    m->role = rbuf_get_u8(&r);
    m->epoch = rbuf_get_u64(&r);
    m->name = rbuf_get_str(&r, NULL);
    m->peer = rbuf_get_str(&r, NULL);
    m->state = rbuf_get_str(&r, NULL);
    m->sent = rbuf_get_u64(&r);
    m->flushed = rbuf_get_u64(&r);
    m->primary_lsn = rbuf_get_u64(&r);
    m->lag_bytes = rbuf_get_u64(&r);
    m->lag_ms = rbuf_get_u64(&r);
    m->synchronous = rbuf_get_u8(&r);
    m->sure = rbuf_get_u8(&r);
    m->detail = rbuf_get_str(&r, NULL);
    m->ha_leader = m->ha_sync = m->ha_etcd = NULL;
    m->ha_lease_ms = -1;
    if (rbuf_ok(&r) && rbuf_remaining(&r)) { /* 1.4: automatic failover's view */
        m->ha_leader = rbuf_get_str(&r, NULL);
        m->ha_lease_ms = (int64_t)rbuf_get_u64(&r);
        m->ha_sync = rbuf_get_str(&r, NULL);
        m->ha_etcd = rbuf_get_str(&r, NULL);
    }
    return rbuf_done(&r);
}
