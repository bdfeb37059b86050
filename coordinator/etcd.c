/*
 * etcd.c — an asynchronous client of etcd's v3 JSON gateway (etcd 3.4:
 * POST /v3/kv/txn, /v3/lease/grant, /v3/lease/keepalive,
 * /v3/lease/revoke), on libevent's HTTP client.
 *
 * Bodies are JSON (json-c); keys and values travel base64-encoded
 * (OpenSSL's EVP_EncodeBlock), 64-bit numbers as decimal strings, and a
 * field with its default value (false, 0, an empty list) is left out of
 * an answer — "succeeded" missing means false.
 *
 * Life cycle of a request: built (the JSON body is kept), then one attempt
 * per endpoint at most, starting with the current one.  Each attempt is a
 * new HTTP connection: a TLS connection cannot be reused after a close
 * anyway, and a request every second or so costs nothing.  An attempt that
 * cannot connect, times out (timeout_ms) or gets a 5xx moves on to the
 * next endpoint; the first endpoint that answers becomes the current one.
 * The callback runs exactly once — unless etcd_free cancels the request
 * first, which frees its connection (evhttp_connection_free drops its
 * requests without calling back).
 *
 * A finished attempt's connection cannot be freed inside its own callback
 * (evhttp still uses it after), and libevent 2.1 does not free a
 * connection that failed to connect by itself even when asked to
 * (evhttp_connection_free_on_completion): finished connections go to a
 * list that etcd_reap — called from a timer, never from inside evhttp —
 * and etcd_free empty.
 */
#include "etcd.h"

#include "config.h"
#include "log.h"
#include "tls.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct endpoint {
    char host[256];
    uint16_t port;
    char text[300]; /* "host:port", for logs */
} endpoint;

typedef struct etcd_req etcd_req;

struct etcd {
    struct event_base *base;
    struct evdns_base *dns; /* NULL: every endpoint is an address */
    SSL_CTX *ssl_ctx;       /* NULL: plain http */
    endpoint ep[ETCD_MAX_ENDPOINTS];
    size_t nep, cur;
    int64_t timeout_ms;
    bool reachable;
    etcd_req *reqs;                  /* in flight, for etcd_free */
    struct evhttp_connection **dead; /* finished, to free (etcd_reap) */
    size_t ndead, capdead;
};

struct etcd_req {
    etcd *e;
    etcd_req *prev, *next;
    char path[40];
    char *body;
    size_t tries, ep;
    struct evhttp_connection *evcon;
    enum evhttp_request_error failure;
    bool failed;
    etcd_cb cb;
    void *arg;
};

struct etcd_txn {
    json_object *compare, *success, *failure;
    bool oom;
};

/* ---- encoding ------------------------------------------------------------ */

/* base64 of s (a json string object), or NULL when out of memory */
static json_object *
b64_json(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    json_object *o = json_object_new_string(out);
    free(out);
    return o;
}

/* decode base64 text into a NUL-terminated heap copy; NULL when invalid */
static char *
b64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in);
    if (n % 4)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    if (out == NULL)
        return NULL;
    int len = n ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n) : 0;
    if (len < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding's bytes too */
    if (n >= 1 && in[n - 1] == '=')
        len--;
    if (n >= 2 && in[n - 2] == '=')
        len--;
    out[len] = '\0';
    *outlen = (size_t)len;
    return out;
}

static bool
add(json_object *obj, const char *field, json_object *val)
{
    if (val == NULL)
        return false;
    if (json_object_object_add(obj, field, val) != 0) {
        json_object_put(val);
        return false;
    }
    return true;
}

static json_object *
int_json(int64_t n)
{
    char s[32];
    snprintf(s, sizeof(s), "%" PRId64, n);
    return json_object_new_string(s);
}

/* ---- transactions -------------------------------------------------------- */

