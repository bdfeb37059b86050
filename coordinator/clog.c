/*
 * clog.c — the coordinator's commit log: what it writes to the WAL (wal/),
 * how it reads it back at start-up, what it remembers of outcomes, and how
 * it checkpoints the log so that it does not grow without bound.
 *
 * Records (payload encoding as in common/buf.h; the record framing, CRC and
 * LSNs are wal/'s; both are in docs/wal-format.md).  Type numbers are part of
 * the on-disk format and are never reused:
 *
 *   type 1  EPOCH     u64 epoch, u64 unix_ms [, u64 instance]
 *                     Forced before the first transaction of the epoch.  The
 *                     instance (random) names the process that claims the
 *                     epoch (docs/failover.md); older records end before it.
 *   type 2  COMMIT    str gid, u64 unix_ms, u16 n, { str participant, u64 xid }[n]
 *                     The commit decision: forced (fsynced, group commit)
 *                     before any COMMIT PREPARED is sent.  Lists the branches
 *                     that voted YES with their PostgreSQL transaction ids,
 *                     so "prepared transaction does not exist" can later be
 *                     told apart (pg_xact_status) from a heuristic rollback.
 *   type 3  END       str gid
 *                     Every YES branch has committed.  Not forced: losing it
 *                     only means the resolver checks that gid once more.
 *   type 4  ONEPHASE  str gid, u64 unix_ms
 *                     A one-phase COMMIT is about to be sent; forced before
 *                     the client learns the outcome, so that STATUS never
 *                     presumes "aborted" for a gid that may have committed.
 *   type 5  ONEPHASE_DONE  str gid, u8 outcome
 *                     The outcome of that one-phase commit.  Not forced.
 *   type 6  CHECKPOINT  u64 epoch, u64 floor_epoch, u64 floor_seq, u64 unix_ms
 *                     [, u16 n, { u64 epoch, u64 lsn, u64 instance }[n]]
 *                     What replay cannot rebuild once older segments are
 *                     removed: the current epoch, the outcome floor (see
 *                     Memory) and the epoch history (where each epoch's
 *                     bytes begin, and who claimed it: replication finds
 *                     forks with it).  Forced before any segment is removed.
 *   type 8  SYNC_STANDBY  u8 on, str name
 *                     The primary counts on a synchronous standby (on: it
 *                     has caught up) or no longer does (0: it went on alone,
 *                     or a promotion).  Not forced: replay tells a restarted
 *                     primary whether its first records must wait for a
 *                     standby (roles.c); losing an "off" only makes it wait.
 *   type 7  HEURISTIC_END  str gid, u64 unix_ms, u16 n, { str participant, u8 result }[n]
 *                     Instead of END when every branch is finished but some
 *                     did not commit by our hand: result is a
 *                     clog_branch_result (1 committed, 2 rolled back by
 *                     someone else, 3 gone with an outcome that cannot be
 *                     proven).  Self-contained, so it still reads right once
 *                     its COMMIT record is checkpointed away.  Not forced:
 *                     if lost, the resolver finds the same result again.
 *
 * Memory:
 *   pending  COMMIT records without END, rebuilt by replay at start-up and
 *            kept until END; the resolver works through them.  A list
 *            (newest first) and an index by gid that grows with it, so a
 *            participant that stays down while thousands of commits pile up
 *            costs no more per transaction than one that is up.
 *   outcomes what every COMMIT and ONEPHASE(_DONE) within the outcome
 *            retention window said, for STATUS.  Our own gids are numbered
 *            (epoch, seq), so their outcomes are two bits per seq in chunks
 *            of OCHUNK_SEQS seqs of one epoch (an array sorted by (epoch,
 *            first seq)): a day of 1,000 commits a second is about 25 MB,
 *            where an entry per gid would be gigabytes.  Each chunk keeps
 *            the time of its newest record, where its oldest record starts
 *            (lsn) and how many of its commits are still pending; it is
 *            pruned, oldest first, once its newest record is older than
 *            outcome_retention and none of its commits is pending — so an
 *            outcome may be remembered a little longer than the retention,
 *            never shorter.
 *   omap     gid -> outcome for the rest, which is rare: heuristic outcomes
 *            (with their description) and gids not of the form
 *            dtx:<our name>:<epoch>:<seq>.  In log order (a FIFO list: an
 *            entry moves to the tail when its HEURISTIC_END is logged, so a
 *            heuristic outcome is retained from the time it became known).
 *   STATUS of a gid:
 *              in omap                  -> that outcome
 *              a value in its chunk     -> that outcome
 *              (epoch, seq) <= floor    -> NO LONGER KNOWN (pruned)
 *              otherwise                -> ABORTED (presumed abort: no
 *                                          COMMIT record was ever written)
 *            `floor` is the (epoch, seq) of the newest pruned entry or chunk
 *            end: gids are ordered by (epoch, seq) in time, so everything at
 *            or below the floor may have had a record that is no longer
 *            remembered.
 *
 * Checkpoints.  Every checkpoint_interval, or sooner once the log has grown
 * by checkpoint_segments segments since the last one, a CHECKPOINT record
 * is appended and forced, and then the segments that lie entirely below
 *
 *     keep_lsn = min(start of the oldest COMMIT still pending,
 *                    start of the oldest record backing an omap entry,
 *                    start of the CHECKPOINT record itself)
 *
 * are removed (wal_checkpoint, on a short-lived thread: it fsyncs the
 * directory, and the event loop never blocks on disk).  Why that is enough:
 * a removed record is either superseded (an END whose COMMIT is gone too,
 * an EPOCH older than the CHECKPOINT's epoch) or belongs to a gid pruned
 * from the omap, i.e. at or below the floor the CHECKPOINT carries.  omap
 * entries are in log order, so everything older than the oldest entry was
 * pruned.  Replay reads from the first retained segment and so may see
 * records older than keep_lsn in that segment, ENDs whose COMMIT is gone
 * (ignored) and ONEPHASE_DONEs without their ONEPHASE (ignored); CHECKPOINT
 * raises last_epoch and the floor, never lowers them.  One checkpoint runs
 * at a time; a failed segment removal is logged and retried next time.
 *
 * Replay runs before the new epoch is logged; nothing is rewritten.
 */
#include "clog.h"

#include "clock.h"

#include "log.h"
#include "wal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum {
    REC_EPOCH = 1,
    REC_COMMIT = 2,
    REC_END = 3,
    REC_ONEPHASE = 4,
    REC_ONEPHASE_DONE = 5,
    REC_CHECKPOINT = 6,
    REC_HEURISTIC_END = 7,
    REC_SYNC_STANDBY = 8,
};

/* Outcome values of our own gids, two bits per seq.  OV_NONE: no record
 * (presumed abort, or pruned if at or below the floor). */
enum { OV_NONE = 0, OV_COMMITTED = 1, OV_UNKNOWN = 2, OV_ABORTED = 3 };
#define OCHUNK_SEQS CLOG_CHUNK_SEQS

typedef struct ochunk {
    uint64_t epoch;
    uint64_t base;       /* first seq: a multiple of OCHUNK_SEQS */
    uint64_t newest_ms;  /* time of the newest record that set a value here */
    uint64_t oldest_lsn; /* start of the oldest such record... */
    uint64_t oldest_seq; /* ...and its seq (checkpoint messages name it) */
    uint32_t npending;   /* commits of this chunk still without END */
    uint8_t v[OCHUNK_SEQS / 4];
} ochunk;

typedef struct oentry {
    char gid[GID_MAX];
    uint8_t outcome;
    uint64_t ms;
    uint64_t lsn; /* start of the record that backs this entry */
    uint64_t epoch, seq;
    char *detail;                 /* OUTCOME_HEURISTIC: "committed on a; ..." */
    char *participants;           /* OUTCOME_HEURISTIC: "a(committed),b(...)" */
    struct oentry *hnext;         /* hash chain */
    struct oentry *qnext, *qprev; /* FIFO, oldest first */
} oentry;

struct clog_pending {
    char gid[GID_MAX];
    uint64_t commit_ms;
    uint64_t lsn;        /* where its COMMIT record starts: checkpoints keep it */
    uint64_t epoch, seq; /* parsed from gid; 0, 0 if not one of ours */
    int nbranches;
    clog_branch *branches;
    struct clog_pending *next;         /* the list, newest first */
    struct clog_pending *prev, *hnext; /* the clog's: list and index */
};

