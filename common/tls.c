/*
 * tls.c — OpenSSL set-up, peer checks and error text; see tls.h.
 *
 * NOTES
 *  What this file owns: the policy every dtx TLS endpoint follows.  One
 *  place decides the protocol floor (TLS 1.2), the TLS 1.2 cipher list
 *  (ECDHE with AEAD only; TLS 1.3 suites are OpenSSL's defaults, all AEAD),
 *  that compression and renegotiation are off, and how a peer certificate is
 *  verified and named.  Callers never set SSL_CTX options themselves.
 *
 *  State attached to OpenSSL objects.  Two ex_data slots, allocated once per
 *  process (pthread_once), carry dtx's own state:
 *    - on an SSL_CTX: a tls_ctx_info — a private copy of the allow-list and
 *      whether clients check the host name.  It lives exactly as long as the
 *      SSL_CTX: OpenSSL calls ctx_info_free() from SSL_CTX_free();
 *    - on an SSL: a tls_ssl_info — the host name a client expects, as the
 *      caller wrote it, and the name the allow-list refused during this
 *      handshake, so that tls_error_text() can say which names were
 *      involved.  Freed by ssl_info_free() from SSL_free().
 *  These two index numbers are the only global state here; they are written
 *  once and only read afterwards.
 *
 *  Where the allow-list is enforced.  verify_peer_cb() runs inside
 *  OpenSSL's chain verification; at depth 0 (the peer's own certificate),
 *  after the chain and the host name have verified, it checks the peer's
 *  names.  A refusal is recorded as X509_V_ERR_CERT_REJECTED, so the
 *  handshake fails on this side and the peer receives a "bad certificate"
 *  alert instead of a connection that is dropped later.  The same check is
 *  available after a handshake as tls_check_peer_allowed(), e.g. for a
 *  listener whose allowed names depend on what the peer asks for.
 *
 *  Error text.  OpenSSL reports failures on a per-thread queue of codes,
 *  and the details of a certificate failure separately, in the SSL's verify
 *  result.  format_errors() turns both into one line: the queue's reason
 *  strings in order, de-duplicated, with "certificate verify failed"
 *  followed by the verify result (or by our own reason for it).  libdtx
 *  (client/dtx_tls.c) gives its users the same text: it takes the codes off
 *  the queue itself, to notice a server that vanished mid-record, and hands
 *  them to tls_codes_error_text().
 */
#include "tls.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites: forward secrecy and AEAD only.  TLS 1.3 keeps OpenSSL's
 * default suites, which already satisfy both. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"

/* Session id context for servers: needed once client certificates are
 * verified, or resumed sessions fail with "session id context uninitialized". */
#define TLS_SESSION_ID_CONTEXT "dtx"

/* Longest certificate name handled; longer names are never matched. */
#define TLS_NAME_MAX 256

typedef struct tls_ssl_info {
    char *host;         /* client: the host given to tls_client_ssl_create */
    char *refused_name; /* name refused by the allow-list, if any */
} tls_ssl_info;

typedef struct tls_ctx_info {
    bool verify_host; /* client: match the server certificate to the host */
    bool any_name;    /* allow-list contains "*" */
    size_t n_allowed; /* 0: no allow-list */
    char **allowed;
} tls_ctx_info;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ctx_index = -1;
static int tls_ssl_index = -1;

/* ------------------------------------------------------------------------
 * ex_data slots
 */

static void
ctx_info_destroy(tls_ctx_info *info)
{
    if (info == NULL)
        return;
    for (size_t i = 0; i < info->n_allowed; i++)
        free(info->allowed[i]);
    free(info->allowed);
    free(info);
}

static void
ctx_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    ctx_info_destroy(ptr);
}

static void
ssl_info_destroy(tls_ssl_info *info)
{
    if (info == NULL)
        return;
    free(info->host);
    free(info->refused_name);
    free(info);
}

static void
ssl_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    ssl_info_destroy(ptr);
}

