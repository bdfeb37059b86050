/*
 * main.c — dtx-coordinator: configuration, start-up, signals, teardown.
 *
 * Start-up order (docs/design.md section 5):
 *   1. read the configuration; set up TLS contexts (fail early, clearly);
 *   2. open the commit log in data_dir and replay it (clog.c): the highest
 *      epoch so far and the COMMIT records without END;
 *   3. become primary or standby (roles.c): a primary logs EPOCH(last + 1)
 *      and waits until it is durable — no gid of the new epoch exists before
 *      that, so no gid is ever reused — then connects to the participants,
 *      starts the resolver (which finishes the replayed commits and rolls
 *      back orphaned branches in the background) and the commit log's
 *      checkpoints, and accepts clients at once ("ready").  A standby
 *      streams the log from its primary until it is promoted.
 *
 * Shutdown: SIGTERM stops accepting, rolls back transactions that are not in
 * the middle of a request, lets decided ones finish (bounded by
 * commit_timeout), then exits; SIGINT does the same without waiting.  Either
 * way the commit log is flushed and closed, and whatever is left unfinished
 * is finished by the next start's recovery.
 */
#include "client.h"
#include "clog.h"
#include "coord.h"
#include "ha.h"
#include "ops.h"
#include "plink.h"
#include "resolver.h"
#include "roles.h"
#include "slotq.h"
#include "txn.h"
#include "walrecv.h"
#include "walsend.h"

#include "cmdline.h"
#include "config.h"
#include "failpoint.h"
#include "log.h"
#include "sdnotify.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/listener.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- configuration ------------------------------------------------------- */

static bool
valid_name_ext(const char *s, size_t max, bool underscore)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || (underscore && c == '_')))
            return false;
    }
    return true;
}

static bool
valid_name(const char *s, size_t max)
{
    return valid_name_ext(s, max, false);
}