struct clog {
    coord *co;
    wal_t *wal;
    char dir[4096];
    /* standby: records received and made durable are applied from here */
    wal_reader *apply_rd;
    uint64_t applied;     /* end of the last record applied (replayed) */
    uint64_t nrecords;    /* records replayed or applied: 0 for an empty log */
    uint64_t replay_prev; /* LSN of the last record replayed or applied */
    bool sync_on;         /* the last SYNC_STANDBY said "on" */
    uint64_t last_epoch;
    clog_pending *pending; /* newest first */
    clog_pending **ptab;   /* index of pending by gid, ptab_size buckets */
    size_t ptab_size, npending;
    ochunk *ch; /* chunks ch[ch_head .. ch_head + ch_n), sorted */
    size_t ch_head, ch_n, ch_cap;
    oentry **omap;
    size_t omap_size;
    oentry *qhead, *qtail;
    size_t nheuristic; /* omap entries with OUTCOME_HEURISTIC */
    uint64_t floor_epoch, floor_seq;
    uint64_t prune_next_ms; /* omap_prune: not again before */
    wbuf scratch;
    char detail[512]; /* STATUS detail built on demand */
    /* checkpoints */
    struct event *ckpt_timer; /* checkpoint_interval */
    struct event *ckpt_soon;  /* the log grew by checkpoint_segments */
    struct event *ckpt_done;  /* ckpt_efd readable: the thread finished */
    int ckpt_efd;
    bool ckpt_running;   /* from the CHECKPOINT append until the join */
    bool ckpt_thread_up; /* ckpt_thread must be joined */
    pthread_t ckpt_thread;
    uint64_t ckpt_end_lsn; /* end of the last CHECKPOINT record */
    uint64_t last_lsn;     /* end of the last record we appended (only the
                            * event loop appends: no need to ask wal/) */
    uint64_t ckpt_keep;    /* keep_lsn of the running checkpoint */
    int64_t ckpt_done_ms;  /* monotonic: the last checkpoint ended (or the log opened) */
    bool closing;          /* clog_close is under way */
    char ckpt_why[GID_MAX + 64];
    /* replication (primary): who hears of durable records, and the waits
     * for a synchronous standby's acknowledgement (durable_trampoline) */
    const clog_events *ev;
    void *ev_arg;
    uint64_t local_durable; /* highest LSN the WAL reported durable */
    bool sync_required;     /* waits also need the standby's acknowledgement */
    uint64_t sync_acked;    /* what the standby has acknowledged as durable */
    struct durable_req *sync_head, *sync_tail;
    size_t sync_waiting;
    struct durable_req *all_waits; /* every wait not yet answered (freed at close) */
    /* epochs begun in the retained log, oldest first (fork detection) */
    clog_epoch_start *epochs;
    size_t nepochs, epochs_cap;
    /* written by the thread, read after the join */
    bool ckpt_ok;
    uint64_t ckpt_removed;
    char ckpt_err[512];
};

/* A number as gids print it (%llu: digits, no leading zero, no sign); *p
 * moves past it. */
static bool
parse_number(const char **p, uint64_t *v)
{
    const char *s = *p;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return false;
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    *p = end;
    return errno == 0;
}

/* "dtx:name:epoch:seq" -> epoch, seq; false if it is not one of ours
 * (exactly as txn.c writes them: "dtx:c1:1:07" is not seq 7) */
static bool
gid_parse(const char *gid, const char *name, uint64_t *epoch, uint64_t *seq)
{
    size_t nl = strlen(name);
    if (strncmp(gid, "dtx:", 4) != 0 || strncmp(gid + 4, name, nl) != 0 || gid[4 + nl] != ':')
        return false;
    const char *p = gid + 5 + nl;
    return parse_number(&p, epoch) && *p++ == ':' && parse_number(&p, seq) && *p == '\0';
}

/* (epoch, seq) of one of our gids: where its outcome lives in a chunk. */
typedef struct gkey {
    uint64_t epoch, seq;
} gkey;

/* Parse gid once per operation; NULL (k unset) if it is not one of ours. */
static const gkey *
gid_key(const clog *l, const char *gid, gkey *k)
{
    return gid_parse(gid, l->co->conf.name, &k->epoch, &k->seq) && k->seq != 0 ? k : NULL;
}

/* the omap entry of gid, or NULL; the clog's (freed by omap_prune) */
static oentry *
omap_find(clog *l, const char *gid)
{
    for (oentry *e = l->omap[coord_gid_hash(gid, l->omap_size)]; e; e = e->hnext)
        if (strcmp(e->gid, gid) == 0)
            return e;
    return NULL;
}

/* Take e off the FIFO (not off the hash). */
static void
queue_unlink(clog *l, oentry *e)
{
    if (e->qprev)
        e->qprev->qnext = e->qnext;
    else
        l->qhead = e->qnext;
    if (e->qnext)
        e->qnext->qprev = e->qprev;
    else
        l->qtail = e->qprev;
    e->qnext = e->qprev = NULL;
}

static void
queue_append(clog *l, oentry *e)
{
    e->qprev = l->qtail;
    e->qnext = NULL;
    if (l->qtail)
        l->qtail->qnext = e;
    else
        l->qhead = e;
    l->qtail = e;
}

static void
oentry_free(clog *l, oentry *e)
{
    if (e->outcome == OUTCOME_HEURISTIC)
        l->nheuristic--;
    free(e->detail);
    free(e->participants);
    free(e);
}

/* ---- outcome chunks ------------------------------------------------------ */

static int
chunk_cmp(const ochunk *c, uint64_t epoch, uint64_t base)
{
    if (c->epoch != epoch)
        return c->epoch < epoch ? -1 : 1;
    return c->base == base ? 0 : c->base < base ? -1 : 1;
}

/* Index (from ch_head) of the chunk for (epoch, seq), or where it would be
 * inserted; *found tells which.  Most calls are for the newest chunk. */
