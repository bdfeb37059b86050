/*
 * frame.c — see frame.h for the byte layout.
 *
 * NOTES
 *  frame_decode never reads past `avail` and never allocates; a caller that
 *  gets FRAME_TOO_LARGE must close the connection (the stream cannot be
 *  re-synchronised), after sending an error frame if it can.
 */
#include "frame.h"

frame_status
frame_decode(const uint8_t *buf, size_t avail, uint32_t max_payload, frame_view *out,
             size_t *consumed)
{
    if (avail < FRAME_HEADER_SIZE) {
        *consumed = FRAME_HEADER_SIZE;
        return FRAME_NEED_MORE;
    }
    uint32_t len = buf_load_u32(buf + 1);
    if (len > max_payload) {
        *consumed = 0;
        return FRAME_TOO_LARGE;
    }
    size_t total = FRAME_HEADER_SIZE + (size_t)len;
    if (avail < total) {
        *consumed = total;
        return FRAME_NEED_MORE;
    }
    out->type = buf[0];
    out->len = len;
    out->payload = buf + FRAME_HEADER_SIZE;
    *consumed = total;
    return FRAME_OK;
}

size_t
frame_begin(wbuf *w, uint8_t type)
{
    size_t start = w->len;
    wbuf_put_u8(w, type);
    wbuf_put_u32(w, 0);
    return start;
}

bool
frame_end(wbuf *w, size_t start, uint32_t max_payload)
{
    if (!wbuf_ok(w))
        return false;
    size_t payload = w->len - start - FRAME_HEADER_SIZE;
    if (payload > max_payload) {
        w->len = start;
        return false;
    }
    buf_store_u32(w->data + start + 1, (uint32_t)payload);
    return true;
}

bool
frame_put(wbuf *w, uint8_t type, const void *payload, uint32_t len)
{
    size_t start = frame_begin(w, type);
    wbuf_put_bytes(w, payload, len);
    return frame_end(w, start, UINT32_MAX);
}