static bool
add_participant(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
    coord_conf *cf = ctx;
    if (!valid_name_ext(key, PART_NAME_MAX, true)) {
        snprintf(err, errlen,
                 "invalid participant name \"%s\" (letters, digits, '-' and '_', at most %d bytes)",
                 key, PART_NAME_MAX - 1);
        return false;
    }
    for (int i = 0; i < cf->nparts; i++) {
        if (strcmp(cf->parts[i].name, key) == 0) {
            snprintf(err, errlen, "participant \"%s\" is listed twice", key);
            return false;
        }
    }
    part_conf pc;
    memset(&pc, 0, sizeof(pc));
    snprintf(pc.name, sizeof(pc.name), "%s", key);
    if (!config_parse_hostport(value, 0, pc.host, sizeof(pc.host), &pc.port, err, errlen))
        return false;
    part_conf *np = realloc(cf->parts, (size_t)(cf->nparts + 1) * sizeof(part_conf));
    if (np == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    cf->parts = np;
    cf->parts[cf->nparts++] = pc;
    return true;
}

#define OFF(f) offsetof(coord_conf, f)
static const char *const log_format_names[] = {"text", "json", NULL};
/* one key per line reads as a table */
/* clang-format off */
static const config_key coord_keys[] = {
    {.name = "name", .type = CONFIG_STRING, .offset = OFF(name), .required = true},
    {.name = "listen_addr", .type = CONFIG_STRING, .offset = OFF(listen_addr),
     .default_value = "127.0.0.1"},
    {.name = "listen_port", .type = CONFIG_INT, .offset = OFF(listen_port),
     .default_value = "6543", .min = 1, .max = 65535},
    {.name = "tls_cert", .type = CONFIG_STRING, .offset = OFF(tls_cert), .required = true},
    {.name = "tls_key", .type = CONFIG_STRING, .offset = OFF(tls_key), .required = true},
    {.name = "tls_ca", .type = CONFIG_STRING, .offset = OFF(tls_ca), .required = true},
    {.name = "tls_crl", .type = CONFIG_STRING, .offset = OFF(tls_crl)},
    {.name = "allowed_clients", .type = CONFIG_STRING, .offset = OFF(allowed_clients),
     .required = true},
    {.name = "data_dir", .type = CONFIG_STRING, .offset = OFF(data_dir), .required = true},
    {.name = "prepare_timeout", .type = CONFIG_DURATION, .offset = OFF(prepare_timeout_ms),
     .default_value = "30s", .unit = "s", .min = 0, .max = 86400000},
    {.name = "commit_timeout", .type = CONFIG_DURATION, .offset = OFF(commit_timeout_ms),
     .default_value = "10s", .unit = "s", .min = 0, .max = 86400000},
    {.name = "idle_timeout", .type = CONFIG_DURATION, .offset = OFF(idle_timeout_ms),
     .default_value = "0", .unit = "s", .min = 0, .max = 86400000},
    {.name = "statement_timeout", .type = CONFIG_DURATION, .offset = OFF(statement_timeout_ms),
     .default_value = "0", .unit = "ms", .min = 0, .max = 86400000},
    {.name = "sweep_interval", .type = CONFIG_DURATION, .offset = OFF(sweep_interval_ms),
     .default_value = "10s", .unit = "s", .min = 100, .max = 86400000},
    {.name = "outcome_retention", .type = CONFIG_DURATION, .offset = OFF(outcome_retention_ms),
     .default_value = "24h", .unit = "s", .min = 1000, .max = 365LL * 86400000},
    {.name = "checkpoint_interval", .type = CONFIG_DURATION,
     .offset = OFF(checkpoint_interval_ms), .default_value = "5min", .unit = "s", .min = 0,
     .max = 86400000},
    {.name = "checkpoint_segments", .type = CONFIG_INT, .offset = OFF(checkpoint_segments),
     .default_value = "8", .min = 0, .max = 1000000},
    {.name = "max_frame", .type = CONFIG_SIZE, .offset = OFF(max_frame), .default_value = "16MB",
     .min = 1024, .max = 1LL << 30},
    {.name = "wal_segment_size", .type = CONFIG_SIZE, .offset = OFF(wal_segment_size),
     .default_value = "16MB", .min = 64 * 1024, .max = 1LL << 30},
    {.name = "max_clients", .type = CONFIG_INT, .offset = OFF(max_clients),
     .default_value = "10000", .min = 1, .max = 1000000},
    {.name = "authentication_timeout", .type = CONFIG_DURATION,
     .offset = OFF(authentication_timeout_ms), .default_value = "10s", .unit = "s", .min = 100,
     .max = 600000},
    {.name = "max_authenticating", .type = CONFIG_INT, .offset = OFF(max_authenticating),
     .default_value = "256", .min = 1, .max = 1000000},
    {.name = "log_level", .type = CONFIG_STRING, .offset = OFF(log_level), .default_value = "log"},
    {.name = "log_file", .type = CONFIG_STRING, .offset = OFF(log_file)},
    {.name = "log_format", .type = CONFIG_ENUM, .offset = OFF(log_format),
     .default_value = "text", .choices = log_format_names},
    {.name = "http_listen", .type = CONFIG_STRING, .offset = OFF(http_listen)},
    {.name = "http_tls", .type = CONFIG_BOOL, .offset = OFF(http_tls), .default_value = "off"},
    {.name = "allowed_standbys", .type = CONFIG_STRING, .offset = OFF(allowed_standbys),
     .default_value = ""},
    {.name = "admin_clients", .type = CONFIG_STRING, .offset = OFF(admin_clients),
     .default_value = ""},
    {.name = "standby", .type = CONFIG_STRING, .offset = OFF(standby_addr)},
    {.name = "sync_standby_timeout", .type = CONFIG_DURATION,
     .offset = OFF(sync_standby_timeout_ms), .default_value = "0", .unit = "s", .min = 0,
     .max = 86400000},
    {.name = "fence_timeout", .type = CONFIG_DURATION, .offset = OFF(fence_timeout_ms),
     .default_value = "5s", .unit = "s", .min = 0, .max = 3600000},
    {0},
};
static const config_key ha_keys[] = {
    {.name = "etcd", .type = CONFIG_STRING, .offset = OFF(ha_etcd), .required = true},
    {.name = "prefix", .type = CONFIG_STRING, .offset = OFF(ha_prefix), .default_value = "/dtx"},
    {.name = "member", .type = CONFIG_STRING, .offset = OFF(ha_member), .required = true},
    {.name = "advertise", .type = CONFIG_STRING, .offset = OFF(ha_advertise)},
    {.name = "ttl", .type = CONFIG_DURATION, .offset = OFF(ha_ttl_ms), .default_value = "5s",
     .unit = "s", .min = 2000, .max = 3600000},
    {.name = "renew_interval", .type = CONFIG_DURATION, .offset = OFF(ha_renew_ms),
     .default_value = "1s", .unit = "ms", .min = 100, .max = 1800000},
    {.name = "etcd_timeout", .type = CONFIG_DURATION, .offset = OFF(ha_etcd_timeout_ms),
     .default_value = "1s", .unit = "ms", .min = 100, .max = 60000},
    {.name = "etcd_ca", .type = CONFIG_STRING, .offset = OFF(ha_etcd_ca)},
    {.name = "etcd_cert", .type = CONFIG_STRING, .offset = OFF(ha_etcd_cert)},
    {.name = "etcd_key", .type = CONFIG_STRING, .offset = OFF(ha_etcd_key)},
    {0},
};
static const config_key standby_keys[] = {
    {.name = "primary", .type = CONFIG_STRING, .offset = OFF(primary_addr), .required = true},
    {0},
};
/* clang-format on */
static const config_section coord_sections[] = {
    {.name = "coordinator", .keys = coord_keys, .required = true},
    {.name = "participants", .on_entry = add_participant, .required = true},
    {.name = "standby", .keys = standby_keys},
    {.name = "ha", .keys = ha_keys},
    {0},
};

/* ---- signals ------------------------------------------------------------ */

static void
shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    coord *co = arg;
    static int ticks;
    ticks++;
    client_close_all(co);
    bool timed_out = (int64_t)ticks * 100 >= co->conf.commit_timeout_ms;
    if (co->ntxn == 0 || co->fast_shutdown || timed_out) {
        if (co->ntxn)
            log_log("%zu transaction(s) unfinished at shutdown; recovery will finish them",
                    co->ntxn);
        event_base_loopexit(co->base, NULL);
    }
}

