/*
 * dtx_tls.c — the client's TLS: context set-up, per-connection SSL objects
 * with host verification, a socket BIO, and readable error text.
 *
 * NOTES
 *  Policy.  TLS 1.2 is the floor (1.3 is negotiated when the coordinator
 *  offers it); TLS 1.2 suites are ECDHE with AEAD only; no compression, no
 *  renegotiation.  The server's chain is always verified (SSL_VERIFY_PEER),
 *  against sslrootcert or, without one, the system's default store.  With
 *  verify-full the certificate must also name the host connected to: a DNS
 *  name through SSL_set1_host (subjectAltName DNS entries, or the CN when
 *  there are none; no partial wildcards), an address literal through
 *  X509_VERIFY_PARAM_set1_ip_asc (IP subjectAltName).  A client certificate
 *  is presented when sslcert is given.  The daemons' common/tls.c applies
 *  the same policy; this file keeps the client's own set-up (a context from a
 *  connection string, the socket BIO below, libpq-like messages) and takes
 *  from common/tls.c what is the same on both sides: which host names are
 *  address literals, and the text of OpenSSL's errors.
 *
 *  The socket BIO.  OpenSSL's own socket BIO writes with write(2), which
 *  raises SIGPIPE when the coordinator has gone away — fatal for an
 *  application that did not ignore it, and a library must not change
 *  process-wide signal dispositions.  Our BIO sends with MSG_NOSIGNAL
 *  instead.  It does not own the descriptor: the connection closes it.  The
 *  BIO_METHOD is created once per process (pthread_once) and never freed;
 *  with the two ex_data indices common/tls.c makes the same way (they carry
 *  the expected host name for the error text), it is the only global state
 *  of the library, read-only once made.
 *
 *  Errors.  OpenSSL reports on a per-thread queue, which must be empty before
 *  each SSL_* call whose failure we explain (callers run ERR_clear_error()
 *  first); certificate failures come separately from SSL_get_verify_result.
 *  common/tls.c joins both into one line (tls_codes_error_text: reasons
 *  de-duplicated, "certificate verify failed" followed by the verify result
 *  and, for a host name mismatch, the host expected).  dtx_tls_error_text()
 *  puts the connection's end in the client's words around it: a close by
 *  the server, or its vanishing mid-record, which OpenSSL also reports as a
 *  queued error.
 */
#include "dtx_tls.h"

#include "dtx_conn.h"
#include "dtx_conninfo.h"

#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"

/* ---- socket BIO ---------------------------------------------------------- */

static pthread_once_t bio_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *bio_method;

static int
sock_bio_fd(BIO *b)
{
    return (int)(intptr_t)BIO_get_data(b);
}

static int
sock_bio_write(BIO *b, const char *buf, int len)
{
    BIO_clear_retry_flags(b);
    ssize_t n = send(sock_bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_write(b);
        return -1;
    }
    return (int)n;
}

static int
sock_bio_read(BIO *b, char *buf, int len)
{
    BIO_clear_retry_flags(b);
    ssize_t n = recv(sock_bio_fd(b), buf, (size_t)len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
        return -1;
    }
    return (int)n;
}

static long
sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = sock_bio_fd(b);
        return sock_bio_fd(b);
    default:
        return 0;
    }
}

static int
sock_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void
bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "dtx socket");
    if (m == NULL)
        return;
    if (!BIO_meth_set_write(m, sock_bio_write) || !BIO_meth_set_read(m, sock_bio_read) ||
        !BIO_meth_set_ctrl(m, sock_bio_ctrl) || !BIO_meth_set_create(m, sock_bio_create)) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}

/* ---- error text ---------------------------------------------------------- */

#define QUEUE_MAX 16 /* codes kept from the queue; common/tls.c shows as many */

/* Take the codes off this thread's OpenSSL queue (the first QUEUE_MAX into
 * codes).  True when one of them says the peer vanished mid-record. */
static bool
queue_drain(unsigned long codes[QUEUE_MAX], size_t *n)
{
    unsigned long e;
    bool eof = false;
    *n = 0;
    while ((e = ERR_get_error()) != 0) {
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            eof = true;
#endif
        if (*n < QUEUE_MAX)
            codes[(*n)++] = e;
    }
    return eof;
}

