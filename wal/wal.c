/*
 * wal.c — the write-ahead log: open and recovery, append, group commit,
 * durability notification, checkpoint, close.
 *
 * NOTES
 *
 * What this file owns.  A wal_t owns its directory (locked with flock on
 * "LOCK" so that two processes never write one log), the append buffer, two
 * threads — the writer and the segment preparer — and the wake-up eventfd of
 * the attached event loop.  The format it writes is described byte by byte in
 * wal_format.c; segment files are created by wal_segment.c; the recovery scan
 * is wal_scan.c; a standby's raw appends and truncation are wal_stream.c,
 * which changes the append state only through the functions at the end of
 * this file.
 *
 * Threads and locks.
 *   - Appenders (any thread) take w->lock only long enough to reserve the
 *     next position, encode the record (CRC included) into w->fill and bump
 *     counters.  They never touch a file.
 *   - A flush swaps w->fill for the empty flush buffer under the lock, then,
 *     without the lock, pwrites the bytes to the segment files and fdatasyncs
 *     every file it wrote.  Only then does it publish the new flushed LSN (an
 *     atomic) and wake the waiters: threads blocked in wal_wait_durable sleep
 *     on a futex word (flush_seq) that every flush bumps; the event loop is
 *     woken through an eventfd when one of its callbacks is due.  One flush
 *     runs at a time: whoever runs it sets w->flushing under the lock, and
 *     the flush state (flush buffer, open segment file) belongs to it.
 *   - Who flushes.  A thread in wal_wait_durable whose record is not durable
 *     and finds no flush running becomes the flusher itself (the "leader", as
 *     in PostgreSQL's XLogFlush): a lone committer pays exactly a write and an
 *     fdatasync, with no hand-off to another thread and back.  The writer
 *     thread flushes for everybody else: when wal_notify_durable kicks it
 *     (the event loop must never block on the disk), when more than
 *     WAL_BG_FLUSH_BYTES are pending, and for records that nobody waits for,
 *     at the latest bg_flush_ns after they were appended.  While appends
 *     come it polls on that period rather than have every append signal it;
 *     after WAL_IDLE_ROUNDS quiet periods it sleeps until an append wakes it.
 *   - The preparer thread creates the next segment file (zero-filled,
 *     fsynced, renamed, directory fsynced) before a flush needs it, so a
 *     segment switch costs the flush nothing.  Its state (prep_*) is under
 *     w->prep_lock.
 *   - wal_checkpoint runs in the caller's thread under w->ckpt_lock.
 *   - A standby's raw chunk (wal_append_raw) is verified without the lock,
 *     then copied into w->fill like an encoded record (wal_stream_take),
 *     after checking under the lock that the append state did not change.
 *   - wal_truncate, and a new standby's first chunk, change the files
 *     themselves (wal_exclusive_begin/_end): they take ckpt_lock, wait for a
 *     running flush and then mark one running, so that the flush state
 *     (seg_fd) is theirs and no flush starts, and hold off the preparer
 *     (prep_hold; they wait until prep_busy clears).  At the end they set
 *     the append state and the preparer's prep_done to what the files now
 *     hold.
 *   - The durability callbacks (a heap ordered by LSN) belong to the event
 *     loop's thread alone; a flusher only reads loop_min_lsn, the smallest
 *     LSN waited for, to decide whether to write to the eventfd.
 *
 * Invariants.
 *   - insert_lsn is the position where the next record starts; the LSNs
 *     wal_append returns are strictly increasing and each record starts at the
 *     previous one's LSN (the stream has no holes except the unused end of a
 *     segment after its switch record, and the header area, which the LSN
 *     arithmetic skips).
 *   - flushed_lsn <= the LSN of the last record written and fdatasynced; it
 *     only grows, and only after every fdatasync of the batch succeeded.  A
 *     failed write or fdatasync PANICs before anything is published, so
 *     nothing is acknowledged that is not on disk.  (wal_truncate and a new
 *     standby's first chunk set it to the new end of the log, lower or
 *     higher: nobody waits then.)
 *   - A segment's header is emitted into the stream together with its first
 *     record (header_pending until then), so a zero header on disk means the
 *     segment holds nothing.  A switch record, the next header and the record
 *     that did not fit are encoded by one wal_append call, in one batch.  (A
 *     standby's chunk may end with a switch record: its next header then
 *     stays pending, with the salt the switch record announced.)
 *   - The append state — insert_lsn, cur_segno, cur_salt, cur_epoch,
 *     header_pending, salt_announced, prev_epoch, force_switch and epoch — is
 *     always what wal_open would derive from the log once the appended
 *     bytes are on disk (wal_init_state), whichever path produced it.
 *   - The file of a segment exists (complete, zero-filled, durable) before
 *     a flush writes into it: the flush waits for the preparer, or creates
 *     the file itself if preparation failed.
 *
 * Group commit.  A flush takes everything appended so far as one batch: one
 * pwrite per segment touched, one fdatasync per file.  Records appended while
 * that fdatasync runs go in the next batch, which starts as soon as it ends.
 * A plain "swap, write, fsync" loop settles with closed-loop clients (append,
 * wait, append again) into two half-sized groups that alternate: when an
 * fsync ends, the clients it woke have not appended yet, and the next fsync
 * starts with only the other half.  So after a flush that completed a group
 * of k >= 2 waits, the next flush first gathers: it waits until k waits are
 * pending, but no longer than one average fsync time from the wake-up, and
 * not once waits stop coming for a quarter of that (the woken clients are
 * evidently not about to commit again).  A wait is a wal_wait_durable or
 * wal_notify_durable call for a record not yet in a running flush; records
 * nobody waits for (the coordinator's END records) ride along but do not
 * count, or a lone committer whose batches also carry the previous
 * transaction's END would gather, and wait, for a second commit that is
 * not coming.  Waits that arrived during the fsync count, so a steady
 * stream of new clients is not held back.  After a batch with one wait (a
 * lone client, the common case at low load) the next flush starts at once:
 * no latency is added when there is no group.  Measured with
 * bench/wal_main.c: with 64 closed-loop appenders a plain loop makes about
 * 30 records durable per fdatasync, gathering about 55.
 *
 * Life cycle.  wal_open: lock the directory, remove leftover temporary
 * files, scan (wal_scan), repair (zero a torn tail, replace a bad end segment,
 * remove files past the end, create the end segment), start the threads.
 * Then wal_append (a primary) or wal_append_raw (a standby), never both at
 * once; wal_truncate in between, for an old primary that rejoins.
 * wal_close: the writer drains the buffer and exits, the preparer exits, files
 * and descriptors are closed, pending loop callbacks are dropped.
 */
#include "wal_int.h"
#include "clock.h"
#include "failpoint.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Initial guess of an fdatasync's duration, before the first one is timed. */
#define WAL_FSYNC_GUESS_NS 1000000ull
/* The gather window never exceeds this, whatever the disk. */
#define WAL_GATHER_CAP_NS 2000000ull
/* ...and a gap between durability waits longer than this ends it early (at
 * least). */
