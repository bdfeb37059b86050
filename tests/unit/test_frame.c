/*
 * test_frame.c — frames (frame.c), value encoding (buf.c) and the message
 * codecs (proto.c): round trips, truncation, hostile lengths.
 */
#include "buf.h"
#include "frame.h"
#include "proto.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *
header(uint8_t type, uint32_t len, uint8_t out[5])
{
    out[0] = type;
    buf_store_u32(out + 1, len);
    return out;
}

START_TEST(frame_round_trip)
{
    wbuf w;
    wbuf_init(&w);
    ck_assert(frame_put(&w, 'Z', "hello", 5));
    ck_assert(frame_put(&w, 'Y', "", 0));
    frame_view f;
    size_t used;
    ck_assert_int_eq(frame_decode(w.data, w.len, 100, &f, &used), FRAME_OK);
    ck_assert_int_eq(f.type, 'Z');
    ck_assert_uint_eq(f.len, 5);
    ck_assert_mem_eq(f.payload, "hello", 5);
    ck_assert_uint_eq(used, 10);
    ck_assert_int_eq(frame_decode(w.data + used, w.len - used, 100, &f, &used), FRAME_OK);
    ck_assert_int_eq(f.type, 'Y');
    ck_assert_uint_eq(f.len, 0);
    ck_assert_uint_eq(used, 5);
    wbuf_free(&w);
}
END_TEST

START_TEST(frame_truncated_every_length)
{
    wbuf w;
    wbuf_init(&w);
    ck_assert(frame_put(&w, 'Z', "0123456789", 10));
    for (size_t n = 0; n < w.len; n++) {
        frame_view f;
        size_t need;
        ck_assert_int_eq(frame_decode(w.data, n, 100, &f, &need), FRAME_NEED_MORE);
        ck_assert_uint_eq(need, n < 5 ? 5 : 15);
    }
    wbuf_free(&w);
}
END_TEST

START_TEST(frame_lengths_extreme)
{
    uint8_t h[5];
    frame_view f;
    size_t need;
    /* 0 is fine */
    ck_assert_int_eq(frame_decode(header('A', 0, h), 5, 1024, &f, &need), FRAME_OK);
    ck_assert_uint_eq(f.len, 0);
    /* 2^31 and 2^32-1 are refused on the header alone, before any payload */
    ck_assert_int_eq(frame_decode(header('A', 0x80000000u, h), 5, 1024, &f, &need),
                     FRAME_TOO_LARGE);
    ck_assert_int_eq(frame_decode(header('A', 0xFFFFFFFFu, h), 5, 1024, &f, &need),
                     FRAME_TOO_LARGE);
    /* exactly the maximum is allowed; one more is not */
    ck_assert_int_eq(frame_decode(header('A', 1024, h), 5, 1024, &f, &need), FRAME_NEED_MORE);
    ck_assert_uint_eq(need, 1029);
    ck_assert_int_eq(frame_decode(header('A', 1025, h), 5, 1024, &f, &need), FRAME_TOO_LARGE);
    /* even with the largest maximum, 2^32-1 needs more bytes, no overflow */
    ck_assert_int_eq(frame_decode(header('A', 0xFFFFFFFFu, h), 5, UINT32_MAX, &f, &need),
                     FRAME_NEED_MORE);
    ck_assert_uint_eq(need, (size_t)0xFFFFFFFFu + 5);
}
END_TEST

START_TEST(frame_end_over_max)
{
    wbuf w;
    wbuf_init(&w);
    size_t s = frame_begin(&w, 'Q');
    wbuf_put_bytes(&w, "abcdef", 6);
    ck_assert(!frame_end(&w, s, 5));
    ck_assert_uint_eq(w.len, 0);
    wbuf_free(&w);
}
END_TEST