etcd_txn *
etcd_txn_new(void)
{
    etcd_txn *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->compare = json_object_new_array();
    t->success = json_object_new_array();
    t->failure = json_object_new_array();
    if (!t->compare || !t->success || !t->failure)
        t->oom = true;
    return t;
}

static void
txn_free(etcd_txn *t)
{
    json_object_put(t->compare);
    json_object_put(t->success);
    json_object_put(t->failure);
    free(t);
}

static void
txn_append(etcd_txn *t, json_object *list, json_object *item, bool ok)
{
    if (!ok || list == NULL || json_object_array_add(list, item) != 0) {
        json_object_put(item);
        t->oom = true;
    }
}

void
etcd_txn_compare(etcd_txn *t, const char *key, etcd_target target, int64_t n)
{
    static const char *const targets[] = {"CREATE", "MOD", "VERSION"};
    static const char *const fields[] = {"create_revision", "mod_revision", "version"};
    json_object *c = json_object_new_object();
    bool ok = c && add(c, "key", b64_json(key)) &&
              add(c, "target", json_object_new_string(targets[target])) &&
              add(c, "result", json_object_new_string("EQUAL")) &&
              add(c, fields[target], int_json(n));
    txn_append(t, t->compare, c, ok);
}

static void
txn_op(etcd_txn *t, bool on_success, const char *kind, json_object *req, bool ok)
{
    json_object *op = json_object_new_object();
    if (op == NULL || !ok || !add(op, kind, req)) {
        if (op == NULL || !ok)
            json_object_put(req);
        json_object_put(op);
        t->oom = true;
        return;
    }
    txn_append(t, on_success ? t->success : t->failure, op, true);
}

void
etcd_txn_put(etcd_txn *t, bool on_success, const char *key, const char *value, int64_t lease)
{
    json_object *r = json_object_new_object();
    bool ok = r && add(r, "key", b64_json(key)) && add(r, "value", b64_json(value)) &&
              (lease == 0 || add(r, "lease", int_json(lease)));
    txn_op(t, on_success, "request_put", r, ok);
}

void
etcd_txn_get(etcd_txn *t, bool on_success, const char *key)
{
    json_object *r = json_object_new_object();
    bool ok = r && add(r, "key", b64_json(key));
    txn_op(t, on_success, "request_range", r, ok);
}

/* ---- parsing ------------------------------------------------------------- */

int64_t
etcd_json_int(json_object *o, const char *field)
{
    json_object *v;
    if (o == NULL || !json_object_object_get_ex(o, field, &v))
        return 0;
    if (json_object_is_type(v, json_type_string))
        return strtoll(json_object_get_string(v), NULL, 10);
    return json_object_get_int64(v);
}

