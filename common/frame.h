/*
 * frame.h — typed, length-prefixed frames: the unit of every dtx connection.
 *
 * Byte layout (docs/protocol.md):
 *
 *   offset 0  u8   type       message type (an ASCII letter, see proto.h)
 *   offset 1  u32  length     payload length in bytes, big-endian; the
 *                             header's 5 bytes are not counted
 *   offset 5  ...  payload
 *
 * A frame of length 0 is valid (an empty payload).  A reader is configured
 * with a maximum payload size; a header announcing more is rejected as soon
 * as its 5 bytes have arrived — before anything is allocated or buffered.
 *
 * Pure functions over memory: no I/O, fit for fuzzing.
 */
#ifndef DTX_FRAME_H
#define DTX_FRAME_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 5
#define FRAME_DEFAULT_MAX (16u * 1024 * 1024)

typedef enum frame_status {
    FRAME_OK = 0,        /* a whole frame is available */
    FRAME_NEED_MORE = 1, /* not enough bytes yet */
    FRAME_TOO_LARGE = 2, /* header announces more than the maximum */
} frame_status;

typedef struct frame_view {
    uint8_t type;
    uint32_t len;
    const uint8_t *payload; /* points into the caller's buffer */
} frame_view;

/* Look at the bytes in buf[0..avail).  On FRAME_OK fills *out and sets
 * *consumed to the frame's total size (header + payload).  On
 * FRAME_NEED_MORE, *consumed is the total number of bytes needed when the
 * header is complete, else FRAME_HEADER_SIZE. */
frame_status frame_decode(const uint8_t *buf, size_t avail, uint32_t max_payload, frame_view *out,
                          size_t *consumed) __attribute__((warn_unused_result));

/* Writing: frame_begin() appends a header with a zero length and returns its
 * offset; frame_end() patches the length of everything written since.
 * Returns false if the payload exceeds max_payload (the frame is removed). */
size_t frame_begin(wbuf *w, uint8_t type);
bool frame_end(wbuf *w, size_t start, uint32_t max_payload) __attribute__((warn_unused_result));
/* Append a complete frame in one call. */
bool frame_put(wbuf *w, uint8_t type, const void *payload, uint32_t len)
    __attribute__((warn_unused_result));

#endif
