/*
 * conn.c — see conn.h.
 *
 * NOTES
 *  State: CONNECTING (TCP connect in progress, client side only) ->
 *  HANDSHAKE -> OPEN -> CLOSING (draining output before close) -> CLOSED.
 *  Only conn_set_state() changes it.  CLOSED conns are put on a per-process
 *  free list drained by a zero-timeout event, so that the memory of a conn
 *  outlives every callback that might still hold its pointer.
 *
 *  I/O.  Each conn owns its socket, an SSL object reading and writing it
 *  directly, and two events: `rev` (read, persistent, carries the idle
 *  timeout) and `wev` (write, added only while something waits for the
 *  socket to become writable: a TCP connect, a handshake step, an output
 *  backlog the kernel did not take, or the bounded wait of CLOSING).
 *
 *  Reading: SSL read-ahead is on, so one read(2) takes everything the
 *  socket holds into OpenSSL's buffer; records are decrypted into `in`
 *  until OpenSSL holds nothing more, without a trailing EAGAIN read.  Data
 *  can stay inside OpenSSL only where reading stops early — the end of the
 *  handshake, the per-turn budget, backpressure, a paused owner — and each
 *  of those reads again itself (conn_read_kick), since the socket will not
 *  report that data as readable again.  All complete frames in `in` are
 *  handed to on_frame in one go; evbuffer_pullup() makes a frame contiguous
 *  only when it spans chains.  A header announcing more than max_frame
 *  closes the connection at once (an ERROR frame 08P01 is sent first),
 *  before anything of the payload is buffered beyond what was read.
 *
 *  Writing: conn_send() only appends to `out` and puts the conn on the
 *  pending-flush list; one flush event, activated at the first append of a
 *  loop turn, writes every pending conn after the callbacks of that turn
 *  have run.  So all frames a turn produces for one peer — replies to
 *  several clients' requests multiplexed on one participant link, say —
 *  leave in one TLS record and one write(2), and no event is added or
 *  removed unless the kernel refuses part of the output (then `wev` waits
 *  for room).  This is the loop shape of Redis's beforeSleep().
 *
 *  Backpressure: more than CONN_OUT_HIGH bytes in `out` stops reading from
 *  the peer until the backlog falls under CONN_OUT_LOW; more than
 *  CONN_OUT_HIGH bytes in `in` while the owner holds frames back stops it
 *  until conn_resume().
 *
 *  Timeouts: the idle timeout rides on `rev` (nothing received) and on
 *  `wev` while output is refused (nothing taken).  libevent remembers a
 *  persistent event's timeout across event_del() and re-arms it when the
 *  event fires, so "no timeout" is set with a placeholder timer that is
 *  removed at once (conn_event_add).
 *
 *  Closing: CLOSING writes what is queued (bounded by 5 s), then the socket
 *  is closed gracefully: unread input is discarded and FIN sent first, or
 *  the kernel would answer the close with a reset that can destroy the
 *  last frame in flight.
 */
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* most bytes decrypted from one peer in one loop turn (fairness) */
#define CONN_READ_BUDGET (256u * 1024)
/* largest contiguous piece handed to one SSL_write */
#define CONN_WRITE_CHUNK (64u * 1024)
/* bounded wait for a peer that does not read our last frames */
#define CONN_CLOSING_TIMEOUT_S 5

typedef enum conn_state { CS_CONNECTING, CS_HANDSHAKE, CS_OPEN, CS_CLOSING, CS_CLOSED } conn_state;

struct conn {
    conn_state state;
    struct event_base *base;
    const conn_ops *ops;
    void *arg;
    uint32_t max_frame;
    int fd;
    SSL *ssl;
    struct event *rev;      /* EV_READ|EV_PERSIST */
    struct event *wev;      /* EV_WRITE|EV_PERSIST, added only while waiting */
    struct evbuffer *in;    /* decrypted, not yet handed over */
    struct evbuffer *out;   /* queued, not yet taken by SSL_write */
    struct timeval read_tv; /* idle timeout of rev; {0,0}: none */
    bool reading;           /* rev is added */
    bool wev_added;
    bool read_paused;      /* backpressure: output backlog too large */
    bool held;             /* owner asked for no more frames for now */
    bool held_full;        /* ... and `in` grew past CONN_OUT_HIGH: not reading */
    bool graceful;         /* closed after its output drained: FIN, not RST */
    bool write_blocked;    /* SSL_write wants the socket writable/readable */
    bool write_wants_read; /* ... readable (TLS needs a record from the peer) */
    bool read_wants_write; /* SSL_read wants the socket writable */
    int connect_errno;     /* connect failed at once (-1: name not resolved);
                            * reported from wev */
    struct event *resume_ev;
    char peer[64];
    conn *flush_prev, *flush_next; /* pending-flush list; prev == NULL && head != c: off */
    bool on_flush_list;
    conn *next_free;
};