#define WAL_GATHER_GAP_MIN_NS 20000ull
/* Records nobody waits for are flushed by the writer thread bg_flush_ns
 * after they were appended at the latest (see struct wal), or as soon as
 * this many bytes are pending. */
#define WAL_BG_FLUSH_BYTES (1u << 20)
/* After this many bg_flush_ns periods without an append the writer
 * sleeps until the next append wakes it. */
#define WAL_IDLE_ROUNDS 8

typedef struct wal_extent {
    size_t off;   /* offset in the buffer */
    uint64_t pos; /* stream position of that byte */
} wal_extent;

/* Encoded records waiting to be written; a run of extents, each contiguous
 * in the stream (a new extent starts at every segment switch). */
typedef struct wal_buf {
    uint8_t *data;
    size_t len, cap;
    wal_extent *ext;
    size_t next, ext_cap;
    uint64_t end_pos;  /* stream position just past data[len - 1] */
    uint64_t last_lsn; /* LSN of the last record in the buffer */
    uint64_t waits;    /* durability waits for its records (group commit) */
    uint64_t records;  /* records in it (records per flush, for metrics) */
} wal_buf;

typedef struct wal_waiter {
    uint64_t lsn;
    uint64_t seq; /* ties broken by arrival */
    wal_durable_cb cb;
    void *arg;
} wal_waiter;

struct wal {
    char *dir;
    int dirfd;
    int lockfd;
    uint32_t segsize;
    uint32_t max_payload;
    wal_info info;

    /* Append state, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t writer_cv; /* the writer thread sleeps on it */
    pthread_cond_t gather_cv; /* a gathering flusher sleeps on it */
    wal_buf fill;
    uint64_t fill_since_ns; /* when the first record of fill was appended */
    uint64_t fill_base_lsn; /* fill holds the records past this LSN */
    uint64_t insert_lsn;
    uint64_t cur_segno;
    uint32_t cur_salt;
    uint64_t cur_epoch;
    bool header_pending;
    /* For a pending header (what wal_append_raw checks it against): whether
     * a switch record announced cur_salt (false only when the log holds no
     * segment header at all), and the epoch of the segment before it. */
    bool salt_announced;
    uint64_t prev_epoch;
    uint64_t epoch;
    bool force_switch;
    uint64_t rng;
    bool closing;
    bool flushing;     /* a flush is running; its state is below */
    uint64_t kick_lsn; /* the event loop waits for this LSN: the writer must
                        * flush up to it (a record flushed meanwhile by a
                        * flush already running asks for nothing more) */
    /* wal_options.bg_flush_ms, 100 ms by default: long enough that, while
     * anyone commits, records nobody waits for ride along with the next
     * waited-for flush.  A background flush that starts just before a
     * commit's record arrives makes that commit wait for two fdatasyncs in
     * a row (at 2 ms, about the period of a lone client, that happened to
     * 7% of the coordinator's one-shot transactions at 1 client). */
    uint64_t bg_flush_ns;
    bool writer_sleeping;
    bool writer_idle;       /* ...with nothing pending: wake it on append */
    bool writer_wait_flush; /* ...until the running flush ends */
    unsigned idle_rounds;
    bool gathering;
    uint64_t gather_target;
    uint64_t last_wait_ns;     /* when fill.waits last grew */
    uint64_t wake_ns;          /* when the last flush was published */
    uint64_t last_batch_waits; /* the waits it served */
    uint64_t stat_records, stat_bytes, stat_gathers;

    /* The running flush's (w->flushing). */
    wal_buf flush;
    int seg_fd;
    uint64_t seg_fd_segno;
    bool seg_dirty;
    char seg_path[PATH_MAX];

    /* Shared without the lock. */
    _Atomic uint64_t flushed_lsn;
    _Atomic uint32_t flush_seq;
    _Atomic uint32_t sync_waiters;
    _Atomic uint64_t fsync_ema_ns;
    _Atomic uint64_t loop_min_lsn;
    _Atomic int efd;
    _Atomic uint64_t stat_fsyncs, stat_batches;
    metrics_hist fsync_hist;   /* fdatasync times, µs (writer thread) */
    metrics_hist records_hist; /* records per flush (writer thread) */
    _Atomic uint64_t oldest_segno;

    /* Preparer, under prep_lock. */
    pthread_mutex_t prep_lock;
    pthread_cond_t prep_cv;
    uint64_t prep_target;
    uint64_t prep_done;
    bool prep_failed;
    bool prep_stop;
    bool prep_hold; /* wal_exclusive_begin: start no new file */
    bool prep_busy; /* a file is being created (prep_lock not held) */

    pthread_mutex_t ckpt_lock;
    pthread_t writer_thread, prep_thread;

    /* Event loop side (its thread only). */
    struct event_base *base;
    struct event *ev;
    wal_waiter *heap;
    size_t nheap, heap_cap;
    uint64_t heap_seq;
};

static void
wal_futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void
wal_futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline void
wal_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t
wal_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t
wal_new_salt(wal_t *w, uint32_t not_this)
{
    uint32_t s;
    do
        s = (uint32_t)wal_rng_next(&w->rng);
    while (s == not_this);
    return s;
}

const char *
wal_lsn_str(uint64_t lsn, char *buf, size_t len)
{
    snprintf(buf, len, "%X/%08X", (unsigned)(lsn >> 32), (unsigned)lsn);
    return buf;
}

void
wal_options_init(wal_options *opts)
{
    memset(opts, 0, sizeof(*opts));
}

const char *
wal_dir_path(const wal_t *w)
{
    return w->dir;
}

/* ---- append buffer ---------------------------------------------------- */

static uint8_t *
wal_buf_put(wal_buf *b, uint64_t pos, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64 * 1024;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (d == NULL)
            log_panic("out of memory for the write-ahead log buffer (%zu bytes)", cap);
        b->data = d;
        b->cap = cap;
    }
    if (b->next == 0 || pos != b->end_pos) {
        if (b->next == b->ext_cap) {
            size_t cap = b->ext_cap ? b->ext_cap * 2 : 8;
            wal_extent *e = realloc(b->ext, cap * sizeof(*e));
            if (e == NULL)
                log_panic("out of memory for the write-ahead log buffer");
            b->ext = e;
            b->ext_cap = cap;
        }
        b->ext[b->next].off = b->len;
        b->ext[b->next].pos = pos;
        b->next++;
    }
    uint8_t *p = b->data + b->len;
    b->len += n;
    b->end_pos = pos + n;
    return p;
}

static void
wal_buf_reset(wal_buf *b)
{
    b->len = 0;
    b->next = 0;
    b->waits = 0;
    b->records = 0;
    b->last_lsn = 0;
}

static void
wal_buf_free(wal_buf *b)
{
    free(b->data);
    free(b->ext);
    memset(b, 0, sizeof(*b));
}

