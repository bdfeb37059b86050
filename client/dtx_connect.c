/*
 * dtx_connect.c — the life of a dtx_conn: creation, the connection
 * state machine (TCP, TLS, HELLO) over several hosts, the blocking connect
 * with its time-out, dtx_finish, and the accessors.  The object's own
 * bookkeeping (state, error message, socket) is dtx_conn.c's; the
 * handshake's reads and writes are dtx_io.c's.
 *
 * NOTES
 *  States (dtx_conn.h draws them; dtx_conn_set_state is their only writer):
 *
 *    NEW         conninfo parsed, nothing tried yet
 *    CONNECTING  non-blocking connect() to one address in progress
 *    TLS         SSL_connect() in progress on that socket
 *    HELLO       HELLO queued; waiting for HELLO_OK (or ERROR)
 *    READY       open; requests may be sent (dtx_io.c)
 *    BAD         every address failed, or an open connection broke
 *
 *  Attempts.  Hosts are tried in the order given; each host's addresses
 *  (getaddrinfo, which blocks) in the order the resolver returns them.  Any
 *  failure of an attempt — refused TCP connect, failed TLS handshake or
 *  certificate check, an ERROR instead of HELLO_OK (e.g. a refused client
 *  certificate, which under TLS 1.3 only shows up as an alert on the first
 *  read), a protocol violation, or the caller's time-out — is appended as
 *  one line to the error message and the next address is tried.  The
 *  message thus lists every failure when all of them fail; it is cleared
 *  when one succeeds.  The last ERROR a coordinator answered HELLO with is
 *  also kept whole (last_error, for dtx_error_field) until one succeeds.
 *
 *  Target role.  With target_role=primary (the default) HELLO says role
 *  client, and a standby — or a coordinator being promoted — answers ERROR
 *  57P03 (PROTO_NOT_PRIMARY_SQLSTATE): an attempt that failed like any
 *  other, so the next address or host is tried, and the line kept for it
 *  carries the standby's message and SQLSTATE.  The other addresses of the
 *  same host are tried too: one name may stand for both coordinators.
 *  With target_role=any HELLO says role admin, which a standby accepts
 *  (STATUS, INDOUBT, REPLICATION, PROMOTE), so the first coordinator that
 *  completes the handshake is used, whatever its role.
 *
 *  Polling.  dtx_connect_poll() never blocks (beyond name resolution): it
 *  advances as far as the socket allows and says which readiness to wait
 *  for.  Whether a non-blocking connect() finished is checked with a
 *  zero-time poll(), so calling it early is harmless.  dtx_connect() is this
 *  loop plus poll() and connect_timeout, which applies to each address.
 *
 *  Ownership: a dtx_conn owns its conninfo, SSL_CTX, SSL, socket, buffers,
 *  queued results and strings; dtx_finish frees all of them.  Results already
 *  handed out are the application's.
 */
#include "dtx.h"
#include "dtx_conn.h"
#include "dtx_conninfo.h"
#include "dtx_io.h"
#include "dtx_result.h"
#include "dtx_tls.h"

#include "clock.h"
#include "frame.h"
#include "proto.h"
#include "proto_repl.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>

int
dtx_lib_version(void)
{
    return DTX_VERSION_NUM;
}

/* ---- attempts ------------------------------------------------------------- */

static const char *
cur_host(const dtx_conn *c)
{
    return c->ci.hosts[c->host_idx];
}

static int
cur_port(const dtx_conn *c)
{
    return c->ci.ports[c->host_idx];
}

static void
attempt_error(dtx_conn *c, const char *reason)
{
    if (c->addr_text[0] && strcmp(c->addr_text, cur_host(c)) != 0)
        dtx_conn_error_append(c, "connection to coordinator at \"%s\" (%s), port %d failed: %s\n",
                              cur_host(c), c->addr_text, cur_port(c), reason);
    else
        dtx_conn_error_append(c, "connection to coordinator at \"%s\", port %d failed: %s\n",
                              cur_host(c), cur_port(c), reason);
}

/* Open a socket to addr_cur and start connecting.  False (error recorded,
 * nothing left open) when that fails at once. */
static bool
open_socket(dtx_conn *c)
{
    struct addrinfo *ai = c->addr_cur;
    char err[DTX_ERRBUF];
    c->attempt++;
    c->addr_text[0] = '\0';
    const void *a = ai->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    if (inet_ntop(ai->ai_family, a, c->addr_text, sizeof(c->addr_text)) == NULL)
        c->addr_text[0] = '\0';

    c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (c->fd < 0) {
        snprintf(err, sizeof(err), "could not create socket: %s", dtx_strerror(errno));
        attempt_error(c, err);
        return false;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        dtx_conn_set_state(c, DTX_CS_CONNECTING); /* done; dtx_connect_poll goes on */
        return true;
    }
    if (errno == EINPROGRESS || errno == EINTR) {
        dtx_conn_set_state(c, DTX_CS_CONNECTING);
        return true;
    }
    snprintf(err, sizeof(err), "%s", dtx_strerror(errno));
    attempt_error(c, err);
    dtx_conn_close_socket(c);
    return false;
}

