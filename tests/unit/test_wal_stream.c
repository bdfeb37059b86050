/*
 * test_wal_stream.c — streaming the log to a standby: the primary's raw
 * chunks (wal_reader_next_chunk), the standby's verified raw appends
 * (wal_append_raw), promotion after raw appends, and cutting a log back
 * (wal_truncate) for an old primary that rejoins.
 *
 * The standby's log must be the primary's byte for byte, so most tests end by
 * comparing segment files.  A promoted standby must continue the log exactly
 * as a reopened copy of the same bytes would: both are given the same salt
 * seed (wal_seed_salts) and compared byte for byte.
 */
#include "test_wal_util.h"
#include "crc32c.h"
#include "log.h"

#include <event2/event.h>
#include <libgen.h>
#include <sys/wait.h>

#define TS_BIG 60000 /* < wal_max_payload of 64 KiB segments (65416) */

static uint8_t ts_buf[TS_BIG];

/* Record i: mostly small, every 13th one large (about a segment). */
static uint32_t
ts_len(uint64_t i)
{
    if (i % 13 == 5)
        return 20000 + (uint32_t)((i * 7919) % 40000);
    return (uint32_t)((i * 37) % 301);
}

static uint64_t
ts_append(wal_t *w, uint64_t first, uint64_t n, uint64_t *lsns)
{
    uint64_t lsn = 0;
    for (uint64_t i = first; i < first + n; i++) {
        uint32_t len = ts_len(i);
        tw_payload(ts_buf, len, i);
        lsn = wal_append(w, tw_type(i), ts_buf, len);
        ck_assert_uint_ne(lsn, 0);
        if (lsns)
            lsns[i] = lsn;
    }
    return lsn;
}

/* The log in dir holds records first..first+n-1 of the pattern, in order. */
static void
ts_check_records(const char *dir, uint64_t first, uint64_t n)
{
    char err[1024];
    wal_record rec;
    uint64_t i = first;
    int rc;
    wal_reader *r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    while ((rc = wal_reader_next(r, &rec)) == 1) {
        ck_assert_msg(i < first + n, "extra record at %" PRIu64, rec.lsn);
        ck_assert_uint_eq(rec.type, tw_type(i));
        ck_assert_uint_eq(rec.len, ts_len(i));
        tw_payload(ts_buf, rec.len, i);
        ck_assert(rec.len == 0 || memcmp(ts_buf, rec.payload, rec.len) == 0);
        i++;
    }
    ck_assert_msg(rc == 0, "%s", wal_reader_error(r));
    ck_assert_uint_eq(i, first + n);
    wal_reader_close(r);
}

/* ---- copying through chunks --------------------------------------------- */

typedef struct ts_pump_res {
    uint64_t chunks;
    uint64_t last;     /* LSN of the last record taken */
    bool after_switch; /* the last chunk ended with a switch record */
} ts_pump_res;

/* Where the next chunk of a reader must start. */
typedef struct ts_cursor {
    uint64_t from;     /* the reader's from_lsn */
    bool started;      /* a chunk has been read */
    uint64_t prev_end; /* end of the previous chunk */
    bool after_switch; /* ...which ended with a switch record */
} ts_cursor;

static void
ts_cursor_check(ts_cursor *cur, uint64_t pos, uint32_t S)
{
    if (!cur->started && cur->from == 0)
        ck_assert_uint_eq(pos % S, 0);
    else if (!cur->started)
        ck_assert_uint_eq(pos, cur->from % S == WAL_SEG_HDR_SIZE ? cur->from - WAL_SEG_HDR_SIZE
                                                                 : cur->from);
    else if (cur->after_switch)
        ck_assert_uint_eq(pos, ((cur->prev_end - 1) / S + 1) * S);
    else
        ck_assert_uint_eq(pos, cur->prev_end);
    cur->started = true;
}

/* Feed the chunks of r into dst, at most max_chunks (0 = all there are),
 * checking the rules a chunk follows (cur: where r stands); wait until dst
 * has made them durable. */
static ts_pump_res
ts_pump(wal_reader *r, wal_t *dst, ts_cursor *cur, size_t max, uint64_t max_chunks)
{
    ts_pump_res res = {0};
    char err[1024];
    uint32_t S = wal_segment_size(dst);
    uint64_t pos;
    const void *b;
    size_t len;
    int rc = 0;
    while ((max_chunks == 0 || res.chunks < max_chunks) &&
           (rc = wal_reader_next_chunk(r, &pos, &b, &len, max)) == 1) {
        const uint8_t *p = b;
        ck_assert_uint_gt(len, 0);
        ck_assert_msg(pos / S == (pos + len - 1) / S, "chunk at %" PRIu64 " crosses a segment",
                      pos);
        ts_cursor_check(cur, pos, S);
        size_t off = pos % S == 0 ? WAL_SEG_HDR_SIZE : 0;
        if (off)
            ck_assert_uint_eq(wal_get_u32(p), WAL_SEG_MAGIC);
        if (len > max) { /* only one record, larger than max */
            uint32_t rl = p[off + 16] == WAL_TYPE_SWITCH ? WAL_SWITCH_SIZE
                                                         : wal_rec_size(wal_get_u32(p + off + 4));
            ck_assert_uint_eq(off + rl, len);
        }
        res.last = wal_append_raw(dst, pos, b, len, err, sizeof(err));
        ck_assert_msg(res.last != 0, "wal_append_raw: %s", err);
        ck_assert_uint_eq(res.last, wal_insert_lsn(dst));
        res.after_switch = res.last % S == WAL_SEG_HDR_SIZE && res.last / S == pos / S + 1;
        cur->after_switch = res.after_switch;
        cur->prev_end = pos + len;
        res.chunks++;
    }
    ck_assert_msg(rc >= 0, "reader: %s", wal_reader_error(r));
    if (res.last)
        wal_wait_durable(dst, res.last);
    return res;
}