/* SSL_dup() would copy the pointer and free it twice: a copy starts without
 * the information instead (it is only used for error text). */
static int
ssl_info_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx, long argl,
             void *argp)
{
    (void)to, (void)from, (void)idx, (void)argl, (void)argp;
    *from_d = NULL;
    return 1;
}

static void
tls_init_once(void)
{
    tls_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_info_free);
    tls_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, ssl_info_dup, ssl_info_free);
}

static bool
tls_init(void)
{
    pthread_once(&tls_once, tls_init_once);
    return tls_ctx_index >= 0 && tls_ssl_index >= 0;
}

static const tls_ctx_info *
ctx_info(const SSL_CTX *ctx)
{
    if (ctx == NULL || tls_ctx_index < 0)
        return NULL;
    return SSL_CTX_get_ex_data(ctx, tls_ctx_index);
}

static const tls_ssl_info *
ssl_info(const SSL *ssl)
{
    if (ssl == NULL || tls_ssl_index < 0)
        return NULL;
    return SSL_get_ex_data(ssl, tls_ssl_index);
}

/* The SSL's info, created on first use; NULL when out of memory. */
static tls_ssl_info *
ssl_info_get(SSL *ssl)
{
    tls_ssl_info *info = SSL_get_ex_data(ssl, tls_ssl_index);
    if (info != NULL)
        return info;
    info = calloc(1, sizeof(*info));
    if (info != NULL && !SSL_set_ex_data(ssl, tls_ssl_index, info)) {
        free(info);
        info = NULL;
    }
    return info;
}

/* Remember a name (refused peer, expected host); best effort: without
 * memory only the error text gets less specific. */
static void
ssl_info_set(SSL *ssl, bool refused, const char *name)
{
    tls_ssl_info *info = ssl_info_get(ssl);
    if (info == NULL)
        return;
    char **slot = refused ? &info->refused_name : &info->host;
    free(*slot);
    *slot = strdup(name);
}

/* ------------------------------------------------------------------------
 * Text building
 */

typedef struct text_buf {
    char *buf;
    size_t cap;
    size_t len;
} text_buf;

