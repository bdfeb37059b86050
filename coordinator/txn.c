/*
 * txn.c — the transaction table and the state machine of one transaction.
 *
 * A transaction (txn) is created by BEGIN or ONESHOT, gets a gid
 * "dtx:<name>:<epoch>:<seq>" (docs/design.md section 3) and lives in the table
 * (gid -> txn) until every request it sent has been answered and its outcome
 * is settled.  It has one branch per participant it touched; the branch's
 * name in PostgreSQL is "<gid>:<participant>".
 *
 * States (txn_set_state is the only function that changes them; the diagram
 * is docs/state-machines.md):
 *
 *   ACTIVE --statement error/timeout--> FAILED --COMMIT/ROLLBACK--+
 *     | COMMIT, 0 branches: COMMITTED                             |
 *     | COMMIT, 1 branch -------> ONEPHASE --DONE--> FINISHED     |
 *     | COMMIT, >1 branches / ONESHOT                             v
 *     +--(no free slot)--> QUEUED --timeout----------------> ABORTING --> FINISHED
 *     |                      | slots granted                  ^
 *     +----------------------+-> PREPARING --any NO/timeout---+
 *                                  | all YES (or read-only)
 *                                  v
 *                               LOGGING  (COMMIT record appended, waiting for fsync)
 *                                  | durable: the decision exists
 *                                  v
 *                              COMMITTING (COMMIT PREPARED to the YES branches)
 *                                  | all answered: END record (or hand-off to the resolver)
 *                                  v
 *                               FINISHED
 *
 * Invariants
 *  - No COMMIT PREPARED is sent before the COMMIT record is durable.
 *  - Abort needs no log record (presumed abort): an abort decision is sent to
 *    the client at once; prepared branches are rolled back as their votes
 *    arrive, and whatever cannot be reached is left to the resolver, which
 *    rolls back every prepared branch of ours without a COMMIT record.
 *  - `outstanding` counts requests in flight; a txn is freed only when it is
 *    FINISHED and nothing is outstanding, so no callback can outlive it.
 *  - The client is answered exactly once per request; a txn whose client
 *    went away (detached) goes on to its decision and never replies.
 *  - statement_timeout: an EXEC not answered in time is answered with 57014
 *    at once and the transaction becomes FAILED; its branch is marked
 *    `abandoned` (late RESULTs are dropped) and the participant is sent
 *    CANCEL.  The WORK stays outstanding: its late DONE leaves the branch
 *    OPEN (rolled back when the client ends the transaction, or at once if
 *    that already happened) or GONE (the participant rolled it back).  So a
 *    ROLLBACK is answered without waiting for the statement.
 *  - The client is told COMMITTED after phase two has been answered by every
 *    branch (so it reads its own writes), or — when a branch cannot be
 *    reached — at once, since the durable decision is what makes it so.
 *  - Slots (slotq.h): no PREPARE round starts before the transaction holds
 *    one slot of every participant it prepares on, taken in one step;
 *    until then it is QUEUED and has sent nothing new.  A branch holds its
 *    slot (`slot`) until nothing of it can be prepared any more: it became
 *    GONE (answered read-only or with an error, rolled back, committed),
 *    or UNKNOWN (the resolver's now), or the transaction is freed.
 *    prepare_timeout runs from the COMMIT (or ONESHOT), queue included.
 */
#include "txn.h"

#include "clock.h"
#include "clog.h"
#include "failpoint.h"
#include "ha.h"
#include "log.h"
#include "plink.h"
#include "slotq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum txn_state {
    TXN_ACTIVE,
    TXN_FAILED,
    TXN_QUEUED, /* waiting for prepared-transaction slots (slotq.h) */
    TXN_PREPARING,
    TXN_LOGGING,
    TXN_COMMITTING,
    TXN_ONEPHASE,
    TXN_ABORTING,
    TXN_FINISHED,
} txn_state;

static const char *const txn_state_names[] = {
    "active",     "failed",   "queued",   "preparing", "logging",
    "committing", "onephase", "aborting", "finished",
};

typedef enum txn_branch_state {
    TB_UNUSED,  /* participant not touched */
    TB_OPEN,    /* transaction open at the participant, idle */
    TB_WORKING, /* statements (maybe ending in PREPARE/COMMIT) in flight */
    TB_PREPARED,
    TB_ENDING,  /* COMMIT PREPARED / ROLLBACK PREPARED / ROLLBACK in flight */
    TB_GONE,    /* nothing of it left at the participant */
    TB_UNKNOWN, /* link lost while it may have prepared: the resolver's */
} txn_branch_state;

typedef struct txn_branch {
    txn *t;
    plink *link;
    txn_branch_state state; /* tb_set_state changes it */
    uint64_t xid;
    uint8_t result; /* clog_branch_result of its COMMIT PREPARED (phase two) */
    bool abandoned; /* its EXEC timed out: the client was answered already */
    bool slot;      /* holds one of its participant's slots (slotq.h) */
    bool want_slot; /* QUEUED: waits for one */
    wbuf results;   /* ONESHOT: RESULT frames, in order */
    size_t res_pos;
} txn_branch;

struct txn {
    coord *co;
    char gid[GID_MAX];
    txn_state state;
    const txn_owner_ops *ops;
    void *owner;  /* NULL once detached (or answered its outcome) */
    bool replied; /* the current COMMIT/ROLLBACK/ONESHOT got its OUTCOME */
    bool oneshot;
    bool timed_out;
    int outstanding;
    int nbr;
    txn_branch *br;
    uint16_t *stmt_branch; /* ONESHOT: branch index of each statement */
    uint16_t nstmts;
    wbuf err; /* first error, an encoded ERROR frame (empty: none) */
    uint64_t start_ms;
    struct event *timer;
    struct event *stmt_timer; /* statement_timeout of the EXEC in flight */
    txn_branch *exec_br;      /* the branch of the EXEC in flight */
    bool exec_result_sent;    /* its RESULT went to the client already */
    bool marker_pending;      /* ONEPHASE record not yet durable */
    int op_outcome;           /* one-phase outcome waiting for the marker, or -1 */
    int op_br;                /* ONEPHASE: index of the one branch */
    /* for /metrics: when the commit started (ns, 0: not yet), its prepare
     * round, its COMMIT record; what kind of commit it became */
    uint64_t commit_ns, prepare_ns, logged_ns;
    bool onephase, readonly;
    char client[260]; /* the client's certificate name, for the participants' [roles] */
    slotq_waiter sw;  /* QUEUED: its place in the slot queue */
    wbuf queued_body; /* QUEUED ONESHOT: its statements, as a ONESHOT frame */
    txn *hnext;
};

static void txn_decide(txn *t);
static void txn_free(txn *t);
static void txn_abort(txn *t);
static void txn_maybe_free(txn *t);
static void onephase_maybe_finish(txn *t);
static void onephase_reply(void *arg, const frame_view *f, bool final);
static void txn_queued_timeout(txn *t);
static void txn_note_error(txn *t, const char *participant, const proto_done *d);

/* ---- table --------------------------------------------------------------- */

void
txn_table_init(coord *co, const txn_events *ev)
{
    co->tab_size = 4096;
    co->tab = calloc(co->tab_size, sizeof(txn *));
    if (co->tab == NULL)
        log_fatal("out of memory");
    co->txn_ev = ev;
}

