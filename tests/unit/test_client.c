/*
 * test_client.c — libdtx: connection strings, and the connection and
 * request machinery against a fake coordinator.
 *
 * The fake coordinator is a thread in this process with a listening socket
 * and a blocking OpenSSL server (certificates from tests/lib/gencerts.sh in
 * a temporary directory).  Each test gives it a script: what to expect from
 * the client and what to answer, frame by frame, including answers no real
 * coordinator should give (an oversized frame, an unexpected message, a
 * connection cut right after COMMIT).  Expectations that fail in the server
 * thread are recorded and asserted by the test after joining it.
 */
#include "dtx.h"
#include "dtx_conn.h"     /* DTX_ERRBUF */
#include "dtx_conninfo.h" /* the parser */

#include "buf.h"
#include "clock.h"
#include "frame.h"
#include "proto.h"
#include "proto_repl.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static char certdir[256];  /* CA "main": coordinator, client */
static char otherdir[300]; /* another CA: coordinator */

/* ---- fixture ------------------------------------------------------------- */

static void
run_gencerts(const char *dir, const char *names)
{
    const char *src = getenv("DTX_SRCDIR");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/tests/lib/gencerts.sh %s %s", src ? src : ".", dir, names);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "test_client: \"%s\" failed (%d)\n", cmd, rc);
        abort();
    }
}

static void
certs_setup(void)
{
    snprintf(certdir, sizeof(certdir), "/tmp/dtx-test-client.XXXXXX");
    if (mkdtemp(certdir) == NULL)
        abort();
    run_gencerts(certdir, "coordinator client");
    snprintf(otherdir, sizeof(otherdir), "%s/other", certdir);
    run_gencerts(otherdir, "coordinator");
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
certs_teardown(void)
{
    if (certdir[0])
        nftw(certdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
clear_env(void)
{
    static const char *const vars[] = {
        "DTXHOST",      "DTXPORT",   "DTXSSLMODE",         "DTXSSLROOTCERT",
        "DTXSSLCERT",   "DTXSSLKEY", "DTXCONNECT_TIMEOUT", "DTXAPPNAME",
        "DTXTARGETROLE"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

/* ---- conninfo ------------------------------------------------------------ */

static bool
parse(const char *s, dtx_conninfo *ci, char *err)
{
    return dtx_conninfo_parse(s, ci, err, DTX_ERRBUF);
}

START_TEST(conninfo_defaults)
{
    clear_env();
    dtx_conninfo ci;
    char err[DTX_ERRBUF];
    ck_assert(parse(NULL, &ci, err));
    ck_assert_int_eq(ci.nhosts, 1);
    ck_assert_str_eq(ci.hosts[0], "localhost");
    ck_assert_int_eq(ci.ports[0], 6543);
    ck_assert_int_eq(ci.sslmode, DTX_SSLMODE_VERIFY_FULL);
    ck_assert_ptr_null(ci.sslrootcert);
    ck_assert_ptr_null(ci.sslcert);
    ck_assert_ptr_null(ci.sslkey);
    ck_assert_int_eq(ci.connect_timeout, 0);
    ck_assert_str_eq(ci.application_name, "");
    ck_assert_int_eq(ci.target_role, DTX_TARGET_PRIMARY);
    dtx_conninfo_free(&ci);

    /* empty values mean "default" */
    ck_assert(parse("  host='' port=''  ", &ci, err));
    ck_assert_str_eq(ci.hosts[0], "localhost");
    ck_assert_int_eq(ci.ports[0], 6543);
    dtx_conninfo_free(&ci);
}
END_TEST

START_TEST(conninfo_values)
{
    clear_env();
    dtx_conninfo ci;
    char err[DTX_ERRBUF];
    ck_assert_msg(parse("host=db1 port = 7000 sslmode=verify-ca sslrootcert='/etc/my ca.crt' "
                        "sslcert=/c.crt connect_timeout=5 application_name='it\\'s me'",
                        &ci, err),
                  "%s", err);
    ck_assert_str_eq(ci.hosts[0], "db1");
    ck_assert_int_eq(ci.ports[0], 7000);
    ck_assert_int_eq(ci.sslmode, DTX_SSLMODE_VERIFY_CA);
    ck_assert_str_eq(ci.sslrootcert, "/etc/my ca.crt");
    ck_assert_str_eq(ci.sslcert, "/c.crt");
    ck_assert_str_eq(ci.sslkey, "/c.crt"); /* the key defaults to the certificate's file */
    ck_assert_int_eq(ci.connect_timeout, 5);
    ck_assert_str_eq(ci.application_name, "it's me");
    dtx_conninfo_free(&ci);

    /* a keyword given twice takes its last value */
    ck_assert(parse("port=1 port=2", &ci, err));
    ck_assert_int_eq(ci.ports[0], 2);
    dtx_conninfo_free(&ci);
}
END_TEST

START_TEST(conninfo_env)
{
    clear_env();
    setenv("DTXHOST", "e1,e2", 1);
    setenv("DTXPORT", "7001", 1);
    setenv("DTXSSLROOTCERT", "/env/ca.crt", 1);
    setenv("DTXSSLCERT", "/env/c.crt", 1);
    setenv("DTXSSLKEY", "/env/c.key", 1);
    setenv("DTXCONNECT_TIMEOUT", "3", 1);
    setenv("DTXAPPNAME", "from-env", 1);
    dtx_conninfo ci;
    char err[DTX_ERRBUF];
    ck_assert_msg(parse("", &ci, err), "%s", err);
    ck_assert_int_eq(ci.nhosts, 2);
    ck_assert_str_eq(ci.hosts[0], "e1");
    ck_assert_str_eq(ci.hosts[1], "e2");
    ck_assert_int_eq(ci.ports[0], 7001);
    ck_assert_int_eq(ci.ports[1], 7001);
    ck_assert_str_eq(ci.sslrootcert, "/env/ca.crt");
    ck_assert_str_eq(ci.sslcert, "/env/c.crt");
    ck_assert_str_eq(ci.sslkey, "/env/c.key");
    ck_assert_int_eq(ci.connect_timeout, 3);
    ck_assert_str_eq(ci.application_name, "from-env");
    dtx_conninfo_free(&ci);

    /* the string overrides the environment */
    ck_assert(parse("host=s port=9 application_name=str", &ci, err));
    ck_assert_int_eq(ci.nhosts, 1);
    ck_assert_str_eq(ci.hosts[0], "s");
    ck_assert_int_eq(ci.ports[0], 9);
    ck_assert_str_eq(ci.application_name, "str");
    ck_assert_str_eq(ci.sslrootcert, "/env/ca.crt");
    dtx_conninfo_free(&ci);

    /* a bad value from the environment says where it came from */
    setenv("DTXPORT", "x", 1);
    ck_assert(!parse("", &ci, err));
    ck_assert_str_eq(err, "invalid port number: \"x\" (from environment variable DTXPORT)");
    ck_assert_ptr_null(ci.hosts);
}
END_TEST

START_TEST(conninfo_hosts_ports)
{
    clear_env();
    dtx_conninfo ci;
    char err[DTX_ERRBUF];
    ck_assert(parse("host=a,b,c port=1,2,3", &ci, err));
    ck_assert_int_eq(ci.nhosts, 3);
    ck_assert_str_eq(ci.hosts[2], "c");
    ck_assert_int_eq(ci.ports[0], 1);
    ck_assert_int_eq(ci.ports[1], 2);
    ck_assert_int_eq(ci.ports[2], 3);
    dtx_conninfo_free(&ci);

    ck_assert(parse("host=a,::1,10.0.0.1 port=5", &ci, err));
    ck_assert_str_eq(ci.hosts[1], "::1");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ci.ports[i], 5);
    dtx_conninfo_free(&ci);

    ck_assert(parse("host=a,b", &ci, err));
    ck_assert_int_eq(ci.ports[1], 6543);
    dtx_conninfo_free(&ci);

    ck_assert(!parse("host=a,b port=1,2,3", &ci, err));
    ck_assert_str_eq(err, "could not match 3 port numbers to 2 hosts");
    ck_assert(!parse("host=a,,b", &ci, err));
    ck_assert_str_eq(err, "empty host name in host list \"a,,b\"");
    ck_assert(!parse("host=a,b port=1,", &ci, err));
    ck_assert_str_eq(err, "invalid port number: \"\"");
}
END_TEST

START_TEST(conninfo_errors)
{
    clear_env();
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"foo=bar", "invalid connection option \"foo\""},
        {"dbname=x", "invalid connection option \"dbname\""},
        {"host", "missing \"=\" after \"host\" in connection info string"},
        {"host=a port", "missing \"=\" after \"port\" in connection info string"},
        {"=x", "missing keyword before \"=\" in connection info string"},
        {"host='abc", "unterminated quoted string in connection info string"},
        {"port=abc", "invalid port number: \"abc\""},
        {"port=0", "invalid port number: \"0\""},
        {"port=65536", "invalid port number: \"65536\""},
        {"port=-1", "invalid port number: \"-1\""},
        {"port=12x", "invalid port number: \"12x\""},
        {"sslmode=require",
         "sslmode \"require\" is not supported: dtx always verifies the coordinator's "
         "certificate (use verify-full or verify-ca)"},
        {"sslmode=disable",
         "sslmode \"disable\" is not supported: dtx always verifies the coordinator's "
         "certificate (use verify-full or verify-ca)"},
        {"sslmode=bogus", "invalid sslmode value: \"bogus\""},
        {"connect_timeout=-1",
         "invalid integer value \"-1\" for connection option \"connect_timeout\""},
        {"connect_timeout=soon",
         "invalid integer value \"soon\" for connection option \"connect_timeout\""},
        {"sslkey=/k.pem", "sslkey was given without sslcert"},
        {"target_role=standby", "invalid target_role value: \"standby\"; use primary or any"},
        {"target_role=Primary", "invalid target_role value: \"Primary\"; use primary or any"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dtx_conninfo ci;
        char err[DTX_ERRBUF];
        ck_assert_msg(!parse(cases[i].in, &ci, err), "accepted \"%s\"", cases[i].in);
        ck_assert_msg(strcmp(err, cases[i].err) == 0, "\"%s\": got '%s', want '%s'", cases[i].in,
                      err, cases[i].err);
        ck_assert_ptr_null(ci.hosts);
    }
}
END_TEST

START_TEST(conninfo_target_role)
{
    clear_env();
    dtx_conninfo ci;
    char err[DTX_ERRBUF];
    ck_assert_msg(parse("target_role=any", &ci, err), "%s", err);
    ck_assert_int_eq(ci.target_role, DTX_TARGET_ANY);
    dtx_conninfo_free(&ci);
    ck_assert(parse("target_role = 'primary'", &ci, err));
    ck_assert_int_eq(ci.target_role, DTX_TARGET_PRIMARY);
    dtx_conninfo_free(&ci);
    /* empty: the default */
    ck_assert(parse("target_role=any target_role=''", &ci, err));
    ck_assert_int_eq(ci.target_role, DTX_TARGET_PRIMARY);
    dtx_conninfo_free(&ci);

    /* the environment's default, which the string overrides */
    setenv("DTXTARGETROLE", "any", 1);
    ck_assert(parse("", &ci, err));
    ck_assert_int_eq(ci.target_role, DTX_TARGET_ANY);
    dtx_conninfo_free(&ci);
    ck_assert(parse("target_role=primary", &ci, err));
    ck_assert_int_eq(ci.target_role, DTX_TARGET_PRIMARY);
    dtx_conninfo_free(&ci);
    setenv("DTXTARGETROLE", "", 1);
    ck_assert(parse("", &ci, err));
    ck_assert_int_eq(ci.target_role, DTX_TARGET_PRIMARY);
    dtx_conninfo_free(&ci);

    /* a bad value says where it came from */
    setenv("DTXTARGETROLE", "read-write", 1);
    ck_assert(!parse("", &ci, err));
    ck_assert_str_eq(err, "invalid target_role value: \"read-write\" (from environment "
                          "variable DTXTARGETROLE); use primary or any");
    ck_assert_ptr_null(ci.hosts);
    char *why = NULL;
    ck_assert_int_eq(dtx_conninfo_check("host=a", &why), 0);
    ck_assert_str_eq(why, err);
    dtx_freemem(why);
    /* ... unless the string sets it */
    ck_assert_int_eq(dtx_conninfo_check("target_role=any", &why), 1);
    ck_assert_ptr_null(why);
    unsetenv("DTXTARGETROLE");
}
END_TEST

START_TEST(connect_bad_conninfo)
{
    clear_env();
    dtx_conn *c = dtx_connect("host=x nosuch=1");
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_str_eq(dtx_error_message(c), "invalid connection option \"nosuch\"\n");
    ck_assert_int_eq(dtx_socket(c), -1);
    /* requests on it fail cleanly */
    ck_assert_ptr_null(dtx_begin(c));
    dtx_result *r = dtx_exec(c, "a", "select 1");
    ck_assert_int_eq(dtx_result_status(r), DTX_RES_ERROR);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "08003");
    dtx_clear(r);
    ck_assert_int_eq(dtx_commit(c), DTX_ABORTED);
    /* so do the admin calls */
    r = dtx_replication(c);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "08003");
    ck_assert_ptr_null(dtx_result_replication(r));
    dtx_clear(r);
    r = dtx_promote(c, 1);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "08003");
    ck_assert_ptr_null(dtx_result_detail(r));
    dtx_clear(r);
    ck_assert_int_eq(dtx_send_promote(c, 0), 0);
    ck_assert_int_eq(dtx_send_replication(c), 0);
    ck_assert_ptr_null(dtx_promote(NULL, 0));
    ck_assert_ptr_null(dtx_replication(NULL));
    dtx_finish(c);

    c = dtx_connect("sslrootcert=/nonexistent/ca.crt");
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_str_eq(dtx_error_message(c), "could not open root certificate file "
                                           "\"/nonexistent/ca.crt\": No such file or directory\n");
    dtx_finish(c);
    ck_assert_int_eq(dtx_lib_version(), DTX_VERSION_NUM);
}
END_TEST

