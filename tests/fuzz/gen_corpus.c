/*
 * gen_corpus.c — writes the seed corpora of the fuzz targets with the
 * project's own encoders: `make fuzz-corpus` runs it as
 *
 *     gen-corpus tests/fuzz/corpus
 *
 * and it (re)writes tests/fuzz/corpus/<target>/<seed> for every target.
 * The seeds are deterministic (the logs' salts are seeded, fuzz_wal.h), so
 * running it again changes nothing unless an encoder changed.
 *
 *   proto        every message, from its proto_put_* encoder, and whole
 *                sessions of each kind of peer
 *   result       the coordinator's replies to libdtx
 *   participant  a coordinator's HELLO and requests (WORK, FINISH, LIST,
 *                CANCEL), admitted and refused ones
 *   wal_scan     log directories written by wal_open/wal_append (clean,
 *                over four segments begun by new epochs, a full segment, a
 *                torn tail, damage in the middle, a missing segment, a
 *                checkpoint's removal, preallocated files)
 *   wal_stream   chunks read from the primaries' logs (wal_reader_next_chunk)
 *                that continue fuzz_wal_stream's standby logs
 *   conninfo     connection strings and DTX* environment values
 *   config       the daemons' configuration files (as docs/configuration.md
 *                shows them), every value type, and lines of values
 */
#include "fuzz.h"
#include "fuzz_wal.h"

#include "buf.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "proto_repl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

static const char *out_root;

static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gen-corpus: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void
put(const char *target, const char *name, const void *p, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", out_root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot create %s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/%s/%s", out_root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
        die("cannot write %s", path);
}

static void
put_str(const char *target, const char *name, const char *s)
{
    put(target, name, s, strlen(s));
}

/* A seed made of a prefix of `pre` bytes and the frames in w. */
static void
put_frames(const char *target, const char *name, const void *pre, size_t prelen, wbuf *w)
{
    if (!wbuf_ok(w))
        die("encoding %s/%s ran out of memory", target, name);
    uint8_t *buf = malloc(prelen + w->len + 1);
    if (buf == NULL)
        die("out of memory");
    if (prelen)
        memcpy(buf, pre, prelen);
    memcpy(buf + prelen, w->data, w->len);
    put(target, name, buf, prelen + w->len);
    free(buf);
    wbuf_reset(w);
}