static conn *free_list;
static struct event *free_ev;
static conn *flush_head;
static struct event *flush_ev;

static void conn_flush(conn *c);
static void conn_deliver(conn *c);
static bool conn_read_socket(conn *c);

/* ------------------------------------------------------------------------
 * Events and lists
 */

static bool
conn_has_read_timeout(const conn *c)
{
    return c->read_tv.tv_sec != 0 || c->read_tv.tv_usec != 0;
}

/* Add a persistent event with timeout tv, or with none.  libevent
 * remembers a persistent event's timeout across event_del() and re-arms it
 * whenever the event fires; event_add(ev, NULL) keeps it.  Only
 * event_remove_timer() on a pending timer forgets it, so "none" is a
 * placeholder timer removed at once. */
static int
conn_event_add(struct event *ev, const struct timeval *tv)
{
    static const struct timeval placeholder = {3600, 0};
    if (event_add(ev, tv ? tv : &placeholder) != 0)
        return -1;
    if (tv == NULL)
        event_remove_timer(ev);
    return 0;
}

/* Add rev with the current idle timeout. */
static void
conn_read_start(conn *c)
{
    if (c->reading)
        return;
    if (conn_event_add(c->rev, conn_has_read_timeout(c) ? &c->read_tv : NULL) == 0)
        c->reading = true;
}

/* Run the read callback from a fresh loop turn: for bytes OpenSSL already
 * holds, which the socket will not report.  Only while rev is added: an
 * activated persistent event with a timeout would re-add itself. */
static void
conn_read_kick(conn *c)
{
    if (c->reading)
        event_active(c->rev, EV_READ, 0);
}

static void
conn_read_stop(conn *c)
{
    if (!c->reading)
        return;
    event_del(c->rev);
    c->reading = false;
}

static void
conn_wev_add(conn *c, const struct timeval *tv)
{
    if (conn_event_add(c->wev, tv) == 0)
        c->wev_added = true;
}

static void
conn_wev_del(conn *c)
{
    if (!c->wev_added)
        return;
    event_del(c->wev);
    c->wev_added = false;
}

static void
flush_list_remove(conn *c)
{
    if (!c->on_flush_list)
        return;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else
        flush_head = c->flush_next;
    if (c->flush_next)
        c->flush_next->flush_prev = c->flush_prev;
    c->flush_prev = c->flush_next = NULL;
    c->on_flush_list = false;
}

static void
flush_all_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    while (flush_head) {
        conn *c = flush_head;
        flush_list_remove(c);
        conn_flush(c);
    }
}

static void
flush_list_add(conn *c)
{
    if (c->on_flush_list)
        return;
    c->flush_prev = NULL;
    c->flush_next = flush_head;
    if (flush_head)
        flush_head->flush_prev = c;
    flush_head = c;
    c->on_flush_list = true;
    if (flush_ev == NULL)
        flush_ev = event_new(c->base, -1, 0, flush_all_cb, NULL);
    if (flush_ev)
        event_active(flush_ev, 0, 0);
    else
        flush_all_cb(-1, 0, NULL); /* out of memory: write at once */
}

/* Close a socket whose last output was handed to the kernel.  Closing with
 * unread input makes the kernel answer with a reset, which may destroy that
 * output before the peer has read it (an ERROR frame, say, while the peer
 * was still sending): discard what has arrived, send FIN, then close. */
static void
conn_close_gracefully(int fd)
{
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void
conn_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    while (free_list) {
        conn *c = free_list;
        free_list = c->next_free;
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->resume_ev)
            event_free(c->resume_ev);
        if (c->ssl)
            SSL_free(c->ssl);
        if (c->fd >= 0 && c->graceful)
            conn_close_gracefully(c->fd);
        else if (c->fd >= 0)
            close(c->fd);
        if (c->in)
            evbuffer_free(c->in);
        if (c->out)
            evbuffer_free(c->out);
        free(c);
    }
}

