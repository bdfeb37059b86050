/*
 * slots.h — accounting of PostgreSQL's prepared-transaction slots.
 *
 * PostgreSQL refuses PREPARE TRANSACTION once max_prepared_transactions
 * transactions of the whole cluster are prepared.  The participant keeps its
 * own count so that a burst of prepares waits here (bounded by
 * prepare_wait_timeout) instead of failing in PostgreSQL, and so that the
 * slots are never all taken by branches still waiting for phase two.
 *
 *   prepared   transactions believed prepared in the cluster
 *   reserved   PREPAREs in flight (a slot was granted, the result is not in)
 *
 * A PREPARE may start while prepared + reserved < max.  Other sessions of
 * the cluster may prepare or finish transactions behind our back, so while
 * anyone waits the count is re-read from pg_prepared_xacts (through the
 * resync callback) at most once a second.
 *
 * The budget (slots_budget) is what a coordinator is told in HELLO_OK: the
 * slots not held by other applications (prepared transactions whose names
 * are not dtx's, "foreign"), at least 1.  The coordinator admits its
 * PREPARE rounds against it (coordinator/slotq.h), so that dtx's own
 * branches never wait here for each other; the wait here remains for what
 * the budget cannot see (other applications preparing later, several
 * coordinators sharing the cluster).
 */
#ifndef DTX_PART_SLOTS_H
#define DTX_PART_SLOTS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct slots slots;

/* The count of prepared transactions in the cluster, and of those not
 * named by dtx ("dtx:" is the prefix of every gid, design.md section 3). */
#define SLOTS_COUNT_SQL                                                                            \
    "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE gid NOT LIKE 'dtx:%') "         \
    "FROM pg_catalog.pg_prepared_xacts"

/* ok: a slot is reserved for the waiter; !ok: the wait timed out. */
typedef void (*slot_grant_fn)(bool ok, void *arg);

typedef struct slot_waiter {
    slot_grant_fn on_grant;
    void *arg;
    /* private */
    struct slots *owner;
    struct event *timer;
    struct slot_waiter *next, *prev;
    bool queued;
} slot_waiter;

typedef enum slot_acquire_result {
    SLOT_GRANTED = 0,
    SLOT_QUEUED = 1,
    SLOT_FAILED = 2, /* no waiting allowed (timeout 0) or out of memory */
} slot_acquire_result;

/* Called when the count should be re-read; the owner answers with
 * slots_resync(). */
typedef void (*slots_resync_fn)(void *arg);

/* max slots, of which `prepared` are taken now, `foreign` of them by
 * transactions not named by dtx; a PREPARE waits at most wait_ms for one
 * (0: no waiting).  NULL on out-of-memory.  Free with slots_free() (NULL is
 * fine). */
slots *slots_create(struct event_base *base, int max, int prepared, int foreign, int64_t wait_ms)
    __attribute__((warn_unused_result));
void slots_free(slots *s);
void slots_set_resync(slots *s, slots_resync_fn fn, void *arg);
/* Have the count re-read now (calls the resync function, if one is set):
 * for a caller that learned it is wrong, e.g. PostgreSQL refused a PREPARE
 * with 53200 although a slot was free here.  This is how branch.c reaches
 * resolve.c's recount without depending on it. */
void slots_request_resync(slots *s);

slot_acquire_result slots_acquire(slots *s, slot_waiter *w) __attribute__((warn_unused_result));
void slots_cancel(slots *s, slot_waiter *w);
/* A reserved slot's PREPARE succeeded: reserved -> prepared. */
void slots_prepared(slots *s);
/* A reserved slot's PREPARE failed or was never sent: reserved -> free. */
void slots_unreserve(slots *s);
/* A prepared transaction was committed or rolled back: prepared -> free. */
void slots_finished(slots *s);
/* The cluster-wide count read from pg_prepared_xacts, and how many of
 * those are not named by dtx. */
void slots_resync(slots *s, int prepared, int foreign);
/* max less the foreign ones, at least 1: what a coordinator may use */
int slots_budget(const slots *s);

int slots_max(const slots *s);
/* prepare_wait_timeout changed (reload): waits queued from now on use it */
void slots_set_wait(slots *s, int64_t wait_ms);
int slots_in_use(const slots *s);

#endif