#define ENC(call)                                                                                  \
    do {                                                                                           \
        if (!(call))                                                                               \
            die("%s failed", #call);                                                               \
    } while (0)

/* ---- messages ------------------------------------------------------------ */

static const char *params2[] = {"30", NULL};
static const char *params1[] = {"alice"};

static proto_stmt stmt_update = {
    .participant = "bank_a",
    .sql = "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
    .nparams = 2,
    .params = params2,
};
static proto_stmt stmt_select = {
    .participant = "bank_b",
    .sql = "SELECT id, balance FROM accounts WHERE id = $1",
    .nparams = 1,
    .params = params1,
};

static void
enc_hello(wbuf *w, uint8_t role, const char *name, uint64_t epoch, uint64_t instance)
{
    proto_hello h = {.magic = PROTO_MAGIC,
                     .major = PROTO_MAJOR,
                     .minor = PROTO_MINOR,
                     .role = role,
                     .name = name,
                     .epoch = epoch,
                     .instance = instance};
    ENC(proto_put_hello(w, &h));
}

static void
enc_result(wbuf *w, uint32_t tag)
{
    const char *names[] = {"id", "balance"};
    uint32_t types[] = {25, 20};
    const char *values[] = {"alice", "70", "bob", NULL};
    proto_result r = {.tag = tag,
                      .participant = "bank_b",
                      .command_tag = "SELECT 2",
                      .affected = 2,
                      .ncols = 2,
                      .nrows = 2,
                      .col_names = names,
                      .col_types = types,
                      .values = values};
    ENC(proto_put_result(w, &r));
}

static void
enc_error(wbuf *w, uint32_t tag)
{
    proto_error e = {.tag = tag,
                     .sqlstate = "23514",
                     .message = "new row for relation \"accounts\" violates check constraint",
                     .detail = "Failing row contains (alice, -10).",
                     .hint = NULL,
                     .participant = "bank_a"};
    ENC(proto_put_error(w, &e));
}

static void
enc_indoubt(wbuf *w)
{
    proto_indoubt_entry e[] = {
        {.gid = "dtx:c1:5:17", .age_ms = 1500, .participants = "bank_a,bank_b", .state = "commit"},
        {.gid = "dtx:c1:5:18", .age_ms = 20, .participants = "", .state = "preparing"},
    };
    proto_indoubt_reply r = {.n = 2, .entries = e};
    ENC(proto_put_indoubt_reply(w, &r));
}

static void
enc_replication(wbuf *w)
{
    proto_replication m = {.role = 1,
                           .epoch = 5,
                           .name = "c1",
                           .peer = "c1-standby",
                           .state = "streaming",
                           .sent = 0x10040,
                           .flushed = 0x10040,
                           .primary_lsn = 0x10040,
                           .lag_bytes = 0,
                           .lag_ms = 3,
                           .synchronous = 1,
                           .sure = 1,
                           .detail = ""};
    ENC(proto_put_replication_reply(w, &m));
}

static void
enc_work(wbuf *w, uint32_t tag, uint64_t epoch, const char *branch, uint8_t flags, int nstmts)
{
    proto_stmt s[2] = {stmt_update, stmt_select};
    s[0].participant = s[1].participant = "";
    proto_work m = {.tag = tag,
                    .epoch = epoch,
                    .branch = branch,
                    .flags = flags,
                    .body = {.n = (uint16_t)nstmts, .stmts = s}};
    ENC(proto_put_work(w, &m));
}

static void
enc_done(wbuf *w, uint32_t tag, uint8_t status, uint64_t xid, const char *sqlstate, const char *msg)
{
    proto_done d = {.tag = tag,
                    .status = status,
                    .xid = xid,
                    .xact_status = status == DONE_NOT_FOUND ? XACT_COMMITTED : XACT_UNKNOWN,
                    .sqlstate = sqlstate,
                    .message = msg};
    ENC(proto_put_done(w, &d));
}

/* ---- proto --------------------------------------------------------------- */

static void
gen_proto(void)
{
    const char *T = "proto";
    wbuf w;
    wbuf_init(&w);
    proto_stmts two = {.n = 2, .stmts = (proto_stmt[]){stmt_update, stmt_select}};

    /* start-up */
    enc_hello(&w, ROLE_CLIENT, "orders", 0, 0);
    put_frames(T, "hello-client", NULL, 0, &w);
    enc_hello(&w, ROLE_COORDINATOR, "c1", 5, 0x1122334455667788ull);
    put_frames(T, "hello-coordinator", NULL, 0, &w);
    proto_hello_ok ho = {
        .major = PROTO_MAJOR, .minor = PROTO_MINOR, .server_name = "c1", .epoch = 5};
    ENC(proto_put_hello_ok(&w, &ho));
    put_frames(T, "hello-ok", NULL, 0, &w);
    ho.slots = 64; /* a participant's budget (1.6) */
    ENC(proto_put_hello_ok(&w, &ho));
    put_frames(T, "hello-ok-slots", NULL, 0, &w);
    enc_error(&w, 0);
    put_frames(T, "error", NULL, 0, &w);

    /* client -> coordinator */
    ENC(proto_put_empty(&w, MSG_BEGIN));
    put_frames(T, "begin", NULL, 0, &w);
    ENC(proto_put_exec(&w, &stmt_update));
    put_frames(T, "exec", NULL, 0, &w);
    ENC(proto_put_oneshot(&w, &two));
    put_frames(T, "oneshot", NULL, 0, &w);
    ENC(proto_put_oneshot_reserved(&w, "dtx:c1:5:19", &two));
    put_frames(T, "oneshot-reserved", NULL, 0, &w);
    ENC(proto_put_begin_reserved(&w, "dtx:c1:5:19"));
    put_frames(T, "begin-reserved", NULL, 0, &w);
    ENC(proto_put_status(&w, "dtx:c1:5:17"));
    put_frames(T, "status", NULL, 0, &w);

    /* coordinator -> client */
    ENC(proto_put_begin_ok(&w, "dtx:c1:5:17"));
    put_frames(T, "begin-ok", NULL, 0, &w);
    ENC(proto_put_next_gid(&w, "dtx:c1:5:18"));
    put_frames(T, "next-gid", NULL, 0, &w);
    enc_result(&w, 0);
    put_frames(T, "result", NULL, 0, &w);
    proto_outcome_msg om = {.outcome = OUTCOME_COMMITTED, .gid = "dtx:c1:5:17"};
    ENC(proto_put_outcome(&w, &om));
    put_frames(T, "outcome", NULL, 0, &w);
    proto_status_reply sr = {.outcome = OUTCOME_HEURISTIC,
                             .gid = "dtx:c1:5:17",
                             .detail = "bank_b: rolled back by someone else"};
    ENC(proto_put_status_reply(&w, &sr));
    put_frames(T, "status-reply", NULL, 0, &w);
    enc_indoubt(&w);
    put_frames(T, "indoubt-reply", NULL, 0, &w);

    /* coordinator <-> participant */
    enc_work(&w, 7, 5, "dtx:c1:5:17:bank_a", WORK_OPEN | WORK_PREPARE, 2);
    put_frames(T, "work", NULL, 0, &w);
    proto_finish fin = {
        .tag = 8, .epoch = 5, .branch = "dtx:c1:5:17:bank_a", .commit = true, .xid = 741};
    ENC(proto_put_finish(&w, &fin));
    put_frames(T, "finish", NULL, 0, &w);
    proto_list li = {.tag = 9, .epoch = 5, .prefix = "dtx:c1:"};
    ENC(proto_put_list(&w, &li));
    put_frames(T, "list", NULL, 0, &w);
    proto_cancel ca = {.tag = 10, .epoch = 5, .branch = "dtx:c1:5:17:bank_a"};
    ENC(proto_put_cancel(&w, &ca));
    put_frames(T, "cancel", NULL, 0, &w);
    proto_list_entry le[] = {
        {.gid = "dtx:c1:4:3:bank_a", .xid = 700, .prepared_ms = 1700000000000ull}};
    proto_list_reply lr = {.tag = 9, .n = 1, .entries = le};
    ENC(proto_put_list_reply(&w, &lr));
    put_frames(T, "list-reply", NULL, 0, &w);
    enc_done(&w, 7, DONE_PREPARED, 741, NULL, NULL);
    put_frames(T, "done", NULL, 0, &w);
    enc_done(&w, 8, DONE_ERROR, 0, "40001", "could not serialize access");
    put_frames(T, "done-error", NULL, 0, &w);

    /* standby <-> primary, admin */
    uint64_t ep[] = {1, 2}, lsn[] = {0x40, 0x10040}, inst[] = {11, 12};
    proto_repl_start rs = {.end = 0x10080, .n = 2, .epoch = ep, .lsn = lsn, .instance = inst};
    ENC(proto_put_repl_start(&w, &rs));
    put_frames(T, "repl-start", NULL, 0, &w);
    proto_repl_start_ok ro = {
        .start = 0x10080, .cut_to = 0, .flags = REPL_MAY_GO_ALONE, .epoch = 2};
    ENC(proto_put_repl_start_ok(&w, &ro));
    put_frames(T, "repl-start-ok", NULL, 0, &w);
    proto_wal_data wd = {.pos = 0x10080,
                         .primary_durable = 0x100c0,
                         .sent_ms = 1700000000000ull,
                         .synchronous = 1,
                         .bytes = "0123456789abcdef",
                         .len = 16};
    ENC(proto_put_wal_data(&w, &wd));
    put_frames(T, "wal-data", NULL, 0, &w);
    ENC(proto_put_wal_ack(&w, 0x100c0));
    put_frames(T, "wal-ack", NULL, 0, &w);
    ENC(proto_put_promote(&w, true));
    put_frames(T, "promote", NULL, 0, &w);
    ENC(proto_put_admin_ok(&w, "promoted: epoch 3"));
    put_frames(T, "admin-ok", NULL, 0, &w);
    ENC(proto_put_replication(&w));
    put_frames(T, "replication", NULL, 0, &w);
    enc_replication(&w);
    put_frames(T, "replication-reply", NULL, 0, &w);

    /* sessions */
    enc_hello(&w, ROLE_CLIENT, "orders", 0, 0);
    ENC(proto_put_empty(&w, MSG_BEGIN));
    ENC(proto_put_exec(&w, &stmt_update));
    ENC(proto_put_exec(&w, &stmt_select));
    ENC(proto_put_empty(&w, MSG_COMMIT));
    ENC(proto_put_status(&w, "dtx:c1:5:17"));
    ENC(proto_put_empty(&w, MSG_INDOUBT));
    put_frames(T, "session-client", NULL, 0, &w);
    ENC(proto_put_hello_ok(&w, &ho));
    ENC(proto_put_begin_ok(&w, "dtx:c1:5:17"));
    enc_result(&w, 0);
    enc_error(&w, 0);
    ENC(proto_put_outcome(&w, &om));
    put_frames(T, "session-coordinator", NULL, 0, &w);
    enc_hello(&w, ROLE_COORDINATOR, "c1", 5, 7);
    enc_work(&w, 1, 5, "dtx:c1:5:17:bank_a", WORK_OPEN, 1);
    enc_done(&w, 1, DONE_OK, 0, NULL, NULL);
    ENC(proto_put_finish(&w, &fin));
    enc_done(&w, 8, DONE_OK, 0, NULL, NULL);
    put_frames(T, "session-participant", NULL, 0, &w);
    enc_hello(&w, ROLE_STANDBY, "c1", 2, 12);
    ENC(proto_put_repl_start(&w, &rs));
    ENC(proto_put_repl_start_ok(&w, &ro));
    ENC(proto_put_wal_data(&w, &wd));
    ENC(proto_put_wal_ack(&w, 0x100c0));
    put_frames(T, "session-standby", NULL, 0, &w);
    wbuf_free(&w);
}

/* ---- result -------------------------------------------------------------- */

static void
gen_result(void)
{
    const char *T = "result";
    wbuf w;
    wbuf_init(&w);
    ENC(proto_put_begin_ok(&w, "dtx:c1:5:17"));
    put_frames(T, "begin-ok", NULL, 0, &w);
    enc_result(&w, 0);
    put_frames(T, "result", NULL, 0, &w);
    proto_result empty = {.command_tag = "UPDATE 1", .affected = 1, .participant = "bank_a"};
    ENC(proto_put_result(&w, &empty));
    put_frames(T, "result-update", NULL, 0, &w);
    enc_error(&w, 0);
    put_frames(T, "error", NULL, 0, &w);
    proto_outcome_msg om = {.outcome = OUTCOME_UNKNOWN, .gid = "dtx:c1:5:17"};
    ENC(proto_put_outcome(&w, &om));
    put_frames(T, "outcome", NULL, 0, &w);
    proto_status_reply sr = {.outcome = OUTCOME_COMMITTED, .gid = "dtx:c1:5:17", .detail = ""};
    ENC(proto_put_status_reply(&w, &sr));
    put_frames(T, "status-reply", NULL, 0, &w);
    enc_indoubt(&w);
    put_frames(T, "indoubt-reply", NULL, 0, &w);
    ENC(proto_put_admin_ok(&w, "promoted"));
    put_frames(T, "admin-ok", NULL, 0, &w);
    enc_replication(&w);
    put_frames(T, "replication-reply", NULL, 0, &w);
    ENC(proto_put_next_gid(&w, "dtx:c1:5:18"));
    put_frames(T, "next-gid", NULL, 0, &w);
    ENC(proto_put_begin_ok(&w, "dtx:c1:5:17"));
    enc_result(&w, 0);
    enc_result(&w, 0);
    om.outcome = OUTCOME_COMMITTED;
    ENC(proto_put_outcome(&w, &om));
    put_frames(T, "oneshot-replies", NULL, 0, &w);
    wbuf_free(&w);
}

/* ---- participant --------------------------------------------------------- */

static void
gen_participant(void)
{
    const char *T = "participant";
    const uint8_t run = 0, closing = 1;
    const char *br = "dtx:c1:5:17:bank_a";
    wbuf w;
    wbuf_init(&w);

    enc_hello(&w, ROLE_COORDINATOR, "c1", 5, 7);
    enc_work(&w, 1, 5, br, WORK_OPEN, 2);
    enc_work(&w, 2, 5, br, WORK_PREPARE, 0);
    proto_cancel ca = {.tag = 3, .epoch = 5, .branch = br};
    ENC(proto_put_cancel(&w, &ca));
    put_frames(T, "open-prepare-cancel", &run, 1, &w);

    enc_work(&w, 1, 5, br, WORK_OPEN | WORK_PREPARE, 2);
    proto_finish fin = {.tag = 2, .epoch = 5, .branch = br, .commit = true, .xid = 741};
    ENC(proto_put_finish(&w, &fin));
    proto_list li = {.tag = 3, .epoch = 5, .prefix = "dtx:c1:"};
    ENC(proto_put_list(&w, &li));
    put_frames(T, "oneshot-finish-list", &run, 1, &w);

    enc_work(&w, 1, 5, br, WORK_ROLLBACK, 0);
    put_frames(T, "rollback-unknown", &closing, 1, &w);

    enc_work(&w, 1, 4, br, WORK_OPEN, 1);
    enc_work(&w, 2, 5, "dtx:c2:9:1:bank_a", WORK_OPEN, 1);
    enc_work(&w, 3, 5, "dtx:c1:5:17:bank a", WORK_OPEN, 1);
    enc_work(&w, 4, 5, br, 0x40, 0);
    enc_work(&w, 5, 5, br, WORK_PREPARE | WORK_COMMIT, 0);
    put_frames(T, "refused", &run, 1, &w);

    proto_stmt bad[] = {
        {.participant = "", .sql = "/* c */ COMMIT", .nparams = 0},
        {.participant = "", .sql = "-- x\nprepare transaction 'x'", .nparams = 0},
        {.participant = "", .sql = "ROLLBACK TO SAVEPOINT s", .nparams = 0},
        {.participant = "", .sql = "copy t from stdin", .nparams = 0},
    };
    proto_work wk = {
        .tag = 1, .epoch = 5, .branch = br, .flags = WORK_OPEN, .body = {.n = 4, .stmts = bad}};
    ENC(proto_put_work(&w, &wk));
    put_frames(T, "statements", &run, 1, &w);

    /* session state, and the client name of 1.5 ([roles]) */
    proto_stmt session[] = {
        {.participant = "", .sql = "SET LOCAL work_mem = '64MB'", .nparams = 0},
        {.participant = "", .sql = "set search_path = x", .nparams = 0},
        {.participant = "", .sql = "SELECT pg_advisory_lock(1)", .nparams = 0},
        {.participant = "", .sql = "create temp table t (a int)", .nparams = 0},
    };
    proto_work ws = {.tag = 1,
                     .epoch = 5,
                     .branch = br,
                     .flags = WORK_OPEN | WORK_PREPARE,
                     .body = {.n = 1, .stmts = session},
                     .client = "app"};
    ENC(proto_put_work(&w, &ws));
    ws.tag = 2;
    ws.branch = "dtx:c1:5:18:bank_a";
    ws.client = "someone-else";
    ws.body.n = 4;
    ENC(proto_put_work(&w, &ws));
    put_frames(T, "session-roles", &run, 1, &w);

    enc_hello(&w, ROLE_COORDINATOR, "c2", 9, 1);
    enc_work(&w, 1, 9, "dtx:c2:9:1:bank_a", WORK_OPEN, 1);
    ca.tag = 2;
    ca.epoch = 9;
    ca.branch = "dtx:c2:9:1:bank_a";
    ENC(proto_put_cancel(&w, &ca));
    put_frames(T, "hello-c2", &run, 1, &w);
    wbuf_free(&w);
}

/* ---- WAL ----------------------------------------------------------------- */

/* The segment files of dir as a fuzz_wal_scan input (trailing zeros cut). */
static void
put_log(const char *name, const char *dir, uint8_t flags, const char *drop_name,
        void (*edit)(uint8_t *seg, size_t *len, uint64_t segno))
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    uint64_t *segs = NULL;
    size_t n = 0;
    char err[256];
    if (dfd < 0 || !wal_seg_list(dfd, &segs, &n, err, sizeof(err)) || n == 0)
        die("cannot list %s", dir);
    size_t cap = 2 + n * (FW_SEGSIZE + FUZZ_SPLIT_LEN), len = 2;
    uint8_t *out = malloc(cap), *seg = malloc(FW_SEGSIZE);
    if (out == NULL || seg == NULL)
        die("out of memory");
    out[0] = flags;
    out[1] = (uint8_t)segs[0];
    for (size_t i = 0; i < n; i++) {
        size_t got;
        bool missing;
        if (!wal_seg_read(dfd, segs[i], seg, FW_SEGSIZE, &got, &missing, err, sizeof(err)))
            die("%s", err);
        while (got > 0 && seg[got - 1] == 0)
            got--;
        char sname[WAL_SEG_NAME_LEN];
        wal_seg_name(sname, segs[i]);
        if (drop_name && strcmp(drop_name, sname) == 0)
            got = 0;
        if (edit)
            edit(seg, &got, segs[i]);
        if (i > 0) {
            memcpy(out + len, FUZZ_SPLIT, FUZZ_SPLIT_LEN);
            len += FUZZ_SPLIT_LEN;
        }
        memcpy(out + len, seg, got);
        len += got;
    }
    put("wal_scan", name, out, len);
    free(out);
    free(seg);
    free(segs);
    close(dfd);
}

