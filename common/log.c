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
    log_min = min;
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
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
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
    ssize_t w = write(log_fd, line, len);
    (void)w;
}

void
log_vmsg(log_level lvl, const char *fmt, va_list ap)
{
    if (lvl < log_min)
        return;
    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    errno = saved_errno; /* so that %m in fmt names the caller's errno */
    size_t len = log_append_line(line, 0, sizeof(line), level_names[lvl], fmt, ap);
    log_write(line, len);
    errno = saved_errno;
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
log_report(log_level lvl, const char *sqlstate, const char *detail, const char *hint,
           const char *fmt, ...)
{
    if (lvl < log_min)
        return;
    int saved_errno = errno;
    char line[3 * LOG_LINE_MAX];
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
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
log_msg(log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

void
log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_FATAL, fmt, ap);
    va_end(ap);
    exit(1);
}

void
log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_PANIC, fmt, ap);
    va_end(ap);
    abort();
}
