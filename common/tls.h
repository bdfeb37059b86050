/*
 * tls.h — OpenSSL contexts and checks for every dtx network hop.
 *
 * All dtx connections are TLS 1.2 or newer (1.3 preferred) with certificate
 * verification on by default.  This module builds the SSL_CTX for each side
 * from a tls_config, creates per-connection SSL objects (client: with host
 * name verification), checks the peer's certificate name against an
 * allow-list, and turns OpenSSL's error queue into one readable line.
 *
 * Typical server (mutual TLS, e.g. a participant accepting coordinators):
 *
 *     static const char *const allowed[] = {"coord-a", "coord-b"};
 *     tls_config cfg = {.cert_file = "p1.crt", .key_file = "p1.key",
 *                       .ca_file = "ca.crt", .require_peer_cert = true,
 *                       .allowed_names = allowed, .n_allowed_names = 2};
 *     SSL_CTX *ctx = tls_server_ctx_create(&cfg, err, sizeof(err));
 *     ...
 *     SSL *ssl = tls_server_ssl_create(ctx, err, sizeof(err));
 *     SSL_set_fd(ssl, fd);  ... SSL_accept() / SSL_read() / SSL_write() ...
 *     ... on failure: tls_io_error_text(ssl, ret, err, sizeof(err));
 *
 * Typical client: tls_client_ctx_create() once, then per connection
 * tls_client_ssl_create(ctx, "participant-host", ...).  conn.c drives both
 * on an event loop.
 *
 * Peer names.  The "name" of a certificate is its subject CN and each of its
 * DNS subjectAltNames.  An allow-list holds names; a peer is allowed when any
 * of its names equals (ASCII case-insensitively) any listed name; the listed
 * name "*" allows every certificate the CA verified.  Wildcards inside
 * certificates are not interpreted by the allow-list.
 *
 * Errors are written as text into caller buffers (always NUL-terminated,
 * truncated to fit), e.g.
 *     certificate verify failed: unable to get local issuer certificate
 *     certificate verify failed: peer certificate name "mallory" is not allowed
 *
 * Thread safety: contexts may be shared by threads once created; an SSL and
 * its error text belong to the thread driving it (OpenSSL's error queue is
 * per thread).
 *
 * OpenSSL writes to sockets with write(2): a process using this module must
 * ignore SIGPIPE, or a peer that hangs up kills it.
 */
#ifndef DTX_TLS_H
#define DTX_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

typedef struct tls_config {
    const char *cert_file; /* PEM certificate chain presented to the peer (server: required) */
    const char *key_file;  /* PEM private key of cert_file (server: required) */
    const char *ca_file;   /* PEM CA bundle to verify the peer; client: NULL = system store */
    /* Server: request a client certificate, verify it against ca_file, and
     * refuse the handshake without one (mutual TLS).  Needs ca_file. */
    bool require_peer_cert;
    /* Client: do not verify the server certificate at all.  Tests only; the
     * default (false) verifies.  Incompatible with allowed_names. */
    bool insecure_no_verify;
    /* Client: do not match the server certificate against the host name
     * given to tls_client_ssl_create (the chain is still verified). */
    bool no_verify_host;
    /* Names the peer's certificate must carry (see "Peer names" above),
     * enforced during the handshake, so a refused peer gets a TLS alert.
     * NULL/0: any verified certificate.  The list is copied. */
    const char *const *allowed_names;
    size_t n_allowed_names;
    /* Lowest protocol version: 0 means TLS1_2_VERSION; TLS1_3_VERSION may be
     * asked for; anything below TLS 1.2 is refused. */
    int min_version;
    /* PEM certificate revocation lists (one or more, concatenated) of the
     * CAs in ca_file: a peer certificate they revoke is refused.  Needs
     * ca_file; every issuer of a peer certificate then needs its CRL in
     * the file (OpenSSL's X509_V_FLAG_CRL_CHECK).  NULL: none. */
    const char *crl_file;
} tls_config;

/*
 * Build a server context: certificate and key loaded and checked to match,
 * TLS >= 1.2, forward-secret AEAD ciphers for TLS 1.2, no compression or
 * renegotiation, client certificates per require_peer_cert.  Returns NULL
 * with a message in err on failure.  Caller frees with SSL_CTX_free().
 */
