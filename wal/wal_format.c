/*
 * wal_format.c — the on-disk format of the write-ahead log: pure functions
 * that encode and validate segment headers and records.  No I/O here.
 *
 * NOTES
 *
 * A log is a directory of segment files named by their segment number in 16
 * upper-case hex digits, "0000000000000003.seg".  Every segment file has the
 * same size S (a multiple of 4096, 64 KiB .. 1 GiB, default 16 MiB) and is
 * created full of zero bytes, so that writing a record never changes the
 * file's size or block map and fdatasync has no metadata to flush.
 *
 * Positions.  The log is one stream of bytes; segment n holds the positions
 * [n*S, (n+1)*S), position = n*S + offset in the file.  A record's LSN is the
 * position just past its end.  All integers are little-endian.
 *
 * Segment header, offset 0, 64 bytes:
 *
 *    0  4  magic          0x57585444, i.e. the bytes 'D' 'T' 'X' 'W'
 *    4  2  version        1
 *    6  2  header size    64
 *    8  4  segment size   S, identical in every segment of a log
 *   12  4  salt           random, chosen when the segment was started; seeds
 *                         the CRC of every record in this segment
 *   16  8  segment number n, equal to the number in the file name
 *   24  8  epoch          the coordinator epoch when the segment was started;
 *                         never lower than the previous segment's
 *   32 28  reserved       zero
 *   60  4  header CRC     CRC-32C (seed 0) of bytes 0..59
 *
 * A header of 64 zero bytes marks a preallocated segment not yet used.
 *
 * Records follow from offset 64, each at an 8-byte aligned offset, back to
 * back.  Record header, 24 bytes, then the payload, then zero padding up to
 * the next multiple of 8:
 *
 *    0  4  CRC            CRC-32C seeded with the segment's salt, over bytes
 *                         4..23 of this header and then the payload
 *    4  4  length         payload length L (0 .. 1 MiB, and less than S)
 *    8  8  LSN            position of the end of the record:
 *                         n*S + offset + align8(24 + L);
 *                         for a switch record: (n+1)*S + 64
 *   16  1  type           1..255, opaque to the library; 0 = switch record
 *   17  1  flags          0
 *   18  6  reserved       0
 *   24  L  payload
 *  24+L  .. zero padding to align8(24 + L)
 *
 * Switch record (type 0, L = 8) ends a segment: payload = salt of the next
 * segment (4 bytes) and 4 zero bytes.  Its LSN is the position of the next
 * segment's first record, so every record starts at the previous record's
 * LSN.  A record is only placed where a switch record still fits after it
 * (offset + align8(24 + L) + 32 <= S), so every segment but the last ends with
 * a switch record, and the scan never has to guess where a segment ends.
 *
 * Why a record from a stale or reused segment cannot be accepted: its CRC is
 * seeded with the salt of the segment it was written in, which a new
 * incarnation of that segment number does not share; its LSN field must
 * equal its own position; and a segment's salt must be the one the previous
 * segment's switch record announced.  The per-record checks are all in
 * wal_rec_check() (wal_rec_check_at() for a record in a chunk of the stream
 * rather than a segment buffer); the chain checks are in wal_scan.c,
 * wal_reader.c and, for a standby's chunks, wal_stream.c.
 */
#include "wal_int.h"
#include "crc32c.h"

#include <stdlib.h>

bool
wal_segment_size_valid(uint32_t segsize)
{
    return segsize >= WAL_MIN_SEGMENT_SIZE && segsize <= WAL_MAX_SEGMENT_SIZE &&
           segsize % 4096 == 0;
}

void
wal_seg_header_encode(uint8_t out[WAL_SEG_HDR_SIZE], const wal_seg_header *h)
{
    memset(out, 0, WAL_SEG_HDR_SIZE);
    wal_put_u32(out + 0, WAL_SEG_MAGIC);
    wal_put_u16(out + 4, WAL_FORMAT_VERSION);
    wal_put_u16(out + 6, WAL_SEG_HDR_SIZE);
    wal_put_u32(out + 8, h->segment_size);
    wal_put_u32(out + 12, h->salt);
    wal_put_u64(out + 16, h->segno);
    wal_put_u64(out + 24, h->epoch);
    wal_put_u32(out + 60, crc32c_extend(0, out, 60));
}

wal_hdr_status
wal_seg_header_decode(const uint8_t *buf, size_t avail, wal_seg_header *h)
{
    if (avail < WAL_SEG_HDR_SIZE)
        return WAL_HDR_SHORT;
    bool zero = true;
    for (int i = 0; i < WAL_SEG_HDR_SIZE; i++)
        if (buf[i] != 0) {
            zero = false;
            break;
        }
    if (zero)
        return WAL_HDR_ZERO;
    if (wal_get_u32(buf) != WAL_SEG_MAGIC)
        return WAL_HDR_BAD_MAGIC;
    if (wal_get_u32(buf + 60) != crc32c_extend(0, buf, 60))
        return WAL_HDR_BAD_CRC;
    if (wal_get_u16(buf + 4) != WAL_FORMAT_VERSION || wal_get_u16(buf + 6) != WAL_SEG_HDR_SIZE)
        return WAL_HDR_BAD_VERSION;
    h->segment_size = wal_get_u32(buf + 8);
    h->salt = wal_get_u32(buf + 12);
    h->segno = wal_get_u64(buf + 16);
    h->epoch = wal_get_u64(buf + 24);
    if (!wal_segment_size_valid(h->segment_size))
        return WAL_HDR_BAD_SIZE;
    return WAL_HDR_OK;
}

