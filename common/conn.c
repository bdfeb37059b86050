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
 *
 *  Admission.  Once a daemon has called conn_admission_set(), every conn
 *  conn_accept() makes is *authenticating* until its owner calls
 *  conn_authenticated() (TLS up, HELLO answered), and sits on two lists,
 *  both in accept order: `all` authenticating conns, and the `quiet` ones
 *  among them, which have sent no byte yet (the first readable event takes
 *  a conn off it, and so does a look at its socket when it is about to be
 *  dropped for being quiet: a burst of accepts runs before any of them is
 *  read).  Leaving HANDSHAKE/OPEN (CLOSING, CLOSED) takes a conn off both.  Invariants: a conn is
 * on `quiet` only while on `all`; while `all` is not empty, `deadline_ev` is pending no later than
 * the deadline of its head (accept time + authentication_timeout): accept order is deadline order,
 * so one timer serves them all, and whatever it finds due at the head is dropped.
 *
 *  The cap.  When a new conn would make more than max_authenticating, one
 *  already there is dropped — the oldest quiet one, or, when every one has
 *  spoken, the oldest of all — and the new one is always admitted.  The
 *  other policy, refusing newcomers while the cap is reached, hands the
 *  listener to whoever holds the slots: a flood of silent sockets keeps
 *  them for authentication_timeout and takes each one back the moment it
 *  is freed, so an authorised client racing it hardly ever gets in.
 *  Dropping the oldest instead makes every held slot short-lived: a client
 *  that has sent its ClientHello is never dropped while a silent socket is
 *  left, and among clients that have all spoken it is dropped only if
 *  max_authenticating newer ones arrive within its own handshake (a few
 *  milliseconds), each of which costs the sender, and us, a TLS handshake.
 *  A drop closes the socket; when TLS is already up the peer first gets an
 *  ERROR — 53300 "too many connections" for the cap, 57014 for the
 *  timeout — and on_close tells the owner.  A quiet conn is reset instead
 *  of closed with FIN: nobody reads its goodbye, and a reset leaves no
 *  TIME_WAIT behind, of which a flood of them would leave thousands.
 *
 *  Accepting.  libevent's listener accepts until the backlog is empty,
 *  which under a flood of connects it never is: one callback would run on
 *  and starve every connected peer.  The daemons' accept callbacks call
 *  conn_admission_accepted(), which disables the listener after
 *  CONN_ACCEPTS_PER_TURN accepts and enables it again from a timer that
 *  fires in the next loop turn; the kernel's backlog holds the rest.
 *
 *  Refusals of conns not yet authenticated are counted by kind
 *  (conn_refusal) over intervals of CONN_REFUSAL_INTERVAL_S: the timeout,
 *  the cap and a failed or abandoned handshake here, the owner's own
 *  (a name not allowed, max_clients) through conn_refusal_note().  Only
 *  the first of a kind after an interval without it is logged in full,
 *  as an example; at the end of an interval that left some unlogged, one
 *  line sums them up by kind.  An interval with refusals is followed by
 *  another, so a steady stream of them is only ever summed up.
 */
#include "conn.h"
#include "clock.h"
#include "log.h"
#include "proto.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/listener.h>
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
/* most connections a listener takes in one loop turn */
#define CONN_ACCEPTS_PER_TURN 8
/* how long one summary of refused connections covers */
#define CONN_REFUSAL_INTERVAL_S 10

/* the admission's lists (see the notes above) */
enum { ADMIT_ALL = 0, ADMIT_QUIET = 1, ADMIT_LISTS = 2 };

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
    bool reset;            /* dropped before TLS was up: RST, no FIN (admit_drop) */
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
    /* admission: on adm.list[w] while admit_on[w] */
    bool admit_on[ADMIT_LISTS];
    conn *admit_prev[ADMIT_LISTS], *admit_next[ADMIT_LISTS];
    int64_t admit_since_ms; /* accepted at (clock_mono_ms) */
};

typedef struct admit_list {
    conn *head, *tail; /* oldest first */
    int n;
} admit_list;

