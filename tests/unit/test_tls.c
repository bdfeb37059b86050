/*
 * test_tls.c — unit tests of common/tls.c with real handshakes.
 *
 * main() makes two throw-away CAs with tests/lib/gencerts.sh in a mkdtemp
 * directory (removed at exit, whatever the tests did):
 *
 *   ca1/  ca.crt, server (the server), client-a (an allowed client),
 *         intruder (signed by ca1, but not on the allow-list)
 *   ca2/  ca.crt, client-a (same name as the allowed client, other CA)
 *
 * Every certificate carries SANs DNS:<name>, DNS:localhost, IP:127.0.0.1.
 *
 * Most tests run both ends of a handshake in one thread over a non-blocking
 * socketpair, stepping the client and the server in turn; a failing side
 * records its error text and shuts its socket so the other side sees the
 * alert or an EOF.  In TLS 1.3 a client finishes its handshake before the
 * server has judged the client's certificate, so when the server refused,
 * the client's verdict is learned by one more read.  One test runs two
 * conns (conn.c) on an event loop over loopback TCP, as the daemons do, and
 * one drives tls_handshake_fd() with the server in a thread.
 */
#include "conn.h"
#include "tls.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>

static char cert_dir[64];
static pid_t main_pid;

/* Path of a file under the certificate directory; a small ring of buffers
 * so several paths can be used in one expression. */
static const char *
cpath(const char *rel)
{
    static char ring[8][256];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, 256, "%s/%s", cert_dir, rel);
    return p;
}

#define ck_assert_contains(haystack, needle)                                                       \
    ck_assert_msg(strstr((haystack), (needle)) != NULL, "\"%s\" does not contain \"%s\"",          \
                  (haystack), (needle))

/* ------------------------------------------------------------------------
 * Contexts used by the tests
 */

static const char *const allowed_a[] = {"client-a", "coordinator-b"};

static SSL_CTX *
make_server_ctx(const char *const *allowed, size_t n)
{
    char err[512];
    tls_config cfg = {
        .cert_file = cpath("ca1/server.crt"),
        .key_file = cpath("ca1/server.key"),
        .ca_file = cpath("ca1/ca.crt"),
        .require_peer_cert = true,
        .allowed_names = allowed,
        .n_allowed_names = n,
    };
    SSL_CTX *ctx = tls_server_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    return ctx;
}

/* A client of ca1's server presenting <who> (e.g. "ca1/client-a"; NULL: no
 * certificate), trusting ca_rel. */
static SSL_CTX *
make_client_ctx(const char *who, const char *ca_rel)
{
    char err[512], crt[128], key[128];
    tls_config cfg = {.ca_file = cpath(ca_rel)};
    if (who != NULL) {
        snprintf(crt, sizeof(crt), "%s.crt", who);
        snprintf(key, sizeof(key), "%s.key", who);
        cfg.cert_file = cpath(crt);
        cfg.key_file = cpath(key);
    }
    SSL_CTX *ctx = tls_client_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    return ctx;
}

/* ------------------------------------------------------------------------
 * One-thread handshake over a socketpair
 */

typedef struct side {
    SSL *ssl;
    int fd;
    bool done;
    bool ok;
    char err[1024];
} side;

typedef struct hs {
    side server;
    side client;
} hs;

static void
set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void
hs_start(hs *h, SSL_CTX *sctx, SSL_CTX *cctx, const char *host)
{
    int fds[2];
    char err[512];
    memset(h, 0, sizeof(*h));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    set_nonblocking(fds[0]);
    set_nonblocking(fds[1]);
    h->server.fd = fds[0];
    h->client.fd = fds[1];
    h->server.ssl = tls_server_ssl_create(sctx, err, sizeof(err));
    ck_assert_msg(h->server.ssl != NULL, "%s", err);
    h->client.ssl = tls_client_ssl_create(cctx, host, err, sizeof(err));
    ck_assert_msg(h->client.ssl != NULL, "%s", err);
    ck_assert_int_eq(SSL_set_fd(h->server.ssl, h->server.fd), 1);
    ck_assert_int_eq(SSL_set_fd(h->client.ssl, h->client.fd), 1);
}

static void
side_step(side *s)
{
    if (s->done)
        return;
    ERR_clear_error();
    int ret = SSL_do_handshake(s->ssl);
    if (ret == 1) {
        s->done = s->ok = true;
        return;
    }
    int kind = SSL_get_error(s->ssl, ret);
    if (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE)
        return;
    tls_io_error_text(s->ssl, ret, s->err, sizeof(s->err));
    s->done = true;
    shutdown(s->fd, SHUT_WR);
}

/* Read on s until an error (or data) arrives; for a TLS 1.3 client whose
 * certificate the server refused after the client had finished. */
static void
side_read_verdict(side *s)
{
    char buf[64];
    for (int i = 0; i < 200; i++) {
        ERR_clear_error();
        int ret = SSL_read(s->ssl, buf, sizeof(buf));
        if (ret > 0)
            return;
        int kind = SSL_get_error(s->ssl, ret);
        if (kind != SSL_ERROR_WANT_READ && kind != SSL_ERROR_WANT_WRITE) {
            tls_io_error_text(s->ssl, ret, s->err, sizeof(s->err));
            s->ok = false;
            return;
        }
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        (void)poll(&p, 1, 10);
    }
}

