/*
 * test_cli.c — the dtx command-line tool, run as a program: usage errors
 * (exit 3), scripts, exit statuses and output against a canned coordinator.
 *
 * The binary is build/$DTX_BUILD/bin/dtx under $DTX_SRCDIR (defaults: test,
 * "."), run with its stdout and stderr captured in files.  The canned
 * coordinator is a thread with a TLS listening socket (certificates from
 * tests/lib/gencerts.sh): after HELLO_OK it answers each request frame with
 * the next prepared reply, or cuts the connection where the reply is NULL.
 */
#include "dtx.h" /* DTX_VERSION_STR */

#include "buf.h"
#include "frame.h"
#include "proto.h"
#include "proto_repl.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static char tmpdir[256];
static char dtx_bin[512];
/* "NAME=value" settings for the next runs of the tool (NULL-terminated) */
static const char *run_env[4];

/* ---- fixture ------------------------------------------------------------- */

static void
setup(void)
{
    const char *src = getenv("DTX_SRCDIR");
    const char *build = getenv("DTX_BUILD");
    snprintf(dtx_bin, sizeof(dtx_bin), "%s/build/%s/bin/dtx", src ? src : ".",
             build ? build : "test");
    if (access(dtx_bin, X_OK) != 0) {
        fprintf(stderr, "test_cli: %s is not built\n", dtx_bin);
        abort();
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/dtx-test-cli.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        abort();
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/tests/lib/gencerts.sh %s/certs coordinator", src ? src : ".",
             tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_cli: \"%s\" failed\n", cmd);
        abort();
    }
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
teardown(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- running the tool ---------------------------------------------------- */

typedef struct run {
    int rc;
    char out[16384];
    char err[16384];
} run;

static void
slurp(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run dtx with args (NULL-terminated, without argv[0]); stdin from
 * stdin_text when not NULL, else /dev/null. */
static void
run_dtx(run *r, const char *stdin_text, const char *const *args)
{
    char out[300], err[300], in[300];
    snprintf(out, sizeof(out), "%s/stdout", tmpdir);
    snprintf(err, sizeof(err), "%s/stderr", tmpdir);
    snprintf(in, sizeof(in), "%s/stdin", tmpdir);
    FILE *f = fopen(in, "w");
    ck_assert_ptr_nonnull(f);
    if (stdin_text)
        fputs(stdin_text, f);
    fclose(f);

    const char *argv[64] = {dtx_bin};
    int n = 1;
    for (; args[n - 1]; n++) {
        ck_assert_int_lt(n, 63);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;

    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        static const char *const vars[] = {
            "DTXHOST",      "DTXPORT",   "DTXSSLMODE",         "DTXSSLROOTCERT",
            "DTXSSLCERT",   "DTXSSLKEY", "DTXCONNECT_TIMEOUT", "DTXAPPNAME",
            "DTXTARGETROLE"};
        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
            unsetenv(vars[i]);
        for (int i = 0; run_env[i]; i++)
            putenv((char *)run_env[i]);
        int fi = open(in, O_RDONLY), fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fi < 0 || fo < 0 || fe < 0)
            _exit(120);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(dtx_bin, (char *const *)argv);
        _exit(121);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(out, r->out, sizeof(r->out));
    slurp(err, r->err, sizeof(r->err));
}

static void
write_file(const char *name, const char *text, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

#define RUN(r, stdin_text, ...)                                                                    \
    do {                                                                                           \
        const char *const a_[] = {__VA_ARGS__, NULL};                                              \
        run_dtx(r, stdin_text, a_);                                                                \
    } while (0)

#define CHECK_RC(r, want)                                                                          \
    ck_assert_msg((r)->rc == (want), "exit %d, want %d\nstdout:\n%s\nstderr:\n%s", (r)->rc,        \
                  (want), (r)->out, (r)->err)

#define CHECK_CONTAINS(hay, needle)                                                                \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "\"%s\" not in:\n%s", (needle), (hay))

/* ---- usage errors -------------------------------------------------------- */

static void
check_usage(const run *r, const char *msg)
{
    CHECK_RC(r, 3);
    CHECK_CONTAINS(r->err, msg);
    CHECK_CONTAINS(r->err, "--help\" for more information.");
    ck_assert_str_eq(r->out, "");
}

START_TEST(usage_errors)
{
    run r;
    RUN(&r, NULL, "exec");
    check_usage(&r, "dtx exec: no statements given");
    {
        const char *const a[] = {NULL};
        run_dtx(&r, NULL, a);
        check_usage(&r, "dtx: no command given");
    }
    RUN(&r, NULL, "frobnicate");
    check_usage(&r, "dtx: unknown command \"frobnicate\"");
    RUN(&r, NULL, "--bogus");
    check_usage(&r, "dtx: invalid option \"--bogus\"");
    RUN(&r, NULL, "exec", "--bogus", "-P", "a", "select 1");
    check_usage(&r, "dtx exec: invalid option \"--bogus\"");
    RUN(&r, NULL, "exec", "-x");
    check_usage(&r, "dtx exec: invalid option \"-x\"");
    RUN(&r, NULL, "exec", "-P", "a");
    check_usage(&r, "dtx exec: -P a has no SQL statement");
    RUN(&r, NULL, "exec", "-P", "a", "-P", "b", "select 1");
    check_usage(&r, "dtx exec: -P a has no SQL statement");
    RUN(&r, NULL, "exec", "select 1");
    check_usage(&r, "dtx exec: unexpected argument \"select 1\"");
    RUN(&r, NULL, "exec", "--param", "1", "-P", "a", "select $1");
    check_usage(&r, "dtx exec: --param must follow a -P PARTICIPANT 'SQL' statement");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "--host");
    check_usage(&r, "dtx exec: option \"--host\" requires an argument");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "-p");
    check_usage(&r, "dtx exec: option \"-p\" requires an argument");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "--sslmode=require");
    check_usage(&r, "sslmode \"require\" is not supported");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "-p", "http");
    check_usage(&r, "dtx exec: invalid port number: \"http\"");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "-d", "dbname=x");
    check_usage(&r, "dtx exec: invalid connection option \"dbname\"");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "-h", "a,b", "-p", "1,2,3");
    check_usage(&r, "could not match 3 port numbers to 2 hosts");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "--connect-timeout=soon");
    check_usage(&r, "invalid integer value \"soon\"");
    RUN(&r, NULL, "status");
    check_usage(&r, "dtx status: a transaction id (GID) is required");
    RUN(&r, NULL, "status", "g1", "g2");
    check_usage(&r, "dtx status: unexpected argument \"g2\"");
    RUN(&r, NULL, "indoubt", "extra");
    check_usage(&r, "dtx indoubt: unexpected argument \"extra\"");
    RUN(&r, NULL, "indoubt", "--oneshot");
    check_usage(&r, "dtx indoubt: invalid option \"--oneshot\"");
    RUN(&r, NULL, "replication", "extra");
    check_usage(&r, "dtx replication: unexpected argument \"extra\"");
    RUN(&r, NULL, "replication", "--force");
    check_usage(&r, "dtx replication: invalid option \"--force\"");
    RUN(&r, NULL, "promote", "now");
    check_usage(&r, "dtx promote: unexpected argument \"now\"");
    RUN(&r, NULL, "promote", "--force=yes");
    check_usage(&r, "dtx promote: invalid option \"--force=yes\"");
    RUN(&r, NULL, "status", "--force", "g1");
    check_usage(&r, "dtx status: invalid option \"--force\"");
    RUN(&r, NULL, "exec", "--force", "-P", "a", "select 1");
    check_usage(&r, "dtx exec: invalid option \"--force\"");
    RUN(&r, NULL, "promote", "--target-role");
    check_usage(&r, "dtx promote: option \"--target-role\" requires an argument");
    RUN(&r, NULL, "promote", "--target-role=standby");
    check_usage(&r, "dtx promote: invalid target_role value: \"standby\"; use primary or any");
    RUN(&r, NULL, "exec", "-P", "a", "select 1", "-d", "target_role=rw");
    check_usage(&r, "dtx exec: invalid target_role value: \"rw\"");
    run_env[0] = "DTXTARGETROLE=primary-only";
    RUN(&r, NULL, "replication");
    run_env[0] = NULL;
    check_usage(&r, "dtx replication: invalid target_role value: \"primary-only\" (from "
                    "environment variable DTXTARGETROLE)");
}
END_TEST

