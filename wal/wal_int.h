/*
 * wal_int.h — internals of the write-ahead log shared by its files and by
 * dtx-waldump and the unit tests: the on-disk format (constants, encoders and
 * validators), segment file handling and the recovery scan.  Not a public
 * interface; the coordinator includes wal.h only.
 *
 * The format, byte by byte, is documented in wal_format.c (which encodes and
 * validates it) and in docs/wal-format.md.
 */
#ifndef DTX_WAL_INT_H
#define DTX_WAL_INT_H

#include "wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- format ---------------------------------------------------------- */

#define WAL_SEG_MAGIC      0x57585444u /* the bytes "DTXW" read little-endian */
#define WAL_FORMAT_VERSION 1
#define WAL_SEG_HDR_SIZE   64
#define WAL_REC_HDR_SIZE   24
#define WAL_REC_ALIGN      8
#define WAL_SWITCH_PAYLOAD 8
#define WAL_SWITCH_SIZE    (WAL_REC_HDR_SIZE + WAL_SWITCH_PAYLOAD)
#define WAL_TYPE_SWITCH    0 /* internal: end of segment, names the next salt */
/* Per-segment payload limit: a record must leave room for a switch record. */
#define WAL_SEG_PAYLOAD_LIMIT(segsize)                                                             \
    ((uint32_t)((segsize)-WAL_SEG_HDR_SIZE - WAL_SWITCH_SIZE - WAL_REC_HDR_SIZE))

typedef struct wal_seg_header {
    uint32_t segment_size;
    uint32_t salt;
    uint64_t segno;
    uint64_t epoch;
} wal_seg_header;

typedef enum wal_hdr_status {
    WAL_HDR_OK = 0,
    WAL_HDR_ZERO,  /* all 64 bytes zero: a preallocated, unused segment */
    WAL_HDR_SHORT, /* file shorter than a header */
    WAL_HDR_BAD_MAGIC,
    WAL_HDR_BAD_VERSION,
    WAL_HDR_BAD_CRC,
    WAL_HDR_BAD_SIZE, /* segment size field out of range */
} wal_hdr_status;

/* A record found in a buffer holding a segment. */
typedef struct wal_rec_view {
    uint32_t offset; /* in the segment file */
    uint32_t size;   /* bytes it occupies, header and padding included */
    uint32_t len;    /* payload length */
    uint8_t type;
    uint64_t lsn;
    const uint8_t *payload;
} wal_rec_view;

static inline void
wal_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void
wal_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
wal_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t
wal_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
wal_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t
wal_get_u64(const uint8_t *p)
{
    return (uint64_t)wal_get_u32(p) | ((uint64_t)wal_get_u32(p + 4) << 32);
}

/* Bytes a record with a payload of len bytes occupies. */
static inline uint32_t
wal_rec_size(uint32_t len)
{
    return (uint32_t)((WAL_REC_HDR_SIZE + (uint64_t)len + WAL_REC_ALIGN - 1) &
                      ~(uint64_t)(WAL_REC_ALIGN - 1));
}

/* LSN that ends a switch record of segment segno: the first record position
 * of the next segment. */
static inline uint64_t
wal_switch_lsn(uint64_t segno, uint32_t segsize)
{
    return (segno + 1) * segsize + WAL_SEG_HDR_SIZE;
}

bool wal_segment_size_valid(uint32_t segsize);
void wal_seg_header_encode(uint8_t out[WAL_SEG_HDR_SIZE], const wal_seg_header *h);
wal_hdr_status wal_seg_header_decode(const uint8_t *buf, size_t avail, wal_seg_header *h)
    __attribute__((warn_unused_result));
const char *wal_hdr_status_str(wal_hdr_status st);

/* Encode a record (header, payload, zero padding) into out, which has room
 * for wal_rec_size(len) bytes. */
void wal_rec_encode(uint8_t *out, uint32_t salt, uint8_t type, uint64_t lsn, const void *payload,
                    uint32_t len);
/* Validate the record at offset off of segment segno, whose first avail bytes
 * are in seg.  True and *rec filled if valid; false with a short reason in
 * *why (a static string) if not. */
