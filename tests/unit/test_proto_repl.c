/*
 * test_proto_repl.c — the codec of replication and admin messages
 * (common/proto_repl.c, protocol 1.3 and 1.4): every message encoded and
 * decoded back, and malformed payloads refused — cut at every length (but
 * where a 1.3 message ends: 1.4's fields are optional), with a byte too
 * many, with more epochs than REPL_MAX_EPOCHS, with flag bytes out of
 * range, with broken strings.
 *
 * Payloads under test are copied into allocations of exactly their length,
 * so a decoder that reads one byte too far trips the address sanitizer
 * instead of reading the rest of a larger buffer.
 */
#include "buf.h"
#include "frame.h"
#include "proto.h"
#include "proto_repl.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The only frame in w, checked for type. */
static frame_view
only_frame(const wbuf *w, uint8_t type)
{
    frame_view f;
    size_t used;
    ck_assert_int_eq(frame_decode(w->data, w->len, UINT32_MAX, &f, &used), FRAME_OK);
    ck_assert_uint_eq(used, w->len);
    ck_assert_int_eq(f.type, type);
    return f;
}

/* A decoder under test: true when it accepted the payload (whatever it
 * decoded is released again). */
typedef bool (*decode_fn)(const frame_view *f);

/* f's payload cut to len bytes, plus `extra` bytes of 0x00, in a buffer of
 * exactly that size; decoded with dec. */
static bool
decode_copy(decode_fn dec, const frame_view *f, uint32_t len, uint32_t extra)
{
    uint8_t *p = malloc((size_t)len + extra + 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, f->payload, len);
    memset(p + len, 0, extra);
    frame_view g = {.type = f->type, .len = len + extra, .payload = p};
    bool ok = dec(&g);
    free(p);
    return ok;
}

/* Every proper prefix of f's payload is refused; so is the payload with one
 * byte more; the payload itself is accepted. */
static void
check_strict(decode_fn dec, const frame_view *f)
{
    ck_assert_msg(decode_copy(dec, f, f->len, 0), "'%c': the whole payload refused", f->type);
    for (uint32_t n = 0; n < f->len; n++)
        ck_assert_msg(!decode_copy(dec, f, n, 0), "'%c': accepted %u of %u bytes", f->type, n,
                      f->len);
    ck_assert_msg(!decode_copy(dec, f, f->len, 1), "'%c': accepted a trailing byte", f->type);
}

/* As check_strict for a 1.4 message whose first v13_len bytes are the
 * whole 1.3 message: that prefix is accepted too, every other refused. */
static void
check_strict_v14(decode_fn dec, const frame_view *f, uint32_t v13_len)
{
    ck_assert_msg(decode_copy(dec, f, f->len, 0), "'%c': the whole payload refused", f->type);
    ck_assert_msg(decode_copy(dec, f, v13_len, 0), "'%c': the 1.3 payload refused", f->type);
    for (uint32_t n = 0; n < f->len; n++)
        if (n != v13_len)
            ck_assert_msg(!decode_copy(dec, f, n, 0), "'%c': accepted %u of %u bytes", f->type, n,
                          f->len);
    ck_assert_msg(!decode_copy(dec, f, f->len, 1), "'%c': accepted a trailing byte", f->type);
}

static bool
dec_repl_start(const frame_view *f)
{
    proto_repl_start m;
    bool ok = proto_get_repl_start(f, &m);
    if (ok)
        proto_repl_start_clear(&m);
    else
        ck_assert(m.epoch == NULL && m.lsn == NULL && m.instance == NULL); /* nothing to free */
    return ok;
}

static bool
dec_repl_start_ok(const frame_view *f)
{
    proto_repl_start_ok m;
    return proto_get_repl_start_ok(f, &m);
}

static bool
dec_wal_data(const frame_view *f)
{
    proto_wal_data m;
    return proto_get_wal_data(f, &m);
}

static bool
dec_wal_ack(const frame_view *f)
{
    uint64_t d;
    return proto_get_wal_ack(f, &d);
}

static bool
dec_promote(const frame_view *f)
{
    bool force;
    return proto_get_promote(f, &force);
}

static bool
dec_admin_ok(const frame_view *f)
{
    const char *msg;
    return proto_get_admin_ok(f, &msg);
}

static bool
dec_replication_reply(const frame_view *f)
{
    proto_replication m;
    return proto_get_replication_reply(f, &m);
}

/* ---- round trips --------------------------------------------------------- */

