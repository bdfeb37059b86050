/*
 * test_coord_slotq.c — unit tests of coordinator/slotq.c: slots granted at
 * once while every participant has one free, all-or-nothing waits, grants
 * in queue order without overtaking a waiter that needs the same
 * participant, waiters of other participants going ahead, no limit with a
 * budget of 0 (such a participant holds back nobody), a budget that grows
 * or shrinks, cancel, and that a grant is never made inside the call that
 * freed a slot.  The whole admission (coordinator and participants under
 * mixed load) is tested in tests/integration/mixed.sh.
 */
#include "slotq.h"

#include <check.h>
#include <event2/event.h>
#include <stdlib.h>

typedef struct rec {
    slotq_waiter w;
    int granted; /* times on_grant ran */
    int order;   /* the grant's rank, 1-based */
} rec;

static int grant_seq;

static void
on_grant(slotq_waiter *w)
{
    rec *r = w->arg;
    r->granted++;
    r->order = ++grant_seq;
}

static void
rec_init(rec *r)
{
    r->w.on_grant = on_grant;
    r->w.arg = r;
    r->w.queued = false;
    r->w.need = NULL;
    r->granted = 0;
    r->order = 0;
}

/* Run what the queue made active (grants come from a zero-timeout event). */
static void
pump(struct event_base *base)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
}

static bool
take(slotq *q, rec *r, int a, int b)
{
    int need[2] = {a, b};
    bool oom = true;
    rec_init(r);
    bool got = slotq_acquire(q, &r->w, need, b < 0 ? 1 : 2, &oom);
    ck_assert(!oom);
    return got;
}

START_TEST(test_grant_and_wait)
{
    struct event_base *base = event_base_new();
    grant_seq = 0;
    slotq *q = slotq_create(base, 2);
    ck_assert_ptr_nonnull(q);
    slotq_set_budget(q, 0, 2);
    slotq_set_budget(q, 1, 1);
    rec r1, r2, r3;
    ck_assert(take(q, &r1, 0, 1));
    ck_assert_int_eq(slotq_used(q, 0), 1);
    ck_assert_int_eq(slotq_used(q, 1), 1);
    /* participant 1 is full: r2 waits holding nothing, also on 0 */
    ck_assert(!take(q, &r2, 0, 1));
    ck_assert_int_eq(slotq_used(q, 0), 1);
    ck_assert_int_eq(slotq_waiting(q), 1);
    /* r3 needs only 0, which r2 waits for too: it may not overtake r2 */
    ck_assert(!take(q, &r3, 0, -1));
    pump(base);
    ck_assert_int_eq(r2.granted + r3.granted, 0);
    ck_assert_int_eq(slotq_waiting(q), 2);
    /* the release grants nothing by itself: the loop does */
    slotq_release(q, 1);
    slotq_release(q, 0);
    ck_assert_int_eq(r2.granted, 0);
    pump(base);
    ck_assert_int_eq(r2.granted, 1);
    ck_assert_int_eq(r3.granted, 1);
    ck_assert_int_eq(r2.order, 1);
    ck_assert_int_eq(r3.order, 2);
    ck_assert_int_eq(slotq_used(q, 0), 2);
    ck_assert_int_eq(slotq_used(q, 1), 1);
    ck_assert_int_eq(slotq_waiting(q), 0);
    ck_assert(!r2.w.queued);
    slotq_free(q);
    event_base_free(base);
}
END_TEST

START_TEST(test_other_participants_go_ahead)
{
    struct event_base *base = event_base_new();
    grant_seq = 0;
    slotq *q = slotq_create(base, 3);
    for (int i = 0; i < 3; i++)
        slotq_set_budget(q, i, 1);
    rec r1, r2, r3;
    ck_assert(take(q, &r1, 0, 1));
    ck_assert(!take(q, &r2, 0, 1)); /* waits for 0 and 1 */
    /* r3 needs 2 only: nobody ahead wants it, so it goes (from the loop) */
    ck_assert(!take(q, &r3, 2, -1));
    pump(base);
    ck_assert_int_eq(r3.granted, 1);
    ck_assert_int_eq(r2.granted, 0);
    ck_assert_int_eq(slotq_used(q, 2), 1);
    slotq_release(q, 0);
    pump(base);
    ck_assert_int_eq(r2.granted, 0); /* 1 is still taken: all or nothing */
    ck_assert_int_eq(slotq_used(q, 0), 0);
    slotq_release(q, 1);
    pump(base);
    ck_assert_int_eq(r2.granted, 1);
    slotq_free(q);
    event_base_free(base);
}
END_TEST

