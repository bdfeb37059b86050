/*
 * resolver.c — brings every branch of ours to its decided end, in the
 * background: after a restart (recovery) and periodically while running.
 *
 * Two jobs, both per participant link, run whenever a link becomes ready,
 * on a timer (sweep_interval), and soon after resolver_kick():
 *
 *  1. Finish commits.  Every COMMIT record without END (clog pending list)
 *     whose transaction is not live in the table gets COMMIT PREPARED on
 *     each branch not yet acknowledged.  "Does not exist" is success only if
 *     pg_xact_status says the branch committed; if it says aborted, someone
 *     resolved it by hand against the decision: a heuristic outcome, logged
 *     as an error and never counted as a success (likewise a branch that is
 *     gone with no provable outcome).  When every branch is finished, END is
 *     logged — HEURISTIC_END, naming what became of each branch, when any
 *     had a heuristic outcome, so that STATUS and INDOUBT keep reporting it
 *     (clog.c).
 *
 *  2. Sweep.  LIST the participant's prepared transactions with our prefix
 *     "dtx:<name>:".  For each, judged against the table *when the reply is
 *     handled* (a listing is stale by then):
 *        transaction live in the table      -> leave it (its owner decides)
 *        COMMIT record without END          -> job 1 handles it
 *        COMMIT record and END (remembered) -> leave it: the listing is older
 *                                              than its COMMIT PREPARED
 *        anything else                      -> ROLLBACK PREPARED (presumed abort)
 *     Prepared transactions of other coordinators (other prefix) and of
 *     other applications are never listed, so never touched.
 *
 * Ordering argument: a gid's branches are prepared only while its txn is in
 * the table, and a txn with a COMMIT record stays in the table until that
 * record is appended (LOGGING happens inside the table), after which the
 * gid is in the pending list until END, and in the outcome memory as
 * committed after that.  So at the moment a listed branch is judged, "not
 * in the table, not pending, not remembered as committed" means no COMMIT
 * record exists or ever will for it: rolling it back is what presumed abort
 * says.  (A gid older than the outcome retention that is still prepared
 * cannot have had a COMMIT record: that record would still be pending.)
 * Without the third test, a listing taken just before a transaction's
 * COMMIT PREPARED and judged just after its END would send a ROLLBACK
 * PREPARED to a committed branch: harmless ("does not exist"), but a
 * contradiction of the decision that the chaos test catches.
 *
 * Busy (another session is finishing the branch) and unreachable
 * participants are simply retried on the next pass; passes back off.
 */
#include "resolver.h"

#include "clog.h"
#include "failpoint.h"
#include "ha.h"
#include "log.h"
#include "plink.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum rjob { RJ_COMMIT, RJ_ROLLBACK, RJ_LIST } rjob;

typedef struct rctx {
    coord *co;
    plink *link;
    rjob job;
    char gid[GID_MAX];
} rctx;

/* The context of one request to a participant: the reply callback frees it
 * (or the caller, when the request could not be sent). */
static rctx *
rctx_new(coord *co, plink *l, rjob job, const char *gid)
{
    rctx *r = calloc(1, sizeof(*r));
    if (r == NULL)
        log_fatal("out of memory");
    r->co = co;
    r->link = l;
    r->job = job;
    if (gid)
        snprintf(r->gid, sizeof(r->gid), "%s", gid);
    return r;
}

static bool
live_in_table(coord *co, const char *gid)
{
    txn *t = txn_lookup(co, gid);
    return t != NULL && !txn_is_finished(t);
}

static void
maybe_end(coord *co, clog_pending *p)
{
    const char *gid = clog_pending_gid(p);
    if (!clog_pending_finished(p))
        return;
    if (clog_pending_heuristic(p)) {
        char what[512];
        log_with(&(log_fields){.gid = gid}, LOG_LVL_ERROR,
                 "transaction %s: finished with a heuristic outcome: %s", gid,
                 clog_pending_describe(p, what, sizeof(what)));
    } else {
        log_with(&(log_fields){.gid = gid}, LOG_LVL_LOG,
                 "transaction %s: committed on every participant", gid);
    }
    if (FAILPOINT("coord-recovery-partial") == FP_ERROR)
        return;
    clog_end(co->log, gid);
}

