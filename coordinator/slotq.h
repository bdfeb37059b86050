/*
 * slotq.h — the coordinator's admission of PREPAREs against each
 * participant's prepared-transaction slots (slotq.c).
 *
 * A prepared branch holds one of PostgreSQL's max_prepared_transactions
 * slots until its transaction is decided and finished everywhere, and that
 * waits for the transaction's other branches.  If each participant let
 * PREPAREs wait for a slot on its own, transactions holding a slot on one
 * participant could wait for slots (or connections) held by transactions
 * that in turn wait on the first participant: a cycle that only a timeout
 * breaks (docs/participant.md, "Prepared-transaction slots").  So the
 * coordinator asks for every slot a transaction's PREPARE round needs at
 * once, before sending any of it, and a transaction that cannot have all of
 * them waits here holding none.
 *
 * Each participant tells its budget in HELLO_OK (protocol 1.6: its
 * max_prepared_transactions less what other applications hold prepared);
 * slotq counts the slots handed out per participant (by index into
 * co->links) and keeps one FIFO queue of waiters.  A waiter is granted when
 * every participant it needs has a free slot and no waiter queued before it
 * needs any of the same participants (so nobody is overtaken for ever, and
 * a large transaction is not starved by small ones).  A budget of 0 means
 * "not known" (a participant older than 1.6): no limit.
 *
 * Grants happen from a zero-timeout event, never inside the call that
 * freed a slot, so callers are not re-entered.
 */
#ifndef DTX_COORD_SLOTQ_H
#define DTX_COORD_SLOTQ_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct slotq slotq;
typedef struct slotq_waiter slotq_waiter;

/* The waiter now holds one slot of each participant it asked for. */
typedef void (*slotq_grant_fn)(slotq_waiter *w);

struct slotq_waiter {
    slotq_grant_fn on_grant;
    void *arg;
    /* private */
    int *need; /* participant indexes, n of them (owned by the waiter) */
    int n;
    slotq_waiter *next, *prev;
    bool queued;
};

/* For n participants (indexes 0..n-1), no budgets known yet.  NULL when
 * out of memory.  Free with slotq_free (NULL is fine): queued waiters are
 * dropped without a call. */
slotq *slotq_create(struct event_base *base, int n) __attribute__((warn_unused_result));
void slotq_free(slotq *q);

/* Participant i's budget (0: no limit).  A larger one may grant waiters. */
void slotq_set_budget(slotq *q, int i, int budget);
int slotq_budget(const slotq *q, int i);
/* slots of participant i handed out now */
int slotq_used(const slotq *q, int i);
/* transactions waiting */
int slotq_waiting(const slotq *q);
/* waits so far (acquires that were queued) */
uint64_t slotq_waits_total(const slotq *q);

/* Ask for one slot on each of the n participants need[] (distinct
 * indexes; copied).  true: granted now (on_grant is not called); false:
 * queued (on_grant follows from the event loop unless slotq_cancel), or out
 * of memory (*oom set, nothing held). */
bool slotq_acquire(slotq *q, slotq_waiter *w, const int *need, int n, bool *oom)
    __attribute__((warn_unused_result));
/* Take w off the queue (no-op when it is not queued); frees its copy. */
void slotq_cancel(slotq *q, slotq_waiter *w);
/* Give back one slot of participant i (the branch that held it is
 * finished, or never prepared).  q NULL is fine (teardown). */
void slotq_release(slotq *q, int i);

#endif
