/*
 * fuzz_etcd.c — the coordinator's parser of etcd's answers
 * (coordinator/etcd.c: etcd_parse_reply), which reads what an etcd
 * endpoint — or whatever answers at its address — sends back.
 *
 * The input is the body of a 200 answer.  Checks, on success: every kv has
 * a NUL-terminated key and a value of value_len bytes followed by a NUL,
 * and etcd_reply_find finds each key; on failure: nothing left to free.  A
 * second parse of the same input must agree.
 */
#include "fuzz.h"

#include "etcd.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    etcd_reply r, again;
    char err[300], err2[300];
    bool ok = etcd_parse_reply((const char *)data, size, &r, err, sizeof(err));
    bool ok2 = etcd_parse_reply((const char *)data, size, &again, err2, sizeof(err2));
    FUZZ_CHECK(ok == ok2);
    if (!ok) {
        FUZZ_CHECK(r.nkvs == 0 && r.kvs == NULL && err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(r.nkvs == again.nkvs && r.revision == again.revision && r.ttl == again.ttl);
    for (size_t i = 0; i < r.nkvs; i++) {
        FUZZ_CHECK(r.kvs[i].key != NULL && r.kvs[i].value != NULL);
        FUZZ_CHECK(r.kvs[i].value[r.kvs[i].value_len] == '\0');
        FUZZ_CHECK(memcmp(r.kvs[i].value, again.kvs[i].value, r.kvs[i].value_len + 1) == 0);
        const etcd_kv *kv = etcd_reply_find(&r, r.kvs[i].key);
        FUZZ_CHECK(kv != NULL && strcmp(kv->key, r.kvs[i].key) == 0);
    }
    etcd_reply_clear(&r);
    etcd_reply_clear(&again);
    return 0;
}