static void
commit_reply(void *arg, const frame_view *f, bool final)
{
    rctx *r = arg;
    if (!final)
        return;
    clog_pending *p = clog_find_pending(r->co->log, r->gid);
    int i = p ? clog_pending_branch_index(p, plink_name(r->link)) : -1;
    if (i >= 0) {
        const clog_branch *b = clog_pending_branch(p, i);
        clog_pending_set_inflight(p, i, false);
        proto_done d;
        if (f && f->type == MSG_DONE && proto_get_done(f, &d) && b->result == BRANCH_PENDING) {
            clog_branch_result res = clog_commit_answer(r->gid, b->participant, b->xid, &d);
            if (res == BRANCH_PENDING && d.status != DONE_BUSY && d.status != DONE_NOT_FOUND)
                log_report_with(&(log_fields){.gid = r->gid, .participant = b->participant},
                                LOG_LVL_WARNING, d.sqlstate, d.detail, d.hint,
                                "transaction %s: COMMIT PREPARED on \"%s\" failed: %s", r->gid,
                                b->participant,
                                d.message ? d.message : proto_done_status_name(d.status));
            clog_pending_set_result(p, i, res);
        }
        if (b->result != BRANCH_PENDING)
            maybe_end(r->co, p);
    }
    free(r);
}

static void
rollback_reply(void *arg, const frame_view *f, bool final)
{
    rctx *r = arg;
    if (!final)
        return;
    proto_done d;
    log_fields rf = {.gid = r->gid, .participant = plink_name(r->link)};
    if (f && f->type == MSG_DONE && proto_get_done(f, &d)) {
        if (d.status == DONE_OK)
            log_with(&rf, LOG_LVL_LOG, "rolled back orphaned branch %s on \"%s\"", r->gid,
                     plink_name(r->link));
        else if (d.status != DONE_NOT_FOUND && d.status != DONE_BUSY)
            log_report_with(&rf, LOG_LVL_WARNING, d.sqlstate, d.detail, d.hint,
                            "ROLLBACK PREPARED of %s on \"%s\" failed: %s", r->gid,
                            plink_name(r->link),
                            d.message ? d.message : proto_done_status_name(d.status));
    }
    free(r);
}

/* branch name "<gid>:<participant>" -> gid */
static bool
branch_to_gid(const char *branch, char *gid, size_t len)
{
    const char *c = strrchr(branch, ':');
    if (c == NULL || (size_t)(c - branch) >= len)
        return false;
    memcpy(gid, branch, (size_t)(c - branch));
    gid[c - branch] = '\0';
    return true;
}

/* What the last listing of each link showed (resolver_orphans), by link
 * index; allocated by resolver_start. */
typedef struct orphan_note {
    uint32_t n;
    uint64_t oldest_ms; /* prepared_ms of the oldest, participant's clock */
} orphan_note;

static orphan_note *orphans;

bool
resolver_orphans(const coord *co, int i, uint32_t *n, uint64_t *oldest_ms)
{
    if (orphans == NULL || i < 0 || i >= co->nlinks)
        return false;
    *n = orphans[i].n;
    *oldest_ms = orphans[i].oldest_ms;
    return true;
}

static void
note_orphans(coord *co, plink *l, uint32_t n, uint64_t oldest_ms)
{
    for (int i = 0; orphans && i < co->nlinks; i++)
        if (co->links[i] == l)
            orphans[i] = (orphan_note){.n = n, .oldest_ms = oldest_ms};
}