void
txn_table_stop_timers(coord *co)
{
    for (size_t h = 0; co->tab && h < co->tab_size; h++)
        for (txn *t = co->tab[h]; t; t = t->hnext) {
            if (t->timer)
                event_del(t->timer);
            if (t->stmt_timer)
                event_del(t->stmt_timer);
        }
}

void
txn_table_free(coord *co)
{
    for (size_t h = 0; co->tab && h < co->tab_size; h++)
        while (co->tab[h])
            txn_free(co->tab[h]); /* unlinks it */
    free(co->tab);
    co->tab = NULL;
}

txn *
txn_lookup(coord *co, const char *gid)
{
    for (txn *t = co->tab[coord_gid_hash(gid, co->tab_size)]; t; t = t->hnext)
        if (strcmp(t->gid, gid) == 0)
            return t;
    return NULL;
}

static void
table_add(txn *t)
{
    size_t h = coord_gid_hash(t->gid, t->co->tab_size);
    t->hnext = t->co->tab[h];
    t->co->tab[h] = t;
    t->co->ntxn++;
}

static void
table_remove(txn *t)
{
    txn **pp = &t->co->tab[coord_gid_hash(t->gid, t->co->tab_size)];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = t->hnext;
        t->co->ntxn--;
    }
}

/* ---- state --------------------------------------------------------------- */

/* The transitions the diagram at the top allows: txn_next[from] has bit
 * `to` set.  Anything else is a bug that must not go on quietly. */
#define TS(s) (1u << (s))
static const unsigned txn_next[] = {
    [TXN_ACTIVE] = TS(TXN_FAILED) | TS(TXN_QUEUED) | TS(TXN_PREPARING) | TS(TXN_ONEPHASE) |
                   TS(TXN_ABORTING) | TS(TXN_FINISHED),
    [TXN_FAILED] = TS(TXN_ABORTING),
    [TXN_QUEUED] = TS(TXN_PREPARING) | TS(TXN_ABORTING),
    [TXN_PREPARING] = TS(TXN_LOGGING) | TS(TXN_ABORTING) | TS(TXN_FINISHED),
    [TXN_LOGGING] = TS(TXN_COMMITTING) | TS(TXN_FINISHED),
    [TXN_COMMITTING] = TS(TXN_FINISHED),
    [TXN_ONEPHASE] = TS(TXN_ABORTING) | TS(TXN_FINISHED),
    [TXN_ABORTING] = TS(TXN_FINISHED),
    [TXN_FINISHED] = 0,
};

static void
txn_set_state(txn *t, txn_state st)
{
    if ((unsigned)st >= sizeof(txn_next) / sizeof(txn_next[0]) ||
        (txn_next[t->state] & TS(st)) == 0)
        log_panic("transaction %s: state %s cannot become %s", t->gid, txn_state_names[t->state],
                  (unsigned)st < sizeof(txn_next) / sizeof(txn_next[0]) ? txn_state_names[st]
                                                                        : "an unknown state");
    log_debug("transaction %s: %s -> %s", t->gid, txn_state_names[t->state], txn_state_names[st]);
    t->state = st;
    if (st != TXN_PREPARING && st != TXN_QUEUED && t->timer)
        evtimer_del(t->timer);
}

/* Branch states (drawn in docs/state-machines.md):
 *
 *   UNUSED --WORK--> WORKING --DONE OK--> OPEN --WORK--> WORKING
 *                       | DONE PREPARED      | ROLLBACK
 *                       v                    v
 *                    PREPARED --FINISH--> ENDING --DONE--> GONE
 *   (a request that could not be sent, an error: GONE; a lost link or an
 *    unclear answer where the branch may be prepared: UNKNOWN, the
 *    resolver's)
 */
static const unsigned tb_next[] = {
    [TB_UNUSED] = TS(TB_WORKING) | TS(TB_GONE),
    [TB_OPEN] = TS(TB_WORKING) | TS(TB_ENDING) | TS(TB_GONE),
    [TB_WORKING] = TS(TB_OPEN) | TS(TB_PREPARED) | TS(TB_GONE) | TS(TB_UNKNOWN),
    [TB_PREPARED] = TS(TB_ENDING) | TS(TB_UNKNOWN),
    [TB_ENDING] = TS(TB_GONE) | TS(TB_UNKNOWN),
    [TB_GONE] = 0,
    [TB_UNKNOWN] = 0,
};

static const char *const tb_state_names[] = {
    "unused", "open", "working", "prepared", "ending", "gone", "unknown",
};

static void
tb_set_state(txn_branch *b, txn_branch_state st)
{
    if ((unsigned)st >= sizeof(tb_next) / sizeof(tb_next[0]) || (tb_next[b->state] & TS(st)) == 0)
        log_panic("transaction %s: branch on \"%s\": state %s cannot become %s", b->t->gid,
                  plink_name(b->link), tb_state_names[b->state],
                  (unsigned)st < sizeof(tb_next) / sizeof(tb_next[0]) ? tb_state_names[st]
                                                                      : "an unknown state");
    b->state = st;
    if (b->slot && (st == TB_GONE || st == TB_UNKNOWN)) {
        /* nothing of it can be prepared by this transaction any more */
        b->slot = false;
        slotq_release(b->t->co->slots, (int)(b - b->t->br));
    }
}
#undef TS

const char *
txn_gid(const txn *t)
{
    return t->gid;
}

bool
txn_is_finished(const txn *t)
{
    return t->state == TXN_FINISHED;
}

bool
txn_decided_commit(const txn *t)
{
    return t->state == TXN_COMMITTING;
}

/* "a,b": the participants of t's branches; the caller frees it. */
static char *
txn_participants(const txn *t)
{
    size_t len = 1;
    for (int i = 0; i < t->nbr; i++)
        if (t->br[i].state != TB_UNUSED)
            len += strlen(plink_name(t->br[i].link)) + 1;
    char *s = calloc(1, len);
    for (int i = 0; s && i < t->nbr; i++)
        if (t->br[i].state != TB_UNUSED) {
            if (s[0])
                strcat(s, ",");
            strcat(s, plink_name(t->br[i].link));
        }
    return s;
}

bool
txn_told_aborted(const txn *t)
{
    return t->replied && t->state == TXN_ABORTING;
}

static void
txn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    txn *t = arg;
    if (t->state == TXN_QUEUED) {
        txn_queued_timeout(t);
        return;
    }
    if (t->state != TXN_PREPARING)
        return;
    log_with(&(log_fields){.gid = t->gid}, LOG_LVL_LOG,
             "transaction %s: prepare timed out after %lld ms; aborting", t->gid,
             (long long)t->co->conf.prepare_timeout_ms);
    t->timed_out = true;
    txn_note_error(t, NULL,
                   &(proto_done){.sqlstate = "57014",
                                 .message = "prepare timed out",
                                 .detail = "Not every participant voted within prepare_timeout."});
    txn_abort(t);
}

