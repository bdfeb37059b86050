/*
 * test_coord_clog.c — the coordinator's commit log (coordinator/clog.c)
 * against a real WAL in a temporary directory, with a clock the test sets:
 * outcomes of many gids committed out of seq order across chunks, presumed
 * abort in between, one-phase outcomes, pending commits in the thousands,
 * pruning by outcome_retention (never a chunk with a pending commit), and
 * the same answers after a replay.
 */
#include "test_wal_util.h"
#include "clog.h"
#include "log.h"

#include <event2/event.h>

/* the clock the coordinator's log reads (coord.wall_ms) */
static uint64_t fake_now_ms = 1000000;

static uint64_t
fake_wall_ms(void)
{
    return fake_now_ms;
}

typedef struct tc {
    coord co;
    int asked;   /* durability callbacks asked for */
    int durable; /* ...and run */
} tc;

static void
count_durable(void *arg)
{
    ((tc *)arg)->durable++;
}

/* Run the loop until every durability callback asked for has run (a
 * deadline only against hanging: they come within milliseconds). */
static void
wait_durable(tc *t)
{
    int n = t->asked;
    time_t deadline = time(NULL) + 20;
    while (t->durable < n && time(NULL) < deadline) {
        struct timeval tv = {0, 100000};
        event_base_loopexit(t->co.base, &tv);
        event_base_loop(t->co.base, EVLOOP_ONCE);
    }
    ck_assert_int_eq(t->durable, n);
}

static void
tc_open(tc *t, const char *dir, uint64_t epoch)
{
    char err[1024];
    memset(t, 0, sizeof(*t));
    t->co.conf.name = "c1";
    t->co.conf.wal_segment_size = 1 << 20;
    t->co.conf.outcome_retention_ms = 60000;
    t->co.wall_ms = fake_wall_ms;
    t->co.base = event_base_new();
    ck_assert_ptr_nonnull(t->co.base);
    t->co.log = clog_open(&t->co, dir, err, sizeof(err));
    ck_assert_msg(t->co.log != NULL, "clog_open: %s", err);
    t->co.epoch = epoch;
    t->asked++;
    clog_begin_epoch(t->co.log, epoch, 0x1234, count_durable, t);
    wait_durable(t);
}

static void
tc_close(tc *t)
{
    clog_close(t->co.log);
    event_base_free(t->co.base);
}

static const char *
gid_of(uint64_t epoch, uint64_t seq)
{
    static char g[GID_MAX];
    snprintf(g, sizeof(g), "dtx:c1:%" PRIu64 ":%" PRIu64, epoch, seq);
    return g;
}

static proto_outcome
status(tc *t, uint64_t epoch, uint64_t seq)
{
    const char *detail;
    return clog_outcome_of(t->co.log, gid_of(epoch, seq), &detail);
}

static void
commit(tc *t, uint64_t epoch, uint64_t seq)
{
    clog_branch br[2];
    memset(br, 0, sizeof(br));
    snprintf(br[0].participant, sizeof(br[0].participant), "a");
    snprintf(br[1].participant, sizeof(br[1].participant), "b");
    br[0].xid = seq;
    br[1].xid = seq + 1;
    t->asked++;
    clog_commit(t->co.log, gid_of(epoch, seq), br, 2, count_durable, t);
}

/* Which seqs of 1..N the tests commit: not every third (those "abort"),
 * and they are committed in a scrambled order, as concurrent transactions
 * decide in an order other than the one they began in. */
#define N 5000u
static bool
committed_seq(uint64_t s)
{
    return s % 3 != 0;
}
static uint64_t
scrambled(uint64_t i)
{
    return (i * 2039u) % N + 1; /* 2039 is prime, so a permutation of 1..N */
}

