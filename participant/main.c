/*
 * main.c — dtx-participant: command line, configuration, start-up checks,
 * the listening socket, signals and the shutdown sequence.
 *
 * NOTES
 *  Start-up, in order; any failure is a FATAL line and exit status 1:
 *    1. arguments, configuration file (pconf.c), TLS context (tls.c);
 *       -t/--check-config stops here;
 *    2. a blocking connection to PostgreSQL (the only blocking libpq calls
 *       of the process): the server must be reachable, 13 or newer, and
 *       have max_prepared_transactions > 0; the number of transactions
 *       prepared in the whole cluster seeds the slot count (slots.c); the
 *       fence table is created when missing and loaded (fence.c).  Without
 *       its fence the participant does not start — not even when
 *       PostgreSQL is merely unreachable for now: admitting coordinators
 *       without it could let a deposed one in (a supervisor restarts it);
 *    3. the pool starts connecting in the background (pgpool.c), the
 *       listener opens, and "dtx-participant ready: listening on ADDR:PORT"
 *       is logged.
 *
 *  Shutdown (`phase` moves forward only):
 *    RUNNING   serving
 *    DRAINING  after SIGTERM: the listener is closed, new WORK is refused
 *              with 57P01, idle unprepared branches are rolled back, and
 *              requests in flight (including phase two) may finish — until
 *              nothing is left or SHUTDOWN_GRACE_MS has passed
 *    CLOSING   coordinator connections are closed; the rollbacks they cause
 *              get up to SHUTDOWN_ROLLBACK_MS
 *    then the loop ends, everything is freed, exit 0.  Whatever is still
 *    open in PostgreSQL at that point is rolled back by the server when the
 *    connection closes; prepared branches stay prepared.
 *  SIGINT (or a second SIGTERM) skips straight to the end.
 */
#include "branch.h"
#include "clock.h"
#include "cmdline.h"
#include "config.h"
#include "conn.h"
#include "failpoint.h"
#include "fence.h"
#include "log.h"
#include "ops.h"
#include "pconf.h"
#include "pgpool.h"
#include "resolve.h"
#include "sdnotify.h"
#include "server.h"
#include "slots.h"
#include "tls.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SHUTDOWN_GRACE_MS    5000
#define SHUTDOWN_ROLLBACK_MS 2000
#define SHUTDOWN_TICK_MS     50

typedef enum main_phase {
    MP_RUNNING = 0,
    MP_DRAINING,
    MP_CLOSING,
    MP_DONE,
} main_phase;

static struct {
    main_phase phase;
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *ev_term, *ev_int, *ev_tick, *ev_hup;
    int64_t deadline_ms;
    /* what a reload (SIGHUP) changes */
    const char *config_path;
    part_conf *conf;
    pg_pool *pool;
    slots *slots;
} m;

static void
usage(FILE *out)
{
    fprintf(out,
            "dtx-participant runs next to one PostgreSQL server and executes the branches of\n"
            "dtx transactions on it for dtx coordinators.\n"
            "\n"
            "Usage:\n"
            "  dtx-participant -c FILE [-t]\n"
            "\n"
            "Options:\n"
            "  -c, --config=FILE      configuration file (section [participant])\n"
            "  -t, --check-config     check the configuration file and exit\n"
            "  -V, --version          print the version and exit\n"
            "  -h, --help             show this help and exit\n"
            "\n"
            "Environment:\n"
            "  DTX_FAILPOINTS         failpoints to arm (test builds; see docs/failpoints.md)\n");
}

static void
main_set_phase(main_phase p)
{
    switch (p) {
    case MP_DRAINING:
    case MP_CLOSING:
    case MP_DONE:
        if (p <= m.phase)
            abort();
        m.phase = p;
        break;
    case MP_RUNNING:
    default:
        abort();
    }
}

/* One line from a libpq message: newlines and tabs become spaces. */
static void
one_line(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    }
}

/* Log PostgreSQL's error in r as FATAL, with its SQLSTATE, DETAIL and HINT
 * (log_report), and exit.  Frees r and pg. */