/* ---- append ----------------------------------------------------------- */

/* End the current segment with a switch record; the next segment starts with
 * a pending header stamped with the current epoch.  Lock held. */
static void
wal_emit_switch(wal_t *w)
{
    uint8_t payload[WAL_SWITCH_PAYLOAD] = {0};
    uint32_t salt = wal_new_salt(w, w->cur_salt);
    uint64_t lsn = wal_switch_lsn(w->cur_segno, w->segsize);

    wal_put_u32(payload, salt);
    uint8_t *dst = wal_buf_put(&w->fill, w->insert_lsn, WAL_SWITCH_SIZE);
    wal_rec_encode(dst, w->cur_salt, WAL_TYPE_SWITCH, lsn, payload, WAL_SWITCH_PAYLOAD);
    w->cur_segno++;
    w->cur_salt = salt;
    w->salt_announced = true;
    w->prev_epoch = w->cur_epoch;
    w->cur_epoch = w->epoch;
    w->header_pending = true;
    w->insert_lsn = lsn;
    w->stat_bytes += WAL_SWITCH_SIZE;
}

static void
wal_emit_header(wal_t *w)
{
    wal_seg_header h = {
        .segment_size = w->segsize,
        .salt = w->cur_salt,
        .segno = w->cur_segno,
        .epoch = w->cur_epoch,
    };
    uint8_t *dst = wal_buf_put(&w->fill, w->cur_segno * w->segsize, WAL_SEG_HDR_SIZE);
    wal_seg_header_encode(dst, &h);
    w->header_pending = false;
    w->stat_bytes += WAL_SEG_HDR_SIZE;
}

uint64_t
wal_append(wal_t *w, uint8_t type, const void *payload, uint32_t len)
{
    if (type == WAL_TYPE_INVALID || len > w->max_payload || (len > 0 && payload == NULL)) {
        log_error("invalid write-ahead log record: type %u, length %u (at most %u)", type, len,
                  w->max_payload);
        return 0;
    }
    uint32_t size = wal_rec_size(len);
    uint64_t now = clock_mono_ns();

    pthread_mutex_lock(&w->lock);
    if (w->closing)
        log_panic("wal_append called on a write-ahead log being closed");
    if (w->fill.len == 0)
        w->fill_since_ns = now;
    uint64_t off = w->insert_lsn % w->segsize;
    if (w->force_switch || off + size + WAL_SWITCH_SIZE > w->segsize) {
        if (!w->header_pending)
            wal_emit_switch(w);
        w->force_switch = false;
    }
    if (w->header_pending)
        wal_emit_header(w);
    uint64_t lsn = w->insert_lsn + size;
    uint8_t *dst = wal_buf_put(&w->fill, w->insert_lsn, size);
    wal_rec_encode(dst, w->cur_salt, type, lsn, payload, len);
    w->insert_lsn = lsn;
    w->fill.last_lsn = lsn;
    w->fill.records++;
    w->stat_records++;
    w->stat_bytes += size;
    bool wake_writer = w->writer_sleeping && (w->writer_idle || w->fill.len >= WAL_BG_FLUSH_BYTES);
    pthread_mutex_unlock(&w->lock);
    /* Signalled after the unlock (see wal_notify_durable). */
    if (wake_writer)
        pthread_cond_signal(&w->writer_cv);
    return lsn;
}

/* ---- durability: waiting ------------------------------------------------ */

uint64_t
wal_flushed_lsn(wal_t *w)
{
    return atomic_load(&w->flushed_lsn);
}

uint64_t
wal_insert_lsn(wal_t *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t lsn = w->insert_lsn;
    pthread_mutex_unlock(&w->lock);
    return lsn;
}

size_t
wal_pending_bytes(wal_t *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->fill.len;
    pthread_mutex_unlock(&w->lock);
    return n;
}

static void wal_flush_locked(wal_t *w);

/* Count a durability wait for the record ending at lsn, for group commit,
 * if that record is in fill (not in a running flush, not durable).  Lock
 * held.  True if a gathering flusher now has what it waits for: the caller
 * signals gather_cv once it has unlocked. */
static bool
wal_count_wait_locked(wal_t *w, uint64_t lsn)
{
    if (lsn <= w->fill_base_lsn)
        return false;
    w->fill.waits++;
    w->last_wait_ns = clock_mono_ns();
    return w->gathering && w->fill.waits >= w->gather_target;
}

void
wal_wait_durable(wal_t *w, uint64_t lsn)
{
    bool counted = false;
    for (;;) {
        if (atomic_load(&w->flushed_lsn) >= lsn)
            return;
        pthread_mutex_lock(&w->lock);
        bool wake_gatherer = false;
        if (!counted) {
            counted = true;
            wake_gatherer = wal_count_wait_locked(w, lsn);
        }
        if (atomic_load(&w->flushed_lsn) < lsn && !w->flushing && w->fill.len > 0) {
            /* Nobody is flushing and our record is in fill: lead. */
            wal_flush_locked(w);
            pthread_mutex_unlock(&w->lock);
            continue;
        }
        /* A flush is running (ours may be in it): wait until it ends, then
         * look again (it bumps flush_seq under the lock as it ends). */
        uint32_t seq = atomic_load(&w->flush_seq);
        atomic_fetch_add(&w->sync_waiters, 1);
        pthread_mutex_unlock(&w->lock);
        if (wake_gatherer)
            pthread_cond_signal(&w->gather_cv);
        if (atomic_load(&w->flushed_lsn) < lsn)
            wal_futex_wait(&w->flush_seq, seq);
        atomic_fetch_sub(&w->sync_waiters, 1);
    }
}

/* ---- durability: event loop callbacks ----------------------------------- */

static bool
wal_waiter_before(const wal_waiter *a, const wal_waiter *b)
{
    return a->lsn < b->lsn || (a->lsn == b->lsn && a->seq < b->seq);
}

