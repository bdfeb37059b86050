/*
 * floor_main.c — bench-floor: what the coordinator's messages cost on this
 * machine when nothing else is done with them (make bench-floor).
 *
 * A relay process passes the messages of a bank transfer exactly as the
 * coordinator does, through the same connection layer (common/conn.c: TLS,
 * framing, one write per peer per loop turn), but keeps no transaction
 * table, writes no log and decodes nothing but a one-byte kind and a tag:
 *
 *   dtx          three client round trips: a statement for A (relayed to
 *                backend A and back), a statement for B (likewise), and the
 *                commit (to A and B at once, both answers; to A and B again,
 *                both answers; then the answer to the client)
 *   dtx_oneshot  one client round trip carrying the same two rounds
 *
 * Two backends, each a process of its own as each participant is, answer
 * every frame as participants answer the coordinator (one connection each
 * from the relay,
 * shared by all transactions).  The clients run in the main process, each
 * on its own TLS connection, each starting its next transaction when the
 * last one is answered.  Every hop is TLS with client certificates, like the
 * daemons'; messages are --size bytes (default 100, about what a transfer's
 * frames are).
 *
 * The relay's CPU time per transaction is therefore a floor for the
 * coordinator's coordinator_cpu_ms in make bench: what the kernel (loopback
 * TCP, wake-ups), OpenSSL and libevent cost for the transaction's messages,
 * before any transaction logic, log write or fdatasync.
 *
 * With --log DIR the relay also logs as the coordinator does, through the
 * same library (wal/): between the commit's two rounds it appends an
 * 80-byte record and starts the second round only once that record is
 * durable (wal_notify_durable: group commit, the writer thread, the
 * event loop's wake-up); after the second round it appends a 32-byte record
 * nobody waits for (the coordinator's END).  That floor leaves out only the
 * transaction logic.  One JSON line per run:
 *
 *   {"mode":"dtx","clients":16,"txns":...,"tps":...,"relay_cpu_ms":...,
 *    "relay_syscalls":...,"relay_switches":...,"backend_cpu_ms":...}
 *
 * Usage: bench-floor --certs DIR [--mode dtx|dtx_oneshot] [--clients N]
 *        [--seconds S] [--size BYTES] [--delay-us US] [--log DIR]
 * DIR holds ca.crt, coord.crt/.key (relay and backends) and app.crt/.key
 * (clients and the relay's connections to the backends), as
 * tests/lib/gencerts.sh makes them.
 */
#include "benchproc.h"
#include "buf.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "tls.h"
#include "wal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME 65536
#define FT_MSG    'M'

static const char *certs = NULL;
static bool oneshot = false;
static int nclients = 16;
static double seconds = 5;
static uint32_t msg_size = 100;
static int delay_us = 0;
static const char *log_dir = NULL;
static struct event_base *base;
static uint8_t *msg; /* msg_size bytes: kind, tag, zero padding */
static wbuf out;     /* one frame, reused */

static void
die(const char *what)
{
    fprintf(stderr, "bench-floor: %s\n", what);
    exit(1);
}

static SSL_CTX *
ctx_make(bool server, const char *name)
{
    char cert[512], key[512], ca[512], err[256];
    snprintf(cert, sizeof(cert), "%s/%s.crt", certs, name);
    snprintf(key, sizeof(key), "%s/%s.key", certs, name);
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    tls_config cfg = {.cert_file = cert, .key_file = key, .ca_file = ca};
    cfg.require_peer_cert = server;
    SSL_CTX *ctx = server ? tls_server_ctx_create(&cfg, err, sizeof(err))
                          : tls_client_ctx_create(&cfg, err, sizeof(err));
    if (ctx == NULL)
        die(err);
    return ctx;
}

/* A listening socket on 127.0.0.1 at a free port, which is returned. */
static int
listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die(strerror(errno));
    *port = ntohs(sa.sin_port);
    return fd;
}

static void
send_bytes(conn *c, const void *payload, uint32_t len)
{
    wbuf_reset(&out);
    if (!frame_put(&out, FT_MSG, payload, len) || !wbuf_ok(&out))
        die("out of memory");
    conn_send(c, &out);
}

static void
send_msg(conn *c, uint8_t kind, uint32_t tag)
{
    msg[0] = kind;
    buf_store_u32(msg + 1, tag);
    send_bytes(c, msg, msg_size);
}

static bool
msg_parse(const frame_view *f, uint8_t *kind, uint32_t *tag)
{
    if (f->type != FT_MSG || f->len < 5)
        return false;
    *kind = f->payload[0];
    *tag = buf_load_u32(f->payload + 1);
    return true;
}