static void
torn(uint8_t *seg, size_t *len, uint64_t segno)
{
    (void)segno;
    /* a write cut short: the last record's second half never arrived */
    if (*len > 100)
        memset(seg + *len - 40, 0, 40);
}

static void
damaged(uint8_t *seg, size_t *len, uint64_t segno)
{
    (void)len;
    if (segno == 0)
        seg[WAL_SEG_HDR_SIZE + WAL_REC_HDR_SIZE + 3] ^= 0x20; /* the first record's payload */
}

static void
gen_wal_scan(const char *tmp)
{
    char dir[512], err[512];
    snprintf(dir, sizeof(dir), "%s/scan", tmp);
    mkdir(dir, 0700);

    wal_t *w = fw_build(dir, FW_LOG_MID, false, err, sizeof(err));
    if (w == NULL)
        die("%s", err);
    wal_close(w);
    put_log("three-records", dir, 0, NULL, NULL);
    put_log("three-records-padded", dir, 1, NULL, NULL);
    put_log("torn-tail", dir, 0, NULL, torn);
    put_log("damaged", dir, 0, NULL, damaged);

    w = fw_build(dir, FW_LOG_SWITCHED, true, err, sizeof(err));
    if (w == NULL)
        die("%s", err);
    wal_close(w);
    put_log("four-segments", dir, 0, NULL, NULL);
    put_log("four-segments-padded", dir, 1, NULL, NULL);
    put_log("missing-middle", dir, 0, "0000000000000002.seg", NULL);

    /* segments ended by a full segment, not by a new epoch */
    w = fw_build(dir, FW_LOG_MID, false, err, sizeof(err));
    if (w == NULL)
        die("%s", err);
    for (unsigned i = 0; i < 9; i++)
        fw_append(w, 7, 8000, 40 + i);
    wal_wait_durable(w, wal_insert_lsn(w));
    wal_close(w);
    put_log("full-segment", dir, 0, NULL, NULL);

    /* a checkpoint removed segments 0 and 1 */
    w = fw_build(dir, FW_LOG_SWITCHED, true, err, sizeof(err));
    if (w == NULL || !wal_checkpoint(w, 2 * FW_SEGSIZE + WAL_SEG_HDR_SIZE, err, sizeof(err)))
        die("%s", err);
    wal_close(w);
    put_log("after-checkpoint", dir, 0, NULL, NULL);
    fw_clear_dir(dir);
    rmdir(dir);
}