/* Copy what src has made durable into dst, from where dst's log ends. */
static ts_pump_res
ts_copy(wal_t *src, wal_t *dst, size_t max, uint64_t max_chunks)
{
    char err[1024];
    uint64_t from = wal_stream_from(dst);
    wal_reader *r = wal_reader_open(src, from, err, sizeof(err));
    ck_assert_msg(r != NULL, "wal_reader_open(%" PRIu64 "): %s", from, err);
    ts_cursor cur = {.from = from};
    ts_pump_res res = ts_pump(r, dst, &cur, max, max_chunks);
    wal_reader_close(r);
    return res;
}

static void
ts_read_seg(const char *dir, uint64_t segno, uint8_t *buf, uint32_t S)
{
    memset(buf, 0, S);
    const char *path = tw_seg_path(dir, segno);
    if (!tw_exists(path))
        return;
    int fd = open(path, O_RDONLY);
    ck_assert(fd >= 0);
    ck_assert_int_eq(pread(fd, buf, S, 0), (ssize_t)S);
    close(fd);
}

/* Directories a and b hold the same log from segment from_seg on: every
 * segment file is identical, and a file that only one has holds zeros (a
 * preallocated segment). */
static void
ts_same_files(const char *a, const char *b, uint64_t from_seg)
{
    uint32_t S = TW_SEG;
    uint8_t *x = malloc(S), *y = malloc(S);
    uint64_t *sa, *sb;
    size_t na, nb;
    char err[256];
    int fa = open(a, O_RDONLY | O_DIRECTORY), fb = open(b, O_RDONLY | O_DIRECTORY);
    ck_assert(fa >= 0 && fb >= 0);
    ck_assert(wal_seg_list(fa, &sa, &na, err, sizeof(err)));
    ck_assert(wal_seg_list(fb, &sb, &nb, err, sizeof(err)));
    close(fa);
    close(fb);
    uint64_t hi = 0;
    if (na)
        hi = sa[na - 1];
    if (nb && sb[nb - 1] > hi)
        hi = sb[nb - 1];
    for (uint64_t s = from_seg; s <= hi; s++) {
        ts_read_seg(a, s, x, S);
        ts_read_seg(b, s, y, S);
        if (memcmp(x, y, S) != 0) {
            uint32_t i = 0;
            while (x[i] == y[i])
                i++;
            ck_abort_msg("segment %" PRIu64 " differs at offset %u between %s and %s", s, i, a, b);
        }
    }
    free(sa);
    free(sb);
    free(x);
    free(y);
}

/* Copy the segment files of a log that is open (all of it durable, nothing
 * pending) into a new directory: a listing rather than cp -r, which trips on
 * the preparer's temporary file being renamed. */
static void
ts_copy_open_log(const char *src, const char *dst)
{
    uint8_t *buf = malloc(TW_SEG);
    uint64_t *segs;
    size_t n;
    char err[256], path[600];
    int fd = open(src, O_RDONLY | O_DIRECTORY);
    ck_assert(fd >= 0);
    ck_assert(wal_seg_list(fd, &segs, &n, err, sizeof(err)));
    close(fd);
    tw_rm_rf(dst);
    ck_assert_int_eq(mkdir(dst, 0700), 0);
    for (size_t i = 0; i < n; i++) {
        ts_read_seg(src, segs[i], buf, TW_SEG);
        snprintf(path, sizeof(path), "%s", tw_seg_path(dst, segs[i]));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        ck_assert(fd >= 0);
        ck_assert_int_eq(pwrite(fd, buf, TW_SEG, 0), (ssize_t)TW_SEG);
        close(fd);
    }
    free(segs);
    free(buf);
}

/* Open dir, check where its log ends, close it. */
static void
ts_reopen_check(const char *dir, uint64_t end_lsn, uint64_t epoch)
{
    wal_info info;
    wal_t *w = tw_open(dir, TW_SEG, 0);
    wal_get_info(w, &info);
    ck_assert_uint_eq(info.end_lsn, end_lsn);
    ck_assert_uint_eq(info.torn_bytes, 0);
    ck_assert_uint_eq(wal_insert_lsn(w), end_lsn);
    ck_assert_uint_eq(wal_epoch(w), epoch);
    wal_close(w);
}

/* ---- dtx-waldump ---------------------------------------------------------- */

