/*
 * fuzz_proto.c — the frame decoder and every message decoder of the wire
 * protocol, both directions: client -> coordinator, coordinator -> client,
 * coordinator <-> participant, standby <-> primary and admin
 * (common/frame.c, common/proto.c, common/proto_repl.c).
 *
 * The input is a byte stream as a peer sends it.  Frames are cut off it with
 * frame_decode, as conn.c does, against a maximum payload; each payload is
 * copied into an allocation of its exact size (so that a decoder reading
 * past its frame is caught even when more bytes follow in the input) and
 * handed to the decoder of its type.  Checks:
 *
 *   - frame_decode: FRAME_OK consumes exactly header + length bytes within
 *     what is available; FRAME_NEED_MORE asks for more than is available;
 *     FRAME_TOO_LARGE only for a length above the maximum;
 *   - a message that decodes is re-encoded with its proto_put_* encoder,
 *     and the frame must come out byte for byte as it came in: the
 *     encoding is canonical (the two exceptions, a HELLO that spells out a
 *     zero instance and a HELLO_OK that spells out zero slots, both of
 *     which the encoder leaves off, are allowed for);
 *   - a tagged frame's tag (proto_peek_tag) is the one its decoder read.
 */
#include "fuzz.h"

#include "buf.h"
#include "frame.h"
#include "proto.h"
#include "proto_repl.h"

#define FUZZ_MAX_PAYLOAD (1u << 16)

/* The re-encoded frame in w must equal the one received. */
static void
same_frame(wbuf *w, bool ok, const frame_view *f)
{
    FUZZ_CHECK(ok && wbuf_ok(w));
    frame_view g;
    size_t used;
    FUZZ_CHECK(frame_decode(w->data, w->len, UINT32_MAX, &g, &used) == FRAME_OK);
    FUZZ_CHECK(used == w->len);
    FUZZ_CHECK(g.type == f->type);
    FUZZ_CHECK(g.len == f->len);
    FUZZ_CHECK(f->len == 0 || memcmp(g.payload, f->payload, f->len) == 0);
}

static void
check_tag(const frame_view *f, uint32_t tag)
{
    uint32_t t;
    FUZZ_CHECK(proto_peek_tag(f, &t) && t == tag);
}

/* Client -> coordinator, and the empty requests. */
static bool
client_request(const frame_view *f, wbuf *w)
{
    const char *gid;
    proto_stmt st;
    proto_stmts ss;
    switch (f->type) {
    case MSG_EXEC:
        if (proto_get_exec(f, &st)) {
            same_frame(w, proto_put_exec(w, &st), f);
            proto_stmt_clear(&st);
        }
        return true;
    case MSG_ONESHOT:
        if (proto_get_oneshot(f, &ss)) {
            same_frame(w, proto_put_oneshot(w, &ss), f);
            proto_stmts_clear(&ss);
        }
        return true;
    case MSG_ONESHOT_RESERVED:
        if (proto_get_oneshot_reserved(f, &gid, &ss)) {
            FUZZ_CHECK(gid[0] != '\0');
            same_frame(w, proto_put_oneshot_reserved(w, gid, &ss), f);
            proto_stmts_clear(&ss);
        }
        return true;
    case MSG_BEGIN_RESERVED:
        if (proto_get_begin_reserved(f, &gid))
            same_frame(w, proto_put_begin_reserved(w, gid), f);
        return true;
    case MSG_STATUS:
        if (proto_get_status(f, &gid))
            same_frame(w, proto_put_status(w, gid), f);
        return true;
    case MSG_BEGIN:
    case MSG_COMMIT:
    case MSG_ROLLBACK:
    case MSG_INDOUBT:
        if (f->len == 0)
            same_frame(w, proto_put_empty(w, f->type), f);
        return true;
    default:
        return false;
    }
}

