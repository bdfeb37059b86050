/*
 * pconf.c — see pconf.h.
 *
 * NOTES
 *  The table below is the single description of the file; defaults are
 *  parsed like file values (config.c), so they obey the same ranges.
 *  Checks that need more than a type (the allow-list, conninfo, the listen
 *  address, readable TLS files) run after the parse; their messages carry
 *  the line of the key, found again by pconf_key_line() — a small scan of
 *  the file that understands just enough INI (sections, "key =").
 */
#include "pconf.h"

#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PCONF_SECTION "participant"

static const char *const level_choices[] = {"debug", "info", "log", "warning", "error", NULL};

static const char *const format_choices[] = {"text", "json", NULL};

static const config_key part_keys[] = {
    {.name = "name", .type = CONFIG_STRING, .offset = offsetof(part_conf, name)},
    {.name = "listen_addr",
     .type = CONFIG_STRING,
     .offset = offsetof(part_conf, listen_addr),
     .default_value = "127.0.0.1"},
    {.name = "listen_port",
     .type = CONFIG_INT,
     .offset = offsetof(part_conf, listen_port),
     .min = 1,
     .max = 65535,
     .required = true},
    {.name = "tls_cert",
     .type = CONFIG_STRING,
     .offset = offsetof(part_conf, tls_cert),
     .required = true},
    {.name = "tls_key",
     .type = CONFIG_STRING,
     .offset = offsetof(part_conf, tls_key),
     .required = true},
    {.name = "tls_ca",
     .type = CONFIG_STRING,
     .offset = offsetof(part_conf, tls_ca),
     .required = true},
    {.name = "tls_crl", .type = CONFIG_STRING, .offset = offsetof(part_conf, tls_crl)},
    {.name = "allowed_coordinators",
     .type = CONFIG_STRING,
     .offset = offsetof(part_conf, allowed_coordinators),
     .required = true},
    {.name = "conninfo",
     .type = CONFIG_STRING,
     .offset = offsetof(part_conf, conninfo),
     .required = true},
    {.name = "pool_size",
     .type = CONFIG_INT,
     .offset = offsetof(part_conf, pool_size),
     .default_value = "8",
     .min = 1,
     .max = 1000},
    {.name = "oneshot_reserve",
     .type = CONFIG_INT,
     .offset = offsetof(part_conf, oneshot_reserve),
     .default_value = "1",
     .min = 0,
     .max = 1000},
    {.name = "statement_cache_size",
     .type = CONFIG_INT,
     .offset = offsetof(part_conf, statement_cache_size),
     .default_value = "64",
     .min = 0,
     .max = 10000},
    {.name = "max_frame",
     .type = CONFIG_SIZE,
     .offset = offsetof(part_conf, max_frame),
     .default_value = "16MB",
     .min = 64 * 1024,
     .max = INT64_C(1) << 30},
    {.name = "prepare_wait_timeout",
     .type = CONFIG_DURATION,
     .unit = "ms",
     .offset = offsetof(part_conf, prepare_wait_timeout_ms),
     .default_value = "10s",
     .min = 0,
     .max = 3600 * 1000},
    {.name = "pool_wait_timeout",
     .type = CONFIG_DURATION,
     .unit = "ms",
     .offset = offsetof(part_conf, pool_wait_timeout_ms),
     .default_value = "5s",
     .min = 0,
     .max = 3600 * 1000},
    {.name = "statement_timeout",
     .type = CONFIG_DURATION,
     .unit = "ms",
     .offset = offsetof(part_conf, statement_timeout_ms),
     .default_value = "0",
     .min = 0,
     .max = INT32_MAX},
    {.name = "authentication_timeout",
     .type = CONFIG_DURATION,
     .unit = "s",
     .offset = offsetof(part_conf, authentication_timeout_ms),
     .default_value = "10s",
     .min = 100,
     .max = 600 * 1000},
    {.name = "max_authenticating",
     .type = CONFIG_INT,
     .offset = offsetof(part_conf, max_authenticating),
     .default_value = "256",
     .min = 1,
     .max = 1000000},
    {.name = "log_level",
     .type = CONFIG_ENUM,
     .offset = offsetof(part_conf, log_level),
     .default_value = "log",
     .choices = level_choices},
    {.name = "log_file", .type = CONFIG_STRING, .offset = offsetof(part_conf, log_file)},
    {.name = "log_format",
     .type = CONFIG_ENUM,
     .offset = offsetof(part_conf, log_format),
     .default_value = "text",
     .choices = format_choices},
    {.name = "http_listen", .type = CONFIG_STRING, .offset = offsetof(part_conf, http_listen)},
    {.name = "http_tls",
     .type = CONFIG_BOOL,
     .offset = offsetof(part_conf, http_tls),
     .default_value = "off"},
    {0},
};

