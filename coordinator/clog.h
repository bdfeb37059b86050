/*
 * clog.h — the coordinator's commit log (clog.c): the records it writes to
 * the WAL, replay at start-up, the pending commits, and the outcome memory
 * STATUS answers from.
 */
#ifndef DTX_CLOG_H
#define DTX_CLOG_H

#include "coord.h"

#include "proto.h"
#include "wal.h"

/* What became of one branch of a logged commit.  Values are stored in
 * HEURISTIC_END records: never renumber them. */
typedef enum clog_branch_result {
    BRANCH_PENDING = 0,     /* not finished yet (in memory only) */
    BRANCH_COMMITTED = 1,   /* COMMIT PREPARED done, or proven committed */
    BRANCH_ROLLED_BACK = 2, /* heuristic: rolled back by someone else */
    BRANCH_VANISHED = 3,    /* heuristic: gone, and its outcome cannot be proven */
} clog_branch_result;

/* One branch of a COMMIT record. */
typedef struct clog_branch {
    char participant[PART_NAME_MAX];
    uint64_t xid;
    uint8_t result; /* clog_branch_result; in memory, until END */
    bool inflight;  /* in memory only: the resolver has a FINISH out */
} clog_branch;

/* A COMMIT without END: still to be finished on every branch.  Opaque: the
 * clog owns it, from replay or clog_commit until clog_end. */
typedef struct clog_pending clog_pending;

/* Outcomes are kept, and forgotten, in chunks of this many seqs (clog.c). */
#define CLOG_CHUNK_SEQS 1024u

typedef void (*clog_durable_fn)(void *arg);

/* Open the log in dir and replay it; NULL with err set on failure.  Closed
 * (and freed) with clog_close. */
clog *clog_open(coord *co, const char *dir, char *err, size_t errlen);
void clog_close(clog *l);
/* highest epoch recorded so far (0 for a new log) */
uint64_t clog_last_epoch(const clog *l);
/* log a new epoch, claimed by instance, and call cb once it is durable */
void clog_begin_epoch(clog *l, uint64_t epoch, uint64_t instance, clog_durable_fn cb, void *arg);
/* COMMIT{gid, branches} (br is copied): cb runs on the loop once durable */
void clog_commit(clog *l, const char *gid, const clog_branch *br, int n, clog_durable_fn cb,
                 void *arg);
/* Every branch of a pending commit is finished: log END{gid} (not forced),
 * or HEURISTIC_END when some branch has a heuristic result, and forget the
 * pending commit.  Branches still BRANCH_PENDING count as committed (the
 * caller saw them commit). */
void clog_end(clog *l, const char *gid);
/* Record what became of one branch of a pending commit (no log write: END
 * or HEURISTIC_END carries it).  Unknown gid or participant: no-op. */
void clog_set_branch_result(clog *l, const char *gid, const char *participant,
                            clog_branch_result r);
/* ONEPHASE{gid}: marks a gid whose outcome was decided by a one-phase
 * commit; cb once durable */
void clog_onephase(clog *l, const char *gid, clog_durable_fn cb, void *arg);
/* outcome known from the log (or a recent in-memory outcome) for STATUS;
 * *detail (may be NULL) points into the clog, valid until its next call */
proto_outcome clog_outcome_of(clog *l, const char *gid, const char **detail);
/* remember the outcome of a finished transaction for STATUS */
void clog_remember(clog *l, const char *gid, proto_outcome o);
/* Transactions with a heuristic outcome whose END is logged, still within
 * outcome_retention: fn is called for each, oldest first.  The strings are
 * the clog's, valid during the call. */
typedef void (*clog_heuristic_fn)(void *arg, const char *gid, uint64_t ended_ms,
                                  const char *participants);
void clog_foreach_heuristic(clog *l, clog_heuristic_fn fn, void *arg);
/* Start periodic checkpoints (checkpoint_interval, checkpoint_segments);
 * call once the epoch is durable. */
void clog_checkpoint_start(clog *l);
/* ms since the last checkpoint ended (or since the log was opened) */
int64_t clog_checkpoint_age_ms(const clog *l);
/* the write-ahead log under it (for its metrics) */
struct wal *clog_wal(const clog *l);

/* ---- replication --------------------------------------------------------- */

/* What the clog tells the module above it (the WAL sender), set once. */
typedef struct clog_events {
    /* the WAL made records up to lsn durable here (more to send) */
    void (*durable)(void *arg, uint64_t lsn);
} clog_events;

void clog_set_events(clog *l, const clog_events *ev, void *arg);
/* Primary with a synchronous standby: from now on a record counts as
 * durable (its clog_durable_fn runs) only once the standby has acknowledged
 * it too; false: local durability is enough again (no standby yet, or the
 * primary goes on alone), and every wait held for the standby is released. */
void clog_set_sync(clog *l, bool required);
/* The standby has made everything up to lsn durable. */
void clog_sync_acked(clog *l, uint64_t lsn);
/* Log whether the primary counts on a synchronous standby (SYNC_STANDBY,
 * not forced; nothing when it says so already). */
void clog_note_sync(clog *l, bool on, const char *name);
/* What the log last said of it (replay included): a restarted primary
 * waits for its standby when it did. */