/* ---- the fake coordinator ------------------------------------------------ */

enum {
    SRV_TLS12_ONLY = 0x01,   /* offer TLS 1.2 at most */
    SRV_REQUIRE_CERT = 0x02, /* mutual TLS */
    SRV_OTHER_CA = 0x04,     /* certificate from another CA */
    SRV_SILENT = 0x08,       /* accept TCP, never speak TLS */
    SRV_ADMIN = 0x10,        /* expect HELLO role admin (target_role=any), not client */
};

typedef struct srv srv;
typedef void (*srv_script)(srv *s, SSL *ssl);

struct srv {
    int lfd;
    int port;
    int flags;
    SSL_CTX *ctx;
    srv_script script;
    pthread_t th;
    bool handshake_failed; /* SSL_accept failed (expected by some tests) */
    bool abrupt;           /* the script wants the TCP connection cut, no close_notify */
    char failure[512];     /* first failed expectation */
    char hello_name[128];  /* application name from HELLO */
    uint8_t *buf;          /* payload of the last frame read */
};

static void srv_fail(srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
srv_fail(srv *s, const char *fmt, ...)
{
    if (s->failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
    va_end(ap);
}

static bool
ssl_read_full(SSL *ssl, uint8_t *p, size_t n)
{
    while (n > 0) {
        int r = SSL_read(ssl, p, (int)n);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool
srv_read(srv *s, SSL *ssl, frame_view *f)
{
    uint8_t h[FRAME_HEADER_SIZE];
    if (!ssl_read_full(ssl, h, sizeof(h)))
        return false;
    uint32_t len = buf_load_u32(h + 1);
    free(s->buf);
    s->buf = malloc(len + 1);
    if (!s->buf || !ssl_read_full(ssl, s->buf, len))
        return false;
    f->type = h[0];
    f->len = len;
    f->payload = s->buf;
    return true;
}

/* Read a frame and check its type. */
static bool
srv_expect(srv *s, SSL *ssl, uint8_t type, frame_view *f)
{
    if (!srv_read(s, ssl, f)) {
        srv_fail(s, "server: connection ended while expecting '%c'", type);
        return false;
    }
    if (f->type != type) {
        srv_fail(s, "server: expected '%c', got '%c'", type, f->type);
        return false;
    }
    return true;
}

static void
srv_send(SSL *ssl, wbuf *w)
{
    size_t off = 0;
    while (off < w->len) {
        int r = SSL_write(ssl, w->data + off, (int)(w->len - off));
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    wbuf_reset(w);
}

/* Expect HELLO and answer HELLO_OK, then NEXT_GID next_gid in the same
 * write when not NULL (as the coordinator does). */
static bool
srv_hello_gid(srv *s, SSL *ssl, const char *next_gid)
{
    frame_view f;
    proto_hello h;
    if (!srv_expect(s, ssl, MSG_HELLO, &f))
        return false;
    if (!proto_get_hello(&f, &h)) {
        srv_fail(s, "server: malformed HELLO");
        return false;
    }
    uint8_t role = (s->flags & SRV_ADMIN) ? ROLE_ADMIN : ROLE_CLIENT;
    if (h.magic != PROTO_MAGIC || h.major != PROTO_MAJOR || h.role != role || h.epoch != 0)
        srv_fail(s, "server: bad HELLO fields (role %u)", h.role);
    snprintf(s->hello_name, sizeof(s->hello_name), "%s", h.name);
    wbuf w;
    wbuf_init(&w);
    proto_hello_ok ok = {
        .major = PROTO_MAJOR, .minor = PROTO_MINOR, .server_name = "coord-x", .epoch = 7};
    ck_assert(proto_put_hello_ok(&w, &ok));
    if (next_gid)
        ck_assert(proto_put_next_gid(&w, next_gid));
    srv_send(ssl, &w);
    wbuf_free(&w);
    return true;
}

static bool
srv_hello(srv *s, SSL *ssl)
{
    return srv_hello_gid(s, ssl, NULL);
}

/* Wait (up to 10 s) until the client closes. */
static void
srv_wait_eof(SSL *ssl)
{
    uint8_t b[256];
    int fd = SSL_get_fd(ssl);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 10000) > 0) {
        int r = SSL_read(ssl, b, sizeof(b));
        if (r <= 0)
            return;
    }
}

static void *
srv_main(void *arg)
{
    srv *s = arg;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0) {
        srv_fail(s, "server: no connection within 10 s");
        return NULL;
    }
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
        srv_fail(s, "server: accept: %s", strerror(errno));
        return NULL;
    }
    if (s->flags & SRV_SILENT) {
        char b[256];
        struct pollfd q = {.fd = fd, .events = POLLIN};
        while (poll(&q, 1, 10000) > 0 && read(fd, b, sizeof(b)) > 0)
            ;
        close(fd);
        return NULL;
    }
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
        s->handshake_failed = true;
        ERR_clear_error();
    } else if (s->script) {
        s->script(s, ssl);
    }
    if (!s->handshake_failed && !s->abrupt)
        SSL_shutdown(ssl);
    if (s->abrupt)
        shutdown(fd, SHUT_RDWR);
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return NULL;
}