/* Job 2: judge one listing of the link's prepared branches of ours. */
static void
judge_listing(coord *co, plink *l, const proto_list_entry *ent, uint32_t n)
{
    uint32_t norphans = 0;
    uint64_t oldest = 0;
    for (uint32_t i = 0; i < n; i++) {
        char gid[GID_MAX];
        const char *branch = ent[i].gid;
        const char *suffix = strrchr(branch, ':');
        if (!branch_to_gid(branch, gid, sizeof(gid)) || suffix == NULL ||
            strcmp(suffix + 1, plink_name(l)) != 0)
            continue; /* not a branch this link's name would produce */
        if (live_in_table(co, gid) || clog_find_pending(co->log, gid))
            continue;
        /* A listing is stale by now: a transaction may have committed
         * and ended since.  Roll back only what has no COMMIT record. */
        const char *detail;
        proto_outcome o = clog_outcome_of(co->log, gid, &detail);
        if (o != OUTCOME_ABORTED && o != OUTCOME_NOT_KNOWN) {
            log_debug("sweep: branch %s is not rolled back: the transaction is %s (the listing "
                      "is older than its outcome)",
                      branch, proto_outcome_name(o));
            continue;
        }
        norphans++;
        if (oldest == 0 || (ent[i].prepared_ms && ent[i].prepared_ms < oldest))
            oldest = ent[i].prepared_ms;
        rctx *rr = rctx_new(co, l, RJ_ROLLBACK, gid);
        if (plink_send_finish(l, branch, false, ent[i].xid, rollback_reply, rr))
            co->stats.resolver[CR_ROLLBACK]++;
        else
            free(rr);
    }
    note_orphans(co, l, norphans, oldest);
}

/* Tests only (failpoint coord-sweep-hold): a listing judged HOLD_MS after
 * it arrived, to make "a listing older than the END of a transaction it
 * lists" happen on purpose.  Held listings are freed by resolver_stop. */
#define HOLD_MS 2000

typedef struct held_listing {
    coord *co;
    plink *link;
    proto_list_entry *ent; /* gids point into strs */
    uint32_t n;
    char *strs;
    struct event *ev;
    struct held_listing *next;
} held_listing;

static held_listing *held_listings;

static void
held_free(held_listing *h)
{
    for (held_listing **pp = &held_listings; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    event_free(h->ev);
    free(h->ent);
    free(h->strs);
    free(h);
}

static void
held_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    held_listing *h = arg;
    log_log("judging a listing of %u branch(es) from \"%s\" held for %d ms", h->n,
            plink_name(h->link), HOLD_MS);
    if (plink_ready(h->link))
        judge_listing(h->co, h->link, h->ent, h->n);
    held_free(h);
}

static void
hold_listing(coord *co, plink *l, const proto_list_reply *lr)
{
    held_listing *h = calloc(1, sizeof(*h));
    size_t len = 0;
    for (uint32_t i = 0; i < lr->n; i++)
        len += strlen(lr->entries[i].gid) + 1;
    if (h == NULL || (h->ent = calloc(lr->n + 1, sizeof(*h->ent))) == NULL ||
        (h->strs = malloc(len + 1)) == NULL || (h->ev = evtimer_new(co->base, held_cb, h)) == NULL)
        log_fatal("out of memory");
    char *p = h->strs;
    for (uint32_t i = 0; i < lr->n; i++) {
        h->ent[i] = lr->entries[i];
        h->ent[i].gid = strcpy(p, lr->entries[i].gid);
        p += strlen(p) + 1;
    }
    h->co = co;
    h->link = l;
    h->n = lr->n;
    h->next = held_listings;
    held_listings = h;
    log_log("holding a listing of %u branch(es) from \"%s\" for %d ms", lr->n, plink_name(l),
            HOLD_MS);
    struct timeval tv = {HOLD_MS / 1000, (HOLD_MS % 1000) * 1000};
    evtimer_add(h->ev, &tv);
}

static void
list_reply(void *arg, const frame_view *f, bool final)
{
    rctx *r = arg;
    if (!final)
        return;
    proto_list_reply lr;
    if (f && f->type == MSG_LIST_REPLY && proto_get_list_reply(f, &lr)) {
        if (FAILPOINT("coord-sweep-hold") == FP_ERROR)
            hold_listing(r->co, r->link, &lr);
        else
            judge_listing(r->co, r->link, lr.entries, lr.n);
        proto_list_reply_clear(&lr);
    }
    free(r);
}

/* Job 1 for one ready link: COMMIT PREPARED to each of its branches of a
 * pending commit not live in the table. */