START_TEST(help_and_version)
{
    run r;
    RUN(&r, NULL, "--help");
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "Commands:");
    RUN(&r, NULL, "exec", "--help");
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "-P, --participant=NAME 'SQL'");
    CHECK_CONTAINS(r.out, "--sslrootcert=FILE");
    RUN(&r, NULL, "status", "--help");
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "dtx status [OPTION]... GID");
    RUN(&r, NULL, "help", "indoubt");
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "dtx indoubt [OPTION]...");
    RUN(&r, NULL, "--help");
    CHECK_CONTAINS(r.out, "  replication  ");
    CHECK_CONTAINS(r.out, "  promote      ");
    RUN(&r, NULL, "promote", "--help");
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "dtx promote [--force] [OPTION]...");
    CHECK_CONTAINS(r.out, "--target-role=ROLE");
    RUN(&r, NULL, "help", "replication");
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "dtx replication [OPTION]...");
    RUN(&r, NULL, "--version");
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "dtx " DTX_VERSION_STR " (libdtx " DTX_VERSION_STR ")");
}
END_TEST

START_TEST(script_errors)
{
    run r;
    char path[512];
    write_file("bad.sql", "# fine\na: select 1\nselect 2\n", path, sizeof(path));
    RUN(&r, NULL, "exec", "-f", path);
    CHECK_RC(&r, 3);
    CHECK_CONTAINS(r.err, "bad.sql:3: expected \"participant: SQL\"");

    write_file("cont.sql", "\n  where x = 1\n", path, sizeof(path));
    RUN(&r, NULL, "exec", "-f", path);
    CHECK_RC(&r, 3);
    CHECK_CONTAINS(r.err, "cont.sql:2: continuation line before any statement");

    write_file("empty.sql", "a:   \n", path, sizeof(path));
    RUN(&r, NULL, "exec", "-f", path);
    CHECK_RC(&r, 3);
    CHECK_CONTAINS(r.err, "empty.sql:1: empty SQL statement");

    write_file("none.sql", "# nothing\n\n", path, sizeof(path));
    RUN(&r, NULL, "exec", "-f", path);
    CHECK_RC(&r, 3);
    CHECK_CONTAINS(r.err, "contains no statements");

    RUN(&r, NULL, "exec", "-f", "/nonexistent/x.sql");
    CHECK_RC(&r, 3);
    CHECK_CONTAINS(r.err, "could not open script \"/nonexistent/x.sql\": No such file");

    RUN(&r, "bad line\n", "exec", "-f", "-");
    CHECK_RC(&r, 3);
    CHECK_CONTAINS(r.err, "<stdin>:1: expected \"participant: SQL\"");
}
END_TEST

