/*
 * dtx_int.h — libdtx internals: the structs behind dtx_conn and dtx_result,
 * and the functions the library's files share.  Not installed; applications
 * use dtx.h only.  Unit tests include it to reach the conninfo parser.
 *
 * Everything declared here has hidden visibility: it links inside the
 * library (and into programs linking libdtx.a), but is not exported from
 * libdtx.so.
 */
#ifndef DTX_INT_H
#define DTX_INT_H

#include "dtx.h"

#include "buf.h"
#include "frame.h"
#include "proto.h"

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#pragma GCC visibility push(hidden)

#define DTX_ERRBUF     512   /* room for one formatted error line */
#define DTX_READ_CHUNK 16384 /* at least this much room before each read */

/* ---- connection strings (dtx_conninfo.c) -------------------------------- */

typedef enum dtx_sslmode {
    DTX_SSLMODE_VERIFY_FULL = 0, /* chain and host name */
    DTX_SSLMODE_VERIFY_CA = 1,   /* chain only */
} dtx_sslmode;

/* A parsed, validated connection string with environment defaults applied. */
typedef struct dtx_conninfo {
    int nhosts;   /* >= 1 */
    char **hosts; /* nhosts names or address literals */
    int *ports;   /* nhosts ports (one port given applies to all) */
    dtx_sslmode sslmode;
    char *sslrootcert;      /* NULL: the system's default store */
    char *sslcert;          /* NULL: no client certificate */
    char *sslkey;           /* NULL when sslcert is NULL; else a file name */
    int connect_timeout;    /* seconds per address; 0 = no limit */
    char *application_name; /* never NULL ("" by default) */
} dtx_conninfo;

/* Parse s (may be NULL or "") over the DTX* environment defaults.  On
 * success *ci owns its strings (free with dtx_conninfo_free).  On failure
 * returns false with one line (no newline) in err; *ci is left empty. */
