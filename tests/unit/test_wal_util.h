/*
 * test_wal_util.h — helpers shared by the WAL unit tests (header only: each
 * tests/unit/test_*.c is its own binary).
 *
 * Temporary directories: the suite's unchecked fixture (run in check's
 * parent process) creates one base directory under /tmp and removes it after
 * the test case, so it is removed even when a test fails or crashes in its
 * forked child.
 */
#ifndef DTX_TEST_WAL_UTIL_H
#define DTX_TEST_WAL_UTIL_H

#include "wal_int.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TW_SEG (64u << 10) /* small segments: many boundaries */
/* Not every test binary uses every helper. */
#define TW_HELPER static __attribute__((unused))

static char tw_base[256];
static uint32_t tw_segsize = TW_SEG; /* of the log last opened by tw_open */

TW_HELPER int
tw_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

TW_HELPER void
tw_rm_rf(const char *path)
{
    nftw(path, tw_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TW_HELPER void
tw_base_setup(void)
{
    snprintf(tw_base, sizeof(tw_base), "/tmp/dtx-test-wal.XXXXXX");
    if (mkdtemp(tw_base) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

TW_HELPER void
tw_base_teardown(void)
{
    if (tw_base[0] != '\0')
        tw_rm_rf(tw_base);
}

/* A fresh (removed if present) path under the base directory. */
TW_HELPER const char *
tw_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tw_base, name);
    tw_rm_rf(path);
    return path;
}

TW_HELPER char *
tw_seg_path(const char *dir, uint64_t segno)
{
    static char path[600];
    char name[WAL_SEG_NAME_LEN];
    wal_seg_name(name, segno);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

TW_HELPER bool
tw_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

TW_HELPER wal_t *
tw_open(const char *dir, uint32_t segsize, uint64_t epoch)
{
    wal_options o;
    char err[1024];
    wal_options_init(&o);
    o.segment_size = segsize;
    o.epoch = epoch;
    wal_t *w = wal_open(dir, &o, err, sizeof(err));
    ck_assert_msg(w != NULL, "wal_open(%s): %s", dir, err);
    tw_segsize = wal_segment_size(w);
    return w;
}

/* Deterministic payload bytes for record number i. */
TW_HELPER void
tw_payload(uint8_t *p, uint32_t len, uint64_t i)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    for (uint32_t k = 0; k < len; k++) {
        if ((k & 7) == 0) {
            x ^= x >> 31;
            x *= 0xBF58476D1CE4E5B9ull;
            x ^= x >> 29;
        }
        p[k] = (uint8_t)(x >> (8 * (k & 7)));
    }
}

TW_HELPER uint32_t
tw_len(uint64_t i)
{
    return (uint32_t)((i * 37) % 301);
}

TW_HELPER uint8_t
tw_type(uint64_t i)
{
    return (uint8_t)(1 + i % 255);
}

/* Append records first..first+n-1 with the standard pattern; lsns[] gets
 * the LSNs (indexed from first) if not NULL.  Returns the last LSN. */
TW_HELPER uint64_t
tw_append_n(wal_t *w, uint64_t first, uint64_t n, uint64_t *lsns)
{
    uint8_t buf[512];
    uint64_t lsn = 0;
    for (uint64_t i = first; i < first + n; i++) {
        uint32_t len = tw_len(i);
        tw_payload(buf, len, i);
        lsn = wal_append(w, tw_type(i), buf, len);
        ck_assert_uint_ne(lsn, 0);
        if (lsns)
            lsns[i] = lsn;
    }
    return lsn;
}

/* Read the log in dir and check it holds exactly records 0..n-1 of the
 * standard pattern (lsns[] checked if given). */
TW_HELPER void
tw_check_reader(wal_reader *r, uint64_t first, uint64_t n, const uint64_t *lsns)
{
    wal_record rec;
    uint8_t buf[512];
    uint64_t i = first, prev = 0;
    int rc;
    while ((rc = wal_reader_next(r, &rec)) == 1) {
        ck_assert_msg(i < first + n, "extra record at LSN %" PRIu64, rec.lsn);
        ck_assert_uint_eq(rec.type, tw_type(i));
        ck_assert_uint_eq(rec.len, tw_len(i));
        tw_payload(buf, rec.len, i);
        ck_assert_msg(rec.len == 0 || memcmp(buf, rec.payload, rec.len) == 0,
                      "payload of record %" PRIu64 " differs", i);
        if (lsns)
            ck_assert_uint_eq(rec.lsn, lsns[i]);
        /* Records are back to back, except across a switch record. */
        if (prev != 0 && rec.start_lsn % tw_segsize != WAL_SEG_HDR_SIZE)
            ck_assert_uint_eq(rec.start_lsn, prev);
        ck_assert_uint_gt(rec.lsn, prev);
        prev = rec.lsn;
        i++;
    }
    ck_assert_msg(rc == 0, "reader: %s", wal_reader_error(r));
    ck_assert_msg(i == first + n, "read %" PRIu64 " records, expected %" PRIu64, i - first, n);
}

TW_HELPER void
tw_check_dir(const char *dir, uint64_t first, uint64_t n, const uint64_t *lsns)
{
    char err[1024];
    wal_reader *r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "wal_reader_open_dir: %s", err);
    tw_check_reader(r, first, n, lsns);
    wal_reader_close(r);
}

TW_HELPER void
tw_check_live(wal_t *w, uint64_t first, uint64_t n, const uint64_t *lsns)
{
    char err[1024];
    wal_reader *r = wal_reader_open(w, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "wal_reader_open: %s", err);
    tw_check_reader(r, first, n, lsns);
    wal_reader_close(r);
}

TW_HELPER void
tw_file_write(const char *path, uint64_t off, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
    close(fd);
}

TW_HELPER void
tw_file_read(const char *path, uint64_t off, void *data, size_t len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(pread(fd, data, len, (off_t)off), (ssize_t)len);
    close(fd);
}

TW_HELPER void
tw_flip(const char *path, uint64_t off)
{
    uint8_t b;
    tw_file_read(path, off, &b, 1);
    b ^= 0xFF;
    tw_file_write(path, off, &b, 1);
}

TW_HELPER void
tw_zero(const char *path, uint64_t off, size_t len)
{
    uint8_t *z = calloc(1, len ? len : 1);
    tw_file_write(path, off, z, len);
    free(z);
}

/* Copy the files of directory src into dst (created, emptied first). */
TW_HELPER void
tw_copy_dir(const char *src, const char *dst)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
    ck_assert_int_eq(system(cmd), 0);
}

TW_HELPER int
tw_count_segments(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    uint64_t *v = NULL;
    size_t n = 0;
    char err[256];
    ck_assert(dfd >= 0);
    ck_assert(wal_seg_list(dfd, &v, &n, err, sizeof(err)));
    close(dfd);
    free(v);
    return (int)n;
}

TW_HELPER TCase *
tw_tcase(const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, tw_base_setup, tw_base_teardown);
    tcase_set_timeout(tc, timeout);
    return tc;
}

/* Record positions of a log directory, from its reader. */
typedef struct tw_pos {
    uint64_t start, lsn;
} tw_pos;

TW_HELPER size_t
tw_positions(const char *dir, tw_pos *out, size_t max)
{
    char err[1024];
    wal_record rec;
    size_t n = 0;
    int rc;
    wal_reader *r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    while ((rc = wal_reader_next(r, &rec)) == 1) {
        ck_assert_uint_lt(n, max);
        out[n].start = rec.start_lsn;
        out[n].lsn = rec.lsn;
        n++;
    }
    ck_assert_int_eq(rc, 0);
    wal_reader_close(r);
    return n;
}

#endif
