/*
 * clog.c — the coordinator's commit log: what it writes to the WAL (wal/),
 * how it reads it back at start-up, and what it remembers of outcomes.
 *
 * Records (payload encoding as in common/buf.h; the record framing, CRC and
 * LSNs are wal/'s, see docs/wal-format.md):
 *
 *   type 1  EPOCH     u64 epoch, u64 unix_ms
 *                     Forced before the first transaction of the epoch.
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
 *
 * Memory:
 *   pending  COMMIT records without END, rebuilt by replay at start-up and
 *            kept until END; the resolver works through them.
 *   omap     gid -> outcome for every COMMIT and ONEPHASE within the
 *            outcome retention window, in time order (a FIFO list), so
 *            STATUS can answer for a gid:
 *              in omap                  -> that outcome
 *              (epoch, seq) <= floor    -> NO LONGER KNOWN (pruned)
 *              otherwise                -> ABORTED (presumed abort: no
 *                                          COMMIT record was ever written)
 *            `floor` is the (epoch, seq) of the newest pruned entry: gids are
 *            ordered by (epoch, seq) in time, so everything at or below the
 *            floor may have had a record that is no longer remembered.
 *
 * Replay runs before the new epoch is logged; nothing is rewritten.
 */
#include "coord.h"
#include "log.h"
#include "wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    REC_EPOCH = 1,
    REC_COMMIT = 2,
    REC_END = 3,
    REC_ONEPHASE = 4,
    REC_ONEPHASE_DONE = 5,
};

typedef struct oentry {
    char gid[GID_MAX];
    uint8_t outcome;
    uint64_t ms;
    uint64_t epoch, seq;
    struct oentry *hnext; /* hash chain */
    struct oentry *qnext; /* FIFO, oldest first */
} oentry;

struct clog {
    coord *co;
    wal_t *wal;
    uint64_t last_epoch;
    clog_pending *pending;
    oentry **omap;
    size_t omap_size;
    oentry *qhead, *qtail;
    size_t nentries;
    uint64_t floor_epoch, floor_seq;
    wbuf scratch;
};

typedef struct durable_req {
    clog_durable_fn fn;
    void *arg;
} durable_req;

static size_t
hash_gid(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)(h % n);
}

/* "dtx:name:epoch:seq" -> epoch, seq; false if it is not one of ours */
static bool
gid_parse(const char *gid, const char *name, uint64_t *epoch, uint64_t *seq)
{
    size_t nl = strlen(name);
    if (strncmp(gid, "dtx:", 4) != 0 || strncmp(gid + 4, name, nl) != 0 || gid[4 + nl] != ':')
        return false;
    char *end;
    const char *p = gid + 5 + nl;
    *epoch = strtoull(p, &end, 10);
    if (end == p || *end != ':')
        return false;
    p = end + 1;
    *seq = strtoull(p, &end, 10);
    return end != p && *end == '\0';
}

static oentry *
omap_find(clog *l, const char *gid)
{
    for (oentry *e = l->omap[hash_gid(gid, l->omap_size)]; e; e = e->hnext)
        if (strcmp(e->gid, gid) == 0)
            return e;
    return NULL;
}

static void
omap_prune(clog *l, uint64_t now)
{
    uint64_t keep = (uint64_t)l->co->conf.outcome_retention_ms;
    while (l->qhead && l->qhead->ms + keep < now) {
        oentry *e = l->qhead;
        if (clog_find_pending(l, e->gid))
            break; /* never forget an unfinished commit */
        l->qhead = e->qnext;
        if (l->qhead == NULL)
            l->qtail = NULL;
        oentry **pp = &l->omap[hash_gid(e->gid, l->omap_size)];
        while (*pp != e)
            pp = &(*pp)->hnext;
        *pp = e->hnext;
        if (e->epoch > l->floor_epoch || (e->epoch == l->floor_epoch && e->seq > l->floor_seq)) {
            l->floor_epoch = e->epoch;
            l->floor_seq = e->seq;
        }
        free(e);
        l->nentries--;
    }
}

