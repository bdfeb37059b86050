/*
 * resolve.h — phase-two and bookkeeping requests that are not bound to an
 * open branch: FINISH (COMMIT/ROLLBACK PREPARED), LIST (prepared branches
 * by prefix), and the internal recount of prepared transactions.  They run
 * on any pool connection, with phase-two priority.
 */
#ifndef DTX_PART_RESOLVE_H
#define DTX_PART_RESOLVE_H

#include "frame.h"
#include "peer.h"
#include "pgpool.h"
#include "slots.h"

#include <stddef.h>

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
/* Re-read the cluster's number of prepared transactions into slots
 * (slots_resync_fn). */
void resolve_count_prepared(void *arg);
/* cc is gone: drop waiting requests; running ones finish unanswered. */
void resolve_detach_all(resolve_set *set);
int resolve_live_count(void);
void resolve_free_all(void);

#endif
