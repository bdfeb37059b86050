/*
 * branch.c — branches: WORK requests, their PostgreSQL transaction, and the
 * vote at prepare.
 *
 * NOTES
 *  What this file owns: every branch object, the copy of the WORK request it
 *  is serving, the pool connection it leases from WORK OPEN until it ends,
 *  and (during a PREPARE) one reserved prepared-transaction slot.
 *
 *  A branch is the part of a global transaction on this participant.  Its
 *  name ("dtx:<coordinator>:<epoch>:<seq>:<participant>") is checked by
 *  peer_check_branch_name() before anything else, so it can be written
 *  into SQL as a literal.  Branches of one coordinator connection are found
 *  by name in that connection's branch_set; every live branch is also on a
 *  global list (for shutdown and exit).
 *
 *  One WORK is one libpq pipeline, one round trip:
 *
 *      [BEGIN]              when WORK_OPEN
 *      statement 1..n       each answered by a RESULT frame as it arrives
 *      end, one of          WORK_PREPARE:  SELECT pg_current_xact_id_if_assigned()
 *                                          PREPARE TRANSACTION '<branch>'
 *                           WORK_COMMIT:   COMMIT
 *                           WORK_ROLLBACK: ROLLBACK
 *      Sync
 *
 *  After an error PostgreSQL skips the rest up to the Sync (the results come
 *  back PGRES_PIPELINE_ABORTED), so an error in a statement also prevents
 *  the PREPARE or COMMIT queued behind it.  The branch then answers
 *  DONE_ERROR and runs ROLLBACK in a second round trip before its
 *  connection goes back to the pool.  A read-only vote (no xid assigned) is
 *  committed with COMMIT PREPARED in a second round trip.
 *
 *  The xid query is plain text, every name in it schema-qualified, and
 *  never a prepared statement: the pooled session is shared with other
 *  clients' branches, and a function can DEALLOCATE a prepared statement
 *  and PREPARE another under its name.  A replaced xid query answering
 *  NULL would make a branch that wrote vote READ-ONLY and commit at once,
 *  whatever the other participants vote.  (The statement cache, pgpool.c,
 *  only takes the client's own INSERT/UPDATE/DELETE/MERGE.)
 *
 *  States (br_set_state() is the only place that changes `state`; the
 *  diagram is also in docs/participant.md):
 *
 *    NEW          created for a WORK OPEN, nothing started
 *    WAIT_CONN    a WORK OPEN waits for a pool connection (FIFO, at most
 *                 pool_wait_timeout; then it fails with 53300)
 *    WAIT_SLOT    a WORK_PREPARE, with its connection, waits for a
 *                 prepared-transaction slot (prepare_wait_timeout)
 *    RUNNING      a WORK pipeline is in flight
 *    IDLE         between two WORKs: transaction open on the connection
 *    READONLY_END COMMIT PREPARED of a read-only vote is in flight
 *    UNDO_PREPARE ROLLBACK PREPARED of a vote that could not be reported
 *    ROLLBACK     ROLLBACK in flight; the request was already answered
 *    FAILED       the connection broke while IDLE: the transaction is gone;
 *                 kept only to answer the next WORK with 08006
 *    FREED        (transient) memory released
 *
 *  Fencing: a WORK passed the fence when it arrived (peer_check_request);
 *  br_send() checks it again (peer_still_admitted), so a WORK that waited
 *  in WAIT_CONN or WAIT_SLOT while a higher epoch of its coordinator was
 *  admitted is failed with 08004 and never reaches PostgreSQL.  (Admitting
 *  a higher epoch also closes the older connections, which detaches their
 *  branches: waiting ones are freed or rolled back before they run.)
 *
 *  Invariants:
 *    - b->cc != NULL  <=>  b is on b->cc's branch_set (attached).  A branch
 *      is detached ("forgotten") as soon as its final DONE was sent, or when
 *      its coordinator connection ends; a detached branch only finishes
 *      what runs on PostgreSQL, sends nothing, and frees itself;
 *    - b->pc != NULL in WAIT_SLOT, RUNNING, IDLE, READONLY_END, UNDO_PREPARE,
 *      ROLLBACK; NULL in NEW, WAIT_CONN, FAILED;
 *    - b->slot_reserved only from a slot grant until the PREPARE's Sync
 *      (or until the request gives up);
 *    - nothing is ever left prepared by accident: a vote that cannot be
 *      reported (local error after a successful PREPARE) is rolled back;
 *      a vote whose reply is lost with the coordinator stays, for the
 *      coordinator's recovery to resolve.
 */
#include "branch.h"

#include "failpoint.h"
#include "log.h"
#include "pconf.h"
#include "peer.h"
#include "pgpool.h"
#include "proto.h"
#include "slots.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum branch_state {
    BR_NEW = 0,
    BR_WAIT_SLOT,
    BR_WAIT_CONN,
    BR_RUNNING,
    BR_IDLE,
    BR_READONLY_END,
    BR_UNDO_PREPARE,
    BR_ROLLBACK,
    BR_FAILED,
    BR_FREED,
} branch_state;

static const char *const br_state_names[] = {
    "new",          "wait_slot",    "wait_conn", "running", "idle",
    "readonly_end", "undo_prepare", "rollback",  "failed",  "freed",
};

#define WORK_END_MASK (WORK_PREPARE | WORK_COMMIT | WORK_ROLLBACK)

struct branch {
    branch_state state;
    char name[BRANCH_NAME_MAX];
    coord_conn *cc;
    branch_set *set;
    branch *set_next, *set_prev;
    branch *all_next, *all_prev;
    pgc *pc;
    pool_waiter pw;
    slot_waiter sw;
    bool slot_reserved;

    /* the request being served */
    uint32_t tag;
    uint8_t flags;
    uint8_t *payload; /* copy of the WORK payload; work's strings point into it */
    proto_work work;
    bool has_work;
    int first_stmt; /* query index of statement 0 in the pipeline */
    int end_skip;   /* queries before the end flag's own (back to the login role) */

    /* the role its statements run as ([roles], mapped from the client's
     * certificate name that WORK OPEN carries, 1.5; "" : conninfo's) */
    char role[64];

    /* what the pipeline said */
    bool err;
    bool local_err; /* ours, not PostgreSQL's: the pipeline went on */
    char sqlstate[6];
    char *msg, *detail, *hint; /* malloc'd; freed by br_clear_outcome() */
    bool xid_seen, xid_null;
    uint64_t xid;
    bool prepared;
    bool committed;
    bool commit_sent;
};