START_TEST(test_outcomes_and_pending)
{
    tc t;
    const char *dir = tw_dir("outcomes");
    tc_open(&t, dir, 1);
    t.co.next_seq = N;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t s = scrambled(i);
        if (committed_seq(s))
            commit(&t, 1, s);
    }
    wait_durable(&t);
    for (uint64_t s = 1; s <= N; s++) {
        ck_assert_int_eq(status(&t, 1, s), committed_seq(s) ? OUTCOME_COMMITTED : OUTCOME_ABORTED);
        ck_assert_int_eq(clog_find_pending(t.co.log, gid_of(1, s)) != NULL, committed_seq(s));
    }
    ck_assert_int_eq(status(&t, 1, N + 1), OUTCOME_NOT_KNOWN); /* not begun */
    ck_assert_int_eq(status(&t, 0, 5), OUTCOME_ABORTED);

    /* finish all but seq 7 and seq 4001, in yet another order */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t s = (i * 1031u) % N + 1;
        if (committed_seq(s) && s != 7 && s != 4001)
            clog_end(t.co.log, gid_of(1, s));
    }
    int npending = 0;
    for (clog_pending *p = clog_pending_first(t.co.log); p; p = clog_pending_next(p))
        npending++;
    ck_assert_int_eq(npending, 2);
    ck_assert_ptr_nonnull(clog_find_pending(t.co.log, gid_of(1, 7)));
    ck_assert_ptr_nonnull(clog_find_pending(t.co.log, gid_of(1, 4001)));
    ck_assert_ptr_null(clog_find_pending(t.co.log, gid_of(1, 8)));

    /* one-phase commits: one learned, one never; and replay before any
     * pruning gives the same answers */
    t.co.next_seq = N + 2;
    t.asked += 2;
    clog_onephase(t.co.log, gid_of(1, N + 1), count_durable, &t);
    clog_onephase(t.co.log, gid_of(1, N + 2), count_durable, &t);
    wait_durable(&t);
    clog_remember(t.co.log, gid_of(1, N + 1), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, N + 1), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, N + 2), OUTCOME_UNKNOWN);
    tc_close(&t);
    tc_open(&t, dir, 2);
    for (uint64_t s = 1; s <= N; s++) {
        ck_assert_int_eq(status(&t, 1, s), committed_seq(s) ? OUTCOME_COMMITTED : OUTCOME_ABORTED);
        ck_assert_int_eq(clog_find_pending(t.co.log, gid_of(1, s)) != NULL, s == 7 || s == 4001);
    }
    ck_assert_int_eq(status(&t, 1, N + 1), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, N + 2), OUTCOME_UNKNOWN);

    /* past the retention: every chunk goes but those holding a pending
     * commit (1..1023 with 7, 3072..4095 with 4001); what went answers NO
     * LONGER KNOWN, never ABORTED, and so does a gid with no record that is
     * now below the floor (presumed abort can no longer be told from a
     * forgotten commit) */
    fake_now_ms += 61000;
    ck_assert_int_eq(status(&t, 1, 7), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, 8), OUTCOME_COMMITTED); /* in 7's chunk */
    ck_assert_int_eq(status(&t, 1, 9), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 1024), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 3000), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 4000), OUTCOME_COMMITTED); /* in 4001's chunk */
    ck_assert_int_eq(status(&t, 1, 4001), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, N + 1), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, N + 3), OUTCOME_NOT_KNOWN); /* an older epoch's: forgotten */

    /* replay: the same answers, and the same pending commits */
    tc_close(&t);
    tc_open(&t, dir, 3);
    ck_assert_int_eq(status(&t, 1, 7), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, 8), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, 9), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 3000), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 4001), OUTCOME_COMMITTED);
    ck_assert_int_eq(status(&t, 1, N + 1), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 3, 1), OUTCOME_NOT_KNOWN); /* not begun */
    ck_assert_ptr_nonnull(clog_find_pending(t.co.log, gid_of(1, 7)));
    ck_assert_ptr_nonnull(clog_find_pending(t.co.log, gid_of(1, 4001)));
    ck_assert_ptr_null(clog_find_pending(t.co.log, gid_of(1, 8)));

    /* once 7 ends, its chunk can go */
    clog_end(t.co.log, gid_of(1, 7));
    fake_now_ms += 61000;
    ck_assert_int_eq(status(&t, 1, 8), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 4001), OUTCOME_COMMITTED);
    tc_close(&t);
}
END_TEST

/* A participant down for long: tens of thousands of commits pending at
 * once, then finished in another order; nothing is lost or left. */
START_TEST(test_many_pending)
{
    tc t;
    tc_open(&t, tw_dir("many"), 1);
    const uint64_t n = 40000;
    t.co.next_seq = n;
    for (uint64_t s = 1; s <= n; s++)
        commit(&t, 1, s);
    wait_durable(&t);
    for (uint64_t s = 1; s <= n; s++)
        ck_assert_ptr_nonnull(clog_find_pending(t.co.log, gid_of(1, s)));
    for (uint64_t i = 0; i < n; i++) {
        uint64_t s = (i * 7919u) % n + 1; /* 7919 is prime: a permutation */
        clog_set_branch_result(t.co.log, gid_of(1, s), "a", BRANCH_COMMITTED);
        clog_end(t.co.log, gid_of(1, s));
        ck_assert_ptr_null(clog_find_pending(t.co.log, gid_of(1, s)));
    }
    ck_assert_ptr_null(clog_pending_first(t.co.log));
    for (uint64_t s = 1; s <= n; s += 97)
        ck_assert_int_eq(status(&t, 1, s), OUTCOME_COMMITTED);
    tc_close(&t);
}
END_TEST

/* A heuristic outcome is forgotten as a whole once past the retention: NO
 * LONGER KNOWN, not the plain COMMITTED its COMMIT record said, even while
 * its chunk is kept by a pending commit.  Gids are read exactly as they are
 * written. */