static void
omap_set(clog *l, const char *gid, uint8_t outcome, uint64_t ms)
{
    oentry *e = omap_find(l, gid);
    if (e) {
        e->outcome = outcome;
        return;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        log_fatal("out of memory");
    snprintf(e->gid, sizeof(e->gid), "%s", gid);
    e->outcome = outcome;
    e->ms = ms;
    if (!gid_parse(gid, l->co->conf.name, &e->epoch, &e->seq))
        e->epoch = e->seq = 0;
    size_t h = hash_gid(gid, l->omap_size);
    e->hnext = l->omap[h];
    l->omap[h] = e;
    if (l->qtail)
        l->qtail->qnext = e;
    else
        l->qhead = e;
    l->qtail = e;
    l->nentries++;
}

static void
pending_add(clog *l, const char *gid, uint64_t ms, const clog_branch *br, int n)
{
    clog_pending *p = calloc(1, sizeof(*p));
    if (p == NULL || (n && (p->branches = calloc((size_t)n, sizeof(clog_branch))) == NULL))
        log_fatal("out of memory");
    snprintf(p->gid, sizeof(p->gid), "%s", gid);
    p->commit_ms = ms;
    p->nbranches = n;
    if (n)
        memcpy(p->branches, br, (size_t)n * sizeof(clog_branch));
    p->next = l->pending;
    l->pending = p;
}

static void
pending_remove(clog *l, const char *gid)
{
    for (clog_pending **pp = &l->pending; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->gid, gid) == 0) {
            clog_pending *p = *pp;
            *pp = p->next;
            free(p->branches);
            free(p);
            return;
        }
    }
}

clog_pending *
clog_find_pending(clog *l, const char *gid)
{
    for (clog_pending *p = l->pending; p; p = p->next)
        if (strcmp(p->gid, gid) == 0)
            return p;
    return NULL;
}

clog_pending *
clog_pending_list(clog *l)
{
    return l->pending;
}

static bool
replay_one(clog *l, const wal_record *rec, char *err, size_t errlen)
{
    rbuf r;
    rbuf_init(&r, rec->payload, rec->len);
    switch (rec->type) {
    case REC_EPOCH: {
        uint64_t e = rbuf_get_u64(&r);
        (void)rbuf_get_u64(&r);
        if (rbuf_done(&r) && e > l->last_epoch)
            l->last_epoch = e;
        break;
    }
    case REC_COMMIT: {
        const char *gid = rbuf_get_str(&r, NULL);
        uint64_t ms = rbuf_get_u64(&r);
        uint16_t n = rbuf_get_u16(&r);
        clog_branch *br = calloc(n ? n : 1, sizeof(clog_branch));
        if (br == NULL)
            log_fatal("out of memory");
        for (uint16_t i = 0; i < n; i++) {
            const char *p = rbuf_get_str(&r, NULL);
            br[i].xid = rbuf_get_u64(&r);
            if (p)
                snprintf(br[i].participant, sizeof(br[i].participant), "%s", p);
        }
        if (!rbuf_done(&r)) {
            free(br);
            break;
        }
        if (!clog_find_pending(l, gid))
            pending_add(l, gid, ms, br, n);
        omap_set(l, gid, OUTCOME_COMMITTED, ms);
        free(br);
        break;
    }
    case REC_END: {
        const char *gid = rbuf_get_str(&r, NULL);
        if (rbuf_done(&r))
            pending_remove(l, gid);
        break;
    }
    case REC_ONEPHASE: {
        const char *gid = rbuf_get_str(&r, NULL);
        uint64_t ms = rbuf_get_u64(&r);
        if (rbuf_done(&r))
            omap_set(l, gid, OUTCOME_UNKNOWN, ms);
        break;
    }
    case REC_ONEPHASE_DONE: {
        const char *gid = rbuf_get_str(&r, NULL);
        uint8_t o = rbuf_get_u8(&r);
        oentry *e = rbuf_done(&r) ? omap_find(l, gid) : NULL;
        if (e)
            e->outcome = o;
        break;
    }
    default:
        snprintf(err, errlen, "unknown record type %u at LSN %" PRIu64, rec->type, rec->lsn);
        return false;
    }
    return true;
}

clog *
clog_open(coord *co, const char *dir, char *err, size_t errlen)
{
    clog *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->co = co;
    l->omap_size = 65536;
    l->omap = calloc(l->omap_size, sizeof(oentry *));
    wbuf_init(&l->scratch);
    wal_options opts;
    wal_options_init(&opts);
    opts.segment_size = (uint32_t)co->conf.wal_segment_size;
    l->wal = wal_open(dir, &opts, err, errlen);
    if (l->wal == NULL || l->omap == NULL) {
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
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", wal_reader_error(rd));
        wal_reader_close(rd);
        goto fail;
    }
    wal_reader_close(rd);
    if (info.highest_epoch > l->last_epoch)
        l->last_epoch = info.highest_epoch;
    omap_prune(l, coord_now_ms());
    int np = 0;
    for (clog_pending *p = l->pending; p; p = p->next)
        np++;
    log_log("commit log: replayed %" PRIu64 " records; last epoch %" PRIu64
            "; %d committed transaction(s) still to finish",
            n, l->last_epoch, np);
    if (!wal_attach_event_base(l->wal, co->base, err, errlen))
        goto fail;
    return l;
fail:
    wal_close(l->wal);
    free(l->omap);
    free(l);
    return NULL;
}