static void text_add(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append to t; output beyond its capacity is dropped (always terminated). */
static void
text_add(text_buf *t, const char *fmt, ...)
{
    if (t->cap == 0 || t->len >= t->cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    t->len += (size_t)n;
    if (t->len > t->cap - 1)
        t->len = t->cap - 1;
}

/* Why verification failed, in words, from the SSL's verify result. */
static void
add_verify_detail(text_buf *t, SSL *ssl)
{
    long vr = SSL_get_verify_result(ssl);
    const tls_ssl_info *info = ssl_info(ssl);

    if (vr == X509_V_ERR_CERT_REJECTED && info != NULL && info->refused_name != NULL) {
        text_add(t, "peer certificate name \"%s\" is not allowed", info->refused_name);
        return;
    }
    text_add(t, "%s", X509_verify_cert_error_string(vr));
    if ((vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) &&
        info != NULL && info->host != NULL)
        text_add(t, " (server certificate does not match \"%s\")", info->host);
}

static bool
ssl_verify_failed(SSL *ssl)
{
    return ssl != NULL && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 &&
           SSL_get_verify_result(ssl) != X509_V_OK;
}

/* OpenSSL's "common" reasons such as "PEM lib" or "system lib" only say
 * which library passed an error up; they add nothing next to the real
 * reason, so they are shown only when there is no other. */
static bool
is_wrapper_reason(unsigned long code)
{
    unsigned long r = (unsigned long)ERR_GET_REASON(code);
    return !ERR_SYSTEM_ERROR(code) && (r & ERR_RFLAG_COMMON) != 0 &&
           (r & ~(unsigned long)(ERR_RFLAG_COMMON | ERR_RFLAG_FATAL)) < 256;
}

/* The words for one error code; tmp is scratch space. */
static const char *
reason_text(unsigned long code, char *tmp, size_t tmplen)
{
    if (ERR_SYSTEM_ERROR(code))
        return strerror_r(ERR_GET_REASON(code), tmp, tmplen);
    const char *reason = ERR_reason_error_string(code);
    if (reason != NULL)
        return reason;
    ERR_error_string_n(code, tmp, tmplen);
    return tmp;
}

static bool
is_verify_failed(unsigned long code)
{
    return !ERR_SYSTEM_ERROR(code) && ERR_GET_LIB(code) == ERR_LIB_SSL &&
           ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

/* Append the reasons of codes[0..n-1] (wrappers or not), skipping any
 * already in the text; "certificate verify failed" gets its detail. */
static void
add_reasons(text_buf *t, SSL *ssl, const unsigned long *codes, size_t n, bool wrappers,
            bool *verify_reported)
{
    for (size_t i = 0; i < n; i++) {
        char tmp[256];
        if (is_wrapper_reason(codes[i]) != wrappers)
            continue;
        bool verify = is_verify_failed(codes[i]);
        const char *reason = reason_text(codes[i], tmp, sizeof(tmp));
        if (verify ? *verify_reported : (t->len > 0 && strcasestr(t->buf, reason) != NULL))
            continue;
        text_add(t, "%s%s", t->len > 0 ? "; " : "", reason);
        if (verify && ssl_verify_failed(ssl)) {
            text_add(t, ": ");
            add_verify_detail(t, ssl);
        }
        *verify_reported |= verify;
    }
}

/*
 * Format error codes (oldest first, as returned by next(arg) until 0) plus
 * the verify result of ssl.  All codes are consumed, the first 16 are
 * shown.  Returns false when there was nothing to say (err is then empty).
 */
static bool
format_errors(SSL *ssl, unsigned long (*next)(void *), void *arg, char *err, size_t errlen)
{
    text_buf t = {.buf = err, .cap = errlen, .len = 0};
    bool verify_reported = false;
    unsigned long codes[16], code;
    size_t n = 0;

    while ((code = next(arg)) != 0) {
        if (n < sizeof(codes) / sizeof(codes[0]))
            codes[n++] = code;
    }
    if (errlen == 0)
        return false;
    err[0] = '\0';
    add_reasons(&t, ssl, codes, n, false, &verify_reported);
    if (t.len == 0)
        add_reasons(&t, ssl, codes, n, true, &verify_reported);
    if (!verify_reported && ssl_verify_failed(ssl)) {
        text_add(&t, "%scertificate verify failed: ", t.len > 0 ? "; " : "");
        add_verify_detail(&t, ssl);
    }
    return t.len > 0;
}

static unsigned long
next_from_queue(void *arg)
{
    (void)arg;
    return ERR_get_error();
}

void
tls_error_text(SSL *ssl, char *err, size_t errlen)
{
    if (!format_errors(ssl, next_from_queue, NULL, err, errlen))
        snprintf(err, errlen, "unknown TLS error");
}

typedef struct code_list {
    const unsigned long *codes;
    size_t n, next;
} code_list;

static unsigned long
next_from_list(void *arg)
{
    code_list *l = arg;
    return l->next < l->n ? l->codes[l->next++] : 0;
}

bool
tls_codes_error_text(SSL *ssl, const unsigned long *codes, size_t n, char *err, size_t errlen)
{
    code_list l = {.codes = codes, .n = n, .next = 0};
    return format_errors(ssl, next_from_list, &l, err, errlen);
}

void
tls_io_error_text(SSL *ssl, int ret, char *err, size_t errlen)
{
    int saved_errno = errno;
    int kind = SSL_get_error(ssl, ret);

    switch (kind) {
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        snprintf(err, errlen, "connection closed by peer");
        return;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        snprintf(err, errlen, "TLS operation would block");
        return;
    case SSL_ERROR_SYSCALL:
        if (format_errors(ssl, next_from_queue, NULL, err, errlen))
            return;
        if (saved_errno != 0)
            snprintf(err, errlen, "%s", strerror(saved_errno));
        else
            snprintf(err, errlen, "unexpected end of file from peer");
        return;
    default:
        tls_error_text(ssl, err, errlen);
        return;
    }
}

static void setup_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Describe a failed set-up step: "<what>: <reasons from the queue>". */
static void
setup_error(char *err, size_t errlen, const char *fmt, ...)
{
    char what[512], why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    tls_error_text(NULL, why, sizeof(why));
    snprintf(err, errlen, "%s: %s", what, why);
}

/* ------------------------------------------------------------------------
 * Certificate names
 */

typedef bool (*name_fn)(const char *name, void *arg);

/* Call fn for each subject CN, then each DNS subjectAltName of cert, until
 * fn returns true (then returns true).  Names with an embedded NUL, or
 * longer than TLS_NAME_MAX, are skipped: they can never match honestly. */
static bool
cert_names_foreach(X509 *cert, name_fn fn, void *arg)
{
    X509_NAME *subject = X509_get_subject_name(cert);
    int pos = -1;
    bool found = false;

    while (!found && subject != NULL &&
           (pos = X509_NAME_get_index_by_NID(subject, NID_commonName, pos)) >= 0) {
        ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, pos));
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, data);
        if (len >= 0 && len <= TLS_NAME_MAX && memchr(utf8, '\0', (size_t)len) == NULL)
            found = fn((const char *)utf8, arg);
        OPENSSL_free(utf8);
    }

    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; !found && sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        int len = ASN1_STRING_length(g->d.dNSName);
        char name[TLS_NAME_MAX + 1];
        if (len < 0 || len > TLS_NAME_MAX || memchr(d, '\0', (size_t)len) != NULL)
            continue;
        memcpy(name, d, (size_t)len);
        name[len] = '\0';
        found = fn(name, arg);
    }
    GENERAL_NAMES_free(sans);
    return found;
}

