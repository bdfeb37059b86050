/*
 * conn.c — see conn.h.
 *
 * NOTES
 *  State: HANDSHAKE -> OPEN -> CLOSING (draining output before close) ->
 *  CLOSED.  Only conn_set_state() changes it.  CLOSED conns are put on a
 *  per-process free list drained by a zero-timeout event, so that the memory
 *  of a conn outlives every callback that might still hold its pointer.
 *
 *  Reading: all complete frames in the input buffer are handed to on_frame in
 *  one go; evbuffer_pullup() makes a frame contiguous only when it spans
 *  chains.  A header announcing more than max_frame closes the connection
 *  at once (an ERROR frame 08P01 is sent first), before anything of the
 *  payload is buffered beyond what the socket already delivered.
 */
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum conn_state { CS_HANDSHAKE, CS_OPEN, CS_CLOSING, CS_CLOSED } conn_state;

struct conn {
    conn_state state;
    struct event_base *base;
    struct bufferevent *bev;
    const conn_ops *ops;
    void *arg;
    uint32_t max_frame;
    bool read_paused; /* backpressure: output backlog too large */
    bool held;        /* owner asked for no more frames for now */
    struct event *resume_ev;
    char peer[64];
    conn *next_free;
};

static conn *free_list;
static struct event *free_ev;

static void
conn_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    while (free_list) {
        conn *c = free_list;
        free_list = c->next_free;
        if (c->bev)
            bufferevent_free(c->bev);
        if (c->resume_ev)
            event_free(c->resume_ev);
        free(c);
    }
}

static void
conn_set_state(conn *c, conn_state st)
{
    switch (st) {
    case CS_HANDSHAKE:
    case CS_OPEN:
    case CS_CLOSING:
        c->state = st;
        break;
    case CS_CLOSED:
        if (c->state == CS_CLOSED)
            return;
        c->state = CS_CLOSED;
        if (c->bev) {
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
            bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
            SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
            if (ssl)
                SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN); /* no blocking close_notify */
        }
        c->next_free = free_list;
        free_list = c;
        if (free_ev == NULL)
            free_ev = event_new(c->base, -1, 0, conn_reap, NULL);
        if (free_ev)
            event_active(free_ev, 0, 0);
        break;
    default:
        abort();
    }
}

static void
conn_lost(conn *c, const char *reason)
{
    if (c->state == CS_CLOSED)
        return;
    bool owner_gave_up = c->state == CS_CLOSING;
    conn_set_state(c, CS_CLOSED);
    if (!owner_gave_up && c->ops->on_close)
        c->ops->on_close(c, reason, c->arg);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->state == CS_OPEN && !c->held) {
        size_t avail = evbuffer_get_length(in);
        if (avail < FRAME_HEADER_SIZE)
            return;
        uint8_t hdr[FRAME_HEADER_SIZE];
        evbuffer_copyout(in, hdr, FRAME_HEADER_SIZE);
        frame_view f;
        size_t need;
        frame_status st = frame_decode(hdr, FRAME_HEADER_SIZE, c->max_frame, &f, &need);
        if (st == FRAME_TOO_LARGE) {
            conn_fail(c, "08P01", "frame of %u bytes exceeds the maximum of %u bytes",
                      buf_load_u32(hdr + 1), c->max_frame);
            if (c->ops->on_close)
                c->ops->on_close(c, "oversized frame", c->arg);
            return;
        }
        if (st == FRAME_OK) {
            need = FRAME_HEADER_SIZE;
        } else if (need > avail) {
            return;
        }
        size_t total = FRAME_HEADER_SIZE + buf_load_u32(hdr + 1);
        if (avail < total)
            return;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)total);
        if (p == NULL) {
            conn_lost(c, "out of memory");
            return;
        }
        if (frame_decode(p, total, c->max_frame, &f, &need) != FRAME_OK)
            abort(); /* cannot happen: checked above */
        c->ops->on_frame(c, &f, c->arg);
        if (c->state == CS_CLOSED)
            return;
        evbuffer_drain(in, total);
    }
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    size_t out = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->state == CS_CLOSING && out == 0) {
        conn_set_state(c, CS_CLOSED);
        return;
    }
    if (c->read_paused && out < CONN_OUT_LOW) {
        c->read_paused = false;
        bufferevent_enable(bev, EV_READ);
        conn_read_cb(bev, c);
    }
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    char buf[512];
    if (what & BEV_EVENT_CONNECTED) {
        char name[256] = "";
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
        if (cert) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
                                      sizeof(name));
            X509_free(cert);
        }
        conn_set_state(c, CS_OPEN);
        int fd = bufferevent_getfd(bev);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (c->ops->on_open)
            c->ops->on_open(c, name, c->arg);
        if (c->state == CS_OPEN)
            conn_read_cb(bev, c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        conn_lost(c, "timeout");
        return;
    }
    if (what & BEV_EVENT_EOF) {
        if (c->state == CS_CLOSING) {
            conn_set_state(c, CS_CLOSED);
            return;
        }
        conn_lost(c, "connection closed by peer");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        tls_bev_error_text(c->bev, buf, sizeof(buf));
        if (c->state == CS_CLOSING) {
            conn_set_state(c, CS_CLOSED);
            return;
        }
        conn_lost(c, buf);
    }
}

