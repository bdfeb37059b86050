/*
 * test_failpoint.c — failpoint spec parsing and firing rules.
 */
#include "failpoint.h"

#include <check.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(fp_parse_errors)
{
    char err[256];
    ck_assert(!failpoint_configure("nope", err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "name=action"));
    ck_assert(!failpoint_configure("a=explode", err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "unknown action"));
    ck_assert(!failpoint_configure("a=sleep:x", err, sizeof(err)));
    ck_assert(!failpoint_configure("a=error@0", err, sizeof(err)));
    ck_assert(!failpoint_configure("a=error@2x", err, sizeof(err)));
    ck_assert(!failpoint_configure("A B=error", err, sizeof(err)));
    ck_assert(failpoint_configure("", err, sizeof(err)));
}
END_TEST

START_TEST(fp_nth_pass)
{
    char err[256];
    ck_assert(failpoint_configure("x=error@3;y=error@2+;z=error", err, sizeof(err)));
    ck_assert_int_eq(failpoint_eval("x"), FP_NONE);
    ck_assert_int_eq(failpoint_eval("x"), FP_NONE);
    ck_assert_int_eq(failpoint_eval("x"), FP_ERROR);
    ck_assert_int_eq(failpoint_eval("x"), FP_NONE);
    ck_assert_int_eq(failpoint_eval("y"), FP_NONE);
    ck_assert_int_eq(failpoint_eval("y"), FP_ERROR);
    ck_assert_int_eq(failpoint_eval("y"), FP_ERROR);
    ck_assert_int_eq(failpoint_eval("z"), FP_ERROR);
    ck_assert_int_eq(failpoint_eval("unarmed"), FP_NONE);
    ck_assert_uint_eq(failpoint_passes("x"), 4);
}
END_TEST

START_TEST(fp_kill)
{
    char err[256];
    ck_assert(failpoint_configure("boom=kill@2;t=torn", err, sizeof(err)));
    ck_assert_int_eq(failpoint_eval("t"), FP_TORN);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)failpoint_eval("boom");
        (void)failpoint_eval("boom"); /* dies here */
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGKILL);
}
END_TEST

START_TEST(fp_sleep)
{
    char err[256];
    ck_assert(failpoint_configure("s=sleep:20", err, sizeof(err)));
    ck_assert_int_eq(failpoint_eval("s"), FP_NONE);
    ck_assert_uint_eq(failpoint_passes("s"), 1);
}
END_TEST

static Suite *
fp_suite(void)
{
    Suite *s = suite_create("failpoint");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, fp_parse_errors);
    tcase_add_test(tc, fp_nth_pass);
    tcase_add_test(tc, fp_kill);
    tcase_add_test(tc, fp_sleep);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(fp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