static void
begin_shutdown(coord *co, bool fast)
{
    if (fast)
        co->fast_shutdown = true;
    if (co->shutting_down && !fast)
        return;
    co->shutting_down = true;
    log_log("received %s shutdown request", fast ? "fast" : "smart");
    sdnotify_stopping();
    /* close the listening socket, not just stop accepting from it: a new
     * client is refused at once (and can try another host) instead of
     * waiting in the backlog until we exit */
    roles_stop_listening(co);
    if (co->shutdown_timer == NULL) {
        co->shutdown_timer = event_new(co->base, -1, EV_PERSIST, shutdown_tick, co);
        struct timeval tv = {0, 100 * 1000};
        event_add(co->shutdown_timer, &tv);
    }
    shutdown_tick(-1, 0, co);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    begin_shutdown(arg, sig == SIGINT);
}

static void
usage(FILE *f)
{
    fprintf(f, "dtx-coordinator — two-phase-commit coordinator for PostgreSQL\n\n"
               "Usage: dtx-coordinator -c FILE [options]\n\n"
               "Options:\n"
               "  -c, --config FILE      configuration file (required)\n"
               "  -t, --check-config     check the configuration and exit\n"
               "  -h, --help             show this help and exit\n"
               "  -V, --version          show the version and exit\n\n"
               "Signals: SIGTERM stops after in-flight work, SIGINT stops fast, SIGHUP\n"
               "reloads the configuration file.\n"
               "See docs/configuration.md for the keys of the configuration file.\n");
}