START_TEST(repl_start_round_trip)
{
    wbuf w;
    wbuf_init(&w);
    uint64_t epoch[3] = {1, 2, 0xfffffffffffffff0ull};
    uint64_t lsn[3] = {0, 0x1000, 0x123456789abcdefull};
    uint64_t instance[3] = {0x1111, 0, 0xfedcba9876543210ull};
    proto_repl_start in = {.end = 0x2000000aull,
                           .n = 3,
                           .epoch = epoch,
                           .lsn = lsn,
                           .instance = instance,
                           .member = "Y"};
    ck_assert(proto_put_repl_start(&w, &in));
    frame_view f = only_frame(&w, MSG_REPL_START);
    ck_assert_uint_eq(f.len, 8 + 2 + 3 * 24 + 4 + 2); /* str: u32 length, bytes, NUL */
    proto_repl_start m;
    ck_assert(proto_get_repl_start(&f, &m));
    ck_assert_str_eq(m.member, "Y");
    ck_assert_uint_eq(m.end, 0x2000000aull);
    ck_assert_uint_eq(m.n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(m.epoch[i], epoch[i]);
        ck_assert_uint_eq(m.lsn[i], lsn[i]);
        ck_assert_uint_eq(m.instance[i], instance[i]);
    }
    proto_repl_start_clear(&m);
    ck_assert_ptr_null(m.epoch);
    ck_assert_ptr_null(m.instance);
    ck_assert_uint_eq(m.n, 0);
    check_strict_v14(dec_repl_start, &f, 8 + 2 + 3 * 24);
    /* a 1.3 standby's: no member */
    frame_view f13 = {.type = f.type, .len = 8 + 2 + 3 * 24, .payload = f.payload};
    ck_assert(proto_get_repl_start(&f13, &m));
    ck_assert_ptr_null(m.member);
    proto_repl_start_clear(&m);

    /* an empty standby: end 0, no epochs */
    wbuf_reset(&w);
    proto_repl_start empty = {.end = 0, .n = 0, .member = ""};
    ck_assert(proto_put_repl_start(&w, &empty));
    f = only_frame(&w, MSG_REPL_START);
    ck_assert_uint_eq(f.len, 10 + 5);
    ck_assert(proto_get_repl_start(&f, &m));
    ck_assert_uint_eq(m.end, 0);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_str_eq(m.member, "");
    proto_repl_start_clear(&m);
    check_strict_v14(dec_repl_start, &f, 10);
    wbuf_free(&w);
}
END_TEST

START_TEST(repl_start_ok_round_trip)
{
    wbuf w;
    wbuf_init(&w);
    proto_repl_start_ok in = {
        .start = 0x10000, .cut_to = 0xfff8, .flags = REPL_MAY_GO_ALONE, .epoch = 9};
    ck_assert(proto_put_repl_start_ok(&w, &in));
    frame_view f = only_frame(&w, MSG_REPL_START_OK);
    ck_assert_uint_eq(f.len, 8 + 8 + 1 + 8);
    proto_repl_start_ok m;
    memset(&m, 0xa5, sizeof(m));
    ck_assert(proto_get_repl_start_ok(&f, &m));
    ck_assert_uint_eq(m.start, 0x10000);
    ck_assert_uint_eq(m.cut_to, 0xfff8);
    ck_assert_uint_eq(m.flags, REPL_MAY_GO_ALONE);
    ck_assert_uint_eq(m.epoch, 9);
    check_strict(dec_repl_start_ok, &f);
    wbuf_free(&w);
}
END_TEST

START_TEST(wal_data_round_trip)
{
    wbuf w;
    wbuf_init(&w);
    static const uint8_t log[] = {0xde, 0xad, 0x00, 0xbe, 0xef, 0x00, 0x01};
    proto_wal_data in = {.pos = 0x1fff0,
                         .primary_durable = 0x20000,
                         .sent_ms = 1700000000123ull,
                         .synchronous = 1,
                         .bytes = log,
                         .len = sizeof(log)};
    ck_assert(proto_put_wal_data(&w, &in));
    frame_view f = only_frame(&w, MSG_WAL_DATA);
    ck_assert_uint_eq(f.len, 25 + sizeof(log));
    proto_wal_data m;
    ck_assert(proto_get_wal_data(&f, &m));
    ck_assert_uint_eq(m.pos, 0x1fff0);
    ck_assert_uint_eq(m.primary_durable, 0x20000);
    ck_assert_uint_eq(m.sent_ms, 1700000000123ull);
    ck_assert_uint_eq(m.synchronous, 1);
    ck_assert_uint_eq(m.len, sizeof(log));
    ck_assert_mem_eq(m.bytes, log, sizeof(log));
    ck_assert(m.bytes == f.payload + 25); /* zero-copy */

    /* the log bytes are the rest of the frame: every cut past the fixed
     * fields is a shorter WAL_DATA; a cut inside them is malformed */
    for (uint32_t n = 0; n <= f.len; n++)
        ck_assert_int_eq(decode_copy(dec_wal_data, &f, n, 0), n >= 25);

    /* a keep-alive: no bytes at all */
    wbuf_reset(&w);
    in.len = 0;
    in.bytes = NULL;
    in.synchronous = 0;
    ck_assert(proto_put_wal_data(&w, &in));
    f = only_frame(&w, MSG_WAL_DATA);
    ck_assert_uint_eq(f.len, 25);
    ck_assert(proto_get_wal_data(&f, &m));
    ck_assert_uint_eq(m.len, 0);
    ck_assert_uint_eq(m.synchronous, 0);
    ck_assert_uint_eq(m.pos, 0x1fff0);
    wbuf_free(&w);
}
END_TEST