START_TEST(buf_strings)
{
    wbuf w;
    wbuf_init(&w);
    wbuf_put_str(&w, "");
    wbuf_put_nstr(&w, NULL);
    wbuf_put_str(&w, "grüße ✓");
    wbuf_put_u64(&w, 0x0102030405060708ull);
    rbuf r;
    rbuf_init(&r, w.data, w.len);
    uint32_t len;
    bool isnull;
    ck_assert_str_eq(rbuf_get_str(&r, &len), "");
    ck_assert_ptr_null(rbuf_get_nstr(&r, &len, &isnull));
    ck_assert(isnull);
    ck_assert_str_eq(rbuf_get_str(&r, &len), "grüße ✓");
    ck_assert_uint_eq(rbuf_get_u64(&r), 0x0102030405060708ull);
    ck_assert(rbuf_done(&r));
    /* a NULL where a str is required is an error */
    rbuf_init(&r, w.data + 5, w.len - 5);
    ck_assert_ptr_null(rbuf_get_str(&r, &len));
    ck_assert(!rbuf_ok(&r));
    wbuf_free(&w);
}
END_TEST

START_TEST(buf_hostile_strings)
{
    /* length beyond the buffer */
    uint8_t b1[] = {0, 0, 0, 9, 'a', 'b', 0};
    rbuf r;
    uint32_t len;
    rbuf_init(&r, b1, sizeof(b1));
    ck_assert_ptr_null(rbuf_get_str(&r, &len));
    ck_assert(!rbuf_ok(&r));
    /* missing terminator */
    uint8_t b2[] = {0, 0, 0, 2, 'a', 'b', 'c'};
    rbuf_init(&r, b2, sizeof(b2));
    ck_assert_ptr_null(rbuf_get_str(&r, &len));
    /* embedded NUL */
    uint8_t b3[] = {0, 0, 0, 2, 'a', 0, 0};
    rbuf_init(&r, b3, sizeof(b3));
    ck_assert_ptr_null(rbuf_get_str(&r, &len));
    /* sticky: further reads fail too */
    ck_assert_uint_eq(rbuf_get_u32(&r), 0);
    ck_assert(!rbuf_ok(&r));
}
END_TEST

static frame_view
only_frame(const wbuf *w)
{
    frame_view f;
    size_t used;
    ck_assert_int_eq(frame_decode(w->data, w->len, UINT32_MAX, &f, &used), FRAME_OK);
    ck_assert_uint_eq(used, w->len);
    return f;
}

START_TEST(proto_work_round_trip)
{
    const char *p1[] = {"it's", NULL, "ünïcødé"};
    proto_stmt st[2] = {{.participant = "", .sql = "update t set a=$1", .nparams = 3, .params = p1},
                        {.participant = "", .sql = "select 1", .nparams = 0, .params = NULL}};
    proto_work m = {.tag = 77,
                    .epoch = 5,
                    .branch = "dtx:c:5:1:a",
                    .flags = WORK_OPEN | WORK_PREPARE,
                    .body = {.n = 2, .stmts = st}};
    wbuf w;
    wbuf_init(&w);
    ck_assert(proto_put_work(&w, &m));
    frame_view f = only_frame(&w);
    ck_assert_int_eq(f.type, MSG_WORK);
    proto_work d;
    ck_assert(proto_get_work(&f, &d));
    ck_assert_uint_eq(d.tag, 77);
    ck_assert_uint_eq(d.epoch, 5);
    ck_assert_str_eq(d.branch, "dtx:c:5:1:a");
    ck_assert_uint_eq(d.flags, WORK_OPEN | WORK_PREPARE);
    ck_assert_uint_eq(d.body.n, 2);
    ck_assert_str_eq(d.body.stmts[0].sql, "update t set a=$1");
    ck_assert_uint_eq(d.body.stmts[0].nparams, 3);
    ck_assert_str_eq(d.body.stmts[0].params[0], "it's");
    ck_assert_ptr_null(d.body.stmts[0].params[1]);
    ck_assert_str_eq(d.body.stmts[0].params[2], "ünïcødé");
    ck_assert_uint_eq(d.body.stmts[1].nparams, 0);
    proto_work_clear(&d);

    /* every truncation of the payload is rejected, without leaks */
    for (uint32_t n = 0; n < f.len; n++) {
        frame_view t = f;
        t.len = n;
        ck_assert(!proto_get_work(&t, &d));
    }
    wbuf_free(&w);
}
END_TEST