txn *
txn_begin(coord *co, const txn_owner_ops *ops, void *owner, const char *client_name, uint64_t seq)
{
    txn *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->br = calloc((size_t)co->nlinks, sizeof(txn_branch));
    if (co->nlinks && t->br == NULL) {
        free(t);
        return NULL;
    }
    t->co = co;
    snprintf(t->client, sizeof(t->client), "%s", client_name ? client_name : "");
    t->ops = ops;
    t->owner = owner;
    t->nbr = co->nlinks;
    for (int i = 0; i < t->nbr; i++) {
        t->br[i].t = t;
        t->br[i].link = co->links[i];
        wbuf_init(&t->br[i].results);
    }
    wbuf_init(&t->err);
    wbuf_init(&t->queued_body);
    t->sw.arg = t;
    coord_gid_format(co, seq ? seq : ++co->next_seq, t->gid, sizeof(t->gid));
    t->state = TXN_ACTIVE;
    t->op_outcome = -1;
    t->start_ms = clock_mono_ms();
    t->timer = evtimer_new(co->base, txn_timeout_cb, t);
    table_add(t);
    return t;
}

static void
txn_free(txn *t)
{
    table_remove(t);
    slotq_cancel(t->co->slots, &t->sw);
    for (int i = 0; i < t->nbr; i++) {
        wbuf_free(&t->br[i].results);
        if (t->br[i].slot)
            slotq_release(t->co->slots, i);
    }
    wbuf_free(&t->err);
    wbuf_free(&t->queued_body);
    if (t->timer)
        event_free(t->timer);
    if (t->stmt_timer)
        event_free(t->stmt_timer);
    free(t->stmt_branch);
    free(t->br);
    free(t);
}

static void
txn_maybe_free(txn *t)
{
    if (t->state == TXN_FINISHED && t->outstanding == 0 && (t->owner == NULL || t->replied))
        txn_free(t);
}

/* Count the outcome by kind, and the commit's latency (ops.c's metrics). */
static void
txn_count(txn *t, proto_outcome o)
{
    coord_stats *st = &t->co->stats;
    coord_outcome co = o == OUTCOME_COMMITTED   ? CO_COMMITTED
                       : o == OUTCOME_ABORTED   ? CO_ABORTED
                       : o == OUTCOME_HEURISTIC ? CO_HEURISTIC
                                                : CO_UNKNOWN;
    coord_kind k = t->readonly   ? CK_READONLY
                   : t->onephase ? CK_ONEPHASE
                   : t->oneshot  ? CK_ONESHOT
                                 : CK_INTERACTIVE;
    st->txns[co][k]++;
    if (t->commit_ns)
        metrics_hist_observe(&st->commit_latency, (clock_mono_ns() - t->commit_ns) / 1000);
}

/* Tell the client the outcome (once), with the first error before it. */
static void
txn_reply(txn *t, proto_outcome o)
{
    if (t->replied)
        return;
    t->replied = true;
    txn_count(t, o);
    if (o == OUTCOME_COMMITTED)
        t->co->n_committed++;
    else if (o == OUTCOME_ABORTED)
        t->co->n_aborted++;
    else if (o != OUTCOME_HEURISTIC) /* counted when its END is logged */
        t->co->n_unknown++;
    clog_remember(t->co->log, t->gid, o);
    if (t->owner == NULL)
        return;
    void *owner = t->owner;
    t->owner = NULL;
    if (t->oneshot) {
        /* results in statement order, as far as each branch got */
        for (uint16_t i = 0; i < t->nstmts; i++) {
            txn_branch *b = &t->br[t->stmt_branch[i]];
            if (b->res_pos >= b->results.len)
                continue;
            frame_view f;
            size_t used;
            if (frame_decode(b->results.data + b->res_pos, b->results.len - b->res_pos, UINT32_MAX,
                             &f, &used) != FRAME_OK)
                continue;
            t->ops->send(owner, b->results.data + b->res_pos, used);
            b->res_pos += used;
        }
    }
    if (o != OUTCOME_COMMITTED && t->err.len)
        t->ops->send(owner, t->err.data, t->err.len);
    t->ops->over(owner, t, o);
}

static void
txn_note_error(txn *t, const char *participant, const proto_done *d)
{
    if (t->err.len)
        return;
    proto_error e = {.tag = 0,
                     .sqlstate = d->sqlstate ? d->sqlstate : "XX000",
                     .message = d->message ? d->message : "unknown error",
                     .detail = d->detail,
                     .hint = d->hint,
                     .participant = participant};
    if (!proto_put_error(&t->err, &e))
        wbuf_reset(&t->err);
}

static void
txn_note_lost(txn *t, const char *participant)
{
    if (t->err.len)
        return;
    char msg[160];
    snprintf(msg, sizeof(msg), "connection to participant \"%s\" lost", participant);
    proto_error e = {.sqlstate = "08006", .message = msg, .participant = participant};
    if (!proto_put_error(&t->err, &e))
        wbuf_reset(&t->err);
}