static void
on_open_nop(conn *c, const char *peer, void *arg)
{
    (void)c, (void)peer, (void)arg;
}

static void
on_close_exit(conn *c, const char *reason, void *arg)
{
    (void)c, (void)reason, (void)arg;
    exit(0); /* the other side is gone: the run is over */
}

static void
serve(int lfd, evconnlistener_cb cb, void *arg)
{
    if (evconnlistener_new(base, cb, arg, LEV_OPT_CLOSE_ON_FREE, -1, lfd) == NULL)
        die("could not listen");
}

static void
report_port(int pipe_fd, int port)
{
    if (write(pipe_fd, &port, sizeof(port)) != (ssize_t)sizeof(port))
        die("could not report a port");
}

/* ------------------------------------------------------------------------
 * Backends: answer every frame with its own bytes, as soon as it arrives.
 */

static SSL_CTX *backend_ctx;
static struct timeval backend_delay;

typedef struct delayed {
    conn *c;
    uint32_t len;
    uint8_t payload[];
} delayed;

static void
backend_answer(evutil_socket_t fd, short what, void *arg)
{
    delayed *d = arg;
    (void)fd, (void)what;
    send_bytes(d->c, d->payload, d->len);
    free(d);
}

static void
backend_on_frame(conn *c, const frame_view *f, void *arg)
{
    (void)arg;
    if (backend_delay.tv_usec == 0) {
        send_bytes(c, f->payload, f->len);
        return;
    }
    delayed *d = malloc(sizeof(*d) + f->len);
    if (d == NULL)
        die("out of memory");
    d->c = c;
    d->len = f->len;
    memcpy(d->payload, f->payload, f->len);
    if (event_base_once(base, -1, EV_TIMEOUT, backend_answer, d, &backend_delay) != 0)
        die("could not add a timer");
}

static const conn_ops backend_ops = {on_open_nop, backend_on_frame, on_close_exit};

static void
backend_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
               void *arg)
{
    (void)l, (void)sa, (void)len, (void)arg;
    if (conn_accept(base, backend_ctx, fd, MAX_FRAME, &backend_ops, NULL) == NULL)
        die("could not accept");
}

static void
backend_main(int pipe_fd)
{
    /* libevent's default clock is coarse (a tick of several ms): the answer
     * delay needs the precise one */
    struct event_config *cfg = event_config_new();
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0)
        die("out of memory");
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    backend_ctx = ctx_make(true, "coord");
    backend_delay.tv_usec = delay_us;
    int port, fd = listen_any(&port);
    serve(fd, backend_accept, NULL);
    report_port(pipe_fd, port);
    event_base_dispatch(base);
    exit(0);
}

/* ------------------------------------------------------------------------
 * The relay: the coordinator's message flow, and nothing else.
 */

typedef struct rclient {
    conn *c;
    uint32_t tag; /* its index in rclients, carried by the backend frames */
    uint8_t kind; /* 'a', 'b': a statement; 'c', 'o': a commit round */
    int round, waiting;
} rclient;

static SSL_CTX *relay_server_ctx, *relay_client_ctx;
static wal_t *relay_log;
static conn *backend[2];
static int backends_open, relay_pipe, relay_port, relay_lfd;
static rclient **rclients;
static uint32_t nrclients;

static void
relay_on_client_frame(conn *c, const frame_view *f, void *arg)
{
    rclient *r = arg;
    uint8_t kind;
    uint32_t client_tag; /* the clients send 0; backends get r->tag */
    (void)c;
    if (!msg_parse(f, &kind, &client_tag))
        die("malformed frame from a client");
    r->kind = kind;
    uint32_t tag = r->tag;
    switch (kind) {
    case 'a':
    case 'b':
        send_msg(backend[kind - 'a'], kind, tag);
        return;
    default:
        r->round = 1;
        r->waiting = 2;
        send_msg(backend[0], kind, tag);
        send_msg(backend[1], kind, tag);
    }
}

static void
relay_on_client_close(conn *c, const char *reason, void *arg)
{
    (void)c, (void)reason, (void)arg;
    exit(0);
}

static const conn_ops relay_client_ops = {on_open_nop, relay_on_client_frame,
                                          relay_on_client_close};

static void
relay_round_two(void *arg, uint64_t lsn)
{
    rclient *r = arg;
    (void)lsn;
    r->round = 2;
    r->waiting = 2;
    send_msg(backend[0], r->kind, r->tag);
    send_msg(backend[1], r->kind, r->tag);
}

