/*
 * fuzz_wal_scan.c — the log's recovery scan and record decoder with
 * segment files as input (wal/wal_scan.c, wal/wal_format.c, and the
 * directory reader of wal/wal_reader.c), as wal_open and dtx-waldump meet
 * a log directory after a crash.
 *
 * Input:
 *
 *   byte 0     flags: bit 0 — extend each file with zeros to the segment
 *              size its header names (when that is a valid size of at
 *              most 1 MiB), as segment files are preallocated
 *   byte 1     the number of the first segment file
 *   the rest   segment files, cut at FUZZ_SPLIT, numbered from byte 1 on;
 *              an empty piece leaves its number without a file (a gap)
 *
 * The files are written into a fresh directory under /dev/shm (TMPDIR when
 * /dev/shm cannot be used).  Segments larger than 1 MiB are left out (an
 * input with a header that names one is skipped), and this scan's default
 * size, for a log in which no header names one, is 64 KiB instead of
 * 16 MiB: the scan and the reader hold one segment in memory, and
 * AddressSanitizer makes every large allocation cost milliseconds, while
 * the code is the same for every size.  Then:
 *
 *   - wal_scan: counts its callbacks; a log it does not call corrupt ends
 *     at an LSN inside its end segment, past the header when that is
 *     valid, and the records it reports lie below that end, each where the
 *     previous one ended; the torn bytes fit in the end segment;
 *   - a directory reader (wal_reader_open_dir from 0) must return exactly
 *     the records the scan counted, each ending at its LSN, in order;
 *   - a second directory reader returns the log as chunks for a standby
 *     (wal_reader_next_chunk), and each chunk must pass the standby's check
 *     (wal_stream_check), chained from a new standby's state: what one side
 *     reads back as valid the other must take.  The standby is stricter
 *     in one respect, which is left out: reserved bytes of a header or a
 *     switch record that are not zero (a checksum covers them, so only a
 *     forged segment has them).
 */
#include "fuzz.h"

#include "log.h"
#include "wal.h"
#include "wal_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_MAX_FILES     6
#define FUZZ_MAX_SEGSIZE   (1u << 20)
#define FW_DEFAULT_SEGSIZE (64u << 10)

static char dir[512];
static int dirfd = -1;

static void
clear_dir(void)
{
    uint64_t *segs = NULL;
    size_t n = 0;
    char err[256], name[WAL_SEG_NAME_LEN];
    if (wal_seg_list(dirfd, &segs, &n, err, sizeof(err))) {
        for (size_t i = 0; i < n; i++) {
            wal_seg_name(name, segs[i]);
            unlinkat(dirfd, name, 0);
        }
        free(segs);
    }
}

static void
remove_dir(void)
{
    clear_dir();
    close(dirfd);
    rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LVL_ERROR);
    fuzz_tmpdir(dir, sizeof(dir), "wal-scan");
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(dirfd >= 0);
    atexit(remove_dir);
    return 0;
}

static void
write_file(uint64_t segno, const uint8_t *p, size_t len, bool pad)
{
    char name[WAL_SEG_NAME_LEN];
    wal_seg_name(name, segno);
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
    wal_seg_header h;
    if (pad && wal_seg_header_decode(p, len, &h) == WAL_HDR_OK && h.segment_size > len)
        FUZZ_CHECK(ftruncate(fd, h.segment_size) == 0);
    close(fd);
}

/* What the scan's callbacks saw. */
typedef struct seen {
    uint64_t segments, records, switches;
    uint64_t last_lsn; /* of the last record, switch records included */
    bool chained;      /* each record starts where the previous one ended */
} seen;

static void
on_segment(void *arg, const wal_seg_header *h)
{
    seen *s = arg;
    FUZZ_CHECK(wal_segment_size_valid(h->segment_size));
    s->segments++;
}

static void
on_record(void *arg, uint64_t segno, const wal_rec_view *rec)
{
    seen *s = arg;
    (void)segno;
    FUZZ_CHECK(rec->size ==
               (rec->type == WAL_TYPE_SWITCH ? WAL_SWITCH_SIZE : wal_rec_size(rec->len)));
    FUZZ_CHECK(rec->offset >= WAL_SEG_HDR_SIZE && rec->offset % WAL_REC_ALIGN == 0);
    if (s->last_lsn != 0 && rec->type != WAL_TYPE_SWITCH && rec->lsn - rec->size != s->last_lsn)
        s->chained = false;
    if (rec->type == WAL_TYPE_SWITCH)
        s->switches++;
    else
        s->records++;
    s->last_lsn = rec->lsn;
}

