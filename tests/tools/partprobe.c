/*
 * partprobe.c — a scripted coordinator stand-in for testing dtx-participant.
 *
 * A blocking TLS client: it connects with a client certificate, then reads a
 * script (one command per line, from stdin or -e arguments) and prints every
 * frame it receives as one line, for a shell test to grep.
 *
 * Usage:
 *   tool-partprobe --host H --port P --ca CA [--cert C --key K] [--timeout S]
 *                  [-e 'command' ...]        (without -e: commands from stdin)
 *
 * Commands:
 *   hello [NAME [EPOCH [ROLE [MAJOR]]]]  send HELLO (default coord, 1, 2=coordinator,
 *                                        PROTO_MAJOR) and print the reply; it carries
 *                                        no instance (the HELLO of older coordinators)
 *   hello-instance NAME EPOCH INSTANCE   send a coordinator's HELLO with an instance
 *                                        and print the reply
 *   work TAG FLAGS BRANCH [EPOCH]        start a WORK; FLAGS: open,prepare,commit,
 *                                        rollback joined by ',' or a number; "none"
 *   sql TEXT                             add a statement to the pending WORK
 *   param TEXT | nullparam               add a parameter to the last statement
 *   send                                 send the WORK, print replies up to its DONE
 *   send-nowait                          send the WORK, do not wait
 *   finish TAG commit|rollback BRANCH [XID [EPOCH]]   send FINISH, print the DONE
 *   list TAG PREFIX [EPOCH]              send LIST, print the LIST_REPLY or DONE
 *   cancel TAG BRANCH [EPOCH]            send CANCEL, print frames up to its DONE
 *   wait TAG                             print frames until the final one of TAG
 *   raw TYPE HEX                         send a frame of type TYPE (a character)
 *   expect-close                         print frames until the server closes
 *   sleep MS                             pause
 *   quit                                 close the socket abruptly (no TLS close)
 *
 * Output lines (values of statements: '|' between columns, \N for NULL):
 *   CONNECTED | TLS-ERROR <text> | CLOSED | TIMEOUT
 *   HELLO_OK server=NAME epoch=N
 *   ERROR tag=T sqlstate=S message="..."
 *   RESULT tag=T cmd="..." affected=N cols=name:oid,... rows=N
 *   ROW v1|v2|...
 *   DONE tag=T status=NAME xid=N xact=NAME sqlstate=S message="..." [detail="..."] [hint="..."]
 *   LIST tag=T n=N
 *   ENTRY gid=G xid=N prepared_ms=N
 * Exit status: 0 unless the connection or a command could not be made.
 */
#include "buf.h"
#include "frame.h"
#include "proto.h"
#include "tls.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_MAX_FRAME  (64u * 1024 * 1024)
#define PROBE_MAX_STMTS  256
#define PROBE_MAX_PARAMS 64

static SSL *ssl;
static int sock = -1;
static int timeout_ms = 10000;
static uint8_t *inbuf;
static size_t inlen, incap;
static bool closed;

typedef struct pending_stmt {
    char *sql;
    int nparams;
    char *params[PROBE_MAX_PARAMS];
    bool isnull[PROBE_MAX_PARAMS];
} pending_stmt;

static struct {
    bool active;
    uint32_t tag;
    uint64_t epoch;
    uint8_t flags;
    char *branch;
    int n;
    pending_stmt stmts[PROBE_MAX_STMTS];
} work;

static uint64_t default_epoch = 1;

/* tags whose final frame was already printed (for "wait TAG") */
#define PROBE_MAX_SEEN 1024
static uint32_t seen_tags[PROBE_MAX_SEEN];
static int nseen;

