/*
 * slots.c — see slots.h.
 *
 * NOTES
 *  What this file owns: three counters and one FIFO queue of waiters, each
 *  with its own time-out timer.  Invariants:
 *    - 0 <= reserved; 0 <= ours <= prepared (a finish never drives them
 *      negative: another session may have prepared what we finish);
 *    - `ours` counts the branches this process prepared and has not seen
 *      finished: exact.  A resync (a count of pg_prepared_xacts, taken while
 *      prepares wait) never sets `prepared` below it: the count may be older
 *      than a COMMIT PREPARED whose end we have already subtracted, and
 *      subtracting it twice would let more PREPAREs through than the server
 *      has slots for.  Counting one of ours twice for a moment (a PREPARE
 *      the count saw but whose reply we had not yet handled) only errs on
 *      the safe side, until the next resync;
 *    - a waiter is on the queue exactly while its timer is pending;
 *    - grants happen from a zero-timeout event (slots_wake), never inside
 *      the call that freed a slot, so callers are not re-entered.
 *  The count is only an estimate of the cluster's: PostgreSQL stays the
 *  judge (a PREPARE beyond its limit fails with 53400 as usual).
 */
#include "slots.h"

#include "log.h"

#include <stdlib.h>
#include <time.h>

#define SLOTS_RESYNC_INTERVAL_MS 1000

struct slots {
    struct event_base *base;
    int max;
    int prepared;
    int ours;    /* of `prepared`, those this process prepared */
    int foreign; /* of `prepared`, those not named by dtx (last count) */
    int reserved;
    int64_t wait_ms;
    slot_waiter *head, *tail;
    struct event *ev_wake;
    struct event *ev_resync;
    slots_resync_fn resync_fn;
    void *resync_arg;
    bool resync_armed;
};

static void slots_wake_cb(evutil_socket_t fd, short what, void *arg);
static void slots_resync_cb(evutil_socket_t fd, short what, void *arg);

slots *
slots_create(struct event_base *base, int max, int prepared, int foreign, int64_t wait_ms)
{
    slots *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    s->max = max;
    s->prepared = prepared;
    s->foreign = foreign;
    s->wait_ms = wait_ms;
    s->ev_wake = event_new(base, -1, 0, slots_wake_cb, s);
    s->ev_resync = evtimer_new(base, slots_resync_cb, s);
    if (s->ev_wake == NULL || s->ev_resync == NULL) {
        slots_free(s);
        return NULL;
    }
    return s;
}

void
slots_free(slots *s)
{
    if (s == NULL)
        return;
    while (s->head)
        slots_cancel(s, s->head);
    if (s->ev_wake)
        event_free(s->ev_wake);
    if (s->ev_resync)
        event_free(s->ev_resync);
    free(s);
}

void
slots_set_resync(slots *s, slots_resync_fn fn, void *arg)
{
    s->resync_fn = fn;
    s->resync_arg = arg;
}

void
slots_request_resync(slots *s)
{
    if (s->resync_fn)
        s->resync_fn(s->resync_arg);
}

static bool
slots_free_slot(const slots *s)
{
    return s->prepared + s->reserved < s->max;
}

static void
slots_unlink(slots *s, slot_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        s->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        s->tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
    if (w->timer) {
        event_free(w->timer);
        w->timer = NULL;
    }
}

static void
slots_arm_resync(slots *s)
{
    if (s->resync_fn == NULL || s->resync_armed)
        return;
    s->resync_armed = true;
    struct timeval tv = {SLOTS_RESYNC_INTERVAL_MS / 1000, 0};
    event_add(s->ev_resync, &tv);
}

static void
slots_resync_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slots *s = arg;
    s->resync_armed = false;
    if (s->head == NULL)
        return;
    s->resync_fn(s->resync_arg);
    slots_arm_resync(s);
}

static void
slots_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slot_waiter *w = arg;
    slots *s = w->owner;
    slots_unlink(s, w);
    w->on_grant(false, w->arg);
}

slot_acquire_result
slots_acquire(slots *s, slot_waiter *w)
{
    if (s->head == NULL && slots_free_slot(s)) {
        s->reserved++;
        return SLOT_GRANTED;
    }
    if (s->wait_ms <= 0)
        return SLOT_FAILED;
    w->timer = evtimer_new(s->base, slots_timeout_cb, w);
    if (w->timer == NULL)
        return SLOT_FAILED;
    w->owner = s;
    struct timeval tv = {(time_t)(s->wait_ms / 1000), (suseconds_t)((s->wait_ms % 1000) * 1000)};
    event_add(w->timer, &tv);
    w->next = NULL;
    w->prev = s->tail;
    if (s->tail)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
    w->queued = true;
    log_debug("waiting for a prepared-transaction slot (%d prepared, %d reserved, max %d)",
              s->prepared, s->reserved, s->max);
    /* our count may be stale (others finished transactions): re-read soon */
    if (s->resync_fn && !s->resync_armed) {
        s->resync_fn(s->resync_arg);
        slots_arm_resync(s);
    }
    return SLOT_QUEUED;
}

void
slots_cancel(slots *s, slot_waiter *w)
{
    if (w->queued)
        slots_unlink(s, w);
}

static void
slots_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slots *s = arg;
    while (s->head && slots_free_slot(s)) {
        slot_waiter *w = s->head;
        slots_unlink(s, w);
        s->reserved++;
        w->on_grant(true, w->arg);
    }
}

static void
slots_wake(slots *s)
{
    if (s->head && slots_free_slot(s))
        event_active(s->ev_wake, 0, 0);
}

void
slots_prepared(slots *s)
{
    if (s->reserved > 0)
        s->reserved--;
    s->prepared++;
    s->ours++;
}

void
slots_unreserve(slots *s)
{
    if (s->reserved > 0)
        s->reserved--;
    slots_wake(s);
}

void
slots_finished(slots *s)
{
    if (s->prepared > 0)
        s->prepared--;
    if (s->ours > 0)
        s->ours--;
    if (s->ours > s->prepared)
        s->ours = s->prepared;
    slots_wake(s);
}

void
slots_resync(slots *s, int prepared, int foreign)
{
    s->foreign = foreign;
    if (prepared < s->ours)
        prepared = s->ours;
    if (prepared != s->prepared)
        log_debug("prepared transactions in the cluster: %d (counted %d)", prepared, s->prepared);
    s->prepared = prepared;
    slots_wake(s);
}

int
slots_budget(const slots *s)
{
    int b = s->max - s->foreign;
    return b > 0 ? b : 1;
}

int
slots_max(const slots *s)
{
    return s->max;
}

int
slots_in_use(const slots *s)
{
    return s->prepared + s->reserved;
}

void
slots_set_wait(slots *s, int64_t wait_ms)
{
    s->wait_ms = wait_ms;
}