static branch *br_all;
static int br_live;

/* set by branch_init() */
static pg_pool *br_pool;
static slots *br_slots;
static size_t br_max_frame;
static const part_conf *br_conf; /* [roles] (changed in place by a reload) */

static const pgc_ops br_pg_ops;

/* ------------------------------------------------------------------------
 * State, lists, memory
 */

static void
br_set_state(branch *b, branch_state st)
{
    branch_state o = b->state;
    bool ok;
    switch (st) {
    case BR_WAIT_SLOT:
        ok = o == BR_NEW || o == BR_IDLE || o == BR_WAIT_CONN;
        break;
    case BR_WAIT_CONN:
        ok = o == BR_NEW;
        break;
    case BR_RUNNING:
        ok = o == BR_NEW || o == BR_WAIT_SLOT || o == BR_WAIT_CONN || o == BR_IDLE;
        break;
    case BR_IDLE:
        ok = o == BR_RUNNING;
        break;
    case BR_READONLY_END:
    case BR_UNDO_PREPARE:
        ok = o == BR_RUNNING;
        break;
    case BR_ROLLBACK:
        ok = o == BR_NEW || o == BR_WAIT_SLOT || o == BR_WAIT_CONN || o == BR_RUNNING ||
             o == BR_IDLE;
        break;
    case BR_FAILED:
        ok = o == BR_IDLE;
        break;
    case BR_FREED:
        ok = o != BR_FREED;
        break;
    case BR_NEW:
    default:
        abort();
    }
    if (!ok)
        log_panic("branch %s: invalid state change %s -> %s", b->name, br_state_names[o],
                  br_state_names[st]);
    b->state = st;
}

/* The branch of set named name, or NULL.  It stays the set's: the caller
 * frees nothing. */
static branch *
br_find(branch_set *set, const char *name)
{
    for (branch *b = set->head; b; b = b->set_next) {
        if (strcmp(b->name, name) == 0)
            return b;
    }
    return NULL;
}

static void
br_clear_outcome(branch *b)
{
    free(b->msg);
    free(b->detail);
    free(b->hint);
    b->msg = b->detail = b->hint = NULL;
    b->err = b->local_err = false;
    b->sqlstate[0] = '\0';
    b->xid_seen = b->xid_null = false;
    b->xid = 0;
    b->prepared = b->committed = b->commit_sent = false;
}

static void
br_clear_work(branch *b)
{
    if (b->has_work)
        proto_work_clear(&b->work);
    b->has_work = false;
    free(b->payload);
    b->payload = NULL;
}

/* Take b off its coordinator's set: no more replies, no more lookups. */
static void
br_forget(branch *b)
{
    if (b->cc == NULL)
        return;
    branch_set *set = b->set;
    if (b->set_prev)
        b->set_prev->set_next = b->set_next;
    else
        set->head = b->set_next;
    if (b->set_next)
        b->set_next->set_prev = b->set_prev;
    set->n--;
    b->set_next = b->set_prev = NULL;
    b->set = NULL;
    b->cc = NULL;
}

/* A new branch in state NEW, on cc's set and on the global list; NULL on
 * out-of-memory.  The caller does not free it: the branch ends itself with
 * br_free() (br_release_and_free() once it holds a connection), or
 * branch_free_all() at exit. */
static branch *
br_create(coord_conn *cc, branch_set *set, const char *name)
{
    branch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->state = BR_NEW;
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->cc = cc;
    b->set = set;
    b->set_next = set->head;
    if (set->head)
        set->head->set_prev = b;
    set->head = b;
    set->n++;
    b->all_next = br_all;
    if (br_all)
        br_all->all_prev = b;
    br_all = b;
    br_live++;
    b->pw.prio = POOL_PRIO_WORK;
    return b;
}

/* Free b.  Its connection must already be released (or never leased). */
static void
br_free(branch *b)
{
    if (b->pc != NULL)
        log_panic("branch %s: freed while holding connection pg#%d", b->name, pgc_id(b->pc));
    br_forget(b);
    pool_cancel(br_pool, &b->pw);
    slots_cancel(br_slots, &b->sw);
    if (b->slot_reserved) {
        slots_unreserve(br_slots);
        b->slot_reserved = false;
    }
    br_set_state(b, BR_FREED);
    if (b->all_prev)
        b->all_prev->all_next = b->all_next;
    else
        br_all = b->all_next;
    if (b->all_next)
        b->all_next->all_prev = b->all_prev;
    br_live--;
    br_clear_work(b);
    br_clear_outcome(b);
    free(b);
}

/* Give the connection back and free the branch. */
static void
br_release_and_free(branch *b)
{
    if (b->pc) {
        pool_release(b->pc);
        b->pc = NULL;
    }
    br_free(b);
}

/* ------------------------------------------------------------------------
 * Replies
 */

static void
br_reply(branch *b, done_status st, uint64_t xid)
{
    if (b->cc == NULL)
        return;
    proto_done d = {.tag = b->tag, .status = (uint8_t)st, .xid = xid};
    peer_reply_done(b->cc, &d);
}

static void
br_reply_error(branch *b)
{
    if (b->cc == NULL)
        return;
    proto_done d = {.tag = b->tag,
                    .status = DONE_ERROR,
                    .sqlstate = b->sqlstate[0] ? b->sqlstate : "XX000",
                    .message = b->msg ? b->msg : "unknown error",
                    .detail = b->detail,
                    .hint = b->hint};
    peer_reply_done(b->cc, &d);
}

static void __attribute__((format(printf, 3, 4)))
br_set_error(branch *b, const char *sqlstate, const char *fmt, ...)
{
    if (b->err)
        return; /* the first error is the one reported */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->err = true;
    snprintf(b->sqlstate, sizeof(b->sqlstate), "%s", sqlstate);
    b->msg = strdup(msg);
}

/* A malloc'd copy of an error field of res; NULL when res has none (or out
 * of memory).  The caller frees it with free() (a branch's copies go with
 * br_clear_outcome()). */
static char *
dup_field(const PGresult *res, int field)
{
    const char *v = PQresultErrorField(res, field);
    return v ? strdup(v) : NULL;
}

static void
br_set_pg_error(branch *b, const PGresult *res)
{
    if (b->err)
        return;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    b->err = true;
    snprintf(b->sqlstate, sizeof(b->sqlstate), "%s", state ? state : "XX000");
    if (primary) {
        b->msg = strdup(primary);
    } else {
        /* errors made up by libpq carry no fields */
        char m[512];
        snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            m[--n] = '\0';
        b->msg = strdup(n ? m : "unknown error");
    }
    b->detail = dup_field(res, PG_DIAG_MESSAGE_DETAIL);
    b->hint = dup_field(res, PG_DIAG_MESSAGE_HINT);
}

