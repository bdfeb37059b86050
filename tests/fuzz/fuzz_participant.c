/*
 * fuzz_participant.c — the participant's request checks: what it does with
 * a coordinator's bytes before anything reaches PostgreSQL.
 *
 * The participant's own handlers run (participant/branch.c, resolve.c,
 * peer.c, fence.c; every object but main.o is linked), on one fake
 * coordinator connection: peer_ops (peer.h) is installed by this file
 * instead of server.c.  The input:
 *
 *   byte 0     bit 0: the participant is shutting down
 *   the rest   the frames a coordinator sends on its connection
 *
 * A first frame that is a HELLO is judged by the fence (fence_admit) as
 * server.c would, and when admitted its name and epoch become the
 * connection's; otherwise the connection is coordinator "c1", admitted
 * with epoch 5.  The fence holds c1 at epoch 5 and c2 at epoch 9.  Every
 * other frame goes where server.c sends it: WORK and CANCEL to branch.c,
 * FINISH and LIST to resolve.c; any other type, or a protocol error, ends
 * the connection.  What passes the checks (the decoders, WORK's flags, the
 * fence and epoch, the branch name, the statements a branch may not run)
 * meets a pool that never connects: it waits there, and is dropped when the
 * connection ends (branch_detach_all, resolve_detach_all), as when a
 * coordinator goes away.
 *
 * Checks: every reply is a well-formed DONE (or ERROR) frame; nothing is
 * left over when the connection is gone (no branch, no request: the
 * handlers free what they took, LeakSanitizer sees the rest).
 */
#include "fuzz.h"

#include "branch.h"
#include "fence.h"
#include "frame.h"
#include "log.h"
#include "peer.h"
#include "pgpool.h"
#include "proto.h"
#include "resolve.h"
#include "server.h"
#include "slots.h"

#include <event2/event.h>

#define FUZZ_MAX_PAYLOAD (1u << 16)

struct coord_conn {
    char name[COORD_NAME_MAX + 1];
    uint64_t epoch;
    bool closed;
    branch_set branches;
    resolve_set resolves;
};

static bool shutting_down;
static struct event_base *base;
static pg_pool *pool;
static slots *sl;

static const char *
f_name(const coord_conn *cc)
{
    return cc->name;
}

static uint64_t
f_epoch(const coord_conn *cc)
{
    return cc->epoch;
}

static bool
f_backlogged(const coord_conn *cc)
{
    (void)cc;
    return false;
}

/* Replies: whole frames, each a DONE or an ERROR that decodes. */
static void
f_send(coord_conn *cc, const wbuf *w)
{
    FUZZ_CHECK(!cc->closed);
    size_t pos = 0;
    while (pos < w->len) {
        frame_view f;
        size_t used;
        FUZZ_CHECK(frame_decode(w->data + pos, w->len - pos, UINT32_MAX, &f, &used) == FRAME_OK);
        if (f.type == MSG_DONE) {
            proto_done d;
            FUZZ_CHECK(proto_get_done(&f, &d));
            FUZZ_CHECK(d.sqlstate == NULL || strlen(d.sqlstate) == 5);
        } else {
            proto_error e;
            FUZZ_CHECK(f.type == MSG_ERROR && proto_get_error(&f, &e));
        }
        pos += used;
    }
}

static void
f_close(coord_conn *cc)
{
    FUZZ_CHECK(!cc->closed);
    cc->closed = true;
    branch_detach_all(&cc->branches);
    resolve_detach_all(&cc->resolves);
}

static void
f_protocol_error(coord_conn *cc, const char *msg)
{
    FUZZ_CHECK(msg != NULL && msg[0] != '\0');
    f_close(cc);
}

static void
f_drop(coord_conn *cc, const char *why)
{
    (void)why;
    f_close(cc);
}

static bool
f_shutting_down(void)
{
    return shutting_down;
}

static const peer_ops fuzz_peer_ops = {
    .name = f_name,
    .epoch = f_epoch,
    .backlogged = f_backlogged,
    .send = f_send,
    .protocol_error = f_protocol_error,
    .drop = f_drop,
    .shutting_down = f_shutting_down,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    log_set_level(LOG_LVL_ERROR);
    base = event_base_new();
    FUZZ_CHECK(base != NULL);
    /* a pool that is never started: what asks for a connection waits */
    pool = pool_create(base, "host=/nonexistent dbname=fuzz", 4, 0, 0, 0);
    sl = slots_create(base, 64, 0, 0, 0);
    FUZZ_CHECK(pool != NULL && sl != NULL);
    peer_set_ops(&fuzz_peer_ops);
    /* [roles]: one client of its own, the others (and WORKs naming none)
     * the default's */
    static char *role_clients[] = {"app", "*"}, *role_names[] = {"r_\"app", "r_default"};
    static part_conf conf = {.name = "fuzz",
                             .max_frame = FUZZ_MAX_PAYLOAD,
                             .role_clients = role_clients,
                             .role_names = role_names,
                             .nroles = 2};
    branch_init(pool, sl, &conf);
    resolve_init(pool, sl, FUZZ_MAX_PAYLOAD);
    const char *sqlstate;
    FUZZ_CHECK(fence_recorded("c1", 5, 7, 5, 7, err, sizeof(err), &sqlstate));
    FUZZ_CHECK(fence_recorded("c2", 9, 1, 9, 1, err, sizeof(err), &sqlstate));
    return 0;
}

/* A first HELLO, judged by the fence: the connection's identity if admitted. */
static void
hello(coord_conn *cc, const frame_view *f)
{
    proto_hello h;
    char err[256];
    if (!proto_get_hello(f, &h))
        return;
    if (fence_admit(h.name, h.epoch, h.instance, err, sizeof(err)) == FENCE_ADMIT &&
        strlen(h.name) <= COORD_NAME_MAX) {
        snprintf(cc->name, sizeof(cc->name), "%s", h.name);
        cc->epoch = h.epoch;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    if (size == 0)
        return 0;
    coord_conn cc;
    memset(&cc, 0, sizeof(cc));
    snprintf(cc.name, sizeof(cc.name), "c1");
    cc.epoch = 5;
    shutting_down = data[0] & 1;

    size_t pos = 1;
    bool first = true;
    while (pos < size && !cc.closed) {
        frame_view f;
        size_t used;
        if (frame_decode(data + pos, size - pos, FUZZ_MAX_PAYLOAD, &f, &used) != FRAME_OK)
            break;
        uint8_t *copy = fuzz_memdup(f.payload, f.len);
        f.payload = copy;
        switch (f.type) {
        case MSG_HELLO:
            if (first)
                hello(&cc, &f);
            else
                f_protocol_error(&cc, "unexpected second HELLO");
            break;
        case MSG_WORK:
            branch_on_work(&cc, &cc.branches, &f);
            break;
        case MSG_FINISH:
            resolve_on_finish(&cc, &cc.resolves, &f);
            break;
        case MSG_LIST:
            resolve_on_list(&cc, &cc.resolves, &f);
            break;
        case MSG_CANCEL:
            branch_on_cancel(&cc, &cc.branches, &f);
            break;
        default:
            f_protocol_error(&cc, "unexpected message type");
            break;
        }
        free(copy);
        first = false;
        pos += used;
    }
    if (!cc.closed)
        f_close(&cc);
    FUZZ_CHECK(cc.branches.head == NULL && cc.branches.n == 0 && cc.resolves.head == NULL);
    FUZZ_CHECK(branch_live_count() == 0 && resolve_live_count() == 0);
    return 0;
}