/* What a configuration file makes besides its values: the name lists */
typedef struct conf_lists {
    char **allowed, **standbys, **admins;
    size_t nallowed, nstandbys, nadmins;
} conf_lists;

static void
free_lists(conf_lists *l)
{
    config_free_names(l->allowed, l->nallowed);
    config_free_names(l->standbys, l->nstandbys);
    config_free_names(l->admins, l->nadmins);
    memset(l, 0, sizeof(*l));
}

static bool
check_hostport(const char *text, char *why, size_t len)
{
    char host[256];
    uint16_t port;
    return config_parse_hostport(text, 0, host, sizeof(host), &port, why, len);
}

/* Read and check the configuration file into *cf (zeroed) and *lists; false
 * and a message naming the file in err if anything is wrong (then nothing
 * is left to free). */
static bool
read_config(const char *cfgfile, coord_conf *cf, conf_lists *lists, char *err, size_t errlen)
{
    char why[512];
    memset(lists, 0, sizeof(*lists));
    if (!config_parse_file(coord_sections, cf, cf, cfgfile, err, errlen)) {
        free(cf->parts);
        cf->parts = NULL;
        return false;
    }
    log_level lvl;
    if (!valid_name(cf->name, COORD_NAME_MAX))
        snprintf(err, errlen,
                 "%s: invalid coordinator name \"%s\": use letters, digits and '-', at most %d "
                 "bytes",
                 cfgfile, cf->name, COORD_NAME_MAX - 1);
    else if (cf->nparts == 0)
        snprintf(err, errlen, "%s: no participants configured in [participants]", cfgfile);
    else if (!log_parse_level(cf->log_level, &lvl))
        snprintf(err, errlen, "%s: invalid log_level \"%s\"", cfgfile, cf->log_level);
    /* The allow-list is checked once the handshake is done (client.c), not
     * inside it, so that a refused client gets an ERROR frame that names the
     * reason rather than a bare TLS alert. */
    else if (!config_split_names(cf->allowed_clients, &lists->allowed, &lists->nallowed, why,
                                 sizeof(why)))
        snprintf(err, errlen, "%s: allowed_clients: %s", cfgfile, why);
    else if (cf->allowed_standbys[0] && !config_split_names(cf->allowed_standbys, &lists->standbys,
                                                            &lists->nstandbys, why, sizeof(why)))
        snprintf(err, errlen, "%s: allowed_standbys: %s", cfgfile, why);
    else if (cf->admin_clients[0] && !config_split_names(cf->admin_clients, &lists->admins,
                                                         &lists->nadmins, why, sizeof(why)))
        snprintf(err, errlen, "%s: admin_clients: %s", cfgfile, why);
    else if (cf->primary_addr && cf->standby_addr)
        snprintf(err, errlen,
                 "%s: a standby ([standby] primary) names no standby of its own (standby)",
                 cfgfile);
    else if (cf->http_listen && !check_hostport(cf->http_listen, why, sizeof(why)))
        snprintf(err, errlen, "%s: http_listen: %s", cfgfile, why);
    else if (!ha_check_config(cf, why, sizeof(why)))
        snprintf(err, errlen, "%s: %s", cfgfile, why);
    else
        return true;
    free_lists(lists);
    free(cf->parts);
    cf->parts = NULL;
    config_free(coord_sections, cf);
    return false;
}

/* Logging as the configuration says; false (errno set) if log_file cannot
 * be opened. */
static bool
apply_logging(const coord_conf *cf)
{
    log_level lvl;
    if (!log_parse_level(cf->log_level, &lvl)) /* checked by read_config */
        lvl = LOG_LVL_LOG;
    log_set_level(lvl);
    log_set_format((log_format)cf->log_format);
    return cf->log_file == NULL || log_open_file(cf->log_file);
}

