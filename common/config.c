/*
 * config.c — the INI parser behind config.h.
 *
 * NOTES
 *  What this file owns: turning the text of one configuration file into the
 *  fields of one caller struct, as described by a table of sections and keys
 *  (pgbouncer's CF_* tables are the model).  It owns no global state; every
 *  parse keeps its bookkeeping in a `parser` on the stack and frees it before
 *  returning.
 *
 *  Life cycle of a parse:
 *    1. the table is checked (programming errors are reported, not trusted);
 *    2. every key with a default gets the default, parsed by the same code
 *       as a file value, so a default can never bypass a range check;
 *    3. the text is cut into lines and each line is handled on its own:
 *       blank/comment, "[section]", or "key = value";
 *    4. required sections and keys are checked;
 *    5. on any failure, the strings stored so far are freed again, so the
 *       caller's struct never holds half of a configuration it must
 *       remember to clean up.
 *
 *  Invariants:
 *    - a line is never truncated: a line longer than CONFIG_LINE_MAX bytes is
 *      an error, so a value is never silently cut short;
 *    - a key is set at most once per file (duplicates are errors; the
 *      default does not count as a setting);
 *    - a section header appears at most once per file;
 *    - every message names the file and, where one applies, the line.
 *
 *  The "first set on line N" bookkeeping is two flat int arrays: one line
 *  number per section (its header), one per typed key across all sections
 *  (key_base[s] is the index of section s's first key).  Free-form sections
 *  keep the keys seen in the current section in a small list, to detect
 *  duplicates on behalf of their callbacks.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Upper bound on a configuration file, to refuse reading something absurd. */
#define CONFIG_FILE_MAX (16 * 1024 * 1024)
/* Length of the message buffers used before the "file:line: " prefix. */
#define CONFIG_MSG_MAX 512

typedef struct unit_def {
    const char *name;
    int64_t factor;
} unit_def;

static const unit_def duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"min", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000}, {NULL, 0},
};

static const unit_def size_units[] = {
    {"B", 1},
    {"kB", INT64_C(1) << 10},
    {"MB", INT64_C(1) << 20},
    {"GB", INT64_C(1) << 30},
    {"TB", INT64_C(1) << 40},
    {NULL, 0},
};

typedef struct seen_key {
    char *key;
    int line;
} seen_key;

typedef struct parser {
    const config_section *table;
    void *out;
    void *cb_ctx;
    const char *file; /* name used in messages */
    int line;         /* current line, 1-based; 0 before the first */
    char *err;
    size_t errlen;

    size_t nsections;
    int *section_line; /* [nsections] line of the header, 0 = not seen */
    size_t *key_base;  /* [nsections] index of the section's first key */
    int *key_line;     /* [all keys] line where set, 0 = not set */
    const config_section *cur;
    size_t cur_index;

    seen_key *seen; /* keys of the current free-form section */
    size_t nseen, seen_cap;
} parser;

/* ------------------------------------------------------------------------
 * Messages
 */