static void
srv_start(srv *s, const char *ip, int flags, srv_script script)
{
    memset(s, 0, sizeof(*s));
    s->flags = flags;
    s->script = script;
    const char *dir = (flags & SRV_OTHER_CA) ? otherdir : certdir;
    char crt[512], key[512], ca[512];
    snprintf(crt, sizeof(crt), "%s/coordinator.crt", dir);
    snprintf(key, sizeof(key), "%s/coordinator.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", certdir);
    s->ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(s->ctx);
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    if (flags & SRV_TLS12_ONLY)
        SSL_CTX_set_max_proto_version(s->ctx, TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(s->ctx, crt), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM), 1);
    if (flags & SRV_REQUIRE_CERT) {
        ck_assert_int_eq(SSL_CTX_load_verify_locations(s->ctx, ca, NULL), 1);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }

    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s->lfd, 4), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void
srv_join(srv *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
    free(s->buf);
    ck_assert_msg(s->failure[0] == '\0', "%s", s->failure);
}

/* A conninfo for server s on host, with extra keywords. */
static const char *
conninfo(char *out, size_t outlen, const char *host, const srv *s, const char *extra)
{
    snprintf(out, outlen,
             "host=%s port=%d sslrootcert=%s/ca.crt application_name=test-app "
             "connect_timeout=10 %s",
             host, s->port, certdir, extra ? extra : "");
    return out;
}

static bool
contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* ---- scripts ------------------------------------------------------------- */

static void
script_hello_then_eof(srv *s, SSL *ssl)
{
    if (srv_hello(s, ssl))
        srv_wait_eof(ssl);
}

static void
script_refuse(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_expect(s, ssl, MSG_HELLO, &f))
        return;
    wbuf w;
    wbuf_init(&w);
    proto_error e = {.sqlstate = "28000",
                     .message = "client certificate \"mallory\" is not allowed",
                     .hint = "Add the name to client_names."};
    ck_assert(proto_put_error(&w, &e));
    srv_send(ssl, &w);
    wbuf_free(&w);
}

static void
send_begin_ok(SSL *ssl, const char *gid)
{
    wbuf w;
    wbuf_init(&w);
    ck_assert(proto_put_begin_ok(&w, gid));
    srv_send(ssl, &w);
    wbuf_free(&w);
}

static void
send_outcome(SSL *ssl, proto_outcome o, const char *gid)
{
    wbuf w;
    wbuf_init(&w);
    proto_outcome_msg m = {.outcome = (uint8_t)o, .gid = gid};
    ck_assert(proto_put_outcome(&w, &m));
    srv_send(ssl, &w);
    wbuf_free(&w);
}

#define UTF8_TEXT  "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac" /* héllo ✓ 日本 */
#define UTF8_PARAM "\303\274n\303\257code"                              /* ünïcode */

static void
send_rows(SSL *ssl)
{
    wbuf w;
    wbuf_init(&w);
    size_t st = proto_result_begin(&w, 0, "a", "SELECT 2", 2, 2);
    proto_result_column(&w, "id", 23);
    proto_result_column(&w, "name", 25);
    proto_result_rows(&w, 2);
    proto_result_value(&w, "1", 1, false);
    proto_result_value(&w, UTF8_TEXT, strlen(UTF8_TEXT), false);
    proto_result_value(&w, "2", 1, false);
    proto_result_value(&w, NULL, 0, true);
    ck_assert(proto_result_end(&w, st));
    srv_send(ssl, &w);
    wbuf_free(&w);
}

static void
send_tag(SSL *ssl, const char *participant, const char *tag, uint64_t n)
{
    wbuf w;
    wbuf_init(&w);
    size_t st = proto_result_begin(&w, 0, participant, tag, n, 0);
    proto_result_rows(&w, 0);
    ck_assert(proto_result_end(&w, st));
    srv_send(ssl, &w);
    wbuf_free(&w);
}

static void
send_error(SSL *ssl, const char *sqlstate, const char *msg, const char *detail, const char *hint,
           const char *participant)
{
    wbuf w;
    wbuf_init(&w);
    proto_error e = {.sqlstate = sqlstate,
                     .message = msg,
                     .detail = detail,
                     .hint = hint,
                     .participant = participant};
    ck_assert(proto_put_error(&w, &e));
    srv_send(ssl, &w);
    wbuf_free(&w);
}

/* BEGIN, EXEC a (params) -> rows, EXEC b -> tag, COMMIT -> COMMITTED */
static void
script_txn(srv *s, SSL *ssl)
{
    frame_view f;
    proto_stmt st;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:1");
    if (!srv_expect(s, ssl, MSG_EXEC, &f))
        return;
    if (!proto_get_exec(&f, &st)) {
        srv_fail(s, "server: malformed EXEC");
        return;
    }
    if (strcmp(st.participant, "a") != 0 || strcmp(st.sql, "SELECT $1, $2") != 0 ||
        st.nparams != 2 || st.params[0] == NULL || strcmp(st.params[0], UTF8_PARAM) != 0 ||
        st.params[1] != NULL)
        srv_fail(s, "server: EXEC fields not as sent");
    proto_stmt_clear(&st);
    send_rows(ssl);
    if (!srv_expect(s, ssl, MSG_EXEC, &f))
        return;
    if (!proto_get_exec(&f, &st) || strcmp(st.participant, "b") != 0 || st.nparams != 0)
        srv_fail(s, "server: second EXEC not as sent");
    proto_stmt_clear(&st);
    send_tag(ssl, "b", "INSERT 0 1", 1);
    if (!srv_expect(s, ssl, MSG_COMMIT, &f))
        return;
    if (f.len != 0)
        srv_fail(s, "server: COMMIT with a payload");
    send_outcome(ssl, OUTCOME_COMMITTED, "dtx:coord-x:7:1");
    srv_wait_eof(ssl);
}

/* Protocol 1.2.  HELLO_OK + NEXT_GID 7:5.  The asynchronous dtx_send_begin
 * sends a plain BEGIN (answered 7:6; the reservation stays); a dtx_begin
 * inside that transaction sends a plain BEGIN too (refused); ROLLBACK ->
 * NEXT_GID 7:5 + ABORTED.  The blocking dtx_begin's BEGIN_RESERVED {7:5}
 * arrives only with the EXEC the client sends RESERVED_PAUSE_MS later;
 * COMMIT -> NEXT_GID 7:9 + COMMITTED; then ONESHOT_RESERVED {7:9}, and the
 * connection drops. */