/* the lists co holds */
static conf_lists
lists_of(const coord *co)
{
    return (conf_lists){.allowed = co->allowed,
                        .nallowed = co->nallowed,
                        .standbys = co->standbys,
                        .nstandbys = co->nstandbys,
                        .admins = co->admins,
                        .nadmins = co->nadmins};
}

static void
take_lists(coord *co, conf_lists *l)
{
    co->allowed = l->allowed;
    co->nallowed = l->nallowed;
    co->standbys = l->standbys;
    co->nstandbys = l->nstandbys;
    co->admins = l->admins;
    co->nadmins = l->nadmins;
}

/* Read and check the configuration file, set up logging and the lists. */
static void
configure(coord *co, const char *cfgfile)
{
    char err[1024];
    conf_lists lists;
    if (!read_config(cfgfile, &co->conf, &lists, err, sizeof(err)))
        log_fatal("%s", err);
    take_lists(co, &lists);
    if (!apply_logging(&co->conf))
        log_fatal("could not open log file \"%s\": %m", co->conf.log_file);
}

/* The TLS contexts of cf: for clients (server) and towards participants
 * (client); false and a message in err on failure. */
static bool
make_tls(const coord_conf *cf, SSL_CTX **server, SSL_CTX **toward, char *err, size_t errlen)
{
    char why[900];
    tls_config stc = {.cert_file = cf->tls_cert,
                      .key_file = cf->tls_key,
                      .ca_file = cf->tls_ca,
                      .crl_file = cf->tls_crl,
                      .require_peer_cert = true};
    *server = tls_server_ctx_create(&stc, why, sizeof(why));
    if (*server == NULL) {
        snprintf(err, errlen, "could not set up TLS for clients: %s", why);
        return false;
    }
    tls_config ctc = {.cert_file = cf->tls_cert,
                      .key_file = cf->tls_key,
                      .ca_file = cf->tls_ca,
                      .crl_file = cf->tls_crl};
    *toward = tls_client_ctx_create(&ctc, why, sizeof(why));
    if (*toward == NULL) {
        snprintf(err, errlen, "could not set up TLS for participants: %s", why);
        SSL_CTX_free(*server);
        *server = NULL;
        return false;
    }
    return true;
}

static void
setup_tls(coord *co)
{
    char err[1024];
    if (!make_tls(&co->conf, &co->server_ctx, &co->client_ctx, err, sizeof(err)))
        log_fatal("%s", err);
}

/* ---- reload (SIGHUP) ------------------------------------------------------ */

/* Keys a reload applies (docs/operations.md, "Reload"); any other key that
 * changed keeps its value until a restart, and the log names it. */
static const char *const live_keys[] = {
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_crl",
    "allowed_clients",
    "allowed_standbys",
    "admin_clients",
    "prepare_timeout",
    "commit_timeout",
    "idle_timeout",
    "statement_timeout",
    "sweep_interval",
    "outcome_retention",
    "max_clients",
    "authentication_timeout",
    "max_authenticating",
    "log_level",
    "log_file",
    "log_format",
    "sync_standby_timeout",
    "fence_timeout",
    NULL,
};

static void
restart_key_changed(void *arg, const char *section, const char *key)
{
    (void)arg;
    log_warn("parameter \"%s\" in [%s] changed: it takes effect at the next restart of "
             "dtx-coordinator",
             key, section);
}

static bool
same_participants(const coord_conf *a, const coord_conf *b)
{
    if (a->nparts != b->nparts)
        return false;
    for (int i = 0; i < a->nparts; i++)
        if (strcmp(a->parts[i].name, b->parts[i].name) != 0 ||
            strcmp(a->parts[i].host, b->parts[i].host) != 0 || a->parts[i].port != b->parts[i].port)
            return false;
    return true;
}

