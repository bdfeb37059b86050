/*
 * test_wal.c — the write-ahead log: round trips, recovery from hand-cut
 * tails and damaged files, stale segments, checkpoints (also killed half
 * way), concurrent appenders, event-loop notification, epochs, failure rules
 * and dtx-waldump.  The crash test with SIGKILL is test_wal_crash.c.
 */
#include "test_wal_util.h"
#include "failpoint.h"
#include "log.h"

#include <event2/event.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static void
tw_expect_open_fails(const char *dir, const char *needle1, const char *needle2)
{
    char err[1024];
    wal_options o;
    wal_options_init(&o);
    o.segment_size = TW_SEG;
    wal_t *w = wal_open(dir, &o, err, sizeof(err));
    if (w != NULL)
        wal_close(w);
    ck_assert_msg(w == NULL, "wal_open should have failed on %s", dir);
    ck_assert_msg(strstr(err, needle1) != NULL, "error \"%s\" lacks \"%s\"", err, needle1);
    if (needle2)
        ck_assert_msg(strstr(err, needle2) != NULL, "error \"%s\" lacks \"%s\"", err, needle2);
    wal_reader *r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    ck_assert_msg(r == NULL, "reader should refuse %s", dir);
}

/* ---- round trips -------------------------------------------------------- */

START_TEST(test_roundtrip_many_segments)
{
    enum { N = 4000, M = 1000 };
    const char *dir = tw_dir("roundtrip");
    uint64_t *lsns = calloc(N + M, sizeof(uint64_t));
    wal_info info;

    wal_t *w = tw_open(dir, TW_SEG, 1);
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.records, 0);
    ck_assert_uint_eq(wal_flushed_lsn(w), WAL_SEG_HDR_SIZE);
    uint64_t last = tw_append_n(w, 0, N, lsns);
    for (int i = 1; i < N; i++)
        ck_assert_uint_gt(lsns[i], lsns[i - 1]);
    ck_assert_uint_eq(wal_insert_lsn(w), last);
    wal_wait_durable(w, last);
    ck_assert_uint_ge(wal_flushed_lsn(w), last);
    tw_check_live(w, 0, N, lsns);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.records, N);
    ck_assert_uint_ge(st.fsyncs, 1);
    wal_close(w);
    ck_assert_int_ge(tw_count_segments(dir), 8);
    tw_check_dir(dir, 0, N, lsns);

    /* Reopen after a clean close: everything is there, nothing is torn. */
    w = tw_open(dir, TW_SEG, 1);
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.records, N);
    ck_assert_uint_eq(info.end_lsn, last);
    ck_assert_uint_eq(info.torn_bytes, 0);
    ck_assert_uint_eq(info.removed_files, 0);
    ck_assert_uint_eq(wal_flushed_lsn(w), last);
    uint64_t last2 = tw_append_n(w, N, M, lsns);
    ck_assert_uint_gt(lsns[N], last);
    wal_wait_durable(w, last2);
    tw_check_live(w, 0, N + M, lsns);
    wal_close(w);
    tw_check_dir(dir, 0, N + M, lsns);

    /* A reader from the middle returns exactly the records after it. */
    char err[512];
    wal_reader *r = wal_reader_open_dir(dir, lsns[2999], err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    tw_check_reader(r, 3000, N + M - 3000, lsns);
    wal_reader_close(r);
    free(lsns);
}
END_TEST

static void
tw_check_sizes(wal_reader *r, const uint32_t *lens, int n, const uint8_t *big)
{
    wal_record rec;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(wal_reader_next(r, &rec), 1);
        ck_assert_uint_eq(rec.type, (unsigned)(i + 1));
        ck_assert_uint_eq(rec.len, lens[i]);
        ck_assert(rec.len == 0 || memcmp(rec.payload, big, rec.len) == 0);
    }
    ck_assert_int_eq(wal_reader_next(r, &rec), 0);
}