/* the process's admission state */
static struct {
    bool enabled; /* conn_admission_set() was called */
    conn_admission rules;
    admit_list list[ADMIT_LISTS];
    struct event *deadline_ev;          /* pending no later than the oldest's deadline */
    struct event *summary_ev;           /* the end of the current refusal interval */
    int64_t since_ms;                   /* ... and its start */
    uint64_t count[CONN_REFUSAL_KINDS]; /* refusals of this interval, by kind */
    bool recent[CONN_REFUSAL_KINDS];    /* ... and whether the last one had any */
    uint64_t unlogged;                  /* counted without a line of their own */
    /* conn_admission_accepted: accepts of this loop turn */
    struct event *turn_ev;          /* fires in the next turn */
    int turn_accepts;               /* accepts since it was armed */
    struct evconnlistener **paused; /* the listener disabled until then */
} adm;

static conn *free_list;
static struct event *free_ev;
static conn *flush_head;
static struct event *flush_ev;

static void conn_flush(conn *c);
static void conn_deliver(conn *c);
static bool conn_read_socket(conn *c);
static void admit_enter(conn *c);
static void admit_unlink(int w, conn *c);
static void admit_unlist(conn *c);
static void admit_lost(conn *c, const char *reason);

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
        if (c->fd >= 0 && c->graceful) {
            conn_close_gracefully(c->fd);
        } else if (c->fd >= 0) {
            if (c->reset) {
                /* the cheapest close: no FIN, no TIME_WAIT kept here */
                struct linger lg = {.l_onoff = 1, .l_linger = 0};
                setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            }
            close(c->fd);
        }
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
        c->state = st;
        break;
    case CS_CLOSING:
        admit_unlist(c);
        c->state = st;
        break;
    case CS_CLOSED:
        if (c->state == CS_CLOSED)
            return;
        admit_unlist(c);
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
    if (c->admit_on[ADMIT_ALL])
        admit_lost(c, reason);
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
            if (c->admit_on[ADMIT_ALL])
                admit_lost(c, "oversized frame");
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
        if (c->admit_on[ADMIT_QUIET]) {
            /* it has spoken: no longer the first to go at the cap */
            admit_unlink(ADMIT_QUIET, c);
        }
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
    if (adm.enabled)
        admit_enter(c);
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

/* ------------------------------------------------------------------------
 * Admission (see the notes at the top)
 */

static const char *const refusal_words[CONN_REFUSAL_KINDS][2] = {
    [CONN_REFUSED_TIMEOUT] = {"authentication timeout", "authentication timeouts"},
    [CONN_REFUSED_AUTHENTICATING] = {"over max_authenticating", "over max_authenticating"},
    [CONN_REFUSED_CAPACITY] = {"over max_clients", "over max_clients"},
    [CONN_REFUSED_TLS] = {"failed TLS handshake", "failed TLS handshakes"},
    [CONN_REFUSED_NAME] = {"certificate name not allowed", "certificate names not allowed"},
    [CONN_REFUSED_HELLO] = {"closed before HELLO", "closed before HELLO"},
};

static void
admit_link(int w, conn *c)
{
    admit_list *l = &adm.list[w];
    c->admit_prev[w] = l->tail;
    c->admit_next[w] = NULL;
    if (l->tail)
        l->tail->admit_next[w] = c;
    else
        l->head = c;
    l->tail = c;
    l->n++;
    c->admit_on[w] = true;
}

static void
admit_unlink(int w, conn *c)
{
    if (!c->admit_on[w])
        return;
    admit_list *l = &adm.list[w];
    if (c->admit_prev[w])
        c->admit_prev[w]->admit_next[w] = c->admit_next[w];
    else
        l->head = c->admit_next[w];
    if (c->admit_next[w])
        c->admit_next[w]->admit_prev[w] = c->admit_prev[w];
    else
        l->tail = c->admit_prev[w];
    c->admit_prev[w] = c->admit_next[w] = NULL;
    c->admit_on[w] = false;
    l->n--;
}

static void
admit_unlist(conn *c)
{
    admit_unlink(ADMIT_QUIET, c);
    admit_unlink(ADMIT_ALL, c);
}

static void admit_deadline_cb(evutil_socket_t fd, short what, void *arg);

