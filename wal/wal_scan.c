/*
 * wal_scan.c — the recovery scan: find where the log ends, and whether it is
 * damaged in the middle.
 *
 * NOTES
 *  The scan reads the segment files in order, starting with the oldest one in
 *  the directory, each whole into one buffer, and walks the chain:
 *
 *    - a segment's header must be valid (magic, version, CRC), name the
 *      segment number of its file and the log's segment size, carry the salt
 *      announced by the previous segment's switch record (not checked for the
 *      oldest segment, whose predecessor a checkpoint may have removed), and
 *      an epoch not lower than the previous segment's;
 *    - records are checked one after the other (wal_rec_check: position, LSN
 *      field, length, padding, CRC seeded with the salt); a switch record
 *      moves the walk to offset 64 of the next segment.
 *
 *  The first position that fails is the candidate end of the log, E.  What
 *  lies after E decides between a torn tail and damage in the middle:
 *
 *    - E's segment, if its header is valid for its file name, is searched at
 *      every 8-byte aligned offset after E for a record that verifies (with
 *      that segment's salt and its own position in the LSN field, so only a
 *      record really written there can match);
 *    - every later segment file is searched the same way, from offset 64,
 *      if its header is valid for its name.
 *
 *  Any valid record after E means E is not the end but damage, and the scan
 *  fails naming E's segment file and offset (and what follows) — recovery
 *  never skips a record silently.  A stale segment (header valid for its
 *  name, but not chained: wrong salt or lower epoch) that holds valid records
 *  is reported the same way.  Otherwise E is the end: non-zero bytes between
 *  E and the end of its segment are a torn tail (a write cut short), counted
 *  in torn_bytes, and later files hold nothing of the log (preallocated or
 *  stale) and are listed in beyond[] — except the file right after the end
 *  segment when it is a complete, all-zero preallocated segment, which is kept
 *  (next_file_unused).  The scan itself never writes: wal_open
 *  does the repair, dtx-waldump only reports.
 *
 *  Searching every aligned offset sounds costly but is not: the LSN field
 *  must equal the position implied by the length field before the CRC is
 *  even computed, so almost every offset is rejected by two loads.
 */
#include "wal_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

void
wal_scan_result_free(wal_scan_result *res)
{
    free(res->beyond);
    res->beyond = NULL;
    res->nbeyond = 0;
}

/* Find a record that verifies at an aligned offset >= from. */
static bool
wal_find_valid(const uint8_t *buf, size_t got, uint32_t from, uint64_t segno, uint32_t segsize,
               uint32_t salt, uint32_t *found)
{
    uint64_t base = segno * segsize;
    if (from < WAL_SEG_HDR_SIZE)
        from = WAL_SEG_HDR_SIZE;
    from = (from + WAL_REC_ALIGN - 1) & ~(uint32_t)(WAL_REC_ALIGN - 1);
    for (uint64_t o = from; o + WAL_REC_HDR_SIZE <= got && o + WAL_REC_HDR_SIZE <= segsize;
         o += WAL_REC_ALIGN) {
        const uint8_t *h = buf + o;
        uint64_t lsn = wal_get_u64(h + 8);
        uint32_t len = wal_get_u32(h + 4);
        if (h[16] == WAL_TYPE_SWITCH) {
            if (lsn != wal_switch_lsn(segno, segsize))
                continue;
        } else if (len > segsize || lsn != base + o + wal_rec_size(len)) {
            continue;
        }
        wal_rec_view rec;
        const char *why;
        if (wal_rec_check(buf, got, (uint32_t)o, segno, segsize, salt, &rec, &why)) {
            *found = (uint32_t)o;
            return true;
        }
    }
    return false;
}

static bool
wal_all_zero(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != 0)
            return false;
    return true;
}

/* Header of a file valid for its own name (chain not considered). */
static bool
wal_header_valid_for(const uint8_t *buf, size_t got, uint64_t segno, uint32_t segsize,
                     wal_seg_header *h)
{
    return wal_seg_header_decode(buf, got, h) == WAL_HDR_OK && h->segno == segno &&
           h->segment_size == segsize;
}

static bool
wal_scan_segsize(int dirfd, const uint64_t *segs, size_t n, uint32_t *segsize, char *err,
                 size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t hdr[WAL_SEG_HDR_SIZE];
        size_t got;
        bool missing;
        wal_seg_header h;
        if (!wal_seg_read(dirfd, segs[i], hdr, sizeof(hdr), &got, &missing, err, errlen))
            return false;
        if (!missing && wal_seg_header_decode(hdr, got, &h) == WAL_HDR_OK && h.segno == segs[i]) {
            *segsize = h.segment_size;
            return true;
        }
    }
    return true;
}