START_TEST(small_messages_round_trip)
{
    wbuf w;
    wbuf_init(&w);
    frame_view f;

    ck_assert(proto_put_wal_ack(&w, 0x123456789aull));
    f = only_frame(&w, MSG_WAL_ACK);
    ck_assert_uint_eq(f.len, 8);
    uint64_t durable = 0;
    ck_assert(proto_get_wal_ack(&f, &durable));
    ck_assert_uint_eq(durable, 0x123456789aull);
    check_strict(dec_wal_ack, &f);

    for (int force = 0; force <= 1; force++) {
        wbuf_reset(&w);
        ck_assert(proto_put_promote(&w, force == 1));
        f = only_frame(&w, MSG_PROMOTE);
        ck_assert_uint_eq(f.len, 1);
        bool got = !force;
        ck_assert(proto_get_promote(&f, &got));
        ck_assert_int_eq(got, force == 1);
        check_strict(dec_promote, &f);
    }

    wbuf_reset(&w);
    const char *msg = "coordinator \"c1\" is now the primary (epoch 8)";
    ck_assert(proto_put_admin_ok(&w, msg));
    f = only_frame(&w, MSG_ADMIN_OK);
    const char *got_msg = NULL;
    ck_assert(proto_get_admin_ok(&f, &got_msg));
    ck_assert_str_eq(got_msg, msg);
    check_strict(dec_admin_ok, &f);
    wbuf_reset(&w);
    ck_assert(proto_put_admin_ok(&w, ""));
    f = only_frame(&w, MSG_ADMIN_OK);
    ck_assert(proto_get_admin_ok(&f, &got_msg));
    ck_assert_str_eq(got_msg, "");

    /* REPLICATION asks; it has no fields */
    wbuf_reset(&w);
    ck_assert(proto_put_replication(&w));
    f = only_frame(&w, MSG_REPLICATION);
    ck_assert_uint_eq(f.len, 0);
    wbuf_free(&w);
}
END_TEST