/* A closed port: the statements parse, the connection fails: exit 2. */
START_TEST(connection_failure)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    char port[16];
    snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
    run r;
    RUN(&r, "a: select 1\n", "exec", "-h", "127.0.0.1", "-p", port, "-f", "-");
    CHECK_RC(&r, 2);
    CHECK_CONTAINS(r.err, "dtx: error: connection to coordinator at \"127.0.0.1\", port");
    CHECK_CONTAINS(r.err, "Connection refused");
    RUN(&r, NULL, "status", "-h", "127.0.0.1", "-p", port, "dtx:c:1:1");
    CHECK_RC(&r, 2);
    RUN(&r, NULL, "indoubt", "-h", "127.0.0.1", "-p", port);
    CHECK_RC(&r, 2);
    RUN(&r, NULL, "replication", "-h", "127.0.0.1", "-p", port);
    CHECK_RC(&r, 2);
    RUN(&r, NULL, "promote", "--force", "-h", "127.0.0.1", "-p", port);
    CHECK_RC(&r, 2);
    CHECK_CONTAINS(r.err, "Connection refused");
    close(fd);
}
END_TEST

/* ---- the canned coordinator ---------------------------------------------- */

#define MAX_REPLIES 16

typedef struct canned {
    int lfd, port;
    SSL_CTX *ctx;
    pthread_t th;
    int nreplies;
    wbuf replies[MAX_REPLIES];      /* reply to request i; len 0 = cut the connection */
    char requests[MAX_REPLIES + 1]; /* types of the requests received */
    uint8_t first[MAX_REPLIES];     /* the first payload byte of each (0 when empty) */
    wbuf hello_reply;               /* instead of HELLO_OK when not empty, then close */
    uint8_t hello_role;             /* the role the HELLO asked for */
} canned;