static bool fail_line(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail_file(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "FILE:LINE: message"; returns false so callers can `return fail_line(...)`. */
static bool
fail_line(parser *p, const char *fmt, ...)
{
    char msg[CONFIG_MSG_MAX + CONFIG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, msg);
    return false;
}

/* "FILE: message", for errors that belong to no single line. */
static bool
fail_file(parser *p, const char *fmt, ...)
{
    char msg[CONFIG_MSG_MAX + CONFIG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s: %s", p->file, msg);
    return false;
}

/* Optimal-string-alignment distance, for "did you mean" hints; names longer
 * than 63 bytes are never suggested. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* Write ` (did you mean "x"?)` into hint when one candidate is close. */
static void
suggest(const char *word, const char *const *names, size_t n, char *hint, size_t hintlen)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    hint[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    if (best != NULL && best_d <= 2 && best_d < strlen(word))
        snprintf(hint, hintlen, " (did you mean \"%s\"?)", best);
}

/* "90000" ms -> "90s"; the largest unit that divides the value exactly. */
static void
format_units(int64_t v, const unit_def *units, char *out, size_t outlen)
{
    const unit_def *pick = &units[0];
    for (const unit_def *u = units; u->name != NULL; u++) {
        if (v != 0 && v % u->factor == 0)
            pick = u;
    }
    snprintf(out, outlen, "%lld%s", (long long)(v / pick->factor), pick->name);
}

static void
format_unit_list(const unit_def *units, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (const unit_def *u = units; u->name != NULL && used < outlen; u++) {
        int n = snprintf(out + used, outlen - used, "%s%s", u == units ? "" : ", ", u->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* ------------------------------------------------------------------------
 * Value parsers
 */

bool
config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Decimal digits with an optional leading '-' (when allow_sign) into *out;
 * *end points after the digits. */
static bool
parse_decimal(const char *text, bool allow_sign, int64_t *out, const char **end, char *err,
              size_t errlen)
{
    const char *s = text;
    if (allow_sign && *s == '-')
        s++;
    if (!isdigit((unsigned char)*s)) {
        snprintf(err, errlen, "expected %s", allow_sign ? "an integer" : "a number");
        return false;
    }
    errno = 0;
    char *e;
    long long v = strtoll(text, &e, 10);
    if (errno == ERANGE) {
        snprintf(err, errlen, "number is out of range");
        return false;
    }
    *out = v;
    *end = e;
    return true;
}

/* number [blanks] [unit], unit from the list or default_unit for a bare number. */
static bool
parse_with_units(const char *text, const unit_def *units, const char *default_unit,
                 const char *what, const char *example, int64_t *out, char *err, size_t errlen)
{
    int64_t n;
    const char *end;
    char list[128];
    if (!isdigit((unsigned char)text[0])) {
        snprintf(err, errlen, "expected %s such as %s", what, example);
        return false;
    }
    if (!parse_decimal(text, false, &n, &end, err, errlen))
        return false;
    while (*end == ' ' || *end == '\t')
        end++;
    const char *unit = *end != '\0' ? end : default_unit;
    if (unit == NULL)
        unit = units[0].name;
    for (const unit_def *u = units; u->name != NULL; u++) {
        if (strcmp(unit, u->name) != 0)
            continue;
        if (n > INT64_MAX / u->factor) {
            snprintf(err, errlen, "%s is too large", what);
            return false;
        }
        *out = n * u->factor;
        return true;
    }
    format_unit_list(units, list, sizeof(list));
    if (*end != '\0')
        snprintf(err, errlen, "unknown unit \"%s\" (valid units: %s)", unit, list);
    else
        snprintf(err, errlen, "unknown default unit \"%s\" (valid units: %s)", unit, list);
    return false;
}

bool
config_parse_duration(const char *text, const char *default_unit, int64_t *ms, char *err,
                      size_t errlen)
{
    return parse_with_units(text, duration_units, default_unit, "a duration", "500ms, 10s or 5min",
                            ms, err, errlen);
}

bool
config_parse_size(const char *text, const char *default_unit, int64_t *bytes, char *err,
                  size_t errlen)
{
    return parse_with_units(text, size_units, default_unit, "a size", "512, 64kB, 64MB or 1GB",
                            bytes, err, errlen);
}

static bool
valid_host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

bool
config_parse_hostport(const char *text, uint16_t default_port, char *host, size_t hostlen,
                      uint16_t *port, char *err, size_t errlen)
{
    const char *h, *h_end, *p = NULL;
    bool bracketed = text[0] == '[';

    if (bracketed) {
        h = text + 1;
        h_end = strchr(h, ']');
        if (h_end == NULL) {
            snprintf(err, errlen, "missing \"]\" in address \"%s\"", text);
            return false;
        }
        if (h_end[1] == ':')
            p = h_end + 2;
        else if (h_end[1] != '\0') {
            snprintf(err, errlen, "unexpected text after \"]\" in address \"%s\"", text);
            return false;
        }
    } else {
        h = text;
        const char *colon = strchr(text, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            snprintf(err, errlen,
                     "IPv6 address \"%s\" must be written in brackets, as in [::1]:6543", text);
            return false;
        }
        h_end = colon != NULL ? colon : text + strlen(text);
        if (colon != NULL)
            p = colon + 1;
    }

    size_t len = (size_t)(h_end - h);
    if (len == 0) {
        snprintf(err, errlen, "missing host in address \"%s\"", text);
        return false;
    }
    if (len >= hostlen) {
        snprintf(err, errlen, "host name in address \"%s\" is too long", text);
        return false;
    }
    memcpy(host, h, len);
    host[len] = '\0';
    if (bracketed) {
        unsigned char buf[16];
        if (inet_pton(AF_INET6, host, buf) != 1) {
            snprintf(err, errlen, "invalid IPv6 address \"%s\"", host);
            return false;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            if (!valid_host_char(host[i])) {
                snprintf(err, errlen, "invalid character in host name \"%s\"", host);
                return false;
            }
        }
    }

    if (p == NULL) {
        if (default_port == 0) {
            snprintf(err, errlen, "missing port in address \"%s\"", text);
            return false;
        }
        *port = default_port;
        return true;
    }
    int64_t v;
    const char *end;
    char dummy[8];
    if (!parse_decimal(p, false, &v, &end, dummy, sizeof(dummy)) || *end != '\0' || v < 1 ||
        v > 65535) {
        snprintf(err, errlen, "invalid port \"%s\" in address \"%s\" (expected 1..65535)", p, text);
        return false;
    }
    *port = (uint16_t)v;
    return true;
}

/* ------------------------------------------------------------------------
 * Storing a value into the caller's struct
 */

static bool
check_range(const config_key *k, int64_t v, const unit_def *units, char *err, size_t errlen)
{
    if (k->min == 0 && k->max == 0)
        return true;
    if (v >= k->min && v <= k->max)
        return true;
    char lo[32], hi[32];
    if (units != NULL) {
        format_units(k->min, units, lo, sizeof(lo));
        format_units(k->max, units, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%lld", (long long)k->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)k->max);
    }
    snprintf(err, errlen, "must be between %s and %s", lo, hi);
    return false;
}

/* Parse value per k and store it at out + k->offset; err gets a bare reason. */
static bool
store_value(const config_key *k, void *out, const char *value, char *err, size_t errlen)
{
    char *dst = (char *)out + k->offset;
    int64_t v;
    const char *end;

    switch (k->type) {
    case CONFIG_STRING: {
        char *copy = strdup(value);
        if (copy == NULL) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        char **sp = (char **)(void *)dst;
        free(*sp);
        *sp = copy;
        return true;
    }
    case CONFIG_INT:
        if (!parse_decimal(value, true, &v, &end, err, errlen))
            return false;
        if (*end != '\0') {
            snprintf(err, errlen, "expected an integer");
            return false;
        }
        if (v < INT_MIN || v > INT_MAX) {
            snprintf(err, errlen, "number is out of range");
            return false;
        }
        if (!check_range(k, v, NULL, err, errlen))
            return false;
        *(int *)(void *)dst = (int)v;
        return true;
    case CONFIG_BOOL: {
        bool b;
        if (!config_parse_bool(value, &b)) {
            snprintf(err, errlen, "expected a boolean (on/off, true/false, yes/no, 1/0)");
            return false;
        }
        *(bool *)(void *)dst = b;
        return true;
    }
    case CONFIG_DURATION:
        if (!config_parse_duration(value, k->unit, &v, err, errlen) ||
            !check_range(k, v, duration_units, err, errlen))
            return false;
        *(int64_t *)(void *)dst = v;
        return true;
    case CONFIG_SIZE:
        if (!config_parse_size(value, k->unit, &v, err, errlen) ||
            !check_range(k, v, size_units, err, errlen))
            return false;
        *(int64_t *)(void *)dst = v;
        return true;
    case CONFIG_ENUM: {
        size_t used = 0;
        for (int i = 0; k->choices[i] != NULL; i++) {
            if (strcasecmp(value, k->choices[i]) == 0) {
                *(int *)(void *)dst = i;
                return true;
            }
        }
        used = (size_t)snprintf(err, errlen, "expected one of:");
        for (int i = 0; k->choices[i] != NULL && used < errlen; i++) {
            int n = snprintf(err + used, errlen - used, "%s %s", i == 0 ? "" : ",", k->choices[i]);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        return false;
    }
    }
    snprintf(err, errlen, "unknown value type %d", (int)k->type);
    return false;
}

/* ------------------------------------------------------------------------
 * Table set-up, defaults, final checks
 */

static bool
valid_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static bool
valid_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!valid_name_char(*s))
            return false;
    }
    return true;
}

static size_t
count_keys(const config_section *sec)
{
    size_t n = 0;
    if (sec->keys != NULL) {
        while (sec->keys[n].name != NULL)
            n++;
    }
    return n;
}

static bool
check_table(parser *p)
{
    for (size_t s = 0; s < p->nsections; s++) {
        const config_section *sec = &p->table[s];
        if ((sec->keys == NULL) == (sec->on_entry == NULL))
            return fail_file(p, "bad configuration table: section [%s] needs keys or on_entry",
                             sec->name);
        for (const config_key *k = sec->keys; k != NULL && k->name != NULL; k++) {
            char msg[CONFIG_MSG_MAX];
            int64_t v;
            bool ok = true;
            if (k->type == CONFIG_DURATION)
                ok = config_parse_duration("1", k->unit, &v, msg, sizeof(msg));
            else if (k->type == CONFIG_SIZE)
                ok = config_parse_size("1", k->unit, &v, msg, sizeof(msg));
            else if (k->type == CONFIG_ENUM && (k->choices == NULL || k->choices[0] == NULL)) {
                ok = false;
                snprintf(msg, sizeof(msg), "enum without choices");
            } else if (k->type < CONFIG_STRING || k->type > CONFIG_ENUM) {
                ok = false;
                snprintf(msg, sizeof(msg), "unknown value type %d", (int)k->type);
            }
            if (!ok)
                return fail_file(p, "bad configuration table: key \"%s\" in section [%s]: %s",
                                 k->name, sec->name, msg);
        }
    }
    return true;
}

static bool
apply_defaults(parser *p)
{
    for (size_t s = 0; s < p->nsections; s++) {
        const config_section *sec = &p->table[s];
        for (const config_key *k = sec->keys; k != NULL && k->name != NULL; k++) {
            char msg[CONFIG_MSG_MAX];
            if (k->default_value == NULL)
                continue;
            if (!store_value(k, p->out, k->default_value, msg, sizeof(msg)))
                return fail_file(p,
                                 "bad configuration table: invalid default value \"%s\" for key "
                                 "\"%s\" in section [%s]: %s",
                                 k->default_value, k->name, sec->name, msg);
        }
    }
    return true;
}

static bool
check_required(parser *p)
{
    for (size_t s = 0; s < p->nsections; s++) {
        const config_section *sec = &p->table[s];
        int hdr = p->section_line[s];
        if (sec->required && hdr == 0)
            return fail_file(p, "missing required section [%s]", sec->name);
        if (hdr == 0)
            continue; /* an optional section that is absent: its keys too */
        size_t nkeys = count_keys(sec);
        for (size_t i = 0; i < nkeys; i++) {
            const config_key *k = &sec->keys[i];
            if (!k->required || p->key_line[p->key_base[s] + i] != 0)
                continue;
            p->line = hdr;
            return fail_line(p, "missing required key \"%s\" in section [%s]", k->name, sec->name);
        }
    }
    return true;
}

static void
forget_seen(parser *p)
{
    for (size_t i = 0; i < p->nseen; i++)
        free(p->seen[i].key);
    p->nseen = 0;
}

/* ------------------------------------------------------------------------
 * Lines
 */

static char *
skip_blanks(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static void
trim_right(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

static bool
is_comment_start(char c)
{
    return c == '#' || c == ';';
}

static bool
handle_section(parser *p, char *s)
{
    char *close = strchr(s, ']');
    if (close == NULL)
        return fail_line(p, "missing \"]\" in section header");
    char *rest = skip_blanks(close + 1);
    if (*rest != '\0' && !is_comment_start(*rest))
        return fail_line(p, "unexpected text after section header");
    *close = '\0';
    char *name = skip_blanks(s + 1);
    trim_right(name);
    if (!valid_name(name))
        return fail_line(p, "invalid section name \"%s\"", name);

    for (size_t i = 0; i < p->nsections; i++) {
        if (strcmp(p->table[i].name, name) != 0)
            continue;
        if (p->section_line[i] != 0)
            return fail_line(p, "duplicate section [%s] (first on line %d)", name,
                             p->section_line[i]);
        p->section_line[i] = p->line;
        p->cur = &p->table[i];
        p->cur_index = i;
        forget_seen(p);
        return true;
    }

    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < p->nsections && n < 64; i++)
        names[n++] = p->table[i].name;
    char hint[128];
    suggest(name, names, n, hint, sizeof(hint));
    return fail_line(p, "unknown section [%s]%s", name, hint);
}

/* Cut the value out of s in place: dequote, drop a trailing comment. */
static bool
extract_value(parser *p, char *s, char **value)
{
    s = skip_blanks(s);
    if (*s == '"') {
        char *r = s + 1, *w = s;
        for (;;) {
            if (*r == '\0')
                return fail_line(p, "unterminated quoted value");
            if (*r == '"')
                break;
            if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
                r++;
            *w++ = *r++;
        }
        *w = '\0';
        r = skip_blanks(r + 1);
        if (*r != '\0' && !is_comment_start(*r))
            return fail_line(p, "unexpected text after quoted value");
        *value = s;
        return true;
    }
    for (char *q = s; *q != '\0'; q++) {
        if (is_comment_start(*q) && (q == s || q[-1] == ' ' || q[-1] == '\t')) {
            *q = '\0';
            break;
        }
    }
    trim_right(s);
    *value = s;
    return true;
}

static bool
handle_typed_entry(parser *p, const char *key, const char *value)
{
    const config_section *sec = p->cur;
    size_t nkeys = count_keys(sec);
    for (size_t i = 0; i < nkeys; i++) {
        const config_key *k = &sec->keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        int *first = &p->key_line[p->key_base[p->cur_index] + i];
        if (*first != 0)
            return fail_line(p, "duplicate key \"%s\" in section [%s] (first set on line %d)", key,
                             sec->name, *first);
        char msg[CONFIG_MSG_MAX];
        if (!store_value(k, p->out, value, msg, sizeof(msg)))
            return fail_line(p, "invalid value \"%s\" for key \"%s\" in section [%s]: %s", value,
                             key, sec->name, msg);
        *first = p->line;
        return true;
    }

    const char *names[128];
    size_t n = 0;
    for (size_t i = 0; i < nkeys && n < 128; i++)
        names[n++] = sec->keys[i].name;
    char hint[128];
    suggest(key, names, n, hint, sizeof(hint));
    return fail_line(p, "unknown key \"%s\" in section [%s]%s", key, sec->name, hint);
}

static bool
handle_free_entry(parser *p, const char *key, const char *value)
{
    for (size_t i = 0; i < p->nseen; i++) {
        if (strcmp(p->seen[i].key, key) == 0)
            return fail_line(p, "duplicate key \"%s\" in section [%s] (first set on line %d)", key,
                             p->cur->name, p->seen[i].line);
    }
    if (p->nseen == p->seen_cap) {
        size_t cap = p->seen_cap ? p->seen_cap * 2 : 16;
        seen_key *grown = realloc(p->seen, cap * sizeof(*grown));
        if (grown == NULL)
            return fail_line(p, "out of memory");
        p->seen = grown;
        p->seen_cap = cap;
    }
    char *copy = strdup(key);
    if (copy == NULL)
        return fail_line(p, "out of memory");
    p->seen[p->nseen].key = copy;
    p->seen[p->nseen].line = p->line;
    p->nseen++;

    char msg[CONFIG_MSG_MAX] = "";
    if (!p->cur->on_entry(p->cb_ctx, key, value, msg, sizeof(msg))) {
        if (msg[0] == '\0')
            return fail_line(p, "invalid entry \"%s\" in section [%s]", key, p->cur->name);
        return fail_line(p, "%s", msg);
    }
    return true;
}

static bool
handle_line(parser *p, char *s)
{
    s = skip_blanks(s);
    if (*s == '\0' || is_comment_start(*s))
        return true;
    if (*s == '[')
        return handle_section(p, s);

    char *eq = strchr(s, '=');
    if (eq == NULL)
        return fail_line(p, "syntax error: expected \"key = value\" or \"[section]\"");
    *eq = '\0';
    char *key = s;
    trim_right(key);
    if (!valid_name(key) && strcmp(key, "*") != 0) /* "*": a default ([roles]) */
        return fail_line(p, "invalid key name \"%s\"", key);
    if (p->cur == NULL)
        return fail_line(p, "key \"%s\" appears before any [section]", key);
    char *value = NULL;
    if (!extract_value(p, eq + 1, &value))
        return false;
    if (p->cur->keys != NULL)
        return handle_typed_entry(p, key, value);
    return handle_free_entry(p, key, value);
}

static bool
parse_lines(parser *p, const char *text, size_t len)
{
    char buf[CONFIG_LINE_MAX + 1];
    size_t pos = 0;

    /* A UTF-8 byte-order mark, as some editors write, is not part of line 1. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += n + (nl != NULL ? 1 : 0);
        p->line++;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n > CONFIG_LINE_MAX)
            return fail_line(p, "line is longer than %d bytes", CONFIG_LINE_MAX);
        if (memchr(start, '\0', n) != NULL)
            return fail_line(p, "line contains a NUL byte");
        memcpy(buf, start, n);
        buf[n] = '\0';
        if (!handle_line(p, buf))
            return false;
    }
    return true;
}

static bool
parse_buffer(const config_section *table, void *out, void *cb_ctx, const char *name,
             const char *text, size_t len, char *err, size_t errlen)
{
    parser p = {
        .table = table,
        .out = out,
        .cb_ctx = cb_ctx,
        .file = name,
        .err = err,
        .errlen = errlen,
    };
    bool ok = false;
    size_t total_keys = 0;

    while (table[p.nsections].name != NULL)
        p.nsections++;
    p.section_line = calloc(p.nsections + 1, sizeof(int));
    p.key_base = calloc(p.nsections + 1, sizeof(size_t));
    if (p.section_line == NULL || p.key_base == NULL) {
        fail_file(&p, "out of memory");
        goto done;
    }
    for (size_t s = 0; s < p.nsections; s++) {
        p.key_base[s] = total_keys;
        total_keys += count_keys(&table[s]);
    }
    p.key_line = calloc(total_keys + 1, sizeof(int));
    if (p.key_line == NULL) {
        fail_file(&p, "out of memory");
        goto done;
    }

    ok = check_table(&p) && apply_defaults(&p) && parse_lines(&p, text, len) && check_required(&p);

done:
    forget_seen(&p);
    free(p.seen);
    free(p.key_line);
    free(p.key_base);
    free(p.section_line);
    if (!ok)
        config_free(table, out);
    return ok;
}

/* ------------------------------------------------------------------------
 * Public entry points
 */

bool
config_parse_string(const config_section *table, void *out, void *cb_ctx, const char *name,
                    const char *text, char *err, size_t errlen)
{
    return parse_buffer(table, out, cb_ctx, name, text, strlen(text), err, errlen);
}

bool
config_parse_file(const config_section *table, void *out, void *cb_ctx, const char *path, char *err,
                  size_t errlen)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    bool ok = false;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "could not open configuration file \"%s\": %m", path);
        return false;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "could not stat configuration file \"%s\": %m", path);
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "configuration file \"%s\" is a directory", path);
        goto done;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        snprintf(err, errlen, "configuration file \"%s\" is larger than %d bytes", path,
                 CONFIG_FILE_MAX);
        goto done;
    }
    /* Read until EOF: the size is only a hint (the file may grow, or be a
     * pipe), so the buffer grows as needed, up to CONFIG_FILE_MAX. */
    size_t cap = (size_t)st.st_size < 4096 ? 4096 : (size_t)st.st_size + 1;
    data = malloc(cap + 1);
    if (data == NULL) {
        snprintf(err, errlen, "out of memory reading configuration file \"%s\"", path);
        goto done;
    }
    for (;;) {
        if (len == cap) {
            if (cap > CONFIG_FILE_MAX) {
                snprintf(err, errlen, "configuration file \"%s\" is larger than %d bytes", path,
                         CONFIG_FILE_MAX);
                goto done;
            }
            char *grown = realloc(data, cap * 2 + 1);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory reading configuration file \"%s\"", path);
                goto done;
            }
            data = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "could not read configuration file \"%s\": %m", path);
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_FILE_MAX) {
        snprintf(err, errlen, "configuration file \"%s\" is larger than %d bytes", path,
                 CONFIG_FILE_MAX);
        goto done;
    }
    ok = parse_buffer(table, out, cb_ctx, path, data, len, err, errlen);

done:
    free(data);
    close(fd);
    if (!ok)
        config_free(table, out);
    return ok;
}