/* [roles]: "client = role" */
static bool
add_role(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
    part_conf *c = ctx;
    size_t vl = strlen(value);
    if (key[0] == '\0' || strlen(key) > 256) {
        snprintf(err, errlen, "invalid client name \"%s\" in [roles]", key);
        return false;
    }
    if (vl == 0 || vl > 63) {
        snprintf(err, errlen,
                 "invalid role \"%s\" for client \"%s\" in [roles]: a PostgreSQL role name of "
                 "1 to 63 bytes",
                 value, key);
        return false;
    }
    for (size_t i = 0; i < c->nroles; i++) {
        if (strcasecmp(c->role_clients[i], key) == 0) {
            snprintf(err, errlen, "client \"%s\" is listed twice in [roles]", key);
            return false;
        }
    }
    char **nc = realloc(c->role_clients, (c->nroles + 1) * sizeof(char *));
    if (nc)
        c->role_clients = nc;
    char **nn = realloc(c->role_names, (c->nroles + 1) * sizeof(char *));
    if (nn)
        c->role_names = nn;
    char *k = strdup(key), *v = strdup(value);
    if (nc == NULL || nn == NULL || k == NULL || v == NULL) {
        free(k);
        free(v);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    c->role_clients[c->nroles] = k;
    c->role_names[c->nroles++] = v;
    return true;
}

static void
free_roles(part_conf *c)
{
    for (size_t i = 0; i < c->nroles; i++) {
        free(c->role_clients[i]);
        free(c->role_names[i]);
    }
    free(c->role_clients);
    free(c->role_names);
    c->role_clients = c->role_names = NULL;
    c->nroles = 0;
}

const char *
pconf_role_for(const part_conf *c, const char *client)
{
    if (c->nroles == 0)
        return "";
    const char *dflt = NULL;
    for (size_t i = 0; i < c->nroles; i++) {
        if (client && strcasecmp(c->role_clients[i], client) == 0)
            return c->role_names[i];
        if (strcmp(c->role_clients[i], "*") == 0)
            dflt = c->role_names[i];
    }
    return dflt;
}

static const config_section part_sections[] = {
    {.name = PCONF_SECTION, .keys = part_keys, .required = true},
    {.name = "roles", .on_entry = add_role},
    {0},
};

int
pconf_key_line(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[CONFIG_LINE_MAX + 2];
    int n = 0, found = 0;
    bool in_section = false;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        n++;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (e) {
                *e = '\0';
                char *name = s + 1;
                while (*name == ' ' || *name == '\t')
                    name++;
                size_t l = strlen(name);
                while (l > 0 && (name[l - 1] == ' ' || name[l - 1] == '\t'))
                    name[--l] = '\0';
                in_section = strcmp(name, PCONF_SECTION) == 0;
            }
            continue;
        }
        if (!in_section || strncmp(s, key, klen) != 0)
            continue;
        s += klen;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '=') {
            found = n;
            break;
        }
    }
    fclose(f);
    return found;
}

static bool __attribute__((format(printf, 5, 6)))
pconf_fail(const part_conf *c, const char *key, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = key ? pconf_key_line(c->path, key) : 0;
    if (line > 0)
        snprintf(err, errlen, "%s:%d: %s", c->path, line, msg);
    else
        snprintf(err, errlen, "%s: %s", c->path, msg);
    return false;
}

static bool
pconf_split_allowed(part_conf *c, char *err, size_t errlen)
{
    char why[300];
    if (!config_split_names(c->allowed_coordinators, &c->allowed, &c->n_allowed, why, sizeof(why)))
        return pconf_fail(c, "allowed_coordinators", err, errlen,
                          "invalid value for key \"allowed_coordinators\" in section [%s]: %s",
                          PCONF_SECTION, why);
    return true;
}

