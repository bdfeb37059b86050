/*
 * resolve.h — phase-two and bookkeeping requests that are not bound to an
 * open branch: FINISH (COMMIT/ROLLBACK PREPARED), LIST (prepared branches
 * by prefix), the internal recount of prepared transactions, and the record
 * of a HELLO's new epoch in the fence table (fence.h).  They run on any
 * pool connection, with phase-two priority.
 */
#ifndef DTX_PART_RESOLVE_H
#define DTX_PART_RESOLVE_H

#include "frame.h"
#include "peer.h"
#include "pgpool.h"
#include "slots.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct resolve_req resolve_req;

typedef struct resolve_set {
    resolve_req *head;
} resolve_set;

/* Module set-up: the pool the requests lease from, the slots a FINISH
 * frees and the count answers, and the largest frame a LIST_REPLY may
 * fill (max_frame).  Pointers kept, not copied. */
void resolve_init(pg_pool *pool, slots *sl, size_t max_frame);
void resolve_on_finish(coord_conn *cc, resolve_set *set, const frame_view *f);
void resolve_on_list(coord_conn *cc, resolve_set *set, const frame_view *f);
/* The record of a HELLO's epoch is over.  cc is the HELLO's connection, or
 * NULL when it went away meanwhile (the record may still have been
 * committed: fence.h's memory then has it).  admitted, or refused with
 * sqlstate and message (PostgreSQL's SQLSTATE when it failed the record).
 * Strings are valid during the call. */
typedef void (*resolve_fence_fn)(coord_conn *cc, const char *name, bool admitted,
                                 const char *sqlstate, const char *message);
/* Record (name, epoch, instance) in the fence table, in one transaction
 * committed with synchronous_commit on, then judge it (fence_recorded) and
 * call done — always exactly once, from the event loop, unless cc goes away
 * while the request still waits for a pool connection (then nothing was
 * written and done is not called). */
void resolve_fence_record(coord_conn *cc, resolve_set *set, const char *name, uint64_t epoch,
                          uint64_t instance, resolve_fence_fn done);
/* Re-read the cluster's number of prepared transactions into slots
 * (slots_resync_fn). */
void resolve_count_prepared(void *arg);
/* cc is gone: drop waiting requests; running ones finish unanswered. */
void resolve_detach_all(resolve_set *set);
int resolve_live_count(void);
void resolve_free_all(void);

#endif