#define RESERVED_PAUSE_MS 300
static void
script_reserved(srv *s, SSL *ssl)
{
    frame_view f;
    const char *gid;
    wbuf w;
    if (!srv_hello_gid(s, ssl, "dtx:coord-x:7:5"))
        return;
    if (!srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:6");
    /* a second dtx_begin inside it: a plain BEGIN, though 7:5 is held */
    if (!srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_error(ssl, "25001", "a transaction is already in progress", NULL, NULL, NULL);
    if (!srv_expect(s, ssl, MSG_ROLLBACK, &f))
        return;
    wbuf_init(&w);
    proto_outcome_msg m = {.outcome = OUTCOME_ABORTED, .gid = "dtx:coord-x:7:6"};
    ck_assert(proto_put_next_gid(&w, "dtx:coord-x:7:5"));
    ck_assert(proto_put_outcome(&w, &m));
    srv_send(ssl, &w);
    int64_t t0 = clock_mono_ms();
    if (!srv_expect(s, ssl, MSG_BEGIN_RESERVED, &f))
        goto out;
    if (clock_mono_ms() - t0 < RESERVED_PAUSE_MS - 50)
        srv_fail(s, "server: BEGIN_RESERVED was sent before the statement");
    if (!proto_get_begin_reserved(&f, &gid) || strcmp(gid, "dtx:coord-x:7:5") != 0)
        srv_fail(s, "server: BEGIN_RESERVED does not name the reservation");
    if (!srv_expect(s, ssl, MSG_EXEC, &f))
        goto out;
    send_tag(ssl, "a", "UPDATE 1", 1);
    if (!srv_expect(s, ssl, MSG_COMMIT, &f))
        goto out;
    m = (proto_outcome_msg){.outcome = OUTCOME_COMMITTED, .gid = "dtx:coord-x:7:5"};
    ck_assert(proto_put_next_gid(&w, "dtx:coord-x:7:9"));
    ck_assert(proto_put_outcome(&w, &m));
    srv_send(ssl, &w);
    if (!srv_expect(s, ssl, MSG_ONESHOT_RESERVED, &f))
        goto out;
    proto_stmts body;
    if (!proto_get_oneshot_reserved(&f, &gid, &body) || strcmp(gid, "dtx:coord-x:7:9") != 0)
        srv_fail(s, "server: ONESHOT_RESERVED does not name the reservation");
    else
        proto_stmts_clear(&body);
    /* the connection breaks before the outcome: the gid is still known */
out:
    wbuf_free(&w);
}

/* BEGIN, EXEC -> ERROR, ROLLBACK -> ABORTED; BEGIN, COMMIT -> ERROR + ABORTED */
static void
script_errors(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:2");
    if (!srv_expect(s, ssl, MSG_EXEC, &f))
        return;
    send_error(ssl, "23505", "duplicate key value violates unique constraint \"t_pkey\"",
               "Key (id)=(1) already exists.", NULL, "b");
    if (!srv_expect(s, ssl, MSG_ROLLBACK, &f))
        return;
    send_outcome(ssl, OUTCOME_ABORTED, "dtx:coord-x:7:2");
    if (!srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:3");
    if (!srv_expect(s, ssl, MSG_COMMIT, &f))
        return;
    send_error(ssl, "40001", "could not serialize access due to concurrent update", NULL,
               "Retry the transaction.", "a");
    send_outcome(ssl, OUTCOME_ABORTED, "dtx:coord-x:7:3");
    srv_wait_eof(ssl);
}

/* BEGIN, COMMIT -> the connection is cut */
static void
script_drop_on_commit(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:4");
    if (!srv_expect(s, ssl, MSG_COMMIT, &f))
        return;
    s->abrupt = true;
}

/* ONESHOT -> the connection is cut */
static void
script_drop_on_oneshot(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_ONESHOT, &f))
        return;
    s->abrupt = true;
}

/* ONESHOT -> BEGIN_OK (protocol 1.1: the gid first), one RESULT, then the
 * connection is cut (as when the coordinator dies mid-commit) */
static void
script_oneshot_gid_then_drop(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_ONESHOT, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:11");
    send_tag(ssl, "a", "UPDATE 1", 1);
    usleep(200 * 1000); /* let the client see the gid before the drop */
    s->abrupt = true;
}

/* ONESHOT -> BEGIN_OK twice: a protocol violation */
static void
script_oneshot_two_gids(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_ONESHOT, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:12");
    send_begin_ok(ssl, "dtx:coord-x:7:13");
    srv_wait_eof(ssl);
}

/* BEGIN -> BEGIN_OK, then the connection is cut before anything else */
static void
script_drop_after_begin(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_begin_ok(ssl, "dtx:coord-x:7:5");
    s->abrupt = true;
}

/* BEGIN -> a header announcing 64 MB + 1 */
static void
script_oversized(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    uint8_t h[FRAME_HEADER_SIZE + 16] = {MSG_BEGIN_OK};
    buf_store_u32(h + 1, DTX_DEFAULT_MAX_FRAME + 1);
    SSL_write(ssl, h, sizeof(h));
    srv_wait_eof(ssl);
}

/* BEGIN -> a message type that is no reply to BEGIN */
static void
script_unexpected(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    send_tag(ssl, "a", "SELECT 0", 0);
    srv_wait_eof(ssl);
}

/* BEGIN -> BEGIN_OK with a malformed payload */
static void
script_malformed(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_BEGIN, &f))
        return;
    wbuf w;
    wbuf_init(&w);
    ck_assert(frame_put(&w, MSG_BEGIN_OK, "\x00\x00\x00\x09xy", 6));
    srv_send(ssl, &w);
    wbuf_free(&w);
    srv_wait_eof(ssl);
}

/* ONESHOT of two statements -> RESULT, RESULT, OUTCOME */
static void
script_oneshot(srv *s, SSL *ssl)
{
    frame_view f;
    proto_stmts b;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_ONESHOT, &f))
        return;
    if (!proto_get_oneshot(&f, &b)) {
        srv_fail(s, "server: malformed ONESHOT");
        return;
    }
    if (b.n != 2 || strcmp(b.stmts[0].participant, "a") != 0 ||
        strcmp(b.stmts[1].participant, "b") != 0 || b.stmts[1].nparams != 1 ||
        strcmp(b.stmts[1].params[0], "42") != 0)
        srv_fail(s, "server: ONESHOT statements not as sent");
    proto_stmts_clear(&b);
    send_tag(ssl, "a", "UPDATE 3", 3);
    send_rows(ssl);
    send_outcome(ssl, OUTCOME_COMMITTED, "dtx:coord-x:7:9");
    srv_wait_eof(ssl);
}

/* STATUS -> STATUS_REPLY; STATUS -> ERROR; INDOUBT -> two entries */
static void
script_admin(srv *s, SSL *ssl)
{
    frame_view f;
    const char *gid;
    wbuf w;
    wbuf_init(&w);
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_STATUS, &f))
        goto out;
    if (!proto_get_status(&f, &gid) || strcmp(gid, "dtx:coord-x:7:1") != 0)
        srv_fail(s, "server: STATUS gid not as sent");
    proto_status_reply rep = {.outcome = OUTCOME_IN_PROGRESS,
                              .gid = "dtx:coord-x:7:1",
                              .detail = "phase two: 1 of 2 participants acknowledged"};
    ck_assert(proto_put_status_reply(&w, &rep));
    srv_send(ssl, &w);
    if (!srv_expect(s, ssl, MSG_STATUS, &f))
        goto out;
    send_error(ssl, "22023", "invalid transaction id \"nonsense\"", NULL, NULL, NULL);
    if (!srv_expect(s, ssl, MSG_INDOUBT, &f))
        goto out;
    proto_indoubt_entry e[2] = {
        {.gid = "dtx:coord-x:7:1", .age_ms = 1500, .participants = "a,b", .state = "committing"},
        {.gid = "dtx:coord-x:6:9", .age_ms = 3600000, .participants = "b", .state = "recovering"},
    };
    proto_indoubt_reply ir = {.n = 2, .entries = e};
    ck_assert(proto_put_indoubt_reply(&w, &ir));
    srv_send(ssl, &w);
    srv_wait_eof(ssl);
out:
    wbuf_free(&w);
}

#define STANDBY_MSG "coordinator \"coord-x\" is a standby: transactions go to its primary"

/* A standby: a HELLO of role client is refused with 57P03, and the
 * connection closed. */
static void
script_standby(srv *s, SSL *ssl)
{
    frame_view f;
    proto_hello h;
    if (!srv_expect(s, ssl, MSG_HELLO, &f))
        return;
    if (!proto_get_hello(&f, &h) || h.role != ROLE_CLIENT)
        srv_fail(s, "server: the standby expected a HELLO of role client");
    send_error(ssl, PROTO_NOT_PRIMARY_SQLSTATE, STANDBY_MSG, NULL, "Connect to its primary.", NULL);
}

static void
put_replication(wbuf *w, uint8_t role, const char *state)
{
    proto_replication rep = {.role = role,
                             .epoch = 7,
                             .name = "coord-x",
                             .peer = role == 2 ? "coord-a:6543" : "",
                             .state = state,
                             .sent = 0x1000000a0ull,
                             .flushed = 0x100000090ull,
                             .primary_lsn = 0x1000000a0ull,
                             .lag_bytes = 16,
                             .lag_ms = 3,
                             .synchronous = role == 2,
                             .sure = 0,
                             .detail = "not caught up yet"};
    ck_assert(proto_put_replication_reply(w, &rep));
}

/* target_role=any.  REPLICATION -> REPLICATION_REPLY (standby); PROMOTE ->
 * ERROR (not sure); PROMOTE force -> ADMIN_OK; REPLICATION ->
 * REPLICATION_REPLY (primary) */
static void
script_repl(srv *s, SSL *ssl)
{
    frame_view f;
    bool force;
    wbuf w;
    wbuf_init(&w);
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_REPLICATION, &f))
        goto out;
    if (f.len != 0)
        srv_fail(s, "server: REPLICATION with a payload");
    put_replication(&w, 2, "streaming");
    srv_send(ssl, &w);
    if (!srv_expect(s, ssl, MSG_PROMOTE, &f))
        goto out;
    if (!proto_get_promote(&f, &force) || force)
        srv_fail(s, "server: expected PROMOTE without force");
    send_error(
        ssl, "55000", "standby \"coord-x\" cannot be sure it holds every acknowledged decision",
        "It had not caught up with its primary.", "Promote it with --force to accept that.", NULL);
    if (!srv_expect(s, ssl, MSG_PROMOTE, &f))
        goto out;
    if (!proto_get_promote(&f, &force) || !force)
        srv_fail(s, "server: expected PROMOTE with force");
    ck_assert(proto_put_admin_ok(&w, "coordinator \"coord-x\" is now the primary (epoch 8)"));
    srv_send(ssl, &w);
    if (!srv_expect(s, ssl, MSG_REPLICATION, &f))
        goto out;
    put_replication(&w, 1, "no standby");
    srv_send(ssl, &w);
    srv_wait_eof(ssl);
