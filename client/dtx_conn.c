/*
 * dtx_conn.c — the dtx_conn object's own bookkeeping: its state, its error
 * message, and closing its socket.  The struct and its states are drawn in
 * dtx_conn.h.
 *
 * NOTES
 *  Layers.  This file sits below the files that drive a connection:
 *  dtx_connect.c (NEW to READY, or BAD), dtx_io.c (requests on a READY
 *  connection, and READY to BAD when it breaks) and dtx_sync.c call it; it
 *  calls none of them.
 *
 *  The error message is one growing string of lines, each ending in "\n"
 *  (dtx_error_message returns it as is).  It is reset when a request
 *  starts, when a handshake succeeds, and when a blocking call replaces it
 *  with the error it received; every failure on the way appends a line.  A
 *  failed allocation loses the text, never the state.
 *
 *  Ownership: the message belongs to the connection (freed by dtx_finish).
 *  Closing the socket frees the SSL (the SSL_CTX stays for the next
 *  attempt) and the I/O buffers, and drops a gid reservation: the
 *  coordinator keeps one per connection, and a new socket gets a new one.
 */
#include "dtx_conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
dtx_conn_set_state(dtx_conn *c, dtx_conn_state st)
{
    switch (st) {
    case DTX_CS_NEW:
    case DTX_CS_CONNECTING:
    case DTX_CS_TLS:
    case DTX_CS_HELLO:
    case DTX_CS_READY:
    case DTX_CS_BAD:
        c->state = st;
        return;
    default:
        abort();
    }
}

void
dtx_conn_error_reset(dtx_conn *c)
{
    c->errmsg_len = 0;
    if (c->errmsg)
        c->errmsg[0] = '\0';
}

void
dtx_conn_error_append(dtx_conn *c, const char *fmt, ...)
{
    char line[2 * DTX_ERRBUF];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    if (c->errmsg_len + len + 1 > c->errmsg_cap) {
        size_t cap = (c->errmsg_len + len + 1) * 2;
        char *p = realloc(c->errmsg, cap);
        if (p == NULL)
            return; /* the message is lost, the state is not */
        c->errmsg = p;
        c->errmsg_cap = cap;
    }
    memcpy(c->errmsg + c->errmsg_len, line, len + 1);
    c->errmsg_len += len;
}

void
dtx_conn_close_socket(dtx_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    wbuf_reset(&c->out);
    c->out_pos = 0;
    c->write_retry_len = 0;
    c->write_wants_read = c->read_wants_write = false;
    free(c->in);
    free(c->next_gid); /* a reservation lives as long as its connection */
    c->next_gid = NULL;
    c->in_txn = false;
    c->in = NULL;
    c->in_off = c->in_len = c->in_cap = 0;
}

const char *
dtx_strerror(int errnum)
{
    static __thread char buf[128];
    return strerror_r(errnum, buf, sizeof(buf)); /* GNU: returns the text */
}