static bool
pconf_check_conninfo(part_conf *c, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(c->conninfo, &perr);
    if (opts == NULL) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", perr ? perr : "out of memory");
        size_t n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
            msg[--n] = '\0';
        PQfreemem(perr);
        return pconf_fail(c, "conninfo", err, errlen,
                          "invalid value for key \"conninfo\" in section [%s]: %s", PCONF_SECTION,
                          msg);
    }
    PQconninfoFree(opts);
    return true;
}

static bool
pconf_check_listen(part_conf *c, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof(port), "%d", c->listen_port);
    int rc = getaddrinfo(c->listen_addr[0] ? c->listen_addr : NULL, port, &hints, &res);
    if (rc != 0) {
        return pconf_fail(c, "listen_addr", err, errlen,
                          "invalid value \"%s\" for key \"listen_addr\" in section [%s]: %s",
                          c->listen_addr, PCONF_SECTION, gai_strerror(rc));
    }
    freeaddrinfo(res);
    return true;
}

static bool
pconf_check_http(part_conf *c, char *err, size_t errlen)
{
    char host[256], why[300];
    uint16_t port;
    if (c->http_listen == NULL ||
        config_parse_hostport(c->http_listen, 0, host, sizeof(host), &port, why, sizeof(why)))
        return true;
    return pconf_fail(c, "http_listen", err, errlen,
                      "invalid value for key \"http_listen\" in section [%s]: %s", PCONF_SECTION,
                      why);
}

static bool
pconf_check_file(part_conf *c, const char *key, const char *file, char *err, size_t errlen)
{
    if (access(file, R_OK) != 0) {
        return pconf_fail(c, key, err, errlen,
                          "invalid value for key \"%s\" in section [%s]: could not read \"%s\": %s",
                          key, PCONF_SECTION, file, strerror(errno));
    }
    return true;
}

bool
pconf_load(part_conf *c, const char *path, char *err, size_t errlen)
{
    if (!config_parse_file(part_sections, c, c, path, err, errlen)) {
        free_roles(c);
        return false;
    }
    c->path = strdup(path);
    if (c->path == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        pconf_free(c);
        return false;
    }
    if (!pconf_split_allowed(c, err, errlen) || !pconf_check_conninfo(c, err, errlen) ||
        !pconf_check_listen(c, err, errlen) || !pconf_check_http(c, err, errlen) ||
        !pconf_check_file(c, "tls_cert", c->tls_cert, err, errlen) ||
        !pconf_check_file(c, "tls_key", c->tls_key, err, errlen) ||
        !pconf_check_file(c, "tls_ca", c->tls_ca, err, errlen) ||
        (c->tls_crl && !pconf_check_file(c, "tls_crl", c->tls_crl, err, errlen)))
        goto fail;
    if (c->name == NULL || c->name[0] == '\0') {
        char buf[300];
        if (strchr(c->listen_addr, ':'))
            snprintf(buf, sizeof(buf), "[%s]:%d", c->listen_addr, c->listen_port);
        else
            snprintf(buf, sizeof(buf), "%s:%d", c->listen_addr, c->listen_port);
        free(c->name);
        c->name = strdup(buf);
        if (c->name == NULL) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
    }
    return true;
fail:
    pconf_free(c);
    return false;
}

void
pconf_free(part_conf *c)
{
    config_free_names(c->allowed, c->n_allowed);
    c->allowed = NULL;
    c->n_allowed = 0;
    free(c->path);
    c->path = NULL;
    free_roles(c);
    config_free(part_sections, c);
}

/* Keys a reload applies (docs/operations.md, "Reload") */
static const char *const live_keys[] = {
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_crl",
    "allowed_coordinators",
    "pool_size",
    "oneshot_reserve",
    "prepare_wait_timeout",
    "pool_wait_timeout",
    "authentication_timeout",
    "max_authenticating",
    "log_level",
    "log_file",
    "log_format",
    NULL,
};

static void
restart_key_changed(void *arg, const char *section, const char *key)
{
    (void)arg;
    log_warn("parameter \"%s\" in [%s] changed: it takes effect at the next restart of "
             "dtx-participant",
             key, section);
}

int
pconf_keep_restart_keys(part_conf *newc, part_conf *oldc)
{
    return config_keep_restart_keys(part_sections, newc, oldc, live_keys, restart_key_changed,
                                    NULL);
}
