/*
 * wal_stream.c — the log of a standby: taking a primary's stream as it is
 * (wal_append_raw), and cutting a log back to a record (wal_truncate).
 *
 * NOTES
 *  A standby holds its primary's log byte for byte at the same positions, so
 *  that after a promotion it continues the same stream.  The primary reads
 *  its log in chunks (wal_reader_next_chunk, wal_reader.c): runs of whole
 *  records within one segment, a chunk that starts a segment beginning with
 *  the segment's 64-byte header.  The standby appends each chunk with
 *  wal_append_raw, which puts the bytes, unchanged, into the same append
 *  buffer wal_append encodes into (wal.c): the writer, group commit,
 *  durability callbacks and the segment preparer then work as for any
 *  record.
 *
 *  What a chunk must be (wal_stream_check, pure, before anything is taken):
 *
 *    - it starts where the log continues: at the insert position, or at the
 *      start of the next segment (header included) after a switch record;
 *      when the log retains no record, at the start of any segment (a new
 *      standby, whose log then begins there);
 *    - it lies within one segment, holds at least one record, and ends at a
 *      record's end; a switch record ends it;
 *    - a header is valid (magic, version, CRC, reserved bytes zero), names
 *      the expected segment and the log's segment size, carries the salt the
 *      previous switch record announced and an epoch not lower than the
 *      previous segment's;
 *    - every record passes wal_rec_check_at with the segment's salt: offset,
 *      length, reserved bytes and padding zero, LSN equal to its own end
 *      position, CRC; a switch record's reserved payload bytes are zero.
 *
 *  The append state afterwards (insert position, current segment, salt,
 *  epoch, pending header: wal_stream_state) is exactly what wal_open would
 *  derive from the same bytes on disk, so wal_append may follow once the
 *  standby is promoted.  A chunk that ends with a switch record leaves the
 *  next segment's header pending, with the announced salt: the state of a log
 *  that wal_open finds ending at a switch record.
 *
 *  A new standby's first chunk may start at another segment than the one its
 *  empty log sits at.  The log's files are then replaced (wal_exclusive_begin
 *  holds off flushes, checkpoints and the preparer): the chunk's segment is
 *  created, every other segment file removed — an empty preallocated file
 *  below it would otherwise end the log at open, before the records.
 *
 *  wal_truncate cuts a log back to the end of one of its records (or to the
 *  oldest retained position).  The record is found by walking its segment
 *  from the header, so that only a real boundary is accepted.  A cut at a
 *  segment's first record position (the end of the previous segment's
 *  switch record) takes that segment's header too: a header is part of the
 *  stream that follows the switch, and the new primary's may differ (a
 *  promotion stamps its epoch into it).  Crash order: the later segment
 *  files go first, newest first, then the tail of the cut segment is zeroed
 *  and fsynced; a crash in between leaves a valid log that is only longer
 *  than asked, and the truncation can be repeated.
 *
 *  Failures: a chunk or a cut point that is refused changes nothing.  Once a
 *  truncation or a new standby's replacement of files has begun, a failed
 *  unlink, write or fsync PANICs like any write of the log: the log on disk
 *  is then a valid prefix of the stream, from which a restart recovers.
 */