static void
wal_heap_push(wal_t *w, wal_waiter x)
{
    if (w->nheap == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        wal_waiter *h = realloc(w->heap, cap * sizeof(*h));
        if (h == NULL)
            log_panic("out of memory for write-ahead log waiters");
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!wal_waiter_before(&x, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = x;
}

static wal_waiter
wal_heap_pop(wal_t *w)
{
    wal_waiter top = w->heap[0];
    wal_waiter last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && wal_waiter_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!wal_waiter_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

/* On the loop: run the durability callbacks of every waiter the flushes so
 * far cover, in LSN order. */
static void
wal_run_durable(wal_t *w)
{
    uint64_t flushed = atomic_load(&w->flushed_lsn);
    while (w->nheap > 0 && w->heap[0].lsn <= flushed) {
        wal_waiter x = wal_heap_pop(w);
        x.cb(x.arg, x.lsn);
    }
}

static void
wal_loop_cb(evutil_socket_t fd, short what, void *arg)
{
    wal_t *w = arg;
    uint64_t v;
    (void)what;
    ssize_t r = read(fd, &v, sizeof(v)); /* EAGAIN when activated by hand */
    (void)r;
    for (;;) {
        wal_run_durable(w);
        uint64_t min = w->nheap > 0 ? w->heap[0].lsn : UINT64_MAX;
        atomic_store(&w->loop_min_lsn, min);
        if (w->nheap == 0 || atomic_load(&w->flushed_lsn) < min)
            break;
    }
}

bool
wal_attach_event_base(wal_t *w, struct event_base *base, char *err, size_t errlen)
{
    if (w->base != NULL) {
        snprintf(err, errlen, "write-ahead log is already attached to an event base");
        return false;
    }
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "could not create eventfd: %m");
        return false;
    }
    w->ev = event_new(base, fd, EV_READ | EV_PERSIST, wal_loop_cb, w);
    if (w->ev == NULL || event_add(w->ev, NULL) != 0) {
        snprintf(err, errlen, "could not register the write-ahead log event");
        if (w->ev)
            event_free(w->ev);
        w->ev = NULL;
        close(fd);
        return false;
    }
    w->base = base;
    atomic_store(&w->efd, fd);
    return true;
}

void
wal_notify_durable(wal_t *w, uint64_t lsn, wal_durable_cb cb, void *arg)
{
    if (w->ev == NULL)
        log_panic("wal_notify_durable called before wal_attach_event_base");
    wal_waiter x = {.lsn = lsn, .seq = w->heap_seq++, .cb = cb, .arg = arg};
    wal_heap_push(w, x);
    atomic_store(&w->loop_min_lsn, w->heap[0].lsn);
    /* Pairs with the flusher: it stores flushed_lsn, then reads loop_min_lsn. */
    uint64_t flushed = atomic_load(&w->flushed_lsn);
    if (flushed >= w->heap[0].lsn)
        event_active(w->ev, EV_READ, 0);
    /* Only this record tells whether a flush is needed: earlier waiters may
     * be durable already (their callbacks not yet run) while it is not. */
    if (flushed >= lsn)
        return;
    /* The loop cannot flush: the writer thread must, now. */
    bool wake = false, wake_gatherer = false;
    pthread_mutex_lock(&w->lock);
    if (atomic_load(&w->flushed_lsn) < lsn) {
        if (lsn > w->kick_lsn)
            w->kick_lsn = lsn;
        wake = w->writer_sleeping;
        wake_gatherer = wal_count_wait_locked(w, lsn);
    }
    pthread_mutex_unlock(&w->lock);
    /* Signalled after the unlock: a writer woken while we still held the
     * lock would block on it at once, and need a second wake-up (two more
     * futex calls and a context switch per flush).  Nothing is lost: the
     * writer reads kick_lsn under the lock before it waits again, and a
     * signal that finds it awake is a spurious wake-up it tolerates. */
    if (wake)
        pthread_cond_signal(&w->writer_cv);
    if (wake_gatherer)
        pthread_cond_signal(&w->gather_cv);
}

/* ---- flushing ------------------------------------------------------------ */

static void
wal_fdatasync(wal_t *w)
{
    uint64_t t0 = clock_mono_ns();
    fp_action fp = FAILPOINT("wal-fsync");
    if (fp == FP_ERROR) {
        errno = EIO;
        log_panic("could not fdatasync file \"%s\": %m", w->seg_path);
    }
    if (fdatasync(w->seg_fd) != 0)
        log_panic("could not fdatasync file \"%s\": %m", w->seg_path);
    w->seg_dirty = false;
    uint64_t d = clock_mono_ns() - t0;
    metrics_hist_observe(&w->fsync_hist, d / 1000);
    uint64_t ema = atomic_load_explicit(&w->fsync_ema_ns, memory_order_relaxed);
    atomic_store_explicit(&w->fsync_ema_ns, (ema * 7 + d) / 8, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stat_fsyncs, 1, memory_order_relaxed);
}

static void
wal_pwrite_all(wal_t *w, const uint8_t *data, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pwrite(w->seg_fd, data, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ENOSPC;
            log_panic("could not write to file \"%s\" at offset %" PRIu64 ": %m", w->seg_path, off);
        }
        data += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    w->seg_dirty = true;
}

/* Make sure segment segno's file exists before a flush writes into it:
 * wait for the preparer or, if preparing failed, create it here (a flush is
 * allowed to block; a failure now PANICs). */
static void
wal_wait_prepared(wal_t *w, uint64_t segno)
{
    pthread_mutex_lock(&w->prep_lock);
    if (w->prep_target < segno)
        w->prep_target = segno;
    pthread_cond_broadcast(&w->prep_cv);
    while (w->prep_done < segno && !w->prep_failed)
        pthread_cond_wait(&w->prep_cv, &w->prep_lock);
    bool create = w->prep_done < segno;
    uint64_t from = w->prep_done + 1;
    pthread_mutex_unlock(&w->prep_lock);
    if (!create)
        return;

    char err[PATH_MAX + 128];
    for (uint64_t s = from; s <= segno; s++) {
        if (!wal_seg_create(w->dirfd, w->dir, s, w->segsize, err, sizeof(err)))
            log_panic("could not create write-ahead log segment: %s", err);
    }
    pthread_mutex_lock(&w->prep_lock);
    w->prep_done = segno;
    w->prep_failed = false;
    pthread_cond_broadcast(&w->prep_cv);
    pthread_mutex_unlock(&w->prep_lock);
}

static void
wal_flush_use_segment(wal_t *w, uint64_t segno)
{
    if (w->seg_fd >= 0 && w->seg_fd_segno == segno)
        return;
    if (w->seg_fd >= 0) {
        if (w->seg_dirty)
            wal_fdatasync(w);
        close(w->seg_fd);
        w->seg_fd = -1;
    }
    wal_wait_prepared(w, segno);
    char name[WAL_SEG_NAME_LEN];
    wal_seg_name(name, segno);
    snprintf(w->seg_path, sizeof(w->seg_path), "%s/%s", w->dir, name);
    w->seg_fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC);
    if (w->seg_fd < 0)
        log_panic("could not open file \"%s\": %m", w->seg_path);
    w->seg_fd_segno = segno;
    w->seg_dirty = false;
    /* Ask for the one after it. */
    pthread_mutex_lock(&w->prep_lock);
    if (w->prep_target < segno + 1) {
        w->prep_target = segno + 1;
        pthread_cond_broadcast(&w->prep_cv);
    }
    pthread_mutex_unlock(&w->prep_lock);
}