/* An ERROR frame for the client now (a statement's answer). */
static void txn_send_error(txn *t, const char *sqlstate, const char *participant, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

static void
txn_send_error(txn *t, const char *sqlstate, const char *participant, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    proto_error e = {.sqlstate = sqlstate, .message = msg, .participant = participant};
    t->ops->send_err(t->owner, &e);
}

/* ---- phase-two / rollback replies --------------------------------------- */

/* One branch's answer to COMMIT PREPARED, ROLLBACK PREPARED or ROLLBACK. */
static void
end_answer(txn *t, txn_branch *b, const frame_view *f)
{
    proto_done d;
    if (f == NULL || f->type != MSG_DONE || !proto_get_done(f, &d)) {
        tb_set_state(b, TB_UNKNOWN); /* the link was lost: the resolver's */
        return;
    }
    if (t->state == TXN_COMMITTING) {
        b->result = d.status == DONE_READONLY
                        ? BRANCH_COMMITTED
                        : clog_commit_answer(t->gid, plink_name(b->link), b->xid, &d);
        if (b->result != BRANCH_PENDING) {
            tb_set_state(b, TB_GONE);
            return;
        }
    } else if (d.status == DONE_OK || d.status == DONE_READONLY || d.status == DONE_NOT_FOUND) {
        tb_set_state(b, TB_GONE); /* rolled back, or gone already */
        return;
    }
    log_report_with(
        &(log_fields){.gid = t->gid, .participant = plink_name(b->link)}, LOG_LVL_WARNING,
        d.sqlstate, d.detail, d.hint,
        "transaction %s: %s on participant \"%s\" answered %s%s%s; the resolver will retry", t->gid,
        t->state == TXN_COMMITTING ? "COMMIT PREPARED" : "rollback", plink_name(b->link),
        proto_done_status_name(d.status), d.message ? ": " : "", d.message ? d.message : "");
    tb_set_state(b, TB_UNKNOWN);
}

/* The error a client is told before OUTCOME HEURISTIC: b did not commit by
 * our hand.  Never reported as a success; STATUS answers HEURISTIC OUTCOME
 * from now on. */
static void
note_heuristic(txn *t, const txn_branch *b)
{
    const char *pname = plink_name(b->link);
    char msg[256];
    snprintf(msg, sizeof(msg),
             b->result == BRANCH_ROLLED_BACK
                 ? "heuristic outcome: the branch on participant \"%s\" was rolled back by "
                   "someone else, but the decision was COMMIT"
                 : "heuristic outcome: the branch on participant \"%s\" does not exist and its "
                   "outcome cannot be proven",
             pname);
    proto_error e = {.sqlstate = "40003",
                     .message = msg,
                     .detail = "Other branches of the transaction committed.",
                     .hint = "Ask \"dtx status\" for the outcome of every branch.",
                     .participant = pname};
    wbuf_reset(&t->err);
    if (!proto_put_error(&t->err, &e))
        wbuf_reset(&t->err);
}

/* Phase two is answered by every branch it was sent to: log END when every
 * branch is finished (or leave the rest to the resolver), and tell the
 * client. */
static void
commit_answered(txn *t)
{
    bool all = true;
    const txn_branch *heuristic = NULL;
    for (int i = 0; i < t->nbr; i++) {
        txn_branch *b = &t->br[i];
        if (b->state == TB_UNKNOWN || b->state == TB_PREPARED)
            all = false;
        /* what the resolver need not do again (and END must say) */
        if (b->result != BRANCH_PENDING)
            clog_set_branch_result(t->co->log, t->gid, plink_name(b->link), b->result);
        if (heuristic == NULL && (b->result == BRANCH_ROLLED_BACK || b->result == BRANCH_VANISHED))
            heuristic = b;
    }
    if (all && heuristic) { /* as the resolver says it (docs/failure-behaviour.md) */
        clog_pending *p = clog_find_pending(t->co->log, t->gid);
        char what[512];
        if (p)
            log_with(&(log_fields){.gid = t->gid}, LOG_LVL_ERROR,
                     "transaction %s: finished with a heuristic outcome: %s", t->gid,
                     clog_pending_describe(p, what, sizeof(what)));
    }
    if (all) {
        if (FAILPOINT("coord-before-end") == FP_ERROR)
            log_log("failpoint: END record not written for %s", t->gid);
        else
            clog_end(t->co->log, t->gid);
    } else {
        t->co->txn_ev->commit_unfinished(t->co);
    }
    if (heuristic)
        note_heuristic(t, heuristic);
    txn_reply(t, heuristic ? OUTCOME_HEURISTIC : OUTCOME_COMMITTED);
}

static void
end_reply(void *arg, const frame_view *f, bool final)
{
    txn_branch *b = arg;
    txn *t = b->t;
    if (!final)
        return;
    t->outstanding--;
    end_answer(t, b, f);
    if (t->outstanding > 0)
        return;
    if (t->state == TXN_COMMITTING)
        commit_answered(t);
    txn_set_state(t, TXN_FINISHED);
    txn_maybe_free(t);
}

static void
branch_finish(txn_branch *b, bool commit)
{
    txn *t = b->t;
    char name[BRANCH_MAX];
    coord_branch_name(name, sizeof(name), t->gid, plink_name(b->link));
    if (plink_send_finish(b->link, name, commit, b->xid, end_reply, b)) {
        tb_set_state(b, TB_ENDING);
        t->outstanding++;
    } else {
        tb_set_state(b, TB_UNKNOWN); /* resolver */
    }
}

static void
branch_rollback_open(txn_branch *b)
{
    txn *t = b->t;
    char name[BRANCH_MAX];
    coord_branch_name(name, sizeof(name), t->gid, plink_name(b->link));
    if (plink_send_work(b->link, name, WORK_ROLLBACK, NULL, 0, t->client, end_reply, b)) {
        tb_set_state(b, TB_ENDING);
        t->outstanding++;
    } else {
        /* link down: the participant rolled back what it had of ours */
        tb_set_state(b, TB_GONE);
    }
}

/* Roll back everything that can be; reply ABORTED now. */
static void
txn_abort(txn *t)
{
    txn_set_state(t, TXN_ABORTING);
    txn_reply(t, OUTCOME_ABORTED);
    for (int i = 0; i < t->nbr; i++) {
        txn_branch *b = &t->br[i];
        if (b->state == TB_OPEN)
            branch_rollback_open(b);
        else if (b->state == TB_PREPARED)
            branch_finish(b, false);
        /* WORKING: handled when its reply arrives */
    }
    if (t->outstanding == 0) {
        txn_set_state(t, TXN_FINISHED);
        txn_maybe_free(t);
    }
}

static void
commit_durable(void *arg)
{
    txn *t = arg;
    metrics_hist_observe(&t->co->stats.durable_wait, (clock_mono_ns() - t->logged_ns) / 1000);
    if (t->co->tearing_down) {
        /* exiting, the links gone: phase two is left to recovery at the
         * next start, as for any decision not finished at exit */
        txn_set_state(t, TXN_FINISHED);
        txn_maybe_free(t);
        return;
    }
    /* error: no COMMIT PREPARED at all, phase two is left to the resolver;
     * so with [ha] once the lease is over and no synchronous standby
     * vouches for this primary (whoever leads next finishes it) */
    bool skip = FAILPOINT("coord-after-commit-durable") == FP_ERROR || !ha_may_serve(t->co);
    txn_set_state(t, TXN_COMMITTING);
    int sent = 0;
    for (int i = 0; i < t->nbr; i++) {
        txn_branch *b = &t->br[i];
        if (b->state != TB_PREPARED)
            continue;
        if (skip || (sent == 1 && FAILPOINT("coord-commit-partial") == FP_ERROR)) {
            tb_set_state(b, TB_UNKNOWN);
            continue;
        }
        branch_finish(b, true);
        sent++;
    }
    if (t->outstanding == 0) {
        /* nothing could be sent: the resolver finishes phase two */
        t->co->txn_ev->commit_unfinished(t->co);
        txn_reply(t, OUTCOME_COMMITTED);
        txn_set_state(t, TXN_FINISHED);
        txn_maybe_free(t);
    }
}

/* All votes are in (or the vote was cut short): decide. */
static void
txn_decide(txn *t)
{
    if (t->prepare_ns)
        metrics_hist_observe(&t->co->stats.prepare_round, (clock_mono_ns() - t->prepare_ns) / 1000);
    int yes = 0;
    bool no = t->timed_out;
    for (int i = 0; i < t->nbr; i++) {
        switch (t->br[i].state) {
        case TB_PREPARED:
            yes++;
            break;
        case TB_UNKNOWN:
            no = true;
            break;
        default:
            break;
        }
    }
    if (t->err.len)
        no = true;
    if (no) {
        txn_abort(t);
        return;
    }
    if (yes == 0) { /* every branch read-only */
        t->readonly = true;
        txn_set_state(t, TXN_FINISHED);
        txn_reply(t, OUTCOME_COMMITTED);
        txn_maybe_free(t);
        return;
    }
    if (FAILPOINT("coord-before-commit-log") == FP_ERROR) {
        txn_abort(t);
        return;
    }
    clog_branch *cb = calloc((size_t)yes, sizeof(clog_branch));
    if (cb == NULL) {
        txn_abort(t);
        return;
    }
    int n = 0;
    for (int i = 0; i < t->nbr; i++) {
        if (t->br[i].state != TB_PREPARED)
            continue;
        snprintf(cb[n].participant, sizeof(cb[n].participant), "%s", plink_name(t->br[i].link));
        cb[n].xid = t->br[i].xid;
        n++;
    }
    txn_set_state(t, TXN_LOGGING);
    t->logged_ns = clock_mono_ns();
    clog_commit(t->co->log, t->gid, cb, n, commit_durable, t);
    free(cb);
}

/* Reply to WORK ending in PREPARE (COMMIT of >1 branches, or ONESHOT). */
static void
prepare_reply(void *arg, const frame_view *f, bool final)
{
    txn_branch *b = arg;
    txn *t = b->t;
    if (f && f->type == MSG_RESULT) {
        if (t->oneshot) {
            size_t start = b->results.len;
            wbuf_put_bytes(&b->results, f->payload - FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + f->len);
            if (wbuf_ok(&b->results))
                proto_patch_tag(b->results.data + start, 0);
        }
        return;
    }
    if (!final)
        return;
    t->outstanding--;
    proto_done d;
    if (f == NULL) {
        tb_set_state(b, TB_UNKNOWN);
        txn_note_lost(t, plink_name(b->link));
    } else if (f->type == MSG_DONE && proto_get_done(f, &d)) {
        switch (d.status) {
        case DONE_PREPARED:
            tb_set_state(b, TB_PREPARED);
            b->xid = d.xid;
            break;
        case DONE_READONLY:
        case DONE_OK: /* ONESHOT of one branch: committed in one phase */
            tb_set_state(b, TB_GONE);
            break;
        default:
            tb_set_state(b, TB_GONE);
            txn_note_error(t, plink_name(b->link), &d);
            break;
        }
    } else {
        tb_set_state(b, TB_UNKNOWN);
        txn_note_lost(t, plink_name(b->link));
    }
    if (t->state == TXN_ABORTING) {
        /* decided already (timeout): undo this branch as it comes in */
        if (b->state == TB_PREPARED)
            branch_finish(b, false);
        if (t->outstanding == 0) {
            txn_set_state(t, TXN_FINISHED);
            txn_maybe_free(t);
        }
        return;
    }
    if (t->outstanding == 0)
        txn_decide(t);
}

static void
onephase_maybe_finish(txn *t)
{
    if (t->marker_pending || t->op_outcome < 0)
        return;
    txn_set_state(t, TXN_FINISHED);
    txn_reply(t, (proto_outcome)t->op_outcome);
    txn_maybe_free(t);
}

/* Reply to the one-phase COMMIT of a single-branch transaction. */
static void
onephase_reply(void *arg, const frame_view *f, bool final)
{
    txn_branch *b = arg;
    txn *t = b->t;
    if (f && f->type == MSG_RESULT) {
        prepare_reply(arg, f, final); /* buffer ONESHOT results */
        return;
    }
    if (!final)
        return;
    t->outstanding--;
    proto_done d;
    proto_outcome o;
    tb_set_state(b, TB_GONE);
    if (f == NULL) {
        o = OUTCOME_UNKNOWN;
        txn_note_lost(t, plink_name(b->link));
    } else if (f->type == MSG_DONE && proto_get_done(f, &d)) {
        if (d.status == DONE_OK || d.status == DONE_READONLY) {
            o = OUTCOME_COMMITTED;
        } else if (d.status == DONE_UNKNOWN) {
            o = OUTCOME_UNKNOWN;
            txn_note_error(t, plink_name(b->link), &d);
        } else {
            o = OUTCOME_ABORTED;
            txn_note_error(t, plink_name(b->link), &d);
        }
    } else {
        o = OUTCOME_UNKNOWN;
    }
    t->op_outcome = (int)o;
    onephase_maybe_finish(t);
}

/* ONEPHASE: the COMMIT goes to the branch only once the ONEPHASE record is
 * durable (a crash in between must not leave a commit that STATUS, finding
 * no record, would call aborted) and the branch's statements are done.
 * False when it could not be sent and t was aborted (and may be freed). */
static bool
onephase_send_commit(txn *t)
{
    txn_branch *b = &t->br[t->op_br];
    if (t->state != TXN_ONEPHASE || t->marker_pending || b->state != TB_OPEN)
        return true;
    char name[BRANCH_MAX];
    coord_branch_name(name, sizeof(name), t->gid, plink_name(b->link));
    if (plink_send_work(b->link, name, WORK_COMMIT, NULL, 0, t->client, onephase_reply, b)) {
        tb_set_state(b, TB_WORKING);
        t->outstanding++;
        return true;
    }
    /* never sent: the participant rolls back when its link drops */
    txn_note_lost(t, plink_name(b->link));
    txn_abort(t);
    return false; /* t may be gone */
}

/* Reply to a one-shot transaction's statements on its one branch (sent
 * while the ONEPHASE record is being made durable). */
static void
onephase_open_reply(void *arg, const frame_view *f, bool final)
{
    txn_branch *b = arg;
    txn *t = b->t;
    if (f && f->type == MSG_RESULT) {
        prepare_reply(arg, f, final); /* buffer ONESHOT results */
        return;
    }
    if (!final)
        return;
    t->outstanding--;
    proto_done d;
    if (f && f->type == MSG_DONE && proto_get_done(f, &d) && d.status == DONE_OK) {
        tb_set_state(b, TB_OPEN);
        (void)onephase_send_commit(t);
        return;
    }
    /* the participant rolled the branch back (an error, or the link) */
    tb_set_state(b, TB_GONE);
    if (f && f->type == MSG_DONE && proto_get_done(f, &d))
        txn_note_error(t, plink_name(b->link), &d);
    else
        txn_note_lost(t, plink_name(b->link));
    t->op_outcome = (int)OUTCOME_ABORTED;
    onephase_maybe_finish(t);
}

/* The ONEPHASE record is durable: STATUS can no longer presume "aborted". */
static void
onephase_marker_durable(void *arg)
{
    txn *t = arg;
    t->outstanding--;
    t->marker_pending = false;
    if (t->state == TXN_ONEPHASE && (t->co->tearing_down || !ha_may_serve(t->co))) {
        /* exiting, the links gone (or, with [ha], the lease over and no
         * standby vouching: this primary is about to stop): the branch is
         * rolled back when its link drops; STATUS says UNKNOWN (ONEPHASE
         * without its outcome) */
        txn_set_state(t, TXN_FINISHED);
        txn_maybe_free(t);
    } else if (t->state == TXN_ONEPHASE) {
        if (onephase_send_commit(t))
            onephase_maybe_finish(t);
    } else if (t->outstanding == 0 && t->state == TXN_ABORTING) {
        txn_set_state(t, TXN_FINISHED);
        txn_maybe_free(t);
    } else {
        txn_maybe_free(t);
    }
}

/* Log ONEPHASE{gid} before the one-phase COMMIT is sent; the COMMIT goes
 * once that record is durable (onephase_send_commit). */
static void
onephase_mark(txn *t, int br)
{
    t->op_br = br;
    t->marker_pending = true;
    t->outstanding++;
    clog_onephase(t->co->log, t->gid, onephase_marker_durable, t);
}

/* The late reply to a statement whose EXEC timed out (the client was told
 * 57014 already, and the transaction is FAILED or, once the client ended
 * it, ABORTING). */
static void
exec_late_reply(txn *t, txn_branch *b, bool ok)
{
    b->abandoned = false;
    tb_set_state(b, ok ? TB_OPEN : TB_GONE); /* an error: the participant rolled it back */
    log_debug("transaction %s: late reply from \"%s\" to a timed-out statement: %s", t->gid,
              plink_name(b->link), ok ? "ran" : "failed");
    switch (t->state) {
    case TXN_FAILED:
        if (t->owner == NULL)
            txn_abort(t); /* the client went away meanwhile */
        /* else the branch waits, OPEN, for the client's COMMIT/ROLLBACK */
        break;
    case TXN_ABORTING:
        if (b->state == TB_OPEN)
            branch_rollback_open(b);
        if (t->outstanding == 0) {
            txn_set_state(t, TXN_FINISHED);
            txn_maybe_free(t);
        }
        break;
    default:
        log_panic("transaction %s: late statement reply in state %s", t->gid,
                  txn_state_names[t->state]);
    }
}

/* Reply to an interactive statement. */
static void
exec_reply(void *arg, const frame_view *f, bool final)
{
    txn_branch *b = arg;
    txn *t = b->t;
    if (f && f->type == MSG_RESULT) {
        if (t->owner && !b->abandoned) {
            uint8_t *p = (uint8_t *)f->payload - FRAME_HEADER_SIZE;
            proto_patch_tag(p, 0);
            t->ops->send(t->owner, p, FRAME_HEADER_SIZE + f->len);
            t->exec_result_sent = true;
        }
        return;
    }
    if (!final)
        return;
    t->outstanding--;
    proto_done d;
    bool ok = f && f->type == MSG_DONE && proto_get_done(f, &d) && d.status == DONE_OK;
    if (b->abandoned) {
        exec_late_reply(t, b, ok);
        return;
    }
    t->exec_br = NULL;
    if (t->stmt_timer)
        evtimer_del(t->stmt_timer);
    if (ok) {
        tb_set_state(b, TB_OPEN);
    } else {
        /* the participant rolled the branch back (error) or lost it (link) */
        tb_set_state(b, TB_GONE);
        if (t->state == TXN_ACTIVE)
            txn_set_state(t, TXN_FAILED);
        if (t->owner) {
            if (f && f->type == MSG_DONE && proto_get_done(f, &d)) {
                /* PostgreSQL's error as it came, detail and hint included */
                proto_error e = {.sqlstate = d.sqlstate ? d.sqlstate : "XX000",
                                 .message = d.message ? d.message : "statement failed",
                                 .detail = d.detail,
                                 .hint = d.hint,
                                 .participant = plink_name(b->link)};
                t->ops->send_err(t->owner, &e);
            } else
                txn_send_error(t, "08006", plink_name(b->link),
                               "connection to participant \"%s\" lost", plink_name(b->link));
        }
    }
    if (t->owner)
        t->ops->request_done(t->owner);
    else if (t->state == TXN_ACTIVE || t->state == TXN_FAILED)
        txn_abort(t); /* client went away while the statement ran */
}

/* statement_timeout: the EXEC in flight got no answer in time.  Answer the
 * client now (57014), fail the transaction, ask the participant to cancel;
 * the WORK's late reply is handled by exec_late_reply. */
static void
txn_stmt_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    txn *t = arg;
    txn_branch *b = t->exec_br;
    if (b == NULL || b->state != TB_WORKING || t->state != TXN_ACTIVE || t->owner == NULL)
        return;
    if (t->exec_result_sent)
        return; /* the client has its answer; only the DONE is still to come */
    const char *pname = plink_name(b->link);
    char name[BRANCH_MAX];
    coord_branch_name(name, sizeof(name), t->gid, pname);
    bool cancel_sent = plink_send_cancel(b->link, name);
    b->abandoned = true;
    t->exec_br = NULL;
    txn_set_state(t, TXN_FAILED);
    log_with(&(log_fields){.gid = t->gid, .participant = pname, .sqlstate = "57014"}, LOG_LVL_LOG,
             "transaction %s: statement on participant \"%s\" exceeded statement_timeout (%lld ms)"
             "%s",
             t->gid, pname, (long long)t->co->conf.statement_timeout_ms,
             cancel_sent ? "; cancel sent" : "; the participant cannot be asked to cancel it");
    char msg[256];
    snprintf(msg, sizeof(msg),
             "canceling statement due to statement timeout: participant \"%s\" did not answer "
             "within %lld ms",
             pname, (long long)t->co->conf.statement_timeout_ms);
    proto_error e = {
        .sqlstate = "57014",
        .message = msg,
        .detail = cancel_sent
                      ? "The participant was asked to cancel the statement.  The transaction is "
                        "aborted; its branches are rolled back when it ends."
                      : "The participant cannot be asked to cancel a running statement (it is "
                        "not reachable or speaks protocol 1.0); its branch is rolled back once "
                        "the statement ends.  The transaction is aborted.",
        .hint = "Roll the transaction back; raise statement_timeout in the coordinator's "
                "configuration if the statement needs longer.",
        .participant = pname};
    t->ops->send_err(t->owner, &e);
    t->ops->request_done(t->owner);
}