const char *
wal_hdr_status_str(wal_hdr_status st)
{
    switch (st) {
    case WAL_HDR_OK:
        return "valid header";
    case WAL_HDR_ZERO:
        return "unused segment (zero header)";
    case WAL_HDR_SHORT:
        return "file shorter than a segment header";
    case WAL_HDR_BAD_MAGIC:
        return "bad magic number in segment header";
    case WAL_HDR_BAD_VERSION:
        return "unsupported segment format version";
    case WAL_HDR_BAD_CRC:
        return "segment header checksum mismatch";
    case WAL_HDR_BAD_SIZE:
        return "invalid segment size in header";
    default:
        abort();
    }
}

static uint32_t
wal_rec_crc(uint32_t salt, const uint8_t *hdr, const void *payload, uint32_t len)
{
    uint32_t crc = crc32c_extend(salt, hdr + 4, WAL_REC_HDR_SIZE - 4);
    return len ? crc32c_extend(crc, payload, len) : crc;
}

void
wal_rec_encode(uint8_t *out, uint32_t salt, uint8_t type, uint64_t lsn, const void *payload,
               uint32_t len)
{
    uint32_t size = wal_rec_size(len);
    memset(out, 0, WAL_REC_HDR_SIZE);
    wal_put_u32(out + 4, len);
    wal_put_u64(out + 8, lsn);
    out[16] = type;
    if (len)
        memcpy(out + WAL_REC_HDR_SIZE, payload, len);
    memset(out + WAL_REC_HDR_SIZE + len, 0, size - WAL_REC_HDR_SIZE - len);
    wal_put_u32(out, wal_rec_crc(salt, out, out + WAL_REC_HDR_SIZE, len));
}

bool
wal_rec_check(const uint8_t *seg, size_t avail, uint32_t off, uint64_t segno, uint32_t segsize,
              uint32_t salt, wal_rec_view *rec, const char **why)
{
    /* seg + off is only formed when it lies within the buffer. */
    if (off > avail)
        return wal_rec_check_at(seg, 0, off, segno, segsize, salt, rec, why);
    return wal_rec_check_at(seg + off, avail - off, off, segno, segsize, salt, rec, why);
}

bool
wal_rec_check_at(const uint8_t *h, size_t avail, uint32_t off, uint64_t segno, uint32_t segsize,
                 uint32_t salt, wal_rec_view *rec, const char **why)
{
    if (off % WAL_REC_ALIGN != 0 || off < WAL_SEG_HDR_SIZE ||
        (uint64_t)off + WAL_REC_HDR_SIZE > segsize) {
        *why = "record offset out of range";
        return false;
    }
    if (WAL_REC_HDR_SIZE > avail) {
        *why = "incomplete record header";
        return false;
    }
    uint32_t len = wal_get_u32(h + 4);
    uint64_t lsn = wal_get_u64(h + 8);
    uint8_t type = h[16];
    uint64_t base = segno * segsize;

    if (wal_get_u32(h) == 0 && len == 0 && lsn == 0 && type == 0) {
        *why = "no record (zero bytes)";
        return false;
    }
    if (h[17] != 0 || h[18] != 0 || h[19] != 0 || wal_get_u32(h + 20) != 0) {
        *why = "non-zero reserved bits in record header";
        return false;
    }
    uint32_t size;
    if (type == WAL_TYPE_SWITCH) {
        if (len != WAL_SWITCH_PAYLOAD || lsn != wal_switch_lsn(segno, segsize)) {
            *why = "invalid switch record";
            return false;
        }
        size = WAL_SWITCH_SIZE;
    } else {
        if (len > WAL_MAX_PAYLOAD || len > WAL_SEG_PAYLOAD_LIMIT(segsize)) {
            *why = "invalid record length";
            return false;
        }
        size = wal_rec_size(len);
        if ((uint64_t)off + size + WAL_SWITCH_SIZE > segsize) {
            *why = "record does not fit in segment";
            return false;
        }
        if (lsn != base + off + size) {
            *why = "record LSN does not match its position";
            return false;
        }
    }
    if (size > avail) {
        *why = "incomplete record";
        return false;
    }
    for (uint32_t i = WAL_REC_HDR_SIZE + len; i < size; i++)
        if (h[i] != 0) {
            *why = "non-zero record padding";
            return false;
        }
    if (wal_get_u32(h) != wal_rec_crc(salt, h, h + WAL_REC_HDR_SIZE, len)) {
        *why = "record checksum mismatch";
        return false;
    }
    rec->offset = off;
    rec->size = size;
    rec->len = len;
    rec->type = type;
    rec->lsn = lsn;
    rec->payload = h + WAL_REC_HDR_SIZE;
    return true;
}
