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
#include "coord.h"
#include "failpoint.h"
#include "log.h"

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
    if (!clog_pending_finished(p))
        return;
    if (clog_pending_heuristic(p)) {
        char what[512];
        log_error("transaction %s: finished with a heuristic outcome: %s", p->gid,
                  clog_pending_describe(p, what, sizeof(what)));
    } else {
        log_log("transaction %s: committed on every participant", p->gid);
    }
    if (FAILPOINT("coord-recovery-partial") == FP_ERROR)
        return;
    clog_end(co->log, p->gid);
}

static void
commit_reply(void *arg, const frame_view *f, bool final)
{
    rctx *r = arg;
    if (!final)
        return;
    clog_pending *p = clog_find_pending(r->co->log, r->gid);
    clog_branch *b = NULL;
    for (int i = 0; p && i < p->nbranches; i++)
        if (strcmp(p->branches[i].participant, plink_name(r->link)) == 0)
            b = &p->branches[i];
    proto_done d;
    if (b) {
        b->inflight = false;
        if (f && f->type == MSG_DONE && proto_get_done(f, &d) && b->result == BRANCH_PENDING) {
            if (d.status == DONE_OK) {
                b->result = BRANCH_COMMITTED;
            } else if (d.status == DONE_NOT_FOUND && d.xact_status == XACT_COMMITTED) {
                b->result = BRANCH_COMMITTED;
            } else if (d.status == DONE_NOT_FOUND && d.xact_status == XACT_ABORTED) {
                log_error("heuristic outcome: branch %s:%s was rolled back by someone else, but "
                          "the decision was COMMIT",
                          r->gid, b->participant);
                b->result = BRANCH_ROLLED_BACK;
            } else if (d.status == DONE_NOT_FOUND) {
                log_error("heuristic outcome: transaction %s: branch on \"%s\" does not exist and "
                          "its outcome cannot be proven (transaction id %llu)",
                          r->gid, b->participant, (unsigned long long)b->xid);
                b->result = BRANCH_VANISHED;
            } else if (d.status != DONE_BUSY) {
                log_warn("transaction %s: COMMIT PREPARED on \"%s\" failed: %s", r->gid,
                         b->participant, d.message ? d.message : proto_done_status_name(d.status));
            }
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
    if (f && f->type == MSG_DONE && proto_get_done(f, &d)) {
        if (d.status == DONE_OK)
            log_log("rolled back orphaned branch %s on \"%s\"", r->gid, plink_name(r->link));
        else if (d.status != DONE_NOT_FOUND && d.status != DONE_BUSY)
            log_warn("ROLLBACK PREPARED of %s on \"%s\" failed: %s", r->gid, plink_name(r->link),
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

static void
list_reply(void *arg, const frame_view *f, bool final)
{
    rctx *r = arg;
    if (!final)
        return;
    proto_list_reply lr;
    if (f && f->type == MSG_LIST_REPLY && proto_get_list_reply(f, &lr)) {
        for (uint32_t i = 0; i < lr.n; i++) {
            char gid[GID_MAX];
            const char *branch = lr.entries[i].gid;
            const char *suffix = strrchr(branch, ':');
            if (!branch_to_gid(branch, gid, sizeof(gid)) || suffix == NULL ||
                strcmp(suffix + 1, plink_name(r->link)) != 0)
                continue; /* not a branch this link's name would produce */
            if (live_in_table(r->co, gid) || clog_find_pending(r->co->log, gid))
                continue;
            /* A listing is stale by now: a transaction may have committed
             * and ended since.  Roll back only what has no COMMIT record. */
            const char *detail;
            proto_outcome o = clog_outcome_of(r->co->log, gid, &detail);
            if (o != OUTCOME_ABORTED && o != OUTCOME_NOT_KNOWN)
                continue;
            rctx *rr = rctx_new(r->co, r->link, RJ_ROLLBACK, gid);
            if (!plink_send_finish(r->link, branch, false, lr.entries[i].xid, rollback_reply, rr))
                free(rr);
        }
        proto_list_reply_clear(&lr);
    }
    free(r);
}

/* Both jobs for one ready link. */
static void
resolve_link(coord *co, plink *l)
{
    if (!plink_ready(l))
        return;
    if (FAILPOINT("coord-resolver-pass") == FP_ERROR)
        return; /* tests: let in-doubt transactions pile up */
    for (clog_pending *p = clog_pending_list(co->log); p; p = p->next) {
        if (live_in_table(co, p->gid))
            continue;
        for (int i = 0; i < p->nbranches; i++) {
            clog_branch *b = &p->branches[i];
            if (b->result != BRANCH_PENDING || b->inflight ||
                strcmp(b->participant, plink_name(l)) != 0)
                continue;
            char name[BRANCH_MAX];
            coord_branch_name(name, sizeof(name), p->gid, b->participant);
            rctx *r = rctx_new(co, l, RJ_COMMIT, p->gid);
            if (plink_send_finish(l, name, true, b->xid, commit_reply, r))
                b->inflight = true;
            else
                free(r);
        }
    }
    /* a pending commit naming a participant that is no longer configured
     * cannot be finished here: say so once per pass */
    for (clog_pending *p = clog_pending_list(co->log); p; p = p->next)
        for (int i = 0; i < p->nbranches; i++)
            if (p->branches[i].result == BRANCH_PENDING &&
                coord_find_link(co, p->branches[i].participant) == NULL)
                log_warn("transaction %s: participant \"%s\" is not configured; its branch "
                         "cannot be committed",
                         p->gid, p->branches[i].participant);
    char prefix[GID_MAX];
    snprintf(prefix, sizeof(prefix), "dtx:%s:", co->conf.name);
    rctx *r = rctx_new(co, l, RJ_LIST, NULL);
    if (!plink_send_list(l, prefix, list_reply, r))
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
    if (co->log)
        resolve_link(co, l);
}

void
resolver_start(coord *co)
{
    struct timeval tv = {co->conf.sweep_interval_ms / 1000,
                         (co->conf.sweep_interval_ms % 1000) * 1000};
    co->sweep_timer = event_new(co->base, -1, EV_PERSIST, sweep_cb, co);
    event_add(co->sweep_timer, &tv);
    co->kick_timer = evtimer_new(co->base, sweep_cb, co);
}

void
resolver_stop(coord *co)
{
    if (co->sweep_timer)
        event_free(co->sweep_timer);
    co->sweep_timer = NULL;
    if (co->kick_timer)
        event_free(co->kick_timer);
    co->kick_timer = NULL;
}

void
resolver_kick(coord *co)
{
    if (co->kick_timer && !evtimer_pending(co->kick_timer, NULL)) {
        struct timeval tv = {0, 200 * 1000};
        evtimer_add(co->kick_timer, &tv);
    }
}