static bool
ts_waldump_ok(const char *dir)
{
    char self[512], tool[600], out[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ck_assert(n > 0);
    self[n] = '\0';
    snprintf(tool, sizeof(tool), "%s/../bin/dtx-waldump", dirname(self));
    if (access(tool, X_OK) != 0) {
        fprintf(stderr, "dtx-waldump not built next to the tests; not run\n");
        return true;
    }
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        execl(tool, tool, "--quiet", dir, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(p[0], out + got, sizeof(out) - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(p[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "log is valid") != NULL &&
              strstr(out, "torn") == NULL;
    if (!ok)
        fprintf(stderr, "dtx-waldump %s: %s\n", dir, out);
    return ok;
}

/* A primary with epochs 1, 2 and 5 over about forty segments. */
static uint64_t
ts_primary(wal_t *p, uint64_t first)
{
    ts_append(p, first, 400, NULL);
    ck_assert(wal_set_epoch(p, 2));
    ts_append(p, first + 400, 200, NULL);
    ck_assert(wal_set_epoch(p, 5));
    uint64_t last = ts_append(p, first + 600, 200, NULL);
    wal_wait_durable(p, last);
    return first + 800;
}

static void ts_fix_hdr_crc(uint8_t *h);
static void ts_refused(wal_t *s, uint64_t pos, const uint8_t *bytes, size_t len, const char *want);

/* ---- copies --------------------------------------------------------------- */

START_TEST(test_copy_whole_log)
{
    char pdir[512], sdir[512];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("copy-p"));
    wal_t *p = tw_open(pdir, TW_SEG, 1);
    uint64_t n = ts_primary(p, 0);
    uint64_t end = wal_insert_lsn(p);
    ck_assert_uint_gt(end / TW_SEG, 20);

    const size_t maxes[] = {1, 700, 8192, 1u << 20};
    for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
        snprintf(sdir, sizeof(sdir), "%s", tw_dir("copy-s"));
        wal_t *s = tw_open(sdir, TW_SEG, 0);
        ck_assert_uint_eq(wal_stream_from(s), 0);
        ts_pump_res res = ts_copy(p, s, maxes[k], 0);
        ck_assert_uint_eq(res.last, end);
        ck_assert_uint_eq(wal_insert_lsn(s), end);
        ck_assert_uint_eq(wal_flushed_lsn(s), end);
        ck_assert_uint_eq(wal_stream_from(s), end);
        ck_assert_uint_eq(wal_epoch(s), 5);
        if (maxes[k] == 1)
            ck_assert_uint_ge(res.chunks, n);
        /* Nothing more: the reader is at the durable end. */
        ck_assert_uint_eq(ts_copy(p, s, maxes[k], 0).chunks, 0);
        wal_close(s);
        ts_same_files(pdir, sdir, 0);
        ts_reopen_check(sdir, end, 5);
        ts_check_records(sdir, 0, n);
    }
    ck_assert(ts_waldump_ok(sdir));
    wal_close(p);
}
END_TEST

static int ts_notified;

static void
ts_on_durable(void *arg, uint64_t lsn)
{
    (void)arg;
    (void)lsn;
    ts_notified++;
}

/* The standby follows a primary that is being written: one reader kept open
 * across rounds, reopened from the standby's end now and then, the standby
 * itself closed and reopened; durability also through the event loop. */
START_TEST(test_copy_live_incremental)
{
    char pdir[512], sdir[512], err[512];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("live-p"));
    snprintf(sdir, sizeof(sdir), "%s", tw_dir("live-s"));
    wal_t *p = tw_open(pdir, TW_SEG, 1);
    wal_t *s = tw_open(sdir, TW_SEG, 0);
    struct event_base *base = event_base_new();
    ck_assert(wal_attach_event_base(s, base, err, sizeof(err)));
    ts_cursor cur = {.from = wal_stream_from(s)};
    uint64_t i = 0;
    wal_reader *r = wal_reader_open(p, cur.from, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    for (int round = 0; round < 40; round++) {
        uint64_t k = 5 + (uint64_t)(round * 7) % 40;
        if (round % 9 == 4)
            ck_assert(wal_set_epoch(p, wal_epoch(p) + 1));
        wal_wait_durable(p, ts_append(p, i, k, NULL));
        i += k;
        ts_pump_res res = ts_pump(r, s, &cur, 3000, 1 + (uint64_t)round % 5);
        if (res.last) {
            ts_notified = 0;
            wal_notify_durable(s, res.last, ts_on_durable, NULL);
            while (ts_notified == 0)
                event_base_loop(base, EVLOOP_ONCE);
        }
        if (round % 4 == 3) { /* a new reader from the standby's end */
            wal_reader_close(r);
            cur = (ts_cursor){.from = wal_stream_from(s)};
            r = wal_reader_open(p, cur.from, err, sizeof(err));
            ck_assert_msg(r != NULL, "%s", err);
        }
        if (round % 10 == 6) { /* the standby restarts */
            wal_reader_close(r);
            wal_close(s);
            event_base_free(base);
            s = tw_open(sdir, TW_SEG, 0);
            base = event_base_new();
            ck_assert(wal_attach_event_base(s, base, err, sizeof(err)));
            cur = (ts_cursor){.from = wal_stream_from(s)};
            r = wal_reader_open(p, cur.from, err, sizeof(err));
            ck_assert_msg(r != NULL, "%s", err);
        }
    }
    ts_pump(r, s, &cur, 3000, 0);
    wal_reader_close(r);
    uint64_t end = wal_insert_lsn(p);
    ck_assert_uint_eq(wal_insert_lsn(s), end);
    uint64_t epoch = wal_epoch(p);
    wal_close(s);
    event_base_free(base);
    wal_close(p);
    ts_same_files(pdir, sdir, 0);
    ts_reopen_check(sdir, end, epoch);
    ts_check_records(sdir, 0, i);
    ck_assert(ts_waldump_ok(sdir));
}
END_TEST

/* An empty standby copies the segments the primary still keeps: its log
 * begins at the oldest one, header included, and its own empty files
 * (segment 0 and the preallocated next one) are gone. */
START_TEST(test_empty_standby_after_checkpoint)
{
    char pdir[512], sdir[512], err[512];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("ckpt-p"));
    snprintf(sdir, sizeof(sdir), "%s", tw_dir("ckpt-s"));
    wal_t *p = tw_open(pdir, TW_SEG, 1);
    uint64_t n = ts_primary(p, 0);
    ck_assert(wal_checkpoint(p, 7 * TW_SEG + 100, err, sizeof(err)));
    ck_assert_uint_eq(wal_oldest_lsn(p), 7 * TW_SEG + WAL_SEG_HDR_SIZE);

    wal_t *s = tw_open(sdir, TW_SEG, 0);
    wal_wait_durable(p, ts_append(p, n, 1, NULL)); /* the preparer has run meanwhile */
    n++;
    ck_assert(tw_exists(tw_seg_path(sdir, 0)));
    ts_pump_res res = ts_copy(p, s, 5000, 1);
    ck_assert_uint_eq(res.chunks, 1);
    ck_assert_uint_eq(wal_oldest_lsn(s), wal_oldest_lsn(p));
    ck_assert(!tw_exists(tw_seg_path(sdir, 0)));
    ck_assert(!tw_exists(tw_seg_path(sdir, 1)));
    ts_copy(p, s, 5000, 0);
    uint64_t end = wal_insert_lsn(p);
    ck_assert_uint_eq(wal_insert_lsn(s), end);
    wal_close(s);
    ts_same_files(pdir, sdir, 7);
    ck_assert_int_eq(tw_count_segments(sdir) > 0, 1);
    for (uint64_t g = 0; g < 7; g++)
        ck_assert(!tw_exists(tw_seg_path(sdir, g)));
    ts_reopen_check(sdir, end, 5);
    ck_assert(ts_waldump_ok(sdir));

    /* A standby whose empty log sits past the primary's oldest segment (it
     * was cut back to nothing after a checkpoint of its own) moves back. */
    s = tw_open(sdir, TW_SEG, 0);
    ck_assert(wal_checkpoint(s, 12 * TW_SEG + 100, err, sizeof(err)));
    ck_assert(wal_truncate(s, wal_oldest_lsn(s), err, sizeof(err)));
    ck_assert_uint_eq(wal_stream_from(s), 0);
    ck_assert_uint_eq(wal_oldest_lsn(s), 12 * TW_SEG + WAL_SEG_HDR_SIZE);
    ts_copy(p, s, 100000, 0);
    ck_assert_uint_eq(wal_oldest_lsn(s), wal_oldest_lsn(p));
    ck_assert_uint_eq(wal_insert_lsn(s), end);
    wal_close(s);
    wal_close(p);
    ts_same_files(pdir, sdir, 0);
    ts_reopen_check(sdir, end, 5);
    ck_assert(ts_waldump_ok(sdir));
}
END_TEST

/* A standby that already holds part of the log (a copy of the primary's
 * directory, or a log that ends right after a switch record) catches up from
 * its end. */
START_TEST(test_standby_mid_log)
{
    char pdir[512], sdir[512];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("mid-p"));
    snprintf(sdir, sizeof(sdir), "%s", tw_dir("mid-s"));
    wal_t *p = tw_open(pdir, TW_SEG, 1);
    uint64_t n = ts_primary(p, 0);
    wal_close(p);
    tw_copy_dir(pdir, sdir);
    p = tw_open(pdir, TW_SEG, 6);
    ts_append(p, n, 100, NULL);
    n += 100;
    wal_wait_durable(p, wal_insert_lsn(p));

    wal_t *s = tw_open(sdir, TW_SEG, 0);
    uint64_t from = wal_stream_from(s);
    ck_assert_uint_ne(from, 0);
    /* Up to a chunk that ends with a switch record, then a restart. */
    ts_pump_res res;
    do
        res = ts_copy(p, s, 2000, 1);
    while (!res.after_switch);
    wal_close(s);
    s = tw_open(sdir, TW_SEG, 0);
    from = wal_stream_from(s);
    ck_assert_uint_eq(from % TW_SEG, WAL_SEG_HDR_SIZE);
    res = ts_copy(p, s, 2000, 1);
    ck_assert_uint_eq(res.chunks, 1);

    /* Again, but the standby's own write of the next segment was cut short
     * after the header: the header is in its log, without a record. */
    do
        res = ts_copy(p, s, 2000, 1);
    while (!res.after_switch);
    wal_close(s);
    uint64_t segno = res.last / TW_SEG;
    uint8_t hdr[WAL_SEG_HDR_SIZE];
    tw_file_read(tw_seg_path(pdir, segno), 0, hdr, sizeof(hdr));
    int fd = open(tw_seg_path(sdir, segno), O_WRONLY | O_CREAT, 0600); /* if not prepared yet */
    ck_assert(fd >= 0 && ftruncate(fd, TW_SEG) == 0);
    close(fd);
    tw_file_write(tw_seg_path(sdir, segno), 0, hdr, sizeof(hdr));
    s = tw_open(sdir, TW_SEG, 0);
    ck_assert_uint_eq(wal_stream_from(s), res.last);
    res = ts_copy(p, s, 2000, 1);
    ck_assert_uint_eq(res.chunks, 1);
    ts_copy(p, s, 2000, 0);
    uint64_t end = wal_insert_lsn(p);
    ck_assert_uint_eq(wal_insert_lsn(s), end);
    ck_assert_uint_eq(wal_epoch(s), 6);
    wal_close(s);
    wal_close(p);
    ts_same_files(pdir, sdir, 0);
    ts_reopen_check(sdir, end, 6);
    ts_check_records(sdir, 0, n);
    ck_assert(ts_waldump_ok(sdir));
}
END_TEST