START_TEST(test_record_sizes_zero_and_max)
{
    uint8_t *big = malloc(WAL_MAX_PAYLOAD + 1);
    tw_payload(big, WAL_MAX_PAYLOAD + 1, 7);
    char err[512];

    /* Small segments: the limit is what fits with room for a switch record. */
    const char *dir = tw_dir("sizes-small");
    wal_t *w = tw_open(dir, TW_SEG, 0);
    uint32_t max = wal_max_payload(w);
    ck_assert_uint_eq(max, TW_SEG - WAL_SEG_HDR_SIZE - WAL_SWITCH_SIZE - WAL_REC_HDR_SIZE);
    uint32_t lens[] = {0, max, 0, max, 1, max - 1, 0};
    int n = (int)(sizeof(lens) / sizeof(lens[0]));
    uint64_t lsn = 0;
    for (int i = 0; i < n; i++)
        lsn = wal_append(w, (uint8_t)(i + 1), lens[i] ? big : NULL, lens[i]);
    log_set_level(LOG_LVL_FATAL); /* the two refusals below log an error */
    ck_assert_uint_eq(wal_append(w, 9, big, max + 1), 0);
    ck_assert_uint_eq(wal_append(w, WAL_TYPE_INVALID, big, 1), 0);
    wal_wait_durable(w, lsn);
    wal_reader *r = wal_reader_open(w, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    tw_check_sizes(r, lens, n, big);
    wal_reader_close(r);
    wal_close(w);
    w = tw_open(dir, TW_SEG, 0);
    r = wal_reader_open(w, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    tw_check_sizes(r, lens, n, big);
    wal_reader_close(r);
    wal_close(w);

    /* Large segments: WAL_MAX_PAYLOAD itself. */
    dir = tw_dir("sizes-large");
    w = tw_open(dir, 4u << 20, 0);
    ck_assert_uint_eq(wal_max_payload(w), WAL_MAX_PAYLOAD);
    uint32_t lens2[] = {WAL_MAX_PAYLOAD, 0, WAL_MAX_PAYLOAD, WAL_MAX_PAYLOAD, WAL_MAX_PAYLOAD, 3};
    n = (int)(sizeof(lens2) / sizeof(lens2[0]));
    for (int i = 0; i < n; i++)
        lsn = wal_append(w, (uint8_t)(i + 1), big, lens2[i]);
    ck_assert_uint_eq(wal_append(w, 9, big, WAL_MAX_PAYLOAD + 1), 0);
    wal_wait_durable(w, lsn);
    ck_assert_uint_eq(lsn / (4u << 20), 1); /* the fifth did not fit in segment 0 */
    wal_close(w);
    r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    tw_check_sizes(r, lens2, n, big);
    wal_reader_close(r);
    free(big);
}
END_TEST

START_TEST(test_reopen_keeps_segment_size_and_locks)
{
    const char *dir = tw_dir("reopen");
    char err[512];
    uint64_t lsns[300];
    wal_t *w = tw_open(dir, TW_SEG, 0);

    /* A second open of the same directory is refused while the first lives. */
    wal_t *w2 = wal_open(dir, NULL, err, sizeof(err));
    ck_assert_ptr_null(w2);
    ck_assert_msg(strstr(err, "in use") != NULL, "%s", err);

    wal_wait_durable(w, tw_append_n(w, 0, 300, lsns));
    wal_close(w);
    /* An existing log keeps the segment size written in its headers. */
    w = tw_open(dir, 128u << 10, 0);
    ck_assert_uint_eq(wal_segment_size(w), TW_SEG);
    tw_check_live(w, 0, 300, lsns);
    wal_close(w);

    /* Close without appending anything, twice. */
    dir = tw_dir("reopen-empty");
    w = tw_open(dir, TW_SEG, 0);
    wal_close(w);
    w = tw_open(dir, TW_SEG, 0);
    wal_info info;
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.records, 0);
    ck_assert_uint_eq(info.end_lsn, WAL_SEG_HDR_SIZE);
    wal_close(w);

    ck_assert_ptr_null(wal_open("/nonexistent-dir/x/y", NULL, err, sizeof(err)));
    wal_options o;
    wal_options_init(&o);
    o.segment_size = 5000;
    ck_assert_ptr_null(wal_open(tw_dir("badsize"), &o, err, sizeof(err)));
    ck_assert_msg(strstr(err, "segment size") != NULL, "%s", err);
}
END_TEST

/* ---- hand-cut tails ------------------------------------------------------ */

enum { TAIL_N = 20 };

/* A log of TAIL_N records in segment 0; returns the last record's bounds. */
static void
tw_make_tail_src(const char *src, uint64_t *lsns, tw_pos *last)
{
    tw_pos pos[TAIL_N];
    wal_t *w = tw_open(src, TW_SEG, 0);
    tw_append_n(w, 0, TAIL_N, lsns);
    wal_close(w);
    ck_assert_uint_eq(tw_positions(src, pos, TAIL_N), TAIL_N);
    *last = pos[TAIL_N - 1];
    ck_assert_uint_gt(last->lsn - last->start, WAL_REC_HDR_SIZE + 8);
}

START_TEST(test_truncate_last_record_every_offset)
{
    uint64_t lsns[TAIL_N];
    tw_pos last;
    char src[512], work[512];
    snprintf(src, sizeof(src), "%s", tw_dir("trunc-src"));
    snprintf(work, sizeof(work), "%s", tw_dir("trunc-work"));
    tw_make_tail_src(src, lsns, &last);
    log_set_level(LOG_LVL_ERROR);

    uint64_t size = last.lsn - last.start;
    uint64_t unpadded = WAL_REC_HDR_SIZE + tw_len(TAIL_N - 1);
    for (uint64_t k = 0; k < size; k++) {
        for (int mode = 0; mode < 2; mode++) {
            /* Zeroing only the padding (zero already) changes nothing. */
            if (mode == 0 && k >= unpadded)
                continue;
            tw_copy_dir(src, work);
            const char *seg = tw_seg_path(work, 0);
            if (mode == 0) /* a write that stopped after k bytes */
                tw_zero(seg, last.start + k, size - k);
            else /* the same, on a file cut short */
                ck_assert_int_eq(truncate(seg, (off_t)(last.start + k)), 0);
            tw_check_dir(work, 0, TAIL_N - 1, lsns);

            wal_t *w = tw_open(work, TW_SEG, 0);
            wal_info info;
            wal_get_info(w, &info);
            ck_assert_uint_eq(info.records, TAIL_N - 1);
            ck_assert_uint_eq(info.end_lsn, lsns[TAIL_N - 2]);
            if (k > 0) {
                ck_assert_uint_eq(info.torn_lsn, lsns[TAIL_N - 2]);
                ck_assert_uint_gt(info.torn_bytes, 0);
            }
            /* The log goes on where the complete records end. */
            uint64_t l = tw_append_n(w, TAIL_N - 1, 1, NULL);
            ck_assert_uint_eq(l, lsns[TAIL_N - 1]);
            wal_close(w);
            tw_check_dir(work, 0, TAIL_N, lsns);
        }
    }
}
END_TEST

START_TEST(test_flip_each_byte_of_last_record)
{
    uint64_t lsns[TAIL_N];
    tw_pos last;
    char src[512], work[512];
    snprintf(src, sizeof(src), "%s", tw_dir("flip-src"));
    snprintf(work, sizeof(work), "%s", tw_dir("flip-work"));
    tw_make_tail_src(src, lsns, &last);
    log_set_level(LOG_LVL_ERROR);

    for (uint64_t off = last.start; off < last.lsn; off++) {
        tw_copy_dir(src, work);
        tw_flip(tw_seg_path(work, 0), off);
        tw_check_dir(work, 0, TAIL_N - 1, lsns);
        wal_t *w = tw_open(work, TW_SEG, 0);
        wal_info info;
        wal_get_info(w, &info);
        ck_assert_msg(info.records == TAIL_N - 1, "flip at %" PRIu64 ": %" PRIu64 " records", off,
                      info.records);
        ck_assert_uint_eq(info.torn_lsn, last.start);
        ck_assert_uint_gt(info.torn_bytes, 0);
        wal_close(w);
        tw_check_dir(work, 0, TAIL_N - 1, lsns);
    }
}
END_TEST

START_TEST(test_damage_in_the_middle_is_fatal)
{
    enum { N = 1200 };
    uint64_t lsns[N];
    static tw_pos pos[N];
    char src[512], work[512], want[64];
    snprintf(src, sizeof(src), "%s", tw_dir("mid-src"));
    snprintf(work, sizeof(work), "%s", tw_dir("mid-work"));
    wal_t *w = tw_open(src, TW_SEG, 0);
    tw_append_n(w, 0, N, lsns);
    wal_close(w);
    ck_assert_uint_eq(tw_positions(src, pos, N), N);
    ck_assert_uint_ge(pos[N - 1].lsn / TW_SEG, 2);

    /* Several records of segment 0, several bytes of each. */
    int recs[] = {0, 5, 10, 18};
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        tw_pos p = pos[recs[i]];
        uint64_t bytes[] = {0, 4, 9, 16, 20, 24, p.lsn - p.start - 1};
        for (size_t j = 0; j < sizeof(bytes) / sizeof(bytes[0]); j++) {
            if (bytes[j] >= p.lsn - p.start)
                continue;
            tw_copy_dir(src, work);
            tw_flip(tw_seg_path(work, 0), p.start + bytes[j]);
            snprintf(want, sizeof(want), "offset %" PRIu64 " ", p.start % TW_SEG);
            tw_expect_open_fails(work, "0000000000000000.seg", want);
        }
    }
    /* A record in the middle of segment 1, and the last record of segment 0
     * (followed only by its switch record and the next segments). */
    size_t k = 0;
    while (pos[k].start / TW_SEG < 1)
        k++;
    size_t last0 = k - 1;
    k += 20;
    tw_copy_dir(src, work);
    tw_flip(tw_seg_path(work, 1), pos[k].start % TW_SEG + 30);
    snprintf(want, sizeof(want), "offset %" PRIu64 " ", pos[k].start % TW_SEG);
    tw_expect_open_fails(work, "0000000000000001.seg", want);

    tw_copy_dir(src, work);
    tw_flip(tw_seg_path(work, 0), pos[last0].start % TW_SEG + 1);
    snprintf(want, sizeof(want), "offset %" PRIu64 " ", pos[last0].start % TW_SEG);
    tw_expect_open_fails(work, "0000000000000000.seg", want);

    /* The switch record itself. */
    tw_copy_dir(src, work);
    tw_flip(tw_seg_path(work, 0), pos[last0].lsn % TW_SEG + 2);
    snprintf(want, sizeof(want), "offset %" PRIu64 " ", pos[last0].lsn % TW_SEG);
    tw_expect_open_fails(work, "0000000000000000.seg", want);

    /* A missing segment in the middle. */
    tw_copy_dir(src, work);
    ck_assert_int_eq(unlink(tw_seg_path(work, 1)), 0);
    tw_expect_open_fails(work, "0000000000000001.seg", "0000000000000002.seg");
}
END_TEST