static bool
parse_kvs(json_object *kvs, etcd_reply *out, char *err, size_t errlen)
{
    if (!json_object_is_type(kvs, json_type_array)) {
        snprintf(err, errlen, "\"kvs\" is not a list");
        return false;
    }
    size_t n = json_object_array_length(kvs);
    if (n == 0)
        return true;
    etcd_kv *nk = realloc(out->kvs, (out->nkvs + n) * sizeof(etcd_kv));
    if (nk == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    out->kvs = nk;
    for (size_t i = 0; i < n; i++) {
        json_object *kv = json_object_array_get_idx(kvs, i), *k, *v;
        etcd_kv *d = &out->kvs[out->nkvs];
        memset(d, 0, sizeof(*d));
        size_t klen = 0;
        if (!json_object_is_type(kv, json_type_object) ||
            !json_object_object_get_ex(kv, "key", &k) ||
            !json_object_is_type(k, json_type_string) ||
            (d->key = b64_decode(json_object_get_string(k), &klen)) == NULL) {
            snprintf(err, errlen, "a kv without a valid key");
            return false;
        }
        out->nkvs++;
        const char *vtext = "";
        if (json_object_object_get_ex(kv, "value", &v)) {
            if (!json_object_is_type(v, json_type_string)) {
                snprintf(err, errlen, "a value that is not a string");
                return false;
            }
            vtext = json_object_get_string(v);
        }
        if ((d->value = b64_decode(vtext, &d->value_len)) == NULL) {
            snprintf(err, errlen, "a value that is not base64");
            return false;
        }
        d->create_rev = etcd_json_int(kv, "create_revision");
        d->mod_rev = etcd_json_int(kv, "mod_revision");
        d->version = etcd_json_int(kv, "version");
        d->lease = etcd_json_int(kv, "lease");
    }
    return true;
}

bool
etcd_parse_reply(const char *body, size_t len, etcd_reply *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_tokener *tok = json_tokener_new();
    if (tok == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    json_object *root = len <= INT32_MAX ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    bool complete = json_tokener_get_error(tok) == json_tokener_success;
    size_t end = complete ? json_tokener_get_parse_end(tok) : 0;
    while (end < len && strchr(" \t\r\n", body[end]) && body[end])
        end++;
    complete = complete && end == len; /* one object, nothing after it */
    json_tokener_free(tok);
    bool ok = false;
    json_object *o, *hdr = NULL, *resps, *res;
    if (root == NULL || !complete || !json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "the answer is not a JSON object");
        goto out;
    }
    json_object *top = root; /* a keep-alive's answer is inside "result" */
    if (json_object_object_get_ex(root, "result", &res) &&
        json_object_is_type(res, json_type_object))
        top = res;
    json_object_object_get_ex(top, "header", &hdr);
    out->revision = etcd_json_int(hdr, "revision");
    out->succeeded = json_object_object_get_ex(top, "succeeded", &o) && json_object_get_boolean(o);
    out->id = etcd_json_int(top, "ID");
    out->ttl = etcd_json_int(top, "TTL");
    if (json_object_object_get_ex(top, "kvs", &o) && !parse_kvs(o, out, err, errlen))
        goto out;
    if (json_object_object_get_ex(top, "responses", &resps)) {
        if (!json_object_is_type(resps, json_type_array)) {
            snprintf(err, errlen, "\"responses\" is not a list");
            goto out;
        }
        for (size_t i = 0; i < json_object_array_length(resps); i++) {
            json_object *r = json_object_array_get_idx(resps, i), *rr, *kvs;
            if (json_object_is_type(r, json_type_object) &&
                json_object_object_get_ex(r, "response_range", &rr) &&
                json_object_is_type(rr, json_type_object) &&
                json_object_object_get_ex(rr, "kvs", &kvs) && !parse_kvs(kvs, out, err, errlen))
                goto out;
        }
    }
    ok = true;
out:
    json_object_put(root);
    if (!ok)
        etcd_reply_clear(out);
    return ok;
}

void
etcd_reply_clear(etcd_reply *r)
{
    for (size_t i = 0; i < r->nkvs; i++) {
        free(r->kvs[i].key);
        free(r->kvs[i].value);
    }
    free(r->kvs);
    r->kvs = NULL;
    r->nkvs = 0;
}

const etcd_kv *
etcd_reply_find(const etcd_reply *r, const char *key)
{
    for (size_t i = 0; i < r->nkvs; i++)
        if (strcmp(r->kvs[i].key, key) == 0)
            return &r->kvs[i];
    return NULL;
}

/* etcd's own words on a refusal: {"error": ..., "message": ..., "code": n} */
static void
refusal_text(const char *body, size_t len, int status, char *out, size_t outlen)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = tok && len <= INT32_MAX ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    json_object *m = NULL;
    if (tok)
        json_tokener_free(tok);
    if (root && (json_object_object_get_ex(root, "message", &m) ||
                 json_object_object_get_ex(root, "error", &m)))
        snprintf(out, outlen, "HTTP %d: %s", status, json_object_get_string(m));
    else
        snprintf(out, outlen, "HTTP %d", status);
    json_object_put(root);
}