/* Coordinator -> client. */
static bool
client_reply(const frame_view *f, wbuf *w)
{
    const char *gid;
    proto_result res;
    proto_outcome_msg out;
    proto_status_reply sr;
    proto_indoubt_reply ir;
    switch (f->type) {
    case MSG_BEGIN_OK:
        if (proto_get_begin_ok(f, &gid))
            same_frame(w, proto_put_begin_ok(w, gid), f);
        return true;
    case MSG_NEXT_GID:
        if (proto_get_next_gid(f, &gid)) {
            FUZZ_CHECK(gid[0] != '\0');
            same_frame(w, proto_put_next_gid(w, gid), f);
        }
        return true;
    case MSG_RESULT: /* also participant -> coordinator */
        if (proto_get_result(f, &res)) {
            check_tag(f, res.tag);
            FUZZ_CHECK(res.nrows == 0 || res.ncols > 0);
            for (uint64_t i = 0; i < (uint64_t)res.nrows * res.ncols; i++)
                FUZZ_CHECK(res.values[i] == NULL || strlen(res.values[i]) == res.lengths[i]);
            same_frame(w, proto_put_result(w, &res), f);
            proto_result_clear(&res);
        }
        return true;
    case MSG_OUTCOME:
        if (proto_get_outcome(f, &out)) {
            FUZZ_CHECK(out.outcome <= OUTCOME_HEURISTIC);
            FUZZ_CHECK(strcmp(proto_outcome_name((proto_outcome)out.outcome), "?") != 0);
            same_frame(w, proto_put_outcome(w, &out), f);
        }
        return true;
    case MSG_STATUS_REPLY:
        if (proto_get_status_reply(f, &sr))
            same_frame(w, proto_put_status_reply(w, &sr), f);
        return true;
    case MSG_INDOUBT_REPLY:
        if (proto_get_indoubt_reply(f, &ir)) {
            same_frame(w, proto_put_indoubt_reply(w, &ir), f);
            proto_indoubt_reply_clear(&ir);
        }
        return true;
    default:
        return false;
    }
}

/* Coordinator <-> participant. */
static bool
participant_msg(const frame_view *f, wbuf *w)
{
    proto_work wk;
    proto_finish fin;
    proto_list li;
    proto_cancel ca;
    proto_list_reply lr;
    proto_done d;
    switch (f->type) {
    case MSG_WORK:
        if (proto_get_work(f, &wk)) {
            check_tag(f, wk.tag);
            same_frame(w, proto_put_work(w, &wk), f);
            proto_work_clear(&wk);
        }
        return true;
    case MSG_FINISH:
        if (proto_get_finish(f, &fin)) {
            check_tag(f, fin.tag);
            same_frame(w, proto_put_finish(w, &fin), f);
        }
        return true;
    case MSG_LIST:
        if (proto_get_list(f, &li)) {
            check_tag(f, li.tag);
            same_frame(w, proto_put_list(w, &li), f);
        }
        return true;
    case MSG_CANCEL:
        if (proto_get_cancel(f, &ca)) {
            check_tag(f, ca.tag);
            same_frame(w, proto_put_cancel(w, &ca), f);
        }
        return true;
    case MSG_LIST_REPLY:
        if (proto_get_list_reply(f, &lr)) {
            check_tag(f, lr.tag);
            same_frame(w, proto_put_list_reply(w, &lr), f);
            proto_list_reply_clear(&lr);
        }
        return true;
    case MSG_DONE:
        if (proto_get_done(f, &d)) {
            check_tag(f, d.tag);
            FUZZ_CHECK(strcmp(proto_done_status_name((done_status)d.status), "?") != 0);
            same_frame(w, proto_put_done(w, &d), f);
        }
        return true;
    default:
        return false;
    }
}

/* Start-up and errors, either direction. */
static bool
startup_msg(const frame_view *f, wbuf *w)
{
    proto_hello h;
    proto_hello_ok ho;
    proto_error e;
    switch (f->type) {
    case MSG_HELLO:
        if (proto_get_hello(f, &h)) {
            /* an instance of 0 spelt out on the wire is not written back */
            bool zero_written = h.instance == 0 && f->len > 0 &&
                                f->len == 4 + 2 + 2 + 1 + 4 + strlen(h.name) + 1 + 8 + 8;
            bool ok = proto_put_hello(w, &h);
            if (zero_written) {
                FUZZ_CHECK(ok && w->len == FRAME_HEADER_SIZE + f->len - 8);
                FUZZ_CHECK(memcmp(w->data + FRAME_HEADER_SIZE, f->payload, f->len - 8) == 0);
            } else {
                same_frame(w, ok, f);
            }
        }
        return true;
    case MSG_HELLO_OK:
        if (proto_get_hello_ok(f, &ho)) {
            /* slots of 0 spelt out on the wire (1.6) is not written back */
            bool zero_written =
                ho.slots == 0 && f->len == 2 + 2 + 4 + strlen(ho.server_name) + 1 + 8 + 4;
            bool ok = proto_put_hello_ok(w, &ho);
            if (zero_written) {
                FUZZ_CHECK(ok && w->len == FRAME_HEADER_SIZE + f->len - 4);
                FUZZ_CHECK(memcmp(w->data + FRAME_HEADER_SIZE, f->payload, f->len - 4) == 0);
            } else {
                same_frame(w, ok, f);
            }
        }
        return true;
    case MSG_ERROR:
        if (proto_get_error(f, &e)) {
            check_tag(f, e.tag);
            same_frame(w, proto_put_error(w, &e), f);
        }
        return true;
    default:
        return false;
    }
}