/* Have deadline_ev fire at the deadline of the oldest authenticating conn. */
static void
admit_deadline_arm(struct event_base *base)
{
    const conn *oldest = adm.list[ADMIT_ALL].head;
    if (oldest == NULL || adm.rules.timeout_ms <= 0)
        return;
    if (adm.deadline_ev == NULL)
        adm.deadline_ev = evtimer_new(base, admit_deadline_cb, NULL);
    if (adm.deadline_ev == NULL)
        return; /* out of memory: the cap still bounds them */
    int64_t left = oldest->admit_since_ms + adm.rules.timeout_ms - clock_mono_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(adm.deadline_ev, &tv);
}

/* Close authenticating conn c for the admission's sake (the timeout or the
 * cap).  With TLS up the peer is told why first; the owner hears of it
 * through on_close either way. */
static void
admit_drop(conn *c, conn_refusal why)
{
    char msg[200];
    bool timeout = why == CONN_REFUSED_TIMEOUT;
    if (timeout)
        snprintf(msg, sizeof(msg),
                 "canceling authentication due to timeout (authentication_timeout = %lld ms)",
                 (long long)adm.rules.timeout_ms);
    else
        snprintf(msg, sizeof(msg),
                 "too many connections (max_authenticating = %d): the oldest connection still "
                 "authenticating was closed to make room",
                 adm.rules.max_authenticating);
    bool quiet = c->admit_on[ADMIT_QUIET];
    admit_unlist(c);
    if (conn_refusal_note(c, why))
        log_log("closed connection from %s %s: %s", c->peer,
                c->state == CS_HANDSHAKE ? "before TLS was up" : "before its HELLO was answered",
                msg);
    if (c->state == CS_OPEN) {
        conn_fail(c, timeout ? "57014" : "53300", "%s", msg);
    } else {
        /* nothing can be said before TLS is up; one that never sent a byte
         * is reset, which keeps no TIME_WAIT here for it */
        c->reset = quiet;
        conn_set_state(c, CS_CLOSED);
    }
    if (c->ops->on_close)
        c->ops->on_close(
            c, timeout ? "authentication timeout" : "too many connections authenticating", c->arg);
}

static void
admit_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int64_t now = clock_mono_ms();
    conn *c;
    while ((c = adm.list[ADMIT_ALL].head) != NULL &&
           c->admit_since_ms + adm.rules.timeout_ms <= now)
        admit_drop(c, CONN_REFUSED_TIMEOUT);
    if (c)
        admit_deadline_arm(c->base);
}

/* The conn to drop at the cap: the oldest quiet one, or else the oldest of
 * all.  A quiet one is asked whether it is still silent: its first bytes
 * may have arrived without a readable event run for them yet (a whole
 * burst of accepts comes before any of them is read). */
