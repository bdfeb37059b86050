/*
 * proto_repl.h — the messages of replication and of the coordinator's admin
 * requests (protocol 1.3).  Same framing as proto.h: a 1-byte type, a u32
 * payload length, the payload in buf.h's encoding; pure functions over
 * memory.  docs/protocol.md has them byte by byte.
 *
 * Replication runs on the primary's client port: a standby connects with
 * mutual TLS and HELLO role ROLE_STANDBY (its certificate name must be on
 * the primary's allowed_standbys), then
 *
 *   standby                          primary
 *   REPL_START{end, epochs}  ---->
 *                            <----   REPL_START_OK{start, cut_to, flags}
 *                            <----   WAL_DATA{pos, bytes} ...
 *   WAL_ACK{durable}         ---->   (after each fdatasync of what came)
 *
 * Admin: a client whose HELLO says ROLE_ADMIN may talk to a standby too
 * (STATUS, INDOUBT, REPLICATION; PROMOTE if its certificate name is on
 * admin_clients).
 */
#ifndef DTX_PROTO_REPL_H
#define DTX_PROTO_REPL_H

#include "buf.h"
#include "frame.h"

#include <stdbool.h>
#include <stdint.h>

enum proto_repl_msg {
    MSG_REPL_START = 'J',
    MSG_REPL_START_OK = 'j',
    MSG_WAL_DATA = 'w',
    MSG_WAL_ACK = 'a',
    MSG_PROMOTE = 'P',
    MSG_ADMIN_OK = 'k',
    MSG_REPLICATION = 'V',
    MSG_REPLICATION_REPLY = 'v',
};

/* HELLO roles beyond ROLE_CLIENT and ROLE_COORDINATOR (proto.h) */
#define ROLE_ADMIN   3 /* status, indoubt, replication, promote: any role serves it */
#define ROLE_STANDBY 4 /* a standby coordinator asking for the log */

/* SQLSTATE of a standby's refusal of a client that wants the primary:
 * libdtx tries its next host on it. */
#define PROTO_NOT_PRIMARY_SQLSTATE "57P03"

#define REPL_MAX_EPOCHS 1024

/* A primary sends a keep-alive WAL_DATA at least a second apart, and a
 * standby of 1.4 acknowledges each: either side hearing nothing from the
 * other for this long takes it as gone. */
#define REPL_SILENCE_MS 5000

/* REPL_START: u64 end (where the standby's log ends; 0: empty), u16 n,
 * {u64 epoch, u64 lsn, u64 instance}[n] (the epochs begun in its log,
 * oldest first: where each EPOCH record starts, and who claimed it), then
 * (1.4, optional) str member: the standby's [ha] member name, "" without */
typedef struct proto_repl_start {
    uint64_t end;
    uint16_t n;
    uint64_t *epoch, *lsn, *instance; /* heap arrays of n, freed by proto_repl_start_clear */
    const char *member;               /* into the frame; NULL: absent (encoded: left out) */
} proto_repl_start;

/* REPL_START_OK flags */
#define REPL_MAY_GO_ALONE 0x01 /* the primary may commit without this standby after a timeout */

/* REPL_START_OK: u64 start (the first WAL_DATA's position), u64 cut_to (0:
 * keep your log; else cut it back to this LSN first: it forked), u8 flags,
 * u64 epoch (the primary's) */
typedef struct proto_repl_start_ok {
    uint64_t start;
    uint64_t cut_to;
    uint8_t flags;
    uint64_t epoch;
} proto_repl_start_ok;

/* WAL_DATA: u64 pos, u64 primary_durable, u64 sent_ms (the primary's wall
 * clock), u8 synchronous (the primary counts on this standby), then the
 * rest of the frame is bytes [pos, pos + len) of the log (len may be 0: a
 * keep-alive) */
typedef struct proto_wal_data {
    uint64_t pos;
    uint64_t primary_durable;
    uint64_t sent_ms;
    uint8_t synchronous;
    const void *bytes; /* decoded: points into the frame */
    size_t len;
} proto_wal_data;

/* REPLICATION_REPLY: u8 role (1 primary, 2 standby), u64 epoch, str name,
 * str peer, str state, u64 sent, u64 flushed, u64 primary_lsn, u64
 * lag_bytes, u64 lag_ms, u8 synchronous, u8 sure, str detail, then (1.4,
 * optional; empty strings without [ha]) str ha_leader (who holds the
 * leader key), u64 ha_lease_ms (this primary's lease left; all ones:
 * none), str ha_sync (the synchronous standby etcd records), str ha_etcd
 * (whether etcd answers, and which endpoint) */
typedef struct proto_replication {
    uint8_t role;
    uint64_t epoch;
    const char *name, *peer, *state;
    uint64_t sent, flushed, primary_lsn, lag_bytes, lag_ms;
    uint8_t synchronous, sure;
    const char *detail;
    const char *ha_leader; /* NULL: the [ha] fields are absent (encoded: left out) */
    int64_t ha_lease_ms;   /* -1: this instance holds no lease */
    const char *ha_sync, *ha_etcd;
} proto_replication;

bool proto_put_repl_start(wbuf *w, const proto_repl_start *m) __attribute__((warn_unused_result));
bool proto_put_repl_start_ok(wbuf *w, const proto_repl_start_ok *m)
    __attribute__((warn_unused_result));
bool proto_put_wal_data(wbuf *w, const proto_wal_data *m) __attribute__((warn_unused_result));
bool proto_put_wal_ack(wbuf *w, uint64_t durable) __attribute__((warn_unused_result));
bool proto_put_promote(wbuf *w, bool force) __attribute__((warn_unused_result));
bool proto_put_admin_ok(wbuf *w, const char *message) __attribute__((warn_unused_result));
bool proto_put_replication(wbuf *w) __attribute__((warn_unused_result));
bool proto_put_replication_reply(wbuf *w, const proto_replication *m)
    __attribute__((warn_unused_result));

/* Decoders: false on a malformed payload.  Strings and bytes point into the
 * frame (valid while it is); proto_repl_start's arrays are allocated. */
bool proto_get_repl_start(const frame_view *f, proto_repl_start *m)
    __attribute__((warn_unused_result));
void proto_repl_start_clear(proto_repl_start *m);
bool proto_get_repl_start_ok(const frame_view *f, proto_repl_start_ok *m)
    __attribute__((warn_unused_result));
bool proto_get_wal_data(const frame_view *f, proto_wal_data *m) __attribute__((warn_unused_result));
bool proto_get_wal_ack(const frame_view *f, uint64_t *durable) __attribute__((warn_unused_result));
bool proto_get_promote(const frame_view *f, bool *force) __attribute__((warn_unused_result));
bool proto_get_admin_ok(const frame_view *f, const char **message)
    __attribute__((warn_unused_result));
bool proto_get_replication_reply(const frame_view *f, proto_replication *m)
    __attribute__((warn_unused_result));

#endif
