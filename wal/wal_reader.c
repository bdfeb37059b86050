/*
 * wal_reader.c — sequential reading of the log, for recovery, tools and
 * replication to a standby.
 *
 * NOTES
 *  A reader walks the stream from the segment that holds from_lsn, checking
 *  every record exactly as the recovery scan does (wal_rec_check) and every
 *  segment header against the chain (segment number, segment size, the salt
 *  announced by the previous switch record, epoch not decreasing).  It
 *  returns the records whose LSN is greater than from_lsn, each with the
 *  epoch of its segment's header; switch records are consumed internally.
 *
 *  How far it reads — the limit:
 *    - a live reader (wal_reader_open) reads up to wal_flushed_lsn() as of
 *      each call, never bytes that are written but not yet durable: a standby
 *      must not receive a record the primary could still lose;
 *    - a directory reader (wal_reader_open_dir) first runs the recovery scan
 *      (wal_scan) and reads up to the end it found; a torn tail is not read
 *      and a log damaged in the middle is refused at open.
 *  Below the limit every record must be valid; anything else is an error
 *  (the file changed under us, or the disk returned bad data).
 *
 *  Buffering: one buffer of a segment's size, filled with pread as far as
 *  the limit allows; for a live reader the current segment is re-read
 *  incrementally as the limit grows.  Payload pointers returned point into
 *  that buffer and stay valid until the next call.
 *
 *  Chunks (wal_reader_next_chunk) are the same walk returning raw bytes
 *  for a standby instead of records: the verified records that follow each
 *  other from r->pos, up to the limit, a switch record or max bytes, as one
 *  run of the loaded segment's buffer.  hdr_next says that the next chunk
 *  begins at its segment's start with the header: after a switch record,
 *  and for a reader opened where a segment's records start (from_lsn 0,
 *  the oldest retained segment, or a standby whose log ended with a switch
 *  record).  A reader opened elsewhere first walks to from_lsn, which must
 *  be the end of a record.  One reader returns records or chunks, not both:
 *  the two walks start differently (records after from_lsn; bytes at it).
 *
 *  A checkpoint may remove the segment a reader is about to open; the reader
 *  then fails with "has been removed" (like PostgreSQL's "requested WAL
 *  segment has already been removed").
 */
#include "wal_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { WAL_READ_ANY, WAL_READ_RECORDS, WAL_READ_CHUNKS };

struct wal_reader {
    wal_t *w; /* NULL for a directory reader */
    int dirfd;
    uint32_t segsize;
    uint64_t limit;  /* directory reader: end of the log */
    uint64_t oldest; /* directory reader: oldest segment */
    uint64_t from;   /* return records with lsn > from */
    uint64_t pos;    /* start of the next record */
    int mode;        /* WAL_READ_*: what the first call asked for */
    bool hdr_next;   /* chunks: the next one starts with pos's segment header */
    bool at_from;    /* chunks: pos has reached from (set at a segment start) */

    int fd; /* segment being read, -1 if none */
    uint64_t segno;
    uint8_t *buf;
    size_t loaded;
    uint32_t salt;
    uint64_t epoch;
    bool chain_known; /* salt_next/epoch_min valid */
    uint32_t salt_next;
    uint64_t epoch_min;
    char err[512];
};

static wal_reader *
wal_reader_new(int dirfd, uint32_t segsize, char *err, size_t errlen)
{
    wal_reader *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->buf = malloc(segsize)) == NULL) {
        free(r);
        close(dirfd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->dirfd = dirfd;
    r->segsize = segsize;
    r->fd = -1;
    return r;
}

/* Position the reader for from_lsn, given the oldest segment and the limit. */
static bool
wal_reader_seek(wal_reader *r, uint64_t from_lsn, uint64_t oldest_segno, uint64_t limit, char *err,
                size_t errlen)
{
    char a[32], b[32];
    uint64_t oldest_lsn = oldest_segno * r->segsize + WAL_SEG_HDR_SIZE;
    if (from_lsn == 0)
        from_lsn = oldest_lsn;
    if (from_lsn / r->segsize < oldest_segno) {
        snprintf(err, errlen, "requested LSN %s has been removed (oldest retained is %s)",
                 wal_lsn_str(from_lsn, a, sizeof(a)), wal_lsn_str(oldest_lsn, b, sizeof(b)));
        return false;
    }
    if (from_lsn > limit) {
        snprintf(err, errlen, "requested LSN %s is past the end of the log %s",
                 wal_lsn_str(from_lsn, a, sizeof(a)), wal_lsn_str(limit, b, sizeof(b)));
        return false;
    }
    r->from = from_lsn;
    r->pos = (from_lsn / r->segsize) * r->segsize + WAL_SEG_HDR_SIZE;
    r->hdr_next = from_lsn % r->segsize <= WAL_SEG_HDR_SIZE;
    r->at_from = r->hdr_next;
    return true;
}

wal_reader *
wal_reader_open(wal_t *w, uint64_t from_lsn, char *err, size_t errlen)
{
    int dirfd = open(wal_dir_path(w), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, errlen, "could not open directory \"%s\": %m", wal_dir_path(w));
        return NULL;
    }
    wal_reader *r = wal_reader_new(dirfd, wal_segment_size(w), err, errlen);
    if (r == NULL)
        return NULL;
    r->w = w;
    uint64_t oldest = (wal_oldest_lsn(w) - WAL_SEG_HDR_SIZE) / r->segsize;
    if (!wal_reader_seek(r, from_lsn, oldest, wal_flushed_lsn(w), err, errlen)) {
        wal_reader_close(r);
        return NULL;
    }
    return r;
}

