/*
 * wal.h — the coordinator's write-ahead log.
 *
 * A log is a directory of preallocated segment files.  Records are appended
 * from any thread without blocking on disk, and made durable with
 * fdatasync in groups: every record appended while one fdatasync runs is
 * made durable by the next.  Durability is reported either by a callback on
 * the caller's libevent loop (wal_notify_durable: the library's writer
 * thread does the I/O) or by a blocking wait for other threads
 * (wal_wait_durable: a waiting thread may do the group's write and fdatasync
 * itself, which spares a lone committer two thread switches).  A record
 * nobody waits for is made durable with the next flush that someone waits
 * for, or in the background within a tenth of a second.
 *
 * LSN.  A log sequence number is a byte position in the log's stream:
 * segment n covers positions [n * segment_size, (n + 1) * segment_size), and a
 * position is the segment's base plus the offset in its file.  The LSN of a
 * record is the position just past its end (which is also where the next
 * record starts), so "durable up to L" means every record whose LSN is <= L
 * is on disk.  LSNs are unique, strictly increasing in append order, and never
 * 0; 0 means "no record" (wal_append's failure value) and, for readers, "from
 * the oldest record retained".  The format is in docs/wal-format.md.
 *
 * Failure rule.  A failed write or fsync (disk full included) is not
 * reported to the caller: the process logs a PANIC and aborts, and nothing
 * appended after the last successful fdatasync is ever acknowledged.  A
 * restart recovers from the log.  Only wal_open(), wal_checkpoint(),
 * wal_append_raw(), wal_truncate() and the readers return errors, for
 * conditions the caller can act on.
 *
 * Recovery.  wal_open() scans the log.  The log ends at the first record
 * that is not valid; if bytes follow it in that segment (a write cut short by
 * a crash), they are a torn tail: they are zeroed, and the event is logged and
 * reported by wal_get_info().  If any valid record follows an invalid one —
 * damage in the middle of the log — wal_open() fails and names the segment
 * file and offset; nothing is skipped silently.  Records of a stale segment (a
 * file whose header does not belong at its place in the chain: wrong segment
 * number, salt or a lower epoch) are never accepted.
 *
 * Threads.  A wal_t carries no global state; several may be open at once (in
 * different directories: a directory is locked by the process that opens it).
 * wal_append, wal_wait_durable, wal_flushed_lsn, wal_insert_lsn,
 * wal_get_stats and wal_checkpoint may be called from any thread.
 * wal_attach_event_base, wal_notify_durable and wal_close belong to the thread
 * that runs the attached event base (or to any single thread if none is
 * attached).  A reader belongs to one thread at a time.
 *
 * Streaming to a standby.  A standby holds its primary's log byte for byte at
 * the same positions.  The primary reads it in chunks of raw bytes
 * (wal_reader_next_chunk); the standby takes each chunk as it is
 * (wal_append_raw), verified first, and makes it durable like any record
 * (wal_notify_durable, wal_wait_durable).  Afterwards the standby's log is in
 * the state wal_open would find it in, so once promoted it continues the
 * same log with wal_set_epoch and wal_append.  An old primary that rejoins as
 * a standby first cuts its log back to where it forked (wal_truncate).  See
 * docs/wal-format.md, "Streaming to a standby".
 */
#ifndef DTX_WAL_H
#define DTX_WAL_H

#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define WAL_WARN_UNUSED __attribute__((warn_unused_result))

/* Largest payload of one record, whatever the segment size.  A log whose
 * segments are smaller also has a smaller limit: see wal_max_payload(). */
#define WAL_MAX_PAYLOAD (1u << 20)
/* Segment size used when wal_options.segment_size is 0. */
#define WAL_DEFAULT_SEGMENT_SIZE (16u << 20)
/* Bounds of wal_options.segment_size, which must also be a multiple of 4096. */
#define WAL_MIN_SEGMENT_SIZE (64u << 10)
#define WAL_MAX_SEGMENT_SIZE (1u << 30)
/* Record type 0 is reserved (the library uses it for segment switches). */
#define WAL_TYPE_INVALID 0

typedef struct wal wal_t;
typedef struct wal_reader wal_reader;

typedef struct wal_options {
    /* Size of a segment file, for a log created now.  An existing log keeps
     * the size written in its segment headers.  0 = WAL_DEFAULT_SEGMENT_SIZE. */
    uint32_t segment_size;
    /* Epoch written into the header of segments created from now on.  The
     * epoch never goes down: the log uses max(epoch, highest epoch found). */
    uint64_t epoch;
    /* Records nobody waits for are made durable this long after they were
     * appended at the latest, if no waited-for flush takes them first.
     * 0 = WAL_DEFAULT_BG_FLUSH_MS. */
    uint32_t bg_flush_ms;
} wal_options;