out:
    wbuf_free(&w);
}

/* PROMOTE -> the connection is cut */
static void
script_drop_on_promote(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_PROMOTE, &f))
        return;
    s->abrupt = true;
}

/* PROMOTE -> STATUS_REPLY, which answers something else */
static void
script_promote_wrong_reply(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_PROMOTE, &f))
        return;
    wbuf w;
    wbuf_init(&w);
    proto_status_reply rep = {.outcome = OUTCOME_COMMITTED, .gid = "g", .detail = ""};
    ck_assert(proto_put_status_reply(&w, &rep));
    srv_send(ssl, &w);
    wbuf_free(&w);
    srv_wait_eof(ssl);
}

/* REPLICATION -> a REPLICATION_REPLY cut after its role byte */
static void
script_replication_malformed(srv *s, SSL *ssl)
{
    frame_view f;
    if (!srv_hello(s, ssl) || !srv_expect(s, ssl, MSG_REPLICATION, &f))
        return;
    wbuf w;
    wbuf_init(&w);
    ck_assert(frame_put(&w, MSG_REPLICATION_REPLY, "\x02", 1));
    srv_send(ssl, &w);
    wbuf_free(&w);
    srv_wait_eof(ssl);
}

/* ---- connection tests ---------------------------------------------------- */

START_TEST(handshake_ok)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", _i ? SRV_TLS12_ONLY : 0, script_hello_then_eof);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "localhost", &s, NULL));
    ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));
    ck_assert_str_eq(dtx_error_message(c), "");
    ck_assert_str_eq(dtx_server_name(c), "coord-x");
    ck_assert_str_eq(dtx_host(c), "localhost");
    ck_assert_int_eq(dtx_port(c), s.port);
    ck_assert_int_ge(dtx_socket(c), 0);
    ck_assert_ptr_null(dtx_gid(c));
    dtx_finish(c);
    srv_join(&s);
    ck_assert_str_eq(s.hello_name, "test-app");
}
END_TEST

START_TEST(handshake_ip_literal)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", 0, script_hello_then_eof);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "127.0.0.1", &s, NULL));
    ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(server_refuses)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", 0, script_refuse);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "localhost", &s, NULL));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_msg(contains(dtx_error_message(c),
                           "the coordinator refused the connection: client certificate "
                           "\"mallory\" is not allowed (SQLSTATE 28000)"),
                  "%s", dtx_error_message(c));
    ck_assert_msg(contains(dtx_error_message(c), "connection to coordinator at \"localhost\""),
                  "%s", dtx_error_message(c));
    ck_assert_int_eq(dtx_socket(c), -1);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(multi_host_failover)
{
    clear_env();
    /* first host: nothing listens; second: refuses; third: accepts */
    int dead = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(dead, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(dead, (struct sockaddr *)&a, &len);
    int dead_port = ntohs(a.sin_port);
    srv s1, s2;
    srv_start(&s1, "127.0.0.1", 0, script_refuse);
    srv_start(&s2, "127.0.0.1", 0, script_hello_then_eof);
    char ci[4096];
    snprintf(ci, sizeof(ci),
             "host=127.0.0.1,localhost,localhost port=%d,%d,%d sslrootcert=%s/ca.crt "
             "connect_timeout=10",
             dead_port, s1.port, s2.port, certdir);
    dtx_conn *c = dtx_connect(ci);
    ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));
    ck_assert_int_eq(dtx_port(c), s2.port);
    dtx_finish(c);
    srv_join(&s1);
    srv_join(&s2);

    /* all fail: one line per host */
    c = dtx_connect(ci);
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    const char *m = dtx_error_message(c);
    ck_assert_msg(contains(m, "Connection refused"), "%s", m);
    int lines = 0;
    for (const char *p = m; *p; p++)
        lines += *p == '\n';
    ck_assert_int_ge(lines, 3);
    dtx_finish(c);
    close(dead);
}
END_TEST

START_TEST(wrong_server_name)
{
    clear_env();
    /* 127.0.0.2 is not among the certificate's names (IP:127.0.0.1) */
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.2", 0, NULL);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "127.0.0.2", &s, NULL));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_msg(contains(dtx_error_message(c), "certificate verify failed") &&
                      contains(dtx_error_message(c), "IP address mismatch"),
                  "%s", dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);
    ck_assert(s.handshake_failed);

    /* verify-ca checks the chain only, so the same server is accepted */
    srv_start(&s, "127.0.0.2", 0, script_hello_then_eof);
    c = dtx_connect(conninfo(ci, sizeof(ci), "127.0.0.2", &s, "sslmode=verify-ca"));
    ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(wrong_ca)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", SRV_OTHER_CA, NULL);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "localhost", &s, "sslmode=verify-ca"));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_msg(contains(dtx_error_message(c), "certificate verify failed: unable to get "
                                                 "local issuer certificate"),
                  "%s", dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(client_certificate)
{
    clear_env();
    srv s;
    char ci[4096], extra[1024];
    /* without a certificate the coordinator's TLS layer refuses us */
    srv_start(&s, "127.0.0.1", SRV_REQUIRE_CERT, script_hello_then_eof);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "localhost", &s, NULL));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_msg(contains(dtx_error_message(c), "certificate required"), "%s",
                  dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);

    snprintf(extra, sizeof(extra), "sslcert=%s/client.crt sslkey=%s/client.key", certdir, certdir);
    srv_start(&s, "127.0.0.1", SRV_REQUIRE_CERT, script_hello_then_eof);
    c = dtx_connect(conninfo(ci, sizeof(ci), "localhost", &s, extra));
    ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(connect_timeout)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", SRV_SILENT, NULL);
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d sslrootcert=%s/ca.crt connect_timeout=1",
             s.port, certdir);
    int64_t t0 = clock_mono_ms();
    dtx_conn *c = dtx_connect(ci);
    int64_t took = clock_mono_ms() - t0;
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_msg(contains(dtx_error_message(c), "timeout expired"), "%s", dtx_error_message(c));
    ck_assert_int_ge(took, 900);
    ck_assert_int_lt(took, 5000);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

/* ---- request tests ------------------------------------------------------- */

static dtx_conn *
connect_ok(srv *s, srv_script script)
{
    char ci[4096];
    srv_start(s, "127.0.0.1", 0, script);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "localhost", s, NULL));
    ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));
    return c;
}

START_TEST(txn_commit)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_txn);
    const char *gid = dtx_begin(c);
    ck_assert_msg(gid != NULL, "%s", dtx_error_message(c));
    ck_assert_str_eq(gid, "dtx:coord-x:7:1");
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:1");

    const char *params[2] = {UTF8_PARAM, NULL};
    dtx_result *r = dtx_exec_params(c, "a", "SELECT $1, $2", 2, params);
    ck_assert_int_eq(dtx_result_status(r), DTX_RES_OK);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_STATEMENT);
    ck_assert_str_eq(dtx_result_participant(r), "a");
    ck_assert_int_eq(dtx_ntuples(r), 2);
    ck_assert_int_eq(dtx_nfields(r), 2);
    ck_assert_str_eq(dtx_fname(r, 0), "id");
    ck_assert_str_eq(dtx_fname(r, 1), "name");
    ck_assert_ptr_null(dtx_fname(r, 2));
    ck_assert_uint_eq(dtx_ftype(r, 0), 23);
    ck_assert_uint_eq(dtx_ftype(r, 1), 25);
    ck_assert_str_eq(dtx_getvalue(r, 0, 0), "1");
    ck_assert_str_eq(dtx_getvalue(r, 0, 1), UTF8_TEXT);
    ck_assert_int_eq(dtx_getlength(r, 0, 1), (int)strlen(UTF8_TEXT));
    ck_assert_int_eq(dtx_getisnull(r, 0, 1), 0);
    ck_assert_int_eq(dtx_getisnull(r, 1, 1), 1);
    ck_assert_str_eq(dtx_getvalue(r, 1, 1), "");
    ck_assert_int_eq(dtx_getlength(r, 1, 1), 0);
    ck_assert_ptr_null(dtx_getvalue(r, 2, 0));
    ck_assert_ptr_null(dtx_getvalue(r, -1, 0));
    ck_assert_str_eq(dtx_cmd_status(r), "SELECT 2");
    ck_assert_uint_eq(dtx_cmd_tuples(r), 2);
    ck_assert_ptr_null(dtx_result_error_field(r, DTX_DIAG_SQLSTATE));
    ck_assert_int_eq(dtx_result_outcome(r), -1);

    dtx_result *r2 = dtx_exec(c, "b", "INSERT INTO t VALUES (1)");
    ck_assert_int_eq(dtx_result_status(r2), DTX_RES_OK);
    ck_assert_str_eq(dtx_cmd_status(r2), "INSERT 0 1");
    ck_assert_uint_eq(dtx_cmd_tuples(r2), 1);
    ck_assert_int_eq(dtx_nfields(r2), 0);
    ck_assert_int_eq(dtx_ntuples(r2), 0);
    dtx_clear(r2);

    ck_assert_int_eq(dtx_commit(c), DTX_COMMITTED);
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:1");
    ck_assert_ptr_null(dtx_error_field(c, DTX_DIAG_SQLSTATE));
    dtx_finish(c);
    /* results outlive their connection */
    ck_assert_str_eq(dtx_getvalue(r, 0, 1), UTF8_TEXT);
    dtx_clear(r);
    srv_join(&s);
}
END_TEST