static void
wal_write_batch(wal_t *w, const wal_buf *b)
{
    /* The failpoint counts flushes (batches), not pwrite calls: a batch
     * that crosses a segment switch takes two. */
    fp_action fp = FAILPOINT("wal-write");
    size_t budget = fp == FP_TORN ? b->len / 2 : b->len; /* torn: the first half */
    if (fp == FP_ERROR) {
        errno = ENOSPC;
        log_panic("could not write to file \"%s\": %m", w->seg_path);
    }
    for (size_t i = 0; i < b->next; i++) {
        size_t boff = b->ext[i].off;
        size_t bend = i + 1 < b->next ? b->ext[i + 1].off : b->len;
        uint64_t pos = b->ext[i].pos;
        while (boff < bend) {
            uint64_t segno = pos / w->segsize;
            uint32_t soff = (uint32_t)(pos % w->segsize);
            size_t n = bend - boff;
            if (n > w->segsize - soff)
                n = w->segsize - soff;
            if (n > budget)
                n = budget;
            if (n == 0)
                failpoint_kill("wal-write"); /* torn: the rest never reaches the disk */
            budget -= n;
            wal_flush_use_segment(w, segno);
            wal_pwrite_all(w, b->data + boff, n, soff);
            boff += n;
            pos += n;
        }
    }
    if (w->seg_dirty)
        wal_fdatasync(w);
    atomic_fetch_add_explicit(&w->stat_batches, 1, memory_order_relaxed);
}

/* Wake whoever waits for what the last flush made durable. */
static void
wal_wake_waiters(wal_t *w, uint64_t lsn)
{
    if (atomic_load(&w->sync_waiters) > 0)
        wal_futex_wake_all(&w->flush_seq);
    int efd = atomic_load(&w->efd);
    if (efd >= 0 && atomic_load(&w->loop_min_lsn) <= lsn) {
        uint64_t one = 1;
        ssize_t r = write(efd, &one, sizeof(one));
        (void)r; /* EAGAIN only if the counter is saturated: still readable */
    }
}

/* Wait for the committers that the last flush woke to commit again, until
 * as many waits are pending as the last batch served (see the essay).  Lock
 * held, flushing set, fill not empty. */
static void
wal_gather(wal_t *w)
{
    uint64_t target = w->last_batch_waits;
    if (target < 2 || w->closing || w->fill.waits >= target)
        return;
    uint64_t window = atomic_load_explicit(&w->fsync_ema_ns, memory_order_relaxed);
    if (window > WAL_GATHER_CAP_NS)
        window = WAL_GATHER_CAP_NS;
    uint64_t gap = window / 4;
    if (gap < WAL_GATHER_GAP_MIN_NS)
        gap = WAL_GATHER_GAP_MIN_NS;
    uint64_t end = w->wake_ns + window;

    w->gathering = true;
    w->gather_target = target;
    bool waited = false;
    while (w->fill.waits < target && !w->closing) {
        uint64_t now = clock_mono_ns();
        uint64_t last = w->last_wait_ns > w->wake_ns ? w->last_wait_ns : w->wake_ns;
        if (now >= end || now >= last + gap)
            break;
        uint64_t until = last + gap < end ? last + gap : end;
        struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
        if (!waited) {
            waited = true;
            w->stat_gathers++;
        }
        pthread_cond_timedwait(&w->gather_cv, &w->lock, &ts);
    }
    w->gathering = false;
}

/* One flush: gather, take fill, write it, fdatasync, publish, wake.  Called
 * with the lock held, no flush running and fill not empty; returns with the
 * lock held. */
static void
wal_flush_locked(wal_t *w)
{
    w->flushing = true;
    wal_gather(w);
    wal_buf tmp = w->flush;
    w->flush = w->fill;
    w->fill = tmp;
    wal_buf_reset(&w->fill);
    w->fill_base_lsn = w->insert_lsn;
    pthread_mutex_unlock(&w->lock);

    wal_write_batch(w, &w->flush);
    if (w->flush.records)
        metrics_hist_observe(&w->records_hist, w->flush.records);
    uint64_t lsn = w->flush.last_lsn;
    uint64_t waits = w->flush.waits;
    wal_buf_reset(&w->flush);
    /* Published before the flag is cleared, so flushed_lsn only grows. */
    atomic_store(&w->flushed_lsn, lsn);

    pthread_mutex_lock(&w->lock);
    w->wake_ns = clock_mono_ns();
    w->last_batch_waits = waits;
    /* A waiter that saw this flush running read flush_seq under the lock
     * before this bump: its futex wait cannot miss the end of the flush. */
    atomic_fetch_add(&w->flush_seq, 1);
    w->flushing = false;
    if (w->writer_wait_flush)
        pthread_cond_signal(&w->writer_cv);
    pthread_mutex_unlock(&w->lock);
    wal_wake_waiters(w, lsn);
    pthread_mutex_lock(&w->lock);
}

/* Is a flush due from the writer thread (once no other flush runs)?  Lock
 * held. */
static bool
wal_writer_due(wal_t *w, uint64_t now)
{
    return w->fill.len > 0 &&
           (w->kick_lsn > atomic_load(&w->flushed_lsn) || w->closing ||
            w->fill.len >= WAL_BG_FLUSH_BYTES || now >= w->fill_since_ns + w->bg_flush_ns);
}

static void *
wal_writer_main(void *arg)
{
    wal_t *w = arg;

    /* Timed waits of the gather window are in microseconds. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    pthread_mutex_lock(&w->lock);
    for (;;) {
        bool due = wal_writer_due(w, clock_mono_ns());
        if (due && !w->flushing) {
            wal_flush_locked(w);
            continue;
        }
        if (w->closing && w->fill.len == 0 && !w->flushing)
            break;
        /* Sleep until: the running flush ends (if ours is due), the oldest
         * pending record is due, or — nothing pending — the next append. */
        w->writer_sleeping = true;
        if (due) {
            w->writer_wait_flush = true;
            pthread_cond_wait(&w->writer_cv, &w->lock);
            w->writer_wait_flush = false;
        } else if (w->fill.len > 0) {
            uint64_t until = w->fill_since_ns + w->bg_flush_ns;
            struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
            pthread_cond_timedwait(&w->writer_cv, &w->lock, &ts);
        } else if (w->idle_rounds < WAL_IDLE_ROUNDS) {
            /* Busy lately: poll, rather than be signalled by every append
             * (which, with a leader flushing, would wake us for nothing). */
            uint64_t seen = w->stat_records;
            uint64_t until = clock_mono_ns() + w->bg_flush_ns;
            struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
            pthread_cond_timedwait(&w->writer_cv, &w->lock, &ts);
            w->idle_rounds = w->stat_records == seen ? w->idle_rounds + 1 : 0;
        } else {
            w->writer_idle = true;
            pthread_cond_wait(&w->writer_cv, &w->lock);
            w->writer_idle = false;
            w->idle_rounds = 0;
        }
        w->writer_sleeping = false;
    }
    pthread_mutex_unlock(&w->lock);
    if (w->seg_fd >= 0) {
        if (w->seg_dirty)
            wal_fdatasync(w);
        close(w->seg_fd);
        w->seg_fd = -1;
    }
    return NULL;
}