static void
conn_set_state(conn *c, conn_state st)
{
    switch (st) {
    case CS_CONNECTING:
    case CS_HANDSHAKE:
    case CS_OPEN:
    case CS_CLOSING:
        c->state = st;
        break;
    case CS_CLOSED:
        if (c->state == CS_CLOSED)
            return;
        c->state = CS_CLOSED;
        conn_read_stop(c);
        conn_wev_del(c);
        if (c->resume_ev)
            event_del(c->resume_ev);
        flush_list_remove(c);
        /* no close_notify: the socket is closed without waiting on the peer */
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

/* An SSL_* call on c failed with ret: close with the reason. */
static void
conn_io_failed(conn *c, int ret)
{
    char why[512];
    tls_io_error_text(c->ssl, ret, why, sizeof(why));
    conn_lost(c, why);
}

/* ------------------------------------------------------------------------
 * Handshake
 */

static void
conn_opened(conn *c)
{
    char name[256] = "";
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof(name));
        X509_free(cert);
    }
    conn_set_state(c, CS_OPEN);
    if (c->ops->on_open)
        c->ops->on_open(c, name, c->arg);
    /* the peer's first records may have arrived with its last handshake
     * message: read-ahead holds them in OpenSSL, and the socket will not
     * report them again */
    if (c->state == CS_OPEN && conn_read_socket(c))
        conn_deliver(c);
}

static void
conn_handshake(conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        conn_wev_del(c);
        conn_opened(c);
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        conn_wev_del(c);
        return;
    case SSL_ERROR_WANT_WRITE:
        conn_wev_add(c, NULL);
        return;
    default:
        conn_io_failed(c, r);
    }
}

/* ------------------------------------------------------------------------
 * Reading
 */

/* Hand every complete frame in `in` to on_frame, unless held. */
static void
conn_deliver(conn *c)
{
    struct evbuffer *in = c->in;
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

/* Decrypt what the socket and OpenSSL hold into `in`.  False when the
 * connection ended (on_close has run). */
static bool
conn_read_socket(conn *c)
{
    size_t got = 0;
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->in, 16384, &v, 1) < 1) {
            conn_lost(c, "out of memory");
            return false;
        }
        ERR_clear_error();
        int n = SSL_read(c->ssl, v.iov_base, (int)v.iov_len);
        if (n > 0) {
            v.iov_len = (size_t)n;
            evbuffer_commit_space(c->in, &v, 1);
            got += (size_t)n;
            if (!SSL_has_pending(c->ssl))
                return true;
            if (got >= CONN_READ_BUDGET) {
                /* the rest is inside OpenSSL, invisible to epoll: come back */
                conn_read_kick(c);
                return true;
            }
            continue;
        }
        evbuffer_commit_space(c->in, &v, 0);
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_READ:
            return true;
        case SSL_ERROR_WANT_WRITE:
            c->read_wants_write = true;
            conn_wev_add(c, NULL);
            return true;
        case SSL_ERROR_ZERO_RETURN:
            conn_lost(c, "connection closed by peer");
            return false;
        default:
            conn_io_failed(c, n);
            return false;
        }
    }
}

static void
conn_rev_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        conn_lost(c, "timeout");
        return;
    }
    switch (c->state) {
    case CS_HANDSHAKE:
        conn_handshake(c);
        return;
    case CS_OPEN:
        if (c->write_wants_read) {
            /* the output waited for a record from the peer (rev was added
             * for it even under backpressure) */
            c->write_wants_read = false;
            c->write_blocked = false;
            if (c->read_paused)
                conn_read_stop(c);
            conn_flush(c);
            if (c->state != CS_OPEN)
                return;
        }
        if (c->read_paused || !conn_read_socket(c))
            return;
        conn_deliver(c);
        if (c->state == CS_OPEN && c->held && evbuffer_get_length(c->in) > CONN_OUT_HIGH) {
            /* the owner holds frames back and the peer keeps sending */
            conn_read_stop(c);
            c->held_full = true;
        }
        return;
    case CS_CONNECTING:
    case CS_CLOSING:
    case CS_CLOSED:
        return;
    default:
        abort();
    }
}

/* ------------------------------------------------------------------------
 * Writing
 */

static void
conn_write_done(conn *c)
{
    size_t left = evbuffer_get_length(c->out);
    if (c->state == CS_CLOSING && left == 0) {
        c->graceful = true;
        conn_set_state(c, CS_CLOSED);
        return;
    }
    if (c->read_paused && left < CONN_OUT_LOW && c->state == CS_OPEN) {
        c->read_paused = false;
        conn_read_start(c);
        /* frames may wait in `in`, and bytes inside OpenSSL */
        conn_read_kick(c);
    }
}