START_TEST(reserved_gids)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_reserved);
    /* asynchronous: a plain BEGIN, its result from the socket */
    ck_assert(dtx_send_begin(c));
    dtx_result *r = dtx_get_result(c);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_BEGIN);
    ck_assert_str_eq(dtx_result_gid(r), "dtx:coord-x:7:6");
    dtx_clear(r);
    ck_assert_ptr_null(dtx_get_result(c));
    /* inside a transaction: not the reservation; the refusal keeps the gid,
     * and a ONESHOT is refused without being sent */
    ck_assert_ptr_null(dtx_begin(c));
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "25001");
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:6");
    dtx_stmt in[1] = {{"a", "UPDATE t SET x = 0", 0, NULL}};
    ck_assert_int_eq(dtx_oneshot(c, in, 1, NULL, NULL), DTX_ABORTED);
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:6");
    ck_assert_int_eq(dtx_rollback(c), DTX_ABORTED);
    /* blocking: the reserved gid at once; the BEGIN_RESERVED leaves with
     * the statement (the server checks it waited for it) */
    const char *gid = dtx_begin(c);
    ck_assert_msg(gid != NULL, "%s", dtx_error_message(c));
    ck_assert_str_eq(gid, "dtx:coord-x:7:5");
    usleep(RESERVED_PAUSE_MS * 1000);
    r = dtx_exec(c, "a", "UPDATE t SET x = 1");
    ck_assert_int_eq(dtx_result_status(r), DTX_RES_OK);
    dtx_clear(r);
    ck_assert_int_eq(dtx_commit(c), DTX_COMMITTED);
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:5");
    dtx_stmt st[1] = {{"a", "UPDATE t SET x = 2", 0, NULL}};
    ck_assert_int_eq(dtx_oneshot(c, st, 1, NULL, NULL), DTX_UNKNOWN);
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:9");
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(txn_errors)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_errors);
    ck_assert_ptr_nonnull(dtx_begin(c));
    dtx_result *r = dtx_exec(c, "b", "INSERT INTO t VALUES (1)");
    ck_assert_int_eq(dtx_result_status(r), DTX_RES_ERROR);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_ERROR);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "23505");
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_MESSAGE),
                     "duplicate key value violates unique constraint \"t_pkey\"");
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_DETAIL), "Key (id)=(1) already exists.");
    ck_assert_ptr_null(dtx_result_error_field(r, DTX_DIAG_HINT));
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_PARTICIPANT), "b");
    ck_assert_str_eq(dtx_result_participant(r), "b");
    ck_assert_int_eq(dtx_ntuples(r), 0);
    dtx_clear(r);
    ck_assert_int_eq(dtx_rollback(c), DTX_ABORTED);
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:2");

    ck_assert_str_eq(dtx_begin(c), "dtx:coord-x:7:3");
    ck_assert_int_eq(dtx_commit(c), DTX_ABORTED);
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "40001");
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_HINT), "Retry the transaction.");
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_PARTICIPANT), "a");
    ck_assert_str_eq(dtx_error_message(c), "could not serialize access due to concurrent update\n");
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(commit_connection_lost)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_drop_on_commit);
    ck_assert_ptr_nonnull(dtx_begin(c));
    ck_assert_int_eq(dtx_commit(c), DTX_UNKNOWN);
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:4");
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "08006");
    ck_assert_msg(contains(dtx_error_message(c), "lost the connection to the coordinator"), "%s",
                  dtx_error_message(c));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    /* asking again cannot turn it into a guess */
    ck_assert_int_eq(dtx_commit(c), DTX_UNKNOWN);
    ck_assert_int_eq(dtx_rollback(c), DTX_UNKNOWN);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(commit_connection_lost_async)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_drop_on_commit);
    ck_assert_ptr_nonnull(dtx_begin(c));
    ck_assert_int_eq(dtx_send_commit(c), 1);
    dtx_result *r = dtx_get_result(c);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_ERROR);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "08006");
    dtx_clear(r);
    r = dtx_get_result(c);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_OUTCOME);
    ck_assert_int_eq(dtx_result_outcome(r), DTX_UNKNOWN);
    ck_assert_str_eq(dtx_result_gid(r), "dtx:coord-x:7:4");
    dtx_clear(r);
    ck_assert_ptr_null(dtx_get_result(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(oneshot_connection_lost)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_drop_on_oneshot);
    dtx_stmt st[1] = {{.participant = "a", .sql = "UPDATE t SET x = 1"}};
    dtx_result **res;
    int n;
    ck_assert_int_eq(dtx_oneshot(c, st, 1, &res, &n), DTX_UNKNOWN);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(dtx_result_error_field(res[0], DTX_DIAG_SQLSTATE), "08006");
    ck_assert_ptr_null(res[1]);
    ck_assert_ptr_null(dtx_gid(c));
    dtx_results_free(res);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

static void wait_fd(int fd, short events);

/* The coordinator names a oneshot's gid before running it: a connection
 * lost mid-commit still leaves dtx_gid() set, in the UNKNOWN outcome too. */
START_TEST(oneshot_gid_before_outcome)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_oneshot_gid_then_drop);
    dtx_stmt st[1] = {{.participant = "a", .sql = "UPDATE t SET x = 1"}};
    dtx_result **res;
    int n;
    ck_assert_int_eq(dtx_oneshot(c, st, 1, &res, &n), DTX_UNKNOWN);
    ck_assert_int_eq(n, 2); /* the statement's result, then 08006; no result for BEGIN_OK */
    ck_assert_int_eq(dtx_result_kind(res[0]), DTX_KIND_STATEMENT);
    ck_assert_str_eq(dtx_result_error_field(res[1], DTX_DIAG_SQLSTATE), "08006");
    ck_assert_ptr_nonnull(dtx_gid(c));
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:11");
    dtx_results_free(res);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(oneshot_gid_before_outcome_async)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_oneshot_gid_then_drop);
    dtx_stmt st[1] = {{.participant = "a", .sql = "UPDATE t SET x = 1"}};
    ck_assert_int_eq(dtx_send_oneshot(c, st, 1), 1);
    ck_assert_ptr_null(dtx_gid(c));
    int fl;
    while ((fl = dtx_flush(c)) == 1)
        wait_fd(dtx_socket(c), POLLOUT | POLLIN);
    ck_assert_int_eq(fl, 0);
    /* the gid arrives before the outcome, while the request is still busy */
    while (dtx_gid(c) == NULL) {
        wait_fd(dtx_socket(c), POLLIN);
        ck_assert_int_eq(dtx_consume_input(c), 1);
    }
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:11");
    dtx_result *got[4] = {0};
    int n = 0;
    for (;;) {
        dtx_result *r = dtx_get_result(c); /* blocks until the drop */
        if (r == NULL)
            break;
        ck_assert_int_lt(n, 4);
        got[n++] = r;
    }
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(dtx_result_kind(got[0]), DTX_KIND_STATEMENT);
    ck_assert_str_eq(dtx_result_error_field(got[1], DTX_DIAG_SQLSTATE), "08006");
    ck_assert_int_eq(dtx_result_outcome(got[2]), DTX_UNKNOWN);
    ck_assert_str_eq(dtx_result_gid(got[2]), "dtx:coord-x:7:11");
    for (int i = 0; i < n; i++)
        dtx_clear(got[i]);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(oneshot_second_gid)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_oneshot_two_gids);
    dtx_stmt st[1] = {{.participant = "a", .sql = "UPDATE t SET x = 1"}};
    ck_assert_int_eq(dtx_oneshot(c, st, 1, NULL, NULL), DTX_UNKNOWN);
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "08P01");
    ck_assert_msg(contains(dtx_error_message(c), "second message 'b' in reply to ONESHOT"), "%s",
                  dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(lost_before_commit)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_drop_after_begin);
    ck_assert_ptr_nonnull(dtx_begin(c));
    dtx_result *r = dtx_exec(c, "a", "UPDATE t SET x = 1");
    ck_assert_int_eq(dtx_result_status(r), DTX_RES_ERROR);
    /* 08003 when the loss was noticed before sending, 08006 after */
    const char *state = dtx_result_error_field(r, DTX_DIAG_SQLSTATE);
    ck_assert_msg(strcmp(state, "08003") == 0 || strcmp(state, "08006") == 0, "%s", state);
    dtx_clear(r);
    /* COMMIT was never sent: the transaction certainly did not commit */
    ck_assert_int_eq(dtx_commit(c), DTX_ABORTED);
    ck_assert_msg(contains(dtx_error_message(c), "COMMIT was not sent"), "%s",
                  dtx_error_message(c));
    ck_assert_int_eq(dtx_rollback(c), DTX_ABORTED);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(oversized_frame)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_oversized);
    ck_assert_ptr_null(dtx_begin(c));
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "08P01");
    char want[128];
    snprintf(want, sizeof(want), "frame of %u bytes, more than the limit of %u bytes",
             DTX_DEFAULT_MAX_FRAME + 1, DTX_DEFAULT_MAX_FRAME);
    ck_assert_msg(contains(dtx_error_message(c), want), "%s", dtx_error_message(c));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(unexpected_reply)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_unexpected);
    ck_assert_ptr_null(dtx_begin(c));
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "08P01");
    ck_assert_msg(contains(dtx_error_message(c),
                           "protocol violation: unexpected message 'R' in reply to BEGIN"),
                  "%s", dtx_error_message(c));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    dtx_finish(c);
    srv_join(&s);

    c = connect_ok(&s, script_malformed);
    ck_assert_ptr_null(dtx_begin(c));
    ck_assert_msg(contains(dtx_error_message(c), "protocol violation: malformed message 'b'"), "%s",
                  dtx_error_message(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(status_and_indoubt)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_admin);
    char *detail = NULL;
    ck_assert_int_eq(dtx_outcome_of(c, "dtx:coord-x:7:1", &detail), DTX_GID_IN_PROGRESS);
    ck_assert_str_eq(detail, "phase two: 1 of 2 participants acknowledged");
    dtx_freemem(detail);
    ck_assert_int_eq(dtx_outcome_of(c, "nonsense", &detail), DTX_GID_ERROR);
    ck_assert_ptr_null(detail);
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "22023");

    dtx_result *r = dtx_indoubt(c);
    ck_assert_int_eq(dtx_result_status(r), DTX_RES_OK);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_INDOUBT);
    ck_assert_int_eq(dtx_nfields(r), 4);
    ck_assert_int_eq(dtx_ntuples(r), 2);
    ck_assert_str_eq(dtx_fname(r, 1), "age_ms");
    ck_assert_uint_eq(dtx_ftype(r, 1), 20);
    ck_assert_str_eq(dtx_getvalue(r, 0, 0), "dtx:coord-x:7:1");
    ck_assert_str_eq(dtx_getvalue(r, 1, 1), "3600000");
    ck_assert_str_eq(dtx_getvalue(r, 0, 2), "a,b");
    ck_assert_str_eq(dtx_getvalue(r, 1, 3), "recovering");
    dtx_clear(r);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