static bool
read_full(SSL *ssl, uint8_t *p, size_t n)
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

/* Read one frame; its type, or 0 at the end.  When hello is not NULL it
 * is decoded as one into *hello (its strings no longer valid), and when
 * first is not NULL it gets the first payload byte (0 when none). */
static uint8_t
read_frame(SSL *ssl, proto_hello *hello, uint8_t *first)
{
    uint8_t h[FRAME_HEADER_SIZE];
    if (!read_full(ssl, h, sizeof(h)))
        return 0;
    uint32_t len = buf_load_u32(h + 1);
    uint8_t *p = malloc(len + 1);
    bool ok = p && read_full(ssl, p, len);
    if (ok && first)
        *first = len > 0 ? p[0] : 0;
    if (ok && hello) {
        frame_view f = {.type = h[0], .len = len, .payload = p};
        ok = proto_get_hello(&f, hello);
    }
    free(p);
    return ok ? h[0] : 0;
}

static uint8_t
skip_frame(SSL *ssl)
{
    return read_frame(ssl, NULL, NULL);
}

/* After HELLO_OK: answer each request with its prepared reply.  False when
 * the connection is to be cut. */
static bool
canned_replies(canned *c, SSL *ssl)
{
    for (int i = 0; i < c->nreplies; i++) {
        uint8_t t = read_frame(ssl, NULL, &c->first[i]);
        if (t == 0)
            break;
        c->requests[i] = (char)t;
        if (c->replies[i].len == 0)
            return false;
        SSL_write(ssl, c->replies[i].data, (int)c->replies[i].len);
    }
    while (skip_frame(ssl) != 0)
        ;
    return true;
}

static void *
canned_main(void *arg)
{
    canned *c = arg;
    struct pollfd p = {.fd = c->lfd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        return NULL;
    int fd = accept(c->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(c->ctx);
    SSL_set_fd(ssl, fd);
    bool cut = false;
    proto_hello hello;
    if (SSL_accept(ssl) == 1 && read_frame(ssl, &hello, NULL) == MSG_HELLO) {
        c->hello_role = hello.role;
        if (c->hello_reply.len > 0) {
            SSL_write(ssl, c->hello_reply.data, (int)c->hello_reply.len);
        } else {
            wbuf w;
            wbuf_init(&w);
            proto_hello_ok ok = {.major = PROTO_MAJOR, .minor = PROTO_MINOR, .server_name = "c"};
            if (proto_put_hello_ok(&w, &ok))
                SSL_write(ssl, w.data, (int)w.len);
            wbuf_free(&w);
            cut = !canned_replies(c, ssl);
        }
    }
    if (!cut)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return NULL;
}

static void
canned_init(canned *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < MAX_REPLIES; i++)
        wbuf_init(&c->replies[i]);
    wbuf_init(&c->hello_reply);
}

/* The next reply slot. */
static wbuf *
reply(canned *c)
{
    ck_assert_int_lt(c->nreplies, MAX_REPLIES);
    return &c->replies[c->nreplies++];
}

static void
canned_start(canned *c, char *port, size_t portlen)
{
    char crt[400], key[400];
    snprintf(crt, sizeof(crt), "%s/certs/coordinator.crt", tmpdir);
    snprintf(key, sizeof(key), "%s/certs/coordinator.key", tmpdir);
    c->ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(c->ctx, crt), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM), 1);
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(c->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(c->lfd, 4), 0);
    socklen_t len = sizeof(a);
    getsockname(c->lfd, (struct sockaddr *)&a, &len);
    snprintf(port, portlen, "%d", ntohs(a.sin_port));
    ck_assert_int_eq(pthread_create(&c->th, NULL, canned_main, c), 0);
}

static void
canned_join(canned *c)
{
    pthread_join(c->th, NULL);
    close(c->lfd);
    SSL_CTX_free(c->ctx);
    for (int i = 0; i < MAX_REPLIES; i++)
        wbuf_free(&c->replies[i]);
    wbuf_free(&c->hello_reply);
}