/* Hand `out` to OpenSSL until it is empty or the socket is full. */
static void
conn_flush(conn *c)
{
    if ((c->state != CS_OPEN && c->state != CS_CLOSING) || c->write_blocked)
        return;
    size_t len;
    while ((len = evbuffer_get_length(c->out)) > 0) {
        size_t chunk = len < CONN_WRITE_CHUNK ? len : CONN_WRITE_CHUNK;
        const unsigned char *p = evbuffer_pullup(c->out, (ev_ssize_t)chunk);
        if (p == NULL) {
            conn_lost(c, "out of memory");
            return;
        }
        ERR_clear_error();
        int n = SSL_write(c->ssl, p, (int)chunk);
        if (n > 0) {
            evbuffer_drain(c->out, (size_t)n);
            continue;
        }
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_WRITE:
            c->write_blocked = true;
            /* a peer that takes none of our output for the idle timeout
             * is as gone as one that sends nothing (CLOSING has its own
             * bound) */
            if (!c->wev_added)
                conn_wev_add(c, conn_has_read_timeout(c) ? &c->read_tv : NULL);
            conn_write_done(c); /* the backlog may be under the low mark */
            return;
        case SSL_ERROR_WANT_READ:
            if (c->state == CS_CLOSING) {
                /* TLS wants a record from a peer we are leaving: give up */
                conn_set_state(c, CS_CLOSED);
                return;
            }
            c->write_blocked = true;
            c->write_wants_read = true;
            conn_wev_del(c);
            conn_read_start(c); /* even under backpressure: the write needs it */
            return;
        default:
            if (c->state == CS_CLOSING) {
                conn_set_state(c, CS_CLOSED);
                return;
            }
            conn_io_failed(c, n);
            return;
        }
    }
    if (c->state == CS_OPEN)
        conn_wev_del(c);
    if (c->read_wants_write) {
        /* a read that waited for the socket to take our output */
        c->read_wants_write = false;
        conn_read_kick(c);
    }
    conn_write_done(c);
}

static void
conn_wev_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    if (what & EV_TIMEOUT) {
        /* the peer took no output for the idle timeout, or for the
         * bounded wait of CLOSING */
        if (c->state == CS_CLOSING)
            conn_set_state(c, CS_CLOSED);
        else
            conn_lost(c, "timeout");
        return;
    }
    switch (c->state) {
    case CS_CONNECTING: {
        int err = c->connect_errno;
        socklen_t sl = sizeof(err);
        if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
            err = errno;
        if (err != 0) {
            conn_lost(c, err < 0 ? "could not resolve the host name" : strerror(err));
            return;
        }
        conn_wev_del(c);
        conn_set_state(c, CS_HANDSHAKE);
        conn_read_start(c);
        conn_handshake(c);
        return;
    }
    case CS_HANDSHAKE:
        conn_handshake(c);
        return;
    case CS_OPEN:
    case CS_CLOSING:
        if (c->read_wants_write) {
            c->read_wants_write = false;
            conn_read_kick(c);
        }
        c->write_blocked = false;
        conn_flush(c);
        return;
    case CS_CLOSED:
        return;
    default:
        abort();
    }
}

/* ------------------------------------------------------------------------
 * Creation
 */

static conn *
conn_new(struct event_base *base, int fd, uint32_t max_frame, const conn_ops *ops, void *arg)
{
    conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    c->ops = ops;
    c->arg = arg;
    c->max_frame = max_frame;
    c->fd = fd;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_rev_cb, c);
    c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_wev_cb, c);
    if (c->in == NULL || c->out == NULL || c->rev == NULL || c->wev == NULL) {
        /* nothing has seen this conn yet: free it at once; the caller
         * closes fd */
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->in)
            evbuffer_free(c->in);
        if (c->out)
            evbuffer_free(c->out);
        free(c);
        return NULL;
    }
    return c;
}

static void
conn_setup_socket(conn *c, SSL *ssl)
{
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ssl = ssl;
    SSL_set_fd(ssl, c->fd);
    SSL_set_read_ahead(ssl, 1);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
}

conn *
conn_accept(struct event_base *base, SSL_CTX *ctx, int fd, uint32_t max_frame, const conn_ops *ops,
            void *arg)
{
    char err[256];
    evutil_make_socket_nonblocking(fd);
    conn *c = conn_new(base, fd, max_frame, ops, arg);
    SSL *ssl = c ? tls_server_ssl_create(ctx, err, sizeof(err)) : NULL;
    if (ssl == NULL) {
        if (c)
            conn_set_state(c, CS_CLOSED); /* closes fd */
        else
            close(fd);
        return NULL;
    }
    conn_setup_socket(c, ssl);
    SSL_set_accept_state(ssl);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char host[INET6_ADDRSTRLEN] = "?", port[16] = "?";
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
    }
    conn_set_state(c, CS_HANDSHAKE);
    conn_read_start(c);
    return c;
}