wal_reader *
wal_reader_open_dir(const char *dir, uint64_t from_lsn, char *err, size_t errlen)
{
    wal_scan_result res;
    char serr[768];
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, errlen, "could not open directory \"%s\": %m", dir);
        return NULL;
    }
    if (!wal_scan(dirfd, WAL_DEFAULT_SEGMENT_SIZE, NULL, &res, serr, sizeof(serr))) {
        snprintf(err, errlen, "%s (in \"%s\")", serr, dir);
        wal_scan_result_free(&res);
        close(dirfd);
        return NULL;
    }
    wal_reader *r = wal_reader_new(dirfd, res.segment_size, err, errlen);
    if (r == NULL) {
        wal_scan_result_free(&res);
        return NULL;
    }
    r->limit = res.end_lsn;
    r->oldest = res.have_segments ? res.first_segno : res.end_segno;
    wal_scan_result_free(&res);
    if (!wal_reader_seek(r, from_lsn, r->oldest, r->limit, err, errlen)) {
        wal_reader_close(r);
        return NULL;
    }
    return r;
}

void
wal_reader_close(wal_reader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->dirfd >= 0)
        close(r->dirfd);
    free(r->buf);
    free(r);
}

const char *
wal_reader_error(const wal_reader *r)
{
    return r->err;
}

