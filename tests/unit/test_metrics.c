/*
 * test_metrics.c — unit tests of common/metrics.c (histograms and the
 * Prometheus text format) and of common/log.c's JSON format.
 */
#include "log.h"
#include "metrics.h"

#include <check.h>
#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the buffer's text, NUL-terminated; caller frees */
static char *
text_of(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

START_TEST(test_histogram)
{
    metrics_hist h = METRICS_HIST_SECONDS;
    metrics_hist_observe(&h, 400);      /* 0.4 ms: first bucket */
    metrics_hist_observe(&h, 500);      /* on the bound: still the first */
    metrics_hist_observe(&h, 3000);     /* 3 ms: le 0.005 */
    metrics_hist_observe(&h, 20000000); /* 20 s: +Inf only */
    struct evbuffer *b = evbuffer_new();
    metrics_head(b, "x_seconds", "histogram", "Help.");
    metrics_hist_write(b, "x_seconds", "p=\"a\"", &h);
    char *s = text_of(b);
    ck_assert_ptr_nonnull(strstr(s, "# HELP x_seconds Help.\n# TYPE x_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_seconds_bucket{p=\"a\",le=\"0.0005\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_seconds_bucket{p=\"a\",le=\"0.0025\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_seconds_bucket{p=\"a\",le=\"0.005\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_seconds_bucket{p=\"a\",le=\"10\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_seconds_bucket{p=\"a\",le=\"+Inf\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_seconds_sum{p=\"a\"} 20.0039\n"));
    ck_assert_ptr_nonnull(strstr(s, "x_seconds_count{p=\"a\"} 4\n"));
    free(s);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_samples)
{
    struct evbuffer *b = evbuffer_new();
    metrics_u64(b, "a_total", NULL, 7);
    metrics_u64(b, "b_total", "k=\"v\"", 18446744073709551615ULL);
    metrics_f64(b, "c", "", 0.25);
    metrics_one(b, "d", "gauge", "D.", 3);
    char *s = text_of(b);
    ck_assert_str_eq(s, "a_total 7\nb_total{k=\"v\"} 18446744073709551615\nc 0.25\n"
                        "# HELP d D.\n# TYPE d gauge\nd 3\n");
    free(s);
    evbuffer_free(b);
    char v[16];
    ck_assert_str_eq(metrics_label_value("a\"b\\c\nd", v, sizeof(v)), "a\\\"b\\\\c\\nd");
    ck_assert_str_eq(metrics_label_value("abcdefghijklmnopqrstuvwxyz", v, sizeof(v)),
                     "abcdefghijklm");
}
END_TEST

/* Log to a temporary file in JSON; every line parses, with its fields. */
START_TEST(test_json_log)
{
    char path[] = "/tmp/dtx-test-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    log_init("dtx-test");
    ck_assert(log_open_file(path));
    log_set_format(LOG_FORMAT_JSON);
    log_log("plain \"quoted\" line\twith a tab");
    log_with(&(log_fields){.gid = "dtx:c1:1:2", .participant = "p1"}, LOG_LVL_WARNING, "about %d",
             42);
    log_report(LOG_LVL_ERROR, "23505", "the detail", "the hint", "duplicate key");
    log_debug("not written at the default level");
    log_set_format(LOG_FORMAT_TEXT);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    json_object *o[3];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        ck_assert_int_lt(n, 3);
        o[n] = json_tokener_parse(line);
        ck_assert_msg(o[n] != NULL, "not JSON: %s", line);
        n++;
    }
    fclose(f);
    unlink(path);
    ck_assert_int_eq(n, 3);
    json_object *v;
    ck_assert(json_object_object_get_ex(o[0], "message", &v));
    ck_assert_str_eq(json_object_get_string(v), "plain \"quoted\" line\twith a tab");
    ck_assert(json_object_object_get_ex(o[0], "component", &v));
    ck_assert_str_eq(json_object_get_string(v), "test_metrics");
    ck_assert(json_object_object_get_ex(o[0], "program", &v));
    ck_assert_str_eq(json_object_get_string(v), "dtx-test");
    ck_assert(!json_object_object_get_ex(o[0], "gid", &v));
    ck_assert(json_object_object_get_ex(o[1], "gid", &v));
    ck_assert_str_eq(json_object_get_string(v), "dtx:c1:1:2");
    ck_assert(json_object_object_get_ex(o[1], "participant", &v));
    ck_assert_str_eq(json_object_get_string(v), "p1");
    ck_assert(json_object_object_get_ex(o[1], "level", &v));
    ck_assert_str_eq(json_object_get_string(v), "WARNING");
    ck_assert(json_object_object_get_ex(o[2], "sqlstate", &v));
    ck_assert_str_eq(json_object_get_string(v), "23505");
    ck_assert(json_object_object_get_ex(o[2], "detail", &v));
    ck_assert_str_eq(json_object_get_string(v), "the detail");
    ck_assert(json_object_object_get_ex(o[2], "hint", &v));
    ck_assert_str_eq(json_object_get_string(v), "the hint");
    ck_assert(json_object_object_get_ex(o[2], "time", &v));
    ck_assert_int_eq((int)strlen(json_object_get_string(v)), 24); /* 2026-12-07T02:50:44.078Z */
    for (int i = 0; i < n; i++)
        json_object_put(o[i]);
}
END_TEST

START_TEST(test_log_format_names)
{
    log_format f;
    ck_assert(log_parse_format("JSON", &f) && f == LOG_FORMAT_JSON);
    ck_assert(log_parse_format("text", &f) && f == LOG_FORMAT_TEXT);
    ck_assert(!log_parse_format("xml", &f));
}
END_TEST

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_samples);
    tcase_add_test(tc, test_json_log);
    tcase_add_test(tc, test_log_format_names);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
