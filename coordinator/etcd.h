/*
 * etcd.h — a small asynchronous client of etcd's v3 JSON gateway
 * (etcd.c): key-value transactions, ranges and leases over HTTP(S), from
 * the event loop, never blocking it.  Used by ha.c; it knows nothing else
 * of the coordinator.
 *
 * Every request goes to the current endpoint; when that one cannot be
 * reached, times out or answers 5xx, the request is retried once on each
 * of the other endpoints in turn (each failure logged with its endpoint),
 * and the endpoint that answered becomes the current one.  A request that
 * fails everywhere, or that etcd refuses (4xx), is answered with an error.
 */
#ifndef DTX_ETCD_H
#define DTX_ETCD_H

#include <event2/dns.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_MAX_ENDPOINTS 16

typedef struct etcd etcd;

typedef struct etcd_options {
    const char *endpoints;       /* "host:port, host:port, ..." */
    const char *ca, *cert, *key; /* https when ca is set; cert and key: a client certificate */
    int64_t timeout_ms;          /* per attempt */
    struct evdns_base *dns;      /* host names; NULL: addresses only (not owned) */
} etcd_options;

typedef struct etcd_kv {
    char *key, *value; /* NUL-terminated (value also binary-safe up to value_len) */
    size_t value_len;
    int64_t create_rev, mod_rev, version, lease;
} etcd_kv;

/* A parsed answer.  Strings and kvs are valid during the callback only. */
typedef struct etcd_reply {
    const char *error;    /* NULL: etcd answered 200 with a valid body */
    const char *endpoint; /* the endpoint that answered (or failed last) */
    int64_t revision;     /* the store's revision (header) */
    bool succeeded;       /* a transaction's compares held */
    etcd_kv *kvs;         /* every kv of a range, or of a transaction's ranges, in order */
    size_t nkvs;
    int64_t id, ttl; /* a lease grant's or keep-alive's (ttl <= 0: the lease is gone) */
} etcd_reply;

typedef void (*etcd_cb)(void *arg, const etcd_reply *r);

/* NULL with the reason in err (a bad endpoint list, TLS files that do not
 * load).  Caller frees with etcd_free. */
etcd *etcd_create(struct event_base *base, const etcd_options *o, char *err, size_t errlen);
/* Does list name valid endpoints?  false with the reason. */
bool etcd_check_endpoints(const char *list, char *err, size_t errlen);
/* Cancels every request in flight (their callbacks are not called). */
void etcd_free(etcd *e);
/* Free the connections of finished requests; call from a timer (never
 * from inside an etcd callback). */
void etcd_reap(etcd *e);
/* The endpoint requests go to first; whether the last request got an answer. */
const char *etcd_endpoint(const etcd *e);
bool etcd_reachable(const etcd *e);

/* A transaction: compares (all must hold), then the success operations or
 * the failure operations.  Built, then sent (which frees it). */
typedef struct etcd_txn etcd_txn;
typedef enum etcd_target { ETCD_CREATE, ETCD_MOD, ETCD_VERSION } etcd_target;

etcd_txn *etcd_txn_new(void); /* NULL when out of memory */
/* key's create/mod revision or version equals n (0: the key does not exist) */
void etcd_txn_compare(etcd_txn *t, const char *key, etcd_target target, int64_t n);
void etcd_txn_put(etcd_txn *t, bool on_success, const char *key, const char *value, int64_t lease);
void etcd_txn_get(etcd_txn *t, bool on_success, const char *key);
/* false (and t freed, cb never called) when out of memory */
bool etcd_txn_send(etcd *e, etcd_txn *t, etcd_cb cb, void *arg);

bool etcd_lease_grant(etcd *e, int64_t ttl_s, etcd_cb cb, void *arg);
bool etcd_lease_keepalive(etcd *e, int64_t id, etcd_cb cb, void *arg);
bool etcd_lease_revoke(etcd *e, int64_t id, etcd_cb cb, void *arg);

/* A JSON object's field that etcd writes as a decimal string (64-bit
 * numbers) or as a number; 0 when absent. */
struct json_object;
int64_t etcd_json_int(struct json_object *o, const char *field);

/* The kv of key in r, or NULL. */
const etcd_kv *etcd_reply_find(const etcd_reply *r, const char *key);

/* Pure parts, for tests and fuzzing: parse a 200 answer's body into out
 * (false with out->error set when it is not what etcd sends); free what
 * it allocated with etcd_reply_clear. */
bool etcd_parse_reply(const char *body, size_t len, etcd_reply *out, char *err, size_t errlen);
void etcd_reply_clear(etcd_reply *r);

#endif