conn *
conn_connect(struct event_base *base, SSL_CTX *ctx, const char *host, int port,
             const char *verify_host, uint32_t max_frame, const conn_ops *ops, void *arg)
{
    char err[256];
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    /* host is meant to be an address: a daemon resolves names on its loop
     * first (the coordinator's participants: plink.c).  A name given here
     * is resolved synchronously, which only tools and tests do. */
    int rc = getaddrinfo(host, portstr, &hints, &res);
    int fd = -1, connect_errno = 0;
    if (rc != 0 || res == NULL) {
        connect_errno = -1;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    } else {
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            connect_errno = errno;
        else if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS)
            connect_errno = errno;
    }
    if (res)
        freeaddrinfo(res);
    if (fd < 0) {
        log_warn("could not create a socket for %s:%d: %s", host, port, strerror(errno));
        return NULL;
    }
    conn *c = conn_new(base, fd, max_frame, ops, arg);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    SSL *ssl = tls_client_ssl_create(ctx, verify_host, err, sizeof(err));
    if (ssl == NULL) {
        log_warn("could not set up TLS for %s:%d: %s", host, port, err);
        conn_set_state(c, CS_CLOSED);
        return NULL;
    }
    conn_setup_socket(c, ssl);
    SSL_set_connect_state(ssl);
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    conn_set_state(c, CS_CONNECTING);
    /* the outcome, failure included, always arrives from the loop, so the
     * caller never sees a callback re-enter */
    c->connect_errno = connect_errno;
    conn_wev_add(c, NULL);
    if (connect_errno != 0)
        event_active(c->wev, EV_WRITE, 0);
    return c;
}

/* ------------------------------------------------------------------------
 * Owner's interface
 */

void
conn_send_bytes(conn *c, const void *p, size_t n)
{
    if (c->state != CS_OPEN || n == 0)
        return;
    evbuffer_add(c->out, p, n);
    flush_list_add(c);
    if (!c->read_paused && evbuffer_get_length(c->out) > CONN_OUT_HIGH) {
        c->read_paused = true;
        conn_read_stop(c);
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
    if (c->state != CS_OPEN || evbuffer_get_length(c->out) == 0) {
        /* what was sent before may still be in the kernel's queue */
        c->graceful = c->state == CS_OPEN;
        conn_set_state(c, CS_CLOSED);
        return;
    }
    conn_set_state(c, CS_CLOSING);
    conn_read_stop(c);
    /* the flush list writes what it can; wev bounds the wait for the rest */
    struct timeval tv = {CONN_CLOSING_TIMEOUT_S, 0};
    conn_wev_add(c, &tv);
}

bool
conn_peer_allowed(conn *c, const char *const *allowed, size_t n, char *name, size_t namelen)
{
    char why[256];
    if (n == 0 || tls_check_peer_allowed(c->ssl, allowed, n, why, sizeof(why)))
        return true;
    if (!tls_peer_name(c->ssl, name, namelen))
        snprintf(name, namelen, "(none)");
    return false;
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
    return c->out ? evbuffer_get_length(c->out) : 0;
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
    if (c->state != CS_OPEN || c->held)
        return;
    conn_deliver(c);
    if (c->state == CS_OPEN && !c->held && c->held_full) {
        c->held_full = false;
        if (!c->read_paused) {
            conn_read_start(c);
            conn_read_kick(c); /* bytes may wait inside OpenSSL */
        }
    }
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
        c->read_tv.tv_sec = 0;
        c->read_tv.tv_usec = 0;
    } else {
        c->read_tv.tv_sec = ms / 1000;
        c->read_tv.tv_usec = (ms % 1000) * 1000;
    }
    /* a peer that takes none of our output is timed by the write event
     * (conn_flush); CLOSING keeps its own bound */
    if (c->wev_added && c->write_blocked && c->state == CS_OPEN)
        conn_event_add(c->wev, conn_has_read_timeout(c) ? &c->read_tv : NULL);
    if (!c->reading)
        return;
    /* change the timer in place: a del/add would also drop a pending
     * conn_read_kick() */
    if (conn_has_read_timeout(c))
        event_add(c->rev, &c->read_tv);
    else
        event_remove_timer(c->rev);
}