static int
count_lines(const char *m)
{
    int lines = 0;
    for (const char *p = m; *p; p++)
        lines += *p == '\n';
    return lines;
}

/* One host, a standby: its message and SQLSTATE, in the message and in
 * dtx_error_field(). */
START_TEST(standby_single_host)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", 0, script_standby);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "127.0.0.1", &s, NULL));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    char want[512];
    snprintf(want, sizeof(want),
             "connection to coordinator at \"127.0.0.1\", port %d failed: the coordinator "
             "refused the connection: " STANDBY_MSG " (SQLSTATE 57P03)\n",
             s.port);
    ck_assert_str_eq(dtx_error_message(c), want);
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), PROTO_NOT_PRIMARY_SQLSTATE);
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_MESSAGE), STANDBY_MSG);
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_HINT), "Connect to its primary.");
    ck_assert_int_eq(dtx_socket(c), -1);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

/* A host list whose first coordinator is a standby: the second, the
 * primary, is used — with the blocking and with the non-blocking connect. */
START_TEST(standby_then_primary)
{
    clear_env();
    srv sb, pr;
    char ci[4096];
    for (int async = 0; async <= 1; async++) {
        srv_start(&sb, "127.0.0.1", 0, script_standby);
        srv_start(&pr, "127.0.0.1", 0, script_hello_then_eof);
        snprintf(ci, sizeof(ci),
                 "host=localhost,localhost port=%d,%d sslrootcert=%s/ca.crt connect_timeout=10",
                 sb.port, pr.port, certdir);
        dtx_conn *c;
        if (async) {
            c = dtx_connect_start(ci);
            dtx_poll st = DTX_POLL_WRITING;
            while (st != DTX_POLL_OK && st != DTX_POLL_FAILED) {
                wait_fd(dtx_socket(c), st == DTX_POLL_WRITING ? POLLOUT : POLLIN);
                st = dtx_connect_poll(c);
            }
        } else {
            c = dtx_connect(ci);
        }
        ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));
        ck_assert_int_eq(dtx_port(c), pr.port);
        ck_assert_str_eq(dtx_error_message(c), "");
        ck_assert_ptr_null(dtx_error_field(c, DTX_DIAG_SQLSTATE)); /* the refusal is forgotten */
        dtx_finish(c);
        srv_join(&sb);
        srv_join(&pr);
    }
}
END_TEST

/* Every host a standby (or gone): one line per host, each with its reason. */
START_TEST(standby_every_host)
{
    clear_env();
    int dead = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(dead, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(dead, (struct sockaddr *)&a, &len);
    srv s1, s2;
    srv_start(&s1, "127.0.0.1", 0, script_standby);
    srv_start(&s2, "127.0.0.1", 0, script_standby);
    char ci[4096];
    snprintf(ci, sizeof(ci),
             "host=127.0.0.1,127.0.0.1,127.0.0.1 port=%d,%d,%d sslrootcert=%s/ca.crt "
             "connect_timeout=10",
             s1.port, ntohs(a.sin_port), s2.port, certdir);
    dtx_conn *c = dtx_connect(ci);
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    const char *m = dtx_error_message(c);
    ck_assert_int_eq(count_lines(m), 3);
    char l1[512], l3[512];
    snprintf(l1, sizeof(l1),
             "connection to coordinator at \"127.0.0.1\", port %d failed: the coordinator "
             "refused the connection: " STANDBY_MSG " (SQLSTATE 57P03)\n",
             s1.port);
    snprintf(l3, sizeof(l3),
             "connection to coordinator at \"127.0.0.1\", port %d failed: the coordinator "
             "refused the connection: " STANDBY_MSG " (SQLSTATE 57P03)\n",
             s2.port);
    ck_assert_msg(strncmp(m, l1, strlen(l1)) == 0, "%s", m);
    ck_assert_msg(contains(m, "Connection refused\n"), "%s", m);
    ck_assert_msg(strlen(m) > strlen(l3) && strcmp(m + strlen(m) - strlen(l3), l3) == 0, "%s", m);
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_SQLSTATE), "57P03");
    dtx_finish(c);
    srv_join(&s1);
    srv_join(&s2);
    close(dead);
}
END_TEST

/* target_role=any: HELLO of role admin; REPLICATION and PROMOTE, blocking
 * and not. */
START_TEST(replication_and_promote)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", SRV_ADMIN, script_repl);
    dtx_conn *c = dtx_connect(conninfo(ci, sizeof(ci), "localhost", &s, "target_role=any"));
    ck_assert_msg(dtx_status(c) == DTX_CONNECTION_OK, "%s", dtx_error_message(c));

    dtx_result *rs = dtx_replication(c);
    ck_assert_int_eq(dtx_result_status(rs), DTX_RES_OK);
    ck_assert_int_eq(dtx_result_kind(rs), DTX_KIND_REPLICATION);
    ck_assert_ptr_null(dtx_result_detail(rs));
    ck_assert_int_eq(dtx_ntuples(rs), 0);

    dtx_result *r = dtx_promote(c, 0);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_ERROR);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "55000");
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_HINT),
                     "Promote it with --force to accept that.");
    ck_assert_str_eq(dtx_error_field(c, DTX_DIAG_DETAIL), "It had not caught up with its primary.");
    ck_assert_ptr_null(dtx_result_replication(r));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_OK);
    dtx_clear(r);

    r = dtx_promote(c, 1);
    ck_assert_int_eq(dtx_result_status(r), DTX_RES_OK);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_ADMIN);
    ck_assert_str_eq(dtx_result_detail(r), "coordinator \"coord-x\" is now the primary (epoch 8)");
    ck_assert_ptr_null(dtx_error_field(c, DTX_DIAG_SQLSTATE));
    dtx_clear(r);

    ck_assert_int_eq(dtx_send_replication(c), 1);
    ck_assert_int_eq(dtx_send_promote(c, 1), 0); /* one request at a time */
    r = dtx_get_result(c);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_REPLICATION);
    ck_assert_int_eq(dtx_result_replication(r)->role, DTX_ROLE_PRIMARY);
    ck_assert_str_eq(dtx_result_replication(r)->peer, "");
    ck_assert_int_eq(dtx_result_replication(r)->synchronous, 0);
    ck_assert_ptr_null(dtx_get_result(c));
    dtx_clear(r);
    dtx_finish(c);
    srv_join(&s);

    /* the first result outlives its connection */
    const dtx_replication_info *ri = dtx_result_replication(rs);
    ck_assert_int_eq(ri->role, DTX_ROLE_STANDBY);
    ck_assert_uint_eq(ri->epoch, 7);
    ck_assert_str_eq(ri->name, "coord-x");
    ck_assert_str_eq(ri->peer, "coord-a:6543");
    ck_assert_str_eq(ri->state, "streaming");
    ck_assert_uint_eq(ri->sent_lsn, 0x1000000a0ull);
    ck_assert_uint_eq(ri->flushed_lsn, 0x100000090ull);
    ck_assert_uint_eq(ri->primary_lsn, 0x1000000a0ull);
    ck_assert_uint_eq(ri->lag_bytes, 16);
    ck_assert_uint_eq(ri->lag_ms, 3);
    ck_assert_int_eq(ri->synchronous, 1);
    ck_assert_int_eq(ri->sure, 0);
    ck_assert_str_eq(ri->detail, "not caught up yet");
    dtx_clear(rs);
}
END_TEST