static bool
seen_final(uint32_t tag)
{
    for (int i = 0; i < nseen; i++) {
        if (seen_tags[i] == tag)
            return true;
    }
    return false;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Print a string with quotes and newlines escaped. */
static void
put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static bool
send_wbuf(const wbuf *w)
{
    size_t off = 0;
    while (off < w->len) {
        int n = SSL_write(ssl, w->data + off, (int)(w->len - off));
        if (n <= 0) {
            char err[256];
            tls_io_error_text(ssl, n, err, sizeof(err));
            out("TLS-ERROR %s", err);
            closed = true;
            return false;
        }
        off += (size_t)n;
    }
    return true;
}

/* Read until one whole frame is buffered; false on close/error/timeout. */
static bool
read_frame(frame_view *f, size_t *consumed)
{
    for (;;) {
        if (inlen >= FRAME_HEADER_SIZE) {
            frame_status st = frame_decode(inbuf, inlen, PROBE_MAX_FRAME, f, consumed);
            if (st == FRAME_OK)
                return true;
            if (st == FRAME_TOO_LARGE) {
                out("TLS-ERROR frame too large");
                return false;
            }
        }
        if (closed)
            return false;
        if (SSL_pending(ssl) == 0) {
            struct pollfd pfd = {.fd = sock, .events = POLLIN};
            int r = poll(&pfd, 1, timeout_ms);
            if (r == 0) {
                out("TIMEOUT");
                return false;
            }
        }
        if (incap - inlen < 65536) {
            incap = incap ? incap * 2 : 262144;
            inbuf = realloc(inbuf, incap);
            if (inbuf == NULL) {
                perror("realloc");
                exit(2);
            }
        }
        int n = SSL_read(ssl, inbuf + inlen, (int)(incap - inlen));
        if (n <= 0) {
            int e = SSL_get_error(ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                continue;
            if (e == SSL_ERROR_ZERO_RETURN) {
                out("CLOSED");
            } else {
                char err[256];
                tls_io_error_text(ssl, n, err, sizeof(err));
                if (strstr(err, "closed by peer") || strstr(err, "EOF"))
                    out("CLOSED");
                else
                    out("TLS-ERROR %s", err);
            }
            closed = true;
            return false;
        }
        inlen += (size_t)n;
    }
}

static void
drop_frame(size_t consumed)
{
    memmove(inbuf, inbuf + consumed, inlen - consumed);
    inlen -= consumed;
}

static const char *
xact_name(uint8_t x)
{
    switch (x) {
    case XACT_COMMITTED:
        return "committed";
    case XACT_ABORTED:
        return "aborted";
    case XACT_IN_PROGRESS:
        return "in_progress";
    default:
        return "unknown";
    }
}

/* Print one frame; returns its tag via *tag and whether it is final for it. */
static bool
print_frame(const frame_view *f, uint32_t *tag)
{
    *tag = 0;
    switch (f->type) {
    case MSG_HELLO_OK: {
        proto_hello_ok h;
        if (!proto_get_hello_ok(f, &h)) {
            out("BAD-FRAME HELLO_OK");
            return true;
        }
        out("HELLO_OK server=%s epoch=%llu", h.server_name, (unsigned long long)h.epoch);
        return true;
    }
    case MSG_ERROR: {
        proto_error e;
        if (!proto_get_error(f, &e)) {
            out("BAD-FRAME ERROR");
            return true;
        }
        *tag = e.tag;
        printf("ERROR tag=%u sqlstate=%s message=", e.tag, e.sqlstate);
        put_quoted(stdout, e.message);
        fputc('\n', stdout);
        fflush(stdout);
        return true;
    }
    case MSG_RESULT: {
        proto_result r;
        if (!proto_get_result(f, &r)) {
            out("BAD-FRAME RESULT");
            return false;
        }
        *tag = r.tag;
        printf("RESULT tag=%u cmd=", r.tag);
        put_quoted(stdout, r.command_tag);
        printf(" affected=%llu cols=", (unsigned long long)r.affected);
        for (uint16_t c = 0; c < r.ncols; c++)
            printf("%s%s:%u", c ? "," : "", r.col_names[c], r.col_types[c]);
        printf(" rows=%u\n", r.nrows);
        for (uint32_t i = 0; i < r.nrows && i < 1000; i++) {
            fputs("ROW ", stdout);
            for (uint16_t c = 0; c < r.ncols; c++) {
                const char *v = r.values[(size_t)i * r.ncols + c];
                printf("%s%s", c ? "|" : "", v ? v : "\\N");
            }
            fputc('\n', stdout);
        }
        fflush(stdout);
        proto_result_clear(&r);
        return false;
    }
    case MSG_DONE: {
        proto_done d;
        if (!proto_get_done(f, &d)) {
            out("BAD-FRAME DONE");
            return true;
        }
        *tag = d.tag;
        printf("DONE tag=%u status=%s xid=%llu xact=%s sqlstate=%s message=", d.tag,
               proto_done_status_name((done_status)d.status), (unsigned long long)d.xid,
               xact_name(d.xact_status), d.sqlstate ? d.sqlstate : "-");
        put_quoted(stdout, d.message ? d.message : "");
        if (d.detail) {
            fputs(" detail=", stdout);
            put_quoted(stdout, d.detail);
        }
        if (d.hint) {
            fputs(" hint=", stdout);
            put_quoted(stdout, d.hint);
        }
        fputc('\n', stdout);
        fflush(stdout);
        return true;
    }
    case MSG_LIST_REPLY: {
        proto_list_reply l;
        if (!proto_get_list_reply(f, &l)) {
            out("BAD-FRAME LIST_REPLY");
            return true;
        }
        *tag = l.tag;
        out("LIST tag=%u n=%u", l.tag, l.n);
        for (uint32_t i = 0; i < l.n; i++)
            out("ENTRY gid=%s xid=%llu prepared_ms=%llu", l.entries[i].gid,
                (unsigned long long)l.entries[i].xid, (unsigned long long)l.entries[i].prepared_ms);
        proto_list_reply_clear(&l);
        return true;
    }
    default:
        out("FRAME type=%c len=%u", f->type, f->len);
        return false;
    }
}

/* Print frames until the final frame of `tag` (ERROR tag 0 is final for all). */
static bool
wait_for(uint32_t tag, bool any)
{
    if (!any && seen_final(tag))
        return true;
    for (;;) {
        frame_view f;
        size_t consumed;
        if (!read_frame(&f, &consumed))
            return false;
        uint32_t t;
        bool final = print_frame(&f, &t);
        drop_frame(consumed);
        if (final && nseen < PROBE_MAX_SEEN)
            seen_tags[nseen++] = t;
        if (final && (any || t == tag || (f.type == MSG_ERROR && t == 0)))
            return true;
    }
}

static uint8_t
parse_flags(const char *s)
{
    if (s[0] >= '0' && s[0] <= '9')
        return (uint8_t)strtoul(s, NULL, 0);
    uint8_t fl = 0;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",+", &save); t; t = strtok_r(NULL, ",+", &save)) {
        if (strcmp(t, "open") == 0)
            fl |= WORK_OPEN;
        else if (strcmp(t, "prepare") == 0)
            fl |= WORK_PREPARE;
        else if (strcmp(t, "commit") == 0)
            fl |= WORK_COMMIT;
        else if (strcmp(t, "rollback") == 0)
            fl |= WORK_ROLLBACK;
        else if (strcmp(t, "none") != 0)
            fprintf(stderr, "partprobe: unknown flag %s\n", t);
    }
    return fl;
}