bool clog_had_sync(const clog *l);
/* waits held for the standby's acknowledgement right now */
size_t clog_sync_waiting(const clog *l);
/* highest LSN a wait was told durable on this machine so far */
uint64_t clog_durable_lsn(const clog *l);
/* where the log is durable on this machine (waited for or not) */
uint64_t clog_flushed_lsn(clog *l);
/* the log's segment size */
uint32_t clog_segment_size(const clog *l);

/* Call cb on the loop once lsn is durable (with a synchronous standby:
 * acknowledged by it too). */
void clog_when_durable(clog *l, uint64_t lsn, clog_durable_fn cb, void *arg);
/* where the log ends (the next record's start), and its oldest position */
uint64_t clog_end_lsn(const clog *l);
uint64_t clog_oldest_lsn(const clog *l);
/* true for a log that holds no record yet (a new standby) */
bool clog_is_empty(const clog *l);
/* Primary: a reader of the log as chunks of bytes from position from (0:
 * the oldest segment kept), as far as it is durable; the caller closes it
 * with wal_reader_close.  NULL with err set when from is not available. */
wal_reader *clog_stream_open(clog *l, uint64_t from, char *err, size_t errlen);
/* Standby: take bytes [pos, pos + len) of the primary's log as they are
 * (verified first; nothing taken on error: 0 and err set); returns the LSN
 * of the last record taken.  They are written and made durable like any
 * record (clog_when_durable); clog_apply_received applies them. */
uint64_t clog_receive(clog *l, uint64_t pos, const void *bytes, size_t len, char *err,
                      size_t errlen);
/* Standby: apply every record received and durable to the memory STATUS,
 * INDOUBT and a promotion use (pending commits, outcomes, epochs). */
void clog_apply_received(clog *l);
/* Standby whose log forked from its primary's: cut it back to lsn (each
 * decision cut is logged) and replay what is left.  Everything appended
 * must be durable first (clog_when_durable of clog_end_lsn).  The clog is
 * closed and a new one returned; l itself, unchanged, with err set when the
 * cut is refused (lsn is no record boundary); NULL with err set when the
 * log cannot be opened again (l is gone). */
clog *clog_cut(clog *l, uint64_t lsn, char *err, size_t errlen);

/* Where an epoch began: the end of the record before its EPOCH record (a
 * new epoch starts a new segment, so the switch record that ends the
 * previous one is the first of its bytes), or the EPOCH record's start when
 * none comes before. */
typedef struct clog_epoch_start {
    uint64_t epoch;
    uint64_t lsn;
    uint64_t instance; /* who claimed it (0: a record from before instances) */
} clog_epoch_start;

/* The epochs begun in the retained log, oldest first (*n of them); the
 * clog's array, valid until the next epoch begins. */
const clog_epoch_start *clog_epoch_history(const clog *l, size_t *n);

/* What a participant's answer to COMMIT PREPARED of a logged commit's
 * branch says of it.  The one place that decides what "does not exist"
 * means, for phase two and the resolver alike:
 *   DONE OK                                   -> BRANCH_COMMITTED
 *   does not exist, pg_xact_status committed  -> BRANCH_COMMITTED
 *   does not exist, pg_xact_status aborted    -> BRANCH_ROLLED_BACK (heuristic)
 *   does not exist, no provable outcome       -> BRANCH_VANISHED (heuristic)
 *   busy, or any other failure                -> BRANCH_PENDING (try again)
 * A heuristic result is logged as an error naming the branch. */
clog_branch_result clog_commit_answer(const char *gid, const char *participant, uint64_t xid,
                                      const proto_done *d);

/* ---- pending commits (owned by the clog; valid until clog_end) ----------- */

/* the newest pending commit, or NULL; clog_pending_next for the older ones */
clog_pending *clog_pending_first(clog *l);
clog_pending *clog_pending_next(const clog_pending *p);
clog_pending *clog_find_pending(clog *l, const char *gid);
const char *clog_pending_gid(const clog_pending *p);
/* wall-clock time of its COMMIT record (ms since 1970) */
uint64_t clog_pending_commit_ms(const clog_pending *p);
int clog_pending_nbranches(const clog_pending *p);
/* branch i (0 <= i < nbranches); read-only: change it with the setters */
const clog_branch *clog_pending_branch(const clog_pending *p, int i);
/* index of the branch on participant, or -1 */
int clog_pending_branch_index(const clog_pending *p, const char *participant);
void clog_pending_set_result(clog_pending *p, int i, clog_branch_result r);
/* the resolver has a COMMIT PREPARED out for branch i (or no longer) */
void clog_pending_set_inflight(clog_pending *p, int i, bool inflight);
/* true when every branch of p has a result */
bool clog_pending_finished(const clog_pending *p);
/* true when some branch of p has a heuristic result */
bool clog_pending_heuristic(const clog_pending *p);
/* "committed on a; rolled back by hand on b" into buf; returns buf */
const char *clog_pending_describe(const clog_pending *p, char *buf, size_t len);
/* "a(committed),b": its branches, for INDOUBT; NULL when out of memory.
 * The caller frees it with free(). */
char *clog_pending_participants(const clog_pending *p);

#endif