/* A standby that checkpointed every record away right after a switch record
 * still continues from its end (not from the primary's oldest segment, which
 * would deliver old records again), and the next header must still carry
 * the announced salt. */
START_TEST(test_standby_checkpointed_to_nothing)
{
    char pdir[512], sdir[512], err[512];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("none-p"));
    snprintf(sdir, sizeof(sdir), "%s", tw_dir("none-s"));
    wal_t *p = tw_open(pdir, TW_SEG, 1);
    ts_primary(p, 0);
    wal_t *s = tw_open(sdir, TW_SEG, 0);
    ts_pump_res res;
    uint64_t chunks = 0;
    do {
        res = ts_copy(p, s, 3000, 1);
        chunks++;
    } while (chunks < 20 || !res.after_switch);
    ck_assert(wal_checkpoint(s, res.last, err, sizeof(err)));
    ck_assert_uint_eq(wal_oldest_lsn(s), res.last);
    ck_assert_uint_eq(wal_stream_from(s), res.last);

    /* The next chunk, with another salt in its header, is refused. */
    wal_reader *r = wal_reader_open(p, res.last, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    uint64_t pos;
    const void *b;
    size_t len;
    ck_assert_int_eq(wal_reader_next_chunk(r, &pos, &b, &len, 3000), 1);
    ck_assert_uint_eq(pos, res.last - WAL_SEG_HDR_SIZE);
    uint8_t *bad = malloc(len);
    memcpy(bad, b, len);
    wal_put_u32(bad + 12, wal_get_u32(bad + 12) + 1);
    ts_fix_hdr_crc(bad);
    ts_refused(s, pos, bad, len, "announced by the previous segment");
    free(bad);
    wal_reader_close(r);

    ts_copy(p, s, 3000, 0);
    uint64_t end = wal_insert_lsn(p);
    ck_assert_uint_eq(wal_insert_lsn(s), end);
    wal_close(s);
    wal_close(p);
    ts_same_files(pdir, sdir, res.last / TW_SEG);
    ts_reopen_check(sdir, end, 5);
}
END_TEST

/* ---- refused chunks ------------------------------------------------------- */

typedef struct ts_chunk {
    uint64_t pos;
    uint8_t *bytes;
    size_t len;
} ts_chunk;