static void
hs_run(hs *h)
{
    for (int i = 0; i < 500 && !(h->server.done && h->client.done); i++) {
        side_step(&h->client);
        side_step(&h->server);
        if (h->server.done && h->client.done)
            break;
        struct pollfd p[2] = {{.fd = h->server.fd, .events = POLLIN},
                              {.fd = h->client.fd, .events = POLLIN}};
        (void)poll(p, 2, 10);
    }
    ck_assert_msg(h->server.done && h->client.done, "handshake did not finish");
    if (h->client.ok && !h->server.ok)
        side_read_verdict(&h->client);
}

static void
hs_free(hs *h)
{
    SSL_free(h->server.ssl);
    SSL_free(h->client.ssl);
    close(h->server.fd);
    close(h->client.fd);
}

static void
hs_exchange(hs *h)
{
    char buf[16] = {0};
    ck_assert_int_eq(SSL_write(h->client.ssl, "ping", 4), 4);
    int n = -1;
    for (int i = 0; i < 100 && n <= 0; i++) {
        n = SSL_read(h->server.ssl, buf, sizeof(buf) - 1);
        if (n <= 0) {
            ck_assert_int_eq(SSL_get_error(h->server.ssl, n), SSL_ERROR_WANT_READ);
            struct pollfd p = {.fd = h->server.fd, .events = POLLIN};
            (void)poll(&p, 1, 10);
        }
    }
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(buf, "ping");
}

/* Handshake with fresh SSLs on the given contexts; returns in *h (to free). */
static void
handshake(hs *h, SSL_CTX *sctx, SSL_CTX *cctx, const char *host)
{
    hs_start(h, sctx, cctx, host);
    hs_run(h);
}

/* ------------------------------------------------------------------------
 * Successful handshakes
 */