START_TEST(test_zeroed_4k_block)
{
    enum { N = 1200 };
    uint64_t lsns[N];
    static tw_pos pos[N];
    char src[512], work[512], want[64];
    snprintf(src, sizeof(src), "%s", tw_dir("zero-src"));
    snprintf(work, sizeof(work), "%s", tw_dir("zero-work"));
    wal_t *w = tw_open(src, TW_SEG, 0);
    tw_append_n(w, 0, N, lsns);
    wal_close(w);
    ck_assert_uint_eq(tw_positions(src, pos, N), N);
    uint64_t endseg = pos[N - 1].lsn / TW_SEG;
    ck_assert_uint_ge(endseg, 2);

    /* In the middle of segment 0: fatal, at the first record it touches. */
    size_t k = 0;
    while (pos[k].lsn <= 8192)
        k++;
    tw_copy_dir(src, work);
    tw_zero(tw_seg_path(work, 0), 8192, 4096);
    snprintf(want, sizeof(want), "offset %" PRIu64 " ", pos[k].start % TW_SEG);
    tw_expect_open_fails(work, "0000000000000000.seg", want);

    /* The first block of segment 1 (its header): fatal, segment 2 follows. */
    tw_copy_dir(src, work);
    tw_zero(tw_seg_path(work, 1), 0, 4096);
    tw_expect_open_fails(work, "0000000000000001.seg", NULL);

    /* The block that holds the tail: a torn tail, the records before it stay. */
    uint64_t end_off = pos[N - 1].lsn % TW_SEG;
    uint64_t block = (end_off - 1) / 4096 * 4096;
    uint64_t keep = 0;
    while (keep < N && pos[keep].lsn <= endseg * TW_SEG + block)
        keep++;
    tw_copy_dir(src, work);
    tw_zero(tw_seg_path(work, endseg), block, 4096);
    log_set_level(LOG_LVL_ERROR);
    tw_check_dir(work, 0, keep, lsns);
    w = tw_open(work, TW_SEG, 0);
    wal_info info;
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.records, keep);
    wal_close(w);
    tw_check_dir(work, 0, keep, lsns);
}
END_TEST

/* ---- stale segments ------------------------------------------------------ */

static void
tw_rewrite_header(const char *path, uint32_t *salt, uint64_t *epoch)
{
    uint8_t hdr[WAL_SEG_HDR_SIZE];
    wal_seg_header h;
    tw_file_read(path, 0, hdr, sizeof(hdr));
    ck_assert_int_eq(wal_seg_header_decode(hdr, sizeof(hdr), &h), WAL_HDR_OK);
    if (salt)
        h.salt = *salt;
    if (epoch)
        h.epoch = *epoch;
    wal_seg_header_encode(hdr, &h);
    tw_file_write(path, 0, hdr, sizeof(hdr));
}