/* Read the file again; apply what can change live, name what cannot.  A
 * file with any error changes nothing. */
static void
reload(coord *co)
{
    sdnotify_reloading();
    log_log("received SIGHUP: reloading \"%s\"", co->conf_path);
    char err[1024];
    coord_conf nc;
    memset(&nc, 0, sizeof(nc));
    conf_lists lists;
    SSL_CTX *server = NULL, *toward = NULL;
    if (!read_config(co->conf_path, &nc, &lists, err, sizeof(err))) {
        log_error("configuration not reloaded, nothing changed: %s", err);
        goto out;
    }
    if (!make_tls(&nc, &server, &toward, err, sizeof(err))) {
        log_error("configuration not reloaded, nothing changed: %s", err);
        free_lists(&lists);
        free(nc.parts);
        config_free(coord_sections, &nc);
        goto out;
    }
    if (nc.ha_etcd && nc.ha_advertise == NULL && co->conf.ha_advertise &&
        (nc.ha_advertise = strdup(co->conf.ha_advertise)) == NULL)
        log_fatal("out of memory"); /* derived at start (ha.c): not a change */
    config_keep_restart_keys(coord_sections, &nc, &co->conf, live_keys, restart_key_changed, NULL);
    if (!same_participants(&nc, &co->conf))
        restart_key_changed(NULL, "participants", "(the list)");
    /* the participants stay as they are: the links were made from them */
    part_conf *np = nc.parts;
    nc.parts = co->conf.parts;
    nc.nparts = co->conf.nparts;
    free(np);
    coord_conf old = co->conf;
    co->conf = nc;
    old.parts = NULL;
    config_free(coord_sections, &old);
    conf_lists was = lists_of(co);
    take_lists(co, &lists);
    free_lists(&was);
    /* new handshakes use the new certificates; established connections
     * hold their own reference to the context they were made with */
    SSL_CTX_free(co->server_ctx);
    SSL_CTX_free(co->client_ctx);
    co->server_ctx = server;
    co->client_ctx = toward;
    if (!apply_logging(&co->conf))
        log_error("could not open log file \"%s\": %m (logging goes on where it went)",
                  co->conf.log_file);
    client_reloaded(co);
    resolver_set_interval(co);
    ops_reloaded(co);
    log_log("configuration reloaded");
out:
    sdnotify_reloaded();
}

static void
sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    coord *co = arg;
    if (!co->shutting_down)
        reload(co);
}

/* The loop, name resolution, the transaction table, the links (not started)
 * and the commit log (replayed). */