/* ---- requests ------------------------------------------------------------ */

static void attempt(etcd_req *r);

/* r's attempt is over: its connection waits for etcd_reap */
static void
bury(etcd_req *r)
{
    etcd *e = r->e;
    struct evhttp_connection *c = r->evcon;
    r->evcon = NULL;
    if (c == NULL)
        return;
    if (e->ndead == e->capdead) {
        size_t cap = e->capdead ? e->capdead * 2 : 8;
        struct evhttp_connection **nd = realloc(e->dead, cap * sizeof(*nd));
        if (nd == NULL)
            log_fatal("out of memory");
        e->dead = nd;
        e->capdead = cap;
    }
    e->dead[e->ndead++] = c;
}

void
etcd_reap(etcd *e)
{
    for (size_t i = 0; i < e->ndead; i++)
        evhttp_connection_free(e->dead[i]);
    e->ndead = 0;
}

static void
req_free(etcd_req *r)
{
    etcd *e = r->e;
    if (r->prev)
        r->prev->next = r->next;
    else
        e->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r->body);
    free(r);
}

static void
deliver(etcd_req *r, etcd_reply *rep)
{
    rep->endpoint = r->e->ep[r->ep].text;
    etcd_cb cb = r->cb;
    void *arg = r->arg;
    req_free(r);
    cb(arg, rep);
}

static void
deliver_error(etcd_req *r, const char *what)
{
    etcd_reply rep = {.error = what};
    deliver(r, &rep);
}

static const char *
failure_text(const etcd_req *r)
{
    if (!r->failed)
        return "no answer";
    switch (r->failure) {
    case EVREQ_HTTP_TIMEOUT:
        return "timed out";
    case EVREQ_HTTP_EOF:
        return "connection closed";
    case EVREQ_HTTP_INVALID_HEADER:
        return "invalid answer";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "could not connect";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "answer too long";
    default:
        return "request failed";
    }
}

static void
on_error(enum evhttp_request_error what, void *arg)
{
    etcd_req *r = arg;
    r->failed = true;
    r->failure = what;
}

/* An attempt failed at the transport or with a 5xx: the next endpoint, or
 * give up once each was tried. */
static void
try_next(etcd_req *r, const char *why)
{
    etcd *e = r->e;
    char msg[400];
    snprintf(msg, sizeof(msg), "etcd %s: %s", e->ep[r->ep].text, why);
    log_warn("%s", msg);
    bury(r);
    if (r->tries >= e->nep) {
        e->reachable = false;
        deliver_error(r, msg);
        return;
    }
    r->ep = (r->ep + 1) % e->nep;
    attempt(r);
}

/* Why r's TLS connection failed, when it did: OpenSSL's errors on its
 * bufferevent and the certificate verification result. */
static bool
tls_failure(etcd_req *r, char *out, size_t outlen)
{
    if (r->e->ssl_ctx == NULL || r->evcon == NULL)
        return false;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
    if (bev == NULL)
        return false;
    unsigned long codes[8], code;
    size_t n = 0;
    while ((code = bufferevent_get_openssl_error(bev)) != 0)
        if (n < 8 && ERR_GET_LIB(code) != 0) /* (libevent also queues bare errnos) */
            codes[n++] = code;
    return tls_codes_error_text(bufferevent_openssl_get_ssl(bev), codes, n, out, outlen);
}