static void
put_outcome(wbuf *w, proto_outcome o, const char *gid)
{
    proto_outcome_msg m = {.outcome = (uint8_t)o, .gid = gid};
    ck_assert(proto_put_outcome(w, &m));
}

static void
put_tag(wbuf *w, const char *participant, const char *tag, uint64_t n)
{
    size_t st = proto_result_begin(w, 0, participant, tag, n, 0);
    proto_result_rows(w, 0);
    ck_assert(proto_result_end(w, st));
}

static void
put_rows(wbuf *w)
{
    size_t st = proto_result_begin(w, 0, "a", "SELECT 2", 2, 2);
    proto_result_column(w, "id", 23);
    proto_result_column(w, "name", 25);
    proto_result_rows(w, 2);
    proto_result_value(w, "7", 1, false);
    proto_result_value(w, "x\xc3\xa9", 3, false);
    proto_result_value(w, "10", 2, false);
    proto_result_value(w, NULL, 0, true);
    ck_assert(proto_result_end(w, st));
}

/* The common arguments: -h localhost -p PORT --sslrootcert CA */
#define CONN_ARGS(port, ca) "-h", "localhost", "-p", (port), "--sslrootcert", (ca)

static const char *
ca_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/certs/ca.crt", tmpdir);
    return buf;
}

START_TEST(exec_committed)
{
    canned c;
    char port[16], ca[400];
    canned_init(&c);
    ck_assert(proto_put_begin_ok(reply(&c), "dtx:c:1:1"));
    put_rows(reply(&c));
    put_tag(reply(&c), "b", "INSERT 0 1", 1);
    put_outcome(reply(&c), OUTCOME_COMMITTED, "dtx:c:1:1");
    canned_start(&c, port, sizeof(port));
    run r;
    RUN(&r, NULL, "exec", CONN_ARGS(port, ca_path(ca, sizeof(ca))), "-P", "a",
        "select id, name from t", "-P", "b", "insert into t values ($1, $2)", "--param", "1",
        "--param-null");
    canned_join(&c);
    CHECK_RC(&r, 0);
    ck_assert_str_eq(r.out, " id | name\n"
                            "----+------\n"
                            "  7 | x\xc3\xa9\n"
                            " 10 | \n"
                            "(2 rows)\n"
                            "\n"
                            "INSERT 0 1\n"
                            "COMMITTED dtx:c:1:1\n");
    ck_assert_str_eq(r.err, "");
    ck_assert_str_eq(c.requests, "BQQC");
}
END_TEST

START_TEST(exec_script_error)
{
    canned c;
    char port[16], ca[400], path[512];
    canned_init(&c);
    ck_assert(proto_put_begin_ok(reply(&c), "dtx:c:1:2"));
    put_tag(reply(&c), "a", "UPDATE 1", 1);
    proto_error e = {.sqlstate = "23505",
                     .message = "duplicate key value violates unique constraint \"t_pkey\"",
                     .detail = "Key (id)=(1) already exists.",
                     .participant = "b"};
    ck_assert(proto_put_error(reply(&c), &e));
    put_outcome(reply(&c), OUTCOME_ABORTED, "dtx:c:1:2");
    canned_start(&c, port, sizeof(port));
    write_file("t.sql",
               "# move one row\n"
               "a: UPDATE t SET n = n - 1\n"
               "     WHERE id = 1\n"
               "\n"
               "b: INSERT INTO t VALUES (1)\n"
               "a: SELECT 'never sent'\n",
               path, sizeof(path));
    run r;
    RUN(&r, NULL, "exec", CONN_ARGS(port, ca_path(ca, sizeof(ca))), "-f", path);
    canned_join(&c);
    CHECK_RC(&r, 1);
    ck_assert_str_eq(r.out, "UPDATE 1\nABORTED dtx:c:1:2\n");
    CHECK_CONTAINS(r.err, "ERROR:  duplicate key value violates unique constraint \"t_pkey\"\n"
                          "DETAIL:  Key (id)=(1) already exists.\n"
                          "SQLSTATE:  23505\n"
                          "PARTICIPANT:  b\n");
    CHECK_CONTAINS(r.err, "t.sql:5");
    ck_assert_str_eq(c.requests, "BQQA"); /* the third statement was not sent */
}
END_TEST