static int wal_reader_fail(wal_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
wal_reader_fail(wal_reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    return -1;
}

/* Open segment segno and check its header against the chain. */
static int
wal_reader_load(wal_reader *r, uint64_t segno)
{
    char name[WAL_SEG_NAME_LEN];
    wal_seg_name(name, segno);
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    r->loaded = 0;
    r->fd = openat(r->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        if (errno == ENOENT)
            return wal_reader_fail(r, "segment file \"%s\" has been removed", name);
        return wal_reader_fail(r, "could not open segment file \"%s\": %m", name);
    }
    r->segno = segno;
    ssize_t n = pread(r->fd, r->buf, WAL_SEG_HDR_SIZE, 0);
    if (n < 0)
        return wal_reader_fail(r, "could not read segment file \"%s\": %m", name);
    r->loaded = (size_t)n;
    wal_seg_header h;
    wal_hdr_status st = wal_seg_header_decode(r->buf, r->loaded, &h);
    if (st != WAL_HDR_OK)
        return wal_reader_fail(r, "invalid header in segment file \"%s\": %s", name,
                               wal_hdr_status_str(st));
    if (h.segno != segno || h.segment_size != r->segsize)
        return wal_reader_fail(r, "segment file \"%s\" has the header of another segment", name);
    if (r->chain_known && (h.salt != r->salt_next || h.epoch < r->epoch_min))
        return wal_reader_fail(r, "segment file \"%s\" does not follow the previous segment", name);
    r->salt = h.salt;
    r->epoch = h.epoch;
    return 0;
}

/* Make bytes [0, want) of the current segment available. */
static int
wal_reader_fill(wal_reader *r, size_t want)
{
    while (r->loaded < want) {
        ssize_t n = pread(r->fd, r->buf + r->loaded, want - r->loaded, (off_t)r->loaded);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return wal_reader_fail(r, "could not read segment %016" PRIX64 ": %m", r->segno);
        if (n == 0)
            break;
        r->loaded += (size_t)n;
    }
    return 0;
}

/* Reads from here on return what mode asks for (a reader returns records or
 * chunks, not both).  0, or -1 on an error. */
static int
wal_reader_use(wal_reader *r, int mode)
{
    if (r->err[0] != '\0')
        return -1;
    if (r->mode == WAL_READ_ANY)
        r->mode = mode;
    if (r->mode != mode)
        return wal_reader_fail(r, "a reader returns either records or chunks, not both");
    return 0;
}

/* Make the record at r->pos readable in r->buf if it starts below limit:
 * 1, or 0 if it does not, or -1 on an error. */
static int
wal_reader_prepare(wal_reader *r, uint64_t limit)
{
    if (r->pos >= limit)
        return 0;
    uint64_t segno = r->pos / r->segsize;
    if (r->fd < 0 || r->segno != segno) {
        if (wal_reader_load(r, segno) != 0)
            return -1;
    }
    /* Everything below the limit in this segment is complete records. */
    uint64_t seg_end = (segno + 1) * r->segsize;
    size_t want = limit >= seg_end ? r->segsize : (size_t)(limit - segno * r->segsize);
    if (want > r->loaded && wal_reader_fill(r, want) != 0)
        return -1;
    return 1;
}

/* Check the record at offset off of the loaded segment. */
static int
wal_reader_check(wal_reader *r, uint32_t off, wal_rec_view *v)
{
    const char *why;
    if (!wal_rec_check(r->buf, r->loaded, off, r->segno, r->segsize, r->salt, v, &why))
        return wal_reader_fail(r, "invalid record at offset %u of segment %016" PRIX64 ": %s", off,
                               r->segno, why);
    if (v->type == WAL_TYPE_SWITCH) {
        r->salt_next = wal_get_u32(v->payload);
        r->epoch_min = r->epoch;
        r->chain_known = true;
    }
    return 0;
}

int
wal_reader_next(wal_reader *r, wal_record *rec)
{
    if (wal_reader_use(r, WAL_READ_RECORDS) != 0)
        return -1;
    for (;;) {
        uint64_t limit = r->w ? wal_flushed_lsn(r->w) : r->limit;
        int rc = wal_reader_prepare(r, limit);
        if (rc <= 0)
            return rc;
        wal_rec_view v;
        if (wal_reader_check(r, (uint32_t)(r->pos % r->segsize), &v) != 0)
            return -1;
        r->pos = v.lsn;
        if (v.type == WAL_TYPE_SWITCH || v.lsn <= r->from)
            continue;
        rec->lsn = v.lsn;
        rec->start_lsn = v.lsn - v.size;
        rec->type = v.type;
        rec->len = v.len;
        rec->payload = v.payload;
        rec->epoch = r->epoch;
        return 1;
    }
}

/* Chunks start exactly at from: walk the records of its segment to it. */
static int
wal_reader_skip_to_from(wal_reader *r, uint64_t limit)
{
    char a[32];
    while (r->pos < r->from) {
        int rc = wal_reader_prepare(r, limit);
        if (rc <= 0)
            return rc < 0 ? -1
                          : wal_reader_fail(r, "position %s is past the end of the log",
                                            wal_lsn_str(r->from, a, sizeof(a)));
        wal_rec_view v;
        if (wal_reader_check(r, (uint32_t)(r->pos % r->segsize), &v) != 0)
            return -1;
        if (v.lsn > r->from)
            return wal_reader_fail(r, "position %s is not the end of a record",
                                   wal_lsn_str(r->from, a, sizeof(a)));
        r->pos = v.lsn;
    }
    r->at_from = true;
    return 0;
}

int
wal_reader_next_chunk(wal_reader *r, uint64_t *pos, const void **bytes, size_t *len, size_t max)
{
    if (wal_reader_use(r, WAL_READ_CHUNKS) != 0)
        return -1;
    uint64_t limit = r->w ? wal_flushed_lsn(r->w) : r->limit;
    if (!r->at_from && wal_reader_skip_to_from(r, limit) != 0)
        return -1;
    int rc = wal_reader_prepare(r, limit);
    if (rc <= 0)
        return rc;
    uint64_t base = r->segno * r->segsize;
    uint32_t off = (uint32_t)(r->pos - base);
    uint32_t first = r->hdr_next ? 0 : off;
    bool switched = false;
    for (int n = 0; base + off < limit && !switched; n++) {
        wal_rec_view v;
        if (wal_reader_check(r, off, &v) != 0)
            return -1;
        /* At most max bytes, unless one record alone is larger. */
        if (n > 0 && off + v.size - first > max)
            break;
        off += v.size;
        r->pos = v.lsn;
        switched = v.type == WAL_TYPE_SWITCH;
    }
    r->hdr_next = switched;
    *pos = base + first;
    *bytes = r->buf + first;
    *len = off - first;
    return 1;
}
