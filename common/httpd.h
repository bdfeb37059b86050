/*
 * httpd.h — a daemon's operations endpoint: /metrics, /health, /ready,
 * /primary and /standby over HTTP (or HTTPS), on libevent's evhttp and the
 * daemon's own event loop (docs/operations.md).
 *
 *     static void my_metrics(void *arg, struct evbuffer *out) { ... }
 *     static void my_status(void *arg, httpd_status *st) { ... }
 *     static const httpd_ops ops = {.metrics = my_metrics, .status = my_status};
 *     httpd *h = httpd_start(base, "127.0.0.1:9187", NULL, NULL, &ops, daemon, err, sizeof(err));
 *     ...
 *     httpd_free(h);
 *
 * Answers:
 *   /health   200 whenever the loop turns (an answer at all is the proof);
 *   /ready    200 when status says ready, 503 with the reason otherwise;
 *   /primary  200 when the role is "primary" and ready, else 503;
 *   /standby  200 when the role is "standby", else 503;
 *   /metrics  the daemon's metrics in Prometheus' text format;
 *   anything else 404; a method other than GET or HEAD 405.
 * The health bodies are one JSON object:
 *   {"status":"ok|not ready","role":"primary","epoch":7,"ready":false,
 *    "reason":"..."}
 *
 * Requests are small and answered from the loop without waiting on
 * anything; an idle or slow connection is dropped after HTTPD_TIMEOUT_S.
 * Nothing here keeps global state.
 */
#ifndef DTX_HTTPD_H
#define DTX_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

#define HTTPD_TIMEOUT_S 10

typedef struct httpd_status {
    const char *role; /* "primary", "standby", "promoting", "starting", "participant" */
    uint64_t epoch;   /* 0: none to tell */
    bool ready;
    char reason[256]; /* why not ready ("" when ready) */
} httpd_status;

typedef struct httpd_ops {
    /* append every metric to out */
    void (*metrics)(void *arg, struct evbuffer *out);
    /* fill st (zeroed by the caller) */
    void (*status)(void *arg, httpd_status *st);
} httpd_ops;

typedef struct httpd httpd;

/* Listen on hostport ("host:port"); cert and key NULL: plain HTTP, else
 * HTTPS with that certificate (no client certificate is asked for).  NULL
 * and a message in err on failure.  Free with httpd_free. */
httpd *httpd_start(struct event_base *base, const char *hostport, const char *cert, const char *key,
                   const httpd_ops *ops, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* A reload: new HTTPS handshakes use cert and key, read again (established
 * connections keep theirs).  False, the old certificate kept and a message
 * in err, when they do not load; true and nothing done for plain HTTP. */
bool httpd_reload_tls(httpd *h, const char *cert, const char *key, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Close the listener and every connection.  NULL is a no-op. */
void httpd_free(httpd *h);

#endif