static conn *
conn_new(struct event_base *base, uint32_t max_frame, const conn_ops *ops, void *arg)
{
    conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    c->ops = ops;
    c->arg = arg;
    c->max_frame = max_frame;
    c->state = CS_HANDSHAKE;
    return c;
}

conn *
conn_accept(struct event_base *base, SSL_CTX *ctx, int fd, uint32_t max_frame,
            const conn_ops *ops, void *arg)
{
    char err[256];
    conn *c = conn_new(base, max_frame, ops, arg);
    SSL *ssl = c ? tls_server_ssl_create(ctx, err, sizeof(err)) : NULL;
    if (ssl == NULL) {
        free(c);
        close(fd);
        return NULL;
    }
    evutil_make_socket_nonblocking(fd);
    c->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        SSL_free(ssl);
        free(c);
        close(fd);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char host[INET6_ADDRSTRLEN] = "?", port[16] = "?";
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
    }
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

conn *
conn_connect(struct event_base *base, SSL_CTX *ctx, const char *host, int port,
             const char *verify_host, uint32_t max_frame, const conn_ops *ops, void *arg)
{
    char err[256];
    conn *c = conn_new(base, max_frame, ops, arg);
    SSL *ssl = c ? tls_client_ssl_create(ctx, verify_host, err, sizeof(err)) : NULL;
    if (ssl == NULL) {
        if (c)
            log_warn("could not set up TLS for %s:%d: %s", host, port, err);
        free(c);
        return NULL;
    }
    c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        SSL_free(ssl);
        free(c);
        return NULL;
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    /* Host names are resolved synchronously: connections are made at start-up
     * and on reconnect, and addresses in the configuration are normally IPs. */
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 || res == NULL ||
        bufferevent_socket_connect(c->bev, res->ai_addr, (int)res->ai_addrlen) != 0) {
        if (res)
            freeaddrinfo(res);
        /* report asynchronously so the caller never sees a callback re-enter */
        bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
        return c;
    }
    freeaddrinfo(res);
    return c;
}

void
conn_send_bytes(conn *c, const void *p, size_t n)
{
    if (c->state != CS_OPEN || n == 0)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, p, n);
    if (!c->read_paused && evbuffer_get_length(out) > CONN_OUT_HIGH) {
        c->read_paused = true;
        bufferevent_disable(c->bev, EV_READ);
    }
}

void
conn_send(conn *c, const wbuf *w)
{
    conn_send_bytes(c, w->data, w->len);
}

void
conn_fail(conn *c, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->state == CS_OPEN) {
        wbuf w;
        wbuf_init(&w);
        proto_error e = {.tag = 0, .sqlstate = sqlstate, .message = msg};
        if (proto_put_error(&w, &e))
            conn_send(c, &w);
        wbuf_free(&w);
    }
    conn_close_after_flush(c);
}

void
conn_close(conn *c)
{
    conn_set_state(c, CS_CLOSED);
}

void
conn_close_after_flush(conn *c)
{
    if (c->state == CS_CLOSED)
        return;
    if (c->state != CS_OPEN ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_set_state(c, CS_CLOSED);
        return;
    }
    conn_set_state(c, CS_CLOSING);
    bufferevent_disable(c->bev, EV_READ);
    /* bound the wait for a peer that does not read */
    struct timeval tv = {5, 0};
    bufferevent_set_timeouts(c->bev, NULL, &tv);
}

bool
conn_is_open(const conn *c)
{
    return c->state == CS_OPEN;
}

const char *
conn_peer_addr(const conn *c)
{
    return c->peer;
}

size_t
conn_pending_output(const conn *c)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

void
conn_set_arg(conn *c, void *arg)
{
    c->arg = arg;
}

void
conn_pause(conn *c)
{
    c->held = true;
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CS_OPEN && !c->held)
        conn_read_cb(c->bev, c);
}

void
conn_resume(conn *c)
{
    if (!c->held)
        return;
    c->held = false;
    if (c->state != CS_OPEN)
        return;
    /* hand over buffered frames from a fresh loop turn, not from inside the
     * caller's stack (which may be another conn's callback) */
    if (c->resume_ev == NULL)
        c->resume_ev = event_new(c->base, -1, 0, conn_resume_cb, c);
    if (c->resume_ev)
        event_active(c->resume_ev, 0, 0);
}

void
conn_set_read_timeout(conn *c, int ms)
{
    if (ms <= 0) {
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, &tv, NULL);
}
