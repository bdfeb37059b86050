/*
 * httpd.c — see httpd.h.
 *
 * NOTES
 *  evhttp does the parsing, the keep-alive and the timeouts; this file
 *  routes five paths.  For HTTPS, evhttp's bufferevent callback wraps each
 *  accepted socket in an OpenSSL bufferevent made from the current context,
 *  so that a reload's new certificate is used from the next connection on
 *  while established ones keep theirs (an SSL holds its own reference to
 *  the context it was made from).
 *
 *  A request body is never needed: the size limits keep a client from
 *  making the daemon buffer more than a few kilobytes per connection.
 */
#include "httpd.h"

#include "config.h"
#include "tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct httpd {
    struct evhttp *http;
    struct event_base *base;
    SSL_CTX *tls;
    const httpd_ops *ops;
    void *arg;
};

static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
    httpd *h = arg;
    SSL *ssl = SSL_new(h->tls);
    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

/* Send body (or, for HEAD, only its length). */
static void
send_reply(struct evhttp_request *req, int code, const char *reason, struct evbuffer *body)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char len[32];
        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
        evhttp_send_reply(req, code, reason, NULL);
        return;
    }
    evhttp_send_reply(req, code, reason, body);
}

static void
reply_json(struct evhttp_request *req, int code, const char *reason, json_object *o)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add_printf(body, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    send_reply(req, code, reason, body);
    evbuffer_free(body);
}

typedef enum route {
    R_HEALTH,
    R_READY,
    R_PRIMARY,
    R_STANDBY,
} route;

static void
answer_status(httpd *h, struct evhttp_request *req, route r)
{
    httpd_status st;
    memset(&st, 0, sizeof(st));
    st.role = "unknown";
    h->ops->status(h->arg, &st);
    bool ok;
    const char *why = st.reason;
    char buf[300];
    switch (r) {
    case R_HEALTH:
        ok = true;
        break;
    case R_READY:
        ok = st.ready;
        break;
    case R_PRIMARY:
        ok = st.ready && strcmp(st.role, "primary") == 0;
        if (!ok && st.ready) {
            snprintf(buf, sizeof(buf), "the role is %s, not primary", st.role);
            why = buf;
        }
        break;
    case R_STANDBY:
        ok = strcmp(st.role, "standby") == 0;
        if (!ok) {
            snprintf(buf, sizeof(buf), "the role is %s, not standby", st.role);
            why = buf;
        }
        break;
    default:
        abort();
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(ok ? "ok" : "unavailable"));
    json_object_object_add(o, "role", json_object_new_string(st.role));
    if (st.epoch)
        json_object_object_add(o, "epoch", json_object_new_uint64(st.epoch));
    json_object_object_add(o, "ready", json_object_new_boolean(st.ready));
    if (!ok || why[0])
        json_object_object_add(o, "reason", json_object_new_string(why));
    reply_json(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", o);
    json_object_put(o);
}

static void
answer_metrics(httpd *h, struct evhttp_request *req)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    h->ops->metrics(h->arg, body);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
    httpd *h = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL)
        path = "";
    if (strcmp(path, "/metrics") == 0)
        answer_metrics(h, req);
    else if (strcmp(path, "/health") == 0)
        answer_status(h, req, R_HEALTH);
    else if (strcmp(path, "/ready") == 0)
        answer_status(h, req, R_READY);
    else if (strcmp(path, "/primary") == 0)
        answer_status(h, req, R_PRIMARY);
    else if (strcmp(path, "/standby") == 0)
        answer_status(h, req, R_STANDBY);
    else
        evhttp_send_error(req, 404, "Not Found");
}

/* A server context for HTTPS with cert and key, no client certificate */
static SSL_CTX *
tls_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
    tls_config c = {.cert_file = cert, .key_file = key};
    return tls_server_ctx_create(&c, err, errlen);
}

httpd *
httpd_start(struct event_base *base, const char *hostport, const char *cert, const char *key,
            const httpd_ops *ops, void *arg, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (!config_parse_hostport(hostport, 0, host, sizeof(host), &port, err, errlen))
        return NULL;
    httpd *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->http = evhttp_new(base)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(h);
        return NULL;
    }
    h->base = base;
    h->ops = ops;
    h->arg = arg;
    evhttp_set_timeout(h->http, HTTPD_TIMEOUT_S);
    evhttp_set_max_headers_size(h->http, 8192);
    evhttp_set_max_body_size(h->http, 1024);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(h->http, request_cb, h);
    if (cert) {
        char why[400];
        if ((h->tls = tls_ctx(cert, key, why, sizeof(why))) == NULL) {
            snprintf(err, errlen, "could not set up TLS for %s: %s", hostport, why);
            httpd_free(h);
            return NULL;
        }
        evhttp_set_bevcb(h->http, tls_bev, h);
    }
    /* the host as written: a literal address or a name of this machine */
    if (evhttp_bind_socket_with_handle(h->http, host, port) == NULL) {
        snprintf(err, errlen, "could not listen for HTTP on %s: %m", hostport);
        httpd_free(h);
        return NULL;
    }
    return h;
}

bool
httpd_reload_tls(httpd *h, const char *cert, const char *key, char *err, size_t errlen)
{
    if (h == NULL || h->tls == NULL)
        return true;
    SSL_CTX *tls = tls_ctx(cert, key, err, errlen);
    if (tls == NULL)
        return false;
    SSL_CTX_free(h->tls); /* each connection holds its own reference */
    h->tls = tls;
    return true;
}

void
httpd_free(httpd *h)
{
    if (h == NULL)
        return;
    if (h->http)
        evhttp_free(h->http);
    SSL_CTX_free(h->tls);
    free(h);
}
