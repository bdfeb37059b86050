/*
 * log.h — process-wide logging in PostgreSQL's tone.
 *
 * Messages are short, lower-case, without a trailing period; details and
 * hints are full sentences.  Every line carries a timestamp, the program name,
 * the pid and the level:
 *
 *   2026-11-26 16:40:01.123 UTC dtx-coordinator[4242] LOG:  listening on 127.0.0.1:6543
 *
 * Output goes to stderr unless log_open_file() names a file.  Logging is
 * thread-safe (one write(2) per line).  log_fatal() logs and exits(1);
 * log_panic() logs and abort()s — used when durability can no longer be
 * promised (a failed fsync).
 */
#ifndef DTX_LOG_H
#define DTX_LOG_H

#include <stdbool.h>
#include <stdarg.h>

typedef enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO = 1,
    LOG_LVL_LOG = 2, /* normal operational messages */
    LOG_LVL_WARNING = 3,
    LOG_LVL_ERROR = 4,
    LOG_LVL_FATAL = 5,
    LOG_LVL_PANIC = 6,
} log_level;

/* Set the program name shown in every line (pointer kept, not copied). */
void log_init(const char *progname);
void log_set_level(log_level min);
/* Parse "debug", "info", "log", "warning", "error"; false if unknown. */
bool log_parse_level(const char *s, log_level *out) __attribute__((warn_unused_result));
/* Append to a file instead of stderr; false (errno set) on failure. */
bool log_open_file(const char *path) __attribute__((warn_unused_result));

void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(log_level lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* An error as PostgreSQL logs one: "ERROR:  23514: message", then a
 * "DETAIL:  ..." and a "HINT:  ..." line when given (NULL or "": none), in
 * one write.  Used wherever a participant's or PostgreSQL's error is logged,
 * so that the log shows the fields the client is shown. */
void log_report(log_level lvl, const char *sqlstate, const char *detail, const char *hint,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_log(...)   log_msg(LOG_LVL_LOG, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