/* ------------------------------------------------------------------------
 * Statement checks
 */

/* Skip blanks and SQL comments at the start of s; the result points into
 * s (nothing is allocated). */
static const char *
skip_space_and_comments(const char *s)
{
    for (;;) {
        while (*s && isspace((unsigned char)*s))
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
            continue;
        }
        if (s[0] == '/' && s[1] == '*') {
            int depth = 0;
            do {
                if (s[0] == '/' && s[1] == '*') {
                    depth++;
                    s += 2;
                } else if (s[0] == '*' && s[1] == '/') {
                    depth--;
                    s += 2;
                } else {
                    s++;
                }
            } while (*s && depth > 0);
            continue;
        }
        return s;
    }
}

static size_t
word_at(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]) || s[n] == '_') {
        if (n + 1 < outlen)
            out[n] = (char)tolower((unsigned char)s[n]);
        n++;
    }
    out[n < outlen ? n : outlen - 1] = '\0';
    return n;
}

/* The identifier at s, lower-cased unless double-quoted (then unquoted,
 * "" for "), into out; its length in s.  Digits and '$' count after the
 * first character, as in PostgreSQL. */
static size_t
ident_at(const char *s, char *out, size_t outlen)
{
    size_t n = 0, o = 0;
    if (s[0] == '"') {
        for (n = 1; s[n]; n++) {
            if (s[n] == '"') {
                if (s[n + 1] != '"') {
                    n++;
                    break;
                }
                n++;
            }
            if (o + 1 < outlen)
                out[o++] = s[n];
        }
    } else {
        while (isalpha((unsigned char)s[n]) || s[n] == '_' ||
               (n > 0 && (isdigit((unsigned char)s[n]) || s[n] == '$'))) {
            if (o + 1 < outlen)
                out[o++] = (char)tolower((unsigned char)s[n]);
            n++;
        }
    }
    out[o] = '\0';
    return n;
}

static bool
ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* word (lower case) appears in s as a whole identifier, case-insensitively;
 * then, when next is given, followed (past blanks and comments) by next */
static bool
has_word(const char *s, const char *word, const char *next)
{
    size_t len = strlen(word);
    for (const char *p = strcasestr(s, word); p; p = strcasestr(p + 1, word)) {
        if ((p > s && ident_char(p[-1])) || ident_char(p[len]))
            continue;
        if (next == NULL)
            return true;
        char w[32];
        ident_at(skip_space_and_comments(p + len), w, sizeof(w));
        if (strcmp(w, next) == 0)
            return true;
    }
    return false;
}

/* CREATE [OR REPLACE] [GLOBAL | LOCAL] [UNLOGGED] TEMP[ORARY] ...: a temp
 * word among the words before the object's name (s: after CREATE) */
static bool
create_is_temp(const char *s)
{
    char w[64];
    for (int i = 0; i < 5; i++) {
        s = skip_space_and_comments(s);
        size_t n = ident_at(s, w, sizeof(w));
        if (n == 0)
            return false;
        if (strcmp(w, "temp") == 0 || strcmp(w, "temporary") == 0)
            return true;
        if (strcmp(w, "or") != 0 && strcmp(w, "replace") != 0 && strcmp(w, "global") != 0 &&
            strcmp(w, "local") != 0 && strcmp(w, "unlogged") != 0 && strcmp(w, "recursive") != 0)
            return false; /* TABLE, VIEW, SEQUENCE, ...: not temporary */
        s += n;
    }
    return false;
}

/* Statements that would leave session state behind on the pooled
 * connection, where the next branch — another client's, maybe running as
 * another role — would find it, or that would let a branch leave the role
 * [roles] gave it (docs/participant.md, "Session state").  s starts with
 * the statement's first word w (n bytes); with_role: the branch runs as a
 * mapped role.  Lexical, like the checks above: state changed from inside
 * a function is not seen (which is why DO is refused under a role). */
static bool
br_session_state_allowed(const char *s, const char *w, size_t n, bool with_role, char *why,
                         size_t whylen)
{
    char w2[64], w3[64];
    const char *s2 = skip_space_and_comments(s + n);
    size_t n2 = ident_at(s2, w2, sizeof(w2));
    ident_at(skip_space_and_comments(s2 + n2), w3, sizeof(w3));
    const char *what = NULL, *instead = NULL;
    if (strcmp(w, "set") == 0 || strcmp(w, "reset") == 0) {
        bool local = strcmp(w, "set") == 0 && strcmp(w2, "local") == 0;
        const char *param = local || (strcmp(w, "set") == 0 && strcmp(w2, "session") == 0 &&
                                      strcmp(w3, "authorization") != 0)
                                ? w3
                                : w2;
        if (strcmp(param, "role") == 0 || strcmp(param, "session") == 0 ||
            strcmp(param, "session_authorization") == 0) {
            what = strcmp(w, "reset") == 0 ? "RESET ROLE or SESSION AUTHORIZATION"
                                           : "SET ROLE or SESSION AUTHORIZATION";
            instead = "the role a branch runs as is the participant's to choose ([roles])";
        } else if (strcmp(w, "reset") == 0) {
            what = "RESET";
            instead = "use SET LOCAL, which ends with the branch";
        } else if (!local && strcmp(w2, "constraints") != 0 && strcmp(w2, "transaction") != 0) {
            what = "SET without LOCAL";
            instead = "use SET LOCAL, which ends with the branch";
        }
    } else if (strcmp(w, "listen") == 0 || strcmp(w, "unlisten") == 0) {
        what = "LISTEN and UNLISTEN";
        instead = "notifications would go to a pooled connection, not to the client";
    } else if (strcmp(w, "prepare") == 0) {
        what = "PREPARE of a statement";
        instead = "pass parameters instead; the participant prepares statements itself";
    } else if (strcmp(w, "discard") == 0) {
        what = "DISCARD";
        instead = "it would drop the participant's own prepared statements";
    } else if (strcmp(w, "load") == 0) {
        what = "LOAD";
        instead = "a library loaded into a pooled session stays for every later branch";
    } else if (strcmp(w, "do") == 0 && with_role) {
        what = "DO";
        instead = "this participant runs branches as mapped roles ([roles]), and a DO block "
                  "could change the role; use a function the role may execute";
    } else if (strcmp(w, "create") == 0 && create_is_temp(s + n)) {
        what = "a temporary object";
        instead = "it would outlive the branch (and a transaction that used one cannot be "
                  "prepared)";
    } else if (strcasestr(s, "temp") && /* one scan for the three below, whose matches all
                                            contain it: most statements stop here */
               (strcasestr(s, "pg_temp.") || has_word(s, "into", "temp") ||
                has_word(s, "into", "temporary"))) {
        what = "a temporary object";
        instead = "it would outlive the branch";
    } else if (strcmp(w, "declare") == 0 && has_word(s, "with", "hold")) {
        what = "a cursor WITH HOLD";
        instead = "it would outlive the branch";
    } else if (strcasestr(s, "advisory_lock") && /* as "temp" above */
               (has_word(s, "pg_advisory_lock", NULL) ||
                has_word(s, "pg_advisory_lock_shared", NULL) ||
                has_word(s, "pg_try_advisory_lock", NULL) ||
                has_word(s, "pg_try_advisory_lock_shared", NULL))) {
        what = "a session-level advisory lock";
        instead = "use pg_advisory_xact_lock, which ends with the branch";
    } else if (has_word(s, "set_config", NULL)) {
        what = "set_config()";
        instead = "use SET LOCAL, which ends with the branch";
    }
    if (what == NULL)
        return true;
    snprintf(why, whylen,
             "%s is not allowed in a dtx branch: it would leave session state on a pooled "
             "connection (%s)",
             what, instead);
    return false;
}