START_TEST(replication_reply_round_trip)
{
    wbuf w;
    wbuf_init(&w);
    proto_replication in = {.role = 2,
                            .epoch = 7,
                            .name = "coord",
                            .peer = "coord-a:6543",
                            .state = "streaming",
                            .sent = 0x1000000a0ull,
                            .flushed = 0x100000090ull,
                            .primary_lsn = 0x1000000a0ull,
                            .lag_bytes = 16,
                            .lag_ms = 3,
                            .synchronous = 1,
                            .sure = 0,
                            .detail = "caught up at 12:00:01",
                            .ha_leader = "X at 127.0.0.1:7001, epoch 7",
                            .ha_lease_ms = 4200,
                            .ha_sync = "Y (caught up to 4096)",
                            .ha_etcd = "reachable (127.0.0.1:2379)"};
    ck_assert(proto_put_replication_reply(&w, &in));
    frame_view f = only_frame(&w, MSG_REPLICATION_REPLY);
    proto_replication m;
    ck_assert(proto_get_replication_reply(&f, &m));
    ck_assert_uint_eq(m.role, 2);
    ck_assert_uint_eq(m.epoch, 7);
    ck_assert_str_eq(m.name, "coord");
    ck_assert_str_eq(m.peer, "coord-a:6543");
    ck_assert_str_eq(m.state, "streaming");
    ck_assert_uint_eq(m.sent, 0x1000000a0ull);
    ck_assert_uint_eq(m.flushed, 0x100000090ull);
    ck_assert_uint_eq(m.primary_lsn, 0x1000000a0ull);
    ck_assert_uint_eq(m.lag_bytes, 16);
    ck_assert_uint_eq(m.lag_ms, 3);
    ck_assert_uint_eq(m.synchronous, 1);
    ck_assert_uint_eq(m.sure, 0);
    ck_assert_str_eq(m.detail, "caught up at 12:00:01");
    /* zero-copy: the strings point into the payload */
    ck_assert(m.name > (const char *)f.payload && m.detail < (const char *)f.payload + f.len);
    ck_assert_str_eq(m.ha_leader, "X at 127.0.0.1:7001, epoch 7");
    ck_assert_int_eq(m.ha_lease_ms, 4200);
    ck_assert_str_eq(m.ha_sync, "Y (caught up to 4096)");
    ck_assert_str_eq(m.ha_etcd, "reachable (127.0.0.1:2379)");
    /* the 1.3 answer ends after detail: no [ha], no lease */
    uint32_t v13 = (uint32_t)((const uint8_t *)m.detail + strlen(m.detail) + 1 - f.payload);
    check_strict_v14(dec_replication_reply, &f, v13);
    frame_view f13 = {.type = f.type, .len = v13, .payload = f.payload};
    ck_assert(proto_get_replication_reply(&f13, &m));
    ck_assert_ptr_null(m.ha_leader);
    ck_assert_int_eq(m.ha_lease_ms, -1);

    /* empty strings are strings too */
    wbuf_reset(&w);
    in.peer = in.detail = "";
    ck_assert(proto_put_replication_reply(&w, &in));
    f = only_frame(&w, MSG_REPLICATION_REPLY);
    ck_assert(proto_get_replication_reply(&f, &m));
    ck_assert_str_eq(m.peer, "");
    ck_assert_str_eq(m.detail, "");
    check_strict_v14(dec_replication_reply, &f,
                     (uint32_t)((const uint8_t *)m.detail + 1 - f.payload));
    wbuf_free(&w);
}
END_TEST

/* ---- malformed payloads -------------------------------------------------- */

START_TEST(repl_start_epoch_counts)
{
    size_t max = REPL_MAX_EPOCHS + 1;
    uint64_t *epoch = calloc(max, sizeof(uint64_t)), *lsn = calloc(max, sizeof(uint64_t)),
             *instance = calloc(max, sizeof(uint64_t));
    ck_assert(epoch && lsn && instance);
    for (size_t i = 0; i < max; i++) {
        epoch[i] = i + 1;
        lsn[i] = i * 4096;
        instance[i] = 0x1000 + i;
    }
    wbuf w;
    wbuf_init(&w);
    proto_repl_start m, in = {.end = 1, .epoch = epoch, .lsn = lsn, .instance = instance};

    /* exactly the maximum is fine */
    in.n = REPL_MAX_EPOCHS;
    ck_assert(proto_put_repl_start(&w, &in));
    frame_view f = only_frame(&w, MSG_REPL_START);
    ck_assert(proto_get_repl_start(&f, &m));
    ck_assert_uint_eq(m.n, REPL_MAX_EPOCHS);
    ck_assert_uint_eq(m.epoch[REPL_MAX_EPOCHS - 1], REPL_MAX_EPOCHS);
    ck_assert_uint_eq(m.lsn[REPL_MAX_EPOCHS - 1], (uint64_t)(REPL_MAX_EPOCHS - 1) * 4096);
    ck_assert_uint_eq(m.instance[REPL_MAX_EPOCHS - 1], 0x1000 + REPL_MAX_EPOCHS - 1);
    proto_repl_start_clear(&m);

    /* one more, every byte of it present: refused all the same */
    wbuf_reset(&w);
    in.n = (uint16_t)max;
    ck_assert(proto_put_repl_start(&w, &in));
    f = only_frame(&w, MSG_REPL_START);
    ck_assert_uint_eq(f.len, 10 + max * 24); /* no member: a 1.3 standby's */
    ck_assert(!dec_repl_start(&f));

    /* a count the payload cannot hold: 3 announced, 2 present */
    wbuf_reset(&w);
    in.n = 2;
    ck_assert(proto_put_repl_start(&w, &in));
    w.data[FRAME_HEADER_SIZE + 9] = 3; /* the low byte of n */
    f = only_frame(&w, MSG_REPL_START);
    ck_assert(!dec_repl_start(&f));

    /* the largest u16 count with nothing behind it: refused before
     * anything is allocated for it */
    wbuf_reset(&w);
    size_t s = frame_begin(&w, MSG_REPL_START);
    wbuf_put_u64(&w, 1);
    wbuf_put_u16(&w, 0xffff);
    ck_assert(frame_end(&w, s, UINT32_MAX));
    f = only_frame(&w, MSG_REPL_START);
    ck_assert(!dec_repl_start(&f));

    /* two entries and a third without its instance */
    wbuf_reset(&w);
    in.n = 2;
    ck_assert(proto_put_repl_start(&w, &in));
    wbuf_put_u64(&w, 5);
    wbuf_put_u64(&w, 0x5000);
    buf_store_u32(w.data + 1, buf_load_u32(w.data + 1) + 16);
    w.data[FRAME_HEADER_SIZE + 9] = 3;
    f = only_frame(&w, MSG_REPL_START);
    ck_assert(!dec_repl_start(&f));

    wbuf_free(&w);
    free(epoch);
    free(lsn);
    free(instance);
}
END_TEST