static void
work_reset(void)
{
    for (int i = 0; i < work.n; i++) {
        free(work.stmts[i].sql);
        for (int j = 0; j < work.stmts[i].nparams; j++)
            free(work.stmts[i].params[j]);
        memset(&work.stmts[i], 0, sizeof(work.stmts[i]));
    }
    free(work.branch);
    memset(&work, 0, sizeof(work));
}

static bool
work_send(bool wait)
{
    if (!work.active) {
        fprintf(stderr, "partprobe: send without work\n");
        return false;
    }
    proto_stmt st[PROBE_MAX_STMTS];
    const char *params[PROBE_MAX_STMTS][PROBE_MAX_PARAMS];
    for (int i = 0; i < work.n; i++) {
        st[i].participant = "";
        st[i].sql = work.stmts[i].sql;
        st[i].nparams = (uint16_t)work.stmts[i].nparams;
        for (int j = 0; j < work.stmts[i].nparams; j++)
            params[i][j] = work.stmts[i].isnull[j] ? NULL : work.stmts[i].params[j];
        st[i].params = params[i];
    }
    proto_work m = {.tag = work.tag,
                    .epoch = work.epoch,
                    .branch = work.branch,
                    .flags = work.flags,
                    .body = {.n = (uint16_t)work.n, .stmts = st}};
    wbuf w;
    wbuf_init(&w);
    bool ok = proto_put_work(&w, &m) && send_wbuf(&w);
    wbuf_free(&w);
    uint32_t tag = work.tag;
    work_reset();
    if (ok && wait)
        return wait_for(tag, false);
    return ok;
}

static char *
next_tok(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return NULL;
    char *t = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    *p = s;
    return t;
}

/* "hello [NAME [EPOCH [ROLE [MAJOR]]]]" or "hello-instance NAME EPOCH
 * INSTANCE": send HELLO, print the reply. */