START_TEST(exec_commit_lost)
{
    canned c;
    char port[16], ca[400];
    canned_init(&c);
    ck_assert(proto_put_begin_ok(reply(&c), "dtx:c:1:3"));
    put_tag(reply(&c), "a", "UPDATE 1", 1);
    reply(&c); /* COMMIT: cut the connection */
    canned_start(&c, port, sizeof(port));
    run r;
    RUN(&r, NULL, "exec", CONN_ARGS(port, ca_path(ca, sizeof(ca))), "-P", "a", "update t set n=1");
    canned_join(&c);
    CHECK_RC(&r, 2);
    ck_assert_str_eq(r.out, "UPDATE 1\nUNKNOWN dtx:c:1:3\n");
    CHECK_CONTAINS(r.err, "SQLSTATE:  08006");
}
END_TEST

START_TEST(exec_oneshot)
{
    canned c;
    char port[16], ca[400];
    canned_init(&c);
    wbuf *w = reply(&c);
    put_tag(w, "a", "UPDATE 2", 2);
    put_rows(w);
    put_outcome(w, OUTCOME_COMMITTED, "dtx:c:1:4");
    canned_start(&c, port, sizeof(port));
    run r;
    RUN(&r, NULL, "exec", "--oneshot", CONN_ARGS(port, ca_path(ca, sizeof(ca))), "-P", "a",
        "update t set n = 2", "-P", "a", "select id, name from t");
    canned_join(&c);
    CHECK_RC(&r, 0);
    CHECK_CONTAINS(r.out, "UPDATE 2\n id | name\n");
    CHECK_CONTAINS(r.out, "(2 rows)\n\nCOMMITTED dtx:c:1:4\n");
    ck_assert_str_eq(c.requests, "X");
}
END_TEST

START_TEST(status_and_indoubt)
{
    canned c;
    char port[16], ca[400];
    canned_init(&c);
    proto_status_reply st = {.outcome = OUTCOME_COMMITTED, .gid = "dtx:c:1:1", .detail = ""};
    ck_assert(proto_put_status_reply(reply(&c), &st));
    canned_start(&c, port, sizeof(port));
    run r;
    RUN(&r, NULL, "status", CONN_ARGS(port, ca_path(ca, sizeof(ca))), "dtx:c:1:1");
    canned_join(&c);
    CHECK_RC(&r, 0);
    ck_assert_str_eq(r.out, "COMMITTED dtx:c:1:1\n");

    canned_init(&c);
    proto_status_reply ip = {
        .outcome = OUTCOME_NOT_KNOWN, .gid = "dtx:c:0:1", .detail = "older than the retained log"};
    ck_assert(proto_put_status_reply(reply(&c), &ip));
    canned_start(&c, port, sizeof(port));
    RUN(&r, NULL, "status", CONN_ARGS(port, ca_path(ca, sizeof(ca))), "dtx:c:0:1");
    canned_join(&c);
    CHECK_RC(&r, 1);
    ck_assert_str_eq(r.out, "NO LONGER KNOWN dtx:c:0:1\nolder than the retained log\n");

    canned_init(&c);
    proto_indoubt_entry e[1] = {
        {.gid = "dtx:c:1:9", .age_ms = 125000, .participants = "a,b", .state = "committing"}};
    proto_indoubt_reply ir = {.n = 1, .entries = e};
    ck_assert(proto_put_indoubt_reply(reply(&c), &ir));
    canned_start(&c, port, sizeof(port));
    RUN(&r, NULL, "indoubt", CONN_ARGS(port, ca_path(ca, sizeof(ca))));
    canned_join(&c);
    CHECK_RC(&r, 0);
    ck_assert_str_eq(r.out, "    gid    |  age  | participants |   state\n"
                            "-----------+-------+--------------+------------\n"
                            " dtx:c:1:9 | 2m05s | a,b          | committing\n"
                            "(1 row)\n"
                            "\n");
}
END_TEST

/* Which HELLO role each command sends: client (target_role=primary) for
 * exec, admin (any) for the others, unless an option, -d or DTXTARGETROLE
 * says otherwise. */