/* ---- preparer thread ---------------------------------------------------- */

static void *
wal_prep_main(void *arg)
{
    wal_t *w = arg;
    char err[PATH_MAX + 128];

    pthread_mutex_lock(&w->prep_lock);
    while (!w->prep_stop) {
        if (w->prep_done < w->prep_target && !w->prep_failed && !w->prep_hold) {
            uint64_t next = w->prep_done + 1;
            w->prep_busy = true;
            pthread_mutex_unlock(&w->prep_lock);
            bool ok = wal_seg_create(w->dirfd, w->dir, next, w->segsize, err, sizeof(err));
            pthread_mutex_lock(&w->prep_lock);
            w->prep_busy = false;
            if (ok) {
                if (w->prep_done < next)
                    w->prep_done = next;
            } else {
                w->prep_failed = true;
                log_warn("could not preallocate write-ahead log segment: %s", err);
            }
            pthread_cond_broadcast(&w->prep_cv);
            continue;
        }
        pthread_cond_wait(&w->prep_cv, &w->prep_lock);
    }
    pthread_mutex_unlock(&w->prep_lock);
    return NULL;
}

/* ---- open --------------------------------------------------------------- */

static bool
wal_mkdir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0) {
        /* Make the new directory entry durable too. */
        char *copy = strdup(dir);
        if (copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        char *slash = strrchr(copy, '/');
        const char *parent = slash == NULL ? "." : (slash == copy ? "/" : (*slash = '\0', copy));
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0) {
            snprintf(err, errlen, "could not open directory \"%s\": %m", parent);
            free(copy);
            return false;
        }
        wal_dir_fsync(pfd, parent);
        close(pfd);
        free(copy);
        return true;
    }
    if (errno == EEXIST)
        return true;
    snprintf(err, errlen, "could not create directory \"%s\": %m", dir);
    return false;
}

/* Bring the end segment into the state a flush expects: a complete,
 * zero-filled file whose bytes from the end position on are zero. */
static bool
wal_repair_end(wal_t *w, const wal_scan_result *res, char *err, size_t errlen)
{
    char name[WAL_SEG_NAME_LEN], lsnbuf[32];
    wal_seg_name(name, res->end_segno);

    if (res->torn_bytes > 0) {
        log_warn("write-ahead log has a torn tail: %" PRIu64
                 " bytes at offset %u of segment file \"%s/%s\" (LSN %s) were discarded (%s)",
                 res->torn_bytes, res->end_offset, w->dir, name,
                 wal_lsn_str(res->end_lsn, lsnbuf, sizeof(lsnbuf)), res->end_reason);
        w->info.torn_lsn = res->end_lsn;
        w->info.torn_bytes = res->torn_bytes;
    }
    if (!res->end_file_exists ||
        (!res->end_header_valid && (res->torn_bytes > 0 || res->end_file_size != w->segsize))) {
        /* Missing, or a bad header: replace it with a fresh file (the rename
         * in wal_seg_create replaces an existing one atomically). */
        return wal_seg_create(w->dirfd, w->dir, res->end_segno, w->segsize, err, errlen);
    }
    if (res->torn_bytes == 0 && res->end_file_size >= w->segsize)
        return true;

    /* Zero from the end position to the end of the segment, and extend a
     * short file to its full size. */
    return wal_seg_zero(w->dirfd, w->dir, res->end_segno, res->end_offset, w->segsize, err, errlen);
}

static bool
wal_remove_beyond(wal_t *w, const wal_scan_result *res, char *err, size_t errlen)
{
    char name[WAL_SEG_NAME_LEN];
    for (size_t i = 0; i < res->nbeyond; i++) {
        wal_seg_name(name, res->beyond[i]);
        if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "could not remove file \"%s/%s\": %m", w->dir, name);
            return false;
        }
        log_log("removed write-ahead log segment file \"%s/%s\" past the end of the log", w->dir,
                name);
        w->info.removed_files++;
    }
    if (res->nbeyond > 0)
        wal_dir_fsync(w->dirfd, w->dir);
    return true;
}

static bool
wal_lock_dir(wal_t *w, char *err, size_t errlen)
{
    w->lockfd = openat(w->dirfd, WAL_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->lockfd < 0) {
        snprintf(err, errlen, "could not open lock file \"%s/%s\": %m", w->dir, WAL_LOCK_FILE);
        return false;
    }
    if (flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errlen, "write-ahead log directory \"%s\" is in use by another process",
                     w->dir);
        else
            snprintf(err, errlen, "could not lock \"%s/%s\": %m", w->dir, WAL_LOCK_FILE);
        return false;
    }
    return true;
}

static bool
wal_init_sync(wal_t *w)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool ok =
        pthread_mutex_init(&w->lock, NULL) == 0 && pthread_cond_init(&w->writer_cv, &ca) == 0 &&
        pthread_cond_init(&w->gather_cv, &ca) == 0 &&
        pthread_mutex_init(&w->prep_lock, NULL) == 0 && pthread_cond_init(&w->prep_cv, NULL) == 0 &&
        pthread_mutex_init(&w->ckpt_lock, NULL) == 0;
    pthread_condattr_destroy(&ca);
    return ok;
}

static void
wal_free(wal_t *w)
{
    if (w->dirfd >= 0)
        close(w->dirfd);
    if (w->lockfd >= 0)
        close(w->lockfd);
    wal_buf_free(&w->fill);
    wal_buf_free(&w->flush);
    free(w->heap);
    free(w->dir);
    free(w);
}

/* Set the append state from what the scan found. */
static void
wal_init_state(wal_t *w, const wal_scan_result *res, uint64_t epoch)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = clock_mono_ns() ^ ((uint64_t)getpid() << 32);
    w->rng = seed ^ (uint64_t)(uintptr_t)w;

    w->epoch = epoch > res->highest_epoch ? epoch : res->highest_epoch;
    w->insert_lsn = res->end_lsn;
    w->fill_base_lsn = res->end_lsn;
    w->cur_segno = res->end_segno;
    w->header_pending = !res->end_header_valid;
    w->cur_salt = res->end_salt_known ? res->end_salt : wal_new_salt(w, 0);
    w->salt_announced = res->end_salt_known;
    w->prev_epoch = res->end_epoch;
    if (w->header_pending) {
        w->cur_epoch = w->epoch;
    } else {
        w->cur_epoch = res->end_epoch;
        w->force_switch = w->epoch > w->cur_epoch;
    }
    atomic_store(&w->flushed_lsn, res->end_lsn);
    atomic_store(&w->oldest_segno, res->have_segments ? res->first_segno : res->end_segno);
    atomic_store(&w->fsync_ema_ns, WAL_FSYNC_GUESS_NS);
    atomic_store(&w->loop_min_lsn, UINT64_MAX);
    atomic_store(&w->efd, -1);
    w->prep_done = res->end_segno + (res->next_file_unused ? 1 : 0);
    w->prep_target = res->end_segno + 1;
    w->seg_fd = -1;

    w->info.oldest_lsn = atomic_load(&w->oldest_segno) * w->segsize + WAL_SEG_HDR_SIZE;
    w->info.end_lsn = res->end_lsn;
    w->info.highest_epoch = res->highest_epoch;
    w->info.records = res->records;
    w->info.segments = res->end_segno - atomic_load(&w->oldest_segno) + 1;
}