bool wal_rec_check(const uint8_t *seg, size_t avail, uint32_t off, uint64_t segno, uint32_t segsize,
                   uint32_t salt, wal_rec_view *rec, const char **why)
    __attribute__((warn_unused_result));
/* The same check for a record whose bytes start at h, with avail bytes of
 * the buffer from h on (a chunk of the stream rather than a whole segment);
 * off is still its offset in segment segno.  rec->payload points into h. */
bool wal_rec_check_at(const uint8_t *h, size_t avail, uint32_t off, uint64_t segno,
                      uint32_t segsize, uint32_t salt, wal_rec_view *rec, const char **why)
    __attribute__((warn_unused_result));

/* ---- segment files --------------------------------------------------- */

#define WAL_SEG_NAME_LEN 32 /* "%016" PRIX64 ".seg" and a NUL, with room */
#define WAL_LOCK_FILE    "LOCK"

void wal_seg_name(char out[WAL_SEG_NAME_LEN], uint64_t segno);
/* List the segment files of a directory, sorted; caller frees *segnos. */
bool wal_seg_list(int dirfd, uint64_t **segnos, size_t *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Create segment segno: a temporary file filled with segsize zero bytes,
 * fsynced, renamed into place, directory fsynced.  False (err set, errno kept)
 * if the file cannot be written, e.g. ENOSPC; a failed fsync PANICs. */
bool wal_seg_create(int dirfd, const char *dir, uint64_t segno, uint32_t segsize, char *err,
                    size_t errlen) __attribute__((warn_unused_result));
/* Read up to len bytes of segment segno into buf; *got = bytes read.
 * *missing = true (and success) if the file does not exist. */
bool wal_seg_read(int dirfd, uint64_t segno, uint8_t *buf, size_t len, size_t *got, bool *missing,
                  char *err, size_t errlen) __attribute__((warn_unused_result));
/* Write zeros over bytes [from, to) of segment segno (extending a shorter
 * file) and fsync it.  False (err set) if the file cannot be opened; a
 * failed write or fsync PANICs. */
bool wal_seg_zero(int dirfd, const char *dir, uint64_t segno, uint64_t from, uint64_t to, char *err,
                  size_t errlen) __attribute__((warn_unused_result));
/* Remove every segment file numbered below lo or above hi, highest first (a
 * crash half way leaves a contiguous run), then fsync the directory.  False
 * (err set) if the directory cannot be listed, before anything is removed; a
 * failed unlink PANICs (the caller's state of the log would no longer match
 * the disk). */
bool wal_seg_remove_outside(int dirfd, const char *dir, uint64_t lo, uint64_t hi, char *err,
                            size_t errlen) __attribute__((warn_unused_result));
/* fsync a directory; PANICs on failure. */
void wal_dir_fsync(int dirfd, const char *dir);
/* Remove leftover temporary files of an interrupted segment creation.
 * Returns the number removed, -1 on error (err set). */
int wal_remove_tmp_files(int dirfd, char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- recovery scan ---------------------------------------------------- */

typedef struct wal_scan_cb {
    /* a segment whose header is valid and chained, before its records */
    void (*segment)(void *arg, const wal_seg_header *h);
    /* a valid record (switch records included: type WAL_TYPE_SWITCH) */
    void (*record)(void *arg, uint64_t segno, const wal_rec_view *rec);
    void *arg;
} wal_scan_cb;

typedef struct wal_scan_result {
    bool corrupt;          /* damage in the middle: the log cannot be used */
    uint32_t segment_size; /* of the log (default if there is none yet) */
    bool have_segments;    /* at least one segment file exists */
    uint64_t first_segno;  /* oldest segment file */
    uint64_t nfiles;       /* segment files present */
    uint64_t records;      /* valid records (switch records excluded) */
    uint64_t highest_epoch;

    /* The end: the first position that holds no valid record. */
    uint64_t end_lsn;
    uint64_t end_segno;
    uint32_t end_offset;   /* 0 if the end segment's header is not valid */
    bool end_header_valid; /* the end segment has a valid, chained header */
    uint32_t end_salt;     /* its salt, or the one announced for it */
    bool end_salt_known;
    uint64_t end_epoch; /* its epoch, or the previous segment's */
    bool end_file_exists;
    uint64_t end_file_size;

    /* What lies after the end in the end segment. */
    uint64_t torn_bytes; /* from end_offset to the last non-zero byte */
    char end_reason[96]; /* why the scan stopped there */

    /* The file after the end segment exists, has the full size and is all
     * zeros: a segment preallocated before a clean stop; kept for reuse. */
    bool next_file_unused;
    /* Other files after the end segment (none holds a valid record). */
    uint64_t *beyond;
    size_t nbeyond;
} wal_scan_result;

/* Scan the log in dirfd (see wal.h "Recovery").  Returns false with err set
 * on an I/O error or when the log is corrupt (res->corrupt); res->end_lsn
 * then says how far the valid prefix went.  Frees nothing of the caller's;
 * release res with wal_scan_result_free(). */
bool wal_scan(int dirfd, uint32_t default_segsize, const wal_scan_cb *cb, wal_scan_result *res,
              char *err, size_t errlen) __attribute__((warn_unused_result));
void wal_scan_result_free(wal_scan_result *res);

/* ---- reader internals used by wal.c ------------------------------------ */

/* For a live reader. */
const char *wal_dir_path(const wal_t *w);

/* ---- streaming: wal_stream.c and what it uses of wal.c ------------------- */

/* A log's append state in the terms of its stream: where the next byte goes
 * and what a segment header there must carry.  wal.c keeps it (insert_lsn,
 * cur_segno, header_pending, cur_salt, cur_epoch, salt_announced,
 * prev_epoch); wal_stream_check computes what a chunk makes of it. */
typedef struct wal_stream_state {
    uint32_t segsize;
    uint64_t insert_lsn; /* where the next record starts */
    uint64_t segno;      /* the segment that holds insert_lsn */
    bool header_pending; /* segno's header is not in the log yet */
    bool salt_announced; /* ...and a switch record announced salt for it */
    uint32_t salt;       /* the segment's salt (the announced one if pending) */
    uint64_t epoch;      /* the segment's epoch (header not pending) */
    uint64_t prev_epoch; /* the previous segment's (pending, salt_announced) */
    uint64_t oldest_lsn; /* oldest retained position; == insert_lsn: no record */
} wal_stream_state;

/* Check the chunk [pos, pos + len) of a primary's stream against st (see
 * wal_append_raw in wal.h for the rules).  True with *next = the state after
 * it, *records = its records (switch records not counted); false with a
 * message naming the position and the reason.  Pure: no I/O, no locks. */
bool wal_stream_check(const wal_stream_state *st, uint64_t pos, const uint8_t *bytes, size_t len,
                      wal_stream_state *next, uint64_t *records, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* In wal.c.  A snapshot of w's append state. */
void wal_stream_get(wal_t *w, wal_stream_state *st);
/* Append the checked chunk: if w's state is still `was`, copy the bytes into
 * the append buffer at pos and make `now` the state (w's epoch rises to the
 * epoch of a header in the chunk); false, taking nothing, if it changed. */
bool wal_stream_take(wal_t *w, const wal_stream_state *was, const wal_stream_state *now,
                     uint64_t pos, const void *bytes, size_t len, uint64_t records)
    __attribute__((warn_unused_result));
/* Exclusive use of the log's files, for wal_truncate and a new standby's
 * first chunk: waits for a running flush and checkpoint, then holds off
 * both and the preparer.  False (err set) if appended records are not
 * written yet.  End it with wal_exclusive_end. */
bool wal_exclusive_begin(wal_t *w, char *err, size_t errlen) __attribute__((warn_unused_result));
/* End it; st (if not NULL) is the state of the log as it now is on disk,
 * every record in it durable, and segment files exist up to last_file. */
void wal_exclusive_end(wal_t *w, const wal_stream_state *st, uint64_t last_file);
int wal_dir_fd(const wal_t *w);
/* For the unit tests: reseed the generator of segment salts, so that two
 * logs that continue the same bytes choose the same salts (a pending header
 * whose salt no switch record announced takes a new one from it). */
void wal_seed_salts(wal_t *w, uint64_t seed);

#endif
