/*
 * dtx_io.h — what dtx_io.c offers the files above it: raw TLS reads and
 * writes and frame extraction (for the handshake in dtx_connect.c), and the
 * BEGIN request (for dtx_begin() in dtx_sync.c).  Internal to libdtx (see
 * dtx_conninfo.h).
 */
#ifndef DTX_LIB_IO_H
#define DTX_LIB_IO_H

#include "dtx_conn.h"

#include "frame.h"

#include <stdbool.h>
#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Send a BEGIN; may_reserve: as BEGIN_RESERVED when a reservation is held,
 * with its result made at once (for the blocking dtx_begin()). */
int dtx_begin_request(dtx_conn *c, bool may_reserve) __attribute__((warn_unused_result));
/* Write queued output: 0 all written, 1 would block, -1 failed (err). */
int dtx_io_flush(dtx_conn *c, char *err, size_t errlen) __attribute__((warn_unused_result));
/* One SSL_read into the input buffer: 1 read something, 0 would block,
 * -1 failed or EOF (err). */
int dtx_io_read(dtx_conn *c, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Take the next whole frame off the input buffer: 1 got one (*f points into
 * c's buffer: not to be freed, valid until the next dtx_io_read), 0 none
 * yet, -1 the header announces a frame beyond max_frame (err). */
int dtx_io_next_frame(dtx_conn *c, frame_view *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Wait up to timeout_ms (< 0: forever) for the socket: readable, and
 * writable when want_write.  1 ready, 0 timed out, -1 error (errno). */
int dtx_io_wait(dtx_conn *c, bool want_write, int timeout_ms) __attribute__((warn_unused_result));

#pragma GCC visibility pop

#endif