wal_t *
wal_open(const char *dir, const wal_options *opts, char *err, size_t errlen)
{
    wal_options defaults;
    wal_scan_result res;
    bool threads = false;

    memset(&res, 0, sizeof(res));
    if (opts == NULL) {
        wal_options_init(&defaults);
        opts = &defaults;
    }
    uint32_t segsize = opts->segment_size ? opts->segment_size : WAL_DEFAULT_SEGMENT_SIZE;
    if (!wal_segment_size_valid(segsize)) {
        snprintf(err, errlen,
                 "invalid write-ahead log segment size %u: it must be a multiple of 4096 "
                 "between %u and %u",
                 segsize, WAL_MIN_SEGMENT_SIZE, WAL_MAX_SEGMENT_SIZE);
        return NULL;
    }
    wal_t *w = calloc(1, sizeof(*w));
    static const metrics_hist fsync0 = METRICS_HIST_SECONDS, records0 = METRICS_HIST_COUNT;
    if (w == NULL || (w->dir = strdup(dir)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(w);
        return NULL;
    }
    w->dirfd = w->lockfd = -1;
    w->fsync_hist = fsync0;
    w->records_hist = records0;
    w->bg_flush_ns =
        (uint64_t)(opts->bg_flush_ms ? opts->bg_flush_ms : WAL_DEFAULT_BG_FLUSH_MS) * 1000000ull;
    if (!wal_init_sync(w)) {
        snprintf(err, errlen, "could not initialize write-ahead log locks");
        wal_free(w);
        return NULL;
    }
    if (!wal_mkdir(dir, err, errlen))
        goto fail;
    w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0) {
        snprintf(err, errlen, "could not open directory \"%s\": %m", dir);
        goto fail;
    }
    if (!wal_lock_dir(w, err, errlen))
        goto fail;
    int ntmp = wal_remove_tmp_files(w->dirfd, err, errlen);
    if (ntmp < 0)
        goto fail;
    if (ntmp > 0)
        wal_dir_fsync(w->dirfd, dir);

    char serr[768];
    if (!wal_scan(w->dirfd, segsize, NULL, &res, serr, sizeof(serr))) {
        snprintf(err, errlen, "%s (in \"%s\")", serr, dir);
        goto fail;
    }
    w->segsize = res.segment_size;
    w->max_payload = WAL_SEG_PAYLOAD_LIMIT(w->segsize);
    if (w->max_payload > WAL_MAX_PAYLOAD)
        w->max_payload = WAL_MAX_PAYLOAD;
    if (!wal_remove_beyond(w, &res, err, errlen) || !wal_repair_end(w, &res, err, errlen))
        goto fail;
    wal_init_state(w, &res, opts->epoch);
    wal_scan_result_free(&res);

    if (pthread_create(&w->writer_thread, NULL, wal_writer_main, w) != 0) {
        snprintf(err, errlen, "could not start the write-ahead log writer thread");
        goto fail;
    }
    threads = true;
    if (pthread_create(&w->prep_thread, NULL, wal_prep_main, w) != 0) {
        snprintf(err, errlen, "could not start the write-ahead log preparer thread");
        goto fail;
    }
    return w;

fail:
    wal_scan_result_free(&res);
    if (threads) {
        pthread_mutex_lock(&w->lock);
        w->closing = true;
        pthread_cond_signal(&w->writer_cv);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->writer_thread, NULL);
    }
    wal_free(w);
    return NULL;
}

/* ---- close, accessors --------------------------------------------------- */

void
wal_close(wal_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->closing = true;
    pthread_cond_signal(&w->writer_cv);
    pthread_cond_signal(&w->gather_cv);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->writer_thread, NULL);

    pthread_mutex_lock(&w->prep_lock);
    w->prep_stop = true;
    pthread_cond_broadcast(&w->prep_cv);
    pthread_mutex_unlock(&w->prep_lock);
    pthread_join(w->prep_thread, NULL);

    if (w->ev != NULL) {
        /* the last notifications: everything appended is durable now */
        wal_run_durable(w);
        int efd = atomic_load(&w->efd);
        event_free(w->ev);
        close(efd);
    }
    wal_free(w);
}

void
wal_get_info(const wal_t *w, wal_info *out)
{
    *out = w->info;
}

void
wal_get_stats(wal_t *w, wal_stats *out)
{
    pthread_mutex_lock(&w->lock);
    out->records = w->stat_records;
    out->bytes = w->stat_bytes;
    out->gathers = w->stat_gathers;
    pthread_mutex_unlock(&w->lock);
    out->fsyncs = atomic_load(&w->stat_fsyncs);
    out->batches = atomic_load(&w->stat_batches);
}

void
wal_get_hists(wal_t *w, const metrics_hist **fsync, const metrics_hist **records)
{
    *fsync = &w->fsync_hist;
    *records = &w->records_hist;
}

uint32_t
wal_max_payload(const wal_t *w)
{
    return w->max_payload;
}

uint32_t
wal_segment_size(const wal_t *w)
{
    return w->segsize;
}

uint64_t
wal_epoch(wal_t *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t e = w->epoch;
    pthread_mutex_unlock(&w->lock);
    return e;
}

bool
wal_set_epoch(wal_t *w, uint64_t epoch)
{
    pthread_mutex_lock(&w->lock);
    if (epoch < w->epoch) {
        pthread_mutex_unlock(&w->lock);
        return false;
    }
    if (epoch > w->epoch) {
        w->epoch = epoch;
        if (w->header_pending)
            w->cur_epoch = epoch;
        else
            w->force_switch = true;
    }
    pthread_mutex_unlock(&w->lock);
    return true;
}

uint64_t
wal_oldest_lsn(wal_t *w)
{
    return atomic_load(&w->oldest_segno) * w->segsize + WAL_SEG_HDR_SIZE;
}

/* ---- checkpoint --------------------------------------------------------- */