static size_t
chunk_pos(const clog *l, uint64_t epoch, uint64_t seq, bool *found)
{
    uint64_t base = seq - seq % OCHUNK_SEQS;
    *found = false;
    if (l->ch_n == 0)
        return 0;
    const ochunk *c = l->ch + l->ch_head;
    size_t lo = 0, hi = l->ch_n;
    int r = chunk_cmp(&c[hi - 1], epoch, base);
    *found = r == 0;
    if (r <= 0)
        return r == 0 ? hi - 1 : hi;
    hi--; /* before the newest: search the others */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        r = chunk_cmp(&c[mid], epoch, base);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* The chunk holding (epoch, seq), or NULL; the clog's, valid until the next
 * chunk_get or prune. */
static ochunk *
chunk_find(clog *l, uint64_t epoch, uint64_t seq)
{
    bool found;
    size_t i = chunk_pos(l, epoch, seq, &found);
    return found ? &l->ch[l->ch_head + i] : NULL;
}

/* The chunk for (epoch, seq), created if need be.  Pointers into the array
 * are valid only until the next call. */
static ochunk *
chunk_get(clog *l, uint64_t epoch, uint64_t seq)
{
    bool found;
    size_t i = chunk_pos(l, epoch, seq, &found);
    if (found)
        return &l->ch[l->ch_head + i];
    if (l->ch_head + l->ch_n == l->ch_cap) {
        if (l->ch_head > l->ch_cap / 2) {
            memmove(l->ch, l->ch + l->ch_head, l->ch_n * sizeof(ochunk));
            l->ch_head = 0;
        } else {
            size_t cap = l->ch_cap ? l->ch_cap * 2 : 64;
            ochunk *n = realloc(l->ch, cap * sizeof(ochunk));
            if (n == NULL)
                log_fatal("out of memory");
            l->ch = n;
            l->ch_cap = cap;
        }
    }
    ochunk *c = l->ch + l->ch_head;
    memmove(&c[i + 1], &c[i], (l->ch_n - i) * sizeof(ochunk));
    l->ch_n++;
    memset(&c[i], 0, sizeof(ochunk));
    c[i].epoch = epoch;
    c[i].base = seq - seq % OCHUNK_SEQS;
    c[i].oldest_lsn = UINT64_MAX;
    return &c[i];
}

static unsigned
ov_get(const ochunk *c, uint64_t seq)
{
    uint64_t k = seq - c->base;
    return (c->v[k / 4] >> (2 * (k % 4))) & 3u;
}

static void
ov_set(ochunk *c, uint64_t seq, unsigned v)
{
    uint64_t k = seq - c->base;
    c->v[k / 4] = (uint8_t)((c->v[k / 4] & ~(3u << (2 * (k % 4)))) | (v << (2 * (k % 4))));
}

/* The value of one of our gids, OV_NONE when no chunk holds it. */
static unsigned
outcome_value(clog *l, uint64_t epoch, uint64_t seq)
{
    ochunk *c = chunk_find(l, epoch, seq);
    return c ? ov_get(c, seq) : OV_NONE;
}

static void
floor_raise(clog *l, uint64_t epoch, uint64_t seq)
{
    if (epoch > l->floor_epoch || (epoch == l->floor_epoch && seq > l->floor_seq)) {
        l->floor_epoch = epoch;
        l->floor_seq = seq;
    }
}

static void
omap_prune(clog *l, uint64_t now)
{
    uint64_t keep = (uint64_t)l->co->conf.outcome_retention_ms;
    if (now < l->prune_next_ms)
        return; /* called per transaction: a tenth of a second is precise enough */
    l->prune_next_ms = now + 100;
    /* The leading chunks past the retention go, except those with a commit
     * still pending, which stay at the front (in order). */
    ochunk *c = l->ch_n ? l->ch + l->ch_head : NULL;
    size_t m = 0;
    while (m < l->ch_n && c[m].newest_ms + keep < now)
        m++;
    size_t dst = m;
    for (size_t j = m; j-- > 0;) {
        if (c[j].npending > 0) {
            if (--dst != j)
                c[dst] = c[j];
            continue;
        }
        /* seqs of the current epoch past the last one handed out are not
         * pruned: they are still to come */
        uint64_t last = c[j].base + OCHUNK_SEQS - 1;
        if (c[j].epoch == l->co->epoch && last > l->co->next_seq)
            last = l->co->next_seq;
        floor_raise(l, c[j].epoch, last);
    }
    l->ch_head += dst;
    l->ch_n -= dst;
    if (l->ch_n == 0)
        l->ch_head = 0;
    while (l->qhead && l->qhead->ms + keep < now) {
        oentry *e = l->qhead;
        if (clog_find_pending(l, e->gid))
            break; /* never forget an unfinished commit */
        queue_unlink(l, e);
        oentry **pp = &l->omap[coord_gid_hash(e->gid, l->omap_size)];
        while (*pp != e)
            pp = &(*pp)->hnext;
        *pp = e->hnext;
        floor_raise(l, e->epoch, e->seq);
        /* a heuristic outcome's COMMIT also left a value in its chunk: the
         * gid is forgotten as a whole (NO LONGER KNOWN), not turned back
         * into a plain COMMITTED */
        ochunk *ec = e->seq ? chunk_find(l, e->epoch, e->seq) : NULL;
        if (ec)
            ov_set(ec, e->seq, OV_NONE);
        oentry_free(l, e);
    }
}

/* Set gid's omap entry (created if need be); the clog owns it until
 * omap_prune frees it. */
static oentry *
omap_set(clog *l, const char *gid, uint8_t outcome, uint64_t ms, uint64_t lsn)
{
    oentry *e = omap_find(l, gid);
    if (e) {
        e->outcome = outcome;
        return e;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        log_fatal("out of memory");
    snprintf(e->gid, sizeof(e->gid), "%s", gid);
    e->outcome = outcome;
    e->ms = ms;
    e->lsn = lsn;
    if (!gid_parse(gid, l->co->conf.name, &e->epoch, &e->seq))
        e->epoch = e->seq = 0;
    size_t h = coord_gid_hash(gid, l->omap_size);
    e->hnext = l->omap[h];
    l->omap[h] = e;
    queue_append(l, e);
    return e;
}

/* The chunk value of an outcome (OV_NONE: it has none), and back (-1). */
static unsigned
ov_of_outcome(uint8_t outcome)
{
    return outcome == OUTCOME_COMMITTED ? OV_COMMITTED
           : outcome == OUTCOME_UNKNOWN ? OV_UNKNOWN
           : outcome == OUTCOME_ABORTED ? OV_ABORTED
                                        : OV_NONE;
}

static int
outcome_of_ov(unsigned v)
{
    return v == OV_COMMITTED ? OUTCOME_COMMITTED
           : v == OV_UNKNOWN ? OUTCOME_UNKNOWN
           : v == OV_ABORTED ? OUTCOME_ABORTED
                             : -1;
}

/* Remember what a record said of gid (k: its key if it is one of ours): in
 * its chunk if the outcome has a value there, in the omap otherwise. */
static void
outcome_set(clog *l, const char *gid, const gkey *k, uint8_t outcome, uint64_t ms, uint64_t lsn)
{
    unsigned v = ov_of_outcome(outcome);
    if (v == OV_NONE || k == NULL || omap_find(l, gid) != NULL) {
        (void)omap_set(l, gid, outcome, ms, lsn);
        return;
    }
    ochunk *c = chunk_get(l, k->epoch, k->seq);
    ov_set(c, k->seq, v);
    if (ms > c->newest_ms)
        c->newest_ms = ms;
    if (lsn < c->oldest_lsn) {
        c->oldest_lsn = lsn;
        c->oldest_seq = k->seq;
    }
}

/* What the log says of gid: its omap entry (*ep), else the value in its
 * chunk; -1 when neither knows it. */
static int
outcome_known(clog *l, const char *gid, const gkey *k, oentry **ep)
{
    *ep = omap_find(l, gid);
    if (*ep)
        return (*ep)->outcome;
    return k ? outcome_of_ov(outcome_value(l, k->epoch, k->seq)) : -1;
}

/* A one-phase commit's outcome o became known (ONEPHASE_DONE): in its omap
 * entry e if it has one, else in its chunk. */
static void
onephase_learned(clog *l, oentry *e, const gkey *k, uint8_t o)
{
    if (e) {
        e->outcome = o;
        return;
    }
    ochunk *c = k && o != OUTCOME_UNKNOWN ? chunk_find(l, k->epoch, k->seq) : NULL;
    if (c && ov_get(c, k->seq) == OV_UNKNOWN)
        ov_set(c, k->seq, ov_of_outcome(o));
}

static const char *
branch_result_text(uint8_t r)
{
    switch (r) {
    case BRANCH_PENDING:
        return "not yet committed";
    case BRANCH_COMMITTED:
        return "committed";
    case BRANCH_ROLLED_BACK:
        return "rolled back by hand";
    case BRANCH_VANISHED:
        return "gone, outcome unknown";
    default:
        return "?";
    }
}

/* "committed on a, c; rolled back by hand on b" */
static void
describe_branches(const clog_branch *br, int n, char *buf, size_t len)
{
    static const uint8_t order[] = {BRANCH_COMMITTED, BRANCH_ROLLED_BACK, BRANCH_VANISHED,
                                    BRANCH_PENDING};
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof(order); k++) {
        bool first = true;
        for (int i = 0; i < n; i++) {
            if (br[i].result != order[k])
                continue;
            int w = snprintf(buf + used, len - used, "%s%s%s%s", first && used ? "; " : "",
                             first ? branch_result_text(order[k]) : ", ", first ? " on " : "",
                             br[i].participant);
            if (w < 0 || (size_t)w >= len - used)
                return;
            used += (size_t)w;
            first = false;
        }
    }
}

/* "a(committed),b(rolled back by hand)"; with bare_pending, a branch not
 * finished yet is its name alone ("a,b(committed)").  The caller frees it
 * with free(). */
static char *
list_branches(const clog_branch *br, int n, bool bare_pending)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(br[i].participant) + strlen(branch_result_text(br[i].result)) + 3;
    char *s = malloc(len);
    if (s == NULL)
        log_fatal("out of memory");
    size_t used = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        bool bare = bare_pending && br[i].result == BRANCH_PENDING;
        used += (size_t)snprintf(s + used, len - used, "%s%s%s%s%s", i ? "," : "",
                                 br[i].participant, bare ? "" : "(",
                                 bare ? "" : branch_result_text(br[i].result), bare ? "" : ")");
    }
    return s;
}

/* The END of a commit with a heuristic outcome: the omap entry becomes
 * OUTCOME_HEURISTIC, backed by the HEURISTIC_END record at lsn, and moves
 * to the tail of the FIFO (retained from now). */