static bool
send_hello(const char *cmd, char *p)
{
    bool with_instance = strcmp(cmd, "hello-instance") == 0;
    char *name = next_tok(&p), *ep = next_tok(&p);
    char *role = NULL, *major = NULL, *inst = NULL;
    if (with_instance) {
        inst = next_tok(&p);
    } else {
        role = next_tok(&p);
        major = next_tok(&p);
    }
    if (with_instance && (name == NULL || ep == NULL || inst == NULL)) {
        fprintf(stderr, "partprobe: hello-instance NAME EPOCH INSTANCE\n");
        return false;
    }
    proto_hello h = {.magic = PROTO_MAGIC,
                     .major = major ? (uint16_t)atoi(major) : PROTO_MAJOR,
                     .minor = PROTO_MINOR,
                     .role = role ? (uint8_t)atoi(role) : ROLE_COORDINATOR,
                     .name = name ? name : "coord",
                     .epoch = ep ? strtoull(ep, NULL, 10) : default_epoch,
                     .instance = inst ? strtoull(inst, NULL, 10) : 0};
    if (ep)
        default_epoch = h.epoch;
    wbuf w;
    wbuf_init(&w);
    bool ok = proto_put_hello(&w, &h) && send_wbuf(&w);
    wbuf_free(&w);
    return ok && wait_for(0, true);
}