/* Move on to the next address, or the next host; BAD when none is left. */
static void
next_attempt(dtx_conn *c)
{
    for (;;) {
        if (c->addr_cur)
            c->addr_cur = c->addr_cur->ai_next;
        while (c->addr_cur == NULL) {
            if (c->addrs) {
                freeaddrinfo(c->addrs);
                c->addrs = NULL;
            }
            if (c->host_idx + 1 >= c->ci.nhosts) {
                dtx_conn_set_state(c, DTX_CS_BAD);
                return;
            }
            c->host_idx++;
            char port[16];
            snprintf(port, sizeof(port), "%d", cur_port(c));
            struct addrinfo hints = {
                .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
            int r = getaddrinfo(cur_host(c), port, &hints, &c->addrs);
            if (r != 0) {
                c->addrs = NULL;
                c->addr_text[0] = '\0';
                char err[DTX_ERRBUF];
                snprintf(err, sizeof(err), "could not translate host name to address: %s",
                         r == EAI_SYSTEM ? dtx_strerror(errno) : gai_strerror(r));
                attempt_error(c, err);
                continue;
            }
            c->addr_cur = c->addrs;
        }
        if (open_socket(c))
            return;
    }
}

/* The current attempt failed (reason: one line): record it, close its
 * socket, and start the next address or host (or become BAD). */
static void
dtx_conn_attempt_failed(dtx_conn *c, const char *reason)
{
    if (c->host_idx < 0 || c->state == DTX_CS_BAD || c->state == DTX_CS_READY)
        abort(); /* only an attempt in progress can fail */
    attempt_error(c, reason);
    dtx_conn_close_socket(c);
    next_attempt(c);
}

/* TCP is up: create the SSL object and enter TLS.  False when the attempt
 * failed (already recorded and moved on). */
static bool
start_tls(dtx_conn *c)
{
    char err[DTX_ERRBUF];
    c->ssl = dtx_tls_ssl_create(c->ctx, c->fd, cur_host(c), c->ci.sslmode, err, sizeof(err));
    if (c->ssl == NULL) {
        dtx_conn_attempt_failed(c, err);
        return false;
    }
    dtx_conn_set_state(c, DTX_CS_TLS);
    return true;
}

static bool
queue_hello(dtx_conn *c)
{
    /* target_role=any asks as an administrator, whom a standby serves too */
    proto_hello h = {.magic = PROTO_MAGIC,
                     .major = PROTO_MAJOR,
                     .minor = PROTO_MINOR,
                     .role = c->ci.target_role == DTX_TARGET_ANY ? ROLE_ADMIN : ROLE_CLIENT,
                     .name = c->ci.application_name,
                     .epoch = 0};
    if (!proto_put_hello(&c->out, &h)) {
        dtx_conn_attempt_failed(c, "out of memory");
        return false;
    }
    dtx_conn_set_state(c, DTX_CS_HELLO);
    return true;
}

/* ---- the poll step ------------------------------------------------------- */

typedef enum step {
    STEP_AGAIN,   /* state changed: run the next step */
    STEP_READING, /* wait for input */
    STEP_WRITING, /* wait for output room */
} step;

static step
step_connecting(dtx_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    if (poll(&p, 1, 0) == 0)
        return STEP_WRITING;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr != 0) {
        dtx_conn_attempt_failed(c, dtx_strerror(soerr));
        return STEP_AGAIN;
    }
    start_tls(c);
    return STEP_AGAIN;
}

static step
step_tls(dtx_conn *c)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        queue_hello(c);
        return STEP_AGAIN;
    }
    int saved = errno;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return STEP_READING;
    if (e == SSL_ERROR_WANT_WRITE)
        return STEP_WRITING;
    char err[DTX_ERRBUF], reason[DTX_ERRBUF + 32];
    dtx_tls_error_text(c->ssl, e, saved, err, sizeof(err));
    snprintf(reason, sizeof(reason), "TLS handshake failed: %s", err);
    dtx_conn_attempt_failed(c, reason);
    return STEP_AGAIN;
}