START_TEST(target_roles)
{
    static const struct {
        const char *env;               /* DTXTARGETROLE=..., or NULL */
        const char *cmd, *opt1, *opt2; /* the command and up to two extra arguments */
        uint8_t role;
    } cases[] = {
        {NULL, "status", NULL, NULL, ROLE_ADMIN},
        {NULL, "indoubt", NULL, NULL, ROLE_ADMIN},
        {NULL, "replication", NULL, NULL, ROLE_ADMIN},
        {NULL, "promote", NULL, NULL, ROLE_ADMIN},
        {NULL, "exec", NULL, NULL, ROLE_CLIENT},
        {NULL, "status", "--target-role=primary", NULL, ROLE_CLIENT},
        {NULL, "indoubt", "-d", "target_role=primary", ROLE_CLIENT},
        {NULL, "exec", "--target-role", "any", ROLE_ADMIN},
        {"DTXTARGETROLE=primary", "replication", NULL, NULL, ROLE_CLIENT},
        {"DTXTARGETROLE=any", "exec", NULL, NULL, ROLE_ADMIN},
        {"DTXTARGETROLE=", "status", NULL, NULL, ROLE_ADMIN},
        {"DTXTARGETROLE=primary", "status", "--target-role=any", NULL, ROLE_ADMIN},
    };
    char port[16], ca[400];
    ca_path(ca, sizeof(ca));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        canned c;
        canned_init(&c);
        reply(&c); /* the request: cut the connection */
        canned_start(&c, port, sizeof(port));
        const char *argv[16] = {cases[i].cmd, CONN_ARGS(port, ca)};
        int n = 7;
        if (strcmp(cases[i].cmd, "exec") == 0) {
            argv[n++] = "-P";
            argv[n++] = "a";
            argv[n++] = "select 1";
        } else if (strcmp(cases[i].cmd, "status") == 0) {
            argv[n++] = "dtx:c:1:1";
        }
        if (cases[i].opt1)
            argv[n++] = cases[i].opt1;
        if (cases[i].opt2)
            argv[n++] = cases[i].opt2;
        argv[n] = NULL;
        run_env[0] = cases[i].env;
        run r;
        run_dtx(&r, NULL, argv);
        run_env[0] = NULL;
        canned_join(&c);
        ck_assert_msg(c.hello_role == cases[i].role, "case %zu (%s): role %u, want %u\n%s", i,
                      cases[i].cmd, c.hello_role, cases[i].role, r.err);
    }
}
END_TEST

START_TEST(replication_output)
{
    canned c;
    char port[16], ca[400];
    canned_init(&c);
    proto_replication rep = {.role = 2,
                             .epoch = 7,
                             .name = "coord",
                             .peer = "coord-a:6543",
                             .state = "streaming",
                             .sent = 0x1a2b3c8,
                             .flushed = 0x2000000001a2b3c0ull,
                             .primary_lsn = 0xffffffffffffffffull,
                             .lag_bytes = 8,
                             .lag_ms = 3,
                             .synchronous = 1,
                             .sure = 0,
                             .detail = ""};
    ck_assert(proto_put_replication_reply(reply(&c), &rep));
    canned_start(&c, port, sizeof(port));
    run r;
    RUN(&r, NULL, "replication", CONN_ARGS(port, ca_path(ca, sizeof(ca))));
    canned_join(&c);
    CHECK_RC(&r, 0);
    ck_assert_str_eq(r.out, "role: standby\n"
                            "epoch: 7\n"
                            "name: coord\n"
                            "peer: coord-a:6543\n"
                            "state: streaming\n"
                            "sent_lsn: 0/01A2B3C8\n"
                            "flushed_lsn: 20000000/01A2B3C0\n"
                            "primary_lsn: FFFFFFFF/FFFFFFFF\n"
                            "lag_bytes: 8\n"
                            "lag_ms: 3\n"
                            "synchronous: yes\n"
                            "sure: no\n"
                            "detail:\n");
    ck_assert_str_eq(r.err, "");
    ck_assert_str_eq(c.requests, "V");

    /* an error reply: printed, exit 1 */
    canned_init(&c);
    proto_error e = {.sqlstate = "42501", .message = "permission denied for replication"};
    ck_assert(proto_put_error(reply(&c), &e));
    canned_start(&c, port, sizeof(port));
    RUN(&r, NULL, "replication", CONN_ARGS(port, ca_path(ca, sizeof(ca))));
    canned_join(&c);
    CHECK_RC(&r, 1);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "ERROR:  permission denied for replication\nSQLSTATE:  42501\n");
}
END_TEST