/* The records of the log through a directory reader; returns how many. */
static uint64_t
read_records(const wal_scan_result *res)
{
    char err[1024];
    wal_reader *r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    FUZZ_CHECK(r != NULL);
    uint64_t n = 0, prev = 0;
    wal_record rec;
    int rc;
    while ((rc = wal_reader_next(r, &rec)) == 1) {
        FUZZ_CHECK(rec.type != WAL_TYPE_SWITCH && rec.lsn > prev && rec.lsn <= res->end_lsn);
        FUZZ_CHECK(rec.lsn - rec.start_lsn == wal_rec_size(rec.len));
        prev = rec.lsn;
        n++;
    }
    FUZZ_CHECK(rc == 0);
    wal_reader_close(r);
    return n;
}

/* The log as a standby's chunks, each checked as the standby checks it. */
static void
read_chunks(const wal_scan_result *res, uint64_t records)
{
    char err[1024];
    wal_reader *r = wal_reader_open_dir(dir, 0, err, sizeof(err));
    FUZZ_CHECK(r != NULL);
    wal_stream_state st;
    memset(&st, 0, sizeof(st));
    st.segsize = res->segment_size;
    st.segno = res->first_segno;
    st.insert_lsn = st.segno * st.segsize + WAL_SEG_HDR_SIZE;
    st.oldest_lsn = st.insert_lsn;
    st.header_pending = true;
    uint64_t pos, taken = 0;
    const void *bytes;
    size_t len;
    int rc;
    while ((rc = wal_reader_next_chunk(r, &pos, &bytes, &len, 16384)) == 1) {
        wal_stream_state next;
        uint64_t n;
        if (!wal_stream_check(&st, pos, bytes, len, &next, &n, err, sizeof(err))) {
            if (strstr(err, "non-zero reserved bytes") != NULL)
                break;
            fprintf(stderr, "a chunk the reader returns is refused: %s\n", err);
            abort();
        }
        st = next;
        taken += n;
    }
    if (rc == 0)
        FUZZ_CHECK(taken == records && st.insert_lsn == res->end_lsn);
    else
        FUZZ_CHECK(rc == 1); /* only after a refusal left out above */
    wal_reader_close(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    if (size < 2)
        return 0;
    bool pad = data[0] & 1;
    uint64_t first = data[1];
    fuzz_piece pc[FUZZ_MAX_FILES];
    size_t n = fuzz_split(data + 2, size - 2, pc, FUZZ_MAX_FILES);
    bool named = false; /* a file's header names its segment: the log's size */
    for (size_t i = 0; i < n; i++) {
        wal_seg_header h;
        if (wal_seg_header_decode(pc[i].p, pc[i].len, &h) != WAL_HDR_OK)
            continue;
        if (h.segment_size > FUZZ_MAX_SEGSIZE)
            return 0;
        named = named || h.segno == first + i;
    }
    for (size_t i = 0; i < n; i++) {
        if (pc[i].len > 0)
            write_file(first + i, pc[i].p, pc[i].len, pad);
    }

    seen s = {.chained = true};
    wal_scan_cb cb = {.segment = on_segment, .record = on_record, .arg = &s};
    wal_scan_result res;
    char err[1024] = "";
    bool ok = wal_scan(dirfd, FW_DEFAULT_SEGSIZE, &cb, &res, err, sizeof(err));
    if (ok) {
        uint32_t segsize = res.segment_size;
        FUZZ_CHECK(!res.corrupt);
        FUZZ_CHECK(res.records == s.records && s.chained);
        FUZZ_CHECK(res.end_lsn / segsize == res.end_segno);
        FUZZ_CHECK(res.end_lsn % segsize >= WAL_SEG_HDR_SIZE);
        FUZZ_CHECK(!res.end_header_valid || res.end_offset == res.end_lsn % segsize);
        FUZZ_CHECK(s.last_lsn <= res.end_lsn);
        FUZZ_CHECK(res.torn_bytes <= segsize);
        FUZZ_CHECK(res.nbeyond <= res.nfiles);
        /* the readers scan again, with the library's default size when
         * no header names one: then there is nothing to read anyway */
        if (named) {
            uint64_t records = read_records(&res);
            FUZZ_CHECK(records == res.records);
            read_chunks(&res, records);
        } else {
            FUZZ_CHECK(res.records == 0);
        }
    } else {
        FUZZ_CHECK(err[0] != '\0');
        /* a log damaged in the middle is refused by a directory reader too */
        if (res.corrupt && named) {
            char err2[1024];
            wal_reader *r = wal_reader_open_dir(dir, 0, err2, sizeof(err2));
            FUZZ_CHECK(r == NULL);
        }
    }
    wal_scan_result_free(&res);
    clear_dir();
    return 0;
}