/* A reply to HELLO arrived. */
static void
hello_reply(dtx_conn *c, const frame_view *f)
{
    char reason[2 * DTX_ERRBUF];
    if (f->type == MSG_HELLO_OK) {
        proto_hello_ok ok;
        if (!proto_get_hello_ok(f, &ok)) {
            dtx_conn_attempt_failed(c, "protocol violation: malformed HELLO_OK message");
            return;
        }
        if (ok.major != PROTO_MAJOR) {
            snprintf(reason, sizeof(reason),
                     "the coordinator speaks protocol %u.%u, this client %d.%d", ok.major, ok.minor,
                     PROTO_MAJOR, PROTO_MINOR);
            dtx_conn_attempt_failed(c, reason);
            return;
        }
        free(c->server_name);
        c->server_name = strdup(ok.server_name);
        c->server_minor = ok.minor;
        dtx_conn_error_reset(c);
        dtx_clear(c->last_error); /* an earlier host's refusal */
        c->last_error = NULL;
        dtx_conn_set_state(c, DTX_CS_READY);
        return;
    }
    if (f->type == MSG_ERROR) {
        proto_error e;
        if (!proto_get_error(f, &e)) {
            dtx_conn_attempt_failed(c, "protocol violation: malformed ERROR message");
            return;
        }
        snprintf(reason, sizeof(reason),
                 "the coordinator refused the connection: %s (SQLSTATE %s)%s%s", e.message,
                 e.sqlstate, e.detail ? ": " : "", e.detail ? e.detail : "");
        /* its fields for dtx_error_field() (57P03: a standby), copied
         * before closing the socket frees the frame */
        const char *why;
        dtx_clear(c->last_error);
        c->last_error = dtx_result_from_frame(f, &why);
        dtx_conn_attempt_failed(c, reason);
        return;
    }
    snprintf(reason, sizeof(reason), "protocol violation: message type 0x%02x in reply to HELLO",
             f->type);
    dtx_conn_attempt_failed(c, reason);
}

static step
step_hello(dtx_conn *c)
{
    char err[DTX_ERRBUF], reason[DTX_ERRBUF + 64];
    int w = dtx_io_flush(c, err, sizeof(err));
    if (w < 0) {
        /* Under TLS 1.3 a coordinator that refuses our certificate says so
         * in an alert after our side of the handshake is done; if the alert
         * is already here it explains the failed write better. */
        char rerr[DTX_ERRBUF];
        if (dtx_io_read(c, rerr, sizeof(rerr)) < 0)
            snprintf(reason, sizeof(reason), "could not send HELLO: %s", rerr);
        else
            snprintf(reason, sizeof(reason), "could not send HELLO: %s", err);
        dtx_conn_attempt_failed(c, reason);
        return STEP_AGAIN;
    }
    if (w == 1)
        return c->write_wants_read ? STEP_READING : STEP_WRITING;
    for (;;) {
        frame_view f;
        int fr = dtx_io_next_frame(c, &f, err, sizeof(err));
        if (fr < 0) {
            dtx_conn_attempt_failed(c, err);
            return STEP_AGAIN;
        }
        if (fr > 0) {
            hello_reply(c, &f);
            return STEP_AGAIN;
        }
        int r = dtx_io_read(c, err, sizeof(err));
        if (r < 0) {
            snprintf(reason, sizeof(reason), "while waiting for HELLO_OK: %s", err);
            dtx_conn_attempt_failed(c, reason);
            return STEP_AGAIN;
        }
        if (r == 0)
            return c->read_wants_write ? STEP_WRITING : STEP_READING;
    }
}

dtx_poll
dtx_connect_poll(dtx_conn *conn)
{
    if (conn == NULL)
        return DTX_POLL_FAILED;
    for (;;) {
        step s;
        switch (conn->state) {
        case DTX_CS_READY:
            return DTX_POLL_OK;
        case DTX_CS_BAD:
            return DTX_POLL_FAILED;
        case DTX_CS_NEW:
            next_attempt(conn);
            continue;
        case DTX_CS_CONNECTING:
            s = step_connecting(conn);
            break;
        case DTX_CS_TLS:
            s = step_tls(conn);
            break;
        case DTX_CS_HELLO:
            s = step_hello(conn);
            break;
        default:
            abort();
        }
        if (s == STEP_READING)
            return DTX_POLL_READING;
        if (s == STEP_WRITING)
            return DTX_POLL_WRITING;
    }
}

/* ---- creation and destruction -------------------------------------------- */

static dtx_conn *
conn_new(void)
{
    dtx_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = -1;
    c->host_idx = -1;
    c->max_frame = DTX_DEFAULT_MAX_FRAME;
    wbuf_init(&c->out);
    dtx_conn_set_state(c, DTX_CS_NEW);
    return c;
}