/* Statements a branch may not run: they would end or escape its transaction
 * behind the coordinator's back, or need the COPY sub-protocol. */
static bool
br_statement_allowed(const char *sql, bool with_role, char *why, size_t whylen)
{
    static const char *const tx_words[] = {"begin",    "start", "commit", "end",
                                           "rollback", "abort", NULL};
    char w[32];
    const char *s = skip_space_and_comments(sql);
    size_t n = word_at(s, w, sizeof(w));
    if (strcmp(w, "rollback") == 0) {
        char w2[32];
        word_at(skip_space_and_comments(s + n), w2, sizeof(w2));
        if (strcmp(w2, "to") == 0)
            return true; /* ROLLBACK TO SAVEPOINT stays inside the transaction */
    }
    for (int i = 0; tx_words[i]; i++) {
        if (strcmp(w, tx_words[i]) == 0) {
            snprintf(why, whylen, "transaction control statement %s is not allowed in a dtx branch",
                     w);
            return false;
        }
    }
    if (strcmp(w, "prepare") == 0) {
        char w2[32];
        word_at(skip_space_and_comments(s + n), w2, sizeof(w2));
        if (strcmp(w2, "transaction") == 0) {
            snprintf(why, whylen, "PREPARE TRANSACTION is not allowed in a dtx branch");
            return false;
        }
    }
    if (strcmp(w, "deallocate") == 0) {
        snprintf(why, whylen,
                 "DEALLOCATE is not allowed in a dtx branch: it runs on a pooled connection whose "
                 "prepared statements are the participant's");
        return false;
    }
    if (strcmp(w, "copy") == 0 && (strcasestr(s, "stdin") || strcasestr(s, "stdout"))) {
        snprintf(why, whylen, "COPY FROM STDIN and COPY TO STDOUT are not supported by dtx");
        return false;
    }
    return br_session_state_allowed(s, w, n, with_role, why, whylen);
}

/* ------------------------------------------------------------------------
 * Running a WORK
 */

static void br_start(branch *b);
static void br_send(branch *b);
static void br_quote_ident(const char *ident, const char *prefix, char *out, size_t len);

/* End the branch's transaction with ROLLBACK, then free it.  The request
 * was answered (or the coordinator is gone). */
static void
br_rollback(branch *b)
{
    br_forget(b);
    if (b->pc == NULL) {
        br_free(b);
        return;
    }
    if (b->slot_reserved) {
        slots_unreserve(br_slots);
        b->slot_reserved = false;
    }
    if (pgc_txn_status(b->pc) == PQTRANS_IDLE) {
        /* nothing begun on the connection yet (a WORK OPEN that never ran) */
        br_release_and_free(b);
        return;
    }
    br_clear_outcome(b); /* answered already */
    br_set_state(b, BR_ROLLBACK);
    pgc_query(b->pc, "ROLLBACK", 0, NULL);
    pgc_sync(b->pc);
}

/* Answer with the recorded error, then roll back. */
static void
br_fail(branch *b)
{
    log_report_with(&(log_fields){.gid = b->name}, LOG_LVL_DEBUG, b->sqlstate, b->detail, b->hint,
                    "branch %s failed: %s", b->name, b->msg ? b->msg : "");
    br_reply_error(b);
    br_rollback(b);
}

static void
br_slot_granted(bool ok, void *arg)
{
    branch *b = arg;
    if (!ok) {
        br_set_error(b, "53400",
                     "could not prepare branch \"%s\": all %d prepared-transaction slots of the "
                     "PostgreSQL server are in use",
                     b->name, slots_max(br_slots));
        b->hint = strdup("Commit or roll back prepared transactions, or raise "
                         "max_prepared_transactions on the PostgreSQL server.");
        log_report_with(
            &(log_fields){.gid = b->name}, LOG_LVL_WARNING, b->sqlstate, b->detail, b->hint,
            "branch %s: no prepared-transaction slot within prepare_wait_timeout", b->name);
        br_fail(b);
        return;
    }
    b->slot_reserved = true;
    br_start(b);
}

static void
br_conn_granted(pgc *pc, const char *error, void *arg)
{
    branch *b = arg;
    if (pc == NULL && b->pw.timed_out) {
        br_set_error(b, "53300", "branch \"%s\": %s", b->name,
                     error ? error : "pool wait timed out");
        b->detail = strdup("An interactive transaction holds one PostgreSQL connection of each "
                           "participant it has run a statement on until it commits or rolls "
                           "back; transactions waiting for each other's connections cannot "
                           "proceed.");
        b->hint = strdup("Retry the transaction; raise pool_size (and PostgreSQL's "
                         "max_connections) above the number of concurrent interactive "
                         "transactions, or keep transactions short.");
        log_report_with(&(log_fields){.gid = b->name}, LOG_LVL_LOG, b->sqlstate, b->detail, b->hint,
                        "branch %s: %s", b->name, error ? error : "pool wait timed out");
        br_fail(b);
        return;
    }
    if (pc == NULL) {
        br_set_error(b, "08006", "could not connect to PostgreSQL: %s",
                     error ? error : "unknown error");
        br_fail(b);
        return;
    }
    b->pc = pc;
    br_start(b);
}