SSL_CTX *tls_server_ctx_create(const tls_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Build a client context: the server is verified against ca_file (or the
 * system store) unless insecure_no_verify; cert_file/key_file, when given,
 * are presented for mutual TLS.  Returns NULL with a message in err on
 * failure.  Caller frees with SSL_CTX_free().
 */
SSL_CTX *tls_client_ctx_create(const tls_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * One server-side connection on ctx, in accept state.  Returns NULL with a
 * message in err on failure.  Caller owns it: SSL_free(), or hand it to
 * a connection object that frees it.
 */
SSL *tls_server_ssl_create(SSL_CTX *ctx, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * One client-side connection on ctx, in connect state, that will talk to
 * host (a DNS name or an IPv4/IPv6 literal, without brackets).  host is sent
 * as SNI (names only) and, unless ctx was made with no_verify_host or
 * insecure_no_verify, the server certificate must match it (DNS SAN, or CN
 * when there is no DNS SAN; IP SAN for an address).  host may be NULL only
 * when no host verification applies.  Returns NULL with a message in err on
 * failure.  Caller owns it, as for tls_server_ssl_create.
 */
SSL *tls_client_ssl_create(SSL_CTX *ctx, const char *host, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * The name of the verified peer: its certificate's subject CN, or its first
 * DNS subjectAltName when it has no CN.  False (out = "") when there is no
 * peer certificate, it was not verified, it has no usable name (none, or one
 * with an embedded NUL), or the name does not fit in outlen bytes.
 */
bool tls_peer_name(SSL *ssl, char *out, size_t outlen) __attribute__((warn_unused_result));

/* Whether host is an IPv4 or IPv6 address (no brackets), not a name. */
bool tls_is_ip_literal(const char *host);

/*
 * After a handshake: true when the peer presented a certificate that was
 * verified and one of its names is on allowed[0..n-1] (see "Peer names").
 * Otherwise false with the reason in err, e.g.
 * 'peer certificate name "mallory" is not allowed'.
 */
bool tls_check_peer_allowed(SSL *ssl, const char *const *allowed, size_t n, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/*
 * Describe the last TLS failure of this thread: drains OpenSSL's error queue
 * and, given ssl, adds its certificate verification result (and the name
 * refused by the allow-list, or the host name expected).  Reasons are joined
 * with "; ".  Writes "unknown TLS error" when there is nothing to report.
 * ssl may be NULL (e.g. for context set-up errors).
 */
void tls_error_text(SSL *ssl, char *err, size_t errlen);

/*
 * As tls_error_text, for error codes the caller has already taken off the
 * queue, codes[0..n-1] oldest first (for a caller that looks at them
 * first).  False, with err empty, when they and ssl's verify result say
 * nothing; ssl may be NULL.
 */
bool tls_codes_error_text(SSL *ssl, const unsigned long *codes, size_t n, char *err, size_t errlen);

/*
 * Name the host ssl's certificate must match, for the error text only: a
 * host name or IP address mismatch is then described as
 * 'server certificate does not match "host"'.  The check itself is the
 * caller's (SSL_set1_host, X509_VERIFY_PARAM_set1_ip_asc); for an SSL made
 * by tls_client_ssl_create this is done already.  Best effort: without
 * memory the text only says less.
 */
void tls_ssl_name_host(SSL *ssl, const char *host);

/*
 * Describe the failure of an SSL_* I/O call that returned ret: as
 * tls_error_text, but also covers a clean close by the peer ("connection
 * closed by peer"), an EOF in the middle of the protocol and a socket error
 * (errno).  Must be called right after the failing call, on its thread.
 */
void tls_io_error_text(SSL *ssl, int ret, char *err, size_t errlen);

/*
 * Run the handshake of ssl, which must already have its socket (SSL_set_fd),
 * to completion, waiting with poll() up to timeout_ms in total (< 0: no
 * limit).  Works on blocking and non-blocking sockets.  For tools and tests;
 * the daemons' event loops use conn.c instead.  False with a message in err on
 * failure or time-out.
 */
bool tls_handshake_fd(SSL *ssl, int timeout_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