dtx_conn *
dtx_connect_start(const char *conninfo)
{
    dtx_conn *c = conn_new();
    if (c == NULL)
        return NULL;
    char err[DTX_ERRBUF];
    if (!dtx_conninfo_parse(conninfo, &c->ci, err, sizeof(err))) {
        dtx_conn_error_append(c, "%s\n", err);
        dtx_conn_set_state(c, DTX_CS_BAD);
        return c;
    }
    c->ctx = dtx_tls_ctx_create(&c->ci, err, sizeof(err));
    if (c->ctx == NULL) {
        dtx_conn_error_append(c, "%s\n", err);
        dtx_conn_set_state(c, DTX_CS_BAD);
        return c;
    }
    next_attempt(c);
    return c;
}

int
dtx_conninfo_check(const char *conninfo, char **errmsg)
{
    dtx_conninfo ci;
    char err[DTX_ERRBUF];
    if (errmsg)
        *errmsg = NULL;
    if (!dtx_conninfo_parse(conninfo, &ci, err, sizeof(err))) {
        if (errmsg)
            *errmsg = strdup(err);
        return 0;
    }
    dtx_conninfo_free(&ci);
    return 1;
}

dtx_conn *
dtx_connect(const char *conninfo)
{
    dtx_conn *c = dtx_connect_start(conninfo);
    if (c == NULL || c->state == DTX_CS_BAD)
        return c;
    int64_t limit = (int64_t)c->ci.connect_timeout * 1000;
    unsigned attempt = 0;
    int64_t deadline = 0;
    dtx_poll st = DTX_POLL_WRITING;
    while (st != DTX_POLL_OK && st != DTX_POLL_FAILED) {
        if (c->attempt != attempt) {
            attempt = c->attempt;
            deadline = clock_mono_ms() + limit;
        }
        int timeout = -1;
        if (limit > 0) {
            int64_t left = deadline - clock_mono_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int r = dtx_io_wait(c, st == DTX_POLL_WRITING, timeout);
        if (r < 0) {
            char err[DTX_ERRBUF];
            snprintf(err, sizeof(err), "poll failed: %s", dtx_strerror(errno));
            dtx_conn_attempt_failed(c, err);
        } else if (r == 0 && limit > 0) {
            dtx_conn_attempt_failed(c, "timeout expired");
        }
        st = dtx_connect_poll(c);
    }
    return c;
}

void
dtx_finish(dtx_conn *conn)
{
    if (conn == NULL)
        return;
    if (conn->ssl && conn->state == DTX_CS_READY) {
        ERR_clear_error();
        (void)SSL_shutdown(conn->ssl); /* one try: send close_notify if the socket takes it */
        ERR_clear_error();
    }
    dtx_conn_close_socket(conn);
    if (conn->addrs)
        freeaddrinfo(conn->addrs);
    SSL_CTX_free(conn->ctx);
    dtx_conninfo_free(&conn->ci);
    wbuf_free(&conn->out);
    dtx_result *r;
    while ((r = conn->q_head) != NULL) {
        conn->q_head = r->next;
        dtx_clear(r);
    }
    dtx_clear(conn->last_error);
    free(conn->gid);
    free(conn->next_gid);
    free(conn->server_name);
    free(conn->break_reason);
    free(conn->errmsg);
    free(conn);
}

/* ---- accessors ----------------------------------------------------------- */

dtx_conn_status
dtx_status(const dtx_conn *conn)
{
    if (conn == NULL)
        return DTX_CONNECTION_BAD;
    switch (conn->state) {
    case DTX_CS_READY:
        return DTX_CONNECTION_OK;
    case DTX_CS_BAD:
        return DTX_CONNECTION_BAD;
    default:
        return DTX_CONNECTION_STARTED;
    }
}

const char *
dtx_error_message(const dtx_conn *conn)
{
    if (conn == NULL)
        return "connection pointer is NULL\n";
    return conn->errmsg ? conn->errmsg : "";
}

const char *
dtx_error_field(const dtx_conn *conn, int fieldcode)
{
    return conn ? dtx_result_error_field(conn->last_error, fieldcode) : NULL;
}

int
dtx_socket(const dtx_conn *conn)
{
    return conn ? conn->fd : -1;
}

const char *
dtx_host(const dtx_conn *conn)
{
    return conn && conn->state == DTX_CS_READY ? conn->ci.hosts[conn->host_idx] : NULL;
}

int
dtx_port(const dtx_conn *conn)
{
    return conn && conn->state == DTX_CS_READY ? conn->ci.ports[conn->host_idx] : 0;
}

const char *
dtx_server_name(const dtx_conn *conn)
{
    return conn && conn->state == DTX_CS_READY ? conn->server_name : NULL;
}

const char *
dtx_gid(const dtx_conn *conn)
{
    return conn ? conn->gid : NULL;
}