/* Get what the request needs, then send: first a connection, then (for a
 * PREPARE) a prepared-transaction slot.  In this order a slot is only ever
 * reserved by a branch that can use it at once: at most pool_size slots are
 * reserved, and a queue of new branches waiting for a connection cannot
 * starve the prepares of the branches that have one. */
static void
br_start(branch *b)
{
    if (b->pc == NULL) {
        pgc *pc = NULL;
        const char *error = NULL;
        /* a branch that opens and ends in this request holds the
         * connection only while it runs: it may use the one-shot reserve */
        bool self_contained = (b->flags & WORK_OPEN) && (b->flags & (WORK_PREPARE | WORK_COMMIT));
        b->pw.prio = self_contained ? POOL_PRIO_ONESHOT : POOL_PRIO_WORK;
        b->pw.on_grant = br_conn_granted;
        b->pw.arg = b;
        switch (pool_acquire(br_pool, &b->pw, &br_pg_ops, b, &pc, &error)) {
        case POOL_GRANTED:
            b->pc = pc;
            break;
        case POOL_QUEUED:
            br_set_state(b, BR_WAIT_CONN);
            return;
        case POOL_FAILED:
        default:
            br_conn_granted(NULL, error ? error : "unknown error", b);
            return;
        }
    }
    if ((b->flags & WORK_PREPARE) && !b->slot_reserved) {
        b->sw.on_grant = br_slot_granted;
        b->sw.arg = b;
        switch (slots_acquire(br_slots, &b->sw)) {
        case SLOT_GRANTED:
            b->slot_reserved = true;
            break;
        case SLOT_QUEUED:
            br_set_state(b, BR_WAIT_SLOT);
            return;
        case SLOT_FAILED:
        default:
            br_slot_granted(false, b);
            return;
        }
    }
    br_send(b);
}

/* A WORK that waited for a connection or a slot is sent only while its
 * epoch is still admitted; otherwise it fails (and its branch rolls back)
 * without a statement of it reaching PostgreSQL.  true when it may go. */
static bool
br_still_admitted(branch *b)
{
    const char *st = NULL;
    char err[512];
    if (peer_still_admitted(b->cc, b->work.epoch, &st, err, sizeof(err)))
        return true;
    log_report(LOG_LVL_LOG, st, NULL, NULL, "branch %s: WORK tag %u not sent: %s", b->name, b->tag,
               err);
    br_set_error(b, st, "%s", err);
    br_fail(b);
    return false;
}

static void
br_send(branch *b)
{
    char sql[BRANCH_NAME_MAX + 64];
    uint8_t end = b->flags & WORK_END_MASK;
    if (!br_still_admitted(b))
        return;
    if (end == WORK_PREPARE && FAILPOINT("participant-before-prepare") == FP_ERROR) {
        br_set_error(b, "XX000",
                     "failpoint participant-before-prepare: PREPARE TRANSACTION not attempted");
        br_fail(b);
        return;
    }
    b->first_stmt = 0;
    if (b->flags & WORK_OPEN) {
        pgc_query(b->pc, "BEGIN", 0, NULL);
        b->first_stmt = 1;
        if (b->role[0]) {
            /* the branch's statements run as the client's role: its
             * GRANTs decide; LOCAL, so it ends with the transaction */
            char set[200];
            br_quote_ident(b->role, "SET LOCAL ROLE ", set, sizeof(set));
            pgc_query(b->pc, set, 0, NULL);
            b->first_stmt = 2;
        }
    }
    for (uint16_t i = 0; i < b->work.body.n; i++) {
        const proto_stmt *st = &b->work.body.stmts[i];
        pgc_query(b->pc, st->sql, st->nparams, st->params);
    }
    b->end_skip = 0;
    switch (end) {
    case WORK_PREPARE:
        if (b->role[0]) {
            /* prepared as the participant's own role, which finishes it:
             * COMMIT PREPARED is for the role that prepared (or a superuser).
             * Deferred triggers fire first, still as the client's role
             * (PREPARE TRANSACTION would fire them as the login role). */
            pgc_query(b->pc, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL);
            pgc_query(b->pc, "SET LOCAL ROLE NONE", 0, NULL);
            b->end_skip = 2;
        }
        pgc_query(b->pc, "SELECT pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text", 0,
                  NULL);
        snprintf(sql, sizeof(sql), "PREPARE TRANSACTION '%s'", b->name);
        pgc_query(b->pc, sql, 0, NULL);
        break;
    case WORK_COMMIT:
        pgc_query(b->pc, "COMMIT", 0, NULL);
        b->commit_sent = true;
        break;
    case WORK_ROLLBACK:
        pgc_query(b->pc, "ROLLBACK", 0, NULL);
        break;
    default:
        break;
    }
    pgc_sync(b->pc);
    br_set_state(b, BR_RUNNING);
}

/* prefix and "ident" (quotes doubled) into out */
static void
br_quote_ident(const char *ident, const char *prefix, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "%s\"", prefix);
    for (const char *p = ident; *p && o + 3 < len; p++) {
        if (*p == '"')
            out[o++] = '"';
        out[o++] = *p;
    }
    if (o + 1 < len)
        out[o++] = '"';
    out[o < len ? o : len - 1] = '\0';
}

/* One statement's rows as a RESULT frame, streamed to the coordinator. */
static void
br_send_result(branch *b, const PGresult *res, int stmt)
{
    if (b->cc == NULL)
        return;
    size_t limit = br_max_frame;
    int ncols = PQnfields(res);
    int nrows = PQntuples(res);
    const char *ct = PQcmdTuples((PGresult *)res);
    uint64_t affected = ct && *ct ? strtoull(ct, NULL, 10) : 0;
    wbuf w;
    wbuf_init(&w);
    size_t start =
        proto_result_begin(&w, b->tag, "", PQcmdStatus((PGresult *)res), affected, (uint16_t)ncols);
    for (int c = 0; c < ncols; c++)
        proto_result_column(&w, PQfname(res, c), (uint32_t)PQftype(res, c));
    proto_result_rows(&w, (uint32_t)nrows);
    bool too_large = false;
    for (int r = 0; r < nrows && !too_large; r++) {
        for (int c = 0; c < ncols; c++) {
            bool isnull = PQgetisnull(res, r, c);
            proto_result_value(&w, isnull ? NULL : PQgetvalue(res, r, c),
                               isnull ? 0 : (size_t)PQgetlength(res, r, c), isnull);
        }
        if (w.len - start > limit + FRAME_HEADER_SIZE)
            too_large = true;
    }
    if (!too_large && w.len - start > limit + FRAME_HEADER_SIZE)
        too_large = true;
    if (too_large) {
        b->local_err = true;
        br_set_error(b, "54000",
                     "result of statement %d is too large to send (%d rows; more than max_frame "
                     "= %zu bytes)",
                     stmt + 1, nrows, limit);
    } else if (!proto_result_end(&w, start) || !wbuf_ok(&w)) {
        b->local_err = true;
        br_set_error(b, "53200", "out of memory encoding the result of statement %d", stmt + 1);
    } else {
        peer_send(b->cc, &w);
    }
    wbuf_free(&w);
}