static _Noreturn void
fatal_result(PGconn *pg, PGresult *r, const char *what)
{
    char msg[1024];
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    /* errors made up by libpq carry no fields */
    snprintf(msg, sizeof(msg), "%s", primary ? primary : PQresultErrorMessage(r));
    one_line(msg);
    log_report(LOG_LVL_FATAL, PQresultErrorField(r, PG_DIAG_SQLSTATE),
               PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL),
               PQresultErrorField(r, PG_DIAG_MESSAGE_HINT), "%s: %s", what, msg);
    PQclear(r);
    PQfinish(pg);
    exit(1);
}

/* Step 2 of start-up; exits on failure. */
static void
check_postgres(const part_conf *conf, int *max_prepared, int *prepared, int *foreign)
{
    const char *const keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
    const char *const vals[] = {"10", conf->conninfo, "dtx-participant", NULL};
    char msg[1024];
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (pg == NULL)
        log_fatal("could not connect to PostgreSQL: out of memory");
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pg));
        one_line(msg);
        PQfinish(pg);
        log_fatal("could not connect to PostgreSQL: %s; HINT: check that the server is running "
                  "and that conninfo in %s points to it",
                  msg, conf->path);
    }
    int ver = PQserverVersion(pg);
    if (ver < 130000) {
        PQfinish(pg);
        log_fatal("PostgreSQL %d.%d is too old: dtx needs PostgreSQL 13 or later", ver / 10000,
                  ver % 10000);
    }
    PGresult *r = PQexec(pg, "SELECT pg_catalog.current_setting('max_prepared_transactions'), "
                             "c.*, pg_catalog.current_database() FROM (" SLOTS_COUNT_SQL ") c");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fatal_result(pg, r, "could not read max_prepared_transactions from PostgreSQL");
    *max_prepared = atoi(PQgetvalue(r, 0, 0));
    *prepared = atoi(PQgetvalue(r, 0, 1));
    *foreign = atoi(PQgetvalue(r, 0, 2));
    char db[256];
    snprintf(db, sizeof(db), "%s", PQgetvalue(r, 0, 3));
    PQclear(r);
    if (*max_prepared <= 0) {
        PQfinish(pg);
        log_fatal("prepared transactions are disabled on the PostgreSQL server "
                  "(max_prepared_transactions = 0); HINT: set max_prepared_transactions in "
                  "postgresql.conf and restart the server");
    }
    if (!fence_load(pg, msg, sizeof(msg))) {
        PQfinish(pg);
        log_fatal("could not load the coordinators' fence: %s", msg);
    }
    PQfinish(pg);
    log_log("PostgreSQL %d.%d, database \"%s\": max_prepared_transactions = %d, %d prepared now "
            "(%d of other applications); fence table %s (%d coordinator%s)",
            ver / 10000, ver % 10000, db, *max_prepared, *prepared, *foreign, fence_table(),
            fence_count(), fence_count() == 1 ? "" : "s");
    if (*prepared >= *max_prepared)
        log_warn("all %d prepared-transaction slots of the PostgreSQL server are in use",
                 *max_prepared);
}

/* The listener's TLS context; NULL with a message in err.  The caller frees
 * it with SSL_CTX_free(). */
static SSL_CTX *
make_tls(const part_conf *conf, char *err, size_t errlen)
{
    tls_config tc = {.cert_file = conf->tls_cert,
                     .key_file = conf->tls_key,
                     .ca_file = conf->tls_ca,
                     .crl_file = conf->tls_crl,
                     .require_peer_cert = true};
    return tls_server_ctx_create(&tc, err, errlen);
}

/* ------------------------------------------------------------------------
 * Listener, signals, shutdown
 */

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    conn_admission_accepted(&m.listener);
    server_accept(fd);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    log_error("could not accept a connection: %s", evutil_socket_error_to_string(e));
}

static void
main_stop_listening(void)
{
    if (m.listener) {
        evconnlistener_free(m.listener);
        m.listener = NULL;
    }
}