START_TEST(test_mutual_tls_ok)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    hs h;
    char name[64], err[256];

    handshake(&h, sctx, cctx, "server");
    ck_assert_msg(h.server.ok, "server: %s", h.server.err);
    ck_assert_msg(h.client.ok, "client: %s", h.client.err);
    ck_assert_int_eq(SSL_version(h.server.ssl), TLS1_3_VERSION);

    ck_assert(tls_peer_name(h.server.ssl, name, sizeof(name)));
    ck_assert_str_eq(name, "client-a");
    ck_assert(tls_peer_name(h.client.ssl, name, sizeof(name)));
    ck_assert_str_eq(name, "server");
    /* Too small a buffer is a refusal, not a truncated name. */
    ck_assert(!tls_peer_name(h.server.ssl, name, 5));
    ck_assert_str_eq(name, "");

    ck_assert_msg(tls_check_peer_allowed(h.server.ssl, allowed_a, 2, err, sizeof(err)), "%s", err);
    hs_exchange(&h);
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_tls12_ok)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
    hs h;
    char name[64];

    handshake(&h, sctx, cctx, "localhost");
    ck_assert_msg(h.server.ok && h.client.ok, "server: %s / client: %s", h.server.err,
                  h.client.err);
    ck_assert_int_eq(SSL_version(h.server.ssl), TLS1_2_VERSION);
    ck_assert_contains(SSL_get_cipher_name(h.server.ssl), "ECDHE");
    ck_assert(tls_peer_name(h.server.ssl, name, sizeof(name)));
    ck_assert_str_eq(name, "client-a");
    hs_exchange(&h);
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_allow_any_name)
{
    static const char *const any[] = {"*"};
    SSL_CTX *sctx = make_server_ctx(any, 1);
    SSL_CTX *cctx = make_client_ctx("ca1/intruder", "ca1/ca.crt");
    hs h;
    char name[64], err[256];

    handshake(&h, sctx, cctx, "server");
    ck_assert_msg(h.server.ok && h.client.ok, "server: %s / client: %s", h.server.err,
                  h.client.err);
    ck_assert(tls_peer_name(h.server.ssl, name, sizeof(name)));
    ck_assert_str_eq(name, "intruder");
    ck_assert(tls_check_peer_allowed(h.server.ssl, any, 1, err, sizeof(err)));
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);

    /* "*" still needs a certificate from the CA. */
    sctx = make_server_ctx(any, 1);
    cctx = make_client_ctx("ca2/client-a", "ca1/ca.crt");
    handshake(&h, sctx, cctx, "server");
    ck_assert(!h.server.ok);
    ck_assert_contains(h.server.err, "unable to get local issuer certificate");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_server_names)
{
    SSL_CTX *sctx = make_server_ctx(NULL, 0);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    static const char *const hosts[] = {"server", "SERVER", "localhost", "127.0.0.1"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        hs h;
        handshake(&h, sctx, cctx, hosts[i]);
        ck_assert_msg(h.server.ok && h.client.ok, "%s: server: %s / client: %s", hosts[i],
                      h.server.err, h.client.err);
        hs_free(&h);
    }
    SSL_CTX_free(cctx);

    /* A client's allow-list applies to the server's names. */
    static const char *const want_server[] = {"server"};
    static const char *const want_other[] = {"participant-x"};
    char err[512];
    tls_config cfg = {.ca_file = cpath("ca1/ca.crt"),
                      .cert_file = cpath("ca1/client-a.crt"),
                      .key_file = cpath("ca1/client-a.key"),
                      .allowed_names = want_server,
                      .n_allowed_names = 1};
    cctx = tls_client_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(cctx != NULL, "%s", err);
    hs h;
    handshake(&h, sctx, cctx, "localhost");
    ck_assert_msg(h.server.ok && h.client.ok, "server: %s / client: %s", h.server.err,
                  h.client.err);
    hs_free(&h);
    SSL_CTX_free(cctx);

    cfg.allowed_names = want_other;
    cctx = tls_client_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(cctx != NULL, "%s", err);
    handshake(&h, sctx, cctx, "localhost");
    ck_assert(!h.client.ok);
    ck_assert_str_eq(h.client.err,
                     "certificate verify failed: peer certificate name \"server\" is not allowed");
    ck_assert(!h.server.ok);
    ck_assert_contains(h.server.err, "bad certificate");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

/* ------------------------------------------------------------------------
 * Refused handshakes
 */

START_TEST(test_no_client_cert)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx(NULL, "ca1/ca.crt");
    hs h;

    handshake(&h, sctx, cctx, "server");
    ck_assert(!h.server.ok);
    ck_assert(!h.client.ok);
    ck_assert_contains(h.server.err, "peer did not return a certificate");
    ck_assert_contains(h.client.err, "certificate required");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_client_cert_other_ca)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca2/client-a", "ca1/ca.crt");
    hs h;
    char name[64];

    handshake(&h, sctx, cctx, "server");
    ck_assert(!h.server.ok);
    ck_assert(!h.client.ok);
    ck_assert_str_eq(h.server.err,
                     "certificate verify failed: unable to get local issuer certificate");
    ck_assert_contains(h.client.err, "unknown ca");
    ck_assert(!tls_peer_name(h.server.ssl, name, sizeof(name)));
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_name_not_allowed)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/intruder", "ca1/ca.crt");
    hs h;

    handshake(&h, sctx, cctx, "server");
    ck_assert(!h.server.ok);
    ck_assert(!h.client.ok);
    ck_assert_str_eq(
        h.server.err,
        "certificate verify failed: peer certificate name \"intruder\" is not allowed");
    ck_assert_contains(h.client.err, "bad certificate");
    hs_free(&h);

    /* In TLS 1.2 the client learns it during its own handshake. */
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
    handshake(&h, sctx, cctx, "server");
    ck_assert(!h.server.ok);
    ck_assert_contains(h.server.err, "peer certificate name \"intruder\" is not allowed");
    ck_assert(!h.client.ok);
    ck_assert_contains(h.client.err, "bad certificate");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_check_after_handshake)
{
    static const char *const only_a[] = {"client-a"};
    static const char *const upper[] = {"INTRUDER"};
    static const char *const by_san[] = {"nobody", "localhost"};
    SSL_CTX *sctx = make_server_ctx(NULL, 0);
    SSL_CTX *cctx = make_client_ctx("ca1/intruder", "ca1/ca.crt");
    hs h;
    char err[256];

    handshake(&h, sctx, cctx, "server");
    ck_assert_msg(h.server.ok && h.client.ok, "server: %s / client: %s", h.server.err,
                  h.client.err);
    ck_assert(!tls_check_peer_allowed(h.server.ssl, only_a, 1, err, sizeof(err)));
    ck_assert_str_eq(err, "peer certificate name \"intruder\" is not allowed");
    ck_assert(!tls_check_peer_allowed(h.server.ssl, only_a, 0, err, sizeof(err)));
    ck_assert(tls_check_peer_allowed(h.server.ssl, upper, 1, err, sizeof(err)));
    ck_assert(tls_check_peer_allowed(h.server.ssl, by_san, 2, err, sizeof(err)));
    hs_free(&h);
    SSL_CTX_free(sctx);

    /* A server that asks for no client certificate has no peer name. */
    char cerr[512], name[64];
    tls_config cfg = {.cert_file = cpath("ca1/server.crt"), .key_file = cpath("ca1/server.key")};
    sctx = tls_server_ctx_create(&cfg, cerr, sizeof(cerr));
    ck_assert_msg(sctx != NULL, "%s", cerr);
    handshake(&h, sctx, cctx, "server");
    ck_assert_msg(h.server.ok && h.client.ok, "server: %s / client: %s", h.server.err,
                  h.client.err);
    ck_assert(!tls_peer_name(h.server.ssl, name, sizeof(name)));
    ck_assert(!tls_check_peer_allowed(h.server.ssl, only_a, 1, err, sizeof(err)));
    ck_assert_str_eq(err, "peer did not present a certificate");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_server_host_mismatch)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    hs h;

    handshake(&h, sctx, cctx, "wronghost");
    ck_assert(!h.client.ok);
    ck_assert_str_eq(h.client.err, "certificate verify failed: hostname mismatch "
                                   "(server certificate does not match \"wronghost\")");
    ck_assert(!h.server.ok);
    hs_free(&h);

    handshake(&h, sctx, cctx, "::1");
    ck_assert(!h.client.ok);
    ck_assert_contains(h.client.err, "IP address mismatch");
    ck_assert_contains(h.client.err, "\"::1\"");
    hs_free(&h);

    /* A partial wildcard or suffix is not a match either. */
    handshake(&h, sctx, cctx, "server.example.com");
    ck_assert(!h.client.ok);
    ck_assert_contains(h.client.err, "hostname mismatch");
    hs_free(&h);
    SSL_CTX_free(cctx);

    /* no_verify_host: any host name, but the chain is still verified. */
    char err[512];
    tls_config cfg = {.ca_file = cpath("ca1/ca.crt"),
                      .cert_file = cpath("ca1/client-a.crt"),
                      .key_file = cpath("ca1/client-a.key"),
                      .no_verify_host = true};
    cctx = tls_client_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(cctx != NULL, "%s", err);
    handshake(&h, sctx, cctx, "wronghost");
    ck_assert_msg(h.server.ok && h.client.ok, "server: %s / client: %s", h.server.err,
                  h.client.err);
    hs_free(&h);
    SSL *ssl = tls_client_ssl_create(cctx, NULL, err, sizeof(err));
    ck_assert_msg(ssl != NULL, "%s", err);
    SSL_free(ssl);
    SSL_CTX_free(cctx);

    cfg.ca_file = cpath("ca2/ca.crt");
    cctx = tls_client_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(cctx != NULL, "%s", err);
    handshake(&h, sctx, cctx, "wronghost");
    ck_assert(!h.client.ok);
    ck_assert_str_eq(h.client.err,
                     "certificate verify failed: self-signed certificate in certificate chain");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_server_untrusted)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca2/ca.crt");
    hs h;
    char err[512], name[64];

    /* The server sends its chain up to its root (OpenSSL builds it from the
     * CA file), so the client meets a root it does not trust. */
    handshake(&h, sctx, cctx, "server");
    ck_assert(!h.client.ok);
    ck_assert_str_eq(h.client.err,
                     "certificate verify failed: self-signed certificate in certificate chain");
    ck_assert(!h.server.ok);
    ck_assert_contains(h.server.err, "unknown ca");
    hs_free(&h);
    SSL_CTX_free(cctx);

    /* insecure_no_verify connects, but the server's name is not vouched for. */
    tls_config cfg = {.cert_file = cpath("ca1/client-a.crt"),
                      .key_file = cpath("ca1/client-a.key"),
                      .insecure_no_verify = true};
    cctx = tls_client_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(cctx != NULL, "%s", err);
    handshake(&h, sctx, cctx, "wronghost");
    ck_assert_msg(h.server.ok && h.client.ok, "server: %s / client: %s", h.server.err,
                  h.client.err);
    ck_assert(!tls_peer_name(h.client.ssl, name, sizeof(name)));
    ck_assert(!tls_check_peer_allowed(h.client.ssl, allowed_a, 2, err, sizeof(err)));
    ck_assert_str_eq(err, "peer certificate was not verified");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