static void
br_result_running(branch *b, int index, const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    int n = b->work.body.n;
    if (st == PGRES_PIPELINE_ABORTED)
        return;
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
        br_set_pg_error(b, res);
        return;
    }
    if (index < b->first_stmt)
        return; /* BEGIN */
    int i = index - b->first_stmt;
    if (i < n) {
        if (!b->err)
            br_send_result(b, res, i);
        return;
    }
    int e = i - n - b->end_skip;
    if (e < 0)
        return; /* SET CONSTRAINTS ALL IMMEDIATE, SET LOCAL ROLE NONE */
    switch (b->flags & WORK_END_MASK) {
    case WORK_PREPARE:
        if (e == 0) {
            if (st == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 1) {
                b->xid_seen = true;
                b->xid_null = PQgetisnull(res, 0, 0);
                if (!b->xid_null)
                    b->xid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
            }
        } else if (e == 1 && st == PGRES_COMMAND_OK) {
            b->prepared = true;
        }
        break;
    case WORK_COMMIT:
        if (st == PGRES_COMMAND_OK && strcmp(PQcmdStatus((PGresult *)res), "COMMIT") == 0)
            b->committed = true;
        else if (st == PGRES_COMMAND_OK)
            br_set_error(b, "40000", "the transaction of branch \"%s\" was rolled back", b->name);
        break;
    default:
        break;
    }
}

/* Sync of a WORK pipeline: the request's outcome. */
static void
br_sync_running(branch *b)
{
    uint8_t end = b->flags & WORK_END_MASK;

    if (end == WORK_PREPARE && b->slot_reserved) {
        if (b->prepared)
            slots_prepared(br_slots);
        else
            slots_unreserve(br_slots);
        b->slot_reserved = false;
    }
    b->flags &= (uint8_t)~WORK_OPEN;

    if (b->err) {
        if (b->prepared) {
            /* only a local error gets here: PostgreSQL voted yes but we
             * cannot report the results; take the vote back */
            br_reply_error(b);
            br_forget(b);
            br_clear_outcome(b);
            br_set_state(b, BR_UNDO_PREPARE);
            char sql[BRANCH_NAME_MAX + 64];
            snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", b->name);
            pgc_query(b->pc, sql, 0, NULL);
            pgc_sync(b->pc);
            return;
        }
        if (b->committed) {
            /* a local error after a one-phase COMMIT went through */
            if (b->cc) {
                proto_done d = {.tag = b->tag,
                                .status = DONE_UNKNOWN,
                                .sqlstate = b->sqlstate,
                                .message = b->msg,
                                .detail = "The transaction was committed, but the results of "
                                          "its statements could not be sent."};
                peer_reply_done(b->cc, &d);
            }
            br_release_and_free(b);
            return;
        }
        if (end == WORK_PREPARE && !b->local_err && strcmp(b->sqlstate, "53200") == 0) {
            /* PostgreSQL's prepared-transaction slots are full although our
             * count said otherwise: others prepared behind our back */
            slots_request_resync(br_slots);
        }
        br_fail(b);
        return;
    }

    switch (end) {
    case WORK_PREPARE: {
        if (!b->prepared || !b->xid_seen) {
            br_set_error(b, "XX000", "unexpected results from PREPARE TRANSACTION");
            br_fail(b);
            return;
        }
        log_debug("branch %s prepared (xid %" PRIu64 "%s)", b->name, b->xid,
                  b->xid_null ? ", read-only" : "");
        if (FAILPOINT("participant-after-prepare") == FP_ERROR)
            peer_drop(b->cc, "failpoint participant-after-prepare");
        if (b->xid_null) {
            br_clear_outcome(b);
            br_set_state(b, BR_READONLY_END);
            char sql[BRANCH_NAME_MAX + 64];
            snprintf(sql, sizeof(sql), "COMMIT PREPARED '%s'", b->name);
            pgc_query(b->pc, sql, 0, NULL);
            pgc_sync(b->pc);
            return;
        }
        br_reply(b, DONE_PREPARED, b->xid);
        br_release_and_free(b);
        return;
    }
    case WORK_COMMIT:
    case WORK_ROLLBACK:
        br_reply(b, DONE_OK, 0);
        br_release_and_free(b);
        return;
    default:
        break;
    }

    /* no end flag: the transaction must still be open */
    PGTransactionStatusType ts = pgc_txn_status(b->pc);
    if (ts != PQTRANS_INTRANS) {
        br_set_error(b, "25P01",
                     "the transaction of branch \"%s\" is no longer open after its statements",
                     b->name);
        br_fail(b);
        return;
    }
    br_reply(b, DONE_OK, 0);
    br_clear_work(b);
    br_set_state(b, BR_IDLE);
    if (b->cc == NULL || peer_shutting_down())
        br_rollback(b);
}

static void
br_on_result(pgc *pc, int index, const PGresult *res, void *arg)
{
    (void)pc;
    branch *b = arg;
    switch (b->state) {
    case BR_RUNNING:
        br_result_running(b, index, res);
        break;
    case BR_READONLY_END:
    case BR_UNDO_PREPARE:
    case BR_ROLLBACK: {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            /* keep the error of the request if there was one */
            br_clear_outcome(b);
            br_set_pg_error(b, res);
        }
        break;
    }
    default:
        log_panic("branch %s: result in state %s", b->name, br_state_names[b->state]);
    }
}