static void
main_exit_now(void)
{
    if (m.phase < MP_DONE)
        main_set_phase(MP_DONE);
    main_stop_listening();
    event_base_loopexit(m.base, NULL);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int64_t now = clock_mono_ms();
    switch (m.phase) {
    case MP_DRAINING:
        if (!server_quiescent() && now < m.deadline_ms)
            return;
        if (!server_quiescent())
            log_log("shutdown: %d branches and %d requests still busy; closing connections",
                    branch_live_count(), resolve_live_count());
        main_set_phase(MP_CLOSING);
        server_close_all();
        m.deadline_ms = now + SHUTDOWN_ROLLBACK_MS;
        return;
    case MP_CLOSING:
        if (!server_quiescent() && now < m.deadline_ms)
            return;
        main_exit_now();
        return;
    case MP_RUNNING:
    case MP_DONE:
        return;
    default:
        abort();
    }
}

static void
on_sigterm(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (m.phase != MP_RUNNING) {
        log_log("received SIGTERM again: exiting now");
        main_exit_now();
        return;
    }
    log_log("received SIGTERM: shutting down (requests in flight may finish for up to %d ms)",
            SHUTDOWN_GRACE_MS);
    main_set_phase(MP_DRAINING);
    sdnotify_stopping();
    ops_draining();
    main_stop_listening();
    server_shutdown_begin();
    m.deadline_ms = clock_mono_ms() + SHUTDOWN_GRACE_MS;
    struct timeval tv = {0, SHUTDOWN_TICK_MS * 1000};
    event_add(m.ev_tick, &tv);
}

/* Logging as conf says; false (errno set) if log_file cannot be opened */
static bool
apply_logging(const part_conf *conf)
{
    log_set_level((log_level)conf->log_level);
    log_set_format((log_format)conf->log_format);
    return !(conf->log_file && conf->log_file[0] && !log_open_file(conf->log_file));
}

/* Read the file again; apply what can change live, name what cannot.  A
 * file with any error changes nothing. */
static void
reload(void)
{
    sdnotify_reloading();
    log_log("received SIGHUP: reloading \"%s\"", m.config_path);
    char err[2048];
    part_conf nc = {0};
    SSL_CTX *ssl = NULL;
    if (!pconf_load(&nc, m.config_path, err, sizeof(err))) {
        log_error("configuration not reloaded, nothing changed: %s", err);
        goto out;
    }
    if ((ssl = make_tls(&nc, err, sizeof(err))) == NULL) {
        log_error("configuration not reloaded, nothing changed: %s: invalid TLS settings: %s",
                  m.config_path, err);
        pconf_free(&nc);
        goto out;
    }
    pconf_keep_restart_keys(&nc, m.conf);
    part_conf old = *m.conf;
    *m.conf = nc; /* in place: the modules hold m.conf */
    pconf_free(&old);
    if (!apply_logging(m.conf))
        log_error("could not open log file \"%s\": %m (logging goes on where it went)",
                  m.conf->log_file);
    server_reloaded(ssl);
    SSL_CTX_free(ssl);
    pool_set_wait_timeout(m.pool, m.conf->pool_wait_timeout_ms);
    if (!pool_resize(m.pool, m.conf->pool_size))
        log_error("pool_size: out of memory; the pool keeps %d connection(s)", pool_size(m.pool));
    pool_set_oneshot_reserve(m.pool, m.conf->oneshot_reserve);
    slots_set_wait(m.slots, m.conf->prepare_wait_timeout_ms);
    ops_reloaded();
    log_log("configuration reloaded");
out:
    sdnotify_reloaded();
}

static void
on_sighup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (m.phase == MP_RUNNING)
        reload();
}

static void
on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_log("received SIGINT: fast shutdown");
    sdnotify_stopping();
    if (m.phase == MP_RUNNING)
        server_shutdown_begin();
    main_exit_now();
}

static void
main_listen(const part_conf *conf)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof(port), "%d", conf->listen_port);
    int rc = getaddrinfo(conf->listen_addr[0] ? conf->listen_addr : NULL, port, &hints, &res);
    if (rc != 0)
        log_fatal("could not resolve listen_addr \"%s\": %s", conf->listen_addr, gai_strerror(rc));
    m.listener = evconnlistener_new_bind(
        m.base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        128, res->ai_addr, (int)res->ai_addrlen);
    int e = errno;
    freeaddrinfo(res);
    if (m.listener == NULL)
        log_fatal("could not listen on %s:%d: %s", conf->listen_addr, conf->listen_port,
                  strerror(e));
    evconnlistener_set_error_cb(m.listener, on_accept_error);
}