static char *
rest_of(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* "finish TAG commit|rollback BRANCH [XID [EPOCH]]" */
static bool
send_finish(char *p)
{
    char *tag = next_tok(&p), *how = next_tok(&p), *br = next_tok(&p), *xid = next_tok(&p),
         *ep = next_tok(&p);
    if (!tag || !how || !br)
        return false;
    proto_finish m = {.tag = (uint32_t)strtoul(tag, NULL, 10),
                      .epoch = ep ? strtoull(ep, NULL, 10) : default_epoch,
                      .branch = br,
                      .commit = strcmp(how, "commit") == 0,
                      .xid = xid ? strtoull(xid, NULL, 10) : 0};
    wbuf w;
    wbuf_init(&w);
    bool ok = proto_put_finish(&w, &m) && send_wbuf(&w);
    wbuf_free(&w);
    return ok && wait_for(m.tag, false);
}

/* "list TAG PREFIX [EPOCH]" */
static bool
send_list(char *p)
{
    char *tag = next_tok(&p), *prefix = next_tok(&p), *ep = next_tok(&p);
    if (!tag)
        return false;
    proto_list m = {.tag = (uint32_t)strtoul(tag, NULL, 10),
                    .epoch = ep ? strtoull(ep, NULL, 10) : default_epoch,
                    .prefix = prefix ? prefix : ""};
    wbuf w;
    wbuf_init(&w);
    bool ok = proto_put_list(&w, &m) && send_wbuf(&w);
    wbuf_free(&w);
    return ok && wait_for(m.tag, false);
}

/* "cancel TAG BRANCH [EPOCH]" */
static bool
send_cancel(char *p)
{
    char *tag = next_tok(&p), *br = next_tok(&p), *ep = next_tok(&p);
    if (!tag || !br) {
        fprintf(stderr, "partprobe: cancel TAG BRANCH [EPOCH]\n");
        return false;
    }
    proto_cancel m = {.tag = (uint32_t)strtoul(tag, NULL, 10),
                      .epoch = ep ? strtoull(ep, NULL, 10) : default_epoch,
                      .branch = br};
    wbuf w;
    wbuf_init(&w);
    bool ok = proto_put_cancel(&w, &m) && send_wbuf(&w);
    wbuf_free(&w);
    return ok && wait_for(m.tag, false);
}

/* "raw TYPE HEX": a frame of any type with the given bytes, no wait */
static bool
send_raw(char *p)
{
    char *type = next_tok(&p), *hex = next_tok(&p);
    if (!type)
        return false;
    size_t hl = hex ? strlen(hex) / 2 : 0;
    uint8_t *pl = calloc(1, hl + 1);
    for (size_t i = 0; i < hl; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        pl[i] = (uint8_t)v;
    }
    wbuf w;
    wbuf_init(&w);
    bool ok = frame_put(&w, (uint8_t)type[0], pl, (uint32_t)hl) && send_wbuf(&w);
    wbuf_free(&w);
    free(pl);
    return ok;
}

static bool
run_command(char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    char *p = line;
    char *cmd = next_tok(&p);
    if (cmd == NULL || cmd[0] == '#')
        return true;
    if (strcmp(cmd, "hello") == 0 || strcmp(cmd, "hello-instance") == 0)
        return send_hello(cmd, p);
    if (strcmp(cmd, "work") == 0) {
        char *tag = next_tok(&p), *fl = next_tok(&p), *br = next_tok(&p), *ep = next_tok(&p);
        if (!tag || !fl || !br) {
            fprintf(stderr, "partprobe: work TAG FLAGS BRANCH [EPOCH]\n");
            return false;
        }
        work_reset();
        work.active = true;
        work.tag = (uint32_t)strtoul(tag, NULL, 10);
        work.flags = parse_flags(fl);
        work.branch = strdup(br);
        work.epoch = ep ? strtoull(ep, NULL, 10) : default_epoch;
        return true;
    }
    if (strcmp(cmd, "sql") == 0) {
        if (!work.active || work.n >= PROBE_MAX_STMTS)
            return false;
        work.stmts[work.n++].sql = strdup(rest_of(p));
        return true;
    }
    if (strcmp(cmd, "param") == 0 || strcmp(cmd, "nullparam") == 0) {
        if (!work.active || work.n == 0)
            return false;
        pending_stmt *s = &work.stmts[work.n - 1];
        if (s->nparams >= PROBE_MAX_PARAMS)
            return false;
        s->isnull[s->nparams] = cmd[0] == 'n';
        s->params[s->nparams] = strdup(cmd[0] == 'n' ? "" : rest_of(p));
        s->nparams++;
        return true;
    }
    if (strcmp(cmd, "send") == 0)
        return work_send(true);
    if (strcmp(cmd, "send-nowait") == 0)
        return work_send(false);
    if (strcmp(cmd, "finish") == 0)
        return send_finish(p);
    if (strcmp(cmd, "list") == 0)
        return send_list(p);
    if (strcmp(cmd, "cancel") == 0)
        return send_cancel(p);
    if (strcmp(cmd, "wait") == 0) {
        char *tag = next_tok(&p);
        return wait_for(tag ? (uint32_t)strtoul(tag, NULL, 10) : 0, tag == NULL);
    }
    if (strcmp(cmd, "raw") == 0)
        return send_raw(p);
    if (strcmp(cmd, "expect-close") == 0) {
        while (wait_for(0, true))
            ;
        return true;
    }
    if (strcmp(cmd, "sleep") == 0) {
        char *ms = next_tok(&p);
        long v = ms ? atol(ms) : 0;
        struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return true;
    }
    if (strcmp(cmd, "quit") == 0) {
        close(sock);
        sock = -1;
        exit(0);
    }
    fprintf(stderr, "partprobe: unknown command \"%s\"\n", cmd);
    return false;
}

static int
connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "partprobe: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "partprobe: connect to %s:%s: %s\n", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"ca", required_argument, NULL, 'a'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *port = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    /* kept in a static so that early exits do not count as leaks */
    static char **cmds;
    cmds = calloc((size_t)argc + 1, sizeof(char *));
    int ncmds = 0, ch;
    while ((ch = getopt_long(argc, argv, "H:p:a:c:k:t:e:", opts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'a':
            ca = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            timeout_ms = atoi(optarg) * 1000;
            break;
        case 'e':
            cmds[ncmds++] = optarg;
            break;
        default:
            fprintf(stderr, "usage: tool-partprobe --port P --ca CA [--cert C --key K] "
                            "[--timeout S] [-e CMD ...]\n");
            return 2;
        }
    }
    if (port == NULL || ca == NULL) {
        fprintf(stderr, "partprobe: --port and --ca are required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    tls_config tc = {.cert_file = cert, .key_file = key, .ca_file = ca, .no_verify_host = true};
    SSL_CTX *ctx = tls_client_ctx_create(&tc, err, sizeof(err));
    if (ctx == NULL) {
        fprintf(stderr, "partprobe: %s\n", err);
        return 2;
    }
    sock = connect_to(host, port);
    if (sock < 0)
        return 1;
    ssl = tls_client_ssl_create(ctx, host, err, sizeof(err));
    if (ssl == NULL) {
        fprintf(stderr, "partprobe: %s\n", err);
        return 2;
    }
    SSL_set_fd(ssl, sock);
    if (!tls_handshake_fd(ssl, timeout_ms, err, sizeof(err))) {
        out("TLS-ERROR %s", err);
        return 0;
    }
    out("CONNECTED");
    int rc = 0;
    if (ncmds > 0) {
        for (int i = 0; i < ncmds && !closed; i++) {
            char *line = strdup(cmds[i]);
            if (!run_command(line) && !closed)
                rc = 1;
            free(line);
        }
    } else {
        char line[65536];
        while (!closed && fgets(line, sizeof(line), stdin)) {
            if (!run_command(line) && !closed)
                rc = 1;
        }
    }
    work_reset();
    free(cmds);
    free(inbuf);
    if (sock >= 0) {
        if (!closed)
            SSL_shutdown(ssl);
        close(sock);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return rc;
}