static void
br_on_sync(pgc *pc, void *arg)
{
    (void)pc;
    branch *b = arg;
    switch (b->state) {
    case BR_RUNNING:
        br_sync_running(b);
        break;
    case BR_READONLY_END:
        if (b->err) {
            /* still prepared; the coordinator's recovery will roll it back */
            log_report_with(&(log_fields){.gid = b->name}, LOG_LVL_WARNING, b->sqlstate, b->detail,
                            b->hint,
                            "branch %s: could not commit read-only prepared transaction: %s",
                            b->name, b->msg ? b->msg : "");
            br_reply_error(b);
        } else {
            slots_finished(br_slots);
            br_reply(b, DONE_READONLY, 0);
        }
        br_release_and_free(b);
        break;
    case BR_UNDO_PREPARE:
        if (b->err)
            log_report_with(&(log_fields){.gid = b->name}, LOG_LVL_WARNING, b->sqlstate, b->detail,
                            b->hint, "branch %s: could not roll back prepared transaction: %s",
                            b->name, b->msg ? b->msg : "");
        else
            slots_finished(br_slots);
        br_release_and_free(b);
        break;
    case BR_ROLLBACK:
        br_release_and_free(b);
        break;
    default:
        log_panic("branch %s: sync in state %s", b->name, br_state_names[b->state]);
    }
}

static void
br_on_broken(pgc *pc, const char *reason, void *arg)
{
    (void)pc;
    branch *b = arg;
    b->pc = NULL;
    switch (b->state) {
    case BR_RUNNING:
        if (b->slot_reserved) {
            /* the PREPARE may or may not have happened; the recount settles it */
            slots_unreserve(br_slots);
            b->slot_reserved = false;
        }
        if ((b->flags & WORK_END_MASK) == WORK_COMMIT && b->commit_sent && !b->err) {
            if (b->cc) {
                char msg[512];
                snprintf(msg, sizeof(msg),
                         "connection to PostgreSQL lost while COMMIT was in flight: %s", reason);
                proto_done d = {
                    .tag = b->tag, .status = DONE_UNKNOWN, .sqlstate = "08006", .message = msg};
                peer_reply_done(b->cc, &d);
            }
        } else {
            br_clear_outcome(b);
            br_set_error(b, "08006", "connection to PostgreSQL lost: %s", reason);
            br_reply_error(b);
        }
        br_free(b);
        break;
    case BR_IDLE:
        if (b->cc == NULL) {
            br_free(b);
        } else {
            br_set_state(b, BR_FAILED);
            log_with(&(log_fields){.gid = b->name}, LOG_LVL_LOG,
                     "branch %s: connection to PostgreSQL lost; its transaction is rolled back",
                     b->name);
        }
        break;
    case BR_READONLY_END:
        br_clear_outcome(b);
        br_set_error(b, "08006", "connection to PostgreSQL lost: %s", reason);
        br_reply_error(b);
        br_free(b);
        break;
    case BR_UNDO_PREPARE:
    case BR_ROLLBACK:
        br_free(b);
        break;
    case BR_WAIT_SLOT:
        /* an existing branch waiting for a slot loses its transaction */
        br_clear_outcome(b);
        br_set_error(b, "08006", "connection to PostgreSQL lost: %s", reason);
        br_reply_error(b);
        br_free(b);
        break;
    default:
        log_panic("branch %s: connection lost in state %s", b->name, br_state_names[b->state]);
    }
}

static bool
br_backlogged(void *arg)
{
    branch *b = arg;
    return peer_backlogged(b->cc);
}

static const pgc_ops br_pg_ops = {
    .on_result = br_on_result,
    .on_sync = br_on_sync,
    .on_broken = br_on_broken,
    .backlogged = br_backlogged,
};

/* ------------------------------------------------------------------------
 * WORK requests
 */

void
branch_init(pg_pool *pool, slots *sl, const part_conf *conf)
{
    br_pool = pool;
    br_slots = sl;
    br_conf = conf;
    br_max_frame = (size_t)conf->max_frame;
}

void
branch_on_work(coord_conn *cc, branch_set *set, const frame_view *f)
{
    uint8_t *copy = malloc(f->len ? f->len : 1);
    if (copy == NULL) {
        peer_protocol_error(cc, "out of memory");
        return;
    }
    memcpy(copy, f->payload, f->len);
    frame_view fv = {.type = f->type, .len = f->len, .payload = copy};
    proto_work w;
    if (!proto_get_work(&fv, &w)) {
        free(copy);
        peer_protocol_error(cc, "malformed WORK message");
        return;
    }
    char err[512];
    uint8_t end = w.flags & WORK_END_MASK;
    branch *b = NULL;

    if (w.flags & ~(WORK_OPEN | WORK_END_MASK)) {
        peer_reply_status(cc, w.tag, DONE_ERROR, 0, "08P01", "unknown WORK flags 0x%02x", w.flags);
        goto out;
    }
    if (end & (end - 1)) {
        peer_reply_status(cc, w.tag, DONE_ERROR, 0, "08P01",
                          "WORK may carry only one of PREPARE, COMMIT and ROLLBACK");
        goto out;
    }
    if (!peer_check_branch_request(cc, w.tag, w.epoch, w.branch))
        goto out;
    b = br_find(set, w.branch);
    if (peer_shutting_down() && !(end == WORK_ROLLBACK && !(w.flags & WORK_OPEN))) {
        peer_reply_status(cc, w.tag, DONE_ERROR, 0, "57P01",
                          "terminating branch \"%s\": the participant is shutting down", w.branch);
        goto out;
    }
    if (w.flags & WORK_OPEN) {
        if (b && b->state != BR_FAILED) {
            peer_reply_status(cc, w.tag, DONE_ERROR, 0, "42710", "branch \"%s\" is already open",
                              w.branch);
            goto out;
        }
        if (b)
            br_free(b);
        /* whose branch, and the role it runs as ([roles]) */
        const char *role = pconf_role_for(br_conf, w.client);
        if (role == NULL) {
            const char *who = w.client ? w.client : "";
            log_report_with(&(log_fields){.gid = w.branch, .client = who}, LOG_LVL_LOG, "42501",
                            NULL, NULL,
                            "branch %s refused: client \"%s\" has no database role on this "
                            "participant",
                            w.branch, who);
            if (w.client)
                peer_reply_status(cc, w.tag, DONE_ERROR, 0, "42501",
                                  "client \"%s\" has no database role on participant \"%s\": "
                                  "map its certificate name in [roles]",
                                  w.client, br_conf->name);
            else
                peer_reply_status(cc, w.tag, DONE_ERROR, 0, "42501",
                                  "participant \"%s\" maps clients to database roles ([roles]), "
                                  "and this coordinator does not say whose transaction this is "
                                  "(protocol 1.5)",
                                  br_conf->name);
            goto out;
        }
        b = br_create(cc, set, w.branch);
        if (b == NULL) {
            peer_reply_status(cc, w.tag, DONE_ERROR, 0, "53200", "out of memory");
            goto out;
        }
        snprintf(b->role, sizeof(b->role), "%s", role);
        const char *who = w.client ? w.client : "";
        log_with(&(log_fields){.gid = b->name, .client = who}, LOG_LVL_DEBUG,
                 "branch %s opened for client \"%s\"%s%s%s", b->name, who,
                 b->role[0] ? " as role \"" : "", b->role, b->role[0] ? "\"" : "");
    } else {
        if (b == NULL) {
            if (end == WORK_ROLLBACK && w.body.n == 0)
                peer_reply_plain(cc, w.tag, DONE_OK, 0);
            else
                peer_reply_status(cc, w.tag, DONE_ERROR, 0, "25P01", "branch \"%s\" does not exist",
                                  w.branch);
            goto out;
        }
        if (b->state == BR_FAILED) {
            if (end == WORK_ROLLBACK && w.body.n == 0)
                peer_reply_plain(cc, w.tag, DONE_OK, 0);
            else
                peer_reply_status(cc, w.tag, DONE_ERROR, 0, "08006",
                                  "connection to PostgreSQL was lost; branch \"%s\" was rolled "
                                  "back",
                                  w.branch);
            br_free(b);
            goto out;
        }
        if (b->state != BR_IDLE) {
            peer_reply_status(cc, w.tag, DONE_ERROR, 0, "55006",
                              "branch \"%s\" is busy with another request", w.branch);
            goto out;
        }
    }

    /* the branch takes the request */
    b->tag = w.tag;
    b->flags = w.flags;
    b->payload = copy;
    b->work = w;
    b->has_work = true;
    copy = NULL;
    br_clear_outcome(b);

    for (uint16_t i = 0; i < b->work.body.n; i++) {
        if (!br_statement_allowed(b->work.body.stmts[i].sql, b->role[0] != '\0', err,
                                  sizeof(err))) {
            br_set_error(b, "0A000", "statement %u: %s", i + 1, err);
            br_fail(b);
            return;
        }
    }
    br_start(b);
    return;
out:
    proto_work_clear(&w);
    free(copy);
}