void
config_free(const config_section *table, void *out)
{
    for (const config_section *sec = table; sec->name != NULL; sec++) {
        for (const config_key *k = sec->keys; k != NULL && k->name != NULL; k++) {
            if (k->type != CONFIG_STRING)
                continue;
            char **sp = (char **)(void *)((char *)out + k->offset);
            free(*sp);
            *sp = NULL;
        }
    }
}

/* ---- reload ------------------------------------------------------------ */

static size_t
key_size(config_type t)
{
    switch (t) {
    case CONFIG_STRING:
        return sizeof(char *);
    case CONFIG_INT:
    case CONFIG_ENUM:
        return sizeof(int);
    case CONFIG_BOOL:
        return sizeof(bool);
    case CONFIG_DURATION:
    case CONFIG_SIZE:
        return sizeof(int64_t);
    default:
        abort();
    }
}

static bool
key_equal(const config_key *k, const void *a, const void *b)
{
    const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
    if (k->type == CONFIG_STRING) {
        const char *sa = *(char *const *)(const void *)pa, *sb = *(char *const *)(const void *)pb;
        return (sa == NULL && sb == NULL) || (sa && sb && strcmp(sa, sb) == 0);
    }
    return memcmp(pa, pb, key_size(k->type)) == 0;
}

static bool
name_listed(const char *name, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

int
config_keep_restart_keys(const config_section *table, void *newc, void *oldc,
                         const char *const *live, config_changed_fn changed, void *arg)
{
    int n = 0;
    for (const config_section *sec = table; sec->name != NULL; sec++) {
        for (const config_key *k = sec->keys; k != NULL && k->name != NULL; k++) {
            if (name_listed(k->name, live) || key_equal(k, newc, oldc))
                continue;
            /* the old value stays in force; the new one goes with oldc */
            unsigned char tmp[sizeof(int64_t)];
            char *pn = (char *)newc + k->offset, *po = (char *)oldc + k->offset;
            size_t sz = key_size(k->type);
            memcpy(tmp, pn, sz);
            memcpy(pn, po, sz);
            memcpy(po, tmp, sz);
            if (changed)
                changed(arg, sec->name, k->name);
            n++;
        }
    }
    return n;
}

/* ---- name lists -------------------------------------------------------- */

static bool
names_add(char ***out, size_t *n, const char *name, size_t len)
{
    char **nn = realloc(*out, (*n + 1) * sizeof(char *));
    if (nn == NULL)
        return false;
    *out = nn;
    if ((nn[*n] = strndup(name, len)) == NULL)
        return false;
    (*n)++;
    return true;
}

bool
config_split_names(const char *list, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    const char *p = list;
    for (;;) { /* one comma-separated item: one or more blank-separated names */
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t before = *n;
        for (size_t i = 0; i < len;) {
            while (i < len && (p[i] == ' ' || p[i] == '\t'))
                i++;
            size_t start = i;
            while (i < len && p[i] != ' ' && p[i] != '\t')
                i++;
            if (i == start)
                break;
            for (size_t k = start; k < i; k++) {
                unsigned char ch = (unsigned char)p[k];
                if (ch < 0x20 || ch == 0x7f || ch == '"') {
                    snprintf(err, errlen, "invalid character in certificate name \"%.*s\"",
                             (int)(i - start), p + start);
                    goto fail;
                }
            }
            if (!names_add(out, n, p + start, i - start)) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
        }
        if (*n == before && (end != NULL || before > 0)) {
            snprintf(err, errlen, "empty certificate name in the list");
            goto fail;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (*n == 0) {
        snprintf(err, errlen, "the list names no certificate (\"*\" allows any from the CA)");
        goto fail;
    }
    return true;
fail:
    config_free_names(*out, *n);
    *out = NULL;
    *n = 0;
    return false;
}

void
config_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