typedef struct allow_arg {
    const char *const *allowed;
    size_t n;
} allow_arg;

static bool
name_on_list(const char *name, void *arg)
{
    const allow_arg *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        if (strcasecmp(name, a->allowed[i]) == 0)
            return true;
    }
    return false;
}

typedef struct first_arg {
    char *out;
    size_t outlen;
    bool fits;
} first_arg;

static bool
take_first_name(const char *name, void *arg)
{
    first_arg *a = arg;
    a->fits = strlen(name) < a->outlen;
    if (a->fits)
        memcpy(a->out, name, strlen(name) + 1);
    return true;
}

/* The name shown for cert: first CN, else first DNS SAN. */
static bool
cert_primary_name(X509 *cert, char *out, size_t outlen)
{
    first_arg a = {.out = out, .outlen = outlen, .fits = false};
    if (outlen == 0)
        return false;
    out[0] = '\0';
    if (!cert_names_foreach(cert, take_first_name, &a) || !a.fits) {
        out[0] = '\0';
        return false;
    }
    return true;
}

static bool
list_has_star(const char *const *allowed, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(allowed[i], "*") == 0)
            return true;
    }
    return false;
}

/* OpenSSL's verify callback: enforce the context's allow-list on the peer's
 * own certificate once everything else about it has verified. */
static int
verify_peer_cb(int preverify_ok, X509_STORE_CTX *store)
{
    if (!preverify_ok || X509_STORE_CTX_get_error_depth(store) != 0)
        return preverify_ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    const tls_ctx_info *info = ssl != NULL ? ctx_info(SSL_get_SSL_CTX(ssl)) : NULL;
    if (info == NULL || info->n_allowed == 0 || info->any_name)
        return 1;

    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    allow_arg a = {.allowed = (const char *const *)info->allowed, .n = info->n_allowed};
    if (cert != NULL && cert_names_foreach(cert, name_on_list, &a))
        return 1;

    char name[TLS_NAME_MAX + 1];
    if (cert == NULL || !cert_primary_name(cert, name, sizeof(name)))
        snprintf(name, sizeof(name), "(none)");
    ssl_info_set(ssl, true, name);
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
}