START_TEST(proto_result_round_trip)
{
    const char *names[] = {"id", "name"};
    uint32_t types[] = {23, 25};
    const char *vals[] = {"1", "a", "2", NULL};
    proto_result m = {.tag = 3,
                      .participant = "a",
                      .command_tag = "SELECT 2",
                      .affected = 2,
                      .ncols = 2,
                      .nrows = 2,
                      .col_names = names,
                      .col_types = types,
                      .values = vals};
    wbuf w;
    wbuf_init(&w);
    ck_assert(proto_put_result(&w, &m));
    frame_view f = only_frame(&w);
    proto_result d;
    ck_assert(proto_get_result(&f, &d));
    ck_assert_str_eq(d.command_tag, "SELECT 2");
    ck_assert_uint_eq(d.ncols, 2);
    ck_assert_uint_eq(d.nrows, 2);
    ck_assert_str_eq(d.col_names[1], "name");
    ck_assert_uint_eq(d.col_types[0], 23);
    ck_assert_str_eq(d.values[2], "2");
    ck_assert_ptr_null(d.values[3]);
    proto_result_clear(&d);
    /* patch the tag in place, as the coordinator does when relaying */
    proto_patch_tag(w.data, 99);
    f = only_frame(&w);
    uint32_t tag;
    ck_assert(proto_peek_tag(&f, &tag));
    ck_assert_uint_eq(tag, 99);
    wbuf_free(&w);
}
END_TEST

START_TEST(proto_hostile_counts)
{
    /* RESULT announcing 65535 columns and 2^32-1 rows in a tiny payload */
    wbuf w;
    wbuf_init(&w);
    size_t s = frame_begin(&w, MSG_RESULT);
    wbuf_put_u32(&w, 0);
    wbuf_put_str(&w, "");
    wbuf_put_str(&w, "");
    wbuf_put_u64(&w, 0);
    wbuf_put_u16(&w, 65535);
    ck_assert(frame_end(&w, s, UINT32_MAX));
    frame_view f = only_frame(&w);
    proto_result d;
    ck_assert(!proto_get_result(&f, &d));
    wbuf_free(&w);

    /* ONESHOT announcing 65535 statements */
    wbuf_init(&w);
    s = frame_begin(&w, MSG_ONESHOT);
    wbuf_put_u16(&w, 65535);
    ck_assert(frame_end(&w, s, UINT32_MAX));
    f = only_frame(&w);
    proto_stmts b;
    ck_assert(!proto_get_oneshot(&f, &b));
    wbuf_free(&w);
}
END_TEST