/* ---- requests from the client -------------------------------------------- */

void
txn_exec(txn *t, const proto_stmt *st)
{
    if (t->state == TXN_FAILED) {
        txn_send_error(t, "25P02", NULL,
                       "current transaction is aborted, commands ignored until end of "
                       "transaction block");
        t->ops->request_done(t->owner);
        return;
    }
    plink *l = plink_find(t->co, st->participant);
    if (l == NULL) {
        txn_set_state(t, TXN_FAILED);
        txn_send_error(t, "42704", st->participant, "participant \"%s\" does not exist",
                       st->participant);
        t->ops->request_done(t->owner);
        return;
    }
    txn_branch *b = NULL;
    for (int i = 0; i < t->nbr; i++)
        if (t->br[i].link == l)
            b = &t->br[i];
    uint8_t flags = b->state == TB_UNUSED ? WORK_OPEN : 0;
    char name[BRANCH_MAX];
    coord_branch_name(name, sizeof(name), t->gid, plink_name(l));
    proto_stmt one = *st;
    one.participant = "";
    if (!plink_send_work(l, name, flags, &one, 1, t->client, exec_reply, b)) {
        txn_set_state(t, TXN_FAILED);
        txn_send_error(t, "08006", st->participant, "participant \"%s\" is not reachable",
                       st->participant);
        t->ops->request_done(t->owner);
        return;
    }
    tb_set_state(b, TB_WORKING);
    t->outstanding++;
    t->exec_br = b;
    t->exec_result_sent = false;
    int64_t ms = t->co->conf.statement_timeout_ms;
    if (ms > 0) {
        if (t->stmt_timer == NULL)
            t->stmt_timer = evtimer_new(t->co->base, txn_stmt_timeout_cb, t);
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        if (t->stmt_timer)
            evtimer_add(t->stmt_timer, &tv);
    }
}