START_TEST(test_old_protocol_refused)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    hs h;

    /* A client limited to TLS 1.1 (its own security level lowered so that it
     * even offers it): our server must refuse. */
    SSL_CTX *old = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(old);
    SSL_CTX_set_security_level(old, 0);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0"), 1);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(old, TLS1_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(old, cpath("ca1/client-a.crt")), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(old, cpath("ca1/client-a.key"), SSL_FILETYPE_PEM),
                     1);
    handshake(&h, sctx, old, "server");
    ck_assert(!h.server.ok);
    ck_assert(!h.client.ok);
    ck_assert_contains(h.server.err, "unsupported protocol");
    ck_assert_contains(h.client.err, "protocol version");
    hs_free(&h);
    SSL_CTX_free(old);
    SSL_CTX_free(sctx);

    /* min_version = TLS 1.3 refuses a TLS 1.2 client. */
    char err[512];
    tls_config cfg = {.cert_file = cpath("ca1/server.crt"),
                      .key_file = cpath("ca1/server.key"),
                      .min_version = TLS1_3_VERSION};
    sctx = tls_server_ctx_create(&cfg, err, sizeof(err));
    ck_assert_msg(sctx != NULL, "%s", err);
    SSL_CTX *cctx = make_client_ctx(NULL, "ca1/ca.crt");
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
    handshake(&h, sctx, cctx, "server");
    ck_assert(!h.server.ok);
    ck_assert_contains(h.server.err, "unsupported protocol");
    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);

    /* Nothing below TLS 1.2 can be configured. */
    cfg.min_version = TLS1_1_VERSION;
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "unsupported minimum TLS version 0x302 (TLS 1.2 or 1.3 only)");
    ck_assert_ptr_null(tls_client_ctx_create(&cfg, err, sizeof(err)));
}
END_TEST

/* ------------------------------------------------------------------------
 * Set-up errors
 */