static void
omap_set_heuristic(clog *l, const char *gid, uint64_t ms, uint64_t lsn, const clog_branch *br,
                   int n)
{
    oentry *e = omap_find(l, gid);
    if (e == NULL) {
        e = omap_set(l, gid, OUTCOME_HEURISTIC, ms, lsn);
    } else {
        queue_unlink(l, e);
        queue_append(l, e);
        if (e->outcome == OUTCOME_HEURISTIC)
            l->nheuristic--;
        e->outcome = OUTCOME_HEURISTIC;
        e->ms = ms;
        e->lsn = lsn;
    }
    l->nheuristic++;
    char buf[512];
    describe_branches(br, n, buf, sizeof(buf));
    free(e->detail);
    free(e->participants);
    e->detail = strdup(buf);
    e->participants = list_branches(br, n, false);
    if (e->detail == NULL)
        log_fatal("out of memory");
}

/* Double the pending index once it holds more entries than buckets. */
static void
pending_index_grow(clog *l)
{
    size_t size = l->ptab_size ? l->ptab_size * 2 : 256;
    clog_pending **tab = calloc(size, sizeof(*tab));
    if (tab == NULL)
        log_fatal("out of memory");
    for (clog_pending *p = l->pending; p; p = p->next) {
        size_t h = coord_gid_hash(p->gid, size);
        p->hnext = tab[h];
        tab[h] = p;
    }
    free(l->ptab);
    l->ptab = tab;
    l->ptab_size = size;
}

/* A COMMIT without END (k: the gid's key if it is one of ours).  Call after
 * outcome_set for the same gid: the chunk that holds its outcome counts it,
 * and is kept while it is pending.  The clog owns it until pending_remove. */
static clog_pending *
pending_add(clog *l, const char *gid, const gkey *k, uint64_t ms, uint64_t lsn,
            const clog_branch *br, int n)
{
    clog_pending *p = calloc(1, sizeof(*p));
    if (p == NULL || (n && (p->branches = calloc((size_t)n, sizeof(clog_branch))) == NULL))
        log_fatal("out of memory");
    snprintf(p->gid, sizeof(p->gid), "%s", gid);
    p->commit_ms = ms;
    p->lsn = lsn;
    p->nbranches = n;
    for (int i = 0; i < n; i++) {
        p->branches[i] = br[i];
        p->branches[i].result = BRANCH_PENDING;
        p->branches[i].inflight = false;
    }
    ochunk *c = k ? chunk_find(l, k->epoch, k->seq) : NULL;
    if (c) {
        c->npending++;
        p->epoch = k->epoch;
        p->seq = k->seq;
    }
    if (l->npending >= l->ptab_size)
        pending_index_grow(l);
    p->next = l->pending;
    if (l->pending)
        l->pending->prev = p;
    l->pending = p;
    size_t h = coord_gid_hash(gid, l->ptab_size);
    p->hnext = l->ptab[h];
    l->ptab[h] = p;
    l->npending++;
    return p;
}

clog_pending *
clog_find_pending(clog *l, const char *gid)
{
    if (l->npending == 0)
        return NULL;
    for (clog_pending *p = l->ptab[coord_gid_hash(gid, l->ptab_size)]; p; p = p->hnext)
        if (strcmp(p->gid, gid) == 0)
            return p;
    return NULL;
}

/* Forget a pending commit (NULL: nothing to do). */
static void
pending_remove(clog *l, clog_pending *p)
{
    if (p == NULL)
        return;
    clog_pending **pp = &l->ptab[coord_gid_hash(p->gid, l->ptab_size)];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    if (p->prev)
        p->prev->next = p->next;
    else
        l->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    l->npending--;
    if (p->seq != 0) {
        ochunk *c = chunk_find(l, p->epoch, p->seq);
        if (c && c->npending > 0)
            c->npending--;
    }
    free(p->branches);
    free(p);
}

clog_pending *
clog_pending_first(clog *l)
{
    return l->pending;
}

clog_pending *
clog_pending_next(const clog_pending *p)
{
    return p->next;
}

const char *
clog_pending_gid(const clog_pending *p)
{
    return p->gid;
}

uint64_t
clog_pending_commit_ms(const clog_pending *p)
{
    return p->commit_ms;
}

int
clog_pending_nbranches(const clog_pending *p)
{
    return p->nbranches;
}

const clog_branch *
clog_pending_branch(const clog_pending *p, int i)
{
    return &p->branches[i];
}

int
clog_pending_branch_index(const clog_pending *p, const char *participant)
{
    for (int i = 0; i < p->nbranches; i++)
        if (strcmp(p->branches[i].participant, participant) == 0)
            return i;
    return -1;
}

void
clog_pending_set_result(clog_pending *p, int i, clog_branch_result r)
{
    p->branches[i].result = (uint8_t)r;
}

void
clog_pending_set_inflight(clog_pending *p, int i, bool inflight)
{
    p->branches[i].inflight = inflight;
}

char *
clog_pending_participants(const clog_pending *p)
{
    return list_branches(p->branches, p->nbranches, true);
}

bool
clog_pending_finished(const clog_pending *p)
{
    for (int i = 0; i < p->nbranches; i++)
        if (p->branches[i].result == BRANCH_PENDING)
            return false;
    return true;
}

bool
clog_pending_heuristic(const clog_pending *p)
{
    for (int i = 0; i < p->nbranches; i++)
        if (p->branches[i].result == BRANCH_ROLLED_BACK || p->branches[i].result == BRANCH_VANISHED)
            return true;
    return false;
}

const char *
clog_pending_describe(const clog_pending *p, char *buf, size_t len)
{
    describe_branches(p->branches, p->nbranches, buf, len);
    return buf;
}

/* ---- epochs -------------------------------------------------------------- */

static void epoch_note(clog *l, uint64_t e, uint64_t lsn, uint64_t instance, bool override);

/* An EPOCH record of epoch e, whose bytes begin at lsn: the history grows
 * (oldest first; an epoch seen again — a checkpoint's copy, a replay —
 * adds nothing). */
static void
epoch_started(clog *l, uint64_t e, uint64_t lsn, uint64_t instance)
{
    epoch_note(l, e, lsn, instance, false);
}

/* The history holds (e, instance) at lsn: added in order, or — override,
 * from a CHECKPOINT record, which carries what the primary computed — its
 * position corrected (a replay that starts at that EPOCH record cannot see
 * the record before it). */
static void
epoch_note(clog *l, uint64_t e, uint64_t lsn, uint64_t instance, bool override)
{
    for (size_t i = 0; i < l->nepochs; i++)
        if (l->epochs[i].epoch == e && l->epochs[i].instance == instance) {
            if (override)
                l->epochs[i].lsn = lsn;
            return;
        }
    if (l->nepochs == l->epochs_cap) {
        size_t cap = l->epochs_cap ? l->epochs_cap * 2 : 16;
        clog_epoch_start *n = realloc(l->epochs, cap * sizeof(*n));
        if (n == NULL)
            log_fatal("out of memory");
        l->epochs = n;
        l->epochs_cap = cap;
    }
    size_t at = l->nepochs; /* in order of position */
    while (at > 0 && l->epochs[at - 1].lsn > lsn)
        at--;
    memmove(&l->epochs[at + 1], &l->epochs[at], (l->nepochs - at) * sizeof(l->epochs[0]));
    l->epochs[at] = (clog_epoch_start){.epoch = e, .lsn = lsn, .instance = instance};
    l->nepochs++;
}

const clog_epoch_start *
clog_epoch_history(const clog *l, size_t *n)
{
    *n = l->nepochs;
    return l->epochs;
}

/* ---- replay -------------------------------------------------------------- */

/* branches of a COMMIT or HEURISTIC_END payload; NULL if malformed.  Caller
 * frees. */
static clog_branch *
read_branches(rbuf *r, uint16_t n, bool with_result)
{
    clog_branch *br = calloc(n ? n : 1, sizeof(clog_branch));
    if (br == NULL)
        log_fatal("out of memory");
    for (uint16_t i = 0; i < n; i++) {
        const char *p = rbuf_get_str(r, NULL);
        if (with_result)
            br[i].result = rbuf_get_u8(r);
        else
            br[i].xid = rbuf_get_u64(r);
        if (p)
            snprintf(br[i].participant, sizeof(br[i].participant), "%s", p);
    }
    if (!rbuf_done(r)) {
        free(br);
        return NULL;
    }
    return br;
}