#include "wal_int.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static bool wal_stream_fail(char *err, size_t errlen, uint64_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "invalid chunk at <pos>: <reason>"; returns false. */
static bool
wal_stream_fail(char *err, size_t errlen, uint64_t pos, const char *fmt, ...)
{
    char at[32];
    int n = snprintf(err, errlen, "invalid chunk at %s: ", wal_lsn_str(pos, at, sizeof(at)));
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* The state of a log that retains no record and begins at segment segno. */
static void
wal_stream_fresh(wal_stream_state *st, uint64_t segno)
{
    uint32_t segsize = st->segsize;
    memset(st, 0, sizeof(*st));
    st->segsize = segsize;
    st->segno = segno;
    st->insert_lsn = segno * segsize + WAL_SEG_HDR_SIZE;
    st->oldest_lsn = st->insert_lsn;
    st->header_pending = true;
}

/* The segment header that starts a chunk at pos, against st; n takes it. */
static bool
wal_stream_check_header(const wal_stream_state *st, uint64_t pos, const uint8_t *bytes, size_t len,
                        wal_stream_state *n, char *err, size_t errlen)
{
    wal_seg_header h;
    wal_hdr_status hs = wal_seg_header_decode(bytes, len, &h);
    if (hs == WAL_HDR_SHORT)
        return wal_stream_fail(err, errlen, pos, "incomplete segment header");
    if (hs != WAL_HDR_OK)
        return wal_stream_fail(err, errlen, pos, "%s", wal_hdr_status_str(hs));
    for (int i = 32; i < 60; i++)
        if (bytes[i] != 0)
            return wal_stream_fail(err, errlen, pos, "non-zero reserved bytes in segment header");
    if (h.segno != st->segno)
        return wal_stream_fail(err, errlen, pos,
                               "header names segment %016" PRIX64 ", not %016" PRIX64, h.segno,
                               st->segno);
    if (h.segment_size != st->segsize)
        return wal_stream_fail(err, errlen, pos, "segment size %u differs from the log's %u",
                               h.segment_size, st->segsize);
    if (st->salt_announced && h.salt != st->salt)
        return wal_stream_fail(err, errlen, pos,
                               "salt %08X is not the %08X announced by the previous segment",
                               h.salt, st->salt);
    if (st->salt_announced && h.epoch < st->prev_epoch)
        return wal_stream_fail(err, errlen, pos,
                               "epoch %" PRIu64 " is lower than the previous segment's %" PRIu64,
                               h.epoch, st->prev_epoch);
    n->header_pending = false;
    n->salt = h.salt;
    n->epoch = h.epoch;
    return true;
}

bool
wal_stream_check(const wal_stream_state *st, uint64_t pos, const uint8_t *bytes, size_t len,
                 wal_stream_state *next, uint64_t *records, char *err, size_t errlen)
{
    char a[32];
    uint32_t segsize = st->segsize;
    uint64_t segno = pos / segsize;
    uint64_t expect = st->header_pending ? st->segno * segsize : st->insert_lsn;
    if (pos != expect)
        return wal_stream_fail(err, errlen, pos, "the log continues at %s%s",
                               wal_lsn_str(expect, a, sizeof(a)),
                               st->header_pending ? " (a segment header)" : "");
    if (len == 0 || bytes == NULL)
        return wal_stream_fail(err, errlen, pos, "empty chunk");
    if (pos % segsize + len > segsize)
        return wal_stream_fail(err, errlen, pos, "%zu bytes cross the end of segment %016" PRIX64,
                               len, segno);
    wal_stream_state n = *st;
    size_t i = 0;
    if (st->header_pending) {
        if (!wal_stream_check_header(st, pos, bytes, len, &n, err, errlen))
            return false;
        i = WAL_SEG_HDR_SIZE;
    }
    *records = 0;
    bool any = false;
    while (i < len) {
        uint32_t off = (uint32_t)((pos + i) % segsize);
        wal_rec_view v;
        const char *why;
        if (!wal_rec_check_at(bytes + i, len - i, off, segno, segsize, n.salt, &v, &why))
            return wal_stream_fail(err, errlen, pos + i, "%s (offset %u of segment %016" PRIX64 ")",
                                   why, off, segno);
        any = true;
        n.insert_lsn = v.lsn;
        if (v.type == WAL_TYPE_SWITCH) {
            if (wal_get_u32(v.payload + 4) != 0)
                return wal_stream_fail(err, errlen, pos + i,
                                       "non-zero reserved bytes in switch record");
            if (i + v.size != len)
                return wal_stream_fail(err, errlen, pos + i + v.size,
                                       "bytes follow the switch record of segment %016" PRIX64,
                                       segno);
            n.segno = segno + 1;
            n.header_pending = true;
            n.salt_announced = true;
            n.prev_epoch = n.epoch;
            n.salt = wal_get_u32(v.payload);
            break;
        }
        i += v.size;
        (*records)++;
    }
    if (!any)
        return wal_stream_fail(err, errlen, pos, "the chunk holds no record");
    *next = n;
    return true;
}

/* A log that retains no record may begin at any segment (a new standby),
 * except where a switch record already says how it continues. */
static bool
wal_stream_may_begin_at(const wal_stream_state *st, uint64_t pos)
{
    if (st->insert_lsn != st->oldest_lsn || pos % st->segsize != 0)
        return false;
    return !(st->header_pending && st->salt_announced && pos == st->segno * st->segsize);
}

/* A new standby's log begins at segment segno: replace its files. */
static bool
wal_stream_rebase(wal_t *w, uint64_t segno, char *err, size_t errlen)
{
    wal_stream_state st;
    int dirfd = wal_dir_fd(w);
    const char *dir = wal_dir_path(w);
    if (!wal_exclusive_begin(w, err, errlen))
        return false;
    wal_stream_get(w, &st);
    if (st.insert_lsn != st.oldest_lsn) {
        wal_exclusive_end(w, NULL, 0);
        snprintf(err, errlen, "the write-ahead log is no longer empty");
        return false;
    }
    /* Created first: if that fails (disk full), nothing has changed. */
    if (!wal_seg_create(dirfd, dir, segno, st.segsize, err, errlen) ||
        !wal_seg_remove_outside(dirfd, dir, segno, segno, err, errlen)) {
        wal_exclusive_end(w, NULL, 0);
        return false;
    }
    log_log("write-ahead log \"%s\" now begins at segment %016" PRIX64, dir, segno);
    wal_stream_fresh(&st, segno);
    wal_exclusive_end(w, &st, segno);
    return true;
}

uint64_t
wal_append_raw(wal_t *w, uint64_t pos, const void *bytes, size_t len, char *err, size_t errlen)
{
    wal_stream_state was, base, now;
    uint64_t records;
    char a[32];

    wal_stream_get(w, &was);
    uint32_t segsize = was.segsize;
    base = was;
    bool rebase = false;
    if (wal_stream_may_begin_at(&was, pos)) {
        wal_stream_fresh(&base, pos / segsize);
        rebase = base.segno != was.segno;
    } else if (!was.header_pending && was.insert_lsn % segsize == WAL_SEG_HDR_SIZE &&
               pos == was.segno * segsize) {
        /* A header without a record (a write cut short): it is written
         * again, and must chain as the one in the log does. */
        base.header_pending = true;
        base.salt_announced = true;
        base.prev_epoch = was.epoch;
    }
    if (!wal_stream_check(&base, pos, bytes, len, &now, &records, err, errlen))
        return 0;
    if (rebase) {
        if (!wal_stream_rebase(w, base.segno, err, errlen))
            return 0;
        wal_stream_get(w, &was);
    }
    if (!wal_stream_take(w, &was, &now, pos, bytes, len, records)) {
        snprintf(err, errlen,
                 "the write-ahead log changed while the chunk at %s was checked "
                 "(wal_append_raw must not run concurrently with wal_append)",
                 wal_lsn_str(pos, a, sizeof(a)));
        return 0;
    }
    return now.insert_lsn;
}

uint64_t
wal_stream_from(wal_t *w)
{
    wal_stream_state st;
    wal_stream_get(w, &st);
    /* A new log: no record, and no switch record that says what follows. */
    if (st.insert_lsn == st.oldest_lsn && !(st.header_pending && st.salt_announced))
        return 0;
    return st.insert_lsn;
}

/* ---- truncation --------------------------------------------------------- */

/* Walk segment segno to the record that ends at lsn; *cut = the state of
 * the log ending there. */
static bool
wal_find_record_end(wal_t *w, uint64_t segno, uint64_t lsn, wal_stream_state *cut, char *err,
                    size_t errlen)
{
    char name[WAL_SEG_NAME_LEN], a[32], b[32], c[32];
    uint32_t segsize = cut->segsize;
    size_t got;
    bool missing, ok = false;
    wal_seg_header h;
    size_t need = segsize;
    uint8_t *buf = malloc(need);
    wal_seg_name(name, segno);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (!wal_seg_read(wal_dir_fd(w), segno, buf, need, &got, &missing, err, errlen))
        goto out;
    if (missing || wal_seg_header_decode(buf, got, &h) != WAL_HDR_OK || h.segno != segno ||
        h.segment_size != segsize) {
        snprintf(err, errlen, "segment file \"%s\" is missing or has an invalid header", name);
        goto out;
    }
    for (uint32_t off = WAL_SEG_HDR_SIZE;;) {
        wal_rec_view v;
        const char *why;
        if (!wal_rec_check(buf, got, off, segno, segsize, h.salt, &v, &why)) {
            snprintf(err, errlen, "invalid record at offset %u of segment file \"%s\": %s", off,
                     name, why);
            break;
        }
        if (v.lsn > lsn) {
            snprintf(err, errlen, "%s is not a record boundary: the record at %s ends at %s",
                     wal_lsn_str(lsn, a, sizeof(a)),
                     wal_lsn_str(segno * segsize + off, b, sizeof(b)),
                     wal_lsn_str(v.lsn, c, sizeof(c)));
            break;
        }
        if (v.lsn == lsn) {
            bool sw = v.type == WAL_TYPE_SWITCH;
            cut->segno = sw ? segno + 1 : segno;
            cut->header_pending = sw;
            cut->salt_announced = true;
            cut->salt = sw ? wal_get_u32(v.payload) : h.salt;
            cut->epoch = sw ? 0 : h.epoch;
            cut->prev_epoch = sw ? h.epoch : 0;
            ok = true;
            break;
        }
        off += v.size;
    }
out:
    free(buf);
    return ok;
}

/* The state of st's log cut back to lsn, a record's end or the oldest
 * position; false (err set) if lsn is neither. */
static bool
wal_find_cut(wal_t *w, const wal_stream_state *st, uint64_t lsn, wal_stream_state *cut, char *err,
             size_t errlen)
{
    uint32_t segsize = st->segsize;
    *cut = *st;
    if (lsn == st->oldest_lsn) {
        wal_stream_fresh(cut, lsn / segsize);
        return true;
    }
    cut->insert_lsn = lsn;
    /* The record ends in lsn's segment, or is the switch record of the one
     * before it. */
    uint64_t segno = lsn / segsize - (lsn % segsize == WAL_SEG_HDR_SIZE ? 1 : 0);
    return wal_find_record_end(w, segno, lsn, cut, err, errlen);
}

/* Make the files hold st's log cut back to cut (see the essay for the
 * order).  False (err set) only before anything changed. */
static bool
wal_cut_files(wal_t *w, const wal_stream_state *st, const wal_stream_state *cut, char *err,
              size_t errlen)
{
    char name[WAL_SEG_NAME_LEN];
    struct stat sb;
    int dirfd = wal_dir_fd(w);
    const char *dir = wal_dir_path(w);
    uint32_t segsize = st->segsize;
    /* The bytes of the cut segment that the log used, and those it keeps. */
    uint64_t from = cut->header_pending ? 0 : cut->insert_lsn % segsize;
    uint64_t to = st->segno > cut->segno ? segsize : st->insert_lsn % segsize;

    wal_seg_name(name, cut->segno);
    if (fstatat(dirfd, name, &sb, 0) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "could not stat file \"%s/%s\": %m", dir, name);
            return false;
        }
        /* Only a pending header's segment can be missing: create it. */
        if (!wal_seg_create(dirfd, dir, cut->segno, segsize, err, errlen))
            return false;
        to = 0;
    }
    if (!wal_seg_remove_outside(dirfd, dir, st->oldest_lsn / segsize, cut->segno, err, errlen))
        return false;
    if (from < to && !wal_seg_zero(dirfd, dir, cut->segno, from, to, err, errlen))
        log_panic("could not cut back the write-ahead log: %s", err);
    return true;
}