#define WAL_DEFAULT_BG_FLUSH_MS 100

/* What wal_open() found. */
typedef struct wal_info {
    uint64_t oldest_lsn;    /* start of the oldest record retained */
    uint64_t end_lsn;       /* end of the last valid record at open */
    uint64_t highest_epoch; /* highest epoch in any segment header, 0 if none */
    uint64_t records;       /* valid records found */
    uint64_t segments;      /* segment files that hold the log */
    uint64_t torn_lsn;      /* where a torn tail was cut, 0 if none */
    uint64_t torn_bytes;    /* bytes zeroed at the torn tail */
    uint64_t removed_files; /* unused or stale files past the end, removed */
} wal_info;

typedef struct wal_stats {
    uint64_t records; /* records appended since open */
    uint64_t bytes;   /* bytes written since open */
    uint64_t fsyncs;  /* fdatasync calls that made records durable */
    uint64_t batches; /* write groups */
    uint64_t gathers; /* flushes that waited for more commits to join the group */
} wal_stats;

/* One record, as returned by a reader.  payload points into the reader's
 * buffer and is valid until the next wal_reader_next() or wal_reader_close(). */
typedef struct wal_record {
    uint64_t lsn;       /* end of the record (the LSN wal_append returned) */
    uint64_t start_lsn; /* where it starts (the previous record's LSN) */
    uint8_t type;       /* 1..255 */
    uint32_t len;       /* payload length */
    const void *payload;
    uint64_t epoch; /* the epoch in the header of the record's segment */
} wal_record;

typedef void (*wal_durable_cb)(void *arg, uint64_t lsn);

/* Fill opts with the defaults (segment_size 0 = default, epoch 0). */
void wal_options_init(wal_options *opts);

/* Open the log in dir, creating the directory if needed, recover it (see
 * above) and start the writer threads.  opts may be NULL.  Returns NULL with a
 * message in err on failure (I/O error, directory locked by another process,
 * corrupt log).  The caller closes the result with wal_close(). */
wal_t *wal_open(const char *dir, const wal_options *opts, char *err, size_t errlen) WAL_WARN_UNUSED;

/* Flush everything appended, stop the threads, close the files and free w.
 * The wal_notify_durable callbacks of what that last flush made durable are
 * called from here, before it returns (on the caller's thread, as from the
 * loop): the caller's last decisions are reported whatever its loop does
 * next.  They must not append, wait or notify on w.  Must not race with any
 * other call on w. */
void wal_close(wal_t *w);

/* Recovery facts from wal_open(). */
void wal_get_info(const wal_t *w, wal_info *out);
/* Counters since open. */
void wal_get_stats(wal_t *w, wal_stats *out);
/* The writer's histograms: fdatasync durations (µs) and records per flush;
 * valid while the log is open, read with metrics_hist_write (any thread). */
void wal_get_hists(wal_t *w, const metrics_hist **fsync, const metrics_hist **records);
/* Largest payload accepted by wal_append on this log. */
uint32_t wal_max_payload(const wal_t *w);
/* Segment size of this log. */
uint32_t wal_segment_size(const wal_t *w);
/* Epoch that new segments are stamped with. */
uint64_t wal_epoch(wal_t *w);

/* Raise the epoch.  Records appended after this call go to a new segment
 * stamped with the new epoch (unless the current segment holds no record yet:
 * then its header takes the new epoch).  Returns false if epoch is lower than
 * the current one; an equal epoch is a no-op. */
bool wal_set_epoch(wal_t *w, uint64_t epoch) WAL_WARN_UNUSED;

/* Append a record; thread-safe, never waits for disk.  The payload is copied.
 * Returns the record's LSN, or 0 (and logs an error) if type is 0 or len is
 * larger than wal_max_payload(w).  Memory use grows with what is appended but
 * not yet written (see wal_pending_bytes). */
uint64_t wal_append(wal_t *w, uint8_t type, const void *payload, uint32_t len);

/* Position up to which the log is durable: every record with LSN <= it.  It
 * only grows, except that wal_truncate, and a new standby's first
 * wal_append_raw, set it back to the new end of the log. */