/* EPOCH: u64 epoch, u64 unix_ms[, u64 instance] */
static void
replay_epoch(clog *l, const wal_record *rec, rbuf *r)
{
    uint64_t e = rbuf_get_u64(r);
    (void)rbuf_get_u64(r);
    /* the instance was added later: a record without it says 0 */
    uint64_t instance = rbuf_remaining(r) ? rbuf_get_u64(r) : 0;
    if (!rbuf_done(r))
        return;
    if (e > l->last_epoch)
        l->last_epoch = e;
    /* where the epoch's bytes begin: the end of the record before it (a
     * new epoch starts a new segment: a switch record comes first) */
    epoch_started(l, e, l->replay_prev ? l->replay_prev : rec->start_lsn, instance);
}

/* CHECKPOINT: u64 epoch, u64 floor_epoch, u64 floor_seq, u64 unix_ms
 * [, u16 n, {u64 epoch, u64 lsn, u64 instance}[n]: the epoch history, so
 * that it outlives the segments of its EPOCH records] */
static void
replay_checkpoint(clog *l, rbuf *r)
{
    uint64_t epoch = rbuf_get_u64(r);
    uint64_t fe = rbuf_get_u64(r);
    uint64_t fs = rbuf_get_u64(r);
    (void)rbuf_get_u64(r);
    if (rbuf_ok(r) && rbuf_remaining(r) >= 2) {
        uint16_t n = rbuf_get_u16(r);
        for (uint16_t i = 0; i < n && rbuf_ok(r); i++) {
            uint64_t e = rbuf_get_u64(r), lsn = rbuf_get_u64(r), inst = rbuf_get_u64(r);
            if (rbuf_ok(r))
                epoch_note(l, e, lsn, inst, true);
        }
    }
    if (!rbuf_done(r))
        return;
    if (epoch > l->last_epoch)
        l->last_epoch = epoch;
    if (fe > l->floor_epoch || (fe == l->floor_epoch && fs > l->floor_seq)) {
        l->floor_epoch = fe;
        l->floor_seq = fs;
    }
}

static bool
replay_one(clog *l, const wal_record *rec, char *err, size_t errlen)
{
    rbuf r;
    rbuf_init(&r, rec->payload, rec->len);
    switch (rec->type) {
    case REC_EPOCH:
        replay_epoch(l, rec, &r);
        break;
    case REC_COMMIT: {
        const char *gid = rbuf_get_str(&r, NULL);
        uint64_t ms = rbuf_get_u64(&r);
        uint16_t n = rbuf_get_u16(&r);
        clog_branch *br = read_branches(&r, n, false);
        if (br == NULL)
            break;
        gkey k;
        const gkey *kp = gid_key(l, gid, &k);
        outcome_set(l, gid, kp, OUTCOME_COMMITTED, ms, rec->start_lsn);
        if (!clog_find_pending(l, gid))
            pending_add(l, gid, kp, ms, rec->start_lsn, br, n);
        free(br);
        break;
    }
    case REC_END: {
        /* its COMMIT may be gone (checkpointed): then there is nothing to do */
        const char *gid = rbuf_get_str(&r, NULL);
        if (rbuf_done(&r))
            pending_remove(l, clog_find_pending(l, gid));
        break;
    }
    case REC_ONEPHASE: {
        const char *gid = rbuf_get_str(&r, NULL);
        uint64_t ms = rbuf_get_u64(&r);
        gkey k;
        if (rbuf_done(&r))
            outcome_set(l, gid, gid_key(l, gid, &k), OUTCOME_UNKNOWN, ms, rec->start_lsn);
        break;
    }
    case REC_ONEPHASE_DONE: {
        const char *gid = rbuf_get_str(&r, NULL);
        uint8_t o = rbuf_get_u8(&r);
        gkey k;
        if (rbuf_done(&r))
            onephase_learned(l, omap_find(l, gid), gid_key(l, gid, &k), o);
        break;
    }
    case REC_CHECKPOINT:
        replay_checkpoint(l, &r);
        break;
    case REC_SYNC_STANDBY: {
        uint8_t on = rbuf_get_u8(&r);
        (void)rbuf_get_str(&r, NULL);
        if (rbuf_done(&r))
            l->sync_on = on != 0;
        break;
    }
    case REC_HEURISTIC_END: {
        const char *gid = rbuf_get_str(&r, NULL);
        uint64_t ms = rbuf_get_u64(&r);
        uint16_t n = rbuf_get_u16(&r);
        clog_branch *br = read_branches(&r, n, true);
        if (br == NULL)
            break;
        pending_remove(l, clog_find_pending(l, gid));
        omap_set_heuristic(l, gid, ms, rec->start_lsn, br, n);
        free(br);
        break;
    }
    default:
        snprintf(err, errlen, "unknown record type %u at LSN %" PRIu64, rec->type, rec->lsn);
        return false;
    }
    l->replay_prev = rec->lsn;
    return true;
}

static void ckpt_done_cb(evutil_socket_t fd, short what, void *arg);
static void sync_drop_all(clog *l);
static void ckpt_record_durable(void *arg, uint64_t lsn);
static uint64_t keep_lsn(clog *l, uint64_t keep, char *why, size_t whylen);

clog *
clog_open(coord *co, const char *dir, char *err, size_t errlen)
{
    clog *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->co = co;
    l->ckpt_efd = -1;
    snprintf(l->dir, sizeof(l->dir), "%s", dir);
    l->omap_size = 4096; /* rare entries only: see Memory */
    l->omap = calloc(l->omap_size, sizeof(oentry *));
    wbuf_init(&l->scratch);
    wal_options opts;
    wal_options_init(&opts);
    opts.segment_size = (uint32_t)co->conf.wal_segment_size;
    l->ckpt_done_ms = clock_mono_ms();
    l->wal = wal_open(dir, &opts, err, errlen);
    if (l->wal == NULL || l->omap == NULL) {
        if (l->wal)
            wal_close(l->wal);
        free(l->omap);
        free(l);
        return NULL;
    }
    wal_info info;
    wal_get_info(l->wal, &info);
    if (info.torn_lsn) {
        char b[32];
        log_log("commit log: torn tail of %" PRIu64 " bytes cut at %s", info.torn_bytes,
                wal_lsn_str(info.torn_lsn, b, sizeof(b)));
    }
    wal_reader *rd = wal_reader_open(l->wal, 0, err, errlen);
    if (rd == NULL)
        goto fail;
    wal_record rec;
    int rc;
    uint64_t n = 0;
    while ((rc = wal_reader_next(rd, &rec)) == 1) {
        if (!replay_one(l, &rec, err, errlen)) {
            wal_reader_close(rd);
            goto fail;
        }
        n++;
        l->nrecords++;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", wal_reader_error(rd));
        wal_reader_close(rd);
        goto fail;
    }
    wal_reader_close(rd);
    if (info.highest_epoch > l->last_epoch)
        l->last_epoch = info.highest_epoch;
    omap_prune(l, coord_wall_ms(l->co));
    char b[32];
    log_log("commit log: replayed %" PRIu64 " records from %s; last epoch %" PRIu64
            "; %zu committed transaction(s) still to finish",
            n, wal_lsn_str(info.oldest_lsn, b, sizeof(b)), l->last_epoch, l->npending);
    if (!wal_attach_event_base(l->wal, co->base, err, errlen))
        goto fail;
    l->ckpt_end_lsn = l->last_lsn = l->applied = wal_insert_lsn(l->wal);
    l->ckpt_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->ckpt_efd < 0) {
        snprintf(err, errlen, "could not create eventfd: %s", strerror(errno));
        goto fail;
    }
    l->ckpt_done = event_new(co->base, l->ckpt_efd, EV_READ | EV_PERSIST, ckpt_done_cb, l);
    if (l->ckpt_done == NULL || event_add(l->ckpt_done, NULL) != 0) {
        snprintf(err, errlen, "could not watch the checkpoint eventfd");
        goto fail;
    }
    return l;
fail:
    clog_close(l);
    return NULL;
}

