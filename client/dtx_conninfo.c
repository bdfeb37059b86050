/*
 * dtx_conninfo.c — connection strings: parsing, environment defaults and
 * validation, into a dtx_conninfo.
 *
 * NOTES
 *  Syntax, as libpq's keyword/value form:
 *
 *      conninfo := { space } { keyword { space } "=" { space } value { space } }
 *      value    := quoted | bare
 *      quoted   := "'" { any char but "'" and "\" | "\" any char } "'"
 *      bare     := { any char but space, where "\" escapes the next char }
 *
 *  Precedence, lowest first: built-in defaults, DTX* environment variables,
 *  the string (where a keyword given twice takes its last value).  An empty
 *  value means "not set": the default applies.
 *
 *  Validation happens once every source has been merged, so a message can
 *  say where a bad value came from ('invalid port number: "x" (from
 *  environment variable DTXPORT)').  Everything is checked here, before any
 *  socket is opened: an unknown keyword, a sslmode weaker than verify-ca,
 *  ports that do not pair with hosts.  On failure the parser returns an
 *  empty dtx_conninfo, so callers have nothing to free.
 *
 *  Ownership: the raw table below holds strings owned by this file while
 *  parsing; the result owns copies, freed by dtx_conninfo_free().
 */
#include "dtx_conninfo.h"

#include "dtx.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kw_id {
    KW_HOST = 0,
    KW_PORT,
    KW_SSLMODE,
    KW_SSLROOTCERT,
    KW_SSLCERT,
    KW_SSLKEY,
    KW_CONNECT_TIMEOUT,
    KW_APPNAME,
    KW_TARGET_ROLE,
    KW_COUNT
};

static const struct keyword {
    const char *name;
    const char *env;
} keywords[KW_COUNT] = {
    [KW_HOST] = {"host", "DTXHOST"},
    [KW_PORT] = {"port", "DTXPORT"},
    [KW_SSLMODE] = {"sslmode", "DTXSSLMODE"},
    [KW_SSLROOTCERT] = {"sslrootcert", "DTXSSLROOTCERT"},
    [KW_SSLCERT] = {"sslcert", "DTXSSLCERT"},
    [KW_SSLKEY] = {"sslkey", "DTXSSLKEY"},
    [KW_CONNECT_TIMEOUT] = {"connect_timeout", "DTXCONNECT_TIMEOUT"},
    [KW_APPNAME] = {"application_name", "DTXAPPNAME"},
    [KW_TARGET_ROLE] = {"target_role", "DTXTARGETROLE"},
};

/* One value while parsing: the text (owned) and where it came from (the
 * environment variable's name, or NULL for the connection string). */
typedef struct raw_value {
    char *text;
    const char *env;
} raw_value;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* " (from environment variable X)" or "" */
static const char *
origin(const raw_value *v, char *buf, size_t buflen)
{
    if (v->env == NULL)
        return "";
    snprintf(buf, buflen, " (from environment variable %s)", v->env);
    return buf;
}

static void
raw_set(raw_value *v, char *text, const char *env)
{
    free(v->text);
    v->text = text;
    v->env = env;
}

static void
raw_free(raw_value *raw)
{
    for (int i = 0; i < KW_COUNT; i++)
        free(raw[i].text);
}

/* A non-empty value, or NULL when unset or empty. */
static const char *
raw_text(const raw_value *v)
{
    return v->text && v->text[0] ? v->text : NULL;
}

static int
find_keyword(const char *name, size_t len)
{
    for (int i = 0; i < KW_COUNT; i++)
        if (strlen(keywords[i].name) == len && memcmp(keywords[i].name, name, len) == 0)
            return i;
    return -1;
}

/*
 * Read one value at *pp (quoted or bare) into a new string.  NULL with err
 * on an unterminated quote or when out of memory.
 */