uint64_t wal_flushed_lsn(wal_t *w);
/* LSN of the last record appended (the end of the appended stream). */
uint64_t wal_insert_lsn(wal_t *w);
/* Bytes appended but not yet handed to the writer; for back-pressure. */
size_t wal_pending_bytes(wal_t *w);

/* Block the calling thread until lsn is durable.  If no flush is running,
 * the calling thread writes and fdatasyncs everything pending itself (and
 * PANICs if that fails, as the writer thread would).  Never call it on the
 * event loop thread. */
void wal_wait_durable(wal_t *w, uint64_t lsn);

/* Deliver durability callbacks on base.  Call once, from the thread that runs
 * base, before wal_notify_durable.  Returns false with a message in err if the
 * wake-up descriptor cannot be created. */
bool wal_attach_event_base(wal_t *w, struct event_base *base, char *err,
                           size_t errlen) WAL_WARN_UNUSED;
/* Call cb(arg, lsn) on the attached loop once lsn is durable — never from
 * inside this call, even when lsn is durable already — and make the writer
 * thread flush at once.  Callbacks run in LSN order, and for the same lsn in
 * the order they were asked for.  A callback may append and ask again; it
 * must not call wal_close.  Call from the loop's thread. */
void wal_notify_durable(wal_t *w, uint64_t lsn, wal_durable_cb cb, void *arg);

/* Remove every segment file that lies entirely below keep_lsn (segment n is
 * removed when (n + 1) * segment size <= keep_lsn), oldest first, then fsync
 * the directory.  keep_lsn must not exceed wal_flushed_lsn(w).  Blocks on the
 * directory fsync: call it from a thread that may block, not the event loop.
 * Returns false with a message in err on a bad argument or a failed unlink. */
bool wal_checkpoint(wal_t *w, uint64_t keep_lsn, char *err, size_t errlen) WAL_WARN_UNUSED;
/* Start of the oldest record still retained. */
uint64_t wal_oldest_lsn(wal_t *w);

/* Read the records of an open log whose LSN is greater than from_lsn (0 =
 * from the oldest record retained), up to what is durable at each call —
 * or, with wal_reader_next_chunk, its raw bytes from from_lsn on, for a
 * standby.  Reading is done in the calling thread with pread, from any
 * thread while others append; for replication, call wal_notify_durable to
 * learn when more is available.  Returns NULL with a message in err if
 * from_lsn was removed by a checkpoint or lies past the end.  The caller
 * owns the reader: close it with wal_reader_close() before wal_close() (and
 * before wal_truncate). */
wal_reader *wal_reader_open(wal_t *w, uint64_t from_lsn, char *err, size_t errlen) WAL_WARN_UNUSED;
/* Read a log directory that no process has open for writing (tools,
 * recovery before wal_open).  The directory is verified first, as wal_open
 * would, but nothing is modified: a torn tail is simply not read.  Returns
 * NULL with a message in err if the log is corrupt. */
wal_reader *wal_reader_open_dir(const char *dir, uint64_t from_lsn, char *err,
                                size_t errlen) WAL_WARN_UNUSED;
/* Next record: 1 and *rec filled; 0 at the end (of what is durable, for a
 * live reader: more may come later); -1 on an error, described by
 * wal_reader_error().  A reader returns records or chunks, whichever its
 * first call asked for. */
int wal_reader_next(wal_reader *r, wal_record *rec) WAL_WARN_UNUSED;
/* Next chunk of the raw stream, for a standby: 1 with [*pos, *pos + *len)
 * the bytes of the log at those positions, exactly as on disk; 0 and -1 as
 * for wal_reader_next.  A chunk holds whole, verified records only (switch
 * records included), lies within one segment, and has at most max bytes
 * unless its one record is larger.  A chunk that starts a segment starts at
 * the segment's position n * segment size and includes its 64-byte header.
 * Chunks follow each other: each starts at the previous one's end, or, after
 * a chunk that ends with a switch record, at the next segment's start.
 *
 * The first chunk starts at the reader's from_lsn, which must then be the
 * end of a record (else -1): a standby's end, wal_stream_from() on the
 * standby.  When from_lsn is where a segment's records start (offset 64),
 * the chunk starts at the segment's start with its header; from_lsn 0 thus
 * starts at the start of the oldest retained segment (an empty standby
 * copies every segment the primary keeps).
 *
 * *bytes points into the reader's buffer: valid until the next call or
 * wal_reader_close(); the caller copies or sends it before then. */
int wal_reader_next_chunk(wal_reader *r, uint64_t *pos, const void **bytes, size_t *len,
                          size_t max) WAL_WARN_UNUSED;