void
clog_close(clog *l)
{
    if (l == NULL)
        return;
    if (l->ckpt_thread_up)
        pthread_join(l->ckpt_thread, NULL);
    if (l->ckpt_timer)
        event_free(l->ckpt_timer);
    if (l->ckpt_soon)
        event_free(l->ckpt_soon);
    if (l->ckpt_done)
        event_free(l->ckpt_done);
    if (l->ckpt_efd >= 0)
        close(l->ckpt_efd);
    if (l->apply_rd)
        wal_reader_close(l->apply_rd);
    l->apply_rd = NULL;
    l->closing = true; /* wal_close reports the last durable records */
    wal_close(l->wal);
    while (l->pending)
        pending_remove(l, l->pending);
    free(l->ptab);
    free(l->ch);
    while (l->qhead) {
        oentry *e = l->qhead;
        l->qhead = e->qnext;
        oentry_free(l, e);
    }
    free(l->omap);
    free(l->epochs);
    sync_drop_all(l);
    wbuf_free(&l->scratch);
    free(l);
}

uint64_t
clog_last_epoch(const clog *l)
{
    return l->last_epoch;
}

/* ---- appending ----------------------------------------------------------- */

/* One wait for durability (clog_when_durable).  With a synchronous standby
 * it waits twice: for the local fdatasync (the WAL's callback), then, in
 * sync_head's list, for the standby's acknowledgement. */
typedef struct durable_req {
    clog *l;
    uint64_t lsn;
    clog_durable_fn fn;
    void *arg;
    struct durable_req *next;                /* sync_head's list */
    struct durable_req *all_prev, *all_next; /* every wait not yet answered */
} durable_req;

static void
durable_unlink(durable_req *d)
{
    clog *l = d->l;
    if (d->all_prev)
        d->all_prev->all_next = d->all_next;
    else
        l->all_waits = d->all_next;
    if (d->all_next)
        d->all_next->all_prev = d->all_prev;
}

static void
durable_done(durable_req *d)
{
    clog_durable_fn fn = d->fn;
    void *a = d->arg;
    durable_unlink(d);
    free(d);
    fn(a);
}

static void
durable_trampoline(void *arg, uint64_t lsn)
{
    durable_req *d = arg;
    clog *l = d->l;
    if (lsn > l->local_durable)
        l->local_durable = lsn;
    if (l->ev && l->ev->durable)
        l->ev->durable(l->ev_arg, lsn);
    if (!l->sync_required || d->lsn <= l->sync_acked) {
        durable_done(d);
        return;
    }
    /* the WAL calls back in LSN order: the list stays sorted */
    d->next = NULL;
    if (l->sync_tail)
        l->sync_tail->next = d;
    else
        l->sync_head = d;
    l->sync_tail = d;
    l->sync_waiting++;
}

/* Run every wait the standby's acknowledgement (or going alone) covers. */
static void
sync_release(clog *l)
{
    while (l->sync_head && (!l->sync_required || l->sync_head->lsn <= l->sync_acked)) {
        durable_req *d = l->sync_head;
        l->sync_head = d->next;
        if (l->sync_head == NULL)
            l->sync_tail = NULL;
        l->sync_waiting--;
        durable_done(d);
    }
}

/* At close: waits still held for the standby are dropped, like the WAL's
 * own pending callbacks (nobody is told). */
static void
sync_drop_all(clog *l)
{
    while (l->all_waits) { /* the WAL's pending callbacks and the sync list */
        durable_req *d = l->all_waits;
        durable_unlink(d);
        free(d);
    }
    l->sync_head = l->sync_tail = NULL;
    l->sync_waiting = 0;
}

void
clog_set_events(clog *l, const clog_events *ev, void *arg)
{
    l->ev = ev;
    l->ev_arg = arg;
}

void
clog_set_sync(clog *l, bool required)
{
    l->sync_required = required;
    sync_release(l);
}

void
clog_sync_acked(clog *l, uint64_t lsn)
{
    if (lsn > l->sync_acked)
        l->sync_acked = lsn;
    sync_release(l);
}

size_t
clog_sync_waiting(const clog *l)
{
    return l->sync_waiting;
}

uint64_t
clog_durable_lsn(const clog *l)
{
    return l->local_durable;
}

/* Append the record in scratch; *start (if not NULL) gets where it starts —
 * or, when a segment switch comes first, the end of the previous record,
 * which is just as good for keeping it.  Appends come from the loop thread
 * only, so the insert LSN read before is that position. */
static uint64_t
clog_append_at(clog *l, uint8_t type, uint64_t *start)
{
    if (!wbuf_ok(&l->scratch))
        log_fatal("out of memory");
    /* where this record starts: the end of our previous one (or earlier,
     * when the log switches segment in between: keeping more is safe) */
    if (start)
        *start = l->last_lsn;
    uint64_t lsn = wal_append(l->wal, type, l->scratch.data, (uint32_t)l->scratch.len);
    if (lsn == 0)
        log_panic("could not append a record of %zu bytes to the commit log", l->scratch.len);
    l->last_lsn = lsn;
    l->replay_prev = lsn; /* the last real record (never a switch record) */
    wbuf_reset(&l->scratch);
    int nseg = l->co->conf.checkpoint_segments;
    if (nseg > 0 && l->ckpt_soon && !l->ckpt_running &&
        lsn - l->ckpt_end_lsn >= (uint64_t)nseg * wal_segment_size(l->wal) &&
        !evtimer_pending(l->ckpt_soon, NULL)) {
        struct timeval now = {0, 0};
        evtimer_add(l->ckpt_soon, &now);
    }
    return lsn;
}

static uint64_t
clog_append(clog *l, uint8_t type)
{
    return clog_append_at(l, type, NULL);
}

void
clog_when_durable(clog *l, uint64_t lsn, clog_durable_fn cb, void *arg)
{
    durable_req *d = calloc(1, sizeof(*d));
    if (d == NULL)
        log_fatal("out of memory");
    d->l = l;
    d->lsn = lsn;
    d->fn = cb;
    d->arg = arg;
    d->all_next = l->all_waits;
    if (l->all_waits)
        l->all_waits->all_prev = d;
    l->all_waits = d;
    wal_notify_durable(l->wal, lsn, durable_trampoline, d);
}

void
clog_begin_epoch(clog *l, uint64_t epoch, uint64_t instance, clog_durable_fn cb, void *arg)
{
    if (!wal_set_epoch(l->wal, epoch))
        log_fatal("cannot lower the epoch of the commit log to %" PRIu64, epoch);
    wbuf_put_u64(&l->scratch, epoch);
    wbuf_put_u64(&l->scratch, coord_wall_ms(l->co));
    wbuf_put_u64(&l->scratch, instance);
    uint64_t before = l->replay_prev; /* the end of the last real record */
    uint64_t start;
    uint64_t lsn = clog_append_at(l, REC_EPOCH, &start);
    l->last_epoch = epoch;
    /* where the epoch's bytes begin (the end of the record before it, not
     * a switch record's end), as a replay of this log will say */
    epoch_started(l, epoch, before ? before : start, instance);
    clog_when_durable(l, lsn, cb, arg);
}

void
clog_commit(clog *l, const char *gid, const clog_branch *br, int n, clog_durable_fn cb, void *arg)
{
    uint64_t now = coord_wall_ms(l->co);
    wbuf_put_str(&l->scratch, gid);
    wbuf_put_u64(&l->scratch, now);
    wbuf_put_u16(&l->scratch, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        wbuf_put_str(&l->scratch, br[i].participant);
        wbuf_put_u64(&l->scratch, br[i].xid);
    }
    uint64_t start;
    uint64_t lsn = clog_append_at(l, REC_COMMIT, &start);
    gkey k;
    const gkey *kp = gid_key(l, gid, &k);
    outcome_set(l, gid, kp, OUTCOME_COMMITTED, now, start);
    pending_add(l, gid, kp, now, start, br, n);
    clog_when_durable(l, lsn, cb, arg);
}

void
clog_set_branch_result(clog *l, const char *gid, const char *participant, clog_branch_result r)
{
    clog_pending *p = clog_find_pending(l, gid);
    for (int i = 0; p && i < p->nbranches; i++)
        if (strcmp(p->branches[i].participant, participant) == 0)
            p->branches[i].result = (uint8_t)r;
}

