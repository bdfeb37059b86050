/*
 * test_coord_etcd.c — the pure part of the coordinator's etcd client
 * (coordinator/etcd.c): answers of etcd 3.4's v3 JSON gateway parsed —
 * as etcd sends them (64-bit numbers as strings, base64 keys and values,
 * fields with default values left out) — and malformed ones refused;
 * endpoint lists checked.
 */
#include "etcd.h"

#include <check.h>
#include <string.h>

static bool
parse(const char *body, etcd_reply *r)
{
    char err[200];
    return etcd_parse_reply(body, strlen(body), r, err, sizeof(err));
}

START_TEST(txn_answer)
{
    /* a transaction that failed its compares and ran two ranges; "succeeded" is left out */
    const char *body =
        "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"42\",\"raft_term\":\"2\"},"
        "\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"42\"},"
        "\"kvs\":[{\"key\":\"L2R0eC9jMS9sZWFkZXI=\",\"create_revision\":\"40\","
        "\"mod_revision\":\"41\",\"version\":\"2\",\"value\":\"aGk=\",\"lease\":\"7\"}],"
        "\"count\":\"1\"}},{\"response_range\":{\"header\":{\"revision\":\"42\"}}}]}";
    etcd_reply r;
    ck_assert(parse(body, &r));
    ck_assert_int_eq(r.revision, 42);
    ck_assert(!r.succeeded);
    ck_assert_uint_eq(r.nkvs, 1);
    const etcd_kv *kv = etcd_reply_find(&r, "/dtx/c1/leader");
    ck_assert_ptr_nonnull(kv);
    ck_assert_str_eq(kv->value, "hi");
    ck_assert_uint_eq(kv->value_len, 2);
    ck_assert_int_eq(kv->create_rev, 40);
    ck_assert_int_eq(kv->mod_rev, 41);
    ck_assert_int_eq(kv->version, 2);
    ck_assert_int_eq(kv->lease, 7);
    ck_assert_ptr_null(etcd_reply_find(&r, "/dtx/c1/sync"));
    etcd_reply_clear(&r);
    ck_assert(parse("{\"header\":{\"revision\":\"43\"},\"succeeded\":true,"
                    "\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"43\"}}}]}",
                    &r));
    ck_assert(r.succeeded);
    ck_assert_uint_eq(r.nkvs, 0);
    etcd_reply_clear(&r);
}
END_TEST

START_TEST(lease_answers)
{
    etcd_reply r;
    ck_assert(parse(
        "{\"header\":{\"revision\":\"1\"},\"ID\":\"4111120489361609733\",\"TTL\":\"5\"}", &r));
    ck_assert_int_eq(r.id, 4111120489361609733LL);
    ck_assert_int_eq(r.ttl, 5);
    etcd_reply_clear(&r);
    /* a keep-alive's answer is inside "result"; a lease that is gone has no TTL */
    ck_assert(
        parse("{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"12\",\"TTL\":\"5\"}}", &r));
    ck_assert_int_eq(r.id, 12);
    ck_assert_int_eq(r.ttl, 5);
    etcd_reply_clear(&r);
    ck_assert(parse("{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"12\"}}\n", &r));
    ck_assert_int_eq(r.ttl, 0);
    etcd_reply_clear(&r);
}
END_TEST

START_TEST(malformed_answers)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"header\":",
        "{} {}",
        "{\"kvs\":{}}",
        "{\"kvs\":[{\"value\":\"aGk=\"}]}",
        "{\"kvs\":[{\"key\":\"***\"}]}",
        "{\"kvs\":[{\"key\":\"aGk=\",\"value\":\"aGk\"}]}",
        "{\"kvs\":[{\"key\":\"aGk=\",\"value\":5}]}",
        "{\"responses\":{}}",
        "{\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":1}]}}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        etcd_reply r;
        ck_assert_msg(!parse(bad[i], &r), "accepted %s", bad[i]);
        ck_assert_uint_eq(r.nkvs, 0);
    }
    /* a value may be absent (empty) */
    etcd_reply r;
    ck_assert(parse("{\"kvs\":[{\"key\":\"aGk=\"}]}", &r));
    ck_assert_str_eq(r.kvs[0].value, "");
    etcd_reply_clear(&r);
}
END_TEST

START_TEST(endpoint_lists)
{
    char err[200];
    ck_assert(etcd_check_endpoints("127.0.0.1:2379", err, sizeof(err)));
    ck_assert(etcd_check_endpoints("a:1, b:2 [::1]:3", err, sizeof(err)));
    ck_assert(etcd_check_endpoints("etcd1", err, sizeof(err))); /* port 2379 */
    ck_assert(!etcd_check_endpoints("", err, sizeof(err)));
    ck_assert_str_eq(err, "no endpoint given");
    ck_assert(!etcd_check_endpoints("a:x", err, sizeof(err)));
    ck_assert(strstr(err, "endpoint \"a:x\"") != NULL);
    ck_assert(!etcd_check_endpoints("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", err, sizeof(err)));
    ck_assert(strstr(err, "more than 16") != NULL);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("coord_etcd");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, txn_answer);
    tcase_add_test(tc, lease_answers);
    tcase_add_test(tc, malformed_answers);
    tcase_add_test(tc, endpoint_lists);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
