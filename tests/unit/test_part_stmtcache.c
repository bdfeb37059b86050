/*
 * test_part_stmtcache.c — unit tests of participant/stmtcache.c: which
 * texts are cached, admission on the second sighting, hits, eviction
 * (least recently used, never a statement of the batch being built, with
 * the DEALLOCATE of the victim), and what failed batches leave behind.
 * The pool side (sending those plans to PostgreSQL) is tested against a
 * real server in tests/integration/participant.sh.
 */
#include "stmtcache.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static stmt_seen seen;

static void
reset_seen(void)
{
    memset(&seen, 0, sizeof(seen));
}

/* Plan sql, then end the batch (one statement per batch). */
static stmt_plan
plan1(stmt_cache *c, const char *sql, int nparams)
{
    stmt_plan p;
    stmt_cache_plan(c, &seen, sql, nparams, &p);
    if (p.prepare)
        stmt_cache_prepared(c, p.slot, true);
    stmt_cache_batch_end(c);
    return p;
}

START_TEST(test_cacheable)
{
    ck_assert(stmt_cacheable("update t set x = 1 where id = $1"));
    ck_assert(stmt_cacheable("  \n\tINSERT INTO t VALUES ($1)"));
    ck_assert(stmt_cacheable("Delete from t"));
    ck_assert(stmt_cacheable("merge into t using s on t.id = s.id when matched then delete"));
    ck_assert(!stmt_cacheable("select 1"));
    ck_assert(!stmt_cacheable("with x as (select 1) update t set x = 1"));
    ck_assert(!stmt_cacheable("insert into t values (1) returning id"));
    ck_assert(!stmt_cacheable("UPDATE t SET x = 'RETURNING'"));
    ck_assert(!stmt_cacheable("updated_view"));
    ck_assert(!stmt_cacheable("update_x()"));
    ck_assert(!stmt_cacheable("/* c */ update t set x = 1"));
    ck_assert(!stmt_cacheable(""));
    char *big = malloc(STMT_CACHE_MAX_SQL + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', STMT_CACHE_MAX_SQL + 1);
    memcpy(big, "update t set x = 1", 18);
    big[STMT_CACHE_MAX_SQL + 1] = '\0';
    ck_assert(!stmt_cacheable(big));
    big[STMT_CACHE_MAX_SQL] = '\0';
    ck_assert(stmt_cacheable(big));
    free(big);
}
END_TEST

START_TEST(test_admit_on_second_sighting)
{
    reset_seen();
    stmt_cache *c = stmt_cache_new(4);
    ck_assert_ptr_nonnull(c);
    const char *q = "update t set x = x + 1 where id = $1";
    stmt_plan p = plan1(c, q, 1);
    ck_assert_int_eq(p.slot, -1); /* first sighting: unnamed */
    p = plan1(c, q, 1);
    ck_assert_int_ge(p.slot, 0);
    ck_assert(p.prepare);
    ck_assert(!p.dealloc);
    ck_assert_str_eq(p.name, "dtx_s1");
    p = plan1(c, q, 1);
    ck_assert(!p.prepare);
    ck_assert_str_eq(p.name, "dtx_s1");
    ck_assert_int_eq(stmt_cache_count(c), 1);
    /* the parameter count is part of the key */
    p = plan1(c, q, 2);
    ck_assert_int_eq(p.slot, -1);
    p = plan1(c, q, 2);
    ck_assert(p.prepare);
    ck_assert_str_eq(p.name, "dtx_s2");
    /* what one connection admitted, another one prepares at first sight */
    stmt_cache *c2 = stmt_cache_new(4);
    ck_assert_ptr_nonnull(c2);
    p = plan1(c2, q, 1);
    ck_assert(p.prepare);
    /* selects never */
    plan1(c, "select 1", 0);
    p = plan1(c, "select 1", 0);
    ck_assert_int_eq(p.slot, -1);
    stmt_cache_free(c2);
    stmt_cache_free(c);
}
END_TEST

START_TEST(test_capacity_zero)
{
    reset_seen();
    stmt_cache *c = stmt_cache_new(0);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(plan1(c, "update t set x = 1", 0).slot, -1);
    stmt_cache_free(c);
}
END_TEST

START_TEST(test_lru_eviction)
{
    reset_seen();
    stmt_cache *c = stmt_cache_new(2);
    ck_assert_ptr_nonnull(c);
    const char *a = "update a set x = 1", *b = "update b set x = 1", *d = "update d set x = 1";
    plan1(c, a, 0);
    plan1(c, a, 0); /* dtx_s1 */
    plan1(c, b, 0);
    plan1(c, b, 0); /* dtx_s2 */
    plan1(c, a, 0); /* a is now the more recent */
    plan1(c, d, 0);
    stmt_plan p = plan1(c, d, 0);
    ck_assert(p.prepare);
    ck_assert(p.dealloc);
    ck_assert_str_eq(p.old_name, "dtx_s2"); /* b, the least recently used */
    ck_assert_str_eq(p.name, "dtx_s3");
    ck_assert(!plan1(c, a, 0).prepare);
    p = plan1(c, b, 0); /* b comes back: seen before, evicts d (LRU) */
    ck_assert(p.prepare);
    ck_assert_str_eq(p.old_name, "dtx_s3");
    ck_assert_str_eq(p.name, "dtx_s4");
    ck_assert_int_eq(stmt_cache_count(c), 2);
    stmt_cache_free(c);
}
END_TEST

START_TEST(test_batch_statements_stay)
{
    reset_seen();
    stmt_cache *c = stmt_cache_new(2);
    ck_assert_ptr_nonnull(c);
    const char *q[3] = {"update a set x = 1", "update b set x = 1", "update c set x = 1"};
    for (int i = 0; i < 3; i++)
        plan1(c, q[i], 0); /* seen once each */
    /* one batch with all three: two are taken, the third runs unnamed
     * rather than evicting a statement the batch already queued */
    stmt_plan p[3];
    for (int i = 0; i < 3; i++)
        stmt_cache_plan(c, &seen, q[i], 0, &p[i]);
    ck_assert(p[0].prepare && p[1].prepare);
    ck_assert_int_eq(p[2].slot, -1);
    /* the same text twice in one batch: one Parse */
    stmt_plan again;
    stmt_cache_plan(c, &seen, q[0], 0, &again);
    ck_assert(!again.prepare);
    ck_assert_str_eq(again.name, p[0].name);
    stmt_cache_batch_end(c);
    stmt_plan p2 = plan1(c, q[2], 0);
    ck_assert(p2.prepare && p2.dealloc);
    stmt_cache_free(c);
}
END_TEST

START_TEST(test_failed_batches)
{
    reset_seen();
    stmt_cache *c = stmt_cache_new(2);
    ck_assert_ptr_nonnull(c);
    const char *a = "update a set x = 1", *b = "update b set x = 1";
    plan1(c, a, 0);
    /* a Parse that failed (or was skipped) frees its slot, with nothing
     * to deallocate */
    stmt_plan p;
    stmt_cache_plan(c, &seen, a, 0, &p);
    ck_assert(p.prepare);
    stmt_cache_prepared(c, p.slot, false);
    stmt_cache_batch_end(c);
    ck_assert_int_eq(stmt_cache_count(c), 0);
    p = plan1(c, a, 0);
    ck_assert(p.prepare && !p.dealloc);
    ck_assert_str_eq(p.name, "dtx_s2"); /* a new name every time */

    /* errors of the data keep the statement; others (a type mismatch, a
     * value out of range for a parameter type fixed at the first Parse)
     * evict it, and its name is deallocated on reuse */
    static const char *const keep[] = {"23505", "40001", "40P01", "53200",
                                       "55P03", "57014", "25P02"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        stmt_cache_exec_failed(c, p.slot, keep[i]);
        ck_assert_msg(!plan1(c, a, 0).prepare, "%s evicted", keep[i]);
    }
    stmt_cache_exec_failed(c, p.slot, "22003");
    ck_assert_int_eq(stmt_cache_count(c), 0);
    stmt_plan p2 = plan1(c, a, 0);
    ck_assert(p2.prepare);
    /* it took the free slot; the orphan is deallocated when taken */
    plan1(c, b, 0);
    stmt_plan p3 = plan1(c, b, 0);
    ck_assert(p3.prepare && p3.dealloc);
    ck_assert_str_eq(p3.old_name, "dtx_s2");

    /* unknown errors evict too */
    stmt_cache_exec_failed(c, p2.slot, NULL);
    ck_assert_int_eq(stmt_cache_count(c), 1);
    stmt_cache_exec_failed(c, p3.slot, "08P01");
    ck_assert_int_eq(stmt_cache_count(c), 0);

    /* DEALLOCATEs skipped after errors are counted until the connection
     * should be replaced */
    for (int i = 0; i < 2; i++)
        stmt_cache_dealloc_failed(c);
    ck_assert(!stmt_cache_needs_reset(c));
    stmt_cache_dealloc_failed(c);
    ck_assert(stmt_cache_needs_reset(c));
    stmt_cache_reset(c);
    ck_assert(!stmt_cache_needs_reset(c));
    ck_assert_int_eq(stmt_cache_count(c), 0);
    p = plan1(c, a, 0);
    ck_assert(p.prepare && !p.dealloc); /* PostgreSQL forgot everything */
    stmt_cache_free(c);
}
END_TEST

static Suite *
stmtcache_suite(void)
{
    Suite *s = suite_create("stmtcache");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cacheable);
    tcase_add_test(tc, test_admit_on_second_sighting);
    tcase_add_test(tc, test_capacity_zero);
    tcase_add_test(tc, test_lru_eviction);
    tcase_add_test(tc, test_batch_statements_stay);
    tcase_add_test(tc, test_failed_batches);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(stmtcache_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