static char *
read_value(const char **pp, char *err, size_t errlen)
{
    const char *p = *pp;
    size_t cap = strlen(p) + 1, n = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (*p == '\'') {
        p++;
        for (;;) {
            if (*p == '\0') {
                free(out);
                set_err(err, errlen, "unterminated quoted string in connection info string");
                return NULL;
            }
            if (*p == '\'') {
                p++;
                break;
            }
            if (*p == '\\' && p[1] != '\0')
                p++;
            out[n++] = *p++;
        }
    } else {
        while (*p != '\0' && !isspace((unsigned char)*p)) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    *pp = p;
    return out;
}

static bool
parse_string(const char *s, raw_value *raw, char *err, size_t errlen)
{
    const char *p = s;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            return true;
        const char *kw = p;
        while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t kwlen = (size_t)(p - kw);
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '=') {
            set_err(err, errlen, "missing \"=\" after \"%.*s\" in connection info string",
                    (int)(kwlen > 64 ? 64 : kwlen), kw);
            return false;
        }
        if (kwlen == 0) {
            set_err(err, errlen, "missing keyword before \"=\" in connection info string");
            return false;
        }
        p++;
        while (isspace((unsigned char)*p))
            p++;
        int id = find_keyword(kw, kwlen);
        if (id < 0) {
            set_err(err, errlen, "invalid connection option \"%.*s\"",
                    (int)(kwlen > 64 ? 64 : kwlen), kw);
            return false;
        }
        char *val = read_value(&p, err, errlen);
        if (val == NULL)
            return false;
        raw_set(&raw[id], val, NULL);
    }
}

static bool
load_env(raw_value *raw, char *err, size_t errlen)
{
    for (int i = 0; i < KW_COUNT; i++) {
        const char *v = getenv(keywords[i].env);
        if (v == NULL)
            continue;
        char *copy = strdup(v);
        if (copy == NULL) {
            set_err(err, errlen, "out of memory");
            return false;
        }
        raw_set(&raw[i], copy, keywords[i].env);
    }
    return true;
}