START_TEST(test_stale_segments)
{
    enum { N = 1200 };
    uint64_t lsns[N];
    static tw_pos pos[N];
    char a[512], b[512], work[512], cmd[2048];
    snprintf(a, sizeof(a), "%s", tw_dir("stale-a"));
    snprintf(b, sizeof(b), "%s", tw_dir("stale-b"));
    snprintf(work, sizeof(work), "%s", tw_dir("stale-work"));
    log_set_level(LOG_LVL_ERROR);

    wal_t *w = tw_open(a, TW_SEG, 5);
    tw_append_n(w, 0, N, lsns);
    wal_close(w);
    w = tw_open(b, TW_SEG, 5);
    tw_append_n(w, 0, N, NULL);
    wal_close(w);
    ck_assert_uint_eq(tw_positions(a, pos, N), N);
    uint64_t endseg = pos[N - 1].lsn / TW_SEG;

    /* Files past the end whose header names another segment: not read,
     * removed at open. */
    tw_copy_dir(a, work);
    char p1[600], p2[600];
    snprintf(p1, sizeof(p1), "%s", tw_seg_path(work, endseg + 2));
    snprintf(p2, sizeof(p2), "%s", tw_seg_path(work, endseg + 3));
    char b0[600];
    snprintf(b0, sizeof(b0), "%s", tw_seg_path(b, 0));
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && cp '%s' '%s'", b0, p1, tw_seg_path(a, 0), p2);
    ck_assert_int_eq(system(cmd), 0);
    tw_check_dir(work, 0, N, lsns);
    w = tw_open(work, TW_SEG, 0);
    wal_info info;
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.records, N);
    ck_assert_uint_ge(info.removed_files, 2);
    wal_close(w);
    ck_assert(!tw_exists(p1));
    ck_assert(!tw_exists(p2));
    tw_check_dir(work, 0, N, lsns);

    /* Segment 1 of another log in the middle of this one: right number,
     * wrong salt.  Its records verify under their own salt, so the log is
     * refused, naming the segment. */
    tw_copy_dir(a, work);
    snprintf(p1, sizeof(p1), "%s", tw_seg_path(b, 1));
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p1, tw_seg_path(work, 1));
    ck_assert_int_eq(system(cmd), 0);
    tw_expect_open_fails(work, "0000000000000001.seg", "salt");

    /* The same at the end segment (the other log has one of that number). */
    ck_assert(tw_exists(tw_seg_path(b, endseg)));
    tw_copy_dir(a, work);
    snprintf(p1, sizeof(p1), "%s", tw_seg_path(b, endseg));
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p1, tw_seg_path(work, endseg));
    ck_assert_int_eq(system(cmd), 0);
    tw_expect_open_fails(work, "salt", NULL);

    /* A segment whose epoch is lower than its predecessor's. */
    tw_copy_dir(a, work);
    uint64_t low = 4;
    tw_rewrite_header(tw_seg_path(work, 2), NULL, &low);
    tw_expect_open_fails(work, "0000000000000002.seg", "epoch");

    /* A reused segment file (new header, new salt, old records behind it):
     * none of the old records is accepted. */
    const char *one = tw_dir("stale-one");
    uint64_t l1[40];
    w = tw_open(one, TW_SEG, 0);
    tw_append_n(w, 0, 40, l1);
    wal_close(w);
    uint32_t salt = 0x12345678;
    tw_rewrite_header(tw_seg_path(one, 0), &salt, NULL);
    tw_check_dir(one, 0, 0, NULL);
    w = tw_open(one, TW_SEG, 0);
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.records, 0);
    ck_assert_uint_gt(info.torn_bytes, 0);
    wal_wait_durable(w, tw_append_n(w, 0, 10, l1));
    wal_close(w);
    tw_check_dir(one, 0, 10, l1);

    /* A valid record copied to another position is not accepted there. */
    one = tw_dir("stale-copy");
    w = tw_open(one, TW_SEG, 0);
    tw_append_n(w, 0, 40, l1);
    wal_close(w);
    tw_pos p40[40];
    ck_assert_uint_eq(tw_positions(one, p40, 40), 40);
    uint8_t rec[512];
    size_t rsz = p40[3].lsn - p40[3].start;
    tw_file_read(tw_seg_path(one, 0), p40[3].start, rec, rsz);
    tw_file_write(tw_seg_path(one, 0), p40[39].lsn, rec, rsz);
    tw_check_dir(one, 0, 40, l1);
    w = tw_open(one, TW_SEG, 0);
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.records, 40);
    ck_assert_uint_gt(info.torn_bytes, 0);
    ck_assert_uint_le(info.torn_bytes, rsz);
    wal_close(w);
}
END_TEST

/* ---- checkpoint ---------------------------------------------------------- */

enum { CK_N = 6000 };

static size_t
tw_first_in_segment(const tw_pos *pos, size_t n, uint64_t segno)
{
    size_t k = 0;
    while (k < n && pos[k].start / TW_SEG < segno)
        k++;
    ck_assert_uint_lt(k, n);
    return k;
}