static void
on_done(struct evhttp_request *req, void *arg)
{
    etcd_req *r = arg;
    etcd *e = r->e;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (status == 0 || status >= 500) {
        char why[300], tls[240];
        if (status)
            snprintf(why, sizeof(why), "HTTP %d", status);
        else if (tls_failure(r, tls, sizeof(tls)))
            snprintf(why, sizeof(why), "%s (TLS: %s)", failure_text(r), tls);
        else
            snprintf(why, sizeof(why), "%s", failure_text(r));
        try_next(r, why);
        return;
    }
    bury(r);
    e->cur = r->ep;
    e->reachable = true;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    char err[400], msg[500];
    if (status != 200) {
        refusal_text(body ? body : "", body ? len : 0, status, err, sizeof(err));
        snprintf(msg, sizeof(msg), "etcd %s refused: %s", e->ep[r->ep].text, err);
        log_warn("%s", msg);
        deliver_error(r, msg);
        return;
    }
    etcd_reply rep;
    if (!etcd_parse_reply(body ? body : "", body ? len : 0, &rep, err, sizeof(err))) {
        snprintf(msg, sizeof(msg), "etcd %s: %s", e->ep[r->ep].text, err);
        log_warn("%s", msg);
        deliver_error(r, msg);
        return;
    }
    deliver(r, &rep);
    etcd_reply_clear(&rep);
}