/* ------------------------------------------------------------------------
 * Contexts
 */

static bool
check_config(const tls_config *cfg, bool server, char *err, size_t errlen)
{
    if (cfg->min_version != 0 && cfg->min_version != TLS1_2_VERSION &&
        cfg->min_version != TLS1_3_VERSION) {
        snprintf(err, errlen, "unsupported minimum TLS version 0x%x (TLS 1.2 or 1.3 only)",
                 (unsigned)cfg->min_version);
        return false;
    }
    if (cfg->crl_file != NULL && cfg->ca_file == NULL) {
        snprintf(err, errlen, "a certificate revocation list needs a CA file");
        return false;
    }
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
        snprintf(err, errlen, "a certificate file and a key file must be given together");
        return false;
    }
    for (size_t i = 0; i < cfg->n_allowed_names; i++) {
        if (cfg->allowed_names == NULL || cfg->allowed_names[i] == NULL ||
            cfg->allowed_names[i][0] == '\0') {
            snprintf(err, errlen, "empty name in the list of allowed peer names");
            return false;
        }
    }
    if (server) {
        if (cfg->cert_file == NULL) {
            snprintf(err, errlen, "a TLS server needs a certificate file and a key file");
            return false;
        }
        if (cfg->require_peer_cert && cfg->ca_file == NULL) {
            snprintf(err, errlen, "requiring client certificates needs a CA file to verify them");
            return false;
        }
        if (cfg->n_allowed_names > 0 && !cfg->require_peer_cert) {
            snprintf(err, errlen,
                     "a list of allowed client names needs client certificates "
                     "to be required");
            return false;
        }
    } else if (cfg->insecure_no_verify && cfg->n_allowed_names > 0) {
        snprintf(err, errlen, "a list of allowed server names needs server verification");
        return false;
    }
    return true;
}

static bool
attach_info(SSL_CTX *ctx, const tls_config *cfg, bool server, char *err, size_t errlen)
{
    tls_ctx_info *info = calloc(1, sizeof(*info));
    if (info == NULL)
        goto oom;
    info->verify_host = !server && !cfg->no_verify_host && !cfg->insecure_no_verify;
    info->any_name = list_has_star(cfg->allowed_names, cfg->n_allowed_names);
    if (cfg->n_allowed_names > 0) {
        info->allowed = calloc(cfg->n_allowed_names, sizeof(char *));
        if (info->allowed == NULL)
            goto oom;
        for (size_t i = 0; i < cfg->n_allowed_names; i++) {
            info->allowed[i] = strdup(cfg->allowed_names[i]);
            if (info->allowed[i] == NULL)
                goto oom;
            info->n_allowed = i + 1;
        }
    }
    if (!SSL_CTX_set_ex_data(ctx, tls_ctx_index, info))
        goto oom;
    return true;

oom:
    ctx_info_destroy(info);
    snprintf(err, errlen, "out of memory");
    return false;
}

static bool
load_identity(SSL_CTX *ctx, const tls_config *cfg, char *err, size_t errlen)
{
    if (cfg->cert_file == NULL)
        return true;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        setup_error(err, errlen, "could not load certificate file \"%s\"", cfg->cert_file);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
        setup_error(err, errlen, "could not load private key file \"%s\"", cfg->key_file);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        setup_error(err, errlen, "private key \"%s\" does not match certificate \"%s\"",
                    cfg->key_file, cfg->cert_file);
        return false;
    }
    return true;
}

/* The CRLs of crl_file into ctx's store; a peer's certificate is then
 * checked against its issuer's CRL. */