START_TEST(test_setup_errors)
{
    char err[512];
    static const char *const empty_name[] = {"ok", ""};
    tls_config cfg;

    cfg = (tls_config){.cert_file = cpath("nope.crt"), .key_file = cpath("ca1/server.key")};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_contains(err, "could not load certificate file \"");
    ck_assert_contains(err, "nope.crt\": ");
    ck_assert_contains(err, "No such file or directory");

    cfg = (tls_config){.cert_file = cpath("ca1/server.crt"), .key_file = cpath("nope.key")};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_contains(err, "could not load private key file \"");

    cfg = (tls_config){.cert_file = cpath("ca1/server.crt"), .key_file = cpath("ca1/client-a.key")};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_contains(err, "could not load private key file \"");
    ck_assert_contains(err, "key values mismatch");

    /* A certificate file that is not PEM at all. */
    cfg = (tls_config){.cert_file = cpath("ca1/server.key"), .key_file = cpath("ca1/server.key")};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_contains(err, "could not load certificate file");

    cfg = (tls_config){.cert_file = cpath("ca1/server.crt"),
                       .key_file = cpath("ca1/server.key"),
                       .ca_file = cpath("nope-ca.crt"),
                       .require_peer_cert = true};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_contains(err, "could not load CA file \"");

    cfg = (tls_config){0};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "a TLS server needs a certificate file and a key file");

    cfg = (tls_config){.cert_file = cpath("ca1/server.crt")};
    ck_assert_ptr_null(tls_client_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "a certificate file and a key file must be given together");

    cfg = (tls_config){.cert_file = cpath("ca1/server.crt"),
                       .key_file = cpath("ca1/server.key"),
                       .require_peer_cert = true};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "requiring client certificates needs a CA file to verify them");

    cfg = (tls_config){.cert_file = cpath("ca1/server.crt"),
                       .key_file = cpath("ca1/server.key"),
                       .ca_file = cpath("ca1/ca.crt"),
                       .allowed_names = allowed_a,
                       .n_allowed_names = 2};
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "a list of allowed client names needs client certificates to be "
                          "required");

    cfg.require_peer_cert = true;
    cfg.allowed_names = empty_name;
    ck_assert_ptr_null(tls_server_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "empty name in the list of allowed peer names");

    cfg =
        (tls_config){.insecure_no_verify = true, .allowed_names = allowed_a, .n_allowed_names = 2};
    ck_assert_ptr_null(tls_client_ctx_create(&cfg, err, sizeof(err)));
    ck_assert_str_eq(err, "a list of allowed server names needs server verification");

    /* A client needs a host name to check, unless host checks are off. */
    SSL_CTX *cctx = make_client_ctx(NULL, "ca1/ca.crt");
    ck_assert_ptr_null(tls_client_ssl_create(cctx, NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "a host name is needed to verify the server certificate");
    SSL_CTX_free(cctx);

    /* Nothing queued: a fixed text, never an empty string. */
    ERR_clear_error();
    tls_error_text(NULL, err, sizeof(err));
    ck_assert_str_eq(err, "unknown TLS error");
    char tiny[8];
    tls_error_text(NULL, tiny, sizeof(tiny));
    ck_assert_str_eq(tiny, "unknown");
}
END_TEST

/* ------------------------------------------------------------------------
 * Through conn (conn.c), as the daemons use it: handshake, frames both ways,
 * a close that still delivers its last frame, and a refused certificate.
 */

#define CONN_T_FRAMES 40
#define CONN_T_BIG    (300u * 1024) /* several TLS records, beyond one read budget */

typedef struct conn_side {
    bool opened;
    bool closed;
    char reason[1024];
    char peer[128];
    int frames;       /* frames received */
    int errors;       /* MSG_ERROR frames received */
    size_t bytes;     /* payload bytes received */
    bool bad_payload; /* a payload was not what was sent */
    bool echo;        /* server: send each frame back */
    bool said_bye;    /* closed by its owner (conn_fail): the conn is gone */
    conn *c;
} conn_side;

static uint8_t conn_t_big[CONN_T_BIG];

static int listen_loopback(uint16_t *port);

static void
conn_t_send(conn *c, uint8_t type, const void *p, uint32_t len)
{
    wbuf w;
    wbuf_init(&w);
    ck_assert(frame_put(&w, type, p, len));
    conn_send(c, &w);
    wbuf_free(&w);
}

static void
conn_t_open(conn *c, const char *peer_name, void *arg)
{
    conn_side *s = arg;
    s->opened = true;
    (void)c;
    snprintf(s->peer, sizeof(s->peer), "%s", peer_name);
}

/* client: as soon as TLS is up, pipeline the small frames.  They reach the
 * server together with the end of its handshake, so the server's OpenSSL
 * reads them ahead while the socket has nothing more to report: a conn that
 * waited for the socket here would never see them (a regression test). */
static void
conn_t_client_open(conn *c, const char *peer_name, void *arg)
{
    conn_t_open(c, peer_name, arg);
    for (int i = 0; i < CONN_T_FRAMES; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "frame %d", i);
        conn_t_send(c, 'T', msg, (uint32_t)n);
    }
}

static void
conn_t_frame(conn *c, const frame_view *f, void *arg)
{
    conn_side *s = arg;
    s->frames++;
    s->bytes += f->len;
    if (f->type == 'E') {
        s->errors++;
        return;
    }
    if (f->type == 'T') {
        char want[32];
        int n = snprintf(want, sizeof(want), "frame %d", s->frames - 1);
        if (f->len != (uint32_t)n || memcmp(f->payload, want, (size_t)n) != 0)
            s->bad_payload = true;
        if (s->echo)
            conn_t_send(c, 'T', f->payload, f->len);
        else if (s->frames == CONN_T_FRAMES) {
            /* client: all echoes back; now a frame of several records */
            conn_t_send(c, 'B', conn_t_big, CONN_T_BIG);
            conn_t_send(c, 'Q', "bye", 3);
        }
    } else if (f->type == 'B') {
        if (f->len != CONN_T_BIG || memcmp(f->payload, conn_t_big, CONN_T_BIG) != 0)
            s->bad_payload = true;
        if (s->echo)
            conn_t_send(c, 'B', f->payload, f->len);
    } else if (f->type == 'Q') {
        /* the last word, then close once it has left */
        conn_fail(c, "08P01", "goodbye");
        s->said_bye = true;
    }
}

