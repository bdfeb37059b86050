/*
 * silent.c — holds many connections to a daemon's port that never
 * authenticate, for the admission test and benchmark
 * (tests/integration/admission.sh, bench/run-bench-admission.sh).
 *
 *   tool-silent --port P [--host H] [--count N] [--mode tcp|hello|tls]
 *               [--cert C --key K] [--reopen] [--seconds S]
 *
 * Opens N non-blocking TCP connections to H:P (default 127.0.0.1, 100).
 * Mode tcp (the default) never sends a byte.  Mode hello sends a TLS
 * ClientHello and then nothing more: a handshake left half-way.  Mode tls
 * completes the handshake (with the certificate C, if given; the server's
 * is not checked) and then sends nothing: no HELLO ever follows.  A
 * connection the server closes is counted; with --reopen a new one takes
 * its place at once, so N stay open from this side however fast the
 * server drops them.  Prints "ready connected=C closed_by_server=X
 * failed=F" once every first connect has finished, then runs until
 * SIGTERM, SIGINT or S seconds, and prints one line of counts:
 *
 *   silent: opened=O connected=C tls=T failed=F closed_by_server=X open=N
 *
 * It raises its own open-file limit to the hard limit.  Exit 0, or 2 for a
 * usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct sock {
    int fd;
    bool connected;
    bool first;       /* one of the first N, its connect not finished yet */
    bool handshaking; /* mode tls: the handshake is not done yet */
    SSL *ssl;         /* modes hello and tls */
} sock;

static struct {
    struct sockaddr_in addr;
    int count;
    bool hello, tls, reopen;
    const char *cert, *key;
    double seconds;
    int ep;
    SSL_CTX *ctx;
    long opened, connected, tls_done, failed, closed;
    int open_now;
    int first_done; /* of the first N connects, those finished (either way) */
} s;

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Start one connection into k (its fd -1 when even socket() failed). */
static void
sock_open(sock *k)
{
    memset(k, 0, sizeof(*k));
    k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        s.failed++;
        return;
    }
    s.opened++;
    s.open_now++;
    if (connect(k->fd, (struct sockaddr *)&s.addr, sizeof(s.addr)) != 0 && errno != EINPROGRESS) {
        close(k->fd);
        k->fd = -1;
        s.open_now--;
        s.failed++;
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = k};
    epoll_ctl(s.ep, EPOLL_CTL_ADD, k->fd, &ev);
}

static void
sock_close(sock *k)
{
    if (k->ssl)
        SSL_free(k->ssl);
    k->ssl = NULL;
    close(k->fd);
    k->fd = -1;
    s.open_now--;
}

/* The connect finished: count it, and send the ClientHello in mode hello. */
static void
sock_connected(sock *k)
{
    int err = 0;
    socklen_t sl = sizeof(err);
    getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
    if (err != 0) {
        /* a reset: the server took it and dropped it before this loop saw
         * the connect finish; anything else: it never connected */
        bool reset = err == ECONNRESET || err == EPIPE;
        s.connected += reset;
        s.closed += reset;
        s.failed += !reset;
        sock_close(k);
        if (s.reopen && !stop)
            sock_open(k);
        return;
    }
    k->connected = true;
    s.connected++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = k};
    epoll_ctl(s.ep, EPOLL_CTL_MOD, k->fd, &ev);
    if ((s.hello || s.tls) && (k->ssl = SSL_new(s.ctx)) != NULL) {
        SSL_set_fd(k->ssl, k->fd);
        (void)SSL_connect(k->ssl); /* sends the ClientHello, then wants to read */
        k->handshaking = s.tls;
    }
}