/* ------------------------------------------------------------------------
 * CANCEL
 *
 * The coordinator gave up on the branch's request (its statement_timeout).
 * A request still waiting for a connection or a slot fails here with 57014;
 * one running in PostgreSQL gets a cancel request there (pgc_cancel), and
 * its batch then ends with PostgreSQL's 57014 through the usual path (error,
 * DONE_ERROR, ROLLBACK, connection back to the pool).  If the batch
 * finishes first the cancel finds the backend idle and does nothing; the
 * coordinator then rolls the branch back with a WORK_ROLLBACK.
 */

void
branch_on_cancel(coord_conn *cc, branch_set *set, const frame_view *f)
{
    proto_cancel m;
    if (!proto_get_cancel(f, &m)) {
        peer_protocol_error(cc, "malformed CANCEL message");
        return;
    }
    if (!peer_check_branch_request(cc, m.tag, m.epoch, m.branch))
        return;
    branch *b = br_find(set, m.branch);
    const char *what = "nothing in flight";
    if (b != NULL) {
        switch (b->state) {
        case BR_WAIT_CONN:
            pool_cancel(br_pool, &b->pw);
            br_set_error(b, "57014",
                         "canceling statement of branch \"%s\" at the coordinator's request, "
                         "before it got a PostgreSQL connection",
                         b->name);
            br_fail(b);
            what = "waiting for a connection: failed";
            break;
        case BR_WAIT_SLOT:
            slots_cancel(br_slots, &b->sw);
            br_set_error(b, "57014",
                         "canceling PREPARE of branch \"%s\" at the coordinator's request, "
                         "before it got a prepared-transaction slot",
                         b->name);
            br_fail(b);
            what = "waiting for a slot: failed";
            break;
        case BR_RUNNING:
            what = pgc_cancel(b->pc) ? "running: cancel sent to PostgreSQL"
                                     : "running: nothing to cancel";
            break;
        default:
            break;
        }
    }
    log_with(&(log_fields){.gid = m.branch}, LOG_LVL_LOG,
             "branch %s: cancel requested by the coordinator (%s)", m.branch, what);
    peer_reply_plain(cc, m.tag, DONE_OK, 0);
}

/* ------------------------------------------------------------------------
 * Coordinator gone, shutdown, exit
 */

void
branch_detach_all(branch_set *set)
{
    while (set->head) {
        branch *b = set->head;
        br_forget(b);
        switch (b->state) {
        case BR_NEW:
        case BR_FAILED:
            br_free(b);
            break;
        case BR_WAIT_CONN:
            pool_cancel(br_pool, &b->pw);
            br_free(b);
            break;
        case BR_WAIT_SLOT:
            slots_cancel(br_slots, &b->sw);
            br_rollback(b);
            break;
        case BR_IDLE:
            br_rollback(b);
            break;
        case BR_RUNNING:
        case BR_READONLY_END:
        case BR_UNDO_PREPARE:
        case BR_ROLLBACK:
            /* finishes on PostgreSQL, unanswered */
            break;
        default:
            log_panic("branch %s: detach in state %s", b->name, br_state_names[b->state]);
        }
    }
}

void
branch_shutdown_all(void)
{
    int n = 0;
    for (branch *b = br_all; b; b = b->all_next)
        n += b->state == BR_IDLE || b->state == BR_WAIT_CONN || b->state == BR_WAIT_SLOT;
    if (n > 0)
        log_log("shutting down: rolling back %d unprepared branch%s", n, n == 1 ? "" : "es");
    branch *next;
    for (branch *b = br_all; b; b = next) {
        next = b->all_next;
        switch (b->state) {
        case BR_WAIT_CONN:
        case BR_WAIT_SLOT:
            pool_cancel(br_pool, &b->pw);
            slots_cancel(br_slots, &b->sw);
            br_set_error(b, "57P01", "terminating branch \"%s\": the participant is shutting down",
                         b->name);
            br_reply_error(b);
            if (b->state == BR_WAIT_CONN)
                br_free(b);
            else
                br_rollback(b);
            break;
        case BR_IDLE:
            br_rollback(b);
            break;
        case BR_FAILED:
            br_free(b);
            break;
        default:
            break;
        }
    }
}

int
branch_live_count(void)
{
    return br_live;
}

void
branch_free_all(void)
{
    while (br_all) {
        branch *b = br_all;
        b->pc = NULL; /* the pool closes its connections itself */
        br_free(b);
    }
}