static void
relay_on_backend_frame(conn *c, const frame_view *f, void *arg)
{
    uint8_t kind;
    uint32_t tag;
    (void)c, (void)arg;
    if (!msg_parse(f, &kind, &tag) || tag >= nrclients)
        die("malformed frame from a backend");
    rclient *r = rclients[tag];
    if (r->kind == 'a' || r->kind == 'b') {
        send_msg(r->c, 'r', 0);
        return;
    }
    if (--r->waiting > 0)
        return;
    if (r->round == 1) {
        if (relay_log) {
            /* the decision record, durable before the second round */
            wal_notify_durable(relay_log, wal_append(relay_log, 1, msg, 80), relay_round_two, r);
            return;
        }
        relay_round_two(r, 0);
        return;
    }
    if (relay_log)
        (void)wal_append(relay_log, 2, msg, 32); /* the END, nobody waits */
    send_msg(r->c, 'r', 0);
}

static void
relay_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)l, (void)sa, (void)len, (void)arg;
    rclient **grown = realloc(rclients, (nrclients + 1) * sizeof(*rclients));
    rclient *r = calloc(1, sizeof(*r));
    if (grown == NULL || r == NULL)
        die("out of memory");
    rclients = grown;
    r->tag = nrclients;
    rclients[nrclients++] = r;
    r->c = conn_accept(base, relay_server_ctx, fd, MAX_FRAME, &relay_client_ops, r);
    if (r->c == NULL)
        die("could not accept");
}

static void
relay_on_backend_open(conn *c, const char *peer, void *arg)
{
    (void)c, (void)peer, (void)arg;
    if (++backends_open == 2) {
        serve(relay_lfd, relay_accept, NULL);
        report_port(relay_pipe, relay_port);
    }
}

static const conn_ops relay_backend_ops = {relay_on_backend_open, relay_on_backend_frame,
                                           on_close_exit};

static void
relay_main(int pipe_fd, const int *backend_ports)
{
    relay_server_ctx = ctx_make(true, "coord");
    relay_client_ctx = ctx_make(false, "app");
    relay_pipe = pipe_fd;
    relay_lfd = listen_any(&relay_port);
    if (log_dir) {
        char err[512];
        relay_log = wal_open(log_dir, NULL, err, sizeof(err));
        if (relay_log == NULL || !wal_attach_event_base(relay_log, base, err, sizeof(err)))
            die(err);
    }
    for (int i = 0; i < 2; i++) {
        backend[i] = conn_connect(base, relay_client_ctx, "127.0.0.1", backend_ports[i],
                                  "localhost", MAX_FRAME, &relay_backend_ops, NULL);
        if (backend[i] == NULL)
            die("could not connect to a backend");
    }
    event_base_dispatch(base);
    exit(0);
}

/* ------------------------------------------------------------------------
 * The clients, and the measurement.
 */

typedef struct client {
    conn *c;
    int step; /* dtx: 0 statement A, 1 statement B, 2 commit */
} client;

static const uint8_t steps[] = {'a', 'b', 'c'};
static client *clients;
static int opened;
static long txns;
static bool stopping;
static int relay_pid, backend_pid[2];

typedef struct sample {
    double t, relay_ms, backend_ms, syscalls, switches;
    long txns;
} sample;
static sample s0;

static void
take(sample *s)
{
    int ppid;
    double children;
    s->t = now_s();
    s->txns = txns;
    double b0, b1;
    if (!proc_stat(relay_pid, &ppid, &s->relay_ms, &children) ||
        !proc_stat(backend_pid[0], &ppid, &b0, &children) ||
        !proc_stat(backend_pid[1], &ppid, &b1, &children) ||
        !proc_counts(relay_pid, &s->syscalls, &s->switches))
        die("could not read /proc of the relay or the backends");
    s->backend_ms = b0 + b1;
}

static void
client_next(client *cl)
{
    send_msg(cl->c, oneshot ? 'o' : steps[cl->step], 0);
}

static void
client_on_open(conn *c, const char *peer, void *arg)
{
    (void)c, (void)peer, (void)arg;
    if (++opened == nclients)
        for (int i = 0; i < nclients; i++)
            client_next(&clients[i]);
}

static void
client_on_frame(conn *c, const frame_view *f, void *arg)
{
    client *cl = arg;
    (void)c, (void)f;
    if (oneshot || ++cl->step == 3) {
        cl->step = 0;
        txns++;
    }
    if (!stopping)
        client_next(cl);
}

static const conn_ops client_ops = {client_on_open, client_on_frame, on_close_exit};