/* Standby <-> primary, and admin. */
static bool
repl_msg(const frame_view *f, wbuf *w)
{
    proto_repl_start rs;
    proto_repl_start_ok ro;
    proto_wal_data wd;
    proto_replication rr;
    uint64_t durable;
    bool force;
    const char *msg;
    switch (f->type) {
    case MSG_REPL_START:
        if (proto_get_repl_start(f, &rs)) {
            FUZZ_CHECK(rs.n <= REPL_MAX_EPOCHS);
            same_frame(w, proto_put_repl_start(w, &rs), f);
            proto_repl_start_clear(&rs);
        }
        return true;
    case MSG_REPL_START_OK:
        if (proto_get_repl_start_ok(f, &ro))
            same_frame(w, proto_put_repl_start_ok(w, &ro), f);
        return true;
    case MSG_WAL_DATA:
        if (proto_get_wal_data(f, &wd)) {
            FUZZ_CHECK(wd.len <= f->len);
            same_frame(w, proto_put_wal_data(w, &wd), f);
        }
        return true;
    case MSG_WAL_ACK:
        if (proto_get_wal_ack(f, &durable))
            same_frame(w, proto_put_wal_ack(w, durable), f);
        return true;
    case MSG_PROMOTE:
        if (proto_get_promote(f, &force))
            same_frame(w, proto_put_promote(w, force), f);
        return true;
    case MSG_ADMIN_OK:
        if (proto_get_admin_ok(f, &msg))
            same_frame(w, proto_put_admin_ok(w, msg), f);
        return true;
    case MSG_REPLICATION:
        if (f->len == 0)
            same_frame(w, proto_put_replication(w), f);
        return true;
    case MSG_REPLICATION_REPLY:
        if (proto_get_replication_reply(f, &rr))
            same_frame(w, proto_put_replication_reply(w, &rr), f);
        return true;
    default:
        return false;
    }
}

static void
decode_one(const frame_view *f)
{
    wbuf w;
    wbuf_init(&w);
    /* a type none of these knows is one nobody sends: peers refuse it
     * before any decoder sees it */
    (void)(client_request(f, &w) || client_reply(f, &w) || participant_msg(f, &w) ||
           startup_msg(f, &w) || repl_msg(f, &w));
    wbuf_free(&w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    size_t pos = 0;
    while (pos < size) {
        frame_view f;
        size_t used = 0;
        size_t avail = size - pos;
        frame_status st = frame_decode(data + pos, avail, FUZZ_MAX_PAYLOAD, &f, &used);
        if (st == FRAME_NEED_MORE) {
            FUZZ_CHECK(used > avail);
            FUZZ_CHECK(avail < FRAME_HEADER_SIZE
                           ? used == FRAME_HEADER_SIZE
                           : used == FRAME_HEADER_SIZE + (size_t)buf_load_u32(data + pos + 1));
            break;
        }
        if (st == FRAME_TOO_LARGE) {
            FUZZ_CHECK(avail >= FRAME_HEADER_SIZE &&
                       buf_load_u32(data + pos + 1) > FUZZ_MAX_PAYLOAD);
            break;
        }
        FUZZ_CHECK(st == FRAME_OK);
        FUZZ_CHECK(used == FRAME_HEADER_SIZE + (size_t)f.len && used <= avail);
        FUZZ_CHECK(f.type == data[pos] && f.payload == data + pos + FRAME_HEADER_SIZE);
        uint8_t *copy = fuzz_memdup(f.payload, f.len);
        f.payload = copy;
        decode_one(&f);
        free(copy);
        pos += used;
    }
    return 0;
}