static void
conn_t_close(conn *c, const char *reason, void *arg)
{
    conn_side *s = arg;
    (void)c;
    s->closed = true;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

static const conn_ops conn_t_plain_ops = {conn_t_open, conn_t_frame, conn_t_close};
static const conn_ops conn_t_client_ops = {conn_t_client_open, conn_t_frame, conn_t_close};

/* conn.c keeps its flush and free events per process, on the base of the
 * first conn: every conn of these tests shares one base. */
static struct event_base *
conn_t_base(void)
{
    static struct event_base *base;
    if (base == NULL)
        base = event_base_new();
    return base;
}

static void
conn_t_run_ms(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_base_loopexit(conn_t_base(), &tv);
    event_base_dispatch(conn_t_base());
}

/* A client conn connected to a server conn over loopback TCP (not yet
 * through the handshake).  Returns the listening socket; close it after. */
static int
conn_t_pair(SSL_CTX *sctx, SSL_CTX *cctx, uint32_t max_frame, const conn_ops *sops, conn_side *srv,
            const conn_ops *cops, conn_side *cli)
{
    uint16_t port;
    int lfd = listen_loopback(&port);
    cli->c = conn_connect(conn_t_base(), cctx, "127.0.0.1", port, "server", max_frame, cops, cli);
    ck_assert_ptr_nonnull(cli->c);
    int fd = accept(lfd, NULL, NULL); /* the kernel completed the TCP handshake */
    ck_assert_int_ge(fd, 0);
    srv->c = conn_accept(conn_t_base(), sctx, fd, max_frame, sops, srv);
    ck_assert_ptr_nonnull(srv->c);
    return lfd;
}

static void
conn_t_wait_open(conn_side *srv, conn_side *cli)
{
    for (int i = 0; i < 100 && !(srv->opened && cli->opened); i++)
        conn_t_run_ms(20);
    ck_assert_msg(srv->opened && cli->opened, "server: %s / client: %s", srv->reason, cli->reason);
}

/* End a conn test: close what is still open, let the loop reap it, free
 * the contexts. */
static void
conn_t_finish(conn_side *srv, conn_side *cli, int lfd, SSL_CTX *sctx, SSL_CTX *cctx)
{
    if (!srv->closed && !srv->said_bye)
        conn_close(srv->c);
    if (!cli->closed && !cli->said_bye)
        conn_close(cli->c);
    conn_t_run_ms(10); /* reap */
    close(lfd);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

/* Connect a client conn to a server conn over loopback TCP and run the loop
 * until both sides are closed (or 5 s pass). */
static void
conn_exchange(SSL_CTX *sctx, SSL_CTX *cctx, conn_side *srv, conn_side *cli)
{
    struct event_base *base = conn_t_base();
    memset(srv, 0, sizeof(*srv));
    memset(cli, 0, sizeof(*cli));
    srv->echo = true;
    int lfd = conn_t_pair(sctx, cctx, 1u << 20, &conn_t_plain_ops, srv, &conn_t_client_ops, cli);

    struct timeval tick = {.tv_sec = 0, .tv_usec = 20000};
    for (int i = 0; i < 250 && !(cli->closed && (srv->closed || srv->frames > 0)); i++) {
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
    if (!srv->closed && !srv->said_bye)
        conn_close(srv->c);
    if (!cli->closed && !cli->said_bye)
        conn_close(cli->c);
    /* one more turn frees both (conns are reaped from the loop) */
    event_base_loopexit(base, &tick);
    event_base_dispatch(base);
    close(lfd);
}

/* An idle timeout that was set and then removed stays removed after the
 * conn has read (libevent re-arms a persistent event's remembered timeout
 * each time it fires); a timeout set later does fire. */
START_TEST(test_conn_read_timeout)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    conn_side srv = {0}, cli = {0};
    int lfd = conn_t_pair(sctx, cctx, 1u << 20, &conn_t_plain_ops, &srv, &conn_t_plain_ops, &cli);
    conn_set_read_timeout(srv.c, 200); /* as for a HELLO, then lifted */
    conn_t_wait_open(&srv, &cli);
    conn_set_read_timeout(srv.c, 0);
    conn_t_send(cli.c, 'T', "frame 0", 7);
    conn_t_run_ms(100);
    ck_assert_int_eq(srv.frames, 1);
    conn_t_run_ms(600); /* three times the old timeout, idle */
    ck_assert_msg(!srv.closed, "closed: %s", srv.reason);

    conn_set_read_timeout(srv.c, 100);
    for (int i = 0; i < 50 && !srv.closed; i++)
        conn_t_run_ms(20);
    ck_assert(srv.closed);
    ck_assert_str_eq(srv.reason, "timeout");
    for (int i = 0; i < 50 && !cli.closed; i++)
        conn_t_run_ms(20);
    ck_assert(cli.closed); /* the client sees the server hang up */
    conn_t_finish(&srv, &cli, lfd, sctx, cctx);
}
END_TEST

/* A paused conn stops reading once a few MiB of input wait, so the sender
 * backs up; conn_resume() then delivers everything, including what OpenSSL
 * had already read ahead. */
#define CONN_T_HELD_FRAMES 24
#define CONN_T_HELD_SIZE   (1u << 20)

static uint8_t conn_t_chunk[CONN_T_HELD_SIZE]; /* a big frame's payload */

static void
conn_t_paused_open(conn *c, const char *peer_name, void *arg)
{
    conn_t_open(c, peer_name, arg);
    conn_pause(c);
}

static void
conn_t_count(conn *c, const frame_view *f, void *arg)
{
    conn_side *s = arg;
    (void)c;
    s->frames++;
    s->bytes += f->len;
}

static const conn_ops conn_t_paused_ops = {conn_t_paused_open, conn_t_count, conn_t_close};

START_TEST(test_conn_pause_bounds_input)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    conn_side srv = {0}, cli = {0};
    int lfd = conn_t_pair(sctx, cctx, 2u << 20, &conn_t_paused_ops, &srv, &conn_t_plain_ops, &cli);
    conn_t_wait_open(&srv, &cli);
    for (int i = 0; i < CONN_T_HELD_FRAMES; i++)
        conn_t_send(cli.c, 'B', conn_t_chunk, CONN_T_HELD_SIZE);
    conn_t_run_ms(500);
    ck_assert_int_eq(srv.frames, 0);
    /* the server stopped reading: part of the 24 MiB is still queued at
     * the sender, beyond what the kernel's socket buffers hold */
    ck_assert_uint_gt(conn_pending_output(cli.c), 0);
    conn_resume(srv.c);
    for (int i = 0; i < 250 && srv.frames < CONN_T_HELD_FRAMES; i++)
        conn_t_run_ms(20);
    ck_assert_int_eq(srv.frames, CONN_T_HELD_FRAMES);
    ck_assert_uint_eq(srv.bytes, (size_t)CONN_T_HELD_FRAMES * CONN_T_HELD_SIZE);
    ck_assert_uint_eq(conn_pending_output(cli.c), 0);
    ck_assert(!srv.closed && !cli.closed);
    conn_t_finish(&srv, &cli, lfd, sctx, cctx);
}
END_TEST

/* A peer that takes none of our output for the idle timeout is dropped,
 * even though reading from it has stopped (backpressure): here the client
 * holds its frames back, so it stops reading once its input is full. */
static void
conn_t_flood_open(conn *c, const char *peer_name, void *arg)
{
    conn_t_open(c, peer_name, arg);
    for (int i = 0; i < 3 * CONN_T_HELD_FRAMES; i++)
        conn_t_send(c, 'B', conn_t_chunk, CONN_T_HELD_SIZE);
}

static const conn_ops conn_t_flood_ops = {conn_t_flood_open, conn_t_count, conn_t_close};

START_TEST(test_conn_output_timeout)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    conn_side srv = {0}, cli = {0};
    int lfd = conn_t_pair(sctx, cctx, 2u << 20, &conn_t_flood_ops, &srv, &conn_t_paused_ops, &cli);
    conn_set_read_timeout(srv.c, 200);
    for (int i = 0; i < 150 && !srv.closed; i++)
        conn_t_run_ms(20);
    ck_assert(srv.opened && cli.opened);
    ck_assert_msg(srv.closed, "the server still waits for a client that reads nothing");
    ck_assert_str_eq(srv.reason, "timeout");
    for (int i = 0; i < 50 && !cli.closed; i++)
        conn_t_run_ms(20);
    conn_t_finish(&srv, &cli, lfd, sctx, cctx);
}
END_TEST