static struct evhttp_connection *
new_connection(etcd *e, const endpoint *p, char *err, size_t errlen)
{
    struct bufferevent *bev = NULL;
    if (e->ssl_ctx) {
        SSL *ssl = tls_client_ssl_create(e->ssl_ctx, p->host, err, errlen);
        if (ssl == NULL)
            return NULL;
        bev = bufferevent_openssl_socket_new(e->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev == NULL) {
            SSL_free(ssl);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
    struct evhttp_connection *c =
        evhttp_connection_base_bufferevent_new(e->base, e->dns, bev, p->host, p->port);
    if (c == NULL) {
        if (bev)
            bufferevent_free(bev);
        snprintf(err, errlen, "could not create a connection");
        return NULL;
    }
    struct timeval tv = {e->timeout_ms / 1000, (e->timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(c, &tv);
    evhttp_connection_set_retries(c, 0);
    return c;
}

static void
attempt(etcd_req *r)
{
    etcd *e = r->e;
    const endpoint *p = &e->ep[r->ep];
    char err[300];
    r->tries++;
    r->failed = false;
    struct evhttp_connection *c = new_connection(e, p, err, sizeof(err));
    if (c == NULL) {
        try_next(r, err);
        return;
    }
    struct evhttp_request *req = evhttp_request_new(on_done, r);
    if (req == NULL) {
        evhttp_connection_free(c);
        try_next(r, "out of memory");
        return;
    }
    evhttp_request_set_error_cb(req, on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", p->text);
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), r->body, strlen(r->body));
    r->evcon = c;
    if (evhttp_make_request(c, req, EVHTTP_REQ_POST, r->path) != 0) {
        try_next(r, "could not send the request"); /* c is buried, req goes with it */
        return;
    }
}

/* Send body (a JSON object, consumed) to path. */
static bool
request(etcd *e, const char *path, json_object *body, etcd_cb cb, void *arg)
{
    etcd_req *r = calloc(1, sizeof(*r));
    const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
    if (r == NULL || text == NULL || (r->body = strdup(text)) == NULL) {
        free(r);
        json_object_put(body);
        return false;
    }
    json_object_put(body);
    r->e = e;
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->ep = e->cur;
    r->cb = cb;
    r->arg = arg;
    r->next = e->reqs;
    if (e->reqs)
        e->reqs->prev = r;
    e->reqs = r;
    attempt(r);
    return true;
}

bool
etcd_txn_send(etcd *e, etcd_txn *t, etcd_cb cb, void *arg)
{
    json_object *body = json_object_new_object();
    bool ok = !t->oom && body && add(body, "compare", json_object_get(t->compare)) &&
              add(body, "success", json_object_get(t->success)) &&
              add(body, "failure", json_object_get(t->failure));
    txn_free(t);
    if (!ok) {
        json_object_put(body);
        return false;
    }
    return request(e, "/v3/kv/txn", body, cb, arg);
}

static bool
lease_request(etcd *e, const char *path, const char *field, int64_t n, etcd_cb cb, void *arg)
{
    json_object *body = json_object_new_object();
    if (body == NULL || !add(body, field, int_json(n))) {
        json_object_put(body);
        return false;
    }
    return request(e, path, body, cb, arg);
}

bool
etcd_lease_grant(etcd *e, int64_t ttl_s, etcd_cb cb, void *arg)
{
    return lease_request(e, "/v3/lease/grant", "TTL", ttl_s, cb, arg);
}

bool
etcd_lease_keepalive(etcd *e, int64_t id, etcd_cb cb, void *arg)
{
    return lease_request(e, "/v3/lease/keepalive", "ID", id, cb, arg);
}

bool
etcd_lease_revoke(etcd *e, int64_t id, etcd_cb cb, void *arg)
{
    return lease_request(e, "/v3/lease/revoke", "ID", id, cb, arg);
}

/* ---- the client ---------------------------------------------------------- */

static bool
parse_endpoints(endpoint *ep, size_t *nep, const char *list, char *err, size_t errlen)
{
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = true;
    for (char *tok = strtok_r(copy, ", \t", &save); tok && ok;
         tok = strtok_r(NULL, ", \t", &save)) {
        if (*nep == ETCD_MAX_ENDPOINTS) {
            snprintf(err, errlen, "more than %d endpoints", ETCD_MAX_ENDPOINTS);
            ok = false;
            break;
        }
        endpoint *p = &ep[*nep];
        char perr[200];
        if (!config_parse_hostport(tok, 2379, p->host, sizeof(p->host), &p->port, perr,
                                   sizeof(perr))) {
            snprintf(err, errlen, "endpoint \"%s\": %s", tok, perr);
            ok = false;
            break;
        }
        snprintf(p->text, sizeof(p->text), strchr(p->host, ':') ? "[%s]:%u" : "%s:%u", p->host,
                 p->port);
        (*nep)++;
    }
    free(copy);
    if (ok && *nep == 0) {
        snprintf(err, errlen, "no endpoint given");
        ok = false;
    }
    return ok;
}

bool
etcd_check_endpoints(const char *list, char *err, size_t errlen)
{
    endpoint ep[ETCD_MAX_ENDPOINTS];
    size_t n = 0;
    return parse_endpoints(ep, &n, list, err, errlen);
}

etcd *
etcd_create(struct event_base *base, const etcd_options *o, char *err, size_t errlen)
{
    etcd *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->base = base;
    e->dns = o->dns;
    e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 1000;
    e->reachable = true;
    if (!parse_endpoints(e->ep, &e->nep, o->endpoints, err, errlen))
        goto fail;
    for (size_t i = 0; i < e->nep && e->dns == NULL; i++) {
        if (!tls_is_ip_literal(e->ep[i].host)) {
            snprintf(err, errlen, "no name resolution for \"%s\"", e->ep[i].host);
            goto fail;
        }
    }
    if (o->ca) {
        tls_config tc = {.cert_file = o->cert, .key_file = o->key, .ca_file = o->ca};
        char terr[400];
        if ((e->ssl_ctx = tls_client_ctx_create(&tc, terr, sizeof(terr))) == NULL) {
            snprintf(err, errlen, "TLS towards etcd: %s", terr);
            goto fail;
        }
    }
    return e;
fail:
    etcd_free(e);
    return NULL;
}

void
etcd_free(etcd *e)
{
    if (e == NULL)
        return;
    while (e->reqs) {
        etcd_req *r = e->reqs;
        if (r->evcon)
            evhttp_connection_free(r->evcon);
        req_free(r);
    }
    etcd_reap(e);
    free(e->dead);
    SSL_CTX_free(e->ssl_ctx);
    free(e);
}

const char *
etcd_endpoint(const etcd *e)
{
    return e->ep[e->cur].text;
}

bool
etcd_reachable(const etcd *e)
{
    return e->reachable;
}