/* Every chunk of the log in dir, copied. */
static size_t
ts_chunks(const char *dir, size_t max, ts_chunk *out, size_t cap)
{
    char err[1024];
    const void *b;
    size_t n = 0;
    int rc;
    wal_reader *r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    while ((rc = wal_reader_next_chunk(r, &out[n].pos, &b, &out[n].len, max)) == 1) {
        out[n].bytes = malloc(out[n].len + TW_SEG);
        memset(out[n].bytes, 0, out[n].len + TW_SEG);
        memcpy(out[n].bytes, b, out[n].len);
        ck_assert_uint_lt(++n, cap);
    }
    ck_assert_int_eq(rc, 0);
    wal_reader_close(r);
    return n;
}

static void
ts_fix_hdr_crc(uint8_t *h)
{
    wal_put_u32(h + 60, crc32c_extend(0, h, 60));
}

static void
ts_fix_rec_crc(uint8_t *h, uint32_t salt)
{
    uint32_t crc = crc32c_extend(salt, h + 4, WAL_REC_HDR_SIZE - 4);
    wal_put_u32(h, crc32c_extend(crc, h + WAL_REC_HDR_SIZE, wal_get_u32(h + 4)));
}

/* wal_append_raw refuses the chunk, with a message that holds want, and
 * takes nothing. */