static void
window_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    sample s1;
    take(&s1);
    stopping = true;
    double n = (double)(s1.txns - s0.txns), dt = s1.t - s0.t;
    if (n <= 0)
        die("no transaction completed");
    printf("{\"mode\":\"%s\",\"log\":%s,\"clients\":%d,\"txns\":%ld,\"tps\":%.1f,\"relay_cpu_ms\":%"
           ".3f,"
           "\"relay_syscalls\":%.2f,\"relay_switches\":%.2f,\"backend_cpu_ms\":%.3f}\n",
           oneshot ? "dtx_oneshot" : "dtx", log_dir ? "true" : "false", nclients, s1.txns - s0.txns,
           n / dt, (s1.relay_ms - s0.relay_ms) / n, (s1.syscalls - s0.syscalls) / n,
           (s1.switches - s0.switches) / n, (s1.backend_ms - s0.backend_ms) / n);
    fflush(stdout);
    event_base_loopbreak(base);
}

static void
window_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    if (opened < nclients)
        die("the clients did not all connect within 10 s");
    take(&s0);
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    event_base_once(base, -1, EV_TIMEOUT, window_end, NULL, &tv);
}

static int
read_port(int fd)
{
    int port;
    if (read(fd, &port, sizeof(port)) != (ssize_t)sizeof(port))
        die("a helper process did not start");
    return port;
}

static pid_t
spawn(int *pipe_rd)
{
    int p[2];
    if (pipe(p) != 0)
        die(strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die(strerror(errno));
    if (pid == 0) {
        close(p[0]);
        *pipe_rd = p[1];
        return 0;
    }
    close(p[1]);
    *pipe_rd = p[0];
    return pid;
}

static void
usage(void)
{
    fprintf(stderr, "usage: bench-floor --certs DIR [--mode dtx|dtx_oneshot] [--clients N] "
                    "[--seconds S] [--size BYTES] [--delay-us US] [--log DIR]\n");
    exit(3);
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--certs") == 0)
            certs = v;
        else if (strcmp(a, "--mode") == 0 &&
                 (strcmp(v, "dtx") == 0 || strcmp(v, "dtx_oneshot") == 0))
            oneshot = strcmp(v, "dtx_oneshot") == 0;
        else if (strcmp(a, "--clients") == 0 && atoi(v) > 0 && atoi(v) <= 4096)
            nclients = atoi(v);
        else if (strcmp(a, "--seconds") == 0 && atof(v) > 0)
            seconds = atof(v);
        else if (strcmp(a, "--delay-us") == 0 && atoi(v) >= 0 && atoi(v) < 1000000)
            delay_us = atoi(v);
        else if (strcmp(a, "--log") == 0)
            log_dir = v;
        else if (strcmp(a, "--size") == 0 && atoi(v) >= 5 && atoi(v) <= MAX_FRAME)
            msg_size = (uint32_t)atoi(v);
        else
            usage();
    }
    if (certs == NULL)
        usage();
    signal(SIGPIPE, SIG_IGN);
    msg = calloc(1, msg_size < 80 ? 80 : msg_size); /* the log's records come from it too */
    if (msg == NULL)
        die("out of memory");
    wbuf_init(&out);

    int rd, ports[2];
    for (int i = 0; i < 2; i++) {
        backend_pid[i] = spawn(&rd);
        if (backend_pid[i] == 0)
            backend_main(rd);
        ports[i] = read_port(rd);
        close(rd);
    }
    relay_pid = spawn(&rd);
    if (relay_pid == 0) {
        base = event_base_new();
        relay_main(rd, ports);
    }
    int relay_at = read_port(rd);
    close(rd);

    base = event_base_new();
    SSL_CTX *ctx = ctx_make(false, "app");
    clients = calloc((size_t)nclients, sizeof(*clients));
    if (base == NULL || clients == NULL)
        die("out of memory");
    for (int i = 0; i < nclients; i++) {
        clients[i].c = conn_connect(base, ctx, "127.0.0.1", relay_at, "localhost", MAX_FRAME,
                                    &client_ops, &clients[i]);
        if (clients[i].c == NULL)
            die("could not connect to the relay");
    }
    /* one second to connect and warm up, then the measured window */
    struct timeval warm = {1, 0};
    event_base_once(base, -1, EV_TIMEOUT, window_start, NULL, &warm);
    event_base_dispatch(base);
    kill(relay_pid, SIGKILL);
    kill(backend_pid[0], SIGKILL);
    kill(backend_pid[1], SIGKILL);
    waitpid(relay_pid, NULL, 0);
    waitpid(backend_pid[0], NULL, 0);
    waitpid(backend_pid[1], NULL, 0);
    return 0;
}