static bool
load_crl(SSL_CTX *ctx, const char *crl_file, char *err, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
    if (lookup == NULL || X509_load_crl_file(lookup, crl_file, X509_FILETYPE_PEM) <= 0) {
        setup_error(err, errlen, "could not load the certificate revocation list \"%s\"", crl_file);
        return false;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return true;
}

static bool
load_verify(SSL_CTX *ctx, const tls_config *cfg, bool server, char *err, size_t errlen)
{
    int mode = SSL_VERIFY_PEER;

    if (server) {
        if (cfg->ca_file == NULL) {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
            return true;
        }
        if (cfg->require_peer_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    } else if (cfg->insecure_no_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return true;
    }

    if (cfg->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
            setup_error(err, errlen, "could not load CA file \"%s\"", cfg->ca_file);
            return false;
        }
        if (server) {
            /* Tell clients which CAs we accept, so they pick the right cert. */
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
            if (names == NULL) {
                setup_error(err, errlen, "could not read CA names from \"%s\"", cfg->ca_file);
                return false;
            }
            SSL_CTX_set_client_CA_list(ctx, names);
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        setup_error(err, errlen, "could not load the system's trusted certificates");
        return false;
    }
    if (cfg->crl_file != NULL && !load_crl(ctx, cfg->crl_file, err, errlen))
        return false;
    SSL_CTX_set_verify(ctx, mode, verify_peer_cb);
    return true;
}

static SSL_CTX *
ctx_create(const tls_config *cfg, bool server, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;

    if (!tls_init()) {
        snprintf(err, errlen, "could not initialize TLS");
        return NULL;
    }
    if (!check_config(cfg, server, err, errlen))
        return NULL;
    ERR_clear_error();
    ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        setup_error(err, errlen, "could not create TLS context");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, cfg->min_version ? cfg->min_version : TLS1_2_VERSION) !=
        1) {
        setup_error(err, errlen, "could not set the minimum TLS version");
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        setup_error(err, errlen, "could not set the TLS 1.2 cipher list");
        goto fail;
    }
    if (server && SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SESSION_ID_CONTEXT,
                                                 sizeof(TLS_SESSION_ID_CONTEXT) - 1) != 1) {
        setup_error(err, errlen, "could not set the TLS session id context");
        goto fail;
    }
    if (!attach_info(ctx, cfg, server, err, errlen) || !load_identity(ctx, cfg, err, errlen) ||
        !load_verify(ctx, cfg, server, err, errlen))
        goto fail;
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *
tls_server_ctx_create(const tls_config *cfg, char *err, size_t errlen)
{
    return ctx_create(cfg, true, err, errlen);
}

SSL_CTX *
tls_client_ctx_create(const tls_config *cfg, char *err, size_t errlen)
{
    return ctx_create(cfg, false, err, errlen);
}

/* ------------------------------------------------------------------------
 * Connections
 */

SSL *
tls_server_ssl_create(SSL_CTX *ctx, char *err, size_t errlen)
{
    if (!tls_init()) {
        snprintf(err, errlen, "could not initialize TLS");
        return NULL;
    }
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        setup_error(err, errlen, "could not create TLS connection");
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

bool
tls_is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

void
tls_ssl_name_host(SSL *ssl, const char *host)
{
    if (tls_init())
        ssl_info_set(ssl, false, host);
}

SSL *
tls_client_ssl_create(SSL_CTX *ctx, const char *host, char *err, size_t errlen)
{
    if (!tls_init()) {
        snprintf(err, errlen, "could not initialize TLS");
        return NULL;
    }
    const tls_ctx_info *info = ctx_info(ctx);
    /* A context not made here gets the safe choice: check the host. */
    bool verify_host = info == NULL || info->verify_host;
    bool ip = host != NULL && tls_is_ip_literal(host);

    if (host == NULL && verify_host) {
        snprintf(err, errlen, "a host name is needed to verify the server certificate");
        return NULL;
    }
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        setup_error(err, errlen, "could not create TLS connection");
        return NULL;
    }
    SSL_set_connect_state(ssl);
    if (host != NULL && !ip && SSL_set_tlsext_host_name(ssl, host) != 1) {
        setup_error(err, errlen, "could not set TLS server name \"%s\"", host);
        goto fail;
    }
    if (verify_host) {
        ssl_info_set(ssl, false, host);
        if (ip) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1) {
                setup_error(err, errlen, "could not set expected server address \"%s\"", host);
                goto fail;
            }
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(ssl, host) != 1) {
                setup_error(err, errlen, "could not set expected server name \"%s\"", host);
                goto fail;
            }
        }
    }
    return ssl;