START_TEST(test_conn_frames)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    conn_side srv, cli;
    for (size_t i = 0; i < CONN_T_BIG; i++)
        conn_t_big[i] = (uint8_t)(i * 7 + i / 251);

    conn_exchange(sctx, cctx, &srv, &cli);
    ck_assert_msg(srv.opened && cli.opened, "server: %s / client: %s", srv.reason, cli.reason);
    ck_assert_str_eq(srv.peer, "client-a");
    ck_assert_str_eq(cli.peer, "server");
    /* every frame arrived, in order, and every echo came back */
    ck_assert_int_eq(srv.frames, CONN_T_FRAMES + 2);
    ck_assert(!srv.bad_payload);
    ck_assert(!cli.bad_payload);
    /* the client saw the echoes and then the server's last frame before
     * the close: conn_fail() flushes before it closes */
    ck_assert_int_eq(cli.frames, CONN_T_FRAMES + 2);
    ck_assert_int_eq(cli.errors, 1);
    ck_assert(cli.closed);
    ck_assert(srv.said_bye);
    ck_assert(!srv.closed); /* the owner closed it: no on_close */
    SSL_CTX_free(cctx);

    /* a certificate name the server's allow-list refuses */
    cctx = make_client_ctx("ca1/intruder", "ca1/ca.crt");
    conn_exchange(sctx, cctx, &srv, &cli);
    ck_assert(srv.closed && !srv.opened);
    ck_assert_str_eq(
        srv.reason, "certificate verify failed: peer certificate name \"intruder\" is not allowed");
    ck_assert(cli.closed);
    /* TLS 1.3: the client's handshake completes before the server's
     * verdict; the alert then ends its first read */
    ck_assert_contains(cli.reason, "bad certificate");
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

/* ------------------------------------------------------------------------
 * tls_handshake_fd over loopback TCP, server in a thread
 */

typedef struct accept_arg {
    int lfd;
    SSL_CTX *ctx;
    bool ok;
    char err[512];
    char peer[64];
    char got[16];
} accept_arg;