static void
finish_commits(coord *co, plink *l)
{
    for (clog_pending *p = clog_pending_first(co->log); p; p = clog_pending_next(p)) {
        const char *gid = clog_pending_gid(p);
        if (live_in_table(co, gid))
            continue;
        for (int i = 0; i < clog_pending_nbranches(p); i++) {
            const clog_branch *b = clog_pending_branch(p, i);
            if (b->result != BRANCH_PENDING || b->inflight ||
                strcmp(b->participant, plink_name(l)) != 0)
                continue;
            char name[BRANCH_MAX];
            coord_branch_name(name, sizeof(name), gid, b->participant);
            rctx *r = rctx_new(co, l, RJ_COMMIT, gid);
            if (plink_send_finish(l, name, true, b->xid, commit_reply, r)) {
                clog_pending_set_inflight(p, i, true);
                co->stats.resolver[CR_COMMIT]++;
            } else {
                free(r);
            }
        }
    }
    /* a pending commit naming a participant that is no longer configured
     * cannot be finished here: say so once per pass */
    for (clog_pending *p = clog_pending_first(co->log); p; p = clog_pending_next(p))
        for (int i = 0; i < clog_pending_nbranches(p); i++) {
            const clog_branch *b = clog_pending_branch(p, i);
            if (b->result == BRANCH_PENDING && plink_find(co, b->participant) == NULL)
                log_warn("transaction %s: participant \"%s\" is not configured; its branch "
                         "cannot be committed",
                         clog_pending_gid(p), b->participant);
        }
}

/* Both jobs for one ready link. */
static void
resolve_link(coord *co, plink *l)
{
    if (!plink_ready(l))
        return;
    if (FAILPOINT("coord-resolver-pass") == FP_ERROR)
        return; /* tests: let in-doubt transactions pile up */
    if (!ha_may_serve(co))
        return; /* [ha]: the lease is over and no standby vouches: not ours to finish */
    finish_commits(co, l);
    char prefix[GID_MAX];
    snprintf(prefix, sizeof(prefix), "dtx:%s:", co->conf.name);
    rctx *r = rctx_new(co, l, RJ_LIST, NULL);
    if (plink_send_list(l, prefix, list_reply, r))
        co->stats.resolver[CR_LIST]++;
    else
        free(r);
}

static void
resolver_pass(coord *co)
{
    for (int i = 0; i < co->nlinks; i++)
        resolve_link(co, co->links[i]);
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    coord *co = arg;
    resolver_pass(co);
}

void
resolver_link_ready(coord *co, plink *l)
{
    if (co->log && co->sweep_timer)
        resolve_link(co, l);
}

void
resolver_start(coord *co)
{
    struct timeval tv = {co->conf.sweep_interval_ms / 1000,
                         (co->conf.sweep_interval_ms % 1000) * 1000};
    co->sweep_timer = event_new(co->base, -1, EV_PERSIST, sweep_cb, co);
    event_add(co->sweep_timer, &tv);
    free(orphans);
    orphans = calloc((size_t)co->nlinks + 1, sizeof(*orphans));
    co->kick_timer = evtimer_new(co->base, sweep_cb, co);
}

void
resolver_stop(coord *co)
{
    while (held_listings)
        held_free(held_listings);
    free(orphans);
    orphans = NULL;
    if (co->sweep_timer)
        event_free(co->sweep_timer);
    co->sweep_timer = NULL;
    if (co->kick_timer)
        event_free(co->kick_timer);
    co->kick_timer = NULL;
}

void
resolver_set_interval(coord *co)
{
    if (co->sweep_timer == NULL)
        return;
    struct timeval tv = {co->conf.sweep_interval_ms / 1000,
                         (co->conf.sweep_interval_ms % 1000) * 1000};
    event_del(co->sweep_timer);
    event_add(co->sweep_timer, &tv);
}

void
resolver_kick(coord *co)
{
    if (co->kick_timer && !evtimer_pending(co->kick_timer, NULL)) {
        struct timeval tv = {0, 200 * 1000};
        evtimer_add(co->kick_timer, &tv);
    }
}