static void
gen_wal_stream(const char *tmp)
{
    char sdir[512], pdir[512], err[512], name[64];
    snprintf(sdir, sizeof(sdir), "%s/standby", tmp);
    snprintf(pdir, sizeof(pdir), "%s/primary", tmp);
    mkdir(sdir, 0700);
    mkdir(pdir, 0700);
    for (int log = 0; log < FW_NLOGS; log++) {
        wal_t *s = fw_build(sdir, log, false, err, sizeof(err));
        wal_t *p = fw_build(pdir, log, true, err, sizeof(err));
        if (s == NULL || p == NULL)
            die("%s", err);
        uint64_t from = wal_stream_from(s);
        wal_close(p);
        wal_reader *r = wal_reader_open_dir(pdir, from, err, sizeof(err));
        if (r == NULL)
            die("%s", err);
        /* each chunk alone, where the log continues; then all chunks in
         * one input (each continues the previous one) */
        uint8_t *all = malloc(10 + 64 * (16384 + FUZZ_SPLIT_LEN + WAL_SEG_HDR_SIZE));
        size_t alen = 10;
        if (all == NULL)
            die("out of memory");
        memset(all, 0, 10);
        all[0] = (uint8_t)log;
        uint64_t pos;
        const void *bytes;
        size_t len;
        int rc, k = 0;
        while ((rc = wal_reader_next_chunk(r, &pos, &bytes, &len, 8192)) == 1 && k < 64) {
            uint8_t *one = malloc(10 + len);
            if (one == NULL)
                die("out of memory");
            one[0] = (uint8_t)log;
            one[1] = 2; /* the position given */
            wal_put_u64(one + 2, pos);
            memcpy(one + 10, bytes, len);
            if (k < 3) {
                snprintf(name, sizeof(name), "log%d-chunk%d", log, k);
                put("wal_stream", name, one, 10 + len);
            }
            free(one);
            if (k > 0) {
                memcpy(all + alen, FUZZ_SPLIT, FUZZ_SPLIT_LEN);
                alen += FUZZ_SPLIT_LEN;
            }
            memcpy(all + alen, bytes, len);
            alen += len;
            k++;
        }
        if (rc < 0)
            die("%s", wal_reader_error(r));
        snprintf(name, sizeof(name), "log%d-all", log);
        put("wal_stream", name, all, alen);
        free(all);
        wal_reader_close(r);
        wal_close(s);
    }
    fw_clear_dir(sdir);
    fw_clear_dir(pdir);
    rmdir(sdir);
    rmdir(pdir);
}