START_TEST(promote)
{
    canned c;
    char port[16], ca[400];
    run r;
    canned_init(&c);
    ck_assert(proto_put_admin_ok(reply(&c), "coordinator \"coord\" is now the primary (epoch 8)"));
    canned_start(&c, port, sizeof(port));
    RUN(&r, NULL, "promote", "--force", CONN_ARGS(port, ca_path(ca, sizeof(ca))));
    canned_join(&c);
    CHECK_RC(&r, 0);
    ck_assert_str_eq(r.out, "coordinator \"coord\" is now the primary (epoch 8)\n");
    ck_assert_str_eq(r.err, "");
    ck_assert_str_eq(c.requests, "P");
    ck_assert_uint_eq(c.first[0], 1); /* force */

    /* refused: the error as always, exit 1 */
    canned_init(&c);
    proto_error e = {.sqlstate = "55000",
                     .message = "standby \"coord\" cannot be sure it holds every acknowledged "
                                "decision",
                     .detail = "It had not caught up with its primary.",
                     .hint = "Promote it with --force to accept that."};
    ck_assert(proto_put_error(reply(&c), &e));
    canned_start(&c, port, sizeof(port));
    RUN(&r, NULL, "promote", CONN_ARGS(port, ca_path(ca, sizeof(ca))));
    canned_join(&c);
    CHECK_RC(&r, 1);
    ck_assert_uint_eq(c.first[0], 0); /* no force */
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "ERROR:  standby \"coord\" cannot be sure it holds every "
                            "acknowledged decision\n"
                            "DETAIL:  It had not caught up with its primary.\n"
                            "HINT:  Promote it with --force to accept that.\n"
                            "SQLSTATE:  55000\n");

    /* the connection breaks after the request: exit 2, and it says so */
    canned_init(&c);
    reply(&c);
    canned_start(&c, port, sizeof(port));
    RUN(&r, NULL, "promote", CONN_ARGS(port, ca_path(ca, sizeof(ca))));
    canned_join(&c);
    CHECK_RC(&r, 2);
    CHECK_CONTAINS(r.err, "SQLSTATE:  08006\n");
    CHECK_CONTAINS(r.err, "whether the coordinator was promoted is unknown");
}
END_TEST

/* exec against a standby: the refusal, with its SQLSTATE; exit 2 */
START_TEST(exec_on_standby)
{
    canned c;
    char port[16], ca[400];
    canned_init(&c);
    proto_error e = {.sqlstate = PROTO_NOT_PRIMARY_SQLSTATE,
                     .message = "coordinator \"coord\" is a standby: transactions go to its "
                                "primary"};
    ck_assert(proto_put_error(&c.hello_reply, &e));
    canned_start(&c, port, sizeof(port));
    run r;
    RUN(&r, NULL, "exec", CONN_ARGS(port, ca_path(ca, sizeof(ca))), "-P", "a", "select 1");
    canned_join(&c);
    CHECK_RC(&r, 2);
    ck_assert_str_eq(r.out, "");
    CHECK_CONTAINS(r.err, "dtx: error: connection to coordinator at \"localhost\"");
    CHECK_CONTAINS(r.err, "failed: the coordinator refused the connection: coordinator \"coord\" "
                          "is a standby: transactions go to its primary (SQLSTATE 57P03)\n");
    ck_assert_uint_eq(c.hello_role, ROLE_CLIENT);
}
END_TEST

static Suite *
cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, usage_errors);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, script_errors);
    tcase_add_test(tc, connection_failure);
    tcase_add_test(tc, exec_committed);
    tcase_add_test(tc, exec_script_error);
    tcase_add_test(tc, exec_commit_lost);
    tcase_add_test(tc, exec_oneshot);
    tcase_add_test(tc, status_and_indoubt);
    tcase_add_test(tc, target_roles);
    tcase_add_test(tc, replication_output);
    tcase_add_test(tc, promote);
    tcase_add_test(tc, exec_on_standby);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