START_TEST(proto_small_messages)
{
    wbuf w;
    wbuf_init(&w);
    proto_hello h = {PROTO_MAGIC, PROTO_MAJOR, PROTO_MINOR, ROLE_CLIENT, "app", 0, 0};
    ck_assert(proto_put_hello(&w, &h));
    frame_view f = only_frame(&w);
    proto_hello hd;
    ck_assert(proto_get_hello(&f, &hd));
    ck_assert_uint_eq(hd.magic, PROTO_MAGIC);
    ck_assert_str_eq(hd.name, "app");
    wbuf_reset(&w);

    proto_error e = {.tag = 0, .sqlstate = "23514", .message = "violates", .hint = "do not"};
    ck_assert(proto_put_error(&w, &e));
    f = only_frame(&w);
    proto_error ed;
    ck_assert(proto_get_error(&f, &ed));
    ck_assert_str_eq(ed.sqlstate, "23514");
    ck_assert_ptr_null(ed.detail);
    ck_assert_str_eq(ed.hint, "do not");
    wbuf_reset(&w);

    proto_done dn = {.tag = 4, .status = DONE_PREPARED, .xid = 123456789012ull};
    ck_assert(proto_put_done(&w, &dn));
    f = only_frame(&w);
    proto_done dd;
    ck_assert(proto_get_done(&f, &dd));
    ck_assert_uint_eq(dd.xid, 123456789012ull);
    ck_assert_uint_eq(dd.status, DONE_PREPARED);
    /* an unknown status value is rejected */
    w.data[FRAME_HEADER_SIZE + 4] = 200;
    f = only_frame(&w);
    ck_assert(!proto_get_done(&f, &dd));
    wbuf_reset(&w);

    proto_list_entry le[2] = {{"dtx:c:1:1:a", 10, 1000}, {"dtx:c:1:2:a", 11, 2000}};
    proto_list_reply lr = {.tag = 9, .n = 2, .entries = le};
    ck_assert(proto_put_list_reply(&w, &lr));
    f = only_frame(&w);
    proto_list_reply ld;
    ck_assert(proto_get_list_reply(&f, &ld));
    ck_assert_uint_eq(ld.n, 2);
    ck_assert_str_eq(ld.entries[1].gid, "dtx:c:1:2:a");
    proto_list_reply_clear(&ld);
    wbuf_reset(&w);

    proto_cancel cn = {.tag = 77, .epoch = 5, .branch = "dtx:c:5:3:a"};
    ck_assert(proto_put_cancel(&w, &cn));
    f = only_frame(&w);
    ck_assert_uint_eq(f.type, MSG_CANCEL);
    proto_cancel cd;
    ck_assert(proto_get_cancel(&f, &cd));
    ck_assert_uint_eq(cd.tag, 77);
    ck_assert_uint_eq(cd.epoch, 5);
    ck_assert_str_eq(cd.branch, "dtx:c:5:3:a");
    uint32_t ctag = 0;
    ck_assert(proto_peek_tag(&f, &ctag));
    ck_assert_uint_eq(ctag, 77);
    /* cut short: malformed */
    f.len -= 2;
    ck_assert(!proto_get_cancel(&f, &cd));
    wbuf_reset(&w);

    proto_outcome_msg om = {OUTCOME_UNKNOWN, "dtx:c:1:9"};
    ck_assert(proto_put_outcome(&w, &om));
    f = only_frame(&w);
    proto_outcome_msg od;
    ck_assert(proto_get_outcome(&f, &od));
    ck_assert_uint_eq(od.outcome, OUTCOME_UNKNOWN);
    /* trailing garbage is an error */
    f.len += 0;
    wbuf_put_u8(&w, 0);
    buf_store_u32(w.data + 1, buf_load_u32(w.data + 1) + 1);
    f = only_frame(&w);
    ck_assert(!proto_get_outcome(&f, &od));
    wbuf_free(&w);
}
END_TEST

/* HELLO's instance (coordinator failover): written after the epoch when not
 * 0; a HELLO that ends after the epoch (older coordinators, clients) still
 * decodes, with instance 0; anything between is malformed. */
