/*
 * conn.h — one framed, TLS-protected connection on a libevent loop.
 *
 * A conn owns a socket and its OpenSSL connection and turns the byte stream into
 * frames (frame.h).  It is used by both daemons for every peer: the
 * coordinator's clients and participants, the participant's coordinators.
 *
 * Life cycle:
 *
 *   conn_accept()/conn_connect()  -> HANDSHAKE
 *   TLS handshake done            -> OPEN      (ops->on_open is called; the
 *                                               owner checks the peer name)
 *   each complete frame           -> ops->on_frame
 *   EOF, error, bad frame, or
 *   conn_close() by the owner     -> CLOSED    (ops->on_close is called once,
 *                                               unless the owner closed it)
 *
 * A closed conn is freed later, from a zero-timeout event, never inside one
 * of its own callbacks: an owner may call conn_close() from on_frame and
 * keep using the pointer until that callback returns.
 *
 * Output is written once per loop turn: conn_send() queues, and one event
 * per process writes every conn that has something queued after the other
 * callbacks of the turn.  That event and the free-list event belong to the
 * event_base of the first conn: all conns of a process share one base.
 *
 * Backpressure: when more than CONN_OUT_HIGH bytes wait to be written to a
 * slow peer, the conn stops reading from it until the backlog drops under
 * CONN_OUT_LOW; while its owner holds frames back (conn_pause), it stops
 * reading once more than CONN_OUT_HIGH bytes of input wait.  So one peer
 * cannot make the process buffer without bound.
 *
 * Admission (a daemon's listener): a conn made by conn_accept() is
 * *authenticating* until its owner calls conn_authenticated() — once TLS is
 * up and the peer's HELLO has been answered.  Authenticating conns are
 * bounded in time (authentication_timeout, from the accept) and in number
 * (max_authenticating: at the cap the oldest that has sent nothing, else
 * the oldest, is dropped to make room; conn.c, "Admission" says why); a
 * dropped conn gets on_close.  Refusals of
 * connections not yet authenticated are logged through
 * conn_refusal_note(): the first of each kind in full, then one summary
 * line per interval, never a line per socket.
 */
#ifndef DTX_CONN_H
#define DTX_CONN_H

#include "buf.h"
#include "frame.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#define CONN_OUT_HIGH (4u * 1024 * 1024)
#define CONN_OUT_LOW  (1u * 1024 * 1024)

typedef struct conn conn;

typedef struct conn_ops {
    /* TLS is up; peer_name is the verified certificate's name (CN), or "" */
    void (*on_open)(conn *c, const char *peer_name, void *arg);
    /* a whole frame; payload valid only during the call */
    void (*on_frame)(conn *c, const frame_view *f, void *arg);
    /* the connection ended; reason is readable text.  Not called after the
     * owner's own conn_close(). */
    void (*on_close)(conn *c, const char *reason, void *arg);
} conn_ops;

/* Wrap an accepted socket (server side).  Takes ownership of fd.  Returns
 * NULL (fd closed) on failure.  Free with conn_close(). */
conn *conn_accept(struct event_base *base, SSL_CTX *ctx, int fd, uint32_t max_frame,
                  const conn_ops *ops, void *arg);
/* Start connecting to host:port (client side); `verify_host` is the name the
 * server's certificate must carry (NULL: do not check the name).  Errors,
 * including a failed connect, are reported through on_close.  host should be
 * an IPv4 or IPv6 address: a host name is resolved with a blocking
 * getaddrinfo (resolve it on the loop first, as plink.c does). */
conn *conn_connect(struct event_base *base, SSL_CTX *ctx, const char *host, int port,
                   const char *verify_host, uint32_t max_frame, const conn_ops *ops, void *arg);
/* Queue an encoded buffer (one or more frames) for sending. */
void conn_send(conn *c, const wbuf *w);
void conn_send_bytes(conn *c, const void *p, size_t n);
/* Send an error frame (tag 0), then close once it has been written. */
void conn_fail(conn *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Close now; the object is freed later (see above).  No callbacks follow. */
void conn_close(conn *c);
/* Close once the output has drained (after a final reply). */
void conn_close_after_flush(conn *c);
bool conn_is_open(const conn *c);
/* From on_open on: whether the peer's verified certificate carries a name on
 * allowed[0..n-1] (tls.h, "Peer names"; n = 0 allows any).  When it does
 * not, name receives the certificate's name for messages ("(none)" when it
 * has none). */
bool conn_peer_allowed(conn *c, const char *const *allowed, size_t n, char *name, size_t namelen);
const char *conn_peer_addr(const conn *c);
size_t conn_pending_output(const conn *c);
void conn_set_arg(conn *c, void *arg);
/* Stop handing frames to on_frame (they stay buffered; the socket is still
 * read until CONN_OUT_HIGH bytes wait) until conn_resume(). */
void conn_pause(conn *c);
void conn_resume(conn *c);
/* Apply an idle timeout (ms; 0 = none): when the peer sends nothing for
 * that long, or takes none of our pending output for that long, on_close
 * runs with "timeout". */
void conn_set_read_timeout(conn *c, int ms);

/* ---- admission ---------------------------------------------------------- */

typedef struct conn_admission {
    int64_t timeout_ms;     /* authentication_timeout: from accept to
                             * conn_authenticated(); 0 = none */
    int max_authenticating; /* conns authenticating at once; 0 = no cap */
} conn_admission;

/* Why a connection was refused before it was authenticated (the summary's
 * counters).  Values are never renumbered. */
typedef enum conn_refusal {
    CONN_REFUSED_TIMEOUT = 0,    /* authentication_timeout passed */
    CONN_REFUSED_AUTHENTICATING, /* dropped at the max_authenticating cap */
    CONN_REFUSED_CAPACITY,       /* the owner's own cap (max_clients) */
    CONN_REFUSED_TLS,            /* the TLS handshake failed or was cut off */
    CONN_REFUSED_NAME,           /* the certificate's name is not allowed */
    CONN_REFUSED_HELLO,          /* closed before its HELLO was answered */
    CONN_REFUSAL_KINDS
} conn_refusal;

/* The process's admission rules for conns accepted from now on (both
 * daemons call it once, before listening).  Without it nothing is timed
 * or capped. */
void conn_admission_set(const conn_admission *a);
/* The owner has authenticated c (TLS up, HELLO answered): it is no longer
 * timed or counted as authenticating.  Idempotent. */
void conn_authenticated(conn *c);
/* Count a refusal of c (not yet authenticated) for the summary.  True when
 * this one should be logged in full by the caller — the first of its kind
 * after a quiet interval; the rest are only counted, and one line per
 * interval sums them up. */
bool conn_refusal_note(conn *c, conn_refusal why) __attribute__((warn_unused_result));
/* Call from a listener's accept callback, for each connection taken:
 * after CONN_ACCEPTS_PER_TURN (conn.c) in one loop turn the listener is
 * disabled until the next, so that a flood of connections cannot starve
 * the peers already connected.  *listener is read again when it is
 * enabled: set it to NULL when the listener is freed. */
void conn_admission_accepted(struct evconnlistener **listener);
/* At exit: log the pending summary, free the admission's events. */
void conn_admission_end(void);

#endif