START_TEST(test_no_budget_no_limit)
{
    struct event_base *base = event_base_new();
    slotq *q = slotq_create(base, 2);
    rec r[100];
    for (int i = 0; i < 100; i++)
        ck_assert(take(q, &r[i], 0, 1));
    ck_assert_int_eq(slotq_used(q, 0), 100);
    ck_assert_int_eq(slotq_budget(q, 0), 0);
    /* a budget below what is out: nobody new until enough came back */
    slotq_set_budget(q, 0, 99);
    rec w;
    ck_assert(!take(q, &w, 0, -1));
    slotq_release(q, 0);
    pump(base);
    ck_assert_int_eq(w.granted, 0);
    slotq_release(q, 0);
    pump(base);
    ck_assert_int_eq(w.granted, 1);
    slotq_free(q);
    event_base_free(base);
}
END_TEST

/* a participant without a limit blocks nobody: a waiter ahead that needs
 * it too does not hold back one that needs only it */
START_TEST(test_unlimited_blocks_nobody)
{
    struct event_base *base = event_base_new();
    slotq *q = slotq_create(base, 2);
    slotq_set_budget(q, 0, 1); /* participant 1: no budget told */
    rec r1, r2, r3;
    ck_assert(take(q, &r1, 0, -1));
    ck_assert(!take(q, &r2, 0, 1)); /* waits for 0 */
    ck_assert(!take(q, &r3, 1, -1));
    pump(base);
    ck_assert_int_eq(r2.granted, 0);
    ck_assert_int_eq(r3.granted, 1);
    slotq_release(q, 0);
    pump(base);
    ck_assert_int_eq(r2.granted, 1);
    slotq_free(q);
    event_base_free(base);
}
END_TEST

START_TEST(test_budget_grows)
{
    struct event_base *base = event_base_new();
    slotq *q = slotq_create(base, 1);
    slotq_set_budget(q, 0, 1);
    rec r1, r2;
    ck_assert(take(q, &r1, 0, -1));
    ck_assert(!take(q, &r2, 0, -1));
    pump(base);
    ck_assert_int_eq(r2.granted, 0);
    slotq_set_budget(q, 0, 2); /* the participant came back with more */
    pump(base);
    ck_assert_int_eq(r2.granted, 1);
    slotq_free(q);
    event_base_free(base);
}
END_TEST

START_TEST(test_cancel)
{
    struct event_base *base = event_base_new();
    slotq *q = slotq_create(base, 2);
    slotq_set_budget(q, 0, 1);
    slotq_set_budget(q, 1, 1);
    rec r1, r2, r3;
    ck_assert(take(q, &r1, 0, -1));
    ck_assert(!take(q, &r2, 0, 1)); /* waits for 0, blocks 1 */
    ck_assert(!take(q, &r3, 1, -1));
    pump(base);
    ck_assert_int_eq(r3.granted, 0); /* 1 is free, but r2 is ahead on it */
    slotq_cancel(q, &r2.w);
    ck_assert(!r2.w.queued);
    ck_assert_ptr_null(r2.w.need);
    pump(base);
    ck_assert_int_eq(r3.granted, 1);
    ck_assert_int_eq(r2.granted, 0);
    slotq_cancel(q, &r2.w); /* not queued: nothing */
    slotq_cancel(NULL, &r2.w);
    slotq_release(NULL, 0);
    /* freeing with a waiter queued drops it without a call */
    ck_assert(!take(q, &r2, 0, -1));
    slotq_free(q);
    ck_assert_int_eq(r2.granted, 0);
    event_base_free(base);
}
END_TEST

static Suite *
slotq_suite(void)
{
    Suite *s = suite_create("slotq");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_grant_and_wait);
    tcase_add_test(tc, test_other_participants_go_ahead);
    tcase_add_test(tc, test_no_budget_no_limit);
    tcase_add_test(tc, test_unlimited_blocks_nobody);
    tcase_add_test(tc, test_budget_grows);
    tcase_add_test(tc, test_cancel);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(slotq_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
