/*
 * dtx_tls.h — the client's TLS (dtx_tls.c): the context of a connection,
 * one SSL object per socket, and readable text for a failed SSL_* call.
 * Internal to libdtx (see dtx_conninfo.h).
 */
#ifndef DTX_LIB_TLS_H
#define DTX_LIB_TLS_H

#include "dtx_conninfo.h"

#include <stddef.h>

#include <openssl/ssl.h>

#pragma GCC visibility push(hidden)

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

#pragma GCC visibility pop

#endif