START_TEST(test_heuristic_forgotten)
{
    tc t;
    tc_open(&t, tw_dir("heuristic"), 1);
    t.co.next_seq = 11;
    commit(&t, 1, 10);
    commit(&t, 1, 11);
    wait_durable(&t);
    clog_set_branch_result(t.co.log, gid_of(1, 10), "a", BRANCH_COMMITTED);
    clog_set_branch_result(t.co.log, gid_of(1, 10), "b", BRANCH_ROLLED_BACK);
    clog_end(t.co.log, gid_of(1, 10));
    ck_assert_int_eq(status(&t, 1, 10), OUTCOME_HEURISTIC);
    ck_assert_int_eq(status(&t, 1, 11), OUTCOME_COMMITTED);
    const char *detail;
    ck_assert_int_eq(clog_outcome_of(t.co.log, "dtx:c1:1:011", &detail), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(clog_outcome_of(t.co.log, "dtx:c1:1: 11", &detail), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(clog_outcome_of(t.co.log, "dtx:c1:+1:11", &detail), OUTCOME_NOT_KNOWN);
    fake_now_ms += 61000;
    ck_assert_int_eq(status(&t, 1, 11), OUTCOME_COMMITTED); /* pending: kept */
    ck_assert_int_eq(status(&t, 1, 10), OUTCOME_NOT_KNOWN);
    tc_close(&t);
}
END_TEST

/* Pruning in the current epoch raises the floor no higher than the last
 * seq handed out: a transaction begun later that aborts is ABORTED. */
START_TEST(test_floor_current_epoch)
{
    tc t;
    tc_open(&t, tw_dir("floor"), 1);
    t.co.next_seq = 5;
    for (uint64_t s = 1; s <= 5; s += 2)
        commit(&t, 1, s);
    wait_durable(&t);
    for (uint64_t s = 1; s <= 5; s += 2)
        clog_end(t.co.log, gid_of(1, s));
    fake_now_ms += 61000;
    ck_assert_int_eq(status(&t, 1, 3), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 4), OUTCOME_NOT_KNOWN);
    t.co.next_seq = 7;
    ck_assert_int_eq(status(&t, 1, 6), OUTCOME_ABORTED);
    ck_assert_int_eq(status(&t, 1, 8), OUTCOME_NOT_KNOWN); /* not begun */
    commit(&t, 1, 7);
    wait_durable(&t);
    ck_assert_int_eq(status(&t, 1, 7), OUTCOME_COMMITTED);
    tc_close(&t);
}
END_TEST

/* Hundreds of chunks: the array grows, the pruned front is reclaimed when
 * the end is reached, and every answer stays right. */
START_TEST(test_many_chunks)
{
    tc t;
    tc_open(&t, tw_dir("chunks"), 1);
    const uint64_t n = 256; /* one commit in each of n chunks */
    t.co.next_seq = n * CLOG_CHUNK_SEQS;
    for (uint64_t k = 0; k < n; k++) {
        if (k == 150)
            fake_now_ms += 30000; /* the first 150 are older */
        commit(&t, 1, k * CLOG_CHUNK_SEQS + 5);
        wait_durable(&t);
        clog_end(t.co.log, gid_of(1, k * CLOG_CHUNK_SEQS + 5));
    }
    fake_now_ms += 31000 + 1; /* past the retention for the first 150 only */
    ck_assert_int_eq(status(&t, 1, 149 * CLOG_CHUNK_SEQS + 5), OUTCOME_NOT_KNOWN);
    ck_assert_int_eq(status(&t, 1, 150 * CLOG_CHUNK_SEQS + 5), OUTCOME_COMMITTED);
    /* more chunks at the end: the array is compacted rather than grown */
    t.co.next_seq = (n + 100) * CLOG_CHUNK_SEQS;
    for (uint64_t k = n; k < n + 100; k++) {
        commit(&t, 1, k * CLOG_CHUNK_SEQS + 5);
        wait_durable(&t);
    }
    for (uint64_t k = 0; k < n + 100; k++) {
        ck_assert_int_eq(status(&t, 1, k * CLOG_CHUNK_SEQS + 5),
                         k < 150 ? OUTCOME_NOT_KNOWN : OUTCOME_COMMITTED);
        if (k >= 150)
            ck_assert_int_eq(status(&t, 1, k * CLOG_CHUNK_SEQS + 6), OUTCOME_ABORTED);
    }
    tc_close(&t);
}
END_TEST

static Suite *
clog_suite(void)
{
    Suite *s = suite_create("clog");
    TCase *tc_ = tcase_create("clog");
    tcase_add_unchecked_fixture(tc_, tw_base_setup, tw_base_teardown);
    tcase_set_timeout(tc_, 60);
    tcase_add_test(tc_, test_outcomes_and_pending);
    tcase_add_test(tc_, test_many_pending);
    tcase_add_test(tc_, test_heuristic_forgotten);
    tcase_add_test(tc_, test_floor_current_epoch);
    tcase_add_test(tc_, test_many_chunks);
    suite_add_tcase(s, tc_);
    return s;
}

int
main(void)
{
    log_set_level(LOG_LVL_WARNING);
    SRunner *sr = srunner_create(clog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