START_TEST(flag_bytes_out_of_range)
{
    wbuf w;
    wbuf_init(&w);
    /* PROMOTE's force is 0 or 1 */
    for (unsigned v = 2; v < 256; v += 85) {
        wbuf_reset(&w);
        uint8_t b = (uint8_t)v;
        ck_assert(frame_put(&w, MSG_PROMOTE, &b, 1));
        frame_view f = only_frame(&w, MSG_PROMOTE);
        ck_assert_msg(!dec_promote(&f), "force %u accepted", v);
    }
    /* WAL_DATA's synchronous is 0 or 1 */
    wbuf_reset(&w);
    proto_wal_data in = {.pos = 1, .synchronous = 2};
    ck_assert(proto_put_wal_data(&w, &in));
    frame_view f = only_frame(&w, MSG_WAL_DATA);
    ck_assert(!dec_wal_data(&f));
    wbuf_free(&w);
}
END_TEST

START_TEST(broken_strings)
{
    wbuf w;
    wbuf_init(&w);
    /* ADMIN_OK: a length past the end, a missing terminator, an embedded NUL */
    static const uint8_t past_end[] = {0, 0, 0, 9, 'x', 'y', 0};
    static const uint8_t no_nul[] = {0, 0, 0, 2, 'x', 'y', 'z'};
    static const uint8_t inner_nul[] = {0, 0, 0, 2, 'x', 0, 0};
    static const uint8_t null_str[] = {0xff, 0xff, 0xff, 0xff}; /* nstr NULL: not a str */
    const struct {
        const uint8_t *p;
        uint32_t len;
    } cases[] = {{past_end, sizeof(past_end)},
                 {no_nul, sizeof(no_nul)},
                 {inner_nul, sizeof(inner_nul)},
                 {null_str, sizeof(null_str)}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wbuf_reset(&w);
        ck_assert(frame_put(&w, MSG_ADMIN_OK, cases[i].p, cases[i].len));
        frame_view f = only_frame(&w, MSG_ADMIN_OK);
        ck_assert_msg(!decode_copy(dec_admin_ok, &f, f.len, 0), "case %zu accepted", i);
    }

    /* REPLICATION_REPLY whose name announces more bytes than the frame has */
    wbuf_reset(&w);
    size_t s = frame_begin(&w, MSG_REPLICATION_REPLY);
    wbuf_put_u8(&w, 1);
    wbuf_put_u64(&w, 7);
    wbuf_put_u32(&w, 0x7fffffff);
    wbuf_put_bytes(&w, "coord", 6);
    ck_assert(frame_end(&w, s, UINT32_MAX));
    frame_view f = only_frame(&w, MSG_REPLICATION_REPLY);
    ck_assert(!decode_copy(dec_replication_reply, &f, f.len, 0));

    /* every message refuses an empty payload, but REPLICATION has none */
    decode_fn all[] = {dec_repl_start, dec_repl_start_ok, dec_wal_data,         dec_wal_ack,
                       dec_promote,    dec_admin_ok,      dec_replication_reply};
    frame_view empty = {.type = 0, .len = 0, .payload = (const uint8_t *)""};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        ck_assert_msg(!all[i](&empty), "decoder %zu accepted an empty payload", i);
    wbuf_free(&w);
}
END_TEST

static Suite *
proto_repl_suite(void)
{
    Suite *s = suite_create("proto_repl");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, repl_start_round_trip);
    tcase_add_test(tc, repl_start_ok_round_trip);
    tcase_add_test(tc, wal_data_round_trip);
    tcase_add_test(tc, small_messages_round_trip);
    tcase_add_test(tc, replication_reply_round_trip);
    tcase_add_test(tc, repl_start_epoch_counts);
    tcase_add_test(tc, flag_bytes_out_of_range);
    tcase_add_test(tc, broken_strings);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(proto_repl_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