START_TEST(admin_failures)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_drop_on_promote);
    dtx_result *r = dtx_promote(c, 1);
    ck_assert_int_eq(dtx_result_kind(r), DTX_KIND_ERROR);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "08006");
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_BAD);
    ck_assert_ptr_null(dtx_get_result(c));
    dtx_clear(r);
    dtx_finish(c);
    srv_join(&s);

    c = connect_ok(&s, script_promote_wrong_reply);
    r = dtx_promote(c, 0);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "08P01");
    ck_assert_msg(contains(dtx_error_message(c),
                           "protocol violation: unexpected message 'T' in reply to PROMOTE"),
                  "%s", dtx_error_message(c));
    dtx_clear(r);
    dtx_finish(c);
    srv_join(&s);

    c = connect_ok(&s, script_replication_malformed);
    r = dtx_replication(c);
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "08P01");
    ck_assert_msg(contains(dtx_error_message(c),
                           "protocol violation: malformed message 'v' in reply to REPLICATION"),
                  "%s", dtx_error_message(c));
    dtx_clear(r);
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

/* Wait up to 10 s for fd; ck-fails on time-out. */
static void
wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
}

START_TEST(async_oneshot)
{
    clear_env();
    srv s;
    char ci[4096];
    srv_start(&s, "127.0.0.1", 0, script_oneshot);
    dtx_conn *c = dtx_connect_start(conninfo(ci, sizeof(ci), "localhost", &s, NULL));
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_STARTED);
    dtx_poll st = DTX_POLL_WRITING;
    int polls = 0;
    while (st != DTX_POLL_OK && st != DTX_POLL_FAILED) {
        wait_fd(dtx_socket(c), st == DTX_POLL_WRITING ? POLLOUT : POLLIN);
        st = dtx_connect_poll(c);
        polls++;
    }
    ck_assert_msg(st == DTX_POLL_OK, "%s", dtx_error_message(c));
    ck_assert_int_ge(polls, 2); /* it did not block through the handshake */

    const char *p42[1] = {"42"};
    dtx_stmt stmts[2] = {{.participant = "a", .sql = "UPDATE t SET x = x + 1"},
                         {.participant = "b", .sql = "SELECT $1", .nparams = 1, .params = p42}};
    ck_assert_int_eq(dtx_send_oneshot(c, stmts, 2), 1);
    /* one request at a time */
    ck_assert_int_eq(dtx_send_begin(c), 0);
    ck_assert_msg(contains(dtx_error_message(c), "another request is already in progress"), "%s",
                  dtx_error_message(c));
    int fl;
    while ((fl = dtx_flush(c)) == 1)
        wait_fd(dtx_socket(c), POLLOUT | POLLIN);
    ck_assert_int_eq(fl, 0);

    dtx_result *got[4] = {0};
    int n = 0;
    for (;;) {
        while (!dtx_is_busy(c)) {
            dtx_result *r = dtx_get_result(c);
            if (r == NULL)
                goto done;
            ck_assert_int_lt(n, 4);
            got[n++] = r;
        }
        wait_fd(dtx_socket(c), POLLIN);
        ck_assert_int_eq(dtx_consume_input(c), 1);
    }
done:
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(dtx_cmd_status(got[0]), "UPDATE 3");
    ck_assert_str_eq(dtx_result_participant(got[0]), "a");
    ck_assert_int_eq(dtx_ntuples(got[1]), 2);
    ck_assert_int_eq(dtx_result_kind(got[2]), DTX_KIND_OUTCOME);
    ck_assert_int_eq(dtx_result_outcome(got[2]), DTX_COMMITTED);
    ck_assert_str_eq(dtx_result_gid(got[2]), "dtx:coord-x:7:9");
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:9");
    for (int i = 0; i < n; i++)
        dtx_clear(got[i]);
    ck_assert_int_eq(dtx_is_busy(c), 0);
    ck_assert_ptr_null(dtx_get_result(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(sync_oneshot)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_oneshot);
    const char *p42[1] = {"42"};
    dtx_stmt stmts[2] = {{.participant = "a", .sql = "UPDATE t SET x = x + 1"},
                         {.participant = "b", .sql = "SELECT $1", .nparams = 1, .params = p42}};
    dtx_result **res = NULL;
    int n = -1;
    ck_assert_int_eq(dtx_oneshot(c, stmts, 2, &res, &n), DTX_COMMITTED);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(dtx_cmd_status(res[0]), "UPDATE 3");
    ck_assert_str_eq(dtx_getvalue(res[1], 0, 1), UTF8_TEXT);
    ck_assert_ptr_null(res[2]);
    dtx_results_free(res);
    ck_assert_str_eq(dtx_gid(c), "dtx:coord-x:7:9");
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

START_TEST(bad_arguments)
{
    clear_env();
    srv s;
    dtx_conn *c = connect_ok(&s, script_hello_then_eof);
    ck_assert_int_eq(dtx_send_exec(c, NULL, "select 1"), 0);
    ck_assert_int_eq(dtx_send_exec(c, "a", NULL), 0);
    ck_assert_int_eq(dtx_send_exec_params(c, "a", "select 1", 70000, NULL), 0);
    ck_assert_int_eq(dtx_send_oneshot(c, NULL, 0), 0);
    ck_assert_int_eq(dtx_send_status(c, ""), 0);
    dtx_result *r = dtx_exec(c, "", "select 1");
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_SQLSTATE), "22023");
    ck_assert_str_eq(dtx_result_error_field(r, DTX_DIAG_MESSAGE), "a participant name is required");
    dtx_clear(r);
    /* nothing was sent, and the connection is still fine */
    ck_assert_int_eq(dtx_status(c), DTX_CONNECTION_OK);
    ck_assert_ptr_null(dtx_get_result(c));
    dtx_finish(c);
    srv_join(&s);
}
END_TEST

static Suite *
client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("conninfo");
    tcase_add_test(tc, conninfo_defaults);
    tcase_add_test(tc, conninfo_values);
    tcase_add_test(tc, conninfo_env);
    tcase_add_test(tc, conninfo_hosts_ports);
    tcase_add_test(tc, conninfo_errors);
    tcase_add_test(tc, conninfo_target_role);
    tcase_add_test(tc, connect_bad_conninfo);
    suite_add_tcase(s, tc);

    tc = tcase_create("protocol");
    tcase_add_unchecked_fixture(tc, certs_setup, certs_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, handshake_ok, 0, 2); /* 0: TLS 1.3, 1: TLS 1.2 */
    tcase_add_test(tc, handshake_ip_literal);
    tcase_add_test(tc, server_refuses);
    tcase_add_test(tc, multi_host_failover);
    tcase_add_test(tc, wrong_server_name);
    tcase_add_test(tc, wrong_ca);
    tcase_add_test(tc, client_certificate);
    tcase_add_test(tc, connect_timeout);
    tcase_add_test(tc, txn_commit);
    tcase_add_test(tc, reserved_gids);
    tcase_add_test(tc, txn_errors);
    tcase_add_test(tc, commit_connection_lost);
    tcase_add_test(tc, commit_connection_lost_async);
    tcase_add_test(tc, oneshot_connection_lost);
    tcase_add_test(tc, oneshot_gid_before_outcome);
    tcase_add_test(tc, oneshot_gid_before_outcome_async);
    tcase_add_test(tc, oneshot_second_gid);
    tcase_add_test(tc, lost_before_commit);
    tcase_add_test(tc, oversized_frame);
    tcase_add_test(tc, unexpected_reply);
    tcase_add_test(tc, status_and_indoubt);
    tcase_add_test(tc, async_oneshot);
    tcase_add_test(tc, sync_oneshot);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, standby_single_host);
    tcase_add_test(tc, standby_then_primary);
    tcase_add_test(tc, standby_every_host);
    tcase_add_test(tc, replication_and_promote);
    tcase_add_test(tc, admin_failures);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(client_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
