/*
 * log.c — see log.h.
 *
 * NOTES
 *  The destination is a file descriptor (stderr by default).  Each message is
 *  formatted into a stack buffer and written with a single write(2), so lines
 *  from several threads never interleave.  Over-long messages are cut at
 *  LOG_LINE_MAX and marked with "...".  errno is preserved across calls so a
 *  caller may log and then still inspect it.
 */
#include "log.h"

#include <errno.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *log_progname = "dtx";
static log_level log_min = LOG_LVL_LOG;
static int log_fd = 2;
static log_format log_fmt = LOG_FORMAT_TEXT;

static const char *const level_names[] = {
    [LOG_LVL_DEBUG] = "DEBUG",     [LOG_LVL_INFO] = "INFO",   [LOG_LVL_LOG] = "LOG",
    [LOG_LVL_WARNING] = "WARNING", [LOG_LVL_ERROR] = "ERROR", [LOG_LVL_FATAL] = "FATAL",
    [LOG_LVL_PANIC] = "PANIC",
};

void
log_init(const char *progname)
{
    log_progname = progname;
}

void
log_set_level(log_level min)
{
    __atomic_store_n(&log_min, min, __ATOMIC_RELAXED);
}

void
log_set_format(log_format f)
{
    __atomic_store_n(&log_fmt, f, __ATOMIC_RELAXED);
}

bool
log_parse_format(const char *s, log_format *out)
{
    if (strcasecmp(s, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcasecmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return false;
    return true;
}

static bool
log_enabled(log_level lvl)
{
    return lvl >= __atomic_load_n(&log_min, __ATOMIC_RELAXED);
}

bool
log_parse_level(const char *s, log_level *out)
{
    static const struct {
        const char *name;
        log_level lvl;
    } tab[] = {{"debug", LOG_LVL_DEBUG},
               {"info", LOG_LVL_INFO},
               {"log", LOG_LVL_LOG},
               {"warning", LOG_LVL_WARNING},
               {"error", LOG_LVL_ERROR}};
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (strcasecmp(s, tab[i].name) == 0) {
            *out = tab[i].lvl;
            return true;
        }
    }
    return false;
}

bool
log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return false;
    if (__atomic_load_n(&log_fd, __ATOMIC_ACQUIRE) > 2) {
        /* in place, so that a thread writing meanwhile writes to one file or
         * the other, never to a closed or reused descriptor */
        int rc = dup3(fd, log_fd, O_CLOEXEC);
        int saved = errno;
        close(fd);
        errno = saved;
        return rc >= 0;
    }
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
    return true;
}

/* "2026-11-26 16:40:01.123 UTC dtx-coordinator[4242] LEVEL:  " into line;
 * its length */
static size_t
log_prefix(char *line, size_t size, const char *level)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, size,
                     "%04d-%02d-%02d %02d:%02d:%02d.%03d UTC %s[%d] %s:  ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), log_progname, (int)getpid(), level);
    return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

/* One line: a prefix naming `level`, then fmt, then '\n', appended at
 * line + len (room for it: size - len).  Too long: cut with "...".  Returns
 * the new length. */
static size_t
log_append_line(char *line, size_t len, size_t size, const char *level, const char *fmt, va_list ap)
{
    len += log_prefix(line + len, size - len, level);
    size_t room = size - len - 1; /* the newline's place */
    int m = vsnprintf(line + len, room, fmt, ap);
    if (m > 0 && (size_t)m >= room) {
        len += room - 1;
        memcpy(line + len - 3, "...", 3);
    } else if (m > 0) {
        len += (size_t)m;
    }
    line[len++] = '\n';
    return len;
}

/* A whole report is one write(2), so that lines of several threads never
 * interleave. */
static void
log_write(const char *line, size_t len)
{
    ssize_t w = write(__atomic_load_n(&log_fd, __ATOMIC_ACQUIRE), line, len);
    (void)w;
}