void
clog_close(clog *l)
{
    if (l == NULL)
        return;
    wal_close(l->wal);
    while (l->pending)
        pending_remove(l, l->pending->gid);
    while (l->qhead) {
        oentry *e = l->qhead;
        l->qhead = e->qnext;
        free(e);
    }
    free(l->omap);
    wbuf_free(&l->scratch);
    free(l);
}

uint64_t
clog_last_epoch(const clog *l)
{
    return l->last_epoch;
}

static void
durable_trampoline(void *arg, uint64_t lsn)
{
    (void)lsn;
    durable_req *d = arg;
    clog_durable_fn fn = d->fn;
    void *a = d->arg;
    free(d);
    fn(a);
}

static uint64_t
clog_append(clog *l, uint8_t type)
{
    if (!wbuf_ok(&l->scratch))
        log_fatal("out of memory");
    uint64_t lsn = wal_append(l->wal, type, l->scratch.data, (uint32_t)l->scratch.len);
    if (lsn == 0)
        log_panic("could not append a record of %zu bytes to the commit log", l->scratch.len);
    wbuf_reset(&l->scratch);
    return lsn;
}

static void
clog_when_durable(clog *l, uint64_t lsn, clog_durable_fn cb, void *arg)
{
    durable_req *d = malloc(sizeof(*d));
    if (d == NULL)
        log_fatal("out of memory");
    d->fn = cb;
    d->arg = arg;
    wal_notify_durable(l->wal, lsn, durable_trampoline, d);
}

void
clog_begin_epoch(clog *l, uint64_t epoch, clog_durable_fn cb, void *arg)
{
    if (!wal_set_epoch(l->wal, epoch))
        log_fatal("cannot lower the epoch of the commit log to %" PRIu64, epoch);
    wbuf_put_u64(&l->scratch, epoch);
    wbuf_put_u64(&l->scratch, coord_now_ms());
    uint64_t lsn = clog_append(l, REC_EPOCH);
    l->last_epoch = epoch;
    clog_when_durable(l, lsn, cb, arg);
}

void
clog_commit(clog *l, const char *gid, const clog_branch *br, int n, clog_durable_fn cb, void *arg)
{
    uint64_t now = coord_now_ms();
    wbuf_put_str(&l->scratch, gid);
    wbuf_put_u64(&l->scratch, now);
    wbuf_put_u16(&l->scratch, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        wbuf_put_str(&l->scratch, br[i].participant);
        wbuf_put_u64(&l->scratch, br[i].xid);
    }
    uint64_t lsn = clog_append(l, REC_COMMIT);
    pending_add(l, gid, now, br, n);
    omap_set(l, gid, OUTCOME_COMMITTED, now);
    clog_when_durable(l, lsn, cb, arg);
}

void
clog_end(clog *l, const char *gid)
{
    wbuf_put_str(&l->scratch, gid);
    (void)clog_append(l, REC_END);
    pending_remove(l, gid);
}

void
clog_onephase(clog *l, const char *gid, clog_durable_fn cb, void *arg)
{
    uint64_t now = coord_now_ms();
    wbuf_put_str(&l->scratch, gid);
    wbuf_put_u64(&l->scratch, now);
    uint64_t lsn = clog_append(l, REC_ONEPHASE);
    omap_set(l, gid, OUTCOME_UNKNOWN, now);
    if (cb)
        clog_when_durable(l, lsn, cb, arg);
}

void
clog_remember(clog *l, const char *gid, proto_outcome o)
{
    oentry *e = omap_find(l, gid);
    if (e && e->outcome == OUTCOME_UNKNOWN && o != OUTCOME_UNKNOWN) {
        /* a one-phase commit whose outcome is now known */
        e->outcome = (uint8_t)o;
        wbuf_put_str(&l->scratch, gid);
        wbuf_put_u8(&l->scratch, (uint8_t)o);
        (void)clog_append(l, REC_ONEPHASE_DONE);
    }
    omap_prune(l, coord_now_ms());
}

proto_outcome
clog_outcome_of(clog *l, const char *gid, const char **detail)
{
    uint64_t epoch, seq;
    oentry *e = omap_find(l, gid);
    if (e) {
        *detail = e->outcome == OUTCOME_UNKNOWN
                      ? "one-phase commit whose result was never learned"
                      : (clog_find_pending(l, gid) ? "committed; phase two still in progress"
                                                   : "");
        return (proto_outcome)e->outcome;
    }
    if (!gid_parse(gid, l->co->conf.name, &epoch, &seq)) {
        *detail = "not a transaction of this coordinator";
        return OUTCOME_NOT_KNOWN;
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