/* Split s at commas into a new array of new strings; NULL when out of memory. */
static char **
split_commas(const char *s, int *count)
{
    int n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    char **out = calloc((size_t)n, sizeof(char *));
    if (out == NULL)
        return NULL;
    const char *start = s;
    for (int i = 0; i < n; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        out[i] = strndup(start, len);
        if (out[i] == NULL) {
            for (int j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
        start = end ? end + 1 : start + len;
    }
    *count = n;
    return out;
}

static void
free_strv(char **v, int n)
{
    if (v == NULL)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Strict decimal integer in [lo, hi]. */
static bool
parse_int(const char *s, long lo, long hi, int *out)
{
    if (s[0] == '\0' || !isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool
validate_hosts(const raw_value *raw, dtx_conninfo *ci, char *err, size_t errlen)
{
    char ob[64];
    const raw_value *hv = &raw[KW_HOST];
    const char *hosts = raw_text(hv) ? hv->text : "localhost";
    ci->hosts = split_commas(hosts, &ci->nhosts);
    if (ci->hosts == NULL) {
        set_err(err, errlen, "out of memory");
        return false;
    }
    for (int i = 0; i < ci->nhosts; i++) {
        size_t len = strlen(ci->hosts[i]);
        if (len == 0) {
            set_err(err, errlen, "empty host name in host list \"%s\"%s", hosts,
                    origin(hv, ob, sizeof(ob)));
            return false;
        }
        if (len > 255) {
            set_err(err, errlen, "host name too long (%zu bytes, at most 255)%s", len,
                    origin(hv, ob, sizeof(ob)));
            return false;
        }
    }

    ci->ports = calloc((size_t)ci->nhosts, sizeof(int));
    if (ci->ports == NULL) {
        set_err(err, errlen, "out of memory");
        return false;
    }
    const raw_value *pv = &raw[KW_PORT];
    if (raw_text(pv) == NULL) {
        for (int i = 0; i < ci->nhosts; i++)
            ci->ports[i] = DTX_DEFAULT_PORT;
        return true;
    }
    int nports;
    char **ports = split_commas(pv->text, &nports);
    if (ports == NULL) {
        set_err(err, errlen, "out of memory");
        return false;
    }
    bool ok = true;
    if (nports != 1 && nports != ci->nhosts) {
        set_err(err, errlen, "could not match %d port numbers to %d hosts%s", nports, ci->nhosts,
                origin(pv, ob, sizeof(ob)));
        ok = false;
    }
    for (int i = 0; ok && i < nports; i++) {
        int port;
        if (!parse_int(ports[i], 1, 65535, &port)) {
            set_err(err, errlen, "invalid port number: \"%s\"%s", ports[i],
                    origin(pv, ob, sizeof(ob)));
            ok = false;
            break;
        }
        if (nports == 1)
            for (int h = 0; h < ci->nhosts; h++)
                ci->ports[h] = port;
        else
            ci->ports[i] = port;
    }
    free_strv(ports, nports);
    return ok;
}

static bool
validate_sslmode(const raw_value *v, dtx_conninfo *ci, char *err, size_t errlen)
{
    char ob[64];
    const char *m = raw_text(v);
    if (m == NULL || strcmp(m, "verify-full") == 0) {
        ci->sslmode = DTX_SSLMODE_VERIFY_FULL;
        return true;
    }
    if (strcmp(m, "verify-ca") == 0) {
        ci->sslmode = DTX_SSLMODE_VERIFY_CA;
        return true;
    }
    if (strcmp(m, "disable") == 0 || strcmp(m, "allow") == 0 || strcmp(m, "prefer") == 0 ||
        strcmp(m, "require") == 0)
        set_err(err, errlen,
                "sslmode \"%s\" is not supported%s: dtx always verifies the coordinator's "
                "certificate (use verify-full or verify-ca)",
                m, origin(v, ob, sizeof(ob)));
    else
        set_err(err, errlen, "invalid sslmode value: \"%s\"%s", m, origin(v, ob, sizeof(ob)));
    return false;
}

static bool
validate_target_role(const raw_value *v, dtx_conninfo *ci, char *err, size_t errlen)
{
    char ob[64];
    const char *m = raw_text(v);
    if (m == NULL || strcmp(m, "primary") == 0) {
        ci->target_role = DTX_TARGET_PRIMARY;
        return true;
    }
    if (strcmp(m, "any") == 0) {
        ci->target_role = DTX_TARGET_ANY;
        return true;
    }
    set_err(err, errlen, "invalid target_role value: \"%s\"%s; use primary or any", m,
            origin(v, ob, sizeof(ob)));
    return false;
}

/* Copy a non-empty value, or set *out = NULL.  False when out of memory. */
static bool
copy_opt(const raw_value *v, char **out)
{
    const char *t = raw_text(v);
    *out = NULL;
    if (t == NULL)
        return true;
    *out = strdup(t);
    return *out != NULL;
}

static bool
validate(const raw_value *raw, dtx_conninfo *ci, char *err, size_t errlen)
{
    char ob[64];
    if (!validate_hosts(raw, ci, err, errlen))
        return false;
    if (!validate_sslmode(&raw[KW_SSLMODE], ci, err, errlen))
        return false;
    if (!validate_target_role(&raw[KW_TARGET_ROLE], ci, err, errlen))
        return false;

    const raw_value *tv = &raw[KW_CONNECT_TIMEOUT];
    ci->connect_timeout = 0;
    if (raw_text(tv) && !parse_int(tv->text, 0, INT_MAX / 1000, &ci->connect_timeout)) {
        set_err(err, errlen, "invalid integer value \"%s\" for connection option \"%s\"%s",
                tv->text, keywords[KW_CONNECT_TIMEOUT].name, origin(tv, ob, sizeof(ob)));
        return false;
    }

    if (raw_text(&raw[KW_SSLKEY]) && !raw_text(&raw[KW_SSLCERT])) {
        set_err(err, errlen, "sslkey was given without sslcert");
        return false;
    }
    if (!copy_opt(&raw[KW_SSLROOTCERT], &ci->sslrootcert) ||
        !copy_opt(&raw[KW_SSLCERT], &ci->sslcert) || !copy_opt(&raw[KW_SSLKEY], &ci->sslkey))
        goto oom;
    if (ci->sslcert && ci->sslkey == NULL && (ci->sslkey = strdup(ci->sslcert)) == NULL)
        goto oom;
    const char *app = raw[KW_APPNAME].text ? raw[KW_APPNAME].text : "";
    if ((ci->application_name = strdup(app)) == NULL)
        goto oom;
    return true;
oom:
    set_err(err, errlen, "out of memory");
    return false;
}

bool
dtx_conninfo_parse(const char *s, dtx_conninfo *ci, char *err, size_t errlen)
{
    raw_value raw[KW_COUNT];
    memset(raw, 0, sizeof(raw));
    memset(ci, 0, sizeof(*ci));
    bool ok = load_env(raw, err, errlen) && parse_string(s ? s : "", raw, err, errlen) &&
              validate(raw, ci, err, errlen);
    raw_free(raw);
    if (!ok)
        dtx_conninfo_free(ci);
    return ok;
}

void
dtx_conninfo_free(dtx_conninfo *ci)
{
    free_strv(ci->hosts, ci->nhosts);
    free(ci->ports);
    free(ci->sslrootcert);
    free(ci->sslcert);
    free(ci->sslkey);
    free(ci->application_name);
    memset(ci, 0, sizeof(*ci));
}