void
dtx_tls_error_text(SSL *ssl, int ssl_error, int sys_errno, char *err, size_t errlen)
{
    unsigned long codes[QUEUE_MAX];
    size_t n;
    bool eof = queue_drain(codes, &n);
    switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
        snprintf(err, errlen, "server closed the connection");
        return;
    case SSL_ERROR_SYSCALL:
        if (tls_codes_error_text(ssl, codes, n, err, errlen))
            return;
        if (sys_errno != 0)
            snprintf(err, errlen, "%s", dtx_strerror(sys_errno));
        else
            snprintf(err, errlen, "server closed the connection unexpectedly");
        return;
    default:
        if (eof)
            snprintf(err, errlen, "server closed the connection unexpectedly");
        else if (!tls_codes_error_text(ssl, codes, n, err, errlen))
            snprintf(err, errlen, "unknown TLS error");
        return;
    }
}

/* ---- contexts and connections -------------------------------------------- */

/* fopen() first, so a missing or unreadable file is reported with errno
 * rather than as an OpenSSL decoding error. */
static bool
file_readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "could not open %s \"%s\": %s", what, path, dtx_strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

static SSL_CTX *
ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *fmt, const char *arg)
{
    char why[DTX_ERRBUF];
    tls_error_text(NULL, why, sizeof(why));
    char head[DTX_ERRBUF];
    snprintf(head, sizeof(head), fmt, arg);
    snprintf(err, errlen, "%s: %s", head, why);
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *
dtx_tls_ctx_create(const dtx_conninfo *ci, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return ctx_fail(NULL, err, errlen, "%s", "could not create a TLS context");
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS))
        return ctx_fail(ctx, err, errlen, "%s", "could not set the TLS protocol policy");
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    if (ci->sslrootcert) {
        if (!file_readable("root certificate file", ci->sslrootcert, err, errlen)) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (SSL_CTX_load_verify_locations(ctx, ci->sslrootcert, NULL) != 1)
            return ctx_fail(ctx, err, errlen, "could not read root certificate file \"%s\"",
                            ci->sslrootcert);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return ctx_fail(ctx, err, errlen, "%s", "could not load the system's root certificates");
    }

    if (ci->sslcert) {
        if (!file_readable("certificate file", ci->sslcert, err, errlen) ||
            !file_readable("private key file", ci->sslkey, err, errlen)) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, ci->sslcert) != 1)
            return ctx_fail(ctx, err, errlen, "could not load certificate file \"%s\"",
                            ci->sslcert);
        if (SSL_CTX_use_PrivateKey_file(ctx, ci->sslkey, SSL_FILETYPE_PEM) != 1)
            return ctx_fail(ctx, err, errlen, "could not load private key file \"%s\"", ci->sslkey);
        if (SSL_CTX_check_private_key(ctx) != 1)
            return ctx_fail(ctx, err, errlen,
                            "private key file \"%s\" does not match the certificate", ci->sslkey);
    }
    return ctx;
}

SSL *
dtx_tls_ssl_create(SSL_CTX *ctx, int fd, const char *host, dtx_sslmode mode, char *err,
                   size_t errlen)
{
    ERR_clear_error();
    pthread_once(&bio_once, bio_method_init);
    if (bio_method == NULL) {
        snprintf(err, errlen, "could not create the socket BIO");
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    BIO *bio = BIO_new(bio_method);
    if (ssl == NULL || bio == NULL) {
        snprintf(err, errlen, "could not create a TLS connection: out of memory");
        SSL_free(ssl);
        BIO_free(bio);
        return NULL;
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    SSL_set_bio(ssl, bio, bio); /* ssl owns bio now */
    /* One recv() takes whatever has arrived, not a record header and then
     * its body.  Safe because every read path reads until WANT_READ, so
     * no whole record is left inside OpenSSL unseen by poll(). */
    SSL_set_read_ahead(ssl, 1);

    bool ok = true;
    if (mode == DTX_SSLMODE_VERIFY_FULL)
        tls_ssl_name_host(ssl, host); /* for the error text */
    if (tls_is_ip_literal(host)) {
        if (mode == DTX_SSLMODE_VERIFY_FULL)
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    } else {
        ok = SSL_set_tlsext_host_name(ssl, host) == 1;
        if (ok && mode == DTX_SSLMODE_VERIFY_FULL) {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, host) == 1;
        }
    }
    if (!ok) {
        unsigned long codes[QUEUE_MAX];
        size_t n;
        char why[DTX_ERRBUF];
        (void)queue_drain(codes, &n);
        if (!tls_codes_error_text(NULL, codes, n, why, sizeof(why)))
            snprintf(why, sizeof(why), "invalid name");
        snprintf(err, errlen, "could not set the expected server name \"%s\": %s", host, why);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}
