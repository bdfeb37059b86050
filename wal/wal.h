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
 * restart recovers from the log.  Only wal_open() and wal_checkpoint()
 * return errors, for conditions the caller can act on.
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
 * attached).
 */
#ifndef DTX_WAL_H
#define DTX_WAL_H

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
 * Pending wal_notify_durable callbacks are dropped without being called.
 * Must not race with any other call on w. */
void wal_close(wal_t *w);

/* Recovery facts from wal_open(). */
void wal_get_info(const wal_t *w, wal_info *out);
/* Counters since open. */
void wal_get_stats(wal_t *w, wal_stats *out);
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

/* Position up to which the log is durable: every record with LSN <= it. */
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
 * from the oldest record retained), up to what is durable at each call.
 * Reading is done in the calling thread with pread; for replication, call
 * wal_notify_durable to learn when more is available.  Returns NULL with a
 * message in err if from_lsn was removed by a checkpoint or lies past the
 * end.  Close with wal_reader_close() before wal_close(). */
wal_reader *wal_reader_open(wal_t *w, uint64_t from_lsn, char *err, size_t errlen) WAL_WARN_UNUSED;
/* Read a log directory that no process has open for writing (tools,
 * recovery before wal_open).  The directory is verified first, as wal_open
 * would, but nothing is modified: a torn tail is simply not read.  Returns
 * NULL with a message in err if the log is corrupt. */
wal_reader *wal_reader_open_dir(const char *dir, uint64_t from_lsn, char *err,
                                size_t errlen) WAL_WARN_UNUSED;
/* Next record: 1 and *rec filled; 0 at the end (of what is durable, for a
 * live reader: more may come later); -1 on an error, described by
 * wal_reader_error(). */
int wal_reader_next(wal_reader *r, wal_record *rec) WAL_WARN_UNUSED;
/* The last error of r (a static "" if none); owned by r. */
const char *wal_reader_error(const wal_reader *r);
void wal_reader_close(wal_reader *r);

/* Format an LSN as "HI/LO" (hex, like PostgreSQL) into buf; returns buf. */
const char *wal_lsn_str(uint64_t lsn, char *buf, size_t len);

#endif
