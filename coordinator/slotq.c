/*
 * slotq.c — see slotq.h.
 *
 * NOTES
 *  What this file owns: per participant a budget and a count of slots
 *  handed out, and one FIFO list of waiters, each with its own copy of the
 *  participant indexes it needs.  Invariants:
 *    - 0 <= used[i]; used[i] <= budget[i] is kept by every grant but may be
 *      broken by a budget that shrank (a participant reconnected with a
 *      smaller one): grants to i then stop until enough is given back;
 *    - a waiter is on the list exactly while `queued` is set, and then
 *      holds nothing;
 *    - grants happen only in slotq_grant_cb (or at once in slotq_acquire
 *      when the list is empty), never inside slotq_release.
 *  The grant pass walks the list in order and marks, per participant with
 *  a budget, whether a waiter ahead of the current one still waits for it
 *  (`blocked`); a waiter is granted only if none of its participants is
 *  blocked and all have a free slot.  Granting in this order is what makes
 *  the admission free of cycles: a transaction waits only here, holding no
 *  slot, and takes all of its slots in one step.
 */
#include "slotq.h"

#include <stdlib.h>
#include <string.h>

struct slotq {
    int n;
    int *budget; /* 0: no limit */
    int *used;
    bool *blocked; /* scratch of the grant pass */
    slotq_waiter *head, *tail;
    int nwaiting;
    uint64_t nwaits;
    struct event *ev_grant;
};

static void slotq_grant_cb(evutil_socket_t fd, short what, void *arg);

slotq *
slotq_create(struct event_base *base, int n)
{
    slotq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->n = n;
    size_t m = n > 0 ? (size_t)n : 1;
    q->budget = calloc(m, sizeof(int));
    q->used = calloc(m, sizeof(int));
    q->blocked = calloc(m, sizeof(bool));
    q->ev_grant = event_new(base, -1, 0, slotq_grant_cb, q);
    if (q->budget == NULL || q->used == NULL || q->blocked == NULL || q->ev_grant == NULL) {
        slotq_free(q);
        return NULL;
    }
    return q;
}

static void
slotq_unlink(slotq *q, slotq_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
    q->nwaiting--;
    free(w->need);
    w->need = NULL;
    w->n = 0;
}

void
slotq_free(slotq *q)
{
    if (q == NULL)
        return;
    while (q->head)
        slotq_unlink(q, q->head);
    if (q->ev_grant)
        event_free(q->ev_grant);
    free(q->budget);
    free(q->used);
    free(q->blocked);
    free(q);
}

static bool
slotq_free_slot(const slotq *q, int i)
{
    return q->budget[i] <= 0 || q->used[i] < q->budget[i];
}

static void
slotq_schedule(slotq *q)
{
    if (q->head)
        event_active(q->ev_grant, 0, 0);
}

void
slotq_set_budget(slotq *q, int i, int budget)
{
    if (i < 0 || i >= q->n)
        return;
    q->budget[i] = budget > 0 ? budget : 0;
    slotq_schedule(q);
}

int
slotq_budget(const slotq *q, int i)
{
    return i >= 0 && i < q->n ? q->budget[i] : 0;
}

int
slotq_used(const slotq *q, int i)
{
    return i >= 0 && i < q->n ? q->used[i] : 0;
}

int
slotq_waiting(const slotq *q)
{
    return q->nwaiting;
}

uint64_t
slotq_waits_total(const slotq *q)
{
    return q->nwaits;
}

static bool
slotq_fits(const slotq *q, const int *need, int n)
{
    for (int k = 0; k < n; k++)
        if (q->blocked[need[k]] || !slotq_free_slot(q, need[k]))
            return false;
    return true;
}

static void
slotq_take(slotq *q, const int *need, int n)
{
    for (int k = 0; k < n; k++)
        q->used[need[k]]++;
}

bool
slotq_acquire(slotq *q, slotq_waiter *w, const int *need, int n, bool *oom)
{
    *oom = false;
    for (int k = 0; k < n; k++)
        if (need[k] < 0 || need[k] >= q->n)
            abort(); /* a caller's bug: an index of no participant */
    if (q->head == NULL && slotq_fits(q, need, n)) {
        slotq_take(q, need, n);
        return true;
    }
    w->need = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    if (w->need == NULL) {
        *oom = true;
        return false;
    }
    memcpy(w->need, need, (size_t)n * sizeof(int));
    w->n = n;
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->queued = true;
    q->nwaiting++;
    q->nwaits++;
    /* a waiter that fits although others wait (they need other
     * participants) is granted by the next pass */
    slotq_schedule(q);
    return false;
}

void
slotq_cancel(slotq *q, slotq_waiter *w)
{
    if (q == NULL || !w->queued)
        return;
    slotq_unlink(q, w);
    /* whoever it blocked may go now */
    slotq_schedule(q);
}

void
slotq_release(slotq *q, int i)
{
    if (q == NULL || i < 0 || i >= q->n)
        return;
    if (q->used[i] > 0)
        q->used[i]--;
    slotq_schedule(q);
}

static void
slotq_grant_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slotq *q = arg;
    memset(q->blocked, 0, (size_t)q->n * sizeof(bool));
    /* Grants are collected first and announced after the pass: on_grant
     * may send, fail and cancel or release, which would change the list
     * under the walk. */
    slotq_waiter *granted = NULL, **gtail = &granted;
    for (slotq_waiter *w = q->head, *next; w; w = next) {
        next = w->next;
        if (slotq_fits(q, w->need, w->n)) {
            slotq_take(q, w->need, w->n);
            slotq_unlink(q, w);
            *gtail = w;
            gtail = &w->next;
            continue;
        }
        /* it waits for a participant with a budget: later waiters may
         * not take those (a participant without a limit blocks nobody) */
        for (int k = 0; k < w->n; k++)
            if (q->budget[w->need[k]] > 0)
                q->blocked[w->need[k]] = true;
    }
    while (granted) {
        slotq_waiter *w = granted;
        granted = w->next;
        w->next = NULL;
        w->on_grant(w);
    }
}