/* The last error of r (a static "" if none); owned by r. */
const char *wal_reader_error(const wal_reader *r);
void wal_reader_close(wal_reader *r);

/* ---- standby ---- */

/* Take the bytes [pos, pos + len) of a primary's stream, as
 * wal_reader_next_chunk returned them, into this log, at the same
 * positions: into the append buffer, to be written and fdatasynced like
 * appended records (wal_wait_durable and wal_notify_durable tell when).
 * The bytes are copied.  Returns the LSN of the last record taken (a switch
 * record's, if the chunk ends with one), which is the new insert position.
 *
 * Everything is verified before anything is taken; on any failure nothing is
 * taken and 0 is returned with a message in err naming the position and the
 * reason.  The rules (docs/wal-format.md, "Streaming to a standby"):
 *   - pos is where this log continues: wal_insert_lsn(w), or, when a switch
 *     record ended the log's last segment, that next segment's start (the
 *     chunk then starts with its header); when the log retains no record
 *     (a new standby) pos may be the start of any segment, and the log then
 *     begins there: its files are replaced (every other segment file is
 *     removed), which blocks on the disk;
 *   - the chunk lies within one segment, holds at least one record and ends
 *     at the end of a record; nothing follows a switch record;
 *   - a segment header is valid (magic, version, reserved bytes, CRC), names
 *     the expected segment and this log's segment size, carries the salt the
 *     previous switch record announced and an epoch not lower than the
 *     previous segment's;
 *   - every record is valid as recovery checks it: offset, length, reserved
 *     bytes and padding zero, LSN equal to its own end, CRC seeded with its
 *     segment's salt.
 * Afterwards the append state (insert position, current segment, salt,
 * epoch, pending header) is what wal_open would derive from the same bytes,
 * and the log's epoch rises to the highest segment epoch taken: once the
 * standby is promoted, wal_set_epoch and wal_append continue the same log.
 *
 * The checks cannot tell a forked log from this one right after a switch
 * record both share (the next segment's salt is the same in both): a
 * standby that may hold records its primary lacks (an old primary) finds
 * the fork by epochs and cuts back with wal_truncate before it asks.
 *
 * Threads: any thread, but never concurrently with wal_append, wal_truncate
 * or another wal_append_raw on the same log (a standby appends only raw; a
 * promoted one only with wal_append); checked as far as it is cheap. */
uint64_t wal_append_raw(wal_t *w, uint64_t pos, const void *bytes, size_t len, char *err,
                        size_t errlen) WAL_WARN_UNUSED;

/* Where a standby asks its primary's reader to start (the from_lsn of
 * wal_reader_open): its insert position, or 0 for a new log — one that
 * retains no record and whose last segment was not ended by a switch record
 * (a new standby, or a log cut back to its oldest position): it then copies
 * every segment the primary keeps. */
uint64_t wal_stream_from(wal_t *w);

/* Cut the log back to lsn, which must be the LSN of a record or the oldest
 * retained position wal_oldest_lsn(w): every byte after it in its segment is
 * zeroed and every later segment file removed, files and directory fsynced
 * (later files first: a crash half way leaves a valid, longer log; cut
 * again).  A cut where a segment's records start also removes that
 * segment's header: the segment then starts again after the switch record
 * (and a cut to the oldest position leaves a log that retains no record).
 * Afterwards the append state is what wal_open would derive, and every
 * record up to lsn is durable (wal_flushed_lsn(w) == lsn); the epoch does
 * not go down.  For an old primary that rejoins as a standby and holds
 * records the new primary never received.
 *
 * It first makes everything appended durable, then refuses (false, err) an
 * lsn that is not a record's end, lies before the oldest retained record or
 * past the end; lsn == the end changes nothing.  The caller ensures that
 * nothing else uses the log meanwhile: no wal_append or wal_append_raw
 * during the call, no reader open (close them first), no
 * wal_notify_durable callback or wal_wait_durable pending for an LSN past
 * lsn (they would be answered by later records that reach it).  Blocks on
 * the disk: not on the event loop's thread.  A failed write, unlink or
 * fsync PANICs, as for any write of the log. */
bool wal_truncate(wal_t *w, uint64_t lsn, char *err, size_t errlen) WAL_WARN_UNUSED;

/* Format an LSN as "HI/LO" (hex, like PostgreSQL) into buf; returns buf. */
const char *wal_lsn_str(uint64_t lsn, char *buf, size_t len);

#endif