static void *
accept_thread(void *p)
{
    accept_arg *a = p;
    int fd = accept(a->lfd, NULL, NULL);
    if (fd < 0) {
        snprintf(a->err, sizeof(a->err), "accept: %s", strerror(errno));
        return NULL;
    }
    SSL *ssl = tls_server_ssl_create(a->ctx, a->err, sizeof(a->err));
    if (ssl != NULL && SSL_set_fd(ssl, fd) == 1) {
        a->ok = tls_handshake_fd(ssl, 5000, a->err, sizeof(a->err));
        if (a->ok && !tls_peer_name(ssl, a->peer, sizeof(a->peer)))
            a->peer[0] = '\0';
        if (a->ok && SSL_read(ssl, a->got, sizeof(a->got) - 1) <= 0)
            a->ok = false;
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static int
listen_loopback(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int
connect_loopback(uint16_t port)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

START_TEST(test_handshake_fd_tcp)
{
    SSL_CTX *sctx = make_server_ctx(allowed_a, 2);
    SSL_CTX *cctx = make_client_ctx("ca1/client-a", "ca1/ca.crt");
    uint16_t port;
    int lfd = listen_loopback(&port);
    accept_arg a = {.lfd = lfd, .ctx = sctx};
    pthread_t th;
    char err[512];

    ck_assert_int_eq(pthread_create(&th, NULL, accept_thread, &a), 0);
    int fd = connect_loopback(port);
    SSL *ssl = tls_client_ssl_create(cctx, "127.0.0.1", err, sizeof(err));
    ck_assert_msg(ssl != NULL, "%s", err);
    ck_assert_int_eq(SSL_set_fd(ssl, fd), 1);
    bool ok = tls_handshake_fd(ssl, 5000, err, sizeof(err));
    ck_assert_msg(ok, "%s", err);
    ck_assert_int_eq(SSL_write(ssl, "hello", 5), 5);
    pthread_join(th, NULL);
    ck_assert_msg(a.ok, "server: %s", a.err);
    ck_assert_str_eq(a.peer, "client-a");
    ck_assert_str_eq(a.got, "hello");
    SSL_free(ssl);
    close(fd);

    /* A server that never answers: the handshake times out. */
    fd = connect_loopback(port);
    ssl = tls_client_ssl_create(cctx, "127.0.0.1", err, sizeof(err));
    ck_assert_msg(ssl != NULL, "%s", err);
    ck_assert_int_eq(SSL_set_fd(ssl, fd), 1);
    ck_assert(!tls_handshake_fd(ssl, 200, err, sizeof(err)));
    ck_assert_str_eq(err, "TLS handshake timed out after 200 ms");
    SSL_free(ssl);
    close(fd);

    /* A peer that closes at once: a readable EOF message. */
    ssl = tls_client_ssl_create(cctx, "127.0.0.1", err, sizeof(err));
    ck_assert_msg(ssl != NULL, "%s", err);
    int pair[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    close(pair[1]);
    ck_assert_int_eq(SSL_set_fd(ssl, pair[0]), 1);
    ck_assert(!tls_handshake_fd(ssl, 1000, err, sizeof(err)));
    ck_assert_msg(strstr(err, "unexpected eof") != NULL || strstr(err, "Broken pipe") != NULL ||
                      strstr(err, "end of file") != NULL,
                  "%s", err);
    SSL_free(ssl);
    close(pair[0]);

    close(lfd);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

/* ------------------------------------------------------------------------
 * Certificates and the runner
 */

static void
remove_cert_dir(void)
{
    char cmd[128];
    if (cert_dir[0] == '\0' || getpid() != main_pid)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cert_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_tls: could not remove %s\n", cert_dir);
    cert_dir[0] = '\0';
}

static bool
make_certs(void)
{
    const char *src = getenv("DTX_SRCDIR");
    char cmd[1024];
    snprintf(cert_dir, sizeof(cert_dir), "/tmp/test_tls.XXXXXX");
    if (mkdtemp(cert_dir) == NULL) {
        perror("test_tls: mkdtemp");
        cert_dir[0] = '\0';
        return false;
    }
    snprintf(cmd, sizeof(cmd),
             "'%s/tests/lib/gencerts.sh' '%s/ca1' server client-a intruder && "
             "'%s/tests/lib/gencerts.sh' '%s/ca2' client-a",
             src ? src : ".", cert_dir, src ? src : ".", cert_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_tls: could not create test certificates (%s)\n", cmd);
        return false;
    }
    return true;
}

static Suite *
tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *ok = tcase_create("accepted");
    tcase_add_test(ok, test_mutual_tls_ok);
    tcase_add_test(ok, test_tls12_ok);
    tcase_add_test(ok, test_allow_any_name);
    tcase_add_test(ok, test_server_names);
    suite_add_tcase(s, ok);

    TCase *refused = tcase_create("refused");
    tcase_add_test(refused, test_no_client_cert);
    tcase_add_test(refused, test_client_cert_other_ca);
    tcase_add_test(refused, test_name_not_allowed);
    tcase_add_test(refused, test_check_after_handshake);
    tcase_add_test(refused, test_server_host_mismatch);
    tcase_add_test(refused, test_server_untrusted);
    tcase_add_test(refused, test_old_protocol_refused);
    tcase_add_test(refused, test_setup_errors);
    suite_add_tcase(s, refused);

    TCase *io = tcase_create("io");
    tcase_set_timeout(io, 20);
    tcase_add_test(io, test_conn_frames);
    tcase_add_test(io, test_conn_read_timeout);
    tcase_add_test(io, test_conn_pause_bounds_input);
    tcase_add_test(io, test_conn_output_timeout);
    tcase_add_test(io, test_handshake_fd_tcp);
    suite_add_tcase(s, io);
    return s;
}

int
main(void)
{
    main_pid = getpid();
    /* As in the daemons: a write to a closed socket is an error, not death. */
    signal(SIGPIPE, SIG_IGN);
    atexit(remove_cert_dir);
    if (!make_certs())
        return 1;
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_cert_dir();
    return failed == 0 ? 0 : 1;
}