START_TEST(proto_hello_instance)
{
    wbuf w;
    wbuf_init(&w);
    proto_hello h = {.magic = PROTO_MAGIC,
                     .major = PROTO_MAJOR,
                     .minor = PROTO_MINOR,
                     .role = ROLE_COORDINATOR,
                     .name = "c1",
                     .epoch = 7,
                     .instance = 0xfedcba9876543210ull};
    ck_assert(proto_put_hello(&w, &h));
    frame_view f = only_frame(&w);
    /* magic 4, major 2, minor 2, role 1, str 4+2+1, epoch 8, instance 8 */
    ck_assert_uint_eq(f.len, 4 + 2 + 2 + 1 + 7 + 8 + 8);
    proto_hello hd;
    ck_assert(proto_get_hello(&f, &hd));
    ck_assert_str_eq(hd.name, "c1");
    ck_assert_uint_eq(hd.epoch, 7);
    ck_assert_uint_eq(hd.instance, 0xfedcba9876543210ull);

    /* cut inside the instance: malformed */
    for (uint32_t cut = 1; cut < 8; cut++) {
        frame_view g = f;
        g.len -= cut;
        ck_assert(!proto_get_hello(&g, &hd));
    }
    /* cut right after the epoch: an older HELLO, instance unknown */
    frame_view old = f;
    old.len -= 8;
    hd.instance = 99;
    ck_assert(proto_get_hello(&old, &hd));
    ck_assert_uint_eq(hd.epoch, 7);
    ck_assert_uint_eq(hd.instance, 0);
    wbuf_reset(&w);

    /* instance 0 is not written: the bytes of a HELLO without the field */
    h.instance = 0;
    ck_assert(proto_put_hello(&w, &h));
    f = only_frame(&w);
    ck_assert_uint_eq(f.len, 4 + 2 + 2 + 1 + 7 + 8);
    ck_assert(proto_get_hello(&f, &hd));
    ck_assert_uint_eq(hd.instance, 0);
    /* a byte after the instance is trailing garbage */
    wbuf_reset(&w);
    h.instance = 1;
    ck_assert(proto_put_hello(&w, &h));
    wbuf_put_u8(&w, 0);
    buf_store_u32(w.data + 1, buf_load_u32(w.data + 1) + 1);
    f = only_frame(&w);
    ck_assert(!proto_get_hello(&f, &hd));
    wbuf_free(&w);
}
END_TEST

/* HELLO_OK's slots (1.6, participant to coordinator): written after the
 * epoch when not 0; a HELLO_OK that ends after the epoch decodes with
 * slots 0 (not known); a cut inside the field or a byte after it is
 * malformed. */
START_TEST(proto_hello_ok_slots)
{
    wbuf w;
    wbuf_init(&w);
    proto_hello_ok h = {
        .major = PROTO_MAJOR, .minor = PROTO_MINOR, .server_name = "a", .epoch = 3, .slots = 60};
    ck_assert(proto_put_hello_ok(&w, &h));
    frame_view f = only_frame(&w);
    /* major 2, minor 2, str 4+1+1, epoch 8, slots 4 */
    ck_assert_uint_eq(f.len, 2 + 2 + 6 + 8 + 4);
    proto_hello_ok d;
    ck_assert(proto_get_hello_ok(&f, &d));
    ck_assert_str_eq(d.server_name, "a");
    ck_assert_uint_eq(d.epoch, 3);
    ck_assert_uint_eq(d.slots, 60);
    for (uint32_t cut = 1; cut < 4; cut++) {
        frame_view g = f;
        g.len -= cut;
        ck_assert(!proto_get_hello_ok(&g, &d));
    }
    frame_view old = f;
    old.len -= 4;
    d.slots = 99;
    ck_assert(proto_get_hello_ok(&old, &d));
    ck_assert_uint_eq(d.slots, 0);
    /* 0 is not written: the bytes an older peer expects */
    wbuf_reset(&w);
    h.slots = 0;
    ck_assert(proto_put_hello_ok(&w, &h));
    f = only_frame(&w);
    ck_assert_uint_eq(f.len, 2 + 2 + 6 + 8);
    wbuf_reset(&w);
    h.slots = 1;
    ck_assert(proto_put_hello_ok(&w, &h));
    wbuf_put_u8(&w, 0);
    buf_store_u32(w.data + 1, buf_load_u32(w.data + 1) + 1);
    f = only_frame(&w);
    ck_assert(!proto_get_hello_ok(&f, &d));
    wbuf_free(&w);
}
END_TEST

static Suite *
frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, frame_round_trip);
    tcase_add_test(tc, frame_truncated_every_length);
    tcase_add_test(tc, frame_lengths_extreme);
    tcase_add_test(tc, frame_end_over_max);
    tcase_add_test(tc, buf_strings);
    tcase_add_test(tc, buf_hostile_strings);
    tcase_add_test(tc, proto_work_round_trip);
    tcase_add_test(tc, proto_result_round_trip);
    tcase_add_test(tc, proto_hostile_counts);
    tcase_add_test(tc, proto_small_messages);
    tcase_add_test(tc, proto_hello_instance);
    tcase_add_test(tc, proto_hello_ok_slots);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