clog_branch_result
clog_commit_answer(const char *gid, const char *participant, uint64_t xid, const proto_done *d)
{
    if (d->status == DONE_OK)
        return BRANCH_COMMITTED;
    if (d->status != DONE_NOT_FOUND)
        return BRANCH_PENDING; /* busy, or failed: try again */
    switch (d->xact_status) {
    case XACT_COMMITTED:
        return BRANCH_COMMITTED; /* finished by someone else, as decided */
    case XACT_IN_PROGRESS:
        return BRANCH_PENDING; /* another session is finishing it right now */
    case XACT_ABORTED:
        log_error("heuristic outcome: branch %s:%s was rolled back by someone else, but the "
                  "decision was COMMIT",
                  gid, participant);
        return BRANCH_ROLLED_BACK;
    default:
        log_error("heuristic outcome: transaction %s: branch on \"%s\" does not exist and its "
                  "outcome cannot be proven (transaction id %llu)",
                  gid, participant, (unsigned long long)xid);
        return BRANCH_VANISHED;
    }
}

void
clog_end(clog *l, const char *gid)
{
    clog_pending *p = clog_find_pending(l, gid);
    if (p == NULL || !clog_pending_heuristic(p)) {
        wbuf_put_str(&l->scratch, gid);
        (void)clog_append(l, REC_END);
        pending_remove(l, p);
        return;
    }
    uint64_t now = coord_wall_ms(l->co);
    for (int i = 0; i < p->nbranches; i++)
        if (p->branches[i].result == BRANCH_PENDING)
            p->branches[i].result = BRANCH_COMMITTED;
    wbuf_put_str(&l->scratch, gid);
    wbuf_put_u64(&l->scratch, now);
    wbuf_put_u16(&l->scratch, (uint16_t)p->nbranches);
    for (int i = 0; i < p->nbranches; i++) {
        wbuf_put_str(&l->scratch, p->branches[i].participant);
        wbuf_put_u8(&l->scratch, p->branches[i].result);
    }
    uint64_t start;
    (void)clog_append_at(l, REC_HEURISTIC_END, &start);
    omap_set_heuristic(l, gid, now, start, p->branches, p->nbranches);
    l->co->n_heuristic++;
    pending_remove(l, p);
}

void
clog_onephase(clog *l, const char *gid, clog_durable_fn cb, void *arg)
{
    uint64_t now = coord_wall_ms(l->co);
    wbuf_put_str(&l->scratch, gid);
    wbuf_put_u64(&l->scratch, now);
    uint64_t start;
    uint64_t lsn = clog_append_at(l, REC_ONEPHASE, &start);
    gkey k;
    outcome_set(l, gid, gid_key(l, gid, &k), OUTCOME_UNKNOWN, now, start);
    if (cb)
        clog_when_durable(l, lsn, cb, arg);
}

void
clog_remember(clog *l, const char *gid, proto_outcome o)
{
    oentry *e;
    gkey k;
    const gkey *kp = gid_key(l, gid, &k);
    if (o != OUTCOME_UNKNOWN && outcome_known(l, gid, kp, &e) == OUTCOME_UNKNOWN) {
        /* a one-phase commit whose outcome is now known */
        onephase_learned(l, e, kp, (uint8_t)o);
        wbuf_put_str(&l->scratch, gid);
        wbuf_put_u8(&l->scratch, (uint8_t)o);
        (void)clog_append(l, REC_ONEPHASE_DONE);
    }
    omap_prune(l, coord_wall_ms(l->co));
}

proto_outcome
clog_outcome_of(clog *l, const char *gid, const char **detail)
{
    gkey k;
    uint64_t epoch, seq;
    oentry *e;
    omap_prune(l, coord_wall_ms(l->co));
    int known = outcome_known(l, gid, gid_key(l, gid, &k), &e);
    if (known >= 0) {
        clog_pending *p = clog_find_pending(l, gid);
        if (known == OUTCOME_HEURISTIC) {
            *detail = e && e->detail ? e->detail : "";
        } else if (p && clog_pending_heuristic(p)) {
            /* known already, before every branch is finished */
            *detail = clog_pending_describe(p, l->detail, sizeof(l->detail));
            return OUTCOME_HEURISTIC;
        } else {
            *detail = known == OUTCOME_UNKNOWN
                          ? "one-phase commit whose result was never learned"
                          : (p ? "committed; phase two still in progress" : "");
        }
        return (proto_outcome)known;
    }
    if (!gid_parse(gid, l->co->conf.name, &epoch, &seq)) {
        *detail = "not a transaction of this coordinator";
        return OUTCOME_NOT_KNOWN;
    }
    if (l->co->role != COORD_PRIMARY && epoch >= l->last_epoch) {
        *detail = "no record of it on this standby yet: its primary may still decide it";
        return OUTCOME_IN_PROGRESS;
    }
    if (epoch > l->co->epoch || (epoch == l->co->epoch && seq > l->co->next_seq)) {
        *detail = "no such transaction has been started";
        return OUTCOME_NOT_KNOWN;
    }
    if (epoch < l->floor_epoch || (epoch == l->floor_epoch && seq <= l->floor_seq)) {
        *detail = "older than the outcome retention";
        return OUTCOME_NOT_KNOWN;
    }
    *detail = "no commit record (presumed abort)";
    return OUTCOME_ABORTED;
}

void
clog_foreach_heuristic(clog *l, clog_heuristic_fn fn, void *arg)
{
    if (l->nheuristic == 0)
        return;
    omap_prune(l, coord_wall_ms(l->co));
    size_t seen = 0;
    for (oentry *e = l->qhead; e && seen < l->nheuristic; e = e->qnext) {
        if (e->outcome != OUTCOME_HEURISTIC)
            continue;
        seen++;
        fn(arg, e->gid, e->ms, e->participants ? e->participants : "");
    }
}

/* ---- the log as a stream (replication) ----------------------------------- */

uint64_t
clog_end_lsn(const clog *l)
{
    return wal_insert_lsn(l->wal);
}

void
clog_note_sync(clog *l, bool on, const char *name)
{
    if (l->sync_on == on)
        return;
    l->sync_on = on;
    wbuf_put_u8(&l->scratch, on ? 1 : 0);
    wbuf_put_str(&l->scratch, name ? name : "");
    (void)clog_append(l, REC_SYNC_STANDBY);
}

bool
clog_had_sync(const clog *l)
{
    return l->sync_on;
}

bool
clog_is_empty(const clog *l)
{
    return l->nrecords == 0 && l->last_lsn == l->applied;
}

uint64_t
clog_oldest_lsn(const clog *l)
{
    return wal_oldest_lsn(l->wal);
}

wal_reader *
clog_stream_open(clog *l, uint64_t from, char *err, size_t errlen)
{
    return wal_reader_open(l->wal, from, err, errlen);
}

uint64_t
clog_receive(clog *l, uint64_t pos, const void *bytes, size_t len, char *err, size_t errlen)
{
    bool empty = clog_is_empty(l);
    uint64_t lsn = wal_append_raw(l->wal, pos, bytes, len, err, errlen);
    if (lsn == 0)
        return 0;
    if (empty)
        l->applied = 0; /* the log now begins where the primary's does: apply from there */
    l->last_lsn = lsn;
    return lsn;
}

uint64_t
clog_flushed_lsn(clog *l)
{
    return wal_flushed_lsn(l->wal);
}

uint32_t
clog_segment_size(const clog *l)
{
    return wal_segment_size(l->wal);
}

/* A standby applied its primary's CHECKPOINT record (durable here): remove
 * the segments it no longer needs, as the primary does. */
static void
standby_checkpoint(clog *l, const wal_record *rec)
{
    if (l->ckpt_running)
        return;
    omap_prune(l, coord_wall_ms(l->co));
    l->ckpt_running = true;
    l->ckpt_end_lsn = rec->lsn;
    l->ckpt_keep = keep_lsn(l, rec->start_lsn, l->ckpt_why, sizeof(l->ckpt_why));
    ckpt_record_durable(l, rec->lsn);
}

void
clog_apply_received(clog *l)
{
    char err[300];
    if (l->apply_rd == NULL &&
        (l->apply_rd = wal_reader_open(l->wal, l->applied, err, sizeof(err))) == NULL)
        log_panic("standby: could not read back the received log from %" PRIu64 ": %s", l->applied,
                  err);
    wal_record rec;
    int rc;
    while ((rc = wal_reader_next(l->apply_rd, &rec)) == 1) {
        if (!replay_one(l, &rec, err, sizeof(err)))
            log_panic("standby: the received log does not replay: %s", err);
        l->applied = rec.lsn;
        l->nrecords++;
        if (rec.type == REC_CHECKPOINT)
            standby_checkpoint(l, &rec);
    }
    if (rc < 0)
        log_panic("standby: could not read back the received log: %s",
                  wal_reader_error(l->apply_rd));
}