fail:
    SSL_free(ssl);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Peer checks
 */

/* The peer's certificate, only if it was verified. */
static X509 *
verified_peer_cert(SSL *ssl, char *err, size_t errlen)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert == NULL) {
        snprintf(err, errlen, "peer did not present a certificate");
        return NULL;
    }
    if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0) {
        snprintf(err, errlen, "peer certificate was not verified");
        return NULL;
    }
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        snprintf(err, errlen, "peer certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        return NULL;
    }
    return cert;
}

bool
tls_peer_name(SSL *ssl, char *out, size_t outlen)
{
    char dummy[128];
    X509 *cert = verified_peer_cert(ssl, dummy, sizeof(dummy));
    if (outlen > 0)
        out[0] = '\0';
    return cert != NULL && cert_primary_name(cert, out, outlen);
}

bool
tls_check_peer_allowed(SSL *ssl, const char *const *allowed, size_t n, char *err, size_t errlen)
{
    X509 *cert = verified_peer_cert(ssl, err, errlen);
    if (cert == NULL)
        return false;
    if (list_has_star(allowed, n))
        return true;
    allow_arg a = {.allowed = allowed, .n = n};
    if (cert_names_foreach(cert, name_on_list, &a))
        return true;
    char name[TLS_NAME_MAX + 1];
    if (!cert_primary_name(cert, name, sizeof(name)))
        snprintf(name, sizeof(name), "(none)");
    snprintf(err, errlen, "peer certificate name \"%s\" is not allowed", name);
    return false;
}

/* ------------------------------------------------------------------------
 * Blocking handshake
 */

/* Step the handshake on a non-blocking fd until done, failed or late. */
static bool
handshake_loop(SSL *ssl, int fd, int timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    for (;;) {
        ERR_clear_error();
        errno = 0;
        int ret = SSL_do_handshake(ssl);
        if (ret == 1)
            return true;
        struct pollfd pfd = {.fd = fd, .events = 0};
        switch (SSL_get_error(ssl, ret)) {
        case SSL_ERROR_WANT_READ:
            pfd.events = POLLIN;
            break;
        case SSL_ERROR_WANT_WRITE:
            pfd.events = POLLOUT;
            break;
        default:
            tls_io_error_text(ssl, ret, err, errlen);
            return false;
        }
        int wait = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - clock_mono_ms();
            wait = left > 0 ? (int)left : 0;
        }
        int n = poll(&pfd, 1, wait);
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "could not wait for socket: %m");
            return false;
        }
        if (n == 0) {
            snprintf(err, errlen, "TLS handshake timed out after %d ms", timeout_ms);
            return false;
        }
    }
}

bool
tls_handshake_fd(SSL *ssl, int timeout_ms, char *err, size_t errlen)
{
    int fd = SSL_get_fd(ssl);
    if (fd < 0) {
        snprintf(err, errlen, "TLS connection has no socket");
        return false;
    }
    /* A blocking socket would block inside OpenSSL, past any time-out: run
     * the handshake non-blocking and give the socket its mode back. */
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || ((flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
        snprintf(err, errlen, "could not make socket non-blocking: %m");
        return false;
    }
    bool ok = handshake_loop(ssl, fd, timeout_ms, err, errlen);
    if ((flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags) < 0 && ok) {
        snprintf(err, errlen, "could not restore socket mode: %m");
        ok = false;
    }
    return ok;
}