static void
ts_refused(wal_t *s, uint64_t pos, const uint8_t *bytes, size_t len, const char *want)
{
    char err[1024];
    wal_stats before, after;
    uint64_t insert = wal_insert_lsn(s);
    size_t pending = wal_pending_bytes(s);
    wal_get_stats(s, &before);
    err[0] = '\0';
    ck_assert_uint_eq(wal_append_raw(s, pos, bytes, len, err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    ck_assert_msg(strstr(err, "invalid chunk at ") != NULL && strchr(err, '/') != NULL,
                  "error \"%s\" names no position", err);
    ck_assert_uint_eq(wal_insert_lsn(s), insert);
    ck_assert_uint_eq(wal_pending_bytes(s), pending);
    wal_get_stats(s, &after);
    ck_assert_uint_eq(after.records, before.records);
    ck_assert_uint_eq(after.bytes, before.bytes);
}

static void
ts_accept(wal_t *s, const ts_chunk *c)
{
    char err[1024];
    ck_assert_msg(wal_append_raw(s, c->pos, c->bytes, c->len, err, sizeof(err)) != 0, "%s", err);
}

/* Corruptions of a chunk that starts a segment (s's state is right before
 * it).  prev_epoch: the previous segment's epoch, 0 if none. */
static void
ts_refuse_header(wal_t *s, const ts_chunk *c, bool chained, uint64_t prev_epoch)
{
    uint8_t *b = malloc(c->len + 8);
    uint32_t salt = wal_get_u32(c->bytes + 12);
#define TS_RESET() memcpy(b, c->bytes, c->len)
    TS_RESET();
    b[60] ^= 1;
    ts_refused(s, c->pos, b, c->len, "segment header checksum mismatch");
    TS_RESET();
    wal_put_u64(b + 16, wal_get_u64(b + 16) + 1);
    ts_fix_hdr_crc(b);
    ts_refused(s, c->pos, b, c->len, "header names segment");
    TS_RESET();
    wal_put_u32(b + 8, TW_SEG * 2);
    ts_fix_hdr_crc(b);
    ts_refused(s, c->pos, b, c->len, "segment size");
    TS_RESET();
    b[40] = 1;
    ts_fix_hdr_crc(b);
    ts_refused(s, c->pos, b, c->len, "reserved bytes in segment header");
    TS_RESET();
    b[0] ^= 0x20;
    ts_refused(s, c->pos, b, c->len, "magic");
    ts_refused(s, c->pos, c->bytes, WAL_SEG_HDR_SIZE, "holds no record");
    ts_refused(s, c->pos, c->bytes, 40, "incomplete segment header");
    /* Records of the segment come after its header, never without it. */
    ts_refused(s, c->pos + WAL_SEG_HDR_SIZE, c->bytes + WAL_SEG_HDR_SIZE, c->len - WAL_SEG_HDR_SIZE,
               "the log continues at");
    if (chained) {
        TS_RESET();
        wal_put_u32(b + 12, salt ^ 0x5A5A);
        ts_fix_hdr_crc(b);
        ts_refused(s, c->pos, b, c->len, "announced by the previous segment");
        TS_RESET();
        wal_put_u64(b + 24, prev_epoch - 1);
        ts_fix_hdr_crc(b);
        ts_refused(s, c->pos, b, c->len, "lower than the previous segment");
    }
#undef TS_RESET
    free(b);
}

/* Corruptions of a chunk of records (not starting a segment). */
static void
ts_refuse_records(wal_t *s, const ts_chunk *c, uint32_t salt)
{
    uint8_t *b = malloc(c->len + TW_SEG);
    uint32_t len0 = wal_get_u32(c->bytes + 4);
#define TS_RESET() memcpy(b, c->bytes, c->len)
    TS_RESET();
    b[1] ^= 0x10; /* the CRC */
    ts_refused(s, c->pos, b, c->len, "record checksum mismatch");
    if (len0 > 0) {
        TS_RESET();
        b[WAL_REC_HDR_SIZE] ^= 1; /* the payload */
        ts_refused(s, c->pos, b, c->len, "record checksum mismatch");
    }
    TS_RESET();
    wal_put_u64(b + 8, wal_get_u64(b + 8) + 8); /* the LSN, CRC fixed */
    ts_fix_rec_crc(b, salt);
    ts_refused(s, c->pos, b, c->len, "LSN does not match its position");
    TS_RESET();
    b[17] = 1; /* flags */
    ts_fix_rec_crc(b, salt);
    ts_refused(s, c->pos, b, c->len, "reserved bits");
    TS_RESET();
    ts_fix_rec_crc(b, salt ^ 1); /* written with another segment's salt */
    ts_refused(s, c->pos, b, c->len, "record checksum mismatch");
    if (len0 % 8 != 0) {
        TS_RESET();
        b[WAL_REC_HDR_SIZE + len0] = 0x7F;
        ts_refused(s, c->pos, b, c->len, "non-zero record padding");
    }
    /* Cut short: inside the last record, inside a header. */
    ts_refused(s, c->pos, c->bytes, c->len - 8, "incomplete record");
    ts_refused(s, c->pos, c->bytes, 16, "incomplete record header");
    /* Not where the log continues. */
    ts_refused(s, c->pos + 8, c->bytes, c->len, "the log continues at");
    ts_refused(s, c->pos - 8, c->bytes, c->len, "the log continues at");
    ts_refused(s, c->pos + c->len, c->bytes, c->len, "the log continues at");
    ts_refused(s, c->pos, c->bytes, 0, "empty chunk");
    /* Past the end of the segment. */
    ts_refused(s, c->pos, b, TW_SEG - c->pos % TW_SEG + 8, "cross the end of segment");
#undef TS_RESET
    free(b);
}

START_TEST(test_refuse_bad_chunks)
{
    enum { CAP = 4096 };
    char pdir[512], sdir[512];
    static ts_chunk ch[CAP];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("bad-p"));
    snprintf(sdir, sizeof(sdir), "%s", tw_dir("bad-s"));
    wal_t *p = tw_open(pdir, TW_SEG, 3);
    ts_append(p, 0, 200, NULL);
    ck_assert(wal_set_epoch(p, 4));
    ts_append(p, 200, 100, NULL);
    wal_close(p);
    size_t n = ts_chunks(pdir, 2500, ch, CAP);

    wal_t *s = tw_open(sdir, TW_SEG, 0);
    uint64_t epoch = 0;
    uint32_t salt = 0;
    int headers = 0, records = 0, switches = 0;
    for (size_t i = 0; i < n; i++) {
        const ts_chunk *c = &ch[i];
        if (c->pos % TW_SEG == 0) {
            ts_refuse_header(s, c, i > 0, epoch);
            epoch = wal_get_u64(c->bytes + 24);
            salt = wal_get_u32(c->bytes + 12);
            headers++;
        } else if (i % 2 == 0 && c->bytes[16] != WAL_TYPE_SWITCH) {
            ts_refuse_records(s, c, salt);
            records++;
        }
        /* A chunk that ends with a switch record: nothing may follow it,
         * and its reserved bytes are zero. */
        size_t sw = c->len - WAL_SWITCH_SIZE;
        if (c->len >= WAL_SWITCH_SIZE && c->bytes[sw + 16] == WAL_TYPE_SWITCH &&
            wal_get_u64(c->bytes + sw + 8) == (c->pos / TW_SEG + 1) * TW_SEG + WAL_SEG_HDR_SIZE &&
            c->pos % TW_SEG + c->len + 8 <= TW_SEG) {
            uint8_t *b = malloc(c->len + 8);
            memcpy(b, c->bytes, c->len);
            memset(b + c->len, 0, 8);
            memcpy(b + c->len, c->bytes + sw, 8); /* looks like a record start */
            ts_refused(s, c->pos, b, c->len + 8, "bytes follow the switch record");
            memcpy(b, c->bytes, c->len);
            b[sw + WAL_REC_HDR_SIZE + 5] = 1;
            ts_fix_rec_crc(b + sw, salt);
            ts_refused(s, c->pos, b, c->len, "reserved bytes in switch record");
            free(b);
            switches++;
        }
        ts_accept(s, c);
    }
    ck_assert_int_ge(headers, 3);
    ck_assert_int_ge(records, 10);
    ck_assert_int_ge(switches, 2);
    wal_wait_durable(s, wal_insert_lsn(s));
    uint64_t end = wal_insert_lsn(s);
    wal_close(s);
    ts_same_files(pdir, sdir, 0);
    ts_reopen_check(sdir, end, 4);
    for (size_t i = 0; i < n; i++)
        free(ch[i].bytes);
}
END_TEST

/* ---- promotion ------------------------------------------------------------ */

/* After raw appends, a promotion (wal_set_epoch, then wal_append) writes
 * exactly what a copy of the same bytes, reopened, would: the raw path left
 * the append state as wal_open derives it.  Both a standby whose log ends in
 * the middle of a segment and one whose log ends with a switch record; with
 * and without a new epoch. */
START_TEST(test_promote_byte_identical)
{
    char pdir[512], sdir[512], rdir[512], err[1024];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("prom-p"));
    wal_t *p = tw_open(pdir, TW_SEG, 1);
    uint64_t n = ts_primary(p, 0);
    for (int v = 0; v < 4; v++) {
        bool at_switch = v & 1, new_epoch = v & 2;
        snprintf(sdir, sizeof(sdir), "%s", tw_dir("prom-s"));
        snprintf(rdir, sizeof(rdir), "%s", tw_dir("prom-r"));
        wal_t *s = tw_open(sdir, TW_SEG, 0);
        ts_pump_res res;
        uint64_t chunks = 0;
        do {
            res = ts_copy(p, s, 3000, 1);
            chunks++;
        } while (res.chunks > 0 && (chunks < 40 || res.after_switch != at_switch));
        ck_assert_uint_eq(res.after_switch, at_switch);
        /* The reference: the same bytes, opened by wal_open. */
        ts_copy_open_log(sdir, rdir);
        wal_t *r = tw_open(rdir, TW_SEG, 0);
        ck_assert_uint_eq(wal_insert_lsn(r), wal_insert_lsn(s));
        ck_assert_uint_eq(wal_flushed_lsn(r), wal_flushed_lsn(s));
        ck_assert_uint_eq(wal_epoch(r), wal_epoch(s));
        uint64_t epoch = new_epoch ? 9 : wal_epoch(s), ends[2], marker[2];
        wal_t *both[2] = {s, r};
        for (int k = 0; k < 2; k++) {
            wal_seed_salts(both[k], 0xD7C0 + (uint64_t)v);
            if (new_epoch)
                ck_assert(wal_set_epoch(both[k], 9));
            uint8_t ep[16] = {0, 0, 0, 0, 0, 0, 0, 9};
            marker[k] = wal_append(both[k], 1, ep, sizeof(ep));
            ck_assert_uint_ne(marker[k], 0);
            ends[k] = ts_append(both[k], n, 120, NULL);
            wal_wait_durable(both[k], ends[k]);
            wal_close(both[k]);
        }
        ck_assert_uint_eq(marker[0], marker[1]);
        ck_assert_uint_eq(ends[0], ends[1]);
        ts_same_files(sdir, rdir, 0);
        ts_reopen_check(sdir, ends[0], epoch);
        ck_assert(ts_waldump_ok(sdir));
        /* The marker, and all after it, in a segment of the new epoch. */
        wal_record rec;
        wal_reader *rd = wal_reader_open_dir(sdir, marker[0] - 8, err, sizeof(err));
        ck_assert_msg(rd != NULL, "%s", err);
        ck_assert_int_eq(wal_reader_next(rd, &rec), 1);
        ck_assert_uint_eq(rec.lsn, marker[0]);
        ck_assert_uint_eq(rec.epoch, epoch);
        wal_reader_close(rd);
    }
    wal_close(p);
}
END_TEST