/* Log each decision in the records from lsn on: they are about to be cut. */
static void
cut_report(clog *l, uint64_t lsn)
{
    char err[300];
    wal_reader *rd = wal_reader_open(l->wal, lsn, err, sizeof(err));
    if (rd == NULL) {
        log_warn("could not read the records to be cut: %s", err);
        return;
    }
    wal_record rec;
    uint64_t n = 0;
    while (wal_reader_next(rd, &rec) == 1) {
        n++;
        rbuf r;
        rbuf_init(&r, rec.payload, rec.len);
        if (rec.type == REC_COMMIT || rec.type == REC_ONEPHASE)
            log_warn("cutting a %s record of %s that its new primary never received",
                     rec.type == REC_COMMIT ? "COMMIT" : "ONEPHASE", rbuf_get_str(&r, NULL));
    }
    wal_reader_close(rd);
    log_warn("cutting %" PRIu64 " record(s) of this coordinator's log from %" PRIu64
             " on: written here, never received by the primary it now follows",
             n, lsn);
}

clog *
clog_cut(clog *l, uint64_t lsn, char *err, size_t errlen)
{
    coord *co = l->co;
    char dir[sizeof(l->dir)];
    snprintf(dir, sizeof(dir), "%s", l->dir);
    cut_report(l, lsn);
    if (l->apply_rd) {
        wal_reader_close(l->apply_rd);
        l->apply_rd = NULL;
    }
    if (l->ckpt_thread_up) { /* nothing else may use the log meanwhile */
        pthread_join(l->ckpt_thread, NULL);
        l->ckpt_thread_up = false;
        l->ckpt_running = false;
    }
    /* it fsyncs: this blocks the standby's loop (which serves only STATUS,
     * INDOUBT and REPLICATION) for as long, once per rejoin */
    if (!wal_truncate(l->wal, lsn, err, errlen))
        return l;  /* refused: nothing changed (err says why) */
    clog_close(l); /* and replay what is left, as a restart would */
    return clog_open(co, dir, err, errlen);
}

/* ---- checkpoints --------------------------------------------------------- */

static void *
ckpt_thread_main(void *arg)
{
    clog *l = arg;
    uint64_t before = wal_oldest_lsn(l->wal);
    l->ckpt_ok = wal_checkpoint(l->wal, l->ckpt_keep, l->ckpt_err, sizeof(l->ckpt_err));
    uint64_t after = wal_oldest_lsn(l->wal);
    l->ckpt_removed = (after - before) / wal_segment_size(l->wal);
    uint64_t one = 1;
    while (write(l->ckpt_efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* The CHECKPOINT record is durable: remove segments on a thread. */
static void
ckpt_record_durable(void *arg, uint64_t lsn)
{
    (void)lsn;
    clog *l = arg;
    if (l->closing) { /* from wal_close: the segments stay for the next start */
        l->ckpt_running = false;
        return;
    }
    int rc = pthread_create(&l->ckpt_thread, NULL, ckpt_thread_main, l);
    if (rc != 0) {
        log_warn("checkpoint: could not start a thread to remove segments: %s", strerror(rc));
        l->ckpt_running = false;
        return;
    }
    l->ckpt_thread_up = true;
}

static void
ckpt_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    clog *l = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0)
        return;
    if (!l->ckpt_thread_up)
        return;
    pthread_join(l->ckpt_thread, NULL);
    l->ckpt_thread_up = false;
    l->ckpt_running = false;
    l->ckpt_done_ms = clock_mono_ms();
    char a[32], b[32];
    if (!l->ckpt_ok)
        log_error("checkpoint: could not remove old segments of the commit log: %s "
                  "(%" PRIu64 " removed; retried at the next checkpoint)",
                  l->ckpt_err, l->ckpt_removed);
    else
        log_log("checkpoint at %s: removed %" PRIu64 " segment(s); log kept from %s (%s)",
                wal_lsn_str(l->ckpt_end_lsn, a, sizeof(a)), l->ckpt_removed,
                wal_lsn_str(l->ckpt_keep, b, sizeof(b)), l->ckpt_why);
}

/* keep_lsn (see Checkpoints): the oldest record still needed, or keep if
 * none is older; why (if not NULL) says which it is. */
static uint64_t
keep_lsn(clog *l, uint64_t keep, char *why, size_t whylen)
{
    if (why)
        snprintf(why, whylen, "nothing older is needed");
    for (clog_pending *p = l->pending; p; p = p->next) {
        if (p->lsn < keep) {
            keep = p->lsn;
            if (why)
                snprintf(why, whylen, "unfinished commit %s", p->gid);
        }
    }
    const ochunk *oldest = NULL;
    for (size_t i = 0; i < l->ch_n; i++) {
        const ochunk *c = &l->ch[l->ch_head + i];
        if (c->oldest_lsn < keep && (oldest == NULL || c->oldest_lsn < oldest->oldest_lsn))
            oldest = c;
    }
    if (oldest) {
        keep = oldest->oldest_lsn;
        if (why)
            snprintf(why, whylen,
                     "outcome of dtx:%s:%" PRIu64 ":%" PRIu64 ", within outcome_retention",
                     l->co->conf.name, oldest->epoch, oldest->oldest_seq);
    }
    if (l->qhead && l->qhead->lsn < keep) {
        keep = l->qhead->lsn;
        if (why)
            snprintf(why, whylen, "outcome of %s, within outcome_retention", l->qhead->gid);
    }
    return keep;
}

/* Append and force a CHECKPOINT, then remove what lies below keep_lsn. */
static void
clog_checkpoint(clog *l)
{
    if (l->ckpt_running)
        return;
    omap_prune(l, coord_wall_ms(l->co));
    if (l->last_lsn == l->ckpt_end_lsn) {
        /* nothing appended since the last one: only worth it if more
         * segments can go now (outcomes have aged, commits have ended) */
        uint64_t keep = keep_lsn(l, l->ckpt_end_lsn, NULL, 0);
        uint32_t seg = wal_segment_size(l->wal);
        if (keep / seg <= wal_oldest_lsn(l->wal) / seg)
            return;
    }
    wbuf_put_u64(&l->scratch, l->last_epoch);
    wbuf_put_u64(&l->scratch, l->floor_epoch);
    wbuf_put_u64(&l->scratch, l->floor_seq);
    wbuf_put_u64(&l->scratch, coord_wall_ms(l->co));
    size_t first = l->nepochs > 1024 ? l->nepochs - 1024 : 0;
    wbuf_put_u16(&l->scratch, (uint16_t)(l->nepochs - first));
    for (size_t i = first; i < l->nepochs; i++) {
        wbuf_put_u64(&l->scratch, l->epochs[i].epoch);
        wbuf_put_u64(&l->scratch, l->epochs[i].lsn);
        wbuf_put_u64(&l->scratch, l->epochs[i].instance);
    }
    l->ckpt_running = true; /* before the append: it must not schedule another */
    uint64_t start;
    uint64_t lsn = clog_append_at(l, REC_CHECKPOINT, &start);
    l->ckpt_end_lsn = lsn;
    l->ckpt_keep = keep_lsn(l, start, l->ckpt_why, sizeof(l->ckpt_why));
    wal_notify_durable(l->wal, lsn, ckpt_record_durable, l);
}

static void
ckpt_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    clog_checkpoint(arg);
}

struct wal *
clog_wal(const clog *l)
{
    return l->wal;
}

int64_t
clog_checkpoint_age_ms(const clog *l)
{
    return clock_mono_ms() - l->ckpt_done_ms;
}

void
clog_checkpoint_start(clog *l)
{
    int64_t ms = l->co->conf.checkpoint_interval_ms;
    l->ckpt_soon = evtimer_new(l->co->base, ckpt_timer_cb, l);
    if (l->ckpt_soon == NULL)
        log_fatal("out of memory");
    if (ms > 0) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        l->ckpt_timer = event_new(l->co->base, -1, EV_PERSIST, ckpt_timer_cb, l);
        if (l->ckpt_timer == NULL || event_add(l->ckpt_timer, &tv) != 0)
            log_fatal("could not start the checkpoint timer");
    }
}