START_TEST(test_checkpoint_removes_exactly)
{
    static uint64_t lsns[CK_N];
    static tw_pos pos[CK_N];
    char err[512];
    const char *dir = tw_dir("ckpt");
    wal_t *w = tw_open(dir, TW_SEG, 0);
    wal_wait_durable(w, tw_append_n(w, 0, CK_N, lsns));
    uint64_t endseg = lsns[CK_N - 1] / TW_SEG;
    ck_assert_uint_ge(endseg, 10);
    for (size_t i = 0; i < CK_N; i++) {
        pos[i].lsn = lsns[i];
        pos[i].start = i == 0 ? WAL_SEG_HDR_SIZE : lsns[i - 1];
        if (pos[i].start % TW_SEG + wal_rec_size(tw_len(i)) + WAL_SWITCH_SIZE > TW_SEG)
            pos[i].start = (pos[i].start / TW_SEG + 1) * TW_SEG + WAL_SEG_HDR_SIZE;
        ck_assert_uint_eq(pos[i].start + wal_rec_size(tw_len(i)), pos[i].lsn);
    }
    size_t k = tw_first_in_segment(pos, CK_N, 5) + 3;
    uint64_t keep = pos[k].start;

    ck_assert(!wal_checkpoint(w, wal_flushed_lsn(w) + 1, err, sizeof(err)));
    ck_assert(wal_checkpoint(w, keep, err, sizeof(err)));
    for (uint64_t s = 0; s <= endseg; s++)
        ck_assert_msg(tw_exists(tw_seg_path(dir, s)) == (s >= 5), "segment %" PRIu64, s);
    ck_assert_uint_eq(wal_oldest_lsn(w), 5 * TW_SEG + WAL_SEG_HDR_SIZE);
    /* Idempotent; an older LSN removes nothing more. */
    ck_assert(wal_checkpoint(w, keep, err, sizeof(err)));
    ck_assert(wal_checkpoint(w, 100, err, sizeof(err)));
    ck_assert_int_eq(tw_count_segments(dir),
                     (int)(endseg - 5 + 1) + (tw_exists(tw_seg_path(dir, endseg + 1)) ? 1 : 0));

    /* Readers: from 0 = from the oldest retained; from a removed LSN = error. */
    size_t k5 = tw_first_in_segment(pos, CK_N, 5);
    wal_reader *r = wal_reader_open(w, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    tw_check_reader(r, k5, CK_N - k5, lsns);
    wal_reader_close(r);
    r = wal_reader_open(w, keep, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    tw_check_reader(r, k, CK_N - k, lsns);
    wal_reader_close(r);
    ck_assert_ptr_null(wal_reader_open(w, 2 * TW_SEG + 500, err, sizeof(err)));
    ck_assert_msg(strstr(err, "removed") != NULL, "%s", err);
    wal_close(w);

    w = tw_open(dir, TW_SEG, 0);
    wal_info info;
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.oldest_lsn, 5 * TW_SEG + WAL_SEG_HDR_SIZE);
    ck_assert_uint_eq(info.records, CK_N - k5);
    wal_close(w);
    tw_check_dir(dir, k5, CK_N - k5, lsns);
}
END_TEST

START_TEST(test_checkpoint_crash_mid_remove)
{
    static uint64_t lsns[CK_N];
    static tw_pos pos[CK_N];
    char err[512];
    const char *dir = tw_dir("ckpt-crash");
    wal_t *w = tw_open(dir, TW_SEG, 0);
    tw_append_n(w, 0, CK_N, lsns);
    wal_close(w);
    ck_assert_uint_eq(tw_positions(dir, pos, CK_N), CK_N);
    uint64_t endseg = lsns[CK_N - 1] / TW_SEG;
    size_t k = tw_first_in_segment(pos, CK_N, 6) + 1;
    uint64_t keep = pos[k].start;

    /* A child removes segments 0..5 and is killed after removing two. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!failpoint_configure("wal-checkpoint-mid-remove=kill@2", err, sizeof(err)))
            _exit(3);
        log_set_level(LOG_LVL_ERROR);
        wal_options o;
        wal_options_init(&o);
        wal_t *cw = wal_open(dir, &o, err, sizeof(err));
        if (cw == NULL)
            _exit(4);
        if (!wal_checkpoint(cw, keep, err, sizeof(err)))
            _exit(5);
        _exit(6);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

    /* The two oldest are gone, the rest is a contiguous run. */
    for (uint64_t s = 0; s <= endseg; s++)
        ck_assert_msg(tw_exists(tw_seg_path(dir, s)) == (s >= 2), "segment %" PRIu64, s);
    size_t k2 = tw_first_in_segment(pos, CK_N, 2);
    tw_check_dir(dir, k2, CK_N - k2, lsns);

    /* Recovery opens it; the checkpoint, run again, finishes the job. */
    w = tw_open(dir, TW_SEG, 0);
    wal_info info;
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.oldest_lsn, 2 * TW_SEG + WAL_SEG_HDR_SIZE);
    ck_assert_uint_eq(info.records, CK_N - k2);
    ck_assert(wal_checkpoint(w, keep, err, sizeof(err)));
    for (uint64_t s = 0; s <= endseg; s++)
        ck_assert_msg(tw_exists(tw_seg_path(dir, s)) == (s >= 6), "segment %" PRIu64, s);
    wal_reader *r = wal_reader_open(w, keep, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    tw_check_reader(r, k, CK_N - k, lsns);
    wal_reader_close(r);
    wal_close(w);
}
END_TEST

/* ---- concurrency --------------------------------------------------------- */

enum { CC_THREADS = 8, CC_PER = 2500 };

typedef struct cc_arg {
    wal_t *w;
    uint32_t id;
    uint64_t lsns[CC_PER];
} cc_arg;

static uint32_t
cc_len(uint32_t t, uint32_t seq)
{
    return 8 + (t * 31 + seq * 17) % 200;
}

static void *
cc_main(void *p)
{
    cc_arg *a = p;
    uint8_t buf[256];
    for (uint32_t seq = 0; seq < CC_PER; seq++) {
        uint32_t len = cc_len(a->id, seq);
        tw_payload(buf, len, ((uint64_t)a->id << 32) | seq);
        memcpy(buf, &a->id, 4);
        memcpy(buf + 4, &seq, 4);
        a->lsns[seq] = wal_append(a->w, (uint8_t)(a->id + 1), buf, len);
        if (a->id % 2 == 0 && seq % 100 == 99)
            wal_wait_durable(a->w, a->lsns[seq]);
    }
    return NULL;
}

static int
cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

START_TEST(test_concurrent_appenders)
{
    const char *dir = tw_dir("concurrent");
    wal_t *w = tw_open(dir, TW_SEG, 0);
    static cc_arg args[CC_THREADS];
    pthread_t th[CC_THREADS];
    for (uint32_t t = 0; t < CC_THREADS; t++) {
        args[t].w = w;
        args[t].id = t;
        ck_assert_int_eq(pthread_create(&th[t], NULL, cc_main, &args[t]), 0);
    }
    for (uint32_t t = 0; t < CC_THREADS; t++)
        pthread_join(th[t], NULL);

    static uint64_t all[CC_THREADS * CC_PER];
    uint64_t max = 0;
    for (uint32_t t = 0; t < CC_THREADS; t++)
        for (uint32_t s = 0; s < CC_PER; s++) {
            ck_assert_uint_ne(args[t].lsns[s], 0);
            if (s > 0)
                ck_assert_uint_gt(args[t].lsns[s], args[t].lsns[s - 1]);
            all[t * CC_PER + s] = args[t].lsns[s];
            if (args[t].lsns[s] > max)
                max = args[t].lsns[s];
        }
    qsort(all, CC_THREADS * CC_PER, sizeof(uint64_t), cmp_u64);
    for (size_t i = 1; i < CC_THREADS * CC_PER; i++)
        ck_assert_uint_gt(all[i], all[i - 1]);
    wal_wait_durable(w, max);
    ck_assert_uint_eq(wal_insert_lsn(w), max);

    /* Read back: every record whole, at the LSN its appender was given. */
    char err[512];
    wal_reader *r = wal_reader_open(w, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    wal_record rec;
    uint8_t buf[256];
    size_t n = 0;
    uint64_t prev = 0;
    while (wal_reader_next(r, &rec) == 1) {
        uint32_t t, seq;
        ck_assert_uint_ge(rec.len, 8);
        memcpy(&t, rec.payload, 4);
        memcpy(&seq, (const uint8_t *)rec.payload + 4, 4);
        ck_assert_uint_lt(t, CC_THREADS);
        ck_assert_uint_lt(seq, CC_PER);
        ck_assert_uint_eq(rec.type, t + 1);
        ck_assert_uint_eq(rec.len, cc_len(t, seq));
        ck_assert_uint_eq(rec.lsn, args[t].lsns[seq]);
        ck_assert_uint_eq(rec.lsn, all[n]);
        tw_payload(buf, rec.len, ((uint64_t)t << 32) | seq);
        ck_assert(memcmp(buf + 8, (const uint8_t *)rec.payload + 8, rec.len - 8) == 0);
        ck_assert_uint_gt(rec.lsn, prev);
        ck_assert(prev == 0 || rec.start_lsn == prev || rec.start_lsn % TW_SEG == WAL_SEG_HDR_SIZE);
        prev = rec.lsn;
        n++;
    }
    ck_assert_uint_eq(n, CC_THREADS * CC_PER);
    wal_reader_close(r);
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.records, CC_THREADS * CC_PER);
    wal_close(w);
}
END_TEST

/* ---- event loop ---------------------------------------------------------- */

typedef struct ev_ctx {
    wal_t *w;
    int fired;
    int bad;
    uint64_t last;
    int chain_left;
} ev_ctx;

static void
ev_cb(void *arg, uint64_t lsn)
{
    ev_ctx *c = arg;
    if (lsn > wal_flushed_lsn(c->w) || lsn < c->last)
        c->bad++;
    c->last = lsn;
    c->fired++;
}

static void
ev_chain_cb(void *arg, uint64_t lsn)
{
    ev_ctx *c = arg;
    uint8_t b = 1;
    if (lsn > wal_flushed_lsn(c->w))
        c->bad++;
    c->fired++;
    if (--c->chain_left > 0)
        wal_notify_durable(c->w, wal_append(c->w, 7, &b, 1), ev_chain_cb, c);
}

static void
ev_run_until(struct event_base *base, const int *counter, int want)
{
    uint64_t deadline = (uint64_t)time(NULL) + 20;
    while (*counter < want && (uint64_t)time(NULL) < deadline) {
        struct timeval tv = {0, 100000};
        event_base_loopexit(base, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
}

/* A record waited for from the loop is flushed at once even when an
 * earlier one is durable and its callback has not run yet (the loop was
 * busy): the writer must not leave it to the background flush, which is
 * set to a minute here so that the test fails rather than waits for it. */
START_TEST(test_event_loop_notify_behind_due_callback)
{
    const char *dir = tw_dir("evbehind");
    char err[256];
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    wal_options o;
    wal_options_init(&o);
    o.segment_size = TW_SEG;
    o.bg_flush_ms = 60000;
    wal_t *w = wal_open(dir, &o, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_msg(wal_attach_event_base(w, base, err, sizeof(err)), "%s", err);
    ev_ctx c = {.w = w};
    uint8_t b = 1;
    uint64_t a = wal_append(w, 7, &b, 1);
    wal_notify_durable(w, a, ev_cb, &c);
    for (int i = 0; i < 20000 && wal_flushed_lsn(w) < a; i++)
        usleep(1000);
    ck_assert_uint_ge(wal_flushed_lsn(w), a);
    ck_assert_int_eq(c.fired, 0); /* the loop has not run */
    wal_notify_durable(w, wal_append(w, 7, &b, 1), ev_cb, &c);
    ev_run_until(base, &c.fired, 2);
    ck_assert_int_eq(c.fired, 2);
    ck_assert_int_eq(c.bad, 0);
    wal_close(w);
    event_base_free(base);
}
END_TEST

START_TEST(test_event_loop_notify)
{
    const char *dir = tw_dir("evloop");
    char err[256];
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    wal_t *w = tw_open(dir, TW_SEG, 0);
    ck_assert_msg(wal_attach_event_base(w, base, err, sizeof(err)), "%s", err);
    ck_assert(!wal_attach_event_base(w, base, err, sizeof(err)));

    ev_ctx c = {.w = w};
    uint64_t lsns[500];
    tw_append_n(w, 0, 500, lsns);
    /* Out of order on purpose: callbacks still run in LSN order. */
    for (int i = 499; i >= 0; i--)
        wal_notify_durable(w, lsns[i], ev_cb, &c);
    ev_run_until(base, &c.fired, 500);
    ck_assert_int_eq(c.fired, 500);
    ck_assert_int_eq(c.bad, 0);

    /* Already durable: still called from the loop, not from inside notify. */
    wal_notify_durable(w, lsns[10], ev_cb, &c);
    ck_assert_int_eq(c.fired, 500);
    c.last = 0;
    ev_run_until(base, &c.fired, 501);
    ck_assert_int_eq(c.fired, 501);

    /* A callback that appends and asks again (re-entrancy). */
    ev_ctx c2 = {.w = w, .chain_left = 100};
    uint8_t b = 1;
    wal_notify_durable(w, wal_append(w, 7, &b, 1), ev_chain_cb, &c2);
    ev_run_until(base, &c2.fired, 100);
    ck_assert_int_eq(c2.fired, 100);
    ck_assert_int_eq(c2.bad, 0);

    /* Pending callbacks at close: wal_close's last flush makes their
     * records durable and it calls them, once, in LSN order, before it
     * returns — whether or not the loop ever runs again. */
    ev_ctx c3 = {.w = w};
    uint64_t l1 = wal_append(w, 7, &b, 1), l2 = wal_append(w, 7, &b, 1);
    wal_notify_durable(w, l2, ev_cb, &c3);
    wal_notify_durable(w, l1, ev_cb, &c3);
    wal_close(w);
    ck_assert_int_eq(c3.fired, 2);
    ck_assert_int_eq(c3.bad, 0);
    ck_assert_uint_eq(c3.last, l2);
    event_base_free(base);
}
END_TEST

START_TEST(test_unwaited_records_become_durable)
{
    /* Nobody waits and no loop is attached: the writer flushes anyway. */
    const char *dir = tw_dir("unwaited");
    uint64_t lsns[50];
    char err[256];
    wal_options o;
    wal_options_init(&o);
    o.segment_size = TW_SEG;
    o.bg_flush_ms = 5; /* idle after 8 quiet periods: 40 ms */
    wal_t *w = wal_open(dir, &o, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    uint64_t last = tw_append_n(w, 0, 50, lsns);
    for (int i = 0; i < 2000 && wal_flushed_lsn(w) < last; i++)
        usleep(1000);
    ck_assert_uint_eq(wal_flushed_lsn(w), last);
    ck_assert_uint_eq(wal_pending_bytes(w), 0);
    /* Again after the writer has gone idle. */
    usleep(50 * 1000);
    last = tw_append_n(w, 0, 1, lsns);
    for (int i = 0; i < 2000 && wal_flushed_lsn(w) < last; i++)
        usleep(1000);
    ck_assert_uint_eq(wal_flushed_lsn(w), last);
    wal_close(w);
}
END_TEST

/* Group commit counts the records somebody waits for, not all records: a
 * lone committer whose batches also carry a record nobody waits for (the
 * coordinator's END of its previous transaction) must not make the next
 * flush wait for a second commit that is not coming.  Each fdatasync is
 * made to take 2 ms (failpoint), so the gather window is the same on every
 * disk: counting records, every second flush below would gather (20 in
 * all); counting waits, none does.  (That groups still form is measured by
 * make bench-wal: about 55 records per fdatasync with 64 appenders.) */
START_TEST(test_gather_counts_waits_not_records)
{
    const char *dir = tw_dir("gather");
    char err[256];
    wal_options o;
    wal_options_init(&o);
    o.segment_size = TW_SEG;
    o.bg_flush_ms = 60000; /* no background flush gets in the way */
    wal_t *w = wal_open(dir, &o, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_msg(failpoint_configure("wal-fsync=sleep:2", err, sizeof(err)), "%s", err);
    uint8_t b = 1;
    for (int i = 0; i < 20; i++) {
        /* one batch: a record nobody waits for, and a waited one */
        wal_append(w, 7, &b, 1);
        wal_wait_durable(w, wal_append(w, 7, &b, 1));
        /* the next: one waited record, alone */
        wal_wait_durable(w, wal_append(w, 7, &b, 1));
    }
    ck_assert(failpoint_configure("", err, sizeof(err)));
    wal_stats st;
    wal_get_stats(w, &st);
    ck_assert_uint_eq(st.gathers, 0);
    ck_assert_uint_eq(st.records, 60);
    wal_close(w);
}
END_TEST

/* ---- epochs -------------------------------------------------------------- */

typedef struct ep_ctx {
    uint64_t epochs[16];
    int n;
} ep_ctx;

static void
ep_seg(void *arg, const wal_seg_header *h)
{
    ep_ctx *c = arg;
    if (c->n < 16)
        c->epochs[c->n++] = h->epoch;
}

static void
tw_epochs(const char *dir, ep_ctx *c)
{
    char err[512];
    wal_scan_result res;
    wal_scan_cb cb = {.segment = ep_seg, .arg = c};
    memset(c, 0, sizeof(*c));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert(wal_scan(dfd, TW_SEG, &cb, &res, err, sizeof(err)));
    wal_scan_result_free(&res);
    close(dfd);
}

START_TEST(test_epochs)
{
    const char *dir = tw_dir("epoch");
    ep_ctx c;
    wal_t *w = tw_open(dir, TW_SEG, 3);
    ck_assert_uint_eq(wal_epoch(w), 3);
    ck_assert(!wal_set_epoch(w, 2));
    /* Before the first record: the pending header takes it, no new segment. */
    ck_assert(wal_set_epoch(w, 4));
    uint64_t l = tw_append_n(w, 0, 10, NULL);
    ck_assert_uint_eq(l / TW_SEG, 0);
    ck_assert(wal_set_epoch(w, 4));
    l = tw_append_n(w, 10, 1, NULL);
    ck_assert_uint_eq(l / TW_SEG, 0);
    /* A higher epoch: the next record opens a segment stamped with it. */
    ck_assert(wal_set_epoch(w, 6));
    l = tw_append_n(w, 11, 5, NULL);
    ck_assert_uint_eq(l / TW_SEG, 1);
    wal_close(w);
    tw_epochs(dir, &c);
    ck_assert_int_eq(c.n, 2);
    ck_assert_uint_eq(c.epochs[0], 4);
    ck_assert_uint_eq(c.epochs[1], 6);

    /* Reopen: the highest epoch is found; a lower option does not lower it. */
    w = tw_open(dir, TW_SEG, 1);
    wal_info info;
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.highest_epoch, 6);
    ck_assert_uint_eq(wal_epoch(w), 6);
    l = tw_append_n(w, 16, 1, NULL);
    ck_assert_uint_eq(l / TW_SEG, 1);
    wal_close(w);
    /* A higher epoch at open starts a new segment too. */
    w = tw_open(dir, TW_SEG, 9);
    l = tw_append_n(w, 17, 1, NULL);
    ck_assert_uint_eq(l / TW_SEG, 2);
    wal_close(w);
    tw_epochs(dir, &c);
    ck_assert_int_eq(c.n, 3);
    ck_assert_uint_eq(c.epochs[2], 9);
    tw_check_dir(dir, 0, 18, NULL);
}
END_TEST

/* ---- failure rules ------------------------------------------------------- */

/* Run a child that appends under a failpoint and waits for durability;
 * return its wait status, its stderr in out, and whether it said "acked". */
static int
tw_run_failing_child(const char *dir, const char *spec, char *out, size_t outlen, bool *acked)
{
    int errp[2], ackp[2];
    ck_assert_int_eq(pipe(errp), 0);
    ck_assert_int_eq(pipe(ackp), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[512];
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(errp[1], 2);
        close(errp[0]);
        close(ackp[0]);
        if (!failpoint_configure(spec, err, sizeof(err)))
            _exit(3);
        wal_t *cw = wal_open(dir, NULL, err, sizeof(err));
        if (cw == NULL)
            _exit(4);
        uint8_t b[100] = {0};
        uint64_t lsn = wal_append(cw, 1, b, sizeof(b));
        wal_wait_durable(cw, lsn);
        if (write(ackp[1], "acked", 5) != 5)
            _exit(5);
        _exit(0);
    }
    close(errp[1]);
    close(ackp[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outlen && (r = read(errp[0], out + n, outlen - n - 1)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    char ack[8];
    *acked = read(ackp[0], ack, sizeof(ack)) > 0;
    close(errp[0]);
    close(ackp[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

START_TEST(test_failed_fsync_or_write_panics)
{
    char out[8192];
    bool acked;
    int st =
        tw_run_failing_child(tw_dir("panic-fsync"), "wal-fsync=error", out, sizeof(out), &acked);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, out);
    ck_assert(!acked);
    ck_assert_msg(strstr(out, "PANIC") && strstr(out, "could not fdatasync file") &&
                      strstr(out, "0000000000000000.seg"),
                  "stderr: %s", out);

    st = tw_run_failing_child(tw_dir("panic-write"), "wal-write=error", out, sizeof(out), &acked);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, out);
    ck_assert(!acked);
    ck_assert_msg(strstr(out, "PANIC") && strstr(out, "could not write to file") &&
                      strstr(out, "No space left on device"),
                  "stderr: %s", out);
}
END_TEST

START_TEST(test_segment_preparation_failure_falls_back)
{
    char err[256];
    uint64_t lsns[1500];
    const char *dir = tw_dir("prep-fail");
    log_set_level(LOG_LVL_ERROR);
    /* Pass 1 creates segment 0 at open; pass 2 is the preparer's segment 1. */
    ck_assert(failpoint_configure("wal-segment-create=error@2", err, sizeof(err)));
    wal_t *w = tw_open(dir, TW_SEG, 0);
    wal_wait_durable(w, tw_append_n(w, 0, 1500, lsns));
    ck_assert_uint_ge(lsns[1499] / TW_SEG, 2);
    ck_assert_uint_ge(failpoint_passes("wal-segment-create"), 3);
    tw_check_live(w, 0, 1500, lsns);
    wal_close(w);
    ck_assert(failpoint_configure("", err, sizeof(err)));
    tw_check_dir(dir, 0, 1500, lsns);
}
END_TEST

/* ---- dtx-waldump ---------------------------------------------------------- */

static bool
tw_waldump_path(char *out, size_t len)
{
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    snprintf(out, len, "%s/../bin/dtx-waldump", dirname(self));
    return access(out, X_OK) == 0;
}

/* Run dtx-waldump with one argument (and an optional second); its exit
 * code, stdout and stderr in out. */
static int
tw_waldump(const char *tool, const char *arg1, const char *arg2, char *out, size_t outlen)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        execl(tool, tool, arg1, arg2, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    char sink[4096];
    while ((r = read(p[0], n + 1 < outlen ? out + n : sink,
                     n + 1 < outlen ? outlen - n - 1 : sizeof(sink))) > 0)
        if (n + 1 < outlen)
            n += (size_t)r;
    out[n < outlen ? n : outlen - 1] = '\0';
    close(p[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(test_waldump)
{
    char tool[600];
    static char out[1 << 16];
    if (!tw_waldump_path(tool, sizeof(tool))) {
        fprintf(stderr, "test_waldump: dtx-waldump not built next to the tests; skipped\n");
        return;
    }
    uint64_t lsns[300];
    tw_pos pos[300];
    char src[512], work[512];
    snprintf(src, sizeof(src), "%s", tw_dir("dump-src"));
    snprintf(work, sizeof(work), "%s", tw_dir("dump-work"));
    wal_t *w = tw_open(src, TW_SEG, 2);
    tw_append_n(w, 0, 300, lsns);
    wal_close(w);
    ck_assert_uint_eq(tw_positions(src, pos, 300), 300);

    ck_assert_int_eq(tw_waldump(tool, src, NULL, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "300 records") && strstr(out, "log is valid") &&
                      strstr(out, "type 1  len 0") && strstr(out, "epoch 2"),
                  "%s", out);
    ck_assert_int_eq(tw_waldump(tool, "--quiet", src, out, sizeof(out)), 0);
    ck_assert_ptr_null(strstr(out, "type 1"));

    /* A torn tail is reported, and is not an error. */
    tw_copy_dir(src, work);
    tw_zero(tw_seg_path(work, 0), pos[299].start + 10, pos[299].lsn - pos[299].start - 10);
    ck_assert_int_eq(tw_waldump(tool, work, NULL, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "299 records") && strstr(out, "torn tail"), "%s", out);

    /* Damage in the middle: exit 1, segment and offset named. */
    tw_copy_dir(src, work);
    tw_flip(tw_seg_path(work, 0), pos[100].start + 30);
    char want[64];
    snprintf(want, sizeof(want), "offset %" PRIu64 " ", pos[100].start % TW_SEG);
    ck_assert_int_eq(tw_waldump(tool, work, NULL, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "error") && strstr(out, "0000000000000000.seg") && strstr(out, want),
                  "%s", out);

    ck_assert_int_eq(tw_waldump(tool, "--help", NULL, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "Usage") != NULL, "%s", out);
    ck_assert_int_eq(tw_waldump(tool, NULL, NULL, out, sizeof(out)), 2);
    ck_assert_int_eq(tw_waldump(tool, "--bogus", src, out, sizeof(out)), 2);
    ck_assert_int_eq(tw_waldump(tool, "/nonexistent-dir", NULL, out, sizeof(out)), 1);
}
END_TEST

static Suite *
wal_suite(void)
{
    Suite *s = suite_create("wal");
    TCase *tc = tw_tcase("basic", 120);
    tcase_add_test(tc, test_roundtrip_many_segments);
    tcase_add_test(tc, test_record_sizes_zero_and_max);
    tcase_add_test(tc, test_reopen_keeps_segment_size_and_locks);
    tcase_add_test(tc, test_concurrent_appenders);
    tcase_add_test(tc, test_event_loop_notify);
    tcase_add_test(tc, test_event_loop_notify_behind_due_callback);
    tcase_add_test(tc, test_unwaited_records_become_durable);
    tcase_add_test(tc, test_gather_counts_waits_not_records);
    tcase_add_test(tc, test_epochs);
    suite_add_tcase(s, tc);

    tc = tw_tcase("recovery", 120);
    tcase_add_test(tc, test_truncate_last_record_every_offset);
    tcase_add_test(tc, test_flip_each_byte_of_last_record);
    tcase_add_test(tc, test_damage_in_the_middle_is_fatal);
    tcase_add_test(tc, test_zeroed_4k_block);
    tcase_add_test(tc, test_stale_segments);
    suite_add_tcase(s, tc);

    tc = tw_tcase("checkpoint", 120);
    tcase_add_test(tc, test_checkpoint_removes_exactly);
    tcase_add_test(tc, test_checkpoint_crash_mid_remove);
    suite_add_tcase(s, tc);

    tc = tw_tcase("failure", 120);
    tcase_add_test(tc, test_failed_fsync_or_write_panics);
    tcase_add_test(tc, test_segment_preparation_failure_falls_back);
    tcase_add_test(tc, test_waldump);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    log_init("test_wal");
    SRunner *sr = srunner_create(wal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