/* "src/coordinator/txn.c" -> "txn" into out */
static const char *
log_component(const char *file, char *out, size_t len)
{
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    size_t n = strcspn(b, ".");
    if (n >= len)
        n = len - 1;
    memcpy(out, b, n);
    out[n] = '\0';
    return out;
}

static void
json_add_str(json_object *o, const char *key, const char *v)
{
    if (v && *v)
        json_object_object_add(o, key, json_object_new_string(v));
}

/* One JSON object and '\n' in one write. */
static void
log_write_json(const char *file, const log_fields *f, log_level lvl, const char *sqlstate,
               const char *msg, const char *detail, const char *hint)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64], comp[64];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    json_object *o = json_object_new_object();
    if (o == NULL)
        return;
    json_object_object_add(o, "time", json_object_new_string(ts));
    json_object_object_add(o, "level", json_object_new_string(level_names[lvl]));
    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    json_object_object_add(o, "program", json_object_new_string(log_progname));
    json_object_object_add(o, "component",
                           json_object_new_string(log_component(file, comp, sizeof(comp))));
    json_object_object_add(o, "message", json_object_new_string(msg));
    if (f) {
        json_add_str(o, "gid", f->gid);
        json_add_str(o, "participant", f->participant);
        json_add_str(o, "client", f->client);
        if (!(sqlstate && *sqlstate))
            sqlstate = f->sqlstate;
    }
    json_add_str(o, "sqlstate", sqlstate);
    json_add_str(o, "detail", detail);
    json_add_str(o, "hint", hint);
    size_t len;
    const char *text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char *line = malloc(len + 1);
    if (line) {
        memcpy(line, text, len);
        line[len] = '\n';
        log_write(line, len + 1);
        free(line);
    }
    json_object_put(o);
}

static void
log_vat(const char *file, const log_fields *f, log_level lvl, const char *fmt, va_list ap)
{
    if (!log_enabled(lvl))
        return;
    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    errno = saved_errno; /* so that %m in fmt names the caller's errno */
    if (__atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_FORMAT_JSON) {
        vsnprintf(line, sizeof(line), fmt, ap);
        log_write_json(file, f, lvl, NULL, line, NULL, NULL);
    } else {
        size_t len = log_append_line(line, 0, sizeof(line), level_names[lvl], fmt, ap);
        log_write(line, len);
    }
    errno = saved_errno;
}

void
log_at(const char *file, const log_fields *f, log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vat(file, f, lvl, fmt, ap);
    va_end(ap);
}

static size_t log_append_fmt(char *line, size_t len, size_t size, const char *level,
                             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static size_t
log_append_fmt(char *line, size_t len, size_t size, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    len = log_append_line(line, len, size, level, fmt, ap);
    va_end(ap);
    return len;
}

void
log_report_at(const char *file, const log_fields *f, log_level lvl, const char *sqlstate,
              const char *detail, const char *hint, const char *fmt, ...)
{
    if (!log_enabled(lvl))
        return;
    int saved_errno = errno;
    char line[3 * LOG_LINE_MAX];
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (__atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_FORMAT_JSON) {
        log_write_json(file, f, lvl, sqlstate, msg, detail, hint);
        errno = saved_errno;
        return;
    }
    size_t len = 0;
    if (sqlstate && *sqlstate)
        len = log_append_fmt(line, len, LOG_LINE_MAX, level_names[lvl], "%s: %s", sqlstate, msg);
    else
        len = log_append_fmt(line, len, LOG_LINE_MAX, level_names[lvl], "%s", msg);
    if (detail && *detail)
        len = log_append_fmt(line, len, len + LOG_LINE_MAX, "DETAIL", "%s", detail);
    if (hint && *hint)
        len = log_append_fmt(line, len, len + LOG_LINE_MAX, "HINT", "%s", hint);
    log_write(line, len);
    errno = saved_errno;
}

void
log_fatal_at(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vat(file, NULL, LOG_LVL_FATAL, fmt, ap);
    va_end(ap);
    exit(1);
}

void
log_panic_at(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vat(file, NULL, LOG_LVL_PANIC, fmt, ap);
    va_end(ap);
    abort();
}