/* ---- text ---------------------------------------------------------------- */

static void
gen_conninfo(void)
{
    const char *T = "conninfo";
    put_str(T, "full", "host=coord1 sslrootcert=ca.crt sslcert=app.crt sslkey=app.key");
    put_str(T, "hosts",
            "host=coord1,coord2 port=6543,6544 target_role=any connect_timeout=5 "
            "application_name='order service' sslmode=verify-ca");
    put_str(T, "quoted", "host = '127.0.0.1' application_name='it\\'s' sslcert='a b.crt'");
    put_str(T, "env",
            "sslrootcert=ca.crt" FUZZ_SPLIT "coord1,coord2" FUZZ_SPLIT "6543" FUZZ_SPLIT
            "verify-full" FUZZ_SPLIT "" FUZZ_SPLIT "app.crt" FUZZ_SPLIT "" FUZZ_SPLIT
            "10" FUZZ_SPLIT "orders" FUZZ_SPLIT "primary");
    put_str(T, "refused", "host=a port=1,2,3 sslmode=require");
    put_str(T, "empty", "");
}

/* A fuzz_config seed: the mode byte, then the text. */
static void
put_cfg(const char *name, uint8_t mode, const char *text)
{
    size_t n = strlen(text);
    uint8_t *b = malloc(n + 1);
    if (b == NULL)
        die("out of memory");
    b[0] = mode;
    memcpy(b + 1, text, n);
    put("config", name, b, n + 1);
    free(b);
}