static int
txn_open_branches(const txn *t)
{
    int n = 0;
    for (int i = 0; i < t->nbr; i++)
        if (t->br[i].state == TB_OPEN)
            n++;
    return n;
}

static void
txn_arm_prepare_timer(txn *t)
{
    if (t->co->conf.prepare_timeout_ms > 0) {
        struct timeval tv = {t->co->conf.prepare_timeout_ms / 1000,
                             (t->co->conf.prepare_timeout_ms % 1000) * 1000};
        evtimer_add(t->timer, &tv);
    }
}

/* ---- slots (slotq.h) ----------------------------------------------------- */

static void txn_slots_granted(slotq_waiter *w);

/* Ask for a slot on each branch the PREPARE round will go to: those with
 * statements (cnt[k] > 0, ONESHOT) or, with cnt NULL, the open ones (COMMIT).
 * 1: held now; 0: QUEUED (txn_slots_granted goes on); -1: out of memory,
 * noted as t's error. */
static int
txn_take_slots(txn *t, const uint16_t *cnt)
{
    if (t->co->slots == NULL)
        return 1;
    int stack_idx[32] = {0};
    int *idx = t->nbr <= 32 ? stack_idx : malloc((size_t)t->nbr * sizeof(int));
    bool oom = idx == NULL, got = false;
    if (idx) {
        int n = 0;
        for (int i = 0; i < t->nbr; i++)
            if (cnt ? cnt[i] > 0 : t->br[i].state == TB_OPEN)
                idx[n++] = i;
        t->sw.on_grant = txn_slots_granted;
        got = slotq_acquire(t->co->slots, &t->sw, idx, n, &oom);
        for (int k = 0; k < n && !oom; k++) {
            t->br[idx[k]].slot = got;
            t->br[idx[k]].want_slot = !got;
        }
        if (idx != stack_idx)
            free(idx);
    }
    if (oom) {
        proto_done d = {.sqlstate = "53200", .message = "out of memory"};
        txn_note_error(t, NULL, &d);
        return -1;
    }
    if (got)
        return 1;
    txn_set_state(t, TXN_QUEUED);
    return 0;
}