START_TEST(test_record_epoch_and_reader_rules)
{
    char pdir[512], err[512];
    snprintf(pdir, sizeof(pdir), "%s", tw_dir("rules-p"));
    wal_t *p = tw_open(pdir, TW_SEG, 2);
    uint64_t a = ts_append(p, 0, 30, NULL);
    ck_assert(wal_set_epoch(p, 3));
    uint64_t b = ts_append(p, 30, 30, NULL);
    wal_wait_durable(p, b);

    /* Records say their segment's epoch. */
    wal_reader *r = wal_reader_open(p, 0, err, sizeof(err));
    wal_record rec;
    int rc;
    while ((rc = wal_reader_next(r, &rec)) == 1)
        ck_assert_uint_eq(rec.epoch, rec.lsn <= a ? 2 : 3);
    ck_assert_int_eq(rc, 0);
    /* A reader returns records or chunks, not both. */
    uint64_t pos;
    const void *bytes;
    size_t len;
    ck_assert_int_eq(wal_reader_next_chunk(r, &pos, &bytes, &len, 100), -1);
    ck_assert(strstr(wal_reader_error(r), "not both") != NULL);
    wal_reader_close(r);

    /* A chunk starts only at the end of a record. */
    r = wal_reader_open(p, a - 8, err, sizeof(err));
    ck_assert(r != NULL);
    ck_assert_int_eq(wal_reader_next_chunk(r, &pos, &bytes, &len, 100), -1);
    ck_assert_msg(strstr(wal_reader_error(r), "not the end of a record"), "%s",
                  wal_reader_error(r));
    wal_reader_close(r);

    /* A live reader returns 0 at the durable end, and more once there is. */
    r = wal_reader_open(p, b, err, sizeof(err));
    ck_assert(r != NULL);
    ck_assert_int_eq(wal_reader_next_chunk(r, &pos, &bytes, &len, 100), 0);
    uint64_t c = ts_append(p, 60, 3, NULL);
    ck_assert_int_eq(wal_reader_next_chunk(r, &pos, &bytes, &len, 1 << 20), 0);
    wal_wait_durable(p, c);
    ck_assert_int_eq(wal_reader_next_chunk(r, &pos, &bytes, &len, 1 << 20), 1);
    ck_assert_uint_eq(pos, b);
    ck_assert_uint_eq(pos + len, c);
    ck_assert_int_eq(wal_reader_next_chunk(r, &pos, &bytes, &len, 1 << 20), 0);
    wal_reader_close(r);

    /* A position in a removed segment. */
    ck_assert(wal_checkpoint(p, 2 * TW_SEG + 64, err, sizeof(err)));
    ck_assert_ptr_null(wal_reader_open(p, 100, err, sizeof(err)));
    ck_assert(strstr(err, "has been removed") != NULL);
    wal_close(p);
}
END_TEST

/* ---- truncation ------------------------------------------------------------ */

/* Cut a copy of base back to its first k records (k = 0: the oldest
 * position), check, continue appending, and compare with a copy of the cut
 * log reopened and continued the same way. */
static void
ts_cut_and_continue(const char *base, const tw_pos *pos, size_t k, uint64_t nbase)
{
    char wdir[512], rdir[512], err[1024];
    snprintf(wdir, sizeof(wdir), "%s", tw_dir("cut-w"));
    snprintf(rdir, sizeof(rdir), "%s", tw_dir("cut-r"));
    tw_copy_dir(base, wdir);
    wal_t *w = tw_open(wdir, TW_SEG, 0);
    uint64_t epoch = wal_epoch(w);
    uint64_t lsn = k == 0 ? wal_oldest_lsn(w) : pos[k - 1].lsn;
    ck_assert_msg(wal_truncate(w, lsn, err, sizeof(err)), "cut to %zu: %s", k, err);
    ck_assert_uint_eq(wal_insert_lsn(w), lsn);
    ck_assert_uint_eq(wal_flushed_lsn(w), lsn);
    ck_assert_uint_eq(wal_epoch(w), epoch);
    ck_assert_uint_eq(wal_stream_from(w), k == 0 ? 0 : lsn);
    ts_copy_open_log(wdir, rdir);
    wal_t *r = tw_open(rdir, TW_SEG, epoch);
    ck_assert_uint_eq(wal_insert_lsn(r), lsn);
    wal_t *both[2] = {w, r};
    for (int i = 0; i < 2; i++) {
        wal_seed_salts(both[i], 77 + k);
        wal_wait_durable(both[i], ts_append(both[i], 1000 + k, 40, NULL));
        wal_close(both[i]);
    }
    ts_same_files(wdir, rdir, 0);
    ck_assert(ts_waldump_ok(wdir));
    /* The first k records, then the new ones: the cut ones are gone. */
    static tw_pos got[2000];
    size_t n = tw_positions(wdir, got, 2000);
    ck_assert_uint_eq(n, k + 40);
    for (size_t i = 0; i < k; i++)
        ck_assert_uint_eq(got[i].lsn, pos[i].lsn);
    /* The next record follows the cut, or a switch record there. */
    if (got[k].start != lsn)
        ck_assert_uint_eq(got[k].start, (lsn / TW_SEG + 1) * TW_SEG + WAL_SEG_HDR_SIZE);
    (void)nbase;
}