static void
setup(coord *co)
{
    char err[1024];
    signal(SIGPIPE, SIG_IGN);
    coord_stats_init(&co->stats);
    co->base = event_base_new();
    if (co->base == NULL)
        log_fatal("could not create the event loop");
    /* participants given by host name are resolved on the loop (plink.c) */
    for (int i = 0; i < co->conf.nparts && co->dns == NULL; i++) {
        const char *h = co->conf.parts[i].host;
        if (tls_is_ip_literal(h))
            continue;
        co->dns = evdns_base_new(co->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                               EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (co->dns == NULL)
            log_fatal("could not set up name resolution for participant \"%s\" (\"%s\"): "
                      "see /etc/resolv.conf and /etc/hosts",
                      co->conf.parts[i].name, h);
    }
    static const txn_events txn_ev = {.commit_unfinished = resolver_kick};
    txn_table_init(co, &txn_ev);
    co->nlinks = co->conf.nparts;
    co->links = calloc((size_t)co->nlinks, sizeof(plink *));
    for (int i = 0; i < co->nlinks; i++)
        if (co->links == NULL || (co->links[i] = plink_create(co, &co->conf.parts[i])) == NULL)
            log_fatal("out of memory");
    co->slots = slotq_create(co->base, co->nlinks);
    if (co->slots == NULL)
        log_fatal("out of memory");
    if (mkdir(co->conf.data_dir, 0700) != 0 && errno != EEXIST)
        log_fatal("could not create data directory \"%s\": %m", co->conf.data_dir);
    char waldir[4096];
    snprintf(waldir, sizeof(waldir), "%s/wal", co->conf.data_dir);
    co->log = clog_open(co, waldir, err, sizeof(err));
    if (co->log == NULL)
        log_fatal("could not open the commit log in \"%s\": %s", waldir, err);
    co->sigterm_ev = evsignal_new(co->base, SIGTERM, signal_cb, co);
    co->sigint_ev = evsignal_new(co->base, SIGINT, signal_cb, co);
    co->sighup_ev = evsignal_new(co->base, SIGHUP, sighup_cb, co);
    event_add(co->sigterm_ev, NULL);
    event_add(co->sigint_ev, NULL);
    event_add(co->sighup_ev, NULL);
}

/* Orderly teardown: everything freed so leak checkers stay quiet.  The
 * commit log is closed while the links still exist: wal_close reports the
 * records its last flush made durable (their callbacks see tearing_down and
 * only settle their transactions), and only then do the links go. */
static void
teardown(coord *co)
{
    co->tearing_down = true;
    ops_stop(co);
    roles_shutdown(co);
    co->fast_shutdown = true;
    client_close_all(co);
    walrecv_stop(co);
    walsend_shutdown(co);
    ha_shutdown(co);
    resolver_stop(co);
    for (int i = 0; i < co->nlinks; i++)
        plink_shutdown(co->links[i]);
    clog_close(co->log);
    co->log = NULL;
    txn_table_stop_timers(co); /* the loop pass below must not run them */
    slotq_free(co->slots);     /* nor grant a queued transaction its slots */
    co->slots = NULL;
    walrecv_free(co); /* after the log: its callbacks refer to it */
    for (int i = 0; i < co->nlinks; i++)
        plink_free(co->links[i]);
    free(co->links);
    /* let closed connections be reaped, and cancelled name lookups report
     * (from the loop, with the resolver still there; one pass runs every
     * callback made active meanwhile) */
    event_base_loop(co->base, EVLOOP_NONBLOCK);
    if (co->dns)
        evdns_base_free(co->dns, 0);
    txn_table_free(co);
    event_free(co->sigterm_ev);
    event_free(co->sigint_ev);
    event_free(co->sighup_ev);
    if (co->shutdown_timer)
        event_free(co->shutdown_timer);
}

static void
free_config(coord *co)
{
    SSL_CTX_free(co->server_ctx);
    SSL_CTX_free(co->client_ctx);
    free(co->conf.parts);
    conf_lists l = lists_of(co);
    free_lists(&l);
    config_free(coord_sections, &co->conf);
}

int
main(int argc, char **argv)
{
    log_init("dtx-coordinator");
    daemon_args args;
    int rc = daemon_args_parse(argc, argv, "dtx-coordinator", DTX_VERSION, usage, &args);
    if (rc >= 0)
        return rc;
    failpoint_init_from_env();
    static coord co;
    configure(&co, args.config);
    setup_tls(&co);
    if (args.check_only) {
        printf("configuration file \"%s\" is valid\n", args.config);
        free_config(&co);
        return 0;
    }
    co.conf_path = args.config;
    setup(&co);
    roles_start(&co);
    ops_start(&co);
    event_base_dispatch(co.base);
    teardown(&co);
    bool restart = co.restart;
    free_config(&co);
    event_base_free(co.base);
    if (restart) {
        /* [ha]: lost the lead; the same program, arguments and
         * environment start again as a standby of whoever holds it */
        log_log("dtx-coordinator starting again to follow the leader");
        execv("/proc/self/exe", argv);
        log_fatal("could not start again (/proc/self/exe): %m");
    }
    log_log("dtx-coordinator stopped");
    return 0;
}