int
main(int argc, char **argv)
{
    log_init("dtx-participant");
    daemon_args args;
    int rc = daemon_args_parse(argc, argv, "dtx-participant", DTX_VERSION, usage, &args);
    if (rc >= 0)
        return rc;
    const char *config_path = args.config;
    bool check_only = args.check_only;
    failpoint_init_from_env();

    part_conf conf = {0};
    char err[2048];
    if (!pconf_load(&conf, config_path, err, sizeof(err)))
        log_fatal("%s", err);
    SSL_CTX *ssl = make_tls(&conf, err, sizeof(err));
    if (ssl == NULL) {
        char msg[2300];
        snprintf(msg, sizeof(msg), "%s: invalid TLS settings in section [participant]: %s",
                 config_path, err);
        pconf_free(&conf);
        log_fatal("%s", msg);
    }
    if (check_only) {
        printf("dtx-participant: configuration file \"%s\" is valid\n", config_path);
        SSL_CTX_free(ssl);
        pconf_free(&conf);
        return 0;
    }
    if (!apply_logging(&conf))
        log_fatal("could not open log file \"%s\": %m", conf.log_file);
    signal(SIGPIPE, SIG_IGN);

    int max_prepared = 0, prepared = 0, foreign = 0;
    check_postgres(&conf, &max_prepared, &prepared, &foreign);

    m.base = event_base_new();
    if (m.base == NULL)
        log_fatal("could not create the event loop");
    if (conf.pool_size < 2)
        log_warn("pool_size = %d keeps no PostgreSQL connection for phase two: open "
                 "transactions can hold up COMMIT PREPARED; use 2 or more",
                 conf.pool_size);
    pg_pool *pool = pool_create(m.base, conf.conninfo, conf.pool_size, conf.statement_timeout_ms,
                                conf.pool_wait_timeout_ms, conf.statement_cache_size);
    slots *sl = slots_create(m.base, max_prepared, prepared, foreign, conf.prepare_wait_timeout_ms);
    m.ev_term = evsignal_new(m.base, SIGTERM, on_sigterm, NULL);
    m.ev_int = evsignal_new(m.base, SIGINT, on_sigint, NULL);
    m.ev_tick = event_new(m.base, -1, EV_PERSIST, on_tick, NULL);
    m.ev_hup = evsignal_new(m.base, SIGHUP, on_sighup, NULL);
    if (pool == NULL || sl == NULL || m.ev_term == NULL || m.ev_int == NULL || m.ev_tick == NULL ||
        m.ev_hup == NULL)
        log_fatal("out of memory");
    event_add(m.ev_term, NULL);
    event_add(m.ev_int, NULL);
    event_add(m.ev_hup, NULL);
    m.config_path = config_path;
    m.conf = &conf;
    m.pool = pool;
    m.slots = sl;
    pool_set_oneshot_reserve(pool, conf.oneshot_reserve);
    slots_set_resync(sl, resolve_count_prepared, NULL);
    server_env env = {.base = m.base, .ssl_ctx = ssl, .conf = &conf, .pool = pool, .slots = sl};
    server_init(&env);
    pool_start(pool);
    main_listen(&conf);
    ops_start(m.base, &conf, pool, sl);
    if (strchr(conf.listen_addr, ':'))
        log_log("dtx-participant ready: listening on [%s]:%d", conf.listen_addr, conf.listen_port);
    else
        log_log("dtx-participant ready: listening on %s:%d", conf.listen_addr, conf.listen_port);
    sdnotify_ready(conf.name);

    event_base_dispatch(m.base);

    int live = branch_live_count();
    ops_stop();
    branch_free_all();
    resolve_free_all();
    server_free();
    main_stop_listening();
    pool_free(pool);
    slots_free(sl);
    fence_free();
    event_free(m.ev_term);
    event_free(m.ev_int);
    event_free(m.ev_tick);
    event_free(m.ev_hup);
    /* let conn.c free the connections closed above */
    event_base_loop(m.base, EVLOOP_NONBLOCK);
    event_base_free(m.base);
    SSL_CTX_free(ssl);
    if (live > 0)
        log_log("rolled back %d unfinished branch%s", live, live == 1 ? "" : "es");
    log_log("dtx-participant stopped");
    pconf_free(&conf);
    return 0;
}