/* prepare_timeout ran out while QUEUED: nothing was sent for the round.
 * The error names the participants whose slots are all taken. */
static void
txn_queued_timeout(txn *t)
{
    char full[256] = "";
    for (int i = 0; i < t->nbr; i++) {
        if (!t->br[i].want_slot)
            continue;
        t->br[i].want_slot = false;
        int budget = slotq_budget(t->co->slots, i);
        if (budget > 0 && slotq_used(t->co->slots, i) >= budget && strlen(full) < 200)
            snprintf(full + strlen(full), sizeof(full) - strlen(full), "%s\"%s\"",
                     full[0] ? ", " : "", plink_name(t->br[i].link));
    }
    slotq_cancel(t->co->slots, &t->sw);
    log_with(&(log_fields){.gid = t->gid}, LOG_LVL_LOG,
             "transaction %s: no prepared-transaction slot within prepare_timeout (%lld ms) on "
             "%s; aborting",
             t->gid, (long long)t->co->conf.prepare_timeout_ms,
             full[0] ? full : "its participants");
    t->timed_out = true;
    char detail[400];
    snprintf(detail, sizeof(detail),
             "Every prepared-transaction slot this coordinator may use on %s stayed taken by "
             "other transactions for prepare_timeout; nothing was prepared.",
             full[0] ? full : "its participants");
    txn_note_error(t, NULL,
                   &(proto_done){.sqlstate = "57014",
                                 .message = "prepare timed out waiting for a prepared-transaction "
                                            "slot",
                                 .detail = detail,
                                 .hint = "Raise max_prepared_transactions on the participants' "
                                         "PostgreSQL servers, or look for transactions that stay "
                                         "prepared."});
    txn_abort(t);
}

static void oneshot_resume(txn *t);
static void commit_send_prepares(txn *t);

static void
txn_slots_granted(slotq_waiter *w)
{
    txn *t = w->arg;
    for (int i = 0; i < t->nbr; i++)
        if (t->br[i].want_slot) {
            t->br[i].want_slot = false;
            t->br[i].slot = true;
        }
    txn_set_state(t, TXN_PREPARING);
    t->prepare_ns = clock_mono_ns();
    if (t->oneshot)
        oneshot_resume(t);
    else
        commit_send_prepares(t);
}

/* COMMIT of several branches: PREPARE to each open one. */
static void
commit_send_prepares(txn *t)
{
    int sent = 0;
    for (int i = 0; i < t->nbr; i++) {
        txn_branch *b = &t->br[i];
        if (b->state != TB_OPEN)
            continue;
        if (sent == 1 && FAILPOINT("coord-prepare-partial") == FP_ERROR)
            break;
        char name[BRANCH_MAX];
        coord_branch_name(name, sizeof(name), t->gid, plink_name(b->link));
        if (plink_send_work(b->link, name, WORK_PREPARE, NULL, 0, t->client, prepare_reply, b)) {
            tb_set_state(b, TB_WORKING);
            t->outstanding++;
            sent++;
        } else {
            txn_note_lost(t, plink_name(b->link));
            tb_set_state(b, TB_GONE);
        }
    }
    if (t->outstanding == 0)
        txn_decide(t);
}

void
txn_commit(txn *t)
{
    t->commit_ns = clock_mono_ns();
    if (t->state == TXN_FAILED) {
        txn_abort(t);
        return;
    }
    int n = txn_open_branches(t);
    if (n == 0) {
        t->readonly = true;
        txn_set_state(t, TXN_FINISHED);
        txn_reply(t, OUTCOME_COMMITTED);
        txn_maybe_free(t);
        return;
    }
    if (FAILPOINT("coord-before-prepare") == FP_ERROR) {
        txn_abort(t);
        return;
    }
    if (n == 1) {
        for (int i = 0; i < t->nbr; i++) {
            txn_branch *b = &t->br[i];
            if (b->state != TB_OPEN)
                continue;
            txn_set_state(t, TXN_ONEPHASE);
            t->onephase = true;
            onephase_mark(t, i); /* the COMMIT follows once it is durable */
            return;
        }
    }
    switch (txn_take_slots(t, NULL)) {
    case 1:
        txn_set_state(t, TXN_PREPARING);
        t->prepare_ns = clock_mono_ns();
        txn_arm_prepare_timer(t);
        commit_send_prepares(t);
        return;
    case 0: /* QUEUED: txn_slots_granted sends */
        txn_arm_prepare_timer(t);
        return;
    default:
        txn_abort(t);
        return;
    }
}

void
txn_rollback(txn *t)
{
    txn_abort(t);
}

/* ONESHOT: map each statement to its branch (t->stmt_branch); the number
 * of branches, 0 when nothing is to run, or -1 with the error noted. */
static int
oneshot_map(txn *t, const proto_stmts *body, uint16_t *cnt)
{
    int nb = 0;
    for (uint16_t i = 0; i < body->n; i++) {
        plink *l = plink_find(t->co, body->stmts[i].participant);
        if (l == NULL) {
            char msg[128];
            snprintf(msg, sizeof(msg), "participant \"%s\" does not exist",
                     body->stmts[i].participant);
            proto_done d = {.sqlstate = "42704", .message = msg};
            txn_note_error(t, body->stmts[i].participant, &d);
            return -1;
        }
        for (int k = 0; k < t->nbr; k++)
            if (t->br[k].link == l)
                t->stmt_branch[i] = (uint16_t)k;
        if (cnt[t->stmt_branch[i]]++ == 0)
            nb++;
    }
    return nb;
}

