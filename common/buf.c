/*
 * buf.c — see buf.h for the value encoding.
 *
 * NOTES
 *  Nothing here trusts a length read off the wire: every get checks the
 *  remaining bytes first, so a hostile length can at most make the read fail.
 *  Strings are validated (terminating NUL present, no NUL inside) before a
 *  pointer to them is handed out.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void
wbuf_init(wbuf *w)
{
    memset(w, 0, sizeof(*w));
}

void
wbuf_free(wbuf *w)
{
    free(w->data);
    memset(w, 0, sizeof(*w));
}

void
wbuf_reset(wbuf *w)
{
    w->len = 0;
    w->oom = false;
}

bool
wbuf_ok(const wbuf *w)
{
    return !w->oom;
}

uint8_t *
wbuf_extend(wbuf *w, size_t n)
{
    if (w->oom)
        return NULL;
    if (n > SIZE_MAX / 2 - w->len) {
        w->oom = true;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *d = realloc(w->data, cap);
        if (d == NULL) {
            w->oom = true;
            return NULL;
        }
        w->data = d;
        w->cap = cap;
    }
    uint8_t *p = w->data + w->len;
    w->len += n;
    return p;
}

void
wbuf_put_bytes(wbuf *w, const void *p, size_t n)
{
    uint8_t *d = wbuf_extend(w, n);
    if (d && n)
        memcpy(d, p, n);
}

void
wbuf_put_u8(wbuf *w, uint8_t v)
{
    uint8_t *d = wbuf_extend(w, 1);
    if (d)
        d[0] = v;
}

void
wbuf_put_u16(wbuf *w, uint16_t v)
{
    uint8_t *d = wbuf_extend(w, 2);
    if (d) {
        d[0] = (uint8_t)(v >> 8);
        d[1] = (uint8_t)v;
    }
}

void
buf_store_u32(uint8_t *d, uint32_t v)
{
    d[0] = (uint8_t)(v >> 24);
    d[1] = (uint8_t)(v >> 16);
    d[2] = (uint8_t)(v >> 8);
    d[3] = (uint8_t)v;
}

uint32_t
buf_load_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void
wbuf_put_u32(wbuf *w, uint32_t v)
{
    uint8_t *d = wbuf_extend(w, 4);
    if (d)
        buf_store_u32(d, v);
}

void
wbuf_put_u64(wbuf *w, uint64_t v)
{
    wbuf_put_u32(w, (uint32_t)(v >> 32));
    wbuf_put_u32(w, (uint32_t)v);
}

void
wbuf_put_strn(wbuf *w, const char *s, size_t n)
{
    if (n >= BUF_NULL_LEN) {
        w->oom = true;
        return;
    }
    wbuf_put_u32(w, (uint32_t)n);
    uint8_t *d = wbuf_extend(w, n + 1);
    if (d) {
        if (n)
            memcpy(d, s, n);
        d[n] = 0;
    }
}

void
wbuf_put_str(wbuf *w, const char *s)
{
    wbuf_put_strn(w, s, strlen(s));
}

void
wbuf_put_nstr(wbuf *w, const char *s)
{
    if (s == NULL)
        wbuf_put_u32(w, BUF_NULL_LEN);
    else
        wbuf_put_str(w, s);
}

void
rbuf_init(rbuf *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->err = false;
}

bool
rbuf_ok(const rbuf *r)
{
    return !r->err;
}

bool
rbuf_done(const rbuf *r)
{
    return !r->err && r->pos == r->len;
}

size_t
rbuf_remaining(const rbuf *r)
{
    return r->err ? 0 : r->len - r->pos;
}

static const uint8_t *
rbuf_take(rbuf *r, size_t n)
{
    if (r->err || r->len - r->pos < n) {
        r->err = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t
rbuf_get_u8(rbuf *r)
{
    const uint8_t *p = rbuf_take(r, 1);
    return p ? p[0] : 0;
}

uint16_t
rbuf_get_u16(rbuf *r)
{
    const uint8_t *p = rbuf_take(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t
rbuf_get_u32(rbuf *r)
{
    const uint8_t *p = rbuf_take(r, 4);
    return p ? buf_load_u32(p) : 0;
}

uint64_t
rbuf_get_u64(rbuf *r)
{
    uint64_t hi = rbuf_get_u32(r);
    uint64_t lo = rbuf_get_u32(r);
    return (hi << 32) | lo;
}

const char *
rbuf_get_nstr(rbuf *r, uint32_t *len, bool *is_null)
{
    *is_null = false;
    uint32_t n = rbuf_get_u32(r);
    if (r->err)
        return NULL;
    if (n == BUF_NULL_LEN) {
        *is_null = true;
        if (len)
            *len = 0;
        return NULL;
    }
    if ((size_t)n >= r->len - r->pos) { /* need n bytes plus the NUL */
        r->err = true;
        return NULL;
    }
    const char *s = (const char *)rbuf_take(r, (size_t)n + 1);
    if (s == NULL || s[n] != '\0' || memchr(s, '\0', n) != NULL) {
        r->err = true;
        return NULL;
    }
    if (len)
        *len = n;
    return s;
}

const char *
rbuf_get_str(rbuf *r, uint32_t *len)
{
    bool is_null;
    const char *s = rbuf_get_nstr(r, len, &is_null);
    if (is_null)
        r->err = true;
    return s;
}