static conn *
admit_victim(void)
{
    conn *c;
    while ((c = adm.list[ADMIT_QUIET].head) != NULL) {
        char b;
        if (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
            return c; /* silent, or gone */
        admit_unlink(ADMIT_QUIET, c);
    }
    return adm.list[ADMIT_ALL].head;
}

/* A new conn from conn_accept: make room under the cap, then list it. */
static void
admit_enter(conn *c)
{
    int cap = adm.rules.max_authenticating;
    while (cap > 0 && adm.list[ADMIT_ALL].n >= cap)
        admit_drop(admit_victim(), CONN_REFUSED_AUTHENTICATING);
    bool first = adm.list[ADMIT_ALL].head == NULL;
    c->admit_since_ms = clock_mono_ms();
    admit_link(ADMIT_ALL, c);
    admit_link(ADMIT_QUIET, c);
    if (first)
        admit_deadline_arm(c->base);
}

/* Authenticating conn c ended on its own (conn_lost, an oversized first
 * frame): count it, and log it when it is the example of its kind. */
static void
admit_lost(conn *c, const char *reason)
{
    conn_refusal why = c->state == CS_HANDSHAKE ? CONN_REFUSED_TLS : CONN_REFUSED_HELLO;
    admit_unlist(c);
    if (!conn_refusal_note(c, why))
        return;
    if (why == CONN_REFUSED_TLS)
        log_log("could not accept connection from %s: TLS handshake failed: %s", c->peer, reason);
    else
        log_log("connection from %s closed before its HELLO was answered: %s", c->peer, reason);
}

/* One line: what the current interval counted, by kind. */
static void
admit_summary_log(void)
{
    char text[512] = "";
    size_t len = 0;
    unsigned long long total = 0;
    for (int k = 0; k < CONN_REFUSAL_KINDS; k++) {
        unsigned long long n = adm.count[k];
        if (n == 0 || len >= sizeof(text))
            continue;
        total += n;
        int w = snprintf(text + len, sizeof(text) - len, "%s%llu %s", len ? ", " : "", n,
                         refusal_words[k][n != 1]);
        len += w > 0 ? (size_t)w : 0;
    }
    int64_t secs = (clock_mono_ms() - adm.since_ms + 500) / 1000;
    log_log("refused %llu connection%s in the last %lld s: %s", total, total == 1 ? "" : "s",
            (long long)(secs < 1 ? 1 : secs), text);
}

static void
admit_summary_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    bool any = false;
    if (adm.unlogged > 0)
        admit_summary_log();
    for (int k = 0; k < CONN_REFUSAL_KINDS; k++) {
        adm.recent[k] = adm.count[k] > 0;
        any = any || adm.recent[k];
        adm.count[k] = 0;
    }
    adm.unlogged = 0;
    if (any) {
        /* a stream of refusals goes on being summed up, not logged */
        struct timeval tv = {CONN_REFUSAL_INTERVAL_S, 0};
        adm.since_ms = clock_mono_ms();
        evtimer_add(adm.summary_ev, &tv);
    }
}

bool
conn_refusal_note(conn *c, conn_refusal why)
{
    if ((unsigned)why >= CONN_REFUSAL_KINDS)
        abort();
    bool in_full = adm.count[why] == 0 && !adm.recent[why];
    adm.count[why]++;
    if (!in_full)
        adm.unlogged++;
    if (adm.summary_ev == NULL)
        adm.summary_ev = evtimer_new(c->base, admit_summary_cb, NULL);
    if (adm.summary_ev && !evtimer_pending(adm.summary_ev, NULL)) {
        struct timeval tv = {CONN_REFUSAL_INTERVAL_S, 0};
        adm.since_ms = clock_mono_ms();
        evtimer_add(adm.summary_ev, &tv);
    }
    return in_full;
}

void
conn_admission_set(const conn_admission *a)
{
    adm.rules = *a;
    adm.enabled = true;
}

void
conn_authenticated(conn *c)
{
    admit_unlist(c);
}

static void
admit_turn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    adm.turn_accepts = 0;
    if (adm.paused && *adm.paused)
        evconnlistener_enable(*adm.paused);
    adm.paused = NULL;
}

void
conn_admission_accepted(struct evconnlistener **listener)
{
    static const struct timeval next_turn = {0, 0};
    if (adm.turn_ev == NULL)
        adm.turn_ev = evtimer_new(evconnlistener_get_base(*listener), admit_turn_cb, NULL);
    if (adm.turn_ev == NULL)
        return;
    if (adm.turn_accepts++ == 0)
        evtimer_add(adm.turn_ev, &next_turn);
    if (adm.turn_accepts >= CONN_ACCEPTS_PER_TURN && adm.paused == NULL) {
        /* libevent's listener accepts until the backlog is empty; under a
         * flood that is never: leave the rest for the next turn */
        evconnlistener_disable(*listener);
        adm.paused = listener;
    }
}

void
conn_admission_end(void)
{
    if (adm.unlogged > 0)
        admit_summary_log();
    memset(adm.count, 0, sizeof(adm.count));
    memset(adm.recent, 0, sizeof(adm.recent));
    adm.unlogged = 0;
    if (adm.summary_ev) {
        event_free(adm.summary_ev);
        adm.summary_ev = NULL;
    }
    if (adm.deadline_ev) {
        event_free(adm.deadline_ev);
        adm.deadline_ev = NULL;
    }
    if (adm.turn_ev) {
        event_free(adm.turn_ev);
        adm.turn_ev = NULL;
    }
    adm.turn_accepts = 0;
    adm.paused = NULL;
}
