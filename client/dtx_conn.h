/*
 * dtx_conn.h — the struct behind dtx_conn, its states, and what changes
 * them: the state setter, the error message, closing the socket
 * (dtx_conn.c).  Internal to libdtx (see dtx_conninfo.h).
 *
 * The files above this one use it as follows: dtx_connect.c runs the
 * states up to READY, dtx_io.c moves and answers requests on a READY
 * connection (and breaks it), dtx_sync.c waits for them.
 */
#ifndef DTX_LIB_CONN_H
#define DTX_LIB_CONN_H

#include "dtx.h"
#include "dtx_conninfo.h"

#include "buf.h"

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#pragma GCC visibility push(hidden)

#define DTX_ERRBUF 512 /* room for one formatted error line */

/*
 * Connection states; dtx_conn_set_state() is the only writer of
 * dtx_conn.state.
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
    DTX_REQ_PROMOTE = 8,
    DTX_REQ_REPLICATION = 9,
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
    dtx_result *last_error; /* copy of the last error a blocking call saw, or of
                               the last HELLO refusal while connecting */
};

void dtx_conn_set_state(dtx_conn *c, dtx_conn_state st);
/* Empty the error message (dtx_error_message). */
void dtx_conn_error_reset(dtx_conn *c);
/* Append to the error message; the text is copied into c (which owns the
 * message).  Without memory the text is lost, nothing else. */
void dtx_conn_error_append(dtx_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Free the socket and TLS state and clear the I/O buffers (and the gid
 * reservation, which lives as long as its socket). */
void dtx_conn_close_socket(dtx_conn *c);

/* strerror() for errnum, thread-safe: the text lives in this thread's
 * storage (not to be freed) until this thread's next call. */
const char *dtx_strerror(int errnum);

#pragma GCC visibility pop

#endif