/* Mode tls: go on with the handshake; false when it failed (closed). */
static bool
sock_handshake(sock *k)
{
    int r = SSL_connect(k->ssl);
    if (r == 1) {
        k->handshaking = false;
        s.tls_done++;
        return true;
    }
    int e = SSL_get_error(k->ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Readable: whatever the server sent is discarded; EOF or an error means
 * it closed the connection. */
static void
sock_readable(sock *k)
{
    char buf[4096];
    if (k->handshaking && sock_handshake(k))
        return;
    for (;;) {
        ssize_t n = k->handshaking ? 0 : recv(k->fd, buf, sizeof(buf), 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        s.closed++;
        sock_close(k);
        if (s.reopen && !stop)
            sock_open(k);
        return;
    }
}

static void
sock_event(sock *k, uint32_t events)
{
    if (!k->connected) {
        bool first = k->first;
        k->first = false;
        if (first)
            s.first_done++;
        sock_connected(k);
        if (!k->connected || !(events & (EPOLLIN | EPOLLRDHUP)))
            return;
    }
    if (k->fd >= 0)
        sock_readable(k);
}

/* The client context of modes hello and tls: no check of the server. */
static bool
make_ctx(void)
{
    s.ctx = SSL_CTX_new(TLS_client_method());
    if (s.ctx == NULL)
        return false;
    SSL_CTX_set_verify(s.ctx, SSL_VERIFY_NONE, NULL);
    if (s.cert &&
        (SSL_CTX_use_certificate_chain_file(s.ctx, s.cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(s.ctx, s.key ? s.key : s.cert, SSL_FILETYPE_PEM) != 1)) {
        fprintf(stderr, "tool-silent: could not load %s\n", s.cert);
        return false;
    }
    return true;
}

static int
usage(void)
{
    fprintf(stderr, "usage: tool-silent --port P [--host H] [--count N] [--mode tcp|hello|tls] "
                    "[--cert C --key K] [--reopen] [--seconds S]\n");
    return 2;
}

/* One "--option value" pair; false when it is not one of ours. */
static bool
parse_option(const char *a, const char *v, const char **host, int *port)
{
    if (strcmp(a, "--host") == 0)
        *host = v;
    else if (strcmp(a, "--port") == 0)
        *port = atoi(v);
    else if (strcmp(a, "--count") == 0)
        s.count = atoi(v);
    else if (strcmp(a, "--seconds") == 0)
        s.seconds = atof(v);
    else if (strcmp(a, "--cert") == 0)
        s.cert = v;
    else if (strcmp(a, "--key") == 0)
        s.key = v;
    else if (strcmp(a, "--mode") == 0 && strcmp(v, "hello") == 0)
        s.hello = true;
    else if (strcmp(a, "--mode") == 0 && strcmp(v, "tls") == 0)
        s.tls = true;
    else
        return strcmp(a, "--mode") == 0 && strcmp(v, "tcp") == 0;
    return true;
}

static bool
parse_args(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0;
    s.count = 100;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reopen") == 0) {
            s.reopen = true;
            continue;
        }
        if (i + 1 >= argc || !parse_option(argv[i], argv[i + 1], &host, &port))
            return false;
        i++;
    }
    s.addr.sin_family = AF_INET;
    s.addr.sin_port = htons((uint16_t)port);
    return port > 0 && s.count > 0 && inet_pton(AF_INET, host, &s.addr.sin_addr) == 1;
}

static void
raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)s.count + 16)
        fprintf(stderr, "tool-silent: the open-file limit (%lu) is below --count %d\n",
                (unsigned long)rl.rlim_cur, s.count);
}

int
main(int argc, char **argv)
{
    if (!parse_args(argc, argv))
        return usage();
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if ((s.hello || s.tls) && !make_ctx())
        return 1;
    sock *socks = calloc((size_t)s.count, sizeof(sock));
    if (s.ep < 0 || socks == NULL)
        return 1;
    for (int i = 0; i < s.count; i++) {
        sock_open(&socks[i]);
        if (socks[i].fd < 0)
            s.first_done++;
        else
            socks[i].first = true;
    }
    bool ready = false;
    double end = s.seconds > 0 ? now_s() + s.seconds : 0;
    struct epoll_event evs[256];
    while (!stop && (end == 0 || now_s() < end)) {
        if (!ready && s.first_done >= s.count) {
            printf("ready connected=%ld closed_by_server=%ld failed=%ld\n", s.connected, s.closed,
                   s.failed);
            fflush(stdout);
            ready = true;
        }
        int n = epoll_wait(s.ep, evs, 256, 100);
        for (int i = 0; i < n; i++)
            sock_event(evs[i].data.ptr, evs[i].events);
    }
    printf("silent: opened=%ld connected=%ld tls=%ld failed=%ld closed_by_server=%ld open=%d\n",
           s.opened, s.connected, s.tls_done, s.failed, s.closed, s.open_now);
    for (int i = 0; i < s.count; i++)
        if (socks[i].fd >= 0)
            sock_close(&socks[i]);
    free(socks);
    SSL_CTX_free(s.ctx);
    close(s.ep);
    return 0;
}