bool
wal_scan(int dirfd, uint32_t default_segsize, const wal_scan_cb *cb, wal_scan_result *res,
         char *err, size_t errlen)
{
    uint64_t *segs = NULL;
    size_t n = 0;
    uint8_t *buf = NULL;
    bool ok = false;
    char name[WAL_SEG_NAME_LEN], name2[WAL_SEG_NAME_LEN];

    memset(res, 0, sizeof(*res));
    res->segment_size = default_segsize;
    if (!wal_seg_list(dirfd, &segs, &n, err, errlen))
        return false;
    res->nfiles = n;
    if (n == 0) {
        res->end_lsn = WAL_SEG_HDR_SIZE;
        snprintf(res->end_reason, sizeof(res->end_reason), "empty log");
        free(segs);
        return true;
    }
    res->have_segments = true;
    res->first_segno = segs[0];
    if (!wal_scan_segsize(dirfd, segs, n, &res->segment_size, err, errlen))
        goto out;
    uint32_t segsize = res->segment_size;
    buf = malloc(segsize);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    /* Walk the chain to the first position that fails. */
    uint64_t segno = segs[0];
    size_t idx = 0;
    bool salt_known = false, hdr_valid = false;
    uint32_t salt_expected = 0, off = 0;
    uint64_t prev_epoch = 0;
    size_t got = 0;
    wal_seg_header h;
    const char *why = "";
    char reason[96];

    for (;;) {
        bool missing = true;
        hdr_valid = false;
        off = 0;
        got = 0;
        if (idx < n && segs[idx] == segno) {
            idx++;
            if (!wal_seg_read(dirfd, segno, buf, segsize, &got, &missing, err, errlen))
                goto out;
        }
        res->end_file_exists = !missing;
        res->end_file_size = got;
        if (missing) {
            why = "segment file missing";
            break;
        }
        wal_hdr_status st = wal_seg_header_decode(buf, got, &h);
        if (st != WAL_HDR_OK) {
            why = wal_hdr_status_str(st);
            break;
        }
        if (h.segno != segno) {
            snprintf(reason, sizeof(reason), "header names segment %016" PRIX64, h.segno);
            why = reason;
            break;
        }
        if (h.segment_size != segsize) {
            snprintf(reason, sizeof(reason), "segment size %u differs from the log's %u",
                     h.segment_size, segsize);
            why = reason;
            break;
        }
        if (salt_known && h.salt != salt_expected) {
            snprintf(reason, sizeof(reason),
                     "salt %08X is not the %08X announced by the previous segment", h.salt,
                     salt_expected);
            why = reason;
            break;
        }
        if (h.epoch < prev_epoch) {
            snprintf(reason, sizeof(reason),
                     "epoch %" PRIu64 " is lower than the previous %" PRIu64, h.epoch, prev_epoch);
            why = reason;
            break;
        }
        hdr_valid = true;
        if (h.epoch > res->highest_epoch)
            res->highest_epoch = h.epoch;
        if (cb && cb->segment)
            cb->segment(cb->arg, &h);

        bool switched = false;
        off = WAL_SEG_HDR_SIZE;
        for (;;) {
            wal_rec_view rec;
            if (!wal_rec_check(buf, got, off, segno, segsize, h.salt, &rec, &why))
                break;
            if (cb && cb->record)
                cb->record(cb->arg, segno, &rec);
            if (rec.type == WAL_TYPE_SWITCH) {
                salt_expected = wal_get_u32(rec.payload);
                salt_known = true;
                prev_epoch = h.epoch;
                switched = true;
                break;
            }
            res->records++;
            off += rec.size;
        }
        if (!switched)
            break;
        segno++;
    }

    res->end_segno = segno;
    res->end_offset = hdr_valid ? off : 0;
    res->end_lsn = segno * segsize + (hdr_valid ? off : WAL_SEG_HDR_SIZE);
    res->end_header_valid = hdr_valid;
    res->end_salt = hdr_valid ? h.salt : salt_expected;
    res->end_salt_known = hdr_valid || salt_known;
    res->end_epoch = hdr_valid ? h.epoch : prev_epoch;
    snprintf(res->end_reason, sizeof(res->end_reason), "%s", why);
    wal_seg_name(name, segno);

    /* Is anything valid after the end? First in the end segment itself. */
    if (res->end_file_exists) {
        wal_seg_header hh;
        uint32_t found;
        if (wal_header_valid_for(buf, got, segno, segsize, &hh) &&
            wal_find_valid(buf, got, hdr_valid ? off + WAL_REC_ALIGN : WAL_SEG_HDR_SIZE, segno,
                           segsize, hh.salt, &found)) {
            res->corrupt = true;
            if (hdr_valid)
                snprintf(err, errlen,
                         "corrupt write-ahead log: invalid record at offset %u of segment file "
                         "\"%s\" (%s) is followed by a valid record at offset %u",
                         off, name, why, found);
            else
                snprintf(err, errlen,
                         "corrupt write-ahead log: segment file \"%s\" does not belong in the "
                         "log (%s) but holds valid records (first at offset %u)",
                         name, why, found);
            goto out;
        }
        uint32_t from = res->end_offset;
        for (size_t i = got; i > from; i--)
            if (buf[i - 1] != 0) {
                res->torn_bytes = i - from;
                break;
            }
    }
    /* Then in every later file. */
    if (idx < n) {
        res->beyond = malloc((n - idx) * sizeof(uint64_t));
        if (res->beyond == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    for (; idx < n; idx++) {
        bool missing;
        wal_seg_header hh;
        uint32_t found;
        if (!wal_seg_read(dirfd, segs[idx], buf, segsize, &got, &missing, err, errlen))
            goto out;
        if (missing)
            continue;
        if (wal_header_valid_for(buf, got, segs[idx], segsize, &hh) &&
            wal_find_valid(buf, got, WAL_SEG_HDR_SIZE, segs[idx], segsize, hh.salt, &found)) {
            res->corrupt = true;
            wal_seg_name(name2, segs[idx]);
            snprintf(err, errlen,
                     "corrupt write-ahead log: the log ends at offset %u of segment file \"%s\" "
                     "(%s), but segment file \"%s\" holds valid records (first at offset %u)",
                     res->end_offset, name, why, name2, found);
            goto out;
        }
        if (segs[idx] == segno + 1 && got == segsize && wal_all_zero(buf, got)) {
            res->next_file_unused = true;
            continue;
        }
        res->beyond[res->nbeyond++] = segs[idx];
    }
    ok = true;
out:
    free(buf);
    free(segs);
    return ok;
}