bool
wal_checkpoint(wal_t *w, uint64_t keep_lsn, char *err, size_t errlen)
{
    char a[32], b[32], name[WAL_SEG_NAME_LEN];
    uint64_t flushed = atomic_load(&w->flushed_lsn);
    if (keep_lsn > flushed) {
        snprintf(err, errlen, "checkpoint LSN %s is past the durable end of the log %s",
                 wal_lsn_str(keep_lsn, a, sizeof(a)), wal_lsn_str(flushed, b, sizeof(b)));
        return false;
    }
    pthread_mutex_lock(&w->ckpt_lock);
    uint64_t first = atomic_load(&w->oldest_segno);
    uint64_t upto = keep_lsn / w->segsize; /* segments < upto lie entirely below */
    bool ok = true;
    if (upto > first) {
        /* Oldest first, so that a crash leaves a contiguous run of segments. */
        for (uint64_t s = first; s < upto; s++) {
            wal_seg_name(name, s);
            if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) {
                snprintf(err, errlen, "could not remove file \"%s/%s\": %m", w->dir, name);
                ok = false;
                break;
            }
            atomic_store(&w->oldest_segno, s + 1);
            if (s + 1 < upto && FAILPOINT("wal-checkpoint-mid-remove") == FP_ERROR) {
                snprintf(err, errlen, "failpoint wal-checkpoint-mid-remove");
                ok = false;
                break;
            }
        }
        wal_dir_fsync(w->dirfd, w->dir);
    }
    pthread_mutex_unlock(&w->ckpt_lock);
    return ok;
}

/* ---- streaming: the append state for wal_stream.c ----------------------- */

int
wal_dir_fd(const wal_t *w)
{
    return w->dirfd;
}

void
wal_seed_salts(wal_t *w, uint64_t seed)
{
    pthread_mutex_lock(&w->lock);
    w->rng = seed;
    if (w->header_pending && !w->salt_announced)
        w->cur_salt = wal_new_salt(w, 0);
    pthread_mutex_unlock(&w->lock);
}

void
wal_stream_get(wal_t *w, wal_stream_state *st)
{
    memset(st, 0, sizeof(*st));
    st->segsize = w->segsize;
    pthread_mutex_lock(&w->lock);
    st->insert_lsn = w->insert_lsn;
    st->segno = w->cur_segno;
    st->header_pending = w->header_pending;
    st->salt_announced = w->salt_announced;
    st->salt = w->cur_salt;
    st->epoch = w->cur_epoch;
    st->prev_epoch = w->prev_epoch;
    pthread_mutex_unlock(&w->lock);
    st->oldest_lsn = wal_oldest_lsn(w);
}

/* Set the append state to st, deriving the rest as wal_init_state does from
 * a scan that ends there.  Lock held. */
static void
wal_stream_set_locked(wal_t *w, const wal_stream_state *st)
{
    uint64_t seen = st->header_pending ? st->prev_epoch : st->epoch;
    if (seen > w->epoch)
        w->epoch = seen;
    w->insert_lsn = st->insert_lsn;
    w->cur_segno = st->segno;
    w->header_pending = st->header_pending;
    w->salt_announced = st->salt_announced;
    w->prev_epoch = st->prev_epoch;
    if (st->header_pending && !st->salt_announced)
        w->cur_salt = wal_new_salt(w, 0);
    else
        w->cur_salt = st->salt;
    w->cur_epoch = st->header_pending ? w->epoch : st->epoch;
    w->force_switch = !st->header_pending && w->epoch > w->cur_epoch;
}

bool
wal_stream_take(wal_t *w, const wal_stream_state *was, const wal_stream_state *now, uint64_t pos,
                const void *bytes, size_t len, uint64_t records)
{
    uint64_t t = clock_mono_ns();
    pthread_mutex_lock(&w->lock);
    if (w->closing)
        log_panic("wal_append_raw called on a write-ahead log being closed");
    if (w->insert_lsn != was->insert_lsn || w->cur_segno != was->segno ||
        w->header_pending != was->header_pending || w->cur_salt != was->salt) {
        pthread_mutex_unlock(&w->lock);
        return false;
    }
    if (w->fill.len == 0)
        w->fill_since_ns = t;
    memcpy(wal_buf_put(&w->fill, pos, len), bytes, len);
    wal_stream_set_locked(w, now);
    w->fill.last_lsn = now->insert_lsn;
    w->fill.records += records;
    w->stat_records += records;
    w->stat_bytes += len;
    bool wake_writer = w->writer_sleeping && (w->writer_idle || w->fill.len >= WAL_BG_FLUSH_BYTES);
    pthread_mutex_unlock(&w->lock);
    if (wake_writer)
        pthread_cond_signal(&w->writer_cv);
    return true;
}

bool
wal_exclusive_begin(wal_t *w, char *err, size_t errlen)
{
    pthread_mutex_lock(&w->ckpt_lock);
    pthread_mutex_lock(&w->lock);
    /* Wait for a running flush as wal_wait_durable does, then be the one
     * running: the flush state (seg_fd) is ours, and no flush starts. */
    while (w->flushing) {
        uint32_t seq = atomic_load(&w->flush_seq);
        atomic_fetch_add(&w->sync_waiters, 1);
        pthread_mutex_unlock(&w->lock);
        wal_futex_wait(&w->flush_seq, seq);
        atomic_fetch_sub(&w->sync_waiters, 1);
        pthread_mutex_lock(&w->lock);
    }
    if (w->fill.len > 0) {
        pthread_mutex_unlock(&w->lock);
        pthread_mutex_unlock(&w->ckpt_lock);
        snprintf(err, errlen, "records appended to the write-ahead log are not written yet");
        return false;
    }
    w->flushing = true;
    pthread_mutex_unlock(&w->lock);
    /* Every flush ends with its fdatasync: nothing is dirty. */
    if (w->seg_fd >= 0) {
        close(w->seg_fd);
        w->seg_fd = -1;
    }
    pthread_mutex_lock(&w->prep_lock);
    w->prep_hold = true;
    while (w->prep_busy)
        pthread_cond_wait(&w->prep_cv, &w->prep_lock);
    pthread_mutex_unlock(&w->prep_lock);
    return true;
}

void
wal_exclusive_end(wal_t *w, const wal_stream_state *st, uint64_t last_file)
{
    pthread_mutex_lock(&w->lock);
    if (st != NULL) {
        wal_stream_set_locked(w, st);
        w->fill_base_lsn = st->insert_lsn;
        if (w->kick_lsn > st->insert_lsn)
            w->kick_lsn = st->insert_lsn;
        atomic_store(&w->oldest_segno, st->oldest_lsn / w->segsize);
        atomic_store(&w->flushed_lsn, st->insert_lsn);
    }
    atomic_fetch_add(&w->flush_seq, 1);
    w->flushing = false;
    if (w->writer_wait_flush)
        pthread_cond_signal(&w->writer_cv);
    pthread_mutex_unlock(&w->lock);
    if (atomic_load(&w->sync_waiters) > 0)
        wal_futex_wake_all(&w->flush_seq);

    pthread_mutex_lock(&w->prep_lock);
    w->prep_hold = false;
    if (st != NULL) {
        /* Files up to last_file exist; the preparer makes the next one. */
        w->prep_done = last_file;
        w->prep_target = last_file + 1;
        w->prep_failed = false;
    }
    pthread_cond_broadcast(&w->prep_cv);
    pthread_mutex_unlock(&w->prep_lock);
    pthread_mutex_unlock(&w->ckpt_lock);
}