bool
wal_truncate(wal_t *w, uint64_t lsn, char *err, size_t errlen)
{
    wal_stream_state st, cut;
    char a[32], b[32];

    wal_wait_durable(w, wal_insert_lsn(w));
    if (!wal_exclusive_begin(w, err, errlen))
        return false;
    wal_stream_get(w, &st);
    if (lsn < st.oldest_lsn) {
        snprintf(err, errlen,
                 "cannot cut the write-ahead log back to %s: the oldest record retained "
                 "starts at %s",
                 wal_lsn_str(lsn, a, sizeof(a)), wal_lsn_str(st.oldest_lsn, b, sizeof(b)));
    } else if (lsn > st.insert_lsn) {
        snprintf(err, errlen,
                 "cannot cut the write-ahead log back to %s: it is past the end of the log %s",
                 wal_lsn_str(lsn, a, sizeof(a)), wal_lsn_str(st.insert_lsn, b, sizeof(b)));
    } else if (lsn == st.insert_lsn) {
        wal_exclusive_end(w, NULL, 0);
        return true;
    } else if (wal_find_cut(w, &st, lsn, &cut, err, errlen) &&
               wal_cut_files(w, &st, &cut, err, errlen)) {
        log_log("write-ahead log \"%s\" cut back from %s to %s", wal_dir_path(w),
                wal_lsn_str(st.insert_lsn, a, sizeof(a)), wal_lsn_str(lsn, b, sizeof(b)));
        wal_exclusive_end(w, &cut, cut.segno);
        return true;
    }
    wal_exclusive_end(w, NULL, 0);
    return false;
}
