/*
 * buf.h — byte buffers for the wire protocol: a growable writer and a
 * bounds-checked reader.  Pure memory operations, no I/O.
 *
 * Encoding of values (all integers big-endian, "network order"):
 *
 *   u8, u16, u32, u64   1, 2, 4, 8 bytes
 *   str                 u32 length N (N < 0xFFFFFFFF), N bytes, one 0x00 byte.
 *                       The bytes may not contain 0x00.  The trailing NUL lets
 *                       a decoder hand out C strings that point into the frame
 *                       without copying.
 *   nstr                like str, or u32 0xFFFFFFFF alone for SQL NULL.
 *
 * The reader has a sticky error flag: after the first short read or malformed
 * string every further get returns zero/NULL and rbuf_ok() is false, so a
 * decoder can read a whole message and check once at the end.
 *
 * The writer grows by doubling; on allocation failure it sets a sticky `oom`
 * flag and stops writing (callers check wbuf_ok() once before sending).
 */
#ifndef DTX_BUF_H
#define DTX_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_NULL_LEN 0xFFFFFFFFu

typedef struct wbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
} wbuf;

typedef struct rbuf {
    const uint8_t *p;
    size_t len;
    size_t pos;
    bool err;
} rbuf;

void wbuf_init(wbuf *w);
void wbuf_free(wbuf *w);
void wbuf_reset(wbuf *w); /* len = 0, memory kept */
bool wbuf_ok(const wbuf *w) __attribute__((warn_unused_result));
/* Make room for n more bytes; returns pointer to them (len advanced) or NULL. */
uint8_t *wbuf_extend(wbuf *w, size_t n);
void wbuf_put_bytes(wbuf *w, const void *p, size_t n);
void wbuf_put_u8(wbuf *w, uint8_t v);
void wbuf_put_u16(wbuf *w, uint16_t v);
void wbuf_put_u32(wbuf *w, uint32_t v);
void wbuf_put_u64(wbuf *w, uint64_t v);
/* s must not be NULL; strings with an embedded NUL cannot be expressed. */
void wbuf_put_str(wbuf *w, const char *s);
void wbuf_put_strn(wbuf *w, const char *s, size_t n);
/* s may be NULL (SQL NULL). */
void wbuf_put_nstr(wbuf *w, const char *s);
void buf_store_u32(uint8_t *p, uint32_t v);
uint32_t buf_load_u32(const uint8_t *p);

void rbuf_init(rbuf *r, const void *p, size_t len);
bool rbuf_ok(const rbuf *r) __attribute__((warn_unused_result));
/* true when every byte was consumed and no error occurred */
bool rbuf_done(const rbuf *r) __attribute__((warn_unused_result));
size_t rbuf_remaining(const rbuf *r);
uint8_t rbuf_get_u8(rbuf *r);
uint16_t rbuf_get_u16(rbuf *r);
uint32_t rbuf_get_u32(rbuf *r);
uint64_t rbuf_get_u64(rbuf *r);
/* Returns a pointer into the buffer (valid as long as the buffer), or NULL on
 * error; *len (if not NULL) gets the length without the trailing NUL. */
const char *rbuf_get_str(rbuf *r, uint32_t *len);
/* Like rbuf_get_str, but a SQL NULL gives NULL with *is_null = true. */
const char *rbuf_get_nstr(rbuf *r, uint32_t *len, bool *is_null);

#endif