/* ONESHOT: one WORK{OPEN|end, its statements} to branch k. */
static void
oneshot_send(txn *t, const proto_stmts *body, int k, proto_stmt *per, uint8_t end,
             plink_reply_fn cb)
{
    uint16_t m = 0;
    for (uint16_t i = 0; i < body->n; i++) {
        if (t->stmt_branch[i] != k)
            continue;
        per[m] = body->stmts[i];
        per[m].participant = "";
        m++;
    }
    txn_branch *b = &t->br[k];
    char name[BRANCH_MAX];
    coord_branch_name(name, sizeof(name), t->gid, plink_name(b->link));
    if (plink_send_work(b->link, name, WORK_OPEN | end, per, m, t->client, cb, b)) {
        tb_set_state(b, TB_WORKING);
        t->outstanding++;
        return;
    }
    tb_set_state(b, TB_GONE);
    char msg[128];
    snprintf(msg, sizeof(msg), "participant \"%s\" is not reachable", plink_name(b->link));
    proto_done d = {.sqlstate = "08006", .message = msg};
    txn_note_error(t, plink_name(b->link), &d);
}

/* ONESHOT over several branches, its slots held: WORK{OPEN|PREPARE} to
 * each branch with statements (cnt[k] > 0). */
static void
oneshot_send_prepares(txn *t, const proto_stmts *body, const uint16_t *cnt, proto_stmt *per)
{
    for (int k = 0; k < t->nbr; k++)
        if (cnt[k])
            oneshot_send(t, body, k, per, WORK_PREPARE, prepare_reply);
    if (t->outstanding == 0)
        txn_decide(t);
}

/* A QUEUED ONESHOT got its slots: its statements back from queued_body,
 * then the round.  The round may end t at once (nothing could be sent, or
 * out of memory: aborted and freed), so the body is taken out of t first
 * and t is not touched after the send or the abort. */
static void
oneshot_resume(txn *t)
{
    wbuf qb = t->queued_body;
    wbuf_init(&t->queued_body);
    frame_view f;
    size_t used;
    proto_stmts body = {0};
    proto_stmt *per = NULL;
    uint16_t *cnt = calloc((size_t)t->nbr + 1, sizeof(uint16_t));
    bool ok = cnt != NULL && frame_decode(qb.data, qb.len, UINT32_MAX, &f, &used) == FRAME_OK &&
              proto_get_oneshot(&f, &body) && body.n == t->nstmts &&
              (per = calloc((size_t)body.n + 1, sizeof(proto_stmt))) != NULL;
    if (ok) {
        for (uint16_t i = 0; i < t->nstmts; i++)
            cnt[t->stmt_branch[i]]++;
        oneshot_send_prepares(t, &body, cnt, per);
    } else {
        proto_done d = {.sqlstate = "53200", .message = "out of memory"};
        txn_note_error(t, NULL, &d);
        txn_abort(t);
    }
    proto_stmts_clear(&body);
    free(per);
    free(cnt);
    wbuf_free(&qb);
}

void
txn_oneshot(txn *t, const proto_stmts *body)
{
    t->oneshot = true;
    t->commit_ns = clock_mono_ns();
    uint16_t *sb = calloc(body->n ? body->n : 1, sizeof(uint16_t));
    proto_stmt *per = calloc((size_t)body->n + 1, sizeof(proto_stmt));
    uint16_t *cnt = calloc((size_t)t->nbr + 1, sizeof(uint16_t));
    if (sb == NULL || per == NULL || cnt == NULL || FAILPOINT("coord-oneshot-alloc") == FP_ERROR) {
        free(sb);
        proto_done d = {.sqlstate = "53200", .message = "out of memory"};
        txn_note_error(t, NULL, &d);
        txn_abort(t); /* no statement is mapped: t->nstmts stays 0 */
        goto out;
    }
    t->stmt_branch = sb;
    t->nstmts = body->n;
    int nb = oneshot_map(t, body, cnt);
    if (nb < 0) {
        t->nstmts = 0; /* nothing ran: no results to send */
        txn_abort(t);
        goto out;
    }
    if (nb == 0) {
        t->readonly = true;
        txn_set_state(t, TXN_FINISHED);
        txn_reply(t, OUTCOME_COMMITTED);
        txn_maybe_free(t);
        goto out;
    }
    if (nb == 1) {
        /* the statements now, the COMMIT once the ONEPHASE record is
         * durable (onephase_send_commit) */
        int k = t->stmt_branch[0];
        txn_set_state(t, TXN_ONEPHASE);
        t->onephase = true;
        onephase_mark(t, k);
        oneshot_send(t, body, k, per, 0, onephase_open_reply);
        if (t->br[k].state == TB_GONE)
            txn_abort(t); /* could not even be sent */
        goto out;
    }
    switch (txn_take_slots(t, cnt)) {
    case 1:
        txn_set_state(t, TXN_PREPARING);
        t->prepare_ns = clock_mono_ns();
        txn_arm_prepare_timer(t);
        oneshot_send_prepares(t, body, cnt, per);
        break;
    case 0:
        /* QUEUED: the statements wait, encoded, for oneshot_resume */
        if (!proto_put_oneshot(&t->queued_body, body) || !wbuf_ok(&t->queued_body)) {
            proto_done d = {.sqlstate = "53200", .message = "out of memory"};
            txn_note_error(t, NULL, &d);
            for (int i = 0; i < t->nbr; i++)
                t->br[i].want_slot = false;
            slotq_cancel(t->co->slots, &t->sw);
            txn_abort(t);
            break;
        }
        txn_arm_prepare_timer(t);
        break;
    default:
        txn_abort(t);
        break;
    }
out:
    free(per);
    free(cnt);
}

void
txn_detach_client(txn *t)
{
    t->owner = NULL;
    switch (t->state) {
    case TXN_ACTIVE:
    case TXN_FAILED:
        /* a statement in flight finishes first (exec_reply aborts then) */
        if (t->outstanding == 0)
            txn_abort(t);
        break;
    case TXN_QUEUED:
    case TXN_PREPARING:
    case TXN_LOGGING:
    case TXN_COMMITTING:
    case TXN_ONEPHASE:
    case TXN_ABORTING:
        break; /* goes on to its outcome */
    case TXN_FINISHED:
        txn_maybe_free(t);
        break;
    default:
        abort();
    }
}

void
txn_collect_indoubt(coord *co, proto_indoubt_entry **out, uint32_t *n)
{
    int64_t now = clock_mono_ms();
    uint32_t cap = 16, k = 0;
    proto_indoubt_entry *e = malloc(cap * sizeof(*e));
    for (size_t h = 0; e && h < co->tab_size; h++) {
        for (txn *t = co->tab[h]; t; t = t->hnext) {
            if (t->state != TXN_LOGGING && t->state != TXN_COMMITTING && t->state != TXN_PREPARING)
                continue;
            if (k == cap) {
                proto_indoubt_entry *ne = realloc(e, (cap *= 2) * sizeof(*e));
                if (ne == NULL)
                    break;
                e = ne;
            }
            e[k].gid = t->gid;
            e[k].age_ms = (uint64_t)(now - t->start_ms);
            e[k].participants = txn_participants(t);
            e[k].state = txn_state_names[t->state];
            k++;
        }
    }
    *out = e;
    *n = k;
}