static void
gen_config(void)
{
    put_cfg("participant", 0,
            "[participant]\n"
            "name = bank_a\n"
            "listen_addr = 10.0.0.11\n"
            "listen_port = 6544\n"
            "tls_cert = /etc/dtx/part-a.crt\n"
            "tls_key = /etc/dtx/part-a.key\n"
            "tls_ca = /etc/dtx/ca.crt\n"
            "allowed_coordinators = coord, c1-standby\n"
            "conninfo = \"host=/var/run/postgresql dbname=bank user=dtx\"\n"
            "pool_size = 16\n"
            "max_frame = 16MB\n"
            "pool_wait_timeout = 5s\n"
            "statement_timeout = 30s\n"
            "log_level = warning\n");
    put_cfg("participant-minimal", 0,
            "[participant]\n"
            "listen_port = 6544\n"
            "tls_cert = a.crt\n"
            "tls_key = a.key\n"
            "tls_ca = ca.crt\n"
            "allowed_coordinators = *\n"
            "conninfo = dbname=bank\n");
    put_cfg("coordinator", 1,
            "\xEF\xBB\xBF[coordinator]\n"
            "name = c1\n"
            "listen_port = 6543\n"
            "tls_cert = /etc/dtx/coord.crt\n"
            "tls_key = /etc/dtx/coord.key\n"
            "tls_ca = /etc/dtx/ca.crt\n"
            "allowed_clients = app, admin\n"
            "data_dir = /var/lib/dtx\n"
            "commit_timeout = 30s             ; trailing comment\n"
            "wal_segment_size = 64MB\n"
            "max_frame = \"1MB\"\n"
            "\r\n"
            "[participants]                   # a free-form section\n"
            "bank_a = 10.0.0.11:6544\n"
            "bank_b = [::1]:7002\n"
            "[standby]\n"
            "primary = coord-a:6543\n");
    put_cfg("coordinator-errors", 1,
            "[coordinator]\n"
            "name = c1\n"
            "nmae = c2\n"
            "name = c3\n"
            "[participant]\n");
    put_cfg("every-type", 2,
            "[main]\n"
            "name = \"a \\\"quoted\\\" #name\"\n"
            "count = -5\n"
            "flag = yes\n"
            "timeout = 90\n"
            "wait = 1500ms\n"
            "buffer = 2MB\n"
            "limit = 1TB\n"
            "level = HIGH\n"
            "[more]\n"
            "port = 6543\n"
            "[extra]\n"
            "anything = goes\n"
            "bad-key = x\n");
    put_cfg("values", 3,
            "on\n"
            "500ms\n"
            "10 s\n"
            "5min\n"
            "64kB\n"
            "9223372036854775807\n"
            "db1.example.com:7001\n"
            "[::1]:7002\n"
            "[fe80::1\n"
            "host\n");
}

int
main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: gen-corpus DIR (tests/fuzz/corpus)");
    out_root = argv[1];
    if (mkdir(out_root, 0755) != 0 && errno != EEXIST)
        die("cannot create %s: %s", out_root, strerror(errno));
    log_set_level(LOG_LVL_WARNING);
    char tmp[] = "/tmp/dtx-gen-corpus.XXXXXX";
    if (mkdtemp(tmp) == NULL)
        die("mkdtemp: %s", strerror(errno));
    gen_proto();
    gen_result();
    gen_participant();
    gen_wal_scan(tmp);
    gen_wal_stream(tmp);
    gen_conninfo();
    gen_config();
    rmdir(tmp);
    printf("gen-corpus: seeds written to %s\n", out_root);
    return 0;
}