bool dtx_conninfo_parse(const char *s, dtx_conninfo *ci, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void dtx_conninfo_free(dtx_conninfo *ci);

/* ---- TLS (dtx_tls.c) ----------------------------------------------------- */

/* Client context for ci: TLS >= 1.2, the server verified against
 * sslrootcert, the client certificate loaded.  NULL with err on failure.
 * Caller frees with SSL_CTX_free. */
SSL_CTX *dtx_tls_ctx_create(const dtx_conninfo *ci, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* One connection over fd (not owned) to host: SNI, host/IP verification for
 * verify-full, and a socket BIO that never raises SIGPIPE.  NULL with err on
 * failure.  Caller frees with SSL_free (the fd stays open). */
SSL *dtx_tls_ssl_create(SSL_CTX *ctx, int fd, const char *host, dtx_sslmode mode, char *err,
                        size_t errlen) __attribute__((warn_unused_result));
/* Text for a failed SSL_* call: ssl_error is SSL_get_error() of it and
 * sys_errno the errno right after it.  Drains this thread's OpenSSL queue. */
void dtx_tls_error_text(SSL *ssl, int ssl_error, int sys_errno, char *err, size_t errlen);

/* ---- results (dtx_result.c) ---------------------------------------------- */

/*
 * Every result owns one encoded frame and a decoded view that points into
 * it; the frame's type says which member of `u` is valid.  Results made by
 * the library itself (connection errors, synthetic outcomes, the in-doubt
 * table) are encoded as frames too, so one representation serves all.
 */
struct dtx_result {
    dtx_result *next; /* link in the connection's queue; NULL once returned */
    dtx_res_kind kind;
    uint8_t type;   /* MSG_* of the frame below */
    uint8_t *frame; /* header + payload, owned */
    uint32_t len;   /* payload length */
    union {
        const char *gid;           /* BEGIN */
        proto_result stmt;         /* STATEMENT, INDOUBT */
        proto_error err;           /* ERROR */
        proto_outcome_msg outcome; /* OUTCOME */
        proto_status_reply status; /* STATUS */
    } u;
};

/* A result from a frame received for a request; NULL with *why set (a
 * static string) when the payload is malformed or memory ran out.  The
 * frame is copied. */
dtx_result *dtx_result_from_frame(const frame_view *f, const char **why)
    __attribute__((warn_unused_result));
/* An error made by the library: sqlstate and message are copied.  NULL only
 * when out of memory. */
dtx_result *dtx_result_local_error(const char *sqlstate, const char *message)
    __attribute__((warn_unused_result));
/* A BEGIN result made by the library (a BEGIN_RESERVED, which has no
 * reply).  NULL only when out of memory. */
dtx_result *dtx_result_local_begin(const char *gid) __attribute__((warn_unused_result));
/* An outcome made by the library (the connection failed).  NULL only when
 * out of memory. */
dtx_result *dtx_result_local_outcome(proto_outcome outcome, const char *gid)
    __attribute__((warn_unused_result));
/* An independent copy.  NULL only when out of memory. */
dtx_result *dtx_result_copy(const dtx_result *res) __attribute__((warn_unused_result));

/* ---- connections --------------------------------------------------------- */

/*
 * Connection states; conn_set_state() is the only writer of dtx_conn.state.
 *
 *   NEW --start--> CONNECTING --TCP up--> TLS --handshake--> HELLO --HELLO_OK--> READY
 *                      ^                   |                   |                  |
 *                      +--- next address/host on any failure --+                  |
 *   (no address left) -----------------------------------------------------> BAD <+
 *                                                          (loss, protocol violation)
 */
typedef enum dtx_conn_state {
    DTX_CS_NEW = 0,
    DTX_CS_CONNECTING = 1, /* non-blocking connect() in progress */
    DTX_CS_TLS = 2,        /* SSL_connect() in progress */
    DTX_CS_HELLO = 3,      /* HELLO queued or sent, waiting for HELLO_OK */
    DTX_CS_READY = 4,      /* open: requests may be sent */
    DTX_CS_BAD = 5,        /* failed or broken; no socket */
} dtx_conn_state;

/* The request in flight, and how far its replies have come. */
typedef enum dtx_req_kind {
    DTX_REQ_NONE = 0,
    DTX_REQ_BEGIN = 1,
    DTX_REQ_EXEC = 2,
    DTX_REQ_COMMIT = 3,
    DTX_REQ_ROLLBACK = 4,
    DTX_REQ_ONESHOT = 5,
    DTX_REQ_STATUS = 6,
    DTX_REQ_INDOUBT = 7,
} dtx_req_kind;

typedef enum dtx_req_state {
    DTX_RS_IDLE = 0, /* no request: one may be sent */
    DTX_RS_BUSY = 1, /* sent; its final reply has not arrived */
    DTX_RS_DONE = 2, /* final reply queued; dtx_get_result drains, then NULL */
} dtx_req_state;

struct dtx_conn {
    dtx_conn_state state;
    dtx_conninfo ci;
    SSL_CTX *ctx;
    SSL *ssl; /* NULL outside TLS/HELLO/READY */
    int fd;   /* -1 when none */

    /* connection attempts */
    int host_idx;              /* index into ci.hosts of the current attempt */
    struct addrinfo *addrs;    /* addresses of ci.hosts[host_idx] */
    struct addrinfo *addr_cur; /* the one being tried */
    char addr_text[64];        /* its numeric form, for messages */
    unsigned attempt;          /* incremented per address tried */

    /* output: frames not yet accepted by SSL_write */
    wbuf out;
    size_t out_pos;
    int write_retry_len;   /* length of an SSL_write to repeat; 0 = none */
    bool write_wants_read; /* the last SSL_write wanted input */
    bool read_wants_write; /* the last SSL_read wanted to write */

    /* input: bytes in[in_off..in_len) not yet decoded */
    uint8_t *in;
    size_t in_off, in_len, in_cap;
    uint32_t max_frame;

    /* the request in flight and its replies */
    dtx_req_kind req;
    dtx_req_state rstate;
    dtx_result *q_head, *q_tail;
    bool txn_commit_sent; /* COMMIT or ONESHOT sent since the last BEGIN_OK */
    bool in_txn;          /* a BEGIN succeeded and no OUTCOME followed yet */

    char *gid;             /* current/last transaction */
    char *next_gid;        /* reserved for the next transaction (protocol 1.2); NULL = none */
    uint16_t server_minor; /* from HELLO_OK */
    char *server_name;     /* from HELLO_OK */
    char *break_reason;    /* why the connection became BAD */

    char *errmsg; /* "" or lines ending in "\n" */
    size_t errmsg_len, errmsg_cap;
    dtx_result *last_error; /* copy of the last error a blocking call saw */
};

/* dtx_connect.c */
void dtx_conn_set_state(dtx_conn *c, dtx_conn_state st);
void dtx_conn_error_reset(dtx_conn *c);
void dtx_conn_error_append(dtx_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current attempt failed (reason: one line): record it, close its
 * socket, and start the next address or host (or become BAD). */
void dtx_conn_attempt_failed(dtx_conn *c, const char *reason);
/* Free the socket and TLS state and clear the I/O buffers. */
void dtx_conn_close_socket(dtx_conn *c);

/* dtx_io.c */
/* Send a BEGIN; may_reserve: as BEGIN_RESERVED when a reservation is held,
 * with its result made at once (for the blocking dtx_begin()). */
int dtx_begin_request(dtx_conn *c, bool may_reserve) __attribute__((warn_unused_result));
/* Write queued output: 0 all written, 1 would block, -1 failed (err). */
int dtx_io_flush(dtx_conn *c, char *err, size_t errlen) __attribute__((warn_unused_result));
/* One SSL_read into the input buffer: 1 read something, 0 would block,
 * -1 failed or EOF (err). */
int dtx_io_read(dtx_conn *c, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Take the next whole frame off the input buffer: 1 got one (valid until the
 * next dtx_io_read), 0 none yet, -1 the header announces a frame beyond
 * max_frame (err). */
int dtx_io_next_frame(dtx_conn *c, frame_view *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Wait up to timeout_ms (< 0: forever) for the socket: readable, and
 * writable when want_write.  1 ready, 0 timed out, -1 error (errno). */
int dtx_io_wait(dtx_conn *c, bool want_write, int timeout_ms) __attribute__((warn_unused_result));
/* The connection is lost or broken (a READY connection): close the socket,
 * remember why, and end the request in flight with an ERROR result (and an
 * OUTCOME for commit/rollback/oneshot). */
void dtx_conn_break(dtx_conn *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Monotonic clock in milliseconds. */
int64_t dtx_now_ms(void);
/* strerror() for errnum, thread-safe (the text lives in thread-local
 * storage until this thread's next call). */
const char *dtx_strerror(int errnum);

#pragma GCC visibility pop

#endif