START_TEST(test_truncate)
{
    char base[512], err[1024];
    static tw_pos pos[2000];
    snprintf(base, sizeof(base), "%s", tw_dir("cut-base"));
    wal_t *w = tw_open(base, TW_SEG, 1);
    ts_append(w, 0, 150, NULL);
    ck_assert(wal_set_epoch(w, 2));
    wal_wait_durable(w, ts_append(w, 150, 150, NULL));
    wal_close(w);
    size_t n = tw_positions(base, pos, 2000);
    ck_assert_uint_eq(n, 300);

    /* Where: mid-segment; the last record before a switch; a switch
     * record's end (a segment's first record position, its header cut too,
     * also where the epoch changed); the oldest position; nothing at all. */
    size_t mid = 10, before_switch = 0, at_switch = 0, at_epoch = 0;
    for (size_t i = 1; i < n; i++) {
        if (pos[i].start % TW_SEG == WAL_SEG_HDR_SIZE && before_switch == 0) {
            before_switch = i;
            at_switch = i;
        }
        if (i >= 150 && pos[i].start % TW_SEG == WAL_SEG_HDR_SIZE && at_epoch == 0)
            at_epoch = i;
    }
    ck_assert(before_switch > 0 && at_epoch == 150);
    ts_cut_and_continue(base, pos, mid, n);
    ts_cut_and_continue(base, pos, before_switch - 1, n);
    ts_cut_and_continue(base, pos, at_switch, n);
    ts_cut_and_continue(base, pos, at_epoch, n);
    ts_cut_and_continue(base, pos, 0, n);
    ts_cut_and_continue(base, pos, n, n);

    /* Refused, and nothing changed: inside a record, before the oldest
     * record retained, past the end. */
    w = tw_open(base, TW_SEG, 0);
    uint64_t end = wal_insert_lsn(w);
    ck_assert(!wal_truncate(w, pos[20].lsn - 8, err, sizeof(err)));
    ck_assert_msg(strstr(err, "not a record boundary"), "%s", err);
    ck_assert(!wal_truncate(w, pos[at_switch].start + 8, err, sizeof(err)));
    ck_assert_msg(strstr(err, "not a record boundary"), "%s", err);
    ck_assert(!wal_truncate(w, end + 8, err, sizeof(err)));
    ck_assert_msg(strstr(err, "past the end"), "%s", err);
    ck_assert(wal_checkpoint(w, 3 * TW_SEG + 64, err, sizeof(err)));
    ck_assert(!wal_truncate(w, pos[5].lsn, err, sizeof(err)));
    ck_assert_msg(strstr(err, "oldest record retained"), "%s", err);
    ck_assert_uint_eq(wal_insert_lsn(w), end);
    wal_close(w);
    ts_reopen_check(base, end, 2);
}
END_TEST

/* An old primary rejoins: the standby was promoted at X while the old
 * primary went on writing records it never sent.  The old primary cuts back
 * to X and copies the new primary's log from there: byte for byte the same.
 * X in the middle of a segment, and X right after a switch record (the new
 * primary's header of the next segment carries the new epoch, the old
 * primary's the old one). */
START_TEST(test_rejoin_after_fork)
{
    char adir[512], bdir[512], err[1024];
    for (int v = 0; v < 2; v++) {
        bool at_switch = v == 1;
        snprintf(adir, sizeof(adir), "%s", tw_dir("fork-a"));
        snprintf(bdir, sizeof(bdir), "%s", tw_dir("fork-b"));
        wal_t *a = tw_open(adir, TW_SEG, 4);
        wal_t *b = tw_open(bdir, TW_SEG, 0);
        wal_wait_durable(a, ts_append(a, 0, 200, NULL));
        ts_pump_res res;
        uint64_t chunks = 0;
        do {
            res = ts_copy(a, b, 4000, 1);
            chunks++;
        } while (res.chunks > 0 && (chunks < 10 || res.after_switch != at_switch));
        ck_assert_uint_eq(res.after_switch, at_switch);
        uint64_t x = wal_insert_lsn(b);
        ck_assert_uint_lt(x, wal_insert_lsn(a));
        /* b is promoted; a does not know and goes on. */
        ck_assert(wal_set_epoch(b, 5));
        wal_wait_durable(b, ts_append(b, 5000, 60, NULL));
        /* (not waited for: wal_truncate writes them first) */
        ts_append(a, 200, 80, NULL);

        /* a rejoins as b's standby. */
        ck_assert_msg(wal_truncate(a, x, err, sizeof(err)), "%s", err);
        ck_assert_uint_eq(wal_stream_from(a), x);
        ts_copy(b, a, 4000, 0);
        ck_assert_uint_eq(wal_insert_lsn(a), wal_insert_lsn(b));
        ck_assert_uint_eq(wal_epoch(a), 5);
        uint64_t end = wal_insert_lsn(b);
        wal_close(a);
        wal_close(b);
        ts_same_files(adir, bdir, 0);
        ts_reopen_check(adir, end, 5);
        ck_assert(ts_waldump_ok(adir));
    }
}
END_TEST

static Suite *
wal_stream_suite(void)
{
    Suite *s = suite_create("wal_stream");
    TCase *tc = tw_tcase("copy", 120);
    tcase_add_test(tc, test_copy_whole_log);
    tcase_add_test(tc, test_copy_live_incremental);
    tcase_add_test(tc, test_empty_standby_after_checkpoint);
    tcase_add_test(tc, test_standby_mid_log);
    tcase_add_test(tc, test_standby_checkpointed_to_nothing);
    tcase_add_test(tc, test_record_epoch_and_reader_rules);
    suite_add_tcase(s, tc);

    tc = tw_tcase("verify", 120);
    tcase_add_test(tc, test_refuse_bad_chunks);
    tcase_add_test(tc, test_promote_byte_identical);
    suite_add_tcase(s, tc);

    tc = tw_tcase("truncate", 120);
    tcase_add_test(tc, test_truncate);
    tcase_add_test(tc, test_rejoin_after_fork);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    log_init("test_wal_stream");
    log_set_level(LOG_LVL_WARNING);
    SRunner *sr = srunner_create(wal_stream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
